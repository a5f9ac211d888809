"""`python -m bench [--quick] [--only PHASES] [--backlog N] [--growth SIZES] [--open SIZES]`: run
every phase, print one table, then one JSON line.

Progress goes to stderr; stdout carries the table and, last, the JSON object. PostgreSQL figures
need Debian's `postgresql` (the bench starts its own server, as the tests do); without it they
are n/a. Roundup comes from the `bench` extra, which `make bench` installs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from . import (
    backlog,
    bigmail,
    growth,
    latency,
    openitems,
    parse,
    peer,
    schedintake,
    schedules,
    tablefile,
)
from .harness import run_child
from .progress import note
from .servers import MailServers

SIZES = {
    "full": dict(lat_rounds=60, lat_blocks=3, backlog=10000, backlog_reps=1,
                 growth=(0, 10000, 50000), open_items=2000, growth_batch=400, growth_reps=5,
                 owners=2000, tasks=20000, big=20 * 2**20, big_reps=3, parse_iter=200,
                 peer=200, peer_reps=2, open=(0, 1000, 10000, 50000), open_rounds=20,
                 backlog_one_core=3000, table_iter=60),
    "quick": dict(lat_rounds=8, lat_blocks=2, backlog=150, backlog_reps=1,
                  growth=(0, 2000, 10000), open_items=200, growth_batch=40, growth_reps=1,
                  owners=100, tasks=500, big=20 * 2**20, big_reps=1, parse_iter=30,
                  peer=20, peer_reps=1, open=(0, 1000), open_rounds=6, backlog_one_core=150, table_iter=15),
}
TARGETS = {"latency_added_p50_ms": ("<=", 20), "latency_added_p99_ms": ("<=", 100),
           "backlog_ratio_to_floor": (">=", 0.6), "roundup_ratio": (">=", 10),
           "growth_ratio": ("<=", 1.2), "schedule_plan_render_s": ("<=", 3),
           "peak_rss_mb": ("<=", 150), "big_email_rss_ratio": ("<=", 4), "parse_ms": ("<=", 3),
           "xlsx_1mb_added_ms": ("<=", 50),
           "open_latency_p50_ms": ("<=", 20), "open_latency_p99_ms": ("<=", 100),
           "commit_ratio": ("<=", 1.2), "startup_s_50k": ("<=", 2), "items_s_50k": ("<=", 0.5),
           "rss_tinydb_mb": ("<=", 200), "rss_postgresql_mb": ("<=", 120),
           "tick_idle_ms": ("<=", 5), "schedule_run_s": ("<=", 3),
           "schedule_enqueued_s": ("<=", 3),
           "schedule_intake_p99_ms": ("<=", 200), "backlog_ratio_one_core": (">=", 0.45),
           "roundup_cost_ratio": ("<=", 0.5)}


def _fmt(value, unit="", digits=1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _verdict(key: str, value) -> str:
    if value is None:
        return "n/a"
    op, limit = TARGETS[key]
    ok = value <= limit if op == "<=" else value >= limit
    return ("met" if ok else "MISSED") + f" ({op} {limit})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    ap.add_argument("--only", default="latency,backlog,growth,schedules,bigmail,parse,peer,"
                    "open,schedintake,tablefile",
                    help="comma-separated phases to run (default: all)")
    ap.add_argument("--backlog", type=int, metavar="N", help="backlog size instead of the mode's")
    ap.add_argument("--growth", metavar="SIZES",
                    help="comma-separated archived sizes instead of the mode's, e.g. 0,50000")
    ap.add_argument("--open", metavar="SIZES",
                    help="comma-separated open-item sizes instead of the mode's, e.g. 0,50000")
    ap.add_argument("--no-postgresql", action="store_true", help="the embedded store only")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    s = dict(SIZES[mode])
    if args.backlog:
        s["backlog"] = args.backlog
    if args.growth:
        s["growth"] = tuple(int(n) for n in args.growth.split(","))
    if args.open:
        s["open"] = tuple(int(n) for n in args.open.split(","))
    only = set(args.only.split(","))
    started = time.monotonic()
    res: dict = {}
    servers = MailServers().start()
    try:
        if "latency" in only:
            note("phase 1: latency")
            res["latency"] = latency.run(servers, s["lat_rounds"], s["lat_blocks"])
        if "backlog" in only:
            note(f"phase 2: backlog of {s['backlog']}")
            res["backlog"] = backlog.run(servers, s["backlog"], s["backlog_reps"])
            note(f"phase 2b: backlog of {s['backlog_one_core']}, maild on one core")
            res["backlog_one_core"] = backlog.run(servers, s["backlog_one_core"], 1,
                                                  one_core=True)
        if "growth" in only:
            note(f"phase 3: growth {s['growth']}")
            res["growth"] = growth.run(servers, s["growth"], s["open_items"], s["growth_batch"],
                                       s["growth_reps"])
        if "schedules" in only:
            note("phase 4: schedules")
            if schedules.available():
                try:
                    res["schedules"] = run_child(schedules.run, s["owners"], s["tasks"])
                except Exception as exc:  # the planner's API is still moving: say so, carry on
                    res["schedules"] = {"error": repr(exc)[:200]}
            else:
                res["schedules"] = {"error": "n/a (planner not available)"}
        if "bigmail" in only:
            note("phase 5: a 20 MB email")
            res["bigmail"] = bigmail.run(servers, s["big"], s["big_reps"])
        if "parse" in only:
            note("phase 6: parse cost")
            res["parse"] = run_child(parse.run, s["parse_iter"])
        if "peer" in only:
            note("phase 7: Roundup's mail gateway")
            res["peer"] = peer.run(servers, s["peer"], s["peer_reps"])
        if "open" in only:
            note(f"phase 8: open items {s['open']}")
            pg = None if args.no_postgresql else _postgresql()
            try:
                res["open"] = openitems.run(servers, s["open"], s["open_rounds"], pg)
            finally:
                if pg is not None:
                    pg.stop()
        if "schedintake" in only:
            note(f"phase 9: a schedule run of {s['owners']}/{s['tasks']} in the daemon")
            res["schedintake"] = schedintake.run(servers, s["owners"], s["tasks"])
        if "tablefile" in only:
            note("phase 10: a 1 MB .xlsx against a pasted table")
            res["tablefile"] = run_child(tablefile.run, s["table_iter"])
    finally:
        servers.stop()
    summary = summarize(res, s)
    summary.update(mode=mode, elapsed_s=round(time.monotonic() - started, 1),
                   cpus=os.cpu_count(), python=platform.python_version())
    print_table(res, summary, s)
    print(json.dumps(summary, ensure_ascii=False, sort_keys=False))
    return 0


def _postgresql():
    """A PostgreSQL server of the bench's own (tests/pgserver.py), or None when not installed."""
    sys.path.insert(0, str(child_root() / "tests"))
    from pgserver import PgServer, pg_bin

    if pg_bin() is None:
        note("PostgreSQL is not installed: its figures are n/a (apt-get install postgresql)")
        return None
    return PgServer().start()


