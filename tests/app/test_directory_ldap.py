"""`maild directory sync` against Debian's slapd in a temp dir: an OpenLDAP directory (inetOrgPerson,
Chinese values stored and sent base64 as real directories do) and Active Directory-shaped users
(sAMAccountName, userPrincipalName, proxyAddresses, disabled accounts, pages smaller than the
directory). Skips without slapd/ldap-utils locally; fails in CI (`.ci/run` installs them)."""

from __future__ import annotations

import io
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from ldapserver import ROOT_DN, ROOT_PW, Slapd, slapd_available

from maild.app import cli, dirsync
from maild.app.wiring import Rules
from maild.core.config import load_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "directory"
PASSWORD_ENV = {"TEST_LDAP_PW": ROOT_PW}
AD_FILTER = "(&(objectClass=maildTestAdUser)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    if not slapd_available():
        reason = "slapd is not installed (apt-get install slapd ldap-utils; .ci/run does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: in CI none may skip")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slapd")
    folder.chmod(0o755)
    server = Slapd(folder, size_limit=3).start()  # 3 per plain search: paging must work
    server.add((DATA / "corp.ldif").read_text())
    server.add((DATA / "ad.ldif").read_text())
    yield server
    server.stop()


def write_config(tmp_path: Path, slapd: Slapd, ldap: str, *, people: str = "") -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, dirs_exist_ok=True)
    (rules / "people.toml").write_text(people, "utf-8")  # hand-written entries, if any
    path = tmp_path / "config.toml"
    shipped = (ROOT / "config.toml").read_text("utf-8")
    path.write_text(shipped.replace('data_dir = "var"', f'data_dir = "{tmp_path / "var"}"', 1)
                    .replace('dir = "rules"', f'dir = "{rules}"')
                    .replace('dir = "templates"', f'dir = "{ROOT / "templates"}"') + f"""
[directory]
source = "ldap"
sync_at = "02:30"

[directory.ldap]
host = "127.0.0.1"
port = {slapd.port}
security = "plain"
username = "{ROOT_DN}"
password_env = "TEST_LDAP_PW"
page_size = 2
{ldap}
""", "utf-8")
    return path


