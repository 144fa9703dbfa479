/* demo: what tern is for, on one page. `make demo` builds and starts it.
 *
 *   usage: demo [--port PORT] [--uploads DIR] [--root DIR]   (or: demo PORT)
 *          PORT 8000 by default, on 127.0.0.1 (0 picks a free one); DIR for uploads:
 *          a new temporary directory by default (make demo uses build/demo_uploads);
 *          --root: the page's files (found by themselves when run from the build tree
 *          or an installed prefix)
 *   open:  http://127.0.0.1:8000/
 *
 * One loop thread (main) and one worker thread:
 *
 *   loop thread                                   worker thread
 *   -----------                                   -------------
 *   GET /, /app.js, ...  tern_http_serve_dir      every second: the counters as JSON,
 *   GET /ws              tern_ws_upgrade,           tern_remote_ws_publish("stats")
 *                        subscribe "stats","chat"   to every browser
 *   a chat message       tern_ws_publish("chat")  GET /api/stats tokens from a queue:
 *   GET /api/stats       tern_http_defer, queue     tern_http_respond(token, JSON)
 *   POST /api/upload     streamed to a file in pieces (TERN_OPT_HTTP_HEAD_EVENTS,
 *                        tern_http_stream_body, TERN_EV_HTTP_BODY), bounded
 *   GET /api/uploads     the list of uploaded files, as JSON
 *   a timer (5 s)        one status line on stdout
 *
 * Ctrl-C (SIGINT) or SIGTERM: tern_mgr_shutdown (the listener closes, requests already
 * read are answered, WebSockets get 1001), poll until TERN_ECLOSED, stop the worker,
 * free everything. A second Ctrl-C stops waiting.
 *
 * The counters are written on the loop thread and read by the worker, so they are
 * atomics (relaxed: each is a count on its own, nothing is ordered by them).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

#define UPLOAD_MAX_BYTES (64LL << 20)   /* one file; larger ones get tern's 413 */
#define UPLOAD_BUDGET (1LL << 30)       /* all files of one run; past it: 507 */
#define UPLOAD_NAME_MAX 96
#define LIST_MAX 200                    /* files listed by /api/uploads */
#define CHAT_MAX 500                    /* bytes of one chat message */
#define STATS_QUEUE 64                  /* /api/stats requests waiting for the worker */
#define STATUS_EVERY_MS 5000

/* ------------------------------------------------------------------------- */
/* Counters (loop thread writes, worker reads)                                */

static struct {
    atomic_int conns, ws_clients;
    atomic_ullong requests, bytes_sent, pushed, uploads, upload_bytes;
    struct timespec start;
} stats;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++;
}

static unsigned long long load(atomic_ullong *v) {
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void add(atomic_ullong *v, unsigned long long n) {
    atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

static double uptime_s(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - stats.start.tv_sec) + (now.tv_nsec - stats.start.tv_nsec) / 1e9;
}

/* The counters as one JSON object; `rps` < 0 leaves it out. */
static int stats_json(char *out, size_t len, const char *type, double rps) {
    int n = snprintf(out, len,
                     "{\"type\":\"%s\",\"connections\":%d,\"websockets\":%d,\"requests\":%llu,"
                     "\"bytes_sent\":%llu,\"pushed\":%llu,\"uploads\":%llu,\"uptime_s\":%.1f",
                     type, atomic_load(&stats.conns), atomic_load(&stats.ws_clients),
                     load(&stats.requests), load(&stats.bytes_sent), load(&stats.pushed),
                     load(&stats.uploads), uptime_s());
    if (n > 0 && (size_t)n < len && rps >= 0) n += snprintf(out + n, len - n, ",\"rps\":%.1f", rps);
    if (n > 0 && (size_t)n < len) n += snprintf(out + n, len - n, "}");
    return n > 0 && (size_t)n < len ? n : -1;
}

/* ------------------------------------------------------------------------- */
/* The worker: a stats tick every second, /api/stats answers in between       */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tern_http_token ring[STATS_QUEUE];
    size_t head, count;
    int stop;
} work = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Takes the next token, waiting at most until `until` (CLOCK_MONOTONIC); 0 if none. */
static int next_token(tern_http_token *t, const struct timespec *until) {
    pthread_mutex_lock(&work.mu);
    while (work.count == 0 && !work.stop &&
           pthread_cond_timedwait(&work.cv, &work.mu, until) != ETIMEDOUT) {
    }
    int got = work.count > 0 && !work.stop;
    if (got) {
        *t = work.ring[work.head];
        work.head = (work.head + 1) % STATS_QUEUE;
        work.count--;
    }
    pthread_mutex_unlock(&work.mu);
    return got;
}

