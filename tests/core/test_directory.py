"""The directory's pure core: HR exports as HR systems and Excel write them, Active Directory
entries, managers resolved and checked, what a sync changes, the synced file, and rules/people.toml
laid over it. Plus `maild directory import/check/find` on a CSV, end to end."""

from __future__ import annotations

import io
import shutil
import tomllib
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.adapters import ldapdir
from maild.app import cli, dirsync
from maild.app.wiring import Rules
from maild.core import directory
from maild.core.config import ConfigError, load_config
from maild.core.directory import Record
from maild.core.people import Directory
from maild.mail import hrcsv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "directory"
TZ = ZoneInfo("Asia/Shanghai")


def people_of(name: str, **kwargs) -> tuple[dict, list]:
    found, problems = directory.build(hrcsv.read_export((DATA / name).read_bytes(), name, **kwargs))
    return {p["address"]: p for p in found}, [p.kind for p in problems]


# -- HR exports ----------------------------------------------------------------------------------


def test_a_gbk_roster_with_chinese_headers_and_managers_by_employee_number() -> None:
    people, problems = people_of("roster_gbk.csv")
    assert people["li.kun@corp.example"] == {
        "address": "li.kun@corp.example", "name": "李堃", "aliases": ["Li Kun"],
        "department": "产品部", "title": "产品专员", "manager": "wang.zhe@corp.example"}
    assert people["zhou.mingyuan@corp.example"]["manager"] == ""  # their own manager: the top
    assert people["wang.fang@corp.example"]["manager"] == ""  # A0099 is nobody
    assert sorted(problems) == ["missing_mail", "self_manager", "unknown_manager"]
    assert len(people) == 7


def test_an_excel_utf8_export_with_english_headers() -> None:
    people, problems = people_of("people_utf8_bom.csv")
    assert people["li.na@corp.example"]["name"] == "Li Na"  # the first of a duplicate is kept
    assert people["li.na@corp.example"]["aliases"] == ["李娜", "Nina Li"]
    assert people["li.na@corp.example"]["manager"] == "alex.morgan@corp.example"  # "Name <addr>"
    assert sorted(problems) == ["duplicate_address", "manager_cycle"]


def test_unicode_text_from_excel_is_utf16_with_tabs() -> None:
    text = "姓名\t邮箱\t部门\t职务\r\n王喆\twang.zhe@corp.example\t产品部\t经理\r\n"
    records = hrcsv.read_export(b"\xff\xfe" + text.encode("utf-16-le"), "名单.txt")
    assert [(r.name, r.address, r.department, r.title) for r in records] == [
        ("王喆", "wang.zhe@corp.example", "产品部", "经理")]


@pytest.mark.parametrize("encoding", ["gbk", "gb2312", "auto"])
def test_gbk_is_read_as_gb18030_named_or_not(encoding: str) -> None:
    data = "姓名;电子邮件;部门\n李堃;li.kun@corp.example;产品部\n".encode("gbk")
    (record,) = hrcsv.read_export(data, encoding=encoding)
    assert (record.name, record.department) == ("李堃", "产品部")


def test_a_header_the_table_lacks_is_named_in_the_config() -> None:
    data = "姓名,公司内网账号,部门\n王喆,wang.zhe@corp.example,产品部\n".encode()
    with pytest.raises(hrcsv.ExportError, match="no email column"):
        hrcsv.read_export(data)
    (record,) = hrcsv.read_export(data, columns={"address": "公司内网账号"})
    assert record.address == "wang.zhe@corp.example"
    with pytest.raises(hrcsv.ExportError, match="no such column"):
        hrcsv.read_export(data, columns={"address": "邮件"})


# -- Active Directory entries ----------------------------------------------------------------------

AD = ldapdir.mapping_for("ad")


