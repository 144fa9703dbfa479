/* ws_test_server: a tern WebSocket server for tests with real clients (Python
 * websockets, raw sockets).
 *
 *   usage: ws_test_server DEFLATE MAX_MESSAGE    (DEFLATE: TERN_OPT_WS_DEFLATE, 0-2)
 *
 * Listens on a free port of 127.0.0.1, prints it as line 1 of stdout, then serves
 * until stdin reaches EOF. Every path is upgraded and echoes each message back; a
 * client that offers the subprotocol "echo" gets it. The text message "close CODE"
 * makes the server start the closing handshake with that code. Each close it learns
 * of is printed as a line "close CODE" on stdout (what the peer sent, or "close none"
 * for an empty close frame), and each connection error as "error MESSAGE".
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern.h"

static int offers_echo(const tern_http_msg *h) {
    for (size_t i = 0; i < tern_http_header_count(h); i++) {
        tern_str n, v;
        tern_http_header_at(h, i, &n, &v);
        if (n.len == 22 && strncasecmp(n.ptr, "Sec-WebSocket-Protocol", 22) == 0 && memmem(v.ptr, v.len, "echo", 4) != NULL)
            return 1;
    }
    return 0;
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) {
        tern_ws_upgrade(c, ev_data, offers_echo(ev_data) ? "Sec-WebSocket-Protocol: echo\r\n" : NULL);
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        if (m->op == TERN_WS_TEXT && m->data.len > 6 && memcmp(m->data.ptr, "close ", 6) == 0) {
            char code[16] = {0};
            memcpy(code, m->data.ptr + 6, m->data.len - 6 < 15 ? m->data.len - 6 : 15);
            tern_ws_close(c, atoi(code), "asked to");
            return;
        }
        tern_ws_send(c, m->op, m->data.ptr, m->data.len);
    } else if (ev == TERN_EV_WS_CTL) {
        const tern_ws_msg *m = ev_data;
        if (m->op == TERN_WS_CLOSE) {
            const unsigned char *p = (const unsigned char *)m->data.ptr;
            if (m->data.len >= 2) printf("close %d\n", p[0] << 8 | p[1]);
            else printf("close none\n");
            fflush(stdout);
        }
    } else if (ev == TERN_EV_ERROR) {
        printf("error %s\n", (const char *)ev_data);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DEFLATE MAX_MESSAGE\n", argv[0]);
        return 2;
    }
    tern_mgr *m = tern_mgr_new();
    if (m == NULL) return 1;
    if (tern_mgr_set(m, TERN_OPT_WS_DEFLATE, atoi(argv[1])) != TERN_OK ||
        tern_mgr_set(m, TERN_OPT_MAX_WS_MESSAGE, atol(argv[2])) != TERN_OK ||
        tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, 64 << 20) != TERN_OK) {
        fprintf(stderr, "ws_test_server: bad option\n");
        return 2;
    }
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_event, NULL);
    if (l == NULL) return 1;
    printf("%d\n", tern_conn_local_port(l));
    fflush(stdout);
    for (;;) {
        if (tern_mgr_poll(m, 50) < 0) break;
        struct pollfd p = {0, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            char buf[256];
            if (read(0, buf, sizeof buf) <= 0) break;
        }
    }
    tern_mgr_free(m);
    return 0;
}
