"""OAuth2 sign-in: the pure explanations (signin.py), the [oauth] config, and the token sources
(oauth.py) against a local token endpoint (tests/tokenserver.py) speaking Microsoft's and
Google's protocols as MSAL and google-auth call them — no internet."""

from __future__ import annotations

import argparse
import io
import json
import logging
import ssl
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from tokenserver import TENANT, TokenServer, make_jwt, service_account_key

from maild.adapters.oauth import CACHE_NAME, OAuthTokens
from maild.adapters.tokencache import TokenCacheFile
from maild.app.oauthcli import run_oauth_command
from maild.core.config import ConfigError, OAuthConfig, load_config
from maild.core.signin import (
    SignIn,
    SignInError,
    explain_refusal,
    explain_token_error,
    granted_permissions,
    parse_xoauth2,
    redact,
    token_claims,
)

MAILBOX = "collab@corp.example"
APP = SignIn("microsoft", "client_credentials", "11111111-aaaa", MAILBOX, TENANT)
DELEGATED = SignIn("microsoft", "device_code", "22222222-bbbb", MAILBOX, TENANT)
SERVICE_ACCOUNT = SignIn("google", "service_account", "1234567890", MAILBOX)
GOOGLE_USER = SignIn("google", "refresh_token", "abc.apps.googleusercontent.com", MAILBOX)


# -- what the operator is told (pure) -------------------------------------------------------------

@pytest.mark.parametrize("who, error, description, words", [
    (APP, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret "
     "being sent in the request is the client secret value", ["secret is wrong", "$S",
                                                              "Certificates & secrets"]),
    (APP, "invalid_client", "AADSTS7000222: The provided client secret keys for app are expired.",
     ["expired", "add a new one"]),
    (APP, "unauthorized_client", "AADSTS700016: Application with identifier '11111111-aaaa' was "
     "not found in the directory 'corp.example'.", ["no app 11111111-aaaa in tenant corp.example"]),
    (APP, "invalid_request", "AADSTS90002: Tenant 'corp.exmaple' not found.",
     ["tenant corp.example does not exist"]),
    (DELEGATED, "invalid_grant", "AADSTS65001: The user or administrator has not consented to "
     "use the application", ["Grant admin consent"]),
    (DELEGATED, "invalid_client", "AADSTS7000218: The request body must contain the following "
     "parameter: 'client_assertion' or 'client_secret'.", ["Allow public client flows"]),
    (DELEGATED, "invalid_grant", "AADSTS50173: The provided grant has expired due to it being "
     "revoked", ["revoked", "maild oauth login"]),
    (SERVICE_ACCOUNT, "unauthorized_client", "Client is unauthorized to retrieve access tokens "
     "using this method, or client not authorized for any of the scopes requested.",
     ["domain-wide delegation", "1234567890", "https://mail.google.com/"]),
    (SERVICE_ACCOUNT, "invalid_grant", "Invalid email or User ID",
     ["collab@corp.example is not a user"]),
    (SERVICE_ACCOUNT, "invalid_grant", "Invalid JWT Signature.", ["create a new key"]),
    (GOOGLE_USER, "invalid_grant", "Token has been expired or revoked.",
     ["revoked or has expired", "maild oauth login"]),
    (GOOGLE_USER, "invalid_client", "Unauthorized", ["client_id", "$S"]),
], ids=["ms-bad-secret", "ms-expired-secret", "ms-unknown-app", "ms-unknown-tenant",
        "ms-no-consent", "ms-not-public-client", "ms-revoked", "google-no-delegation",
        "google-unknown-user", "google-deleted-key", "google-revoked", "google-bad-client"])
def test_token_endpoint_refusals_say_what_to_change(who, error, description, words):
    text = explain_token_error(who, error, description, secret_name="$S")
    for word in words:
        assert word in text, (word, text)


@pytest.mark.parametrize("who, protocol, granted, words", [
    (APP, "imap", frozenset(), ["lacks IMAP.AccessAsApp", "application permission",
                                "grant admin consent"]),
    (APP, "imap", frozenset({"IMAP.AccessAsApp"}), ["Add-MailboxPermission -Identity "
                                                    "collab@corp.example", "New-ServicePrincipal"]),
    (APP, "smtp", frozenset({"IMAP.AccessAsApp"}), ["lacks SMTP.SendAsApp"]),
    (APP, "smtp", frozenset({"SMTP.SendAsApp"}), ["SmtpClientAuthenticationDisabled $false",
                                                  "SendAs"]),
    (DELEGATED, "imap", frozenset({"SMTP.Send"}), ["lacks IMAP.AccessAsUser.All", "delegated"]),
    (DELEGATED, "imap", frozenset({"IMAP.AccessAsUser.All"}), ["-ImapEnabled $true"]),
    (SERVICE_ACCOUNT, "imap", frozenset({"https://www.googleapis.com/auth/gmail.readonly"}),
     ["lacks the scope https://mail.google.com/", "domain-wide delegation"]),
    (GOOGLE_USER, "imap", frozenset({"https://mail.google.com/"}), ["turn on IMAP"]),
], ids=["app-no-role", "app-no-mailbox-permission", "app-no-smtp-role", "app-smtp-auth-off",
        "user-no-scope", "user-imap-off", "google-wrong-scope", "google-imap-off"])
