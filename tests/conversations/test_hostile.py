"""Bad input through the daemon: every email is APPENDed to the INBOX of the embedded mail system
and handled by the real Service. Each one must end in Processed or Quarantine; none may crash a
batch or stay in INBOX (a crash there would block the queue: the same email fetched forever).

Inputs: CPython's own email test data (when the interpreter ships it: Debian's does not), the
corpus of tests/data/corpus, and crafted hostile emails (huge and `;`-stuffed headers, 100k
recipients, deep and wide multipart, big and zip-bomb attachments, empty and binary input, CRLF in
encoded-words, traversal filenames, missing and duplicate Message-IDs). Decoding one email must
stay under ~2 s of CPU.
"""

from __future__ import annotations

import base64
import email
import io
import os
import time
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, make_config
from imapclient import IMAPClient

from maild.adapters.imap import MemoryInbox
from maild.mail.decode import DecodeError, decode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "corpus"
STDLIB_DATA = Path(email.__file__).parent.parent / "test" / "test_email" / "data"
INBOX = "collab@corp.example"
CPU_LIMIT_S = 2.0


@pytest.fixture
def convo(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"),
                                clock)
    conversation.process()  # whatever an earlier test left in INBOX
    yield conversation
    conversation.close()


def _append(convo: Conversation, raws: list[bytes]) -> list[bool]:
    """APPEND each email to maild's INBOX; False where the server refused it."""
    accepted = []
    with IMAPClient(convo.mail.host, port=convo.mail.imap_port, ssl=False, timeout=120) as client:
        client.login(INBOX, convo.config.embedded_system.accounts[INBOX])
        for raw in raws:
            try:
                client.append("INBOX", raw)
                accepted.append(True)
            except Exception:  # noqa: BLE001 - e.g. an empty literal: the server's call
                accepted.append(False)
    return accepted


def _count(convo: Conversation, folder: str) -> int:
    with IMAPClient(convo.mail.host, port=convo.mail.imap_port, ssl=False, timeout=60) as client:
        client.login(INBOX, convo.config.embedded_system.accounts[INBOX])
        if not client.folder_exists(folder):
            return 0
        return len(client.select_folder(folder, readonly=True) and client.search(["ALL"]))


def _through_the_daemon(convo: Conversation, raws: list[bytes], *,
                        imap: bool = True) -> dict[str, int]:
    """APPEND, process until INBOX is empty; every accepted email ends processed or quarantined.
    `imap=False`: straight from memory into the same Service (for what only taxes the server)."""
    before = {f: _count(convo, f) for f in ("Processed", "Quarantine")}
    accepted = _append(convo, raws) if imap else [False] * len(raws)
    outcomes: list[dict] = []
    for _ in range(50):
        report = convo.service.process_batch()  # raises if a batch crashes: that is a failure
        outcomes += report.outcomes
        if not report.fetched:
            break
    assert _count(convo, "INBOX") == 0, "an email stayed in INBOX"
    after = {f: _count(convo, f) - before[f] for f in ("Processed", "Quarantine")}
    assert sum(after.values()) == sum(accepted), (after, sum(accepted))
    # What the IMAP server refused to store still goes through the same Service, from memory.
    refused = [raw for raw, ok in zip(raws, accepted, strict=True) if not ok]
    if refused:
        memory, real = MemoryInbox(), convo.service.inbox
        for raw in refused:
            memory.deliver(raw)
        convo.service.inbox = memory
        try:
            report = convo.service.process_batch()
        finally:
            convo.service.inbox = real
        outcomes += report.outcomes
        assert report.fetched == len(refused) and not memory.fetch_new(100)
        after["Quarantine"] += report.quarantined
        after["Processed"] += report.processed
    return {**after, "refused_by_server": len(refused), "outcomes": outcomes}


def _cpu_bounded(raw: bytes) -> None:
    started = time.process_time()
    try:
        decode(raw)
    except DecodeError:
        pass
    spent = time.process_time() - started
    assert spent < CPU_LIMIT_S, f"decode took {spent:.2f} s of CPU"


# ── real-world and stdlib corpora ──────────────────────────────────────────────────────────


def test_the_corpus_goes_through_the_daemon(convo):
    raws = [p.read_bytes() for p in sorted(CORPUS.rglob("*.eml"))]
    assert len(raws) >= 90
    for raw in raws:
        _cpu_bounded(raw)
    result = _through_the_daemon(convo, raws)
    assert result["refused_by_server"] == 0, result
    assert len(result["outcomes"]) == len(raws)
    assert not [o for o in result["outcomes"] if o["reason"].startswith(("internal", "undecodable"))]


