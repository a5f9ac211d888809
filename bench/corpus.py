"""Structured test emails: projects (2–5 tasks), tasks (1) and emergencies (1), in zh and en.

Deterministic for a seed. Every email is valid for the shipped rules (owners from
rules/people.toml, deadlines in the future), so each yields one receipt + one request per task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

OWNERS_ZH = ["王喆", "赵磊", "陈静", "产品部经理", "wang.zhe@corp.example"]
OWNERS_EN = ["Wang Zhe", "Zhao Lei", "Chen Jing", "zhao.lei@corp.example", "chen.jing@corp.example"]
SENDERS = [("李娜", "li.na@corp.example"), ("Alex Morgan", "alex.morgan@corp.example")]
TEMPLATES = ("project_zh", "project_en", "task_zh", "task_en", "urgent_zh", "urgent_en")


@dataclass(frozen=True)
class Mail:
    raw: bytes
    message_id: str
    template: str
    tasks: int  # confirmation requests it should cause (one receipt comes on top)
    subject: str
    sender: str


def _msg(sender: tuple[str, str], subject: str, body: str, message_id: str, when: datetime,
         extra: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = "collab@corp.example"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def _due(rng: random.Random, today: date) -> str:
    return (today + timedelta(days=rng.randint(20, 90))).isoformat()


def make(template: str, n: int, rng: random.Random, now: datetime, tasks: int | None = None,
         tag: str = "b") -> Mail:
    today = now.date()
    sender = rng.choice(SENDERS)
    mid = f"<bench-{tag}-{n}-{rng.getrandbits(40):x}@corp.example>"
    zh = template.endswith("_zh")
    owners = OWNERS_ZH if zh else OWNERS_EN
    if template.startswith("project"):
        count = tasks or rng.randint(2, 5)
        if zh:
            rows = "\n".join(f"任务{n}-{i} 卖点提炼 | {owners[i % len(owners)]} | {_due(rng, today)} | "
                             f"500字以内说明+用户场景图" for i in range(count))
            subject = f"[项目] 新品推广项目 {n}"
            body = (f"项目名称：新品推广项目 {n}\n发起人/部门：李娜 / 市场部\n参与人/部门：产品部、销售部、客服部\n"
                    f"目标/背景：新品计划上市，3个月内用户增长50%\n范围：卖点提炼、素材制作、渠道投放\n\n"
                    f"任务：\n任务名称 | 负责人 | 截止日期 | 交付标准\n{rows}\n\n请各位负责人确认。\n\n李娜\n市场部经理\n")
        else:
            rows = "\n".join(f"Task {n}-{i} launch material | {owners[i % len(owners)]} | "
                             f"{_due(rng, today)} | Two-page brief with figures" for i in range(count))
            subject = f"[Project] Product launch {n}"
            body = (f"Project: Product launch {n}\nInitiator/Dept: Li Na / Marketing\n"
                    f"Participants/Depts: Product, Sales, Support\nGoal/Background: Grow users 50% "
                    f"in 3 months\nScope: Messaging, material, channels\n\nTasks:\n"
                    f"Task | Owner | Deadline | Deliverable\n{rows}\n\nPlease confirm.\n\nLi Na\n")
    elif template.startswith("task"):
        count = 1
        owner = rng.choice(owners)
        if zh:
            subject = f"[任务] 月度客户满意度报告 {n}"
            body = (f"任务名称：月度客户满意度报告 {n}\n发起人/部门：李娜 / 市场部\n负责人：{owner}\n"
                    f"优先级：高\n截止日期：{_due(rng, today)}\n交付标准：PDF报告，含调研数据与分析\n\n谢谢\n")
        else:
            subject = f"[Task] Monthly customer satisfaction report {n}"
            body = (f"Task: Monthly customer satisfaction report {n}\nInitiator: Li Na / Marketing\n"
                    f"Owner: {owner}\nPriority: High\nDeadline: {_due(rng, today)}\n"
                    f"Deliverable: PDF report with survey data and analysis\n\nThanks,\nLi Na\n")
    else:
        count = 1
        owner = rng.choice(owners)
        # Same shape as the branch above (duplicates): the two templates' words differ, the assembly does not.
        if zh:
            subject = f"[紧急] 支付系统故障 {n}"
            body = (f"紧急事务类型：系统故障\n发起人：李娜\n事务描述：支付接口超时，影响全部线上订单 {n}\n"
                    f"响应人：{owner}\n处理方案：1. 切换备用通道 2. 排查根因\n预计完成时间：{_due(rng, today)}\n")
        else:
            subject = f"[Urgent] Payment outage {n}"
            body = (f"Emergency type: System outage\nInitiator: Li Na\nDescription: Payment API "
                    f"times out for all orders {n}\nResponder: {owner}\nPlan: 1. Fail over 2. Find "
                    f"the root cause\nETA: {_due(rng, today)}\n")
    return Mail(_msg(sender, subject, body, mid, now), mid, template, count, subject, sender[1])


def backlog(count: int, now: datetime, seed: int = 5, tag: str = "b") -> list[Mail]:
    rng = random.Random(seed)
    return [make(rng.choice(TEMPLATES), i, rng, now, tag=tag) for i in range(count)]


def reply(to_message_id: str, subject: str, owner: str, lang: str, n: int, now: datetime) -> bytes:
    """An owner's confirmation, as a mail client writes it (quoted history below)."""
    body = ("确认，按时完成。\n\n发自我的iPhone\n\n------------------ 原始邮件 ------------------\n"
            "发件人: maild\n主题: 请确认\n> 请确认任务\n" if lang == "zh" else
            "Confirm, will deliver on time.\n\nOn Mon, maild <collab@corp.example> wrote:\n"
            "> Please confirm the task\n")
    return _msg(("", owner), "Re: " + subject, body, f"<bench-r-{n}@corp.example>", now,
                {"In-Reply-To": to_message_id, "References": to_message_id})


def big(size: int, now: datetime) -> bytes:
    """A task email carrying one attachment so that the whole email is about `size` bytes."""
    rng = random.Random(20)
    mail = make("task_zh", 0, rng, now, tag="big")
    msg = EmailMessage()
    import email
    parsed = email.message_from_bytes(mail.raw, policy=SMTP)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        msg[name] = parsed[name]
    msg.set_content(parsed.get_content())
    payload = random.Random(7).randbytes(int(size * 3 / 4) - 4096)
    msg.add_attachment(payload, maintype="application", subtype="octet-stream",
                       filename="data.bin")
    return msg.as_bytes(policy=SMTP)
