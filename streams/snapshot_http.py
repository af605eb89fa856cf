"""A camera's JPEG snapshot over HTTP: ONVIF GetSnapshotUri, Hikvision ISAPI
(`/ISAPI/Streaming/channels/101/picture`), Dahua CGI (`/cgi-bin/snapshot.cgi`), or any URL.

Credentials come in the URL (`http://user:pass@host/...`) and are sent the way the camera asks
on its first 401: Digest (Hikvision and Dahua default to it) or Basic; the scheme is then
remembered, so later grabs take one request (Digest reuses the camera's nonce).
One httpx client is shared by every camera: its pool keeps connections to cameras alive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from urllib.parse import unquote

import httpx
import numpy as np

from streams.grab import MAX_JPEG_BYTES, GrabError, decode_jpeg
from streams.rtsp import mask_url


class CameraAuth(httpx.Auth):
    """Basic or Digest, whichever the camera's WWW-Authenticate names; nothing is sent before
    it asks (Basic over plain HTTP would give the password away to a camera that wants Digest)."""

    def __init__(self, user: str, password: str):
        self._basic, self._digest = httpx.BasicAuth(user, password), httpx.DigestAuth(user, password)
        self._scheme: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scheme is not None:
            yield from (self._basic if self._scheme == "basic" else self._digest).auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        scheme = response.headers.get("www-authenticate", "").strip().split(" ", 1)[0].lower()
        if scheme == "basic":
            self._scheme = "basic"
            yield from self._basic.auth_flow(request)
        elif scheme == "digest":
            self._scheme = "digest"
            flow = self._digest.auth_flow(request)
            next(flow)  # the unauthenticated request, already answered by this 401
            try:
                retry = flow.send(response)
            except StopIteration:
                return
            answer = yield retry
            try:
                flow.send(answer)
            except StopIteration:
                pass


class HttpSnapshotGrabber:
    def __init__(self, url: str, client: httpx.Client, timeout_s: float = 5.0):
        parsed = httpx.URL(url)
        self.safe_url = mask_url(url)
        user, password = unquote(parsed.username or ""), unquote(parsed.password or "")
        # Without userinfo: httpx would otherwise send it as Basic before the camera asks.
        self.url = parsed.copy_with(username=None, password=None) if user else parsed
        self.auth = CameraAuth(user, password) if user else None
        self.client, self.timeout_s = client, timeout_s

    def grab(self) -> np.ndarray:
        body, ctype = self._fetch()
        return decode_jpeg(body, ctype, self.safe_url)

    def _fetch(self) -> tuple[bytes, str | None]:
        # httpx's timeout bounds each wait; the deadline bounds the whole answer, so a camera
        # that trickles a byte a second cannot hold a grab slot for minutes.
        deadline = time.monotonic() + self.timeout_s
        try:
            with self.client.stream("GET", self.url, auth=self.auth, timeout=self.timeout_s) as response:
                if response.status_code == 401:
                    raise GrabError("unauthorized", "refused", f"{self.safe_url}: 401 Unauthorized: the camera "
                                    "refused the credentials (password changed?)" if self.auth else
                                    f"{self.safe_url}: 401 Unauthorized: the camera wants credentials "
                                    "(http://user:pass@host/...)")
                if response.status_code >= 400 or response.status_code < 200:
                    raise GrabError("http_status", "refused", f"{self.safe_url}: HTTP {response.status_code} "
                                    f"{response.reason_phrase}")
                if response.status_code >= 300:
                    raise GrabError("http_status", "refused", f"{self.safe_url}: HTTP {response.status_code} "
                                    f"to {mask_url(response.headers.get('location', '?'))} (give the final URL)")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_JPEG_BYTES:
                        raise GrabError("not_jpeg", "refused", f"{self.safe_url}: answer over "
                                        f"{MAX_JPEG_BYTES >> 20} MB (a video stream, not a snapshot?)")
                    if time.monotonic() > deadline:
                        raise GrabError("timeout", "missed", f"{self.safe_url}: answer not complete within "
                                        f"{self.timeout_s:g}s")
                return b"".join(chunks), response.headers.get("content-type")
        except httpx.TimeoutException:
            raise GrabError("timeout", "missed", f"{self.safe_url}: no answer within {self.timeout_s:g}s") from None
        except httpx.ConnectError as exc:
            raise GrabError("unreachable", "missed", f"{self.safe_url}: cannot connect ({mask_url(str(exc))})") from None
        except httpx.HTTPError as exc:  # a broken answer: the connection dropped, a bad header
            raise GrabError("error", "missed", f"{self.safe_url}: {type(exc).__name__}: {mask_url(str(exc))}") from None

    def close(self) -> None:
        pass  # the client is shared; the scheduler closes it


def snapshot_client(max_connections: int) -> httpx.Client:
    """The one client every HTTP snapshot camera shares (cameras' certificates are mostly
    self-signed: HTTPS protects the password on the way, it cannot prove the camera's name)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    # httpx logs every request at INFO: a thousand cameras would be 33 lines a second.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
    return httpx.Client(limits=limits, verify=False, follow_redirects=False,
                        headers={"User-Agent": "streetwatch", "Accept": "image/jpeg"})
