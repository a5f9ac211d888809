"""Live stores of N OPEN items, as a company's would be: projects, tasks and emergencies with 1–5
tasks each, owned and started by 2,000 people, in every task state, with their thread links, their
due moments and the schedule's memory of a digest run earlier today (so nothing is due now).

The documents are clones of what maild itself stored for real emails (one of each task count,
processed by the service on an in-memory inbox), varied in id, people, deadlines and states.
`build(folder, n)` writes an embedded store (then compacted); `copy_to_postgresql` copies one
into PostgreSQL with `maild migrate`'s copy. Runs in a child (`run_child(build_child, …)`).
"""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

PEOPLE = 2000
STATES = ("awaiting_confirmation", "not_started", "in_progress", "in_progress", "blocked",
          "delayed", "done")


def person(k: int) -> tuple[str, str]:
    return f"p{k}@corp.example", f"员工{k}"


def _templates(folder: Path, now: datetime) -> list[dict]:
    """One item per task count (1..5) as maild stores it, from real emails."""
    from maild.adapters.imap import MemoryInbox

    from . import child, corpus

    svc = child.service(child.config(1, 1, str(folder)))
    svc.inbox = MemoryInbox()
    rng = random.Random(3)
    for tasks in range(1, 6):
        svc.inbox.deliver(corpus.make("project_zh" if tasks % 2 else "project_en", tasks, rng,
                                      now, tasks=tasks, tag="open").raw)
    while svc.process_batch().fetched:
        pass
    items = sorted(svc.store.open_items(), key=lambda i: len(i["tasks"]))
    svc.close()
    shutil.rmtree(folder, ignore_errors=True)
    return items


def build(folder: Path, count: int, now: datetime, seed: int = 1) -> dict:
    """An embedded store of `count` open items in `folder` (created); its figures."""
    import json

    from maild.adapters.store import Store
    from maild.app.scheduling import DueIndex
    from maild.app.wiring import Rules
    from maild.core import planner

    from .child import ROOT

    templates = _templates(folder.with_name(folder.name + "-templates"), now)
    rules = Rules.load(ROOT / "rules")
    rng = random.Random(seed)
    store = Store(folder)
    for n in range(1, count + 1):
        template = templates[rng.randrange(5)]
        item_id = f"MD-{n:05d}"
        initiator, initiator_name = person(rng.randrange(PEOPLE))
        created = now - timedelta(days=rng.randint(1, 40), minutes=rng.randint(0, 600))
        item = json.loads(json.dumps(template))
        item.update(id=item_id, initiator=initiator, initiator_name=initiator_name,
                    created_at=created.isoformat(), updated_at=created.isoformat(),
                    title=f"{template['title']} #{n}", root_message_id=f"open-{n}@corp.example")
        for task in item["tasks"]:
            owner, owner_name = person(rng.randrange(PEOPLE))
            state = rng.choice(STATES)
            deadline = now + timedelta(days=rng.randint(3, 60))
            task.update(owner=owner, owner_name=owner_name, state=state,
                        deadline=deadline.replace(hour=18, minute=0, second=0,
                                                  microsecond=0).isoformat(),
                        progress=rng.choice((0, 20, 50, 80)) if state != "done" else 100,
                        assigned_at=created.isoformat(), updated_at=created.isoformat())
            # what the levels already sent (each task is past its confirmation chases)
            task["sent"] = {f"{lv.key}@r1": created.isoformat() for lv in rules.schedules.levels
                            if lv.when == "unconfirmed_hours"}
        store.put_item(item)
        store.link_message(f"open-{n}@corp.example", item_id, None)
        store.link_message(f"maild.open-{n}-r@corp.example", item_id, None)
        for task in item["tasks"]:
            store.link_message(f"maild.open-{n}-{task['id']}@corp.example", item_id, task["id"])
        if n % 2000 == 0:
            store.commit()
    store.meta_set("item_seq", count)
    today = now.date().isoformat()
    for k in range(PEOPLE):  # the day's digests went out this morning
        address = person(k)[0]
        store.put_schedule_entry("digest", address, {"done": today, "snap": {}})
        store.put_schedule_entry("owner_digest", address, {"done": today})
    store.commit()
    index = DueIndex.load(store, rules.schedules, rules.calendar, now)  # stores every due moment
    store.commit()
    store.engine.compact()
    due_now = index.due(now)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("live."))
    store.close()
    return {"items": count, "live_mb": size / 2**20, "due_now": len(due_now or ()),
            "next_due": str(index.next_at()), "people": PEOPLE,
            "planner_module": planner.__name__}


def build_child(out, folder: str, count: int) -> None:
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    out.put(build(Path(folder), count, now))


def copy_to_postgresql(folder: Path, url: str, inbox: str = "collab@corp.example") -> dict:
    """The store in `folder` copied into PostgreSQL at `url` (an empty schema)."""
    from maild.adapters.store import open_store
    from maild.app import migrate

    with open_store(folder, inbox=inbox) as source, open_store(url, inbox=inbox) as target:
        return migrate.copy(source, target)


def copy_child(out, folder: str, url: str) -> None:
    out.put(copy_to_postgresql(Path(folder), url))
