"""Which recipients a bounce says could not be reached: from DSN fields, else from NDR prose.

`failed_recipients(blocks, text, looks_like_bounce)` is the one job; `decode` calls it and puts the
result in `Inbound.failed_recipients` so the workflow can mark an owner unreachable. Pure.

Surprises, all deliberate:

- A `message/delivery-status` part (RFC 3464) is authoritative: its per-recipient blocks give
  `Final-Recipient` (else `Original-Recipient`) where `Action: failed`. When such a part exists,
  the prose is not read at all, so a delay warning (`Action: delayed`) names nobody.
- Without one, the human text is read only when the email already looks like a bounce (null
  Return-Path, MAILER-DAEMON/postmaster, an NDR subject such as 系统退信): an address counts when
  its line also says why it failed ("User unknown", "550 5.1.1", "不存在", "无法送达" …), when it
  heads a Postfix/qmail `<addr>:` line followed by such a reason, or when it is listed under
  "Delivery has failed to these recipients" / "未能送达以下收件人".
- The copy of the original message at the end of an NDR is never read: its To: line names the
  recipient too, but so would any forward.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_ADDRESS = r"[A-Za-z0-9._%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_ADDRESS_RE = re.compile(_ADDRESS)
_FAILURE = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox)|does not exist|doesn't exist|"
    r"not found|couldn't be found|could not be found|address rejected|recipient rejected|"
    r"mailbox (?:unavailable|full|disabled)|invalid (?:recipient|mailbox|address)|"
    r"wasn't delivered|was not delivered|could not be delivered|undeliverable|"
    r"\b5\d\d[ -]5\.\d{1,3}\.\d{1,3}\b|\b55[0-4]\b|"
    r"不存在|无法送达|無法送達|未能送达|投递失败|無法投遞|拒收|被拒|退信原因",
    re.IGNORECASE)
_LEADING_ADDRESS = re.compile(rf"^\s*<?({_ADDRESS})>?\s*[:：]\s*(.*)$")
# Regex tables look alike (duplicates, also sentences): the words differ, the shape is re.compile.
_LIST_HEADING = re.compile(
    r"delivery has failed to these recipients|failed to deliver to the following|"
    r"could not be delivered to (?:one or more|the following)|following (?:recipients?|addresses)|"
    r"未能(?:成功)?送达以下收件人|以下收件人|无法投递到以下", re.IGNORECASE)
_ORIGINAL_COPY = re.compile(
    r"^\s*(?:-+\s*)?(?:below this line is a copy|original message|原邮件(?!信息)|原始邮件|"
    r"returned message|undelivered message)", re.IGNORECASE)


NDR_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery (?:has )?failed|mail delivery failed|"
    r"returned mail|returned to sender|failure notice|non[- ]?delivery|系统退信|系統退信|退信|"
    r"投递失败|投遞失敗|无法投递|未能送达|發送失敗|邮件被退回",
    re.IGNORECASE)
DAEMON_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|noreply-dmarc|bounces?)@",
                           re.IGNORECASE)


def bounce_signal(content_type: str, return_path: str | None, sender: str, subject: str,
                  in_reply_to: str | None = None) -> str | None:
    """Why an email's envelope says it is a bounce, or None (the body is not looked at)."""
    if content_type.lower() == "multipart/report":
        return "multipart/report delivery notification"
    if (return_path or "").strip() == "<>":
        return "null Return-Path"
    if DAEMON_SENDER.match(sender):
        return f"sent by {sender}"
    if NDR_SUBJECT.search(subject) and not in_reply_to:
        return "non-delivery subject"
    return None


def _dedupe(addresses: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(address.lower() for address in addresses))


def _from_blocks(blocks: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    found: list[str] = []
    for block in blocks:
        if not block.get("action", "").strip().lower().startswith("failed"):
            continue
        recipient = block.get("final-recipient") or block.get("original-recipient") or ""
        match = _ADDRESS_RE.search(recipient.rpartition(";")[2] or recipient)
        if match:
            found.append(match.group(0))
    return _dedupe(found)


def _from_text(text: str) -> tuple[str, ...]:
    lines: list[str] = []
    for line in text.splitlines():
        if _ORIGINAL_COPY.match(line):
            break
        lines.append(line)
    found: list[str] = []
    listing = False
    for number, line in enumerate(lines):
        addresses = _ADDRESS_RE.findall(line)
        if _LIST_HEADING.search(line):
            listing = True
            continue
        if listing:
            bare = line.strip().strip("<>")
            if _ADDRESS_RE.fullmatch(bare):
                found.append(bare)
                continue
            if line.strip():
                listing = False
        leading = _LEADING_ADDRESS.match(line)
        if leading:
            following = next((later for later in lines[number + 1:number + 3] if later.strip()), "")
            if _FAILURE.search(leading.group(2)) or (not leading.group(2) and _FAILURE.search(following)):
                found.append(leading.group(1))
                continue
        if addresses and _FAILURE.search(line):
            found.extend(addresses)
    return _dedupe(found)


def parse_status_text(text: str) -> list[dict[str, str]]:
    """The field blocks of a delivery-status body given as text (blank-line separated)."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block: dict[str, str] = {}
        for line in chunk.split("\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip() and not name.startswith((" ", "\t")):
                block[name.strip().lower()] = value.strip()
        if block:
            blocks.append(block)
    return blocks


def failed_recipients(blocks: list[Mapping[str, str]] | None, text: str,
                      looks_like_bounce: bool) -> tuple[str, ...]:
    """Failed recipients of a bounce; `blocks` is None when the email has no delivery-status part."""
    if blocks is not None:
        return _from_blocks(blocks)
    if not looks_like_bounce:
        return ()
    return _from_text(text)
