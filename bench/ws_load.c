/* ws_load: the WebSocket load generator of bench/ws.sh.
 *
 *   ws_load echo      PORT [-c CONNS=100]  [-d SECONDS=10] [-w WINDOW=1] [-s SIZE=64] [-P PID]
 *   ws_load broadcast PORT [-c CONNS=1000] [-r RATE=0] [-n COUNT=1000] [-S STALL_S=10] [-P PID]
 *   ws_load idle      PORT [-c CONNS=10000]
 *   common: -u PATH (default /), -q (no progress lines on stderr)
 *
 * One thread, one epoll set, non-blocking sockets; bench/ws.sh pins it to CPU 1. Every
 * client frame is masked with a fresh random key (RFC 6455 5.3); every server frame is
 * checked: unmasked, RSV bits clear, minimal length encoding, control frames short and
 * unfragmented, fragmented messages reassembled, the 101 answer carries the right
 * Sec-WebSocket-Accept and no extension. A violation costs its connection and is
 * counted in `errors`.
 *
 * Modes:
 *   echo       CONNS connections each keep WINDOW binary messages of SIZE bytes in
 *              flight for SECONDS: send, wait for the echo, send again. Each message
 *              carries its send time (CLOCK_MONOTONIC ns, little-endian u64) and a
 *              sequence number (u64) in its first 16 bytes, then a pattern; every echo
 *              must come back whole and in order. After SECONDS no new message is sent
 *              and the ones in flight are waited for, so `messages` is every message
 *              the server echoed in the measured window; msg_per_s counts only echoes
 *              received within SECONDS.
 *   broadcast  CONNS subscribers; once all are connected, "start RATE COUNT" (text) on
 *              the first one; the server then publishes COUNT 64-byte binary messages
 *              (stamp and sequence number as above) to every subscriber and a text
 *              "done" (protocol: bench/ws.sh). Counts deliveries, their latency (receive
 *              time - stamp), per-connection order (a smaller sequence number than
 *              expected is an error; a larger one counts the skipped ones as lost), and
 *              losses at "done". Gives up when nothing arrives for STALL_S seconds.
 *   idle       CONNS connections, one 64-byte echo exchange each, then prints
 *              "ready CONNS" and holds them idle until standard input closes.
 *
 * -P PID: read the server's utime+stime (/proc/PID/stat, all threads) at the start and
 * the end of the measured window (echo: first send to last echo; broadcast: "start" to
 * the last "done"), so connection setup and teardown are not in the figure.
 *
 * Every mode ends with a close handshake on each connection (close frame 1000, wait for
 * the server's close frame and its TCP close, 3 s at most). The result is one line on
 * stdout, "result key=value ...". Exit status 0 when there was no error, no loss, no
 * connection closed early; 1 otherwise; 2 for bad arguments.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING_CONNECTS 100 /* handshakes in progress at once: stays under any backlog */
#define MAX_OUT (1 << 20)        /* unsent bytes per connection before we call it stuck */
#define CLOSE_WAIT_NS 3000000000ull
#define STAMP_BYTES 16

/* ---- time ------------------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of PID in clock ticks (fields 14 and 15, counted after the ")" that
 * ends the command name, which may itself contain spaces); -1 if unreadable. */
static long long server_ticks(int pid) {
    if (pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) return -1;
    unsigned long long ut, st;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (long long)(ut + st);
}

/* ---- SHA-1 (FIPS 180-4) and base64: Sec-WebSocket-Accept -------------------------- */

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const void *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    size_t n = len;
    for (; n >= 64; p += 64, n -= 64) sha1_block(h, p);
    unsigned char last[128] = {0};
    memcpy(last, p, n);
    last[n] = 0x80;
    size_t total = n + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) last[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, last);
    if (total == 128) sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* RFC 6455 4.2.2: base64(SHA-1(key + GUID)); out holds 28 characters and a NUL. */
static void ws_accept_for(const char *key, char out[29]) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char digest[20];
    sha1(buf, (size_t)n, digest);
    base64(digest, 20, out);
}

/* ---- randomness: keys and masks ------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng_next(void) { /* xorshift64*: masks must be unpredictable to proxies, not secret */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* ---- latency histogram: 64 linear sub-buckets per power of two (error < 1.6%) ------- */

