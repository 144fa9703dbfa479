/* test_shared_buffer: one wrapped buffer shared by a fast and a stalled reader.
 *
 * A malloc'd buffer larger than a send buffer (t_beyond_sndbuf) holding a pattern is
 * wrapped with a free callback that counts and poisons it (memset 0xEE): a free before
 * the last byte went to the kernel on every connection changes what a peer reads.
 * tern_bytes_share gives one reference to each of two connections, the test releases
 * its own. One peer reads at once; the other (4 KiB receive buffer) reads nothing yet.
 *   1. the fast peer gets every byte intact; its connection drains; the buffer is not
 *      freed while the stalled connection still holds it (polled well past the drain);
 *      then the stalled peer reads slowly to the end: every byte intact (an early free
 *      would have poisoned what it had not got yet), and the free runs exactly once,
 *      after that last byte was written;
 *   2. the same, but the stalled connection is closed with tern_close_now instead: not
 *      freed before, freed exactly once by the time its CLOSE is delivered; what the
 *      stalled peer had already received is intact;
 *   3. the same, but the stalled peer resets the connection (SO_LINGER 0): ERROR and
 *      CLOSE, freed exactly once.
 * tern_bytes_live and descriptors are back to their baselines.
 */
#include "common.h"

static tern_mgr *g_m;
static size_t LEN;
static tern_conn_id g_acc[2];
static int g_nacc;
static long g_frees_at_close[64]; /* free count when each connection's CLOSE came */
static t_free_counter *g_fc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) {
        CHECK(g_nacc < 2, "more accepts than peers");
        g_acc[g_nacc++] = rec.id;
    }
    if (ev == TERN_EV_READ) FAIL("the server received bytes");
    if (ev == TERN_EV_CLOSE && rec.id < 64 && g_fc) g_frees_at_close[rec.id] = atomic_load(&g_fc->frees);
}

/* A reader thread: reads `len` bytes (in 4 KiB steps when slow), checks the pattern. */
typedef struct {
    int fd;
    int slow;
    atomic_int done;
    atomic_long got;
} reader;

static void *reader_main(void *arg) {
    reader *r = arg;
    unsigned char *buf = malloc(65536);
    size_t got = 0;
    while (got < LEN) {
        size_t want = LEN - got < 65536 ? LEN - got : 65536;
        if (r->slow && want > 4096) want = 4096;
        ssize_t n = recv(r->fd, buf, want, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "%s reader: %s after %zu of %zu bytes", r->slow ? "stalled" : "fast",
              n == 0 ? "EOF" : strerror(errno), got, LEN);
        long bad = t_check_pattern(buf, (size_t)n, 9, got);
        CHECK(bad < 0, "%s reader: byte %zu is 0x%02x, not the pattern: the shared buffer was freed "
              "(poisoned) before it was written to this connection",
              r->slow ? "stalled" : "fast", got + (size_t)bad, buf[bad]);
        got += (size_t)n;
        atomic_store(&r->got, (long)got);
    }
    free(buf);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Reads what is in the socket now (non-blocking) and checks it is the pattern's prefix. */
static size_t read_available(int fd, const char *what) {
    unsigned char buf[65536];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        long bad = t_check_pattern(buf, (size_t)n, 9, got);
        CHECK(bad < 0, "%s: byte %zu differs from the pattern", what, got + (size_t)bad);
        got += (size_t)n;
    }
    return got;
}

enum { END_READ, END_CLOSE_NOW, END_RESET };

