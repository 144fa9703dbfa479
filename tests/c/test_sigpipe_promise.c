/* test_sigpipe_promise: README's SIGPIPE promise, every part of it, with sendfile.
 *
 * "tern never raises SIGPIPE in a process that left it at its default ... around the
 * sendfile calls of one flush the loop thread blocks SIGPIPE for itself only (the
 * process-wide disposition is never touched), and after an EPIPE takes the SIGPIPE the
 * kernel raised off the thread, unless a SIGPIPE was already pending before (blocked by
 * the program: that one is the program's and is left alone). The thread's mask is then
 * restored."
 *
 * Every connection here fails with EPIPE inside sendfile, by the recipe of
 * sendfile_epipe.h (half-close, then reset, in the middle of a large download), and
 * the test counts them: each must end with ERROR "...Broken pipe..." (at every scale,
 * valgrind included), so the path that raises SIGPIPE is known to have run. In four
 * settings of the program, in this order:
 *   1. SIGPIPE caught by the program's own handler (SA_RESTART, a mask): the handler
 *      never runs (a SIGPIPE tern let through is reported here by name, before part 2
 *      would die of it);
 *   2. SIGPIPE at its default (it kills the process): the process lives;
 *   3. SIGPIPE blocked by the program on the loop thread, none pending: it is still
 *      blocked afterwards (the mask is restored, not cleared) and nothing is pending
 *      (tern took the SIGPIPE its sendfile raised);
 *   4. blocked, and one SIGPIPE pending that the program queued itself with a value
 *      (pthread_sigqueue): it is still pending afterwards, and sigtimedwait returns that
 *      very signal (SI_QUEUE, the value), not the kernel's.
 * In every setting: the process-wide disposition (handler, flags, mask) is the same
 * after tern_mgr_new, after the traffic and after tern_mgr_free as before; the loop
 * thread's whole signal mask is the program's in every WRITE event that follows a
 * flush with sendfile, in a timer callback that runs after such flushes, and after
 * tern_mgr_poll returns. Descriptors and tern_bytes_live are back to their baselines.
 */
#include "common.h"

#include "sendfile_epipe.h"

static char g_root[256];
static tern_mgr *g_m;
static sigset_t g_want_mask;  /* the mask the program runs the loop thread with */
static const char *g_setting; /* for messages */
static long g_epipes, g_other_errors, g_writes_checked, g_timer_checks;
static atomic_long g_handler_runs;

static void mask_must_be_programs(const char *where) {
    sigset_t cur;
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0, "pthread_sigmask: %s", strerror(errno));
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGALRM) continue; /* t_begin's deadline is not part of this */
        int have = sigismember(&cur, s), want = sigismember(&g_want_mask, s);
        CHECK(have == want,
              "%s: %s: signal %d (%s) is %s in the loop thread's mask, the program had it %s "
              "(SigpipeBlock did not restore the mask)",
              g_setting, where, s, strsignal(s), have ? "blocked" : "unblocked",
              want ? "blocked" : "unblocked");
    }
}

static struct sigaction g_disp_before;

static void disposition_must_be_unchanged(const char *when) {
    struct sigaction now;
    CHECK(sigaction(SIGPIPE, NULL, &now) == 0, "sigaction: %s", strerror(errno));
    CHECK(now.sa_handler == g_disp_before.sa_handler,
          "%s: %s: SIGPIPE's process-wide handler changed (%s -> %s)", g_setting, when,
          g_disp_before.sa_handler == SIG_DFL ? "SIG_DFL" : g_disp_before.sa_handler == SIG_IGN ? "SIG_IGN" : "a handler",
          now.sa_handler == SIG_DFL ? "SIG_DFL" : now.sa_handler == SIG_IGN ? "SIG_IGN" : "a handler");
    CHECK(now.sa_flags == g_disp_before.sa_flags, "%s: %s: SIGPIPE's sa_flags changed (%#x -> %#x)",
          g_setting, when, g_disp_before.sa_flags, now.sa_flags);
    for (int s = 1; s < NSIG; s++)
        CHECK(sigismember(&now.sa_mask, s) == sigismember(&g_disp_before.sa_mask, s),
              "%s: %s: SIGPIPE's sa_mask changed at signal %d", g_setting, when, s);
}

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    t_track(c, ev, ev_data);
    (void)user;
    switch (ev) {
    case TERN_EV_HTTP_MSG:
        CHECK_OK(tern_http_serve_dir(c, ev_data, g_root));
        break;
    case TERN_EV_WRITE:
        /* every write of this connection is part of a flush that ran sendfile: the
         * guard is gone by now and the mask must be the program's again */
        mask_must_be_programs("in the WRITE event after a flush with sendfile");
        g_writes_checked++;
        break;
    case TERN_EV_ERROR:
        if (t_is_epipe(ev_data)) g_epipes++;
        else {
            g_other_errors++;
            fprintf(stderr, "%s: ERROR \"%s\" (not EPIPE)\n", g_setting, (const char *)ev_data);
        }
        break;
    default: break;
    }
}

static void on_timer(void *user) {
    (void)user;
    mask_must_be_programs("in a timer callback");
    if (g_writes_checked > 0) g_timer_checks++; /* one that ran after a sendfile flush */
}

