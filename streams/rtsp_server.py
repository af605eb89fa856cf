#!/usr/bin/python3
"""A small RTSP camera server for tests, the demo and benchmarks (gst-rtsp-server).

Runs under the *system* Python, which has GObject introspection (the project's venv does not):

    /usr/bin/python3 streams/rtsp_server.py --port 8554 --mount street-1=/path/clip.mp4 [--mount …]

Each H.264 MP4 is served at rtsp://127.0.0.1:PORT/<name> (UDP or TCP-interleaved) as a *live*
camera that loops the clip forever, without decoding or re-encoding:

    player (one per mount, always running, paced by the clock):
        filesrc ! qtdemux ! h264parse ! appsink sync=true
        restarted on EOS (posted once the clock passes the end of the last frame, so the
        pace stays exact); the timestamps sent on continue from the end of the previous loop
    RTSP media (one per mount, shared by every client of that mount):
        appsrc is-live=true ! rtph264pay   (the player already parsed the stream into access units)

The player's access units are pushed into the media's appsrc with timestamps carried on from
the player's running time, so clients see monotonic RTP timestamps across loops. Because the
media is live it is not seekable: a client that joins (and sends `Range: npt=0-`) never
rewinds the stream for the others; it starts at the next keyframe, like a real camera.

Prints READY on stdout once listening. SIGTERM/SIGINT stop it cleanly.
Fault injection (for tests): SIGUSR1 toggles "frozen" on every mount; lines on stdin
`freeze [NAME]`, `resume [NAME]` freeze/resume one mount (or all). A frozen mount keeps its
RTSP sessions open but sends no media, like a camera whose encoder hung; on resume it sends
from the next keyframe. With --exit-on-stdin-eof it exits when stdin closes (what
streams/camera_server.py uses, so a crashed parent leaves no server behind).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
# GstApp gives appsrc/appsink their push_buffer/pull_sample methods, cheaper than emitting signals
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtsp, GstRtspServer  # noqa: E402,F401

CLOCK_NONE = Gst.CLOCK_TIME_NONE


def log(msg: str) -> None:
    print(f"rtsp_server: {msg}", file=sys.stderr, flush=True)


class Mount:
    """One looping clip and the live RTSP media (if any) its access units are pushed into."""

    def __init__(self, name: str, path: str):
        self.name, self.path = name, path
        self.frozen = False
        self.loops = 0
        self._loop_base = 0  # ns added to the player's running time: the end of the previous loop
        self._loop_end = 0
        self._lock = threading.Lock()
        self._outputs: list[dict] = []  # {"appsrc", "pipeline", "offset", "started"}
        self._resume_at_key = False
        self.caps: Gst.Caps | None = None
        self.player = Gst.parse_launch(
            "filesrc name=file ! qtdemux name=demux demux.video_0 ! h264parse ! "
            "video/x-h264,stream-format=avc,alignment=au ! "
            "appsink name=sink sync=true emit-signals=true max-buffers=4 drop=false"
        )
        self.player.get_by_name("file").set_property("location", path)
        sink = self.player.get_by_name("sink")
        sink.connect("new-sample", self._on_sample)
        bus = self.player.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    # -- the player --------------------------------------------------------------------
    def start(self, timeout_s: float = 10, offset_s: float = 0.0) -> None:
        """Preroll and play from `offset_s` into the clip (mod its length). Raises RuntimeError
        on a clip that cannot be played."""
        self.player.set_state(Gst.State.PAUSED)
        ret, _, _ = self.player.get_state(int(timeout_s * Gst.SECOND))
        if ret in (Gst.StateChangeReturn.FAILURE, Gst.StateChangeReturn.ASYNC):
            msg = self.player.get_bus().pop_filtered(Gst.MessageType.ERROR)
            detail = msg.parse_error()[0].message if msg else "preroll failed or timed out"
            self.stop()
            raise RuntimeError(f"mount {self.name}: cannot play {self.path}: {detail}")
        self.caps = self.player.get_by_name("sink").get_static_pad("sink").get_current_caps()
        if offset_s > 0:
            ok, duration = self.player.query_duration(Gst.Format.TIME)
            if ok and duration > 0:
                # An accurate (not key-unit) seek: mounts started at different offsets send
                # their keyframes at different moments, like independent cameras.
                target = int(offset_s * Gst.SECOND) % duration
                self.player.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE, target)
                self.player.get_state(int(timeout_s * Gst.SECOND))
        self.player.set_state(Gst.State.PLAYING)

    def stop(self) -> None:
        self.player.set_state(Gst.State.NULL)

    def _on_message(self, _bus, msg: Gst.Message) -> None:
        if msg.type == Gst.MessageType.EOS:
            # appsink posts EOS once the clock reaches the *end* of the last frame, so restarting
            # here keeps the pace exact. A flushing seek restarts the running time at 0; the
            # timestamps sent on continue from where this loop ended (self._loop_base).
            self.loops += 1
            self._loop_base = self._loop_end
            if not self.player.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0):
                log(f"mount {self.name}: cannot seek back to the start of {self.path}")
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            log(f"mount {self.name}: player error: {err.message} ({debug})")

    def _on_sample(self, sink) -> Gst.FlowReturn:
        sample = sink.pull_sample()
        if sample is None:
            return Gst.FlowReturn.EOS
        try:
            self._forward(sample)
        except Exception as exc:  # never let one bad buffer stop the camera
            log(f"mount {self.name}: dropped a buffer: {exc!r}")
        return Gst.FlowReturn.OK

    def _forward(self, sample: Gst.Sample) -> None:
        buf = sample.get_buffer()
        seg = sample.get_segment()
        if buf.pts == CLOCK_NONE:
            return
        pts = seg.to_running_time(Gst.Format.TIME, buf.pts)
        if pts == CLOCK_NONE:
            return  # outside the segment (clipped)
        dts = seg.to_running_time(Gst.Format.TIME, buf.dts) if buf.dts != CLOCK_NONE else CLOCK_NONE
        if dts == CLOCK_NONE or dts > pts:
            dts = pts
        pts, dts = pts + self._loop_base, dts + self._loop_base
        duration = buf.duration if buf.duration != CLOCK_NONE else 0
        self._loop_end = max(self._loop_end, pts + duration)
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            if self.frozen:
                self._resume_at_key = True
                return
            if self._resume_at_key:
                if not key:
                    return
                self._resume_at_key = False
            outputs = list(self._outputs)
        for out in outputs:
            if not out["started"]:
                if not key:
                    continue  # a new media starts at a keyframe, so its first client can decode at once
                out["offset"] = _running_time(out["pipeline"]) - dts
                out["started"] = True
            copy = buf.copy()  # shares the memory; only the metadata is new
            copy.pts = max(0, pts + out["offset"])
            copy.dts = max(0, dts + out["offset"])
            out["appsrc"].push_buffer(copy)

    # -- the RTSP side -------------------------------------------------------------------
    def attach(self, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        appsrc = element.get_by_name("src")
        appsrc.set_property("caps", self.caps)
        out = {"appsrc": appsrc, "pipeline": _pipeline_of(element), "offset": 0, "started": False}
        media.connect("unprepared", lambda m: self.detach(out))
        with self._lock:
            self._outputs.append(out)

    def detach(self, out: dict) -> None:
        with self._lock:
            if out in self._outputs:
                self._outputs.remove(out)

    def set_frozen(self, frozen: bool) -> None:
        with self._lock:
            if frozen != self.frozen:
                log(f"mount {self.name}: {'frozen' if frozen else 'resumed'}")
            self.frozen = frozen


def _pipeline_of(element: Gst.Element) -> Gst.Element:
    while element.get_parent() is not None:
        element = element.get_parent()
    return element


def _running_time(pipeline: Gst.Element | None) -> int:
    if pipeline is None:
        return 0
    clock = pipeline.get_clock()
    if clock is None:
        return 0
    return max(0, clock.get_time() - pipeline.get_base_time())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--mount", action="append", required=True, metavar="NAME=CLIP.mp4")
    parser.add_argument("--stagger", type=float, default=0.0, metavar="SECONDS",
                        help="start mount i this many seconds × i into its clip (keyframes out of step)")
    parser.add_argument("--unshared", action="store_true",
                        help="a media per client, not one per mount: clients that connect and leave every few "
                             "seconds (snapshot grabs) then never meet a shared media still being torn down (503)")
    parser.add_argument("--protocols", choices=["tcp+udp", "udp", "tcp"], default="tcp+udp",
                        help="the RTP transports offered: udp alone answers SETUP over TCP with 461, as VLC does")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (the parent process died): no orphaned servers")
    args = parser.parse_args()

    Gst.init(None)
    mounts: dict[str, Mount] = {}
    for spec in args.mount:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name:
            parser.error(f"--mount wants NAME=PATH, got {spec!r}")
        if not os.path.isfile(path):
            log(f"mount {name}: clip not found: {path}")
            return 2
        mounts[name] = Mount(name, os.path.abspath(path))

    try:
        for i, mount in enumerate(mounts.values()):
            mount.start(offset_s=i * args.stagger)
    except RuntimeError as exc:
        log(str(exc))
        return 2

    server = GstRtspServer.RTSPServer()
    # A client's DESCRIBE blocks its thread until the live media has prepared, which waits for
    # the next keyframe; with the default single client thread, 48 cameras joining at once
    # would queue behind each other for 48 GOPs and time out. One thread per client instead.
    server.get_thread_pool().set_max_threads(-1)
    # Snapshot grabs come in bursts (cameras that share a phase connect together); past the
    # default backlog of 5 the kernel drops their SYNs and each retries a second later, a delay
    # that real cameras, each with its own backlog, would not add to the box's figures.
    server.set_backlog(128)
    server.set_address(args.address)
    server.set_service(str(args.port))
    points = server.get_mount_points()
    lower = GstRtsp.RTSPLowerTrans
    protocols = {"tcp+udp": lower.TCP | lower.UDP, "udp": lower.UDP, "tcp": lower.TCP}[args.protocols]
    for name, mount in mounts.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=false "
            "max-buffers=16 leaky-type=downstream ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1 aggregate-mode=zero-latency )"
        )
        factory.set_shared(not args.unshared)  # one pipeline per mount, however many clients
        factory.set_protocols(protocols)
        factory.connect("media-configure", lambda _f, media, m=mount: m.attach(media))
        points.add_factory(f"/{name}", factory)

    if server.attach(None) == 0:
        log(f"cannot listen on {args.address}:{args.port}")
        return 1
    # A timeout source that cleans up sessions of clients that vanished without TEARDOWN.
    GLib.timeout_add_seconds(2, lambda: (server.get_session_pool().cleanup(), True)[1])

    loop = GLib.MainLoop()

    def toggle_all() -> bool:
        frozen = not all(m.frozen for m in mounts.values())
        for m in mounts.values():
            m.set_frozen(frozen)
        return True

    pending = bytearray()

    def on_stdin(fd, _cond) -> bool:
        data = os.read(fd, 4096)
        if not data:  # the parent closed stdin, or died
            if args.exit_on_stdin_eof:
                log("stdin closed: exiting")
                loop.quit()
            return False
        pending.extend(data)
        while b"\n" in pending:
            raw, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            command(raw.decode(errors="replace").strip())
        return True

    def command(line: str) -> None:
        cmd, _, target = line.partition(" ")
        chosen = [mounts[target]] if target in mounts else list(mounts.values()) if not target else []
        if cmd in ("freeze", "resume") and chosen:
            for m in chosen:
                m.set_frozen(cmd == "freeze")
        elif line:
            log(f"unknown command {line!r} (freeze|resume [NAME])")

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, lambda: (loop.quit(), False)[1])
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, toggle_all)
    if not sys.stdin.isatty():
        GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, on_stdin)

    print("READY", flush=True)
    try:
        loop.run()
    finally:
        for m in mounts.values():
            m.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
