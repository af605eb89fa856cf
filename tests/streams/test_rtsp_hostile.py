"""A broken or hostile camera (found by an audit): the own RTSP client raises the errors the
camera worker handles (StreamOpenError, UnsupportedStream, StreamStalledError), within its
timeouts and in bounded memory, whatever the camera sends."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

import streams.h264_rtp as h264_rtp
from streams.decode_plan import DecodePlan
from streams.h264_rtp import H264Depacketizer
from streams.rtsp import StreamOpenError, StreamStalledError
from streams.rtsp_native import NativeRtspReader
from streams.rtsp_session import UnsupportedStream, parse_sdp_video
from tests.streams.helpers import rtsp_requests
from tests.streams.test_rtsp_native import SLICE, fu_a, rtp

SDP = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:*\r\n"


class BrokenCamera:
    """Answers every request 200 (DESCRIBE with `sdp`, its Content-Length `content_length` if
    given), then sends `packet(i)` as interleaved channel 0 until the client hangs up."""

    def __init__(self, packet=None, sdp: str = SDP, content_length: str | None = None):
        self.packet, self.sdp, self.content_length = packet, sdp, content_length
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self.sock.getsockname()[1]}/live"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            for method, cseq, _ in rtsp_requests(conn):
                body = self.sdp if method == "DESCRIBE" else ""
                length = self.content_length if method == "DESCRIBE" and self.content_length else len(body)
                extra = "Session: 1234;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n" \
                    if method == "SETUP" else ""
                reply = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {length}\r\n\r\n{body}"
                conn.sendall(reply.encode())
                if method == "PLAY" and self.packet is not None:
                    try:
                        for i in range(1_000_000):
                            p = self.packet(i)
                            conn.sendall(b"$\x00" + struct.pack("!H", len(p)) + p)
                            time.sleep(0.002)
                    except OSError:
                        return


def wrong_version(i: int) -> bytes:
    return bytes((0x40,)) + rtp(i, 9000 * i, SLICE, marker=True)[1:]  # RTP version 1


def never_ending(i: int) -> bytes:
    return rtp(i, 9000, b"\x41" + b"\x22" * 1400)  # one timestamp, never a marker


@pytest.mark.timeout(30)
@pytest.mark.parametrize("packet", [wrong_version, never_ending], ids=["wrong-rtp-version", "unit-never-ends"])
def test_packets_that_never_make_a_frame_are_a_stall(packet):
    """They kept the session looking alive: no stall was ever raised (and a unit that never
    ended grew by megabytes a second)."""
    reader = NativeRtspReader(BrokenCamera(packet).url, open_timeout_s=3, read_timeout_s=1.5)
    started = time.monotonic()
    try:
        with pytest.raises(StreamStalledError, match="no whole video frame"):
            for _ in reader.planned_frames(DecodePlan(1.0)):
                pass
    finally:
        reader.close()
    assert time.monotonic() - started < 6


@pytest.mark.parametrize("sdp", [
    SDP.replace("RTP/AVP 96", "RTP/AVP"),  # no payload type
    "v=0\r\nm=video\r\n",
    SDP.replace("RTP/AVP 96", "RTP/AVP 96a"),
    SDP.replace("H264/90000", "H264/0"),  # clock rate 0: a division by zero later
    SDP.replace("a=control:*", "a=control:trackID=1"),  # fine itself; the base below is not
])
def test_an_sdp_the_client_cannot_read_is_unsupported_not_a_crash(sdp):
    # UnsupportedStream: the camera worker then lets FFmpeg try the camera
    with pytest.raises(UnsupportedStream):
        parse_sdp_video(sdp, "rtsp://[x/" if "trackID" in sdp else "rtsp://cam/live/")


def test_parameter_sets_that_do_not_decode_are_dropped():
    track = parse_sdp_video(SDP.replace("packetization-mode=1", "packetization-mode=1;sprop-parameter-sets=Z0IAK,aM4=,é"),
                            "rtsp://cam/live/")
    assert track.parameter_sets == [b"\x68\xce"]


def test_an_enormous_content_length_is_an_open_error_naming_it():
    """It never fit the buffer: the client waited, then blamed the camera for hanging up."""
    reader = NativeRtspReader(BrokenCamera(content_length="99999999").url, open_timeout_s=3)
    with pytest.raises(StreamOpenError, match="Content-Length '99999999'"):
        reader.open()
    reader.close()


def test_late_and_repeated_packets_are_not_counted_as_losses():
    d = H264Depacketizer()
    for seq in (10, 12, 11, 12, 13):  # 11 lost, then arrives late; 12 repeated
        d.push(rtp(seq, 9000 * seq, SLICE, marker=True))
    assert (d.lost_packets, d.late_packets) == (1, 2)  # it was 65535 + 65534 lost


def test_a_late_timestamp_across_the_wrap_adds_no_false_wrap():
    d = H264Depacketizer()
    stamps = [u.timestamp for i, raw in enumerate((0xFFFFFF00, 5, 0xFFFFFFF0, 10))
              for u in d.push(rtp(i + 1, raw, SLICE, marker=True))]
    assert stamps == [0xFFFFFF00, 2**32 + 5, 0xFFFFFFF0, 2**32 + 10]


def test_a_unit_that_never_ends_is_dropped_at_the_cap(monkeypatch):
    monkeypatch.setattr(h264_rtp, "MAX_UNIT_BYTES", 20_000)
    d = H264Depacketizer()
    frags = fu_a(b"\x65" + b"\x11" * 100_000, 1400)
    for i, frag in enumerate(frags[:-1]):  # never the end
        d.push(rtp(i + 1, 9000, frag))
    assert d.oversized_units == 1 and d._unit_bytes <= 20_000  # the rest: fragments without their start
    (unit,) = d.push(rtp(len(frags) + 1, 12600, SLICE, marker=True))  # the next unit comes out
    assert unit.damaged
