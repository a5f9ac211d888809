"""Phase 4: 2,000 owners, 20,000 open tasks: plan and render every email due Monday 09:00.

Uses `maild.core.planner.plan(items, now, rules, cal, people, state)` when it is importable; until then
the phase reports n/a. Runs in a child so that the planner's memory is its own. `notices` counts
emails: one per person and run (a digest carries the levels due to its reader, and one email
lists someone's other levels; on the owner digest's weekday, everyone here being an initiator
and an owner, the owner digest rides in the initiator's), so it is not the number of levels
due. Emails are rendered without reply addresses (the service signs one per task and button on
top: see docs/performance-schedules.md).
"""

from __future__ import annotations

import importlib.util


def available() -> bool:
    return importlib.util.find_spec("maild.core.planner") is not None


def scenario(owners: int, tasks: int):
    """The phase's world: (items, now, rules, calendar, people, renderer). Monday 09:00, 5 tasks
    per item, every person an owner, an initiator and (one in ten) a manager."""
    import tomllib
    from datetime import datetime, timedelta

    from maild.core.model import Person
    from maild.core.people import Directory
    from maild.core.planner import load_schedule_rules
    from maild.core.workcal import load_calendar
    from maild.mail.render import Renderer

    from .child import config

    cfg = config(1, 1, "/tmp/maild-bench-sched-unused")
    data = tomllib.loads((cfg.rules_dir / "schedules.toml").read_text("utf-8"))
    rules, cal = load_schedule_rules(data), load_calendar(data, cfg.timezone)
    people = Directory(tuple(
        Person(f"Person {i}", f"p{i}@corp.example", f"D{i % 40}",
               manager=f"p{i // 10}@corp.example" if i >= 10 else "")
        for i in range(owners)))
    now = datetime(2026, 9, 7, 9, 0, tzinfo=cfg.tz)  # a Monday (workday), 09:00
    created = now - timedelta(days=10)
    items, per_item = [], 5
    for n in range(tasks // per_item):
        item_tasks = []
        for k in range(per_item):
            state = ("awaiting_confirmation", "confirmed", "in_progress")[(n + k) % 3]
            due = now + timedelta(days=(n + k) % 21 - 7, hours=9)
            item_tasks.append({
                "id": f"T-{k + 1}", "name": f"任务 {n}-{k}", "owner": f"p{(n * per_item + k) % owners}@corp.example",
                "owner_name": "Person", "deadline": due.isoformat(), "state": state,
                "progress": (n * 7 + k * 13) % 100,
                "confirmed_at": None if state == "awaiting_confirmation" else created.isoformat(),
                "updated_at": created.isoformat(), "round": 1})
        items.append({"id": f"MD-{n + 1:05d}", "kind": "project", "title": f"项目 {n}",
                      "language": "zh" if n % 2 else "en", "state": "open",
                      "initiator": f"p{(n * 7) % owners}@corp.example", "initiator_name": "Person",
                      "created_at": created.isoformat(),
                      "root_message_id": f"MD-{n + 1:05d}@corp.example", "tasks": item_tasks})
    renderer = Renderer(cfg.templates_dir, timezone=cfg.timezone, inbox_address=cfg.inbox_address,
                        from_name=cfg.from_name)
    return items, now, rules, cal, people, renderer


def run(out, owners: int, tasks: int) -> None:
    import gc
    import time

    from maild.core.planner import plan

    items, now, rules, cal, people, renderer = scenario(owners, tasks)
    gc.disable()  # as `Service.run_schedules` does for the length of a run
    t0 = time.perf_counter()
    planned, _state = plan(items, now, rules, cal, people, {})
    t_plan = time.perf_counter() - t0
    kinds: dict[str, int] = {}
    for i, p in enumerate(planned):
        renderer.render(p.notice, message_id=f"plan-{i}@bench", date=now, reply_address=None)
        kinds[p.notice.template] = kinds.get(p.notice.template, 0) + 1
    total = time.perf_counter() - t0
    gc.enable()
    out.put({"plan_s": t_plan, "total_s": total, "notices": len(planned), "kinds": kinds})


def costs(owners: int = 2000, tasks: int = 20000, repeat: int = 5) -> str:
    """Where phase 4's time goes, as a table: plan seconds, then render ms per email by kind
    (median of `repeat` runs; the machine is shared). The cycle collector is paused during each
    run, as in `run` and `Service.run_schedules`. `python -m bench.schedules [OWNERS TASKS]`"""
    import gc
    import statistics
    import time

    from maild.core.planner import plan

    items, now, rules, cal, people, renderer = scenario(owners, tasks)
    plans, per_kind = [], {}
    for _ in range(repeat):
        gc.collect()  # the last run's garbage, not timed
        gc.disable()
        t0 = time.perf_counter()
        planned, _state = plan(items, now, rules, cal, people, {})
        plans.append(time.perf_counter() - t0)
        spent: dict[str, list[float]] = {}
        for i, p in enumerate(planned):
            t1 = time.perf_counter()
            renderer.render(p.notice, message_id=f"plan-{i}@bench", date=now, reply_address=None)
            spent.setdefault(p.notice.template, []).append(time.perf_counter() - t1)
        gc.enable()
        for kind, times in spent.items():
            per_kind.setdefault(kind, []).append((sum(times), len(times)))
        del planned
    lines = [f"plan {statistics.median(plans):.3f} s  ({owners} owners, {tasks} tasks, median of "
             f"{repeat})"]
    for kind, runs in sorted(per_kind.items()):
        total = statistics.median(s for s, _ in runs)
        count = runs[0][1]
        lines.append(f"{kind:13s} {count:6d} emails  {total / count * 1000:.3f} ms/email  "
                     f"{total:.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(costs(*map(int, sys.argv[1:3])))
