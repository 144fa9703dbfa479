/* test_ws_client_handshake: tern's WebSocket client against servers that answer its
 * handshake wrongly, or not at all, and one that then breaks the protocol.
 *
 * A raw server thread accepts one connection per case, reads the upgrade request
 * (and checks it: GET of the URL's path and query, Host, Upgrade, Connection, a
 * 16-byte base64 key, version 13) and answers as the case says:
 *   - 200 OK                      -> TERN_EV_ERROR ("refused"), CLOSE, no WS_OPEN
 *   - 101 with a wrong accept     -> ERROR, CLOSE
 *   - 101 without Upgrade         -> ERROR, CLOSE
 *   - nothing (TERN_OPT_WS_HANDSHAKE_TIMEOUT_MS is 300) -> ERROR "timed out", CLOSE
 *   - a valid 101, then a masked frame (servers must not mask) -> WS_OPEN (status
 *     101), then the client closes with 1002
 *   - a valid 101, then a text message and a close 1000 -> WS_OPEN, WS_MSG, WS_CTL
 *     (close, the code as received), the client's close echoes 1000, CLOSE once the
 *     server closed TCP
 * Every case ends with exactly one CLOSE, and the client manager leaks nothing.
 */
#include "common.h"

#include <sys/socket.h>

enum { REFUSE, BAD_ACCEPT, NO_UPGRADE, SILENT, MASKED, GOOD, NCASES };

static int g_lfd, g_port;
static int g_case;
static atomic_int g_served;
static char g_key[64];

/* The accept value of RFC 6455's example key: right for that key, wrong for any
 * random one the client sends. */
static const char g_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void accept_for(const char *key, char *out);

static void read_request(int fd, char *buf, size_t cap) {
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0) FAIL("case %d: the client closed during its request", g_case);
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n") != NULL) return;
    }
    FAIL("case %d: request too long", g_case);
}

static void expect_line(const char *req, const char *line) {
    CHECK(strcasestr(req, line) != NULL, "the upgrade request lacks \"%s\":\n%s", line, req);
}

