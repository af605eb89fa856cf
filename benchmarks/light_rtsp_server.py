"""A light RTSP camera server for the benchmarks: H.264 over TCP (interleaved RTP), from a clip
packetised on the fly from access units read once, so that hundreds of streaming cameras cost
the box's cores little (gst-rtsp-server spends about as much per streaming camera as the box
spends reading it, which made the test cameras, not the box, the limit of `stream` mode).

    python -m benchmarks.light_rtsp_server --clip CLIP.mp4 --mounts 8 --stagger 0.37
    → prints `READY PORT`; cameras at rtsp://127.0.0.1:PORT/p0 … p7; exits when stdin closes

Each mount loops the clip at its frame rate, paced by the clock, mount k starting k × stagger
seconds into it, and packetises each access unit once (RFC 6184: single NAL units and FU-A;
SPS and PPS before every IDR, as gst's `config-interval=-1`), then writes the same bytes to
every client playing it: one RTP stream per mount, like a shared media. A client joins at the
mount's next keyframe, and a client that does not keep up (more than 2 MB unsent) is dropped
back to waiting for a keyframe, like a camera's encoder queue. Only what the edge's own client
and FFmpeg send is understood: OPTIONS, DESCRIBE, SETUP (TCP), PLAY, GET_PARAMETER, TEARDOWN.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import struct
import sys
from dataclasses import dataclass

RTP_PAYLOAD = 1400  # bytes of NAL per RTP packet: FU-A beyond
HIGH_WATER = 2 * 2**20  # unsent bytes for one client before it waits for the next keyframe


@dataclass
class AccessUnit:
    nals: list[bytes]
    keyframe: bool


def load_clip(path: str) -> tuple[list[AccessUnit], bytes, bytes, float]:
    """The clip's access units (NAL units split from MP4's length prefixes), SPS, PPS and fps."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        sps, pps, size = _avcc(bytes(stream.codec_context.extradata or b""))
        fps = float(stream.average_rate or 25)
        units = []
        for packet in container.demux(stream):
            data = bytes(packet)
            if not data:
                continue
            nals, i = [], 0
            while i + size <= len(data):
                n = int.from_bytes(data[i:i + size], "big")
                nals.append(data[i + size:i + size + n])
                i += size + n
            units.append(AccessUnit(nals, bool(packet.is_keyframe)))
    if not units or not any(u.keyframe for u in units):
        raise ValueError(f"{path}: no H.264 keyframe")
    return units, sps, pps, fps


