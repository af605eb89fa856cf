"""A small RTSP client for one H.264 video track over TCP (RFC 2326, interleaved RTP).

Why not FFmpeg's: its RTSP demuxer reads the socket a few bytes at a time (a poll and a recv
for each 4-byte interleave header and each RTP packet) and hands every frame to Python, so
receiving a 2 Mbit/s camera cost 0.58-0.63 % of a core here (0.85 % alone on a quiet box),
most of what decoding its keyframes costs. This client lets the kernel gather a tenth of a
second of packets and takes them with one `recv_into`: 0.34-0.36 %, H.264 depacketizing
included (`python -m benchmarks.rtsp_receive`, benchmarks/README.md). The frames it keeps
are decoded by FFmpeg all the same (streams/rtsp_native.py).

It speaks what cameras need: DESCRIBE/SETUP/PLAY, Basic and Digest authentication,
keep-alives (GET_PARAMETER when offered, else OPTIONS), TEARDOWN. Anything else (H.265,
UDP, TLS) is left to FFmpeg (`UnsupportedStream`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from streams.rtsp import StreamOpenError, StreamReadError, StreamStalledError, mask_url

_BUFFER = 1 << 21  # holds several I-frames: the kernel keeps the rest meanwhile


class UnsupportedStream(StreamOpenError):
    """The camera is fine, but this client does not speak its format: use FFmpeg for it."""


class TcpRefused(StreamOpenError):
    """The camera would not send RTP over the RTSP connection: SETUP answered 461 Unsupported
    transport (`answered`), or no answer to SETUP over TCP. With rtsp_transport `auto` the
    camera is read over UDP instead (streams/camera.py, streams/snapshot_rtsp.py)."""

    def __init__(self, message: str, answered: bool):
        super().__init__(message)
        self.answered = answered


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class VideoTrack:
    control: str  # URL to SETUP
    payload_type: int
    clock_rate: int
    parameter_sets: list[bytes]  # SPS, PPS from sprop-parameter-sets (may be empty)


def digest_response(user: str, password: str, method: str, uri: str, challenge: dict[str, str],
                    cnonce: str, nc: int = 1) -> str:
    """The `Authorization: Digest …` value (RFC 2617, MD5, qop=auth or none)."""
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731 (RFC 2617 names it H)
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    qop = "auth" if "auth" in [q.strip() for q in challenge.get("qop", "").split(",")] else None
    if qop:
        answer = md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")
    else:
        answer = md5(f"{ha1}:{nonce}:{ha2}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"', f'response="{answer}"']
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    if qop:
        fields += [f"qop={qop}", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(fields)


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in re.findall(r'(\w+)="?([^",]*)"?', rest)}


MAX_BODY = 64 * 1024  # bytes of an RTSP message body (an SDP is a few KB)


def parse_sdp_video(sdp: str, base: str) -> VideoTrack:
    """The first video track of an SDP, if it is H.264; UnsupportedStream otherwise (also for an
    SDP this parser cannot read: the camera worker then lets FFmpeg try it)."""
    media = re.split(r"\r?\nm=", "\n" + sdp)
    video = next((m for m in media[1:] if m.startswith("video")), None)
    if video is None:
        raise StreamOpenError(f"{mask_url(base)} has no video stream")
    try:
        return _video_track(video, base)
    except (ValueError, IndexError) as exc:  # a field missing or not a number
        raise UnsupportedStream(f"{mask_url(base)}: cannot read the SDP's video track ({exc})") from None


def _video_track(video: str, base: str) -> VideoTrack:
    fields = video.split()
    if len(fields) < 4 or not re.fullmatch(r"[0-9]{1,3}", fields[3]):
        raise ValueError(f"m= line {video.splitlines()[0][:60]!r} names no payload type")
    payload_type = int(fields[3])
    rtpmap = re.search(rf"a=rtpmap:{payload_type} ([\w.-]+)/([0-9]{{1,9}})", video)
    codec = rtpmap.group(1).upper() if rtpmap else "?"
    if codec != "H264":
        raise UnsupportedStream(f"{mask_url(base)}: video is {codec}, not H.264")
    fmtp = re.search(rf"a=fmtp:{payload_type} (.*)", video)
    params = dict(p.strip().partition("=")[::2] for p in fmtp.group(1).split(";")) if fmtp else {}
    if params.get("packetization-mode", "0").strip() not in ("0", "1"):
        raise UnsupportedStream(f"{mask_url(base)}: H.264 interleaved packetization is not supported")
    sets = [nal for s in params.get("sprop-parameter-sets", "").split(",") if s and (nal := _b64(s))]
    control = re.search(r"a=control:(\S+)", video)
    target = control.group(1) if control else "*"
    url = base if target == "*" else target if "://" in target else urljoin(base if base.endswith("/") else base + "/", target)
    clock_rate = int(rtpmap.group(2)) if rtpmap else 0
    if clock_rate <= 0:
        raise ValueError(f"clock rate {clock_rate} in a=rtpmap")
    return VideoTrack(url, payload_type, clock_rate, sets)


def _b64(text: str) -> bytes | None:
    """A parameter set from the SDP; None for one that does not decode (the stream repeats them)."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # (binascii.Error is one)
        return None


