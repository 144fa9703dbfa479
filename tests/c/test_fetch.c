/* tern_fetch against tern's own servers, on one loop unless said otherwise: bodies framed
 * by Content-Length, chunked and the close; HEAD, 204 and 304 without bodies; redirects
 * (relative, absolute, a loop stopped at N); pool reuse shown by a server that counts its
 * connections (1,000 requests over one keep-alive connection, and over 100 parallel
 * ones); a pooled connection the server closed retried once for GET, not for POST; the
 * bounded wait queue (TERN_EFULL); timeouts (a listener that never accepts, a server that
 * never answers, the total); cancels before connect, during the request and during the
 * body; refused and unresolvable hosts; fetches started from another thread through a
 * remote; client and server managers on two threads; https with a CA file, the pool
 * keeping TLS and plain connections apart; the manager freed with fetches pending.
 * Every callback's DONE runs exactly once; descriptors, connections, pooled
 * connections and pending fetches back to their baseline. Under valgrind too. */
#include "test_certs.h"

#include <pthread.h>

/* ---- a record per fetch: what its callback saw ------------------------------------ */
#define MAXF 4096
typedef struct {
    int used, done, code, status, heads, bodies;
    size_t body_len;
    char body[64];
    pid_t tid;
    tern_fetch_id id;
    int cancel_at_body; /* cancel on the first BODY */
} rec;
static rec recs[MAXF];
static int nrec;

static rec *new_rec(void) {
    CHECK(nrec < MAXF, "record slots");
    rec *r = &recs[nrec++];
    memset(r, 0, sizeof *r);
    r->used = 1;
    return r;
}

static void on_fetch(tern_mgr *m, tern_fetch_id id, int ev, int code, const tern_http_msg *resp, tern_str data,
                     void *user) {
    rec *r = user;
    CHECK(r->done == 0, "an event after DONE (fetch %llu, ev %d)", (unsigned long long)id, ev);
    r->tid = t_gettid();
    if (ev == TERN_FETCH_HEAD) {
        r->heads++;
        r->status = tern_http_status(resp);
    } else if (ev == TERN_FETCH_BODY) {
        r->bodies++;
        r->body_len += data.len;
        if (r->cancel_at_body) CHECK_OK(tern_fetch_cancel(m, id));
    } else if (ev == TERN_FETCH_DONE) {
        r->done++;
        r->code = code;
        if (code == TERN_OK) {
            r->status = tern_http_status(resp);
            tern_str b = tern_http_body(resp);
            if (r->heads == 0) r->body_len = b.len;
            snprintf(r->body, sizeof r->body, "%.*s", (int)b.len, b.ptr ? b.ptr : "");
        }
    }
}

/* ---- tern's server --------------------------------------------------------------- */
static int port, accepted, tport;
static tern_conn *pending_slow[64];
static int nslow;

static void on_server(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_ACCEPT) accepted++;
    if (ev == TERN_EV_CLOSE)
        for (int i = 0; i < nslow; i++)
            if (pending_slow[i] == c) pending_slow[i] = NULL;
    if (ev != TERN_EV_HTTP_MSG) return;
    tern_http_msg *h = ev_data;
    tern_str u = tern_http_uri(h);
    char uri[128];
    snprintf(uri, sizeof uri, "%.*s", (int)u.len, u.ptr);
    char loc[256];
    if (strcmp(uri, "/len") == 0) {
        tern_http_reply(c, 200, NULL, "hello", 5);
    } else if (strcmp(uri, "/chunked") == 0) {
        tern_http_begin(c, 200, NULL);
        tern_http_write(c, "chu", 3);
        tern_http_write(c, "nked", 4);
        tern_http_end(c);
    } else if (strcmp(uri, "/204") == 0) {
        tern_http_reply(c, 204, NULL, NULL, 0);
    } else if (strcmp(uri, "/304") == 0) {
        tern_http_reply(c, 304, "ETag: \"x\"\r\n", NULL, 0);
    } else if (strcmp(uri, "/rel") == 0) {
        tern_http_reply(c, 302, "Location: len\r\n", NULL, 0);
    } else if (strcmp(uri, "/abs") == 0) {
        snprintf(loc, sizeof loc, "Location: http://127.0.0.1:%d/chunked\r\n", port);
        tern_http_reply(c, 301, loc, NULL, 0);
    } else if (strcmp(uri, "/loop") == 0) {
        tern_http_reply(c, 302, "Location: /loop\r\n", NULL, 0);
    } else if (strcmp(uri, "/see") == 0) {
        tern_http_reply(c, 303, "Location: /method\r\n", NULL, 0);
    } else if (strcmp(uri, "/method") == 0) {
        tern_str mth = tern_http_method(h);
        tern_http_reply(c, 200, NULL, mth.ptr, mth.len);
    } else if (strcmp(uri, "/echo") == 0) {
        tern_str b = tern_http_body(h);
        tern_http_reply(c, 200, NULL, b.ptr, b.len);
    } else if (strcmp(uri, "/big") == 0) {
        /* Part of a large body, then nothing: the client cancels during the body. */
        static char piece[16384];
        tern_http_begin(c, 200, "Content-Length: 10000000\r\n");
        tern_http_write(c, piece, sizeof piece);
    } else if (strcmp(uri, "/slow") == 0) {
        if (nslow < 64) pending_slow[nslow++] = c; /* never answered */
    } else {
        tern_http_reply(c, 404, NULL, "no", 2);
    }
}

