"""Large YAML snapshots are read in a worker process and come back as the
same document; errors keep their line; what JSON cannot carry faithfully is
read in this process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pdp.engine import SnapshotError, parse_document
from pdp.engine._yaml_worker import WORKER_SOURCE
from pdp.snapshot._reading import OFFLOAD_BYTES, read_document
from tests.conftest import example_document


def _large_yaml(extra: str = "") -> bytes:
    document = example_document()
    document["agents"] += [{"id": f"id-{i}", "name": f"agent-{i}"} for i in range(8000)]
    text = yaml.safe_dump(document, sort_keys=False) + extra
    data = text.encode()
    assert len(data) > OFFLOAD_BYTES
    return data


async def test_a_large_yaml_document_reads_the_same_through_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = _large_yaml('note: 2026-12-02T10:00:00Z\nunicode: "caf\\u00e9 \\U0001F600"\n')
    got, _ = await read_document(data)
    assert "reading the snapshot in this process" not in caplog.text  # the worker ran
    assert got == parse_document(data)
    assert got["note"] == "2026-12-02T10:00:00Z"  # timestamps stay strings


async def test_an_invalid_large_yaml_document_names_its_line() -> None:
    data = _large_yaml("broken: [unclosed\n")
    with pytest.raises(SnapshotError) as refused:
        await read_document(data)
    with pytest.raises(SnapshotError) as direct:
        parse_document(data)
    assert [str(e) for e in refused.value.errors] == [str(e) for e in direct.value.errors]
    assert "line" in str(refused.value.errors[0])


async def test_what_json_cannot_carry_is_read_here() -> None:
    data = _large_yaml("numbers: {1: one, 2: two}\n")
    got, _ = await read_document(data)
    assert got["numbers"] == {1: "one", 2: "two"}  # int keys, as parse_document gives


def test_the_worker_loads_only_the_yaml_reading_of_the_engine() -> None:
    # The whole engine costs the worker ~0.25 s of CPU at every reload.
    data = _large_yaml()
    report = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write("
        "','.join(sorted(m for m in sys.modules if m.startswith('pdp.')))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", report + WORKER_SOURCE],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == parse_document(data)
    assert result.stderr.decode().split(",") == [
        "pdp.engine",
        "pdp.engine._document",
        "pdp.engine._errors",
        "pdp.engine._json_items",
        "pdp.engine._yaml_worker",
    ]