static void one_round(int port, unsigned char *mem, int how, const char *what) {
    static t_free_counter fc;
    atomic_store(&fc.frees, 0);
    g_fc = &fc;
    g_nacc = 0;
    reader fast = {0}, stalled = {0};
    fast.fd = t_raw_connect(port, 0);
    T_POLL_UNTIL(g_m, g_nacc == 1, 5000, "%s: fast accept", what);
    stalled.fd = t_raw_connect(port, 4096);
    stalled.slow = 1;
    T_POLL_UNTIL(g_m, g_nacc == 2, 5000, "%s: stalled accept", what);
    tern_conn_id fid = g_acc[0], sid = g_acc[1];

    t_fill_pattern(mem, LEN, 9, 0);
    tern_bytes *b = tern_bytes_wrap(mem, LEN, t_count_free_poison, &fc);
    CHECK(b != NULL, "tern_bytes_wrap");
    CHECK_OK(tern_send_bytes(tern_conn_lookup(g_m, sid), tern_bytes_share(b)));
    CHECK_OK(tern_send_bytes(tern_conn_lookup(g_m, fid), tern_bytes_share(b)));
    tern_bytes_release(b);

    pthread_t ft, st;
    pthread_create(&ft, NULL, reader_main, &fast);
    T_POLL_UNTIL(g_m, atomic_load(&fast.done) && t_track_get(fid).drains >= 1, 20000,
                 "%s: the fast peer reads everything (%ld of %zu)", what, atomic_load(&fast.got), LEN);
    pthread_join(ft, NULL);
    /* well past the fast one's drain: the stalled one still holds the buffer */
    for (int i = 0; i < 20; i++) t_poll(g_m, 2);
    CHECK(atomic_load(&fc.frees) == 0, "%s: the shared buffer was freed while the stalled connection "
          "still had %zu bytes of it queued", what, tern_conn_queued(tern_conn_lookup(g_m, sid)));
    CHECK(tern_conn_queued(tern_conn_lookup(g_m, sid)) > 0, "%s: the stalled connection wrote everything",
          what);

    if (how == END_READ) {
        pthread_create(&st, NULL, reader_main, &stalled);
        T_POLL_UNTIL(g_m, atomic_load(&stalled.done) && atomic_load(&fc.frees) == 1, 20000,
                     "%s: the stalled peer reads everything (%ld of %zu), then the free (%ld)", what,
                     atomic_load(&stalled.got), LEN, atomic_load(&fc.frees));
        pthread_join(st, NULL);
        for (int i = 0; i < 5; i++) t_poll(g_m, 1);
        CHECK(atomic_load(&fc.frees) == 1, "%s: freed %ld times", what, atomic_load(&fc.frees));
    } else {
        if (how == END_CLOSE_NOW) {
            CHECK_OK(tern_close_now(tern_conn_lookup(g_m, sid)));
        } else {
            t_set_linger0(stalled.fd);
            close(stalled.fd); /* RST */
            stalled.fd = -1;
        }
        T_POLL_UNTIL(g_m, t_track_get(sid).closed, 5000, "%s: the stalled connection closes", what);
        CHECK(g_frees_at_close[sid] == 1, "%s: %ld frees when the stalled connection's CLOSE came, want 1",
              what, g_frees_at_close[sid]);
        CHECK(how != END_RESET || t_track_get(sid).errors == 1, "%s: a reset without ERROR", what);
        if (how == END_CLOSE_NOW) read_available(stalled.fd, what);
    }
    CHECK(atomic_load(&fc.frees) == 1, "%s: freed %ld times", what, atomic_load(&fc.frees));
    close(fast.fd);
    if (stalled.fd >= 0) close(stalled.fd);
    T_POLL_UNTIL(g_m, t_track_get(fid).closed && t_track_get(sid).closed, 5000, "%s: both closed", what);
    printf("%s: no early free, freed once: ok\n", what);
}

int main(void) {
    t_begin("test_shared_buffer", 60, 240);
    LEN = t_beyond_sndbuf(); /* the stalled connection keeps some queued */
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    unsigned char *mem = malloc(LEN);
    CHECK(mem != NULL, "malloc");
    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    int port;
    t_listen(g_m, on_event, NULL, &port);
    one_round(port, mem, END_READ, "1. the stalled peer reads at last");
    one_round(port, mem, END_CLOSE_NOW, "2. the stalled connection closed with tern_close_now");
    one_round(port, mem, END_RESET, "3. the stalled peer resets");
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    t_free(g_m);
    t_track_check_all_closed();
    free(mem);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
