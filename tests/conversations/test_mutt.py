"""A real command-line mail client against maild: mutt sends the project, mutt sends the reply.

李娜 writes the Q3 project in mutt and sends it over SMTP (`mutt -F muttrc -s SUBJECT -- TO <
BODY`); maild handles it; 王喆 answers his confirmation request with mutt in batch mode from a
draft (`mutt -H DRAFT`) carrying the To (the request's Reply-To, with its token), Subject and
In-Reply-To/References a client would set; maild records the confirmation and tells 李娜.
Runs against each mail system. Without mutt the test skips, or fails under CI=true.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, make_config, text_of

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
INITIATOR = "li.na@corp.example"
OWNER = "wang.zhe@corp.example"
MUTT = shutil.which("mutt")


@pytest.fixture
def mutt():
    if MUTT is None:
        reason = "mutt is not installed (apt-get install mutt; .ci/run does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: in CI none may skip")
        pytest.skip(reason)
    return MUTT


def _muttrc(path: Path, sender: str, name: str, smtp_port: int) -> Path:
    home = path.parent
    path.write_text(f"""
set from = "{sender}"
set realname = "{name}"
set use_from = yes
set envelope_from = yes
set smtp_url = "smtp://127.0.0.1:{smtp_port}/"
set charset = "utf-8"
set send_charset = "utf-8"
set record = ""
set copy = no
set folder = "{home}"
set spoolfile = "{home}/spool"
set header_cache = ""
set sig_dashes = no
set ssl_starttls = no
set ssl_force_tls = no
set user_agent = yes
set signature = ""
""", encoding="utf-8")
    return path


def _run_mutt(mutt: str, args: list[str], stdin: bytes, home: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    done = subprocess.run([mutt, *args], input=stdin, env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")


def test_project_sent_and_confirmed_with_mutt(mutt, mail_system, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    convo = Conversation(mail_system, make_config(mail_system, tmp_path / "var"), clock)
    try:
        # 李娜 sends the project in mutt: the Foxmail sample's subject and text, typed anew.
        sample = email.message_from_bytes((DATA / "new_project_zh.eml").read_bytes(),
                                          policy=email.policy.default)
        body = sample.get_content()
        home = tmp_path / "lina"
        home.mkdir()
        rc = _muttrc(home / "muttrc", INITIATOR, "李娜", mail_system.smtp_port)
        _run_mutt(mutt, ["-F", str(rc), "-s", str(sample["Subject"]), "--",
                         convo.config.inbox_address], body.encode("utf-8"), home)
        convo.process()

        receipt = convo.inbox(INITIATOR)
        assert len(receipt) == 1 and "MD-0001" in str(receipt[0]["Subject"])
        item = convo.service.store.get_item("MD-0001")
        assert item["initiator"] == INITIATOR and item["title"] == "Q3新品推广项目"
        requests = convo.inbox(OWNER)
        assert len(requests) == 1
        request = requests[0]

        # 王喆 replies with mutt: a draft as mutt's own reply would compose it.
        home = tmp_path / "wangzhe"
        home.mkdir()
        rc = _muttrc(home / "muttrc", OWNER, "王喆", mail_system.smtp_port)
        quoted = "\n".join("> " + line for line in text_of(request).splitlines())
        refs = f"{request.get('References', '')} {request['Message-ID']}".strip()
        draft = home / "draft"
        draft.write_text(
            f"To: {request['Reply-To']}\n"
            f"Subject: Re: {request['Subject']}\n"
            f"In-Reply-To: {request['Message-ID']}\n"
            f"References: {refs}\n"
            "\n"
            f"确认\n\nOn {request['Date']}, maild wrote:\n{quoted}\n", encoding="utf-8")
        clock.advance(minutes=20)
        _run_mutt(mutt, ["-F", str(rc), "-H", str(draft)], b"", home)
        convo.process()

        task = convo.service.store.get_item("MD-0001")["tasks"][0]
        assert task["state"] == "not_started"
        assert task["confirmed_by"] == OWNER
        told = convo.inbox(INITIATOR)
        assert len(told) == 1 and "王喆" in text_of(told[0])
        assert len(convo.folder(convo.config.inbox_address, "Processed")) == 2
        sent_by_mutt = convo.folder(convo.config.inbox_address, "Processed")
        assert all("Mutt" in str(m.get("User-Agent", "")) for m in sent_by_mutt)
    finally:
        convo.close()
