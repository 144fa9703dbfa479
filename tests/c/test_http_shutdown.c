/* test_http_shutdown: tern_mgr_shutdown, a graceful stop, through the public header
 * with raw sockets on 127.0.0.1 as clients (issue 8, item 6).
 *
 * An HTTP server defers 100 keep-alive requests (one per connection) to 4 worker
 * threads. Once all are deferred, tern_mgr_shutdown(m, 1000) begins, and the workers
 * answer with tern_http_respond, spread over 0-2 s from then (3 and 6 s under
 * valgrind), so some answers come
 * before the deadline and some after. Beside them: 10 idle keep-alive connections, a
 * raw TCP connection with 12 MiB queued for a client that reads only once the shutdown
 * began, and a tern HTTP client connection whose request is in flight. Clients close
 * their sockets when they see EOF. Proves:
 *   - from the call on, new connections are refused (connect() gets ECONNREFUSED),
 *     and tern_listen / tern_http_connect return NULL with TERN_ECLOSED;
 *   - every request whose tern_http_respond returned TERN_OK reaches its client
 *     complete (status, Connection: close, Content-Length, every body byte), then
 *     EOF; every other respond returned TERN_ECLOSED and its client got EOF and no
 *     byte, and its connection got TERN_EV_ERROR with TERN_ETIMEDOUT;
 *   - idle keep-alive connections are closed (EOF, no ERROR); the raw connection's
 *     queue is written whole before its close; the HTTP client gets its response,
 *     then CLOSE without ERROR;
 *   - tern_mgr_poll returns TERN_ECLOSED once everything is closed, and again after;
 *     remotes then return TERN_ECLOSED;
 *   - after tern_mgr_free: every connection got one CLOSE, every wrapped buffer was
 *     released once, descriptors and tern_bytes_live() are back to their baselines;
 *   - tern_mgr_free during a shutdown that waits for a deferred request is the hard
 *     stop: the CLOSE comes inside it, the late respond returns TERN_ECLOSED.
 */
#include "common.h"

#define NREQ 100
#define NIDLE 10
#define NWORKERS 4
#define RAW_BYTES (12 << 20)

/* ------------------------------------------------------------------------- */
/* Bodies: wrapped buffers whose release is counted                           */

static t_free_counter g_frees;
static atomic_long g_wraps;

static void count_and_free(void *ctx, void *data, size_t len) {
    (void)len;
    atomic_fetch_add(&((t_free_counter *)ctx)->frees, 1);
    free(data);
}

/* The shutdown's timeout: 1 s (3 s under valgrind); the answers are spread over
 * twice that. */
static long g_timeout_ms;
static size_t body_len(int i) { return 1000 + (size_t)i * 37; }
static long delay_ms(int i) { return (i * 61) % 2000 * g_timeout_ms / 1000; }

static tern_bytes *body_of(int i) {
    size_t n = body_len(i);
    char *p = malloc(n);
    CHECK(p != NULL, "malloc");
    t_fill_pattern(p, n, (uint64_t)i, 0);
    atomic_fetch_add(&g_wraps, 1);
    return tern_bytes_wrap(p, n, count_and_free, &g_frees);
}

/* ------------------------------------------------------------------------- */
/* Workers                                                                    */

typedef struct {
    int req;
    tern_http_token tok;
} job;

static job g_jobs[NREQ + 1]; /* sorted by delay once the shutdown begins */
static int g_njobs;
static atomic_int g_next_job;
static atomic_int g_go;        /* the shutdown began */
static double g_go_ms;         /* when */
static int g_rc[NREQ + 1];     /* what each respond returned; [NREQ]: the tern client's */
static tern_remote *g_remotes[NWORKERS];

static void *worker_main(void *arg) {
    tern_remote *r = arg;
    while (!atomic_load(&g_go)) t_sleep_ms(1);
    for (;;) {
        int k = atomic_fetch_add(&g_next_job, 1);
        if (k >= g_njobs) break;
        job *j = &g_jobs[k];
        long d = j->req == NREQ ? 300 : delay_ms(j->req);
        double due = g_go_ms + (double)d;
        while (t_now_ms() < due) t_sleep_ms(1);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "X-Req: %d\r\n", j->req);
        g_rc[j->req] = tern_http_respond(r, j->tok, 200, hdr, body_of(j->req));
    }
    return NULL;
}

