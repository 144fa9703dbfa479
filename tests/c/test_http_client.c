/* test_http_client: tern_http_connect / tern_http_request against a tern HTTP server
 * on the same manager and thread (one loop both asks and answers).
 *
 * Proves, through the public header:
 *   - requests made before CONNECT are queued; N requests pipelined in batches get N
 *     responses in order, each with its status, headers (tern_http_header,
 *     tern_http_header_count/_at) and de-chunked body (streamed server answers);
 *   - a POST body reaches the server and comes back;
 *   - bad arguments give TERN_EINVAL, a raw TCP connection TERN_EPROTO;
 *   - a server that closes the connection after its answer (Connection: close) ends
 *     the client connection with CLOSE and no ERROR;
 *   - afterwards every descriptor and tern_bytes is released (also under valgrind).
 */
#include "common.h"

static long N;
static long g_got, g_bad_order, g_closed, g_errors;
static char g_last_error[200];

/* Server: "/n/<i>" answers "<i>" (odd i streamed in two chunks), "/echo" the body,
 * "/bye" with Connection: close. */
static void on_server(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev != TERN_EV_HTTP_MSG) return;
    tern_http_msg *h = ev_data;
    tern_str uri = tern_http_uri(h);
    char path[64];
    snprintf(path, sizeof path, "%.*s", (int)uri.len, uri.ptr);
    if (strncmp(path, "/n/", 3) == 0) {
        long i = atol(path + 3);
        char body[32];
        int n = snprintf(body, sizeof body, "%ld", i);
        if (i % 2) {
            CHECK_OK(tern_http_begin(c, 200, "X-Index: odd\r\n"));
            CHECK_OK(tern_http_write(c, body, 1));
            CHECK_OK(tern_http_write(c, body + 1, (size_t)n - 1));
            CHECK_OK(tern_http_end(c));
        } else {
            CHECK_OK(tern_http_reply(c, 200, "X-Index: even\r\n", body, (size_t)n));
        }
    } else if (strcmp(path, "/echo") == 0) {
        tern_str b = tern_http_body(h);
        CHECK_OK(tern_http_reply(c, 201, NULL, b.ptr, b.len));
    } else if (strcmp(path, "/bye") == 0) {
        CHECK_OK(tern_http_reply(c, 200, "Connection: close\r\n", "bye", 3));
    } else {
        CHECK_OK(tern_http_reply(c, 404, NULL, "", 0));
    }
}

static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)c;
    (void)user;
    switch (ev) {
    case TERN_EV_HTTP_MSG: {
        tern_http_msg *h = ev_data;
        int status = tern_http_status(h);
        tern_str body = tern_http_body(h);
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)body.len, body.ptr ? body.ptr : "");
        if (g_got < N) {
            CHECK(status == 200, "response %ld: status %d", g_got, status);
            if (atol(text) != g_got) g_bad_order++;
            tern_str x = tern_http_header(h, "x-index");
            const char *want = g_got % 2 ? "odd" : "even";
            CHECK(x.len == strlen(want) && memcmp(x.ptr, want, x.len) == 0, "X-Index of %ld", g_got);
            size_t n = tern_http_header_count(h);
            int seen = 0;
            for (size_t i = 0; i < n; i++) {
                tern_str name, value;
                CHECK_OK(tern_http_header_at(h, i, &name, &value));
                if (name.len == 7 && strncasecmp(name.ptr, "X-Index", 7) == 0) seen = 1;
            }
            CHECK(seen, "tern_http_header_at never showed X-Index");
        } else if (g_got == N) {
            CHECK(status == 201 && strcmp(text, "posted body") == 0, "echo: %d \"%s\"", status, text);
        } else {
            CHECK(status == 200 && strcmp(text, "bye") == 0, "bye: %d \"%s\"", status, text);
        }
        g_got++;
        break;
    }
    case TERN_EV_ERROR:
        g_errors++;
        snprintf(g_last_error, sizeof g_last_error, "%s", (const char *)ev_data);
        break;
    case TERN_EV_CLOSE: g_closed++; break;
    default: break;
    }
}

int main(void) {
    t_begin("test_http_client", 60, 240);
    N = t_scale(2000, 200);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_server, NULL);
    CHECK(l != NULL, "tern_http_listen");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tern_conn_local_port(l));
    tern_conn *c = tern_http_connect(m, url, on_client, NULL);
    CHECK(c != NULL, "tern_http_connect: %s", tern_strerror(tern_last_error()));

    CHECK_RC(tern_http_request(c, "G T", "/", NULL, NULL, 0), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, "GET", "no-slash", NULL, NULL, 0), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, "GET", "/", "X: 1\r\n\r\nsmuggled", NULL, 0), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, NULL, "/", NULL, NULL, 0), TERN_EINVAL);
    CHECK_RC(tern_http_request(l, "GET", "/", NULL, NULL, 0), TERN_EPROTO);

    /* Batches of up to 50 pipelined requests, the first made before CONNECT. */
    long sent = 0;
    while (g_got < N) {
        while (sent < N && sent - g_got < 50) {
            char target[32];
            snprintf(target, sizeof target, "/n/%ld", sent);
            CHECK_OK(tern_http_request(c, "GET", target, "Accept: */*\r\n", NULL, 0));
            sent++;
        }
        long before = g_got;
        T_POLL_UNTIL(m, g_got > before || g_errors, 10000, "responses (%ld of %ld)", g_got, N);
        CHECK(g_errors == 0, "client error: %s", g_last_error);
    }
    CHECK(g_bad_order == 0, "%ld responses out of order", g_bad_order);
    CHECK_OK(tern_http_request(c, "POST", "/echo", "Content-Type: text/plain\r\n", "posted body", 11));
    T_POLL_UNTIL(m, g_got == N + 1, 10000, "the echo");
    CHECK_OK(tern_http_request(c, "GET", "/bye", NULL, NULL, 0));
    T_POLL_UNTIL(m, g_closed == 1, 10000, "the client's CLOSE after Connection: close");
    CHECK(g_got == N + 2 && g_errors == 0, "got %ld, errors %ld (%s)", g_got, g_errors, g_last_error);

    t_free(m);
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes still alive");
    t_pass();
    return 0;
}
