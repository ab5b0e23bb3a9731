"""A CEL worker process: evaluates the expressions the sidecar sends it, one
at a time, until its standard input closes (see ``_cel_pool``).

Run as a script (``python -P .../_cel_worker.py``) so that it imports only
the engine's CEL adapter, not the server. Each request is a length-prefixed
pickle of ``(source, variables)``; each answer one of the result (True,
False or the error message). One byte, :data:`READY`, says the worker has
loaded the runtime. Both ends are the sidecar's own code."""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import BinaryIO

_HEADER = struct.Struct(">I")
_CACHE_LIMIT = 256  # compiled expressions kept
READY = b"\x01"
_NICENESS = 10


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    from pdp.engine._cel import CelCompileError, CelProgram, make_activation

    programs: dict[str, CelProgram] = {}
    answers.write(READY)
    answers.flush()
    while True:
        header = _read_exactly(requests, _HEADER.size)
        if header is None:
            return
        body = _read_exactly(requests, _HEADER.unpack(header)[0])
        if body is None:
            return
        source, variables = pickle.loads(body)
        program = programs.get(source)
        result: bool | str
        try:
            if program is None:
                if len(programs) >= _CACHE_LIMIT:
                    programs.clear()
                program = programs[source] = CelProgram(source)
            result = program.evaluate(make_activation(variables))
        except CelCompileError as exc:
            result = f"invalid CEL: {exc}"
        out = pickle.dumps(result)
        answers.write(_HEADER.pack(len(out)) + out)
        answers.flush()


if __name__ == "__main__":
    # Below the sidecar: on a busy machine its event loop gets the CPU first.
    os.nice(_NICENESS)
    serve(sys.stdin.buffer, sys.stdout.buffer)
