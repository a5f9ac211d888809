"""OAuth2 sign-in, the pure part: which scopes to ask for, what a token grants, and what to tell
the operator when the token endpoint or the mail server says no.

Microsoft and Google answer a missing permission with terse codes (`AADSTS65001`,
`unauthorized_client`, an IMAP `AUTHENTICATE failed`); `explain_token_error` and
`explain_refusal` turn them into the one thing to change, naming the permission and where it is
granted. `oauth.py` does the talking; this module only reads answers.

Surprises:
- What a token grants is read from the token itself: Microsoft's access tokens are JWTs whose
  `roles` (application permissions) or `scp` (delegated) claim names the permissions. The
  signature is NOT checked (the mail server does that); the claims only feed the explanation.
  Google's tokens are opaque, so the token endpoint's `scope` field is used instead.
- Nothing here may put a secret or a token into a message: explanations quote error codes,
  descriptions, client IDs and mailbox addresses only (`redact` strips anything token-like
  from a server's text before it is shown).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"

# Per provider and flow: the scopes to request by default.
DEFAULT_SCOPES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("microsoft", "client_credentials"): ("https://outlook.office365.com/.default",),
    ("microsoft", "device_code"): ("https://outlook.office.com/IMAP.AccessAsUser.All",
                                   "https://outlook.office.com/SMTP.Send"),
    ("google", "service_account"): (GOOGLE_MAIL_SCOPE,),
    ("google", "refresh_token"): (GOOGLE_MAIL_SCOPE,),
}

# The permission each protocol needs, per Microsoft flow (app-only roles vs delegated scopes).
MICROSOFT_PERMISSION = {
    ("client_credentials", "imap"): "IMAP.AccessAsApp",
    ("client_credentials", "smtp"): "SMTP.SendAsApp",
    ("device_code", "imap"): "IMAP.AccessAsUser.All",
    ("device_code", "smtp"): "SMTP.Send",
}


class SignInError(Exception):
    """maild could not get (or use) an access token; the text says what to change. Never
    carries a secret or a token."""


class TokenSource(Protocol):
    """What the IMAP and SMTP adapters need for XOAUTH2 (`oauth.OAuthTokens` in the daemon)."""

    def token(self) -> str:
        """A usable access token; raises SignInError when none can be had."""
        ...

    def refused(self, token: str, protocol: str = "", server_said: str = "") -> str:
        """The server refused `token`: never hand it out again; returns what to tell the
        operator should a fresh token be refused too."""
        ...


@dataclass(frozen=True)
class SignIn:
    """Who is signing in to what, for explanations: provider, flow, app, mailbox."""

    provider: str
    flow: str
    client_id: str
    mailbox: str
    tenant: str = ""


def default_scopes(provider: str, flow: str) -> tuple[str, ...]:
    return DEFAULT_SCOPES[(provider, flow)]


def token_claims(token: str) -> dict[str, object]:
    """The payload of a JWT access token, unverified; {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def granted_permissions(claims: Mapping[str, object], scope_field: str = "") -> frozenset[str]:
    """The permissions a token carries: JWT `roles` and `scp`, or a token response's `scope`.
    Microsoft's delegated scopes appear without their resource prefix (`SMTP.Send`)."""
    found: set[str] = set()
    roles = claims.get("roles")
    if isinstance(roles, list):
        found.update(str(r) for r in roles)
    scp = claims.get("scp")
    if isinstance(scp, str):
        found.update(scp.split())
    found.update(scope_field.split())
    return frozenset(found)


_AADSTS = re.compile(r"AADSTS(\d+)")

# Microsoft's token endpoint codes that name a fixable cause.
_MICROSOFT_CODES: Mapping[str, str] = {
    "7000215": "the client secret is wrong: copy the secret's Value (not its ID) from Entra ID → "
               "App registrations → {app} → Certificates & secrets into {secret}",
    "7000222": "the client secret has expired: add a new one under Entra ID → App registrations "
               "→ {app} → Certificates & secrets and put it in {secret}",
    "700016": "no app {app} in tenant {tenant}: check [oauth] client_id and tenant (the "
              "app registration's Overview page shows both)",
    "90002": "tenant {tenant} does not exist: set [oauth] tenant to the directory (tenant) ID "
             "or a verified domain",
    "900023": "tenant {tenant} is not a valid tenant ID or domain: check [oauth] tenant",
    "65001": "admin consent is missing: Entra ID → App registrations → {app} → API "
             "permissions → Grant admin consent",
    "70011": "the scope is not valid for this flow: remove [oauth] scopes to use the defaults "
             "({scopes})",
    "7000218": "the device-code flow needs a public client: Entra ID → App registrations → "
               "{app} → Authentication → Allow public client flows = Yes",
    "700082": "the stored sign-in has expired (unused for 90 days): run `maild oauth login`",
    "70008": "the stored sign-in has expired: run `maild oauth login`",
    "50173": "the stored sign-in was revoked (password change or an admin): run "
             "`maild oauth login`",
    "50076": "multi-factor sign-in is required: run `maild oauth login` and complete it",
    "53003": "a Conditional Access policy blocked the sign-in: exclude the app (or this "
             "server's address) in Entra ID → Security → Conditional Access",
    "7000112": "the app is disabled: enable it in Entra ID → Enterprise applications → {app} "
               "→ Properties",
    "50057": "the account is disabled in Entra ID",
}

# Google's token endpoint answers (error, a word of the description, the flow or "" for any).
_GOOGLE_ERRORS: tuple[tuple[str, str, str, str], ...] = (
    ("unauthorized_client", "", "service_account", "domain-wide delegation is not granted: in the Admin console "
     "→ Security → Access and data control → API controls → Manage Domain Wide Delegation, "
     "add client ID {app} with the scope {scopes}"),
    ("invalid_grant", "invalid email", "", "{mailbox} is not a user of the Workspace domain the "
     "service account is delegated for: check [imap]/[smtp] username"),
    ("invalid_grant", "jwt signature", "", "the service account key was deleted or is not this "
     "account's: create a new key (Cloud console → IAM → Service accounts → Keys) and put it "
     "in {secret}"),
    ("invalid_grant", "expired or revoked", "", "the stored refresh token was revoked or has "
     "expired (a consent screen in Testing mode expires them after 7 days): run "
     "`maild oauth login`"),
    ("invalid_grant", "", "service_account", "Google refused the service account's signed "
     "request: check the key in {secret} and this server's clock (it must be right within "
     "minutes)"),
    ("invalid_grant", "", "", "Google refused the grant: run `maild oauth login` again"),
    ("unauthorized_client", "", "", "this OAuth client may not use this grant: create an OAuth "
     "client of type Desktop app and set [oauth] client_id to it"),
    ("invalid_client", "", "", "Google does not know this client or its secret: check [oauth] "
     "client_id and the secret in {secret}"),
    ("invalid_scope", "", "", "the scope is not valid: remove [oauth] scopes to use {scopes}"),
    ("admin_policy_enforced", "", "", "a Workspace admin policy blocks this app: allow it in the "
     "Admin console → Security → API controls → App access control"),
    ("access_denied", "", "", "the sign-in was refused at the consent page: run `maild oauth login` "
     "and accept"),
)


def explain_token_error(who: SignIn, error: str, description: str, *, secret_name: str = "",
                        scopes: tuple[str, ...] = ()) -> str:
    """One line: what the token endpoint refused and what to change."""
    fields = {"app": who.client_id or "(the service account)", "tenant": who.tenant or "?",
              "mailbox": who.mailbox, "secret": secret_name or "the secret",
              "scopes": " ".join(scopes or default_scopes(who.provider, who.flow))}
    said = " ".join(f"{error}: {first_line(description)}".split()).strip(": ")
    hint = ""
    if who.provider == "microsoft":
        code = _AADSTS.search(description or "")
        if code and code.group(1) in _MICROSOFT_CODES:
            hint = _MICROSOFT_CODES[code.group(1)]
        elif error == "invalid_client":
            hint = _MICROSOFT_CODES["7000215"]
    else:
        lowered = (description or "").lower()
        for name, word, flow, text in _GOOGLE_ERRORS:
            if error == name and word in lowered and flow in ("", who.flow):
                hint = text
                break
    provider = "Microsoft" if who.provider == "microsoft" else "Google"
    line = f"{provider} refused a token ({redact(said)})"
    return f"{line}; {hint.format(**fields)}" if hint else line


def explain_refusal(who: SignIn, protocol: str, server_said: str,
                    granted: frozenset[str]) -> str:
    """One line: the token was issued but the IMAP or SMTP server refused it, and why that
    most likely is, from the permissions the token carries."""
    said = redact(first_line(server_said))
    head = f"{protocol.upper()} refused the OAuth2 sign-in for {who.mailbox} ({said})"
    if who.provider == "microsoft":
        need = MICROSOFT_PERMISSION[(who.flow, protocol)]
        app_only = who.flow == "client_credentials"
        if need not in granted:
            kind = "application" if app_only else "delegated"
            return (f"{head}; the token lacks {need}: add the {kind} permission Office 365 "
                    f"Exchange Online → {need} to app {who.client_id} (API permissions → Add a "
                    "permission → APIs my organization uses) and grant admin consent")
        if app_only and protocol == "imap":
            return (f"{head}; the token has {need}, so Exchange lacks the mailbox permission: "
                    f"New-ServicePrincipal -AppId {who.client_id} -ObjectId <enterprise app "
                    f"object ID>; Add-MailboxPermission -Identity {who.mailbox} -User "
                    "<service principal ID> -AccessRights FullAccess")
        if app_only:
            return (f"{head}; the token has {need}: allow SMTP AUTH for the mailbox "
                    f"(Set-CASMailbox {who.mailbox} -SmtpClientAuthenticationDisabled $false) "
                    f"and give the app's service principal SendAs (Add-RecipientPermission "
                    f"{who.mailbox} -Trustee <service principal ID> -AccessRights SendAs)")
        if protocol == "imap":
            return (f"{head}; the token has {need}: enable IMAP for the mailbox "
                    f"(Set-CASMailbox {who.mailbox} -ImapEnabled $true) and sign in as "
                    f"{who.mailbox} or an account with FullAccess to it")
        return (f"{head}; the token has {need}: allow SMTP AUTH for the mailbox "
                f"(Set-CASMailbox {who.mailbox} -SmtpClientAuthenticationDisabled $false)")
    if GOOGLE_MAIL_SCOPE not in granted and granted:
        return (f"{head}; the token lacks the scope {GOOGLE_MAIL_SCOPE}: "
                + ("add it to the domain-wide delegation of the service account"
                   if who.flow == "service_account" else "run `maild oauth login` again"))
    return (f"{head}; turn on IMAP for the user (Admin console → Apps → Google Workspace → "
            f"Gmail → End User Access) and check that {who.mailbox} exists and is licensed")


_SECRETISH = re.compile(r"(?:ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9._-]+|ya29\.[A-Za-z0-9._-]+|"
                        r"\b[A-Za-z0-9+/_-]{40,}={0,2})")


def redact(text: str) -> str:
    """`text` with anything that looks like a token or key replaced by `[redacted]`."""
    return _SECRETISH.sub("[redacted]", text)


def first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """The (user, token) of a decoded XOAUTH2 initial response
    (`user=U\\x01auth=Bearer T\\x01\\x01`), or None when it is not one."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = dict(part.partition("=")[::2] for part in text.split("\x01") if part)
    user, auth = fields.get("user", ""), fields.get("auth", "")
    scheme, _, token = auth.partition(" ")
    if not user or scheme.lower() != "bearer" or not token:
        return None
    return user, token


def xoauth2_error(scope: str) -> bytes:
    """The JSON a server sends (base64, in a 334 challenge) when it refuses an XOAUTH2 token."""
    return json.dumps({"status": "401", "schemes": "bearer", "scope": scope}).encode()
