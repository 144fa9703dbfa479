/* test_wakeups: whatever another thread posts wakes a loop that sleeps in a long poll.
 *
 * Every other test polls with a timeout of 10 ms or less, so a lost wakeup (a post that
 * does not interrupt epoll_wait) only costs them a few milliseconds and goes unseen.
 * Here the loop thread always calls tern_mgr_poll(m, 5000). A poster thread waits
 * until the loop thread is blocked in epoll_wait (read from /proc/self/task/TID/syscall,
 * no sleeping and hoping), then posts one thing; the time from the post to the event
 * that shows it was handled must stay under 300 ms (1.2 s under valgrind), far from
 * the 5 s a lost wakeup costs. Each case runs 20 times (5 under valgrind) with the loop
 * asleep, and as many times posted without waiting (the post may land just before the
 * loop goes to sleep: it must not be lost either):
 *   - tern_remote_send (WRITE on the connection), tern_remote_wakeup with bytes and
 *     without (WAKEUP), tern_remote_call (the function runs), tern_remote_close (the
 *     peer sees the end; CLOSE follows once it closes too);
 *   - tern_http_respond, and tern_http_respond_begin / _write / _end of a streamed answer
 *     (WRITE on the HTTP connection, the client reads the bytes);
 *   - a timer added by a posted call (30 ms) fires at 30 ms, not at the poll's 5 s;
 *   - tern_connect to "localhost": the name is resolved off the loop thread, whose
 *     answer must wake the loop (CONNECT follows at once).
 * First, an idle tern_mgr_poll(m, 300) must really sleep ~300 ms: a loop that wakes up
 * on its own all the time would hide lost wakeups.
 *   - tern_remote_ws_send to one WebSocket connection and tern_remote_ws_publish to a
 *     topic it subscribed to (WRITE on it; the client reads the frame).
 */
#include "common.h"

#define POLL_MS 5000

static tern_mgr *g_m;
static tern_remote *g_r;
static pid_t g_loop_tid;
static long g_rounds;

/* what the current case waits for */
static int g_want_ev;            /* event on g_want_id that shows the post was handled */
static tern_conn_id g_want_id;
static double g_handled_ms;      /* when it was seen (0: not yet) */

static void handled_now(void) {
    if (g_handled_ms == 0) g_handled_ms = t_now_ms();
}

/* ---- the server side ---------------------------------------------------- */

static tern_conn_id g_last_accepted;
static tern_conn_id g_ws_id; /* the server side of the WebSocket connection */
static tern_http_token g_tok;
static int g_ntok;

static int is_ws_path(tern_str u) {
    return u.len == 3 && memcmp(u.ptr, "/ws", 3) == 0;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) g_last_accepted = rec.id;
    if (ev == TERN_EV_ERROR) FAIL("ERROR on id %llu: %s", (unsigned long long)rec.id, (char *)ev_data);
    if (ev == TERN_EV_READ) FAIL("the raw server received bytes");
    if (ev == TERN_EV_HTTP_MSG && is_ws_path(tern_http_uri(ev_data))) {
        CHECK_OK(tern_ws_upgrade(c, ev_data, NULL));
    } else if (ev == TERN_EV_WS_OPEN) {
        CHECK_OK(tern_ws_subscribe(c, "wake"));
        g_ws_id = rec.id;
    } else if (ev == TERN_EV_WS_MSG || ev == TERN_EV_WS_CTL) {
        FAIL("the WebSocket client sends nothing");
    } else if (ev == TERN_EV_HTTP_MSG) {
        g_tok = tern_http_defer(c, ev_data);
        CHECK(g_tok.conn != 0, "tern_http_defer: %s", tern_strerror(tern_last_error()));
        g_ntok++;
    }
    if (ev == g_want_ev && rec.id == g_want_id) handled_now();
}

static void on_call(tern_mgr *m, void *user) {
    CHECK(m == g_m && user == &g_rounds, "tern_remote_call: wrong manager or user pointer");
    handled_now();
}

static void on_timer(void *user) {
    (void)user;
    handled_now();
}

static void on_call_add_timer(tern_mgr *m, void *user) {
    (void)user;
    CHECK(tern_timer_add(m, 30, 0, on_timer, NULL) != 0, "tern_timer_add from a posted call");
}

/* ---- cases --------------------------------------------------------------- */

enum { C_SEND = 1, C_WAKEUP, C_WAKEUP_EMPTY, C_CALL, C_CLOSE, C_RESPOND, C_BEGIN, C_WRITE, C_END,
       C_TIMER, C_WS_SEND, C_WS_PUBLISH, C_COUNT };
