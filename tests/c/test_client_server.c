/* test_client_server: tern clients talking to tern servers.
 *
 * Part 1, one manager on one thread: a server and three clients on the same loop.
 *   - "tcp://127.0.0.1:PORT": half of 256 KiB is sent before CONNECT (queued until the
 *     connection is up), half in the CONNECT handler; the echo comes back intact;
 *   - "tcp://localhost:PORT": the same through name resolution;
 *   - a client whose server answers and then closes (tern_close): the client reads the
 *     answer, then gets CLOSE without ERROR.
 *   Addresses agree on both sides (client local port = server's peer port).
 * Part 2, two managers on two threads: the server loop runs in its own thread, the
 *   client loop in main; 1 MiB goes each way.
 */
#include "common.h"

enum { K_ECHO_SERVER = 1, K_BYE_SERVER, K_CLIENT };

typedef struct {
    int kind;
    /* client */
    const char *name;
    uint64_t seed;
    size_t total;      /* bytes to send (and to get back) */
    size_t sent_early; /* sent before CONNECT */
    size_t rx;
    int connected, done, closed;
    int expect_bye;
    tern_conn_id id;
    int local_port;
    char peer[64];
} ctx;

#define MAXACC 16
static struct {
    tern_conn_id id;
    char peer[64];
} g_acc[MAXACC];
static int g_nacc;
static pthread_mutex_t g_acc_mu = PTHREAD_MUTEX_INITIALIZER;

static void send_pattern(tern_conn *c, uint64_t seed, size_t off, size_t len) {
    /* in 64 KiB tern_bytes_copy chunks and tern_send pieces, alternating */
    int flip = 0;
    while (len > 0) {
        size_t n = len < 65536 ? len : 65536;
        unsigned char *buf = malloc(n);
        t_fill_pattern(buf, n, seed, off);
        if (flip) {
            tern_bytes *b = tern_bytes_copy(buf, n);
            CHECK(b != NULL, "tern_bytes_copy");
            CHECK_OK(tern_send_bytes(c, b));
        } else {
            CHECK_OK(tern_send(c, buf, n));
        }
        free(buf);
        flip ^= 1;
        off += n;
        len -= n;
    }
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    ctx *x = user;
    CHECK(x != NULL, "NULL user");
    if (x->kind == K_ECHO_SERVER || x->kind == K_BYE_SERVER) {
        if (ev == TERN_EV_ERROR)
            FAIL("server side ERROR on id %llu: %s", (unsigned long long)rec.id,
                 (const char *)ev_data);
        if (ev == TERN_EV_ACCEPT) {
            pthread_mutex_lock(&g_acc_mu);
            CHECK(g_nacc < MAXACC, "too many accepts");
            g_acc[g_nacc].id = rec.id;
            t_peer_addr(c, g_acc[g_nacc].peer, sizeof g_acc[g_nacc].peer);
            g_nacc++;
            pthread_mutex_unlock(&g_acc_mu);
        }
        if (ev == TERN_EV_READ) {
            tern_str *s = ev_data;
            if (x->kind == K_ECHO_SERVER) {
                CHECK_OK(tern_send(c, s->ptr, s->len));
                CHECK_OK(tern_conn_consume(c, s->len));
            } else if (s->len >= 3) {
                CHECK(s->len == 3 && memcmp(s->ptr, "bye", 3) == 0, "bye server got %zu bytes",
                      s->len);
                CHECK_OK(tern_conn_consume(c, 3));
                CHECK_OK(tern_send(c, "ciao", 4));
                CHECK_OK(tern_close(c));
            }
        }
        return;
    }
    /* a client */
    switch (ev) {
    case TERN_EV_OPEN:
        CHECK(rec.id == x->id, "client OPEN for an unexpected id");
        break;
    case TERN_EV_CONNECT:
        x->connected = 1;
        x->local_port = tern_conn_local_port(c);
        CHECK(x->local_port > 0, "client local port %d", x->local_port);
        t_peer_addr(c, x->peer, sizeof x->peer);
        if (x->expect_bye) CHECK_OK(tern_send(c, "bye", 3));
        else send_pattern(c, x->seed, x->sent_early, x->total - x->sent_early);
        break;
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        if (x->expect_bye) {
            if (s->len < 4) break;
            CHECK(s->len == 4 && memcmp(s->ptr, "ciao", 4) == 0, "%s: got %zu bytes", x->name,
                  s->len);
            CHECK_OK(tern_conn_consume(c, 4));
            x->done = 1;
            break;
        }
        CHECK(x->rx + s->len <= x->total, "%s: more bytes back than sent", x->name);
        long bad = t_check_pattern(s->ptr, s->len, x->seed, x->rx);
        CHECK(bad < 0, "%s: echo differs at byte %zu", x->name, x->rx + (size_t)bad);
        x->rx += s->len;
        CHECK_OK(tern_conn_consume(c, s->len));
        if (x->rx == x->total) {
            x->done = 1;
            CHECK_OK(tern_close(c));
        }
        break;
    }
    case TERN_EV_ERROR:
        FAIL("%s: unexpected ERROR: %s", x->name, (const char *)ev_data);
    case TERN_EV_CLOSE:
        CHECK(x->done, "%s: closed before it was done (rx %zu of %zu)", x->name, x->rx, x->total);
        x->closed = 1;
        break;
    default: break;
    }
}

static tern_conn *start_client(tern_mgr *m, ctx *x, const char *url) {
    tern_conn *c = tern_connect(m, url, on_event, x);
    CHECK(c != NULL, "%s: tern_connect(%s) failed: %s", x->name, url,
          tern_strerror(tern_last_error()));
    x->id = tern_conn_get_id(c);
    CHECK(t_track_get_m(m, x->id).nevents == 0, "%s: OPEN delivered inside tern_connect",
          x->name);
    if (x->sent_early) send_pattern(c, x->seed, 0, x->sent_early);
    return c;
}

