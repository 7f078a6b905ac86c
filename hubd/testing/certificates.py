"""A throwaway certificate authority and one server certificate, made with ``openssl``.

Shared by the test servers (:mod:`hubd.testing.prosody`,
:mod:`hubd.testing.ejabberd`): EC P-256 keys (the fastest to make), a CA the
clients trust explicitly, and a server certificate for one domain and its
subdomains (a pubsub component's ``pubsub.<domain>`` too).  Federated test
servers (:mod:`hubd.testing.federation`) share one CA, each with its own
certificate from it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

_EC = ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")


class CertificateError(RuntimeError):
    """``openssl`` is missing or failed."""


def _openssl(cert_dir: Path, *args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise CertificateError("openssl is not installed: apt-get install openssl")
    result = subprocess.run(
        [binary, *args],
        cwd=cert_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise CertificateError(
            f"openssl {args[0]} failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


def make_ca(cert_dir: Path, ca_file: Path, ca_key: Path) -> None:
    """Write a new throwaway CA: its certificate ``ca_file`` and its key ``ca_key``."""
    _openssl(cert_dir, "genpkey", *_EC, "-out", str(ca_key))
    _openssl(
        cert_dir,
        "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "3650",
        "-subj", f"/CN=hubd throwaway test CA {secrets.token_hex(4)}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", str(ca_file),
    )  # fmt: skip


def issue_certificate(
    cert_dir: Path, ca_file: Path, ca_key: Path, domain: str, cert_file: Path, key_file: Path
) -> None:
    """Write a key and a certificate for ``domain`` and its subdomains, signed by the CA.

    It is good for TLS servers and clients both: a server opening a federation
    (s2s) link shows it as a TLS client, and the other server checks it so.
    """
    csr = cert_dir / f"{domain}.csr"
    ext = cert_dir / f"{domain}.ext"
    _openssl(cert_dir, "genpkey", *_EC, "-out", str(key_file))
    _openssl(
        cert_dir, "req", "-new", "-key", str(key_file), "-subj", f"/CN={domain}", "-out", str(csr)
    )
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        f"subjectAltName=DNS:{domain},DNS:*.{domain}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="ascii",
    )
    _openssl(
        cert_dir,
        "x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key),
        "-set_serial", str(secrets.randbits(63) + 1), "-days", "825", "-sha256",
        "-extfile", str(ext), "-out", str(cert_file),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def make_certificates(
    cert_dir: Path, domain: str, ca_file: Path, cert_file: Path, key_file: Path
) -> None:
    """Write a new CA (``ca_file``) and a certificate for ``domain`` signed by it."""
    ca_key = cert_dir / "ca.key"
    make_ca(cert_dir, ca_file, ca_key)
    issue_certificate(cert_dir, ca_file, ca_key, domain, cert_file, key_file)
