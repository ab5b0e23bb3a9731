"""``pdp serve --state``: a SQLite path or a Redis URL, never a silent
fallback from one to the other. A malformed URL, a password in it, options
that do not go together: exit 2 naming the option. A Redis that refuses
the password: exit 1 saying so. Durations read as 30d, 12h, 15m, 45s."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pdp.cli import main
from pdp.cli._args import duration
from tests._process import run_python
from tests._redis import RedisServer, redis_or_skip
from tests.conftest import EXAMPLE_SNAPSHOT


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = run_python(
        "-m", "pdp", "serve", "--snapshot", str(EXAMPLE_SNAPSHOT), "--listen", "127.0.0.1:0",
        *args, env=env, timeout=60,
    )  # fmt: skip
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "redis:/127.0.0.1:6379/0"], "argument --state: malformed URL"),
        (["--state", "redis://:secret@127.0.0.1/0"], "a password in the URL is refused"),
        (["--state", "redis://127.0.0.1:70000/0"], "the port is not a number"),
        (["--state", "redis://127.0.0.1/zero"], "the database 'zero' is not a number"),
        (["--state", "postgresql://db/pdp"], "unsupported scheme 'postgresql'"),
        (["--state", ""], "argument --state: must not be empty"),
        (["--workers", "2"], "--workers 2 needs --state redis://"),
        (["--state-ca-file", "ca.pem"], "--state-ca-file applies only with a redis://"),
        (
            ["--state", "redis://127.0.0.1/0", "--state-ca-file", "ca.pem"],
            "--state-ca-file applies only with a rediss://",
        ),
        (
            ["--state", "rediss://127.0.0.1/0", "--state-ca-file", "/no/such/ca.pem"],
            "argument --state-ca-file: cannot read '/no/such/ca.pem': No such file",
        ),
        (
            ["--state", "rediss://127.0.0.1/0", "--state-ca-file", __file__],
            "argument --state-ca-file: cannot read",  # not PEM
        ),
        (
            ["--state", "redis://127.0.0.1/0", "--workers", "2", "--listen", "unix:/tmp/p.sock"],
            "--workers above 1 needs a TCP --listen",
        ),
    ],
)
def test_a_bad_state_option_is_refused_naming_it(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--snapshot", str(EXAMPLE_SNAPSHOT), *args])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert message in stderr
    assert "secret" not in stderr


def test_a_redis_url_is_never_taken_for_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stderr = serve("--state", "redis:/host:6379/0")
    assert code == 2 and "malformed URL" in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_password_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    server: RedisServer = redis_or_skip(tmp_path, password="right-password")
    try:
        password_file = tmp_path / "password"
        password_file.write_text("wrong-password\n")
        code, stderr = serve(
            "--state", server.url, "--state-password-file", str(password_file),
            "--local-state", str(tmp_path / "local.db"),
        )  # fmt: skip
        assert code == 1, stderr
        assert "cannot use --state redis://127.0.0.1" in stderr
        assert "authentication failed" in stderr
        assert "wrong-password" not in stderr

        code, stderr = serve(
            "--state", server.url, "--local-state", str(tmp_path / "local.db"),
            env={"PDP_REDIS_PASSWORD": "also-wrong"},
        )  # fmt: skip
        assert code == 1 and "authentication failed" in stderr
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("15m", 900), ("45s", 45), ("500ms", 0.5), ("7", 7)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1d", "3w", "1.5.2h", "nan", "1e3s"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"duration|greater than 0"):
        duration(text)
