# The C scorer of _injection_model (source: _native/injection_scorer.c).
class InjectionScorer:
    def __init__(
        self,
        keys: tuple[str, ...],
        weights: tuple[int, ...],
        bias: int,
        window: int,
        overlap: int,
    ) -> None: ...
    @property
    def size(self) -> int: ...
    def score(self, normalized_text: str, /) -> int: ...
