"""The light RTSP server the snapshot benchmark's stream side reads: its RTP comes back as the
same access units through the edge's own depacketiser, and both RTSP clients (the own one and
FFmpeg) read a keyframe from it and follow its stream."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks.light_rtsp_server import RTP_PAYLOAD, load_clip, packetise
from streams.h264_rtp import H264Depacketizer


def _rtp_packets(interleaved: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(interleaved):
        assert interleaved[i:i + 2] == b"$\x00"  # channel 0, as SETUP answered
        n = int.from_bytes(interleaved[i + 2:i + 4], "big")
        out.append(interleaved[i + 4:i + 4 + n])
        i += 4 + n
    return out


def test_an_access_unit_comes_back_whole_through_the_edges_depacketiser():
    sps, pps = b"\x67\x4d\x00\x1f" + b"\x11" * 8, b"\x68\xee\x3c\x80"
    idr = b"\x65" + bytes(range(256)) * 20  # 5121 bytes: four FU-A fragments
    p_slice = b"\x41" + b"\x22" * 500  # one packet
    data, seq = packetise([sps, pps, idr], 65534, 3600, 7)  # the sequence number wraps inside the unit
    data2, seq2 = packetise([p_slice], seq, 7200, 7)
    packets = _rtp_packets(data) + _rtp_packets(data2)
    assert seq == (65534 + 2 + 4) and seq2 == seq + 1
    assert all(len(p) <= 12 + 2 + RTP_PAYLOAD for p in packets)
    depacketizer = H264Depacketizer()
    units = [u for p in packets for u in depacketizer.push(p)]
    assert [(u.nals, u.keyframe, u.damaged) for u in units] == [([sps, pps, idr], True, False),
                                                                 ([p_slice], False, False)]
    assert depacketizer.lost_packets == 0 and [u.timestamp for u in units] == [3600, 7200]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from streams.camera_server import make_test_clip

    clip = make_test_clip(tmp_path_factory.mktemp("light") / "clip.mp4", seconds=2, fps=10)
    units, sps, pps, fps = load_clip(str(clip))
    assert fps == 10 and len(units) == 20 and units[0].keyframe and sps[0] & 0x1F == 7 and pps[0] & 0x1F == 8
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.light_rtsp_server", "--clip", str(clip), "--mounts", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[0] == "READY"
    yield proc, int(line[1])
    proc.stdin.close()  # it ends with its stdin
    assert proc.wait(10) == 0


@pytest.mark.integration
@pytest.mark.parametrize("client", ["native", "ffmpeg"])
def test_both_clients_grab_a_keyframe(server, client):
    from streams.snapshot_rtsp import RtspSnapshotGrabber

    _, port = server
    image = RtspSnapshotGrabber(f"rtsp://127.0.0.1:{port}/p1", "tcp", client, 5, 5).grab()
    assert image.shape == (360, 640, 3) and image.dtype == np.uint8 and image.std() > 10


@pytest.mark.integration
def test_a_stream_plays_at_the_clips_pace_and_an_unknown_mount_is_a_404(server):
    from streams.decode_plan import DecodePlan
    from streams.rtsp import StreamOpenError
    from streams.rtsp_native import NativeRtspReader

    _, port = server
    reader = NativeRtspReader(f"rtsp://127.0.0.1:{port}/p0", open_timeout_s=5, read_timeout_s=3)
    times = []
    try:
        for _ in reader.planned_frames(DecodePlan(0.5)):  # a frame every 0.5 s of the stream
            times.append(time.monotonic())
            if len(times) == 5:
                break
    finally:
        reader.close()
    assert 1.5 < times[-1] - times[0] < 2.6  # four half-seconds: live pace, not as fast as it can send
    with pytest.raises(StreamOpenError, match="404"):
        NativeRtspReader(f"rtsp://127.0.0.1:{port}/nope", open_timeout_s=3, read_timeout_s=3).open()
