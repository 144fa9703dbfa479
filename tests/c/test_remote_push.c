/* test_remote_push: worker threads push wrapped buffers to connections through remotes.
 *
 * 4 workers, each with its own tern_remote (tern_remote_clone of the loop's remote,
 * made in the worker thread), push 10,000 tern_bytes_wrap buffers each (1,000 with
 * TERN_TEST_SCALE=small) to 4 connections (buffer s of worker w goes to connection
 * (s + w) % 4). TERN_OPT_MAX_POSTED is 64 and the loop does not poll until every worker
 * has been refused with TERN_EFULL: exactly 64 pushes are accepted by then (the bound
 * holds, nothing is dropped while returning TERN_OK); refused pushes are retried with a
 * new buffer. Raw peers read in reader threads and parse the stream:
 *   - every buffer is 32-byte records naming worker, sequence, record index, target;
 *     the peer sees every buffer exactly once, whole (never interleaved with another),
 *     in sequence order per worker and connection;
 *   - each free callback checks the record it frees, poisons the memory (0xEE) and
 *     frees it: a free before the bytes were written would corrupt what the peer
 *     receives; exactly one free per wrap (counted per buffer); a refused push
 *     (TERN_EFULL) released its buffer before returning.
 * Then, from another thread: tern_remote_close of a live id closes it; pushes to that
 * closed id, to an unknown id and to id 0 release their buffers (once); after
 * tern_mgr_free every tern_remote_* returns TERN_ECLOSED and has released its buffer
 * before it returns. tern_bytes_live and descriptors return to their baselines.
 */
#include "common.h"

#define NW 4
#define NC 4
#define REC 32
#define MAGIC 0x7E4E5EC0u

typedef struct {
    uint32_t magic, worker, seq, idx, nrec, conn;
    uint64_t check;
} record;

typedef struct {
    atomic_int wraps; /* buffers made for this (worker, seq), retries included */
    atomic_int frees; /* free callbacks run for them */
} slot;

static long NPUSH;
static slot *g_slots; /* NW * NPUSH */
static tern_remote *g_remote;
static tern_conn_id g_ids[NC]; /* accepted connection id for peer socket k */
static atomic_long g_efull, g_pushed;
static atomic_long g_worker_efull[NW]; /* TERN_EFULL answers per worker */
static int g_port;

static uint64_t rec_check(uint32_t w, uint32_t s, uint32_t i, uint32_t c) {
    uint64_t x = ((uint64_t)w << 48) ^ ((uint64_t)s << 20) ^ ((uint64_t)i << 4) ^ c;
    x *= 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 31);
}

static uint32_t nrec_for(long s) {
    if (s % t_scale(1000, 100) == 999 % t_scale(1000, 100)) return 2048; /* 64 KiB */
    return 1 + (uint32_t)(s % 8);
}

static void on_free(void *ctx, void *data, size_t len) {
    slot *sl = ctx;
    CHECK(data != NULL && len >= REC && len % REC == 0, "free callback: data %p len %zu", data,
          len);
    record r0;
    memcpy(&r0, data, sizeof r0);
    CHECK(r0.magic == MAGIC, "free callback got a buffer whose bytes were already changed");
    long w = r0.worker, s = r0.seq;
    CHECK(w < NW && s < NPUSH && &g_slots[w * NPUSH + s] == sl,
          "free callback ctx does not match the buffer (worker %ld seq %ld)", w, s);
    CHECK(len == (size_t)nrec_for(s) * REC, "free callback: wrong length %zu", len);
    memset(data, 0xEE, len); /* poison: an early free corrupts what the peer reads */
    free(data);
    int f = atomic_fetch_add(&sl->frees, 1) + 1;
    CHECK(f <= atomic_load(&sl->wraps), "worker %ld seq %ld: more frees (%d) than buffers", w, s,
          f);
}