@pytest.mark.parametrize("attributes, address, aliases", [
    ({"mail": [b"wang.zhe@corp.example"], "proxyAddresses": [b"SMTP:wang.zhe@corp.example",
                                                              b"smtp:zhe.wang@corp.example"]},
     "wang.zhe@corp.example", ["zhe.wang@corp.example"]),
    ({"proxyAddresses": [b"smtp:old@corp.example", b"SMTP:wang.zhe@corp.example",
                         b"X500:/o=Corp/ou=Exchange/cn=Recipients/cn=wz", b"SIP:wz@corp.example"]},
     "wang.zhe@corp.example", ["old@corp.example"]),
    ({"userPrincipalName": [b"wang.zhe@corp.example"]}, "wang.zhe@corp.example", []),
    ({"userPrincipalName": [b"wangzhe"]}, "", []),
], ids=["mail", "primary-proxy-address", "upn", "nothing-usable"])
def test_an_ad_user_reads_as_a_record(attributes: dict, address: str, aliases: list) -> None:
    record = ldapdir.record_of("CN=Wang Zhe,OU=Product,DC=corp,DC=example", {
        "displayName": ["王喆".encode()], "sAMAccountName": [b"wangzhe"], "cn": [b"Wang Zhe"],
        "department": ["产品部".encode()], "title": ["经理".encode()],
        "manager": [b"CN=Zhou Mingyuan,OU=Board,DC=corp,DC=example"], **attributes}, AD)
    assert (record.address, record.name, record.department, record.title) == (
        address, "王喆", "产品部", "经理")
    assert list(record.aliases) == ["Wang Zhe", "wangzhe", *aliases]
    assert record.manager == "CN=Zhou Mingyuan,OU=Board,DC=corp,DC=example"


def test_attribute_names_and_dns_are_compared_as_directories_do() -> None:
    record = ldapdir.record_of("uid=a,dc=x", {"MAIL": ["A@corp.example"], "DisplayName": ["甲"]},
                               ldapdir.mapping_for("openldap"))
    assert (record.address, record.name) == ("A@corp.example", "甲")
    people, problems = directory.build([
        Record("CN=Boss, OU=People ,DC=corp,DC=example", "boss@corp.example", "Boss",
               key="CN=Boss, OU=People ,DC=corp,DC=example"),
        Record("cn=b", "b@corp.example", "B", manager="cn=boss,ou=people,dc=corp,dc=example")])
    assert people[0]["manager"] == "boss@corp.example" and problems == []


def test_configured_attributes_and_filter_replace_the_preset() -> None:
    mapping = ldapdir.mapping_for("ad", "(objectClass=user)", {"mail": ["userPrincipalName"],
                                                               "department": ["company"]})
    assert mapping.filter == "(objectClass=user)" and mapping.mail == ("userPrincipalName",)
    assert mapping.name == ldapdir.PRESETS["ad"].name and "company" in mapping.attributes()
    with pytest.raises(ValueError, match="openldap, ad"):
        ldapdir.mapping_for("novell")


# -- managers, the file, merging ----------------------------------------------------------------


def test_managers_by_name_are_resolved_only_when_unique() -> None:
    records = [Record("1", "a@corp.example", "王喆"), Record("2", "b@corp.example", "王喆"),
               Record("3", "c@corp.example", "陈静", manager="王喆"),
               Record("4", "d@corp.example", "李堃", manager="陈静"),
               Record("5", "e@corp.example", "孙丽", manager="alex@corp.example")]
    people, problems = directory.build(records, known={"alex@corp.example"})
    managers = {p["address"]: p["manager"] for p in people}
    assert managers["c@corp.example"] == "" and managers["d@corp.example"] == "c@corp.example"
    assert managers["e@corp.example"] == "alex@corp.example"  # hand-written in people.toml
    assert [p.line() for p in problems] == [
        "unknown_manager: 3: manager '王喆' names several people: left empty"]


def test_diff_says_who_is_added_removed_and_what_changed() -> None:
    old = [{"address": "a@x.cn", "name": "甲", "aliases": [], "title": "专员", "manager": ""},
           {"address": "b@x.cn", "name": "乙", "aliases": []}]
    new = [{"address": "a@x.cn", "name": "甲", "aliases": [], "title": "经理", "manager": ""},
           {"address": "c@x.cn", "name": "丙", "aliases": []}]
    changes = directory.diff(old, new)
    assert [(c.kind, c.address, c.fields) for c in changes] == [
        ("removed", "b@x.cn", ()), ("added", "c@x.cn", ()),
        ("changed", "a@x.cn", (("title", "专员", "经理"),))]
    assert directory.too_many_removed(old, changes, 0.2) == ""
    assert "all 2 people" in directory.too_many_removed(old, directory.diff(old, []), 0.2)
    many = [{"address": f"p{n}@x.cn", "name": str(n)} for n in range(100)]
    assert "21 of 100 people" in directory.too_many_removed(
        many, directory.diff(many, many[21:]), 0.2)


