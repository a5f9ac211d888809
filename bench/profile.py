"""`python -m bench.profile [N]`: pyinstrument call tree of maild handling a backlog of N emails.

Starts the bench's servers in this process, injects N structured emails (the backlog corpus),
and runs `Service.process_batch()` until INBOX is empty under `pyinstrument.Profiler`. Prints
ms/email to stderr and the call tree to stdout. The servers share this process (and the GIL),
so absolute figures are higher than the bench's; use it for proportions.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from . import child, corpus
from .servers import MailServers


def main(argv: list[str]) -> int:
    from pyinstrument import Profiler
    n = int(argv[0]) if argv else 60
    servers = MailServers().start()
    try:
        now = datetime.now(ZoneInfo("Asia/Shanghai"))
        servers.inject([m.raw for m in corpus.backlog(n, now, seed=5, tag="prof")])
        svc = child.service(child.config(servers.imap_port, servers.smtp_port,
                                         tempfile.mkdtemp(prefix="maild-prof-")))
        svc.inbox.connect()
        profiler = Profiler(interval=0.0005)
        profiler.start()
        started = time.perf_counter()
        total = sent = 0
        while True:
            report = svc.process_batch()
            if not report.fetched:
                break
            total, sent = total + report.fetched, sent + report.sent
        elapsed = time.perf_counter() - started
        profiler.stop()
        svc.close()
        print(f"{total} emails, {sent} sent, {elapsed * 1000 / max(total, 1):.1f} ms/email",
              file=sys.stderr)
        print(profiler.output_text(unicode=False, color=False))
    finally:
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