static int by_delay(const void *a, const void *b) {
    const job *x = a, *y = b;
    long dx = x->req == NREQ ? 300 : delay_ms(x->req), dy = y->req == NREQ ? 300 : delay_ms(y->req);
    return (dx > dy) - (dx < dy);
}

/* ------------------------------------------------------------------------- */
/* The server                                                                 */

static int g_deferred, g_timed_out_errors, g_other_errors;

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_ERROR) {
        if (tern_conn_error(c) == TERN_ETIMEDOUT && strcmp(ev_data, "shutdown timed out") == 0) g_timed_out_errors++;
        else {
            g_other_errors++;
            fprintf(stderr, "unexpected ERROR: %s (%d)\n", (const char *)ev_data, tern_conn_error(c));
        }
    }
    if (ev != TERN_EV_HTTP_MSG) return;
    tern_http_msg *h = ev_data;
    tern_str u = tern_http_uri(h);
    if (u.len == 4 && memcmp(u.ptr, "/now", 4) == 0) {
        CHECK_OK(tern_http_reply(c, 200, NULL, "now", 3));
        return;
    }
    CHECK(u.len > 3 && memcmp(u.ptr, "/r/", 3) == 0, "unexpected request %.*s", (int)u.len, u.ptr);
    CHECK(g_njobs <= NREQ, "too many requests");
    job *j = &g_jobs[g_njobs++];
    j->req = atoi(u.ptr + 3);
    j->tok = tern_http_defer(c, h);
    CHECK(j->tok.conn != 0, "tern_http_defer: %s", tern_strerror(tern_last_error()));
    g_deferred++;
}

/* The raw server: 12 MiB queued at once for every accepted connection. */
static char *g_raw_data;
static int g_raw_errors;
static tern_conn_id g_raw_conn;
static void on_raw(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_ACCEPT) {
        CHECK_OK(tern_send(c, g_raw_data, RAW_BYTES));
        g_raw_conn = tern_conn_get_id(c);
    }
    if (ev == TERN_EV_ERROR) g_raw_errors++;
}

/* tern's own client, with one deferred request in flight at the shutdown. */
static int g_cl_msgs, g_cl_errors, g_cl_closed, g_cl_ok;
static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_HTTP_MSG) {
        tern_str b = tern_http_body(ev_data);
        g_cl_ok = tern_http_status(ev_data) == 200 && b.len == body_len(NREQ) &&
                  t_check_pattern(b.ptr, b.len, NREQ, 0) < 0;
        g_cl_msgs++;
    }
    if (ev == TERN_EV_ERROR) {
        g_cl_errors++;
        fprintf(stderr, "client ERROR: %s\n", (const char *)ev_data);
    }
    if (ev == TERN_EV_CLOSE) g_cl_closed++;
}

/* ------------------------------------------------------------------------- */
/* Raw clients, read by one thread                                            */

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    int eof;
    int wait_go; /* reads only once the shutdown began */
} peer;

static peer g_peers[NREQ + NIDLE + 1];
static int g_npeers;
static atomic_int g_reader_stop;

static void *reader_main(void *arg) {
    (void)arg;
    double end = t_now_ms() + 60000;
    for (;;) {
        struct pollfd pfd[NREQ + NIDLE + 1];
        int idx[NREQ + NIDLE + 1], n = 0;
        for (int i = 0; i < g_npeers; i++) {
            if (g_peers[i].eof || (g_peers[i].wait_go && !atomic_load(&g_go))) continue;
            pfd[n] = (struct pollfd){g_peers[i].fd, POLLIN, 0};
            idx[n++] = i;
        }
        if ((n == 0 && atomic_load(&g_reader_stop)) || t_now_ms() > end) break;
        if (poll(pfd, (nfds_t)n, 20) <= 0) continue;
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents) continue;
            peer *p = &g_peers[idx[k]];
            if (p->cap - p->len < 65536) {
                p->cap = p->cap * 2 + 65536;
                p->buf = realloc(p->buf, p->cap);
                CHECK(p->buf != NULL, "realloc");
            }
            ssize_t r = recv(p->fd, p->buf + p->len, p->cap - p->len, MSG_DONTWAIT);
            if (r > 0) {
                p->len += (size_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* A client closes when the server has: tern's lingering close ends. */
                p->eof = r == 0 ? 1 : 2;
                close(p->fd);
                p->fd = -1;
            }
        }
    }
    return NULL;
}

