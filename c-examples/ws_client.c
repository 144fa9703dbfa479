/* ws_client: a WebSocket client; sends each line of stdin as a text message and
 * prints every message that arrives.
 *
 *   usage: ws_client URL           e.g. ws_client ws://127.0.0.1:8000/
 *   try:   ./build/examples/ws_echo & echo hello | ./build/examples/ws_client ws://127.0.0.1:8000/
 *
 * The loop thread owns the connection; a second thread reads stdin (which blocks)
 * and hands each line to the loop through a tern_remote, as any worker thread would.
 * At the end of stdin the client closes with 1000 and exits once the server has
 * answered. The exit status is 0 after a clean close, 1 otherwise.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static tern_remote *remote;
static tern_conn_id conn_id;
static int done, clean, opened;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t open_cv = PTHREAD_COND_INITIALIZER;

/* Runs on the loop thread once stdin is finished. */
static void close_now(tern_mgr *m, void *user) {
    (void)user;
    tern_conn *c = tern_conn_lookup(m, conn_id);
    if (c != NULL) tern_ws_close(c, 1000, "bye");
}

static void *read_stdin(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!opened) pthread_cond_wait(&open_cv, &mu);
    pthread_mutex_unlock(&mu);
    char line[65536];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t n = strcspn(line, "\r\n");
        /* the buffer is tern's from here on: copied, so the next line can reuse it */
        int rc = tern_remote_ws_send(remote, conn_id, TERN_WS_TEXT, tern_bytes_copy(line, n));
        if (rc != TERN_OK) fprintf(stderr, "send: %s\n", tern_strerror(rc));
    }
    tern_remote_call(remote, close_now, NULL);
    return NULL;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_WS_OPEN) {
        conn_id = tern_conn_get_id(c);
        pthread_mutex_lock(&mu);
        opened = 1;
        pthread_cond_signal(&open_cv);
        pthread_mutex_unlock(&mu);
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        printf("%s %.*s\n", m->op == TERN_WS_TEXT ? "text:" : "binary:", (int)m->data.len, m->data.ptr);
        fflush(stdout);
    } else if (ev == TERN_EV_WS_CTL) {
        const tern_ws_msg *m = ev_data;
        if (m->op == TERN_WS_CLOSE) clean = 1;
    } else if (ev == TERN_EV_ERROR) {
        fprintf(stderr, "error: %s\n", (const char *)ev_data);
        clean = 0;
    } else if (ev == TERN_EV_CLOSE) {
        done = 1;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ws://host:port/path\n", argv[0]);
        return 2;
    }
    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) return 1;
    /* offer permessage-deflate, as browsers do */
    tern_mgr_set(mgr, TERN_OPT_WS_CLIENT_DEFLATE, 1);
    remote = tern_mgr_remote(mgr);
    if (tern_ws_connect(mgr, argv[1], on_event, NULL) == NULL) {
        fprintf(stderr, "cannot connect to %s: %s\n", argv[1], tern_strerror(tern_last_error()));
        return 1;
    }
    pthread_t reader;
    pthread_create(&reader, NULL, read_stdin, NULL);
    pthread_detach(reader);
    while (!done) {
        if (tern_mgr_poll(mgr, 100) < 0) break;
    }
    tern_remote_free(remote);
    tern_mgr_free(mgr);
    return clean ? 0 : 1;
}
