/* Shared helpers for the C tests of tern (header-only, static functions).
 *
 * Every test includes this header first. It gives:
 *   - t_begin(): test name, a hard deadline (SIGALRM -> message + exit 3) and the
 *     iteration scale (TERN_TEST_SCALE=small divides work for valgrind runs);
 *   - FAIL / CHECK macros that print file:line and a message and exit(1);
 *   - raw POSIX socket helpers for peers that are not tern;
 *   - an event tracker that checks the per-connection event rules of the contract
 *     (OPEN first, ACCEPT/CONNECT right after it, exactly one CLOSE last, events only
 *     inside tern_mgr_poll / tern_mgr_free, ids never reused);
 *   - counting free callbacks for tern_bytes_wrap;
 *   - t_wait_asleep(): wait until a thread is blocked in epoll_wait (so a test can post
 *     to a loop that is really asleep instead of sleeping and hoping).
 *   - t_exchange: one raw HTTP request and everything until the server closes.
 */
#ifndef TERN_TEST_COMMON_H
#define TERN_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

/* ------------------------------------------------------------------------- */
/* Failing, deadlines, scale                                                  */

__attribute__((unused)) static const char *t_name = "tern-test";
static int t_small = 0;         /* TERN_TEST_SCALE=small (valgrind runs) */
static unsigned t_deadline_s = 0;

static inline void t_vfail(const char *file, int line, const char *fmt, va_list ap) {
    fprintf(stderr, "%s: FAIL (%s:%d): ", t_name, file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    fflush(stdout);
    /* _exit: other threads may still be running; do not run atexit handlers. */
    _exit(1);
}

__attribute__((format(printf, 3, 4), noreturn)) static inline void t_fail(const char *file, int line,
                                                                  const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    t_vfail(file, line, fmt, ap);
    va_end(ap);
    _exit(1);
}

#define FAIL(...) t_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s: check failed: %s\n", t_name, #cond);                        \
            t_fail(__FILE__, __LINE__, __VA_ARGS__);                                         \
        }                                                                                    \
    } while (0)
/* a tern call that must return TERN_OK */
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        int t_rc_ = (expr);                                                                  \
        if (t_rc_ != TERN_OK)                                                                \
            t_fail(__FILE__, __LINE__, "%s returned %d (%s), expected TERN_OK", #expr, t_rc_, \
                   tern_strerror(t_rc_));                                                    \
    } while (0)
#define CHECK_RC(expr, want)                                                                 \
    do {                                                                                     \
        int t_rc_ = (expr), t_want_ = (want);                                                \
        if (t_rc_ != t_want_)                                                                \
            t_fail(__FILE__, __LINE__, "%s returned %d (%s), expected %d (%s)", #expr, t_rc_, \
                   tern_strerror(t_rc_), t_want_, tern_strerror(t_want_));                   \
    } while (0)

static inline void t_on_alarm(int sig) {
    (void)sig;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s: FAIL: deadline of %u s exceeded (hung or too slow)\n",
                     t_name, t_deadline_s);
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n);
        (void)w;
    }
    _exit(3);
}

/* Start a test: name, deadline in seconds for the full run and for the small (valgrind)
 * run. Unbuffers stdout so progress lines interleave sensibly with failures. */
static inline void t_begin(const char *name, unsigned deadline_full_s, unsigned deadline_small_s) {
    t_name = name;
    const char *sc = getenv("TERN_TEST_SCALE");
    t_small = sc != NULL && strcmp(sc, "small") == 0;
    t_deadline_s = t_small ? deadline_small_s : deadline_full_s;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = t_on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(t_deadline_s);
}

/* n for the full run, n/div (at least 1) for TERN_TEST_SCALE=small */
static inline long t_scale(long full, long small) { return t_small ? small : full; }

static inline double t_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void t_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A bound in milliseconds, four times longer under valgrind (TERN_TEST_SCALE=small). */
static inline double t_bound_ms(double ms) { return ms * (t_small ? 4 : 1); }