static int add_peer(int port, const char *req, int rcvbuf, int wait_go) {
    peer *p = &g_peers[g_npeers];
    p->fd = t_raw_connect(port, rcvbuf);
    p->wait_go = wait_go;
    if (req) t_write_all(p->fd, req, strlen(req));
    return g_npeers++;
}

/* The head of response `text` (up to its blank line) and its Content-Length. */
static long content_length(const char *head) {
    const char *cl = strcasestr(head, "\r\nContent-Length: ");
    return cl ? strtol(cl + 18, NULL, 10) : -1;
}

/* Checks that peer `i` got exactly one 200 answer for request `req`, with
 * `Connection: close` if `closing`, and nothing after it. */
static void check_answer(int i, int req, int closing) {
    peer *p = &g_peers[i];
    CHECK(p->eof == 1, "peer %d (request %d): no EOF (%d), %zu bytes", i, req, p->eof, p->len);
    char *end = p->len ? memmem(p->buf, p->len, "\r\n\r\n", 4) : NULL;
    CHECK(end != NULL, "request %d: no complete head in %zu bytes", req, p->len);
    size_t head_len = (size_t)(end - p->buf) + 4;
    char head[1024];
    CHECK(head_len < sizeof head, "request %d: head of %zu bytes", req, head_len);
    memcpy(head, p->buf, head_len);
    head[head_len] = '\0';
    CHECK(strncmp(head, "HTTP/1.1 200 OK\r\n", 17) == 0, "request %d: %s", req, head);
    CHECK(!closing || strstr(head, "\r\nConnection: close\r\n"), "request %d answered during the shutdown without "
          "Connection: close: %s", req, head);
    size_t want = req >= 0 ? body_len(req) : 3;
    CHECK(content_length(head) == (long)want, "request %d: Content-Length %ld, want %zu", req, content_length(head), want);
    CHECK(p->len - head_len == want, "request %d: %zu body bytes, want %zu (truncated or extra)", req, p->len - head_len,
          want);
    if (req >= 0) {
        char x[32];
        snprintf(x, sizeof x, "\r\nX-Req: %d\r\n", req);
        CHECK(strstr(head, x) != NULL, "request %d got another's answer: %s", req, head);
        CHECK(t_check_pattern(p->buf + head_len, want, (uint64_t)req, 0) < 0, "request %d: body corrupted", req);
    } else {
        CHECK(memcmp(p->buf + head_len, "now", 3) == 0, "idle peer %d: body", i);
    }
}

/* tern_mgr_free is still the hard stop while a shutdown waits for a deferred
 * request: every connection gets its CLOSE inside it, the late respond returns
 * TERN_ECLOSED and releases its buffer. */
static void hard_stop_during_a_shutdown(void) {
    t_track_forget(); /* a new manager may have the old one's address and ids */
    long closes_before = t_track_count(&t_trk.closes_in_free);
    g_njobs = g_deferred = 0;
    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_http, NULL);
    CHECK(l != NULL, "tern_http_listen");
    tern_remote *r = tern_mgr_remote(m);
    CHECK(r != NULL, "tern_mgr_remote");
    int fd = t_raw_connect(tern_conn_local_port(l), 0);
    t_write_all(fd, "GET /r/0 HTTP/1.1\r\nHost: t\r\n\r\n", 32);
    T_POLL_UNTIL(m, g_deferred == 1, 10000, "the request deferred");
    CHECK_OK(tern_mgr_shutdown(m, 60000));
    for (int i = 0; i < 5; i++) t_poll(m, 10);
    CHECK(tern_mgr_conn_count(m) == 1, "%zu connections while the request waits", tern_mgr_conn_count(m));
    t_free(m);
    CHECK(t_track_count(&t_trk.closes_in_free) == closes_before + 1, "the waiting connection's CLOSE came in "
          "tern_mgr_free");
    long frees = atomic_load(&g_frees.frees);
    CHECK_RC(tern_http_respond(r, g_jobs[0].tok, 200, NULL, body_of(0)), TERN_ECLOSED);
    CHECK(atomic_load(&g_frees.frees) == frees + 1, "the late respond kept its buffer");
    tern_remote_free(r);
    close(fd);
    t_track_check_all_closed();
    printf("tern_mgr_free during a shutdown: the hard stop: ok\n");
}

