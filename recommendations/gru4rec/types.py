"""Small value types shared by the GRU4Rec engine and the baselines (serving interface, data errors)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Recommendation:
    """Top-k answer for one live session.

    ``used`` are the input items the model knew (in session order), ``skipped`` the unknown ones.
    ``strategy`` says what answered: ``"model"``; with no known input item, ``"popular"`` (the
    baselines answer with their own popularity ranking) or ``"none"`` (the GRU4Rec model returns
    nothing and leaves the fallback to its caller).
    """

    item_ids: list[str]
    scores: list[float]
    used: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    strategy: str = "model"


class DataFormatError(ValueError):
    """Input that is not a readable event log; says where (file, 1-based line) when it can."""

    def __init__(self, message: str, path=None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path + (f", line {line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)
