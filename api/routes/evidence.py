from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import StoreDep
from api.evidence_store import LocalEvidenceStore, check_key

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])
MEDIA_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


@router.get(
    "/{key:path}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image"},
               400: {"description": "Malformed key"}, 403: {"description": "Bad or expired signature"},
               404: {"description": "No such object, or evidence is served by S3 in this deployment"}},
)
def read_local_evidence(key: str, store: StoreDep, expires: Annotated[int, Query(description="unix time")],
                        signature: Annotated[str, Query(max_length=128, description="HMAC-SHA256, hex")]) -> Response:
    """Download an evidence image from the local evidence folder. The URL comes signed from
    the order endpoints; S3 deployments hand out S3 presigned URLs instead."""
    if not isinstance(store, LocalEvidenceStore):
        raise HTTPException(404, "evidence is served by S3 presigned URLs in this deployment")
    try:
        check_key(key)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if not store.verify(key, expires, signature):
        raise HTTPException(403, "bad or expired evidence URL signature; fetch the order again for a fresh URL")
    try:
        data = store.get(key)
    except FileNotFoundError:
        raise HTTPException(404, f"evidence object {key} not found") from None
    media = MEDIA_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    # Evidence objects never change (each key is written once), so caching is safe.
    # nosniff: served as the image type the upload check decoded it as, never guessed at
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300",
                                                     "X-Content-Type-Options": "nosniff"})