def run(config: Path, *argv: str, environ: dict | None = None) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(["-c", str(config), "directory", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = dirsync.run_directory_command(args, out=out, err=err,
                                         environ=PASSWORD_ENV if environ is None else environ)
    return code, out.getvalue(), err.getvalue()


OPENLDAP = 'base_dn = "ou=people,dc=corp,dc=example"\nkind = "openldap"\n'


def test_chinese_values_are_stored_and_sent_base64(slapd):
    """What the sync reads is what a real directory sends: ldapsearch shows base64 values."""
    ldif = slapd.search("(uid=wang.zhe)", "displayName", "departmentNumber", "title")
    assert "displayName:: 546L5ZaG" in ldif and "title:: 57uP55CG" in ldif


def test_sync_dry_run_shows_the_directory_then_sync_writes_it(slapd, tmp_path):
    config = write_config(tmp_path, slapd, OPENLDAP)
    code, out, err = run(config, "sync", "--dry-run")
    assert code == 0, out + err
    assert "ldap://127.0.0.1:" in out and "ou=people,dc=corp,dc=example: 8 people" in out
    assert "+ added   wang.zhe@corp.example  王喆" in out
    assert "+ added   wang.zhe2@corp.example  王喆" in out
    assert "sun.li" not in out  # no mailbox: the filter leaves her out
    assert "unknown_manager: uid=he.jun,ou=people,dc=corp,dc=example: manager " \
           "'uid=left.company,ou=people,dc=corp,dc=example' is not in the directory" in out
    assert "dry run: nothing written" in out
    assert not (tmp_path / "var" / "directory.json").exists()

    code, out, _ = run(config, "sync")
    assert code == 0 and "written to" in out
    people = {p.address: p for p in Rules.from_config(load_config(config)).people.people}
    wang = people["wang.zhe@corp.example"]
    assert (wang.name, wang.department, wang.title) == ("王喆", "产品部", "经理")
    assert wang.manager == "zhou.mingyuan@corp.example" and "Wang Zhe" in wang.aliases
    # a manager outside the search base is read by DN: escalations reach the chair
    assert people["zhou.mingyuan@corp.example"].manager == "chair@corp.example"
    assert people["li.kun@corp.example"].manager == "wang.zhe@corp.example"
    assert people["he.jun@corp.example"].manager == ""

    code, out, _ = run(config, "sync", "--dry-run")
    assert code == 0 and "no changes" in out


def test_a_second_sync_shows_what_changed(slapd, tmp_path):
    config = write_config(tmp_path, slapd, OPENLDAP)
    assert run(config, "sync")[0] == 0
    retitle = ("dn: uid=li.kun,ou=people,dc=corp,dc=example\nchangetype: modify\n"
               "replace: title\ntitle:: {}\n")
    slapd.modify(retitle.format("5Lqn5ZOB57uP55CG"))  # 产品经理, base64 as ldapmodify takes it
    try:
        code, out, _ = run(config, "sync", "--dry-run")
        assert code == 0
        assert "~ changed li.kun@corp.example  李堃: title 产品专员 → 产品经理" in out
    finally:
        slapd.modify(retitle.format("5Lqn5ZOB5LiT5ZGY"))  # back to 产品专员


def test_a_sync_that_would_empty_the_directory_is_refused(slapd, tmp_path):
    config = write_config(tmp_path, slapd, OPENLDAP)
    assert run(config, "sync")[0] == 0
    before = (tmp_path / "var" / "directory.json").read_bytes()
    with config.open("a") as handle:  # a filter with a mistake: one department only
        handle.write('filter = "(&(objectClass=inetOrgPerson)(departmentNumber=总经办))"\n')
    code, out, _ = run(config, "sync")
    assert code == 1 and "refused, nothing written: it would remove 7 of 8 people" in out
    assert (tmp_path / "var" / "directory.json").read_bytes() == before
    code, out, _ = run(config, "sync", "--force")
    assert code == 0 and "- removed wang.zhe@corp.example" in out


def test_hand_written_people_override_and_extend_the_synced_ones(slapd, tmp_path):
    people = """
[[person]]
address = "wang.zhe@corp.example"
aliases = ["产品部王经理"]
timezone = "Europe/London"

[[person]]
name = "Alex Morgan"
address = "alex.morgan@corp.example"
department = "总经办"
title = "顾问"
"""
    config = write_config(tmp_path, slapd, OPENLDAP, people=people)
    assert run(config, "sync")[0] == 0
    directory = Rules.from_config(load_config(config)).people
    wang = directory.by_address("wang.zhe@corp.example")
    assert wang.timezone == "Europe/London" and wang.title == "经理"
    assert {"Wang Zhe", "产品部王经理"} <= set(wang.aliases)
    assert directory.by_address("alex.morgan@corp.example").title == "顾问"
    assert {p.address for p in directory.resolve("王喆")} == {"wang.zhe@corp.example",
                                                             "wang.zhe2@corp.example"}
    code, out, _ = run(config, "find", "王喆")
    assert code == 1 and "2 people" in out and "<wang.zhe2@corp.example>  销售部 销售代表" in out
    code, out, _ = run(config, "check")
    assert "9 people: 8 synced from ldap://" in out and "2 in rules/people.toml (1 of them" in out
    assert "unknown_manager" in out and code == 1


def test_active_directory_by_configuration_with_paged_results(slapd, tmp_path):
    config = write_config(tmp_path, slapd, f'base_dn = "ou=ad,dc=corp,dc=example"\nkind = "ad"\n'
                                           f'filter = "{AD_FILTER}"\n')
    code, out, err = run(config, "sync", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["people"] == 6 and result["written"]  # more than one page of 2, limit 3
    people = {p.address: p for p in Rules.from_config(load_config(config)).people.people}
    assert "former.staff@corp.example" not in people  # disabled account
    wang = people["wang.zhe@corp.example"]  # no mail attribute: the SMTP: proxy address
    assert {"wangzhe", "zhe.wang@corp.example"} <= set(wang.aliases)
    assert not any(a.startswith(("X500", "SIP")) for a in wang.aliases)
    assert people["li.kun@corp.example"].manager == "wang.zhe@corp.example"  # UPN as address
    assert wang.manager == "zhou.mingyuan@corp.example"
    directory = Rules.from_config(load_config(config)).people
    assert directory.by_address("Zhe.Wang@corp.example") == wang  # a secondary address


def test_without_paging_the_size_limit_would_cut_the_directory(slapd):
    """Why the search is paged: a plain search stops at the server's limit, as AD's does."""
    import ldap3
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.port), auto_bind=True)
    conn.search("ou=ad,dc=corp,dc=example", AD_FILTER, attributes=["mail"])
    assert conn.result["description"] == "sizeLimitExceeded" and len(conn.entries) == 3
    conn.unbind()


def test_a_wrong_password_or_no_server_is_said_plainly(slapd, tmp_path):
    config = write_config(tmp_path, slapd, OPENLDAP)
    code, _, err = run(config, "sync", environ={"TEST_LDAP_PW": "wrong-one"})
    assert code == dirsync.EX_UNAVAILABLE
    assert "cannot bind as cn=admin,dc=corp,dc=example" in err and "invalidCredentials" in err
    assert "wrong-one" not in err
    config.write_text(config.read_text().replace(f"port = {slapd.port}", "port = 1"))
    code, _, err = run(config, "sync")
    assert code == dirsync.EX_UNAVAILABLE and "127.0.0.1:1 (plain)" in err


def test_the_daemon_syncs_at_its_time_and_reloads(slapd, tmp_path, embedded_mail):
    from conversation import TZ, FakeClock

    from maild.app.service import Service

    config = load_config(write_config(tmp_path, slapd, OPENLDAP), {
        "embedded.imap_port": embedded_mail.imap_port,
        "embedded.smtp_port": embedded_mail.smtp_port})
    clock = FakeClock(datetime(2026, 8, 3, 2, 0, tzinfo=TZ))
    service = Service.from_config(config, environ={"MAILD_SECRET": "x", **PASSWORD_ENV},
                                  clock=clock)
    try:
        assert service.rules.people.by_address("li.kun@corp.example") is None
        service.directory_tick(clock())  # never synced: at once
        assert service.rules.people.by_address("li.kun@corp.example").name == "李堃"
        synced_at = dirsync.load_synced(config.directory.file).synced_at
        clock.advance(minutes=20)
        service.directory_tick(clock())  # 02:20: the 02:30 slot has not come
        assert dirsync.load_synced(config.directory.file).synced_at == synced_at
        clock.advance(minutes=15)
        service.directory_tick(clock())  # 02:35
        assert dirsync.load_synced(config.directory.file).synced_at == clock().isoformat()
    finally:
        service.close()