@pytest.mark.skipif(not STDLIB_DATA.is_dir(),
                    reason=f"CPython's email test data is not installed ({STDLIB_DATA}); "
                           "Debian ships Lib/test separately (libpython3.x-testsuite)")
def test_cpythons_email_test_data_goes_through_the_daemon(convo):
    paths = sorted(STDLIB_DATA.glob("msg_*.txt"))
    assert paths
    raws = [p.read_bytes() for p in paths]
    for raw in raws:
        _cpu_bounded(raw)
    result = _through_the_daemon(convo, raws)
    assert len(result["outcomes"]) == len(raws) - result["refused_by_server"]
    assert not [o for o in result["outcomes"] if o["reason"].startswith("internal")]


# ── crafted hostile emails ─────────────────────────────────────────────────────────────────


def _head(extra: bytes = b"", subject: bytes = b"hostile", message_id: bytes | None = None) -> bytes:
    mid = message_id if message_id is not None else os.urandom(8).hex().encode()
    return (b"From: li.na@corp.example\r\nTo: collab@corp.example\r\nSubject: " + subject
            + b"\r\nMessage-ID: <" + mid + b"@corp.example>\r\n" + extra)


def _simple(extra: bytes = b"", body: bytes = b"hello\r\n", **kw) -> bytes:
    return _head(extra, **kw) + b"\r\n" + body


def _multipart(parts: list[bytes], **kw) -> bytes:
    out = _head(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n", **kw) + b"\r\n"
    for part in parts:
        out += b"--b0\r\n" + part + b"\r\n"
    return out + b"--b0--\r\n"


def _attachment(name: bytes, data: bytes, ctype: bytes = b"application/octet-stream") -> bytes:
    return (b"Content-Type: " + ctype + b"\r\nContent-Disposition: attachment; filename=\"" + name
            + b"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data))


def _nested(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in range(depth):
        b = b"n%d" % level
        inner = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
                 + inner + b"\r\n--" + b + b"--\r\n")
    return _head(b"MIME-Version: 1.0\r\n") + inner


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (50 * 2**20))  # 50 MB of zeros in ~50 KB
    return buf.getvalue()


TEXT = b"Content-Type: text/plain\r\n\r\nsee attached\r\n"

# name → (make the bytes, "undecodable": quarantined unread | "handled": decoded and decided)
HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "header-1mb": (lambda: _simple(b"X-Big: " + b"a" * 2**20 + b"\r\n"), "undecodable"),
    "semicolons-40kb": (lambda: _simple(b"Content-Type: text/plain; " + b";" * 40000 + b"\r\n"),
                        "handled"),
    "params-40kb": (lambda: _simple(b"Content-Disposition: attachment; " + b"a=b;" * 10000
                                    + b"\r\n"), "handled"),
    "recipients-100k": (lambda: _simple(b"Cc: " + b",".join(b"u%d@x.test" % i for i in range(100000))
                                        + b"\r\n"), "undecodable"),
    "recipients-15k": (lambda: _simple(b"Cc: " + b",".join(b"u%d@x.test" % i for i in range(15000))
                                       + b"\r\n"), "handled"),
    "nested-comments": (lambda: _simple(b"Cc: " + b"(" * 100000 + b"\r\n"), "handled"),
    "unterminated-quote": (lambda: _simple().replace(b"From: li.na@corp.example",
                                                     b"From: " + b"\"a\\" * 60000), "handled"),
    "multipart-50-deep": (lambda: _nested(50), "handled"),
    "multipart-3000-deep": (lambda: _nested(3000), "handled"),
    "parts-10k": (lambda: _multipart([b"Content-Type: text/plain\r\n\r\nx\r\n"] * 10000), "handled"),
    "attachment-25mb": (lambda: _multipart([TEXT, _attachment(b"big.bin", os.urandom(25 * 2**20))]),
                        "too_large"),  # 33 MB once base64-encoded: over max_message_bytes
    "attachment-18mb": (lambda: _multipart([TEXT, _attachment(b"big.bin", os.urandom(18 * 2**20))]),
                        "handled"),
    "zip-bomb": (lambda: _multipart([TEXT, _attachment(b"bomb.zip", _zip_bomb(), b"application/zip")]),
                 "handled"),
    "empty": (lambda: b"", "undecodable"),
    "binary": (lambda: bytes(range(1, 256)) * 16, "undecodable"),
    "crlf-encoded-words": (lambda: _simple(subject=b"=?utf-8?q?a=0D=0ABcc:_victim@x.test?= =?utf-8?b?"
                                           + base64.b64encode(b"\r\nX-Evil: 1") + b"?="),
                           "handled"),
    "no-message-id": (lambda: _simple().replace(b"Message-ID:", b"X-Was-Message-ID:"), "handled"),
}


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_email_is_processed_or_quarantined(convo, name):
    make, folder = HOSTILE[name]
    raw = make()
    _cpu_bounded(raw)
    # pymap spends ~5 s refusing 3000 nested parts: that cost is the test server's, not maild's
    result = _through_the_daemon(convo, [raw], imap=name != "multipart-3000-deep")
    (outcome,) = result["outcomes"]
    if folder == "undecodable":
        assert result["Quarantine"] == 1 and outcome["reason"].startswith("undecodable"), outcome
    elif folder == "too_large":  # decided on its size, read from its header alone
        assert result["Quarantine"] == 1 and outcome["reason"].startswith("too large"), outcome
    else:
        assert not outcome["reason"].startswith(("undecodable", "internal")), outcome
    if name == "zip-bomb":
        # Sized from the base64 text, never decompressed (nor even decoded).
        (attachment,) = decode(raw).attachments
        assert attachment.size < 200_000