#define HIST_BUCKETS (58 * 64 + 128)
static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count, hist_max;

static unsigned hist_index(uint64_t v) {
    if (v < 128) return (unsigned)v;
    int shift = 63 - __builtin_clzll(v) - 6;
    return (unsigned)(64 * shift + (v >> shift));
}

static uint64_t hist_value(unsigned i) { /* the middle of bucket i */
    if (i < 128) return i;
    unsigned shift = i / 64 - 1, top = i - 64 * shift;
    return ((uint64_t)top << shift) + ((1ull << shift) >> 1);
}

static void hist_add(uint64_t v) {
    hist[hist_index(v)]++;
    hist_count++;
    if (v > hist_max) hist_max = v;
}

static double hist_pct_us(double pct) {
    if (hist_count == 0) return -1;
    uint64_t want = (uint64_t)((double)hist_count * pct / 100.0);
    if (want >= hist_count) want = hist_count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > want) return (double)hist_value(i) / 1000.0;
    }
    return (double)hist_max / 1000.0;
}

/* ---- configuration and counters -------------------------------------------------------- */

enum mode { MODE_ECHO, MODE_BROADCAST, MODE_IDLE };

static struct {
    enum mode mode;
    int port;
    const char *path;
    int conns;
    double seconds;
    int window;
    int size;
    long rate;
    long count;
    double stall_s;
    int server_pid;
    int quiet;
} cfg = {.path = "/", .window = 1, .size = 64, .count = 1000, .stall_s = 10};

static struct {
    uint64_t errors, closed_early, close_timeouts, clean_closes;
    uint64_t opened, open_now, pending_connects, next_to_connect;
    uint64_t messages, in_window, inflight; /* echo */
    uint64_t deliveries, lost, reordered, done_conns, last_delivery_ns; /* broadcast */
    uint64_t first_stamp, last_stamp;                                   /* seq 0, seq COUNT-1 */
    uint64_t idle_echoed;
    uint64_t last_progress_ns;
} st;

static int sending;          /* echo: new messages may still be sent */
static uint64_t window_end;  /* echo: end of the measured SECONDS */
static int ep;