static int worker_stopping(void) {
    pthread_mutex_lock(&work.mu);
    int stop = work.stop;
    pthread_mutex_unlock(&work.mu);
    return stop;
}

/* Answers one deferred GET /api/stats; the body is tern's once handed over. */
static void answer_stats(tern_remote *r, tern_http_token t) {
    char json[512];
    int n = stats_json(json, sizeof json, "stats", -1);
    if (n < 0) return; /* cannot happen with these sizes; tern would answer 503 */
    int rc = tern_http_respond(r, t, 200, "Content-Type: application/json\r\nCache-Control: no-store\r\n",
                               tern_bytes_copy(json, (size_t)n));
    if (rc != TERN_OK && rc != TERN_ECLOSED) fprintf(stderr, "demo: respond: %s\n", tern_strerror(rc));
}

/* Publishes the counters to every browser. Each subscriber gets one frame; the count
 * of subscribers is the one seen now (the fan-out happens on the loop a moment later). */
static void publish_tick(tern_remote *r, unsigned long long *last_requests) {
    unsigned long long requests = load(&stats.requests);
    char json[512];
    int n = stats_json(json, sizeof json, "tick", (double)(requests - *last_requests));
    *last_requests = requests;
    if (n < 0) return;
    int rc = tern_remote_ws_publish(r, "stats", TERN_WS_TEXT, tern_bytes_copy(json, (size_t)n));
    if (rc == TERN_OK) add(&stats.pushed, (unsigned long long)atomic_load(&stats.ws_clients));
}

