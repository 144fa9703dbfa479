/* A program outside the tern tree that is not linked against libtern: it loads the
 * installed library at run time (argv[1]: its path) with dlopen, resolves what it uses
 * with dlsym (types from the installed tern.h, so a changed signature does not compile),
 * checks tern_version() and runs an echo round trip on 127.0.0.1. Exit 0 on success.
 * Written in the common part of C and C++: dlopen_main.cpp compiles this file as C++. */
#include <tern.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define SYM(name) static __typeof__(name) *p_##name
SYM(tern_version);
SYM(tern_mgr_new);
SYM(tern_mgr_poll);
SYM(tern_mgr_free);
SYM(tern_listen);
SYM(tern_connect);
SYM(tern_conn_local_port);
SYM(tern_send);
SYM(tern_conn_consume);
SYM(tern_close);

static const char MESSAGE[] = "hello through dlopen";
static char received[sizeof MESSAGE];
static size_t have;

static void echo(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev != TERN_EV_READ) return;
    const tern_str *in = (const tern_str *)ev_data;
    p_tern_send(c, in->ptr, in->len);
    p_tern_conn_consume(c, in->len);
}

static void client(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    if (ev == TERN_EV_CONNECT) p_tern_send(c, MESSAGE, sizeof MESSAGE - 1);
    if (ev != TERN_EV_READ) return;
    const tern_str *in = (const tern_str *)ev_data;
    size_t n = in->len < sizeof MESSAGE - 1 - have ? in->len : sizeof MESSAGE - 1 - have;
    memcpy(received + have, in->ptr, n);
    have += n;
    p_tern_conn_consume(c, in->len);
    if (have == sizeof MESSAGE - 1) p_tern_close(c);
}

static int resolve(void *lib) {
#define RESOLVE(name)                                                           \
    if ((p_##name = (__typeof__(p_##name))dlsym(lib, #name)) == NULL) {          \
        fprintf(stderr, "consumer_dlopen: dlsym(%s): %s\n", #name, dlerror());   \
        return -1;                                                              \
    }
    RESOLVE(tern_version) RESOLVE(tern_mgr_new) RESOLVE(tern_mgr_poll) RESOLVE(tern_mgr_free)
    RESOLVE(tern_listen) RESOLVE(tern_connect) RESOLVE(tern_conn_local_port) RESOLVE(tern_send)
    RESOLVE(tern_conn_consume) RESOLVE(tern_close)
    return 0;
}

int main(int argc, char **argv) {
    void *lib = dlopen(argc > 1 ? argv[1] : "libtern.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL || resolve(lib) != 0) {
        fprintf(stderr, "consumer_dlopen: dlopen: %s\n", dlerror());
        return 1;
    }
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", TERN_VERSION_MAJOR, TERN_VERSION_MINOR, TERN_VERSION_PATCH);
    if (strcmp(p_tern_version(), expected) != 0) {
        fprintf(stderr, "consumer_dlopen: version %s, the header says %s\n", p_tern_version(), expected);
        return 1;
    }
    tern_mgr *m = p_tern_mgr_new();
    tern_conn *l = m ? p_tern_listen(m, "tcp://127.0.0.1:0", echo, NULL) : NULL;
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", l ? p_tern_conn_local_port(l) : 0);
    if (l == NULL || p_tern_connect(m, url, client, NULL) == NULL) {
        fprintf(stderr, "consumer_dlopen: cannot listen or connect\n");
        return 1;
    }
    for (int i = 0; i < 1000 && have < sizeof MESSAGE - 1; i++) p_tern_mgr_poll(m, 10);
    p_tern_mgr_free(m);
    if (have != sizeof MESSAGE - 1 || memcmp(received, MESSAGE, have) != 0) {
        fprintf(stderr, "consumer_dlopen: echo round trip failed\n");
        return 1;
    }
    printf("consumer_dlopen: tern %s loaded with dlopen, echo round trip ok\n", expected);
    dlclose(lib);
    return 0;
}
