"""Zones and masks edited centrally: an admin sets a camera's, its box pulls them.

A box's configuration is the central zones of the cameras it holds; its ETag is a hash of that
content, so a box polling with If-None-Match costs one read and a 304 until something changes,
and two API processes give the same ETag for the same content. RTSP URLs are not part of it:
they stay in each box's own YAML, which the API never sees.
"""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, col, select

from api.auth import Principal
from api.box_binding import check_box
from api.camera_rows import camera_id_by_name, save_camera_row
from api.db import begin_write
from api.fleet_models import CameraStatus, CameraZones
from api.model_registry import assigned_model
from api.models import Camera, as_utc, utcnow
from api.problems import InvalidField, NotFound
from api.zone_schemas import BoxConfig, CameraZonesIn, CameraZonesPublic


def _public(name: str, row: CameraZones) -> CameraZonesPublic:
    return CameraZonesPublic(camera=name, frame_width=row.frame_width, frame_height=row.frame_height, zones=row.zones,
                             masks=row.masks, updated_at=as_utc(row.updated_at), updated_by=row.updated_by)


def put_zones(session: Session, who: Principal, name: str, body: CameraZonesIn) -> CameraZonesPublic:
    problem = body.first_problem()
    if problem is not None:
        raise InvalidField(("body", *problem[0]), problem[1])
    data = body.model_dump(mode="json")

    def fill(row: CameraZones) -> None:
        row.frame_width, row.frame_height = body.frame_width, body.frame_height
        row.zones, row.masks = data["zones"], data["masks"]
        row.updated_at, row.updated_by = utcnow(), who.name[:100]

    row = save_camera_row(session, CameraZones, lambda: camera_id_by_name(session, name),
                          lambda camera_id: CameraZones(camera_id=camera_id, updated_by=who.name,
                                                        frame_width=body.frame_width, frame_height=body.frame_height),
                          fill)
    return _public(name, row)


def get_zones(session: Session, name: str) -> CameraZonesPublic:
    row = session.get(CameraZones, camera_id_by_name(session, name))
    if row is None:
        raise NotFound(f"camera {name!r} has no central zones: its box's YAML decides")
    return _public(name, row)


def delete_zones(session: Session, name: str) -> None:
    begin_write(session)
    row = session.get(CameraZones, camera_id_by_name(session, name))
    if row is None:
        raise NotFound(f"camera {name!r} has no central zones")
    session.delete(row)
    session.commit()


def box_config(session: Session, who: Principal, box_id: str) -> BoxConfig:
    check_box(who, box_id)
    rows = session.exec(select(Camera.name, CameraZones)
                        .join(CameraStatus, col(CameraStatus.camera_id) == col(Camera.id))
                        .join(CameraZones, col(CameraZones.camera_id) == col(Camera.id))
                        .where(CameraStatus.box_id == box_id).order_by(col(Camera.name))).all()
    cameras = {name: {"frame_width": z.frame_width, "frame_height": z.frame_height, "zones": z.zones,
                      "masks": z.masks} for name, z in rows}
    model = assigned_model(session, box_id)
    content = {**cameras, **({"\0model": model.model_dump(mode="json")} if model else {})}  # no camera's name
    etag = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]
    return BoxConfig(box_id=box_id, etag=etag, cameras={n: CameraZonesIn.model_validate(c) for n, c in cameras.items()},
                     model=model)
