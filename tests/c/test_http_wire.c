/* test_http_wire: the bytes tern's HTTP/1.1 puts on the wire and takes from it, read
 * and written raw on 127.0.0.1, through the public header only (issue 8, items 1-5).
 *
 *   1. bare LF in a request head (after the request line, after a field, as the
 *      empty line, before the request line, and the smuggling shape: a field after
 *      a bare LF) gets 400 and a close, and the handler never sees the request;
 *      with TERN_OPT_HTTP_LENIENT_LF the same heads are answered; a chunked body
 *      with a bare LF is refused either way. The client: a response head with a
 *      bare LF is ERROR (TERN_EPROTO) then CLOSE, unless
 *      TERN_OPT_HTTP_CLIENT_LENIENT_LF;
 *   2. 204, 304 and HEAD answers read byte for byte (no body, no framing field for
 *      204/304, HEAD's Content-Length counted from the body it does not get, a
 *      streamed answer to HEAD with neither); a body or a length with 204/304 and
 *      any 1xx are TERN_EINVAL (a `take` released);
 *   3. tern owns the framing: a Content-Length that is not the body's, any
 *      Transfer-Encoding, CR or LF in a value, a name that is not a token: each
 *      TERN_EINVAL with nothing on the wire; a streamed write past the promised
 *      length TERN_EINVAL (nothing written), an end short of it TERN_EPROTO with
 *      ERROR on the connection and EOF for the client (inline and deferred: then
 *      the client sees the truncated body); the caller's Content-Length and
 *      Connection lines written once, by tern; `Connection: close` closes after
 *      the answer; the same checks for tern_http_respond* on a worker thread;
 *   4. tern's client against tern's server with Host, Content-Length and
 *      Transfer-Encoding in the caller's headers;
 *   5. tern_send / tern_send_bytes on an HTTP server or client connection is
 *      TERN_EPROTO (the buffer released) and puts nothing on the wire; a remote's
 *      tern_remote_send to one is released on the loop, nothing on the wire either.
 * Afterwards every connection got one CLOSE, every wrapped buffer was released once,
 * tern_bytes_live() and the descriptor count are back to their baselines.
 */
#include "common.h"

static t_free_counter g_frees;
static atomic_long g_wraps;

/* Counts a wrapped buffer's release and frees its copy. */
static void count_and_free(void *ctx, void *data, size_t len) {
    (void)len;
    atomic_fetch_add(&((t_free_counter *)ctx)->frees, 1);
    free(data);
}

/* A wrapped copy of `s` whose release is counted. */
static tern_bytes *wrap(const char *s) {
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    CHECK(p != NULL, "malloc");
    memcpy(p, s, n + 1);
    atomic_fetch_add(&g_wraps, 1);
    tern_bytes *b = tern_bytes_wrap(p, n, count_and_free, &g_frees);
    CHECK(b != NULL, "tern_bytes_wrap");
    return b;
}

static char g_out[65536];

/* Sends `req` on a new connection; everything the server sent until it closed it. */
static const char *exchange(tern_mgr *m, int port, const char *req) {
    return t_exchange(m, port, req, g_out, sizeof g_out);
}

#define EXPECT_WIRE(got, want, what)                                                         \
    CHECK(strcmp((got), (want)) == 0, "%s:\n--- got (%zu bytes) ---\n%s\n--- want (%zu bytes) ---\n%s", \
          (what), strlen(got), (got), strlen(want), (want))

/* ------------------------------------------------------------------------- */
/* The server                                                                 */

static int g_lf_seen, g_smuggled, g_after_close, g_short_errors, g_short_error_code;
static tern_remote *g_remote;

/* Deferred requests answered by one worker thread: its checks are recorded here. */
typedef struct {
    pthread_t th;
    tern_http_token tok;
    int kind; /* 0: the checks, then a good answer; 1: an end short of the length */
    int failed_line;
    atomic_int done;
} worker;
static worker g_w;

#define W_CHECK(expr, want)                                                                  \
    do {                                                                                     \
        if ((expr) != (want) && !w->failed_line) w->failed_line = __LINE__;                  \
    } while (0)

