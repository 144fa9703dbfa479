/* test_many_conns: 1,000 simultaneous connections on one loop.
 *
 * Phase A: a thread opens 1,000 raw blocking sockets to a tern server and keeps them
 *   all open; each sends a 16-byte record and reads its answer; only when every answer
 *   arrived (all 1,000 connections alive at once: tern_mgr_conn_count = 1,001 with the
 *   listener) do they close. Every accepted connection gets OPEN, ACCEPT, READ, CLOSE.
 * Phase B: 1,000 tern clients (tern_connect) on the same loop as the server: 2,000
 *   connections plus the listener at the peak, every client sends its record before
 *   CONNECT (queued until connected) and checks the answer; then all close.
 * Counts of every event kind are exact; conn count, buffers and descriptors return to
 * their baselines. TERN_TEST_SCALE=small uses 100 connections.
 */
#include "common.h"

#define REC 16

enum { K_SERVER = 1, K_CLIENT = 2 };

typedef struct {
    int kind;
    long index;       /* client index */
    tern_conn_id id;
    int answered;     /* client: got the right answer */
    int connected;
} peer;

static tern_mgr *g_mgr;
static long N;
static peer g_srv = {K_SERVER, -1, 0, 0, 0};
static peer *g_cli;            /* phase B clients */
static long g_answers;         /* phase B answers verified */
static long g_srv_reads_bytes; /* bytes the server consumed */
static long g_srv_accepts;

static void make_record(char *rec, long i) {
    char tmp[32]; /* room for any long: the record keeps its first REC bytes */
    snprintf(tmp, sizeof tmp, "Q%08ld-------", i % 100000000);
    memcpy(rec, tmp, REC);
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    peer *p = user;
    CHECK(p != NULL, "NULL user");
    if (ev == TERN_EV_ERROR)
        FAIL("unexpected ERROR on id %llu (%s): %s", (unsigned long long)rec.id,
             p->kind == K_SERVER ? "server side" : "client", (const char *)ev_data);
    if (p->kind == K_SERVER) {
        if (ev == TERN_EV_ACCEPT) g_srv_accepts++;
        if (ev == TERN_EV_READ) {
            tern_str *s = ev_data;
            size_t whole = s->len / REC * REC;
            for (size_t off = 0; off < whole; off += REC) {
                char ans[REC];
                memcpy(ans, s->ptr + off, REC);
                CHECK(ans[0] == 'Q', "server got a bad record");
                ans[0] = 'A';
                CHECK_OK(tern_send(c, ans, REC));
            }
            if (whole) CHECK_OK(tern_conn_consume(c, whole));
            g_srv_reads_bytes += (long)whole;
        }
        return;
    }
    /* a phase B client */
    switch (ev) {
    case TERN_EV_CONNECT: p->connected = 1; break;
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        if (s->len < REC) break; /* wait for the whole answer */
        CHECK(s->len == REC, "client %ld got %zu bytes, want %d", p->index, s->len, REC);
        char want[REC];
        make_record(want, p->index);
        want[0] = 'A';
        CHECK(memcmp(s->ptr, want, REC) == 0, "client %ld got the wrong answer \"%.16s\"",
              p->index, s->ptr);
        CHECK(!p->answered, "client %ld answered twice", p->index);
        p->answered = 1;
        g_answers++;
        CHECK_OK(tern_conn_consume(c, REC));
        break;
    }
    default: break;
    }
}

/* ---- phase A: raw clients in a thread -------------------------------- */

static int g_port;
static atomic_int g_a_answered, g_a_go_close, g_a_closed;

static void *raw_clients(void *arg) {
    (void)arg;
    int *fds = calloc((size_t)N, sizeof(int));
    for (long i = 0; i < N; i++) fds[i] = t_raw_connect(g_port, 0);
    for (long i = 0; i < N; i++) {
        char rec[REC];
        make_record(rec, i);
        t_write_all(fds[i], rec, REC);
    }
    for (long i = 0; i < N; i++) {
        char got[REC], want[REC];
        t_read_exact(fds[i], got, REC, "raw client answer");
        make_record(want, i);
        want[0] = 'A';
        CHECK(memcmp(got, want, REC) == 0, "raw client %ld got \"%.16s\"", i, got);
    }
    atomic_store(&g_a_answered, 1);
    while (!atomic_load(&g_a_go_close)) t_sleep_ms(5);
    for (long i = 0; i < N; i++) close(fds[i]);
    free(fds);
    atomic_store(&g_a_closed, 1);
    return NULL;
}

