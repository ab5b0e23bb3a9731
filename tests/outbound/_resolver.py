"""A resolver the tests point at their own names: each name answers the
addresses given for it, in turn (the last answer repeats), and every lookup
is counted. A name it does not know does not resolve."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

__all__ = ["TestResolver"]


class TestResolver:
    __test__ = False  # not a pytest test class

    def __init__(self, answers: Mapping[str, Sequence[str] | Sequence[Sequence[str]]]) -> None:
        self._answers: dict[str, list[list[str]]] = {}
        for name, given in answers.items():
            if given and isinstance(given[0], str):
                self._answers[name] = [[str(a) for a in given]]
            else:
                self._answers[name] = [list(each) for each in given]
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        turns = self._answers.get(host)
        if turns is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return turns.pop(0) if len(turns) > 1 else turns[0]
