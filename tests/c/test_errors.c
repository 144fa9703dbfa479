/* test_errors: errors a C programmer can act on (issue 8, item 7), through the public
 * header with real sockets on 127.0.0.1.
 *
 *   - tern_strerror names every code, each differently, and says "unknown error" for
 *     codes tern does not define;
 *   - tern_last_error / tern_last_os_error have errno semantics: a failed tern_listen on
 *     a port in use sets TERN_EADDRINUSE and EADDRINUSE; a later successful call leaves
 *     both alone; a failure without an OS error (a bad URL) sets its code and 0; calls
 *     returning a status code leave them alone; a fresh thread sees 0 and 0;
 *   - tcp:// URLs with a path other than "/" or with a query are TERN_EINVAL for
 *     tern_listen and tern_connect;
 *   - TERN_EV_ERROR carries a code and the errno behind it (tern_conn_error,
 *     tern_conn_os_error), TERN_OK and 0 outside it: a connection to a closed port
 *     (TERN_ECONNREFUSED / ECONNREFUSED), a peer's reset (TERN_ECONNRESET /
 *     ECONNRESET), the send queue limit (TERN_EFULL, and a message that counts the
 *     buffer that crossed the limit), a response that does not come (TERN_ETIMEDOUT).
 */
#include "common.h"

static int g_err_code, g_err_os, g_errors, g_closes, g_outside_bad;
static char g_err_msg[256];

/* Records the error a connection ends with; checks the calls say nothing outside
 * TERN_EV_ERROR. */
static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_ERROR) {
        g_errors++;
        g_err_code = tern_conn_error(c);
        g_err_os = tern_conn_os_error(c);
        snprintf(g_err_msg, sizeof g_err_msg, "%s", (const char *)ev_data);
    } else if (tern_conn_error(c) != TERN_OK || tern_conn_os_error(c) != 0) {
        g_outside_bad++;
    }
    if (ev == TERN_EV_CLOSE) g_closes++;
}

static void reset_errors(void) {
    g_err_code = g_err_os = g_errors = g_closes = 0;
    g_err_msg[0] = '\0';
}

/* A raw server that queues 60000 bytes twice on accept (past a 100000 limit), or does
 * nothing with what it reads. */
static int g_queue_rc[2], g_reads;
static void on_server(tern_conn *c, int ev, void *ev_data, void *user) {
    on_event(c, ev, ev_data, user);
    static char buf[60000];
    if (ev == TERN_EV_ACCEPT && user == (void *)1) {
        g_queue_rc[0] = tern_send(c, buf, sizeof buf);
        g_queue_rc[1] = tern_send(c, buf, sizeof buf);
    }
    if (ev == TERN_EV_READ) {
        g_reads++;
        CHECK_OK(tern_conn_consume(c, ((tern_str *)ev_data)->len));
    }
}

/* Closes a listener and waits for its CLOSE, so the next case counts only its own. */
static void close_listener(tern_mgr *m, tern_conn *l) {
    tern_conn_id id = tern_conn_get_id(l);
    CHECK_OK(tern_close(l));
    T_POLL_UNTIL(m, t_track_get(id).closed == 1, 5000, "the listener's CLOSE");
}

static atomic_int g_thread_codes[2];
static void *fresh_thread(void *arg) {
    (void)arg;
    atomic_store(&g_thread_codes[0], tern_last_error());
    atomic_store(&g_thread_codes[1], tern_last_os_error());
    return NULL;
}