static void *server(void *arg) {
    (void)arg;
    for (int k = 0; k < NCASES; k++) {
        int fd = accept(g_lfd, NULL, NULL);
        CHECK(fd >= 0, "accept: %s", strerror(errno));
        char req[4096];
        read_request(fd, req, sizeof req);
        CHECK(strncmp(req, "GET /chat?room=1 HTTP/1.1\r\n", 27) == 0, "request line: %.40s", req);
        expect_line(req, "\r\nUpgrade: websocket\r\n");
        expect_line(req, "\r\nConnection: Upgrade\r\n");
        expect_line(req, "\r\nSec-WebSocket-Version: 13\r\n");
        char *key = strcasestr(req, "\r\nSec-WebSocket-Key: ");
        CHECK(key != NULL, "no key");
        key += 21;
        size_t klen = strcspn(key, "\r");
        CHECK(klen == 24 && key[22] == '=' && key[23] == '=', "key %.*s is not 16 bytes in base64", (int)klen, key);
        CHECK(memcmp(key, g_key, 24) != 0, "the same key twice: not random");
        memcpy(g_key, key, 24);
        char ans[512];
        /* the answers send an accept for another key on purpose where they must fail */
        switch (g_case) {
        case REFUSE:
            snprintf(ans, sizeof ans, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            break;
        case BAD_ACCEPT:
            snprintf(ans, sizeof ans, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Accept: %s\r\n\r\n", g_accept);
            break;
        case NO_UPGRADE:
            snprintf(ans, sizeof ans, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n");
            break;
        default:
            ans[0] = 0;
        }
        if (g_case == SILENT) {
            t_wait_peer_close(fd, 5000, NULL);
        } else if (g_case == MASKED || g_case == GOOD) {
            char acc[32];
            accept_for(key, acc);
            snprintf(ans, sizeof ans, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
            t_write_all(fd, ans, strlen(ans));
            if (g_case == MASKED) {
                const unsigned char masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
                t_write_all(fd, masked, sizeof masked);
            } else {
                const unsigned char msg[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o', 0x88, 0x02, 0x03, 0xe8};
                t_write_all(fd, msg, sizeof msg);
            }
            /* the client's close frame comes back; then the server closes first */
            unsigned char buf[64];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            CHECK(n >= 8, "case %d: no close frame from the client (%zd)", g_case, n);
            CHECK(buf[0] == 0x88 && (buf[1] & 0x80), "case %d: the client's close frame %02x %02x (masked?)", g_case, buf[0], buf[1]);
            int code = (buf[6] ^ buf[2]) << 8 | (buf[7] ^ buf[3]);
            CHECK(code == (g_case == MASKED ? 1002 : 1000), "case %d: the client closed with %d", g_case, code);
        } else {
            t_write_all(fd, ans, strlen(ans));
            t_wait_peer_close(fd, 5000, NULL);
        }
        close(fd);
        atomic_fetch_add(&g_served, 1);
    }
    return NULL;
}

/* The accept value for `key` (24 base64 chars): SHA-1 of key + GUID, in base64,
 * computed with a tiny SHA-1 of the test's own (the client must not be checked
 * against itself). */
static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char block[64 * 2];
    size_t total = ((len + 8) / 64 + 1) * 64;
    CHECK(total <= sizeof block, "sha1 input too long");
    memset(block, 0, total);
    memcpy(block, msg, len);
    block[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) block[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)block[off + 4 * i] << 24 | block[off + 4 * i + 1] << 16 | block[off + 4 * i + 2] << 8 | block[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) {
            uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
            w[i] = x << 1 | x >> 31;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
            e = d, d = c, c = b << 30 | b >> 2, b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (int i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void accept_for(const char *key, char *out) {
    unsigned char in[24 + 36];
    memcpy(in, key, 24);
    memcpy(in + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char d[20];
    sha1(in, sizeof in, d);
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (int i = 0; i < 21; i += 3) {
        uint32_t v = d[i] << 16 | (i + 1 < 20 ? d[i + 1] << 8 : 0) | (i + 2 < 20 ? d[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < 20 ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < 20 ? a[v & 63] : '=';
    }
    out[o] = 0;
}

typedef struct {
    int opened, msgs, closes_seen, closed, errors, status, close_code;
    char error[256];
} seen;

static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    t_track(c, ev, ev_data);
    seen *s = user;
    if (ev == TERN_EV_WS_OPEN) {
        s->opened++;
        s->status = tern_http_status(ev_data);
    } else if (ev == TERN_EV_WS_MSG) {
        const tern_ws_msg *m = ev_data;
        CHECK(m->op == TERN_WS_TEXT && m->data.len == 5 && memcmp(m->data.ptr, "hello", 5) == 0, "message");
        s->msgs++;
    } else if (ev == TERN_EV_WS_CTL) {
        const tern_ws_msg *m = ev_data;
        if (m->op == TERN_WS_CLOSE) {
            s->closes_seen++;
            const unsigned char *p = (const unsigned char *)m->data.ptr;
            s->close_code = m->data.len >= 2 ? p[0] << 8 | p[1] : 0;
        }
    } else if (ev == TERN_EV_ERROR) {
        s->errors++;
        snprintf(s->error, sizeof s->error, "%s", (const char *)ev_data);
    } else if (ev == TERN_EV_CLOSE) {
        s->closed++;
    }
}

int main(void) {
    t_begin("test_ws_client_handshake", 60, 240);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(g_lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(g_lfd, 8) == 0, "listen");
    g_port = t_raw_local_port(g_lfd);
    pthread_t th;
    pthread_create(&th, NULL, server, NULL);

    tern_mgr *m = tern_mgr_new();
    CHECK_OK(tern_mgr_set(m, TERN_OPT_WS_HANDSHAKE_TIMEOUT_MS, 300));
    char url[96];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/chat?room=1", g_port);
    const char *want_error[] = {"status is not 101", "Sec-WebSocket-Accept", "Upgrade", "timed out"};
    for (g_case = 0; g_case < NCASES; g_case++) {
        seen s = {0};
        double t0 = t_now_ms();
        CHECK(tern_ws_connect(m, url, on_client, &s) != NULL, "tern_ws_connect");
        T_POLL_UNTIL(m, s.closed == 1, 5000, "case %d: the connection to end", g_case);
        if (g_case <= SILENT) {
            CHECK(s.opened == 0 && s.errors == 1, "case %d: opened %d, errors %d", g_case, s.opened, s.errors);
            CHECK(strstr(s.error, want_error[g_case]) != NULL, "case %d: error \"%s\", want \"%s\"", g_case, s.error, want_error[g_case]);
            if (g_case == SILENT) CHECK(t_now_ms() - t0 >= 250, "the handshake timed out after %.0f ms", t_now_ms() - t0);
        } else if (g_case == MASKED) {
            CHECK(s.opened == 1 && s.status == 101, "masked: opened %d, status %d", s.opened, s.status);
            CHECK(s.errors == 1 && strstr(s.error, "1002") != NULL, "masked: error \"%s\"", s.error);
        } else {
            CHECK(s.opened == 1 && s.msgs == 1 && s.closes_seen == 1 && s.close_code == 1000 && s.errors == 0,
                  "good: opened %d msgs %d closes %d code %d errors %d (%s)", s.opened, s.msgs, s.closes_seen, s.close_code,
                  s.errors, s.error);
        }
        T_POLL_UNTIL(m, atomic_load(&g_served) == g_case + 1, 5000, "case %d: the server to finish", g_case);
    }
    pthread_join(th, NULL);
    close(g_lfd);
    t_free(m);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live");
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
