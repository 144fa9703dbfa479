/* tern_ws_bench: tern's broadcast bench server for bench/ws.sh (issue 9).
 *
 *   usage: tern_ws_bench [PORT]      (default 8000; ws://127.0.0.1:PORT/, any path)
 *
 * Written against the WebSocket API issue 9 adds (tern_ws_upgrade, TERN_EV_WS_OPEN,
 * tern_ws_subscribe, tern_remote_ws_publish); bench/ws.sh builds it against the built
 * libtern once that API exists. It is not part of the CMake build.
 *
 * The broadcast protocol (top of bench/ws.sh): every client is subscribed to the topic
 * "bench"; the text "start RATE COUNT" makes a worker thread publish COUNT 64-byte
 * binary messages at RATE per second, then the text "done" (the worker's loop, shared
 * with the libwebsockets peer, is bench/broadcast_publisher.h). The worker never touches
 * a connection: it publishes through a tern_remote, and TERN_EFULL (the remote's queue
 * is full) means wait and offer the message again. Each offer hands tern a new
 * tern_bytes, since a `take` argument is consumed whatever the call returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broadcast_publisher.h"
#include "tern.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Worker thread: 0 published, 1 queue full (retry), -1 the manager is gone. */
static int publish(const void *data, size_t len, int text, void *ctx) {
    tern_remote *remote = ctx;
    int rc = tern_remote_ws_publish(remote, "bench", text ? TERN_WS_TEXT : TERN_WS_BINARY, tern_bytes_copy(data, len));
    return rc == TERN_OK ? 0 : rc == TERN_EFULL ? 1 : -1;
}

/* Loop thread. */
static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    switch (ev) {
    case TERN_EV_HTTP_MSG:
        if (tern_ws_upgrade(c, ev_data, NULL) != TERN_OK)
            tern_http_reply(c, 400, "Content-Type: text/plain\r\n", "WebSocket only\n", 15);
        break;
    case TERN_EV_WS_OPEN: tern_ws_subscribe(c, "bench"); break;
    case TERN_EV_WS_MSG: {
        const tern_ws_msg *m = ev_data;
        if (m->op == TERN_WS_TEXT) publisher_command(m->data.ptr, m->data.len);
        break;
    }
    default: break;
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
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    if (tern_http_listen(mgr, url, on_event, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    tern_remote *remote = tern_mgr_remote(mgr); /* the worker's; freed after it is joined */
    if (remote == NULL || publisher_start(publish, remote) < 0) {
        fprintf(stderr, "tern_ws_bench: cannot start the worker\n");
        if (remote) tern_remote_free(remote);
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s broadcast bench server on ws://127.0.0.1:%d/\n", tern_version(), port);
    fflush(stdout);
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    publisher_stop();
    tern_remote_free(remote);
    tern_mgr_free(mgr);
    return 0;
}
