"""Group-chat alerts: which notices raise them and what they say (never an address or token),
each platform's request checked by a local HTTP stand-in against its documented format and
signature, the durable queue's retries and dedup, and a blocker and an emergency over real
SMTP/IMAP reaching all three robots."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from chatpeer import DING_SECRET, FEISHU_SECRET, ChatPeer
from conversation import TZ, Conversation, FakeClock, make_config

from maild.adapters.chatqueue import ChatQueue
from maild.core.chat import ChatAlert, alerts_for, dingtalk_sign, feishu_sign, request_for
from maild.core.filechatconfig import ChatConfig, Robot, RobotConfig, read_files_chat
from maild.core.model import Notice
from maild.core.tomlreader import ConfigError, StrictReader

NOW = datetime(2026, 8, 3, 10, 0, tzinfo=TZ)
ITEM = {"id": "MD-0001", "title": "Q3新品推广项目", "kind": "project", "initiator": "li.na@corp.example",
        "initiator_name": "李娜", "subject": "[项目] Q3新品推广项目"}
TASK = {"id": "T-2", "name": "渠道推广方案", "owner": "zhao.lei@corp.example", "owner_name": "赵磊",
        "owner_department": "销售部"}
ROBOTS = ChatConfig(robots=(RobotConfig("wecom", webhook_env="W"),))


def _blocker(**item) -> Notice:
    return Notice("blocker_alert", ("li.na@corp.example",), "zh", {
        "item": {**ITEM, **item}, "task": TASK, "actor": {"address": "zhao.lei@corp.example"},
        "blocker": {"situation": "推广素材制作延迟", "cause": "设计部人手不足",
                    "support": "需市场部协调1名设计师临时支援"}}, item_id="MD-0001", task_id="T-2")


def test_a_blocker_alert_names_people_never_their_addresses():
    (alert,) = alerts_for(_blocker(), ROBOTS)
    assert alert.event == "blocker" and "MD-0001" in alert.title and "渠道推广方案" in alert.title
    text = "\n".join([alert.title, *alert.lines])
    assert "销售部 赵磊" in text and "需市场部协调1名设计师临时支援" in text
    assert "@" not in text and "collab+" not in text


@pytest.mark.parametrize("notice,events", [
    (Notice("escalation", ("boss@corp.example",), "en", {"entries": [
        {"item": ITEM, "task": TASK, "overdue_days": 2}]}), ["escalation"]),
    (Notice("receipt", ("li.na@corp.example",), "zh", {"item": {
        **ITEM, "kind": "emergency", "title": "支付系统故障",
        "fields": {"description": "支付接口超时，影响全部线上订单"},
        "tasks": [{**TASK, "deadline_text": "今天下午5点"}]}}), ["emergency"]),
    (Notice("receipt", ("li.na@corp.example",), "zh", {"item": ITEM}), []),
    (Notice("reminder", ("zhao.lei@corp.example",), "zh", {"entries": []}), []),
], ids=["escalation", "emergency", "project-receipt", "owner-reminder"])
def test_which_notices_raise_alerts(notice, events):
    assert [a.event for a in alerts_for(notice, ROBOTS)] == events


def test_only_tagged_items_when_the_scope_says_so_and_nothing_without_robots():
    tagged = ChatConfig(robots=ROBOTS.robots, scope="tagged")
    assert alerts_for(_blocker(), tagged) == []
    assert len(alerts_for(_blocker(subject="[项目][群通知] Q3新品推广项目"), tagged)) == 1
    assert alerts_for(_blocker(), ChatConfig()) == []
    assert alerts_for(_blocker(), ChatConfig(robots=ROBOTS.robots, events=("escalation",))) == []


def test_the_signatures_are_the_documented_ones():
    # DingTalk: ms timestamp; the sign is URL-encoded base64 (its "+" and "/" escaped).
    stamp, sign = dingtalk_sign("SECabc", NOW)
    assert stamp == str(int(NOW.timestamp()) * 1000) and "+" not in sign and "/" not in sign
    # Feishu: s timestamp; the key is "timestamp\nsecret" and the message is empty.
    stamp, sign = feishu_sign("abc", NOW)
    assert stamp == str(int(NOW.timestamp())) and len(sign) == 44


def test_secrets_never_sit_in_the_file():
    with pytest.raises(ConfigError, match="never in the file"):
        read_files_chat(StrictReader(
            {"chat": {"robot": [{"platform": "wecom", "webhook": "https://x"}]}}, "c.toml"))
    reader = StrictReader({"chat": {"robot": [{"platform": "dingtalk", "webhook_env": "D",
                                               "secret_env": "S"}]}}, "c.toml")
    config = read_files_chat(reader)
    reader.reject_unknown()  # every key of a robot is known
    assert config.chat.robots[0].platform == "dingtalk"


@pytest.fixture
def peer():
    clock = FakeClock(NOW)
    server = ChatPeer(clock)
    server.test_clock = clock
    yield server
    server.close()


def _robots(peer) -> list[Robot]:
    urls = peer.urls()
    return [Robot("wecom", urls["wecom"]), Robot("dingtalk", urls["dingtalk"], DING_SECRET),
            Robot("feishu", urls["feishu"], FEISHU_SECRET)]


def test_each_platform_accepts_the_request_as_documented(peer):
    alert = ChatAlert("blocker", "MD-0001", "【问题反馈】 MD-0001 Q3新品推广项目 · T-2 渠道推广方案",
                      ("负责人: 销售部 赵磊", "现状: 推广素材制作延迟"))
    import urllib.request
    for robot in _robots(peer):
        url, body = request_for(robot, alert, NOW)
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            code = json.loads(answer.read())
        assert code.get("errcode", code.get("code")) == 0, (robot.platform, peer.refused)
    assert [p for p, _ in peer.received] == ["wecom", "dingtalk", "feishu"]
    # A wrong secret or a stale timestamp is refused, as the platforms refuse them.
    url, body = request_for(Robot("dingtalk", peer.urls()["dingtalk"], "wrong"), alert, NOW)
    assert peer.handle(url[len(peer.base):], {"Content-Type": "application/json"}, body)[1][
        "errcode"] == 310000
    url, body = request_for(_robots(peer)[2], alert, NOW - timedelta(hours=2))
    assert peer.handle(url[len(peer.base):], {"Content-Type": "application/json"}, body)[1][
        "code"] == 19021


def test_the_queue_retries_keeps_one_copy_and_signs_when_it_sends(peer, tmp_path):
    config = ChatConfig(robots=tuple(RobotConfig(r.platform, webhook_env="x")
                                     for r in _robots(peer)), backoff_initial_s=60, max_attempts=3)
    queue = ChatQueue(tmp_path / "chat", _robots(peer), config)
    alert = ChatAlert("escalation", "MD-0001", "【升级提醒】 MD-0001", ("负责人: 王喆",))
    assert queue.put("maild.abc-0", alert, NOW) == 3
    assert queue.put("maild.abc-0", alert, NOW) == 0  # the same email handled again
    for path in queue.pending():
        assert "127.0.0.1" not in path.read_text() and DING_SECRET not in path.read_text()
    peer.fail_next["dingtalk"] = 1
    assert queue.drain(NOW) == (2, 0)
    assert len(queue.pending()) == 1  # DingTalk: 502, waits about a minute
    assert queue.drain(NOW + timedelta(seconds=30)) == (0, 0)
    later = NOW + timedelta(hours=3)  # signed at sending time: not stale
    peer.test_clock.now = later
    assert queue.drain(later) == (1, 0) and queue.pending() == []
    assert sorted(p for p, _ in peer.received) == ["dingtalk", "feishu", "wecom"]
    assert queue.put("maild.abc-0", alert, later) == 0  # sent: never again


def test_a_refused_robot_is_not_retried_forever(peer, tmp_path):
    robots = [Robot("dingtalk", peer.urls()["dingtalk"], "wrong-secret")]
    queue = ChatQueue(tmp_path / "chat", robots,
                      ChatConfig(robots=(RobotConfig("dingtalk", webhook_env="x"),)))
    queue.put("maild.x-0", ChatAlert("blocker", "MD-0001", "t", ("l",)), NOW)
    assert queue.drain(NOW) == (0, 1)
    assert list((tmp_path / "chat").glob("*.failed"))


@pytest.mark.integration
def test_a_blocker_and_an_emergency_reach_every_robot(embedded_mail, tmp_path, peer):
    urls = peer.urls()
    robots = [{"platform": "wecom", "webhook_env": "T_WECOM", "name": "市场部群"},
              {"platform": "dingtalk", "webhook_env": "T_DING", "secret_env": "T_DING_SECRET"},
              {"platform": "feishu", "webhook_command": f"echo {urls['feishu']}",
               "secret_env": "T_FEISHU_SECRET"}]
    clock = peer.test_clock
    config = make_config(embedded_mail, tmp_path / "var", **{"chat.robot": robots})
    environ = {"MAILD_SECRET": "conversation-test", "T_WECOM": urls["wecom"],
               "T_DING": urls["dingtalk"], "T_DING_SECRET": DING_SECRET,
               "T_FEISHU_SECRET": FEISHU_SECRET}
    convo = Conversation.__new__(Conversation)
    convo.mail, convo.config, convo.clock, convo._seen = embedded_mail, config, clock, {}
    from maild.app.service import Service
    convo.service = Service.from_config(config, environ=environ, clock=clock)
    try:
        for address in config.embedded_system.accounts:
            convo.inbox(address)
        convo.say("li.na@corp.example", f"[项目] 渠道拓展 {uuid.uuid4().hex[:6]}",
                  "项目名称：渠道拓展\n目标/背景：新渠道\n任务：\n渠道推广方案 | 赵磊 | 8月15日前 | 预算与节奏")
        convo.process()
        (request,) = convo.inbox("zhao.lei@corp.example")
        convo.reply("zhao.lei@corp.example", request,
                    "问题：推广素材制作延迟\n现状：完成30%\n原因：设计部人手不足\n需支持资源：协调1名设计师")
        convo.process()
        for platform in ("wecom", "dingtalk", "feishu"):
            (text,) = peer.texts(platform)
            assert "渠道推广方案" in text and "设计部人手不足" in text and "赵磊" in text
            assert "@" not in text and "collab+" not in text, text
        convo.say("li.na@corp.example", "[紧急] 支付系统故障",
                  "紧急事务类型：系统故障\n事务描述：支付接口超时，影响全部线上订单\n响应人：王喆\n"
                  "处理方案：切换备用通道\n预计完成时间：今天下午5点")
        convo.process()
        assert all(len(peer.texts(p)) == 2 for p in ("wecom", "dingtalk", "feishu"))
        assert "支付接口超时" in peer.texts("feishu")[1]
        assert peer.refused == []
    finally:
        convo.close()
