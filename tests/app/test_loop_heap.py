"""The daemon's loop keeps what it loaded at start-up out of the cyclic collector's sight: a full
collection at 50k open items walked millions of store objects (~55 ms, an intake p99 spike)."""

from __future__ import annotations

import gc
from datetime import datetime
from types import SimpleNamespace

import pytest
from conftest import make_mail_system
from conversation import TZ, Conversation, FakeClock, make_config

pytestmark = pytest.mark.integration


def test_the_loop_freezes_the_loaded_state_and_thaws_it_on_return(shipped_config, tmp_path):
    emb = shipped_config.embedded_system
    mail = make_mail_system("embedded", dict(emb.accounts), emb.host)
    convo = Conversation(mail, make_config(mail, tmp_path / "var"),
                         FakeClock(datetime(2026, 8, 3, 8, 30, tzinfo=TZ)))
    try:
        convo.say("li.na@corp.example", "[项目] 冻结测试", "项目名称：冻结测试\n任务：\n"
                  "渠道调研 | 王喆 | 8月20日 | 调研报告\n")
        convo.process()
        service = convo.service
        item = service.store.get_item(service.store.item_ids()[0])
        assert item is not None
        frozen_in_loop: list[int] = []

        def one_turn():
            frozen_in_loop.append(gc.get_freeze_count())
            service.stop_event.set()
            return SimpleNamespace(fetched=1, processed=0, quarantined=0, sent=0, failed=0)

        service.process_batch = one_turn
        assert gc.get_freeze_count() == 0
        service.run()
        assert frozen_in_loop and frozen_in_loop[0] > 10_000  # the interpreter's and the store's
        assert gc.get_freeze_count() == 0  # thawed: nothing stays frozen after the loop
    finally:
        gc.unfreeze()
        convo.close()
        mail.stop()


def test_a_reload_in_the_loop_frees_what_it_replaced(shipped_config, tmp_path):
    """The templates and rules frozen at start-up are in reference cycles: a reload thaws them
    so that the collector frees the old ones, and freezes the new."""
    import weakref
    emb = shipped_config.embedded_system
    mail = make_mail_system("embedded", dict(emb.accounts), emb.host)
    convo = Conversation(mail, make_config(mail, tmp_path / "var"),
                         FakeClock(datetime(2026, 8, 3, 8, 30, tzinfo=TZ)))
    try:
        service = convo.service
        old_templates = weakref.ref(service.renderer._env)  # templates <-> environment
        seen: list[tuple[bool, int]] = []

        def one_turn():
            if not seen:
                service._reload_requested.set()  # as SIGHUP does; the loop reloads next turn
                seen.append((True, 0))
            else:
                seen.append((old_templates() is None, gc.get_freeze_count()))
                service.stop_event.set()
            return SimpleNamespace(fetched=1, processed=0, quarantined=0, sent=0, failed=0)

        service.process_batch = one_turn
        service.run()
        freed, frozen = seen[-1]
        assert freed, "the replaced templates are still alive after the reload"
        assert frozen > 10_000
    finally:
        gc.unfreeze()
        convo.close()
        mail.stop()