static void progress(const char *fmt, ...) {
    if (cfg.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ws_load: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- connections ------------------------------------------------------------------ */

enum cstate { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING, C_DONE };

typedef struct conn {
    int fd;
    enum cstate state;
    uint32_t armed;
    unsigned char *in;
    size_t in_len, in_cap;
    unsigned char *out;
    size_t out_len, out_cap;
    unsigned char *frag; /* a fragmented message being reassembled */
    size_t frag_len;
    int frag_op;
    int sent_close, got_close;
    uint64_t seq_out, seq_in; /* echo: next to send, next expected back; broadcast: expected */
    int got_done;
    char accept[29];
} conn;

static conn *conns;

static void arm(conn *c, uint32_t events) {
    if (c->armed == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->armed = events;
}

static void conn_end(conn *c) {
    if (c->state == C_DONE) return;
    if (cfg.mode != MODE_BROADCAST) { /* its messages in flight will not come back */
        st.inflight -= c->seq_out - c->seq_in;
        st.lost += c->seq_out - c->seq_in;
    }
    if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) st.pending_connects--;
    else st.open_now--;
    close(c->fd);
    c->state = C_DONE;
    free(c->in);
    free(c->out);
    free(c->frag);
    c->in = c->out = c->frag = NULL;
}

static void conn_fail(conn *c, const char *fmt, ...) {
    st.errors++;
    if (st.errors <= 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "ws_load: connection %ld: ", (long)(c - conns));
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    conn_end(c);
}

static int out_reserve(conn *c, size_t more) {
    if (c->out_len + more <= c->out_cap) return 0;
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap < c->out_len + more) cap *= 2;
    if (cap > MAX_OUT) return -1;
    unsigned char *p = realloc(c->out, cap);
    if (p == NULL) return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Appends one masked frame (FIN set) to the connection's output. */
static int queue_frame(conn *c, int op, const void *payload, size_t len) {
    if (out_reserve(c, len + 14) < 0) return -1;
    unsigned char *p = c->out + c->out_len;
    size_t h = 0;
    p[h++] = (unsigned char)(0x80 | op);
    if (len < 126) {
        p[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        p[h++] = 0x80 | 126;
        p[h++] = (unsigned char)(len >> 8);
        p[h++] = (unsigned char)len;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) p[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t key = (uint32_t)rng_next();
    unsigned char mask[4];
    memcpy(mask, &key, 4);
    memcpy(p + h, mask, 4);
    h += 4;
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++) p[h + i] = src[i] ^ mask[i & 3];
    c->out_len += h + len;
    return 0;
}

/* Sends what is queued; what the kernel does not take waits for EPOLLOUT. */
static void flush(conn *c) {
    if (c->state == C_DONE) return;
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            if (c->state == C_OPEN) st.closed_early++;
            conn_fail(c, "send: %s", strerror(errno));
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    arm(c, EPOLLIN | (c->out_len || c->state == C_CONNECTING ? EPOLLOUT : 0));
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static unsigned char pattern_byte(uint64_t seq, size_t i) { return (unsigned char)(seq * 7 + i); }

/* echo and idle: one stamped message with the next sequence number */
static void queue_echo_msg(conn *c) {
    unsigned char msg[16384];
    put_u64(msg, now_ns());
    put_u64(msg + 8, c->seq_out);
    for (size_t i = STAMP_BYTES; i < (size_t)cfg.size; i++) msg[i] = pattern_byte(c->seq_out, i);
    c->seq_out++;
    st.inflight++;
    if (queue_frame(c, 2, msg, (size_t)cfg.size) < 0) conn_fail(c, "output stuck above %d bytes", MAX_OUT);
}

/* ---- connecting and the handshake ----------------------------------------------------- */

static void start_connect(conn *c) {
    memset(c, 0, sizeof *c);
    c->in_cap = cfg.mode == MODE_BROADCAST ? 65536 : 4096;
    c->in = malloc(c->in_cap);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    st.pending_connects++;
    if (c->in == NULL || c->fd < 0) {
        c->state = C_HANDSHAKE;
        conn_fail(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->armed = ev.events;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        conn_fail(c, "connect: %s", strerror(errno));
}

static void send_handshake(conn *c) {
    unsigned char raw[16];
    uint64_t a = rng_next(), b = rng_next();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    char key[25];
    base64(raw, 16, key);
    ws_accept_for(key, c->accept);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     cfg.path, cfg.port, key);
    if (out_reserve(c, (size_t)n) < 0) return conn_fail(c, "out of memory");
    memcpy(c->out + c->out_len, req, (size_t)n);
    c->out_len += (size_t)n;
    c->state = C_HANDSHAKE;
    flush(c);
}

/* The value of header NAME in the response head (NUL-terminated), or NULL. */
static const char *find_header(const char *head, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            const char *end = strstr(v, "\r\n");
            size_t l = end ? (size_t)(end - v) : strlen(v);
            while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t')) l--;
            *len = l;
            return v;
        }
    }
    return NULL;
}

static int has_token(const char *v, size_t len, const char *token) { /* comma-separated, any case */
    size_t tl = strlen(token);
    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == ',')) i++;
        size_t j = i;
        while (j < len && v[j] != ',') j++;
        size_t e = j;
        while (e > i && v[e - 1] == ' ') e--;
        if (e - i == tl && strncasecmp(v + i, token, tl) == 0) return 1;
        i = j;
    }
    return 0;
}

static void on_open(conn *c);

/* Returns 1 once the head is complete and valid (its bytes consumed), 0 for "need more". */
static int parse_handshake(conn *c) {
    unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->in_len == c->in_cap) conn_fail(c, "101 response head longer than %zu bytes", c->in_cap);
        return 0;
    }
    size_t head_len = (size_t)(end - c->in) + 4;
    char head[4097];
    size_t copy = head_len < sizeof head ? head_len : sizeof head - 1;
    memcpy(head, c->in, copy);
    head[copy] = '\0';
    size_t vl;
    const char *v;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        conn_fail(c, "handshake answered '%.*s'", (int)strcspn(head, "\r"), head);
        return 0;
    }
    if ((v = find_header(head, "Upgrade", &vl)) == NULL || !has_token(v, vl, "websocket")) {
        conn_fail(c, "101 without Upgrade: websocket");
        return 0;
    }
    if ((v = find_header(head, "Connection", &vl)) == NULL || !has_token(v, vl, "upgrade")) {
        conn_fail(c, "101 without Connection: Upgrade");
        return 0;
    }
    if ((v = find_header(head, "Sec-WebSocket-Accept", &vl)) == NULL || vl != 28 || memcmp(v, c->accept, 28) != 0) {
        conn_fail(c, "wrong or missing Sec-WebSocket-Accept (want %s)", c->accept);
        return 0;
    }
    if (find_header(head, "Sec-WebSocket-Extensions", &vl) != NULL) {
        conn_fail(c, "server chose an extension nobody asked for");
        return 0;
    }
    memmove(c->in, c->in + head_len, c->in_len - head_len);
    c->in_len -= head_len;
    c->state = C_OPEN;
    st.pending_connects--;
    st.open_now++;
    st.opened++;
    on_open(c);
    return 1;
}

