"""The full demo: the seed's Q3 project through its whole life, a week of simulated time in seconds.

The loop is closed as the guide means it: the project's work is accepted by its initiator (验收),
one delivery is returned with a reason and handed in again; the training waits on the product
department's task (the guide's own note, confirmed from the receipt), whose lateness is escalated
a day sooner for it; and a weekly report repeats, its second occurrence created on its day.

The real service handles a real embedded mail system; only the clock is simulated. Each step
is what a person does by email (or the clock moving on), followed by what maild must send: the
step fails, and the demo exits non-zero, when an expected email (by recipient and kind) does not
arrive or an unexpected one does. Kinds are read from the `X-Maild-Kind` header of each email.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from maild.app.demo import (
    DemoFailed,
    Scenario,
    Transcript,
    start_or_say_why,
    where_to_look,
)
from maild.core.config import Config

LI, WANG, ZHAO, CHEN, ALEX = ("li.na@corp.example", "wang.zhe@corp.example",
                              "zhao.lei@corp.example", "chen.jing@corp.example",
                              "alex.morgan@corp.example")

PROJECT = """\
项目名称：Q3新品推广项目
发起人/部门：李娜 / 市场部
参与人/部门：产品部、销售部、客服部
目标/背景：新品计划8月上市，3个月内用户增长50%
范围：产品卖点提炼、渠道投放、客诉应对
验收：需要

