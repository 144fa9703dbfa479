/* The leak test of the reverse proxy (c-examples/reverse_proxy.c, built in), its
 * faulty backends and its clients on one manager: 10,000 requests (small: 300), 50 at
 * a time, while the backend answers well, closes connections once they are idle in
 * the pool, resets before and in the middle of a response, stalls past
 * TERN_PROXY_TIMEOUT_MS, answers garbage or a bad Content-Length, and a second backend
 * refuses connections. Every client fetch's DONE runs exactly once with what the proxy
 * promises (200 with the right body, 502, 504; a response cut after its head went out
 * ends the client connection) and none hangs; at the end the proxy's live requests and
 * clients, the pooled connections, pending fetches, live connections and descriptors
 * are back to their baseline. Under valgrind too (TERN_TEST_SCALE=small). */
#include "common.h"

#define REVERSE_PROXY_NO_MAIN
#include "../../c-examples/reverse_proxy.c"

enum fault { OK, OK_CLOSE, RESET_BEFORE, RESET_MID, STALL, GARBAGE, BAD_LENGTH, REFUSED, NFAULTS };
static const char *const names[] = {"ok", "okclose", "reset0", "resetmid", "stall", "garbage", "badlen", "refused"};

/* ---- the faulty backend: raw TCP, one request at a time per connection ----------- */
static int backend_conns;
static void on_backend(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_ACCEPT) backend_conns++;
    if (ev == TERN_EV_CLOSE && tern_conn_user(c) != NULL) backend_conns--;
    if (ev == TERN_EV_ACCEPT) tern_conn_set_user(c, (void *)1);
    if (ev != TERN_EV_READ) return;
    tern_str *d = ev_data;
    const char *end = memmem(d->ptr, d->len, "\r\n\r\n", 4);
    if (end == NULL) return;
    size_t head = (size_t)(end - d->ptr) + 4;
    const char *p = memmem(d->ptr, head, "Content-Length: ", 16);
    size_t blen = p ? (size_t)atoi(p + 16) : 0;
    if (d->len < head + blen) return;
    char path[32] = "";
    sscanf(d->ptr, "%*s /%31[a-z0-9]", path);
    tern_conn_consume(c, head + blen);
    char r[512];
    if (strcmp(path, "ok") == 0 || strcmp(path, "okclose") == 0) {
        int n = snprintf(r, sizeof r, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\nbody-of-%s", 8 + strlen(path), path);
        tern_send(c, r, (size_t)n);
        if (path[2] == 'c') tern_close(c); /* closed once idle in the proxy's pool */
    } else if (strcmp(path, "reset0") == 0) {
        tern_close_now(c);
    } else if (strcmp(path, "resetmid") == 0) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial";
        tern_send(c, h, strlen(h));
        tern_close(c);
    } else if (strcmp(path, "garbage") == 0) {
        const char *g = "garbage garbage\r\n\r\n";
        tern_send(c, g, strlen(g));
    } else if (strcmp(path, "badlen") == 0) {
        const char *g = "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n";
        tern_send(c, g, strlen(g));
    } /* stall: nothing, ever */
}

/* ---- the clients: fetches to the proxies ------------------------------------------ */
typedef struct {
    int fault, done, code, status;
    char body[32];
} req;
static req *reqs;
static long started, finished;

static void on_client_fetch(tern_mgr *m, tern_fetch_id id, int ev, int code, const tern_http_msg *resp, tern_str data,
                            void *user) {
    (void)m;
    (void)id;
    (void)data;
    req *r = user;
    if (ev != TERN_FETCH_DONE) return;
    r->done++;
    r->code = code;
    if (code == TERN_OK) {
        r->status = tern_http_status(resp);
        tern_str b = tern_http_body(resp);
        snprintf(r->body, sizeof r->body, "%.*s", (int)b.len, b.ptr ? b.ptr : "");
    }
    finished++;
}

static void check_outcome(const req *r, long i) {
    CHECK(r->done == 1, "request %ld (%s): DONE ran %d times", i, names[r->fault], r->done);
    CHECK(r->code != TERN_ETIMEDOUT, "request %ld (%s) hung until the client's deadline", i, names[r->fault]);
    switch (r->fault) {
    case OK:
    case OK_CLOSE: {
        char want[32];
        snprintf(want, sizeof want, "body-of-%s", names[r->fault]);
        CHECK(r->code == TERN_OK && r->status == 200 && strcmp(r->body, want) == 0, "request %ld (%s): 200 (%d %d '%s')",
              i, names[r->fault], r->code, r->status, r->body);
        break;
    }
    case STALL:
        CHECK(r->code == TERN_OK && r->status == 504, "request %ld (stall): 504 (%d %d)", i, r->code, r->status);
        break;
    case RESET_MID:
        CHECK(r->code != TERN_OK, "request %ld (resetmid): the client connection ended (%d)", i, r->status);
        break;
    default:
        CHECK(r->code == TERN_OK && r->status == 502, "request %ld (%s): 502 (%d %d)", i, names[r->fault], r->code,
              r->status);
    }
}

