/* test_free_with_queued: tern_mgr_free while data is still queued and posted.
 *
 * Three raw peers connect and never read (small receive buffers). The server queues
 * 8.5 MiB on each: wrapped buffers (tern_send_bytes), a copy (tern_send), a
 * tern_bytes_copy, and one wrapped 2 MiB buffer shared by all three connections
 * (tern_bytes_share, own reference released). Then, without polling again, buffers are
 * posted through a remote (send and wakeup), and a tern client is started with data
 * queued before it connects. A CLOSE handler that tries to send during tern_mgr_free
 * hands over one more buffer per connection.
 *
 * tern_mgr_free must: return promptly (not wait for peers that never read), deliver
 * exactly one CLOSE for every opened connection inside the call, release every buffer
 * exactly once (free callbacks counted per buffer; the shared one once), bring
 * tern_bytes_live back to its baseline, close every socket (peers see the end,
 * descriptors back to the baseline).
 */
#include "common.h"

#define NPEER 3
#define NWRAP 6
#define WRAP_LEN (1u << 20)
#define SHARED_LEN (2u << 20)
#define NPOST 10

static t_free_counter g_wrap_fc[NPEER][NWRAP];
static unsigned char *g_wrap_mem[NPEER][NWRAP];
static t_free_counter g_shared_fc;
static t_free_counter g_post_fc[NPEER];
static t_free_counter g_wake_fc;
static t_free_counter g_client_fc;
static t_free_counter g_inclose_fc;
static long g_inclose_tries;
static char g_small[64] = "posted after the last poll";

static tern_conn_id g_acc[NPEER];
static int g_nacc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ACCEPT) {
        CHECK(g_nacc < NPEER, "too many accepts");
        g_acc[g_nacc++] = rec.id;
    }
    if (ev == TERN_EV_ERROR && !t_in_free)
        FAIL("ERROR on id %llu before tern_mgr_free: %s", (unsigned long long)rec.id,
             (const char *)ev_data);
    if (ev == TERN_EV_READ) FAIL("the server received bytes");
    if (ev == TERN_EV_CLOSE) {
        CHECK(t_in_free, "connection %llu closed before tern_mgr_free", (unsigned long long)rec.id);
        /* a handler that still tries to send while the manager goes away */
        static char bye[] = "bye";
        tern_bytes *b = tern_bytes_wrap(bye, 3, t_count_free, &g_inclose_fc);
        int rc = tern_send_bytes(c, b); /* any result; the buffer must be released */
        (void)rc;
        g_inclose_tries++;
    }
}

