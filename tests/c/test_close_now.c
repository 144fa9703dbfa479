/* test_close_now: tern_close_now on live connections with data queued.
 *
 * Three ways, each on a connection whose peer does not read (4 KiB receive buffer), so
 * most of what is queued is still in tern when the close comes:
 *   1. from the loop thread between polls, on an accepted connection holding wrapped
 *      buffers (1 MiB each, more in all than a send buffer holds) (each with its own poisoning free callback), a tern_send copy and
 *      a tern_bytes_copy; one more wrapped buffer is handed to tern_send_bytes after the
 *      close (whatever it returns, it must be released and never sent);
 *   2. from inside the READ handler that queued 2 MiB a moment before;
 *   3. on an outgoing connection (tern_connect) with data queued before it connected.
 * Each time:
 *   - no event inside tern_close_now itself (events come only inside tern_mgr_poll);
 *   - after it: exactly one more event for the connection, CLOSE, no ERROR, no WRITE,
 *     READ or DRAIN (the tracker also checks: CLOSE last, exactly once);
 *   - every buffer queued on it is released exactly once by the time CLOSE is
 *     delivered; tern_bytes_live is back to its baseline;
 *   - tern_conn_lookup finds the id no more;
 *   - the peer sees the end (EOF or reset) within a bound, and what it did receive is
 *     an exact prefix of what was queued (nothing discarded was sent, nothing sent was
 *     changed by a free that came too early).
 * Descriptors are back to their baseline after tern_mgr_free.
 */
#include "common.h"

#define MAXWRAP 64
#define WRAP_LEN (1u << 20)
static int NWRAP; /* 1 MiB buffers, together more than a send buffer holds */
#define COPY_LEN (256u * 1024u)

static tern_mgr *g_m;
static tern_conn_id g_accepted;
static unsigned char *g_stream; /* everything queued on case 1's connection, in order */
static size_t g_stream_len;

/* per case: the connection's event count when tern_close_now was called */
static tern_conn_id g_closing_id;
static int g_events_at_close = -1;
static int g_close_rc = 1;
static t_free_counter g_read_fc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) g_accepted = rec.id;
    if (ev == TERN_EV_ERROR) FAIL("ERROR on id %llu: %s", (unsigned long long)rec.id, (char *)ev_data);
    if (rec.id == g_closing_id && g_events_at_close >= 0 && ev != TERN_EV_CLOSE && ev != TERN_EV_OPEN)
        FAIL("%s on id %llu after tern_close_now", t_ev_name(ev), (unsigned long long)rec.id);
    if (ev == TERN_EV_READ && g_closing_id == 0) {
        /* case 2: queue 2 MiB, then drop it all from inside the handler */
        tern_str *s = ev_data;
        CHECK_OK(tern_conn_consume(c, s->len));
        void *p;
        tern_bytes *b = tern_bytes_alloc(2u << 20, &p);
        CHECK(b != NULL, "tern_bytes_alloc");
        memset(p, 'r', 2u << 20);
        CHECK_OK(tern_send_bytes(c, b));
        static char tail[] = "never sent";
        CHECK_OK(tern_send_bytes(c, tern_bytes_wrap(tail, sizeof tail - 1, t_count_free, &g_read_fc)));
        g_closing_id = rec.id;
        g_events_at_close = rec.nevents;
        g_close_rc = tern_close_now(c);
    }
}

/* After tern_close_now: exactly one more event, CLOSE. */
static void expect_only_close(tern_conn_id id, const char *what) {
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "%s: CLOSE after tern_close_now", what);
    t_rec r = t_track_get(id);
    CHECK(r.nevents == g_events_at_close + 1, "%s: %d events after tern_close_now, want only CLOSE", what,
          r.nevents - g_events_at_close);
    CHECK(r.errors == 0, "%s: ERROR on a tern_close_now", what);
    CHECK(tern_conn_lookup(g_m, id) == NULL, "%s: tern_conn_lookup finds a closed id", what);
}

/* The peer reads what reached it: a prefix of `want`, then the end. */
static void peer_sees_prefix_then_end(int fd, const unsigned char *want, size_t want_len, const char *what) {
    t_set_nonblock(fd, 1);
    size_t got = 0;
    unsigned char buf[65536];
    double end = t_now_ms() + t_bound_ms(5000);
    for (;;) {
        CHECK(t_now_ms() < end, "%s: the peer saw no end after tern_close_now (%zu bytes read)", what, got);
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            CHECK(got + (size_t)n <= want_len, "%s: the peer got more than was queued", what);
            CHECK(memcmp(buf, want + got, (size_t)n) == 0,
                  "%s: bytes %zu..%zd differ from what was queued (sent after the close, or freed early)",
                  what, got, (ssize_t)got + n);
            got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) break; /* EOF or reset */
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 50);
    }
    CHECK(got < want_len, "%s: the peer got all %zu bytes: nothing was discarded", what, got);
    printf("%s: the peer got %zu of %zu bytes, then the end\n", what, got, want_len);
}

