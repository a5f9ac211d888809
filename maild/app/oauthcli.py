"""`maild oauth login`: the interactive OAuth2 sign-in, storing the refresh token in the cache.

Microsoft's device-code flow prints a code to enter at microsoft.com/devicelogin from any
browser; Google's refresh-token flow prints a consent address whose answer comes back to a
one-shot server on 127.0.0.1 (forward its port with `ssh -L` from a headless server). For the
flows without a person (Microsoft client credentials, a Google service account) `login` just
gets a token, which tests the setup like `maild check` does. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from maild.app.wiring import run_command
from maild.core.config import ConfigError, load_config

EX_OK, EX_FAILED, EX_CONFIG = 0, 1, 78

OAUTH_EXAMPLES = {
    "oauth": "maild oauth login -c /etc/maild/config.toml   # device code (Microsoft) or a "
             "browser consent (Google);\n"
             "                                                 # the refresh token goes to "
             "DATA_DIR/oauth-tokens.json (0600)",
}
HELP = ("Sign in with OAuth2 ([oauth] in the config): `login` runs the flow's interactive "
        "sign-in and keeps the refresh token in the data directory's token cache.")


def add_oauth_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    oauth = add("oauth", HELP)
    oauth.add_argument("action", choices=("login",),
                       help="login: sign in now (Microsoft device code, Google consent page)")


def run_oauth_command(args: argparse.Namespace, *, out: TextIO | None = None,
                      err: TextIO | None = None,
                      environ: Mapping[str, str] | None = None) -> int:
    """Carry out `maild oauth ACTION`; returns the exit code."""
    import os

    from maild.adapters.oauth import CACHE_NAME, token_sources
    from maild.core.signin import SignInError

    out, err = out or sys.stdout, err or sys.stderr
    environ = os.environ if environ is None else environ
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"maild: configuration error: {exc}", file=err)
        return EX_CONFIG
    sources = token_sources(config, environ, run_command, time.time)
    if not sources:
        print(f"maild: {config.path}: neither [imap] nor [smtp] has auth = \"oauth2\" (or "
              "[mail] embedded = true); nothing to sign in to", file=err)
        return EX_CONFIG
    source = next(iter(sources.values()))
    try:
        token = source.login(out)
    except SignInError as exc:
        print(f"maild: sign-in failed: {exc}", file=err)
        return EX_FAILED
    minutes = max(0, int((token.expires_at - time.time()) // 60))
    print(f"signed in: {source.who.provider} {source.who.flow} for {source.who.mailbox}; "
          f"token valid {minutes} min, kept in {config.data_dir / CACHE_NAME}", file=out)
    return EX_OK
