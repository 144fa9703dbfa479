/* test_timers_errors: timers, tern_mgr_poll timing, remotes' call/wakeup, error codes,
 * bad input, logging.
 *
 *   - timers: REPEAT ticks at its period and stops when cancelled from inside its own
 *     callback; RUN_NOW fires on the first poll; one-shots fire once, in deadline order;
 *     a cancelled timer never fires; cancelling an unknown or finished id fails;
 *   - tern_mgr_poll(m, 50) with nothing to do returns after 40-200 ms; it returns early
 *     when another thread posts; called from inside a callback it returns TERN_EPROTO;
 *   - tern_remote_call runs on the loop thread with the manager and user pointer;
 *     tern_remote_wakeup delivers TERN_EV_WAKEUP with its bytes, in order (NULL: none);
 *   - error codes: tern_strerror names every code (distinct names), tern_last_error is
 *     per thread; bad options, URLs and NULL handles give TERN_EINVAL, never a crash, and
 *     a refused `take` buffer is still released; consuming more than was received fails;
 *   - a connection to a closed port gets OPEN, ERROR, CLOSE (no CONNECT);
 *   - tern_log_set receives log lines at the level asked, and none after TERN_LOG_NONE.
 */
#include "common.h"

static tern_mgr *g_m;
static pthread_t g_loop_thread;
static pid_t g_loop_tid;

/* ---- logging ------------------------------------------------------------ */

static atomic_int g_log_lines, g_log_bad_level, g_log_max_level;
static int g_log_ud;

static void on_log(int level, const char *msg, void *ud) {
    if (ud != &g_log_ud || msg == NULL || level < TERN_LOG_ERROR || level > TERN_LOG_DEBUG)
        atomic_store(&g_log_bad_level, 1);
    if (level > atomic_load(&g_log_max_level)) atomic_store(&g_log_max_level, level);
    atomic_fetch_add(&g_log_lines, 1);
}

/* ---- timers ------------------------------------------------------------- */

typedef struct {
    uint64_t id;
    int fired;
    double first_ms, last_ms;
    int cancel_at;   /* cancel itself at this tick (0: never) */
    int cancel_rc;
    int order_slot;  /* for the ordering check */
    int poll_rc;     /* tern_mgr_poll from inside the callback */
} timer_ctx;

static int g_order[8], g_norder;

static void on_timer(void *user) {
    timer_ctx *t = user;
    CHECK(pthread_equal(pthread_self(), g_loop_thread), "timer callback off the loop thread");
    CHECK(t_in_poll, "timer callback outside tern_mgr_poll");
    double now = t_now_ms();
    if (t->fired == 0) t->first_ms = now;
    t->last_ms = now;
    t->fired++;
    if (t->order_slot) g_order[g_norder++] = t->order_slot;
    if (t->cancel_at && t->fired == t->cancel_at) t->cancel_rc = tern_timer_cancel(g_m, t->id);
    t->poll_rc = tern_mgr_poll(g_m, 0);
}

static uint64_t add_timer(uint64_t ms, int flags, timer_ctx *t) {
    uint64_t id = tern_timer_add(g_m, ms, flags, on_timer, t);
    CHECK(id != 0, "tern_timer_add(%llu, %d) failed: %s", (unsigned long long)ms, flags,
          tern_strerror(tern_last_error()));
    t->id = id;
    return id;
}

static void poll_for(int ms) {
    double end = t_now_ms() + ms;
    while (t_now_ms() < end) t_poll(g_m, 5);
}

