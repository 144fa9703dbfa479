/* test_echo: a tern echo server and raw POSIX clients (blocking sockets in a thread).
 *
 * Proves:
 *   - echo round trip, small and 1 MiB (the client reads slowly through a small receive
 *     buffer, so the server must queue and write partially); TERN_EV_WRITE amounts add up
 *     to what was sent and TERN_EV_DRAIN comes once the queue empties;
 *   - TERN_EV_READ offers every unconsumed byte again: a server that consumes only whole
 *     16-byte records sees split records completed by the next READ;
 *   - tern_close flushes what is queued, then closes (the peer reads all, then EOF), seen
 *     with data still queued after a write (the peer waits for that before it reads);
 *   - event order: OPEN, ACCEPT, ..., exactly one CLOSE last, only inside poll/free;
 *     listeners get their CLOSE inside tern_mgr_free;
 *   - per-connection user pointers, tern_conn_lookup, tern_conn_mgr, local port, peer
 *     address; tern_mgr_conn_count back to its baseline; no buffer, descriptor leak.
 */
#include "common.h"

#define BIG (1u << 20)
static size_t FLUSH_LEN; /* more than a send buffer holds: t_beyond_sndbuf() */
#define REC 16
#define NREC 200

enum { MODE_ECHO = 1, MODE_RECORDS = 2, MODE_FLUSH_CLOSE = 3 };

typedef struct {
    int mode;
} listener_ctx;

typedef struct {
    int mode;
    tern_conn_id id;
    size_t rx;          /* bytes received (consumed) */
    size_t tx;          /* bytes handed to tern_send* */
    size_t max_queued;  /* largest tern_conn_queued seen */
    int closed;
} conn_ctx;