任务：
任务名称 | 负责人 | 截止日期 | 交付标准 | 备注
新品核心卖点提炼 | 王喆 | 8月5日 | 500字以内卖点说明+用户场景图 | 需结合用户调研数据
渠道推广方案 | 赵磊 | 8月7日 | 包含预算、渠道选择、投放节奏 | 预算上限待财务部确认
客诉应对流程培训 | 陈静 | 8月11日 | FAQ文档+培训签到记录 | 需产品部提供FAQ文档
"""

WEEKLY = """\
任务名称：销售周报
发起人：李娜 / 市场部
负责人：赵磊
优先级：中
截止日期：8月7日
交付标准：本周渠道数据与下周计划
重复：每周五
"""


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Step:
    """At `at`, someone writes (or only the clock moves on); then these emails must arrive."""

    at: datetime
    title: str
    action: Callable[[FullScenario], None] | None
    expect: list[tuple[str, str]] = field(default_factory=list)  # (address, kind)


class FullScenario(Scenario):
    def __init__(self, config: Config, out: TextIO, names: dict[str, str], clock: FakeClock):
        transcript = Transcript(out, names, stamp=lambda: clock().strftime("%a %m-%d %H:%M"))
        super().__init__(config, out, names, transcript)
        self.clock = clock
        self.received: dict[str, list[EmailMessage]] = {}

    def write(self, sender: str, to: str, subject: str, text: str, **kw: Any) -> str:
        return self.send(sender, to, subject, text, date=format_datetime(self.clock()), **kw)

    def answer(self, sender: str, kind: str, text: str, task: str | None = None,
               item: str = "MD-0001", files: tuple[tuple[str, bytes], ...] = ()) -> None:
        """Reply, as a mail client would, to the newest email of `kind` (about `task` of `item`)
        received."""
        token_part = f"-{task.lower().replace('-', '')}-" if task else ""
        mine = [m for m in self.received.get(sender, []) if m["X-Maild-Kind"] == kind
                and token_part in str(m["Reply-To"] or "") and m["X-Maild-Item"] == item]
        if not mine:
            raise DemoFailed(f"{sender} has no {kind} email{' about ' + task if task else ''} to answer")
        original = mine[-1]
        quoted = "\n".join("> " + line for line in self._text(original).splitlines())
        self.write(sender, str(original["Reply-To"] or original["From"]),
                   "回复：" + str(original["Subject"]),
                   f"{text}\n\n在 {original['Date']}，maild 写道：\n{quoted}",
                   in_reply_to=str(original["Message-ID"]),
                   references=f"{original.get('References', '')} {original['Message-ID']}",
                   files=files)

    @staticmethod
    def _text(msg: EmailMessage) -> str:
        body = msg.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""

    def arrived(self) -> list[tuple[str, str]]:
        got = []
        for address in self.boxes:
            for raw in self.collect(address):
                self.transcript.email("OUT", raw)
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                self.received.setdefault(address, []).append(msg)
                got.append((address, str(msg["X-Maild-Kind"])))
        return got


def steps(start: datetime) -> list[Step]:
    def at(days: int, hour: int, minute: int = 0) -> datetime:
        return (start + timedelta(days=days)).replace(hour=hour, minute=minute)

    return [
        Step(at(0, 8, 30), "李娜 sends the project: three tasks, three owners; done work waits for "
                           "her acceptance (验收：需要)",
             lambda s: s.write(LI, s.config.inbox_address, "[项目] Q3新品推广项目", PROJECT),
             [(LI, "receipt"), (WANG, "confirm_request"), (ZHAO, "confirm_request"),
              (CHEN, "confirm_request")]),
        Step(at(0, 8, 35), "The receipt asks whether T-3 waits on T-1 (its note: 需产品部提供FAQ文档); "
                           "李娜 confirms, 陈静 is told",
             lambda s: s.answer(LI, "receipt", "依赖 T-3 T-1"),
             [(LI, "command_ack"), (CHEN, "command_ack")]),
        Step(at(0, 8, 38), "李娜 sends a weekly task: 销售周报, 重复：每周五",
             lambda s: s.write(LI, s.config.inbox_address, "[任务] 销售周报", WEEKLY),
             [(LI, "receipt"), (ZHAO, "confirm_request")]),
        Step(at(0, 8, 40), "王喆 and 陈静 confirm; 赵磊 confirms the weekly report (the whole series)",
             lambda s: (s.answer(WANG, "confirm_request", "确认"),
                        s.answer(CHEN, "confirm_request", "收到，没问题"),
                        s.answer(ZHAO, "confirm_request", "确认", item="MD-0002")),
             [(LI, "confirmed"), (LI, "confirmed"), (LI, "confirmed"), (WANG, "command_ack"),
              (CHEN, "command_ack"), (ZHAO, "command_ack")]),
        Step(at(0, 8, 45), "赵磊 declines T-2, with a reason",
             lambda s: s.answer(ZHAO, "confirm_request", "拒绝：本周在外地出差，建议转给客服部陈静"),
             [(LI, "declined"), (ZHAO, "command_ack")]),
        Step(at(0, 8, 50), "李娜 reassigns T-2 to 陈静: a new confirmation round",
             lambda s: s.answer(LI, "declined", "转派 T-2 给 chen.jing@corp.example"),
             [(CHEN, "confirm_request"), (ZHAO, "command_ack"), (LI, "command_ack")]),
        Step(at(0, 8, 55), "陈静 confirms T-2",
             lambda s: s.answer(CHEN, "confirm_request", "确认", "T-2"),
             [(LI, "confirmed"), (CHEN, "command_ack")]),
        Step(at(0, 9), "Monday 09:00: each owner's weekly digest (the initiator's daily one waits "
                       "until there is something to report)", None,
             [(WANG, "owner_digest"), (CHEN, "owner_digest"), (ZHAO, "owner_digest")]),
        Step(at(0, 14), "王喆 reports progress", lambda s: s.answer(WANG, "command_ack", "进度 25%"),
             [(WANG, "command_ack")]),
        Step(at(1, 9), "Tuesday 09:00: the daily digest says what changed", None,
             [(LI, "digest")]),
        Step(at(1, 10), "陈静 reports a blocker (现状/原因/需支持资源): 李娜 hears at once",
             lambda s: s.answer(CHEN, "command_ack",
                                "问题：培训材料延迟\n现状：FAQ完成一半\n原因：产品部卖点未定稿\n"
                                "需支持资源：请产品部先给出卖点初稿", "T-3"),
             [(LI, "blocker_alert"), (CHEN, "command_ack")]),
        Step(at(2, 9), "Wednesday 09:00: T-1 is due today at 25 %: a reminder, and digest #2",
             None, [(WANG, "reminder"), (LI, "digest")]),
        Step(at(2, 11), "陈静 is unblocked and at 50 %",
             lambda s: s.answer(CHEN, "command_ack", "进度 50%", "T-3"), [(CHEN, "command_ack")]),
        Step(at(3, 9), "Thursday 09:00: T-1 is overdue: owner told; the initiator's digest says so",
             None, [(WANG, "reminder"), (LI, "digest")]),
        Step(at(4, 15), "Friday: T-1 is a working day overdue and T-3 waits on it: escalated to "
                        "the manager a day sooner; 陈静 hands T-2 in, 赵磊 files the weekly report",
             lambda s: (s.answer(CHEN, "command_ack", "完成：渠道方案见附件", "T-2",
                                 files=(("渠道推广方案.xlsx", b"PK demo v1"),)),
                        s.answer(ZHAO, "command_ack", "完成：本周周报已提交", item="MD-0002")),
             [(ALEX, "escalation"), (LI, "digest"), (LI, "review_request"),
              (CHEN, "command_ack"), (ZHAO, "command_ack")]),
        Step(at(4, 15, 30), "李娜 returns T-2 with a reason (same thread, back to 陈静)",
             lambda s: s.answer(LI, "review_request", "退回修改：预算表缺少各渠道的拆分", "T-2"),
             [(CHEN, "returned"), (LI, "command_ack")]),
        Step(at(4, 16, 30), "陈静 hands T-2 in again; 李娜's new review request shows the earlier reason",
             lambda s: s.answer(CHEN, "returned", "完成：已按渠道拆分预算", "T-2",
                                files=(("渠道推广方案v2.xlsx", b"PK demo v2"),)),
             [(LI, "review_request"), (CHEN, "command_ack")]),
        Step(at(4, 16, 45), "李娜 accepts T-2",
             lambda s: s.answer(LI, "review_request", "验收通过", "T-2"),
             [(CHEN, "accepted"), (LI, "command_ack")]),
        Step(at(7, 9), "Monday 09:00: the weekly report's next occurrence is created for 赵磊 "
                       "(due Friday, confirmed once for the series); digests",
             None, [(ZHAO, "occurrence"), (LI, "digest"), (WANG, "owner_digest"),
                    (CHEN, "owner_digest"), (ZHAO, "owner_digest")]),
        Step(at(7, 10), "王喆 hands T-1 in",
             lambda s: s.answer(WANG, "reminder", "完成：卖点说明和用户场景图见附件",
                                files=(("卖点说明.docx", b"PK demo"), ("用户场景图.png", b"PNG demo"))),
             [(LI, "review_request"), (WANG, "command_ack")]),
        Step(at(7, 10, 30), "李娜 accepts T-1: 陈静 hears at once that T-3 may go ahead",
             lambda s: s.answer(LI, "review_request", "验收通过", "T-1"),
             [(WANG, "accepted"), (LI, "command_ack"), (CHEN, "unblocked")]),
        Step(at(7, 11), "陈静 hands T-3 in",
             lambda s: s.answer(CHEN, "unblocked", "完成：FAQ文档和培训签到记录见附件", "T-3",
                                files=(("FAQ文档.docx", b"PK faq"), ("培训签到.xlsx", b"PK sign"))),
             [(LI, "review_request"), (CHEN, "command_ack")]),
        Step(at(7, 11, 15), "李娜 accepts T-3: every task is done; the retrospective request counts "
                            "the work accepted the first time it was handed in",
             lambda s: s.answer(LI, "review_request", "验收通过", "T-3"),
             [(CHEN, "accepted"), (LI, "command_ack"), (LI, "retrospective_request")]),
        Step(at(7, 11, 30), "李娜 closes the project with its retrospective; it is archived",
             lambda s: s.answer(LI, "retrospective_request",
                                "结项\n是否达成目标：是\n未达目标原因：卖点提炼晚了3个工作日\n"
                                "可优化点：培训时间提前3天同步，并纳入部门考核"),
             [(LI, "command_ack"), (WANG, "command_ack"), (CHEN, "command_ack")]),
        Step(at(7, 12), "李娜 stops the weekly report (停止重复): no more occurrences",
             lambda s: s.answer(LI, "receipt", "停止重复", item="MD-0002"),
             [(LI, "command_ack"), (ZHAO, "command_ack")]),
    ]


def run_full_demo(config_path: Path, out: TextIO, *, free_ports: bool = True) -> int:
    from maild.app.service import Service
    from maild.app.wiring import Rules

    started = start_or_say_why(config_path, free_ports=free_ports, out=out)
    if started is None:
        return 1
    mail, config, demo_path = started
    emb = config.embedded_system
    tz = ZoneInfo(config.timezone)
    start = datetime(2026, 8, 3, 8, 30, tzinfo=tz)  # a Monday, no holidays that week
    clock = FakeClock(start)
    names = {p.address: p.name for p in Rules.from_config(config).people.people}
    scenario = FullScenario(config, out, names, clock)
    service = Service.from_config(config, environ={}, clock=clock)
    out.write(f"maild full demo: simulated week from {start:%Y-%m-%d %H:%M %Z}, "
              f"real mail on {emb.host} (IMAP {mail.imap_port}, SMTP {mail.smtp_port})\n")
    status = 0
    try:
        for step in steps(start):
            clock.now = step.at
            scenario.transcript.note(f"{step.at:%a %m-%d %H:%M}  {step.title}")
            if step.action:
                step.action(scenario)
            for _ in range(5):
                if not service.process_batch().fetched:
                    break
            service.tick()
            got = scenario.arrived()
            missing = _minus(step.expect, got)
            unexpected = _minus(got, step.expect)
            if missing or unexpected:
                raise DemoFailed(f"step {step.title!r}: missing {missing}, unexpected {unexpected}")
        folders = [p for p in config.archive_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(folders) != 1 or not (folders[0] / "record.md").exists():
            raise DemoFailed(f"expected one archive folder with record.md, found {folders}")
        if service.store.get_item("MD-0001") is not None:
            raise DemoFailed("the closed project is still in the live database")
        weekly = service.store.get_item("MD-0002")
        if weekly is None or not (weekly.get("series") or {}).get("stopped_at"):
            raise DemoFailed("the weekly report's series is not stopped")
        out.write(f"\n✔ full demo complete: a week in {len(steps(start))} steps; archive written to\n"
                  f"  {folders[0]}\n")
        for line in (folders[0] / "record.md").read_text(encoding="utf-8").splitlines()[:12]:
            out.write(f"  │ {line}\n")
    except DemoFailed as exc:
        out.write(f"\n✘ {exc}\n")
        status = 1
    finally:
        service.close()
        mail.stop()
    out.write("\n" + where_to_look(demo_path, archived=True))
    return status


def _minus(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rest = list(b)
    left = []
    for entry in a:
        if entry in rest:
            rest.remove(entry)
        else:
            left.append(entry)
    return left