/* A raw server: a close-delimited body on the first request of each connection
 * ("/close"), or for "/once" an answer on the first request and, on the second,
 * the connection closed without an answer (a keep-alive connection the server
 * dropped just as it was reused). */
static int raw_requests;
static void on_raw(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev != TERN_EV_READ) return;
    tern_str *d = ev_data;
    const char *end = memmem(d->ptr, d->len, "\r\n\r\n", 4);
    if (end == NULL) return;
    size_t head = (size_t)(end - d->ptr) + 4;
    int first = (intptr_t)tern_conn_user(c) == 0;
    tern_conn_set_user(c, (void *)1);
    raw_requests++;
    if (memmem(d->ptr, head, "/close", 6)) {
        const char *r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited";
        tern_send(c, r, strlen(r));
        tern_close(c);
    } else if (first) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce";
        tern_send(c, r, strlen(r));
    } else {
        tern_close_now(c);
    }
    /* A body (the POST case) is consumed with its head. */
    tern_str cl = {0};
    const char *p = memmem(d->ptr, head, "Content-Length: ", 16);
    size_t blen = p ? (size_t)atoi(p + 16) : 0;
    (void)cl;
    tern_conn_consume(c, head + blen <= d->len ? head + blen : d->len);
}

static tern_mgr *m;

static rec *start(const char *method, const char *path, const int64_t *opts, tern_bytes *body) {
    char url[256];
    if (strncmp(path, "http", 4) == 0) snprintf(url, sizeof url, "%s", path);
    else snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    rec *r = new_rec();
    r->id = tern_fetch(m, method, url, NULL, body, opts, on_fetch, r);
    CHECK(r->id != 0, "tern_fetch %s %s: %s", method, url, tern_strerror(tern_last_error()));
    return r;
}

static void wait_done(rec *r, double ms) {
    double until = t_now_ms() + t_bound_ms(ms);
    while (!r->done && t_now_ms() < until) t_poll(m, 10);
    CHECK(r->done == 1, "fetch %llu done within %.0f ms", (unsigned long long)r->id, ms);
}

static rec *get(const char *path, const int64_t *opts) {
    rec *r = start("GET", path, opts, NULL);
    wait_done(r, 5000);
    return r;
}

static void expect(rec *r, int code, int status, const char *body, const char *what) {
    CHECK(r->done == 1 && r->code == code, "%s: DONE once with %s (got %d: %s)", what, tern_strerror(code), r->code,
          tern_strerror(r->code));
    if (code == TERN_OK) {
        CHECK(r->status == status, "%s: status %d (got %d)", what, status, r->status);
        if (body) CHECK(strcmp(r->body, body) == 0, "%s: body '%s' (got '%s')", what, body, r->body);
    }
    printf("ok: %s\n", what);
}

static size_t stat_pending(tern_mgr *mm, size_t *conns, size_t *idle) {
    size_t p = 0;
    CHECK_OK(tern_fetch_stats(mm, &p, conns, idle));
    return p;
}

