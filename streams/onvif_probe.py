"""`streetwatch camera probe URL`: ask a camera's ONVIF device service for its media profiles,
their RTSP stream URIs and snapshot URIs, and print the config lines to paste.

Uses onvif-zeep-async (the maintained ONVIF client Home Assistant's integration runs on):
GetServices (GetCapabilities on older cameras) finds the media service, then GetProfiles,
GetStreamUri (RTP-Unicast over RTSP) and GetSnapshotUri per profile; WS-Security UsernameToken
digest authentication, with the camera's clock offset allowed for. The URIs cameras return
carry no credentials: the probe puts the ones it was given back into them (masked when printed
unless --show-password).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from streams.rtsp import mask_url


class ProbeError(RuntimeError):
    """The camera could not be asked, or would not answer; str() says which, in one line."""


@dataclass
class Profile:
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    rtsp_uri: str | None
    snapshot_uri: str | None


def _target(url: str) -> tuple[str, int, str, str]:
    """(host, port, user, password) of `http://user:pass@host[:port][/onvif/device_service]` or `host[:port]`."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise ProbeError(f"{mask_url(url)}: the ONVIF device service is reached over http:// or https://")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ProbeError(f"{mask_url(url)}: {exc}") from None
    if not parts.hostname:
        raise ProbeError(f"{mask_url(url)}: names no host")
    return parts.hostname, port, unquote(parts.username or ""), unquote(parts.password or "")


def with_credentials(uri: str | None, user: str, password: str) -> str | None:
    if not uri or not user:
        return uri
    parts = urlsplit(uri)
    if parts.username:
        return uri
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _probe(host: str, port: int, user: str, password: str, timeout_s: float) -> list[Profile]:
    from onvif import ONVIFCamera
    from onvif.exceptions import ONVIFError
    from zeep.exceptions import Fault

    camera = ONVIFCamera(host, port, user, password, adjust_time=True)
    try:
        try:
            await asyncio.wait_for(camera.update_xaddrs(), timeout_s)
            media = await camera.create_media_service()
            profiles = await asyncio.wait_for(media.GetProfiles(), timeout_s)
            found = []
            for p in profiles or []:
                stream = await asyncio.wait_for(media.GetStreamUri({
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                    "ProfileToken": p.token}), timeout_s)
                try:
                    snapshot = await asyncio.wait_for(media.GetSnapshotUri({"ProfileToken": p.token}), timeout_s)
                except (Fault, ONVIFError):
                    snapshot = None  # optional in ONVIF Profile S: many cameras lack it
                video = getattr(p, "VideoEncoderConfiguration", None)
                resolution = getattr(video, "Resolution", None)
                found.append(Profile(p.token, getattr(p, "Name", p.token) or p.token, getattr(video, "Encoding", None),
                                     getattr(resolution, "Width", None), getattr(resolution, "Height", None),
                                     with_credentials(getattr(stream, "Uri", None), user, password),
                                     with_credentials(getattr(snapshot, "Uri", None), user, password)))
            return found
        except asyncio.TimeoutError:
            raise ProbeError(f"{host}:{port}: no ONVIF answer within {timeout_s:g}s") from None
        except Fault as exc:
            text = str(exc.message or exc)
            if re.search(r"NotAuthorized|not authori[sz]ed|Sender not Authorized|auth", text, re.I):
                raise ProbeError(f"{host}:{port}: the camera refused the credentials ({text})") from None
            raise ProbeError(f"{host}:{port}: ONVIF fault: {text}") from None
        except ONVIFError as exc:
            raise ProbeError(f"{host}:{port}: {mask_url(str(exc))}") from None
        except OSError as exc:
            raise ProbeError(f"{host}:{port}: cannot connect ({exc.strerror or exc})") from None
    finally:
        await camera.close()


def probe(url: str, timeout_s: float = 10.0) -> list[Profile]:
    host, port, user, password = _target(url)
    return asyncio.run(_probe(host, port, user, password, timeout_s))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "cam"


def config_lines(profiles: list[Profile], host: str, show_password: bool = False) -> str:
    """The camera entries to paste under `cameras:`: the first profile (usually the main
    stream) with both URLs; the mode comment says how to switch."""
    show = (lambda u: u) if show_password else mask_url
    lines = []
    for p in profiles:
        size = f"{p.width}x{p.height}" if p.width and p.height else "?"
        lines.append(f"# profile {p.token} ({p.name}): {p.encoding or '?'} {size}")
        lines.append(f"  - name: {_slug(host)}-{_slug(p.token)}")
        if p.rtsp_uri:
            lines.append(f"    url: {show(p.rtsp_uri)}")
        if p.snapshot_uri:
            lines.append(f"    snapshot_url: {show(p.snapshot_uri)}")
        mode = "http_snapshot" if p.snapshot_uri else "rtsp_snapshot"
        lines.append(f"    mode: {mode}               # or stream / rtsp_snapshot / http_snapshot")
    return "\n".join(lines)