def test_server_refusals_name_the_missing_permission(who, protocol, granted, words):
    text = explain_refusal(who, protocol, "NO [AUTHENTICATIONFAILED] Authentication failed.",
                           granted)
    assert text.startswith(f"{protocol.upper()} refused the OAuth2 sign-in for {MAILBOX}")
    for word in words:
        assert word in text, (word, text)


def test_token_claims_and_permissions():
    token = make_jwt({"roles": ["IMAP.AccessAsApp"], "scp": "SMTP.Send offline_access"})
    assert token_claims(token)["roles"] == ["IMAP.AccessAsApp"]
    assert granted_permissions(token_claims(token)) == {"IMAP.AccessAsApp", "SMTP.Send",
                                                        "offline_access"}
    assert token_claims("ya29.opaque-google-token") == {}
    assert granted_permissions({}, "https://mail.google.com/") == {"https://mail.google.com/"}


def test_xoauth2_initial_response_and_redaction():
    token = make_jwt({"roles": []})
    assert parse_xoauth2(f"user={MAILBOX}\x01auth=Bearer {token}\x01\x01".encode()) == (
        MAILBOX, token)
    assert parse_xoauth2(b"user=x\x01auth=Basic abc\x01\x01") is None
    assert parse_xoauth2(b"\xff\xfe") is None
    said = redact(f"AUTHENTICATE failed for token {token} and ya29.a0AfH6SMBx")
    assert token not in said and "ya29.a0" not in said and "AUTHENTICATE failed" in said


# -- configuration ---------------------------------------------------------------------------------

