/* static_server: serves a directory over HTTP, the way a web server does.
 *
 *   usage: static_server DIR [PORT [PREFIX]]   (default 8000, on 127.0.0.1)
 *   try:   curl -i http://127.0.0.1:8000/
 *          curl -i -H 'Range: bytes=0-99' http://127.0.0.1:8000/some/file
 *   with PREFIX (e.g. /static): DIR is served under that URL path, as nginx's
 *   `location /static/ { alias DIR/; }`: /static/a.css is DIR/a.css, /a.css is 404.
 *
 * Runs until SIGINT or SIGTERM.
 *
 * tern_http_serve_dir answers each request from DIR: index.html for directories,
 * ETag / Last-Modified and their 304s, one byte range, a precompressed NAME.gz for
 * clients that accept gzip, and 400/403/404/405 where they belong. Nothing outside
 * DIR is served, symlinks included. File bodies go to the socket with sendfile; a
 * client that resets mid-download cannot raise SIGPIPE, even though this program
 * leaves SIGPIPE at its default.
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

static const char *prefix; /* NULL: DIR is the whole site */

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    const char *root = user;
    if (ev == TERN_EV_HTTP_MSG) {
        int rc = prefix ? tern_http_serve_prefix(c, ev_data, prefix, root) : tern_http_serve_dir(c, ev_data, root);
        if (rc != TERN_OK) {
            fprintf(stderr, "tern_http_serve_dir: %s\n", tern_strerror(rc));
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 2 ? atoi(argv[2]) : 8000;
    prefix = argc > 3 ? argv[3] : NULL;
    if (argc < 2 || argc > 4 || port <= 0 || port > 65535 || (prefix && prefix[0] != '/')) {
        fprintf(stderr, "usage: %s DIR [PORT [PREFIX]]   (PREFIX: a URL path such as /static)\n", argv[0]);
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
    if (tern_http_listen(mgr, url, on_http, argv[1]) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s serving %s on %s (try: curl -i %s%s/); Ctrl-C stops it\n", tern_version(), argv[1],
           url, url, prefix ? prefix : "");
    fflush(stdout);
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    /* Graceful stop: new connections are refused, requests already read are answered
     * (files in flight finish); whatever is still open after 5 s is closed.
     * tern_mgr_poll says TERN_ECLOSED when nothing is left (a second signal stops
     * waiting). */
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
