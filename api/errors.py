"""Domain errors → HTTP answers, so routes stay thin and every failure has a clear message."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.db import DatabaseBusy
from api.evidence_store import StoreUnavailable
from api.images import BadImage, TooLarge
from api.photos import RedactionUnavailable
from api.problems import Problem

log = logging.getLogger("streetwatch.api")
RETRY_AFTER = {"Retry-After": "5"}


async def _bad_image(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadImage)
    # Same shape as FastAPI's own validation errors, so clients parse one format.
    detail = [{"type": "image_invalid", "loc": ["body", exc.part], "msg": exc.reason}]
    return JSONResponse({"detail": detail}, status_code=422)


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=413)


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The reason goes to the log only: it names the store's host or folder, and citizens'
    # reports reach this answer without a key.
    log.warning("evidence store unavailable: %s", exc)
    return JSONResponse({"detail": "evidence store unavailable, nothing was stored; retry later"},
                        status_code=503, headers=RETRY_AFTER)


def _db_reason(exc: Exception) -> str:
    """The driver's own message (SQLAlchemy wraps it in `orig`), first line."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Lock timeouts and lost connections are passing troubles: 503 tells the edge to retry.
    reason = _db_reason(exc)
    log.warning("database unavailable: %s", reason)  # (it names the host: the log only, as above)
    return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503, headers=RETRY_AFTER)


async def _database_busy(_: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection (or the SQLite writer slot) stayed taken for the whole wait: a
    # burst, not a fault. Nothing of this request was stored.
    log.warning("database busy: %s", exc)
    return JSONResponse({"detail": "database busy, nothing was stored; retry later"}, status_code=503,
                        headers=RETRY_AFTER)


async def _redaction_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("citizen photos refused: %s", exc)
    return JSONResponse({"detail": "photos cannot be processed right now, nothing was stored; retry later"},
                        status_code=503, headers=RETRY_AFTER)


# A refused value is echoed so the client sees what was wrong, not to hand its upload back: a
# 30 MB comment came back whole in its 422.
ECHO_CHARS = 200
ECHO_ITEMS = 20


def _echo(value: Any, depth: int = 0) -> Any:
    """A short, plain-data copy of a refused input: long strings cut, long lists and objects
    trimmed, and anything that is not JSON (an uploaded file object) only named."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else f"{value[:ECHO_CHARS]}… ({len(value)} characters)"
    if isinstance(value, (bytes, bytearray)):
        return f"({len(value)} bytes)"
    if depth >= 3:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:ECHO_CHARS]: _echo(v, depth + 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            out["…"] = f"{len(items) - ECHO_ITEMS} more"
        return out
    if isinstance(value, (list, tuple)):
        head = [_echo(v, depth + 1) for v in list(value)[:ECHO_ITEMS]]
        return head + ([f"… {len(value) - ECHO_ITEMS} more"] if len(value) > ECHO_ITEMS else [])
    return f"({type(value).__name__.lstrip('_')})"


def _short_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        error = dict(error)
        if "input" in error:
            error["input"] = _echo(error["input"])
        if "ctx" in error:  # e.g. the exception a validator raised: its text, not the object
            error["ctx"] = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
                            for k, v in dict(error["ctx"]).items()}
        out.append(error)
    return out


def _writable(value: Any) -> Any:
    """What strict UTF-8 JSON can write of a refused input: NaN and Infinity as the strings
    "nan" and "inf", a lone surrogate (JSON's "\\ud800", which Python's json parses into a str
    that has no UTF-8) as its escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_writable(k): _writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v) for v in value]
    return value


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler, except that the refused `input` it echoes cannot turn the 422
    # into a 500 while the answer is written (see _writable).
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _writable(jsonable_encoder(_short_errors(exc.errors())))}, status_code=422)


async def _data_refused(_: Request, exc: Exception) -> JSONResponse:
    # A value the schema let through but the column cannot hold: the transaction is rolled
    # back (nothing stored), and it is the client's value, not a server fault.
    reason = _db_reason(exc)
    log.warning("database refused a value: %s", reason)
    return JSONResponse({"detail": f"a value the database cannot store: {reason}"}, status_code=422)


async def _conflicting_write(_: Request, exc: Exception) -> JSONResponse:
    # A unique or foreign key the services did not foresee, most likely a concurrent request
    # that wrote first: rolled back, nothing stored; the client may look again and retry.
    reason = _db_reason(exc)
    log.warning("database refused a write: %s", reason)
    return JSONResponse({"detail": f"conflicts with what is stored (a concurrent change?): {reason}"}, status_code=409)


async def _problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return JSONResponse(exc.body(), status_code=exc.status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(BadImage, _bad_image)
    app.add_exception_handler(TooLarge, _too_large)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_busy)
    app.add_exception_handler(DatabaseBusy, _database_busy)
    app.add_exception_handler(RedactionUnavailable, _redaction_unavailable)
    app.add_exception_handler(DataError, _data_refused)
    app.add_exception_handler(IntegrityError, _conflicting_write)
    app.add_exception_handler(RequestValidationError, _invalid_request)
