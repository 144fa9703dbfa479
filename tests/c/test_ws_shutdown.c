/* test_ws_shutdown: tern_mgr_shutdown with WebSocket connections open, through the
 * public header, raw sockets on 127.0.0.1 as clients.
 *
 * Two WebSocket clients did the handshake by hand; TERN_OPT_WS_CLOSE_TIMEOUT_MS is
 * 300 ms (1.2 s under valgrind), the shutdown's timeout 30 s. A worker thread posts
 * one message to each with tern_remote_ws_send and, right after, the loop thread calls
 * tern_mgr_shutdown. Proves:
 *   - each client gets the posted message whole, then a close frame with code 1001
 *     (going away): what was posted before the shutdown is not lost;
 *   - the client that answers with its own close frame sees the server close TCP
 *     (EOF), and its connection gets CLOSE without ERROR;
 *   - the client that never answers is closed when the close timeout passes, with
 *     ERROR (tern_conn_error: TERN_ETIMEDOUT), not left until the shutdown's deadline;
 *   - tern_mgr_poll returns TERN_ECLOSED once both are closed (the clients keep their
 *     sockets open, so the server's lingering close waits its 2 s), long before 30 s;
 *   - descriptors and tern_bytes_live are back to their baselines after tern_mgr_free.
 */
#include "common.h"

static tern_mgr *g_m;
static tern_conn_id g_open[2];
static int g_nopen;
static int g_errors[2], g_error_codes[2];

static int slot(tern_conn_id id) {
    return id == g_open[0] ? 0 : id == g_open[1] ? 1 : -1;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) CHECK_OK(tern_ws_upgrade(c, ev_data, NULL));
    if (ev == TERN_EV_WS_OPEN) {
        CHECK(g_nopen < 2, "more WebSocket connections than clients");
        g_open[g_nopen++] = rec.id;
    }
    if (ev == TERN_EV_WS_MSG) FAIL("the clients send no message");
    int k = ev == TERN_EV_ERROR ? slot(rec.id) : -1;
    if (k >= 0) {
        g_errors[k]++;
        g_error_codes[k] = tern_conn_error(c);
    }
}

static int ws_client(int port) {
    int fd = t_raw_connect(port, 0);
    const char *hs = "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    t_write_all(fd, hs, strlen(hs));
    int before = g_nopen;
    T_POLL_UNTIL(g_m, g_nopen == before + 1, 5000, "WS_OPEN");
    char buf[1024];
    size_t have = 0;
    while (memmem(buf, have, "\r\n\r\n", 4) == NULL) {
        CHECK(have < sizeof buf, "a 101 longer than %zu bytes", sizeof buf);
        ssize_t n = recv(fd, buf + have, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n == 1, "no 101: %s", n == 0 ? "EOF" : strerror(errno));
        have++;
    }
    CHECK(memcmp(buf, "HTTP/1.1 101", 12) == 0, "no 101: %.*s", (int)have, buf);
    return fd;
}

/* Reads exactly n bytes, polling the manager meanwhile (the reader is this thread). */
static void read_exact(int fd, unsigned char *out, size_t n, const char *what) {
    size_t got = 0;
    double end = t_now_ms() + t_bound_ms(5000);
    while (got < n) {
        CHECK(t_now_ms() < end, "%s: %zu of %zu bytes after 5 s", what, got, n);
        ssize_t r = recv(fd, out + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        CHECK(r != 0, "%s: EOF after %zu of %zu bytes", what, got, n);
        CHECK(errno == EAGAIN || errno == EINTR, "%s: %s", what, strerror(errno));
        t_poll_shutdown(g_m, 5);
    }
}

/* The posted message, then a close frame with 1001. */
static void expect_message_then_going_away(int fd, const char *msg, const char *who) {
    unsigned char h[2], body[128];
    size_t n = strlen(msg);
    read_exact(fd, h, 2, who);
    CHECK(h[0] == 0x81 && h[1] == n, "%s: frame %02x %02x, want the posted text message of %zu bytes", who,
          h[0], h[1], n);
    read_exact(fd, body, n, who);
    CHECK(memcmp(body, msg, n) == 0, "%s: the posted message changed", who);
    read_exact(fd, h, 2, who);
    CHECK(h[0] == 0x88 && h[1] >= 2 && h[1] <= 125, "%s: frame %02x %02x, want a close frame", who, h[0], h[1]);
    read_exact(fd, body, h[1], who);
    int code = body[0] << 8 | body[1];
    CHECK(code == 1001, "%s: close code %d, want 1001 (going away)", who, code);
}

typedef struct {
    tern_remote *r;
    tern_conn_id ids[2];
    atomic_int done;
} poster;

static void *poster_main(void *arg) {
    poster *p = arg;
    CHECK_OK(tern_remote_ws_send(p->r, p->ids[0], TERN_WS_TEXT, tern_bytes_copy("first", 5)));
    CHECK_OK(tern_remote_ws_send(p->r, p->ids[1], TERN_WS_TEXT, tern_bytes_copy("second", 6)));
    atomic_store(&p->done, 1);
    return NULL;
}

int main(void) {
    t_begin("test_ws_shutdown", 60, 240);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    long close_ms = (long)t_bound_ms(300);
    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(g_m, TERN_OPT_WS_CLOSE_TIMEOUT_MS, close_ms));
    tern_conn *l = tern_http_listen(g_m, "http://127.0.0.1:0", on_event, NULL);
    CHECK(l != NULL, "tern_http_listen: %s", tern_strerror(tern_last_error()));
    int port = tern_conn_local_port(l);
    int answers = ws_client(port), silent = ws_client(port);

    poster p = {tern_mgr_remote(g_m), {g_open[0], g_open[1]}, 0};
    CHECK(p.r != NULL, "tern_mgr_remote");
    pthread_t th;
    CHECK(pthread_create(&th, NULL, poster_main, &p) == 0, "pthread_create");
    pthread_join(th, NULL);
    double t0 = t_now_ms();
    CHECK_OK(tern_mgr_shutdown(g_m, 30000));

    expect_message_then_going_away(answers, "first", "the client that answers");
    expect_message_then_going_away(silent, "second", "the silent client");
    /* our close: masked, code 1001, as a client must send it */
    const unsigned char close_frame[] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE9 ^ 2};
    t_write_all(answers, close_frame, sizeof close_frame);

    int rc;
    double end = t0 + t_bound_ms(5000);
    while ((rc = t_poll_shutdown(g_m, 10)) != TERN_ECLOSED) {
        CHECK(t_now_ms() < end, "the shutdown is not done %.0f ms after it began", t_now_ms() - t0);
    }
    double took = t_now_ms() - t0;
    CHECK(took >= close_ms * 0.8, "done after %.0f ms: the silent client was not given its close timeout",
          took);
    CHECK(t_wait_peer_close(answers, 1000, NULL) >= 0, "the client that answered saw no EOF");
    CHECK(t_track_get(g_open[0]).closed && t_track_get(g_open[1]).closed, "a WebSocket connection is open");
    CHECK(g_errors[0] == 0, "the connection that closed properly got %d ERROR", g_errors[0]);
    CHECK(g_errors[1] == 1 && g_error_codes[1] == TERN_ETIMEDOUT,
          "the silent client's connection got %d ERROR, code %d; want one, TERN_ETIMEDOUT", g_errors[1],
          g_error_codes[1]);
    printf("shutdown with two WebSocket connections done in %.0f ms (close timeout %ld ms)\n", took, close_ms);

    tern_remote_free(p.r);
    t_free(g_m);
    t_track_check_all_closed();
    close(answers);
    close(silent);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
