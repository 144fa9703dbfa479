/* Certificates for the TLS tests, made at test time with the openssl command (no private
 * key is ever committed): a CA, and a certificate for localhost and 127.0.0.1 that it
 * signs (a CA certificate cannot serve), in a fresh folder under /tmp. One test file
 * includes this once: `cert`, `key` and `ca` are the paths it passes to tern. OPENSSL in
 * the environment names another openssl binary. */
#ifndef TERN_TEST_CERTS_H
#define TERN_TEST_CERTS_H

#include "common.h"

static char cert_dir[64];
static char cert[128], key[128], ca[128];

/* `tag` names the folder (/tmp/tern-test-TAG-XXXXXX), so a leftover says whose it is. */
static void make_cert(const char *tag) {
    snprintf(cert_dir, sizeof cert_dir, "/tmp/tern-test-%s-XXXXXX", tag);
    CHECK(mkdtemp(cert_dir) != NULL, "mkdtemp");
    snprintf(cert, sizeof cert, "%s/cert.pem", cert_dir);
    snprintf(key, sizeof key, "%s/key.pem", cert_dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", cert_dir);
    const char *o = getenv("OPENSSL") ? getenv("OPENSSL") : "openssl";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
             "-days 2 -subj /CN=test-ca 2>/dev/null && "
             "%s req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out c.csr "
             "-subj /CN=localhost 2>/dev/null && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext && "
             "%s x509 -req -in c.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile ext -out cert.pem 2>/dev/null",
             cert_dir, o, o, o);
    CHECK(system(cmd) == 0, "openssl made a CA and a certificate");
}

static void remove_cert(void) {
    const char *names[] = {"cert.pem", "key.pem", "ca.pem", "ca.key", "c.csr", "ext"};
    char p[192];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", cert_dir, names[i]);
        unlink(p);
    }
    rmdir(cert_dir);
}

#endif