static tern_mgr *g_mgr;
static int g_port[4];
static conn_ctx g_conns[16];
static int g_nconns;
static char g_peer[16][64]; /* peer address of each accepted connection, in accept order */
static int g_client_port[16];
static atomic_int g_client_ports_n;
static atomic_int g_client_done;
/* Set by the loop thread, waited for by the client thread (instead of sleeping): */
static atomic_size_t g_echo_queued_max;  /* largest queue of the echo connection */
static atomic_size_t g_flush_left_after; /* flush-close: most left queued after a WRITE */

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    CHECK(tern_conn_mgr(c) == g_mgr, "tern_conn_mgr does not return the manager");
    if (ev != TERN_EV_CLOSE)
        CHECK(tern_conn_lookup(g_mgr, rec.id) == c, "tern_conn_lookup(%llu) is not the connection",
              (unsigned long long)rec.id);

    if (ev == TERN_EV_OPEN) {
        /* listeners and accepted connections: the user pointer is the listener's */
        listener_ctx *lc = user;
        CHECK(lc != NULL && lc->mode >= MODE_ECHO && lc->mode <= MODE_FLUSH_CLOSE,
              "OPEN: user pointer is not the listener's");
        CHECK(tern_conn_user(c) == user, "tern_conn_user differs from the handler's user");
        return;
    }
    if (ev == TERN_EV_ACCEPT) {
        listener_ctx *lc = user;
        CHECK(g_nconns < 16, "too many accepted connections");
        conn_ctx *cc = &g_conns[g_nconns];
        int idx = g_nconns++;
        cc->mode = lc->mode;
        cc->id = rec.id;
        int lp = tern_conn_local_port(c);
        CHECK(lp == g_port[lc->mode], "accepted connection's local port %d, listener's %d", lp,
              g_port[lc->mode]);
        t_peer_addr(c, g_peer[idx], sizeof g_peer[idx]);
        CHECK(strncmp(g_peer[idx], "127.0.0.1:", 10) == 0, "peer address \"%s\"", g_peer[idx]);
        char tiny[4];
        CHECK(tern_conn_peer_addr(c, tiny, sizeof tiny) < 0,
              "tern_conn_peer_addr into a 4-byte buffer must fail, not truncate silently");
        tern_conn_set_user(c, cc);
        CHECK(tern_conn_user(c) == cc, "tern_conn_set_user did not stick");
        if (cc->mode == MODE_FLUSH_CLOSE) {
            /* queue more than the kernel takes (the peer does not read yet), then ask
             * for a graceful close */
            void *p = NULL;
            tern_bytes *b = tern_bytes_alloc(FLUSH_LEN, &p);
            CHECK(b != NULL && p != NULL, "tern_bytes_alloc failed");
            t_fill_pattern(p, FLUSH_LEN, 77, 0);
            CHECK(tern_bytes_len(b) == FLUSH_LEN && tern_bytes_data(b) == p, "alloc'd bytes");
            CHECK_OK(tern_send_bytes(c, b));
            cc->tx += FLUSH_LEN;
            CHECK_OK(tern_close(c));
        }
        return;
    }
    /* listeners have the listener_ctx as user; accepted connections a conn_ctx */
    int is_listener = 1;
    for (int i = 0; i < g_nconns; i++)
        if (g_conns[i].id == rec.id) is_listener = 0;
    if (is_listener) {
        CHECK(ev == TERN_EV_CLOSE, "listener got event %s", t_ev_name(ev));
        CHECK(t_in_free, "a listener closed outside tern_mgr_free");
        return;
    }
    conn_ctx *cc = user;
    CHECK(cc != NULL && cc->id == rec.id, "handler's user is not the pointer set with "
                                          "tern_conn_set_user (event %s)", t_ev_name(ev));
    switch (ev) {
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        CHECK(s->len > 0, "READ with no bytes");
        if (cc->mode == MODE_ECHO) {
            CHECK_OK(tern_send(c, s->ptr, s->len));
            cc->tx += s->len;
            cc->rx += s->len;
            CHECK_OK(tern_conn_consume(c, s->len));
        } else if (cc->mode == MODE_RECORDS) {
            /* answer whole records only; leave a partial record for the next READ */
            size_t whole = s->len / REC * REC;
            char out[REC];
            for (size_t off = 0; off < whole; off += REC) {
                for (int i = 0; i < REC; i++) out[i] = (char)(s->ptr[off + (size_t)i] ^ 0x5A);
                CHECK_OK(tern_send(c, out, REC));
                cc->tx += REC;
            }
            cc->rx += whole;
            if (whole > 0) CHECK_OK(tern_conn_consume(c, whole));
        } else {
            FAIL("flush-close connection received %zu bytes", s->len);
        }
        size_t q = tern_conn_queued(c);
        if (q > cc->max_queued) cc->max_queued = q;
        if (cc->mode == MODE_ECHO && q > atomic_load(&g_echo_queued_max)) atomic_store(&g_echo_queued_max, q);
        break;
    }
    case TERN_EV_WRITE:
        if (cc->mode == MODE_FLUSH_CLOSE) {
            /* after a write, with the close already asked for: what is still queued */
            size_t q = tern_conn_queued(c);
            if (q > cc->max_queued) cc->max_queued = q;
            if (q > atomic_load(&g_flush_left_after)) atomic_store(&g_flush_left_after, q);
        }
        break;
    case TERN_EV_ERROR:
        FAIL("unexpected ERROR on connection %llu: %s", (unsigned long long)rec.id,
             (const char *)ev_data);
    case TERN_EV_CLOSE:
        cc->closed = 1;
        break;
    default: break;
    }
}

/* ---- the raw client ---------------------------------------------------- */

typedef struct {
    int fd;
} writer_arg;

static void *big_writer(void *arg) {
    writer_arg *wa = arg;
    unsigned char *buf = malloc(BIG);
    t_fill_pattern(buf, BIG, 1, 0);
    /* write in uneven pieces */
    size_t off = 0, piece = 1000;
    while (off < BIG) {
        size_t n = BIG - off < piece ? BIG - off : piece;
        t_write_all(wa->fd, buf + off, n);
        off += n;
        piece = piece * 3 % 70001 + 1;
    }
    free(buf);
    return NULL;
}

static void note_client_port(int fd) {
    int i = atomic_load(&g_client_ports_n);
    g_client_port[i] = t_raw_local_port(fd);
    atomic_store(&g_client_ports_n, i + 1);
}

