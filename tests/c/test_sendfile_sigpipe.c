/* test_sendfile_sigpipe: peers reset connections while tern_http_serve_dir is sending
 * a large file with sendfile (which, unlike send, has no MSG_NOSIGNAL).
 *
 * SIGPIPE is left at its default action (checked with sigaction): a SIGPIPE raised by
 * sendfile would kill the process. A temp dir holds big.bin, a sparse file of 100 MiB
 * (16 MiB with TERN_TEST_SCALE=small, more if tcp_wmem allows larger send buffers) and
 * small.txt. The server runs on this thread; a client thread opens 200 connections
 * (20 small) in batches of 20, each sends GET /big.bin, reads a random amount
 * (0 .. 4 MiB; 0 .. 1 MiB small) and resets the connection (SO_LINGER {1, 0} + close).
 * A reset alone mostly makes sendfile fail with ECONNRESET, which raises no SIGPIPE;
 * so one client in four half-closes first (sendfile_epipe.h): its server connection
 * is in CLOSE_WAIT when the reset comes, and its next sendfile fails with EPIPE and
 * raises SIGPIPE. While each batch is open, a well-formed request for small.txt on its
 * own connection must be answered exactly.
 *   - the process lives;
 *   - at least as many connections ended with EPIPE as clients half-closed (50; 5
 *     small): the SIGPIPE path ran at every scale, valgrind included;
 *   - every accepted connection gets exactly one CLOSE;
 *   - once every close is processed (and the file cache has expired: it keeps files
 *     open for at most 1 s after they were resolved, swept on the next lookup), the
 *     descriptors and tern_bytes_live are back to their baselines, and again after
 *     tern_mgr_free (descriptors: those before the manager existed).
 */
#include "common.h"

#include "sendfile_epipe.h"

#define BATCH 20

static char g_root[256];
static atomic_int g_client_done;
static atomic_long g_client_conns; /* connections the client thread made */
static atomic_long g_small_ok;     /* small requests answered exactly */
static atomic_long g_half_closers; /* clients that half-closed before their reset */
static long g_epipes;              /* server connections that ended with EPIPE */
static long g_nclients;
static long g_big_size;
static long g_max_read;
static unsigned g_seed;

static const char g_small_body[] = "small file served during the storm\n";

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    t_track(c, ev, ev_data);
    (void)user;
    if (ev == TERN_EV_ERROR && t_is_epipe(ev_data)) g_epipes++;
    if (ev == TERN_EV_HTTP_MSG) {
        int rc = tern_http_serve_dir(c, ev_data, g_root);
        /* a connection already reset by its peer may be closing */
        CHECK(rc == TERN_OK || rc == TERN_ECLOSED, "tern_http_serve_dir returned %d (%s)", rc,
              tern_strerror(rc));
    }
}

static void write_file(const char *name, const void *data, size_t len, long sparse_size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) FAIL("open %s: %s", path, strerror(errno));
    if (len > 0) {
        size_t off = 0;
        while (off < len) {
            ssize_t n = write(fd, (const char *)data + off, len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) FAIL("write %s: %s", path, strerror(errno));
            off += (size_t)n;
        }
    }
    if (sparse_size > 0 && ftruncate(fd, (off_t)sparse_size) != 0)
        FAIL("ftruncate %s: %s", path, strerror(errno));
    close(fd);
}

static void remove_files(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/big.bin", g_root);
    unlink(path);
    snprintf(path, sizeof path, "%s/small.txt", g_root);
    unlink(path);
    rmdir(g_root);
}

