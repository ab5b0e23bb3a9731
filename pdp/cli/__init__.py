"""The ``pdp`` command. Each subcommand is a module with ``add_parser``
(its arguments) and ``run`` (what it does): ``pdp serve`` runs the sidecar,
``pdp check`` validates a snapshot file offline, ``pdp eval`` explains one
decision, ``pdp test`` runs policy tests, ``pdp control`` runs the control
plane or manages its API keys, ``pdp ctl`` drives a running control plane
over its REST API, ``pdp approvals`` decides the approvals of a standalone
sidecar, ``pdp incidents`` lists its incidents, ``pdp decisions`` reads a
sidecar's decision log, ``pdp caller-token`` mints a caller token. A
subcommand loads the layers it needs only when it runs."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable, Sequence

from . import (
    _approvals,
    _caller_token,
    _check,
    _control,
    _ctl,
    _decisions,
    _eval,
    _incidents,
    _serve,
    _test,
)

__all__ = ["build_parser", "main", "version"]


def version() -> str:
    """The installed distribution's version."""
    try:
        return importlib.metadata.version("pdp")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown (not installed)"


_SUBCOMMANDS = (
    _serve,
    _check,
    _eval,
    _test,
    _control,
    _ctl,
    _approvals,
    _decisions,
    _incidents,
    _caller_token,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdp", description="Policy decision point for AI agents.")
    parser.add_argument("--version", action="version", version=f"pdp {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for subcommand in _SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
