"""The package operators install. The sdist and the wheel carry the templates, rules, starter
config and systemd unit; the wheel, built from the sdist and installed into a fresh venv outside
the repository (its dependencies from PyPI), runs `maild init`, `maild check` and the demo there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from mailservers import free_port

from maild.app.shipped import set_value

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("config.toml", "deploy/maild.service", "rules/forms.toml", "rules/people.toml",
           "rules/schedules.toml", "templates/i18n.toml", "templates/digest.html.j2",
           "templates/archive/i18n.toml")
SOURCES = ("pyproject.toml", "README.md", "config.toml", "maild", "rules", "templates", "deploy")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """sdist from a copy of the sources, then the wheel from that sdist (as pip would)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    dist.mkdir()
    sdist = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
                               "print(build_meta.build_sdist(sys.argv[1]))", str(dist)],
        cwd=source, capture_output=True, text=True, timeout=300)
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    archive = dist / sdist.stdout.strip().splitlines()[-1]
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(dist), str(archive)],
                           capture_output=True, text=True, timeout=300)
    assert wheel.returncode == 0, wheel.stderr[-3000:]
    (wheel_file,) = dist.glob("maild-*.whl")
    return {"sdist": archive, "wheel": wheel_file, "work": work}


def test_sdist_and_wheel_carry_the_shipped_files(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    with zipfile.ZipFile(built["wheel"]) as wheel:
        packaged = set(wheel.namelist())
    for name in SHIPPED:
        assert name in names, f"sdist lacks {name}"
        assert f"maild/_data/{name}" in packaged, f"wheel lacks {name}"
    assert not any(name.startswith(("tests/", "maild/_data/tests")) for name in packaged)


def test_the_wheel_installs_into_a_fresh_venv_and_runs_init_check_and_the_demo(built):
    work = built["work"]
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(built["wheel"])],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MAILD_CONFIG", "VIRTUAL_ENV")}
    site = work / "site"
    site.mkdir()

    def maild(*args: str, cwd: Path = site) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "maild"), *args], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=180)

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import maild.app.shipped as s; print(s.shipped_root())"],
                           capture_output=True, text=True, env=env, cwd=site, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr

    done = maild("init", "office")
    assert done.returncode == 0, done.stderr
    office = site / "office"
    config = office / "config.toml"
    text = config.read_text(encoding="utf-8")
    imap_port, smtp_port = free_port(), free_port()
    for key, port in (("imap_port", imap_port), ("smtp_port", smtp_port)):
        text = set_value(text, "embedded", key, port)
    config.write_text(text, encoding="utf-8")

    server = subprocess.Popen([str(venv / "bin" / "maild"), "mailserver"], cwd=office, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        check = None
        for _attempt in range(50):  # until the mail system listens
            check = maild("check", cwd=office)
            if check.returncode == 0 or "connect" not in check.stdout:
                break
            time.sleep(0.2)
        assert check is not None and check.returncode == 0, check.stdout + check.stderr
        assert f"{config} is valid (from ./config.toml)" in check.stdout
        for line in ("templates", "rules", "data dir", "archive dir", "imap login", "smtp ehlo"):
            assert f"✓ ok   {line}" in check.stdout, line
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)

    demo = maild("demo", "--once", "--free-ports", cwd=office)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "✔ demo scenario complete" in demo.stdout
    status = maild("status", "-c", "var/demo/config.toml", "--json", cwd=office)
    assert status.returncode == 0 and json.loads(status.stdout)["items"] == {"open": 1}

    if Path("/etc/maild/config.toml").exists():
        return  # this machine has a config after all: the fallback below cannot be seen
    # no config anywhere: inspect reads with the shipped starter config, the rest say what to do
    sample = ROOT / "tests" / "data" / "new_project_zh.eml"
    nowhere = work / "empty"
    nowhere.mkdir()
    inspect = maild("inspect", str(sample), "--json", cwd=nowhere)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["kind"] == "new_item"
    assert "the shipped starter config" in inspect.stderr
    nothing = maild("status", cwd=nowhere)
    assert nothing.returncode == 78 and "maild init" in nothing.stderr
