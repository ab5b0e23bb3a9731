"""`pdp check` validates offline; `pdp serve` rejects bad arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.cli import build_parser
from tests._process import run_pdp as pdp
from tests._process import run_python
from tests.conftest import EXAMPLE_SNAPSHOT


def test_check_accepts_the_example() -> None:
    result = pdp("check", str(EXAMPLE_SNAPSHOT))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_names_every_bad_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """
policies:
  - name: a
    policyType: telepathy
    enforcementMode: block
    ruleDefinition: {}
  - name: b
    policyType: cost_limit
    enforcementMode: sometimes
    ruleDefinition: {daily_budget: -3}
"""
    )
    result = pdp("check", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert any("policies[0].policyType" in line for line in lines)
    assert any("policies[1].enforcementMode" in line for line in lines)
    assert any("policies[1].ruleDefinition.daily_budget" in line for line in lines)


def test_check_reports_yaml_syntax_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"policies: [\n")
    result = pdp("check", str(bad))
    assert result.returncode == 1 and "invalid YAML" in result.stderr
    bad.write_bytes(b"policies: []\nname: \xff\xfe\n")
    result = pdp("check", str(bad))
    assert result.returncode == 1 and "UTF-8" in result.stderr
    result = pdp("check", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["serve", "--snapshot", "x", "--listen", "nohost"],
        ["serve", "--snapshot", "x", "--listen", "h:99999"],
        ["serve", "--snapshot", "x", "--max-input-bytes", "0"],
        ["serve", "--snapshot", "x", "--cel-workers", "0"],
        ["serve", "--snapshot", "x", "--cel-time-limit", "0"],
        ["serve", "--snapshot", "x", "--poll-interval", "nan"],
    ],
)
def test_serve_rejects_bad_arguments(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2


SERVE = ["serve", "--snapshot", "p.yaml"]


@pytest.mark.parametrize("command", [SERVE, ["control"]], ids=["serve", "control"])
@pytest.mark.parametrize(
    ("listen", "reason"),
    [("nohost", "no port"), ("h:99999", "out of range"), ("::1:80", "in brackets")],
)
def test_both_servers_check_listen_with_the_one_parser(
    command: list[str], listen: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--listen", listen])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "--listen" in error and reason in error


def test_unix_sockets_are_for_the_sidecar_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args([*SERVE, "--listen", "[::1]:0"]).listen == "[::1]:0"
    assert build_parser().parse_args(["control", "--listen", "[::1]:0"]).listen == "[::1]:0"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["control", "--listen", "unix:/tmp/pdp.sock"])
    assert "Unix sockets are not supported" in capsys.readouterr().err


def test_serve_refuses_a_snapshot_url_it_cannot_follow(tmp_path: Path) -> None:
    result = pdp("serve", "--snapshot", "ftp://example.com/p.yaml", "--state", str(tmp_path / "s"))
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "only http:// and https://" in result.stderr


def test_serve_accepts_the_documented_arguments() -> None:
    args = build_parser().parse_args(
        ["serve", "--snapshot", "p.yaml", "--listen", "unix:/tmp/pdp.sock", "--state", "s.db"]
    )
    assert (args.snapshot, args.listen, args.state) == ("p.yaml", "unix:/tmp/pdp.sock", "s.db")
    assert build_parser().parse_args(["serve", "--snapshot", "p"]).listen == "127.0.0.1:50051"


def test_uvloop_is_the_default_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop

    from pdp.cli._args import event_loop_factory

    monkeypatch.delenv("PDP_EVENT_LOOP", raising=False)
    factory = event_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setenv("PDP_EVENT_LOOP", "asyncio")
    assert event_loop_factory() is None  # asyncio.Runner's default: the standard loop


def test_an_unknown_event_loop_is_refused_by_name(tmp_path: Path) -> None:
    args = ["--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0"]
    args += ["--state", str(tmp_path / "s.db")]
    result = run_python("-m", "pdp", "serve", *args, env={"PDP_EVENT_LOOP": "tokio"})
    assert result.returncode != 0
    assert "PDP_EVENT_LOOP" in result.stderr and "tokio" in result.stderr


_LOADED_LAYERS = """
import sys
from pdp.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(",".join(sorted({m.split(".")[1] for m in sys.modules if m.startswith("pdp.")})))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["ctl", "--help"],
        ["control", "--help"],
        # Refused at the first request (nothing listens on port 1): a real
        # `pdp ctl` start all the same.
        ["ctl", "--url", "http://127.0.0.1:1", "agents", "list"],
    ],
)
def test_the_cli_starts_without_importing_the_engine(args: list[str], tmp_path: Path) -> None:
    # The engine takes ~0.3 s to import; `pdp ctl` only speaks HTTP.
    key = tmp_path / "key"
    key.write_text("pdp_k_unused\n")
    result = run_python("-c", _LOADED_LAYERS, *args, env={"PDP_API_KEY_FILE": str(key)})
    layers = result.stdout.strip().splitlines()[-1].split(",")
    assert layers == ["cli"], result.stderr
