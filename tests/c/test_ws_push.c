/* test_ws_push: worker threads push and publish WebSocket messages through remotes
 * while clients come and go, and one client stops reading.
 *
 * A server manager on the main thread upgrades every request on /push, subscribes the
 * connection to the topic "push" and lists its id for the workers. 4 workers, each
 * with its own tern_remote, send 10,000 messages each (500 with TERN_TEST_SCALE=small)
 * in wrapped 64-byte buffers: most are published to the topic
 * (tern_remote_ws_publish), every fourth is sent to one listed connection
 * (tern_remote_ws_send). A client manager on a second thread holds 50 tern WebSocket
 * clients (10 small); the first 10 (4 small) stay for the whole run, the others close
 * and are replaced at random while the workers push. A raw client beside them does the
 * handshake and then never reads: before the workers start, the server publishes
 * 64 KiB messages to the topic, one per turn of its loop, until the queue of that
 * client passes TERN_OPT_MAX_SEND_QUEUE (512 KiB) and it is closed; the others read
 * them all.
 *   - every message a client receives is whole and its bytes are intact (a buffer
 *     freed before it was written is poisoned and would show here);
 *   - per worker, the published messages a client receives are consecutive (none lost,
 *     none reordered) and a client that stayed the whole run receives all of them;
 *     the direct ones arrive in order;
 *   - the client that does not read is closed by the server (TERN_EV_ERROR saying the
 *     send queue limit was exceeded) while the others receive everything;
 *   - every free callback runs exactly once per buffer, counting refused posts
 *     (TERN_EFULL is retried with a new buffer);
 *   - descriptors and tern_bytes_live return to their baselines after both managers
 *     are freed.
 */
#include "common.h"

#define NW 4
#define MSG 64
#define MAGIC 0x5753u /* "WS" */
#define KIND_PUB 1
#define KIND_DIRECT 2
#define KIND_FIN 3
#define KIND_BALLAST 4
#define BALLAST (64 << 10)

static long NPER;      /* messages per worker */
static int NCLIENTS;   /* tern clients */
static int NSTABLE;    /* of them, the ones that never churn */
static int g_port;
static tern_remote *g_remote;
static atomic_long g_wraps, g_frees, g_efull;
static atomic_int g_workers_done;

/* Server-side ids of open WebSocket connections, for direct sends. */
static pthread_mutex_t g_ids_mu = PTHREAD_MUTEX_INITIALIZER;
static tern_conn_id g_ids[256];
static int g_nids;
static tern_conn_id g_slow_server_id; /* the raw client's connection, server side */
static int g_slow_closed, g_slow_error;

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* kind, worker, seq; then a pattern of (worker, seq) so damage shows */
static void fill(unsigned char *b, int kind, int worker, uint32_t seq) {
    put_u32(b, MAGIC);
    b[4] = (unsigned char)kind;
    b[5] = (unsigned char)worker;
    b[6] = b[7] = 0;
    put_u32(b + 8, seq);
    t_fill_pattern(b + 12, MSG - 12, (uint64_t)worker * 1000003u + seq, 0);
}

static void on_free(void *ctx, void *data, size_t len) {
    (void)ctx;
    CHECK(len == MSG, "free callback with %zu bytes", len);
    memset(data, 0xEE, len);
    free(data);
    atomic_fetch_add(&g_frees, 1);
}

static tern_bytes *wrapped(int kind, int worker, uint32_t seq) {
    unsigned char *b = malloc(MSG);
    fill(b, kind, worker, seq);
    atomic_fetch_add(&g_wraps, 1);
    return tern_bytes_wrap(b, MSG, on_free, NULL);
}

/* ---- server ------------------------------------------------------------------ */

static void list_add(tern_conn_id id) {
    pthread_mutex_lock(&g_ids_mu);
    if (g_nids < (int)(sizeof g_ids / sizeof g_ids[0])) g_ids[g_nids++] = id;
    pthread_mutex_unlock(&g_ids_mu);
}

static void list_remove(tern_conn_id id) {
    pthread_mutex_lock(&g_ids_mu);
    for (int i = 0; i < g_nids; i++) {
        if (g_ids[i] == id) {
            g_ids[i] = g_ids[--g_nids];
            break;
        }
    }
    pthread_mutex_unlock(&g_ids_mu);
}

static void on_server(tern_conn *c, int ev, void *ev_data, void *user) {
    t_track(c, ev, ev_data);
    (void)user;
    tern_conn_id id = tern_conn_get_id(c);
    if (ev == TERN_EV_HTTP_MSG) {
        CHECK_OK(tern_ws_upgrade(c, ev_data, NULL));
    } else if (ev == TERN_EV_WS_OPEN) {
        tern_str ua = tern_http_header(ev_data, "X-Slow");
        if (ua.len > 0) {
            g_slow_server_id = id; /* never listed: only publishes reach it */
        } else {
            list_add(id);
        }
        CHECK_OK(tern_ws_subscribe(c, "push"));
    } else if (ev == TERN_EV_WS_MSG) {
        FAIL("the server received a message");
    } else if (ev == TERN_EV_ERROR && id == g_slow_server_id) {
        CHECK(strstr(ev_data, "send queue limit") != NULL, "slow client closed for: %s", (const char *)ev_data);
        g_slow_error = 1;
    } else if (ev == TERN_EV_CLOSE) {
        if (id == g_slow_server_id) g_slow_closed = 1;
        list_remove(id);
    }
}