SERVERS = """
[mail]
embedded = false
inbox_address = "collab@corp.example"
[imap]
host = "outlook.office365.com"
auth = "oauth2"
[smtp]
host = "smtp.office365.com"
auth = "oauth2"
"""
OAUTH = """
[oauth]
provider = "microsoft"
flow = "client_credentials"
tenant = "corp.example"
client_id = "11111111-aaaa"
secret_env = "MAILD_OAUTH_SECRET"
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_oauth_config_reads_provider_flow_and_defaults(tmp_path):
    config = _load(tmp_path, SERVERS + OAUTH + 'ca_file = "certs/corp-ca.pem"\n')
    assert config.imap.auth == config.smtp.auth == "oauth2"
    assert config.oauth == OAuthConfig(provider="microsoft", flow="client_credentials",
                                       client_id="11111111-aaaa", tenant="corp.example",
                                       secret_env="MAILD_OAUTH_SECRET",
                                       ca_file=tmp_path / "certs" / "corp-ca.pem")
    assert _load(tmp_path, SERVERS.replace('auth = "oauth2"', "") + OAUTH).oauth is None


@pytest.mark.parametrize("text, key, words", [
    (SERVERS, "oauth", "needs an [oauth] section"),
    (SERVERS + OAUTH + 'secret = "hunter2"\n', "oauth.secret", "not read from the file"),
    (SERVERS + OAUTH.replace('tenant = "corp.example"', ""), "oauth.tenant", "tenant"),
    (SERVERS + OAUTH.replace('secret_env = "MAILD_OAUTH_SECRET"', ""), "oauth.secret_env",
     "client secret"),
    (SERVERS + OAUTH.replace('flow = "client_credentials"', 'flow = "service_account"'),
     "oauth.flow", "one of client_credentials, device_code"),
    (SERVERS + OAUTH + 'authority = "http://login.corp.example"\n', "oauth.authority",
     "https://"),
    (SERVERS.replace('auth = "oauth2"', 'auth = "xoauth"', 1) + OAUTH, "imap.auth",
     "one of password, oauth2"),
], ids=["no-section", "secret-in-file", "no-tenant", "no-secret", "flow-of-other-provider",
        "plain-http", "unknown-auth"])
def test_oauth_config_errors_name_file_and_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert info.value.key == key and words in str(info.value)
    assert str(tmp_path / "c.toml") in str(info.value)


# -- token sources against the local endpoint ---------------------------------------------------------

@pytest.fixture
def endpoint():
    server = TokenServer().start()
    server.add_app("app-1", secret="app-secret", roles=("IMAP.AccessAsApp", "SMTP.SendAsApp"))
    server.add_app("public-1", public=True)
    server.grant_mailbox("app-1", MAILBOX)
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _microsoft(endpoint: TokenServer, flow: str = "client_credentials",
               client_id: str = "app-1") -> OAuthConfig:
    return OAuthConfig(provider="microsoft", flow=flow, client_id=client_id, tenant=TENANT,
                       secret_env="MAILD_OAUTH_SECRET", authority=endpoint.authority,
                       ca_file=endpoint.ca_file)


def _tokens(cfg: OAuthConfig, cache: Path, secret: str = "app-secret",
            clock=time.time) -> OAuthTokens:
    return OAuthTokens(cfg, MAILBOX, cache=TokenCacheFile(cache), secret=lambda: secret,
                       clock=clock)


def test_client_credentials_token_is_cached_0600_and_refreshed_before_expiry(endpoint, tmp_path,
                                                                             caplog):
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    cache = tmp_path / CACHE_NAME
    source = _tokens(_microsoft(endpoint), cache, clock=clock)
    first = source.current()
    assert first.granted == {"IMAP.AccessAsApp", "SMTP.SendAsApp"}
    assert endpoint.introspect("imap", first.value)["username"] == MAILBOX
    assert cache.stat().st_mode & 0o777 == 0o600
    assert source.token() == first.value and endpoint.grants == ["client_credentials"]
    # a restarted daemon finds the token in the file: no request
    again = _tokens(_microsoft(endpoint), cache, clock=clock)
    assert again.token() == first.value and len(endpoint.grants) == 1
    # 4 minutes before expiry (inside the 5-minute margin): a new one, before the old expires
    clock.now = first.expires_at - 240
    assert source.token() != first.value and len(endpoint.grants) == 2
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "event=oauth_token" in logged and first.value not in logged
    assert "app-secret" not in logged and "app-secret" not in cache.read_text()


def test_a_refused_token_is_replaced_and_a_revoked_app_explained(endpoint, tmp_path):
    source = _tokens(_microsoft(endpoint), tmp_path / CACHE_NAME)
    first = source.token()
    source.refused(first, "imap", "NO AUTHENTICATE failed")
    second = source.token()
    assert second != first and endpoint.grants == ["client_credentials"] * 2
    endpoint.revoke_app("app-1")
    source.refused(second, "imap", "NO AUTHENTICATE failed")
    with pytest.raises(SignInError) as info:
        source.token()
    text = str(info.value)
    assert "AADSTS7000215" in text and "$MAILD_OAUTH_SECRET" in text and "app-secret" not in text


def test_wrong_tenant_and_unknown_app_are_explained(endpoint, tmp_path):
    cfg = _microsoft(endpoint, client_id="nobody")
    with pytest.raises(SignInError, match="no app nobody in tenant corp.example"):
        _tokens(cfg, tmp_path / CACHE_NAME).token()


def _approve_when_asked(endpoint: TokenServer, user: str) -> threading.Thread:
    def approve() -> None:
        for _ in range(200):
            pending = [d for d in endpoint.device_codes.values() if not d.user]
            if pending:
                endpoint.approve(pending[0].user_code, user)
                return
            time.sleep(0.02)
    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def _config_file(tmp_path: Path, oauth: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[maild]\ndata_dir = "var"\n{SERVERS}\n{oauth}', encoding="utf-8")
    return path


def test_oauth_login_device_code_stores_a_refresh_token_the_daemon_uses(endpoint, tmp_path):
    config = _config_file(tmp_path, f"""
