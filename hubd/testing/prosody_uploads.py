"""HTTP File Upload (XEP-0363) on a test Prosody: ``mod_http_file_share`` over HTTPS on loopback.

The lines :class:`hubd.testing.prosody.ProsodyServer` adds to its config when
made with ``uploads=True``, and where the uploaded files end up.  Prosody 0.12:
the ``http_file_share`` component, ``http_file_share_size_limit`` (advertised
as ``max-file-size``), ``http_external_url`` for the URLs in slots; HTTPS with
the test CA's certificate for the domain, so clients verify it as usual.
"""

from __future__ import annotations

from pathlib import Path


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def https_lines(host: str, key_file: Path, cert_file: Path) -> list[str]:
    """Global lines: HTTPS on the loopback ``host``, with the domain's certificate."""
    return [
        f"https_interfaces = {{ {_lua(host)} }}",
        f"https_ssl = {{ key = {_lua(str(key_file))}, certificate = {_lua(str(cert_file))} }}",
    ]


def upload_component_lines(domain: str, https_port: int, size_limit: int) -> list[str]:
    """The upload component on ``upload.<domain>``, its URLs on ``https_port``."""
    return [
        f"Component {_lua(f'upload.{domain}')} {_lua('http_file_share')}",
        f"  http_file_share_size_limit = {int(size_limit)}",
        # The URLs in slots name the domain the certificate is for, and the
        # requests that come for that name are routed to this component.
        f"  http_host = {_lua(domain)}",
        f"  http_external_url = {_lua(f'https://{domain}:{https_port}/')}",
        "",
    ]


def uploaded_files(data_dir: Path) -> list[Path]:
    """The files ``mod_http_file_share`` keeps under a server's data dir."""
    if not data_dir.is_dir():
        return []
    return sorted(
        path
        for path in data_dir.rglob("*")
        if path.is_file() and "http_file_share" in path.relative_to(data_dir).parts[1:2]
    )