static void framing_and_redirects(void) {
    expect(get("/len", NULL), TERN_OK, 200, "hello", "Content-Length body");
    expect(get("/chunked", NULL), TERN_OK, 200, "chunked", "chunked body");
    rec *h = start("HEAD", "/len", NULL, NULL);
    wait_done(h, 5000);
    expect(h, TERN_OK, 200, "", "HEAD: no body");
    expect(get("/204", NULL), TERN_OK, 204, "", "204: no body");
    expect(get("/304", NULL), TERN_OK, 304, "", "304: no body");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/close", tport);
    expect(get(url, NULL), TERN_OK, 200, "close-delimited", "body delimited by the close");
    int64_t follow[] = {TERN_FETCH_FOLLOW, 3, 0};
    expect(get("/rel", follow), TERN_OK, 200, "hello", "relative redirect followed");
    expect(get("/abs", follow), TERN_OK, 200, "chunked", "absolute redirect followed");
    expect(get("/loop", follow), TERN_EREDIRECTS, 0, NULL, "a redirect loop stopped at N");
    expect(get("/rel", NULL), TERN_OK, 302, "", "redirects not followed by default");
    rec *see = start("POST", "/see", follow, tern_bytes_copy("x", 1));
    wait_done(see, 5000);
    expect(see, TERN_OK, 200, "GET", "303 after POST becomes a GET");
    rec *e = start("POST", "/echo", NULL, tern_bytes_copy("ping", 4));
    wait_done(e, 5000);
    expect(e, TERN_OK, 200, "ping", "POST body sent");
    int64_t small[] = {TERN_FETCH_MAX_SIZE, 3, 0};
    expect(get("/len", small), TERN_EFULL, 0, NULL, "a body past TERN_FETCH_MAX_SIZE");
    /* Streamed: HEAD, BODY pieces, DONE. */
    int64_t stream[] = {TERN_FETCH_STREAM, 1, 0};
    rec *s = get("/chunked", stream);
    CHECK(s->heads == 1 && s->body_len == 7 && s->bodies >= 1, "streamed: one HEAD, 7 body bytes");
    expect(s, TERN_OK, 200, "", "streamed response");
}

static void pool_reuse(void) {
    int before = accepted;
    int n = (int)t_scale(1000, 50);
    for (int i = 0; i < n; i++) {
        rec *r = get("/len", NULL);
        CHECK(r->code == TERN_OK && r->status == 200, "sequential request %d", i);
        nrec--; /* reuse the slot */
    }
    CHECK(accepted - before <= 1, "%d sequential requests over one keep-alive connection (%d accepted)", n,
          accepted - before);
    printf("ok: %d sequential requests, %d connection(s)\n", n, accepted - before);

    before = accepted;
    int par = (int)t_scale(100, 10), total = (int)t_scale(1000, 40);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_IDLE_PER_HOST, par));
    int started = 0, finished = 0;
    int base = nrec;
    while (finished < total) {
        while (started < total && started - finished < par) {
            start("GET", "/len", NULL, NULL);
            started++;
        }
        t_poll(m, 10);
        finished = 0;
        for (int i = base; i < nrec; i++) finished += recs[i].done;
    }
    for (int i = base; i < nrec; i++) CHECK(recs[i].done == 1 && recs[i].code == TERN_OK, "parallel request %d", i);
    nrec = base;
    size_t conns, idle;
    CHECK(stat_pending(m, &conns, &idle) == 0, "no fetch pending");
    CHECK(accepted - before <= par && (int)idle <= par, "%d requests, %d in parallel: %d connections, %zu idle kept", total,
          par, accepted - before, idle);
    printf("ok: %d requests %d in parallel over %d connections (%zu idle kept)\n", total, par, accepted - before, idle);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_IDLE_PER_HOST, 32));
}

static void retry_once(void) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/once", tport);
    expect(get(url, NULL), TERN_OK, 200, "once", "first request on a connection");
    raw_requests = 0;
    expect(get(url, NULL), TERN_OK, 200, "once", "GET on a pooled connection the server dropped: retried once");
    CHECK(raw_requests == 2, "the GET went out twice (%d)", raw_requests);
    raw_requests = 0;
    rec *p = start("POST", url, NULL, tern_bytes_copy("abc", 3));
    wait_done(p, 5000);
    CHECK(p->code != TERN_OK && raw_requests == 1, "POST on a dropped pooled connection is not retried (%s, %d sent)",
          tern_strerror(p->code), raw_requests);
    printf("ok: POST not retried: %s\n", tern_strerror(p->code));
}