int main(void) {
    t_begin("test_free_with_queued", 60, 180);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    int port;
    t_listen(m, on_event, NULL, &port);
    int pfd[NPEER];
    for (int k = 0; k < NPEER; k++) pfd[k] = t_raw_connect(port, 4096);
    T_POLL_UNTIL(m, g_nacc == NPEER, 5000, "%d accepts", NPEER);

    /* the shared buffer: one wrap, one share per connection, our reference released */
    unsigned char *shared_mem = malloc(SHARED_LEN);
    t_fill_pattern(shared_mem, SHARED_LEN, 5, 0);
    tern_bytes *shared = tern_bytes_wrap(shared_mem, SHARED_LEN, t_count_free, &g_shared_fc);
    CHECK(shared != NULL, "tern_bytes_wrap");
    size_t total[NPEER];
    for (int k = 0; k < NPEER; k++) {
        tern_conn *c = tern_conn_lookup(m, g_acc[k]);
        CHECK(c != NULL, "accepted connection not found");
        total[k] = 0;
        for (int i = 0; i < NWRAP; i++) {
            g_wrap_mem[k][i] = malloc(WRAP_LEN);
            t_fill_pattern(g_wrap_mem[k][i], WRAP_LEN, (uint64_t)(k * 10 + i), 0);
            tern_bytes *b = tern_bytes_wrap(g_wrap_mem[k][i], WRAP_LEN, t_count_free_poison,
                                            &g_wrap_fc[k][i]);
            CHECK(b != NULL, "tern_bytes_wrap");
            CHECK_OK(tern_send_bytes(c, b));
            total[k] += WRAP_LEN;
        }
        unsigned char *tmp = malloc(256 * 1024);
        t_fill_pattern(tmp, 256 * 1024, 99, 0);
        CHECK_OK(tern_send(c, tmp, 256 * 1024));
        tern_bytes *cp = tern_bytes_copy(tmp, 256 * 1024);
        CHECK(cp != NULL && tern_bytes_data(cp) != tmp, "tern_bytes_copy must copy");
        free(tmp); /* the copy must not depend on our memory */
        CHECK_OK(tern_send_bytes(c, cp));
        total[k] += 512 * 1024;
        /* last in every queue, behind 6.5 MiB: still queued when the manager is freed */
        tern_bytes *sh = tern_bytes_share(shared);
        CHECK(sh != NULL, "tern_bytes_share");
        CHECK(tern_bytes_data(sh) == shared_mem && tern_bytes_len(sh) == SHARED_LEN,
              "a shared reference has other bytes");
        CHECK_OK(tern_send_bytes(c, sh));
        total[k] += SHARED_LEN;
    }
    tern_bytes_release(shared); /* our own reference; the connections hold theirs */
    CHECK(atomic_load(&g_shared_fc.frees) == 0, "shared buffer freed while still queued");

    /* let writing start; peers never read, so most stays queued */
    double end = t_now_ms() + 300;
    while (t_now_ms() < end) t_poll(m, 10);
    for (int k = 0; k < NPEER; k++) {
        tern_conn *c = tern_conn_lookup(m, g_acc[k]);
        CHECK(c != NULL, "connection %d went away", k);
        size_t q = tern_conn_queued(c);
        CHECK(q > 0 && q <= total[k], "connection %d: %zu of %zu bytes queued", k, q, total[k]);
    }
    CHECK(atomic_load(&g_shared_fc.frees) == 0,
          "the shared buffer was released although no peer read it");

    /* posted messages the loop will never handle */
    tern_remote *r = tern_mgr_remote(m);
    CHECK(r != NULL, "tern_mgr_remote");
    for (int k = 0; k < NPEER; k++)
        for (int i = 0; i < NPOST; i++)
            CHECK_OK(tern_remote_send(r, g_acc[k], tern_bytes_wrap(g_small, strlen(g_small),
                                                                   t_count_free,
                                                                   &g_post_fc[k])));
    CHECK_OK(tern_remote_wakeup(r, g_acc[0],
                                tern_bytes_wrap(g_small, 10, t_count_free, &g_wake_fc)));

    /* an outgoing connection with data queued before it could connect */
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    tern_conn *cl = tern_connect(m, url, on_event, NULL);
    CHECK(cl != NULL, "tern_connect");
    CHECK_OK(tern_send_bytes(cl, tern_bytes_wrap(g_small, 5, t_count_free, &g_client_fc)));

    long opens = t_trk.opens;
    double t0 = t_now_ms();
    t_free(m);
    double took = t_now_ms() - t0;
    CHECK(took < 3000, "tern_mgr_free took %.0f ms (it must not wait for peers to read)", took);
    /* the listener and the accepted connections (the client may not have opened yet) */
    CHECK(t_trk.closes_in_free >= opens && t_trk.closes == t_trk.opens,
          "%ld CLOSE events in tern_mgr_free, %ld opened", t_trk.closes_in_free, t_trk.opens);
    t_track_check_all_closed();
    CHECK(g_inclose_tries == t_trk.closes, "CLOSE handler ran %ld times", g_inclose_tries);

    for (int k = 0; k < NPEER; k++) {
        for (int i = 0; i < NWRAP; i++)
            CHECK(atomic_load(&g_wrap_fc[k][i].frees) == 1,
                  "connection %d buffer %d: released %ld times", k, i,
                  atomic_load(&g_wrap_fc[k][i].frees));
        CHECK(atomic_load(&g_post_fc[k].frees) == NPOST,
              "connection %d: %ld of %d posted buffers released", k,
              atomic_load(&g_post_fc[k].frees), NPOST);
    }
    CHECK(atomic_load(&g_shared_fc.frees) == 1, "shared buffer released %ld times",
          atomic_load(&g_shared_fc.frees));
    CHECK(atomic_load(&g_wake_fc.frees) == 1, "posted wakeup buffer released %ld times",
          atomic_load(&g_wake_fc.frees));
    CHECK(atomic_load(&g_client_fc.frees) == 1, "client's early buffer released %ld times",
          atomic_load(&g_client_fc.frees));
    CHECK(atomic_load(&g_inclose_fc.frees) == g_inclose_tries,
          "buffers sent from CLOSE handlers: %ld released of %ld", atomic_load(&g_inclose_fc.frees),
          g_inclose_tries);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);

    /* remotes outlive the manager */
    CHECK_RC(tern_remote_send(r, g_acc[0], tern_bytes_copy("x", 1)), TERN_ECLOSED);
    tern_remote_free(r);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live after a late send: %llu",
          (unsigned long long)tern_bytes_live());

    /* every socket was closed: the peers see the end */
    for (int k = 0; k < NPEER; k++) {
        size_t got = 0;
        int how = t_wait_peer_close(pfd[k], 10000, &got);
        CHECK(how >= 0, "peer %d: connection still open after tern_mgr_free", k);
        CHECK(got < total[k], "peer %d read all %zu bytes: nothing was still queued", k, got);
        close(pfd[k]);
    }
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    free(shared_mem);
    for (int k = 0; k < NPEER; k++)
        for (int i = 0; i < NWRAP; i++) free(g_wrap_mem[k][i]);
    t_track_fini();
    t_pass();
    return 0;
}