static void case_strerror(void) {
    const int codes[] = {TERN_OK,        TERN_EINVAL,      TERN_ECLOSED,      TERN_EFULL,     TERN_EPROTO,
                         TERN_EIO,       TERN_ENOMEM,      TERN_EINTERNAL,    TERN_ETIMEDOUT, TERN_ENOTFOUND,
                         TERN_EADDRINUSE, TERN_ECONNREFUSED, TERN_ECONNRESET, TERN_EHOSTUNREACH, TERN_ENAME};
    size_t n = sizeof codes / sizeof *codes;
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] == -(int)i, "code %zu is %d: the codes are consecutive", i, codes[i]);
        const char *s = tern_strerror(codes[i]);
        CHECK(s != NULL && s[0] != '\0' && strcmp(s, "unknown error") != 0, "tern_strerror(%d) = \"%s\"", codes[i], s);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, tern_strerror(codes[j])) != 0, "tern_strerror(%d) == tern_strerror(%d)", codes[i], codes[j]);
    }
    CHECK(strcmp(tern_strerror(-(int)n), "unknown error") == 0, "tern_strerror(%d)", -(int)n);
    CHECK(strstr(tern_strerror(TERN_EADDRINUSE), "in use") && strstr(tern_strerror(TERN_ECONNREFUSED), "refused"),
          "names say what happened");
}

static void case_last_error(tern_mgr *m) {
    /* A port in use, taken by a plain socket. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0, "bind: %s", strerror(errno));
    int busy = t_raw_local_port(fd);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", busy);
    CHECK(tern_listen(m, url, on_event, NULL) == NULL, "tern_listen on a port in use succeeded");
    CHECK(tern_last_error() == TERN_EADDRINUSE && tern_last_os_error() == EADDRINUSE,
          "port in use: tern_last_error %d (%s), tern_last_os_error %d", tern_last_error(),
          tern_strerror(tern_last_error()), tern_last_os_error());
    snprintf(url, sizeof url, "http://127.0.0.1:%d", busy);
    CHECK(tern_http_listen(m, url, on_event, NULL) == NULL && tern_last_error() == TERN_EADDRINUSE, "http: in use");

    /* Left alone by successes and by calls that return their code. */
    CHECK(tern_listen(m, "tcp://127.0.0.1:0", on_event, NULL) != NULL, "tern_listen");
    CHECK(tern_listen(m, "tcp://127.0.0.1:0/", on_event, NULL) != NULL, "a path of \"/\" is no path");
    CHECK_RC(tern_send(NULL, "x", 1), TERN_EINVAL);
    CHECK_RC(tern_mgr_set(m, 9999, 1), TERN_EINVAL);
    CHECK(tern_last_error() == TERN_EADDRINUSE && tern_last_os_error() == EADDRINUSE,
          "after successes: tern_last_error %d, tern_last_os_error %d (must be left alone)", tern_last_error(),
          tern_last_os_error());

    /* A failure with no OS error behind it. */
    const char *with_path[] = {"tcp://127.0.0.1:0/x", "tcp://127.0.0.1:0/?q=1", "tcp://127.0.0.1:0//"};
    for (size_t i = 0; i < sizeof with_path / sizeof *with_path; i++) {
        CHECK(tern_listen(m, with_path[i], on_event, NULL) == NULL, "tern_listen(%s) succeeded", with_path[i]);
        CHECK(tern_last_error() == TERN_EINVAL && tern_last_os_error() == 0, "tern_listen(%s): %d, %d", with_path[i],
              tern_last_error(), tern_last_os_error());
        CHECK(tern_connect(m, with_path[i], on_event, NULL) == NULL && tern_last_error() == TERN_EINVAL,
              "tern_connect(%s)", with_path[i]);
    }
    close(fd);

    pthread_t th;
    CHECK(pthread_create(&th, NULL, fresh_thread, NULL) == 0, "pthread_create");
    pthread_join(th, NULL);
    CHECK(atomic_load(&g_thread_codes[0]) == 0 && atomic_load(&g_thread_codes[1]) == 0,
          "a fresh thread sees %d, %d (per thread, 0 before any failure)", g_thread_codes[0], g_thread_codes[1]);
    printf("tern_last_error / tern_last_os_error: errno semantics, tcp:// paths refused: ok\n");
}

static void case_refused(tern_mgr *m) {
    reset_errors();
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", t_closed_port());
    CHECK(tern_connect(m, url, on_event, NULL) != NULL, "tern_connect");
    T_POLL_UNTIL(m, g_closes == 1, 10000, "the refused connection's CLOSE");
    CHECK(g_errors == 1 && g_err_code == TERN_ECONNREFUSED && g_err_os == ECONNREFUSED && g_err_msg[0],
          "refused: %d errors, code %d, errno %d, \"%s\"", g_errors, g_err_code, g_err_os, g_err_msg);
    printf("connect to a closed port: TERN_ECONNREFUSED / ECONNREFUSED (\"%s\"): ok\n", g_err_msg);
}