def child_root():
    from .child import ROOT
    return ROOT


def _open_figures(res: dict) -> dict:
    """The issue's keys from phase 8 (by size, embedded store; PostgreSQL alongside)."""
    op = res.get("open") or {}
    by = op.get("by_engine", {})
    tiny, pg = by.get("tinydb", {}), by.get("postgresql", {})

    def per_size(engine: dict, key: str, digits: int = 1) -> dict | None:
        return {str(k): _r(v.get(key), digits) for k, v in engine.items()} or None

    def at(engine: dict, size: int, key: str):
        return engine.get(size, {}).get(key)

    sizes = sorted(tiny)
    big = max(sizes) if sizes else None
    small = 1000 if 1000 in tiny else (min((x for x in sizes if x), default=None))
    commit_ratio = None
    if big is not None and at(tiny, big, "reference_commit_ms"):  # alternated with a 1k store
        commit_ratio = at(tiny, big, "commit_ms") / at(tiny, big, "reference_commit_ms")
    elif big is not None and small is not None and at(tiny, small, "commit_ms"):
        commit_ratio = at(tiny, big, "commit_ms") / at(tiny, small, "commit_ms")
    return {
        "open_items_sizes": sizes or None,
        "open_items_latency_p50_ms": per_size(tiny, "added_p50_ms"),
        "open_items_latency_p99_ms": per_size(tiny, "added_p99_ms"),
        "commit_ms": per_size(tiny, "commit_ms", 2),
        "commit_ratio": _r(commit_ratio, 2),
        "commit_reference_ms": per_size(tiny, "reference_commit_ms", 2),
        "startup_s": per_size(tiny, "startup_s", 2),
        "items_s": per_size(tiny, "items_s", 2),
        "status_s": per_size(tiny, "status_s", 2),
        "show_s": per_size(tiny, "show_s", 2),
        "tick_idle_ms_by_size": per_size(tiny, "tick_ms", 2),
        "daemon_rss_mb": per_size(tiny, "peak_rss_mb"),
        "startup_s_50k": _r(at(tiny, 50000, "startup_s"), 2),
        "items_s_50k": _r(at(tiny, 50000, "items_s"), 2),
        "tick_idle_ms": _r(at(tiny, big, "tick_ms"), 2) if big is not None else None,
        "open_latency_p50_ms": _r(at(tiny, big, "added_p50_ms")) if big is not None else None,
        "open_latency_p99_ms": _r(at(tiny, big, "added_p99_ms")) if big is not None else None,
        "rss_tinydb_mb": _r(at(tiny, big, "peak_rss_mb")) if big is not None else None,
        "postgresql": {"latency_p50_ms": per_size(pg, "added_p50_ms"),
                       "latency_p99_ms": per_size(pg, "added_p99_ms"),
                       "commit_ms": per_size(pg, "commit_ms", 2),
                       "startup_s": per_size(pg, "startup_s", 2),
                       "items_s": per_size(pg, "items_s", 2),
                       "tick_idle_ms": per_size(pg, "tick_ms", 2),
                       "daemon_rss_mb": per_size(pg, "peak_rss_mb")} if pg else None,
        "rss_postgresql_mb": _r(at(pg, max(pg), "peak_rss_mb")) if pg else None,
    }


