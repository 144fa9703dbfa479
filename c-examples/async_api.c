/* async_api: a small JSON API whose answers are computed on worker threads.
 *
 *   usage: async_api [PORT]          (default 8002, on 127.0.0.1)
 *   try:   curl -i 'http://127.0.0.1:8002/api/sum?a=1&b=2'      -> {"sum":3}
 *          curl -i 'http://127.0.0.1:8002/api/slow?ms=250'      -> {"slept_ms":250}
 *          curl -i  http://127.0.0.1:8002/nope                  -> 404 {"error":"not found"}
 *
 * Runs until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully: no new
 * connections, requests already read are still answered by the workers (for up to
 * 5 s), then the workers stop and everything is freed. A second Ctrl-C stops at once.
 *
 * The shape of a server that must not block its event loop:
 *
 *   loop thread (main)                        worker threads (4)
 *   ------------------                        ------------------
 *   tern_mgr_poll()
 *     TERN_EV_HTTP_MSG
 *       parse the request (it dies with the event: copy what the worker needs)
 *       queue full?  -> tern_http_reply 503 at once
 *       tern_http_defer() -> token
 *       push (token, parameters) ----------->  pop
 *                                               do the work (here: sleep)
 *                                               tern_bytes_alloc + fill the JSON body
 *                                               tern_http_respond(remote, token, ...)
 *     (the answer arrives through the remote;
 *      tern writes it in order with any other
 *      pipelined responses on that connection)
 *
 * Rules this program follows (they are tern's contract, see tern.h):
 *   - A tern_mgr and every tern_conn* belong to the loop thread: only main calls
 *     tern_mgr_poll, tern_http_reply, tern_http_defer, ... Handlers run inside
 *     tern_mgr_poll, on main, so the handler needs no lock for its own state.
 *   - Other threads reach the manager only through a tern_remote. tern_http_respond*
 *     is safe from any thread and never waits for the loop. A remote is thread-safe, so
 *     one could be shared; here each worker gets its own (made by main with
 *     tern_mgr_remote, freed by main after the worker is joined).
 *   - A tern_http_token is a plain value (two integers): copy it anywhere. It stays safe
 *     to use after the client left, after the request timed out, even after the manager
 *     was freed: tern_http_respond then just returns TERN_ECLOSED.
 *   - Ownership of buffers: an argument named `take` consumes the reference, whatever the
 *     call returns. After tern_http_respond(..., body) the worker must not touch `body`
 *     again, neither on success nor on error; tern frees it once it is written (or
 *     discarded).
 *   - A deferred request keeps its connection, even if it said `Connection: close`, and
 *     its place among pipelined requests; if nobody answers it within
 *     TERN_OPT_DEFER_TIMEOUT_MS, tern answers 503 itself and closes the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tern.h"

#define NWORKERS 4
#define QUEUE_CAP 64         /* tasks waiting for a worker; past it: 503 at once */
#define SLOW_MAX_MS 5000     /* /api/slow?ms= is bounded */
#define DEFER_TIMEOUT_MS 10000 /* tern answers 503 if a worker has not answered by then */

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++; /* only a counter: the loop notices within 100 ms */
}

/* ------------------------------------------------------------------------- */
/* The work queue: a bounded ring, one mutex, one condition variable.        */

enum route { ROUTE_SUM, ROUTE_SLOW };

/* Everything a worker needs. The tern_http_msg is only valid during the event, so
 * the handler copies the parsed parameters here; the token is a plain value. */
typedef struct {
    tern_http_token token;
    enum route route;
    long long a, b; /* ROUTE_SUM */
    long ms;        /* ROUTE_SLOW */
} task;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    task ring[QUEUE_CAP];
    size_t head, count;
    int stop; /* set at shutdown: workers finish their current task and exit */
} queue;

static queue q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static atomic_int workers_running;
static atomic_ulong answered, refused_busy, lost;

/* Sleeps `ms` milliseconds in small steps; returns 0 if shutdown cut it short. */
static int simulate_work(long ms) {
    while (ms > 0) {
        long step = ms < 20 ? ms : 20;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
        pthread_mutex_lock(&q.mu);
        int stop = q.stop;
        pthread_mutex_unlock(&q.mu);
        if (stop) return 0;
    }
    return 1;
}