/* ---- messages, per mode ----------------------------------------------------------- */

static void on_open(conn *c) {
    if (cfg.mode == MODE_IDLE) {
        queue_echo_msg(c);
        flush(c);
    }
}

/* An echo must be the oldest message in flight on this connection, byte for byte. */
static int check_echo(conn *c, int op, const unsigned char *d, size_t len) {
    if (op != 2 || len != (size_t)cfg.size) {
        conn_fail(c, "echo: got op %d, %zu bytes; sent op 2, %d bytes", op, len, cfg.size);
        return -1;
    }
    uint64_t seq = get_u64(d + 8);
    if (seq != c->seq_in) {
        conn_fail(c, "echo: sequence %llu, expected %llu", (unsigned long long)seq, (unsigned long long)c->seq_in);
        return -1;
    }
    for (size_t i = STAMP_BYTES; i < len; i++)
        if (d[i] != pattern_byte(seq, i)) {
            conn_fail(c, "echo: message %llu differs at byte %zu", (unsigned long long)seq, i);
            return -1;
        }
    c->seq_in++;
    st.inflight--;
    return 0;
}

static void on_echo(conn *c, int op, const unsigned char *d, size_t len, uint64_t now) {
    if (check_echo(c, op, d, len) < 0) return;
    uint64_t stamp = get_u64(d);
    hist_add(now > stamp ? now - stamp : 0);
    st.messages++;
    if (now < window_end) st.in_window++;
    if (sending && now < window_end) queue_echo_msg(c);
}

static void on_broadcast(conn *c, int op, const unsigned char *d, size_t len, uint64_t now) {
    if (op == 1) {
        if (len == 4 && memcmp(d, "done", 4) == 0 && !c->got_done) {
            c->got_done = 1;
            st.done_conns++;
            if (c->seq_in < (uint64_t)cfg.count) st.lost += (uint64_t)cfg.count - c->seq_in;
            return;
        }
        return conn_fail(c, "unexpected text message '%.*s'", (int)(len > 60 ? 60 : len), (const char *)d);
    }
    if (op != 2 || len != 64) return conn_fail(c, "broadcast: got op %d, %zu bytes; want op 2, 64 bytes", op, len);
    if (c->got_done) return conn_fail(c, "broadcast: message after \"done\"");
    uint64_t stamp = get_u64(d), seq = get_u64(d + 8);
    if (seq < c->seq_in || seq >= (uint64_t)cfg.count) {
        st.reordered++;
        return conn_fail(c, "broadcast: sequence %llu after %llu (count %ld)", (unsigned long long)seq,
                         (unsigned long long)c->seq_in, cfg.count);
    }
    st.lost += seq - c->seq_in;
    c->seq_in = seq + 1;
    hist_add(now > stamp ? now - stamp : 0);
    st.deliveries++;
    st.last_delivery_ns = now;
    if (seq == 0 && st.first_stamp == 0) st.first_stamp = stamp;
    if (seq == (uint64_t)cfg.count - 1 && st.last_stamp == 0) st.last_stamp = stamp;
}

static void on_idle_echo(conn *c, int op, const unsigned char *d, size_t len) {
    if (c->seq_in > 0) return conn_fail(c, "idle: message after the one exchange");
    if (check_echo(c, op, d, len) == 0) st.idle_echoed++;
}

static void on_message(conn *c, int op, const unsigned char *d, size_t len, uint64_t now) {
    switch (cfg.mode) {
    case MODE_ECHO: on_echo(c, op, d, len, now); break;
    case MODE_BROADCAST: on_broadcast(c, op, d, len, now); break;
    case MODE_IDLE: on_idle_echo(c, op, d, len); break;
    }
}

