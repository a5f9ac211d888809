"""A local OAuth2 token endpoint for the tests: Microsoft's and Google's, as MSAL and google-auth
call them, over HTTPS on 127.0.0.1 with a certificate made for the test; and token introspection
over plain HTTP for the mail servers (Dovecot's oauth2 passdb, the embedded SMTP server).

Microsoft (`https://127.0.0.1:PORT/<tenant>/...`): the tenant's OpenID configuration, the token
endpoint (client_credentials, device_code, refresh_token grants) and the device-code endpoint.
Access tokens are JWTs with `roles` (app) or `scp` (delegated) claims, as Microsoft's are; the
signature is a placeholder, since only this server checks its tokens. Google (`/google/...`):
the token endpoint (a service account's RS256 JWT assertion, verified against its public key;
refresh_token; authorization_code with PKCE) and a consent page that approves at once.

What a "tenant admin" does is a method: `add_app`, `grant_mailbox`, `delegate`, `approve`,
`revoke_app`, `revoke_refresh_tokens`. Tokens expire after `lifetime_s` by this server's clock;
introspection (`/introspect/imap`, `/introspect/smtp`) says a token is active only while it is
unexpired, unrevoked, carries the protocol's permission and its app or user may use a mailbox,
whose address it returns as `username` (Dovecot compares it with the login name).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TENANT = "corp.example"
GOOGLE_MAIL = "https://mail.google.com/"
PERMISSIONS = {  # what each protocol needs, app-only or delegated, per provider
    "imap": {"IMAP.AccessAsApp", "IMAP.AccessAsUser.All", GOOGLE_MAIL},
    "smtp": {"SMTP.SendAsApp", "SMTP.Send", GOOGLE_MAIL},
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "test"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'test-signature')}"


@dataclass
class App:
    client_id: str
    secret: str = ""
    roles: tuple[str, ...] = ()  # application permissions with admin consent
    public: bool = False  # "Allow public client flows" (device code)
    redirect_ok: bool = True


@dataclass
class Issued:
    subject: str  # the app's client ID, or a user's address
    permissions: frozenset[str]
    expires_at: float
    revoked: bool = False


@dataclass
class DeviceCode:
    client_id: str
    scopes: tuple[str, ...]
    user_code: str
    user: str = ""  # set by approve()


@dataclass
class ServiceAccount:
    client_id: str
    email: str
    public_pem: bytes


@dataclass
class TokenServer:
    """The endpoint's state; `start()` serves it. Thread-safe enough for tests (one lock)."""

    lifetime_s: float = 3600.0
    apps: dict[str, App] = field(default_factory=dict)
    mailbox_access: dict[str, set[str]] = field(default_factory=dict)  # subject → mailboxes
    users: set[str] = field(default_factory=set)  # Google Workspace users
    delegations: dict[str, set[str]] = field(default_factory=dict)  # SA client ID → scopes
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # email → SA
    tokens: dict[str, Issued] = field(default_factory=dict)
    refresh_tokens: dict[str, tuple[str, str, frozenset[str]]] = field(default_factory=dict)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)
    auth_codes: dict[str, tuple[str, str, str, frozenset[str]]] = field(default_factory=dict)
    grants: list[str] = field(default_factory=list)  # grant_type of each token request
    introspections: list[tuple[str, bool]] = field(default_factory=list)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mdtok")))

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.ca_file = self.root / "ca.pem"

    # -- the admin's side ---------------------------------------------------------------------
    def add_app(self, client_id: str, *, secret: str = "", roles: tuple[str, ...] = (),
                public: bool = False) -> App:
        self.apps[client_id] = App(client_id, secret, roles, public)
        return self.apps[client_id]

    def grant_mailbox(self, subject: str, mailbox: str) -> None:
        """Add-MailboxPermission (for an app) or the user's own mailbox (for a person)."""
        self.mailbox_access.setdefault(subject, set()).add(mailbox.lower())

    def add_service_account(self, email: str, client_id: str, public_pem: bytes) -> None:
        self.service_accounts[email] = ServiceAccount(client_id, email, public_pem)

    def delegate(self, client_id: str, *scopes: str) -> None:
        """Domain-wide delegation of `scopes` to the service account `client_id`."""
        self.delegations.setdefault(client_id, set()).update(scopes)

    def approve(self, user_code: str, user: str) -> None:
        """The person at the browser signs in and accepts the device code."""
        with self.lock:
            for device in self.device_codes.values():
                if device.user == "" and device.user_code == user_code:
                    device.user = user
                    return
        raise KeyError(user_code)

    def revoke_app(self, client_id: str) -> None:
        """The app's secret is deleted and its tokens revoked."""
        with self.lock:
            self.apps[client_id].secret = secrets.token_hex(8) + "-deleted"
            for issued in self.tokens.values():
                if issued.subject == client_id:
                    issued.revoked = True

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            for issued in self.tokens.values():
                issued.revoked = True

    def expire_all(self) -> None:
        with self.lock:
            for issued in self.tokens.values():
                issued.expires_at = 0.0

    # -- addresses ------------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def google_token_uri(self) -> str:
        return f"{self.authority}/google/token"

    @property
    def google_auth_uri(self) -> str:
        return f"{self.authority}/google/auth"

    def introspection_url(self, protocol: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/introspect/{protocol}"

    def checker(self, protocol: str) -> Callable[[str, str], bool]:
        """What a mail server does with an XOAUTH2 token: ask the introspection endpoint."""
        url = self.introspection_url(protocol)

        def check(user: str, token: str) -> bool:
            body = urllib.parse.urlencode({"token": token}).encode()
            with urllib.request.urlopen(url, body, timeout=10) as response:
                answer = json.loads(response.read())
            return bool(answer.get("active")) and answer.get("username", "") == user.lower()
        return check

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> TokenServer:
        _write_certificate(self.root)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.root / "cert.pem", self.root / "key.pem")
        handler = type("Handler", (_Handler,), {"state": self})
        secure = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        secure.socket = context.wrap_socket(secure.socket, server_side=True)
        plain = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        for server in (secure, plain):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        self.https_port = secure.server_address[1]
        self.http_port = plain.server_address[1]
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    # -- issuing ----------------------------------------------------------------------------------
    def _issue(self, subject: str, permissions: frozenset[str], claims: dict[str, Any]) -> tuple[str, float]:
        now = time.time()
        token = make_jwt({**claims, "iat": int(now), "exp": int(now + self.lifetime_s),
                          "jti": secrets.token_hex(8)}) if claims else (
            "ya29.test-" + secrets.token_urlsafe(24))
        self.tokens[token] = Issued(subject, permissions, now + self.lifetime_s)
        return token, self.lifetime_s

    def introspect(self, protocol: str, token: str) -> dict[str, Any]:
        with self.lock:
            issued = self.tokens.get(token)
            active = (issued is not None and not issued.revoked
                      and time.time() < issued.expires_at
                      and bool(issued.permissions & PERMISSIONS[protocol])
                      and bool(self.mailbox_access.get(issued.subject)))
            self.introspections.append((protocol, active))
            if not active:
                return {"active": False}
            assert issued is not None
            return {"active": True, "username": sorted(self.mailbox_access[issued.subject])[0]}


