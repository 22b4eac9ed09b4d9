"""Free text from callers: one rule for every field that reaches a text column.

PostgreSQL refuses the NUL character (U+0000) in text, so a name holding one
made an INSERT fail with a 500 there while SQLite stored it. tally refuses it
at the edge, on both databases, with the field named: one behaviour whatever
the database, and nothing half-written.
"""

from typing import Annotated, Any

from pydantic import AfterValidator

NUL = "\x00"
HAS_NUL = "must not contain the NUL character (\\u0000)"


def check_text(value: str) -> str:
    """The text unchanged, or ValueError if PostgreSQL could not store it."""
    if NUL in value:
        raise ValueError(HAS_NUL)
    return value


def has_nul(value: Any) -> bool:
    return isinstance(value, str) and NUL in value


# Annotate any free-text input field with this (or use Text).
NoNul = AfterValidator(check_text)
Text = Annotated[str, NoNul]