/* ---- workers ------------------------------------------------------------------ */

static void post_retrying(tern_remote *r, int direct, tern_conn_id to, int kind, int w, uint32_t seq) {
    for (;;) {
        tern_bytes *b = wrapped(kind, w, seq);
        int rc = direct ? tern_remote_ws_send(r, to, TERN_WS_BINARY, b)
                        : tern_remote_ws_publish(r, "push", TERN_WS_BINARY, b);
        if (rc == TERN_OK) return;
        CHECK(rc == TERN_EFULL, "worker %d: post returned %d (%s)", w, rc, tern_strerror(rc));
        atomic_fetch_add(&g_efull, 1);
        t_sleep_ms(1);
    }
}

static void *worker(void *arg) {
    int w = (int)(intptr_t)arg;
    tern_remote *r = tern_remote_clone(g_remote);
    CHECK(r != NULL, "tern_remote_clone");
    unsigned seed = 77u + (unsigned)w;
    uint32_t pub = 0, direct = 0;
    for (long i = 0; i < NPER; i++) {
        if (i % 4 == 3) {
            pthread_mutex_lock(&g_ids_mu);
            tern_conn_id to = g_nids > 0 ? g_ids[rand_r(&seed) % (unsigned)g_nids] : 0;
            pthread_mutex_unlock(&g_ids_mu);
            if (to != 0) post_retrying(r, 1, to, KIND_DIRECT, w, direct++);
        } else {
            post_retrying(r, 0, 0, KIND_PUB, w, pub++);
        }
    }
    /* after every message of this worker, through the same remote: order per remote */
    post_retrying(r, 0, 0, KIND_FIN, w, pub);
    tern_remote_free(r);
    atomic_fetch_add(&g_workers_done, 1);
    return NULL;
}

/* ---- clients (their own manager, on their own thread) ---------------------------- */

typedef struct {
    tern_conn_id id;
    int stable, open, closed, fins;
    long next_pub[NW];   /* the published seq expected next, -1 before the first */
    long last_direct[NW];
    long received;
} client;

static client *g_clients;
static atomic_int g_clients_done;
static atomic_long g_client_msgs;

static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    client *cl = user;
    (void)c;
    if (ev == TERN_EV_WS_OPEN) {
        cl->open = 1;
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        const unsigned char *p = (const unsigned char *)m->data.ptr;
        if (m->op == TERN_WS_BINARY && m->data.len == BALLAST && p[4] == KIND_BALLAST) return;
        CHECK(m->op == TERN_WS_BINARY && m->data.len == MSG, "client got op %d, %zu bytes", m->op, m->data.len);
        CHECK(get_u32(p) == MAGIC, "client got a damaged message (magic %08x: freed early?)", get_u32(p));
        int kind = p[4], w = p[5];
        uint32_t seq = get_u32(p + 8);
        CHECK(w < NW, "worker %d", w);
        CHECK(t_check_pattern(p + 12, MSG - 12, (uint64_t)w * 1000003u + seq, 0) < 0,
              "message %d/%u damaged in its payload (freed before it was written?)", w, seq);
        cl->received++;
        atomic_fetch_add(&g_client_msgs, 1);
        if (kind == KIND_DIRECT) {
            CHECK((long)seq > cl->last_direct[w], "direct message %u of worker %d after %ld", seq, w, cl->last_direct[w]);
            cl->last_direct[w] = seq;
            return;
        }
        if (cl->next_pub[w] >= 0)
            CHECK((long)seq == cl->next_pub[w], "client: worker %d published %u after %ld: lost or reordered",
                  w, seq, cl->next_pub[w] - 1);
        else if (cl->stable)
            CHECK(seq == 0, "a client open from the start first got message %u of worker %d", seq, w);
        cl->next_pub[w] = (long)seq + 1;
        if (kind == KIND_FIN) {
            CHECK((long)seq == NPER - NPER / 4, "fin of worker %d after %u published", w, seq);
            cl->fins++;
        }
    } else if (ev == TERN_EV_ERROR) {
        FAIL("client error: %s", (const char *)ev_data);
    } else if (ev == TERN_EV_CLOSE) {
        cl->closed = 1;
    }
}

static void client_open(tern_mgr *m, client *cl, int stable) {
    memset(cl, 0, sizeof *cl);
    cl->stable = stable;
    for (int w = 0; w < NW; w++) {
        cl->next_pub[w] = -1;
        cl->last_direct[w] = -1;
    }
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/push", g_port);
    tern_conn *c = tern_ws_connect(m, url, on_client, cl);
    CHECK(c != NULL, "tern_ws_connect: %s", tern_strerror(tern_last_error()));
    cl->id = tern_conn_get_id(c);
}

