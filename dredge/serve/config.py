"""ServeConfig: the ``[serve]`` section, beside the server that reads it.

The address stays ``[metrics] host`` / ``port`` (one server per process, default
127.0.0.1:9108). Anything but a loopback address needs a bearer ``token`` or a
``user``/``password`` pair, unless ``allow_unauthenticated = true`` says it on purpose.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dredge.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: may resolve anywhere


@dataclass(frozen=True)
class ServeConfig:
    token: str = ""  # bearer token (Authorization: Bearer <token>); empty: none
    user: str = ""  # basic auth user, with password; empty: none
    password: str = ""
    allow_unauthenticated: bool = False  # bind a non-loopback address without auth
    max_request_bytes: int = 65536  # request bodies above this: 413
    query_timeout_s: float = 10.0  # longer queries are interrupted: 504
    max_concurrent_queries: int = 2  # more wait (up to the timeout): the flush keeps its CPU
    query_cache: int = 128  # answers kept until the store commits again; 0 = off
    # /readyz: 503 once an index provider (EC2, events, CIDR files) has not reported for this
    # long; 0 = never stale
    index_stale_s: float = 300.0
    # /readyz: how often the daemon reads its lease tables (a table deleted: 503)
    lease_check_interval_s: float = 2.0

    @property
    def auth(self) -> bool:
        return bool(self.token or self.user)

    def validate(self) -> None:
        if bool(self.user) != bool(self.password):
            raise ConfigError("user", "user and password go together (basic auth)")
        if self.user and ":" in self.user:
            raise ConfigError("user", "must not contain ':'")
        if self.max_request_bytes < 1024:
            raise ConfigError("max_request_bytes", "must be >= 1024")
        if not self.query_timeout_s > 0:
            raise ConfigError("query_timeout_s", "must be > 0")
        if self.query_cache < 0:
            raise ConfigError("query_cache", "must be >= 0 (0 = off)")
        if self.max_concurrent_queries < 1:
            raise ConfigError("max_concurrent_queries", "must be >= 1")
        if self.index_stale_s < 0:
            raise ConfigError("index_stale_s", "must be >= 0 (0 = never stale)")
        if not self.lease_check_interval_s > 0:
            raise ConfigError("lease_check_interval_s", "must be > 0")

    def check_bind(self, host: str, where: str = "metrics.host") -> None:
        """Refuse to serve an open address without auth (unless told to)."""
        if not is_loopback(host) and not self.auth and not self.allow_unauthenticated:
            raise ConfigError(where, f"{host} is not a loopback address: set [serve] token or "
                              "user/password, or allow_unauthenticated = true")