static tern_bytes *make_buffer(long w, long s, int conn) {
    uint32_t n = nrec_for(s);
    record *recs = malloc((size_t)n * REC);
    CHECK(recs != NULL, "malloc");
    for (uint32_t i = 0; i < n; i++) {
        recs[i].magic = MAGIC;
        recs[i].worker = (uint32_t)w;
        recs[i].seq = (uint32_t)s;
        recs[i].idx = i;
        recs[i].nrec = n;
        recs[i].conn = (uint32_t)conn;
        recs[i].check = rec_check((uint32_t)w, (uint32_t)s, i, (uint32_t)conn);
    }
    slot *sl = &g_slots[w * NPUSH + s];
    atomic_fetch_add(&sl->wraps, 1);
    tern_bytes *b = tern_bytes_wrap(recs, (size_t)n * REC, on_free, sl);
    CHECK(b != NULL, "tern_bytes_wrap failed");
    CHECK(tern_bytes_data(b) == recs && tern_bytes_len(b) == (size_t)n * REC,
          "tern_bytes_wrap copied or changed the buffer");
    return b;
}

static void *worker(void *arg) {
    long w = (long)(intptr_t)arg;
    tern_remote *r = tern_remote_clone(g_remote);
    CHECK(r != NULL, "tern_remote_clone in a worker thread");
    for (long s = 0; s < NPUSH; s++) {
        int k = (int)((s + w) % NC);
        for (;;) {
            slot *sl = &g_slots[w * NPUSH + s];
            tern_bytes *b = make_buffer(w, s, k);
            int rc = tern_remote_send(r, g_ids[k], b);
            if (rc == TERN_OK) break;
            CHECK(rc == TERN_EFULL, "tern_remote_send returned %d (%s)", rc, tern_strerror(rc));
            CHECK(atomic_load(&sl->frees) == atomic_load(&sl->wraps),
                  "TERN_EFULL returned but the refused buffer was not released");
            atomic_fetch_add(&g_efull, 1);
            atomic_fetch_add(&g_worker_efull[w], 1);
            t_sleep_ms(1); /* back off: the loop needs a turn to drain */
        }
        atomic_fetch_add(&g_pushed, 1);
    }
    tern_remote_free(r);
    return NULL;
}

/* ---- raw peers --------------------------------------------------------- */

typedef struct {
    int k;
    int fd;
    atomic_int done;    /* every expected buffer arrived */
    atomic_int eof;     /* then the connection closed */
    long buffers;
} reader;

static reader g_rd[NC];

static void *reader_main(void *arg) {
    reader *rd = arg;
    long next_seq[NW], idx[NW], want = 0;
    for (int w = 0; w < NW; w++) {
        next_seq[w] = ((rd->k - w) % NC + NC) % NC;
        idx[w] = 0;
        for (long s = next_seq[w]; s < NPUSH; s += NC) want++;
    }
    int cur = -1; /* worker whose buffer is half-way through, or -1 */
    unsigned char buf[65536 + REC];
    size_t have = 0;
    uint64_t off = 0;
    for (;;) {
        ssize_t n = recv(rd->fd, buf + have, 65536, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            CHECK(rd->buffers == want && have == 0,
                  "peer %d: connection ended (%s) after %ld of %ld buffers", rd->k,
                  n == 0 ? "EOF" : strerror(errno), rd->buffers, want);
            atomic_store(&rd->eof, 1);
            return NULL;
        }
        CHECK(rd->buffers < want, "peer %d: %zd bytes after every expected buffer arrived",
              rd->k, n);
        have += (size_t)n;
        size_t p = 0;
        for (; p + REC <= have; p += REC, off += REC) {
            record r;
            memcpy(&r, buf + p, REC);
            CHECK(r.magic == MAGIC && r.worker < NW && r.conn == (uint32_t)rd->k &&
                      r.check == rec_check(r.worker, r.seq, r.idx, r.conn),
                  "peer %d: corrupt record at stream offset %llu (first byte 0x%02x): a buffer "
                  "was freed before it was written, or bytes were lost",
                  rd->k, (unsigned long long)off, buf[p]);
            int w = (int)r.worker;
            CHECK(cur == -1 || cur == w,
                  "peer %d: a buffer of worker %d was interrupted by worker %d", rd->k, cur, w);
            CHECK(r.seq == (uint32_t)next_seq[w],
                  "peer %d: worker %d: got seq %u, expected %ld (lost, repeated or reordered)",
                  rd->k, w, r.seq, next_seq[w]);
            CHECK(r.idx == (uint32_t)idx[w] && r.nrec == nrec_for(r.seq),
                  "peer %d: worker %d seq %u: record %u of %u, expected %ld", rd->k, w, r.seq,
                  r.idx, r.nrec, idx[w]);
            idx[w]++;
            cur = w;
            if (idx[w] == (long)r.nrec) {
                idx[w] = 0;
                next_seq[w] += NC;
                cur = -1;
                rd->buffers++;
            }
        }
        memmove(buf, buf + p, have - p);
        have -= p;
        if (rd->buffers == want) atomic_store(&rd->done, 1);
    }
}

