"""OAuth2 access tokens for XOAUTH2: get one, keep it in a 0600 cache file, refresh it before it
expires, and start the interactive sign-ins. The providers (the only MSAL and google-auth
importer) are in `oauthproviders.py`, the cache file and HTTP session in `tokencache.py`.

Microsoft: an app's client credentials (a secret; application permissions IMAP.AccessAsApp and
SMTP.SendAsApp) or a person's device-code sign-in (`maild oauth login`; delegated permissions,
a refresh token kept in the cache). Google: a service account with domain-wide delegation
(its JSON key as the secret, the mailbox as the subject) or a refresh token stored by
`maild oauth login` (a browser consent that redirects to 127.0.0.1).

Surprises:
- MSAL and google-auth read the wall clock themselves (MSAL refreshes a token 5 minutes before
  it expires); `OAuthTokens` takes a `clock` for its own decision and refreshes at the smaller
  of 5 minutes and half the token's lifetime before expiry.
- `refused(token)` is how the IMAP and SMTP adapters say "the server would not take this one":
  the next `token()` asks the endpoint again instead of handing out the cached one (a token
  revoked before its expiry). If the endpoint then refuses too, `SignInError` says why.
- The cache file (`oauth-tokens.json` in the data directory) is written tmp + fsync + rename,
  created 0600 (mkstemp), and holds refresh tokens: it is as secret as the client secret. It is
  re-read when it changes on disk, so a `maild oauth login` reaches a running daemon.
- Secrets, tokens and the cache's contents never reach a log line or an exception's text.
- The MSAL application is built on first use: building it fetches the tenant's OpenID
  configuration, which must not happen at import or in `maild check --help`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TextIO

from maild.adapters.oauthproviders import GoogleTokens, MicrosoftTokens
from maild.adapters.tokencache import AccessToken, TokenCacheFile, secret_name_of
from maild.core.config import Config, OAuthConfig, resolve_oauth_secret
from maild.core.signin import (
    SignIn,
    SignInError,
    explain_refusal,
)

log = logging.getLogger("maild.oauth")

CACHE_NAME = "oauth-tokens.json"


# ---------------------------------------------------------------------------------------------
# the providers: each fetches a new AccessToken (force: do not trust any cached one)


# ---------------------------------------------------------------------------------------------
# what the adapters use


class OAuthTokens:
    """Access tokens for one mailbox: `token()` for XOAUTH2, refreshed before expiry;
    `refused(token)` when a server would not take it. Thread-safe."""

    def __init__(self, cfg: OAuthConfig, mailbox: str, *, cache: TokenCacheFile,
                 secret: Callable[[], str], clock: Callable[[], float]) -> None:
        self.config = cfg
        self.who = SignIn(cfg.provider, cfg.flow, cfg.client_id, mailbox, cfg.tenant)
        self.clock = clock
        backend = MicrosoftTokens if cfg.provider == "microsoft" else GoogleTokens
        self._backend = backend(cfg, self.who, secret, cache)
        self._current: AccessToken | None = None
        self._force = False
        self._lock = threading.Lock()

    def current(self) -> AccessToken:
        """A token worth using, fetched or refreshed as needed; SignInError otherwise."""
        with self._lock:
            now = self.clock()
            if self._current is not None and not self._force and self._current.fresh(now):
                return self._current
            # a token we hold went stale by our margin: the library's cache must not hand the
            # same one back (MSAL keeps an access token until 5 minutes before expiry)
            force = self._force or self._current is not None
            self._force = False
            try:
                self._current = self._backend.fetch(force, now)
            except SignInError as exc:
                self._force = force
                log.warning("event=oauth_failed provider=%s flow=%s mailbox=%s reason=%s",
                            self.who.provider, self.who.flow, self.who.mailbox,
                            json.dumps(str(exc), ensure_ascii=False))
                raise
            log.info("event=oauth_token provider=%s flow=%s mailbox=%s expires_in=%d",
                     self.who.provider, self.who.flow, self.who.mailbox,
                     self._current.expires_at - now)
            return self._current

    def token(self) -> str:
        return self.current().value

    def refused(self, token: str, protocol: str = "", server_said: str = "") -> str:
        """A server refused `token`: the next `token()` asks the endpoint for a new one.
        Returns what to tell the operator, from the permissions the token carried."""
        with self._lock:
            granted = frozenset[str]()
            if self._current is not None and self._current.value == token:
                granted = self._current.granted
                self._current = None
                self._force = True
            who = getattr(self._backend, "who", self.who)
        return explain_refusal(who, protocol or "imap", server_said, granted)

    def login(self, out: TextIO) -> AccessToken:
        """The interactive sign-in of the flow (`maild oauth login`); stores what it gets."""
        backend = self._backend
        if isinstance(backend, MicrosoftTokens) and self.config.flow == "device_code":
            token = backend.device_login(out, self.clock)
        elif isinstance(backend, GoogleTokens) and self.config.flow == "refresh_token":
            token = backend.browser_login(out, self.clock)
        else:
            token = backend.fetch(True, self.clock())  # nothing interactive: just try it
        with self._lock:
            self._current = token
        return token

    def __repr__(self) -> str:
        return f"OAuthTokens({self.who.provider}, {self.who.flow}, {self.who.mailbox})"


def token_sources(config: Config, environ: Mapping[str, str],
                  run_command: Callable[[str], str],
                  clock: Callable[[], float]) -> dict[str, OAuthTokens]:
    """{"imap": ..., "smtp": ...} for the servers that sign in with OAuth2; one source per
    mailbox (IMAP and SMTP usually share it), one cache file for all."""
    if config.oauth is None:
        return {}
    cfg = config.oauth
    cache = TokenCacheFile(config.data_dir / CACHE_NAME)

    def secret() -> str:
        try:
            value = resolve_oauth_secret(cfg, environ, run_command)
        except Exception as exc:  # never the command's output: it is the secret
            raise SignInError(f"[oauth] secret_command failed ({type(exc).__name__}); run it "
                              "by hand") from None
        if not value:
            raise SignInError(f"{secret_name_of(cfg)} is empty or not set")
        return value

    sources: dict[str, OAuthTokens] = {}
    by_mailbox: dict[str, OAuthTokens] = {}
    for name, server in (("imap", config.imap), ("smtp", config.smtp)):
        if server.auth != "oauth2" or config.embedded:
            continue
        mailbox = server.username.lower()
        if mailbox not in by_mailbox:
            by_mailbox[mailbox] = OAuthTokens(cfg, server.username, cache=cache, secret=secret,
                                              clock=clock)
        sources[name] = by_mailbox[mailbox]
    return sources


