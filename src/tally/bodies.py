"""Request bodies, read only after the caller's key is checked.

FastAPI reads and parses declared body parameters before it runs any
dependency, so an unauthenticated caller could make the server read and
parse a 1 MiB body before its 401. tally's routes therefore declare no body
parameter: they take their body through `JsonBody(Model)` (or `raw_json`),
dependencies that themselves depend on authentication. FastAPI resolves that
dependency first (and caches it for the route's scope check), so a request
without a valid key is refused before a byte of its body is read.

The OpenAPI document learns each route's body model from the `body_model`
attribute these dependencies carry (see tally.app).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from tally.auth.principal import Principal
from tally.core.http import read_json
from tally.deps import _authenticate

M = TypeVar("M", bound=BaseModel)


async def raw_json(
    _principal: Annotated[Principal, Depends(_authenticate)], request: Request
) -> Any:
    """The parsed JSON body (exact decimals), once the key is known to be valid."""
    return await read_json(request)


def json_model(model: type[M]) -> Callable[..., Awaitable[M]]:
    """A dependency: the body validated by `model`, after authentication."""

    async def dependency(raw: Annotated[Any, Depends(raw_json)]) -> M:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from exc

    dependency.body_model = model  # type: ignore[attr-defined]
    return dependency


def JsonBody(model: type[M]) -> Any:
    """`body: Annotated[Model, JsonBody(Model)]` in a route's signature."""
    return Depends(json_model(model))
