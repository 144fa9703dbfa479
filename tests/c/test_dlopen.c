// ctest-args: the absolute path of the built shared library, e.g. $<TARGET_FILE:tern::tern> or <cargo target dir>/release/libtern.so (or set env TERN_LIB); without either it dlopens "libtern.so.0" through the normal search path.
/* test_dlopen: a program that loads libtern at run time.
 *
 * It dlopens the library (argv[1], else $TERN_LIB, else "libtern.so.0"), resolves
 * tern_version and every function it uses with dlsym (the function types come from
 * tern.h through __typeof__, so a changed signature fails to compile), checks the
 * version string against TERN_VERSION_MAJOR/MINOR/PATCH and "0.1.0", checks that the
 * library's soname is libtern.so.<major>, and runs an echo round trip between a tern
 * server and a raw socket. This program itself does not call any tern function
 * directly, so it does not need to be linked against libtern.
 */
#include "common.h" /* uses only macros and types of tern.h, no tern functions */

#include <dlfcn.h>
#include <link.h>

#define SYM(name) static __typeof__(name) *p_##name
SYM(tern_version);
SYM(tern_strerror);
SYM(tern_last_error);
SYM(tern_mgr_new);
SYM(tern_mgr_poll);
SYM(tern_mgr_free);
SYM(tern_mgr_conn_count);
SYM(tern_listen);
SYM(tern_conn_local_port);
SYM(tern_send);
SYM(tern_conn_consume);
SYM(tern_bytes_live);

static void *g_lib;

static void *need(const char *name) {
    dlerror();
    void *p = dlsym(g_lib, name);
    const char *e = dlerror();
    if (p == NULL || e != NULL) FAIL("dlsym(%s): %s", name, e ? e : "NULL");
    return p;
}
#define RESOLVE(name) p_##name = (__typeof__(p_##name))need(#name)

static int g_accepted, g_closed, g_opened;
static size_t g_echoed;

static void on_event(tern_conn *c, int ev, void *ev_data, void *user) {
    (void)user;
    switch (ev) {
    case TERN_EV_OPEN: g_opened++; break;
    case TERN_EV_ACCEPT: g_accepted++; break;
    case TERN_EV_READ: {
        tern_str *s = ev_data;
        if (p_tern_send(c, s->ptr, s->len) != TERN_OK) FAIL("tern_send failed");
        if (p_tern_conn_consume(c, s->len) != TERN_OK) FAIL("tern_conn_consume failed");
        g_echoed += s->len;
        break;
    }
    case TERN_EV_ERROR: FAIL("ERROR: %s", (const char *)ev_data);
    case TERN_EV_CLOSE: g_closed++; break;
    default: break;
    }
}

