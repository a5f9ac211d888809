"""The durable queue of group-chat alerts: one file per alert and robot, posted with retries.

The one job is `ChatQueue`: `put` writes an alert for each robot (tmp + fsync + rename, named
by the alert's stable id, so an email handled twice after a crash queues nothing new), `drain`
posts what is due and reschedules failures with exponential backoff and jitter until
`max_attempts`, then keeps the file as `.failed`. The only place that speaks HTTP to a chat
platform (`requests`, imported on first post).

Surprises worth knowing:
- Entries name their robot by position and platform, never by webhook address: the address is
  the robot's key, resolved from the environment or a command at start and held in memory only.
  Neither it nor the signing secret is ever logged.
- A sent alert leaves a `.sent` marker, so the same alert id is never posted twice, even when
  the email that raised it is handled again after a crash (the intake re-queues it by name).
- `MemoryChatQueue` is the in-memory twin for tests of the core's wiring.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from maild.adapters.files import atomic_write_bytes
from maild.core.chat import ChatAlert, accepted, request_for
from maild.core.filechatconfig import ChatConfig, Robot

log = logging.getLogger("maild.chat")

Post = Callable[[str, bytes, float], tuple[int, bytes]]  # (url, body, timeout) → (status, body)


def http_post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    import requests

    answer = requests.post(url, data=body, timeout=timeout,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    return answer.status_code, answer.content


class ChatQueue:
    def __init__(self, folder: Path, robots: Sequence[Robot], config: ChatConfig,
                 post: Post = http_post) -> None:
        self.folder = folder
        self.robots = tuple(robots)
        self.config = config
        self.post = post

    def put(self, alert_id: str, alert: ChatAlert, now: datetime) -> int:
        """Queue `alert` for every robot; how many entries were new."""
        new = 0
        for index, robot in enumerate(self.robots):
            name = f"{alert_id}-{index}"
            path = self.folder / f"{name}.json"
            if any((self.folder / f"{name}{suffix}").exists()
                   for suffix in (".json", ".sent", ".failed")):
                continue
            entry = {"alert": alert.to_dict(), "robot": index, "platform": robot.platform,
                     "attempts": 0, "due": now.isoformat(), "queued": now.isoformat()}
            atomic_write_bytes(path, json.dumps(entry, ensure_ascii=False).encode("utf-8"))
            new += 1
        return new

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.json")) if self.folder.exists() else []

    def drain(self, now: datetime) -> tuple[int, int]:
        """Post every due entry once; (sent, failed for good)."""
        sent = failed = 0
        for path in self.pending():
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if datetime.fromisoformat(entry["due"]) > now:
                continue
            index = int(entry["robot"])
            if index >= len(self.robots) or self.robots[index].platform != entry["platform"]:
                self._finish(path, ".failed", entry, "robot no longer configured")
                failed += 1
                continue
            robot = self.robots[index]
            ok, retry, error = self._post(robot, ChatAlert.from_dict(entry["alert"]), now)
            entry["attempts"] += 1
            if ok:
                self._finish(path, ".sent", entry, "")
                sent += 1
                log.info("event=chat_sent robot=%s platform=%s item=%s alert=%s",
                         robot.name or index, robot.platform, entry["alert"]["item_id"],
                         entry["alert"]["event"])
            elif retry and entry["attempts"] < self.config.max_attempts:
                delay = min(self.config.backoff_max_s,
                            self.config.backoff_initial_s * 2 ** (entry["attempts"] - 1))
                entry["due"] = (now + timedelta(seconds=delay * random.uniform(0.8, 1.2))
                                ).isoformat()
                entry["error"] = error
                atomic_write_bytes(path, json.dumps(entry, ensure_ascii=False).encode("utf-8"))
                log.warning("event=chat_retry robot=%s platform=%s attempts=%d error=%r",
                            robot.name or index, robot.platform, entry["attempts"], error)
            else:
                self._finish(path, ".failed", entry, error)
                failed += 1
                log.error("event=chat_failed robot=%s platform=%s attempts=%d error=%r",
                          robot.name or index, robot.platform, entry["attempts"], error)
        return sent, failed

    def _post(self, robot: Robot, alert: ChatAlert, now: datetime) -> tuple[bool, bool, str]:
        if not robot.webhook:
            return False, False, "no webhook address (variable or command empty)"
        url, body = request_for(robot, alert, now)
        try:
            status, answer = self.post(url, body, self.config.timeout_s)
        except Exception as exc:  # network trouble: try again later
            return False, True, type(exc).__name__
        ok, retry = accepted(robot.platform, status, answer)
        return ok, retry, "" if ok else f"HTTP {status}: {answer[:200]!r}"

    def _finish(self, path: Path, suffix: str, entry: dict[str, Any], error: str) -> None:
        entry["error"] = error
        atomic_write_bytes(path.with_suffix(suffix),
                           json.dumps(entry, ensure_ascii=False).encode("utf-8"))
        path.unlink(missing_ok=True)


class MemoryChatQueue:
    """The in-memory twin: alerts kept in a list, nothing posted."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, ChatAlert]] = []

    def put(self, alert_id: str, alert: ChatAlert, now: datetime) -> int:
        if any(existing == alert_id for existing, _ in self.alerts):
            return 0
        self.alerts.append((alert_id, alert))
        return 1

    def pending(self) -> list[Path]:
        return []

    def drain(self, now: datetime) -> tuple[int, int]:
        return 0, 0
