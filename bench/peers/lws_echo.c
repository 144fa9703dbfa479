/* lws_echo: a libwebsockets echo server, tern's peer in bench/ws.sh.
 *
 *   usage: lws_echo [PORT]      (default 8000; ws://127.0.0.1:PORT/, any path)
 *
 * Every message (text or binary, reassembled if it came in fragments) goes back whole,
 * with the same opcode, in order. The documented libwebsockets way: RECEIVE queues a
 * copy (with LWS_PRE bytes in front for the frame header) and asks for a WRITEABLE
 * callback; each WRITEABLE callback writes one message with lws_write() and asks again
 * while more are queued. Past MAX_QUEUED waiting messages the connection stops reading
 * (lws_rx_flow_control) until half of them are out, so a client that does not read
 * cannot make the server grow without bound.
 */
#include <stdint.h>

#include "lws_main.h"

#define MAX_QUEUED 64
#define MAX_MESSAGE (1 << 20)

typedef struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes, then the payload */
} msg;

/* per connection; libwebsockets allocates it zeroed */
typedef struct {
    msg *head, *tail;
    unsigned queued;
    int throttled;
    msg *partial; /* a message whose fragments are still arriving */
} session;

static msg *msg_new(const void *data, size_t len, int binary) {
    msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (m == NULL) return NULL;
    m->next = NULL;
    m->len = len;
    m->binary = binary;
    memcpy(m->buf + LWS_PRE, data, len);
    return m;
}

static int on_receive(struct lws *wsi, session *s, const void *in, size_t len) {
    if (lws_is_first_fragment(wsi)) {
        free(s->partial);
        s->partial = msg_new(in, len, lws_frame_is_binary(wsi));
    } else if (s->partial != NULL) {
        if (s->partial->len + len > MAX_MESSAGE) return -1;
        msg *m = realloc(s->partial, sizeof *m + LWS_PRE + s->partial->len + len);
        if (m == NULL) return -1;
        memcpy(m->buf + LWS_PRE + m->len, in, len);
        m->len += len;
        s->partial = m;
    }
    if (s->partial == NULL) return -1;
    if (!lws_is_final_fragment(wsi)) return 0;
    msg *m = s->partial;
    s->partial = NULL;
    if (s->tail) s->tail->next = m;
    else s->head = m;
    s->tail = m;
    if (++s->queued >= MAX_QUEUED && !s->throttled) {
        s->throttled = 1;
        lws_rx_flow_control(wsi, 0);
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, session *s) {
    msg *m = s->head;
    if (m == NULL) return 0;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (n < (int)m->len) return -1; /* lws buffers short writes itself; less is fatal */
    s->head = m->next;
    if (s->head == NULL) s->tail = NULL;
    free(m);
    s->queued--;
    if (s->throttled && s->queued <= MAX_QUEUED / 2) {
        s->throttled = 0;
        lws_rx_flow_control(wsi, 1);
    }
    if (s->head) lws_callback_on_writable(wsi);
    return 0;
}

static void session_free(session *s) {
    while (s->head) {
        msg *m = s->head;
        s->head = m->next;
        free(m);
    }
    free(s->partial);
    memset(s, 0, sizeof *s);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE: return on_receive(wsi, s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE: return on_writeable(wsi, s);
    case LWS_CALLBACK_CLOSED: session_free(s); return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The first protocol is the one a client gets when it names none. */
static const struct lws_protocols protocols[] = {
    {"echo", callback, sizeof(session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int main(int argc, char **argv) { return lws_main(argc, argv, "lws_echo", protocols, NULL, NULL); }