def test_the_file_round_trips_and_a_bad_one_is_named(tmp_path: Path) -> None:
    people, problems = people_of("roster_gbk.csv")
    synced = directory.Synced(tuple(people.values()), "csv roster_gbk.csv",
                              "2026-12-04T02:30:00+08:00",
                              tuple(directory.build([Record("x", "")])[1]))
    data = directory.encode(synced)
    assert data.count(b"\n") == len(people) + 2  # a person a line: a diff reads as the change
    assert directory.decode(data) == synced
    for bad in (b"{", b'{"format": 9, "people": []}', b'{"format": 1, "people": [{"name": "x"}]}'):
        with pytest.raises(ValueError, match="people.json"):
            directory.decode(bad, "people.json")


def test_hand_written_entries_override_and_extend_synced_ones() -> None:
    synced = [{"address": "wang.zhe@corp.example", "name": "王喆", "aliases": ["Wang Zhe"],
               "department": "产品部", "title": "经理", "manager": "zhou@corp.example"}]
    hand = [{"address": "Wang.Zhe@corp.example", "aliases": ["产品部王经理"],
             "manager": "alex.morgan@corp.example"},
            {"name": "Alex Morgan", "address": "alex.morgan@corp.example"}]
    merged = Directory.from_toml({"person": directory.merge(synced, hand)})
    wang = merged.by_address("wang.zhe@corp.example")
    assert (wang.name, wang.title, wang.manager) == ("王喆", "经理", "alex.morgan@corp.example")
    assert wang.aliases == ("Wang Zhe", "产品部王经理")
    assert merged.by_address("alex.morgan@corp.example").name == "Alex Morgan"
    with pytest.raises(ValueError, match="new@corp.example is not in the synced directory"):
        directory.merge(synced, [{"address": "new@corp.example", "timezone": "Asia/Tokyo"}])


def test_five_thousand_people_load_and_resolve(tmp_path: Path) -> None:
    """A 5,000-person synced file merged under the shipped people.toml: everyone is found by
    address, and a name shared by 12 people resolves to all 12 (the owner is then asked)."""
    people = [{"address": f"user{n}@corp.example", "name": "王伟" if n in range(7, 4800, 400) else f"员工{n}",
               "aliases": [f"Employee {n}"], "department": f"部门{n % 40}", "title": "专员",
               "manager": f"user{n // 10}@corp.example" if n else ""} for n in range(5000)]
    file = tmp_path / "directory.json"
    file.write_bytes(directory.encode(directory.Synced(tuple(people))))
    rules = Rules.load(ROOT / "rules", people_file=file)
    shipped = len(tomllib.loads((ROOT / "rules" / "people.toml").read_text("utf-8"))["person"])
    assert len(rules.people.people) == 5000 + shipped
    assert rules.people.by_address("user4999@corp.example").manager == "user499@corp.example"
    assert len(rules.people.resolve("王伟")) == 12
    assert [p.address for p in rules.people.resolve("员工4321")] == ["user4321@corp.example"]


# -- config ----------------------------------------------------------------------------------------


def write_config(tmp_path: Path, directory_section: str) -> Path:
    path = tmp_path / "config.toml"
    shipped = (ROOT / "config.toml").read_text("utf-8")
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules, dirs_exist_ok=True)
    path.write_text(shipped.replace('data_dir = "var"', f'data_dir = "{tmp_path / "var"}"')
                    .replace('dir = "rules"', f'dir = "{rules}"')
                    .replace('dir = "templates"', f'dir = "{ROOT / "templates"}"')
                    + directory_section, "utf-8")
    return path


@pytest.mark.parametrize("section, key", [
    ('[directory]\nsource = "ldpa"', "directory.source"),
    ('[directory]\nsource = "ldap"\n[directory.ldap]\nbase_dn = "dc=x"', "directory.ldap.host"),
    ('[directory]\nsource = "ldap"\n[directory.ldap]\nhost = "x"', "directory.ldap.base_dn"),
    ('[directory.ldap]\nhost = "x"\npassword = "s3cret"', "directory.ldap.password"),
    ('[directory.ldap]\nkind = "novell"', "directory.ldap.kind"),
    ('[directory.ldap.attributes]\nemail = "mail"', "directory.ldap.attributes.email"),
    ('[directory]\nsource = "csv"', "directory.csv.path"),
    ('[directory]\nsync_at = "2:30am"', "directory.sync_at"),
    ('[directory.csv.columns]\nmail = "邮箱"', "directory.csv.columns"),
], ids=["source", "host", "base-dn", "password-in-file", "kind", "attribute-field", "csv-path",
        "sync-at", "csv-column"])