static void queue_bound(void) {
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_CONNS_PER_HOST, 1));
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_QUEUED_PER_HOST, 2));
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/slow", port); /* another origin than 127.0.0.1 */
    rec *a = start("GET", url, NULL, NULL), *b = start("GET", url, NULL, NULL), *c = start("GET", url, NULL, NULL);
    rec *d = new_rec();
    CHECK(tern_fetch(m, "GET", url, NULL, NULL, NULL, on_fetch, d) == 0 && tern_last_error() == TERN_EFULL,
          "a fetch past the wait queue: TERN_EFULL");
    d->done = 1; /* never started: no callback */
    t_poll(m, 50);
    size_t pending = stat_pending(m, NULL, NULL);
    CHECK(pending == 3, "three pending (%zu)", pending);
    CHECK_OK(tern_fetch_cancel(m, b->id)); /* queued */
    CHECK(b->done == 0, "DONE never runs inside tern_fetch_cancel");
    CHECK_OK(tern_fetch_cancel(m, a->id)); /* during the request */
    CHECK_RC(tern_fetch_cancel(m, a->id), TERN_ECLOSED);
    t_poll(m, 10);
    CHECK(a->done == 1 && a->code == TERN_ECANCELED && b->done == 1 && b->code == TERN_ECANCELED,
          "cancelled while queued and during the request: DONE once with TERN_ECANCELED");
    /* c got the place a's connection left. */
    CHECK_OK(tern_fetch_cancel(m, c->id));
    t_poll(m, 10);
    CHECK(c->done == 1 && c->code == TERN_ECANCELED, "the waiter cancelled too");
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_CONNS_PER_HOST, 256));
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_QUEUED_PER_HOST, 1024));
    printf("ok: wait queue bounded (TERN_EFULL), cancels while queued and during the request\n");
}

