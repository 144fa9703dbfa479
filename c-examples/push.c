/* push: a worker thread pushes numbered lines to every connected client.
 *
 *   usage: push [PORT]            (default 8000, on 127.0.0.1)
 *   watch: nc 127.0.0.1 8000      (open several: every client gets every line)
 *
 * Runs until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully (tern_mgr_shutdown),
 * stops the worker, joins it and frees everything.
 *
 * What it shows:
 *   - The loop thread owns the manager and its connections. Other threads never touch
 *     a tern_conn*; they talk to the loop through a tern_remote, naming connections by
 *     id (tern_conn_id), which stays valid (and is never reused) even after the
 *     connection is gone: a push to a closed id is simply released.
 *   - One buffer for many connections: the worker makes each line once
 *     (tern_bytes_copy), hands one reference to each client (tern_bytes_share), and
 *     drops its own. tern frees the line after the last client has written it.
 *   - Ownership rule: a function whose argument is named `take` consumes one reference,
 *     whatever it returns. So there is no cleanup to do when a push fails.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tern.h"

#define MAX_CLIENTS 1024

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++;
}

/* The ids of connected clients. The loop thread adds and removes them (ACCEPT and
 * CLOSE events); the worker reads them. Plain ids, not tern_conn pointers: pointers are
 * only valid on the loop thread. */
static struct {
    pthread_mutex_t lock;
    tern_conn_id ids[MAX_CLIENTS];
    size_t count;
} clients = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static int clients_add(tern_conn_id id) {
    int ok = 0;
    pthread_mutex_lock(&clients.lock);
    if (clients.count < MAX_CLIENTS) {
        clients.ids[clients.count++] = id;
        ok = 1;
    }
    pthread_mutex_unlock(&clients.lock);
    return ok;
}

static void clients_remove(tern_conn_id id) {
    pthread_mutex_lock(&clients.lock);
    for (size_t i = 0; i < clients.count; i++) {
        if (clients.ids[i] == id) {
            clients.ids[i] = clients.ids[--clients.count];
            break;
        }
    }
    pthread_mutex_unlock(&clients.lock);
}

/* Loop thread: keeps the client list current. */
static void handler(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    tern_conn_id id = tern_conn_get_id(c);
    switch (ev) {
    case TERN_EV_ACCEPT: {
        char addr[64];
        if (tern_conn_peer_addr(c, addr, sizeof addr) < 0) addr[0] = '\0';
        if (!clients_add(id)) {
            tern_send(c, "server full\n", 12);
            tern_close(c); /* graceful: the message goes out first */
            break;
        }
        printf("client %llu connected from %s\n", (unsigned long long)id, addr);
        const char *hello = "hello: a numbered line comes every second\n";
        tern_send(c, hello, strlen(hello));
        break;
    }
    case TERN_EV_READ: {
        /* clients have nothing to say here; drop what they send */
        tern_str *in = ev_data;
        tern_conn_consume(c, in->len);
        break;
    }
    case TERN_EV_ERROR:
        fprintf(stderr, "client %llu: %s\n", (unsigned long long)id, (const char *)ev_data);
        break;
    case TERN_EV_CLOSE:
        /* every connection gets exactly one CLOSE, listener included (not in the list,
         * so removing it is a no-op) */
        clients_remove(id);
        printf("connection %llu closed\n", (unsigned long long)id);
        break;
    default:
        break;
    }
}

/* ---- the worker thread --------------------------------------------------- */

typedef struct {
    tern_remote *remote; /* the worker's own reference: it frees it */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
} worker_state;

static void *worker_main(void *arg) {
    worker_state *w = arg;
    unsigned long line_no = 0;
    tern_conn_id ids[MAX_CLIENTS];

    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        /* sleep one second, or less if asked to stop */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT) {
        }
        if (w->stop) break;
        pthread_mutex_unlock(&w->lock);

        /* a snapshot of the ids; the list may change right after, which is fine */
        pthread_mutex_lock(&clients.lock);
        size_t n = clients.count;
        memcpy(ids, clients.ids, n * sizeof ids[0]);
        pthread_mutex_unlock(&clients.lock);

        char text[64];
        int len = snprintf(text, sizeof text, "line %lu\n", ++line_no);
        /* one buffer for everyone: tern copies the text once */
        tern_bytes *line = tern_bytes_copy(text, (size_t)len);
        size_t sent = 0;
        for (size_t i = 0; line != NULL && i < n; i++) {
            /* each push takes one reference of its own */
            int rc = tern_remote_send(w->remote, ids[i], tern_bytes_share(line));
            if (rc == TERN_OK) sent++;
            else if (rc == TERN_ECLOSED) break; /* the manager is gone */
            /* TERN_EFULL: the loop is behind; this client misses the line */
        }
        tern_bytes_release(line); /* the worker's own reference */
        printf("pushed line %lu to %zu client(s)\n", line_no, sent);
        fflush(stdout);

        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    tern_remote_free(w->remote);
    return NULL;
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
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    if (tern_listen(mgr, url, handler, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }

    /* tern_mgr_remote is called on the loop thread; the remote can then be used (and
     * freed) by any thread. */
    worker_state w = {.remote = tern_mgr_remote(mgr), .stop = 0};
    if (w.remote == NULL) {
        fprintf(stderr, "tern_mgr_remote: %s\n", tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.wake, NULL);
    pthread_t worker;
    if (pthread_create(&worker, NULL, worker_main, &w) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        tern_remote_free(w.remote);
        tern_mgr_free(mgr);
        return 1;
    }

    printf("tern %s push server listening on %s\n", tern_version(), url);
    printf("watch it with: nc 127.0.0.1 %d   (Ctrl-C here stops the server)\n", port);
    fflush(stdout);

    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }

    /* Shut down: gracefully first (the listener closes, each client is closed once
     * what is queued for it is written; the worker's pushes meanwhile go to
     * connections that are closing and are released; after 5 s whatever is left is
     * closed hard; a second Ctrl-C stops waiting); then stop and join the worker
     * (its last pushes return TERN_ECLOSED), then free the manager. */
    printf("stopping\n");
    tern_mgr_shutdown(mgr, 5000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) {
        rc = tern_mgr_poll(mgr, 100);
        if (rc < 0 && rc != TERN_ECLOSED) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }

    pthread_mutex_lock(&w.lock);
    w.stop = 1;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    pthread_join(worker, NULL);
    tern_mgr_free(mgr);
    pthread_cond_destroy(&w.wake);
    pthread_mutex_destroy(&w.lock);
    return 0;
}