def test_directory_config_mistakes_name_the_key(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[{key}\]"):
        load_config(write_config(tmp_path, "\n" + section + "\n"))


def test_directory_config_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "")).directory.file == tmp_path / "var" / \
        "directory.json"
    config = load_config(write_config(tmp_path, """
[directory]
source = "ldap"
sync_at = "02:30"
[directory.ldap]
host = "dc1.corp.example"
security = "starttls"
username = "maild@corp.example"
password_env = "MAILD_LDAP_PASSWORD"
base_dn = "DC=corp,DC=example"
kind = "ad"
[directory.ldap.attributes]
mail = "userPrincipalName"
"""))
    ldap = config.directory.ldap
    assert config.directory.sync_at == time(2, 30) and ldap.server.port == 389
    assert ldap.kind == "ad" and ldap.attributes == {"mail": ("userPrincipalName",)}


@pytest.mark.parametrize("last, now, due", [
    (None, datetime(2026, 8, 3, 1, 0, tzinfo=TZ), True),
    (datetime(2026, 8, 2, 2, 30, tzinfo=TZ), datetime(2026, 8, 3, 2, 29, tzinfo=TZ), False),
    (datetime(2026, 8, 2, 2, 30, tzinfo=TZ), datetime(2026, 8, 3, 2, 30, tzinfo=TZ), True),
    (datetime(2026, 8, 3, 2, 30, tzinfo=TZ), datetime(2026, 8, 3, 23, 0, tzinfo=TZ), False),
    (datetime(2026, 7, 30, 9, 0, tzinfo=TZ), datetime(2026, 8, 3, 1, 0, tzinfo=TZ), True),
], ids=["never", "before-the-slot", "at-the-slot", "done-today", "down-for-days"])
def test_the_daily_sync_is_due_once_its_slot_has_come(last, now, due) -> None:
    assert dirsync.sync_due(time(2, 30), last, now) is due


# -- the commands, on an HR export -------------------------------------------------------------------


def run(config: Path, *argv: str) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(["-c", str(config), "directory", *argv])
    out, err = io.StringIO(), io.StringIO()
    return dirsync.run_directory_command(args, out=out, err=err, environ={}), out.getvalue(), \
        err.getvalue()


def test_import_a_roster_then_check_and_find(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    roster = DATA / "roster_gbk.csv"
    code, out, _ = run(config, "import", str(roster), "--dry-run")
    assert code == 0 and "+ added   li.kun@corp.example  李堃" in out
    assert "missing_mail: roster_gbk.csv line 9: 刘洋 has no email address: skipped" in out
    assert "dry run: nothing written" in out
    code, out, _ = run(config, "import", str(roster))
    assert code == 0 and "written to" in out
    code, out, _ = run(config, "check")
    assert "12 people: 7 synced from csv" in out and "9 in rules/people.toml (4 of them over" in out
    code, out, _ = run(config, "find", "李堃")
    assert code == 0 and out == "李堃  <li.kun@corp.example>  产品部 产品专员  manager " \
                                "wang.zhe@corp.example\n"
    code, out, _ = run(config, "find", "wang.zhe@corp.example")
    assert "manager alex.morgan@corp.example" in out  # rules/people.toml wins
    assert run(config, "import", str(tmp_path / "nope.csv"))[0] == dirsync.EX_NOINPUT
    (tmp_path / "bad.csv").write_text("姓名,部门\n王喆,产品部\n")
    code, _, err = run(config, "import", str(tmp_path / "bad.csv"))
    assert code == dirsync.EX_UNAVAILABLE and "no email column" in err


def test_sync_without_a_source_says_how_to_set_one(tmp_path: Path) -> None:
    code, _, err = run(write_config(tmp_path, ""), "sync")
    assert code == dirsync.EX_UNAVAILABLE and 'set [directory] source = "ldap"' in err


def test_every_directory_subcommand_has_help_with_an_example(capsys) -> None:
    for name in dirsync.EXAMPLES:
        with pytest.raises(SystemExit) as info:
            cli.main(["directory", name, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out and f"maild directory {name}" in out


def test_maild_check_tells_where_the_directory_stands(tmp_path: Path) -> None:
    from maild.app.checks import check_directory

    config_path = write_config(tmp_path, '\n[directory]\nsource = "csv"\n[directory.csv]\n'
                                         f'path = "{DATA / "roster_gbk.csv"}"\n')
    config = load_config(config_path)
    before = check_directory(config)
    assert before.ok and before.warn and "not synced yet" in before.detail
    assert run(config_path, "sync")[0] == 0
    after = check_directory(config)
    assert after.warn and "7 synced from csv" in after.detail and "2 problems" in after.detail