static void *worker_main(void *arg) {
    tern_remote *r = arg;
    unsigned long long last_requests = 0;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    while (!worker_stopping()) {
        tick.tv_sec += 1;
        tern_http_token t;
        while (next_token(&t, &tick)) answer_stats(r, t);
        if (!worker_stopping()) publish_tick(r, &last_requests);
    }
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Per-connection state: a kind, and for an upload in progress its file       */

static char KIND_HTTP, KIND_WS; /* their addresses mark a connection's user pointer */

typedef struct {
    int fd;                       /* the partial file, -1 once refused or failed */
    char partial[PATH_MAX];
    char name[UPLOAD_NAME_MAX + 1];
    long long bytes;
    int status;                   /* the answer when refused: 400, 507, 500 */
    const char *error;
} upload;

static const char *upload_dir;
static const char *root_dir;

static int is_upload(void *user) {
    return user != NULL && user != &KIND_HTTP && user != &KIND_WS;
}

static void upload_free(upload *u) {
    if (u->fd >= 0) {
        close(u->fd);
        unlink(u->partial); /* the client left before the end: keep nothing */
    }
    free(u);
}

/* ------------------------------------------------------------------------- */
/* Small helpers                                                               */

static int str_is(tern_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* `in` as the inside of a JSON string; returns the length written, -1 if it does not
 * fit. The input is UTF-8 (tern checked the text frame), passed through as is. */
static int json_escape(char *out, size_t cap, const char *in, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        char esc[8];
        int n;
        if (ch == '"' || ch == '\\') n = snprintf(esc, sizeof esc, "\\%c", ch);
        else if (ch < 0x20) n = snprintf(esc, sizeof esc, "\\u%04x", ch);
        else n = snprintf(esc, sizeof esc, "%c", ch);
        if (o + (size_t)n >= cap) return -1;
        memcpy(out + o, esc, (size_t)n);
        o += (size_t)n;
    }
    out[o] = '\0';
    return (int)o;
}

static void reply_json(tern_conn *c, int status, const char *json) {
    tern_http_reply(c, status, "Content-Type: application/json\r\nCache-Control: no-store\r\n", json,
                    strlen(json));
}

/* A file name a browser sent, made safe: letters, digits, '.', '-', '_' kept, others
 * become '_'; no leading dot (no hidden files, no "." or ".."). 0 if nothing is left. */
static int clean_name(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; in[i] != '\0' && o + 1 < cap; i++) {
        char ch = in[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == '_';
        if (o == 0 && ch == '.') continue;
        out[o++] = ok ? ch : '_';
    }
    out[o] = '\0';
    return o > 0;
}

/* ------------------------------------------------------------------------- */
/* Uploads: POST /api/upload?name=FILE, the file as the raw body              */

/* Decides on an upload and opens its partial file; a refused one keeps its status and
 * message for the answer. NULL when out of memory. */
static upload *upload_prepare(tern_conn *c, tern_http_msg *h) {
    upload *u = calloc(1, sizeof *u);
    if (u == NULL) return NULL;
    u->fd = -1;
    char raw[256];
    tern_str len = tern_http_header(h, "Content-Length");
    long long announced = len.ptr ? strtoll(len.ptr, NULL, 10) : 0;
    if (tern_http_var(tern_http_query(h), "name", raw, sizeof raw) <= 0 ||
        !clean_name(raw, u->name, sizeof u->name)) {
        u->status = 400, u->error = "need ?name=FILE";
    } else if ((long long)load(&stats.upload_bytes) + announced > UPLOAD_BUDGET) {
        u->status = 507, u->error = "the demo's upload budget for this run is used up";
    } else {
        snprintf(u->partial, sizeof u->partial, "%s/.partial-%llu", upload_dir,
                 (unsigned long long)tern_conn_get_id(c));
        u->fd = open(u->partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (u->fd < 0) u->status = 500, u->error = strerror(errno);
    }
    return u;
}

/* Inside TERN_EV_HTTP_HEAD: the body is streamed even when the upload is refused (into
 * nothing), so that the browser reads our answer rather than a reset. Out of memory,
 * it is not streamed: tern buffers it within MAX_BODY_BYTES, or answers 413. */
static void upload_begin(tern_conn *c, tern_http_msg *h) {
    upload *u = upload_prepare(c, h);
    if (u == NULL) return;
    tern_conn_set_user(c, u);
    tern_http_stream_body(c);
}

/* One piece of the body (at most one receive buffer): straight to the file. */
static void upload_piece(upload *u, tern_str piece) {
    size_t done = 0;
    while (u->fd >= 0 && done < piece.len) {
        ssize_t n = write(u->fd, piece.ptr + done, piece.len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            u->status = 500, u->error = strerror(errno);
            close(u->fd);
            unlink(u->partial);
            u->fd = -1;
            break;
        }
        done += (size_t)n;
    }
    u->bytes += (long long)piece.len;
}

/* Gives the partial file its name, with "-2", "-3", ... before the extension if
 * taken. link() fails instead of replacing an existing file. */
static int upload_publish(upload *u, char *final_name, size_t cap) {
    const char *dot = strrchr(u->name, '.');
    int stem = dot && dot != u->name ? (int)(dot - u->name) : (int)strlen(u->name);
    for (int i = 1; i < 1000; i++) {
        if (i == 1) snprintf(final_name, cap, "%s", u->name);
        else snprintf(final_name, cap, "%.*s-%d%s", stem, u->name, i, u->name + stem);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", upload_dir, final_name);
        if (link(u->partial, path) == 0) {
            unlink(u->partial);
            return 0;
        }
        if (errno != EEXIST) break;
    }
    return -1;
}

/* TERN_EV_HTTP_MSG after the last piece: answer, and the connection is plain HTTP
 * again (keep-alive: the next request may be another upload). */
static void upload_end(tern_conn *c, upload *u) {
    char json[512], name[UPLOAD_NAME_MAX + 16], esc[2 * sizeof name];
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
        if (upload_publish(u, name, sizeof name) != 0) {
            unlink(u->partial);
            u->status = 500, u->error = "cannot name the file";
        }
    }
    if (u->status != 0) {
        snprintf(json, sizeof json, "{\"error\":\"%s\"}", u->error);
        reply_json(c, u->status, json);
    } else {
        add(&stats.uploads, 1);
        add(&stats.upload_bytes, (unsigned long long)u->bytes);
        json_escape(esc, sizeof esc, name, strlen(name));
        snprintf(json, sizeof json, "{\"name\":\"%s\",\"size\":%lld}", esc, u->bytes);
        reply_json(c, 201, json);
    }
    free(u);
    tern_conn_set_user(c, &KIND_HTTP);
}

/* GET /api/uploads: [{"name":..,"size":..,"mtime":..}, ...] (the page sorts them). */
static void list_uploads(tern_conn *c) {
    enum { ENTRY_MAX = 2 * 256 + 96 }; /* an escaped name of 255 bytes and its numbers */
    size_t cap = 16 + LIST_MAX * ENTRY_MAX, o = 0;
    char *out = malloc(cap);
    DIR *d = out ? opendir(upload_dir) : NULL;
    if (d == NULL) {
        free(out);
        reply_json(c, 500, "{\"error\":\"cannot read the upload directory\"}");
        return;
    }
    out[o++] = '[';
    struct dirent *e;
    for (int listed = 0; (e = readdir(d)) != NULL && listed < LIST_MAX;) {
        struct stat st;
        char path[PATH_MAX], esc[2 * 256 + 1];
        if (e->d_name[0] == '.') continue; /* partial files, . and .. */
        snprintf(path, sizeof path, "%s/%s", upload_dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (json_escape(esc, sizeof esc, e->d_name, strlen(e->d_name)) < 0) continue;
        o += (size_t)snprintf(out + o, cap - o, "%s{\"name\":\"%s\",\"size\":%lld,\"mtime\":%lld}",
                              listed++ ? "," : "", esc, (long long)st.st_size, (long long)st.st_mtime);
    }
    closedir(d);
    out[o++] = ']';
    tern_http_reply(c, 200, "Content-Type: application/json\r\nCache-Control: no-store\r\n", out, o);
    free(out);
}

/* ------------------------------------------------------------------------- */
/* WebSocket: the live panel and the chat                                     */

static void ws_open(tern_conn *c) {
    tern_conn_set_user(c, &KIND_WS);
    atomic_fetch_add(&stats.ws_clients, 1);
    tern_ws_subscribe(c, "stats");
    tern_ws_subscribe(c, "chat");
    char hello[64];
    int n = snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"id\":%llu}",
                     (unsigned long long)tern_conn_get_id(c));
    tern_ws_send(c, TERN_WS_TEXT, hello, (size_t)n);
    add(&stats.pushed, 1);
}

/* A chat line goes to every browser (its sender too: that is how it knows it was
 * delivered), as one buffer queued by reference on each. */
static void ws_chat(tern_conn *c, const tern_ws_msg *m) {
    if (m->op != TERN_WS_TEXT || m->data.len == 0) return;
    if (m->data.len > CHAT_MAX) {
        tern_ws_close(c, 1009, "chat messages are at most 500 bytes");
        return;
    }
    char esc[6 * CHAT_MAX + 1], json[sizeof esc + 96];
    if (json_escape(esc, sizeof esc, m->data.ptr, m->data.len) < 0) return;
    int n = snprintf(json, sizeof json, "{\"type\":\"chat\",\"from\":%llu,\"text\":\"%s\"}",
                     (unsigned long long)tern_conn_get_id(c), esc);
    int sent = tern_ws_publish(tern_conn_mgr(c), "chat", TERN_WS_TEXT, tern_bytes_copy(json, (size_t)n));
    if (sent > 0) add(&stats.pushed, (unsigned long long)sent);
}

/* ------------------------------------------------------------------------- */
/* HTTP routes                                                                 */

/* GET /api/stats: deferred to the worker, which answers through its remote. */
static void defer_stats(tern_conn *c, tern_http_msg *h) {
    pthread_mutex_lock(&work.mu);
    int full = work.count == STATS_QUEUE;
    pthread_mutex_unlock(&work.mu);
    if (full) {
        /* Answered here: a deferred request can no longer get an inline answer. */
        reply_json(c, 503, "{\"error\":\"busy\"}");
        return;
    }
    tern_http_token t = tern_http_defer(c, h);
    if (t.conn == 0) {
        reply_json(c, 500, "{\"error\":\"cannot defer\"}");
        return;
    }
    pthread_mutex_lock(&work.mu);
    work.ring[(work.head + work.count) % STATS_QUEUE] = t;
    work.count++;
    pthread_cond_signal(&work.cv);
    pthread_mutex_unlock(&work.mu);
}

static void route(tern_conn *c, tern_http_msg *h) {
    tern_str uri = tern_http_uri(h), method = tern_http_method(h);
    int get = str_is(method, "GET") || str_is(method, "HEAD");
    if (is_upload(tern_conn_user(c))) {
        upload_end(c, tern_conn_user(c));
    } else if (str_is(uri, "/ws")) {
        tern_ws_upgrade(c, h, NULL); /* a bad handshake is answered by tern */
    } else if (str_is(uri, "/api/stats") && get) {
        defer_stats(c, h);
    } else if (str_is(uri, "/api/uploads") && get) {
        list_uploads(c);
    } else if (str_is(uri, "/api/upload") && str_is(method, "POST")) {
        upload *u = upload_prepare(c, h); /* an empty file: no body, so no HTTP_HEAD */
        if (u) upload_end(c, u);
        else reply_json(c, 500, "{\"error\":\"out of memory\"}");
    } else if (str_is(uri, "/api/upload")) {
        reply_json(c, 405, "{\"error\":\"POST the file as the body, with ?name=FILE\"}");
    } else if (tern_http_match(uri, "/api/**")) {
        reply_json(c, 404, "{\"error\":\"no such API\"}");
    } else {
        tern_http_serve_dir(c, h, root_dir); /* 405 for other methods, 404, ... */
    }
}

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    switch (ev) {
    case TERN_EV_ACCEPT:
        atomic_fetch_add(&stats.conns, 1);
        tern_conn_set_user(c, &KIND_HTTP);
        break;
    case TERN_EV_HTTP_HEAD:
        if (str_is(tern_http_uri(ev_data), "/api/upload") && str_is(tern_http_method(ev_data), "POST"))
            upload_begin(c, ev_data);
        break;
    case TERN_EV_HTTP_BODY:
        if (is_upload(user)) upload_piece(user, *(tern_str *)ev_data);
        break;
    case TERN_EV_HTTP_MSG:
        add(&stats.requests, 1);
        route(c, ev_data);
        break;
    case TERN_EV_WS_OPEN:
        ws_open(c);
        break;
    case TERN_EV_WS_MSG:
        ws_chat(c, ev_data);
        break;
    case TERN_EV_WRITE:
        add(&stats.bytes_sent, *(size_t *)ev_data);
        break;
    case TERN_EV_CLOSE:
        if (user == NULL) break; /* the listener */
        atomic_fetch_sub(&stats.conns, 1);
        if (user == &KIND_WS) atomic_fetch_sub(&stats.ws_clients, 1);
        if (is_upload(user)) upload_free(user);
        break;
    }
}