/* One client through the recipe; the server connection must end with EPIPE. */
static void one_epipe(int port) {
    long epipes = g_epipes, closes = t_track_count(&t_trk.closes);
    int fd = t_epipe_client_start(port);
    T_POLL_UNTIL(g_m, t_epipe_client_body_arrived(fd, 0), 5000, "%s: body bytes arrive", g_setting);
    mask_must_be_programs("after tern_mgr_poll returned (sendfile ran in it)");
    t_epipe_client_finish(fd);
    T_POLL_UNTIL(g_m, t_track_count(&t_trk.closes) == closes + 1, 5000, "%s: the server connection closes",
                 g_setting);
    mask_must_be_programs("after tern_mgr_poll returned (EPIPE in it)");
    CHECK(g_epipes == epipes + 1,
          "%s: the connection ended without EPIPE (%ld other errors): the sendfile EPIPE path was "
          "not reached",
          g_setting, g_other_errors);
}

static void run_setting(const char *name, long n) {
    g_setting = name;
    g_epipes = g_other_errors = g_writes_checked = g_timer_checks = 0;
    CHECK(sigaction(SIGPIPE, NULL, &g_disp_before) == 0, "sigaction: %s", strerror(errno));
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &g_want_mask) == 0, "pthread_sigmask");
    sigdelset(&g_want_mask, SIGALRM);

    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    disposition_must_be_unchanged("after tern_mgr_new");
    tern_conn *l = tern_http_listen(g_m, "http://127.0.0.1:0", on_http, NULL);
    CHECK(l != NULL, "tern_http_listen: %s", tern_strerror(tern_last_error()));
    int port = tern_conn_local_port(l);
    CHECK(tern_timer_add(g_m, 2, TERN_TIMER_REPEAT, on_timer, NULL) != 0, "tern_timer_add");
    for (long i = 0; i < n; i++) one_epipe(port);
    disposition_must_be_unchanged("after the traffic");
    CHECK(g_epipes == n && g_other_errors == 0, "%s: %ld of %ld connections failed with EPIPE, %ld otherwise",
          name, g_epipes, n, g_other_errors);
    CHECK(g_writes_checked >= n, "%s: only %ld WRITE events after sendfile flushes checked", name,
          g_writes_checked);
    CHECK(g_timer_checks > 0, "%s: the timer never ran after a sendfile flush", name);
    t_free(g_m);
    disposition_must_be_unchanged("after tern_mgr_free");
    mask_must_be_programs("after tern_mgr_free");
    t_track_forget();
    printf("%s: %ld connections failed with EPIPE in sendfile; mask checked in %ld WRITE events and "
           "%ld timer callbacks: ok\n",
           name, n, g_writes_checked, g_timer_checks);
}

static void on_sigpipe(int sig) {
    (void)sig;
    atomic_fetch_add(&g_handler_runs, 1);
}

static int sigpipe_pending(void) {
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, SIGPIPE);
}

static void block_sigpipe(int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    CHECK(pthread_sigmask(how, &s, NULL) == 0, "pthread_sigmask");
}

int main(void) {
    t_begin("test_sigpipe_promise", 60, 300);
    long n = t_scale(8, 3);
    t_track_init(256);
    t_epipe_dir_make(g_root, sizeof g_root, t_epipe_file_size());
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();

    /* 1. the program's own handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    CHECK(sigaction(SIGPIPE, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
    run_setting("1. program's SIGPIPE handler", n);
    CHECK(atomic_load(&g_handler_runs) == 0,
          "the program's SIGPIPE handler ran %ld times: tern let sendfile's SIGPIPE through",
          atomic_load(&g_handler_runs));

    /* 2. the default, which kills */
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR, "signal");
    run_setting("2. SIGPIPE at SIG_DFL", n);

    /* 3. blocked by the program, nothing pending */
    block_sigpipe(SIG_BLOCK);
    CHECK(!sigpipe_pending(), "SIGPIPE pending before part 3");
    run_setting("3. SIGPIPE blocked by the program", n);
    CHECK(!sigpipe_pending(),
          "3.: SIGPIPE is pending after the EPIPEs: tern left the SIGPIPE its sendfile raised");

    /* 4. blocked, and the program's own SIGPIPE pending */
    union sigval v = {.sival_int = 4242};
    CHECK(pthread_sigqueue(pthread_self(), SIGPIPE, v) == 0, "pthread_sigqueue: %s", strerror(errno));
    CHECK(sigpipe_pending(), "the program's SIGPIPE is not pending");
    run_setting("4. the program's SIGPIPE pending", n);
    CHECK(sigpipe_pending(), "4.: the program's pending SIGPIPE was taken by tern");
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGPIPE);
    struct timespec zero = {0, 0};
    siginfo_t si;
    CHECK(sigtimedwait(&only, &si, &zero) == SIGPIPE, "sigtimedwait: %s", strerror(errno));
    CHECK(si.si_code == SI_QUEUE && si.si_value.sival_int == 4242,
          "4.: the pending SIGPIPE is not the program's (si_code %d, value %d)", si.si_code,
          si.si_value.sival_int);
    CHECK(!sigpipe_pending(), "4.: a second SIGPIPE is pending");
    block_sigpipe(SIG_UNBLOCK);

    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_epipe_dir_remove(g_root);
    t_track_fini();
    t_pass();
    return 0;
}