def test_missing_and_duplicate_message_ids_have_one_effect(convo):
    """No Message-ID: the content hash stands in. The same email twice (same Message-ID, same
    content) has one effect; a different email reusing a Message-ID is a collision: handled
    under its own key (and logged), never dropped as a duplicate."""
    bodies = ("帮助\r\n", "帮助\r\n")
    no_id = [_simple(body=b.encode(), subject=b"help", message_id=b"x").replace(b"Message-ID:",
                                                                                b"X-Id:")
             for b in bodies]
    same_id = [_simple(body=b"help\r\n", subject=b"help", message_id=b"dup-1"),
               _simple(body=b"help\r\n", subject=b"help", message_id=b"dup-1"),
               _simple(body=b"help again\r\n", subject=b"help", message_id=b"dup-1"),
               _simple(body=b"help again\r\n", subject=b"help", message_id=b"dup-1")]
    convo.inbox("li.na@corp.example")
    result = _through_the_daemon(convo, no_id + same_id)
    assert len(result["outcomes"]) == 6
    duplicates = [o for o in result["outcomes"] if o.get("duplicate")]
    assert len(duplicates) == 3, result["outcomes"]
    collisions = [o for o in result["outcomes"] if o.get("collision") and not o.get("duplicate")]
    assert [o["reason"] for o in collisions] == ["help"], result["outcomes"]
    assert len(convo.inbox("li.na@corp.example")) == 3  # one help reply per distinct email


def test_traversal_names_never_become_paths(convo, tmp_path):
    """`../../etc/passwd` as an attachment name and as a project title: the item is created,
    and its archive stays inside the archive folder."""
    body = ("项目名称：../../etc/passwd\n发起人/部门：李娜 / 市场部\n目标/背景：测试\n范围：测试\n\n任务：\n"
            "任务名称 | 负责人 | 截止日期 | 交付标准\n卖点提炼 | 王喆 | 8月10日前 | 卖点说明\n")
    text = (b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(body.encode()))
    raw = _multipart([text, _attachment(b"../../etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
                      _attachment(b"..\\..\\windows\\win.ini", b"[boot]\n")],
                     subject="[项目] traversal".encode())
    result = _through_the_daemon(convo, [raw])
    assert result["Processed"] == 1
    store = convo.service.store
    item = store.get_item("MD-0001")
    assert item is not None and item["title"] == "../../etc/passwd"
    # Close it the short way and archive it with the real archiver.
    item["state"] = "closed"
    item["closed_at"] = convo.clock().isoformat()
    store.put_item(item)
    store.commit()
    (folder,) = convo.service.archive_closed(["MD-0001"])
    root = convo.config.archive_dir.resolve()
    assert folder.resolve().parent == root and ".." not in folder.name
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root), path
    assert not (root.parent / "etc").exists() and not (tmp_path / "etc").exists()
    assert not any(p.name == "passwd" for p in tmp_path.rglob("*"))
