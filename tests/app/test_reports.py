"""`maild digest --preview`: what the next schedule tick would send, rendered, nothing recorded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.adapters.store import Store
from maild.app.reports import digest_preview
from maild.core.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
LI, WANG = "li.na@corp.example", "wang.zhe@corp.example"
MONDAY = datetime(2026, 8, 10, 9, 5, tzinfo=TZ)  # the weekly owner digests and the daily ones
START = "2026-08-03T10:00:00+08:00"
SLOTS = ("digest", "owner_digest")  # a digest's own record: (kind, address, date)


def task(n: int, owner: str, state: str, deadline: str, progress: int = 0) -> dict[str, Any]:
    return {"id": f"T-{n}", "name": f"任务{n}", "owner": owner, "owner_name": owner.split(".")[0],
            "deadline": deadline, "state": state, "progress": progress, "round": 1,
            "confirmed_at": None if state == "awaiting_confirmation" else START,
            "updated_at": START}


def item(item_id: str, initiator: str, *tasks: dict[str, Any]) -> dict[str, Any]:
    return {"id": item_id, "kind": "project", "title": f"项目 {item_id}", "language": "zh",
            "state": "open", "initiator": initiator, "initiator_name": initiator.split(".")[0],
            "created_at": START, "root_message_id": f"{item_id}@corp.example",
            "tasks": list(tasks)}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The shipped config over a store of two items: 李娜 starts MD-0001 (王喆's overdue T-1,
    her own unconfirmed T-2) and owns T-1 of 王喆's MD-0002."""
    config = load_config(ROOT / "config.toml", {"maild.data_dir": str(tmp_path / "var"),
                                                "maild.secret_file": str(tmp_path / "secret")})
    store = Store(config.data_dir)
    store.put_item(item("MD-0001", LI,
                        task(1, WANG, "in_progress", "2026-08-05T18:00:00+08:00", 10),
                        task(2, LI, "awaiting_confirmation", "2026-08-20T18:00:00+08:00")))
    store.put_item(item("MD-0002", WANG,
                        task(1, LI, "in_progress", "2026-08-12T18:00:00+08:00", 40)))
    store.commit()
    store.close()
    return config


def test_preview_shows_one_digest_to_someone_who_starts_and_owns_tasks(config: Config) -> None:
    previews = digest_preview(config, MONDAY)
    mine = [p for p in previews if p["to"] == [LI]]
    assert [p["kind"] for p in mine] == ["digest"]
    (digest,) = mine
    # one email: both digests' slots and every level either carries are recorded with it
    kinds = [record[0] for record in digest["records"]]
    assert kinds.count("digest") == 1 and kinds.count("owner_digest") == 1
    assert {r[2].split("@")[0] for r in digest["records"] if r[0] not in SLOTS} == {
        "unconfirmed_owner", "unconfirmed_initiator", "overdue", "overdue_manager"}
    text = digest["text"]
    assert "你的任务" in digest["subject"]
    # her own tasks first (confirm / decline her T-2), then the item she started
    assert text.index("你负责的未完成任务") < text.index("MD-0002 T-1") < text.index("事项一览")
    assert text.count("MD-0001 T-2") == 2
    # every level due is in some email of the preview, once per reader
    levels = [(*r, p["to"][0]) for p in previews for r in p["records"] if r[0] not in SLOTS]
    assert len(levels) == len(set(levels))


def test_preview_records_nothing(config: Config) -> None:
    first = digest_preview(config, MONDAY)
    assert digest_preview(config, MONDAY) == first
