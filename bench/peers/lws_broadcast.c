/* lws_broadcast: the broadcast bench server of bench/ws.sh on libwebsockets.
 *
 *   usage: lws_broadcast [PORT]      (default 8000; ws://127.0.0.1:PORT/, any path)
 *
 * The protocol (written down at the top of bench/ws.sh): every client is a subscriber;
 * the text message "start RATE COUNT" makes a worker thread publish COUNT 64-byte
 * binary messages at RATE per second (0: as fast as backpressure allows), each carrying
 * its CLOCK_MONOTONIC stamp (ns, u64 little-endian) and its sequence number (u64), then
 * a text "done".
 *
 * The libwebsockets way across threads (its minimal-ws-server-threads example): the
 * worker puts each message in a ring shared with the service thread, under a mutex, and
 * calls lws_cancel_service(); the service thread gets LWS_CALLBACK_EVENT_WAIT_CANCELLED
 * and asks for a WRITEABLE callback on every connection; each WRITEABLE callback writes
 * the subscriber's next message (one lws_write per callback) and asks again while it is
 * behind. Unlike that example, each ring slot counts the subscribers that still have to
 * write it, so freeing slots costs O(1) per delivery rather than a scan of every
 * subscriber's position. A full ring is the queue-full case: the worker waits and
 * offers the message again (bench/broadcast_publisher.h, shared with tern's server).
 */
#include <stdint.h>

#include "../broadcast_publisher.h"
#include "lws_main.h"

#define RING 1024 /* messages */

typedef struct {
    unsigned char buf[LWS_PRE + PUBLISHER_MSG_LEN];
    size_t len;
    int text;
    unsigned remaining; /* subscribers that have not written it yet */
} slot;

/* Shared by the worker (publishes) and the service thread (subscribers write). */
static struct {
    pthread_mutex_t lock;
    slot slots[RING];
    uint64_t head; /* next position to publish */
    uint64_t tail; /* oldest position that may still be needed */
    unsigned subscribers;
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* per connection; libwebsockets allocates it zeroed */
typedef struct {
    uint64_t next; /* the next ring position this subscriber writes */
    int subscribed;
} session;

static struct lws_context *context;

/* Worker thread: 0 once the message is in the ring, 1 if the ring is full. */
static int publish(const void *data, size_t len, int text, void *ctx) {
    (void)ctx;
    int rc = 1;
    pthread_mutex_lock(&ring.lock);
    while (ring.tail < ring.head && ring.slots[ring.tail % RING].remaining == 0) ring.tail++;
    if (ring.head - ring.tail < RING) {
        slot *s = &ring.slots[ring.head % RING];
        memcpy(s->buf + LWS_PRE, data, len);
        s->len = len;
        s->text = text;
        s->remaining = ring.subscribers;
        ring.head++;
        rc = 0;
    }
    pthread_mutex_unlock(&ring.lock);
    if (rc == 0) lws_cancel_service(context);
    return rc;
}

static int on_writeable(struct lws *wsi, session *s) {
    unsigned char buf[LWS_PRE + PUBLISHER_MSG_LEN];
    size_t len;
    int text, more;
    pthread_mutex_lock(&ring.lock);
    if (s->next == ring.head) {
        pthread_mutex_unlock(&ring.lock);
        return 0; /* caught up */
    }
    slot *sl = &ring.slots[s->next % RING];
    len = sl->len;
    text = sl->text;
    memcpy(buf + LWS_PRE, sl->buf + LWS_PRE, len);
    sl->remaining--;
    s->next++;
    more = s->next != ring.head;
    pthread_mutex_unlock(&ring.lock);
    if (lws_write(wsi, buf + LWS_PRE, len, text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY) < (int)len) return -1;
    if (more) lws_callback_on_writable(wsi);
    return 0;
}

static void subscribe(session *s) {
    pthread_mutex_lock(&ring.lock);
    s->next = ring.head; /* from the next message on */
    s->subscribed = 1;
    ring.subscribers++;
    pthread_mutex_unlock(&ring.lock);
}

static void unsubscribe(session *s) {
    if (!s->subscribed) return;
    pthread_mutex_lock(&ring.lock);
    for (uint64_t i = s->next; i < ring.head; i++) ring.slots[i % RING].remaining--;
    ring.subscribers--;
    s->subscribed = 0;
    pthread_mutex_unlock(&ring.lock);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: subscribe(s); return 0;
    case LWS_CALLBACK_CLOSED: unsubscribe(s); return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!lws_frame_is_binary(wsi) && lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi)) publisher_command(in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: return on_writeable(wsi, s);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: /* the worker published */
        lws_callback_on_writable_all_protocol(context, lws_get_protocol(wsi));
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"broadcast", callback, sizeof(session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void started(struct lws_context *c) {
    context = c;
    if (publisher_start(publish, NULL) < 0) {
        fprintf(stderr, "lws_broadcast: cannot start the worker thread\n");
        exit(1);
    }
}

static void stopping(struct lws_context *c) {
    (void)c;
    publisher_stop();
}

int main(int argc, char **argv) { return lws_main(argc, argv, "lws_broadcast", protocols, started, stopping); }
