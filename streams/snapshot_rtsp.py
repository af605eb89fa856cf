"""One picture from an RTSP camera: connect, take the first keyframe, decode it alone, tear down.

A grab costs the handshake and, on average, half a GOP of receiving (the camera starts a new
session at its next keyframe, or sends from wherever it is and we wait for one); nothing of
the camera is held between grabs. H.264 over TCP goes through the own client
(streams/rtsp_session.py: DESCRIBE, SETUP, PLAY, the first IDR access unit, TEARDOWN);
everything else (UDP, H.265, rtsps://) through FFmpeg with `skip_frame=NONKEY`, so only the
keyframe is decoded there too.

`rtsp_transport: auto` tries TCP and, if the camera refuses it (461) or stays silent at
SETUP, UDP; the transport that worked is remembered for the camera's next grabs.
"""

from __future__ import annotations

import logging
import re
import time

import av
import numpy as np

from streams.grab import GrabError
from streams.h264_rtp import AccessUnit, H264Depacketizer
from streams.rtsp import RtspReader, StreamOpenError, StreamReadError, StreamStalledError, mask_url
from streams.rtsp_session import RtspSession, TcpRefused, UnsupportedStream

log = logging.getLogger("streetwatch.streams")
_UNAUTHORIZED = re.compile(r"Server returned 401|Unauthorized")
_REFUSED = re.compile(r"Server returned (403|404|454|461)|has no video stream|Forbidden|Not Found|refused RTP over TCP")


class RtspSnapshotGrabber:
    def __init__(self, url: str, transport: str = "auto", rtsp_client: str = "native", open_timeout_s: float = 5.0,
                 keyframe_timeout_s: float = 6.0):
        if transport not in ("tcp", "udp", "auto"):
            raise ValueError(f"rtsp_transport must be tcp, udp or auto, got {transport!r}")
        self.url, self.safe_url, self.transport = url, mask_url(url), transport
        self.open_timeout_s, self.keyframe_timeout_s = open_timeout_s, keyframe_timeout_s
        self.native = rtsp_client == "native" and url.startswith("rtsp://") and transport in ("tcp", "auto")

    def grab(self) -> np.ndarray:
        if self.native:
            try:
                return self._grab_native()
            except UnsupportedStream as exc:
                log.info("%s: %s; grabbing it with FFmpeg", self.safe_url, exc)
                self.native = False
            except TcpRefused as exc:
                if self.transport != "auto":
                    raise _as_grab_error(exc) from None
                log.info("%s: %s; grabbing it over UDP with FFmpeg", self.safe_url, exc)
                self.native, self.transport = False, "udp"
        return self._grab_ffmpeg()

    # -- the own client: H.264 over TCP --------------------------------------------------------
    def _grab_native(self) -> np.ndarray:
        session = RtspSession(self.url, self.open_timeout_s, self.keyframe_timeout_s, batch_s=0.02)
        try:
            track = session.open()
            depacketizer = H264Depacketizer(track.parameter_sets)
            deadline = time.monotonic() + self.keyframe_timeout_s
            while True:
                for rtp in session.read_packets():
                    for unit in depacketizer.push(rtp):
                        if unit.keyframe and not unit.damaged:
                            image = _decode_alone(unit, depacketizer)
                            if image is not None:
                                return image
                if time.monotonic() > deadline:
                    raise GrabError("no_keyframe", "missed", f"{self.safe_url}: video but no keyframe within "
                                    f"{self.keyframe_timeout_s:g}s (the GOP limit)")
        except (UnsupportedStream, TcpRefused):
            raise
        except StreamStalledError:
            raise GrabError("no_keyframe", "missed", f"{self.safe_url}: no video within {self.keyframe_timeout_s:g}s "
                            "of PLAY") from None
        except (StreamOpenError, StreamReadError) as exc:
            raise _as_grab_error(exc) from None
        finally:
            session.close()

    # -- FFmpeg: UDP and whatever the own client does not read ----------------------------------
    def _grab_ffmpeg(self) -> np.ndarray:
        reader = RtspReader(self.url, self.open_timeout_s, self.keyframe_timeout_s, self.transport, keyframes_only=True,
                            frame_timeout_s=self.keyframe_timeout_s, single_thread=True, interrupt_reads=True)
        try:
            reader.open()
            if self.transport == "auto" and reader.transport != "auto":
                self.transport = reader.transport  # what worked: no TCP attempt before every grab
            deadline = time.monotonic() + self.keyframe_timeout_s
            for frame in reader.frames():
                if frame.keyframe:
                    return frame.image
                if time.monotonic() > deadline:
                    break
            raise GrabError("no_keyframe", "missed", f"{self.safe_url}: no keyframe within "
                            f"{self.keyframe_timeout_s:g}s (the GOP limit)")
        except StreamStalledError:
            raise GrabError("no_keyframe", "missed", f"{self.safe_url}: no keyframe within "
                            f"{self.keyframe_timeout_s:g}s (the GOP limit)") from None
        except (StreamOpenError, StreamReadError) as exc:
            raise _as_grab_error(exc) from None
        finally:
            reader.close()

    def close(self) -> None:
        pass  # nothing is held between grabs


def _decode_alone(unit: AccessUnit, depacketizer: H264Depacketizer) -> np.ndarray | None:
    codec = av.CodecContext.create("h264", "r")
    codec.thread_type, codec.thread_count = "NONE", 1  # a lone keyframe: no frame threads to fill
    packet = av.Packet(unit.annex_b(depacketizer.parameter_sets))
    try:
        frames = codec.decode(packet) or codec.decode(None)  # drain a decoder that holds it back
    except av.InvalidDataError:
        return None
    return frames[-1].to_ndarray(format="bgr24") if frames else None


def _as_grab_error(exc: Exception) -> GrabError:
    text = str(exc)
    if _UNAUTHORIZED.search(text):
        return GrabError("unauthorized", "refused", f"{text} (the camera refused the credentials: password changed?)")
    if isinstance(exc, TcpRefused) and exc.answered or _REFUSED.search(text):
        return GrabError("rtsp_refused", "refused", text)
    if "no answer within" in text:
        return GrabError("timeout", "missed", text)
    if isinstance(exc, StreamOpenError):
        return GrabError("unreachable", "missed", text)
    return GrabError("error", "missed", text)
