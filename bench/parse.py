"""Phase 6: the pure per-email work for one typical email, per template: decode + classify
(which cuts the reply's quoted history and reads the form's fields). Median of many runs."""

from __future__ import annotations

import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from . import corpus


def run(out, iterations: int) -> None:
    from maild.app.wiring import Rules
    from maild.core.classify import ClassifyContext, classify
    from maild.mail.decode import decode

    from .child import ROOT, config

    cfg = config(1, 1, "/tmp/maild-bench-parse-unused")
    rules = Rules.load(cfg.rules_dir)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    rng = random.Random(9)
    samples = {t: corpus.make(t, 1, rng, now, tasks=3 if t.startswith("project") else None).raw
               for t in corpus.TEMPLATES}
    samples["reply_zh"] = corpus.reply("<req-1@corp.example>", "[MD-0001] 请确认", "wang.zhe@corp.example", "zh", 1, now)
    samples["reply_en"] = corpus.reply("<req-1@corp.example>", "[MD-0001] Please confirm", "zhao.lei@corp.example", "en", 2, now)
    for path in sorted((ROOT / "tests" / "data").glob("*.eml")):
        samples["file:" + path.stem] = path.read_bytes()
    ctx = ClassifyContext(inbox_address=cfg.inbox_address, secret=b"bench", allowed_domains=cfg.allowed_domains,
                          form_rules=rules.form_rules,
                          lookup_message=lambda mid: ("MD-0001", "t1") if mid == "<req-1@corp.example>" else None,
                          item_exists=lambda item_id: item_id == "MD-0001")
    result = {}
    for name, raw in samples.items():
        times = []
        kind = ""
        for _ in range(iterations):
            t0 = time.perf_counter()
            msg = decode(raw, max_bytes=cfg.max_message_bytes, max_header_bytes=cfg.max_header_bytes)
            decision = classify(msg, ctx)
            times.append((time.perf_counter() - t0) * 1000)
            kind = type(decision).__name__
        times.sort()
        result[name] = {"ms": times[len(times) // 2], "bytes": len(raw), "kind": kind}
    out.put(result)