class _Handler(BaseHTTPRequestHandler):
    state: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, status: int, body: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode()
        form = dict(urllib.parse.parse_qsl(text))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):  # client_secret_basic
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            form.setdefault("client_id", urllib.parse.unquote(user))
            form.setdefault("client_secret", urllib.parse.unquote(password))
        return form

    def do_GET(self) -> None:  # noqa: N802
        s = self.state
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[-2:] == [".well-known", "openid-configuration"] and parts[0] != "google":
            tenant = parts[0]
            if tenant != TENANT:
                self._send(400, {"error": "invalid_tenant", "error_description":
                                 f"AADSTS90002: Tenant '{tenant}' not found."})
                return
            base = f"{s.authority}/{tenant}"
            self._send(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                             "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                             "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                             "issuer": f"{s.authority}/{tenant}/v2.0"})
            return
        if url.path == "/google/auth":  # the consent page: the test's user always accepts
            query = dict(urllib.parse.parse_qsl(url.query))
            code = secrets.token_urlsafe(16)
            with s.lock:
                s.auth_codes[code] = (query["client_id"], query.get("code_challenge", ""),
                                      query.get("login_hint", ""),
                                      frozenset(query.get("scope", "").split()))
            target = query["redirect_uri"] + "?" + urllib.parse.urlencode(
                {"code": code, "state": query.get("state", "")})
            self._send(302, {}, {"Location": target})
            return
        self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        s = self.state
        form = self._form()
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/introspect/"):
            self._send(200, s.introspect(path.rsplit("/", 1)[1], form.get("token", "")))
            return
        with s.lock:
            s.grants.append(form.get("grant_type", path))
            if path == "/google/token":
                status, body = _google_token(s, form)
            elif path.endswith("/oauth2/v2.0/devicecode"):
                status, body = _microsoft_devicecode(s, form)
            elif path.endswith("/oauth2/v2.0/token"):
                status, body = _microsoft_token(s, form)
            else:
                status, body = 404, {"error": "not_found"}
        self._send(status, body)