static inline void t_pass(void) {
    printf("%s: PASS\n", t_name);
    fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* Process resources                                                          */

/* Number of open descriptors of this process (entries of /proc/self/fd). */
static inline int t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) FAIL("opendir(/proc/self/fd): %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        n++;
    }
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* Make sure at least `need` descriptors may be open: raise the soft limit towards the
 * hard one. Fails with a clear message when the hard limit is too low. */
static inline void t_need_fds(long need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) FAIL("getrlimit: %s", strerror(errno));
    if ((long)rl.rlim_cur >= need) return;
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < need)
        FAIL("this test needs %ld open descriptors but the hard RLIMIT_NOFILE is %ld: "
             "raise it (ulimit -Hn) and run again",
             need, (long)rl.rlim_max);
    rlim_t want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        /* valgrind keeps a few descriptors for itself; ask for exactly what we need */
        rl.rlim_cur = (rlim_t)need;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            FAIL("setrlimit(RLIMIT_NOFILE, %ld): %s", need, strerror(errno));
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < need)
        FAIL("could only raise RLIMIT_NOFILE to %ld, need %ld", (long)rl.rlim_cur, need);
}

/* ------------------------------------------------------------------------- */
/* Threads asleep in the event loop                                           */

static inline pid_t t_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* 1 if thread `tid` of this process is blocked in epoll_wait (or epoll_pwait), read
 * from /proc/self/task/TID/syscall (first field: the syscall number, or "running"). */
static inline int t_in_epoll_wait(pid_t tid) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open %s: %s (needed to see the loop thread asleep)", path, strerror(errno));
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) FAIL("read %s: %s", path, n < 0 ? strerror(errno) : "empty");
    buf[n] = '\0';
    if (buf[0] < '0' || buf[0] > '9') return 0; /* "running" */
    long nr = strtol(buf, NULL, 10);
    int hit = 0;
#ifdef SYS_epoll_wait
    hit |= nr == SYS_epoll_wait;
#endif
#ifdef SYS_epoll_pwait
    hit |= nr == SYS_epoll_pwait;
#endif
#ifdef SYS_epoll_pwait2
    hit |= nr == SYS_epoll_pwait2;
#endif
    return hit;
}

/* Waits until thread `tid` is blocked in epoll_wait, failing after `ms` (scaled under
 * valgrind) with `what`. Used by threads that must post to a loop that is asleep. */
static inline void t_wait_asleep(pid_t tid, double ms, const char *what) {
    double end = t_now_ms() + t_bound_ms(ms);
    while (!t_in_epoll_wait(tid)) {
        if (t_now_ms() > end)
            FAIL("%s: the loop thread was not blocked in epoll_wait within %.0f ms", what,
                 t_bound_ms(ms));
        struct timespec ts = {0, 200000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------------- */
/* Raw POSIX sockets (peers that are not tern)                                */

/* A length that never fits in a TCP send buffer: the largest one the kernel grows to
 * (the third field of /proc/sys/net/ipv4/tcp_wmem, 4 MiB by default) plus 2 MiB. Data
 * queued beyond it to a peer that does not read stays queued in tern. */
static inline size_t t_beyond_sndbuf(void) {
    long wmem_max = 4L << 20;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (f != NULL) {
        long lo, def, hi;
        if (fscanf(f, "%ld %ld %ld", &lo, &def, &hi) == 3 && hi > 0) wmem_max = hi;
        fclose(f);
    }
    return (size_t)wmem_max + (2u << 20);
}

/* Blocking TCP connection to 127.0.0.1:port. rcvbuf > 0 sets SO_RCVBUF first (a small
 * receive buffer makes the sender queue data and write partially). */
static inline int t_raw_connect(int port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) FAIL("socket: %s", strerror(errno));
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
        FAIL("SO_RCVBUF: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int attempt = 0;; attempt++) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) break;
        if (errno == EINTR) continue;
        FAIL("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    }
    return fd;
}

static inline int t_raw_local_port(int fd) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) FAIL("getsockname: %s", strerror(errno));
    return ntohs(sa.sin_port);
}

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
static inline int t_closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) FAIL("bind: %s", strerror(errno));
    int port = t_raw_local_port(fd);
    close(fd);
    return port;
}

static inline void t_set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) != 0)
        FAIL("fcntl: %s", strerror(errno));
}

