"""`metricstream serve`: the server in the foreground. Flags are generated from `Settings`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .errors import MetricStreamError
from .settings import ENV_PREFIX, Settings
from .wire import __version__

__all__ = ["build_parser", "main"]


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metricstream", description="Real-time metric streaming over Server-Sent Events."
    )
    parser.add_argument("--version", action="version", version=f"metricstream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the server in the foreground",
        description="Run the server until Ctrl+C or SIGTERM. Every flag can also be set with "
        f"an environment variable {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}MAX_CLIENTS.",
    )
    for name, field in Settings.model_fields.items():
        help_text = f"{field.description} (default: {field.default}; env {ENV_PREFIX}{name.upper()})"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        if field.annotation is bool:
            # --name / --no-name; left out (None) leaves the environment or the default in charge.
            serve.add_argument(
                flag_name(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
            continue
        kind: Any = field.annotation if field.annotation in (int, float) else str
        serve.add_argument(
            flag_name(name), dest=name, type=kind, default=None, metavar=name.upper(), help=help_text
        )
    serve.add_argument(
        "--quiet", action="store_true", help="print nothing at start: neither the URL nor the access notes"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl+C before the server installed its own handler
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = vars(build_parser().parse_args(argv))
    quiet = args.pop("quiet")
    args.pop("command")
    # A flag left out is None here: it leaves the environment or the default in charge.
    try:
        settings = Settings.build(**{name: value for name, value in args.items() if value is not None})
        from .server.serving import run
        from .web.telemetry import configure_logging

        configure_logging(settings.log_level)  # the program owns logging; the library never does

        run(settings, quiet=quiet)
    except MetricStreamError as error:
        print(f"metricstream: {error}", file=sys.stderr)
        return 2
    return 0