static void test_timers(void) {
    /* REPEAT every 10 ms, cancelled from inside its 5th callback */
    timer_ctx rep = {.cancel_at = 5};
    double t0 = t_now_ms();
    add_timer(10, TERN_TIMER_REPEAT, &rep);
    double end = t0 + 3000 * (t_small ? 4 : 1);
    while (rep.fired < 5 && t_now_ms() < end) t_poll(g_m, 50);
    CHECK(rep.fired == 5, "repeating timer fired %d times", rep.fired);
    CHECK(rep.first_ms - t0 >= 8, "10 ms timer first fired after %.1f ms", rep.first_ms - t0);
    /* tick k is due k periods after tern_timer_add, never sooner */
    CHECK(rep.last_ms - t0 >= 48, "5th tick of a 10 ms timer came %.1f ms after it was added",
          rep.last_ms - t0);
    CHECK_RC(rep.cancel_rc, TERN_OK);
    CHECK_RC(rep.poll_rc, TERN_EPROTO);
    poll_for(100);
    CHECK(rep.fired == 5, "timer cancelled in its own callback fired again (%d)", rep.fired);
    CHECK(tern_timer_cancel(g_m, rep.id) < 0, "second cancel of a timer succeeded");

    /* RUN_NOW | REPEAT: fires on the first poll, then every 500 ms */
    timer_ctx now = {0};
    t0 = t_now_ms();
    add_timer(500, TERN_TIMER_REPEAT | TERN_TIMER_RUN_NOW, &now);
    CHECK(now.fired == 0, "RUN_NOW timer fired inside tern_timer_add");
    t_poll(g_m, 100);
    CHECK(now.fired == 1, "RUN_NOW timer fired %d times on the first poll", now.fired);
    CHECK(now.first_ms - t0 < (t_small ? 300 : 90), "RUN_NOW timer fired after %.1f ms", now.first_ms - t0);
    poll_for(200);
    CHECK(now.fired == 1, "500 ms timer fired again within 200 ms");
    CHECK_OK(tern_timer_cancel(g_m, now.id));

    /* one-shots fire once, in deadline order; a cancelled one never fires */
    timer_ctx a = {.order_slot = 3}, b = {.order_slot = 1}, c = {.order_slot = 2},
              gone = {.order_slot = 9};
    t0 = t_now_ms();
    add_timer(60, 0, &a);
    add_timer(20, 0, &b);
    add_timer(40, 0, &c);
    add_timer(30, 0, &gone);
    CHECK(a.id != b.id && b.id != c.id && a.id != c.id && gone.id != a.id, "timer ids repeat");
    CHECK_OK(tern_timer_cancel(g_m, gone.id));
    end = t0 + 3000 * (t_small ? 4 : 1);
    while (a.fired == 0 && t_now_ms() < end) t_poll(g_m, 100);
    poll_for(150);
    CHECK(a.fired == 1 && b.fired == 1 && c.fired == 1, "one-shots fired %d %d %d times", a.fired,
          b.fired, c.fired);
    CHECK(gone.fired == 0, "a cancelled timer fired");
    CHECK(g_norder == 3 && g_order[0] == 1 && g_order[1] == 2 && g_order[2] == 3,
          "one-shots fired out of deadline order");
    CHECK(b.first_ms - t0 >= 18, "20 ms timer fired after %.1f ms", b.first_ms - t0);
    CHECK(a.first_ms - t0 >= 58, "60 ms timer fired after %.1f ms", a.first_ms - t0);
    CHECK(tern_timer_cancel(g_m, b.id) < 0, "cancel of a finished one-shot succeeded");
    CHECK(tern_timer_cancel(g_m, 0) < 0, "cancel of id 0 succeeded");
    CHECK(tern_timer_cancel(g_m, 0xDEADBEEFull) < 0, "cancel of an unknown id succeeded");
    CHECK(tern_timer_add(g_m, 10, 0, NULL, NULL) == 0, "tern_timer_add with no function");
    CHECK(tern_last_error() == TERN_EINVAL, "last error %d after a bad tern_timer_add",
          tern_last_error());
    CHECK(tern_timer_add(NULL, 10, 0, on_timer, &a) == 0, "tern_timer_add on NULL manager");
    CHECK(tern_timer_cancel(NULL, a.id) < 0, "tern_timer_cancel on NULL manager");
}

/* ---- poll timing and wake-ups ------------------------------------------ */

static tern_remote *g_r;
static atomic_int g_call_count;
static pthread_t g_call_thread_seen;
static tern_mgr *g_call_mgr_seen;
static void *g_call_user_seen;
static double g_call_ms;

static void on_call(tern_mgr *m, void *user) {
    g_call_thread_seen = pthread_self();
    g_call_mgr_seen = m;
    g_call_user_seen = user;
    g_call_ms = t_now_ms();
    CHECK_RC(tern_mgr_poll(m, 0), TERN_EPROTO);
    atomic_fetch_add(&g_call_count, 1);
}

