/* ws_broadcast: a page whose script opens a WebSocket; a worker thread publishes the
 * time to every client once a second, and what a client types is relayed to all the
 * others (a small chat).
 *
 *   usage: ws_broadcast [PORT]     (default 8000, on 127.0.0.1)
 *   try:   open http://127.0.0.1:8000/ in two browser windows
 *
 * Runs until SIGINT or SIGTERM.
 *
 * - GET / answers the page; GET /ws is upgraded (tern_ws_upgrade) and the connection
 *   joins the topic "clock" (tern_ws_subscribe) on TERN_EV_WS_OPEN.
 * - A worker pthread owns no connection: once a second it publishes a line to the
 *   topic through a tern_remote (tern_remote_ws_publish). tern fans it out on the loop
 *   thread, one frame queued by reference on every subscriber.
 * - A chat message is wrapped once (tern_bytes_copy) and shared with every other
 *   client (tern_bytes_share + tern_ws_send_bytes): one buffer, never copied per
 *   connection, released after the last connection wrote it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

#define MAX_CLIENTS 1024

static volatile sig_atomic_t stop_requested = 0;
static tern_conn_id clients[MAX_CLIENTS];
static int nclients;

static const char page[] =
    "<!doctype html><meta charset=utf-8><title>tern broadcast</title>\n"
    "<style>body{font:16px sans-serif;margin:2em}#log{height:20em;overflow:auto;border:1px solid #ccc;padding:.5em}</style>\n"
    "<h1>tern: clock and chat over one WebSocket</h1>\n"
    "<p id=clock>connecting...</p><div id=log></div>\n"
    "<form id=f><input id=t autocomplete=off placeholder='say something'><button>send</button></form>\n"
    "<script>\n"
    "const ws = new WebSocket(`ws://${location.host}/ws`);\n"
    "const log = m => { const p = document.createElement('div'); p.textContent = m; "
    "document.getElementById('log').append(p); };\n"
    "ws.onmessage = e => e.data.startsWith('clock ') ? "
    "document.getElementById('clock').textContent = e.data : log(e.data);\n"
    "ws.onclose = () => log('(connection closed)');\n"
    "document.getElementById('f').onsubmit = e => { e.preventDefault(); const t = "
    "document.getElementById('t'); if (t.value) { ws.send(t.value); log('me: ' + t.value); t.value = ''; } };\n"
    "</script>\n";

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void forget(tern_conn_id id) {
    for (int i = 0; i < nclients; i++) {
        if (clients[i] == id) {
            clients[i] = clients[--nclients];
            return;
        }
    }
}

/* Relays one chat line to every client but its sender, sharing one buffer. */
static void relay(tern_conn *from, const tern_ws_msg *m) {
    tern_mgr *mgr = tern_conn_mgr(from);
    tern_conn_id self = tern_conn_get_id(from);
    char line[512];
    int n = snprintf(line, sizeof line, "%llu: %.*s", (unsigned long long)self, (int)m->data.len,
                     m->data.ptr);
    if (n < 0) return;
    if (n >= (int)sizeof line) n = sizeof line - 1;
    tern_bytes *b = tern_bytes_copy(line, (size_t)n);
    for (int i = 0; i < nclients; i++) {
        tern_conn *c = clients[i] == self ? NULL : tern_conn_lookup(mgr, clients[i]);
        if (c != NULL) tern_ws_send_bytes(c, TERN_WS_TEXT, tern_bytes_share(b));
    }
    tern_bytes_release(b);
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) {
        tern_str uri = tern_http_uri(ev_data);
        if (uri.len == 3 && memcmp(uri.ptr, "/ws", 3) == 0) {
            tern_ws_upgrade(c, ev_data, NULL);
        } else {
            tern_http_reply(c, 200, "Content-Type: text/html; charset=utf-8\r\n", page, sizeof page - 1);
        }
    } else if (ev == TERN_EV_WS_OPEN) {
        if (nclients == MAX_CLIENTS) {
            tern_ws_close(c, 1013, "too many clients");
            return;
        }
        clients[nclients++] = tern_conn_get_id(c);
        tern_ws_subscribe(c, "clock");
    } else if (ev == TERN_EV_WS_MSG) {
        relay(c, ev_data);
    } else if (ev == TERN_EV_CLOSE) {
        forget(tern_conn_get_id(c));
    }
}

static void *clock_worker(void *arg) {
    tern_remote *r = arg;
    while (!stop_requested) {
        sleep(1);
        char line[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        size_t n = strftime(line, sizeof line, "clock %Y-%m-%d %H:%M:%S UTC", &tm);
        /* the buffer is tern's once posted, whatever the call returns */
        int rc = tern_remote_ws_publish(r, "clock", TERN_WS_TEXT, tern_bytes_copy(line, n));
        if (rc == TERN_ECLOSED) break;
    }
    tern_remote_free(r);
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
    if (mgr == NULL) return 1;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    if (tern_http_listen(mgr, url, on_event, NULL) == NULL) {
        fprintf(stderr, "cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    pthread_t worker;
    pthread_create(&worker, NULL, clock_worker, tern_mgr_remote(mgr));
    printf("tern %s broadcast on %s/ (open it in a browser); Ctrl-C stops it\n", tern_version(), url);
    fflush(stdout);
    while (!stop_requested) {
        if (tern_mgr_poll(mgr, 100) < 0) break;
    }
    tern_mgr_free(mgr);
    pthread_join(worker, NULL);
    return 0;
}