/* Reset on close: SO_LINGER {1, 0} makes close() send RST. */
static inline void t_set_linger0(int fd) {
    struct linger lg = {1, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
        FAIL("SO_LINGER: %s", strerror(errno));
}

static inline void t_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                poll(&pfd, 1, 1000);
                continue;
            }
            FAIL("send: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes (blocking socket), failing on EOF or error. */
static inline void t_read_exact(int fd, void *buf, size_t len, const char *what) {
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) FAIL("%s: recv after %zu of %zu bytes: %s", what, got, len, strerror(errno));
        if (n == 0) FAIL("%s: EOF after %zu of %zu bytes", what, got, len);
        got += (size_t)n;
    }
}

/* Wait up to timeout_ms for the peer to close: reads (and discards) until EOF or reset.
 * Returns 0 on EOF, 1 on reset, -1 on timeout. *discarded gets the bytes read. */
static inline int t_wait_peer_close(int fd, int timeout_ms, size_t *discarded) {
    char buf[65536];
    double end = t_now_ms() + timeout_ms;
    size_t total = 0;
    for (;;) {
        int left = (int)(end - t_now_ms());
        if (left <= 0) {
            if (discarded) *discarded = total;
            return -1;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (discarded) *discarded = total;
        if (n == 0) return 0;
        if (errno == EAGAIN || errno == EINTR) continue;
        return 1;
    }
}

/* ------------------------------------------------------------------------- */
/* Deterministic payloads                                                     */

static inline unsigned char t_pattern_byte(uint64_t seed, uint64_t i) {
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ (seed * 0xBF58476D1CE4E5B9ull);
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 17));
}

static inline void t_fill_pattern(void *buf, size_t len, uint64_t seed, uint64_t offset) {
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) p[i] = t_pattern_byte(seed, offset + i);
}

/* Returns the index of the first byte that differs from the pattern, or -1. */
static inline long t_check_pattern(const void *buf, size_t len, uint64_t seed, uint64_t offset) {
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != t_pattern_byte(seed, offset + i)) return (long)i;
    return -1;
}

/* ------------------------------------------------------------------------- */
/* Counting free callbacks                                                    */

/* A wrapped buffer's accounting: incremented by the free callback. Pass a pointer to
 * one of these as ctx of tern_bytes_wrap with t_count_free as fn. */
typedef struct {
    atomic_long frees;
} t_free_counter;

/* free callback: counts, poisons the bytes (an early free would corrupt what a peer
 * receives), does not free the memory (the tests own it). */
static inline void t_count_free_poison(void *ctx, void *data, size_t len) {
    t_free_counter *fc = ctx;
    if (data != NULL && len > 0) memset(data, 0xEE, len);
    atomic_fetch_add(&fc->frees, 1);
}

/* free callback that only counts (for buffers shared by several sends in flight) */
static inline void t_count_free(void *ctx, void *data, size_t len) {
    (void)data;
    (void)len;
    t_free_counter *fc = ctx;
    atomic_fetch_add(&fc->frees, 1);
}

/* ------------------------------------------------------------------------- */
/* Event tracker                                                              */

static inline const char *t_ev_name(int ev) {
    switch (ev) {
    case TERN_EV_ERROR: return "ERROR";
    case TERN_EV_OPEN: return "OPEN";
    case TERN_EV_CONNECT: return "CONNECT";
    case TERN_EV_ACCEPT: return "ACCEPT";
    case TERN_EV_READ: return "READ";
    case TERN_EV_WRITE: return "WRITE";
    case TERN_EV_CLOSE: return "CLOSE";
    case TERN_EV_HTTP_MSG: return "HTTP_MSG";
    case TERN_EV_WS_OPEN: return "WS_OPEN";
    case TERN_EV_WS_MSG: return "WS_MSG";
    case TERN_EV_WS_CTL: return "WS_CTL";
    case TERN_EV_WAKEUP: return "WAKEUP";
    case TERN_EV_DRAIN: return "DRAIN";
    default: return "?";
    }
}