def _aad(code: int, error: str, text: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": f"AADSTS{code}: {text}",
                    "error_codes": [code]}


def _microsoft_token(s: TokenServer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    grant = form.get("grant_type", "")
    app = s.apps.get(form.get("client_id", ""))
    if app is None:
        return _aad(700016, "unauthorized_client", f"Application with identifier "
                    f"'{form.get('client_id')}' was not found in the directory '{TENANT}'.")
    if grant == "client_credentials":
        if form.get("client_secret") != app.secret:
            return _aad(7000215, "invalid_client", "Invalid client secret provided.", 401)
        if not form.get("scope", "").endswith("/.default"):
            return _aad(1002012, "invalid_scope", "The provided value for scope is not valid.")
        token, lifetime = s._issue(app.client_id, frozenset(app.roles), {
            "aud": "https://outlook.office365.com", "tid": TENANT, "appid": app.client_id,
            "roles": list(app.roles)})
        return 200, {"token_type": "Bearer", "expires_in": int(lifetime), "access_token": token}
    if grant in ("urn:ietf:params:oauth:grant-type:device_code", "device_code"):
        device = s.device_codes.get(form.get("device_code", ""))
        if device is None:
            return _aad(70019, "expired_token", "Verification code expired.")
        if not device.user:
            return _aad(70016, "authorization_pending", "OAuth 2.0 device flow error. "
                        "Authorization is pending.")
        del s.device_codes[form["device_code"]]
        return 200, _user_tokens(s, app, device.user, _delegated(device.scopes))
    if grant == "refresh_token":
        held = s.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if held is None:
            return _aad(50173, "invalid_grant", "The provided grant has expired due to it "
                        "being revoked, a fresh auth token is needed.")
        return 200, _user_tokens(s, app, held[1], held[2])
    return _aad(900144, "invalid_request", f"unsupported grant_type {grant!r}")


def _delegated(scopes: tuple[str, ...]) -> frozenset[str]:
    return frozenset(scope.rsplit("/", 1)[-1] for scope in scopes
                     if scope not in ("offline_access", "openid", "profile"))


def _user_tokens(s: TokenServer, app: App, user: str,
                 scopes: frozenset[str]) -> dict[str, Any]:
    oid = hashlib.sha256(user.encode()).hexdigest()[:32]
    uid = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:32]}"
    token, lifetime = s._issue(user, scopes, {"aud": "https://outlook.office.com", "tid": TENANT,
                                              "upn": user, "scp": " ".join(sorted(scopes))})
    refresh = "rt-" + secrets.token_urlsafe(24)
    s.refresh_tokens[refresh] = (app.client_id, user, scopes)
    now = int(time.time())
    id_token = make_jwt({"aud": app.client_id, "iss": f"{s.authority}/{TENANT}/v2.0",
                         "iat": now, "nbf": now, "exp": now + 3600, "oid": uid, "tid": TENANT,
                         "preferred_username": user, "name": user.split("@")[0]})
    client_info = _b64url(json.dumps({"uid": uid, "utid": TENANT}).encode())
    return {"token_type": "Bearer", "scope": " ".join(f"https://outlook.office.com/{x}"
                                                      for x in sorted(scopes)),
            "expires_in": int(lifetime), "ext_expires_in": int(lifetime), "access_token": token,
            "refresh_token": refresh, "id_token": id_token, "client_info": client_info}


