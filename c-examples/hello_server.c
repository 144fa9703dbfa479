/* hello_server: the smallest tern HTTP server; every request gets "hello\n".
 *
 *   usage: hello_server [PORT]     (default 8000, on 127.0.0.1)
 *   try:   curl -i http://127.0.0.1:8000/
 *
 * Runs until SIGINT or SIGTERM (then stops gracefully: tern_mgr_shutdown). bench/http.sh
 * measures it against nginx.
 *
 * An HTTP listener delivers one TERN_EV_HTTP_MSG per complete request (head parsed,
 * body read and de-chunked); the handler answers with tern_http_reply, which queues
 * the whole response (status line, Date, Content-Length, the caller's headers, body)
 * for one write. Keep-alive, pipelining and `Connection: close` are tern's business.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tern.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++;
}

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)ev_data;
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) {
        /* headers: extra lines, each ending in \r\n; tern adds Content-Length */
        tern_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello\n", 6);
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
    if (tern_http_listen(mgr, url, on_http, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s HTTP server on %s (try: curl -i %s/); Ctrl-C stops it\n", tern_version(), url,
           url);
    fflush(stdout);
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    /* Graceful stop: new connections are refused, requests already read are answered;
     * whatever is still open after 5 s is closed. tern_mgr_poll says TERN_ECLOSED when
     * nothing is left (a second signal stops waiting). */
    tern_mgr_shutdown(mgr, 5000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) {
        rc = tern_mgr_poll(mgr, 100);
        if (rc < 0 && rc != TERN_ECLOSED) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    tern_mgr_free(mgr);
    return 0;
}