static const char *const k_names[C_COUNT] = {
    "", "tern_remote_send", "tern_remote_wakeup", "tern_remote_wakeup(NULL)", "tern_remote_call",
    "tern_remote_close", "tern_http_respond", "tern_http_respond_begin", "tern_http_respond_write",
    "tern_http_respond_end", "a timer added by tern_remote_call", "tern_remote_ws_send",
    "tern_remote_ws_publish"};

static tern_conn_id g_peer_id; /* the raw peer sends and wakeups go to */
static int g_peer_fd;
static int g_close_fd = -1; /* the peer of the connection C_CLOSE closes */

/* Runs on the poster thread. */
static void post(tern_remote *r, int k) {
    switch (k) {
    case C_SEND: CHECK_OK(tern_remote_send(r, g_peer_id, tern_bytes_copy("s", 1))); break;
    case C_WAKEUP: CHECK_OK(tern_remote_wakeup(r, g_peer_id, tern_bytes_copy("w", 1))); break;
    case C_WAKEUP_EMPTY: CHECK_OK(tern_remote_wakeup(r, g_peer_id, NULL)); break;
    case C_CALL: CHECK_OK(tern_remote_call(r, on_call, &g_rounds)); break;
    case C_CLOSE: CHECK_OK(tern_remote_close(r, g_want_id)); break;
    case C_RESPOND:
        CHECK_OK(tern_http_respond(r, g_tok, 200, NULL, tern_bytes_copy("whole\n", 6)));
        break;
    case C_BEGIN: CHECK_OK(tern_http_respond_begin(r, g_tok, 200, NULL)); break;
    case C_WRITE: CHECK_OK(tern_http_respond_write(r, g_tok, tern_bytes_copy("piece\n", 6))); break;
    case C_END: CHECK_OK(tern_http_respond_end(r, g_tok)); break;
    case C_TIMER: CHECK_OK(tern_remote_call(r, on_call_add_timer, NULL)); break;
    case C_WS_SEND: CHECK_OK(tern_remote_ws_send(r, g_ws_id, TERN_WS_TEXT, tern_bytes_copy("ws", 2))); break;
    case C_WS_PUBLISH:
        CHECK_OK(tern_remote_ws_publish(r, "wake", TERN_WS_TEXT, tern_bytes_copy("pub", 3)));
        break;
    default: FAIL("unknown case %d", k);
    }
}

static atomic_int g_order;      /* 0: nothing to do; k: post case k; -1: quit */
static atomic_int g_wait_asleep; /* post only once the loop sleeps in epoll_wait */
static atomic_llong g_posted_us; /* when the last post was made */
static atomic_llong g_peer_eof_us; /* C_CLOSE: when the peer saw the end */