class RtspSession:
    """One TCP connection to one camera. `open()` ends in PLAY; `read_packets()` returns the
    video RTP packets received since the last call, waiting for data if there is none."""

    def __init__(self, url: str, open_timeout_s: float, read_timeout_s: float, batch_s: float = 0.1):
        parts = urlsplit(url)
        if parts.scheme != "rtsp":
            raise UnsupportedStream(f"{mask_url(url)}: only rtsp:// over TCP")
        self.safe_url = mask_url(url)
        try:
            self.host, self.port = parts.hostname, parts.port or 554
        except ValueError as exc:  # a port that is not a number
            raise StreamOpenError(f"cannot open {self.safe_url}: {exc}") from None
        if not self.host:
            raise StreamOpenError(f"cannot open {self.safe_url}: no host in the URL")
        self.user, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        # Without credentials: this is what goes on the wire (Digest sends no password).
        self.url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.open_timeout_s, self.read_timeout_s, self.batch_s = open_timeout_s, read_timeout_s, batch_s
        self.sock: socket.socket | None = None
        self.track: VideoTrack | None = None
        self._cseq = 0
        self._session: str | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._keepalive_method, self._keepalive_s, self._keepalive_at = "OPTIONS", 30.0, 0.0
        self._deadline = 0.0
        self._channel = 0
        self._buf = bytearray(_BUFFER)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self.last_video_at = time.monotonic()

    # --- RTSP requests ------------------------------------------------------------------
    def open(self) -> VideoTrack:
        # One deadline for the whole handshake, as FFmpeg's open timeout: the camera's watchdog
        # allows an open only that long (and a grace).
        self._deadline = time.monotonic() + self.open_timeout_s
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.open_timeout_s)
        except OSError as exc:
            raise StreamOpenError(f"cannot open {self.safe_url}: {exc.strerror or exc}") from None
        options = self._request("OPTIONS", self.url)
        if "GET_PARAMETER" in options.headers.get("public", ""):
            self._keepalive_method = "GET_PARAMETER"
        described = self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = described.headers.get("content-base") or described.headers.get("content-location") or self.url
        self.track = parse_sdp_video(described.body.decode("utf-8", "replace"), base)
        try:
            setup = self._request("SETUP", self.track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        except TcpRefused:
            raise
        except StreamOpenError as exc:
            if "no answer within" not in str(exc):
                raise
            raise TcpRefused(f"{exc} over TCP (a camera that offers RTP over UDP only may stay silent; "
                             "rtsp_transport: auto or udp reads it over UDP)", answered=False) from None
        session = setup.headers.get("session", "")
        self._session = session.split(";")[0].strip() or None
        # Bounded numbers only: a camera's 400-digit timeout overflowed, a 5000-digit one hit
        # Python's int() limit; a keep-alive at least every 30 s suits every camera anyway.
        timeout = re.search(r"timeout=([0-9]{1,6})\b", session)
        self._keepalive_s = min(30.0, max(2.0, int(timeout.group(1)) / 2)) if timeout else 30.0
        channels = re.search(r"interleaved=([0-9]{1,3})\b", setup.headers.get("transport", ""))
        self._channel = int(channels.group(1)) if channels and int(channels.group(1)) <= 255 else 0
        self._request("PLAY", base, {"Range": "npt=0.000-"})  # the whole presentation
        self.sock.settimeout(self.read_timeout_s)
        self._keepalive_at = self.last_video_at = time.monotonic()
        return self.track

    def _send(self, method: str, url: str, headers: dict[str, str] | None = None) -> None:
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", "User-Agent: streetwatch"]
        if self._session:
            lines.append(f"Session: {self._session}")
        if self._challenge:
            lines.append(f"Authorization: {self._authorization(method, url)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        for attempt in (0, 1):
            try:
                self._send(method, url, headers)
                response = self._read_response(self._deadline)
            except StreamReadError:  # the camera hung up mid-handshake
                raise StreamOpenError(f"cannot open {self.safe_url}: the camera hung up during {method}") from None
            except socket.timeout:
                raise StreamOpenError(f"cannot open {self.safe_url}: no answer within {self.open_timeout_s:.1f}s "
                                      f"to {method}") from None
            except OSError as exc:
                raise StreamOpenError(f"cannot open {self.safe_url}: {method}: {exc.strerror or exc}") from None
            if response.status == 401 and attempt == 0 and self.user and "www-authenticate" in response.headers:
                self._challenge = _challenge(response.headers["www-authenticate"])
                continue
            if response.status == 461:
                # What a UDP-only camera (VLC, some encoders and NVR restreamers) says to TCP.
                offered = response.headers.get("transport")
                raise TcpRefused(f"cannot open {self.safe_url}: Server returned 461 {response.reason} ({method} "
                                 f"with RTP/AVP/TCP): the camera offers "
                                 f"{offered if offered else 'RTP over UDP only'}; set rtsp_transport: udp "
                                 f"(or auto) for it", answered=True)
            if response.status >= 300:
                # Worded like FFmpeg's, which the camera's health classification reads.
                raise StreamOpenError(f"cannot open {self.safe_url}: Server returned {response.status} "
                                      f"{response.reason} ({method})")
            return response
        raise AssertionError("unreachable")

    def _authorization(self, method: str, url: str) -> str:
        scheme, challenge = self._challenge
        if scheme == "digest":
            return digest_response(self.user, self.password, method, url, challenge, os.urandom(8).hex())
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def _read_response(self, deadline: float) -> Response:
        while True:
            if self._end > self._start and self._buf[self._start] == 0x24:
                stop = self._interleaved_end(self._start)  # RTP before PLAY's answer: not ours yet
            else:
                message = self._message_at(self._start)
                if message is not None:
                    status_line, headers, body, stop = message
                    self._start = stop
                    parts = status_line.split(" ", 2)
                    if len(parts) < 2 or not parts[0].startswith("RTSP/") or not re.fullmatch(r"[0-9]{3}", parts[1]):
                        raise StreamOpenError(f"{self.safe_url}: not an RTSP answer: {status_line[:60]!r}")
                    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)
                stop = None
            if stop is None:
                self._fill(deadline)
            else:
                self._start = stop

    def _message_at(self, start: int) -> tuple[str, dict[str, str], bytes, int] | None:
        """The RTSP message (answer or request) beginning at `start` once all of it is in the
        buffer: its first line, headers (names lower-cased), body and end offset."""
        head_end = self._buf.find(b"\r\n\r\n", start, self._end)
        if head_end < 0:
            return None
        first, *lines = bytes(self._buf[start:head_end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length", "").strip()
        if length and (not re.fullmatch(r"[0-9]{1,9}", length) or int(length) > MAX_BODY):
            # An SDP or a keep-alive answer is a few KB; a larger body would never fit the
            # buffer and would swallow the video behind it.
            raise StreamOpenError(f"{self.safe_url}: an RTSP message with Content-Length {length[:20]!r}")
        stop = head_end + 4 + (int(length) if length else 0)
        if stop > self._end:
            return None
        return first, headers, bytes(self._buf[head_end + 4:stop]), stop

    def _interleaved_end(self, start: int) -> int | None:
        """Where the `$`-framed packet at `start` ends, once all of it is in the buffer."""
        if self._end - start < 4:
            return None
        stop = start + 4 + (self._buf[start + 2] << 8 | self._buf[start + 3])
        return stop if stop <= self._end else None

    def _fill(self, deadline: float | None = None) -> int:
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end > len(self._buf) - 65536:  # compact: move the unread tail to the front
            tail = self._end - self._start
            self._buf[:tail] = self._buf[self._start:self._end]
            self._start, self._end = 0, tail
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
        got = self.sock.recv_into(self._view[self._end:])
        if deadline is not None:
            self.sock.settimeout(self.read_timeout_s)
        if not got:
            raise StreamReadError(f"{self.safe_url}: the camera closed the connection")
        self._end += got
        return got

    # --- streaming ----------------------------------------------------------------------
    def read_packets(self) -> list[bytes]:
        """The video RTP packets that have arrived, at least one. Raises StreamStalledError
        when no video packet came for read_timeout_s (RTCP alone does not count)."""
        # A stall is judged only after a read: a thread that got no CPU for seconds finds its
        # camera's packets waiting in the kernel, and that is no stall.
        received = False
        while True:
            now = time.monotonic()
            if now - self._keepalive_at > self._keepalive_s:
                # We send no RTCP receiver reports, so a request is what keeps the session alive.
                self._keepalive_at = now
                self._send_quietly(self._keepalive_method)
            packets = self._parse()
            if packets:
                self.last_video_at = now
                return packets
            if received and now - self.last_video_at > self.read_timeout_s:  # RTCP only: frozen
                raise StreamStalledError(f"{self.safe_url}: no video within {self.read_timeout_s:g}s")
            try:
                got = self._fill()
                received = True
            except socket.timeout:
                raise StreamStalledError(f"{self.safe_url}: no data within {self.read_timeout_s:g}s") from None
            except OSError as exc:
                raise StreamReadError(f"reading {self.safe_url} failed: {exc.strerror or exc}") from None
            if got < 65536 and self.batch_s > 0:
                # Let packets gather in the kernel: one wake-up per batch, not one per packet.
                time.sleep(self.batch_s)

    def _parse(self) -> list[bytes]:
        packets, buf, start = [], self._buf, self._start
        while start < self._end:
            if buf[start] == 0x24:
                stop = self._interleaved_end(start)
                if stop is not None and buf[start + 1] == self._channel:
                    packets.append(bytes(buf[start + 4:stop]))
            else:  # an RTSP answer (to a keep-alive) inside the stream
                message = self._message_at(start)
                stop = None if message is None else message[3]
            if stop is None:
                break
            start = stop
        self._start = start
        return packets

    def _send_quietly(self, method: str) -> None:
        try:
            self._send(method, self.url)
        except OSError:
            pass  # the read that follows reports a dead connection

    def close(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            if self._session:
                sock.settimeout(0.5)
                self._send("TEARDOWN", self.url)
        except OSError:
            pass  # a dead connection needs no goodbye
        finally:
            self.sock = None
            sock.close()