static void *client_main(void *arg) {
    (void)arg;
    /* 1. echo: small, then 1 MiB read slowly through a 16 KiB receive buffer */
    int fd = t_raw_connect(g_port[MODE_ECHO], 16 * 1024);
    note_client_port(fd);
    t_write_all(fd, "hello", 5);
    char small[5];
    t_read_exact(fd, small, 5, "echo of hello");
    CHECK(memcmp(small, "hello", 5) == 0, "echo of hello is \"%.5s\"", small);

    pthread_t wt;
    writer_arg wa = {fd};
    pthread_create(&wt, NULL, big_writer, &wa);
    /* read nothing until the server has had to queue (the slow-reader path) */
    double end = t_now_ms() + t_bound_ms(10000);
    while (atomic_load(&g_echo_queued_max) < 64 * 1024) {
        CHECK(t_now_ms() < end, "the echo server never queued 64 KiB (at most %zu) for a reader that "
              "does not read", atomic_load(&g_echo_queued_max));
        t_sleep_ms(1);
    }
    unsigned char *got = malloc(BIG);
    size_t have = 0;
    while (have < BIG) {
        size_t want = BIG - have < 4096 ? BIG - have : 4096;
        t_read_exact(fd, got + have, want, "1 MiB echo");
        have += want;
    }
    pthread_join(wt, NULL);
    long bad = t_check_pattern(got, BIG, 1, 0);
    CHECK(bad < 0, "1 MiB echo differs at byte %ld", bad);
    free(got);
    close(fd);

    /* 2. records split across writes: the server must see the rest of a record later */
    fd = t_raw_connect(g_port[MODE_RECORDS], 0);
    note_client_port(fd);
    unsigned char recs[NREC * REC], back[NREC * REC];
    t_fill_pattern(recs, sizeof recs, 2, 0);
    size_t off = 0, piece = 5;
    while (off < sizeof recs) {
        size_t n = sizeof recs - off < piece ? sizeof recs - off : piece;
        t_write_all(fd, recs + off, n);
        off += n;
        piece = piece % 37 + 3; /* 3..39 bytes: records split at every offset */
        if (off % 7 == 0) t_sleep_ms(2);
    }
    t_read_exact(fd, back, sizeof back, "record answers");
    for (size_t i = 0; i < sizeof recs; i++)
        CHECK((unsigned char)(back[i] ^ 0x5A) == recs[i],
              "record answer differs at byte %zu: a partial record was lost or repeated", i);
    close(fd);

    /* 3. graceful close: everything queued arrives, then EOF */
    fd = t_raw_connect(g_port[MODE_FLUSH_CLOSE], 8 * 1024);
    note_client_port(fd);
    /* read nothing until the server has written part and still holds the rest */
    end = t_now_ms() + t_bound_ms(10000);
    while (atomic_load(&g_flush_left_after) == 0) {
        CHECK(t_now_ms() < end, "flush-close: no write left data queued behind tern_close");
        t_sleep_ms(1);
    }
    unsigned char *fl = malloc(FLUSH_LEN);
    t_read_exact(fd, fl, FLUSH_LEN, "data queued before tern_close");
    bad = t_check_pattern(fl, FLUSH_LEN, 77, 0);
    CHECK(bad < 0, "flushed data differs at byte %ld", bad);
    free(fl);
    char extra;
    ssize_t n = recv(fd, &extra, 1, 0);
    CHECK(n == 0, "expected EOF after the flushed data, recv returned %zd (%s)", n,
          n < 0 ? strerror(errno) : "data");
    close(fd);
    atomic_store(&g_client_done, 1);
    return NULL;
}

