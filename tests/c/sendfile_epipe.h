/* sendfile_epipe.h: a peer that makes tern's sendfile fail with EPIPE, every time.
 *
 * Why a recipe: a peer that only resets (RST) while a download is running makes the
 * next write fail with ECONNRESET, which raises no SIGPIPE, and a connection that
 * failed makes no later write that could get the EPIPE. So a storm of resets may never
 * reach the EPIPE path (at a small scale it did not, and the missing SIGPIPE block went
 * unseen). A reset that arrives while the server's socket is in CLOSE_WAIT (the peer
 * half-closed first) is recorded as EPIPE instead: the next sendfile fails with EPIPE
 * and the kernel raises SIGPIPE at the loop thread. The recipe:
 *   1. connect with a small receive buffer and GET a file far larger than the socket
 *      buffers (the server then has file bytes queued, sent with sendfile);
 *   2. wait until body bytes arrive: the server is flushing the file with sendfile;
 *   3. shutdown(SHUT_WR): the server's socket goes to CLOSE_WAIT; tern keeps sending
 *      (a half-closed client still reads);
 *   4. close with SO_LINGER {1, 0}: the reset.
 * The server connection then ends with ERROR "send: Broken pipe ..." (t_is_epipe).
 * Include after common.h.
 */
#ifndef TERN_TEST_SENDFILE_EPIPE_H
#define TERN_TEST_SENDFILE_EPIPE_H

#include <sys/stat.h>

/* The size of big.bin: far larger than what the socket buffers hold (the receive
 * buffer is pinned small; the send buffer grows to tcp_wmem's maximum at most). */
static inline long t_epipe_file_size(void) {
    long n = (long)t_beyond_sndbuf() * 2;
    return n > (16L << 20) ? n : 16L << 20;
}

/* Makes a temporary directory holding big.bin (sparse, `size` bytes); root gets its path. */
static inline void t_epipe_dir_make(char *root, size_t root_len, long size) {
    snprintf(root, root_len, "/tmp/tern_epipe.XXXXXX");
    if (mkdtemp(root) == NULL) FAIL("mkdtemp: %s", strerror(errno));
    char path[512];
    snprintf(path, sizeof path, "%s/big.bin", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) FAIL("open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0) FAIL("ftruncate %s: %s", path, strerror(errno));
    close(fd);
}

static inline void t_epipe_dir_remove(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/big.bin", root);
    unlink(path);
    rmdir(root);
}

/* Step 1: a connection asking for /big.bin through a 4 KiB receive buffer. */
static inline int t_epipe_client_start(int port) {
    int fd = t_raw_connect(port, 4096);
    const char req[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    t_write_all(fd, req, sizeof req - 1);
    return fd;
}

/* Step 2: 1 once the response head and at least one body byte are in the socket.
 * `wait`: block until then (0: look once, for a loop thread that polls meanwhile). */
static inline int t_epipe_client_body_arrived(int fd, int wait) {
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | (wait ? 0 : MSG_DONTWAIT));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && !wait && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) FAIL("epipe client: recv: %s", strerror(errno));
        if (n == 0) FAIL("epipe client: EOF before the body");
        if (n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) != 0) FAIL("epipe client: status %.12s", buf);
        char *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
        if (end != NULL && end + 4 < buf + n) return 1;
        if (!wait) return 0;
        if ((size_t)n == sizeof buf) FAIL("epipe client: no end of the head in %zd bytes", n);
        t_sleep_ms(1); /* a peek returns at once while data waits: look again shortly */
    }
}

/* Steps 3 and 4: half-close, then reset. */
static inline void t_epipe_client_finish(int fd) {
    if (shutdown(fd, SHUT_WR) != 0) FAIL("shutdown: %s", strerror(errno));
    t_set_linger0(fd);
    close(fd);
}

/* The ERROR message of a connection that failed with EPIPE ("send: Broken pipe ..."). */
static inline int t_is_epipe(const char *msg) { return msg != NULL && strstr(msg, strerror(EPIPE)) != NULL; }

#endif /* TERN_TEST_SENDFILE_EPIPE_H */
