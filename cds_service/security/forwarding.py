"""Where the EHR's FHIR access token may go: only to a FHIR server allowed for the calling issuer.

A CDS Hooks request names its `fhirServer` and hands over `fhirAuthorization.access_token`. A
service that fetched from whatever server a request names, with that token, would hand a valid
EHR token to any URL a caller chose (an internal address, another organisation). So before a
fetch that carries a token, `check_destination` compares the server with the scope of the call:

- `AUTH_MODE=jwt`: the servers listed for the token's issuer in `FHIR_SERVER_ALLOWLIST`
  (`{"issuer": ["https://fhir.example.org/R4/"]}`; the key `"*"` applies to every issuer), and by
  default the issuer's own origin (Epic's `iss` is its FHIR endpoint). An allow-list entry matches
  the same scheme, host and port and a path under the entry's path.
- `AUTH_MODE=none` (development): loopback servers and every server in the allow-list.
- the SMART app: the FHIR server that launched it (checked against `SMART_ALLOWED_ISSUERS`).
- `evaluate`: as a development call (loopback and the allow-list), whatever the AUTH_MODE.

The served app sets a scope on every request (http/auth.py), so no HTTP path runs without one;
only library calls outside any request (tests, benchmarks calling `gather` directly) have none,
and they are not restricted.

Fetches without a token are not restricted here (open FHIR servers, such as the CDS Hooks
sandbox's). The scope is set per request by the HTTP layer (`use_scope`) and read where the token
would leave: `gather.fhir_client.fetch_many`. A refusal raises `TokenForwardingRefused`, which the
HTTP layer answers 403 with a log line naming the server's host, never the token.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ANY_ISSUER = "*"


class TokenForwardingRefused(Exception):
    """The request's FHIR token would go to a server not allowed for the caller; safe to show."""

    def __init__(self, server: str) -> None:
        self.host = urlsplit(server).hostname or "?"
        super().__init__(f"fhirServer {self.host} is not allowed to receive this EHR's access token "
                         "(FHIR_SERVER_ALLOWLIST)")


@dataclass(frozen=True)
class _Prefix:
    scheme: str
    host: str
    port: int | None
    path: str

    def covers(self, url: _Prefix) -> bool:
        if (self.scheme, self.host, self.port) != (url.scheme, url.host, url.port):
            return False
        return not self.path or url.path == self.path or url.path.startswith(self.path + "/")


def _parse(url: str) -> _Prefix | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    return _Prefix(parts.scheme, parts.hostname.lower().rstrip("."), port, parts.path.rstrip("/"))


def _is_loopback(p: _Prefix) -> bool:
    if p.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(p.host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TokenScope:
    """The FHIR servers a call's token may be sent to."""

    prefixes: tuple[_Prefix, ...] = ()
    loopback: bool = False
    label: str = "none"

    def allows(self, server: str) -> bool:
        target = _parse(server)
        if target is None:
            return False
        if self.loopback and _is_loopback(target):
            return True
        return any(p.covers(target) for p in self.prefixes)


def _prefixes(urls: Iterable[str]) -> tuple[_Prefix, ...]:
    return tuple(p for p in (_parse(u) for u in urls) if p is not None)


def development_scope(settings: Any) -> TokenScope:
    """Loopback servers and every server of the allow-list (AUTH_MODE=none, `evaluate`)."""
    allow: dict[str, list[str]] = getattr(settings, "fhir_server_allowlist", None) or {}
    return TokenScope(_prefixes(u for urls in allow.values() for u in urls), loopback=True, label="development")


def scope_for(settings: Any, issuer: str | None) -> TokenScope:
    """The scope of a hook call: by issuer under JWT, loopback + allow-list in development."""
    allow: dict[str, list[str]] = getattr(settings, "fhir_server_allowlist", None) or {}
    if getattr(settings, "auth_mode", "none") != "jwt":
        return development_scope(settings)
    if not issuer:
        return TokenScope(label="unauthenticated")
    urls = [*allow.get(issuer, []), *allow.get(ANY_ISSUER, [])]
    own = _parse(issuer)
    prefixes = _prefixes(urls)
    if own is not None:  # the documented default: the issuer's own origin
        prefixes += (_Prefix(own.scheme, own.host, own.port, ""),)
    return TokenScope(prefixes, label="issuer")


def scope_for_server(server: str) -> TokenScope:
    """Exactly one FHIR server (the SMART app's launching `iss`)."""
    return TokenScope(_prefixes([server]), label="smart")


_SCOPE: contextvars.ContextVar[TokenScope | None] = contextvars.ContextVar("mmcds_token_scope", default=None)


def set_scope(scope: TokenScope | None) -> contextvars.Token[TokenScope | None]:
    return _SCOPE.set(scope)


def reset_scope(token: contextvars.Token[TokenScope | None]) -> None:
    _SCOPE.reset(token)


@contextmanager
def use_scope(scope: TokenScope) -> Iterator[None]:
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def check_destination(server: str, token: str | None) -> None:
    """Raise TokenForwardingRefused when `token` must not be sent to `server` in this call's scope."""
    if not token:
        return
    scope = _SCOPE.get()
    if scope is not None and not scope.allows(server):
        raise TokenForwardingRefused(server)
