/* test_ws_shared_buffer: one wrapped buffer published to a fast and a stalled WebSocket
 * subscriber is queued by reference on both and freed once, after the last byte of it
 * went to the kernel on the last of them.
 *
 * A malloc'd payload larger than a send buffer (t_beyond_sndbuf, below
 * TERN_OPT_MAX_SEND_QUEUE) holding a pattern is wrapped with a free callback that
 * counts and poisons it (memset 0xEE): a free before a connection wrote the payload
 * changes what its peer reads, and a payload copied per connection is freed before the
 * stalled subscriber's copy is written, which the count sees. Two raw-socket clients
 * do the handshake by hand; one reads at once, the other (4 KiB receive buffer) reads
 * nothing yet. Each round hands the buffer over a different way and ends the stalled
 * subscriber a different way:
 *   1. tern_ws_publish on the loop thread; the stalled peer reads at last: every byte
 *      intact, and the free runs exactly once, after its last byte was written;
 *   2. tern_remote_ws_publish from another thread; the stalled connection is closed
 *      with tern_close_now: freed exactly once by the time its CLOSE is delivered;
 *   3. tern_ws_send_bytes with a tern_bytes_share per connection; the stalled peer
 *      resets (SO_LINGER 0): ERROR and CLOSE, freed exactly once.
 * In each, after the fast peer read the whole message and its connection drained, the
 * buffer is not freed while the stalled connection still has part of it queued.
 * tern_bytes_live and descriptors are back to their baselines.
 */
#include "common.h"

#define HDR 10 /* a server's frame header for a payload past 65,535 bytes */

static tern_mgr *g_m;
static size_t LEN;
static tern_conn_id g_open[2];
static int g_nopen;
static long g_frees_at_close[64]; /* free count when each connection's CLOSE came */
static t_free_counter *g_fc;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_HTTP_MSG) CHECK_OK(tern_ws_upgrade(c, ev_data, NULL));
    if (ev == TERN_EV_WS_OPEN) {
        CHECK(g_nopen < 2, "more WebSocket connections than peers");
        CHECK_OK(tern_ws_subscribe(c, "t"));
        g_open[g_nopen++] = rec.id;
    }
    if (ev == TERN_EV_WS_MSG || ev == TERN_EV_WS_CTL) FAIL("the clients send nothing");
    if (ev == TERN_EV_CLOSE && rec.id < 64 && g_fc) g_frees_at_close[rec.id] = atomic_load(&g_fc->frees);
}

/* A raw client that did the handshake; the 101 is read and checked. */
static int ws_client(int port, int rcvbuf) {
    int fd = t_raw_connect(port, rcvbuf);
    const char *hs = "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    t_write_all(fd, hs, strlen(hs));
    char buf[1024];
    size_t have = 0;
    int before = g_nopen;
    T_POLL_UNTIL(g_m, g_nopen == before + 1, 5000, "WS_OPEN");
    while (memmem(buf, have, "\r\n\r\n", 4) == NULL) {
        CHECK(have < sizeof buf, "a 101 longer than %zu bytes", sizeof buf);
        ssize_t n = recv(fd, buf + have, 1, 0); /* byte by byte: nothing past the head */
        if (n < 0 && errno == EINTR) continue;
        CHECK(n == 1, "the client got %s before the 101", n == 0 ? "EOF" : strerror(errno));
        have++;
    }
    CHECK(memcmp(buf, "HTTP/1.1 101", 12) == 0, "no 101: %.*s", (int)have, buf);
    return fd;
}

/* A reader thread: the frame header, then LEN payload bytes (4 KiB steps when slow). */
typedef struct {
    int fd;
    int slow;
    atomic_int done;
    atomic_long got;
} reader;

static void check_header(const unsigned char *h, const char *who) {
    uint64_t len = 0;
    for (int i = 2; i < HDR; i++) len = len << 8 | h[i];
    CHECK(h[0] == 0x82 && h[1] == 127 && len == LEN, "%s reader: frame header %02x %02x length %llu, "
          "want a final binary frame of %zu bytes", who, h[0], h[1], (unsigned long long)len, LEN);
}

static void *reader_main(void *arg) {
    reader *r = arg;
    const char *who = r->slow ? "stalled" : "fast";
    unsigned char *buf = malloc(65536);
    size_t got = 0, total = LEN + HDR;
    while (got < total) {
        size_t want = total - got < 65536 ? total - got : 65536;
        if (got < HDR) want = HDR - got;
        else if (r->slow && want > 4096) want = 4096;
        ssize_t n = recv(r->fd, got < HDR ? buf + got : buf, want, 0);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "%s reader: %s after %zu of %zu bytes", who, n == 0 ? "EOF" : strerror(errno), got, total);
        if (got < HDR) {
            got += (size_t)n;
            if (got == HDR) check_header(buf, who);
            continue;
        }
        long bad = t_check_pattern(buf, (size_t)n, 11, got - HDR);
        CHECK(bad < 0, "%s reader: payload byte %zu is 0x%02x, not the pattern: the published buffer "
              "was freed (poisoned) before it was written to this connection",
              who, got - HDR + (size_t)bad, buf[bad]);
        got += (size_t)n;
        atomic_store(&r->got, (long)got);
    }
    free(buf);
    atomic_store(&r->done, 1);
    return NULL;
}

enum { VIA_PUBLISH, VIA_REMOTE_PUBLISH, VIA_SEND_SHARED };
enum { END_READ, END_CLOSE_NOW, END_RESET };

typedef struct {
    tern_remote *r;
    tern_bytes *b;
    atomic_int rc;
} poster;