static void on_control(conn *c, int op, const unsigned char *d, size_t len) {
    if (op == 9) { /* ping: pong with the same payload */
        if (queue_frame(c, 10, d, len) < 0) conn_fail(c, "output stuck");
    } else if (op == 8) {
        if (len == 1) return conn_fail(c, "close frame with a 1-byte payload");
        c->got_close = 1;
        if (!c->sent_close) { /* the server began it: answer with its code */
            if (c->state == C_OPEN) st.closed_early++;
            if (queue_frame(c, 8, d, len >= 2 ? 2 : 0) < 0) return conn_fail(c, "output stuck");
            c->sent_close = 1;
        }
        if (c->state == C_OPEN) c->state = C_CLOSING; /* still counted in open_now */
    } /* pong: nothing to do */
}

/* One whole frame of LEN payload bytes at P. */
static void on_frame(conn *c, int fin, int op, const unsigned char *p, size_t len, uint64_t now) {
    if (op >= 8) return on_control(c, op, p, len);
    if (c->got_close) return conn_fail(c, "data frame after the close frame");
    if (op == 0) {
        if (c->frag_op == 0) return conn_fail(c, "continuation frame without a message");
    } else if (c->frag_op != 0) {
        return conn_fail(c, "new message (op %d) inside a fragmented one", op);
    } else if (fin) {
        return on_message(c, op, p, len, now); /* the usual case: a whole message */
    } else {
        c->frag_op = op;
    }
    if (c->frag_len + len > (size_t)cfg.size + 4096) return conn_fail(c, "fragmented message too long");
    unsigned char *m = realloc(c->frag, c->frag_len + len + 1);
    if (m == NULL) return conn_fail(c, "out of memory");
    c->frag = m;
    memcpy(c->frag + c->frag_len, p, len);
    c->frag_len += len;
    if (fin) {
        int mop = c->frag_op;
        c->frag_op = 0;
        size_t mlen = c->frag_len;
        c->frag_len = 0;
        on_message(c, mop, c->frag, mlen, now);
    }
}

/* Parses every complete frame in the input buffer, checking what RFC 6455 says a server
 * must do. */
static void parse_frames(conn *c, uint64_t now) {
    size_t pos = 0;
    while (c->state == C_OPEN || c->state == C_CLOSING) {
        size_t avail = c->in_len - pos;
        const unsigned char *p = c->in + pos;
        if (avail < 2) break;
        int fin = p[0] & 0x80, op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (p[0] & 0x70) return conn_fail(c, "RSV bits set (0x%02x) without an extension", p[0]);
        if (p[1] & 0x80) return conn_fail(c, "masked frame from the server");
        if ((op > 2 && op < 8) || op > 10) return conn_fail(c, "reserved opcode %d", op);
        if (len == 126) {
            if (avail < 4) break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
            if (len < 126) return conn_fail(c, "length %llu not minimally encoded", (unsigned long long)len);
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++) len = len << 8 | p[i];
            h = 10;
            if (len < 65536) return conn_fail(c, "length %llu not minimally encoded", (unsigned long long)len);
        }
        if (op >= 8 && (!fin || len > 125)) return conn_fail(c, "control frame op %d fragmented or > 125 bytes", op);
        if (len > c->in_cap - h) return conn_fail(c, "frame of %llu bytes is beyond this tool", (unsigned long long)len);
        if (avail < h + len) break;
        on_frame(c, fin != 0, op, p + h, (size_t)len, now);
        pos += h + (size_t)len;
    }
    if (c->state == C_DONE) return;
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

/* ---- the event loop ------------------------------------------------------------------ */

static void on_readable(conn *c) {
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (c->state == C_OPEN) st.closed_early++;
        return conn_fail(c, "recv: %s", strerror(errno));
    }
    if (n == 0) {
        if (c->state == C_CLOSING && c->got_close) {
            st.clean_closes++;
            return conn_end(c);
        }
        if (c->state == C_OPEN) st.closed_early++;
        return conn_fail(c, c->state == C_CLOSING ? "TCP closed without a close frame"
                                                   : "server closed the connection (no close frame)");
    }
    uint64_t now = now_ns();
    st.last_progress_ns = now;
    c->in_len += (size_t)n;
    if (c->state == C_HANDSHAKE && !parse_handshake(c)) return;
    parse_frames(c, now);
    flush(c);
}