/* ------------------------------------------------------------------------- */
/* Start, status line, stop                                                    */

static void status_line(void *user) {
    (void)user;
    double up = uptime_s();
    printf("demo: %d connections (%d WebSocket), %llu requests, %.1f MB sent, %llu messages pushed, "
           "%llu uploads, up %dm%02ds\n",
           atomic_load(&stats.conns), atomic_load(&stats.ws_clients), load(&stats.requests),
           load(&stats.bytes_sent) / 1e6, load(&stats.pushed), load(&stats.uploads), (int)up / 60,
           (int)up % 60);
    fflush(stdout);
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--port PORT] [--uploads DIR] [--root DIR]   (or: %s PORT)\n", argv0, argv0);
    exit(2);
}

/* The page's files: --root, else beside an installed binary (PREFIX/share/tern/demo_root),
 * else the source tree this binary was built from. */
static const char *find_root(const char *given) {
    static char buf[PATH_MAX];
    if (given) return given;
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 64);
    if (n > 0) {
        buf[n] = '\0';
        char *slash = strrchr(buf, '/');
        if (slash) {
            strcpy(slash, "/../share/tern/demo_root");
            char index[PATH_MAX + 16];
            snprintf(index, sizeof index, "%s/index.html", buf);
            if (access(index, R_OK) == 0) return buf;
        }
    }
