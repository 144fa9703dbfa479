/* broadcast_publisher.h: the publishing side of bench/ws.sh's broadcast protocol,
 * shared by the C broadcast servers (bench/tern_ws_bench.c, bench/peers/lws_broadcast.c).
 *
 * The loop thread hands every text message it gets to publisher_command(); "start RATE
 * COUNT" wakes the worker thread (ignored while a run is going on), which publishes
 * COUNT 64-byte binary messages at RATE per second (0: as fast as the server's queue
 * takes them), then the text "done". Message bytes 0-7: CLOCK_MONOTONIC in ns when the
 * message was made, just before it is first offered; bytes 8-15: its sequence number,
 * 0 to COUNT-1; both little-endian u64; the rest zero. At a fixed rate message i is made
 * at start + i/RATE (clock_nanosleep to an absolute time, so delays do not add up).
 *
 * The server supplies publish(data, len, text, ctx): 0 once queued, 1 if its queue is
 * full (the worker waits RETRY_NS and offers the same message again), -1 to give up.
 * Included once per program, hence the static definitions.
 */
#ifndef BROADCAST_PUBLISHER_H
#define BROADCAST_PUBLISHER_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PUBLISHER_MSG_LEN 64
#define PUBLISHER_RETRY_NS 100000

typedef int (*publisher_fn)(const void *data, size_t len, int text, void *ctx);

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int pending, running;
    _Atomic int stop; /* also read by the worker between messages, without the lock */
    long rate, count;
    publisher_fn publish;
    void *ctx;
} publisher = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static uint64_t publisher_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 0 once published, -1 if the server gave up or we are stopping. */
static int publisher_offer(const void *data, size_t len, int text) {
    const struct timespec nap = {0, PUBLISHER_RETRY_NS};
    for (;;) {
        int rc = publisher.publish(data, len, text, publisher.ctx);
        if (rc != 1) return rc == 0 ? 0 : -1;
        if (publisher.stop) return -1;
        nanosleep(&nap, NULL);
    }
}

static void publisher_run(long rate, long count) {
    unsigned char msg[PUBLISHER_MSG_LEN] = {0};
    uint64_t t0 = publisher_now_ns();
    for (long seq = 0; seq < count && !publisher.stop; seq++) {
        if (rate > 0) {
            uint64_t due = t0 + (uint64_t)((double)seq * 1e9 / (double)rate);
            struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
        uint64_t stamp = publisher_now_ns();
        for (int i = 0; i < 8; i++) {
            msg[i] = (unsigned char)(stamp >> (8 * i));
            msg[8 + i] = (unsigned char)((uint64_t)seq >> (8 * i));
        }
        if (publisher_offer(msg, sizeof msg, 0) < 0) return;
    }
    publisher_offer("done", 4, 1);
}

static void *publisher_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&publisher.lock);
    for (;;) {
        while (!publisher.pending && !publisher.stop) pthread_cond_wait(&publisher.wake, &publisher.lock);
        if (publisher.stop) break;
        publisher.pending = 0;
        publisher.running = 1;
        long rate = publisher.rate, count = publisher.count;
        pthread_mutex_unlock(&publisher.lock);
        publisher_run(rate, count);
        pthread_mutex_lock(&publisher.lock);
        publisher.running = 0;
    }
    pthread_mutex_unlock(&publisher.lock);
    return NULL;
}

/* Starts the worker thread; 0, or -1 if it could not be created. */
static int publisher_start(publisher_fn publish, void *ctx) {
    publisher.publish = publish;
    publisher.ctx = ctx;
    return pthread_create(&publisher.thread, NULL, publisher_main, NULL) == 0 ? 0 : -1;
}

/* Any thread: a text message from a client. 0 if it started a run. */
static int publisher_command(const char *text, size_t len) {
    char buf[64];
    long rate, count;
    char extra;
    if (len >= sizeof buf) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (sscanf(buf, "start %ld %ld%c", &rate, &count, &extra) != 2 || rate < 0 || count < 1) return -1;
    int rc = -1;
    pthread_mutex_lock(&publisher.lock);
    if (!publisher.pending && !publisher.running) {
        publisher.rate = rate;
        publisher.count = count;
        publisher.pending = 1;
        pthread_cond_signal(&publisher.wake);
        rc = 0;
    }
    pthread_mutex_unlock(&publisher.lock);
    return rc;
}

/* Stops the worker (a run in progress ends at its next message) and joins it. */
static void publisher_stop(void) {
    pthread_mutex_lock(&publisher.lock);
    publisher.stop = 1;
    pthread_cond_signal(&publisher.wake);
    pthread_mutex_unlock(&publisher.lock);
    pthread_join(publisher.thread, NULL);
}

#endif