static void *clients_main(void *arg) {
    (void)arg;
    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "client manager");
    for (int i = 0; i < NCLIENTS; i++) client_open(m, &g_clients[i], i < NSTABLE);
    unsigned seed = 4242;
    long churned = 0;
    double end = t_now_ms() + t_scale(60000, 240000);
    for (;;) {
        CHECK(t_now_ms() < end, "clients: timed out (%ld messages received)", atomic_load(&g_client_msgs));
        int rc = tern_mgr_poll(m, 5);
        CHECK(rc >= 0, "client poll: %d", rc);
        int fins = 0;
        for (int i = 0; i < NCLIENTS; i++) {
            client *cl = &g_clients[i];
            if (cl->stable) fins += cl->fins == NW;
            if (cl->stable || atomic_load(&g_workers_done) == NW) continue;
            if (cl->closed) {
                client_open(m, cl, 0);
                churned++;
            } else if (cl->open && rand_r(&seed) % 400 == 0) {
                tern_conn *c = tern_conn_lookup(m, cl->id);
                if (c != NULL) CHECK_OK(tern_ws_close(c, 1000, "churn"));
            }
        }
        if (fins == NSTABLE) break;
    }
    /* Every stable client got everything; let the churning ones finish their last. */
    printf("clients: %ld messages received, %ld reconnects\n", atomic_load(&g_client_msgs), churned);
    tern_mgr_free(m);
    for (int i = 0; i < NSTABLE; i++) {
        for (int w = 0; w < NW; w++)
            CHECK(g_clients[i].next_pub[w] == NPER - NPER / 4 + 1, "stable client %d: worker %d up to %ld",
                  i, w, g_clients[i].next_pub[w]);
    }
    CHECK(churned > 0, "no client came and went: the test did not test churn");
    atomic_store(&g_clients_done, 1);
    return NULL;
}

/* ---- the client that stops reading ----------------------------------------------- */

static int slow_client(void) {
    int fd = t_raw_connect(g_port, 4096);
    const char req[] = "GET /push HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                       "X-Slow: 1\r\n\r\n";
    t_write_all(fd, req, sizeof req - 1);
    return fd; /* the 101 and everything after stay unread */
}

int main(void) {
    t_begin("test_ws_push", 120, 400);
    NPER = t_scale(10000, 500);
    NCLIENTS = (int)t_scale(50, 10);
    NSTABLE = (int)t_scale(10, 4);
    t_track_init(4096);
    t_need_fds(1024);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_clients = calloc((size_t)NCLIENTS, sizeof *g_clients);

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, 512 << 10));
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_POSTED, 512));
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_server, NULL);
    CHECK(l != NULL, "tern_http_listen");
    g_port = tern_conn_local_port(l);
    g_remote = tern_mgr_remote(m);
    int slow = slow_client();
    pthread_t ct;
    CHECK(pthread_create(&ct, NULL, clients_main, NULL) == 0, "clients thread");
    /* the workers start once the stable clients and the slow one are subscribed */
    T_POLL_UNTIL(m, g_nids >= NCLIENTS && g_slow_server_id != 0, 20000, "clients to open");
    /* ballast: one 64 KiB message per turn, which readers drain and the slow one cannot */
    static unsigned char ballast[BALLAST];
    fill(ballast, KIND_BALLAST, 0, 0);
    int published = 0;
    while (!g_slow_closed) {
        CHECK(published < 200, "the client that does not read was not closed after %d MiB", published / 16);
        int n = tern_ws_publish(m, "push", TERN_WS_BINARY, tern_bytes_copy(ballast, sizeof ballast));
        CHECK(n >= NSTABLE + 1 || g_slow_closed, "a publish reached %d subscribers", n);
        published++;
        t_poll(m, 10);
    }
    CHECK(g_slow_error, "the slow client was closed without TERN_EV_ERROR");
    printf("the client that does not read was closed after %d publishes of 64 KiB\n", published);
    pthread_t wt[NW];
    double t0 = t_now_ms();
    for (int w = 0; w < NW; w++) CHECK(pthread_create(&wt[w], NULL, worker, (void *)(intptr_t)w) == 0, "worker");
    T_POLL_UNTIL(m, atomic_load(&g_clients_done), t_scale(60000, 240000), "clients to receive everything");
    for (int w = 0; w < NW; w++) pthread_join(wt[w], NULL);
    pthread_join(ct, NULL);
    printf("%d workers x %ld messages in %.0f ms; %ld TERN_EFULL retries\n", NW, NPER, t_now_ms() - t0,
           atomic_load(&g_efull));
    close(slow);

    tern_remote_free(g_remote);
    t_free(m);
    t_track_check_all_closed();
    CHECK(atomic_load(&g_frees) == atomic_load(&g_wraps), "%ld free callbacks for %ld wrapped buffers",
          atomic_load(&g_frees), atomic_load(&g_wraps));
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    free(g_clients);
    t_track_fini();
    t_pass();
    return 0;
}