/* Reads a whole Connection: close response for small.txt and checks it. */
static void small_request(int port) {
    int fd = t_raw_connect(port, 0);
    atomic_fetch_add(&g_client_conns, 1);
    const char req[] = "GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    t_write_all(fd, req, sizeof req - 1);
    char buf[4096];
    size_t got = 0;
    for (;;) {
        CHECK(got < sizeof buf - 1, "small response larger than %zu bytes", sizeof buf);
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) FAIL("small request: recv: %s", strerror(errno));
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "small request: status line: %.60s", buf);
    char *end = strstr(buf, "\r\n\r\n");
    CHECK(end != NULL, "small request: no end of header in %zu bytes", got);
    *end = 0;
    char want_len[64];
    snprintf(want_len, sizeof want_len, "\r\nContent-Length: %zu\r", sizeof g_small_body - 1);
    /* headers compared case-insensitively by name: tern writes canonical case */
    CHECK(strcasestr(buf, "\r\nContent-Type: text/plain") != NULL, "small request: no text/plain in\n%s",
          buf);
    strcat(buf, "\r"); /* so the last header line ends with \r like the others */
    CHECK(strcasestr(buf, want_len) != NULL, "small request: wrong Content-Length in\n%s", buf);
    const char *body = end + 4;
    size_t body_len = got - (size_t)(body - buf);
    CHECK(body_len == sizeof g_small_body - 1 && memcmp(body, g_small_body, body_len) == 0,
          "small request: body of %zu bytes differs", body_len);
    atomic_fetch_add(&g_small_ok, 1);
}

/* Reads up to `want` bytes of a response (header included), blocking. */
static void read_some(int fd, long want) {
    static char buf[1 << 16];
    long got = 0;
    while (got < want) {
        size_t ask = (size_t)(want - got) < sizeof buf ? (size_t)(want - got) : sizeof buf;
        ssize_t n = recv(fd, buf, ask, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) FAIL("big download: recv after %ld bytes: %s", got, strerror(errno));
        if (n == 0) FAIL("big download: EOF after %ld of %ld bytes", got, want);
        if (got == 0 && n >= 12)
            CHECK(memcmp(buf, "HTTP/1.1 200", 12) == 0, "big download: status %.12s", buf);
        got += n;
    }
}