#ifdef TERN_DEMO_ROOT
    return TERN_DEMO_ROOT;
#else
    return "demo_root";
#endif
}

/* --uploads DIR (made if missing), else a fresh temporary directory. */
static const char *make_upload_dir(const char *given) {
    static char tmp[PATH_MAX];
    if (given) {
        if (mkdir(given, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "demo: cannot make %s: %s\n", given, strerror(errno));
            exit(1);
        }
        return given;
    }
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/tern-demo-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmp) == NULL) {
        fprintf(stderr, "demo: cannot make a temporary directory: %s\n", strerror(errno));
        exit(1);
    }
    return tmp;
}

static void set_options(tern_mgr *m) {
    tern_mgr_set(m, TERN_OPT_HTTP_HEAD_EVENTS, 1);                  /* uploads come in pieces */
    tern_mgr_set(m, TERN_OPT_MAX_STREAM_BODY_BYTES, UPLOAD_MAX_BYTES); /* larger: 413 */
    tern_mgr_set(m, TERN_OPT_MAX_BODY_BYTES, 64 << 10);            /* bodies held whole */
    tern_mgr_set(m, TERN_OPT_MAX_WS_MESSAGE, 4096);                 /* chat: past it, 1009 */
    tern_mgr_set(m, TERN_OPT_DEFER_TIMEOUT_MS, 5000);               /* a stuck worker: 503 */
}

