"""Form fields that are not UTF-8 are refused (422 naming the field), not stored as garble.

Starlette decodes a multipart field that is not valid in the request's charset (UTF-8 unless
stated) as Latin-1, so a report's text in GBK ("垃圾") was stored as 'À¬»ø' on both backends,
and nothing downstream can tell. Decoded here with `surrogateescape` instead, the bytes that
are not UTF-8 become lone surrogates, which schemas.Text refuses with the field's name.

Starlette has no hook for this: the patch replaces its module-level decoder (starlette is
pinned in scripts/constraints.txt; tests/api/test_request_limits.py notices if it moves).
"""

from __future__ import annotations

import starlette.formparsers as formparsers


def _decode_keeping_bad_bytes(src: bytes | bytearray, codec: str) -> str:
    try:
        return src.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return bytes(src).decode("utf-8", "surrogateescape")


def install() -> None:
    formparsers._user_safe_decode = _decode_keeping_bad_bytes