typedef struct {
    tern_conn_id id;     /* 0: empty slot */
    const tern_mgr *mgr; /* ids are unique per manager */
    int nevents;         /* events seen, OPEN included */
    int accepted, connected, errors, closed, reads, wakeups, drains;
    int first_after_open; /* the event right after OPEN (0 if none yet) */
    size_t written;       /* sum of TERN_EV_WRITE amounts */
    int is_dead;          /* CLOSE seen */
} t_rec;

typedef struct {
    pthread_mutex_t mu;
    t_rec *slots;
    size_t cap; /* power of two */
    size_t used;
    long opens, closes, closes_in_free, accepts, connects, errors;
} t_tracker;

__attribute__((unused)) static t_tracker t_trk = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0, 0, 0};

/* Per thread: 1 while this thread is inside tern_mgr_poll / tern_mgr_free through t_poll
 * and t_free. Events outside are a contract violation. */
static __thread int t_in_poll = 0;
static __thread int t_in_free = 0;

static inline int t_poll(tern_mgr *m, int ms) {
    t_in_poll = 1;
    int r = tern_mgr_poll(m, ms);
    t_in_poll = 0;
    if (r < 0) FAIL("tern_mgr_poll returned %d (%s)", r, tern_strerror(r));
    return r;
}

/* t_poll for a manager that may be done (tern_mgr_shutdown): returns TERN_ECLOSED too. */
static inline int t_poll_shutdown(tern_mgr *m, int ms) {
    t_in_poll = 1;
    int r = tern_mgr_poll(m, ms);
    t_in_poll = 0;
    if (r < 0 && r != TERN_ECLOSED) FAIL("tern_mgr_poll returned %d (%s)", r, tern_strerror(r));
    return r;
}

static inline void t_free(tern_mgr *m) {
    t_in_free = 1;
    tern_mgr_free(m);
    t_in_free = 0;
}

