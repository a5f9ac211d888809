"""Group-chat alerts: which notices also go to a WeCom, DingTalk or Feishu/Lark group robot, what
the message says, and the signed HTTP request each platform expects.

Two pure jobs: `alerts_for(notice, config)` → the `ChatAlert`s a notice raises (blockers,
escalations, emergencies), and `request_for(robot, alert, now)` → (url, JSON body) for one
robot, signed as its platform documents it. `chatqueue` stores and posts them.

Surprises worth knowing:
- A chat message never carries a reply address, a token or an email address: only the item
  and task, names, the blocker's words and dates. Anyone in the group can read it, and a group
  can hold people outside the item.
- Signatures: DingTalk signs "timestamp\\nsecret" with HmacSHA256 keyed by the secret, base64,
  URL-encoded, as `timestamp` (ms) and `sign` query parameters; Feishu/Lark computes HmacSHA256
  keyed by "timestamp\\nsecret" over an empty message, base64, sent as `timestamp` (s) and `sign`
  in the JSON body; WeCom's key is in its webhook address and nothing is signed. Both signing
  platforms refuse a timestamp more than an hour old, so a request is signed when it is sent,
  never when it is queued.
- WeCom markdown is capped at 4096 bytes, DingTalk and Feishu at about 20,000: long blocker text
  is cut at 1,500 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

from maild.core.filechatconfig import ChatConfig, Robot
from maild.core.model import Notice

MAX_TEXT = 1500
WORDS = {
    "zh": {"blocker": "【问题反馈】", "escalation": "【升级提醒】", "emergency": "【紧急事务】",
           "owner": "负责人", "situation": "现状", "cause": "原因", "support": "需支持资源",
           "overdue": "已逾期 {n} 天", "due": "截止", "responder": "响应人", "eta": "预计完成",
           "initiator": "发起人", "task": "任务", "reply": "请在邮件中处理（回复 maild 发出的邮件）"},
    "en": {"blocker": "[Blocker]", "escalation": "[Escalation]", "emergency": "[Emergency]",
           "owner": "Owner", "situation": "Situation", "cause": "Cause", "support": "Support needed",
           "overdue": "{n} days overdue", "due": "due", "responder": "Responder", "eta": "ETA",
           "initiator": "Initiator", "task": "Task", "reply": "Handle it by email (reply to maild)"},
}


@dataclass(frozen=True)
class ChatAlert:
    """One message for the group robots: an event, a title and plain lines (no addresses)."""

    event: str  # blocker | escalation | emergency
    item_id: str
    title: str
    lines: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "item_id": self.item_id, "title": self.title,
                "lines": list(self.lines)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatAlert:
        return cls(data["event"], data["item_id"], data["title"], tuple(data["lines"]))


def alerts_for(notice: Notice, config: ChatConfig) -> list[ChatAlert]:
    """The group alerts `notice` raises under `config` (none without robots)."""
    if not config.robots:
        return []
    context = notice.context
    item = context.get("item") or {}
    words = WORDS.get(notice.language[:2], WORDS["en"])
    found: list[ChatAlert] = []
    if notice.template == "blocker_alert" and "blocker" in config.events:
        task, blocker = context.get("task") or {}, context.get("blocker") or {}
        found.append(ChatAlert("blocker", str(item.get("id", "")), _title(
            words["blocker"], item, task), (
            f"{words['owner']}: {_name(task)}",
            f"{words['situation']}: {_cut(blocker.get('situation', ''))}",
            f"{words['cause']}: {_cut(blocker.get('cause', ''))}",
            f"{words['support']}: {_cut(blocker.get('support', ''))}",
            words["reply"])))
    elif notice.template == "escalation" and "escalation" in config.events:
        for entry in context.get("entries", ()) or ():
            brief, task = entry.get("item") or {}, entry.get("task") or {}
            lines = [f"{words['owner']}: {_name(task)}"]
            if entry.get("overdue_days"):
                lines.append(words["overdue"].format(n=entry["overdue_days"]))
            lines.append(words["reply"])
            found.append(ChatAlert("escalation", str(brief.get("id", "")),
                                   _title(words["escalation"], brief, task), tuple(lines)))
    elif (notice.template == "receipt" and item.get("kind") == "emergency"
          and "emergency" in config.events):
        task = (item.get("tasks") or [{}])[0]
        fields = item.get("fields") or {}
        found.append(ChatAlert("emergency", str(item.get("id", "")),
                               f"{words['emergency']} {item.get('id', '')} {item.get('title', '')}",
                               tuple(line for line in (
                                   _cut(fields.get("description", "")),
                                   f"{words['responder']}: {_name(task)}",
                                   f"{words['eta']}: {task.get('deadline_text', '')}",
                                   f"{words['initiator']}: {item.get('initiator_name', '')}",
                                   words["reply"]) if line.split(": ")[-1])))
    if config.scope == "tagged":
        tagged = {a.item_id for a in found if _tagged(context, config.tags)}
        found = [a for a in found if a.item_id in tagged]
    return found


def _title(prefix: str, item: Mapping[str, Any], task: Mapping[str, Any]) -> str:
    task_part = f" {task.get('id', '')} {task.get('name', '')}" if task else ""
    return f"{prefix} {item.get('id', '')} {item.get('title', '')} ·{task_part}".rstrip(" ·")


def _name(task: Mapping[str, Any]) -> str:
    # A name only: an address is never posted to a group.
    name = str(task.get("owner_name") or "")
    dept = str(task.get("owner_department") or "")
    return f"{dept} {name}".strip() if name else dept


def _cut(text: Any) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _tagged(context: Mapping[str, Any], tags: tuple[str, ...]) -> bool:
    item = context.get("item") or {}
    subject = str(item.get("subject") or item.get("title") or "").casefold()
    return any(tag.casefold() in subject for tag in tags)


# ── the platforms' requests ──────────────────────────────────────────────────────────────────


def markdown(alert: ChatAlert) -> str:
    return "\n".join([f"**{alert.title}**", *(f"> {line}" for line in alert.lines)])


def request_for(robot: Robot, alert: ChatAlert, now: datetime) -> tuple[str, bytes]:
    """(url, JSON body) of one post to `robot`, signed at `now` where the platform signs."""
    if robot.platform == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": markdown(alert)[:3800]}}
        return robot.webhook, _json(body)
    if robot.platform == "dingtalk":
        url = robot.webhook
        if robot.secret:
            stamp, sign = dingtalk_sign(robot.secret, now)
            url += ("&" if urlsplit(url).query else "?") + f"timestamp={stamp}&sign={sign}"
        body = {"msgtype": "markdown", "markdown": {"title": alert.title, "text": markdown(alert)}}
        return url, _json(body)
    if robot.platform == "feishu":
        body = {"msg_type": "text", "content": {"text": "\n".join([alert.title, *alert.lines])}}
        if robot.secret:
            stamp, sign = feishu_sign(robot.secret, now)
            body = {"timestamp": stamp, "sign": sign, **body}
        return robot.webhook, _json(body)
    raise ValueError(f"unknown chat platform {robot.platform!r}")


def dingtalk_sign(secret: str, now: datetime) -> tuple[str, str]:
    """DingTalk: HmacSHA256(key=secret, "timestamp_ms\\nsecret"), base64, URL-encoded."""
    stamp = str(int(now.timestamp() * 1000))
    digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    return stamp, quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, now: datetime) -> tuple[str, str]:
    """Feishu/Lark: HmacSHA256(key="timestamp_s\\nsecret", empty message), base64."""
    stamp = str(int(now.timestamp()))
    digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return stamp, base64.b64encode(digest).decode()


def accepted(platform: str, status: int, body: bytes) -> tuple[bool, bool]:
    """(delivered, worth retrying) from a platform's answer: all three answer HTTP 200 with an
    error code in JSON (errcode for WeCom and DingTalk, code for Feishu; 0 is success)."""
    if status >= 500 or status == 429:
        return False, True
    if status != 200:
        return False, False
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return False, True
    code = answer.get("code", answer.get("StatusCode")) if platform == "feishu" else answer.get(
        "errcode")
    if code == 0:
        return True, False
    # Rate limits (WeCom 45009, DingTalk 130101, Feishu 9499/11232) are worth another try.
    return False, code in (45009, 130101, 9499, 11232, -1)


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
