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
    import importlib.metadata  # ~30 ms: only for --version

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


class _PrintVersion(argparse.Action):
    """``--version``, which looks the version up only when given."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"pdp {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdp", description="Policy decision point for AI agents.")
    parser.add_argument("--version", action=_PrintVersion)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for subcommand in _SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