[oauth]
provider = "microsoft"
flow = "device_code"
tenant = "{TENANT}"
client_id = "public-1"
authority = "{endpoint.authority}"
ca_file = "{endpoint.ca_file}"
""")
    endpoint.grant_mailbox(MAILBOX, MAILBOX)
    # before login: the daemon is told what to run
    with pytest.raises(SignInError, match="maild oauth login"):
        _tokens(load_config(config).oauth, tmp_path / "var" / CACHE_NAME).token()
    approving = _approve_when_asked(endpoint, MAILBOX)
    out, err = io.StringIO(), io.StringIO()
    code = run_oauth_command(argparse.Namespace(config=config, action="login"), out=out, err=err,
                             environ={})
    approving.join()
    assert code == 0, err.getvalue()
    assert "enter the code" in out.getvalue() and "signed in: microsoft device_code" in out.getvalue()
    cache = tmp_path / "var" / CACHE_NAME
    assert cache.stat().st_mode & 0o777 == 0o600 and "RefreshToken" in cache.read_text()
    # the daemon, later: a token from the stored refresh token, with the delegated scopes
    clock = Clock()
    source = _tokens(load_config(config).oauth, cache, clock=clock)
    assert source.current().granted >= {"IMAP.AccessAsUser.All", "SMTP.Send"}
    clock.now += 3600  # an hour on: refreshed silently
    source.token()
    assert endpoint.grants[-1] == "refresh_token"
    # the refresh token revoked (a password change): the error says to sign in again
    endpoint.revoke_refresh_tokens()
    clock.now += 3600
    with pytest.raises(SignInError, match="AADSTS50173.*maild oauth login"):
        source.token()


def test_device_code_without_public_client_flows_is_explained(endpoint, tmp_path):
    config = _config_file(tmp_path, f"""
[oauth]
# Alike on purpose (duplicates): each way a sign-in is refused is its own test with its own config.
provider = "microsoft"
flow = "device_code"
tenant = "{TENANT}"
client_id = "app-1"
authority = "{endpoint.authority}"
ca_file = "{endpoint.ca_file}"
""")
    err = io.StringIO()
    code = run_oauth_command(argparse.Namespace(config=config, action="login"),
                             out=io.StringIO(), err=err, environ={})
    assert code == 1 and "Allow public client flows" in err.getvalue()


def test_google_service_account_needs_domain_wide_delegation(endpoint, tmp_path):
    key, public = service_account_key("1234567890", "maild@corp-mail.iam.gserviceaccount.com")
    endpoint.add_service_account(key["client_email"], key["client_id"], public)
    endpoint.users.add(MAILBOX)
    cfg = OAuthConfig(provider="google", flow="service_account", secret_env="KEY",
                      token_uri=endpoint.google_token_uri, ca_file=endpoint.ca_file)
    source = _tokens(cfg, tmp_path / CACHE_NAME, secret=json.dumps(key))
    with pytest.raises(SignInError) as info:
        source.token()
    assert "Domain Wide Delegation" in str(info.value) and "1234567890" in str(info.value)
    endpoint.delegate("1234567890", "https://mail.google.com/")
    token = source.token()  # the JWT assertion's RS256 signature was checked by the endpoint
    assert endpoint.introspect("imap", token) == {"active": True, "username": MAILBOX}
    with pytest.raises(SignInError, match="not a JSON key"):
        _tokens(cfg, tmp_path / CACHE_NAME, secret="-----BEGIN PRIVATE KEY-----").token()


def test_google_refresh_token_from_a_browser_consent(endpoint, tmp_path):
    endpoint.add_app("abc.apps.googleusercontent.com", secret="desktop-secret")
    config = _config_file(tmp_path, f"""
[oauth]
provider = "google"
flow = "refresh_token"
client_id = "abc.apps.googleusercontent.com"
secret_env = "GOOGLE_CLIENT_SECRET"
token_uri = "{endpoint.google_token_uri}"
auth_uri = "{endpoint.google_auth_uri}"
ca_file = "{endpoint.ca_file}"
""")
    context = ssl.create_default_context(cafile=str(endpoint.ca_file))
    shown = io.StringIO()

    class Browser(io.StringIO):
        """The operator: opens the printed address; the consent page redirects to 127.0.0.1."""

        def write(self, text: str) -> int:
            shown.write(text)
            for word in text.split():
                if word.startswith(endpoint.google_auth_uri):
                    threading.Thread(target=lambda url=word: urllib.request.urlopen(
                        url, context=context, timeout=10).read(), daemon=True).start()
            return len(text)

    err = io.StringIO()
    code = run_oauth_command(argparse.Namespace(config=config, action="login"), out=Browser(),
                             err=err, environ={"GOOGLE_CLIENT_SECRET": "desktop-secret"})
    assert code == 0, err.getvalue()
    assert "code_challenge_method=S256" in shown.getvalue()
    cache = tmp_path / "var" / CACHE_NAME
    stored = json.loads(cache.read_text())
    assert stored[f"google:refresh_token:{MAILBOX}"]["refresh_token"].startswith("1//test-")
    source = _tokens(load_config(config).oauth, cache, secret="desktop-secret")
    assert source.current().granted == {"https://mail.google.com/"}
    endpoint.revoke_refresh_tokens()
    source.refused(source.token())
    with pytest.raises(SignInError, match="expired or revoked.*maild oauth login"):
        source.token()