static void *poster_main(void *arg) {
    poster *p = arg;
    atomic_store(&p->rc, tern_remote_ws_publish(p->r, "t", TERN_WS_BINARY, p->b));
    return NULL;
}

static void hand_over(tern_bytes *b, int via, tern_conn_id fid, tern_conn_id sid) {
    if (via == VIA_PUBLISH) {
        int n = tern_ws_publish(g_m, "t", TERN_WS_BINARY, b);
        CHECK(n == 2, "tern_ws_publish reached %d subscribers, want 2", n);
    } else if (via == VIA_REMOTE_PUBLISH) {
        poster p = {tern_mgr_remote(g_m), b, 1};
        CHECK(p.r != NULL, "tern_mgr_remote");
        pthread_t th;
        CHECK(pthread_create(&th, NULL, poster_main, &p) == 0, "pthread_create");
        pthread_join(th, NULL);
        CHECK_RC(atomic_load(&p.rc), TERN_OK);
        tern_remote_free(p.r);
    } else {
        CHECK_OK(tern_ws_send_bytes(tern_conn_lookup(g_m, sid), TERN_WS_BINARY, tern_bytes_share(b)));
        CHECK_OK(tern_ws_send_bytes(tern_conn_lookup(g_m, fid), TERN_WS_BINARY, tern_bytes_share(b)));
        tern_bytes_release(b);
    }
}

static void one_round(int port, unsigned char *mem, int via, int how, const char *what) {
    static t_free_counter fc;
    atomic_store(&fc.frees, 0);
    g_fc = &fc;
    g_nopen = 0;
    reader fast = {0}, stalled = {0};
    fast.fd = ws_client(port, 0);
    stalled.fd = ws_client(port, 4096);
    stalled.slow = 1;
    tern_conn_id fid = g_open[0], sid = g_open[1];

    t_fill_pattern(mem, LEN, 11, 0);
    tern_bytes *b = tern_bytes_wrap(mem, LEN, t_count_free_poison, &fc);
    CHECK(b != NULL, "tern_bytes_wrap");
    hand_over(b, via, fid, sid);

    pthread_t ft, st;
    pthread_create(&ft, NULL, reader_main, &fast);
    T_POLL_UNTIL(g_m, atomic_load(&fast.done) && t_track_get(fid).drains >= 1, 20000,
                 "%s: the fast peer reads the message (%ld of %zu)", what, atomic_load(&fast.got), LEN + HDR);
    pthread_join(ft, NULL);
    for (int i = 0; i < 20; i++) t_poll(g_m, 2); /* well past the fast one's drain */
    CHECK(atomic_load(&fc.frees) == 0, "%s: the published buffer was freed while the stalled subscriber "
          "still had %zu bytes queued (copied per connection, or released early)", what,
          tern_conn_queued(tern_conn_lookup(g_m, sid)));
    CHECK(tern_conn_queued(tern_conn_lookup(g_m, sid)) > 0, "%s: the stalled connection wrote everything", what);

    if (how == END_READ) {
        pthread_create(&st, NULL, reader_main, &stalled);
        T_POLL_UNTIL(g_m, atomic_load(&stalled.done) && atomic_load(&fc.frees) == 1, 20000,
                     "%s: the stalled peer reads everything (%ld of %zu), then the free (%ld)", what,
                     atomic_load(&stalled.got), LEN + HDR, atomic_load(&fc.frees));
        pthread_join(st, NULL);
        for (int i = 0; i < 5; i++) t_poll(g_m, 1);
    } else {
        if (how == END_CLOSE_NOW) {
            CHECK_OK(tern_close_now(tern_conn_lookup(g_m, sid)));
        } else {
            t_set_linger0(stalled.fd);
            close(stalled.fd); /* RST */
            stalled.fd = -1;
        }
        T_POLL_UNTIL(g_m, t_track_get(sid).closed, 5000, "%s: the stalled connection closes", what);
        CHECK(g_frees_at_close[sid] == 1, "%s: %ld frees when the stalled connection's CLOSE came, want 1",
              what, g_frees_at_close[sid]);
        CHECK(how != END_RESET || t_track_get(sid).errors == 1, "%s: a reset without ERROR", what);
    }
    CHECK(atomic_load(&fc.frees) == 1, "%s: freed %ld times", what, atomic_load(&fc.frees));
    close(fast.fd);
    if (stalled.fd >= 0) close(stalled.fd);
    T_POLL_UNTIL(g_m, t_track_get(fid).closed && t_track_get(sid).closed, 5000, "%s: both closed", what);
    printf("%s: no copy, no early free, freed once: ok\n", what);
}

int main(void) {
    t_begin("test_ws_shared_buffer", 60, 240);
    LEN = t_beyond_sndbuf(); /* the stalled connection keeps some queued */
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    unsigned char *mem = malloc(LEN);
    CHECK(mem != NULL, "malloc");
    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(g_m, "http://127.0.0.1:0", on_event, NULL);
    CHECK(l != NULL, "tern_http_listen: %s", tern_strerror(tern_last_error()));
    int port = tern_conn_local_port(l);
    one_round(port, mem, VIA_PUBLISH, END_READ, "1. tern_ws_publish, the stalled peer reads at last");
    one_round(port, mem, VIA_REMOTE_PUBLISH, END_CLOSE_NOW,
              "2. tern_remote_ws_publish, the stalled connection closed with tern_close_now");
    one_round(port, mem, VIA_SEND_SHARED, END_RESET, "3. tern_ws_send_bytes of shares, the stalled peer resets");
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    t_free(g_m);
    t_track_check_all_closed();
    free(mem);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