int main(void) {
    t_begin("test_many_conns", 120, 240);
    N = t_scale(1000, 100);
    /* phase B holds 2N sockets in this process (both ends), plus some margin */
    t_need_fds(2 * N + 64);
    t_track_init((size_t)(3 * N + 16));
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    g_mgr = tern_mgr_new();
    CHECK(g_mgr != NULL, "tern_mgr_new");
    tern_conn *l = t_listen(g_mgr, on_event, &g_srv, &g_port);
    (void)l;
    T_POLL_UNTIL(g_mgr, t_trk.opens == 1, 2000, "listener OPEN");

    /* ---- phase A ---- */
    double t0 = t_now_ms();
    pthread_t th;
    pthread_create(&th, NULL, raw_clients, NULL);
    T_POLL_UNTIL(g_mgr, atomic_load(&g_a_answered), 60000,
                 "phase A: %ld raw clients answered (accepted %ld)", N, g_srv_accepts);
    /* every raw client is still connected: all N accepted connections alive at once */
    CHECK(g_srv_accepts == N, "phase A: %ld accepts, want %ld", g_srv_accepts, N);
    CHECK(tern_mgr_conn_count(g_mgr) == (size_t)N + 1,
          "phase A: tern_mgr_conn_count = %zu with %ld connections and the listener open",
          tern_mgr_conn_count(g_mgr), N);
    CHECK(t_trk.closes == 0, "phase A: %ld connections closed early", t_trk.closes);
    atomic_store(&g_a_go_close, 1);
    T_POLL_UNTIL(g_mgr, atomic_load(&g_a_closed) && t_trk.closes == N, 60000,
                 "phase A: %ld CLOSE events (have %ld)", N, t_trk.closes);
    pthread_join(th, NULL);
    CHECK(tern_mgr_conn_count(g_mgr) == 1, "phase A over: tern_mgr_conn_count = %zu",
          tern_mgr_conn_count(g_mgr));
    CHECK(g_srv_reads_bytes == N * REC, "phase A: server consumed %ld bytes", g_srv_reads_bytes);
    CHECK(t_trk.errors == 0, "phase A: %ld ERROR events", t_trk.errors);
    printf("phase A: %ld raw connections in %.0f ms\n", N, t_now_ms() - t0);

    /* ---- phase B ---- */
    t0 = t_now_ms();
    g_cli = calloc((size_t)N, sizeof(peer));
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", g_port);
    for (long i = 0; i < N; i++) {
        g_cli[i].kind = K_CLIENT;
        g_cli[i].index = i;
        tern_conn *c = tern_connect(g_mgr, url, on_event, &g_cli[i]);
        CHECK(c != NULL, "tern_connect #%ld failed: %s", i, tern_strerror(tern_last_error()));
        g_cli[i].id = tern_conn_get_id(c);
        char rec[REC];
        make_record(rec, i);
        CHECK_OK(tern_send(c, rec, REC)); /* before CONNECT: queued */
    }
    T_POLL_UNTIL(g_mgr, g_answers == N, 60000, "phase B: %ld answers (have %ld, accepts %ld)", N,
                 g_answers, g_srv_accepts);
    for (long i = 0; i < N; i++) CHECK(g_cli[i].connected, "client %ld never got CONNECT", i);
    CHECK(tern_mgr_conn_count(g_mgr) == (size_t)(2 * N + 1),
          "phase B: tern_mgr_conn_count = %zu, want %ld", tern_mgr_conn_count(g_mgr), 2 * N + 1);
    CHECK(t_trk.connects == N, "phase B: %ld CONNECT events", t_trk.connects);
    for (long i = 0; i < N; i++) {
        tern_conn *c = tern_conn_lookup(g_mgr, g_cli[i].id);
        CHECK(c != NULL, "client %ld not found by id", i);
        CHECK_OK(tern_close(c));
    }
    T_POLL_UNTIL(g_mgr, t_trk.closes == 3 * N, 60000, "phase B: all CLOSE events (have %ld of %ld)",
                 t_trk.closes, 3 * N);
    CHECK(tern_mgr_conn_count(g_mgr) == 1, "phase B over: tern_mgr_conn_count = %zu",
          tern_mgr_conn_count(g_mgr));
    CHECK(g_srv_accepts == 2 * N, "%ld accepts in all, want %ld", g_srv_accepts, 2 * N);
    CHECK(t_trk.errors == 0, "phase B: %ld ERROR events", t_trk.errors);
    CHECK(t_trk.opens == 3 * N + 1, "%ld OPEN events, want %ld", t_trk.opens, 3 * N + 1);
    printf("phase B: %ld tern clients + %ld accepted in %.0f ms\n", N, N, t_now_ms() - t0);

    t_free(g_mgr);
    CHECK(t_trk.closes_in_free == 1, "tern_mgr_free delivered %ld CLOSE events, want 1",
          t_trk.closes_in_free);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    free(g_cli);
    t_track_fini();
    t_pass();
    return 0;
}
