"""An owner's deliverable forwarded to the initiator: the files read back from the email as
clients write them, none when they are too large, and the outgoing email that carries them."""

from __future__ import annotations

import base64
import email
import email.policy

from maild.core.model import FileAttachment, Outgoing
from maild.mail.decode import attachment_files
from maild.mail.mime import to_mime

# Foxmail on Chinese Windows: a GBK filename labelled gb2312, RFC 2047 in the Content-Type
# name and RFC 2231 in the disposition; a second file with an ASCII name.
FOXMAIL = b"""From: =?gb2312?B?x+6+sg==?= <chen.jing@corp.example>
To: collab+md0001-t3-1uy-rabcd-aaaaaaaaaa@corp.example
Subject: =?gb2312?B?u9i4tA==?=: [MD-0001] T-3
Message-ID: <20260810110000.1@corp.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="----=_NextPart_1"

------=_NextPart_1
Content-Type: text/plain; charset="gb2312"
Content-Transfer-Encoding: base64

zeqzyQ==

------=_NextPart_1
Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;
\tname="=?gb2312?B?RkFRzsS1tS5kb2N4?="
Content-Disposition: attachment;
\tfilename*=gb2312''FAQ%CE%C4%B5%B5.docx
Content-Transfer-Encoding: base64

UEsDBBQAAAAIAA==

------=_NextPart_1
Content-Type: image/jpeg; name="signin.jpg"
Content-Disposition: attachment; filename="signin.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQSkZJRg==

------=_NextPart_1--
"""


def test_the_files_of_an_email_as_its_client_wrote_them() -> None:
    files = attachment_files(FOXMAIL.replace(b"\n", b"\r\n"), 1_000_000)
    assert files == [
        ("FAQ文档.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         base64.b64decode("UEsDBBQAAAAIAA==")),
        ("signin.jpg", "image/jpeg", base64.b64decode("/9j/4AAQSkZJRg==")),
    ]


def test_files_over_the_limit_are_not_forwarded_at_all() -> None:
    assert attachment_files(FOXMAIL, 12) is None
    assert attachment_files(b"From: a@b\r\nSubject: x\r\n\r\nno files\r\n", 10) == []


def test_an_email_with_the_files_reparses_and_resends_byte_identical() -> None:
    name = "渠道推广方案（第二版，按渠道拆分预算、投放节奏与人员安排的详细说明）终稿.xlsx"
    files = attachment_files(FOXMAIL.replace(b"\n", b"\r\n"), 1_000_000)
    out = Outgoing(message_id="maild.1@corp.example", to=("li.na@corp.example",),
                   subject="[MD-0001] 请验收：T-2 渠道推广方案", text="请验收", html="<p>请验收</p>",
                   date="Fri, 07 Aug 2026 15:00:00 +0800",
                   attachments=(FileAttachment(name, "application/vnd.ms-excel", b"PK data" * 99),
                                *(FileAttachment(*f) for f in files)))
    raw = to_mime(out, from_address="collab@corp.example", from_name="maild")
    assert to_mime(out, from_address="collab@corp.example", from_name="maild") == raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("plain",)).get_content().strip() == "请验收"
    assert [(p.get_filename(), p.get_content()) for p in msg.iter_attachments()] == [
        (name, b"PK data" * 99), *((n, d) for n, _t, d in files)]
    assert Outgoing.from_dict(out.to_dict()) == out