static void *caller_thread(void *arg) {
    tern_remote *r = tern_remote_clone(g_r);
    CHECK(r != NULL, "tern_remote_clone");
    t_wait_asleep(g_loop_tid, 5000, "tern_remote_call"); /* inside the 3 s poll */
    CHECK_OK(tern_remote_call(r, on_call, arg));
    tern_remote_free(r);
    return NULL;
}

static void test_poll_timing(void) {
    for (int i = 0; i < 3; i++) {
        double t0 = t_now_ms();
        t_poll(g_m, 50);
        double took = t_now_ms() - t0;
        CHECK(took >= 40 && took <= (t_small ? 400 : 200),
              "tern_mgr_poll(m, 50) with nothing to do took %.1f ms", took);
    }
    double t0 = t_now_ms();
    t_poll(g_m, 0);
    CHECK(t_now_ms() - t0 < 30, "tern_mgr_poll(m, 0) took %.1f ms", t_now_ms() - t0);

    /* another thread posts a call while we sit in a long poll: it returns early */
    static int marker;
    pthread_t th;
    pthread_create(&th, NULL, caller_thread, &marker);
    t0 = t_now_ms();
    double end = t0 + 5000;
    while (atomic_load(&g_call_count) == 0 && t_now_ms() < end) t_poll(g_m, 3000);
    double took = t_now_ms() - t0;
    pthread_join(th, NULL);
    CHECK(atomic_load(&g_call_count) == 1, "tern_remote_call ran %d times",
          atomic_load(&g_call_count));
    CHECK(took < 1500, "a 3 s poll was not woken by tern_remote_call (took %.0f ms)", took);
    CHECK(pthread_equal(g_call_thread_seen, g_loop_thread), "tern_remote_call ran off the loop "
                                                            "thread");
    CHECK(g_call_mgr_seen == g_m && g_call_user_seen == &marker,
          "tern_remote_call's function got the wrong manager or user pointer");
}

/* ---- connections: wakeups, closed port, consume, EPROTO ----------------- */

enum { K_SERVER = 1, K_REFUSED };
typedef struct {
    int kind;
} kind_ctx;

static tern_conn_id g_acc;
static char g_wake[8][16];
static size_t g_wake_len[8];
static int g_nwake;
static int g_open_poll_rc = 1;
static int g_consume_rc = 1;
static int g_reads;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    t_rec rec = t_track(c, ev, ev_data);
    kind_ctx *k = user;
    CHECK(pthread_equal(pthread_self(), g_loop_thread), "event off the loop thread");
    if (k->kind == K_REFUSED) {
        CHECK(ev == TERN_EV_OPEN || ev == TERN_EV_ERROR || ev == TERN_EV_CLOSE,
              "connection to a closed port got %s", t_ev_name(ev));
        if (ev == TERN_EV_CLOSE) CHECK(rec.errors == 1, "closed-port CLOSE without ERROR");
        return;
    }
    switch (ev) {
    case TERN_EV_OPEN:
        if (g_open_poll_rc == 1) g_open_poll_rc = tern_mgr_poll(g_m, 0);
        break;
    case TERN_EV_ACCEPT: g_acc = rec.id; break;
    case TERN_EV_WAKEUP: {
        tern_str *s = ev_data;
        CHECK(s != NULL, "WAKEUP without a tern_str");
        CHECK(g_nwake < 8 && s->len < 16, "too many or too long wakeups");
        if (s->len) memcpy(g_wake[g_nwake], s->ptr, s->len);
        g_wake_len[g_nwake++] = s->len;
        break;
    }
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        g_reads++;
        if (g_reads == 1) {
            CHECK(s->len == 4 && memcmp(s->ptr, "ping", 4) == 0, "first READ: %zu bytes",
                  s->len);
            break; /* consume nothing: the same bytes must come again */
        }
        /* the unconsumed "ping" is offered again, followed by the new "pong" */
        CHECK(s->len == 8 && memcmp(s->ptr, "pingpong", 8) == 0,
              "after consuming nothing READ offers %zu bytes \"%.*s\"", s->len, (int)s->len,
              s->ptr);
        /* consuming more than was received is a bad argument, and consumes nothing */
        g_consume_rc = tern_conn_consume(c, s->len + 1);
        CHECK(g_consume_rc == TERN_EINVAL,
              "tern_conn_consume(%zu) with %zu bytes received returned %d (%s), want TERN_EINVAL",
              s->len + 1, s->len, g_consume_rc, tern_strerror(g_consume_rc));
        CHECK_OK(tern_conn_consume(c, 4));
        CHECK_OK(tern_conn_consume(c, 4));
        break;
    }
    case TERN_EV_ERROR: FAIL("server ERROR: %s", (const char *)ev_data);
    default: break;
    }
}