static void timeouts_and_failures(void) {
    /* A listener that never accepts, its backlog full: the connect times out. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 0) == 0, "a listener");
    int lport = t_raw_local_port(lfd);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        connect(fill[i], (struct sockaddr *)&to, sizeof to);
    }
    t_sleep_ms(50);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", lport);
    int64_t ct[] = {TERN_FETCH_CONNECT_TIMEOUT_MS, 300, 0};
    double t0 = t_now_ms();
    rec *r = start("GET", url, ct, NULL);
    wait_done(r, 5000);
    expect(r, TERN_ETIMEDOUT, 0, NULL, "a listener that never accepts: connect timeout");
    CHECK(t_now_ms() - t0 >= 250, "not before its time");
    rec *cb = start("GET", url, NULL, NULL);
    CHECK_OK(tern_fetch_cancel(m, cb->id));
    t_poll(m, 10);
    expect(cb, TERN_ECANCELED, 0, NULL, "cancel before connect");
    for (int i = 0; i < 4; i++) close(fill[i]);
    close(lfd);

    int64_t rt[] = {TERN_FETCH_RESPONSE_TIMEOUT_MS, 300, 0};
    t0 = t_now_ms();
    expect(get("/slow", rt), TERN_ETIMEDOUT, 0, NULL, "a server that never answers: response timeout");
    CHECK(t_now_ms() - t0 >= 250, "not before its time");
    int64_t tt[] = {TERN_FETCH_TIMEOUT_MS, 300, 0};
    expect(get("/slow", tt), TERN_ETIMEDOUT, 0, NULL, "the total timeout");

    int64_t stream[] = {TERN_FETCH_STREAM, 1, 0};
    rec *big = start("GET", "/big", stream, NULL);
    big->cancel_at_body = 1;
    wait_done(big, 5000);
    CHECK(big->heads == 1 && big->bodies >= 1, "body pieces came before the cancel");
    expect(big, TERN_ECANCELED, 0, NULL, "cancel during the body");

    snprintf(url, sizeof url, "http://127.0.0.1:%d/", t_closed_port());
    expect(get(url, NULL), TERN_ECONNREFUSED, 0, NULL, "refused");
    expect(get("http://name-that-does-not-exist.invalid/", NULL), TERN_ENAME, 0, NULL, "a name not found");
    rec *bad = new_rec();
    CHECK(tern_fetch(m, "GET", "ftp://127.0.0.1/", NULL, NULL, NULL, on_fetch, bad) == 0 &&
              tern_last_error() == TERN_EINVAL,
          "a URL that is not http(s): TERN_EINVAL, no callback");
    bad->done = 1;
}

/* ---- fetches from another thread -------------------------------------------------- */
static tern_remote *remote;
#define NREMOTE 50
static rec *remote_recs;
static void *remote_thread(void *arg) {
    (void)arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/len", port);
    for (int i = 0; i < NREMOTE; i++) {
        tern_fetch_id id;
        while ((id = tern_remote_fetch(remote, "GET", url, NULL, NULL, NULL, on_fetch, &remote_recs[i])) == 0)
            CHECK(tern_last_error() == TERN_EFULL, "tern_remote_fetch: %s", tern_strerror(tern_last_error()));
    }
    return NULL;
}

static void from_a_remote(void) {
    remote = tern_mgr_remote(m);
    remote_recs = &recs[nrec];
    for (int i = 0; i < NREMOTE; i++) new_rec();
    pthread_t th;
    pthread_create(&th, NULL, remote_thread, NULL);
    pthread_join(th, NULL);
    double until = t_now_ms() + t_bound_ms(10000);
    int done = 0;
    while (done < NREMOTE && t_now_ms() < until) {
        t_poll(m, 10);
        done = 0;
        for (int i = 0; i < NREMOTE; i++) done += remote_recs[i].done;
    }
    for (int i = 0; i < NREMOTE; i++)
        CHECK(remote_recs[i].done == 1 && remote_recs[i].code == TERN_OK && remote_recs[i].tid == t_gettid(),
              "remote fetch %d done once, on the loop thread", i);
    tern_remote_free(remote);
    printf("ok: %d fetches started from another thread\n", NREMOTE);
}

/* ---- a server manager on its own thread ----------------------------------------- */
static volatile int server_stop;
static int server2_port;
static void *server_thread(void *arg) {
    (void)arg;
    tern_mgr *s = tern_mgr_new();
    tern_conn *l = tern_http_listen(s, "http://127.0.0.1:0", on_server, NULL);
    server2_port = tern_conn_local_port(l);
    while (!server_stop) tern_mgr_poll(s, 20);
    tern_mgr_free(s);
    return NULL;
}

static void two_threads(void) {
    pthread_t th;
    server2_port = 0;
    pthread_create(&th, NULL, server_thread, NULL);
    while (__atomic_load_n(&server2_port, __ATOMIC_SEQ_CST) == 0) t_sleep_ms(5);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/len", server2_port);
    int n = (int)t_scale(1000, 30);
    for (int i = 0; i < n; i++) {
        rec *r = get(url, NULL);
        CHECK(r->code == TERN_OK && r->status == 200, "request %d to the other thread's server", i);
        nrec--;
    }
    server_stop = 1;
    pthread_join(th, NULL);
    printf("ok: %d requests to a server manager on another thread\n", n);
}

/* ---- https -------------------------------------------------------------------------- */

static void https(void) {
    make_cert("fetch");
    tern_tls_config *s = tern_tls_config_new_server(), *c = tern_tls_config_new_client();
    CHECK_OK(tern_tls_config_add_cert_file(s, cert, key));
    CHECK_OK(tern_tls_config_add_ca_file(c, ca));
    CHECK_OK(tern_mgr_set_tls(m, s));
    CHECK_OK(tern_mgr_set_tls(m, c));
    tern_tls_config_release(s);
    tern_tls_config_release(c);
    tern_conn *l = tern_http_listen(m, "https://127.0.0.1:0", on_server, NULL);
    CHECK(l != NULL, "an https listener");
    int sport = tern_conn_local_port(l);
    char url[128];
    int before = accepted;
    snprintf(url, sizeof url, "https://localhost:%d/len", sport);
    expect(get(url, NULL), TERN_OK, 200, "hello", "https with a CA file");
    expect(get(url, NULL), TERN_OK, 200, "hello", "https again, over the pooled TLS connection");
    CHECK(accepted - before == 1, "two https requests over one pooled TLS connection (%d)", accepted - before);
    /* Plain HTTP to the same host and port must not get the TLS connection. */
    snprintf(url, sizeof url, "http://localhost:%d/len", sport);
    rec *plain = get(url, NULL);
    CHECK(plain->code != TERN_OK, "plain http to the TLS port fails (the pool kept them apart): %s",
          tern_strerror(plain->code));
    printf("ok: the pool keeps TLS and plain connections apart\n");
    tern_close(l);
    remove_cert();
}

static void freed_with_pending(void) {
    /* A manager freed with fetches connecting, waiting for an answer, and queued. */
    tern_mgr *saved = m;
    m = tern_mgr_new();
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_server, NULL);
    int p2 = tern_conn_local_port(l);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_MAX_CONNS_PER_HOST, 2));
    int base = nrec, saved_port = port;
    port = p2;
    for (int i = 0; i < 5; i++) start("GET", "/slow", NULL, NULL);
    port = saved_port;
    for (int i = 0; i < 20; i++) t_poll(m, 5);
    nslow = 0;
    /* And one posted from a remote that the loop never polled for. */
    tern_remote *r = tern_mgr_remote(m);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/len", p2);
    rec *late = new_rec();
    CHECK(tern_remote_fetch(r, "GET", url, NULL, NULL, NULL, on_fetch, late) != 0, "a remote fetch posted");
    tern_mgr_free(m);
    CHECK(late->done == 1 && late->code == TERN_ECLOSED, "a remote fetch still queued at tern_mgr_free: DONE once, "
          "TERN_ECLOSED (%d, %s)", late->done, tern_strerror(late->code));
    CHECK(tern_remote_fetch(r, "GET", url, NULL, NULL, NULL, on_fetch, late) == 0 && tern_last_error() == TERN_ECLOSED,
          "tern_remote_fetch after the free: TERN_ECLOSED, no callback");
    tern_remote_free(r);
    for (int i = base; i < base + 5; i++)
        CHECK(recs[i].done == 1 && recs[i].code == TERN_ECLOSED, "fetch %d ended by tern_mgr_free with TERN_ECLOSED (%d)",
              i - base, recs[i].code);
    m = saved;
    printf("ok: tern_mgr_free ends pending fetches once each\n");
}