static void *client_thread(void *arg) {
    int port = *(int *)arg;
    unsigned seed = g_seed;
    const char req[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    for (long base = 0; base < g_nclients; base += BATCH) {
        int n = (int)(g_nclients - base < BATCH ? g_nclients - base : BATCH);
        int fds[BATCH];
        long want[BATCH];
        for (int i = 0; i < n; i++) {
            atomic_fetch_add(&g_client_conns, 1);
            if ((base + i) % 4 == 1) {
                fds[i] = t_epipe_client_start(port);
                want[i] = -1; /* half-close, then reset */
                continue;
            }
            fds[i] = t_raw_connect(port, 0);
            t_set_linger0(fds[i]);
            t_write_all(fds[i], req, sizeof req - 1);
            /* one in eight resets at once, the rest after a random amount */
            want[i] = rand_r(&seed) % 8 == 0 ? 0 : (long)(rand_r(&seed) % (unsigned)g_max_read);
        }
        /* the server is now busy with up to BATCH large downloads */
        small_request(port);
        for (int i = 0; i < n; i++) {
            if (want[i] < 0) {
                t_epipe_client_body_arrived(fds[i], 1);
                t_epipe_client_finish(fds[i]);
                atomic_fetch_add(&g_half_closers, 1);
                continue;
            }
            read_some(fds[i], want[i]);
            close(fds[i]); /* RST, possibly in the middle of a sendfile */
        }
    }
    small_request(port);
    atomic_store(&g_client_done, 1);
    return NULL;
}

int main(void) {
    t_begin("test_sendfile_sigpipe", 60, 400);
    struct sigaction cur;
    CHECK(sigaction(SIGPIPE, NULL, &cur) == 0, "sigaction: %s", strerror(errno));
    CHECK(cur.sa_handler == SIG_DFL && !(cur.sa_flags & SA_SIGINFO),
          "SIGPIPE is not at its default disposition: the test would prove nothing");
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    CHECK(!sigismember(&blocked, SIGPIPE), "SIGPIPE is blocked in this thread");

    g_nclients = t_scale(200, 20);
    g_big_size = t_scale(100L << 20, 10L << 20);
    if (g_big_size < t_epipe_file_size()) g_big_size = t_epipe_file_size(); /* half-closers need it */
    g_max_read = t_scale(4L << 20, 1L << 20);
    g_seed = (unsigned)time(NULL);
    printf("seed %u, %ld clients, file of %ld MiB\n", g_seed, g_nclients, g_big_size >> 20);

    snprintf(g_root, sizeof g_root, "/tmp/tern_sendfile_sigpipe.XXXXXX");
    CHECK(mkdtemp(g_root) != NULL, "mkdtemp: %s", strerror(errno));
    write_file("big.bin", NULL, 0, g_big_size);
    write_file("small.txt", g_small_body, sizeof g_small_body - 1, 0);

    t_track_init((size_t)g_nclients * 2 + 64);
    t_need_fds(BATCH * 4 + 64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_http, NULL);
    CHECK(l != NULL, "tern_http_listen: %s", tern_strerror(tern_last_error()));
    int port = tern_conn_local_port(l);
    CHECK(port > 0, "tern_conn_local_port: %d", port);
    t_poll(m, 1);
    int fds_setup = t_count_fds();

    double t0 = t_now_ms();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, client_thread, &port) == 0, "pthread_create");
    T_POLL_UNTIL(m,
                 atomic_load(&g_client_done) &&
                     t_track_count(&t_trk.accepts) == atomic_load(&g_client_conns) &&
                     t_track_count(&t_trk.closes) == t_track_count(&t_trk.accepts),
                 50000, "the storm to end: %ld connections made, %ld accepted, %ld closed",
                 atomic_load(&g_client_conns), t_track_count(&t_trk.accepts),
                 t_track_count(&t_trk.closes));
    pthread_join(th, NULL);
    printf("%ld connections (%ld small requests answered) in %.0f ms; %ld ERROR events, %ld of "
           "them EPIPE (%ld clients half-closed)\n",
           atomic_load(&g_client_conns), atomic_load(&g_small_ok), t_now_ms() - t0,
           t_track_count(&t_trk.errors), g_epipes, atomic_load(&g_half_closers));
    CHECK(atomic_load(&g_half_closers) == g_nclients / 4, "%ld clients half-closed, want %ld",
          atomic_load(&g_half_closers), g_nclients / 4);
    CHECK(g_epipes >= atomic_load(&g_half_closers),
          "only %ld connections failed with EPIPE, %ld clients half-closed before resetting: the "
          "sendfile EPIPE path (the one that raises SIGPIPE) was not reached",
          g_epipes, atomic_load(&g_half_closers));
    CHECK(atomic_load(&g_small_ok) == (g_nclients + BATCH - 1) / BATCH + 1,
          "%ld small requests answered", atomic_load(&g_small_ok));
    CHECK(tern_mgr_conn_count(m) == 1, "%zu connections left (want the listener only)",
          tern_mgr_conn_count(m));

    /* The file cache holds big.bin and small.txt (its bytes too: a small file is kept in
     * memory) for up to 1 s after their last lookup;
     * let that pass, then a lookup (a 404: not cached) sweeps it. */
    double wait_end = t_now_ms() + 1100;
    while (t_now_ms() < wait_end) t_poll(m, 50);
    long closes_before = t_track_count(&t_trk.closes);
    int fd = t_raw_connect(port, 0);
    const char req[] = "GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    t_write_all(fd, req, sizeof req - 1);
    T_POLL_UNTIL(m, t_track_count(&t_trk.closes) == closes_before + 1, 5000,
                 "the 404 connection to close");
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(n > 12, "404 response: recv returned %zd", n);
    buf[n] = 0;
    CHECK(strncmp(buf, "HTTP/1.1 404", 12) == 0, "404 response: %.40s", buf);
    close(fd);
    int fds_now = t_count_fds();
    CHECK(fds_now == fds_setup, "descriptors: %d after the storm (cache expired), %d before",
          fds_now, fds_setup);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);

    t_free(m);
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu after free, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d after tern_mgr_free, %d before", t_count_fds(),
          fds_base);
    remove_files();
    t_track_fini();
    t_pass();
    return 0;
}
