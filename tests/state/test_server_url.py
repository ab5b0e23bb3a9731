"""Database locations, as ``--state`` (SQLite or Redis) and the control
plane's ``--db`` (SQLite or PostgreSQL) read them: the same rules and
words for both (a path or a URL, never a guess; no password in a URL; the
password from a file, else the environment), each error naming the option
and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.cli import main
from pdp.control import PostgresLocation, parse_db_location
from pdp.state import (
    RedisLocation,
    SqliteLocation,
    parse_state_location,
    read_password,
)
from tests.conftest import EXAMPLE_SNAPSHOT


def test_a_path_is_the_same_sqlite_location_for_both() -> None:
    assert parse_state_location("./odd:name.db") == SqliteLocation("./odd:name.db")
    assert parse_db_location("./odd:name.db") == SqliteLocation("./odd:name.db")
    assert parse_state_location("rediss://u%40x@[::1]:7000/3") == RedisLocation(
        "::1", 7000, 3, True, "u@x"
    )
    assert parse_db_location("postgres://u%40x@[::1]/db") == PostgresLocation(
        "::1", 5432, "db", "u@x"
    )


@pytest.mark.parametrize(
    ("state", "db", "says"),
    [
        ("", " ", "must not be empty"),
        ("mysql://h/0", "mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("redis:/h/0", "postgresql:/u@h/db", "malformed URL: expected"),
        ("redis://:pw@h/0", "postgresql://u:pw@h/db", "a password in the URL is refused"),
        ("redis://h/0#x", "postgresql://u@h/db#x", "fragment is read"),
        ("redis:///0", "postgresql://u@/db", "no host"),
        ("redis://h:0/0", "postgresql://u@h:0/db", "the port is not a number 1-65535"),
        ("redis://h:x/0", "postgresql://u@h:x/db", "the port is not a number 1-65535"),
    ],
)
def test_both_refuse_a_malformed_location_in_the_same_words(state: str, db: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as for_state:
        parse_state_location(state)
    with pytest.raises(ValueError, match=says) as for_db:
        parse_db_location(db)
    assert "pw" not in str(for_state.value) + str(for_db.value)


def test_each_names_where_its_password_goes_instead() -> None:
    with pytest.raises(ValueError, match="set PDP_REDIS_PASSWORD or use --state-password-file"):
        parse_state_location("redis://:pw@h/0")
    with pytest.raises(ValueError, match="set PDP_DB_PASSWORD or use --db-password-file"):
        parse_db_location("postgresql://u:pw@h/db")


def test_only_a_postgresql_url_has_a_query() -> None:
    with pytest.raises(ValueError, match="no query or fragment is read"):
        parse_state_location("redis://h/0?ssl=1")
    assert parse_db_location("postgresql://u@h/db?sslmode=disable") == PostgresLocation(
        "h", 5432, "db", "u", "disable"
    )


def test_the_password_comes_from_the_file_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PDP_TEST_PASSWORD", raising=False)
    assert read_password("PDP_TEST_PASSWORD", None, "--x-password-file") is None
    monkeypatch.setenv("PDP_TEST_PASSWORD", "from-env")
    assert read_password("PDP_TEST_PASSWORD", None, "--x-password-file") == "from-env"
    file = tmp_path / "password"
    file.write_text("from-file\r\n")
    assert read_password("PDP_TEST_PASSWORD", str(file), "--x-password-file") == "from-file"


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read it"), (b"\n", "the file is empty"), (b"\xff\xfe", "cannot read it")],
)
def test_an_unusable_password_file_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, says: str
) -> None:
    file = tmp_path / "password"
    if content is not None:
        file.write_bytes(content)
    with pytest.raises(ValueError, match=f"argument --x-password-file: {says}"):
        read_password("PDP_TEST_PASSWORD", str(file), "--x-password-file")
    serve = ["serve", "--snapshot", str(EXAMPLE_SNAPSHOT), "--state", "redis://127.0.0.1:1/0"]
    assert main([*serve, "--state-password-file", str(file)]) == 2
    control = ["control", "--db", "postgresql://u@127.0.0.1:1/db", "--listen", "127.0.0.1:0"]
    assert main([*control, "--db-password-file", str(file)]) == 2
    stderr = capsys.readouterr().err
    assert f"argument --state-password-file: {says}" in stderr
    assert f"argument --db-password-file: {says}" in stderr