/* ---- the loop ----------------------------------------------------------- */

static char g_peer[NC][64];
static tern_conn_id g_acc_id[NC];
static int g_nacc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) {
        CHECK(g_nacc < NC, "too many accepts");
        t_peer_addr(c, g_peer[g_nacc], sizeof g_peer[g_nacc]);
        g_acc_id[g_nacc++] = rec.id;
    }
    if (ev == TERN_EV_ERROR)
        FAIL("ERROR on id %llu: %s", (unsigned long long)rec.id, (const char *)ev_data);
    if (ev == TERN_EV_READ) FAIL("the server received bytes");
}

/* ---- pushes to gone ids, from another thread ---------------------------- */

static t_free_counter g_odd_frees;
static atomic_int g_odd_step, g_odd_ack;
static char g_odd_buf[4][64];

static tern_bytes *odd_buffer(int i) {
    snprintf(g_odd_buf[i], sizeof g_odd_buf[i], "must never be sent #%d", i);
    return tern_bytes_wrap(g_odd_buf[i], strlen(g_odd_buf[i]), t_count_free, &g_odd_frees);
}

static void *odd_thread(void *arg) {
    (void)arg;
    tern_remote *r = tern_remote_clone(g_remote);
    CHECK(r != NULL, "tern_remote_clone");
    /* step 1: close peer 0's connection through the remote */
    while (atomic_load(&g_odd_step) != 1) t_sleep_ms(1);
    CHECK_OK(tern_remote_close(r, g_ids[0]));
    atomic_store(&g_odd_ack, 1);
    /* step 2: push to the closed id, an unknown id and id 0 */
    while (atomic_load(&g_odd_step) != 2) t_sleep_ms(1);
    CHECK_OK(tern_remote_send(r, g_ids[0], odd_buffer(0)));
    CHECK_OK(tern_remote_send(r, (tern_conn_id)1 << 40, odd_buffer(1)));
    long before = atomic_load(&g_odd_frees.frees);
    int rc = tern_remote_send(r, 0, odd_buffer(2));
    CHECK(rc == TERN_OK || rc == TERN_EINVAL || rc == TERN_ECLOSED,
          "push to id 0 returned %d (%s)", rc, tern_strerror(rc));
    if (rc != TERN_OK)
        CHECK(atomic_load(&g_odd_frees.frees) == before + 1,
              "push to id 0 refused (%s) without releasing its buffer", tern_strerror(rc));
    CHECK_OK(tern_remote_wakeup(r, g_ids[0], odd_buffer(3)));
    rc = tern_remote_close(r, (tern_conn_id)1 << 41);
    CHECK(rc == TERN_OK || rc == TERN_ECLOSED, "remote close of an unknown id: %d", rc);
    tern_remote_free(r);
    atomic_store(&g_odd_ack, 2);
    return NULL;
}

static int g_call_ran;
static void never_called(tern_mgr *m, void *user) {
    (void)m;
    (void)user;
    g_call_ran = 1;
}

