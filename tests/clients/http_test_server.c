/* http_test_server: a tern HTTP server for tests with real clients (curl, Python).
 *
 *   usage: http_test_server [PORT]    (default 0: a free port; 127.0.0.1 only)
 *
 * Prints the port it listens on as line 1 of stdout, then serves until stdin reaches
 * EOF (or fails) or SIGTERM/SIGINT arrives. Routes:
 *   /hello   "hello\n"
 *   /echo    the request body (tern de-chunks chunked uploads and answers
 *            `Expect: 100-continue` itself)
 *   /defer   deferred with tern_http_defer; a worker thread answers "deferred\n"
 *            50 ms later with tern_http_respond
 *   other    404
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

#define NWORKERS 2
#define QCAP 1024

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Deferred requests waiting for a worker: tokens and when they were deferred. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tern_http_token ring[QCAP];
    size_t head, count;
    int stop;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg) {
    tern_remote *r = arg; /* this worker's own remote */
    for (;;) {
        pthread_mutex_lock(&q.mu);
        while (q.count == 0 && !q.stop) pthread_cond_wait(&q.cv, &q.mu);
        if (q.stop) {
            pthread_mutex_unlock(&q.mu);
            break;
        }
        tern_http_token t = q.ring[q.head];
        q.head = (q.head + 1) % QCAP;
        q.count--;
        pthread_mutex_unlock(&q.mu);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        int rc = tern_http_respond(r, t, 200, "Content-Type: text/plain\r\n", tern_bytes_copy("deferred\n", 9));
        if (rc != TERN_OK) fprintf(stderr, "http_test_server: respond: %s\n", tern_strerror(rc));
    }
    return NULL;
}

static int uri_is(tern_str u, const char *s) { return u.len == strlen(s) && memcmp(u.ptr, s, u.len) == 0; }

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev != TERN_EV_HTTP_MSG) return;
    tern_http_msg *h = ev_data;
    tern_str u = tern_http_uri(h);
    if (uri_is(u, "/hello")) {
        tern_http_reply(c, 200, "Content-Type: text/plain\r\n", "hello\n", 6);
    } else if (uri_is(u, "/echo")) {
        tern_str b = tern_http_body(h);
        tern_http_reply(c, 200, "Content-Type: application/octet-stream\r\n", b.ptr, b.len);
    } else if (uri_is(u, "/defer")) {
        pthread_mutex_lock(&q.mu);
        int full = q.count == QCAP;
        pthread_mutex_unlock(&q.mu);
        if (full) {
            tern_http_reply(c, 503, NULL, "busy\n", 5);
            return;
        }
        tern_http_token t = tern_http_defer(c, h);
        if (t.conn == 0) {
            tern_http_reply(c, 500, NULL, "defer failed\n", 13);
            return;
        }
        pthread_mutex_lock(&q.mu);
        q.ring[(q.head + q.count) % QCAP] = t;
        q.count++;
        pthread_cond_signal(&q.cv);
        pthread_mutex_unlock(&q.mu);
    } else {
        tern_http_reply(c, 404, NULL, "not found\n", 10);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tern_mgr *m = tern_mgr_new();
    if (m == NULL) return 1;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tern_conn *l = tern_http_listen(m, url, on_http, NULL);
    if (l == NULL) {
        fprintf(stderr, "http_test_server: cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(m);
        return 1;
    }
    tern_remote *remotes[NWORKERS];
    pthread_t th[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        remotes[i] = tern_mgr_remote(m);
        pthread_create(&th[i], NULL, worker, remotes[i]);
    }
    printf("%d\n", tern_conn_local_port(l));
    fflush(stdout);

    while (!stop_requested) {
        if (tern_mgr_poll(m, 50) < 0) break;
        struct pollfd p = {0, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            char buf[256];
            if (read(0, buf, sizeof buf) <= 0) break; /* EOF: the test is over */
        }
    }

    pthread_mutex_lock(&q.mu);
    q.stop = 1;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    for (int i = 0; i < NWORKERS; i++) pthread_join(th[i], NULL);
    tern_mgr_free(m);
    for (int i = 0; i < NWORKERS; i++) tern_remote_free(remotes[i]);
    return 0;
}
