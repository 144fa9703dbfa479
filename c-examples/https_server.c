/* https_server: HTTPS and WebSocket over TLS with tern.
 *
 *   usage: https_server CERT KEY [PORT [DIR]]   (PEM files; default port 8443, on 127.0.0.1)
 *   try:   curl --cacert CA.pem https://localhost:8443/
 *          curl --cacert CA.pem https://localhost:8443/static/some/file   (with DIR)
 *          python3 -m websockets wss://localhost:8443/ws                  (an echo)
 *
 * Runs until SIGINT or SIGTERM. TLS_CIPHERSUITES in the environment restricts the
 * cipher suites ("TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
 * as bench/tls.sh pins them).
 *
 * One tern_tls_config holds the certificate chain and key; tern_mgr_set_tls makes it
 * the manager's server configuration, and the "https://" scheme of tern_http_listen
 * puts the listener behind it (TLS 1.2 and 1.3, ALPN http/1.1, resumption tickets).
 * Everything above is the same as over plain HTTP: "hello\n" at /, the files of DIR
 * under /static/ (ranges, ETags and 304s as usual; over TLS the file bodies are read
 * and encrypted through a small per-connection buffer instead of sendfile), and a
 * WebSocket echo at /ws (wss://).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int starts_with(tern_str s, const char *prefix) {
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    const char *dir = user;
    if (ev == TERN_EV_HTTP_MSG) {
        tern_http_msg *h = ev_data;
        tern_str uri = tern_http_uri(h);
        if (uri.len == 1 && uri.ptr[0] == '/') {
            tern_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello\n", 6);
        } else if (uri.len == 3 && starts_with(uri, "/ws")) {
            tern_ws_upgrade(c, h, NULL); /* answers 400/426 itself if it is no upgrade */
        } else if (dir != NULL && starts_with(uri, "/static/")) {
            tern_http_serve_prefix(c, h, "/static", dir);
        } else {
            tern_http_reply(c, 404, "Content-Type: text/plain\r\n", "not found\n", 10);
        }
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        tern_ws_send(c, m->op, m->data.ptr, m->data.len);
    }
}

/* The manager's server configuration from the PEM files; 0 on success. */
static int use_certificate(tern_mgr *mgr, const char *cert, const char *key) {
    tern_tls_config *cfg = tern_tls_config_new_server();
    int rc = cfg ? tern_tls_config_add_cert_file(cfg, cert, key) : TERN_ENOMEM;
    const char *suites = getenv("TLS_CIPHERSUITES");
    if (rc == TERN_OK && suites != NULL) rc = tern_tls_config_set_ciphersuites(cfg, suites);
    if (rc == TERN_OK) rc = tern_mgr_set_tls(mgr, cfg);
    if (rc != TERN_OK) {
        const char *why = cfg ? tern_tls_config_error(cfg) : NULL;
        fprintf(stderr, "%s / %s: %s%s%s\n", cert, key, tern_strerror(rc), why ? ": " : "", why ? why : "");
    }
    tern_tls_config_release(cfg); /* the manager keeps its own reference */
    return rc;
}

int main(int argc, char **argv) {
    int port = argc > 3 ? atoi(argv[3]) : 8443;
    if (argc < 3 || argc > 5 || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s CERT KEY [PORT [DIR]]\n", argv[0]);
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) {
        fprintf(stderr, "tern_mgr_new: %s\n", tern_strerror(tern_last_error()));
        return 1;
    }
    if (use_certificate(mgr, argv[1], argv[2]) != TERN_OK) {
        tern_mgr_free(mgr);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    if (tern_http_listen(mgr, url, on_event, argc > 4 ? argv[4] : NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s serving %s (/ hello, /ws echo%s); Ctrl-C stops it\n", tern_version(), url,
           argc > 4 ? ", /static/ files" : "");
    fflush(stdout);
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    tern_mgr_free(mgr);
    return 0;
}
