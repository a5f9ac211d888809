"""OAuth2 access tokens for XOAUTH2 (the only MSAL and google-auth importer): get one, keep it in
a 0600 cache file, refresh it before it expires, and start the interactive sign-ins.

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

import base64
import hashlib
import json
import logging
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TextIO

from maild.adapters.files import atomic_write_bytes
from maild.core.config import Config, OAuthConfig, resolve_oauth_secret
from maild.core.signin import (
    GOOGLE_AUTH_URI,
    GOOGLE_TOKEN_URI,
    MICROSOFT_AUTHORITY,
    SignIn,
    SignInError,
    default_scopes,
    explain_refusal,
    explain_token_error,
    granted_permissions,
    redact,
    token_claims,
)

log = logging.getLogger("maild.oauth")

CACHE_NAME = "oauth-tokens.json"
REFRESH_MARGIN_S = 300.0


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


# ---------------------------------------------------------------------------------------------
# the providers: each fetches a new AccessToken (force: do not trust any cached one)


class _Microsoft:
    def __init__(self, cfg: OAuthConfig, who: SignIn, secret: Callable[[], str],
                 cache: TokenCacheFile) -> None:
        self.cfg, self.who, self.secret, self.cache = cfg, who, secret, cache
        self.scopes = list(cfg.scopes or default_scopes("microsoft", cfg.flow))
        self._app: Any = None
        self._msal_cache: Any = None

    def _application(self) -> Any:
        import msal
        import requests

        if self._msal_cache is None or self.cache.changed():
            self._msal_cache = msal.SerializableTokenCache()
            stored = self.cache.get("microsoft")
            if isinstance(stored, str):
                self._msal_cache.deserialize(stored)
            self._app = None
        if self._app is not None:
            return self._app
        authority = f"{self.cfg.authority or MICROSOFT_AUTHORITY}/{self.cfg.tenant}"
        options: dict[str, Any] = {
            "authority": authority, "token_cache": self._msal_cache,
            "http_client": http_session(self.cfg.ca_file),
            # other hosts (national clouds, ADFS, tests) are taken as configured
            "instance_discovery": None if authority.startswith(MICROSOFT_AUTHORITY) else False,
        }
        try:
            if self.cfg.flow == "client_credentials":
                self._app = msal.ConfidentialClientApplication(
                    self.cfg.client_id, client_credential=self.secret(), **options)
            else:
                self._app = msal.PublicClientApplication(self.cfg.client_id, **options)
        except (ValueError, requests.RequestException) as exc:
            raise SignInError(f"cannot reach Microsoft's sign-in at {authority}: "
                              f"{_describe(exc)}; check [oauth] tenant and authority") from None
        return self._app

    def _save(self) -> None:
        if self._msal_cache is not None and self._msal_cache.has_state_changed:
            self.cache.put("microsoft", self._msal_cache.serialize())
            self._msal_cache.has_state_changed = False

    def fetch(self, force: bool, now: float) -> AccessToken:
        import requests

        app = self._application()
        try:
            if self.cfg.flow == "client_credentials":
                if force:  # MSAL would hand back the cached token the server just refused
                    for entry in list(self._msal_cache.search(
                            self._msal_cache.CredentialType.ACCESS_TOKEN)):
                        self._msal_cache.remove_at(entry)
                result = app.acquire_token_for_client(scopes=self.scopes)
            else:
                accounts = app.get_accounts()
                mine = [a for a in accounts
                        if a.get("username", "").lower() == self.who.mailbox.lower()]
                account = (mine or accounts or [None])[0]
                if account is None:
                    raise SignInError("no stored sign-in for the device-code flow: run "
                                      f"`maild oauth login` and sign in as {self.who.mailbox}")
                result = app.acquire_token_silent_with_error(self.scopes, account,
                                                             force_refresh=force)
                if result is None:
                    raise SignInError("the stored sign-in cannot be refreshed: run "
                                      "`maild oauth login` again")
        except requests.RequestException as exc:
            raise SignInError(f"cannot reach Microsoft's token endpoint: {_describe(exc)}") \
                from None
        finally:
            self._save()
        return _result_token(result, self.who, self.cfg, now)

    def device_login(self, out: TextIO, now: Callable[[], float]) -> AccessToken:
        app = self._application()
        flow = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise SignInError(explain_token_error(
                self.who, str(flow.get("error", "")), str(flow.get("error_description", ""))))
        print(flow["message"], file=out, flush=True)
        result = app.acquire_token_by_device_flow(flow)
        self._save()
        return _result_token(result, self.who, self.cfg, now())


def _result_token(result: Mapping[str, Any], who: SignIn, cfg: OAuthConfig,
                  now: float) -> AccessToken:
    """An MSAL result → AccessToken, or SignInError explaining its error."""
    if "access_token" not in result:
        raise SignInError(explain_token_error(
            who, str(result.get("error", "")), str(result.get("error_description", "")),
            secret_name=_secret_name(cfg), scopes=cfg.scopes))
    token = str(result["access_token"])
    lifetime = float(result.get("expires_in", 3600))
    return AccessToken(token, now + lifetime, now,
                       granted_permissions(token_claims(token), str(result.get("scope", ""))))


class _Google:
    def __init__(self, cfg: OAuthConfig, who: SignIn, secret: Callable[[], str],
                 cache: TokenCacheFile) -> None:
        self.cfg, self.who, self.secret, self.cache = cfg, who, secret, cache
        self.scopes = list(cfg.scopes or default_scopes("google", cfg.flow))
        self.token_uri = cfg.token_uri or GOOGLE_TOKEN_URI
        self._key = f"google:{cfg.flow}:{who.mailbox}"

    def _credentials(self) -> Any:
        if self.cfg.flow == "service_account":
            from google.oauth2 import service_account

            try:
                info = json.loads(self.secret())
                info = {**info, "token_uri": self.token_uri}
                creds = service_account.Credentials.from_service_account_info(
                    info, scopes=self.scopes, subject=self.who.mailbox)
            except (ValueError, KeyError, TypeError) as exc:
                raise SignInError(f"the service account key in {_secret_name(self.cfg)} is not "
                                  f"a JSON key file's content ({type(exc).__name__}); download "
                                  "a JSON key from Cloud console → IAM → Service accounts → Keys"
                                  ) from None
            if not self.who.client_id:  # explanations name the key's client ID
                self.who = replace(self.who, client_id=str(info.get("client_id", "")))
            return creds
        from google.oauth2.credentials import Credentials

        stored = self.cache.get(self._key) or {}
        refresh_token = stored.get("refresh_token") if isinstance(stored, dict) else None
        if not refresh_token:
            raise SignInError(f"no stored refresh token for {self.who.mailbox}: run "
                              "`maild oauth login` and consent in a browser")
        return Credentials(None, refresh_token=refresh_token, client_id=self.cfg.client_id,
                           client_secret=self.secret(), token_uri=self.token_uri,
                           scopes=self.scopes)

    def fetch(self, force: bool, now: float) -> AccessToken:
        import google.auth.exceptions
        from google.auth.transport.requests import Request

        creds = self._credentials()
        try:
            creds.refresh(Request(http_session(self.cfg.ca_file)))
        except google.auth.exceptions.RefreshError as exc:
            data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            error = str(data.get("error", "")) or "refused"
            description = str(data.get("error_description", "")) or (
                "" if data else str(exc.args[0] if exc.args else ""))
            raise SignInError(explain_token_error(
                self.who, error, description, secret_name=_secret_name(self.cfg),
                scopes=self.cfg.scopes)) from None
        except google.auth.exceptions.TransportError as exc:
            raise SignInError(f"cannot reach Google's token endpoint {self.token_uri}: "
                              f"{_describe(exc)}") from None
        expiry = creds.expiry.replace(tzinfo=None) if creds.expiry else None
        lifetime = (expiry - _utc_naive(now)).total_seconds() if expiry else 3600.0
        granted = frozenset(getattr(creds, "granted_scopes", None) or ())
        if self.cfg.flow == "refresh_token" and creds.refresh_token:
            stored = self.cache.get(self._key) or {}
            if stored.get("refresh_token") != creds.refresh_token:  # Google rotated it
                self.cache.put(self._key, {**stored, "refresh_token": creds.refresh_token})
        return AccessToken(str(creds.token), now + lifetime, now, granted)

    def browser_login(self, out: TextIO, now: Callable[[], float], *, timeout_s: float = 300.0,
                      port: int = 0) -> AccessToken:
        """Google's installed-app flow: consent in a browser, which redirects to a one-shot
        server on 127.0.0.1 with a code, exchanged (with PKCE) for a refresh token."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(16)
        answer: dict[str, str] = {}
        done = threading.Event()

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                if query.get("state") == state:
                    answer.update(query)
                    done.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.end_headers()
                self.wfile.write("maild: signed in; you can close this page.\n"
                                 "maild：已登录，可以关闭此页面。\n".encode())

            def log_message(self, *args: Any) -> None:  # the URL carries the code
                return None

        server = HTTPServer(("127.0.0.1", port), Redirect)
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = (self.cfg.auth_uri or GOOGLE_AUTH_URI) + "?" + urllib.parse.urlencode({
                "client_id": self.cfg.client_id, "redirect_uri": redirect_uri,
                "response_type": "code", "scope": " ".join(self.scopes),
                "access_type": "offline", "prompt": "consent", "state": state,
                "login_hint": self.who.mailbox, "code_challenge_method": "S256",
                "code_challenge": challenge.decode().rstrip("=")})
            print(f"Open this address in a browser on this machine (or forward port "
                  f"{server.server_address[1]} with ssh -L) and sign in as "
                  f"{self.who.mailbox}:\n\n  {url}\n", file=out, flush=True)
            if not done.wait(timeout_s):
                raise SignInError(f"no answer from the browser within {timeout_s:.0f} s")
        finally:
            server.shutdown()
            server.server_close()
        if "code" not in answer:
            raise SignInError(explain_token_error(self.who, answer.get("error", "access_denied"),
                                                  answer.get("error_description", "")))
        response = http_session(self.cfg.ca_file).post(self.token_uri, data={
            "grant_type": "authorization_code", "code": answer["code"],
            "redirect_uri": redirect_uri, "client_id": self.cfg.client_id,
            "client_secret": self.secret(), "code_verifier": verifier}, timeout=30)
        data = _json(response)
        if "refresh_token" not in data:
            raise SignInError(explain_token_error(
                self.who, str(data.get("error", response.status_code)),
                str(data.get("error_description", "")), secret_name=_secret_name(self.cfg)))
        self.cache.put(self._key, {"refresh_token": data["refresh_token"]})
        issued = now()
        return AccessToken(str(data["access_token"]), issued + float(data.get("expires_in", 3600)),
                           issued, frozenset(str(data.get("scope", "")).split()))


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
        backend = _Microsoft if cfg.provider == "microsoft" else _Google
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
        if isinstance(backend, _Microsoft) and self.config.flow == "device_code":
            token = backend.device_login(out, self.clock)
        elif isinstance(backend, _Google) and self.config.flow == "refresh_token":
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
            raise SignInError(f"{_secret_name(cfg)} is empty or not set")
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


def _secret_name(cfg: OAuthConfig) -> str:
    if cfg.secret_env:
        return f"${cfg.secret_env}"
    return "[oauth] secret_command" if cfg.secret_command else "the secret"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact(str(exc))}"[:300]


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _utc_naive(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)