static void *waker_thread(void *arg) {
    (void)arg;
    tern_remote *r = tern_remote_clone(g_r);
    CHECK_OK(tern_remote_wakeup(r, g_acc, tern_bytes_copy("wake 1", 6)));
    CHECK_OK(tern_remote_wakeup(r, g_acc, tern_bytes_copy("wake 2", 6)));
    CHECK_OK(tern_remote_wakeup(r, g_acc, NULL));
    CHECK_OK(tern_remote_wakeup(r, g_acc, tern_bytes_copy("wake 3", 6)));
    tern_remote_free(r);
    return NULL;
}

static void test_connections(void) {
    static kind_ctx srv = {K_SERVER}, refused = {K_REFUSED};
    int port;
    t_listen(g_m, on_event, &srv, &port);
    t_poll(g_m, 10);
    CHECK_RC(g_open_poll_rc, TERN_EPROTO);
    CHECK(tern_conn_lookup(g_m, 0) == NULL && tern_conn_lookup(g_m, 1ull << 50) == NULL,
          "tern_conn_lookup finds ids that do not exist");

    int fd = t_raw_connect(port, 0);
    t_write_all(fd, "ping", 4);
    T_POLL_UNTIL(g_m, g_acc != 0 && g_reads == 1, 5000, "first READ");
    t_write_all(fd, "pong", 4);
    T_POLL_UNTIL(g_m, g_reads == 2, 5000, "READ offers unconsumed bytes again");

    pthread_t th;
    pthread_create(&th, NULL, waker_thread, NULL);
    T_POLL_UNTIL(g_m, g_nwake == 4, 5000, "4 wakeups (have %d)", g_nwake);
    pthread_join(th, NULL);
    CHECK(g_wake_len[0] == 6 && memcmp(g_wake[0], "wake 1", 6) == 0, "first wakeup bytes");
    CHECK(g_wake_len[1] == 6 && memcmp(g_wake[1], "wake 2", 6) == 0, "second wakeup bytes");
    CHECK(g_wake_len[2] == 0, "a wakeup without bytes carried %zu bytes", g_wake_len[2]);
    CHECK(g_wake_len[3] == 6 && memcmp(g_wake[3], "wake 3", 6) == 0, "fourth wakeup bytes");
    close(fd);
    T_POLL_UNTIL(g_m, t_track_get(g_acc).closed, 5000, "server sees the client leave");

    /* connecting to a port nobody listens on: OPEN, ERROR, CLOSE */
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", t_closed_port());
    tern_conn *c = tern_connect(g_m, url, on_event, &refused);
    CHECK(c != NULL, "tern_connect to a closed port must fail later, not at once (%s)",
          tern_strerror(tern_last_error()));
    tern_conn_id id = tern_conn_get_id(c);
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "closed-port connection gets CLOSE");
    t_rec r = t_track_get(id);
    CHECK(r.errors == 1 && r.connected == 0 && r.first_after_open == TERN_EV_ERROR,
          "closed port: errors %d, connected %d, event after OPEN %s", r.errors, r.connected,
          t_ev_name(r.first_after_open));
}

/* ---- error codes and bad input ------------------------------------------ */

static atomic_int g_thread_err = -100;
static void *err_thread(void *arg) {
    (void)arg;
    atomic_store(&g_thread_err, tern_last_error());
    return NULL;
}

static t_free_counter g_refused_fc;

