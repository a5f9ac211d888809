"""The two token providers behind `oauth.OAuthTokens` (the only MSAL and google-auth importer):
Microsoft (client credentials, or a person's device-code sign-in with a refresh token kept in
the cache) and Google (a service account with domain-wide delegation, or a stored refresh token).

Surprises: MSAL and google-auth read the wall clock themselves; the MSAL application is built on
first use, since building it fetches the tenant's OpenID configuration, which must not happen
at import or in `maild check --help`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO

from maild.adapters.tokencache import (
    AccessToken,
    TokenCacheFile,
    describe,
    http_session,
    json_of,
    secret_name_of,
    utc_naive,
)
from maild.core.config import OAuthConfig
from maild.core.signin import (
    GOOGLE_AUTH_URI,
    GOOGLE_TOKEN_URI,
    MICROSOFT_AUTHORITY,
    SignIn,
    SignInError,
    default_scopes,
    explain_token_error,
    granted_permissions,
    token_claims,
)


class MicrosoftTokens:
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
                              f"{describe(exc)}; check [oauth] tenant and authority") from None
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
            raise SignInError(f"cannot reach Microsoft's token endpoint: {describe(exc)}") \
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
            secret_name=secret_name_of(cfg), scopes=cfg.scopes))
    token = str(result["access_token"])
    lifetime = float(result.get("expires_in", 3600))
    return AccessToken(token, now + lifetime, now,
                       granted_permissions(token_claims(token), str(result.get("scope", ""))))


class GoogleTokens:
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
                raise SignInError(f"the service account key in {secret_name_of(self.cfg)} is not "
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
                self.who, error, description, secret_name=secret_name_of(self.cfg),
                scopes=self.cfg.scopes)) from None
        except google.auth.exceptions.TransportError as exc:
            raise SignInError(f"cannot reach Google's token endpoint {self.token_uri}: "
                              f"{describe(exc)}") from None
        expiry = creds.expiry.replace(tzinfo=None) if creds.expiry else None
        lifetime = (expiry - utc_naive(now)).total_seconds() if expiry else 3600.0
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
        data = json_of(response)
        if "refresh_token" not in data:
            raise SignInError(explain_token_error(
                self.who, str(data.get("error", response.status_code)),
                str(data.get("error_description", "")), secret_name=secret_name_of(self.cfg)))
        self.cache.put(self._key, {"refresh_token": data["refresh_token"]})
        issued = now()
        return AccessToken(str(data["access_token"]), issued + float(data.get("expires_in", 3600)),
                           issued, frozenset(str(data.get("scope", "")).split()))