static void *worker_main(void *p) {
    worker *w = p;
    tern_remote *r = g_remote;
    tern_http_token t = w->tok;
    if (w->kind == 0) {
        W_CHECK(tern_http_respond(r, t, 200, "Content-Length: 3\r\n", wrap("12345")), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 200, "Transfer-Encoding: chunked\r\n", wrap("12345")), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 204, NULL, wrap("x")), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 304, "Content-Length: 0\r\n", NULL), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 100, NULL, NULL), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 101, NULL, NULL), TERN_EINVAL);
        W_CHECK(tern_http_respond(r, t, 200, "X: a\rb\r\n", wrap("x")), TERN_EINVAL);
        W_CHECK(tern_http_respond_begin(r, t, 200, "Transfer-Encoding: chunked\r\n"), TERN_EINVAL);
        W_CHECK(tern_http_respond_begin(r, t, 204, "Content-Length: 0\r\n"), TERN_EINVAL);
        W_CHECK(tern_http_respond_begin(r, t, 103, NULL), TERN_EINVAL);
        /* The request is still unanswered after all that. */
        W_CHECK(tern_http_respond_begin(r, t, 200, "Content-Length: 5\r\nConnection: close\r\n"), TERN_OK);
        W_CHECK(tern_http_respond_write(r, t, wrap("hel")), TERN_OK);
        W_CHECK(tern_http_respond_write(r, t, wrap("lo!")), TERN_EINVAL);
        W_CHECK(tern_http_respond_write(r, t, wrap("lo")), TERN_OK);
        W_CHECK(tern_http_respond_end(r, t), TERN_OK);
    } else {
        W_CHECK(tern_http_respond_begin(r, t, 200, "Content-Length: 10\r\n"), TERN_OK);
        W_CHECK(tern_http_respond_write(r, t, wrap("abc")), TERN_OK);
        t_sleep_ms(100); /* the head and "abc" reach the client */
        W_CHECK(tern_http_respond_end(r, t), TERN_EPROTO);
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static int uri_is(tern_http_msg *h, const char *s) {
    tern_str u = tern_http_uri(h);
    return u.len == strlen(s) && memcmp(u.ptr, s, u.len) == 0;
}

static void answer(tern_conn *c, tern_http_msg *h) {
    if (uri_is(h, "/hello")) {
        CHECK_OK(tern_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello", 5));
    } else if (uri_is(h, "/204")) {
        CHECK_RC(tern_http_reply(c, 204, NULL, "x", 1), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 204, "Content-Length: 0\r\n", NULL, 0), TERN_EINVAL);
        CHECK_RC(tern_http_reply_bytes(c, 204, NULL, wrap("x")), TERN_EINVAL);
        CHECK_RC(tern_http_begin(c, 204, "Content-Length: 0\r\n"), TERN_EINVAL);
        CHECK_OK(tern_http_reply(c, 204, NULL, NULL, 0));
    } else if (uri_is(h, "/304")) {
        CHECK_RC(tern_http_reply(c, 304, "ETag: \"v1\"\r\nContent-Length: 4\r\n", NULL, 0), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 304, "ETag: \"v1\"\r\n", "body", 4), TERN_EINVAL);
        CHECK_OK(tern_http_reply(c, 304, "ETag: \"v1\"\r\n", NULL, 0));
    } else if (uri_is(h, "/204-stream")) {
        CHECK_OK(tern_http_begin(c, 204, NULL));
        CHECK_RC(tern_http_write(c, "x", 1), TERN_EINVAL);
        CHECK_OK(tern_http_write(c, "", 0));
        CHECK_OK(tern_http_end(c));
    } else if (uri_is(h, "/stream5")) {
        CHECK_OK(tern_http_begin(c, 200, "X-Kind: stream\r\nContent-Length: 5\r\n"));
        CHECK_OK(tern_http_write(c, "hello", 5));
        CHECK_OK(tern_http_end(c));
    } else if (uri_is(h, "/mismatch")) {
        CHECK_RC(tern_http_reply(c, 200, "Content-Length: 3\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "Content-Length: 6\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply_bytes(c, 200, "Content-Length: 3\r\n", wrap("12345")), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "Content-Length: 5\r\nContent-Length: 6\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "Content-Length: five\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "Transfer-Encoding: chunked\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_begin(c, 200, "Transfer-Encoding: chunked\r\n"), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 100, NULL, NULL, 0), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 101, "Upgrade: x\r\nConnection: upgrade\r\n", NULL, 0), TERN_EINVAL);
        CHECK_RC(tern_http_begin(c, 103, NULL), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "X-A: a\rb\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "X-A: a\nX-B: b\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "X-A: a\r\n\r\nInjected: y\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "Bad Name: v\r\n", "12345", 5), TERN_EINVAL);
        CHECK_RC(tern_http_reply(c, 200, "X-A: no line end", "12345", 5), TERN_EINVAL);
        CHECK_OK(tern_http_reply(c, 200, "X-Fixed: 1\r\n", "fixed", 5));
    } else if (uri_is(h, "/stream-over")) {
        CHECK_OK(tern_http_begin(c, 200, "Content-Length: 5\r\n"));
        CHECK_OK(tern_http_write(c, "hel", 3));
        CHECK_RC(tern_http_write(c, "lo!", 3), TERN_EINVAL);
        CHECK_RC(tern_http_write_bytes(c, wrap("lo!")), TERN_EINVAL);
        CHECK_OK(tern_http_write_bytes(c, wrap("lo")));
        CHECK_OK(tern_http_write(c, "", 0));
        CHECK_RC(tern_http_write(c, "!", 1), TERN_EINVAL);
        CHECK_OK(tern_http_end(c));
    } else if (uri_is(h, "/stream-short")) {
        CHECK_OK(tern_http_begin(c, 200, "Content-Length: 10\r\n"));
        CHECK_OK(tern_http_write(c, "abc", 3));
        CHECK_RC(tern_http_end(c), TERN_EPROTO);
    } else if (uri_is(h, "/conn-keep")) {
        CHECK_OK(tern_http_reply(c, 200, "Connection: keep-alive\r\nX-B: 2\r\n", "k", 1));
    } else if (uri_is(h, "/cl-ok")) {
        CHECK_OK(tern_http_reply(c, 200, "Content-Length: 2\r\n", "ok", 2));
    } else if (uri_is(h, "/conn-close")) {
        CHECK_OK(tern_http_reply(c, 200, "Connection: close\r\nX-C: 3\r\nconnection: close\r\n", "bye", 3));
    } else if (uri_is(h, "/after-close")) {
        g_after_close++;
        CHECK_OK(tern_http_reply(c, 200, NULL, "late", 4));
    } else if (uri_is(h, "/lf")) {
        g_lf_seen++;
        CHECK_OK(tern_http_reply(c, 200, NULL, "lf", 2));
    } else if (uri_is(h, "/smuggled")) {
        g_smuggled++;
        CHECK_OK(tern_http_reply(c, 200, NULL, "smuggled", 8));
    } else if (uri_is(h, "/send")) {
        CHECK_RC(tern_send(c, "raw", 3), TERN_EPROTO);
        CHECK_RC(tern_send_bytes(c, wrap("raw")), TERN_EPROTO);
        /* From another thread's side: accepted, then released on the loop. */
        CHECK_OK(tern_remote_send(g_remote, tern_conn_get_id(c), wrap("raw")));
        CHECK_OK(tern_http_reply(c, 200, NULL, "sent", 4));
    } else if (uri_is(h, "/defer-checks") || uri_is(h, "/defer-short")) {
        memset(&g_w, 0, sizeof g_w);
        g_w.tok = tern_http_defer(c, h);
        CHECK(g_w.tok.conn != 0, "tern_http_defer: %s", tern_strerror(tern_last_error()));
        g_w.kind = uri_is(h, "/defer-short");
        CHECK(pthread_create(&g_w.th, NULL, worker_main, &g_w) == 0, "pthread_create");
    } else if (uri_is(h, "/echo-fields")) {
        /* What tern's client sent: its Host, how many Host and Content-Length fields. */
        int hosts = 0, lens = 0;
        tern_str host = tern_http_header(h, "host"), body = tern_http_body(h);
        for (size_t i = 0; i < tern_http_header_count(h); i++) {
            tern_str n, v;
            CHECK_OK(tern_http_header_at(h, i, &n, &v));
            hosts += n.len == 4 && strncasecmp(n.ptr, "host", 4) == 0;
            lens += n.len == 14 && strncasecmp(n.ptr, "content-length", 14) == 0;
        }
        char text[256];
        int k = snprintf(text, sizeof text, "host=%.*s hosts=%d lens=%d body=%.*s", (int)host.len, host.ptr, hosts,
                         lens, (int)body.len, body.ptr ? body.ptr : "");
        CHECK_OK(tern_http_reply(c, 200, NULL, text, (size_t)k));
    } else {
        CHECK_OK(tern_http_reply(c, 404, NULL, "", 0));
    }
}

static void on_server(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_HTTP_MSG) answer(c, ev_data);
    if (ev == TERN_EV_ERROR && strstr(ev_data, "short of its Content-Length") != NULL) {
        g_short_errors++;
        g_short_error_code = tern_conn_error(c);
    }
}

/* ------------------------------------------------------------------------- */
/* Cases                                                                      */

static void case_bare_lf(tern_mgr *m, int port) {
    static const char *heads[] = {
        "GET /lf HTTP/1.1\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /lf HTTP/1.1\r\nHost: t\nConnection: close\r\n\r\n",
        "GET /lf HTTP/1.1\r\nHost: t\r\nConnection: close\n\r\n",
        "GET /lf HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\n",
        "\nGET /lf HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "GET /lf HTTP/1.1\nHost: t\nConnection: close\n\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        const char *got = exchange(m, port, heads[i]);
        CHECK(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0 && strstr(got, "Connection: close\r\n"),
              "bare LF head %zu: %s", i, got);
    }
    CHECK(g_lf_seen == 0, "a head with a bare LF reached the handler %d times", g_lf_seen);
    /* The smuggling shape: a proxy that does not end lines at a bare LF sees one
     * field "Host: t\nContent-Length: 38" and a body-less request followed by a
     * second one; tern must not see two requests either. */
    const char *smuggle = "GET /lf HTTP/1.1\r\nHost: t\nContent-Length: 38\r\n\r\n"
                          "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    const char *got = exchange(m, port, smuggle);
    CHECK(strncmp(got, "HTTP/1.1 400 ", 13) == 0 && strstr(got + 13, "HTTP/1.1") == NULL, "smuggling shape: %s", got);
    CHECK(g_lf_seen == 0 && g_smuggled == 0, "smuggling shape reached the handler (%d, %d)", g_lf_seen, g_smuggled);

    CHECK_RC(tern_mgr_set(m, TERN_OPT_HTTP_LENIENT_LF, 2), TERN_EINVAL);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_HTTP_LENIENT_LF, 1));
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        got = exchange(m, port, heads[i]);
        EXPECT_WIRE(got, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nlf", "bare LF with the option");
    }
    CHECK(g_lf_seen == (int)(sizeof heads / sizeof *heads), "lenient: %d answered", g_lf_seen);
    /* Chunked framing refuses a bare LF whatever the option says. */
    got = exchange(m, port, "POST /lf HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n");
    CHECK(strncmp(got, "HTTP/1.1 400 ", 13) == 0, "bare LF in a chunk size line: %s", got);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_HTTP_LENIENT_LF, 0));
    got = exchange(m, port, heads[1]);
    CHECK(strncmp(got, "HTTP/1.1 400 ", 13) == 0, "option off again: %s", got);
    printf("1. bare LF refused in every position, accepted with TERN_OPT_HTTP_LENIENT_LF: ok\n");
}

