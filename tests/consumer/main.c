/* A program outside the tern tree: it only sees the installed tern.h and library.
 *
 * Checks tern_version() against the header's version macros, then runs a TCP echo round
 * trip on 127.0.0.1 (an ephemeral port) with a server and a client on one manager.
 * Exit status 0 on success.
 * The same file is built against the shared library, the static library, and through
 * pkg-config by tests/packaging/consumer_find_package.cmake. */
#include <tern.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char MESSAGE[] = "hello from a tern consumer";

struct client_state {
    char received[sizeof MESSAGE];
    size_t len;
    int done;
    int failed;
};

/* The listener and the connections it accepts: echo whatever arrives. */
static void echo_server(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_READ) {
        const tern_str *in = ev_data;
        if (tern_send(c, in->ptr, in->len) != TERN_OK) {
            fprintf(stderr, "consumer: server tern_send failed\n");
        }
        tern_conn_consume(c, in->len);
    }
}

static void client(tern_conn *c, int ev, void *ev_data, void *user) {
    struct client_state *st = user;
    if (ev == TERN_EV_CONNECT) {
        int rc = tern_send(c, MESSAGE, sizeof MESSAGE - 1);
        if (rc != TERN_OK) {
            fprintf(stderr, "consumer: tern_send: %s\n", tern_strerror(rc));
            st->failed = 1;
        }
    } else if (ev == TERN_EV_READ) {
        const tern_str *in = ev_data;
        size_t room = sizeof MESSAGE - 1 - st->len;
        size_t n = in->len < room ? in->len : room;
        memcpy(st->received + st->len, in->ptr, n);
        st->len += n;
        tern_conn_consume(c, in->len);
        if (st->len == sizeof MESSAGE - 1) {
            st->done = 1;
            tern_close(c);
        }
    } else if (ev == TERN_EV_ERROR) {
        fprintf(stderr, "consumer: client error: %s\n", ev_data ? (const char *)ev_data : "?");
        st->failed = 1;
    } else if (ev == TERN_EV_CLOSE && !st->done) {
        fprintf(stderr, "consumer: connection closed before the echo came back\n");
        st->failed = 1;
    }
}

int main(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", TERN_VERSION_MAJOR, TERN_VERSION_MINOR,
             TERN_VERSION_PATCH);
    const char *version = tern_version();
    if (version == NULL || strcmp(version, expected) != 0) {
        fprintf(stderr, "consumer: tern_version() is %s, the header says %s\n",
                version ? version : "NULL", expected);
        return 1;
    }

    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) {
        fprintf(stderr, "consumer: tern_mgr_new: %s\n", tern_strerror(tern_last_error()));
        return 1;
    }
    /* Port 0: the kernel picks a free port; tern_conn_local_port says which. */
    tern_conn *listener = tern_listen(mgr, "tcp://127.0.0.1:0", echo_server, NULL);
    if (listener == NULL) {
        fprintf(stderr, "consumer: tern_listen: %s\n", tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    int port = tern_conn_local_port(listener);
    if (port <= 0) {
        fprintf(stderr, "consumer: tern_conn_local_port: %s\n", tern_strerror(port));
        tern_mgr_free(mgr);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);

    struct client_state st;
    memset(&st, 0, sizeof st);
    if (tern_connect(mgr, url, client, &st) == NULL) {
        fprintf(stderr, "consumer: tern_connect %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }

    time_t deadline = time(NULL) + 10;
    while (!st.done && !st.failed && time(NULL) < deadline) {
        int rc = tern_mgr_poll(mgr, 50);
        if (rc < 0) {
            fprintf(stderr, "consumer: tern_mgr_poll: %s\n", tern_strerror(rc));
            st.failed = 1;
        }
    }
    /* Let the graceful close go through, then free (which closes the listener). */
    for (int i = 0; i < 5; i++) tern_mgr_poll(mgr, 10);
    tern_mgr_free(mgr);

    if (!st.done || st.failed) {
        fprintf(stderr, "consumer: echo round trip failed (%zu of %zu bytes back)\n", st.len,
                sizeof MESSAGE - 1);
        return 1;
    }
    if (memcmp(st.received, MESSAGE, sizeof MESSAGE - 1) != 0) {
        fprintf(stderr, "consumer: echo came back different\n");
        return 1;
    }
    printf("consumer: tern %s, echo round trip on %s ok\n", version, url);
    return 0;
}