static enum fault pick(unsigned *seed) {
    int x = (int)(rand_r(seed) % 100);
    if (x < 50) return OK;
    if (x < 62) return OK_CLOSE;
    if (x < 68) return RESET_BEFORE;
    if (x < 74) return RESET_MID;
    if (x < 78) return STALL;
    if (x < 84) return GARBAGE;
    if (x < 90) return BAD_LENGTH;
    return REFUSED;
}

int main(void) {
    t_begin("test_proxy_leaks", 170, 500);
    int fds0 = t_count_fds();
    setenv("TERN_PROXY_TIMEOUT_MS", t_small ? "1500" : "300", 1);
    tern_mgr *m = tern_mgr_new();
    tern_conn *b = tern_listen(m, "tcp://127.0.0.1:0", on_backend, NULL);
    CHECK(b != NULL, "the backend listens");
    static struct proxy good, refusing;
    char burl[64], rurl[64];
    snprintf(burl, sizeof burl, "http://127.0.0.1:%d", tern_conn_local_port(b));
    snprintf(rurl, sizeof rurl, "http://127.0.0.1:%d", t_closed_port());
    good.backends[good.n_backends++] = burl;
    refusing.backends[refusing.n_backends++] = rurl;
    tern_conn *pa = proxy_start(m, &good, 0), *pb = proxy_start(m, &refusing, 0);
    CHECK(pa && pb, "the proxies listen");
    /* Short idle timeout so that the end is reached soon; the rest as the proxy sets it. */
    CHECK_OK(tern_mgr_set(m, TERN_OPT_FETCH_IDLE_TIMEOUT_MS, 500));
    int porta = tern_conn_local_port(pa), portb = tern_conn_local_port(pb);
    size_t base_conns = tern_mgr_conn_count(m);

    long total = t_scale(10000, 300), par = 50;
    reqs = calloc((size_t)total, sizeof *reqs);
    unsigned seed = 12345;
    int64_t opts[] = {TERN_FETCH_TIMEOUT_MS, (int64_t)t_bound_ms(10000), 0};
    double t0 = t_now_ms();
    while (finished < total) {
        while (started < total && started - finished < par) {
            req *r = &reqs[started];
            r->fault = pick(&seed);
            char url[128];
            snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", r->fault == REFUSED ? portb : porta,
                     names[r->fault]);
            int post = started % 5 == 0;
            tern_bytes *body = post ? tern_bytes_copy("posted-body", 11) : NULL;
            tern_fetch_id id = tern_fetch(m, post ? "POST" : "GET", url, NULL, body, opts, on_client_fetch, r);
            CHECK(id != 0, "client fetch %ld: %s", started, tern_strerror(tern_last_error()));
            started++;
        }
        t_poll(m, 20);
    }
    printf("%ld requests through the proxy in %.0f ms\n", total, t_now_ms() - t0);
    long count[NFAULTS] = {0};
    for (long i = 0; i < total; i++) {
        check_outcome(&reqs[i], i);
        count[reqs[i].fault]++;
    }
    for (int f = 0; f < NFAULTS; f++) printf("  %-9s %ld\n", names[f], count[f]);

    /* Everything back to the baseline: nothing pending, pooled connections closed after
     * their idle timeout, the backend's and the proxies' ends with them. */
    double until = t_now_ms() + t_bound_ms(10000);
    size_t pending = 1, conns = 1, idle = 1, live = 0;
    while (t_now_ms() < until) {
        t_poll(m, 20);
        CHECK_OK(tern_fetch_stats(m, &pending, &conns, &idle));
        live = tern_mgr_conn_count(m);
        if (pending == 0 && conns == 0 && live == base_conns && good.live_clients == 0 && refusing.live_clients == 0)
            break;
    }
    CHECK(pending == 0 && conns == 0 && idle == 0, "fetches pending %zu, pooled connections %zu (idle %zu)", pending,
          conns, idle);
    CHECK(good.live_requests == 0 && refusing.live_requests == 0, "the proxies' requests all over (%zu, %zu)",
          good.live_requests, refusing.live_requests);
    CHECK(good.live_clients == 0 && refusing.live_clients == 0, "the proxies' client connections all closed");
    CHECK(live == base_conns && backend_conns == 0, "live connections back to the listeners (%zu, baseline %zu; %d backend)",
          live, base_conns, backend_conns);
    t_free(m);
    free(reqs);
    CHECK(t_count_fds() == fds0, "descriptors back to baseline (%d -> %d)", fds0, t_count_fds());
    t_pass();
    return 0;
}
