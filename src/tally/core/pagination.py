"""Paginated, ordered lists: `page` from 1, `limit` 1 to 100 (default 20)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PageRequest:
    return PageRequest(page=page, limit=limit)


Paging = Annotated[PageRequest, Depends(_page_request)]


class Pagination(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    total: int
    page: int
    limit: int
    total_pages: int = Field(serialization_alias="totalPages")
    has_next_page: bool = Field(serialization_alias="hasNextPage")
    has_previous_page: bool = Field(serialization_alias="hasPreviousPage")


class Page(BaseModel, Generic[T]):
    """The `data` of a list answer: one page of items and where it lies."""

    items: list[T]
    pagination: Pagination


def page_of(
    items: Sequence[Any], total: int, request: PageRequest, render: Callable[[Any], T]
) -> Page[T]:
    """The `data` of a list answer, each item rendered (to its response model)."""
    total_pages = (total + request.limit - 1) // request.limit
    pagination = Pagination(
        total=total,
        page=request.page,
        limit=request.limit,
        total_pages=total_pages,
        has_next_page=request.page < total_pages,
        has_previous_page=request.page > 1,
    )
    return Page[T].model_construct(items=[render(item) for item in items], pagination=pagination)