static void test_errors(void) {
    const int codes[] = {TERN_OK,     TERN_EINVAL, TERN_ECLOSED,   TERN_EFULL,   TERN_EPROTO,
                         TERN_EIO,    TERN_ENOMEM, TERN_EINTERNAL, TERN_ETIMEDOUT};
    const int want[] = {0, -1, -2, -3, -4, -5, -6, -7, -8};
    const int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        CHECK(codes[i] == want[i], "error code %d has value %d", want[i], codes[i]);
        const char *s = tern_strerror(codes[i]);
        CHECK(s != NULL && s[0] != '\0', "tern_strerror(%d) is empty", codes[i]);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(s, tern_strerror(codes[j])) != 0, "tern_strerror(%d) == tern_strerror(%d)",
                  codes[i], codes[j]);
    }
    CHECK(tern_strerror(-9999) != NULL && tern_strerror(12345) != NULL,
          "tern_strerror of an unknown code is NULL");

    /* options */
    CHECK_RC(tern_mgr_set(g_m, 9999, 1), TERN_EINVAL);
    CHECK_RC(tern_mgr_set(g_m, 0, 1), TERN_EINVAL);
    CHECK_RC(tern_mgr_set(g_m, -1, 1), TERN_EINVAL);
    CHECK_RC(tern_mgr_set(NULL, TERN_OPT_MAX_CONNS, 10), TERN_EINVAL);
    CHECK_RC(tern_mgr_set(g_m, TERN_OPT_MAX_SEND_QUEUE, -1), TERN_EINVAL);
    const int opts[] = {TERN_OPT_IDLE_TIMEOUT_MS,  TERN_OPT_HEADER_TIMEOUT_MS,
                        TERN_OPT_MAX_HEADER_BYTES, TERN_OPT_MAX_BODY_BYTES,
                        TERN_OPT_MAX_CONNS,        TERN_OPT_MAX_SEND_QUEUE,
                        TERN_OPT_DEFER_TIMEOUT_MS, TERN_OPT_MAX_WS_MESSAGE,
                        TERN_OPT_CONNECT_TIMEOUT_MS, TERN_OPT_MAX_RECV_BUFFER};
    const int64_t vals[] = {60000, 10000, 16384, 1 << 20, 1000, 16 << 20, 30000, 1 << 20, 5000,
                            1 << 20};
    for (int i = 0; i < (int)(sizeof opts / sizeof opts[0]); i++) {
        int rc = tern_mgr_set(g_m, opts[i], vals[i]);
        CHECK(rc == TERN_OK, "tern_mgr_set(option %d, %lld) = %d (%s)", opts[i],
              (long long)vals[i], rc, tern_strerror(rc));
    }
    CHECK_OK(tern_mgr_set(g_m, TERN_OPT_MAX_POSTED, 1000)); /* before any remote */

    /* bad URLs: NULL and TERN_EINVAL */
    const char *bad[] = {"nonsense", "", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:-1",
                         "tcp://127.0.0.1:port", "tcp://:80x", "unknownscheme://127.0.0.1:80"};
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        static kind_ctx dummy = {K_SERVER};
        CHECK(tern_listen(g_m, bad[i], on_event, &dummy) == NULL,
              "tern_listen(\"%s\") did not fail", bad[i]);
        CHECK(tern_last_error() == TERN_EINVAL, "tern_listen(\"%s\"): last error %d, want EINVAL",
              bad[i], tern_last_error());
        CHECK(tern_connect(g_m, bad[i], on_event, &dummy) == NULL,
              "tern_connect(\"%s\") did not fail", bad[i]);
        CHECK(tern_last_error() == TERN_EINVAL,
              "tern_connect(\"%s\"): last error %d, want EINVAL", bad[i], tern_last_error());
    }
    CHECK(tern_listen(g_m, NULL, on_event, NULL) == NULL && tern_last_error() == TERN_EINVAL,
          "tern_listen(NULL url)");
    CHECK(tern_listen(NULL, "tcp://127.0.0.1:0", on_event, NULL) == NULL &&
              tern_last_error() == TERN_EINVAL,
          "tern_listen(NULL manager)");
    /* the last error is per thread */
    pthread_t th;
    pthread_create(&th, NULL, err_thread, NULL);
    pthread_join(th, NULL);
    CHECK(atomic_load(&g_thread_err) == TERN_OK,
          "a fresh thread sees tern_last_error() = %d (must be per thread)",
          atomic_load(&g_thread_err));
    CHECK(tern_last_error() == TERN_EINVAL, "main thread's last error changed");

    /* NULL handles never crash; a refused `take` is still released */
    CHECK_RC(tern_send(NULL, "x", 1), TERN_EINVAL);
    CHECK_RC(tern_close(NULL), TERN_EINVAL);
    CHECK_RC(tern_close_now(NULL), TERN_EINVAL);
    CHECK_RC(tern_conn_consume(NULL, 1), TERN_EINVAL);
    CHECK(tern_mgr_poll(NULL, 0) == TERN_EINVAL, "tern_mgr_poll(NULL)");
    static char refused_buf[] = "refused";
    CHECK_RC(tern_send_bytes(NULL, tern_bytes_wrap(refused_buf, 7, t_count_free, &g_refused_fc)),
             TERN_EINVAL);
    CHECK(atomic_load(&g_refused_fc.frees) == 1, "tern_send_bytes(NULL, take) kept the buffer");
    CHECK_RC(tern_remote_send(NULL, 1, tern_bytes_wrap(refused_buf, 7, t_count_free,
                                                       &g_refused_fc)),
             TERN_EINVAL);
    CHECK(atomic_load(&g_refused_fc.frees) == 2, "tern_remote_send(NULL, take) kept the buffer");
    CHECK(tern_conn_lookup(NULL, 1) == NULL, "tern_conn_lookup(NULL)");
    CHECK(tern_bytes_share(NULL) == NULL, "tern_bytes_share(NULL)");
    tern_bytes_release(NULL);
    tern_remote_free(NULL);
    tern_mgr_free(NULL);
    CHECK(tern_mgr_remote(NULL) == NULL && tern_last_error() == TERN_EINVAL,
          "tern_mgr_remote(NULL)");
}

