/* http_client: fetches one URL, http:// or https://, with tern_fetch, and prints the
 * response.
 *
 *   usage: http_client URL [-X METHOD] [-d BODY] [-H 'Name: value']... [-L MAX_REDIRECTS]
 *                      [-n COUNT] [CA_FILE]
 *   try:   http_client http://127.0.0.1:8000/ -X POST -d 'hello'
 *          http_client https://localhost:8443/ ca.pem
 *
 * Prints the status on the first line, then the response's header lines, a blank
 * line and the body, to stdout, and exits 0 on any complete response; on failure
 * (refused, reset, timed out, a name that does not resolve, an answer that is not
 * HTTP, a TLS certificate that does not verify) prints "error: " and the reason to
 * stderr and exits 1. Redirects are followed (5 at most, -L to change; -L 0 prints
 * them). The whole fetch must be done within 30 s. With -n, the request is made
 * COUNT times, one after the other, over the keep-alive pool; the last response is
 * printed.
 *
 * For https:// the server's certificate is checked against CA_FILE if given, else
 * against the system's trust store, and must be valid for the URL's host name (which
 * is also sent as SNI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

struct result {
    int done;   /* 1: response printed; -1: failed */
    int print;  /* print the response (the last of -n) */
    char why[512];
};

static void on_fetch(tern_mgr *m, tern_fetch_id id, int ev, int code, const tern_http_msg *resp, tern_str data,
                     void *user) {
    (void)m;
    (void)id;
    struct result *r = user;
    if (ev != TERN_FETCH_DONE) return;
    if (code != TERN_OK) {
        snprintf(r->why, sizeof r->why, "%s: %.*s", tern_strerror(code), (int)data.len, data.ptr ? data.ptr : "");
        r->done = -1;
        return;
    }
    r->done = 1;
    if (!r->print) return;
    printf("%d\n", tern_http_status(resp));
    for (size_t i = 0; i < tern_http_header_count(resp); i++) {
        tern_str name, value;
        if (tern_http_header_at(resp, i, &name, &value) == TERN_OK)
            printf("%.*s: %.*s\n", (int)name.len, name.ptr, (int)value.len, value.ptr);
    }
    printf("\n");
    tern_str body = tern_http_body(resp);
    if (body.len) fwrite(body.ptr, 1, body.len, stdout);
}

/* A client configuration trusting CA_FILE; 0 on success. */
static int trust(tern_mgr *mgr, const char *ca_file) {
    tern_tls_config *cfg = tern_tls_config_new_client();
    int rc = cfg ? tern_tls_config_add_ca_file(cfg, ca_file) : TERN_ENOMEM;
    if (rc == TERN_OK) rc = tern_mgr_set_tls(mgr, cfg);
    if (rc != TERN_OK) {
        const char *why = cfg ? tern_tls_config_error(cfg) : NULL;
        fprintf(stderr, "error: %s: %s%s%s\n", ca_file, tern_strerror(rc), why ? ": " : "", why ? why : "");
    }
    tern_tls_config_release(cfg);
    return rc;
}

int main(int argc, char **argv) {
    const char *url = NULL, *method = NULL, *body = NULL, *ca = NULL;
    long follow = 5, count = 1;
    char headers[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-X") == 0 && i + 1 < argc) method = argv[++i];
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) body = argv[++i];
        else if (strcmp(argv[i], "-L") == 0 && i + 1 < argc) follow = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-H") == 0 && i + 1 < argc) {
            size_t n = strlen(headers);
            snprintf(headers + n, sizeof headers - n, "%s\r\n", argv[++i]);
        }
        else if (url == NULL) url = argv[i];
        else if (ca == NULL) ca = argv[i];
        else url = NULL, i = argc;
    }
    if (url == NULL || follow < 0 || count < 1) {
        fprintf(stderr, "usage: %s URL [-X METHOD] [-d BODY] [-H 'Name: value']... [-L MAX_REDIRECTS] [-n COUNT] [CA_FILE]\n",
                argv[0]);
        return 2;
    }
    if (method == NULL) method = body ? "POST" : "GET";
    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) return 1;
    if (ca != NULL && trust(mgr, ca) != TERN_OK) {
        tern_mgr_free(mgr);
        return 1;
    }
    struct result r = {0};
    int64_t opts[] = {TERN_FETCH_FOLLOW, follow, TERN_FETCH_TIMEOUT_MS, 30000, 0};
    for (long i = 0; i < count && r.done >= 0; i++) {
        r.done = 0;
        r.print = i == count - 1;
        tern_bytes *b = body ? tern_bytes_copy(body, strlen(body)) : NULL;
        if (tern_fetch(mgr, method, url, headers, b, opts, on_fetch, &r) == 0) {
            fprintf(stderr, "error: %s: %s\n", url, tern_strerror(tern_last_error()));
            tern_mgr_free(mgr);
            return 1;
        }
        while (r.done == 0 && tern_mgr_poll(mgr, 100) >= 0) {
        }
    }
    tern_mgr_free(mgr);
    if (r.done < 0) {
        fprintf(stderr, "error: %s\n", r.why);
        return 1;
    }
    return 0;
}