/* Poll until cond is true, failing after ms milliseconds with `what`. */
#define T_POLL_UNTIL(m, cond, ms, ...)                                                      \
    do {                                                                                    \
        double t_end_ = t_now_ms() + t_bound_ms((double)(ms));                              \
        while (!(cond)) {                                                                   \
            if (t_now_ms() > t_end_) {                                                      \
                fprintf(stderr, "%s: timed out waiting for: %s\n", t_name, #cond);          \
                FAIL(__VA_ARGS__);                                                          \
            }                                                                               \
            t_poll((m), 10);                                                                \
        }                                                                                   \
    } while (0)

static inline void t_track_init(size_t max_conns) {
    size_t cap = 64;
    while (cap < max_conns * 2 + 16) cap <<= 1;
    t_trk.slots = calloc(cap, sizeof(t_rec));
    if (t_trk.slots == NULL) FAIL("out of memory");
    t_trk.cap = cap;
}

static inline void t_track_fini(void) {
    free(t_trk.slots);
    t_trk.slots = NULL;
    t_trk.cap = 0;
    t_trk.used = 0;
}

static inline t_rec *t_track_slot(const tern_mgr *m, tern_conn_id id, int create) {
    size_t mask = t_trk.cap - 1;
    size_t i = (size_t)((id ^ (uint64_t)(uintptr_t)m) * 0x9E3779B97F4A7C15ull) & mask;
    for (;;) {
        t_rec *r = &t_trk.slots[i];
        if (r->id == id && r->mgr == m) return r;
        if (r->id == 0) {
            if (!create) return NULL;
            if ((t_trk.used + 1) * 2 > t_trk.cap)
                FAIL("event tracker full (%zu connections): raise t_track_init", t_trk.used);
            t_trk.used++;
            r->id = id;
            r->mgr = m;
            return r;
        }
        i = (i + 1) & mask;
    }
}

/* Record one event and check the contract's sequencing rules. Returns a copy of the
 * connection's record after the event. Call it first thing in every handler. */
static inline t_rec t_track(tern_conn *c, int ev, void *ev_data) {
    if (!t_in_poll && !t_in_free)
        FAIL("event %s delivered outside tern_mgr_poll/tern_mgr_free", t_ev_name(ev));
    if (c == NULL) FAIL("event %s with a NULL connection", t_ev_name(ev));
    if (ev < TERN_EV_ERROR || ev > TERN_EV_DRAIN) FAIL("unknown event number %d", ev);
    tern_conn_id id = tern_conn_get_id(c);
    if (id == 0) FAIL("event %s on a connection with id 0", t_ev_name(ev));
    const tern_mgr *m = tern_conn_mgr(c);
    if (m == NULL) FAIL("event %s: tern_conn_mgr returned NULL", t_ev_name(ev));
    pthread_mutex_lock(&t_trk.mu);
    if (t_trk.slots == NULL) FAIL("t_track_init not called");
    t_rec *r = t_track_slot(m, id, ev == TERN_EV_OPEN);
    if (ev == TERN_EV_OPEN) {
        if (r->nevents != 0)
            FAIL("second OPEN for connection id %llu (ids must never be reused)",
                 (unsigned long long)id);
        t_trk.opens++;
    } else {
        if (r == NULL)
            FAIL("event %s on connection id %llu before its OPEN", t_ev_name(ev),
                 (unsigned long long)id);
        if (r->is_dead)
            FAIL("event %s on connection id %llu after its CLOSE", t_ev_name(ev),
                 (unsigned long long)id);
        if (r->nevents == 1) r->first_after_open = ev;
    }
    r->nevents++;
    switch (ev) {
    case TERN_EV_ACCEPT:
        if (r->nevents != 2 || r->accepted)
            FAIL("ACCEPT on id %llu is not the event right after OPEN", (unsigned long long)id);
        r->accepted = 1;
        t_trk.accepts++;
        break;
    case TERN_EV_CONNECT:
        if (r->nevents != 2 || r->connected)
            FAIL("CONNECT on id %llu is not the event right after OPEN",
                 (unsigned long long)id);
        r->connected = 1;
        t_trk.connects++;
        break;
    case TERN_EV_ERROR:
        r->errors++;
        t_trk.errors++;
        if (ev_data == NULL) FAIL("ERROR event with a NULL message on id %llu", (unsigned long long)id);
        break;
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        if (s == NULL || (s->len > 0 && s->ptr == NULL))
            FAIL("READ event with a bad tern_str on id %llu", (unsigned long long)id);
        r->reads++;
        break;
    }
    case TERN_EV_WRITE:
        if (ev_data == NULL) FAIL("WRITE event without a size on id %llu", (unsigned long long)id);
        r->written += *(size_t *)ev_data;
        break;
    case TERN_EV_WAKEUP: r->wakeups++; break;
    case TERN_EV_DRAIN: r->drains++; break;
    case TERN_EV_CLOSE:
        r->is_dead = 1;
        r->closed++;
        t_trk.closes++;
        if (t_in_free) t_trk.closes_in_free++;
        break;
    default: break;
    }
    t_rec copy = *r;
    pthread_mutex_unlock(&t_trk.mu);
    return copy;
}

/* The record of connection `id` (all zero if it never got OPEN). With several live
 * managers, ids repeat across them: then use t_track_get_m. */
static inline t_rec t_track_get(tern_conn_id id) {
    pthread_mutex_lock(&t_trk.mu);
    t_rec copy;
    memset(&copy, 0, sizeof copy);
    int found = 0;
    for (size_t i = 0; i < t_trk.cap; i++) {
        if (t_trk.slots[i].id != id) continue;
        if (found++) FAIL("id %llu exists in two managers: use t_track_get_m",
                          (unsigned long long)id);
        copy = t_trk.slots[i];
    }
    pthread_mutex_unlock(&t_trk.mu);
    return copy;
}

static inline t_rec t_track_get_m(const tern_mgr *m, tern_conn_id id) {
    pthread_mutex_lock(&t_trk.mu);
    t_rec *r = t_track_slot(m, id, 0);
    t_rec copy;
    if (r) copy = *r;
    else memset(&copy, 0, sizeof copy);
    pthread_mutex_unlock(&t_trk.mu);
    return copy;
}

