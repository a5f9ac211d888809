"""The `maild` command line: a thin layer over the library, one subcommand per job, each with an example."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import ConfigError, load_config
from .migrate import EXAMPLE as MIGRATE_EXAMPLE
from .migrate import add_migrate_command, run_migrate_command
from .ops import OPS_EXAMPLES, add_ops_commands, run_ops_command
from .reports import REPORT_EXAMPLES, add_report_commands, run_report_command

EXAMPLES = {
    "run": "maild run -c config.toml",
    "demo": "maild demo            # play the Q3 project, then keep serving\n"
            "  maild demo --once     # play it and exit (non-zero if a step failed)\n"
            "  maild demo --once --scenario full   # a simulated week, through to the archive",
    "mailserver": "maild mailserver -c config.toml   # embedded IMAP+SMTP only",
    "inspect": "maild inspect tests/data/new_project_zh.eml --json",
    **OPS_EXAMPLES,
    **REPORT_EXAMPLES,
    "migrate": MIGRATE_EXAMPLE,
}


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        text = f"ts={stamp} level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        if record.exc_info:
            text += " exc=" + json.dumps(self.formatException(record.exc_info))
        return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(),
                                  "logger": record.name}
        for part in record.getMessage().split(" "):
            key, eq, value = part.partition("=")
            if eq:
                fields[key] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


def setup_logging(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("mail.log", "mail", "imapclient", "aiosmtpd", "asyncio", "pymap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maild",
        description="Email-driven collaboration daemon: structured emails in, owners confirmed, "
                    "work chased.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  " + "\n  ".join(EXAMPLES.values()))
    parser.add_argument("-c", "--config", default="config.toml", type=Path,
                        help="configuration file (default: ./config.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="example:\n  " + EXAMPLES[name])
        sub.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                         help="configuration file (default: ./config.toml)")
        return sub

    add("run", "Run the daemon against the configured IMAP/SMTP servers (or the embedded one).")
    demo = add("demo", "Play the seed guide's Q3 project on the embedded mail system, "
                       "printing every email in and out.")
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
    add_ops_commands(add)
    add_report_commands(add)
    add_migrate_command(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"maild: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in OPS_EXAMPLES:
        return run_ops_command(args)
    if args.command in REPORT_EXAMPLES:
        return run_report_command(args)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "migrate":
        return run_migrate_command(args)
    config = load_config(args.config)
    if args.command == "demo":
        from .demo import run_demo
        setup_logging(config.log_format, logging.WARNING)
        if args.scenario == "full":
            from .demo_full import run_full_demo
            return run_full_demo(args.config, sys.stdout, free_ports=True)
        return run_demo(args.config, once=args.once, free_ports=args.free_ports)
    setup_logging(config.log_format)
    if args.command == "mailserver":
        from .embedded import EmbeddedMailSystem
        emb = config.embedded_system
        mail = EmbeddedMailSystem(emb.host, emb.imap_port, emb.smtp_port, dict(emb.accounts))
        print(f"embedded mail system: IMAP {emb.host}:{emb.imap_port}  SMTP {emb.host}:{emb.smtp_port}"
              f"  accounts: {', '.join(emb.accounts)}", flush=True)
        mail.serve_forever()
        return 0
    if args.command == "run":
        return _run(config)
    raise AssertionError(args.command)


def _run(config: Any) -> int:
    from .service import Service
    from .store import FormatError, LockError

    mail = None
    if config.embedded:
        from .embedded import EmbeddedMailSystem
        emb = config.embedded_system
        mail = EmbeddedMailSystem(emb.host, emb.imap_port, emb.smtp_port, dict(emb.accounts))
        try:
            mail.start()
        except OSError as exc:
            print(f"maild: cannot start the embedded mail system on {emb.host}:{emb.imap_port}/"
                  f"{emb.smtp_port}: {exc}. Is `maild mailserver` already running? Then set "
                  f"[mail] embedded = false and point [imap]/[smtp] at it.", file=sys.stderr)
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


def inspect_email(raw: bytes, config: Any, now: datetime) -> dict[str, Any]:
    """The stable `inspect --json` reading of one email (no state read or written)."""
    from . import intake, workflow
    from .classify import (
        ClassifyContext,
        HelpRequest,
        NewItem,
        Reply,
        Unrecognized,
        classify,
        inspect_kind,
        language_of,
    )
    from .decode import DecodeError, decode
    from .reply import new_text
    from .service import Rules

    rules = Rules.load(config.rules_dir, config.timezone)
    try:
        msg = decode(raw, max_bytes=config.max_message_bytes,
                     max_header_bytes=config.max_header_bytes)
    except DecodeError as exc:
        return {"kind": "unrecognized", "language": "en", "command": None, "new_text": "",
                "item": None, "errors": [f"undecodable: {exc.reason}"]}
    secret = b"inspect"
    ctx = ClassifyContext(
        inbox_address=config.inbox_address, secret=secret, allowed_domains=(),
        form_rules=rules.form_rules,
        lookup_message=lambda mid: ("", None) if mid.startswith("maild.") else None,
        item_exists=lambda _item: True)
    decision = classify(msg, ctx)
    text = new_text(msg.text, msg.html)
    result: dict[str, Any] = {"kind": inspect_kind(decision),
                              "language": language_of(msg.subject, text),
                              "command": None, "new_text": text, "item": None, "errors": []}
    if isinstance(decision, Reply):
        result["command"] = decision.command.to_dict() if decision.command else None
        result["item"] = ({"id": decision.item_id, "task": decision.task_id}
                          if decision.item_id else None)
    elif isinstance(decision, NewItem):
        form = decision.form
        wctx = workflow.WorkflowContext(inbox_address=config.inbox_address, secret=secret,
                                        people=rules.people, form_rules=rules.form_rules,
                                        workday_end=config.workday_end)
        outcome = intake.start_item(msg, decision, "MD-0000", wctx, now)
        tasks = [{"name": t.name, "owner": t.owner, "deadline": t.deadline,
                  "deliverable": t.deliverable} for t in form.tasks]
        if outcome.items:
            for raw_task, task in zip(tasks, outcome.items[0]["tasks"], strict=False):
                raw_task.update(owner_address=task["owner"], deadline_at=task["deadline"])
        result["item"] = {"kind": form.kind.value if form.kind else None, **dict(form.fields),
                          "tasks": tasks}
        for notice in outcome.notices:
            if notice.template == "validation_error":
                result["errors"] = list(notice.context["errors"])
    elif isinstance(decision, HelpRequest):
        result["command"] = {"name": "help"}
    elif isinstance(decision, Unrecognized):
        result["errors"] = [decision.reason]
    return result


def _inspect(args: argparse.Namespace) -> int:
    config_path = args.config if args.config.exists() else None
    if config_path is None:
        print(f"maild: {args.config} not found; inspect needs it for rules and limits",
              file=sys.stderr)
        return 78
    config = load_config(config_path)
    raw = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    result = inspect_email(raw, config, datetime.now(config.tz))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"kind:     {result['kind']}  ({result['language']})")
        if result["command"]:
            print(f"command:  {result['command']}")
        print("new text:\n" + textwrap.indent(result["new_text"] or "(empty)", "  "))
        if result["item"]:
            print("item:     " + json.dumps(result["item"], ensure_ascii=False, indent=2))
        for error in result["errors"]:
            print(f"error:    {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
