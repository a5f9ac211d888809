"""OAuth2's small parts on disk and on the wire: an `AccessToken`, the 0600 token cache file
(`TokenCacheFile`: tmp + fsync + rename, re-read when it changes on disk, as secret as the
client secret), and the HTTP session the token endpoints are asked through.

Secrets, tokens and the cache's contents never reach a log line or an exception's text.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.adapters.files import atomic_write_bytes
from maild.core.configparts import OAuthConfig
from maild.core.signin import redact

log = logging.getLogger("maild.oauth")


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # seconds since the epoch
    issued_at: float
    granted: frozenset[str] = frozenset()

    def fresh(self, now: float) -> bool:
        """Still worth handing out: not within the refresh margin of its expiry."""
        margin = min(REFRESH_MARGIN_S, (self.expires_at - self.issued_at) / 2)
        return now < self.expires_at - margin

    def __repr__(self) -> str:  # never the token itself
        return f"AccessToken(expires_at={self.expires_at:.0f}, granted={sorted(self.granted)})"


class TokenCacheFile:
    """The 0600 JSON file that keeps each provider's cache under its own key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._data: dict[str, Any] = {}

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def changed(self) -> bool:
        return self._stamp() != self._seen

    def get(self, key: str) -> Any:
        with self._lock:
            if self.changed():
                self._data = self._read()
                self._seen = self._stamp()
            return self._data.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            data = self._read()  # another process may have written other keys
            data[key] = value
            atomic_write_bytes(self.path, json.dumps(data, indent=1).encode())
            self._data, self._seen = data, self._stamp()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as exc:
            log.warning("event=oauth_cache_unreadable path=%s error=%s", self.path,
                        type(exc).__name__)
            return {}
        return data if isinstance(data, dict) else {}


def http_session(ca_file: Path | None) -> Any:
    """A requests session for the token endpoint, trusting `ca_file` when given. requests lets
    $REQUESTS_CA_BUNDLE override a session's own `verify`; here the configured file wins (the
    environment's proxies still apply)."""
    import requests

    class Session(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings = super().merge_environment_settings(*args, **kwargs)
            if ca_file is not None:
                settings["verify"] = str(ca_file)
            return settings

    return Session()


def json_of(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def utc_naive(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


REFRESH_MARGIN_S = 300.0


def secret_name_of(cfg: OAuthConfig) -> str:
    if cfg.secret_env:
        return f"${cfg.secret_env}"
    return "[oauth] secret_command" if cfg.secret_command else "the secret"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact(str(exc))}"[:300]
