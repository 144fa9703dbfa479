/* reverse_proxy: an HTTP reverse proxy on tern_fetch and its keep-alive pool.
 *
 *   usage: reverse_proxy PORT BACKEND_URL...
 *   try:   reverse_proxy 8080 http://127.0.0.1:8000 http://127.0.0.1:8001
 *
 * Listens on 127.0.0.1:PORT and forwards each request to the backends in turn
 * (round robin), through the pool: at most 32 idle connections per backend, closed
 * after 30 s idle. Request and response bodies stream both ways in bounded memory:
 * when the receiving side has more than HIGH_WATER bytes queued, the sending side's
 * input is paused (tern_conn_pause, tern_fetch_pause) until it drains (a download:
 * below half of it), so a 1 GiB
 * upload or download holds a few hundred KiB. Adds X-Forwarded-For, removes the
 * hop-by-hop fields (Connection and those it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*), and Expect (tern answers 100-continue
 * itself). A backend that fails before the response head went out gets 502 (refused,
 * reset, an answer that is not valid HTTP) or 504 (TERN_PROXY_TIMEOUT_MS passed,
 * default 30000: for the connection, the head, and between body pieces); one that
 * fails later ends the client connection (there is no other honest signal). A
 * client that goes away cancels its backend request. Runs until SIGINT or SIGTERM.
 *
 * One request per client connection is forwarded at a time: the connection's input
 * is paused while its response streams, and pipelined requests wait in the kernel.
 *
 * Built with -DREVERSE_PROXY_NO_MAIN, this file is a library for tests
 * (tests/c/test_proxy_leaks.c): proxy_start, proxy_live.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tern.h"

/* Queued bytes past which the sender is paused. */
#define HIGH_WATER (128 * 1024)
#define MAX_BACKENDS 64
#define MAX_FIELDS 16384

struct proxy;

/* One client connection (id 0: the listener's stand-in, its user pointer). */
struct client {
    struct proxy *p;
    tern_conn_id id;
    struct request *req; /* the request being forwarded, or NULL */
    char ip[64];         /* the client's address, for X-Forwarded-For */
    int failed;          /* the backend failed during the upload: answer this (502/504)
                          * once the request body has been read (and discarded) */
};

struct proxy {
    struct client listener;
    const char *backends[MAX_BACKENDS];
    size_t n_backends, next;
    int64_t timeout_ms;
    size_t live_requests, live_clients; /* for leak checks */
};

/* One forwarded request: lives until its fetch's TERN_FETCH_DONE. */
struct request {
    struct proxy *p;
    struct client *client; /* NULL once the client connection is gone */
    tern_fetch_id fetch;
    int head_sent;     /* the response head went to the client */
    int body_done;     /* the whole request body went to the fetch */
    int upload_paused; /* the client's input is paused for the upload */
    int download_paused; /* the fetch is paused: the client has HIGH_WATER queued */
};

static int hop_by_hop(tern_str name, tern_str connection) {
    static const char *const fixed[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                        "transfer-encoding", "upgrade", "proxy-authenticate",
                                        "proxy-authorization", "expect", "content-length", "date", NULL};
    for (int i = 0; fixed[i]; i++)
        if (strlen(fixed[i]) == name.len && strncasecmp(fixed[i], name.ptr, name.len) == 0) return 1;
    /* Fields the Connection field names are hop-by-hop too. */
    for (size_t i = 0; i < connection.len;) {
        while (i < connection.len && (connection.ptr[i] == ' ' || connection.ptr[i] == ',')) i++;
        size_t start = i;
        while (i < connection.len && connection.ptr[i] != ',' && connection.ptr[i] != ' ') i++;
        if (i - start == name.len && name.len && strncasecmp(connection.ptr + start, name.ptr, name.len) == 0) return 1;
    }
    return 0;
}

/* The end-to-end fields of `h` as header lines into buf; Content-Length is kept when
 * `keep_length` (tern frames by it). Returns the length, or -1 if they do not fit. */
static int end_to_end(const tern_http_msg *h, int keep_length, char *buf, size_t cap) {
    tern_str connection = tern_http_header(h, "Connection");
    size_t n = 0;
    for (size_t i = 0; i < tern_http_header_count(h); i++) {
        tern_str name, value;
        if (tern_http_header_at(h, i, &name, &value) != TERN_OK) continue;
        int is_length = name.len == 14 && strncasecmp(name.ptr, "content-length", 14) == 0;
        if (hop_by_hop(name, connection) && !(is_length && keep_length)) continue;
        int w = snprintf(buf + n, cap - n, "%.*s: %.*s\r\n", (int)name.len, name.ptr, (int)value.len, value.ptr);
        if (w < 0 || (size_t)w >= cap - n) return -1;
        n += (size_t)w;
    }
    return (int)n;
}

static tern_conn *client_conn(tern_mgr *m, struct request *r) {
    return r->client ? tern_conn_lookup(m, r->client->id) : NULL;
}