def _r(x, d=2):
    return None if x is None else round(x, d)


def summarize(res: dict, s: dict) -> dict:
    lat, bl, gr = res.get("latency", {}), res.get("backlog", {}), res.get("growth", {})
    sch, big, prs, peer_ = (res.get("schedules", {}), res.get("bigmail", {}),
                            res.get("parse", {}), res.get("peer", {}))
    last = max(s["growth"]) if gr else None
    typical = [v["ms"] for k, v in prs.items() if not k.startswith("file:")]
    peaks = [x for x in (bl.get("peak_rss_mb"), gr.get("peak_rss_mb")) if x is not None]
    maild_ms = bl.get("maild_ms_per_email")
    floor_ms = bl.get("floor_ms_per_email")
    roundup_ms = peer_.get("roundup_ms_per_email")
    si, one = res.get("schedintake", {}), res.get("backlog_one_core", {})

    def r(x, d=2):
        return None if x is None else round(x, d)

    return {
        "latency_added_p50_ms": r(lat.get("added_p50_ms"), 1),
        "latency_added_p99_ms": r(lat.get("added_p99_ms"), 1),
        "latency_maild_p50_ms": r(lat.get("maild_p50_ms"), 1),
        "latency_floor_p50_ms": r(lat.get("floor_p50_ms"), 1),
        "backlog_emails": bl.get("emails"),
        "backlog_emails_per_s": r(bl.get("maild_emails_per_s"), 1),
        "backlog_floor_emails_per_s": r(bl.get("floor_emails_per_s"), 1),
        "backlog_ratio_to_floor": r(bl.get("ratio_to_floor"), 3),
        "roundup_ms_per_email": r(roundup_ms),
        "maild_ms_per_email": r(maild_ms),
        "roundup_ratio": r(roundup_ms / maild_ms if roundup_ms and maild_ms else None),
        "growth_sizes": list(s["growth"]) if gr else None,
        "growth_ms_per_email": {str(k): r(v["ms_per_email"]) for k, v in gr.get("by_size", {}).items()} or None,
        # the ratio at the largest size measured (10k in quick mode, 50k in full mode)
        "growth_ratio": r(gr.get("ratio", {}).get(last), 3) if gr else None,
        "growth_ratio_size": last,
        "growth_ratio_50k": r(gr.get("ratio", {}).get(50000), 3) if gr and 50000 in gr.get("ratio", {}) else None,
        "growth_archive_module_present": gr.get("archive"),
        "growth_note": gr.get("note") if gr else None,
        "schedule_plan_render_s": r(sch.get("total_s"), 3),
        "schedule_notices": sch.get("notices"),
        "schedule_note": sch.get("error"),
        "peak_rss_mb": r(max(peaks), 1) if peaks else None,
        "backlog_peak_rss_mb": r(bl.get("peak_rss_mb"), 1),
        "growth_peak_rss_mb": r(gr.get("peak_rss_mb"), 1),
        "big_email_rss_ratio": r(big.get("ratio")),
        "big_email_added_mb": r(big.get("added_mb"), 1),
        "parse_ms": r(max(typical), 3) if typical else None,
        "parse_ms_by_template": {k: r(v["ms"], 3) for k, v in prs.items()} or None,
        **_open_figures(res),
        "schedule_run_s": r(si.get("run_s"), 3),
        "schedule_sent_s": r(si.get("sent_s"), 3),
        "schedule_enqueued_s": r(si.get("enqueued_s"), 3),
        "schedule_floor_s": r(si.get("floor_s"), 3),
        "schedule_run_to_floor": r(si["sent_s"] / si["floor_s"]
                                   if si.get("sent_s") and si.get("floor_s") else None, 2),
        "schedule_run_emails": si.get("emails_sent"),
        "schedule_intake_p50_ms": r(si.get("intake_p50_ms"), 1),
        "schedule_intake_p99_ms": r(si.get("intake_p99_ms"), 1),
        "schedule_intake_emails": si.get("intake_emails"),
        "backlog_one_core_emails_per_s": r(one.get("maild_emails_per_s"), 1),
        "backlog_ratio_one_core": r(one.get("ratio_to_floor"), 3),
        "floor_ms_per_email": r(floor_ms),
        "roundup_cost_ratio": r((maild_ms - floor_ms) / roundup_ms
                                if maild_ms and floor_ms and roundup_ms else None, 3),
        "xlsx_1mb_added_ms": r(max((res.get("tablefile", {}).get(k, {}).get("added_ms", 0)
                                   for k in ("xlsx_1mb_picture", "xlsx_1mb_rows")), default=None))
        if res.get("tablefile") else None,
        "table_file_ms": {k: r(v["ms"]) for k, v in res.get("tablefile", {}).items()
                          if isinstance(v, dict)} or None,
    }