def _microsoft_devicecode(s: TokenServer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    app = s.apps.get(form.get("client_id", ""))
    if app is None:
        return _aad(700016, "unauthorized_client", "Application not found in the directory.")
    if not app.public:
        return _aad(7000218, "invalid_client", "The request body must contain the following "
                    "parameter: 'client_assertion' or 'client_secret'.", 401)
    user_code = secrets.token_hex(4).upper()
    device = DeviceCode(app.client_id, tuple(form.get("scope", "").split()), user_code)
    code = secrets.token_urlsafe(24)
    s.device_codes[code] = device
    return 200, {"device_code": code, "user_code": user_code,
                 "verification_uri": f"{s.authority}/devicelogin", "expires_in": 900,
                 "interval": 1, "message": f"To sign in, use a web browser to open the page "
                 f"{s.authority}/devicelogin and enter the code {user_code} to authenticate."}


def _google_error(status: int, error: str, text: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": text}


def _google_token(s: TokenServer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    grant = form.get("grant_type", "")
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return _google_jwt_grant(s, form.get("assertion", ""))
    if grant == "refresh_token":
        held = s.refresh_tokens.get(form.get("refresh_token", ""))
        app = s.apps.get(form.get("client_id", ""))
        if app is None or app.secret != form.get("client_secret"):
            return _google_error(401, "invalid_client", "Unauthorized")
        if held is None:
            return _google_error(400, "invalid_grant", "Token has been expired or revoked.")
        token, lifetime = s._issue(held[1], held[2], {})
        return 200, {"access_token": token, "expires_in": int(lifetime), "token_type": "Bearer",
                     "scope": " ".join(sorted(held[2]))}
    if grant == "authorization_code":
        held = s.auth_codes.pop(form.get("code", ""), None)
        app = s.apps.get(form.get("client_id", ""))
        if app is None or app.secret != form.get("client_secret"):
            return _google_error(401, "invalid_client", "Unauthorized")
        if held is None:
            return _google_error(400, "invalid_grant", "Malformed auth code.")
        verifier = form.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != held[1]:
            return _google_error(400, "invalid_grant", "Invalid code verifier.")
        token, lifetime = s._issue(held[2], held[3], {})
        refresh = "1//test-" + secrets.token_urlsafe(24)
        s.refresh_tokens[refresh] = (app.client_id, held[2], held[3])
        return 200, {"access_token": token, "expires_in": int(lifetime), "token_type": "Bearer",
                     "scope": " ".join(sorted(held[3])), "refresh_token": refresh}
    return _google_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")


def _google_jwt_grant(s: TokenServer, assertion: str) -> tuple[int, dict[str, Any]]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        header, payload, signature = assertion.split(".")
        claims = json.loads(_unb64url(payload))
    except ValueError:
        return _google_error(400, "invalid_grant", "Invalid JWT.")
    account = s.service_accounts.get(claims.get("iss", ""))
    if account is None:
        return _google_error(401, "invalid_client", "The OAuth client was not found.")
    key = serialization.load_pem_public_key(account.public_pem)
    try:
        key.verify(_unb64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        return _google_error(400, "invalid_grant", "Invalid JWT Signature.")
    if claims.get("aud") not in (s.google_token_uri, "https://oauth2.googleapis.com/token"):
        return _google_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived "
                             "token and in a reasonable timeframe.")
    subject = str(claims.get("sub", ""))
    scopes = frozenset(str(claims.get("scope", "")).split())
    if subject and subject.lower() not in s.users:
        return _google_error(400, "invalid_grant", "Invalid email or User ID")
    if not scopes or not scopes <= s.delegations.get(account.client_id, set()):
        return _google_error(401, "unauthorized_client", "Client is unauthorized to retrieve "
                             "access tokens using this method, or client not authorized for any "
                             "of the scopes requested.")
    token, lifetime = s._issue(subject, scopes, {})
    s.mailbox_access.setdefault(subject, set()).add(subject.lower())
    return 200, {"access_token": token, "expires_in": int(lifetime), "token_type": "Bearer"}


def service_account_key(client_id: str, email: str) -> tuple[dict[str, Any], bytes]:
    """A new service account's JSON key (as Google's console downloads it) and its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    key = {"type": "service_account", "project_id": "maild-test",
           "private_key_id": secrets.token_hex(20), "private_key": pem,
           "client_email": email, "client_id": client_id,
           "auth_uri": "https://accounts.google.com/o/oauth2/auth",
           "token_uri": "https://oauth2.googleapis.com/token"}
    return key, public


def _write_certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1 that is its own CA (`ca.pem` = `cert.pem`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if (folder / "cert.pem").exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maild test token endpoint")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "ca.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