static void *poster_main(void *arg) {
    (void)arg;
    tern_remote *r = tern_remote_clone(g_r);
    CHECK(r != NULL, "tern_remote_clone");
    for (;;) {
        int k;
        while ((k = atomic_load(&g_order)) == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        if (k < 0) break;
        if (atomic_load(&g_wait_asleep)) t_wait_asleep(g_loop_tid, 5000, k_names[k]);
        atomic_store(&g_posted_us, (long long)(t_now_ms() * 1000.0));
        post(r, k);
        if (k == C_CLOSE) {
            /* A graceful close: tern sends its FIN and waits for the peer's before
             * CLOSE, so what shows the post was handled is the peer seeing the end. */
            CHECK(t_wait_peer_close(g_close_fd, (int)t_bound_ms(3.0 * POLL_MS), NULL) >= 0,
                  "tern_remote_close: the peer saw no end");
            atomic_store(&g_peer_eof_us, (long long)(t_now_ms() * 1000.0));
            close(g_close_fd);
        }
        atomic_store(&g_order, 0);
    }
    tern_remote_free(r);
    return NULL;
}

/* ---- the loop thread's side of one case ----------------------------------- */

static int g_http_port, g_tcp_port;
static int g_http_fd = -1;
static int g_ws_fd = -1; /* the WebSocket client: a raw socket that did the handshake */

static void expect_ev(int ev, tern_conn_id id) {
    g_want_ev = ev;
    g_want_id = id;
    g_handled_ms = 0;
}

/* Makes what case k posts to, and says which event shows it was handled. */
static void setup(int k) {
    switch (k) {
    case C_SEND: expect_ev(TERN_EV_WRITE, g_peer_id); break;
    case C_WAKEUP:
    case C_WAKEUP_EMPTY: expect_ev(TERN_EV_WAKEUP, g_peer_id); break;
    case C_CALL:
    case C_TIMER: expect_ev(0, 0); break;
    case C_CLOSE: {
        long accepted = t_track_count(&t_trk.accepts);
        g_close_fd = t_raw_connect(g_tcp_port, 0);
        T_POLL_UNTIL(g_m, t_track_count(&t_trk.accepts) == accepted + 1, 5000, "accept for close");
        expect_ev(TERN_EV_CLOSE, g_last_accepted);
        break;
    }
    case C_RESPOND:
    case C_BEGIN: {
        int ntok = g_ntok;
        const char *req = "GET /d HTTP/1.1\r\nHost: t\r\n\r\n";
        t_write_all(g_http_fd, req, strlen(req));
        T_POLL_UNTIL(g_m, g_ntok == ntok + 1, 5000, "request deferred");
        expect_ev(TERN_EV_WRITE, g_tok.conn);
        break;
    }
    case C_WRITE:
    case C_END: expect_ev(TERN_EV_WRITE, g_tok.conn); break;
    case C_WS_SEND:
    case C_WS_PUBLISH: expect_ev(TERN_EV_WRITE, g_ws_id); break;
    default: FAIL("unknown case %d", k);
    }
}

/* Reads what the case made the server send (so every round starts clean). */
static void drain_client(int k) {
    char buf[4096];
    const char *want = NULL;
    if (k == C_SEND) want = "s";
    if (k == C_RESPOND || k == C_END) want = k == C_RESPOND ? "whole\n" : "0\r\n\r\n";
    if (k == C_BEGIN) want = "\r\n\r\n";
    if (k == C_WRITE) want = "piece\n";
    if (k == C_WS_SEND) want = "\x81\x02ws";
    if (k == C_WS_PUBLISH) want = "\x81\x03pub";
    if (want == NULL) return;
    int fd = k == C_SEND ? g_peer_fd : k >= C_WS_SEND ? g_ws_fd : g_http_fd;
    size_t have = 0;
    while (have < strlen(want) || memmem(buf, have, want, strlen(want)) == NULL) {
        CHECK(have < sizeof buf - 1, "%s: %zu bytes without \"%s\"", k_names[k], have, want);
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "%s: the client got %s after %zu bytes", k_names[k], n == 0 ? "EOF" : strerror(errno),
              have);
        have += (size_t)n;
    }
}

/* Reads the 101 (RFC 6455's sample key, so its accept value is known). */
static void read_ws_handshake(void) {
    char buf[1024];
    size_t have = 0;
    while (memmem(buf, have, "\r\n\r\n", 4) == NULL) {
        CHECK(have < sizeof buf, "the 101 is longer than %zu bytes", sizeof buf);
        ssize_t n = recv(g_ws_fd, buf + have, sizeof buf - have, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "the WebSocket client got %s before the 101", n == 0 ? "EOF" : strerror(errno));
        have += (size_t)n;
    }
    CHECK(have > 12 && memcmp(buf, "HTTP/1.1 101", 12) == 0, "no 101: %.*s", (int)have, buf);
    CHECK(memmem(buf, have, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) != NULL, "wrong accept: %.*s", (int)have, buf);
    CHECK(memmem(buf, have, "\r\n\r\n", 4) == buf + have - 4, "bytes after the 101");
}

static double g_worst[C_COUNT];

static void run_case(int k, int asleep) {
    setup(k);
    atomic_store(&g_wait_asleep, asleep);
    atomic_store(&g_order, k);
    double end = t_now_ms() + t_bound_ms(3.0 * POLL_MS);
    while (g_handled_ms == 0) {
        if (t_now_ms() > end)
            FAIL("%s: posted but never handled (three tern_mgr_poll(m, %d) went by)", k_names[k], POLL_MS);
        t_poll(g_m, POLL_MS);
    }
    while (atomic_load(&g_order) != 0) t_sleep_ms(1); /* the poster returns from the call */
    double posted = (double)atomic_load(&g_posted_us) / 1000.0;
    double done = k == C_CLOSE ? (double)atomic_load(&g_peer_eof_us) / 1000.0 : g_handled_ms;
    double latency = done - posted, bound = t_bound_ms(300);
    if (k == C_TIMER) {
        CHECK(latency >= 25, "a 30 ms timer added by a posted call fired after %.1f ms", latency);
        bound += 30;
    }
    CHECK(latency < bound,
          "%s%s: handled %.0f ms after it was posted, while tern_mgr_poll(m, %d) was waiting "
          "(bound %.0f ms): a lost wakeup",
          k_names[k], asleep ? " to a sleeping loop" : "", latency, POLL_MS, bound);
    if (latency > g_worst[k]) g_worst[k] = latency;
    drain_client(k);
}

