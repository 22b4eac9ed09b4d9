"""The OpenAPI document as the server behaves, and /docs served offline.

FastAPI describes what it sees; what it cannot see is added here, from the
routes themselves so that nothing is listed twice:

- the bearer scheme, on every operation whose dependencies authenticate;
- request bodies, which routes take through dependencies (tally.bodies) so
  that authentication comes first: each carries its model as `body_model`;
- FastAPI's own 422 "HTTPValidationError" answer, which tally never sends
  (its validation errors are 400 in the envelope), is removed.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from tally.deps import _authenticate

SWAGGER_DIR = Path(__file__).parent / "web" / "static" / "swagger-ui"
SWAGGER_URL = "/docs/static"
BEARER = "bearerAuth"
COMPONENTS = "#/components/schemas/"


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _body_model(dependant: Dependant) -> type[BaseModel] | None:
    for call in _calls(dependant):
        model = getattr(call, "body_model", None)
        if model is not None:
            return model  # type: ignore[no-any-return]
    return None


def _add_body(operation: dict[str, Any], model: type[BaseModel], schemas: dict[str, Any]) -> None:
    schema = model.model_json_schema(ref_template=COMPONENTS + "{model}", mode="validation")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    ref = {"$ref": COMPONENTS + model.__name__}
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref}},
    }


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every APIRoute as served (prefix and router-level settings applied)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document served at /openapi.json (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, routes=app.routes, description=app.description
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key, `sk_live_...` or `sk_test_...`",
        }
    }
    for route in _api_routes(app):
        authenticated = any(call is _authenticate for call in _calls(route.dependant))
        model = _body_model(route.dependant)
        declares_422 = 422 in route.responses or "422" in route.responses
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            if not declares_422:
                operation["responses"].pop("422", None)
            if authenticated:
                operation["security"] = [{BEARER: []}]
            if model is not None:
                _add_body(operation, model, schemas)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = schema
    return schema


def install_docs(app: FastAPI) -> None:
    """/docs with the Swagger UI shipped in the package; no /redoc, no CDN."""
    app.mount(SWAGGER_URL, StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_URL}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_URL}/favicon-32x32.png",
            # No badge asking validator.swagger.io about the document.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