static tern_conn *listen_or_explain(tern_mgr *m, int port) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tern_conn *l = tern_http_listen(m, url, on_event, NULL);
    if (l == NULL && tern_last_error() == TERN_EADDRINUSE) {
        fprintf(stderr,
                "demo: port %d is taken: another program listens on 127.0.0.1:%d.\n"
                "demo: pick another port: make demo PORT=%d, or demo --port %d (0 picks a free one)\n",
                port, port, port + 1, port + 1);
    } else if (l == NULL) {
        fprintf(stderr, "demo: cannot listen on %s: %s\n", url, tern_strerror(tern_last_error()));
    }
    return l;
}

static void stop_gracefully(tern_mgr *m) {
    printf("demo: stopping (requests in flight are answered; Ctrl-C again stops at once)\n");
    fflush(stdout);
    tern_mgr_shutdown(m, 3000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) {
        rc = tern_mgr_poll(m, 100);
        if (rc < 0 && rc != TERN_ECLOSED) break;
    }
}

static void parse_args(int argc, char **argv, int *port, const char **uploads, const char **root) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--port") && has_value) *port = atoi(argv[++i]);
        else if (!strcmp(a, "--uploads") && has_value) *uploads = argv[++i];
        else if (!strcmp(a, "--root") && has_value) *root = argv[++i];
        else if (a[0] >= '0' && a[0] <= '9') *port = atoi(a);
        else usage(argv[0]);
    }
    if (*port < 0 || *port > 65535) usage(argv[0]);
}

int main(int argc, char **argv) {
    int port = 8000;
    const char *uploads = NULL, *root = NULL;
    parse_args(argc, argv, &port, &uploads, &root);
    root_dir = find_root(root);
    upload_dir = make_upload_dir(uploads);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    clock_gettime(CLOCK_MONOTONIC, &stats.start);

    tern_mgr *m = tern_mgr_new();
    if (m == NULL) return 1;
    set_options(m);
    tern_conn *listener = listen_or_explain(m, port);
    if (listener == NULL) {
        tern_mgr_free(m);
        return 1;
    }
    port = tern_conn_local_port(listener);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the worker's deadlines */
    pthread_cond_init(&work.cv, &ca);
    tern_remote *remote = tern_mgr_remote(m);
    pthread_t worker;
    if (remote == NULL || pthread_create(&worker, NULL, worker_main, remote) != 0) {
        fprintf(stderr, "demo: cannot start the worker thread\n");
        tern_mgr_free(m);
        return 1;
    }
    tern_timer_add(m, STATUS_EVERY_MS, TERN_TIMER_REPEAT, status_line, NULL);

    printf("tern %s demo: http://127.0.0.1:%d/  (open it in a browser; Ctrl-C stops it)\n", tern_version(), port);
    printf("demo: page from %s, uploads to %s\n", root_dir, upload_dir);
    fflush(stdout);
    while (!stop_requested) {
        if (tern_mgr_poll(m, 200) < 0) break;
    }
    stop_gracefully(m);

    pthread_mutex_lock(&work.mu);
    work.stop = 1;
    pthread_cond_broadcast(&work.cv);
    pthread_mutex_unlock(&work.mu);
    pthread_join(worker, NULL);
    tern_mgr_free(m);
    tern_remote_free(remote);
    if (uploads == NULL) rmdir(upload_dir); /* our temporary directory, if nothing was uploaded */
    status_line(NULL);
    printf("demo: stopped\n");
    return 0;
}
