/* ws_echo: a WebSocket echo server; every text or binary message comes back as it
 * was sent, on any path.
 *
 *   usage: ws_echo [PORT]          (default 8000, on 127.0.0.1)
 *   try:   python3 -m websockets ws://127.0.0.1:8000/   (then type lines)
 *
 * Runs until SIGINT or SIGTERM. The Autobahn conformance suite runs against it (ctest
 * label autobahn), and bench/ws.sh measures it.
 *
 * An HTTP listener delivers the upgrade request as TERN_EV_HTTP_MSG; tern_ws_upgrade
 * checks the handshake, answers 101 (with permessage-deflate when the client offers
 * it: TERN_OPT_WS_DEFLATE) and turns the connection into a WebSocket: TERN_EV_WS_OPEN,
 * then one TERN_EV_WS_MSG per message (fragments reassembled, text checked UTF-8).
 * Pings, pongs and the closing handshake are tern's business; protocol errors get
 * their close codes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tern.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) {
        /* answers the request itself if it is not a valid upgrade (400 or 426) */
        tern_ws_upgrade(c, ev_data, NULL);
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        tern_ws_send(c, m->op, m->data.ptr, m->data.len);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8000;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
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
    /* compression without context takeover: a few hundred bytes per connection */
    tern_mgr_set(mgr, TERN_OPT_WS_DEFLATE, 1);
    /* Autobahn's limits cases send messages up to 16 MiB */
    tern_mgr_set(mgr, TERN_OPT_MAX_WS_MESSAGE, 64 << 20);
    tern_mgr_set(mgr, TERN_OPT_MAX_SEND_QUEUE, 128 << 20);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    if (tern_http_listen(mgr, url, on_event, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s WebSocket echo on ws://127.0.0.1:%d/ ; Ctrl-C stops it\n", tern_version(), port);
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