static void on_event(conn *c, uint32_t events) {
    if (c->state == C_DONE) return;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) return conn_fail(c, "connect: %s", strerror(err));
        if (!(events & EPOLLOUT)) return;
        return send_handshake(c);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    if (c->state != C_DONE && (events & EPOLLOUT)) flush(c);
}

/* Runs the loop until done() says so or DEADLINE (ns) passes; also keeps at most
 * MAX_PENDING_CONNECTS handshakes going while connections remain to be opened. Returns
 * 1 if done() said so. */
static int run_until(int (*done)(void), uint64_t deadline, int stdin_watch, int *stdin_closed) {
    struct epoll_event evs[512];
    for (;;) {
        while (st.next_to_connect < (uint64_t)cfg.conns && st.pending_connects < MAX_PENDING_CONNECTS)
            start_connect(&conns[st.next_to_connect++]);
        if (done()) return 1;
        uint64_t now = now_ns();
        if (now >= deadline) return 0;
        uint64_t left_ms = (deadline - now) / 1000000 + 1;
        int n = epoll_wait(ep, evs, 512, left_ms > 100 ? 100 : (int)left_ms);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                char buf[256];
                if (read(0, buf, sizeof buf) <= 0) *stdin_closed = 1;
                continue;
            }
            on_event(evs[i].data.ptr, evs[i].events);
        }
        if (stdin_watch && *stdin_closed) return 0;
    }
}

static int all_settled(void) { return st.next_to_connect == (uint64_t)cfg.conns && st.pending_connects == 0; }
static int echo_drained(void) { return st.inflight == 0 || st.open_now == 0; }
static int idle_ready(void) { return all_settled() && st.idle_echoed == st.opened; }
static int never(void) { return 0; }
static int all_closed(void) { return st.open_now == 0; }

static int broadcast_finished(void) {
    if (st.open_now == 0) return 1;
    if (st.done_conns == st.open_now) return 1;
    if (now_ns() - st.last_progress_ns > (uint64_t)(cfg.stall_s * 1e9)) {
        fprintf(stderr, "ws_load: nothing arrived for %.0f s; giving up\n", cfg.stall_s);
        return 1;
    }
    return 0;
}

static void close_all(void) {
    for (int i = 0; i < cfg.conns; i++) {
        conn *c = &conns[i];
        if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
            conn_end(c);
            continue;
        }
        if (c->state != C_OPEN) continue;
        unsigned char code[2] = {1000 >> 8, 1000 & 0xff};
        if (queue_frame(c, 8, code, 2) < 0) {
            conn_fail(c, "output stuck");
            continue;
        }
        c->sent_close = 1;
        c->state = C_CLOSING;
        flush(c);
    }
    int unused = 0;
    run_until(all_closed, now_ns() + CLOSE_WAIT_NS, 0, &unused);
    for (int i = 0; i < cfg.conns; i++)
        if (conns[i].state != C_DONE) {
            st.close_timeouts++;
            conn_end(&conns[i]);
        }
}

/* Connects every connection; 0 when all are open. */
static int connect_all(void) {
    int unused = 0;
    uint64_t t0 = now_ns();
    uint64_t limit = t0 + (uint64_t)(30 + cfg.conns / 200) * 1000000000ull;
    run_until(all_settled, limit, 0, &unused);
    if (st.opened < (uint64_t)cfg.conns) {
        fprintf(stderr, "ws_load: only %llu of %d connections opened\n", (unsigned long long)st.opened, cfg.conns);
        return -1;
    }
    progress("%d connections open in %.2f s", cfg.conns, (double)(now_ns() - t0) / 1e9);
    return 0;
}

/* ---- the modes -------------------------------------------------------------------- */

static void print_common(double cpu_pct) {
    printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%llu closed_early=%llu "
           "clean_closes=%llu close_timeouts=%llu client_cpu_pct=%.0f\n",
           hist_pct_us(50), hist_pct_us(90), hist_pct_us(99), hist_pct_us(99.9), (double)hist_max / 1000.0,
           (unsigned long long)st.errors, (unsigned long long)st.closed_early, (unsigned long long)st.clean_closes,
           (unsigned long long)st.close_timeouts, cpu_pct);
}

