"""Domain errors that services raise and `api/errors.py` turns into HTTP answers, so services
stay free of HTTP and routes stay thin."""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    status = 400

    def body(self) -> dict[str, Any]:
        return {"detail": str(self)}


class NotFound(Problem):
    status = 404


class Forbidden(Problem):
    status = 403


class Conflict(Problem):
    status = 409


class InvalidField(Problem):
    """422 in FastAPI's own validation-error shape, naming the field."""

    status = 422

    def __init__(self, loc: tuple[str, ...], msg: str):
        super().__init__(f"{'.'.join(loc)}: {msg}")
        self.loc, self.msg = loc, msg

    def body(self) -> dict[str, Any]:
        return {"detail": [{"type": "value_error", "loc": list(self.loc), "msg": self.msg}]}
