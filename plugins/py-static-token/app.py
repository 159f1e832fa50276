"""`py-static-token`: the `static-token` plugin (plugins/static-token) in Python.

It shows that the tokenhost:plugin contract does not depend on the guest's language.
`resolve` returns the config key `token`; each `refresh` returns `<token>-1`,
`<token>-2`, ... (the counter lives in the instance). The optional key `ttl_ms` sets
the expiry to now + `ttl_ms`. Each call logs one info line (never the token).

componentize-py generates the `wit_world` package from wit/ at build time; a `result`
export returns its ok value and raises `Err(error)` for its error.
"""

import time
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Error_InvalidConfig, RefreshContext, Token

U64_MAX = (1 << 64) - 1

# How many refreshes this instance has served (module state lives as long as the
# instance does).
_refreshes = 0


def _lookup(pairs: List[Tuple[str, str]], key: str) -> Optional[str]:
    """The value of config key `key`, if present."""
    for k, v in pairs:
        if k == key:
            return v
    return None


def _now_ms() -> int:
    """Milliseconds since the Unix epoch, from the host's wall clock."""
    return time.time_ns() // 1_000_000


def _parse_ttl(raw: str) -> int:
    """Parses `ttl_ms` like Rust's `u64::from_str` after `trim()`."""
    text = raw.strip()
    digits = text[1:] if text.startswith("+") else text
    if digits and digits.isascii() and digits.isdigit():
        ttl = int(digits)
        if ttl <= U64_MAX:
            return ttl
    raise Err(
        Error_InvalidConfig(
            "config key `ttl_ms` must be a non-negative integer (milliseconds)"
        )
    )


def _configured() -> Tuple[str, Optional[int]]:
    """Reads `token` and `ttl_ms`: the token value and its expiry."""
    pairs = host.config()
    token = _lookup(pairs, "token")
    if token is None:
        raise Err(Error_InvalidConfig("missing required config key `token`"))
    raw = _lookup(pairs, "ttl_ms")
    expires_at_ms = None
    if raw is not None:
        expires_at_ms = min(_now_ms() + _parse_ttl(raw), U64_MAX)
    return token, expires_at_ms


class TokenSource(exports.TokenSource):
    """The exported `token-source` interface."""

    def resolve(self) -> Token:
        host.log(host.LogLevel.INFO, "py-static-token: resolve")
        token, expires_at_ms = _configured()
        return Token(token, expires_at_ms)

    def refresh(self, context: RefreshContext) -> Token:
        global _refreshes
        _refreshes += 1
        reason = context.reason.name.lower()
        host.log(
            host.LogLevel.INFO,
            f"py-static-token: refresh #{_refreshes} (reason: {reason})",
        )
        token, expires_at_ms = _configured()
        return Token(f"{token}-{_refreshes}", expires_at_ms)