def _avcc(extradata: bytes) -> tuple[bytes, bytes, int]:
    """SPS, PPS and the NAL length size of an MP4's avcC box."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an H.264 MP4 (no avcC)")
    size = (extradata[4] & 3) + 1
    i, sps = 6, b""
    for _ in range(extradata[5] & 0x1F):
        n = int.from_bytes(extradata[i:i + 2], "big")
        sps = sps or extradata[i + 2:i + 2 + n]
        i += 2 + n
    pps = b""
    for _ in range(extradata[i]):
        n = int.from_bytes(extradata[i + 1:i + 3], "big")
        pps = pps or extradata[i + 3:i + 3 + n]
        i += 2 + n
    return sps, pps, size


def packetise(nals: list[bytes], seq: int, ts: int, ssrc: int) -> tuple[bytes, int]:
    """One access unit as interleaved RTP on channel 0; the next sequence number."""
    payloads: list[bytes] = []
    for nal in nals:
        if len(nal) <= RTP_PAYLOAD:
            payloads.append(nal)
            continue
        indicator, kind = (nal[0] & 0xE0) | 28, nal[0] & 0x1F
        body = nal[1:]
        for start in range(0, len(body), RTP_PAYLOAD):
            flags = (0x80 if start == 0 else 0) | (0x40 if start + RTP_PAYLOAD >= len(body) else 0)
            payloads.append(bytes((indicator, flags | kind)) + body[start:start + RTP_PAYLOAD])
    out = bytearray()
    for k, payload in enumerate(payloads):
        marker = 0x80 if k == len(payloads) - 1 else 0
        rtp = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload
        out += b"$\x00" + struct.pack("!H", len(rtp)) + rtp
        seq += 1
    return bytes(out), seq


class Mount:
    def __init__(self, name: str, units: list[AccessUnit], sps: bytes, pps: bytes, fps: float, offset: int):
        self.name, self.units, self.sps, self.pps, self.fps = name, units, sps, pps, fps
        self.pos = offset % len(units)
        self.seq, self.ts, self.ssrc = int.from_bytes(os.urandom(2), "big"), 0, int.from_bytes(os.urandom(4), "big")
        self.clients: dict[asyncio.Transport, bool] = {}  # transport → waiting for a keyframe

    def tick(self) -> None:
        unit = self.units[self.pos]
        self.pos = (self.pos + 1) % len(self.units)
        self.ts += round(90000 / self.fps)
        if not self.clients:
            return
        nals = [self.sps, self.pps] + unit.nals if unit.keyframe else unit.nals
        data, self.seq = packetise(nals, self.seq, self.ts, self.ssrc)
        for transport, waiting in list(self.clients.items()):
            if transport.is_closing():
                self.clients.pop(transport, None)
            elif waiting and not unit.keyframe:
                continue
            elif transport.get_write_buffer_size() > HIGH_WATER:
                self.clients[transport] = True
            else:
                self.clients[transport] = False
                transport.write(data)

    def sdp(self) -> str:
        sets = ",".join(base64.b64encode(x).decode() for x in (self.sps, self.pps))
        profile = self.sps[1:4].hex() if len(self.sps) >= 4 else "42e01f"
        return ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=streetwatch bench\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                f"a=fmtp:96 packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={sets}\r\n"
                "a=control:*\r\n")


class RtspConnection(asyncio.Protocol):
    def __init__(self, mounts: dict[str, Mount]):
        self.mounts, self.buf, self.mount = mounts, bytearray(), None
        self.session = os.urandom(4).hex()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.mount is not None:
            self.mount.clients.pop(self.transport, None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.buf:
            if self.buf[0] == 0x24:  # interleaved data from the client (RTCP): skipped
                if len(self.buf) < 4 or len(self.buf) < 4 + int.from_bytes(self.buf[2:4], "big"):
                    return
                del self.buf[:4 + int.from_bytes(self.buf[2:4], "big")]
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head = self.buf[:end].decode("latin-1")
            del self.buf[:end + 4]
            self._answer(head)

    def _answer(self, head: str) -> None:
        lines = head.split("\r\n")
        method, url = (lines[0].split(" ") + ["", ""])[:2]
        cseq = next((line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("cseq:")), "0")
        path = re.sub(r"^rtsp://[^/]+", "", url).strip("/").split("/")[0]
        mount = self.mounts.get(path)
        headers, body, status = {}, "", "200 OK"
        if method == "OPTIONS":
            headers["Public"] = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"
        elif method in ("GET_PARAMETER", "SET_PARAMETER", "TEARDOWN"):
            if method == "TEARDOWN" and self.mount is not None:
                self.mount.clients.pop(self.transport, None)
        elif mount is None:
            status = "404 Not Found"
        elif method == "DESCRIBE":
            body = mount.sdp()
            headers.update({"Content-Type": "application/sdp", "Content-Base": f"{url.rstrip('/')}/"})
        elif method == "SETUP":
            transport = next((line.split(":", 1)[1] for line in lines if line.lower().startswith("transport:")), "")
            if "TCP" not in transport.upper():
                status = "461 Unsupported Transport"
            else:
                headers.update({"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                                "Session": f"{self.session};timeout=60"})
        elif method == "PLAY":
            headers.update({"Session": self.session, "Range": "npt=0.000-"})
        else:
            status = "405 Method Not Allowed"
        reply = [f"RTSP/1.0 {status}", f"CSeq: {cseq}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.transport.write(("\r\n".join(reply) + f"\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
        if method == "PLAY" and status.startswith("200"):
            self.mount = mount
            mount.clients[self.transport] = True  # from its next keyframe


async def serve(clip: str, mounts: int, stagger_s: float, port: int) -> None:
    units, sps, pps, fps = load_clip(clip)
    table = {f"p{k}": Mount(f"p{k}", units, sps, pps, fps, round(k * stagger_s * fps)) for k in range(mounts)}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RtspConnection(table), "127.0.0.1", port, backlog=128)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    stdin_closed = loop.create_future()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):  # the parent closed it, or died
            loop.remove_reader(sys.stdin.fileno())
            stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    step, next_at = 1 / fps, loop.time()
    while not stdin_closed.done():
        for mount in table.values():
            mount.tick()
        next_at += step
        if next_at < loop.time() - 1:  # fell a second behind: skip ahead rather than burst
            next_at = loop.time()
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--mounts", type=int, default=8)
    parser.add_argument("--stagger", type=float, default=0.37, help="seconds between mounts' places in the clip")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.clip, args.mounts, args.stagger, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
