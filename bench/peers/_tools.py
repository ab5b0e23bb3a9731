"""Building the peers from the Go module proxy into ``.tools/peers/``, once:
a binary already there is reused. Versions are pinned by the go.mod (and
go.sum) beside each build."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench._common import REPO

__all__ = ["PEERS_DIR", "TOOLS", "Built", "build", "pinned_version"]

PEERS_DIR = Path(__file__).resolve().parent
TOOLS = REPO / ".tools" / "peers"


@dataclass(frozen=True, slots=True)
class Built:
    """A peer's binary, or why there is none (``error``)."""

    name: str
    module: str
    version: str
    binary: Path | None
    error: str = ""

    @property
    def note(self) -> str:
        return _NOTES.get(self.name, "")


# name: (directory of its go.mod, module whose version is reported, what `go build` builds)
_BUILDS = {
    "opa-envoy": ("opa", "github.com/open-policy-agent/opa", "."),
    "cerbos": ("cerbos", "github.com/cerbos/cerbos", "github.com/cerbos/cerbos/cmd/cerbos"),
}
_NOTES = {
    "opa-envoy": "OPA's Go SDK behind Envoy's ext_authz gRPC API (bench/peers/opa/main.go), "
    "as OPA's Envoy plugin serves it: the module proxy refuses "
    "github.com/open-policy-agent/opa-envoy-plugin itself (403, 'This module version is "
    "not available', for its version list and each release tried)",
    "cerbos": "v0.56.0 and v0.57.0 need Go 1.27; this is the newest release Go 1.26 builds",
}
# Cerbos replaces protovalidate with its fork, which the checksum database
# does not list; go.sum holds its hash (the same as Cerbos's own go.sum).
_ENV = {
    "GONOSUMDB": "github.com/cerbos/protovalidate-go",
    "GOFLAGS": "-mod=readonly -buildvcs=false",
}


def pinned_version(go_mod: str, module: str) -> str:
    """The version of ``module`` that the text of a go.mod requires."""
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if found is None:
        raise ValueError(f"go.mod requires no {module}")
    return found.group(1)


def build(name: str) -> Built:
    """Builds peer ``name`` unless its binary exists; never raises for a
    failed build (the caller reports it and runs the other peers)."""
    directory, module, target = _BUILDS[name]
    source = PEERS_DIR / directory
    version = pinned_version((source / "go.mod").read_text(encoding="utf-8"), module)
    binary = TOOLS / name
    if binary.exists():
        return Built(name, module, version, binary)
    TOOLS.mkdir(parents=True, exist_ok=True)
    command = ["go", "build", "-o", str(binary), target]
    print(f"building {name} ({module} {version}): {' '.join(command)} in {source}", flush=True)
    try:
        subprocess.run(
            command,
            cwd=source,
            env={**os.environ, **_ENV},
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    except FileNotFoundError:
        return Built(name, module, version, None, "no `go` on PATH")
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or exc.stdout or "").strip().splitlines()
        return Built(name, module, version, None, " / ".join(lines[-3:]) or str(exc))
    except subprocess.TimeoutExpired:
        return Built(name, module, version, None, "go build ran for over 30 minutes")
    return Built(name, module, version, binary)
