"""HR exports: the people of a CSV file (as Excel or an HR system saves it) as directory records.

Pure: bytes in, `directory.Record`s out.

Surprises worth knowing:

* Excel on a Chinese Windows saves "CSV" in GBK (its ANSI code page), elsewhere in UTF-8 with or
  without a BOM; "Unicode text" is UTF-16 with tabs. The encoding is read from the BOM, else
  UTF-8 is tried strictly, then GB18030 (a superset of GBK and GB2312); or it is named.
* Headers are Chinese or English, in any order and case (`邮箱`, `电子邮件`, `E-mail`, `Work Email`;
  `直属上级`, `Reports To`…), with notes in brackets ignored (`邮箱（必填）`). Only the address
  column is required. `[directory.csv] columns` maps a field to a header this table lacks.
* The manager column may hold an address (`李娜 <li.na@corp.example>` too), an employee number
  (when there is an employee-number column) or a name; `directory.build` resolves it.
* The delimiter is the one the header line uses most: comma, tab or semicolon.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping

from maild.core.directory import Record
from maild.mail.charsets import decode_bytes

# field → headers (compared squashed: lower case, no spaces, dashes, underscores or dots)
HEADERS: Mapping[str, tuple[str, ...]] = {
    "address": ("邮箱", "电子邮箱", "电子邮件", "邮件", "邮件地址", "邮箱地址", "企业邮箱", "工作邮箱",
                "公司邮箱", "email", "e-mail", "mail", "emailaddress", "workemail", "address"),
    "name": ("姓名", "名字", "显示名", "显示名称", "员工姓名", "name", "displayname", "fullname",
             "employeename"),
    "aliases": ("别名", "英文名", "曾用名", "其他名字", "aliases", "alias", "englishname",
                "othernames", "nickname"),
    "department": ("部门", "所属部门", "部门名称", "department", "dept", "departmentname"),
    "title": ("职位", "职务", "岗位", "职称", "title", "jobtitle", "position", "role"),
    "manager": ("上级", "直属上级", "直接上级", "汇报对象", "上级邮箱", "直属上级邮箱", "上级领导",
                "直属领导", "经理", "manager", "manageremail", "reportsto", "supervisor",
                "linemanager"),
    "key": ("工号", "员工编号", "员工号", "职工号", "employeeid", "employeenumber", "empid",
            "staffid", "id"),
}
_SQUASH = re.compile(r"[\s\-_.·:：*＊]+")
_NOTE = re.compile(r"[（(\[【].*?[）)\]】]")
_ALIAS_SPLIT = re.compile(r"[、,，;；/|｜]")


class ExportError(ValueError):
    """The file is not a table of people this reader understands (the message says why)."""


def decode_export(data: bytes, encoding: str = "auto") -> str:
    """The text of an export: the named encoding (gbk/gb2312 read as GB18030), or by BOM, strict
    UTF-8, then GB18030."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if encoding.lower() not in ("", "auto"):
        return decode_bytes(data, encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def read_export(data: bytes, name: str = "people.csv", *, encoding: str = "auto",
                columns: Mapping[str, str] | None = None) -> list[Record]:
    """The people of an export, one `Record` per data row (blank rows skipped)."""
    text = decode_export(data, encoding)
    lines = text.splitlines()
    if not lines:
        raise ExportError(f"{name}: empty")
    header_line = lines[0]
    delimiter = max(",\t;", key=header_line.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    where = _columns(rows[0], name, columns or {})
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(field: str, row: list[str] = row) -> str:
            index = where.get(field)
            return row[index].strip() if index is not None and index < len(row) else ""

        raw_address = cell("address")
        found = re.search(r"[^\s<>\"',;]+@[^\s<>\"',;]+", raw_address)
        records.append(Record(
            where=f"{name} line {number}", address=found[0] if found else raw_address,
            name=cell("name"),
            aliases=tuple(a.strip() for a in _ALIAS_SPLIT.split(cell("aliases")) if a.strip()),
            department=cell("department"), title=cell("title"), manager=cell("manager"),
            key=cell("key")))
    return records


def _columns(header: list[str], name: str, overrides: Mapping[str, str]) -> dict[str, int]:
    """field → column index, from the header row."""
    squashed = [_squash(h) for h in header]
    where: dict[str, int] = {}
    for field, label in overrides.items():
        if _squash(label) not in squashed:
            raise ExportError(f"{name}: [directory.csv] columns.{field} = {label!r}: no such "
                              f"column (the header is: {', '.join(header)})")
        where[field] = squashed.index(_squash(label))
    for field, labels in HEADERS.items():
        if field in where:
            continue
        wanted = {_squash(label) for label in labels}
        index = next((i for i, h in enumerate(squashed) if h in wanted and i not in
                      where.values()), None)
        if index is not None:
            where[field] = index
    if "address" not in where:
        raise ExportError(f"{name}: no email column (looked for 邮箱, 电子邮件, Email, …; the "
                          f"header is: {', '.join(header)}); name it with [directory.csv] "
                          f'columns = {{ address = "..." }}')
    return where


def _squash(label: str) -> str:
    return _SQUASH.sub("", _NOTE.sub("", label.replace("\ufeff", ""))).lower()
