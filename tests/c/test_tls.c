/* TLS through the C API, server and client on one loop (certificates made here with the
 * openssl command): https requests answered, wrapped buffers sent over tls:// each
 * released exactly once and only after the peer could have every byte (poisoned on
 * release: an early free would corrupt what the peer checks), garbage and resets
 * mid-handshake costing only their connection, a stalled handshake timed out, and
 * everything back to zero at the end. Runs under valgrind too (TERN_TEST_SCALE=small). */
#include "test_certs.h"


static void on_https(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_HTTP_MSG) tern_http_reply(c, 200, "", "secret", 6);
}

static int answers;
static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_HTTP_MSG) {
        tern_str b = tern_http_body(ev_data);
        CHECK(tern_http_status(ev_data) == 200 && b.len == 6 && memcmp(b.ptr, "secret", 6) == 0, "the answer");
        answers++;
    }
}

#define NBUF 16
#define BUFLEN (256 * 1024)
static unsigned char *bufs[NBUF];
static t_free_counter frees;
static size_t received;
static long bad_at = -1;

static void on_raw_server(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_ACCEPT) {
        for (int i = 0; i < NBUF; i++) CHECK_OK(tern_send_bytes(c, tern_bytes_wrap(bufs[i], BUFLEN, t_count_free_poison, &frees)));
        tern_close(c);
    }
}

static void on_raw_client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev == TERN_EV_READ) {
        tern_str *s = ev_data;
        long bad = t_check_pattern(s->ptr, s->len, 7, received);
        if (bad >= 0 && bad_at < 0) bad_at = (long)received + bad;
        received += s->len;
        tern_conn_consume(c, s->len);
    }
}

static void garbage_and_resets(int port) {
    int n = (int)t_scale(200, 20);
    for (int i = 0; i < n; i++) {
        int fd = t_raw_connect(port, 0);
        unsigned char junk[600];
        t_fill_pattern(junk, sizeof junk, (uint64_t)i, 0);
        junk[0] = (i % 2) ? 0x16 : junk[0]; /* half look like a handshake record */
        t_write_all(fd, junk, (size_t)(1 + i % (int)sizeof junk));
        if (i % 3 == 0) t_set_linger0(fd);
        close(fd);
    }
}

int main(void) {
    t_begin("test_tls", 60, 300);
    t_track_init(4096);
    make_cert("tls");
    uint64_t live0 = tern_bytes_live();
    tern_mgr *m = tern_mgr_new();
    tern_tls_config *srv = tern_tls_config_new_server();
    CHECK_RC(tern_tls_config_add_cert_file(srv, cert, cert), TERN_ETLS); /* a certificate is no key */
    CHECK(tern_tls_config_error(srv) != NULL, "the reason is kept");
    CHECK_OK(tern_tls_config_add_cert_file(srv, cert, key));
    tern_tls_config *cli = tern_tls_config_new_client();
    CHECK_OK(tern_tls_config_add_ca_file(cli, ca));
    tern_tls_config *shared = tern_tls_config_share(srv);
    CHECK_RC(tern_mgr_set_tls(m, shared), TERN_OK);
    CHECK_RC(tern_tls_config_add_cert_file(srv, cert, key), TERN_EPROTO); /* frozen by its use */
    CHECK_OK(tern_mgr_set_tls(m, cli));
    tern_tls_config_release(shared);
    tern_tls_config_release(srv);
    tern_tls_config_release(cli);

    /* https: requests queued before the handshake, answered after it */
    tern_conn *l = tern_http_listen(m, "https://127.0.0.1:0", on_https, NULL);
    CHECK(l != NULL, "https listener");
    int port = tern_conn_local_port(l);
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);
    int nreq = (int)t_scale(20, 4);
    tern_conn *c = tern_http_connect(m, url, on_client, NULL);
    for (int i = 0; i < nreq; i++) CHECK_OK(tern_http_request(c, "GET", "/", NULL, NULL, 0));
    T_POLL_UNTIL(m, answers == nreq, 10000, "every https request answered");
    garbage_and_resets(port);

    /* a stalled handshake: the timeout closes it (a short one, for the connections
     * accepted from now on: handshakes under valgrind on a busy machine are slow) */
    CHECK_OK(tern_mgr_set(m, TERN_OPT_TLS_HANDSHAKE_TIMEOUT_MS, 300));
    int stalled = t_raw_connect(port, 0);
    double t0 = t_now_ms();
    unsigned char half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00};
    t_write_all(stalled, half, sizeof half);
    int closed = 0;
    while (!closed && t_now_ms() - t0 < t_bound_ms(5000)) {
        t_poll(m, 10);
        char b[64];
        ssize_t n = recv(stalled, b, sizeof b, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    }
    CHECK(closed, "a stalled handshake is closed");
    CHECK(t_now_ms() - t0 >= 250, "not closed before the handshake timeout");
    close(stalled);
    CHECK_OK(tern_mgr_set(m, TERN_OPT_TLS_HANDSHAKE_TIMEOUT_MS, 10000));

    /* tls:// raw: wrapped buffers released once, the peer gets every byte intact */
    for (int i = 0; i < NBUF; i++) {
        bufs[i] = malloc(BUFLEN);
        t_fill_pattern(bufs[i], BUFLEN, 7, (uint64_t)i * BUFLEN);
    }
    tern_conn *rl = tern_listen(m, "tls://127.0.0.1:0", on_raw_server, NULL);
    snprintf(url, sizeof url, "tls://localhost:%d", tern_conn_local_port(rl));
    CHECK(tern_connect(m, url, on_raw_client, NULL) != NULL, "tls:// connect");
    T_POLL_UNTIL(m, received == (size_t)NBUF * BUFLEN && atomic_load(&frees.frees) == NBUF, 20000, "all bytes, all frees");
    CHECK(bad_at < 0, "byte %ld arrived changed: released before it was written", bad_at);

    tern_close(c);
    T_POLL_UNTIL(m, tern_mgr_conn_count(m) == 2, 10000, "only the listeners left");
    t_free(m);
    CHECK(atomic_load(&frees.frees) == NBUF, "each free callback ran once");
    CHECK(tern_bytes_live() == live0, "no tern_bytes left");
    t_track_check_all_closed();
    for (int i = 0; i < NBUF; i++) free(bufs[i]);
    remove_cert();
    t_track_fini();
    t_pass();
    return 0;
}