/* Every connection that got OPEN got exactly one CLOSE (call after tern_mgr_free). */
static inline void t_track_check_all_closed(void) {
    pthread_mutex_lock(&t_trk.mu);
    for (size_t i = 0; i < t_trk.cap; i++) {
        t_rec *r = &t_trk.slots[i];
        if (r->id == 0) continue;
        if (r->closed != 1)
            FAIL("connection id %llu got %d CLOSE events (expected exactly 1)",
                 (unsigned long long)r->id, r->closed);
    }
    if (t_trk.opens != t_trk.closes)
        FAIL("%ld OPEN events but %ld CLOSE events", t_trk.opens, t_trk.closes);
    pthread_mutex_unlock(&t_trk.mu);
}

/* After a manager is freed (all its connections closed), forget its records: a new
 * manager may reuse its ids and even its address. Counters are kept. */
static inline void t_track_forget(void) {
    t_track_check_all_closed();
    pthread_mutex_lock(&t_trk.mu);
    memset(t_trk.slots, 0, t_trk.cap * sizeof(t_rec));
    t_trk.used = 0;
    pthread_mutex_unlock(&t_trk.mu);
}

static inline long t_track_count(long *field) {
    pthread_mutex_lock(&t_trk.mu);
    long v = *field;
    pthread_mutex_unlock(&t_trk.mu);
    return v;
}

/* "ip:port" of a tern connection's peer */
static inline void t_peer_addr(const tern_conn *c, char *buf, size_t len) {
    int n = tern_conn_peer_addr(c, buf, len);
    if (n < 0) FAIL("tern_conn_peer_addr returned %d (%s)", n, tern_strerror(n));
    if ((size_t)n != strlen(buf)) FAIL("tern_conn_peer_addr returned %d for \"%s\"", n, buf);
}

/* Listen on an ephemeral port of 127.0.0.1; returns the listener and stores the port. */
static inline tern_conn *t_listen(tern_mgr *m, tern_handler fn, void *user, int *port) {
    tern_conn *l = tern_listen(m, "tcp://127.0.0.1:0", fn, user);
    if (l == NULL)
        FAIL("tern_listen(tcp://127.0.0.1:0) failed: %d (%s)", tern_last_error(),
             tern_strerror(tern_last_error()));
    int p = tern_conn_local_port(l);
    if (p <= 0 || p > 65535) FAIL("tern_conn_local_port on a listener returned %d", p);
    *port = p;
    return l;
}

/* ------------------------------------------------------------------------- */
/* One raw HTTP exchange while the loop thread polls                          */

typedef struct {
    int port;
    const char *req;
    char *out;
    size_t cap, len;
    atomic_int done;
} t_xchg;

static inline void *t_xchg_main(void *p) {
    t_xchg *x = p;
    int fd = t_raw_connect(x->port, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    t_write_all(fd, x->req, strlen(x->req));
    for (;;) {
        ssize_t n = recv(fd, x->out + x->len, x->cap - 1 - x->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || (x->len += (size_t)n) == x->cap - 1) break;
    }
    x->out[x->len] = '\0';
    close(fd);
    atomic_store(&x->done, 1);
    return NULL;
}

/* Every "Date:" line of `s` taken out, so HTTP answers compare byte for byte. */
static inline void t_strip_dates(char *s) {
    char *d;
    while ((d = strstr(s, "\r\nDate: ")) != NULL) {
        char *end = strstr(d + 2, "\r\n");
        if (end == NULL) FAIL("a Date line without its CRLF");
        memmove(d, end, strlen(end) + 1);
    }
}

/* Sends `req` on a new connection to 127.0.0.1:port from a helper thread while this
 * thread polls `m`, and returns everything the server sent until it closed the
 * connection (NUL-terminated in `out`, at most cap - 1 bytes), Date lines taken out. */
static inline const char *t_exchange(tern_mgr *m, int port, const char *req, char *out, size_t cap) {
    t_xchg x;
    memset(&x, 0, sizeof x);
    x.port = port;
    x.req = req;
    x.out = out;
    x.cap = cap;
    pthread_t th;
    if (pthread_create(&th, NULL, t_xchg_main, &x) != 0) FAIL("pthread_create");
    T_POLL_UNTIL(m, atomic_load(&x.done), 15000, "the server to answer and close: %s", req);
    pthread_join(th, NULL);
    t_strip_dates(out);
    return out;
}

#endif /* TERN_TEST_COMMON_H */