/* The client connection may read its next request again. */
static void request_over(tern_mgr *m, struct request *r) {
    tern_conn *c = client_conn(m, r);
    if (r->client) r->client->req = NULL;
    if (c) tern_conn_pause(c, 0);
    r->p->live_requests--;
    free(r);
}

static void answer_failure(tern_conn *c, int status) {
    const char *body = status == 504 ? "504 Gateway Timeout\n" : "502 Bad Gateway\n";
    tern_http_reply(c, status, "Content-Type: text/plain\r\n", body, strlen(body));
}

static void fail(tern_mgr *m, struct request *r, int code) {
    tern_conn *c = client_conn(m, r);
    if (c == NULL) return;
    int status = code == TERN_ETIMEDOUT ? 504 : 502;
    if (r->head_sent) {
        /* Mid-response: closing is the only honest signal. */
        tern_close_now(c);
    } else if (!r->body_done) {
        /* Mid-upload: the rest of the body is read and dropped, then the answer. */
        r->client->failed = status;
        if (r->upload_paused) tern_conn_pause(c, 0);
    } else {
        answer_failure(c, status);
    }
}

static void on_fetch(tern_mgr *m, tern_fetch_id id, int ev, int code, const tern_http_msg *resp, tern_str data,
                     void *user) {
    struct request *r = user;
    tern_conn *c = client_conn(m, r);
    (void)data;
    if (ev == TERN_FETCH_HEAD && c) {
        static char fields[MAX_FIELDS];
        int n = end_to_end(resp, 1, fields, sizeof fields);
        if (n < 0) {
            tern_fetch_cancel(m, id); /* DONE (cancelled) follows: 502 */
            return;
        }
        if (tern_http_begin(c, tern_http_status(resp), fields) == TERN_OK) r->head_sent = 1;
    } else if (ev == TERN_FETCH_BODY && c) {
        if (tern_http_write(c, data.ptr, data.len) != TERN_OK) return;
        if (tern_conn_queued(c) > HIGH_WATER && !r->download_paused) {
            r->download_paused = 1;
            tern_fetch_pause(m, id, 1); /* resumed below half of it (TERN_EV_WRITE) */
        }
    } else if (ev == TERN_FETCH_DRAIN && c && r->upload_paused) {
        r->upload_paused = 0;
        tern_conn_pause(c, 0);
    } else if (ev == TERN_FETCH_DONE) {
        if (code == TERN_OK && c) {
            if (tern_http_end(c) != TERN_OK) tern_close_now(c);
        } else if (code != TERN_OK) {
            fail(m, r, code == TERN_ECANCELED ? TERN_EPROTO : code);
        }
        request_over(m, r);
    }
}

/* Starts forwarding the request `h` (its body streamed if `streamed`). */
static void forward(tern_conn *c, struct client *cl, const tern_http_msg *h, int streamed) {
    struct proxy *p = cl->p;
    tern_mgr *m = tern_conn_mgr(c);
    static char fields[MAX_FIELDS];
    int n = end_to_end(h, streamed, fields, sizeof fields - 128);
    if (n < 0) {
        tern_http_reply(c, 431, "Connection: close\r\n", "too many header bytes\n", 22);
        return;
    }
    if (cl->ip[0]) {
        tern_str prior = tern_http_header(h, "X-Forwarded-For");
        snprintf(fields + n, sizeof fields - (size_t)n, "X-Forwarded-For: %.*s%s%s\r\n", (int)prior.len,
                 prior.ptr ? prior.ptr : "", prior.len ? ", " : "", cl->ip);
    }
    char url[2048];
    tern_str uri = tern_http_uri(h), query = tern_http_query(h), method = tern_http_method(h);
    snprintf(url, sizeof url, "%s%.*s%s%.*s", p->backends[p->next++ % p->n_backends], (int)uri.len, uri.ptr,
             query.len ? "?" : "", (int)query.len, query.ptr ? query.ptr : "");
    char meth[32];
    snprintf(meth, sizeof meth, "%.*s", (int)method.len, method.ptr);

    struct request *r = calloc(1, sizeof *r);
    if (r == NULL) {
        tern_close_now(c);
        return;
    }
    r->p = p;
    r->client = cl;
    r->body_done = !streamed;
    int64_t opts[] = {TERN_FETCH_STREAM, 1, TERN_FETCH_STREAM_BODY, streamed, TERN_FETCH_CONNECT_TIMEOUT_MS,
                      p->timeout_ms, TERN_FETCH_RESPONSE_TIMEOUT_MS, p->timeout_ms, 0};
    r->fetch = tern_fetch(m, meth, url, fields, NULL, opts, on_fetch, r);
    if (r->fetch == 0) {
        int code = tern_last_error();
        free(r);
        if (streamed) {
            cl->failed = 502;
        } else {
            /* Nothing started: answer as a failed backend would be answered. */
            answer_failure(c, code == TERN_ETIMEDOUT ? 504 : 502);
        }
        return;
    }
    p->live_requests++;
    cl->req = r;
    /* One request at a time: the next waits in the kernel until this one is over. */
    if (!streamed) tern_conn_pause(c, 1);
}