/* Answers one deferred request with a JSON body. Runs on a worker thread. */
static void respond_json(tern_remote *r, tern_http_token t, int status, const char *json) {
    size_t len = strlen(json);
    /* tern_bytes_alloc gives a buffer the caller may fill until it hands it to tern.
     * (tern_bytes_copy(json, len) would do the same in one call; tern_bytes_wrap would
     * hand over memory we allocated ourselves, with a free callback.) */
    void *data = NULL;
    tern_bytes *body = tern_bytes_alloc(len, &data);
    if (body == NULL) {
        /* Out of memory. Nothing was taken, and the request stays deferred: tern will
         * answer 503 after DEFER_TIMEOUT_MS. */
        atomic_fetch_add(&lost, 1);
        return;
    }
    memcpy(data, json, len);
    /* `body` is consumed by this call, whatever it returns: never touch it again. */
    int rc = tern_http_respond(r, t, status, "Content-Type: application/json\r\n", body);
    if (rc == TERN_OK) {
        atomic_fetch_add(&answered, 1);
    } else {
        /* TERN_ECLOSED: the client left, or the request already got tern's 503.
         * TERN_EFULL: the loop is flooded (TERN_OPT_MAX_POSTED); this request is
         * dropped and will get tern's 503. Either way the body was released already. */
        atomic_fetch_add(&lost, 1);
        fprintf(stderr, "request %" PRIu64 "/%" PRIu64 ": not answered: %s\n", t.conn, t.seq,
                tern_strerror(rc));
    }
}

