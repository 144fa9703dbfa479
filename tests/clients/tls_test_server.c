/* tls_test_server: a tern HTTPS/WSS server for tests with real clients (curl,
 * Python ssl/http.client and websockets, openssl s_client) and for fault injection.
 *
 *   usage: tls_test_server CERT KEY [CERT KEY]...   (PEM files; 127.0.0.1, a free port)
 *
 * The first certificate is the default; clients naming another one's host (SNI)
 * get that one. Prints the port as line 1 of stdout, then serves until stdin reaches
 * EOF. Environment: TLS_DIR (a directory served under /static/ through
 * tern_http_serve_dir: its files live in TLS_DIR/static/), TLS_HANDSHAKE_MS (the
 * handshake timeout). Routes:
 *   /          "hello\n"
 *   /ws        WebSocket echo
 *   /static/.. files of TLS_DIR/static
 *   /big?mib=N N MiB in N wrapped buffers of 1 MiB, each with a counted free callback
 *   /stats     "wrapped=W freed=F live=L conns=C fds=D\n": buffers wrapped and freed
 *              so far, tern_bytes alive, connections alive (listener included),
 *              descriptors open in this process
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern.h"

#define MIB (1 << 20)

static tern_mgr *mgr;
static unsigned char *pattern; /* 1 MiB every /big buffer wraps */
static atomic_long wrapped, freed;

static void on_free(void *ctx, void *data, size_t len) {
    (void)ctx, (void)data, (void)len;
    atomic_fetch_add(&freed, 1);
}

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static int uri_is(tern_str u, const char *s) { return u.len == strlen(s) && memcmp(u.ptr, s, u.len) == 0; }

static void big(tern_conn *c, tern_http_msg *h) {
    char v[16];
    int mib = tern_http_var(tern_http_query(h), "mib", v, sizeof v) > 0 ? atoi(v) : 1;
    if (mib <= 0 || mib > 1024) mib = 1;
    char head[64];
    snprintf(head, sizeof head, "Content-Length: %lld\r\n", (long long)mib * MIB);
    tern_http_begin(c, 200, head);
    for (int i = 0; i < mib; i++) {
        atomic_fetch_add(&wrapped, 1);
        tern_http_write_bytes(c, tern_bytes_wrap(pattern, MIB, on_free, NULL));
    }
    tern_http_end(c);
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    const char *dir = user;
    if (ev == TERN_EV_HTTP_MSG) {
        tern_http_msg *h = ev_data;
        tern_str u = tern_http_uri(h);
        if (uri_is(u, "/")) {
            tern_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello\n", 6);
        } else if (uri_is(u, "/ws")) {
            tern_ws_upgrade(c, h, NULL);
        } else if (uri_is(u, "/big")) {
            big(c, h);
        } else if (uri_is(u, "/stats")) {
            char s[160];
            int n = snprintf(s, sizeof s, "wrapped=%ld freed=%ld live=%llu conns=%zu fds=%d\n", atomic_load(&wrapped),
                             atomic_load(&freed), (unsigned long long)tern_bytes_live(), tern_mgr_conn_count(mgr),
                             open_fds());
            tern_http_reply(c, 200, "Content-Type: text/plain\r\n", s, (size_t)n);
        } else if (dir != NULL && u.len > 8 && memcmp(u.ptr, "/static/", 8) == 0) {
            tern_http_serve_dir(c, h, dir);
        } else {
            tern_http_reply(c, 404, "", "not found\n", 10);
        }
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        tern_ws_send(c, m->op, m->data.ptr, m->data.len);
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: %s CERT KEY [CERT KEY]...\n", argv[0]);
        return 2;
    }
    pattern = malloc(MIB);
    for (int i = 0; i < MIB; i++) pattern[i] = (unsigned char)(i % 251);
    mgr = tern_mgr_new();
    tern_tls_config *cfg = tern_tls_config_new_server();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (tern_tls_config_add_cert_file(cfg, argv[i], argv[i + 1]) != TERN_OK) {
            fprintf(stderr, "tls_test_server: %s: %s\n", argv[i], tern_tls_config_error(cfg));
            return 1;
        }
    }
    const char *hs = getenv("TLS_HANDSHAKE_MS");
    if (hs) tern_mgr_set(mgr, TERN_OPT_TLS_HANDSHAKE_TIMEOUT_MS, atoi(hs));
    tern_mgr_set(mgr, TERN_OPT_MAX_SEND_QUEUE, 1100 * MIB);
    tern_mgr_set(mgr, TERN_OPT_MAX_WS_MESSAGE, 64 << 20);
    if (tern_mgr_set_tls(mgr, cfg) != TERN_OK) return 1;
    tern_tls_config_release(cfg);
    tern_conn *l = tern_http_listen(mgr, "https://127.0.0.1:0", on_event, getenv("TLS_DIR"));
    if (l == NULL) return 1;
    printf("%d\n", tern_conn_local_port(l));
    fflush(stdout);
    for (;;) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            char buf[64];
            if (read(0, buf, sizeof buf) <= 0) break;
        }
        if (tern_mgr_poll(mgr, 20) < 0) break;
    }
    tern_mgr_free(mgr);
    free(pattern);
    return 0;
}
