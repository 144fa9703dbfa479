"""Certificates for the TLS tests, made at test time with the openssl command (never
committed): a CA, leaf certificates it signs (optionally expired), in a directory
that the test removes. P-256 keys: quick to make."""

import os
import subprocess

OPENSSL = os.environ.get("OPENSSL", "openssl")


def _run(*args, cwd=None):
    subprocess.run([OPENSSL, *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key_args(key):
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]


class Ca:
    """A root CA, or an intermediate one signed by `parent`."""

    def __init__(self, d, name, parent=None):
        self.dir = d
        self.name = name
        self.cert = os.path.join(d, f"{name}.ca.pem")
        self.key = os.path.join(d, f"{name}.ca.key")
        self._serial = 1
        ca_ext = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
        if parent is None:
            _run("req", "-x509", *_key_args(self.key), "-out", self.cert, "-days", "30", "-subj", f"/CN={name}",
                 *[a for e in ca_ext for a in ("-addext", e)])
            self.chain = []
            return
        csr, ext = os.path.join(d, f"{name}.ca.csr"), os.path.join(d, f"{name}.ca.ext")
        with open(ext, "w") as f:
            f.write("\n".join(ca_ext) + "\n")
        _run("req", "-new", *_key_args(self.key), "-out", csr, "-subj", f"/CN={name}")
        _run("x509", "-req", "-in", csr, "-CA", parent.cert, "-CAkey", parent.key, "-set_serial", str(parent._next()),
             "-out", self.cert, "-days", "30", "-sha256", "-extfile", ext)
        self.chain = [self.cert] + parent.chain

    def leaf(self, stem, names, expired=False):
        """A certificate for `names` (DNS names or IPv4 addresses): (cert, key) paths."""
        d = self.dir
        key, csr, cert = (os.path.join(d, f"{stem}.{x}") for x in ("key", "csr", "pem"))
        ext = os.path.join(d, f"{stem}.ext")
        sans = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
        with open(ext, "w") as f:
            f.write(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _run("req", "-new", *_key_args(key), "-out", csr, "-subj", f"/CN={names[0]}")
        if not expired:
            _run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-set_serial", str(self._next()),
                 "-out", cert, "-days", "30", "-sha256", "-extfile", ext)
        else:
            self._sign_in_the_past(csr, cert, ext)
        # The chain file a server presents: the leaf, then the intermediates.
        pem = b"".join(open(p, "rb").read() for p in [cert] + self.chain)
        with open(cert, "wb") as f:
            f.write(pem)
        return cert, key

    def _next(self):
        self._serial += 1
        return self._serial

    def _sign_in_the_past(self, csr, cert, ext):
        """`openssl x509` cannot date a certificate in the past; `openssl ca` can."""
        d = os.path.join(self.dir, f"{self.name}.db")
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "index.txt"), "a").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write(f"{self._next():04X}\n")
        cnf = os.path.join(d, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(f"""[ca]
default_ca = this
[this]
dir = {d}
database = {d}/index.txt
serial = {d}/serial
new_certs_dir = {d}
certificate = {self.cert}
private_key = {self.key}
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
""")
        _run("ca", "-batch", "-config", cnf, "-in", csr, "-out", cert, "-notext", "-extfile", ext,
             "-startdate", "20200101000000Z", "-enddate", "20210101000000Z")
