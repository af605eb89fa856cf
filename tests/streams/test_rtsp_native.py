"""Streetwatch's own RTSP client: RTP depacketizing, SDP, Digest, and real cameras (gst-rtsp-server)."""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import threading
import time

import pytest

import streams.camera as camera_mod
from streams.camera import CameraWorker
from streams.camera_server import RtspCameraServer
from streams.decode_plan import DecodePlan
from streams.h264_rtp import START_CODE, H264Depacketizer
from streams.rtsp import StreamOpenError, StreamStalledError
from streams.rtsp_native import NativeRtspReader
from streams.rtsp_session import RtspSession, UnsupportedStream, digest_response, parse_sdp_video
from tests.streams.helpers import CLIP_H, CLIP_W, rtsp_requests, wait_for

SPS, PPS = b"\x67\x42\x00\x1f\xaa", b"\x68\xce\x3c\x80"
IDR, SLICE = b"\x65" + b"\x11" * 3000, b"\x41" + b"\x22" * 50


@pytest.fixture(scope="module")
def cams(clip):
    """A camera to read and one per test that freezes its own."""
    with RtspCameraServer({"cam": clip, "frz2": clip}) as srv:
        yield srv


@contextlib.contextmanager
def native_worker(cams, interval_s: float):
    """A camera worker on the test camera `cam` with the own client; yields it and its frames."""
    got = []
    worker = CameraWorker("cam", cams.url("cam"), interval_s, lambda n, f: got.append(f), decode_mode="auto",
                          rtsp_client="native")
    worker.start()
    try:
        yield worker, got
    finally:
        worker.stop(timeout=5)


def rtp(seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, ts & 0xFFFFFFFF, 1) + payload


def fu_a(nal: bytes, size: int) -> list[bytes]:
    body, indicator = nal[1:], (nal[0] & 0xE0) | 28
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return [bytes((indicator, (0x80 if i == 0 else 0) | (0x40 if i == len(parts) - 1 else 0) | (nal[0] & 0x1F))) + p
            for i, p in enumerate(parts)]


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(struct.pack("!H", len(n)) + n for n in nals)


def test_depacketizer_rebuilds_units_from_stap_a_fu_a_and_single_nals():
    d = H264Depacketizer()
    packets = [rtp(1, 9000, stap_a(SPS, PPS))] + [rtp(2 + i, 9000, p, marker=(i == 2)) for i, p in enumerate(fu_a(IDR, 1200))]
    packets.append(rtp(5, 12600, SLICE, marker=True))
    units = [u for p in packets for u in d.push(p)]
    assert [(u.keyframe, u.damaged, u.timestamp) for u in units] == [(True, False, 9000), (False, False, 12600)]
    assert units[0].nals == [SPS, PPS, IDR] and units[1].nals == [SLICE]
    assert units[0].annex_b() == START_CODE + START_CODE.join([SPS, PPS, IDR])


def test_a_lost_fragment_marks_the_unit_damaged_and_a_lost_marker_is_found_by_the_timestamp():
    d = H264Depacketizer()
    frags = fu_a(IDR, 1000)
    units = [u for p in (rtp(1, 100, frags[0]), rtp(3, 100, frags[2], marker=True)) for u in d.push(p)]
    assert units == []  # the middle is gone: nothing decodable comes out
    # A P-slice whose marker packet never came, then the next unit: both still come out.
    out = d.push(rtp(4, 3700, SLICE)) + d.push(rtp(5, 7300, SLICE, marker=True))
    assert [(u.timestamp, u.damaged) for u in out] == [(3700, False), (7300, False)]
    assert d.lost_packets == 1


def test_keyframes_get_the_latest_parameter_sets_when_the_camera_sends_them_apart():
    d = H264Depacketizer([SPS, b"\x68\x00"])  # from the SDP; the stream then brings a new PPS
    d.push(rtp(1, 100, PPS, marker=True))  # a unit of its own, which a keyframes-only reader skips
    (unit,) = d.push(rtp(2, 3700, IDR, marker=True))
    assert unit.annex_b(d.parameter_sets) == START_CODE + START_CODE.join([SPS, PPS, IDR])