/* A name to resolve: the resolver thread's answer must wake the loop. */
static void resolve_case(void) {
    char url[64];
    snprintf(url, sizeof url, "tcp://localhost:%d", g_tcp_port);
    long accepted = t_track_count(&t_trk.accepts);
    double t0 = t_now_ms();
    tern_conn *c = tern_connect(g_m, url, on_event, NULL);
    CHECK(c != NULL, "tern_connect(%s): %s", url, tern_strerror(tern_last_error()));
    tern_conn_id id = tern_conn_get_id(c);
    expect_ev(TERN_EV_CONNECT, id);
    double end = t0 + t_bound_ms(3.0 * POLL_MS);
    while (g_handled_ms == 0) {
        if (t_now_ms() > end) FAIL("tern_connect(%s): no CONNECT", url);
        t_poll(g_m, POLL_MS);
    }
    double latency = g_handled_ms - t0;
    CHECK(latency < t_bound_ms(1000),
          "tern_connect(%s): CONNECT %.0f ms later while tern_mgr_poll(m, %d) was waiting: "
          "the resolver's answer did not wake the loop",
          url, latency, POLL_MS);
    T_POLL_UNTIL(g_m, t_track_count(&t_trk.accepts) == accepted + 1, 5000, "the server side");
    tern_conn_id srv = g_last_accepted;
    CHECK_OK(tern_close(c));
    T_POLL_UNTIL(g_m, t_track_get(id).closed && t_track_get(srv).closed, 5000, "resolved connection closes");
}

int main(void) {
    t_begin("test_wakeups", 120, 300);
    g_rounds = t_scale(20, 5);
    t_track_init(1024);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_loop_tid = t_gettid();

    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    t_listen(g_m, on_event, NULL, &g_tcp_port);
    tern_conn *hl = tern_http_listen(g_m, "http://127.0.0.1:0", on_event, NULL);
    CHECK(hl != NULL, "tern_http_listen: %s", tern_strerror(tern_last_error()));
    g_http_port = tern_conn_local_port(hl);
    g_r = tern_mgr_remote(g_m);
    CHECK(g_r != NULL, "tern_mgr_remote");
    g_peer_fd = t_raw_connect(g_tcp_port, 0);
    T_POLL_UNTIL(g_m, g_last_accepted != 0, 5000, "the raw peer accepted");
    g_peer_id = g_last_accepted;
    g_http_fd = t_raw_connect(g_http_port, 0);
    g_ws_fd = t_raw_connect(g_http_port, 0);
    const char *hs = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    t_write_all(g_ws_fd, hs, strlen(hs));
    T_POLL_UNTIL(g_m, g_ws_id != 0, 5000, "the WebSocket handshake");
    read_ws_handshake();

    /* an idle loop sleeps for the whole timeout (or lost wakeups could not be seen) */
    T_POLL_UNTIL(g_m, t_track_count(&t_trk.accepts) == 3, 5000, "the HTTP clients accepted");
    for (int i = 0; i < 3; i++) t_poll(g_m, 10); /* settle */
    double t0 = t_now_ms();
    int n = t_poll(g_m, 300);
    double idle = t_now_ms() - t0;
    CHECK(n == 0 && idle >= 250, "an idle tern_mgr_poll(m, 300) returned after %.0f ms with %d events",
          idle, n);

    pthread_t th;
    CHECK(pthread_create(&th, NULL, poster_main, NULL) == 0, "pthread_create");
    for (int k = 1; k < C_COUNT; k++) {
        if (k == C_WRITE || k == C_END) continue; /* they follow C_BEGIN */
        for (long i = 0; i < 2 * g_rounds; i++) {
            int asleep = i % 2 == 0;
            run_case(k, asleep);
            if (k == C_BEGIN) {
                run_case(C_WRITE, asleep);
                run_case(C_END, asleep);
            }
        }
    }
    for (int i = 0; i < 3; i++) resolve_case();
    atomic_store(&g_order, -1);
    pthread_join(th, NULL);
    for (int k = 1; k < C_COUNT; k++) printf("%-36s worst %.1f ms\n", k_names[k], g_worst[k]);

    CHECK(t_track_get(g_peer_id).wakeups == 4 * g_rounds, "%d WAKEUP events, want %ld",
          t_track_get(g_peer_id).wakeups, 4 * g_rounds);
    tern_remote_free(g_r);
    t_free(g_m);
    t_track_check_all_closed();
    close(g_peer_fd);
    close(g_http_fd);
    close(g_ws_fd);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
