/* test_http_serve_prefix: tern_http_serve_prefix serves a directory below a URL
 * prefix (issue 8, item 8), read as raw bytes on 127.0.0.1 through the public header.
 *
 * A temporary directory ROOT holds a.txt, index.html, sub/b.txt and sub/index.html.
 * With the prefix "/static":
 *   - /static/a.txt and /static/sub/b.txt are ROOT/a.txt and ROOT/sub/b.txt (ROOT
 *     does not contain a "static" directory), HEAD too;
 *   - /static/ and /static/sub/ are the directories' index.html; /static and
 *     /static/sub get 301 to the same path with a slash: the Location keeps the
 *     prefix (and the query);
 *   - the prefix ends at a segment boundary: /staticx/a.txt, /stat, /a.txt get 404;
 *     so does a path whose prefix is only percent-encoded (/st%61tic/a.txt);
 *   - a path under the prefix that tries to leave ROOT gets 400 (/static/../a.txt,
 *     /static/%2e%2e/a.txt), as with tern_http_serve_dir;
 *   - a prefix given with a trailing slash ("/static/") is the same prefix; "/" (or
 *     "") is no prefix at all; a prefix not starting with '/' is TERN_EINVAL (and the
 *     request is still unanswered: it is then answered with tern_http_serve_dir).
 */
#include "common.h"

#include <sys/stat.h>

static char g_root[256];
static char g_out[65536];
static const char *g_prefix = "/static";

static void on_http(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    t_track(c, ev, ev_data);
    if (ev != TERN_EV_HTTP_MSG) return;
    CHECK_RC(tern_http_serve_prefix(c, ev_data, "static", g_root), TERN_EINVAL);
    CHECK_RC(tern_http_serve_prefix(c, ev_data, NULL, g_root), TERN_EINVAL);
    CHECK_OK(tern_http_serve_prefix(c, ev_data, g_prefix, g_root));
}

static void put_file(const char *rel, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, rel);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* The status line of an answer, and whether its body is `body` (NULL: skip). */
static void expect(tern_mgr *m, int port, const char *method, const char *path, const char *status, const char *body) {
    char req[512];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method, path);
    const char *got = t_exchange(m, port, req, g_out, sizeof g_out);
    CHECK(strncmp(got, status, strlen(status)) == 0, "%s %s (prefix %s): want %s, got:\n%s", method, path, g_prefix,
          status, got);
    if (body != NULL) {
        const char *b = strstr(got, "\r\n\r\n");
        CHECK(b != NULL && strcmp(b + 4, body) == 0, "%s %s: body:\n%s", method, path, got);
    }
}

static void expect_redirect(tern_mgr *m, int port, const char *path, const char *location) {
    expect(m, port, "GET", path, "HTTP/1.1 301 ", NULL);
    char want[256];
    snprintf(want, sizeof want, "\r\nLocation: %s\r\n", location);
    CHECK(strstr(g_out, want) != NULL, "GET %s: want Location %s in:\n%s", path, location, g_out);
}

int main(void) {
    t_begin("test_http_serve_prefix", 60, 240);
    t_track_init(128);
    int fds_base = t_count_fds();
    uint64_t bytes_base = tern_bytes_live();
    snprintf(g_root, sizeof g_root, "/tmp/tern-prefix-XXXXXX");
    CHECK(mkdtemp(g_root) != NULL, "mkdtemp: %s", strerror(errno));
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", g_root);
    CHECK(mkdir(sub, 0755) == 0, "mkdir: %s", strerror(errno));
    put_file("a.txt", "file a\n");
    put_file("index.html", "root index\n");
    put_file("sub/b.txt", "file b\n");
    put_file("sub/index.html", "sub index\n");

    tern_mgr *m = tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    tern_conn *l = tern_http_listen(m, "http://127.0.0.1:0", on_http, NULL);
    CHECK(l != NULL, "tern_http_listen");
    int port = tern_conn_local_port(l);

    const char *prefixes[] = {"/static", "/static/"};
    for (size_t i = 0; i < 2; i++) {
        g_prefix = prefixes[i];
        expect(m, port, "GET", "/static/a.txt", "HTTP/1.1 200 ", "file a\n");
        expect(m, port, "GET", "/static/sub/b.txt", "HTTP/1.1 200 ", "file b\n");
        expect(m, port, "HEAD", "/static/a.txt", "HTTP/1.1 200 ", "");
        CHECK(strstr(g_out, "\r\nContent-Length: 7\r\n"), "HEAD: %s", g_out);
        expect(m, port, "GET", "/static/", "HTTP/1.1 200 ", "root index\n");
        expect(m, port, "GET", "/static/sub/", "HTTP/1.1 200 ", "sub index\n");
        expect_redirect(m, port, "/static", "/static/");
        expect_redirect(m, port, "/static/sub?x=1", "/static/sub/?x=1");
        expect(m, port, "GET", "/staticx/a.txt", "HTTP/1.1 404 ", NULL);
        expect(m, port, "GET", "/stat", "HTTP/1.1 404 ", NULL);
        expect(m, port, "GET", "/a.txt", "HTTP/1.1 404 ", NULL);
        expect(m, port, "GET", "/st%61tic/a.txt", "HTTP/1.1 404 ", NULL);
        expect(m, port, "GET", "/other/static/a.txt", "HTTP/1.1 404 ", NULL);
        expect(m, port, "GET", "/static/../a.txt", "HTTP/1.1 400 ", NULL);
        expect(m, port, "GET", "/static/%2e%2e/a.txt", "HTTP/1.1 400 ", NULL);
        expect(m, port, "POST", "/static/a.txt", "HTTP/1.1 405 ", NULL);
        expect(m, port, "GET", "/static/missing", "HTTP/1.1 404 ", NULL);
    }
    /* No prefix at all: tern_http_serve_dir. */
    const char *none[] = {"/", ""};
    for (size_t i = 0; i < 2; i++) {
        g_prefix = none[i];
        expect(m, port, "GET", "/a.txt", "HTTP/1.1 200 ", "file a\n");
        expect(m, port, "GET", "/static/a.txt", "HTTP/1.1 404 ", NULL);
        expect_redirect(m, port, "/sub", "/sub/");
    }

    t_free(m);
    t_track_check_all_closed();
    const char *files[] = {"sub/index.html", "sub/b.txt", "index.html", "a.txt", "sub", ""};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", g_root, files[i]);
        CHECK(remove(path) == 0, "remove %s: %s", path, strerror(errno));
    }
    CHECK(t_count_fds() == fds_base, "%d descriptors open, %d before", t_count_fds(), fds_base);
    CHECK(tern_bytes_live() == bytes_base, "tern_bytes still alive");
    t_pass();
    return 0;
}
