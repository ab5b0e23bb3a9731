"""One RFC 3339 parser: the snapshot reader, the REST API and the CLI accept
and refuse the same timestamps. The forms are listed once, here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pdp.engine import SnapshotError, compile_snapshot, format_time, parse_document, parse_rfc3339

NOON = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)

ACCEPTED = [
    ("2025-12-31T12:00:00Z", NOON),
    ("2025-12-31t12:00:00z", NOON),
    ("2025-12-31T12:00:00+00:00", NOON),
    ("2025-12-31T12:00:00-00:00", NOON),
    ("2025-12-31T14:30:00+02:30", NOON),
    ("2025-12-31T07:00:00-05:00", NOON),
    ("2025-12-31T12:00:00.5Z", NOON + timedelta(milliseconds=500)),
    ("2025-12-31T12:00:00.123456Z", NOON + timedelta(microseconds=123456)),
    ("2025-12-31T12:00:00.123456789Z", NOON + timedelta(microseconds=123456)),
    ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
]

REFUSED = [
    "",
    "tomorrow",
    "2025-12-31",  # a date alone
    "2025-12-31T12:00:00",  # no time zone
    "2025-12-31 12:00:00Z",  # a space instead of T
    "20251231T120000Z",  # ISO 8601 basic format
    "2025-12-31T12:00Z",  # no seconds
    "2025-12-31T12:00:00+0200",  # offset without a colon
    "2025-12-31T12:00:00+02",
    "2025-12-31T12:00:00.Z",
    "2025-12-31T12:00:00.1234567890Z",  # more than nine fractional digits
    "2025-13-01T12:00:00Z",
    "2025-02-29T12:00:00Z",  # not a leap year
    "2025-12-31T24:00:00Z",
    "2025-12-31T23:59:60Z",  # leap seconds are refused
    "2025-12-31T12:00:00+24:00",
    " 2025-12-31T12:00:00Z",
    "2025-12-31T12:00:00Z ",
    "２０２５-12-31T12:00:00Z",  # full-width digits
]


@pytest.mark.parametrize(("text", "moment"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted(text: str, moment: datetime) -> None:
    assert parse_rfc3339(text) == moment


@pytest.mark.parametrize("text", REFUSED)
def test_refused(text: str) -> None:
    assert parse_rfc3339(text) is None


def test_written_in_utc_and_read_back() -> None:
    moment = datetime(2025, 12, 31, 14, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2025-12-31T12:30:00.250000Z"
    assert parse_rfc3339(format_time(moment)) == moment
    assert format_time(NOON) == "2025-12-31T12:00:00Z"


def snapshot_with_grant(expires_at: str) -> dict[str, Any]:
    return {
        "agents": [{"id": "a"}, {"id": "b", "paused": True, "pausedAt": expires_at}],
        "grants": [
            {
                "sourceAgentId": "a",
                "targetAgentId": "b",
                "allowedActions": ["read"],
                "expiresAt": expires_at,
            }
        ],
    }


@pytest.mark.parametrize(("text", "moment"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_the_snapshot_reader_accepts_the_same(text: str, moment: datetime) -> None:
    snapshot = compile_snapshot(snapshot_with_grant(text))
    assert snapshot.resolve_agent("b").paused_since == moment


@pytest.mark.parametrize("text", REFUSED)
def test_the_snapshot_reader_refuses_the_same(text: str) -> None:
    with pytest.raises(SnapshotError) as err:
        compile_snapshot(snapshot_with_grant(text))
    assert {e.path for e in err.value.errors} == {"agents[1].pausedAt", "grants[0].expiresAt"}


def test_unquoted_yaml_timestamps_are_read_as_written() -> None:
    """YAML's own timestamp forms are looser than RFC 3339; a snapshot file
    reads its text with the same parser, quoted or not."""
    loose = parse_document(b"grants: [{expiresAt: 2025-12-31 12:00:00}]")
    with pytest.raises(SnapshotError, match=r"grants\[0\]"):
        compile_snapshot({"agents": [{"id": "a"}, {"id": "b"}], **loose})
    strict = parse_document(b"agents: [{id: a, paused: true, pausedAt: 2025-12-31T12:00:00Z}]")
    snapshot = compile_snapshot(strict)
    assert snapshot.resolve_agent("a").paused_since == NOON


async def test_the_rest_api_agrees(client: httpx.AsyncClient) -> None:
    for name in ("a", "b"):
        (await client.post("/agents", json={"name": name})).raise_for_status()
    for text in [a[0] for a in ACCEPTED] + REFUSED:
        resp = await client.post(
            "/agents/a/grants",
            json={"targetAgentId": "b", "allowedActions": ["read"], "expiresAt": text},
        )
        moment = parse_rfc3339(text)
        if moment is None:
            assert resp.status_code == 422, text
            assert resp.json()["error"]["field"] == "expiresAt"
        else:
            assert resp.status_code == 201, (text, resp.text)
            assert resp.json()["expiresAt"] == format_time(moment)
