/* http_client: fetches one URL, http:// or https://, and prints the response.
 *
 *   usage: http_client URL [CA_FILE]
 *   try:   http_client https://localhost:8443/ ca.pem
 *
 * Prints the status line number and the body to stdout and exits 0 on any complete
 * response; on failure (refused, timed out, a TLS certificate that does not verify)
 * prints "error: " and the reason to stderr and exits 1.
 *
 * For https:// the server's certificate is checked against CA_FILE if given, else
 * against the system's trust store, and must be valid for the URL's host name (which
 * is also sent as SNI). The request is queued at once: tern sends it when the TLS
 * handshake is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

struct fetch {
    int done;   /* 1: response printed; -1: failed */
    char why[512];
};

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    struct fetch *f = user;
    if (ev == TERN_EV_HTTP_MSG) {
        tern_http_msg *h = ev_data;
        tern_str body = tern_http_body(h);
        printf("%d\n", tern_http_status(h));
        fwrite(body.ptr, 1, body.len, stdout);
        f->done = 1;
        tern_close(c);
    } else if (ev == TERN_EV_ERROR && f->done == 0) {
        snprintf(f->why, sizeof f->why, "%s", (const char *)ev_data);
        f->done = -1;
    } else if (ev == TERN_EV_CLOSE && f->done == 0) {
        snprintf(f->why, sizeof f->why, "closed without a response");
        f->done = -1;
    }
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

/* The path and query of URL ("/" if none). */
static const char *target_of(const char *url) {
    const char *host = strstr(url, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    return slash ? slash : "/";
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s URL [CA_FILE]\n", argv[0]);
        return 2;
    }
    tern_mgr *mgr = tern_mgr_new();
    if (mgr == NULL) return 1;
    if (argc > 2 && trust(mgr, argv[2]) != TERN_OK) {
        tern_mgr_free(mgr);
        return 1;
    }
    struct fetch f = {0};
    char base[1024];
    snprintf(base, sizeof base, "%.*s", (int)(target_of(argv[1]) - argv[1]), argv[1]);
    tern_conn *c = tern_http_connect(mgr, base, on_event, &f);
    if (c == NULL || tern_http_request(c, "GET", target_of(argv[1]), "Connection: close\r\n", NULL, 0) != TERN_OK) {
        fprintf(stderr, "error: %s: %s\n", argv[1], tern_strerror(c ? TERN_EINVAL : tern_last_error()));
        tern_mgr_free(mgr);
        return 1;
    }
    while (f.done == 0 && tern_mgr_poll(mgr, 100) >= 0) {
    }
    tern_mgr_free(mgr);
    if (f.done < 0) {
        fprintf(stderr, "error: %s\n", f.why);
        return 1;
    }
    return 0;
}
