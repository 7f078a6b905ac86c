"""``metrics:``: the optional Prometheus endpoint, loopback only (moved out of config.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Loopback only: the metrics endpoint must never be reachable from the house's network.
_LOOPBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


class MetricsSettings(BaseModel):
    """``metrics:``: the optional Prometheus endpoint (off when the key is absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        default="127.0.0.1:9101", description="loopback HOST:PORT (127.0.0.1, [::1], localhost)"
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        _split_listen(value)
        return value

    @property
    def host(self) -> str:
        """The address to bind (always a loopback address)."""
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The TCP port."""
        return _split_listen(self.listen)[1]


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9101")
    host = host.removeprefix("[").removesuffix("]")
    if host not in _LOOPBACK_HOSTS:
        raise ValueError(f"{host!r}: only a loopback address (127.0.0.1, [::1], localhost)")
    return _LOOPBACK_HOSTS[host], int(port_text)
