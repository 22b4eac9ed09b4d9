"""Recomputing the aggregates from the raw events: `tally verify [--repair]`."""

from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Mismatch:
    """One aggregate row whose stored value differs from the recomputed one."""

    table: str
    key: str
    stored: str
    expected: str


def find_mismatches(session: Session) -> list[Mismatch]:
    """Every bucket and interview row that differs from a recomputation."""
    raise NotImplementedError


def repair(session: Session) -> int:
    """Rewrite the aggregates from the raw events; the number of rows changed."""
    raise NotImplementedError
