"""The `maild` command line: a thin layer over the library, one subcommand per job, each with an example.

Every command but `init` needs a config file: `-c`, else `$MAILD_CONFIG`, else ./config.toml,
else /etc/maild/config.toml (`config.find_config`); which one was taken is said on stderr (by
`run` in its log) unless `-c` named it. `inspect` alone falls back to the shipped starter config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from maild.app.dirsync import add_directory_command, run_directory_command
from maild.app.inspectmail import inspect_command
from maild.app.migrate import EXAMPLE as MIGRATE_EXAMPLE
from maild.app.migrate import add_migrate_command, run_migrate_command
from maild.app.oauthcli import OAUTH_EXAMPLES, add_oauth_command, run_oauth_command
from maild.app.ops import OPS_EXAMPLES, add_ops_commands, run_ops_command
from maild.app.reports import REPORT_EXAMPLES, add_report_commands, run_report_command
from maild.core.config import ConfigError, FoundConfig, find_config, load_config

CONFIG_HELP = ("configuration file (default: $MAILD_CONFIG, else ./config.toml, else "
               "/etc/maild/config.toml)")
EXAMPLES = {
    "init": "maild init ~/maild          # then: cd ~/maild && maild demo\n"
            "  maild init --system /etc/maild   # for the systemd unit (deploy/README.md)",
    "run": "maild run -c /etc/maild/config.toml\n"
           "  maild run --attach          # use the mail system of a running `maild mailserver`",
    "demo": "maild demo            # play the Q3 project, then keep serving\n"
            "  maild demo --once     # play it and exit (non-zero if a step failed)\n"
            "  maild demo --once --scenario full   # a simulated week, through to the archive",
    "mailserver": "maild mailserver        # terminal 1: embedded IMAP+SMTP only\n"
                  "  maild run --attach      # terminal 2: the daemon, using it",
    "inspect": "maild inspect tests/data/new_project_zh.eml --json\n"
               "  maild inspect form.eml --now 2026-07-27T09:00   # relative dates as of then\n"
               "  maild inspect form.eml --now email   # as of the email's own Date",
    "directory": "maild directory sync --dry-run     # LDAP / AD: what would change\n"
                 "  maild directory import hr/people.csv   # an HR export (UTF-8 or GBK)\n"
                 "  maild directory check",
    **OPS_EXAMPLES,
    **REPORT_EXAMPLES,
    **OAUTH_EXAMPLES,
    "migrate": MIGRATE_EXAMPLE,
}


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        text = f"ts={stamp} level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        if record.exc_info:
            text += " exc=" + json.dumps(self.formatException(record.exc_info))
        return text


_FIELD = re.compile(r'(?:^|(?<= ))([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)')


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(),
                                  "logger": record.name}
        for key, value in _FIELD.findall(record.getMessage()):
            # a quoted value (JSON string syntax) may hold spaces: see admission.log_line
            fields[key] = json.loads(value) if value.startswith('"') else value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


def setup_logging(fmt: str, level: int = logging.INFO, log_dir: Path | None = None) -> None:
    """One line per event on stdout, and appended to `log_dir`/maild.log when given (reopened
    when logrotate moves it)."""
    from logging.handlers import WatchedFileHandler

    formatter = _JsonFormatter() if fmt == "json" else _KeyValueFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(WatchedFileHandler(log_dir / "maild.log", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    for noisy in ("mail.log", "mail", "imapclient", "aiosmtpd", "asyncio", "pymap", "msal",
                  "urllib3", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maild",
        description="Email-driven collaboration daemon: structured emails in, owners confirmed, "
                    "work chased.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  " + "\n  ".join(EXAMPLES.values()))
    parser.add_argument("-c", "--config", default=None, type=Path, help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="example:\n  " + EXAMPLES[name])
        if name != "init":
            sub.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                             help=CONFIG_HELP)
        return sub

    init = add("init", "Write an editable copy of the shipped config.toml, rules/ and templates/ "
                       "into DIR (created if missing; nothing is overwritten).")
    init.add_argument("dir", type=Path, metavar="DIR", help="folder to write into")
    init.add_argument("--system", action="store_true",
                      help="for the systemd unit: absolute paths under /var/lib/maild and "
                           "/var/log/maild, [mail] embedded = false, and maild.service")
    run = add("run", "Run the daemon against the configured IMAP/SMTP servers (or the embedded "
                     "one).")
    run.add_argument("--attach", action="store_true",
                     help="with [mail] embedded = true: use the embedded mail system that "
                          "`maild mailserver` runs instead of starting one")
    demo = add("demo", "Play the seed guide's Q3 project on the embedded mail system, "
                       "printing every email in and out; its data stays in <data_dir>/demo/ "
                       "(see it with: maild status -c <data_dir>/demo/config.toml).")
    demo.add_argument("--once", action="store_true", help="exit after the scenario (0 = all steps happened)")
    demo.add_argument("--free-ports", action="store_true",
                      help="let the OS pick the ports instead of those in the config")
    demo.add_argument("--scenario", choices=("basic", "full"), default="basic",
                      help="basic: kickoff and confirmations, in real time; full: the project's "
                           "whole life over a simulated week (digests, reminders, escalation, "
                           "close and archive) — always exits when done")
    add("mailserver", "Run only the embedded mail system (IMAP+SMTP on 127.0.0.1), so the daemon "
                      "can be stopped and restarted while the mail stays.")
    inspect = add("inspect", "Show how maild reads an email, without touching any state.")
    inspect.add_argument("file", type=Path, help="an .eml file ('-' for standard input)")
    inspect.add_argument("--json", action="store_true", help="print the stable JSON schema")
    inspect.add_argument("--now", metavar="ISO|email", default=None,
                         help="read relative dates (下周三, 两周内, 月底) as of this time (ISO "
                              "8601, the config's timezone when none is given), or 'email' for "
                              "the email's own Date header; default: the current time")
    add_ops_commands(add)
    add_report_commands(add)
    add_oauth_command(add)
    add_directory_command(add)
    add_migrate_command(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            return _init(args)
        found = _locate_config(args, os.environ, Path.cwd())
        args.config, args.config_source = found.path, found.source
        if found.source != "-c" and args.command != "run":
            print(f"maild: using {found.describe()}", file=sys.stderr)
        return _dispatch(args)
    except ConfigError as exc:
        print(f"maild: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG


def _locate_config(args: argparse.Namespace, environ: Mapping[str, str],
                   cwd: Path) -> FoundConfig:
    try:
        return find_config(args.config, environ, cwd)
    except ConfigError:
        if args.command != "inspect":
            raise
        from maild.app.shipped import shipped_config  # inspect needs only rules and limits
        return FoundConfig(shipped_config(), "the shipped starter config")


def _init(args: argparse.Namespace) -> int:
    from maild.app.shipped import InitError, init

    try:
        written = init(args.dir, system=args.system)
    except (InitError, OSError) as exc:
        print(f"maild init: {exc}", file=sys.stderr)
        return 73  # EX_CANTCREAT
    for path in written:
        print(f"wrote {path}{'/' if path.is_dir() else ''}")
    config = args.dir / "config.toml"
    if args.system:
        print(f"\nnext: edit {config} ([mail] inbox_address, [imap], [smtp]), then\n"
              f"  runuser -u maild -- maild -c {config} check\n"
              f"  cp {args.dir / 'maild.service'} /etc/systemd/system/ (see deploy/README.md)")
    else:
        print(f"\nnext: cd {args.dir} && maild demo    (or: maild -c {config} check)")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in OPS_EXAMPLES:
        return run_ops_command(args)
    if args.command in REPORT_EXAMPLES:
        return run_report_command(args)
    if args.command in OAUTH_EXAMPLES:
        return run_oauth_command(args)
    if args.command == "inspect":
        return inspect_command(args)
    if args.command == "directory":
        return run_directory_command(args)
    if args.command == "migrate":
        return run_migrate_command(args)
    config = load_config(args.config)
    if args.command == "demo":
        from maild.app.demo import run_demo
        setup_logging(config.log_format, logging.WARNING)
        if args.scenario == "full":
            from maild.app.demo_full import run_full_demo
            return run_full_demo(args.config, sys.stdout, free_ports=True)
        return run_demo(args.config, once=args.once, free_ports=args.free_ports)
    if args.command == "mailserver":
        setup_logging(config.log_format)
        from maild.adapters.embedded import EmbeddedMailSystem
        emb = config.embedded_system
        mail = EmbeddedMailSystem(emb.host, emb.imap_port, emb.smtp_port, dict(emb.accounts))
        print(f"embedded mail system: IMAP {emb.host}:{emb.imap_port}  SMTP {emb.host}:{emb.smtp_port}"
              f"  accounts: {', '.join(emb.accounts)}", flush=True)
        mail.serve_forever()
        return 0
    if args.command == "run":
        setup_logging(config.log_format, log_dir=config.log_dir)
        logging.getLogger("maild.cli").info("event=config path=%s from=%s", config.path,
                                            args.config_source.replace(" ", "_"))
        return _run(config, attach=args.attach)
    raise AssertionError(args.command)


def _run(config: Any, *, attach: bool = False) -> int:
    from maild.adapters.store import FormatError
    from maild.adapters.storeapi import LockError
    from maild.app.service import Service

    mail = None
    if attach and not config.embedded:
        print("maild: --attach is for [mail] embedded = true (the mail system of "
              "`maild mailserver`); this config names real servers", file=sys.stderr)
        return 64  # EX_USAGE
    if config.embedded and attach:
        emb = config.embedded_system
        print(f"using the embedded mail system of `maild mailserver`: IMAP {emb.host}:"
              f"{emb.imap_port}  SMTP {emb.host}:{emb.smtp_port}", flush=True)
    elif config.embedded:
        from maild.adapters.embedded import EmbeddedMailSystem
        emb = config.embedded_system
        mail = EmbeddedMailSystem(emb.host, emb.imap_port, emb.smtp_port, dict(emb.accounts))
        try:
            mail.start()
        except OSError as exc:
            print(f"maild: cannot start the embedded mail system on {emb.host}:{emb.imap_port}/"
                  f"{emb.smtp_port}: {exc}. Is `maild mailserver` already running? Then use "
                  f"it: maild run --attach", file=sys.stderr)
            return 69  # EX_UNAVAILABLE
        if (emb.imap_port, emb.smtp_port) != (mail.imap_port, mail.smtp_port):
            # Port 0 in the file means "any free port": point the daemon at the ones taken.
            config = load_config(config.path, {"embedded.imap_port": mail.imap_port,
                                               "embedded.smtp_port": mail.smtp_port})
        print(f"embedded mail system: IMAP {emb.host}:{mail.imap_port}  SMTP "
              f"{emb.host}:{mail.smtp_port}", flush=True)
    try:
        service = Service.from_config(config)
    except (LockError, FormatError) as exc:
        print(f"maild: {exc}", file=sys.stderr)
        if mail:
            mail.stop()
        return 75 if isinstance(exc, LockError) else 65  # EX_TEMPFAIL, EX_DATAERR
    signal.signal(signal.SIGTERM, lambda *_: service.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: service.stop_event.set())
    signal.signal(signal.SIGHUP, lambda *_: service.request_reload())
    try:
        service.run()
    finally:
        service.close()
        if mail:
            mail.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
