/* test_send_queue_limit: TERN_OPT_MAX_SEND_QUEUE closes a slow reader, not a fast one.
 *
 * TERN_OPT_MAX_SEND_QUEUE = 256 KiB. Two raw peers on one server: the slow one never
 * reads (4 KiB receive buffer), the fast one reads in a thread and checks every byte.
 * The server keeps sending 16 KiB chunks (alternately tern_send copies and wrapped
 * buffers) to both; to the fast peer only while its queue is under 128 KiB.
 *   - the slow connection gets TERN_EV_ERROR, then CLOSE, once its queue passes the
 *     limit; its queue never grew much past the limit;
 *   - the fast connection gets no error and its peer receives all 4 MiB intact (wrapped
 *     chunks are poisoned when freed, so an early free would show);
 *   - every wrapped buffer is released exactly once (counted), tern_bytes_live and
 *     descriptors return to their baselines.
 */
#include "common.h"

#define LIMIT (256 * 1024)
#define CHUNK (16 * 1024)

static size_t TOTAL;
static unsigned char *g_fast_mem, *g_slow_mem;
static t_free_counter g_fast_fc, g_slow_fc;
static long g_fast_wraps, g_slow_wraps;
static tern_conn_id g_acc[2];
static int g_nacc;
static int g_slow_error_seen;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) {
        CHECK(g_nacc < 2, "too many accepts");
        g_acc[g_nacc++] = rec.id;
    }
    if (ev == TERN_EV_READ) FAIL("the server received bytes");
    if (ev == TERN_EV_ERROR) {
        printf("ERROR on id %llu: %s\n", (unsigned long long)rec.id, (const char *)ev_data);
        g_slow_error_seen = 1;
    }
}

typedef struct {
    int fd;
    atomic_int done;
} fast_reader;

static void *fast_main(void *arg) {
    fast_reader *fr = arg;
    unsigned char *buf = malloc(65536);
    size_t got = 0;
    while (got < TOTAL) {
        ssize_t n = recv(fr->fd, buf, 65536, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "fast peer: %s after %zu of %zu bytes", n == 0 ? "EOF" : strerror(errno), got,
              TOTAL);
        CHECK((size_t)n <= TOTAL - got, "fast peer: more bytes than sent");
        long bad = t_check_pattern(buf, (size_t)n, 1, got);
        CHECK(bad < 0, "fast peer: byte %zu differs (0x%02x): freed before it was written?",
              got + (size_t)bad, buf[bad]);
        got += (size_t)n;
    }
    /* then the server closes gracefully */
    ssize_t n = recv(fr->fd, buf, 1, 0);
    CHECK(n == 0, "fast peer: expected EOF after all data, recv = %zd", n);
    free(buf);
    atomic_store(&fr->done, 1);
    return NULL;
}

