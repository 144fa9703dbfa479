/* test_connect_timeout: TERN_OPT_CONNECT_TIMEOUT_MS fires when a handshake never ends.
 *
 * A raw socket on 127.0.0.1 listens with a backlog of 0 and never accepts. Raw
 * non-blocking connects fill its accept queue: Linux then drops further SYNs (the
 * client retries after a second, and again, while the queue stays full), so a
 * connection to it stays in SYN_SENT. Then, with TERN_OPT_CONNECT_TIMEOUT_MS 200:
 *   - a tern_connect gets OPEN, ERROR (a message saying it timed out), CLOSE, and no
 *     CONNECT, between 150 ms and 3 s (12 s under valgrind) after the call;
 *   - a wrapped buffer queued on it before the timeout is released exactly once, never
 *     sent;
 *   - two at once, one closed by tern_close before the timeout: that one ends by the
 *     close (no ERROR), the other by the timeout; each gets exactly one CLOSE;
 *   - the manager holds no connection and no descriptor of them afterwards.
 */
#include "common.h"

static tern_mgr *g_m;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_CONNECT) FAIL("id %llu connected to a full backlog", (unsigned long long)rec.id);
    if (ev == TERN_EV_ERROR) {
        const char *msg = ev_data;
        CHECK(strstr(msg, "timed out") != NULL, "ERROR \"%s\" does not say the connect timed out", msg);
    }
}

/* A listener with a full accept queue; its fillers go in fds (returns how many). */
static int full_backlog(int *lfd, int *port, int *fds, int max) {
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(*lfd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
    CHECK(listen(*lfd, 0) == 0, "listen: %s", strerror(errno));
    *port = t_raw_local_port(*lfd);
    sa.sin_port = htons((uint16_t)*port);
    for (int n = 0; n < max; n++) {
        fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int rc = connect(fds[n], (struct sockaddr *)&sa, sizeof sa);
        CHECK(rc == 0 || errno == EINPROGRESS, "filler connect: %s", strerror(errno));
        struct pollfd p = {fds[n], POLLOUT, 0};
        if (poll(&p, 1, 300) == 0) return n + 1; /* this SYN was dropped: the queue is full */
    }
    FAIL("%d connects to a listener with backlog 0 all completed: cannot make a handshake hang", max);
}

static void expect_timeout(tern_conn_id id, double t0, const char *what) {
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "%s: CLOSE", what);
    double dt = t_now_ms() - t0;
    t_rec r = t_track_get(id);
    CHECK(r.errors == 1 && r.first_after_open == TERN_EV_ERROR && r.nevents == 3,
          "%s: %d events, %d ERROR, first after OPEN %s: want OPEN, ERROR, CLOSE", what, r.nevents,
          r.errors, t_ev_name(r.first_after_open));
    CHECK(dt >= 150 && dt < t_bound_ms(3000), "%s: the 200 ms connect timeout ended it after %.0f ms", what,
          dt);
    printf("%s: OPEN, ERROR (timed out), CLOSE after %.0f ms\n", what, dt);
}

int main(void) {
    t_begin("test_connect_timeout", 60, 180);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    int lfd, port, fillers[8];
    int nfill = full_backlog(&lfd, &port, fillers, 8);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);

    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(g_m, TERN_OPT_CONNECT_TIMEOUT_MS, 200));
    int fds_mgr = t_count_fds();

    /* one connection, with a wrapped buffer waiting for the handshake */
    static t_free_counter fc;
    static char early[] = "never sent: the handshake never ends";
    double t0 = t_now_ms();
    tern_conn *c = tern_connect(g_m, url, on_event, NULL);
    CHECK(c != NULL, "tern_connect: %s", tern_strerror(tern_last_error()));
    tern_conn_id id = tern_conn_get_id(c);
    CHECK_OK(tern_send_bytes(c, tern_bytes_wrap(early, sizeof early - 1, t_count_free, &fc)));
    expect_timeout(id, t0, "1. a connect to a full backlog");
    CHECK(atomic_load(&fc.frees) == 1, "the buffer queued before the timeout was released %ld times",
          atomic_load(&fc.frees));

    /* two at once: one closed by the program first */
    t0 = t_now_ms();
    tern_conn *a = tern_connect(g_m, url, on_event, NULL);
    tern_conn *b = tern_connect(g_m, url, on_event, NULL);
    CHECK(a != NULL && b != NULL, "tern_connect: %s", tern_strerror(tern_last_error()));
    tern_conn_id ida = tern_conn_get_id(a), idb = tern_conn_get_id(b);
    t_poll(g_m, 50);
    CHECK(!t_track_get(ida).closed && !t_track_get(idb).closed, "a connection ended before its timeout");
    CHECK_OK(tern_close(tern_conn_lookup(g_m, ida)));
    expect_timeout(idb, t0, "2. the other of two");
    t_rec ra = t_track_get(ida);
    CHECK(ra.closed == 1 && ra.errors == 0, "2.: the closed one got %d ERROR and %d CLOSE", ra.errors,
          ra.closed);

    CHECK(tern_mgr_conn_count(g_m) == 0, "%zu connections left", tern_mgr_conn_count(g_m));
    CHECK(t_count_fds() == fds_mgr, "descriptors: %d, %d before the connects", t_count_fds(), fds_mgr);
    t_free(g_m);
    t_track_check_all_closed();
    for (int i = 0; i < nfill; i++) close(fillers[i]);
    close(lfd);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
