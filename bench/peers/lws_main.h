/* lws_main.h: what lws_echo.c and lws_broadcast.c share: the command line, one
 * libwebsockets context listening on 127.0.0.1:PORT with the caller's protocols, and
 * its service loop until SIGINT or SIGTERM.
 *
 * Configuration: libwebsockets' defaults (its own poll() loop, one service thread, no
 * TLS, no extension), logging cut down to errors and warnings. Included once per
 * program, hence the static definitions.
 */
#ifndef LWS_MAIN_H
#define LWS_MAIN_H

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t lws_main_stop = 0;
static struct lws_context *volatile lws_main_context;

static void lws_main_on_signal(int sig) {
    (void)sig;
    lws_main_stop = 1;
    /* A signal that lands just before poll() would not interrupt it: wake the loop
     * through libwebsockets' event pipe (a write(), safe in a signal handler). */
    if (lws_main_context) lws_cancel_service(lws_main_context);
}

/* Runs the server. started(context) runs once the context listens (start helper
 * threads there); stopping(context) once the loop has ended, before the context is
 * destroyed (join them there). Either may be NULL. Returns main's exit status. */
static int lws_main(int argc, char **argv, const char *name, const struct lws_protocols *protocols,
                    void (*started)(struct lws_context *), void (*stopping)(struct lws_context *)) {
    int port = argc > 1 ? atoi(argv[1]) : 8000;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = lws_main_on_signal; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    struct lws_context *context = lws_create_context(&info);
    if (context == NULL) {
        fprintf(stderr, "%s: lws_create_context failed (port %d)\n", name, port);
        return 1;
    }
    lws_main_context = context;
    printf("%s: libwebsockets %s on ws://127.0.0.1:%d/\n", name, lws_get_library_version(), port);
    fflush(stdout);
    if (started) started(context);
    while (!lws_main_stop && lws_service(context, 0) >= 0) {
    }
    if (stopping) stopping(context);
    lws_main_context = NULL;
    lws_context_destroy(context);
    return 0;
}

#endif
