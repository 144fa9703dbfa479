/* test_sigpipe: peers reset connections while large queues are being written.
 *
 * SIGPIPE is left at its default action (which kills the process). 1,000 times (100 with
 * TERN_TEST_SCALE=small): two raw peers connect; the server queues 5 MiB on each (eight
 * wrapped 512 KiB slices and one wrapped 1 MiB buffer shared by both connections); the
 * peers reset (SO_LINGER {1, 0} + close) while the server is still writing: at once,
 * after reading a little, or after a half-close (shutdown SHUT_WR). Writes to a reset socket fail with EPIPE/ECONNRESET; without
 * MSG_NOSIGNAL the process would die here.
 *   - the process lives;
 *   - every reset connection gets one ERROR then one CLOSE (a half-closed one may
 *     get CLOSE without ERROR);
 *   - after each round every buffer is released (free callbacks counted) and
 *     tern_bytes_live is back to its baseline;
 *   - descriptors after all rounds equal those before; after tern_mgr_free, those
 *     before the manager existed.
 */
#include "common.h"

#define SLICE (512 * 1024)
#define NSLICE 8
#define SHARED (1 << 20)

static unsigned char *g_mem;       /* NSLICE * SLICE, wrapped again every round */
static unsigned char *g_shared_mem;
static t_free_counter g_fc;
static long g_wraps;
static tern_conn_id g_acc[2];
static int g_nacc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) {
        CHECK(g_nacc < 2, "more accepts than peers in this round");
        g_acc[g_nacc++] = rec.id;
    }
    if (ev == TERN_EV_READ) FAIL("the server received bytes");
}

int main(void) {
    signal(SIGPIPE, SIG_DFL);
    t_begin("test_sigpipe", 240, 300);
    long rounds = t_scale(1000, 100);
    t_track_init((size_t)(2 * rounds + 16));
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_mem = malloc((size_t)NSLICE * SLICE);
    t_fill_pattern(g_mem, (size_t)NSLICE * SLICE, 3, 0);
    g_shared_mem = malloc(SHARED);
    t_fill_pattern(g_shared_mem, SHARED, 4, 0);

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    int port;
    t_listen(m, on_event, NULL, &port);
    t_poll(m, 1);
    int fds_setup = t_count_fds();
    long partial_rounds = 0;
    double t0 = t_now_ms();

    for (long round = 0; round < rounds; round++) {
        g_nacc = 0;
        int pfd[2];
        for (int k = 0; k < 2; k++) {
            pfd[k] = t_raw_connect(port, 4096);
            t_set_linger0(pfd[k]);
        }
        T_POLL_UNTIL(m, g_nacc == 2, 5000, "round %ld: accepts", round);
        tern_bytes *shared = tern_bytes_wrap(g_shared_mem, SHARED, t_count_free, &g_fc);
        CHECK(shared != NULL, "tern_bytes_wrap");
        g_wraps++;
        for (int k = 0; k < 2; k++) {
            tern_conn *c = tern_conn_lookup(m, g_acc[k]);
            CHECK(c != NULL, "accepted connection not found");
            for (int i = 0; i < NSLICE; i++) {
                tern_bytes *b = tern_bytes_wrap(g_mem + (size_t)i * SLICE, SLICE, t_count_free,
                                                &g_fc);
                g_wraps++;
                CHECK_OK(tern_send_bytes(c, b));
                if (i == NSLICE / 2) CHECK_OK(tern_send_bytes(c, tern_bytes_share(shared)));
            }
        }
        tern_bytes_release(shared);
        /* let the writing start; some peers read a little first */
        t_poll(m, 0);
        t_poll(m, 0);
        tern_conn *c0 = tern_conn_lookup(m, g_acc[0]);
        CHECK(c0 != NULL, "round %ld: connection closed before the reset", round);
        if (tern_conn_queued(c0) > 0) partial_rounds++;
        /* three ways to go: reset at once; read a little, then reset; half-close (the
         * server, in CLOSE_WAIT, then gets EPIPE rather than ECONNRESET), then reset */
        for (int k = 0; k < 2; k++) {
            int way = (int)((round + k) % 3);
            if (way == 1) {
                char buf[16384];
                ssize_t n = recv(pfd[k], buf, sizeof buf, MSG_DONTWAIT);
                (void)n;
                t_poll(m, 0);
            } else if (way == 2) {
                shutdown(pfd[k], SHUT_WR);
                t_poll(m, 0);
            }
            close(pfd[k]); /* RST */
        }
        T_POLL_UNTIL(m, t_track_get_m(m, g_acc[0]).closed && t_track_get_m(m, g_acc[1]).closed, 5000,
                     "round %ld: both reset connections closed", round);
        for (int k = 0; k < 2; k++) {
            /* a half-closed peer may be seen as EOF (no ERROR) before its reset */
            int way = (int)((round + k) % 3), want_min = way == 2 ? 0 : 1;
            t_rec r = t_track_get_m(m, g_acc[k]);
            CHECK(r.errors >= want_min && r.errors <= 1,
                  "round %ld: a reset connection got %d ERROR events, want %s", round, r.errors,
                  want_min ? "1" : "0 or 1");
        }
        CHECK(atomic_load(&g_fc.frees) == g_wraps,
              "round %ld: %ld of %ld wrapped buffers released after both connections closed",
              round, atomic_load(&g_fc.frees), g_wraps);
        CHECK(tern_bytes_live() == bytes_base, "round %ld: tern_bytes_live %llu, baseline %llu",
              round, (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    }
    printf("%ld rounds in %.0f ms (%ld with data still queued at reset time)\n", rounds,
           t_now_ms() - t0, partial_rounds);
    CHECK(partial_rounds >= rounds / 2,
          "only %ld of %ld rounds reset a connection with data queued: the test did not test",
          partial_rounds, rounds);
    CHECK(tern_mgr_conn_count(m) == 1, "%zu connections left", tern_mgr_conn_count(m));
    int fds_now = t_count_fds();
    CHECK(fds_now == fds_setup, "descriptors: %d after the rounds, %d before", fds_now, fds_setup);
    t_free(m);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu after free",
          (unsigned long long)tern_bytes_live());
    CHECK(t_count_fds() == fds_base, "descriptors: %d after tern_mgr_free, %d before",
          t_count_fds(), fds_base);
    free(g_mem);
    free(g_shared_mem);
    t_track_fini();
    t_pass();
    return 0;
}