static void on_client(tern_conn *c, int ev, void *ev_data, void *user) {
    if (ev == TERN_EV_ACCEPT) {
        struct client *cl = calloc(1, sizeof *cl);
        if (cl == NULL) {
            tern_close_now(c);
            return;
        }
        cl->p = ((struct client *)user)->p;
        cl->id = tern_conn_get_id(c);
        cl->p->live_clients++;
        /* The peer's address without its port (and an IPv6 one without brackets). */
        char peer[64];
        if (tern_conn_peer_addr(c, peer, sizeof peer) > 0) {
            char *colon = strrchr(peer, ':');
            if (colon) *colon = 0;
            char *ip = peer[0] == '[' ? peer + 1 : peer;
            size_t l = strlen(ip);
            if (l && ip[l - 1] == ']') ip[l - 1] = 0;
            snprintf(cl->ip, sizeof cl->ip, "%s", ip);
        }
        tern_conn_set_user(c, cl);
        return;
    }
    struct client *cl = user;
    if (cl == NULL || cl->id == 0) return; /* the listener's own events, and OPEN */
    tern_mgr *m = tern_conn_mgr(c);
    if (ev == TERN_EV_HTTP_HEAD) {
        /* A request with a body: forward it as it comes. */
        if (tern_http_stream_body(c) == TERN_OK) forward(c, cl, ev_data, 1);
    } else if (ev == TERN_EV_HTTP_BODY && cl->req) {
        tern_str *piece = ev_data;
        tern_fetch_write(m, cl->req->fetch, piece->ptr, piece->len);
        if (tern_fetch_queued(m, cl->req->fetch) > HIGH_WATER) {
            cl->req->upload_paused = 1;
            tern_conn_pause(c, 1); /* resumed at TERN_FETCH_DRAIN */
        }
    } else if (ev == TERN_EV_HTTP_MSG) {
        if (cl->failed) {
            answer_failure(c, cl->failed);
            cl->failed = 0;
        } else if (cl->req && !cl->req->body_done) {
            cl->req->body_done = 1;
            tern_fetch_end(m, cl->req->fetch);
            tern_conn_pause(c, 1);
        } else if (cl->req == NULL) {
            forward(c, cl, ev_data, 0);
        }
    } else if ((ev == TERN_EV_WRITE || ev == TERN_EV_DRAIN) && cl->req && cl->req->download_paused &&
               tern_conn_queued(c) < HIGH_WATER / 2) {
        cl->req->download_paused = 0;
        tern_fetch_pause(m, cl->req->fetch, 0);
    } else if (ev == TERN_EV_CLOSE) {
        if (cl->req) {
            cl->req->client = NULL;
            tern_fetch_cancel(m, cl->req->fetch);
        }
        cl->p->live_clients--;
        free(cl);
    }
}

/* Sets up the proxy on `m`: listens on 127.0.0.1:port; returns the listener. */
tern_conn *proxy_start(tern_mgr *m, struct proxy *p, int port) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tern_mgr_set(m, TERN_OPT_HTTP_HEAD_EVENTS, 1);
    tern_mgr_set(m, TERN_OPT_FETCH_MAX_IDLE_PER_HOST, 32);
    tern_mgr_set(m, TERN_OPT_FETCH_IDLE_TIMEOUT_MS, 30000);
    const char *env = getenv("TERN_PROXY_TIMEOUT_MS");
    p->timeout_ms = env && atoll(env) > 0 ? atoll(env) : 30000;
    /* Accepted connections start with the listener's stand-in and get their own. */
    p->listener.p = p;
    return tern_http_listen(m, url, on_client, &p->listener);
}

#ifndef REVERSE_PROXY_NO_MAIN
static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested++;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc - 2 > MAX_BACKENDS || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s PORT BACKEND_URL...\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    static struct proxy p;
    for (int i = 2; i < argc; i++) p.backends[p.n_backends++] = argv[i];
    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL || proxy_start(mgr, &p, atoi(argv[1])) == NULL) {
        fprintf(stderr, "reverse_proxy: cannot listen on port %s: %s\n", argv[1], tern_strerror(tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    printf("tern reverse proxy on http://127.0.0.1:%s -> %zu backend(s), timeout %lld ms\n", argv[1], p.n_backends,
           (long long)p.timeout_ms);
    fflush(stdout);
    while (!stop_requested) {
        int rc = tern_mgr_poll(mgr, 100);
        if (rc < 0) {
            fprintf(stderr, "tern_mgr_poll: %s\n", tern_strerror(rc));
            break;
        }
    }
    tern_mgr_shutdown(mgr, 5000);
    for (int rc = 0; rc != TERN_ECLOSED && stop_requested < 2;) rc = tern_mgr_poll(mgr, 100);
    tern_mgr_free(mgr);
    return 0;
}
#endif