static int idle_answered(void) {
    for (int i = 0; i < NIDLE; i++)
        if (g_peers[i].len < 40) return 0;
    return 1;
}

int main(void) {
    t_begin("test_http_shutdown", 90, 300);
    g_timeout_ms = t_scale(1000, 3000);
    t_track_init(NREQ + NIDLE + 16);
    t_need_fds(2 * (NREQ + NIDLE) + 64);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();
    g_raw_data = malloc(RAW_BYTES);
    CHECK(g_raw_data != NULL, "malloc");
    t_fill_pattern(g_raw_data, RAW_BYTES, 77, 0);

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_http, NULL);
    CHECK(l != NULL, "tern_http_listen");
    int port = tern_conn_local_port(l);
    int raw_port;
    t_listen(m, on_raw, NULL, &raw_port);
    pthread_t workers[NWORKERS], reader;
    for (int i = 0; i < NWORKERS; i++) {
        g_remotes[i] = tern_mgr_remote(m);
        CHECK(g_remotes[i] != NULL, "tern_mgr_remote");
        CHECK(pthread_create(&workers[i], NULL, worker_main, g_remotes[i]) == 0, "pthread_create");
    }

    /* Idle keep-alive connections: one answered request each, then silence. */
    for (int i = 0; i < NIDLE; i++) add_peer(port, "GET /now HTTP/1.1\r\nHost: t\r\n\r\n", 0, 0);
    /* The raw client, with a small receive buffer, so that much of the 12 MiB is still
     * queued in tern when the shutdown begins (the kernel takes a few MiB). */
    int raw_peer = add_peer(raw_port, NULL, 65536, 1);
    CHECK(pthread_create(&reader, NULL, reader_main, NULL) == 0, "pthread_create");
    T_POLL_UNTIL(m, idle_answered(), 10000, "the idle connections' first answers");
    /* 100 requests, one per connection, all deferred. */
    int first_req_peer = g_npeers;
    for (int i = 0; i < NREQ; i++) {
        char req[64];
        snprintf(req, sizeof req, "GET /r/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        add_peer(port, req, 0, 0);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tern_conn *cl = tern_http_connect(m, url, on_client, NULL);
    CHECK(cl != NULL, "tern_http_connect");
    char target[32];
    snprintf(target, sizeof target, "/r/%d", NREQ);
    CHECK_OK(tern_http_request(cl, "GET", target, NULL, NULL, 0));
    T_POLL_UNTIL(m, g_deferred == NREQ + 1, 20000, "every request deferred (%d)", g_deferred);

    /* Much of the raw connection's 12 MiB is still in tern's queue. */
    size_t raw_queued = tern_conn_queued(tern_conn_lookup(m, g_raw_conn));
    printf("raw queued at shutdown: %zu\n", raw_queued);
    CHECK(raw_queued > RAW_BYTES / 4, "only %zu bytes queued on the raw connection (id %llu)", raw_queued, (unsigned long long)g_raw_conn);

    /* The shutdown begins, outside any callback. */
    qsort(g_jobs, (size_t)g_njobs, sizeof *g_jobs, by_delay);
    CHECK_OK(tern_mgr_shutdown(m, (int)g_timeout_ms));
    g_go_ms = t_now_ms();
    atomic_store(&g_go, 1);
    CHECK_RC(tern_mgr_shutdown(m, -1), TERN_EINVAL);
    CHECK_OK(tern_mgr_shutdown(m, 60000)); /* a second call may only bring the deadline forward */
    /* New connections are refused from the call on: the listener is gone already. */
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        CHECK(rc != 0 && errno == ECONNREFUSED, "a connection after tern_mgr_shutdown: rc %d, %s", rc, strerror(errno));
        close(fd);
    }
    CHECK(tern_listen(m, "tcp://127.0.0.1:0", on_raw, NULL) == NULL && tern_last_error() == TERN_ECLOSED,
          "tern_listen after tern_mgr_shutdown");
    CHECK(tern_http_connect(m, url, on_client, NULL) == NULL && tern_last_error() == TERN_ECLOSED,
          "tern_http_connect after tern_mgr_shutdown");
    CHECK_RC(tern_http_request(cl, "GET", "/now", NULL, NULL, 0), TERN_ECLOSED);

    /* Poll until the manager says it is done. */
    int rc;
    double deadline = t_now_ms() + 20000;
    do {
        rc = t_poll_shutdown(m, 50);
        CHECK(t_now_ms() < deadline, "the shutdown did not finish");
    } while (rc != TERN_ECLOSED);
    double took = t_now_ms() - g_go_ms;
    CHECK_RC(tern_mgr_poll(m, 0), TERN_ECLOSED);
    CHECK(tern_mgr_conn_count(m) == 0, "%zu connections left", tern_mgr_conn_count(m));
    CHECK_RC(tern_remote_wakeup(g_remotes[0], 1, NULL), TERN_ECLOSED);
    for (int i = 0; i < NWORKERS; i++) pthread_join(workers[i], NULL);
    atomic_store(&g_reader_stop, 1);
    pthread_join(reader, NULL);

    /* What each client got. */
    int ok = 0, closed = 0;
    for (int i = 0; i < NREQ; i++) {
        peer *p = &g_peers[first_req_peer + i];
        if (g_rc[i] == TERN_OK) {
            check_answer(first_req_peer + i, i, 1);
            ok++;
        } else {
            CHECK(g_rc[i] == TERN_ECLOSED, "request %d: respond returned %d (%s)", i, g_rc[i], tern_strerror(g_rc[i]));
            CHECK(p->eof && p->len == 0, "request %d: respond refused, yet the client got %zu bytes", i, p->len);
            closed++;
        }
    }
    printf("%d answers delivered, %d refused after the deadline; done %.0f ms after tern_mgr_shutdown\n", ok, closed,
           took);
    CHECK(ok > 0, "no answer made it before the deadline");
    CHECK(t_small || closed > 0, "no answer came after the deadline: the test proves less than it says");
    CHECK(g_timed_out_errors == closed && g_other_errors == 0, "%d connections got ERROR \"shutdown timed out\", %d "
          "requests were refused; %d other errors", g_timed_out_errors, closed, g_other_errors);
    for (int i = 0; i < NIDLE; i++) check_answer(i, -1, 0);
    peer *rp = &g_peers[raw_peer];
    CHECK(rp->eof == 1 && rp->len == RAW_BYTES && t_check_pattern(rp->buf, rp->len, 77, 0) < 0,
          "raw connection: %zu of %d bytes, eof %d", rp->len, RAW_BYTES, rp->eof);
    CHECK(g_raw_errors == 0, "the raw connection got ERROR");
    CHECK(g_rc[NREQ] == TERN_OK && g_cl_msgs == 1 && g_cl_ok && g_cl_errors == 0 && g_cl_closed == 1,
          "tern's client: respond %d, %d messages (ok %d), %d errors, %d closes", g_rc[NREQ], g_cl_msgs, g_cl_ok,
          g_cl_errors, g_cl_closed);

    t_free(m);
    for (int i = 0; i < NWORKERS; i++) tern_remote_free(g_remotes[i]);
    for (int i = 0; i < g_npeers; i++) {
        if (g_peers[i].fd >= 0) close(g_peers[i].fd);
        free(g_peers[i].buf);
    }
    t_track_check_all_closed();
    CHECK(t_trk.closes_in_free == 0, "%ld CLOSE events came in tern_mgr_free, not in the shutdown", t_trk.closes_in_free);
    CHECK(atomic_load(&g_frees.frees) == atomic_load(&g_wraps), "%ld of %ld wrapped buffers released",
          atomic_load(&g_frees.frees), atomic_load(&g_wraps));
    free(g_raw_data);
    hard_stop_during_a_shutdown();
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes still alive");
    t_pass();
    return 0;
}