def print_table(res: dict, j: dict, s: dict) -> None:
    rows = []

    def row(name, maild, floor, ratio, key=None, value=None):
        rows.append((name, maild, floor, ratio, _verdict(key, value) if key else ""))

    lat = res.get("latency", {})
    row("1 latency p50 (ms)", _fmt(lat.get("maild_p50_ms")), _fmt(lat.get("floor_p50_ms")),
        "added " + _fmt(j["latency_added_p50_ms"]), "latency_added_p50_ms", j["latency_added_p50_ms"])
    row("1 latency p99 (ms)", _fmt(lat.get("maild_p99_ms")), _fmt(lat.get("floor_p99_ms")),
        "added " + _fmt(j["latency_added_p99_ms"]), "latency_added_p99_ms", j["latency_added_p99_ms"])
    bl = res.get("backlog", {})
    row(f"2 backlog {bl.get('emails', '-')} (emails/s)", _fmt(j["backlog_emails_per_s"]),
        _fmt(j["backlog_floor_emails_per_s"]), _fmt(j["backlog_ratio_to_floor"], "", 3),
        "backlog_ratio_to_floor", j["backlog_ratio_to_floor"])
    gr = res.get("growth", {})
    for size, v in gr.get("by_size", {}).items():
        ratio = gr["ratio"][size]
        key = "growth_ratio" if size == max(s["growth"]) else None
        row(f"3 growth {size} (ms/email)", _fmt(v["ms_per_email"], "", 2),
            f"live {v['live_json_mb']:.1f} MB", _fmt(ratio, "x", 2), key, ratio if key else None)
    sch = res.get("schedules", {})
    row(f"4 schedules {s['owners']}/{s['tasks']} (s)",
        sch.get("error") or _fmt(sch.get("total_s"), "", 3),
        "", f"{sch.get('notices', '-')} emails", "schedule_plan_render_s", j["schedule_plan_render_s"])
    row("5 peak RSS backlog (MB)", _fmt(j["backlog_peak_rss_mb"]), "", "", "peak_rss_mb",
        j["backlog_peak_rss_mb"])
    row("5 peak RSS growth (MB)", _fmt(j["growth_peak_rss_mb"]), "", "", "peak_rss_mb",
        j["growth_peak_rss_mb"])
    big = res.get("bigmail", {})
    row(f"5 {big.get('bytes', 0) / 2**20:.0f} MB email (added MB)", _fmt(j["big_email_added_mb"]),
        "", _fmt(j["big_email_rss_ratio"], "x size", 2), "big_email_rss_ratio", j["big_email_rss_ratio"])
    for name, v in res.get("parse", {}).items():
        if not name.startswith("file:"):
            row(f"6 parse {name} (ms)", _fmt(v["ms"], "", 2), "", v["kind"])
    row("6 parse, worst typical (ms)", _fmt(j["parse_ms"], "", 2), "", "", "parse_ms", j["parse_ms"])
    row("7 batch ms/email maild | Roundup", _fmt(j["maild_ms_per_email"], "", 2),
        _fmt(j["roundup_ms_per_email"], "", 2), _fmt(j["roundup_ratio"], "x", 1),
        "roundup_ratio", j["roundup_ratio"])
    row("7 cost above floor ms/email | Roundup", _fmt(
        j["maild_ms_per_email"] - j["floor_ms_per_email"]
        if j["maild_ms_per_email"] and j["floor_ms_per_email"] else None, "", 2),
        _fmt(j["roundup_ms_per_email"], "", 2), _fmt(j["roundup_cost_ratio"], "", 3),
        "roundup_cost_ratio", j["roundup_cost_ratio"])
    row("2b backlog, maild on 1 core (emails/s)", _fmt(j["backlog_one_core_emails_per_s"]),
        _fmt(j["backlog_floor_emails_per_s"]), _fmt(j["backlog_ratio_one_core"], "", 3),
        "backlog_ratio_one_core", j["backlog_ratio_one_core"])
    op = res.get("open", {}).get("by_engine", {})
    for engine, by_size in op.items():
        for size, v in sorted(by_size.items()):
            big = size == max(by_size)
            tag = f"8 {engine} {size // 1000}k" if size else f"8 {engine} 0"
            row(f"{tag} added latency p50/p99 (ms)",
                f"{_fmt(v['added_p50_ms'])} / {_fmt(v['added_p99_ms'])}", "", "",
                "open_latency_p50_ms" if big and engine == "tinydb" else None, v["added_p50_ms"])
            beside = v.get("reference_commit_ms")  # a 1k store's, alternated in the same run
            row(f"{tag} commit (ms)", _fmt(v["commit_ms"], "", 2),
                f"1k beside {_fmt(beside, '', 2)}" if beside else "",
                _fmt(v["commit_ms"] / beside, "x", 2) if beside else "")
            row(f"{tag} start-up to IDLE (s)", _fmt(v["startup_s"], "", 2), "", "",
                "startup_s_50k" if size == 50000 and engine == "tinydb" else None,
                v["startup_s"])
            row(f"{tag} items | status | show (s)",
                f"{_fmt(v['items_s'], '', 2)} | {_fmt(v['status_s'], '', 2)} | "
                f"{_fmt(v['show_s'], '', 2)}", f"all: {_fmt(v['items_all_s'], '', 2)}", "",
                "items_s_50k" if size == 50000 and engine == "tinydb" else None, v["items_s"])
            row(f"{tag} idle tick (ms)", _fmt(v["tick_ms"], "", 2), "", "",
                "tick_idle_ms" if big and engine == "tinydb" else None, v["tick_ms"])
            row(f"{tag} daemon peak RSS (MB)", _fmt(v["peak_rss_mb"]),
                f"live {v['live_mb']:.0f} MB", "",
                ("rss_tinydb_mb" if engine == "tinydb" else "rss_postgresql_mb") if big else None,
                v["peak_rss_mb"])
    row("8 commit at largest / at 1k (alternated)", "", "", _fmt(j["commit_ratio"], "x", 2), "commit_ratio",
        j["commit_ratio"])
    row(f"9 schedule run in the daemon {s['owners']}/{s['tasks']} (s)",
        _fmt(j["schedule_run_s"], "", 2), f"raw send {_fmt(j['schedule_floor_s'], '', 2)}",
        f"{_fmt(j['schedule_run_to_floor'], 'x', 2)} {j['schedule_run_emails'] or '-'} emails",
        "schedule_run_s", j["schedule_run_s"])
    row("9 the run planned, rendered, enqueued (s)", _fmt(j["schedule_enqueued_s"], "", 2), "",
        "", "schedule_enqueued_s", j["schedule_enqueued_s"])
    row("9 intake during it p50/p99 (ms)",
        f"{_fmt(j['schedule_intake_p50_ms'])} / {_fmt(j['schedule_intake_p99_ms'])}", "",
        f"{j['schedule_intake_emails'] or 0} emails", "schedule_intake_p99_ms",
        j["schedule_intake_p99_ms"])
    tf = res.get("tablefile", {})
    if tf:
        for name in ("xlsx_1mb_picture", "xlsx_1mb_rows"):
            row(f"10 {name} vs pasted (ms)", _fmt(tf[name]["ms"], "", 1),
                _fmt(tf["pasted"]["ms"], "", 1), "added " + _fmt(tf[name]["added_ms"], "", 1),
                "xlsx_1mb_added_ms", tf[name]["added_ms"])
    head = ("figure", "maild", "floor / peer", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r))


if __name__ == "__main__":
    sys.exit(main())
