/* autobahn_client: tern's WebSocket client as the testee of Autobahn's fuzzing server
 * (/work/shared/tools/autobahn/client.sh runs it with AUTOBAHN_SERVER_URL and
 * AUTOBAHN_AGENT set). It asks for the number of cases, then runs each: connects to
 * runCase?case=N&agent=AGENT and echoes every message until the server closes.
 * Exit status: 0 once every case ran (the verdicts are the report's), 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static int finished, cases;

static void on_count(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)c;
    (void)user;
    if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        char buf[32] = {0};
        memcpy(buf, m->data.ptr, m->data.len < sizeof buf - 1 ? m->data.len : sizeof buf - 1);
        cases = atoi(buf);
    } else if (ev == TERN_EV_CLOSE) {
        finished = 1;
    }
}

static void on_case(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        tern_ws_send(c, m->op, m->data.ptr, m->data.len);
    } else if (ev == TERN_EV_CLOSE) {
        finished = 1;
    }
}

static int run(tern_mgr *m, const char *url, tern_handler fn) {
    finished = 0;
    if (tern_ws_connect(m, url, fn, NULL) == NULL) {
        fprintf(stderr, "autobahn_client: connect %s: %s\n", url, tern_strerror(tern_last_error()));
        return -1;
    }
    while (!finished) {
        if (tern_mgr_poll(m, 100) < 0) return -1;
    }
    return 0;
}

int main(void) {
    const char *base = getenv("AUTOBAHN_SERVER_URL");
    const char *agent = getenv("AUTOBAHN_AGENT");
    if (base == NULL || agent == NULL) {
        fprintf(stderr, "autobahn_client: AUTOBAHN_SERVER_URL and AUTOBAHN_AGENT must be set\n");
        return 2;
    }
    tern_mgr *m = tern_mgr_new();
    /* compression offered, as browsers do; limits as large as the suite's messages */
    tern_mgr_set(m, TERN_OPT_WS_CLIENT_DEFLATE, 1);
    tern_mgr_set(m, TERN_OPT_MAX_WS_MESSAGE, 64 << 20);
    tern_mgr_set(m, TERN_OPT_MAX_SEND_QUEUE, 128 << 20);
    char url[512];
    snprintf(url, sizeof url, "%s/getCaseCount", base);
    if (run(m, url, on_count) != 0 || cases <= 0) {
        fprintf(stderr, "autobahn_client: no case count\n");
        return 1;
    }
    printf("autobahn_client: %d cases\n", cases);
    for (int i = 1; i <= cases; i++) {
        snprintf(url, sizeof url, "%s/runCase?case=%d&agent=%s", base, i, agent);
        if (run(m, url, on_case) != 0) return 1;
    }
    tern_mgr_free(m);
    return 0;
}