static void case_bodiless(tern_mgr *m, int port) {
    const char *got = exchange(m, port,
                               "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /204 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /304 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "HEAD /stream5 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /204-stream HTTP/1.1\r\nHost: t\r\n\r\n"
                               "HEAD /204 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /stream5 HTTP/1.1\r\nHost: t\r\n\r\n"
                               "HEAD /304 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                               "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_WIRE(got,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
                "HTTP/1.1 204 No Content\r\n\r\n"
                "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
                "HTTP/1.1 200 OK\r\nX-Kind: stream\r\n\r\n"
                "HTTP/1.1 204 No Content\r\n\r\n"
                "HTTP/1.1 204 No Content\r\n\r\n"
                "HTTP/1.1 200 OK\r\nX-Kind: stream\r\nContent-Length: 5\r\n\r\nhello"
                "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: keep-alive\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                "204, 304 and HEAD answers");
    printf("2. 204, 304 and HEAD answers byte-exact; bodies and lengths for them refused: ok\n");
}

static void case_framing(tern_mgr *m, int port) {
    const char *got = exchange(m, port,
                               "GET /mismatch HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /stream-over HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /conn-keep HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /cl-ok HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /send HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /conn-close HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /after-close HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_WIRE(got,
                "HTTP/1.1 200 OK\r\nX-Fixed: 1\r\nContent-Length: 5\r\n\r\nfixed"
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                "HTTP/1.1 200 OK\r\nX-B: 2\r\nContent-Length: 1\r\n\r\nk"
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsent"
                "HTTP/1.1 200 OK\r\nX-C: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye",
                "framing refused, then answered by tern's rules");
    CHECK(g_after_close == 0, "a request after the caller's Connection: close was answered");

    /* An end short of the length: EPROTO inline, ERROR on the connection, and the
     * client is not left waiting for the rest (here nothing was flushed yet). */
    got = exchange(m, port, "GET /stream-short HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(strlen(got) < strlen("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") + 1, "short stream: %s", got);
    CHECK(g_short_errors == 1 && g_short_error_code == TERN_EPROTO, "short stream: %d ERRORs, code %d",
          g_short_errors, g_short_error_code);

    /* The same rules from a worker thread. */
    got = exchange(m, port, "GET /defer-checks HTTP/1.1\r\nHost: t\r\n\r\n");
    pthread_join(g_w.th, NULL);
    CHECK(g_w.failed_line == 0, "deferred: the check at line %d failed", g_w.failed_line);
    EXPECT_WIRE(got, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", "deferred answer");
    got = exchange(m, port, "GET /defer-short HTTP/1.1\r\nHost: t\r\n\r\n");
    pthread_join(g_w.th, NULL);
    CHECK(g_w.failed_line == 0, "deferred short: the check at line %d failed", g_w.failed_line);
    EXPECT_WIRE(got, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "deferred short answer: truncated, then EOF");
    CHECK(g_short_errors == 2 && g_short_error_code == TERN_EPROTO, "deferred short: %d ERRORs", g_short_errors);
    printf("3. framing: mismatches refused, nothing wrong on the wire, inline and deferred: ok\n");
}

/* ------------------------------------------------------------------------- */
/* tern's client                                                              */

static int g_cl_msgs, g_cl_errors, g_cl_error_code, g_cl_closed, g_cl_status;
static char g_cl_body[256], g_cl_error[256];

static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_HTTP_MSG) {
        tern_str b = tern_http_body(ev_data);
        g_cl_status = tern_http_status(ev_data);
        snprintf(g_cl_body, sizeof g_cl_body, "%.*s", (int)b.len, b.ptr ? b.ptr : "");
        g_cl_msgs++;
    } else if (ev == TERN_EV_ERROR) {
        g_cl_errors++;
        g_cl_error_code = tern_conn_error(c);
        snprintf(g_cl_error, sizeof g_cl_error, "%s", (const char *)ev_data);
    } else if (ev == TERN_EV_CLOSE) {
        g_cl_closed++;
        CHECK(tern_conn_error(c) == TERN_OK, "tern_conn_error outside TERN_EV_ERROR");
    }
}

/* A raw tern server that answers whatever comes with canned bytes, then closes. */
static const char *g_canned;
static void on_canned(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_READ) {
        tern_str *s = ev_data;
        CHECK_OK(tern_conn_consume(c, s->len));
        CHECK_OK(tern_send(c, g_canned, strlen(g_canned)));
        CHECK_OK(tern_close(c));
    }
}

static void case_client_bare_lf(tern_mgr *m) {
    int port;
    t_listen(m, on_canned, NULL, &port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    g_canned = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
    for (int lenient = 0; lenient <= 1; lenient++) {
        CHECK_OK(tern_mgr_set(m, TERN_OPT_HTTP_CLIENT_LENIENT_LF, lenient));
        g_cl_msgs = g_cl_errors = g_cl_closed = 0;
        tern_conn *c = tern_http_connect(m, url, on_client, NULL);
        CHECK(c != NULL, "tern_http_connect");
        CHECK_OK(tern_http_request(c, "GET", "/", NULL, NULL, 0));
        T_POLL_UNTIL(m, g_cl_closed == 1, 10000, "the client's CLOSE (lenient %d)", lenient);
        if (lenient) {
            CHECK(g_cl_msgs == 1 && g_cl_errors == 0 && g_cl_status == 200 && strcmp(g_cl_body, "ok") == 0,
                  "lenient client: %d messages, %d errors (%s), status %d, body %s", g_cl_msgs, g_cl_errors,
                  g_cl_error, g_cl_status, g_cl_body);
        } else {
            CHECK(g_cl_msgs == 0 && g_cl_errors == 1 && g_cl_error_code == TERN_EPROTO && strstr(g_cl_error, "bare LF"),
                  "strict client: %d messages, %d errors (%d: %s)", g_cl_msgs, g_cl_errors, g_cl_error_code, g_cl_error);
        }
    }
    CHECK_OK(tern_mgr_set(m, TERN_OPT_HTTP_CLIENT_LENIENT_LF, 0));
    printf("1. client: a response head with a bare LF is an ERROR, accepted with the option: ok\n");
}

static void case_client_framing(tern_mgr *m, int port) {
    char url[64], body[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    g_cl_msgs = g_cl_errors = g_cl_closed = 0;
    tern_conn *c = tern_http_connect(m, url, on_client, NULL);
    CHECK(c != NULL, "tern_http_connect");
    CHECK_RC(tern_send(c, "GET / HTTP/1.1\r\n\r\n", 18), TERN_EPROTO);
    CHECK_RC(tern_send_bytes(c, wrap("raw")), TERN_EPROTO);
    CHECK_OK(tern_http_request(c, "POST", "/echo-fields", "Host: example.test\r\n", "abc", 3));
    T_POLL_UNTIL(m, g_cl_msgs == 1 || g_cl_errors, 10000, "response 1");
    CHECK(g_cl_status == 200 && strcmp(g_cl_body, "host=example.test hosts=1 lens=1 body=abc") == 0,
          "a caller's Host: %d %s", g_cl_status, g_cl_body);
    CHECK_OK(tern_http_request(c, "POST", "/echo-fields", "Content-Length: 3\r\n", "abc", 3));
    T_POLL_UNTIL(m, g_cl_msgs == 2 || g_cl_errors, 10000, "response 2");
    snprintf(body, sizeof body, "host=127.0.0.1:%d hosts=1 lens=1 body=abc", port);
    CHECK(g_cl_status == 200 && strcmp(g_cl_body, body) == 0, "a caller's Content-Length: %d %s", g_cl_status, g_cl_body);
    CHECK_RC(tern_http_request(c, "POST", "/echo-fields", "Content-Length: 4\r\n", "abc", 3), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, "POST", "/echo-fields", "Content-Length: x\r\n", "abc", 3), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, "POST", "/echo-fields", "Transfer-Encoding: chunked\r\n", "abc", 3), TERN_EINVAL);
    CHECK_RC(tern_http_request(c, "GET", "/echo-fields", "Transfer-Encoding: chunked\r\n", NULL, 0), TERN_EINVAL);
    CHECK_OK(tern_http_request(c, "GET", "/echo-fields", "Content-Length: 0\r\nhost: h2\r\n", NULL, 0));
    T_POLL_UNTIL(m, g_cl_msgs == 3 || g_cl_errors, 10000, "response 3");
    CHECK(g_cl_status == 200 && strcmp(g_cl_body, "host=h2 hosts=1 lens=1 body=") == 0, "refused ones sent nothing: %d %s",
          g_cl_status, g_cl_body);
    CHECK(g_cl_errors == 0, "client error: %s", g_cl_error);
    CHECK_OK(tern_close(c));
    T_POLL_UNTIL(m, g_cl_closed == 1, 10000, "the client's CLOSE");
    printf("4. tern's client with Host, Content-Length, Transfer-Encoding headers against tern's server: ok\n");
    printf("5. tern_send / tern_send_bytes on HTTP server and client connections refused: ok\n");
}

int main(void) {
    t_begin("test_http_wire", 120, 480);
    t_track_init(256);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_server, NULL);
    CHECK(l != NULL, "tern_http_listen");
    int port = tern_conn_local_port(l);
    g_remote = tern_mgr_remote(m);
    CHECK(g_remote != NULL, "tern_mgr_remote");

    case_bare_lf(m, port);
    case_client_bare_lf(m);
    case_bodiless(m, port);
    case_framing(m, port);
    case_client_framing(m, port);

    t_free(m);
    tern_remote_free(g_remote);
    t_track_check_all_closed();
    CHECK(atomic_load(&g_frees.frees) == atomic_load(&g_wraps), "%ld of %ld wrapped buffers released",
          atomic_load(&g_frees.frees), atomic_load(&g_wraps));
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes still alive");
    t_pass();
    return 0;
}