int main(void) {
    t_begin("test_timers_errors", 60, 180);
    t_track_init(64);
    uint64_t bytes_base = tern_bytes_live();
    int fds_base = t_count_fds();
    g_loop_thread = pthread_self();
    g_loop_tid = t_gettid();
    tern_log_set(TERN_LOG_DEBUG, on_log, &g_log_ud);

    g_m = tern_mgr_new();
    CHECK(g_m != NULL, "tern_mgr_new");
    test_errors();
    test_timers();
    g_r = tern_mgr_remote(g_m);
    CHECK(g_r != NULL, "tern_mgr_remote");
    CHECK_RC(tern_mgr_set(g_m, TERN_OPT_MAX_POSTED, 10), TERN_EPROTO);
    test_poll_timing();
    test_connections();

    CHECK(atomic_load(&g_log_lines) > 0, "no log line at TERN_LOG_DEBUG after listen, accept, "
                                         "connect errors and closes");
    CHECK(!atomic_load(&g_log_bad_level), "a log line had a bad level, message or user pointer");
    /* lower levels filter; NONE silences */
    tern_log_set(TERN_LOG_ERROR, on_log, &g_log_ud);
    atomic_store(&g_log_max_level, 0);
    int lines = atomic_load(&g_log_lines);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", t_closed_port());
    static kind_ctx refused = {K_REFUSED};
    tern_conn *c = tern_connect(g_m, url, on_event, &refused);
    CHECK(c != NULL, "tern_connect");
    tern_conn_id id = tern_conn_get_id(c);
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "second closed-port connection closes");
    CHECK(atomic_load(&g_log_max_level) <= TERN_LOG_ERROR,
          "got a level %d line with the level set to TERN_LOG_ERROR",
          atomic_load(&g_log_max_level));
    tern_log_set(TERN_LOG_NONE, NULL, NULL);
    lines = atomic_load(&g_log_lines);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", t_closed_port());
    c = tern_connect(g_m, url, on_event, &refused);
    CHECK(c != NULL, "tern_connect");
    id = tern_conn_get_id(c);
    T_POLL_UNTIL(g_m, t_track_get(id).closed, 5000, "third closed-port connection closes");

    tern_remote_free(g_r);
    t_free(g_m);
    CHECK(atomic_load(&g_log_lines) == lines, "log lines after tern_log_set(TERN_LOG_NONE)");
    t_track_check_all_closed();
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes_live %llu, baseline %llu",
          (unsigned long long)tern_bytes_live(), (unsigned long long)bytes_base);
    CHECK(t_count_fds() == fds_base, "descriptors: %d now, %d before", t_count_fds(), fds_base);
    t_track_fini();
    t_pass();
    return 0;
}
