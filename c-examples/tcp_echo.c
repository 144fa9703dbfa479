/* tcp_echo: the smallest useful tern program, an echo server.
 *
 *   usage: tcp_echo [PORT]        (default 8001, on 127.0.0.1)
 *   try:   nc 127.0.0.1 8001      and type lines; they come back.
 *
 * Runs until SIGINT (Ctrl-C) or SIGTERM, then closes every connection gracefully (what
 * each has queued is written; at most 5 s, a second Ctrl-C stops at once) and exits.
 *
 * How a tern program is built:
 *   1. tern_mgr_new() makes an event manager (one loop, one thread).
 *   2. tern_listen() adds a listening connection with a handler function; connections
 *      it accepts inherit the handler and its user pointer.
 *   3. The thread calls tern_mgr_poll() in a loop; every handler runs inside it, on this
 *      thread, so the program needs no locks.
 *   4. tern_mgr_shutdown() stops it gracefully: the loop keeps polling until
 *      tern_mgr_poll() returns TERN_ECLOSED; tern_mgr_free() then releases the rest
 *      (on its own it is the hard stop: it closes everything at once).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tern.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++; /* only count: the loop below notices within 100 ms */
}

/* Counters the handler keeps; passed as the listener's user pointer. */
typedef struct {
    unsigned long connections;
    unsigned long long bytes;
} stats;

/* One handler for every event of every connection. `ev` says what happened,
 * `ev_data` depends on it, `user` is the pointer given to tern_listen. */
static void echo_handler(tern_conn *c, int ev, void *ev_data, void *user) {
    stats *st = user;
    char addr[64];

    switch (ev) {
    case TERN_EV_ACCEPT:
        /* a client connected (every connection first gets TERN_EV_OPEN, and accepted
         * ones then TERN_EV_ACCEPT) */
        st->connections++;
        if (tern_conn_peer_addr(c, addr, sizeof addr) < 0) addr[0] = '\0';
        printf("connection %llu from %s\n", (unsigned long long)tern_conn_get_id(c), addr);
        break;

    case TERN_EV_READ: {
        /* ev_data is a tern_str: every byte received and not consumed yet. */
        tern_str *in = ev_data;
        /* tern_send copies the bytes into the connection's send queue; tern writes them
         * when the socket can take them, so this never blocks. */
        if (tern_send(c, in->ptr, in->len) != TERN_OK) {
            tern_close_now(c); /* e.g. the client stopped reading and the queue is full */
            break;
        }
        st->bytes += in->len;
        /* Tell tern we are done with these bytes; anything not consumed would be offered
         * again, with more, at the next TERN_EV_READ (handy for parsing records). */
        tern_conn_consume(c, in->len);
        break;
    }

    case TERN_EV_ERROR:
        /* ev_data is a message; TERN_EV_CLOSE always follows */
        fprintf(stderr, "connection %llu: %s\n", (unsigned long long)tern_conn_get_id(c),
                (const char *)ev_data);
        break;

    case TERN_EV_CLOSE:
        /* the last event of every connection; the tern_conn* is invalid afterwards */
        printf("connection %llu closed\n", (unsigned long long)tern_conn_get_id(c));
        break;

    default:
        break; /* OPEN, WRITE, DRAIN...: nothing to do here */
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8001;
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
    stats st = {0, 0};
    tern_conn *listener = tern_listen(mgr, url, echo_handler, &st);
    if (listener == NULL) {
        /* handle-creating functions return NULL; tern_last_error() says why */
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern %s echo server on %s (try: nc 127.0.0.1 %d); Ctrl-C stops it\n", tern_version(),
           url, port);
    fflush(stdout);

    /* The event loop: each call waits up to 100 ms for something to happen and runs
     * the handlers for what did. */
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }

    /* The listener closes at once; every client is closed after what is queued for it
     * is written (their CLOSE events run in these polls); after 5 s whatever is left
     * is closed hard. */
    tern_mgr_shutdown(mgr, 5000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) {
        rc = tern_mgr_poll(mgr, 100);
        if (rc < 0 && rc != TERN_ECLOSED) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    tern_mgr_free(mgr);
    printf("stopped: %lu connections, %llu bytes echoed\n", st.connections, st.bytes);
    return 0;
}