/* A worker: takes tasks until shutdown. `arg` is this worker's own tern_remote. */
static void *worker_main(void *arg) {
    tern_remote *remote = arg;
    char json[128];
    for (;;) {
        pthread_mutex_lock(&q.mu);
        while (q.count == 0 && !q.stop) pthread_cond_wait(&q.cv, &q.mu);
        if (q.stop) {
            /* Tasks still queued are abandoned: tern_mgr_free will close their
             * connections. Nothing of theirs needs freeing (tokens are values). */
            pthread_mutex_unlock(&q.mu);
            break;
        }
        task t = q.ring[q.head];
        q.head = (q.head + 1) % QUEUE_CAP;
        q.count--;
        pthread_mutex_unlock(&q.mu);

        /* Cut short by shutdown: the request is abandoned (tern_mgr_free closes its
         * connection; an abandoned token needs no cleanup). */
        switch (t.route) {
        case ROUTE_SUM:
            if (!simulate_work(2 + (long)(t.token.seq % 4))) break; /* a few ms of "work" */
            snprintf(json, sizeof json, "{\"sum\":%lld}\n", t.a + t.b);
            respond_json(remote, t.token, 200, json);
            break;
        case ROUTE_SLOW:
            if (!simulate_work(t.ms)) break;
            snprintf(json, sizeof json, "{\"slept_ms\":%ld}\n", t.ms);
            respond_json(remote, t.token, 200, json);
            break;
        }
    }
    atomic_fetch_sub(&workers_running, 1);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* The HTTP handler (loop thread).                                            */

static int uri_is(tern_str uri, const char *path) {
    return uri.len == strlen(path) && memcmp(uri.ptr, path, uri.len) == 0;
}

/* Reads integer query variable `name` into *out; 0 on success, -1 if absent or bad. */
static int query_ll(tern_str query, const char *name, long long min, long long max, long long *out) {
    char buf[32];
    /* url-decodes into buf (NUL-terminated); <0: absent (TERN_ENOTFOUND), too long
     * (TERN_EFULL) or a bad %-escape (TERN_EINVAL) */
    if (tern_http_var(query, name, buf, sizeof buf) <= 0) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* An immediate JSON answer from the loop thread (no worker involved). */
static void reply_json(tern_conn *c, int status, const char *extra_headers, const char *json) {
    char headers[256];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s",
             extra_headers ? extra_headers : "");
    /* tern_http_reply copies the body; tern adds Date, Content-Length and, when it is
     * going to close the connection, Connection: close. */
    tern_http_reply(c, status, headers, json, strlen(json));
}

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev != TERN_EV_HTTP_MSG) return; /* OPEN, ACCEPT, CLOSE...: nothing to do */

    tern_http_msg *h = ev_data; /* valid only until this handler returns */
    tern_str method = tern_http_method(h);
    tern_str uri = tern_http_uri(h);
    tern_str query = tern_http_query(h);

    task t;
    memset(&t, 0, sizeof t);
    if (uri_is(uri, "/api/sum")) {
        t.route = ROUTE_SUM;
        const long long lim = 1000000000000000LL; /* |a|,|b| <= 1e15: the sum cannot overflow */
        if (query_ll(query, "a", -lim, lim, &t.a) != 0 || query_ll(query, "b", -lim, lim, &t.b) != 0) {
            reply_json(c, 400, NULL, "{\"error\":\"need integer parameters a and b\"}\n");
            return;
        }
    } else if (uri_is(uri, "/api/slow")) {
        t.route = ROUTE_SLOW;
        long long ms;
        if (query_ll(query, "ms", 0, SLOW_MAX_MS, &ms) != 0) {
            reply_json(c, 400, NULL, "{\"error\":\"need ms between 0 and 5000\"}\n");
            return;
        }
        t.ms = (long)ms;
    } else {
        reply_json(c, 404, NULL, "{\"error\":\"not found\"}\n");
        return;
    }
    if (!(method.len == 3 && memcmp(method.ptr, "GET", 3) == 0)) {
        reply_json(c, 405, "Allow: GET\r\n", "{\"error\":\"method not allowed\"}\n");
        return;
    }

    /* Check for room *before* deferring: tern_http_reply answers only requests that are
     * not deferred, so a deferred request can no longer get an inline 503. Only this
     * thread adds tasks, so room seen here is still there when we push below. */
    pthread_mutex_lock(&q.mu);
    int full = q.count == QUEUE_CAP;
    pthread_mutex_unlock(&q.mu);
    if (full) {
        atomic_fetch_add(&refused_busy, 1);
        reply_json(c, 503, "Retry-After: 1\r\n", "{\"error\":\"busy\"}\n");
        return;
    }

    /* From here on this request is answered by a worker. tern keeps the connection open
     * for it (even with Connection: close) and holds back later pipelined answers. */
    t.token = tern_http_defer(c, h);
    if (t.token.conn == 0) {
        reply_json(c, 500, NULL, "{\"error\":\"internal\"}\n");
        return;
    }
    pthread_mutex_lock(&q.mu);
    q.ring[(q.head + q.count) % QUEUE_CAP] = t;
    q.count++;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8002;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) {
        fprintf(stderr, "tern_mgr_new: %s\n", tern_strerror(tern_last_error()));
        return 1;
    }
    tern_mgr_set(mgr, TERN_OPT_DEFER_TIMEOUT_MS, DEFER_TIMEOUT_MS);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    if (tern_http_listen(mgr, url, on_http, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }

    /* One remote per worker, made here on the loop thread (tern_mgr_remote is
     * loop-thread only; the remote itself may then be used from any thread). */
    tern_remote *remotes[NWORKERS];
    pthread_t workers[NWORKERS];
    int started = 0;
    for (int i = 0; i < NWORKERS; i++) {
        remotes[i] = tern_mgr_remote(mgr);
        if (remotes[i] == NULL) break;
        atomic_fetch_add(&workers_running, 1);
        if (pthread_create(&workers[i], NULL, worker_main, remotes[i]) != 0) {
            atomic_fetch_sub(&workers_running, 1);
            tern_remote_free(remotes[i]);
            break;
        }
        started++;
    }
    if (started < NWORKERS) fprintf(stderr, "only %d of %d workers started\n", started, NWORKERS);

    printf("tern %s JSON API on %s (try: curl '%s/api/sum?a=1&b=2'); Ctrl-C stops it\n",
           tern_version(), url, url);
    fflush(stdout);

    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }

    /* Shutdown, in this order:
     * 1. tern_mgr_shutdown: the listener closes (new connections are refused), idle
     *    connections close, and every request already read is still answered: the
     *    workers keep working, their answers are written, and each connection closes
     *    after its last answer. Whatever is still open after 5 s is closed hard.
     * 2. poll until tern_mgr_poll says TERN_ECLOSED: nothing is left (a second
     *    Ctrl-C stops waiting);
     * 3. tell the workers to stop (tasks still queued were for connections that are
     *    gone: their responds return TERN_ECLOSED) and join them;
     * 4. tern_mgr_free, then the remotes (they stay valid after tern_mgr_free; calls
     *    would return TERN_ECLOSED). */
    tern_mgr_shutdown(mgr, 5000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) {
        rc = tern_mgr_poll(mgr, 100);
        if (rc < 0 && rc != TERN_ECLOSED) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    pthread_mutex_lock(&q.mu);
    q.stop = 1;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    for (int i = 0; i < started; i++) pthread_join(workers[i], NULL);
    tern_mgr_free(mgr);
    for (int i = 0; i < started; i++) tern_remote_free(remotes[i]);

    printf("stopped: %lu answered by workers, %lu refused (queue full), %lu not delivered\n",
           atomic_load(&answered), atomic_load(&refused_busy), atomic_load(&lost));
    return 0;
}