static double server_cpu_us(long long t0, long long t1, uint64_t n) {
    if (t0 < 0 || t1 < 0 || n == 0) return -1;
    return (double)(t1 - t0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)n;
}

static int run_echo(void) {
    long long tk0 = server_ticks(cfg.server_pid);
    double cpu0 = cpu_seconds_self();
    uint64_t t0 = now_ns();
    window_end = t0 + (uint64_t)(cfg.seconds * 1e9);
    sending = 1;
    for (int i = 0; i < cfg.conns; i++) {
        for (int k = 0; k < cfg.window && conns[i].state == C_OPEN; k++) queue_echo_msg(&conns[i]);
        flush(&conns[i]);
    }
    int unused = 0;
    run_until(never, window_end, 0, &unused);
    sending = 0;
    uint64_t t1 = now_ns();
    run_until(echo_drained, t1 + 5000000000ull, 0, &unused);
    uint64_t t2 = now_ns();
    long long tk1 = server_ticks(cfg.server_pid);
    double cpu_pct = (cpu_seconds_self() - cpu0) * 1e11 / (double)(t2 - t0);
    uint64_t lost = st.lost + st.inflight;
    close_all();
    double secs = (double)(window_end - t0) / 1e9;
    printf("result mode=echo conns=%d window=%d size=%d seconds=%.3f messages=%llu msg_per_s=%.0f "
           "lost=%llu server_cpu_us_per_msg=%.3f",
           cfg.conns, cfg.window, cfg.size, secs, (unsigned long long)st.messages, (double)st.in_window / secs,
           (unsigned long long)lost, server_cpu_us(tk0, tk1, st.messages));
    print_common(cpu_pct);
    return st.errors || st.closed_early || lost ? 1 : 0;
}

static int run_broadcast(void) {
    char start[64];
    int n = snprintf(start, sizeof start, "start %ld %ld", cfg.rate, cfg.count);
    long long tk0 = server_ticks(cfg.server_pid);
    double cpu0 = cpu_seconds_self();
    uint64_t t0 = now_ns();
    st.last_progress_ns = t0;
    if (queue_frame(&conns[0], 1, start, (size_t)n) < 0) return 1;
    flush(&conns[0]);
    int unused = 0;
    run_until(broadcast_finished, UINT64_MAX, 0, &unused);
    uint64_t t1 = now_ns();
    long long tk1 = server_ticks(cfg.server_pid);
    double cpu_pct = (cpu_seconds_self() - cpu0) * 1e11 / (double)(t1 - t0);
    uint64_t open_at_end = st.open_now;
    /* connections that never saw "done" lost the rest of their messages */
    for (int i = 0; i < cfg.conns; i++)
        if (!conns[i].got_done && conns[i].seq_in < (uint64_t)cfg.count) st.lost += (uint64_t)cfg.count - conns[i].seq_in;
    close_all();
    double secs = st.last_delivery_ns > t0 ? (double)(st.last_delivery_ns - t0) / 1e9 : 0;
    double pub_rate = st.last_stamp > st.first_stamp ? (double)(cfg.count - 1) * 1e9 / (double)(st.last_stamp - st.first_stamp) : 0;
    printf("result mode=broadcast conns=%d rate=%ld count=%ld seconds=%.3f deliveries=%llu deliveries_per_s=%.0f "
           "published_per_s=%.0f lost=%llu reordered=%llu done=%llu/%llu server_cpu_us_per_delivery=%.3f",
           cfg.conns, cfg.rate, cfg.count, secs, (unsigned long long)st.deliveries,
           secs > 0 ? (double)st.deliveries / secs : 0, pub_rate, (unsigned long long)st.lost,
           (unsigned long long)st.reordered, (unsigned long long)st.done_conns, (unsigned long long)open_at_end,
           server_cpu_us(tk0, tk1, st.deliveries));
    print_common(cpu_pct);
    return st.errors || st.closed_early || st.lost || st.done_conns < (uint64_t)cfg.conns ? 1 : 0;
}

