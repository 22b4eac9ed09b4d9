"""The NUL rule for free text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tally.core.text import HAS_NUL, Text, check_text


class Named(BaseModel):
    name: Text


@given(st.text())
def test_text_passes_unless_it_holds_a_nul(value: str) -> None:
    if "\x00" in value:
        with pytest.raises(ValueError, match="NUL"):
            check_text(value)
    else:
        assert check_text(value) == value
        assert Named(name=value).name == value


def test_the_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Named(name="a\x00b")
    (error,) = caught.value.errors()
    assert error["loc"] == ("name",)
    assert HAS_NUL in error["msg"]