int main(void) {
    t_begin("test_remote_push", 120, 300);
    NPUSH = t_scale(10000, 1000);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_slots = calloc((size_t)(NW * NPUSH), sizeof(slot));

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_POSTED, 64));
    t_listen(m, on_event, NULL, &g_port);
    g_remote = tern_mgr_remote(m);
    CHECK(g_remote != NULL, "tern_mgr_remote: %s", tern_strerror(tern_last_error()));
    CHECK_RC(tern_mgr_set(m, TERN_OPT_MAX_POSTED, 128), TERN_EPROTO);

    for (int k = 0; k < NC; k++) {
        g_rd[k].k = k;
        g_rd[k].fd = t_raw_connect(g_port, k == 0 ? 8192 : 0); /* peer 0 reads slowly */
    }
    T_POLL_UNTIL(m, g_nacc == NC, 5000, "%d accepts", NC);
    /* match accepted ids to peer sockets by port */
    for (int k = 0; k < NC; k++) {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", t_raw_local_port(g_rd[k].fd));
        for (int i = 0; i < NC; i++)
            if (strcmp(g_peer[i], want) == 0) g_ids[k] = g_acc_id[i];
        CHECK(g_ids[k] != 0, "no accepted connection has peer address %s", want);
    }
    pthread_t rt[NC], wt[NW];
    for (int k = 0; k < NC; k++) pthread_create(&rt[k], NULL, reader_main, &g_rd[k]);
    double t0 = t_now_ms();
    for (long w = 0; w < NW; w++) pthread_create(&wt[w], NULL, worker, (void *)(intptr_t)w);
    /* The loop is not polling: the queue fills, then every worker is refused. Once each
     * one has been, no push is in flight: exactly TERN_OPT_MAX_POSTED were accepted. */
    double end = t_now_ms() + t_bound_ms(10000);
    for (int w = 0; w < NW; w++)
        while (atomic_load(&g_worker_efull[w]) == 0) {
            CHECK(t_now_ms() < end, "worker %d was never refused with TERN_EFULL (%ld pushes accepted "
                  "with TERN_OPT_MAX_POSTED 64 and the loop idle): the posted queue is not bounded",
                  w, atomic_load(&g_pushed));
            t_sleep_ms(1);
        }
    CHECK(atomic_load(&g_pushed) == 64,
          "%ld pushes returned TERN_OK while the loop was idle, TERN_OPT_MAX_POSTED is 64",
          atomic_load(&g_pushed));

    int all = 0;
    end = t_now_ms() + 90000.0 * (t_small ? 3 : 1);
    while (!all) {
        if (t_now_ms() > end)
            FAIL("timed out: %ld of %ld pushed, peers done %d %d %d %d", atomic_load(&g_pushed),
                 NW * NPUSH, atomic_load(&g_rd[0].done), atomic_load(&g_rd[1].done),
                 atomic_load(&g_rd[2].done), atomic_load(&g_rd[3].done));
        t_poll(m, 10);
        all = 1;
        for (int k = 0; k < NC; k++) all &= atomic_load(&g_rd[k].done);
    }
    for (int w = 0; w < NW; w++) pthread_join(wt[w], NULL);
    printf("%ld buffers pushed and received in %.0f ms (%ld TERN_EFULL retries)\n", NW * NPUSH,
           t_now_ms() - t0, atomic_load(&g_efull));
    CHECK(atomic_load(&g_efull) >= NW, "%ld TERN_EFULL answers, want at least one per worker",
          atomic_load(&g_efull));
    /* every byte reached the kernel, so every buffer must be released by now (a few more
     * polls let the loop finish the last writes' bookkeeping) */
    long missing = 0;
    end = t_now_ms() + 5000;
    do {
        t_poll(m, 5);
        missing = 0;
        for (long i = 0; i < NW * NPUSH; i++)
            missing += atomic_load(&g_slots[i].wraps) - atomic_load(&g_slots[i].frees);
    } while (missing != 0 && t_now_ms() < end);
    CHECK(missing == 0, "%ld wrapped buffers were written but never released", missing);
    for (long i = 0; i < NW * NPUSH; i++)
        CHECK(atomic_load(&g_slots[i].frees) == atomic_load(&g_slots[i].wraps) &&
                  atomic_load(&g_slots[i].wraps) >= 1,
              "buffer %ld: %d wraps, %d frees", i, atomic_load(&g_slots[i].wraps),
              atomic_load(&g_slots[i].frees));

    /* ---- closed, unknown and zero ids ---- */
    pthread_t ot;
    pthread_create(&ot, NULL, odd_thread, NULL);
    atomic_store(&g_odd_step, 1);
    T_POLL_UNTIL(m, atomic_load(&g_odd_ack) == 1 && t_track_get(g_ids[0]).closed == 1, 5000,
                 "tern_remote_close closes the connection");
    CHECK(tern_conn_lookup(m, g_ids[0]) == NULL, "closed id still found");
    pthread_join(rt[0], NULL);
    CHECK(atomic_load(&g_rd[0].eof), "peer 0 did not see the connection end");
    atomic_store(&g_odd_step, 2);
    T_POLL_UNTIL(m, atomic_load(&g_odd_ack) == 2 && atomic_load(&g_odd_frees.frees) == 4, 5000,
                 "buffers pushed to gone ids released (%ld of 4)",
                 atomic_load(&g_odd_frees.frees));
    pthread_join(ot, NULL);
    for (int i = 0; i < 20; i++) t_poll(m, 1);
    CHECK(atomic_load(&g_odd_frees.frees) == 4, "buffers pushed to gone ids: %ld frees, want 4",
          atomic_load(&g_odd_frees.frees));
    CHECK(t_track_get(g_ids[0]).wakeups == 0, "a closed connection got WAKEUP");

    /* ---- after tern_mgr_free ---- */
    tern_remote *late = tern_remote_clone(g_remote);
    CHECK(late != NULL, "tern_remote_clone");
    tern_remote_free(g_remote);
    long closes_before = t_trk.closes;
    t_free(m);
    CHECK(t_trk.closes == closes_before + NC, "tern_mgr_free delivered %ld CLOSE events, want %d",
          t_trk.closes - closes_before, NC);
    t_track_check_all_closed();
    for (int k = 1; k < NC; k++) {
        pthread_join(rt[k], NULL);
        CHECK(atomic_load(&g_rd[k].eof), "peer %d did not see the connection end", k);
    }
    static t_free_counter late_frees;
    static char late_buf[3][16] = {"late send", "late wakeup", "late ws"};
    tern_bytes *b = tern_bytes_wrap(late_buf[0], 9, t_count_free, &late_frees);
    CHECK_RC(tern_remote_send(late, g_ids[1], b), TERN_ECLOSED);
    CHECK(atomic_load(&late_frees.frees) == 1, "send after free: buffer not released on return");
    b = tern_bytes_wrap(late_buf[1], 11, t_count_free, &late_frees);
    CHECK_RC(tern_remote_wakeup(late, g_ids[1], b), TERN_ECLOSED);
    CHECK(atomic_load(&late_frees.frees) == 2, "wakeup after free: buffer not released");
    b = tern_bytes_wrap(late_buf[2], 7, t_count_free, &late_frees);
    CHECK_RC(tern_remote_ws_send(late, g_ids[1], TERN_WS_BINARY, b), TERN_ECLOSED);
    CHECK(atomic_load(&late_frees.frees) == 3, "ws_send after free: buffer not released");
    CHECK_RC(tern_remote_wakeup(late, g_ids[1], NULL), TERN_ECLOSED);
    CHECK_RC(tern_remote_close(late, g_ids[1]), TERN_ECLOSED);
    CHECK_RC(tern_remote_call(late, never_called, NULL), TERN_ECLOSED);
    CHECK(!g_call_ran, "tern_remote_call ran its function after tern_mgr_free");
    /* a remote stays usable after the manager is gone: a clone works, and says so */
    tern_remote *late2 = tern_remote_clone(late);
    CHECK(late2 != NULL, "tern_remote_clone after tern_mgr_free returned NULL (%s)",
          tern_strerror(tern_last_error()));
    b = tern_bytes_wrap(late_buf[0], 9, t_count_free, &late_frees);
    CHECK_RC(tern_remote_send(late2, g_ids[2], b), TERN_ECLOSED);
    CHECK(atomic_load(&late_frees.frees) == 4, "send on a late clone: buffer not released");
    tern_remote_free(late2);
    tern_remote_free(late);

    for (int k = 0; k < NC; k++) close(g_rd[k].fd);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    free(g_slots);
    t_track_fini();
    t_pass();
    return 0;
}