int main(void) {
    t_begin("test_fetch", 120, 400);
    int fds0 = t_count_fds();
    m = tern_mgr_new();
    CHECK_OK(tern_mgr_set(m, TERN_OPT_DEFER_TIMEOUT_MS, 60000));
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_IDLE_TIMEOUT_MS, (int64_t)t_bound_ms(1000)));
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_server, NULL);
    tern_conn *raw = tern_listen(m, "tcp://127.0.0.1:0", on_raw, NULL);
    CHECK(l && raw, "listeners");
    port = tern_conn_local_port(l);
    tport = tern_conn_local_port(raw);
    size_t base_conns = tern_mgr_conn_count(m);

    framing_and_redirects();
    pool_reuse();
    retry_once();
    queue_bound();
    timeouts_and_failures();
    from_a_remote();
    two_threads();
    https();

    for (int i = 0; i < nrec; i++) CHECK(!recs[i].used || recs[i].done == 1, "record %d: DONE exactly once", i);
    /* Requests the server never answered end with their connections; idle pooled
     * connections close after TERN_OPT_FETCH_IDLE_TIMEOUT_MS; the servers' ends follow. */
    for (int i = 0; i < nslow; i++)
        if (pending_slow[i]) tern_close_now(pending_slow[i]);
    double until = t_now_ms() + t_bound_ms(8000);
    size_t conns = 1, idle = 1, pending = 1, live = 0;
    while (t_now_ms() < until) {
        t_poll(m, 20);
        pending = stat_pending(m, &conns, &idle);
        live = tern_mgr_conn_count(m);
        if (pending == 0 && conns == 0 && live == base_conns) break;
    }
    CHECK(pending == 0 && conns == 0 && idle == 0 && live == base_conns,
          "back to baseline: %zu pending, %zu pooled (%zu idle), %zu connections (baseline %zu)", pending, conns, idle,
          live, base_conns);
    printf("ok: no fetch pending, no pooled connection, connections back to the listeners\n");
    nslow = 0;
    freed_with_pending();
    t_free(m);
    int fds1 = t_count_fds();
    CHECK(fds1 == fds0, "descriptors back to baseline (%d -> %d)", fds0, fds1);
    t_pass();
    return 0;
}
