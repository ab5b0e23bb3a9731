"""The ``pdp`` command. Each subcommand is a module with ``add_parser``
(its arguments) and ``run`` (what it does): ``pdp serve`` runs the sidecar,
``pdp check`` validates a snapshot file offline, ``pdp eval`` explains one
decision, ``pdp test`` runs policy tests, ``pdp control`` runs the control
plane or manages its API keys, ``pdp approvals`` decides the approvals of a
standalone sidecar. A subcommand loads the layers it
needs only when it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from . import _approvals, _check, _control, _decisions, _eval, _serve, _test

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = (_serve, _check, _eval, _test, _control, _approvals, _decisions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdp", description="Policy decision point for AI agents.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for subcommand in _SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