def test_rtp_timestamps_are_unwrapped_past_2_to_the_32():
    d = H264Depacketizer()
    (a,) = d.push(rtp(1, 2**32 - 1800, SLICE, marker=True))
    (b,) = d.push(rtp(2, 1800, SLICE, marker=True))
    assert b.timestamp - a.timestamp == 3600


def test_digest_authorization_matches_rfc_2617():
    challenge = {"realm": "testrealm@host.com", "qop": "auth,auth-int", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 "opaque": "5ccc069c403ebaf9f0171e9517f40e41"}
    header = digest_response("Mufasa", "Circle Of Life", "GET", "/dir/index.html", challenge, "0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header and "nc=00000001" in header


def test_sdp_gives_the_h264_track_and_refuses_other_codecs():
    sets = ",".join(base64.b64encode(x).decode() for x in (SPS, PPS))
    sdp = ("v=0\r\ns=cam\r\nt=0 0\r\na=control:*\r\nm=audio 0 RTP/AVP 0\r\na=control:stream=1\r\n"
           "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
           f"a=fmtp:96 packetization-mode=1;profile-level-id=42001f;sprop-parameter-sets={sets}\r\n"
           "a=control:stream=0\r\n")
    track = parse_sdp_video(sdp, "rtsp://cam.local/live/")
    assert (track.control, track.payload_type, track.clock_rate) == ("rtsp://cam.local/live/stream=0", 96, 90000)
    assert track.parameter_sets == [SPS, PPS]
    with pytest.raises(UnsupportedStream, match="H265"):
        parse_sdp_video(sdp.replace("H264/90000", "H265/90000"), "rtsp://cam.local/live/")
    with pytest.raises(StreamOpenError, match="no video stream"):
        parse_sdp_video("v=0\r\nm=audio 0 RTP/AVP 0\r\n", "rtsp://cam.local/live/")


class DigestCamera:
    """Just enough of an RTSP server to demand Digest credentials and then refuse the codec."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.authorizations: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            for method, cseq, lines in rtsp_requests(conn):
                auth = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("Authorization")), None)
                if auth is None:
                    reply = (f'RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Digest realm="cam", '
                             'nonce="abc123"\r\n\r\n')
                else:
                    self.authorizations.append(f"{method} {auth}")
                    body = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n" if method == "DESCRIBE" else ""
                    reply = (f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n{body}")
                conn.sendall(reply.encode())


def test_digest_credentials_are_sent_after_the_challenge_and_never_in_errors():
    cam = DigestCamera()
    reader = NativeRtspReader(f"rtsp://admin:s3cret@127.0.0.1:{cam.port}/live", open_timeout_s=2)
    with pytest.raises(UnsupportedStream) as err:
        reader.open()
    assert "s3cret" not in str(err.value) and "H265" in str(err.value)
    expected = digest_response("admin", "s3cret", "DESCRIBE", f"rtsp://127.0.0.1:{cam.port}/live", {"realm": "cam", "nonce": "abc123"}, "x")
    assert any(a == f"DESCRIBE {expected}" for a in cam.authorizations), cam.authorizations


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_native_reader_decodes_one_keyframe_per_interval_from_a_real_camera(cams):
    with NativeRtspReader(cams.url("cam"), open_timeout_s=5, read_timeout_s=3) as reader:
        session = reader._session
        session._keepalive_s = 1.0  # the server asked for 60 s: too long to watch here
        requests_before, frames = session._cseq, []
        for frame in reader.planned_frames(DecodePlan(2.0)):
            frames.append((time.monotonic(), frame))
            if len(frames) == 4:
                break
    assert all(f.image.shape == (CLIP_H, CLIP_W, 3) and f.keyframe for _, f in frames)
    gaps = [b[0] - a[0] for a, b in zip(frames, frames[1:])]
    assert all(1.5 <= g <= 2.6 for g in gaps), gaps
    assert reader.packets >= 9 * len(gaps) and reader.frames_decoded < reader.packets / 3  # most were never decoded
    # We send no RTCP, so requests keep the session alive while video flows, about one a second here.
    assert session._cseq - requests_before >= 3


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_native_reader_reports_a_frozen_camera_as_stalled(cams):
    reader = NativeRtspReader(cams.url("frz2"), open_timeout_s=5, read_timeout_s=2)
    try:
        frames = reader.planned_frames(DecodePlan(1.0))
        next(frames)
        cams.freeze("frz2")
        frozen = time.monotonic()
        with pytest.raises(StreamStalledError):
            for _ in frames:
                pass
        assert 1.5 <= time.monotonic() - frozen <= 6  # the RTCP that keeps coming is no video
    finally:
        cams.resume("frz2")
        reader.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_camera_the_native_client_cannot_read_falls_back_to_ffmpeg(cams, monkeypatch):
    def unsupported(self):
        raise UnsupportedStream(f"{self.safe_url}: video is H265, not H.264")

    monkeypatch.setattr(camera_mod.NativeRtspReader, "open", unsupported)
    with native_worker(cams, 1.0) as (worker, got):
        assert wait_for(lambda: len(got) >= 2, 15), worker.health
        assert not worker.native and worker.health.reconnects == 0 and worker.health.state == "streaming"


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_lossy_camera_keeps_streaming_and_counts_each_gap_once(cams, monkeypatch):
    """Every 40th RTP packet goes missing (a camera's send buffer overflowing does that over
    TCP): damaged frames are skipped, the camera stays up, and the gaps are counted."""
    real_read = RtspSession.read_packets
    seen = {"n": 0}

    def lossy_read(self):
        kept = []
        for packet in real_read(self):
            seen["n"] += 1
            if seen["n"] % 40:
                kept.append(packet)
        return kept or lossy_read(self)

    monkeypatch.setattr(RtspSession, "read_packets", lossy_read)
    with native_worker(cams, 0.5) as (worker, got):
        # (the test server may turn the first DESCRIBE away while it tears down the previous test's
        # session: the losses must cause no reconnect once video flows, not none at all)
        assert wait_for(lambda: len(got) >= 1, 15), worker.health
        connects = worker.health.reconnects
        assert wait_for(lambda: len(got) >= 5 and worker.health.packets_lost >= 3, 20), worker.health
        h = worker.health
        assert worker.native and h.state == "streaming" and h.reconnects == connects
        assert h.packets_lost <= seen["n"] // 40 + 1  # gaps counted once each, not per damaged unit
        assert all(f.image.shape == (CLIP_H, CLIP_W, 3) for f in got)
    # (how these counters reach /healthz and /metrics: tests/streams/test_metrics.py)


def test_open_errors_are_clear_and_bounded_by_one_deadline():
    from streams.camera_server import free_port

    with pytest.raises(StreamOpenError, match="Connection refused"):
        NativeRtspReader(f"rtsp://127.0.0.1:{free_port()}/x", open_timeout_s=1).open()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    started = time.monotonic()
    with pytest.raises(StreamOpenError, match="no answer within"):
        NativeRtspReader(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x", open_timeout_s=0.5).open()
    assert time.monotonic() - started < 2
    silent.close()

    rude = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: rude.accept()[0].close(), daemon=True).start()
    with pytest.raises(StreamOpenError, match="hung up during OPTIONS|OPTIONS: Connection reset"):
        NativeRtspReader(f"rtsp://127.0.0.1:{rude.getsockname()[1]}/x", open_timeout_s=2).open()
    rude.close()
    with pytest.raises(StreamOpenError, match="no host"):
        NativeRtspReader("rtsp:///x").open()