static void case_between_polls(int port, uint64_t bytes_base) {
    static t_free_counter fc[MAXWRAP], late_fc;
    static unsigned char *mem[MAXWRAP];
    int fd = t_raw_connect(port, 4096);
    T_POLL_UNTIL(g_m, g_accepted != 0, 5000, "accept");
    tern_conn_id id = g_accepted;
    tern_conn *c = tern_conn_lookup(g_m, id);
    g_stream_len = (size_t)NWRAP * WRAP_LEN + 2 * COPY_LEN;
    g_stream = malloc(g_stream_len);
    t_fill_pattern(g_stream, g_stream_len, 21, 0);
    size_t off = 0;
    for (int i = 0; i < NWRAP; i++, off += WRAP_LEN) {
        mem[i] = malloc(WRAP_LEN);
        memcpy(mem[i], g_stream + off, WRAP_LEN);
        CHECK_OK(tern_send_bytes(c, tern_bytes_wrap(mem[i], WRAP_LEN, t_count_free_poison, &fc[i])));
    }
    CHECK_OK(tern_send(c, g_stream + off, COPY_LEN));
    off += COPY_LEN;
    CHECK_OK(tern_send_bytes(c, tern_bytes_copy(g_stream + off, COPY_LEN)));
    /* let it write what the socket takes: then most is still queued */
    T_POLL_UNTIL(g_m, t_track_get(id).written > 0, 5000, "first write");
    for (int i = 0; i < 5; i++) t_poll(g_m, 1);
    size_t queued = tern_conn_queued(c);
    CHECK(queued > 0 && queued < g_stream_len, "%zu of %zu bytes queued after the first writes", queued,
          g_stream_len);

    g_closing_id = id;
    g_events_at_close = t_track_get(id).nevents;
    CHECK_OK(tern_close_now(c));
    CHECK(!t_track_get(id).closed, "CLOSE delivered inside tern_close_now");
    static char late[] = "sent after tern_close_now";
    int rc = tern_send_bytes(c, tern_bytes_wrap(late, sizeof late - 1, t_count_free, &late_fc));
    printf("1. tern_send_bytes after tern_close_now returned %d (%s)\n", rc, tern_strerror(rc));
    expect_only_close(id, "1. between polls");
    for (int i = 0; i < NWRAP; i++)
        CHECK(atomic_load(&fc[i].frees) == 1, "1.: wrapped buffer %d released %ld times by CLOSE", i,
              atomic_load(&fc[i].frees));
    CHECK(atomic_load(&late_fc.frees) == 1, "1.: the buffer sent after tern_close_now released %ld times",
          atomic_load(&late_fc.frees));
    CHECK(tern_bytes_live() == bytes_base, "1.: tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    peer_sees_prefix_then_end(fd, g_stream, g_stream_len, "1. between polls");
    close(fd);
    for (int i = 0; i < NWRAP; i++) free(mem[i]);
    free(g_stream);
}

static void case_in_read_handler(int port, uint64_t bytes_base) {
    g_closing_id = 0;
    g_events_at_close = -1;
    int fd = t_raw_connect(port, 4096);
    t_write_all(fd, "go", 2);
    T_POLL_UNTIL(g_m, g_closing_id != 0, 5000, "READ that closes");
    CHECK_OK(g_close_rc);
    expect_only_close(g_closing_id, "2. inside READ");
    CHECK(atomic_load(&g_read_fc.frees) == 1, "2.: wrapped buffer released %ld times",
          atomic_load(&g_read_fc.frees));
    CHECK(tern_bytes_live() == bytes_base, "2.: tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    unsigned char *want = malloc(2u << 20);
    memset(want, 'r', 2u << 20);
    peer_sees_prefix_then_end(fd, want, 2u << 20, "2. inside READ");
    free(want);
    close(fd);
}

static void case_outgoing(uint64_t bytes_base) {
    static t_free_counter fc;
    static char early[] = "queued before the connection was up";
    /* a raw listener that never accepts: the handshake completes in the kernel */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0, "raw listener: %s",
          strerror(errno));
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", t_raw_local_port(lfd));
    tern_conn *c = tern_connect(g_m, url, on_event, NULL);
    CHECK(c != NULL, "tern_connect: %s", tern_strerror(tern_last_error()));
    tern_conn_id id = tern_conn_get_id(c);
    CHECK_OK(tern_send_bytes(c, tern_bytes_wrap(early, sizeof early - 1, t_count_free, &fc)));
    g_closing_id = id;
    g_events_at_close = 0; /* nothing delivered yet: OPEN comes with the CLOSE */
    CHECK_OK(tern_close_now(c));
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "3.: CLOSE");
    t_rec r = t_track_get(id);
    CHECK(r.nevents == 2 && r.connected == 0 && r.errors == 0,
          "3.: %d events (connected %d, errors %d), want OPEN and CLOSE only", r.nevents, r.connected,
          r.errors);
    CHECK(atomic_load(&fc.frees) == 1, "3.: the early buffer released %ld times", atomic_load(&fc.frees));
    CHECK(tern_bytes_live() == bytes_base, "3.: tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    close(lfd);
    printf("3. outgoing connection closed before it was up: OPEN, CLOSE, buffer released\n");
}

int main(void) {
    t_begin("test_close_now", 60, 240);
    NWRAP = (int)((t_beyond_sndbuf() + WRAP_LEN - 1) / WRAP_LEN);
    CHECK(NWRAP <= MAXWRAP, "tcp_wmem allows a send buffer of %zu bytes: too large for this test",
          t_beyond_sndbuf());
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    int port;
    t_listen(g_m, on_event, NULL, &port);
    case_between_polls(port, bytes_base);
    case_in_read_handler(port, bytes_base);
    case_outgoing(bytes_base);
    CHECK(tern_mgr_conn_count(g_m) == 1, "%zu connections left, want the listener",
          tern_mgr_conn_count(g_m));
    t_free(g_m);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu after free", (unsigned long long)tern_bytes_live());
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