int main(int argc, char **argv) {
    t_begin("test_dlopen", 30, 120);
    const char *path = argc > 1 ? argv[1] : getenv("TERN_LIB");
    if (path == NULL || path[0] == '\0') path = "libtern.so.0";
    if (dlopen(path, RTLD_NOW | RTLD_NOLOAD) != NULL)
        printf("note: %s was already loaded (the test binary is linked against it)\n", path);
    g_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (g_lib == NULL) FAIL("dlopen(%s): %s", path, dlerror());

    /* the soname carries the major version */
    struct link_map *lm = NULL;
    CHECK(dlinfo(g_lib, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL, "dlinfo: %s", dlerror());
    const char *strtab = NULL;
    long soname_off = -1;
    for (ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB) strtab = (const char *)d->d_un.d_ptr;
        if (d->d_tag == DT_SONAME) soname_off = (long)d->d_un.d_val;
    }
    CHECK(strtab != NULL && soname_off >= 0, "%s has no DT_SONAME", lm->l_name);
    if ((uintptr_t)strtab < (uintptr_t)lm->l_addr) strtab += lm->l_addr; /* not relocated */
    char want_soname[32];
    snprintf(want_soname, sizeof want_soname, "libtern.so.%d", TERN_VERSION_MAJOR);
    CHECK(strcmp(strtab + soname_off, want_soname) == 0, "soname of %s is \"%s\", want \"%s\"",
          lm->l_name, strtab + soname_off, want_soname);
    printf("loaded %s (soname %s)\n", lm->l_name, strtab + soname_off);

    RESOLVE(tern_version);
    RESOLVE(tern_strerror);
    RESOLVE(tern_last_error);
    RESOLVE(tern_mgr_new);
    RESOLVE(tern_mgr_poll);
    RESOLVE(tern_mgr_free);
    RESOLVE(tern_mgr_conn_count);
    RESOLVE(tern_listen);
    RESOLVE(tern_conn_local_port);
    RESOLVE(tern_send);
    RESOLVE(tern_conn_consume);
    RESOLVE(tern_bytes_live);

    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", TERN_VERSION_MAJOR, TERN_VERSION_MINOR,
             TERN_VERSION_PATCH);
    const char *v = p_tern_version();
    CHECK(v != NULL, "tern_version returned NULL");
    CHECK(strcmp(v, want) == 0, "tern_version() = \"%s\", header says %s", v, want);
    CHECK(strcmp(v, "0.1.0") == 0, "tern_version() = \"%s\", want 0.1.0", v);
    CHECK(strcmp(p_tern_strerror(TERN_EINVAL), p_tern_strerror(TERN_OK)) != 0,
          "tern_strerror does not tell codes apart");

    /* echo round trip: a tern server and a raw client on this thread */
    uint64_t live0 = p_tern_bytes_live();
    tern_mgr *m = p_tern_mgr_new();
    CHECK(m != NULL, "tern_mgr_new");
    CHECK(p_tern_listen(m, "not a url", on_event, NULL) == NULL &&
              p_tern_last_error() == TERN_EINVAL,
          "tern_listen with a bad URL must fail with TERN_EINVAL");
    tern_conn *l = p_tern_listen(m, "tcp://127.0.0.1:0", on_event, NULL);
    CHECK(l != NULL, "tern_listen: %s", p_tern_strerror(p_tern_last_error()));
    int port = p_tern_conn_local_port(l);
    CHECK(port > 0, "tern_conn_local_port = %d", port);
    int fd = t_raw_connect(port, 0);
    const char msg[] = "hello through dlopen";
    t_write_all(fd, msg, sizeof msg - 1);
    t_set_nonblock(fd, 1);
    char got[64];
    size_t have = 0;
    double end = t_now_ms() + 5000 * (t_small ? 4 : 1);
    while (have < sizeof msg - 1) {
        if (t_now_ms() > end) FAIL("no echo after 5 s (got %zu bytes)", have);
        int r = p_tern_mgr_poll(m, 10);
        CHECK(r >= 0, "tern_mgr_poll: %d", r);
        ssize_t n = recv(fd, got + have, sizeof got - have, 0);
        if (n > 0) have += (size_t)n;
        else if (n == 0) FAIL("EOF before the echo");
        else if (errno != EAGAIN && errno != EINTR) FAIL("recv: %s", strerror(errno));
    }
    CHECK(have == sizeof msg - 1 && memcmp(got, msg, have) == 0, "echo is \"%.*s\"", (int)have,
          got);
    close(fd);
    end = t_now_ms() + 5000 * (t_small ? 4 : 1);
    while (g_closed < 1) {
        if (t_now_ms() > end) FAIL("the server did not see the client leave");
        p_tern_mgr_poll(m, 10);
    }
    CHECK(g_accepted == 1 && g_echoed == sizeof msg - 1, "accepted %d, echoed %zu", g_accepted,
          g_echoed);
    CHECK(p_tern_mgr_conn_count(m) == 1, "%zu connections left", p_tern_mgr_conn_count(m));
    p_tern_mgr_free(m);
    CHECK(g_closed == 2 && g_opened == 2, "opened %d, closed %d", g_opened, g_closed);
    CHECK(p_tern_bytes_live() == live0, "tern_bytes_live %llu, was %llu",
          (unsigned long long)p_tern_bytes_live(), (unsigned long long)live0);
    /* dlclose is allowed to keep the library mapped; it must not crash */
    dlclose(g_lib);
    t_pass();
    return 0;
}