int main(void) {
    t_begin("test_send_queue_limit", 60, 180);
    TOTAL = (size_t)t_scale(4 << 20, 1 << 20);
    t_track_init(16);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_fast_mem = malloc(TOTAL);
    t_fill_pattern(g_fast_mem, TOTAL, 1, 0);
    size_t slow_cap = 64u << 20;
    g_slow_mem = malloc(CHUNK);
    t_fill_pattern(g_slow_mem, CHUNK, 2, 0);

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, LIMIT));
    int port;
    t_listen(m, on_event, NULL, &port);

    int slow_fd = t_raw_connect(port, 4096);
    T_POLL_UNTIL(m, g_nacc == 1, 5000, "slow peer accepted");
    fast_reader fr = {t_raw_connect(port, 0), 0};
    T_POLL_UNTIL(m, g_nacc == 2, 5000, "fast peer accepted");
    tern_conn_id slow_id = g_acc[0], fast_id = g_acc[1];
    pthread_t th;
    pthread_create(&th, NULL, fast_main, &fr);

    size_t fast_sent = 0, slow_sent = 0, slow_max_q = 0;
    int slow_refused = 0, flip = 0;
    double end = t_now_ms() + 60000.0 * (t_small ? 3 : 1);
    while (fast_sent < TOTAL || t_track_get(slow_id).closed == 0) {
        if (t_now_ms() > end)
            FAIL("timed out: fast sent %zu of %zu, slow sent %zu (queued max %zu), slow closed %d",
                 fast_sent, TOTAL, slow_sent, slow_max_q, t_track_get(slow_id).closed);
        t_poll(m, 1);
        tern_conn *fast = tern_conn_lookup(m, fast_id);
        CHECK(fast != NULL, "the fast connection was closed (sent %zu of %zu)", fast_sent, TOTAL);
        while (fast_sent < TOTAL && tern_conn_queued(fast) < LIMIT / 2) {
            size_t n = TOTAL - fast_sent < CHUNK ? TOTAL - fast_sent : CHUNK;
            if (flip ^= 1) {
                CHECK_OK(tern_send(fast, g_fast_mem + fast_sent, n));
            } else {
                tern_bytes *b = tern_bytes_wrap(g_fast_mem + fast_sent, n, t_count_free_poison,
                                                &g_fast_fc);
                g_fast_wraps++;
                CHECK_OK(tern_send_bytes(fast, b));
            }
            fast_sent += n;
        }
        tern_conn *slow = tern_conn_lookup(m, slow_id);
        if (slow != NULL && !slow_refused && !g_slow_error_seen) {
            int rc;
            if (flip) {
                rc = tern_send(slow, g_slow_mem, CHUNK);
            } else {
                tern_bytes *b = tern_bytes_wrap(g_slow_mem, CHUNK, t_count_free, &g_slow_fc);
                g_slow_wraps++;
                rc = tern_send_bytes(slow, b);
            }
            if (rc != TERN_OK) {
                CHECK(rc == TERN_EFULL || rc == TERN_ECLOSED,
                      "send past the queue limit returned %d (%s)", rc, tern_strerror(rc));
                slow_refused = 1;
            } else {
                slow_sent += CHUNK;
            }
            size_t q = tern_conn_queued(slow);
            if (q > slow_max_q) slow_max_q = q;
            CHECK(q <= LIMIT + 2 * CHUNK,
                  "the slow connection's queue holds %zu bytes, limit %d: not enforced", q, LIMIT);
            CHECK(slow_sent < slow_cap, "sent %zu bytes to a peer that never reads and it was "
                                        "never closed", slow_sent);
        }
    }
    t_rec sr = t_track_get(slow_id);
    CHECK(sr.errors == 1 && sr.closed == 1, "slow connection: %d ERROR, %d CLOSE events", sr.errors,
          sr.closed);
    CHECK(slow_max_q > 0, "nothing ever queued on the slow connection");
    printf("slow reader closed after %zu bytes (max queued %zu); fast sent %zu\n", slow_sent,
           slow_max_q, fast_sent);

    /* the fast connection drains, then closes gracefully */
    tern_conn *fast = tern_conn_lookup(m, fast_id);
    CHECK(fast != NULL, "fast connection gone");
    CHECK_OK(tern_close(fast));
    T_POLL_UNTIL(m, atomic_load(&fr.done) && t_track_get(fast_id).closed, 30000,
                 "fast peer got everything and the connection closed");
    pthread_join(th, NULL);
    t_rec fr_rec = t_track_get(fast_id);
    CHECK(fr_rec.errors == 0, "fast connection got ERROR");
    CHECK(fr_rec.written == TOTAL, "fast: WRITE events add up to %zu, want %zu", fr_rec.written,
          TOTAL);

    /* the slow peer sees its connection end */
    size_t discarded = 0;
    int how = t_wait_peer_close(slow_fd, 10000, &discarded);
    CHECK(how >= 0, "slow peer: connection still open after the server closed it");
    CHECK(discarded < slow_sent, "slow peer received all %zu bytes: it was not cut", slow_sent);
    close(slow_fd);
    close(fr.fd);

    for (int i = 0; i < 20; i++) t_poll(m, 1);
    CHECK(atomic_load(&g_fast_fc.frees) == g_fast_wraps, "fast: %ld of %ld wrapped buffers released",
          atomic_load(&g_fast_fc.frees), g_fast_wraps);
    CHECK(atomic_load(&g_slow_fc.frees) == g_slow_wraps, "slow: %ld of %ld wrapped buffers released",
          atomic_load(&g_slow_fc.frees), g_slow_wraps);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(tern_mgr_conn_count(m) == 1, "%zu connections left", tern_mgr_conn_count(m));
    t_free(m);
    t_track_check_all_closed();
    CHECK(t_trk.errors == 1, "%ld ERROR events in all, want 1", t_trk.errors);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    free(g_fast_mem);
    free(g_slow_mem);
    t_track_fini();
    t_pass();
    return 0;
}
