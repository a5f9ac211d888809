"""The embedded mail system's SMTP side: aiosmtpd's protocol with room for an XOAUTH2 initial
response and TCP_NODELAY, AUTH XOAUTH2 (`xoauth2_auth`, refusing a token the way Gmail and
Exchange do: a 334 challenge carrying a JSON error, then 535), and the handler hooks that deliver
into the IMAP side's mailboxes (`SmtpHandler`, a mixin of `EmbeddedMailSystem`).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import socket
from base64 import b64decode
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from maild.core.signin import parse_xoauth2, xoauth2_error

_log = logging.getLogger("maild.embedded")  # the name logs have always shown


class XOAuth2SMTP(SMTP):
    """aiosmtpd's SMTP protocol with room for an XOAUTH2 initial response: a token is 1-3 KB
    and RFC 4954 allows AUTH lines of 12,288 octets, aiosmtpd only 512 (1,001 per line)."""

    line_length_limit = 12288

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": self.line_length_limit})


class TrackedSMTP(XOAuth2SMTP):
    """aiosmtpd's SMTP protocol, with TCP_NODELAY and a registry of open connections for stop()."""

    open_transports: set[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport.get_extra_info("socket"))
        self.open_transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.open_transports.discard(self.transport)  # type: ignore[arg-type]
        super().connection_lost(error)


async def xoauth2_auth(server: SMTP, args: list[str], check: Callable[[str, str], bool],
                       scope: str = "https://mail.google.com/") -> AuthResult:
    """AUTH XOAUTH2 for an aiosmtpd handler's `auth_XOAUTH2`: the initial response (or the
    answer to an empty challenge) holds user and token; `check` (blocking, run in a thread)
    decides. A refusal sends the JSON error challenge, reads the client's empty line, then 535."""
    if len(args) > 1:
        try:
            blob: Any = b64decode(args[1], validate=True)
        except ValueError:
            await server.push("501 5.5.2 Can't decode base64")
            return AuthResult(success=False, handled=True)
    else:
        blob = await server.challenge_auth("", encode_to_b64=False)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
    parsed = parse_xoauth2(blob)
    if parsed is not None and await asyncio.to_thread(check, *parsed):
        return AuthResult(success=True, auth_data=parsed[0])
    await server.challenge_auth(xoauth2_error(scope))
    return AuthResult(success=False, handled=False,
                      message="535 5.7.8 Username and Password not accepted (XOAUTH2)")


def set_nodelay(sock: Any) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def listen_on(host: str, port: int) -> socket.socket:
    """One listening socket (one address family), so that port 0 means one port."""
    sock = socket.create_server((host, port), reuse_port=False)
    set_nodelay(sock)  # Linux: inherited by accepted sockets
    return sock


class SmtpHandler:
    """The SMTP handler hooks aiosmtpd calls on the loop (a mixin of `EmbeddedMailSystem`)."""

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        account = self._by_lower.get(login.strip().lower(), "")
        expected = self._accounts.get(account)
        given = auth_data.password
        ok = expected is not None and hmac.compare_digest(expected.encode("utf-8"), given)
        return AuthResult(success=ok, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        check = self.oauth2_check or (lambda user, token: False)
        return await xoauth2_auth(server, args, check)

    async def handle_RCPT(  # aiosmtpd hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._resolve(address) is None:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        try:
            for rcpt in envelope.rcpt_tos:
                account = self._resolve(rcpt)
                if account is None:  # cannot happen: RCPT checked it
                    continue
                await self._deliver(
                    account, b"Delivered-To: " + rcpt.encode("utf-8") + b"\r\n" + raw
                )
        except Exception:
            _log.exception("delivery failed")
            return "451 4.3.0 Delivery failed"
        return "250 2.0.0 Delivered"
