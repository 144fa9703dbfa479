/* test_idle_memory: what an idle connection costs.
 *
 * N raw clients connect one after another; each sends one byte, waits for its echo and
 * then stays connected and silent. Every connection has read and written once, so
 * its receive buffer and send queue have been used and given back to the pool. With
 * all N open, the process RSS may have grown by at most 1 KiB per connection (the
 * client sockets are kernel objects and cost no user memory). Afterwards every
 * connection closes, every descriptor is released.
 *
 * The heap the connections hold is checked at every scale against the same budget:
 * glibc's mallinfo2 (bytes in use) normally, and under valgrind, where RSS means
 * nothing and mallinfo2 reports zeros, memcheck's own count of the live heap blocks
 * (VALGRIND_COUNT_LEAKS after a quick leak check: leaked + dubious + reachable). The
 * RSS budget is checked at full scale only.
 */
#include "common.h"

#include <malloc.h>
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define T_HAVE_MEMCHECK 1
#endif

static long N;
static long g_accepts, g_closes, g_echoed;
static int g_port;
static atomic_int g_ready, g_go_close, g_closed;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    switch (ev) {
    case TERN_EV_ACCEPT: g_accepts++; break;
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        CHECK_OK(tern_send(c, s->ptr, s->len));
        CHECK_OK(tern_conn_consume(c, s->len));
        g_echoed += (long)s->len;
        break;
    }
    case TERN_EV_ERROR: FAIL("unexpected ERROR: %s", (const char *)ev_data);
    case TERN_EV_CLOSE:
        if (tern_conn_get_id(c) != 0) g_closes++;
        break;
    default: break;
    }
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) FAIL("fopen(/proc/self/status): %s", strerror(errno));
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    if (kib < 0) FAIL("no VmRSS in /proc/self/status");
    return kib;
}

/* Bytes of heap in use by the whole process. */
static long heap_bytes(void) {
#ifdef T_HAVE_MEMCHECK
    if (RUNNING_ON_VALGRIND) {
        unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;
        VALGRIND_DO_QUICK_LEAK_CHECK;
        VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
        return (long)(leaked + dubious + reachable + suppressed);
    }
#else
    if (t_small) FAIL("valgrind/memcheck.h was missing at build time: no heap count under valgrind");
#endif
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks + mi.hblkhd);
}

static int *g_fds;

static void *clients(void *arg) {
    (void)arg;
    for (long i = 0; i < N; i++) {
        g_fds[i] = t_raw_connect(g_port, 0);
        char b = (char)('a' + i % 26), got;
        t_write_all(g_fds[i], &b, 1);
        t_read_exact(g_fds[i], &got, 1, "echo of one byte");
        CHECK(got == b, "client %ld: echo '%c', want '%c'", i, got, b);
    }
    atomic_store(&g_ready, 1);
    while (!atomic_load(&g_go_close)) t_sleep_ms(5);
    for (long i = 0; i < N; i++) close(g_fds[i]);
    atomic_store(&g_closed, 1);
    return NULL;
}

int main(void) {
    t_begin("test_idle_memory", 120, 300);
    N = t_scale(10000, 300);
    /* Both ends live in this process: 2N descriptors. Where the hard limit is lower,
     * measure fewer connections (the figure is per connection either way). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        (long)rl.rlim_max < 2 * N + 64) {
        N = ((long)rl.rlim_max - 64) / 2;
        CHECK(N >= 1000, "the hard RLIMIT_NOFILE (%ld) leaves room for only %ld connections",
              (long)rl.rlim_max, N);
        printf("hard RLIMIT_NOFILE %ld: measuring %ld connections\n", (long)rl.rlim_max, N);
    }
    t_need_fds(2 * N + 64);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    CHECK_OK(tern_mgr_set(m, TERN_OPT_IDLE_TIMEOUT_MS, 300000));
    t_listen(m, on_event, NULL, &g_port);
    t_poll(m, 10);
    g_fds = calloc((size_t)N, sizeof(int));
    CHECK(g_fds != NULL, "calloc");
    memset(g_fds, 0xff, (size_t)N * sizeof(int)); /* touch it before the baseline */

    pthread_t th;
    pthread_create(&th, NULL, clients, NULL);
    t_poll(m, 10);
    long before = rss_kib();
    long heap_before = heap_bytes();
    T_POLL_UNTIL(m, atomic_load(&g_ready) && g_accepts == N, 60000,
                 "%ld clients echoed (accepted %ld, echoed %ld bytes)", N, g_accepts, g_echoed);
    for (int i = 0; i < 5; i++) t_poll(m, 10);
    long after = rss_kib();
    long heap_after = heap_bytes();
    CHECK(tern_mgr_conn_count(m) == (size_t)N + 1, "%zu connections open, want %ld",
          tern_mgr_conn_count(m), N + 1);
    CHECK(g_echoed == N, "echoed %ld bytes, want %ld", g_echoed, N);
    double per_conn = (double)(after - before) * 1024.0 / (double)N;
    printf("%ld idle connections: RSS %ld -> %ld KiB, %.0f bytes per connection\n", N, before,
           after, per_conn);
    double heap_per_conn = (double)(heap_after - heap_before) / (double)N;
    printf("%ld idle connections: heap %ld -> %ld bytes, %.0f bytes per connection\n", N, heap_before,
           heap_after, heap_per_conn);
    CHECK(heap_per_conn < 1024.0, "an idle connection holds %.0f bytes of heap (budget 1024)",
          heap_per_conn);
    if (!t_small) CHECK(per_conn < 1024.0, "an idle connection costs %.0f bytes (budget 1024)",
                        per_conn);

    atomic_store(&g_go_close, 1);
    T_POLL_UNTIL(m, atomic_load(&g_closed) && g_closes == N, 60000,
                 "%ld CLOSE events after the clients left (have %ld)", N, g_closes);
    pthread_join(th, NULL);
    free(g_fds);
    t_free(m);
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "%llu tern_bytes alive",
          (unsigned long long)(tern_bytes_live() - bytes_base));
    t_pass();
    return 0;
}