static int find_accepted_peer_port(int client_port) {
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", client_port);
    pthread_mutex_lock(&g_acc_mu);
    int found = 0;
    for (int i = 0; i < g_nacc; i++)
        if (strcmp(g_acc[i].peer, want) == 0) found = 1;
    pthread_mutex_unlock(&g_acc_mu);
    return found;
}

/* ---- part 2: the server loop in its own thread ------------------------- */

static atomic_int g_srv2_port, g_srv2_stop, g_srv2_ok;

static void *server_thread(void *arg) {
    (void)arg;
    static ctx srv = {.kind = K_ECHO_SERVER};
    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new in the server thread");
    int port;
    t_listen(m, on_event, &srv, &port);
    atomic_store(&g_srv2_port, port);
    while (!atomic_load(&g_srv2_stop)) t_poll(m, 20);
    CHECK(tern_mgr_conn_count(m) == 1, "server thread: %zu connections left",
          tern_mgr_conn_count(m));
    t_free(m);
    atomic_store(&g_srv2_ok, 1);
    return NULL;
}

int main(void) {
    t_begin("test_client_server", 60, 180);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    /* ---- part 1 ---- */
    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    static ctx echo_srv = {.kind = K_ECHO_SERVER}, bye_srv = {.kind = K_BYE_SERVER};
    int port, bye_port;
    t_listen(m, on_event, &echo_srv, &port);
    t_listen(m, on_event, &bye_srv, &bye_port);

    size_t sz = (size_t)t_scale(256 * 1024, 64 * 1024);
    ctx a = {.kind = K_CLIENT, .name = "client 127.0.0.1", .seed = 11, .total = sz,
             .sent_early = sz / 2};
    ctx b = {.kind = K_CLIENT, .name = "client localhost", .seed = 12, .total = sz,
             .sent_early = 1000};
    ctx d = {.kind = K_CLIENT, .name = "client bye", .expect_bye = 1};
    char url[96];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    start_client(m, &a, url);
    snprintf(url, sizeof url, "tcp://localhost:%d", port);
    start_client(m, &b, url);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", bye_port);
    start_client(m, &d, url);
    CHECK(a.id != b.id && b.id != d.id && a.id != d.id, "client ids not unique");

    T_POLL_UNTIL(m, a.closed && b.closed && d.closed && t_trk.closes == 6, 20000,
                 "part 1 clients done (a %d/%d b %d/%d d %d/%d, closes %ld)", a.done, a.closed,
                 b.done, b.closed, d.done, d.closed, t_trk.closes);
    CHECK(a.connected && b.connected && d.connected, "a client never got CONNECT");
    CHECK(t_trk.accepts == 3 && t_trk.connects == 3, "accepts %ld connects %ld", t_trk.accepts,
          t_trk.connects);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    CHECK(strcmp(a.peer, want) == 0, "client peer address \"%s\", want \"%s\"", a.peer, want);
    CHECK(strcmp(b.peer, want) == 0, "localhost client peer address \"%s\", want \"%s\"", b.peer,
          want);
    CHECK(find_accepted_peer_port(a.local_port), "no accepted connection from port %d",
          a.local_port);
    CHECK(find_accepted_peer_port(b.local_port), "no accepted connection from port %d",
          b.local_port);
    CHECK(tern_mgr_conn_count(m) == 2, "part 1: %zu connections left, want the 2 listeners",
          tern_mgr_conn_count(m));
    t_free(m);
    CHECK(t_trk.closes == 8 && t_trk.closes_in_free == 2, "closes %ld, in free %ld",
          t_trk.closes, t_trk.closes_in_free);
    t_track_forget(); /* the next managers number their connections from scratch */

    /* ---- part 2 ---- */
    pthread_t th;
    pthread_create(&th, NULL, server_thread, NULL);
    double end = t_now_ms() + t_bound_ms(5000);
    while (atomic_load(&g_srv2_port) == 0) {
        CHECK(t_now_ms() < end, "the server thread never listened");
        t_sleep_ms(2);
    }
    tern_mgr *cm = tern_mgr_new();
    CHECK(cm != NULL, "tern_mgr_new (client)");
    ctx e = {.kind = K_CLIENT, .name = "client in another manager", .seed = 13,
             .total = (size_t)t_scale(1 << 20, 128 * 1024), .sent_early = 0};
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", atomic_load(&g_srv2_port));
    start_client(cm, &e, url);
    T_POLL_UNTIL(cm, e.closed, 30000, "part 2 client done (rx %zu of %zu)", e.rx, e.total);
    CHECK(tern_mgr_conn_count(cm) == 0, "client manager: %zu connections left",
          tern_mgr_conn_count(cm));
    t_free(cm);
    /* the server side sees EOF and closes its connection */
    end = t_now_ms() + t_bound_ms(10000);
    while (t_track_count(&t_trk.closes) < 10 && t_now_ms() < end) t_sleep_ms(5);
    CHECK(t_track_count(&t_trk.closes) == 10, "part 2: %ld CLOSE events, want 10",
          t_track_count(&t_trk.closes));
    atomic_store(&g_srv2_stop, 1);
    pthread_join(th, NULL);
    CHECK(atomic_load(&g_srv2_ok), "server thread did not finish");
    CHECK(t_trk.closes == 11, "closes %ld, want 11", t_trk.closes);
    t_track_check_all_closed();
    CHECK(t_trk.errors == 0, "%ld ERROR events", t_trk.errors);

    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