int main(void) {
    t_begin("test_echo", 60, 120);
    FLUSH_LEN = t_beyond_sndbuf();
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    g_mgr = tern_mgr_new();
    CHECK(g_mgr != NULL, "tern_mgr_new failed: %d", tern_last_error());
    CHECK(tern_mgr_conn_count(g_mgr) == 0, "new manager has %zu connections",
          tern_mgr_conn_count(g_mgr));
    static listener_ctx lctx[4] = {{0}, {MODE_ECHO}, {MODE_RECORDS}, {MODE_FLUSH_CLOSE}};
    tern_conn *l[4];
    tern_conn_id lid[4];
    for (int i = 1; i <= 3; i++) {
        l[i] = t_listen(g_mgr, on_event, &lctx[i], &g_port[i]);
        lid[i] = tern_conn_get_id(l[i]);
        CHECK(lid[i] != 0, "listener id 0");
        CHECK(t_track_get(lid[i]).nevents == 0, "OPEN delivered inside tern_listen");
    }
    CHECK(lid[1] != lid[2] && lid[2] != lid[3] && lid[1] != lid[3], "listener ids not unique");
    T_POLL_UNTIL(g_mgr, t_track_count(&t_trk.opens) == 3, 2000, "listener OPEN events");
    CHECK(tern_mgr_conn_count(g_mgr) == 3, "3 listeners, tern_mgr_conn_count = %zu",
          tern_mgr_conn_count(g_mgr));

    pthread_t ct;
    pthread_create(&ct, NULL, client_main, NULL);
    size_t peak = 0;
    double end = t_now_ms() + 30000 * (t_small ? 4 : 1);
    while (!(atomic_load(&g_client_done) && t_track_count(&t_trk.closes) == 3)) {
        if (t_now_ms() > end) FAIL("timed out: client done %d, closes %ld",
                                   atomic_load(&g_client_done), t_track_count(&t_trk.closes));
        t_poll(g_mgr, 10);
        if (tern_mgr_conn_count(g_mgr) > peak) peak = tern_mgr_conn_count(g_mgr);
    }
    pthread_join(ct, NULL);
    CHECK(peak >= 4, "tern_mgr_conn_count never counted an accepted connection (peak %zu)",
          peak);
    CHECK(tern_mgr_conn_count(g_mgr) == 3, "after the clients left: %zu connections, want 3",
          tern_mgr_conn_count(g_mgr));
    CHECK(g_nconns == 3, "%d accepted connections, want 3", g_nconns);

    for (int i = 0; i < g_nconns; i++) {
        conn_ctx *cc = &g_conns[i];
        t_rec r = t_track_get(cc->id);
        CHECK(r.closed == 1 && cc->closed, "connection %d not closed", i);
        CHECK(r.errors == 0, "connection %d got ERROR on a clean close", i);
        CHECK(tern_conn_lookup(g_mgr, cc->id) == NULL, "tern_conn_lookup finds a closed id");
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", g_client_port[i]);
        CHECK(strcmp(g_peer[i], want) == 0, "peer address \"%s\", client is %s", g_peer[i], want);
        CHECK(r.written == cc->tx, "connection %d: TERN_EV_WRITE amounts add up to %zu, %zu sent",
              i, r.written, cc->tx);
    }
    conn_ctx *echo = &g_conns[0], *recs = &g_conns[1], *flush = &g_conns[2];
    CHECK(echo->mode == MODE_ECHO && recs->mode == MODE_RECORDS && flush->mode == MODE_FLUSH_CLOSE,
          "accept order");
    CHECK(echo->rx == BIG + 5 && echo->tx == BIG + 5, "echo: rx %zu tx %zu", echo->rx, echo->tx);
    CHECK(echo->max_queued >= 64 * 1024,
          "the 1 MiB echo never queued more than %zu bytes: the slow-reader path was not tested",
          echo->max_queued);
    CHECK(t_track_get(echo->id).drains >= 1, "no TERN_EV_DRAIN after the echo queue emptied");
    CHECK(t_track_get(echo->id).reads >= 2, "1 MiB arrived in one READ?");
    CHECK(recs->rx == NREC * REC, "records: %zu bytes consumed", recs->rx);
    printf("flush-close: %zu of %zu bytes still queued after a write\n", flush->max_queued, FLUSH_LEN);
    CHECK(flush->max_queued > 0 && flush->max_queued < FLUSH_LEN,
          "flush-close: %zu bytes still queued after a write (want some, not all, of %zu)",
          flush->max_queued, FLUSH_LEN);

    /* listeners: still alive; their CLOSE comes inside tern_mgr_free */
    for (int i = 1; i <= 3; i++) CHECK(tern_conn_lookup(g_mgr, lid[i]) == l[i], "listener gone");
    long closes_before = t_track_count(&t_trk.closes);
    t_free(g_mgr);
    CHECK(t_track_count(&t_trk.closes) == closes_before + 3, "tern_mgr_free delivered %ld CLOSE "
          "events, want 3 (the listeners)", t_track_count(&t_trk.closes) - closes_before);
    CHECK(t_trk.closes_in_free == 3, "closes in free: %ld", t_trk.closes_in_free);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    int fds_now = t_count_fds();
    CHECK(fds_now == fds_base, "open descriptors: %d after tern_mgr_free, %d before", fds_now,
          fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
