"""The FastAPI application: the page, the API, and the offline API docs.

Routes (see docs/serve.md): ``GET /`` the page; ``GET /api/health``; ``GET /api/models``;
``POST /api/analyze`` (multipart ``file``, optional ``threshold``, ``aggregate``, ``hop``);
``GET /openapi.json`` and ``GET /docs``, a page that renders it without any network (FastAPI's
own /docs loads Swagger UI from a CDN, so it is switched off). Every error is JSON
``{"error": reason}``.
"""

from __future__ import annotations

import asyncio
import math
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepfake_audio import __version__
from deepfake_audio.scoring.options import AGGREGATIONS
from deepfake_audio.serve.service import Busy, Overrides, Service, UnreadableUpload
from deepfake_audio.serve.upload import (
    FILE_FIELD,
    BadUpload,
    TooLarge,
    display_name,
    receive_upload,
)

#: Seconds a client is told to wait after a 503.
RETRY_AFTER_SECONDS = 5

STATIC = {  # file -> media type; read once from the package
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "docs.html": "text/html; charset=utf-8",
}

ANALYZE_BODY = {  # /api/analyze reads its body itself: describe it for /openapi.json
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary"},
                        "threshold": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                            "description": "call the file fake when P(fake) >= this "
                            "(default: each model's own rule)",
                        },
                        "aggregate": {"type": "string", "enum": list(AGGREGATIONS)},
                        "hop": {"type": "number", "exclusiveMinimum": 0},
                    },
                }
            }
        },
    },
    "responses": {
        "200": {"description": "the document of `predict --json` for this one file"},
        "413": {"description": "over --max-upload-mb; reading stopped at the limit"},
        "422": {"description": "not decodable, a missing `file` or a bad field"},
        "503": {"description": "the queue is full; see Retry-After"},
    },
}


def error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def _overrides(fields: dict[str, str]) -> Overrides:
    """The request's scoring fields, checked (ValueError names the bad one)."""

    def number(name: str) -> float | None:
        text = fields.get(name, "")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {text!r}")
        return value

    aggregate = fields.get("aggregate") or None
    if aggregate is not None and aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
    return Overrides(number("threshold"), aggregate, number("hop"))


def create_app(service: Service, *, max_upload_bytes: int = 50 * 2**20) -> FastAPI:
    """The application serving ``service``'s models; uploads over ``max_upload_bytes`` get 413."""
    app = FastAPI(
        title="deepfake-audio",
        version=__version__,
        description="Upload a clip, see where it sounds fake. Runs offline.",
        docs_url=None,  # Swagger UI comes from a CDN: /docs below renders offline instead
        redoc_url=None,
    )
    app.state.service = service
    pages = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in STATIC}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "; ".join(str(e.get("msg", e)) for e in exc.errors()) or "invalid")

    def static(name: str) -> Response:
        return Response(pages[name], media_type=STATIC[name])

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in STATIC:
            return error(404, f"no such file: {display_name(name)}")
        return static(name)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(pages["docs.html"])

    @app.get("/api/health", summary="200 when the service is up")
    async def health() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "models": len(service.lineup.models),
            "pending": service.pending,
            "capacity": service.capacity,
        }

    @app.get("/api/models", summary="the models: windows, thresholds, rules and calibration")
    async def models() -> dict:
        return {
            "deciding_model": service.lineup.deciding_model(),
            "aggregate": service.options.aggregation,
            "hop_seconds": service.options.hop_seconds,
            "prior_fake": service.options.prior_fake,
            "max_upload_bytes": max_upload_bytes,
            "models": service.describe(),
        }

    @app.post(
        "/api/analyze",
        summary="the verdict on one clip, with per-model and per-window P(fake)",
        openapi_extra=ANALYZE_BODY,
    )
    async def analyze(request: Request) -> Response:
        try:
            upload = await receive_upload(
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.stream(),
                max_upload_bytes,
            )
        except TooLarge as exc:
            # Close the connection: the rest of the body is never read.
            return error(413, str(exc), {"Connection": "close"})
        except BadUpload as exc:
            return error(422, str(exc))
        submitted = False
        try:
            options = service.options_for(_overrides(upload.fields))
            path, name = str(upload.path), upload.filename

            def job() -> dict:
                try:
                    return service.analyze(path, name, options)
                finally:
                    upload.remove()  # the only copy of the upload, gone once scored

            future = service.submit(job)
            submitted = True
            # A request cancelled before its job started: the job never runs to remove it.
            future.add_done_callback(lambda done: done.cancelled() and upload.remove())
            document = await asyncio.wrap_future(future)
        except Busy as exc:
            return error(503, str(exc), {"Retry-After": str(RETRY_AFTER_SECONDS)})
        except UnreadableUpload as exc:
            return error(422, f"could not decode {upload.filename}: {exc}")
        except ValueError as exc:
            return error(422, str(exc))
        except MemoryError:
            return error(503, "out of memory; try a shorter clip", {"Retry-After": "30"})
        finally:
            if not submitted:
                upload.remove()
        return JSONResponse(document)

    return app