static void case_reset(tern_mgr *m) {
    reset_errors();
    int port;
    tern_conn *l = t_listen(m, on_server, NULL, &port);
    int fd = t_raw_connect(port, 0);
    t_write_all(fd, "x", 1);
    T_POLL_UNTIL(m, g_reads == 1, 5000, "the byte read");
    t_set_linger0(fd);
    close(fd);
    T_POLL_UNTIL(m, g_closes == 1, 10000, "the reset connection's CLOSE");
    CHECK(g_errors == 1 && g_err_code == TERN_ECONNRESET && g_err_os == ECONNRESET,
          "reset: %d errors, code %d, errno %d, \"%s\"", g_errors, g_err_code, g_err_os, g_err_msg);
    close_listener(m, l);
    printf("a peer's reset: TERN_ECONNRESET / ECONNRESET (\"%s\"): ok\n", g_err_msg);
}

static void case_queue_limit(tern_mgr *m) {
    reset_errors();
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, 100000));
    tern_conn *l = tern_listen(m, "tcp://127.0.0.1:0", on_server, (void *)1);
    CHECK(l != NULL, "tern_listen");
    int fd = t_raw_connect(tern_conn_local_port(l), 0);
    T_POLL_UNTIL(m, g_closes == 1, 10000, "the connection closed for its queue");
    CHECK(g_queue_rc[0] == TERN_OK && g_queue_rc[1] == TERN_EFULL, "sends: %d, %d", g_queue_rc[0], g_queue_rc[1]);
    CHECK(g_errors == 1 && g_err_code == TERN_EFULL && g_err_os == 0, "queue limit: code %d, errno %d", g_err_code,
          g_err_os);
    CHECK(strstr(g_err_msg, "120000 bytes") && strstr(g_err_msg, "limit 100000"),
          "the message counts the buffer that crossed the limit: \"%s\"", g_err_msg);
    close(fd);
    close_listener(m, l);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, 16 << 20));
    printf("send queue limit: TERN_EFULL, \"%s\": ok\n", g_err_msg);
}

static void case_response_timeout(tern_mgr *m) {
    reset_errors();
    CHECK_OK(tern_mgr_set(m, TERN_OPT_IDLE_TIMEOUT_MS, 200));
    int port;
    tern_conn *l = t_listen(m, on_server, NULL, &port); /* reads and never answers */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tern_conn *c = tern_http_connect(m, url, on_event, NULL);
    CHECK(c != NULL, "tern_http_connect");
    CHECK_OK(tern_http_request(c, "GET", "/", NULL, NULL, 0));
    T_POLL_UNTIL(m, g_errors == 1, 10000, "the client's ERROR");
    CHECK(g_err_code == TERN_ETIMEDOUT && g_err_os == 0, "response timeout: code %d, errno %d, \"%s\"", g_err_code,
          g_err_os, g_err_msg);
    close_listener(m, l);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_IDLE_TIMEOUT_MS, 60000));
    printf("a response that does not come: TERN_ETIMEDOUT (\"%s\"): ok\n", g_err_msg);
}

int main(void) {
    t_begin("test_errors", 60, 240);
    t_track_init(64);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();
    CHECK(tern_last_error() == 0 && tern_last_os_error() == 0, "before any failure: %d, %d", tern_last_error(),
          tern_last_os_error());
    CHECK(tern_conn_error(NULL) == TERN_OK && tern_conn_os_error(NULL) == 0, "NULL connection");

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    case_strerror();
    case_last_error(m);
    case_refused(m);
    case_reset(m);
    case_queue_limit(m);
    case_response_timeout(m);
    CHECK(g_outside_bad == 0, "%d events outside TERN_EV_ERROR saw an error code", g_outside_bad);

    t_free(m);
    t_track_check_all_closed();
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes still alive");
    t_pass();
    return 0;
}