static int run_idle(void) {
    int unused = 0;
    if (!run_until(idle_ready, now_ns() + 10000000000ull, 0, &unused)) {
        fprintf(stderr, "ws_load: only %llu of %d echoes came back\n", (unsigned long long)st.idle_echoed, cfg.conns);
        return 1;
    }
    printf("ready %d\n", cfg.conns);
    fflush(stdout);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int closed = 0;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) == 0) {
        run_until(never, UINT64_MAX, 1, &closed);
    } else { /* stdin is not a pipe (a file, /dev/null): read it to its end */
        char buf[256];
        while (read(0, buf, sizeof buf) > 0) {
        }
    }
    uint64_t still_open = st.open_now;
    close_all();
    printf("result mode=idle conns=%d held=%llu", cfg.conns, (unsigned long long)still_open);
    print_common(0);
    return st.errors || st.closed_early ? 1 : 0;
}

/* ---- arguments -------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: ws_load echo PORT [-c CONNS] [-d SECONDS] [-w WINDOW] [-s SIZE] [-P PID]\n"
                    "       ws_load broadcast PORT [-c CONNS] [-r RATE] [-n COUNT] [-S STALL_S] [-P PID]\n"
                    "       ws_load idle PORT [-c CONNS]\n"
                    "       common: -u PATH, -q\n");
    exit(2);
}

static long num_arg(const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "ws_load: '%s' is not a number in [%ld, %ld]\n", s, lo, hi);
        usage();
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    if (argc < 3) usage();
    if (strcmp(argv[1], "echo") == 0) {
        cfg.mode = MODE_ECHO;
        cfg.conns = 100;
    } else if (strcmp(argv[1], "broadcast") == 0) {
        cfg.mode = MODE_BROADCAST;
        cfg.conns = 1000;
    } else if (strcmp(argv[1], "idle") == 0) {
        cfg.mode = MODE_IDLE;
        cfg.conns = 10000;
    } else {
        usage();
    }
    cfg.port = (int)num_arg(argv[2], 1, 65535);
    cfg.seconds = 10;
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "-q") == 0) {
            cfg.quiet = 1;
            continue;
        }
        if (o[0] != '-' || o[1] == '\0' || o[2] != '\0' || i + 1 >= argc) usage();
        const char *v = argv[++i];
        switch (o[1]) {
        case 'c': cfg.conns = (int)num_arg(v, 1, 1000000); break;
        case 'd': cfg.seconds = (double)num_arg(v, 1, 3600); break;
        case 'w': cfg.window = (int)num_arg(v, 1, 1024); break;
        case 's': cfg.size = (int)num_arg(v, STAMP_BYTES, 16384); break;
        case 'r': cfg.rate = num_arg(v, 0, 100000000); break;
        case 'n': cfg.count = num_arg(v, 1, 1000000000); break;
        case 'S': cfg.stall_s = (double)num_arg(v, 1, 3600); break;
        case 'P': cfg.server_pid = (int)num_arg(v, 1, 1 << 30); break;
        case 'u': cfg.path = v; break;
        default: usage();
        }
    }
    if (cfg.path[0] != '/' || strpbrk(cfg.path, " \r\n") != NULL) {
        fprintf(stderr, "ws_load: the path must start with / and hold no spaces or line breaks\n");
        usage();
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    char check[29];
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", check); /* RFC 6455 1.3's example */
    if (strcmp(check, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) {
        fprintf(stderr, "ws_load: SHA-1/base64 self-check failed (%s)\n", check);
        return 1;
    }
    if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || rng_state == 0)
        rng_state = now_ns() | 1;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)cfg.conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)cfg.conns + 64 ? rl.rlim_max : (rlim_t)cfg.conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)cfg.conns + 64) {
            fprintf(stderr, "ws_load: open-file limit %llu is too low for %d connections\n",
                    (unsigned long long)rl.rlim_cur, cfg.conns);
            return 1;
        }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)cfg.conns, sizeof *conns);
    if (ep < 0 || conns == NULL) {
        perror("ws_load");
        return 1;
    }
    if (connect_all() < 0) {
        close_all();
        printf("result mode=%s conns=%d opened=%llu", argv[1], cfg.conns, (unsigned long long)st.opened);
        print_common(0);
        return 1;
    }
    switch (cfg.mode) {
    case MODE_ECHO: return run_echo();
    case MODE_BROADCAST: return run_broadcast();
    case MODE_IDLE: return run_idle();
    }
    return 1;
}
