"""`streetwatch camera probe URL`: registered by streetwatch_cli; the ONVIF client loads only
when a probe runs."""

from __future__ import annotations

import argparse
import sys


def _probe(args: argparse.Namespace) -> int:
    from streams.onvif_probe import ProbeError, _target, config_lines, probe

    try:
        profiles = probe(args.url, args.timeout)
    except ProbeError as exc:
        print(f"streetwatch camera probe: {exc}", file=sys.stderr)
        return 1
    if not profiles:
        print("streetwatch camera probe: the camera lists no media profiles", file=sys.stderr)
        return 1
    print(f"# {len(profiles)} profile(s); paste under cameras: in the edge config (add lat, lon, grid_id)")
    print(config_lines(profiles, _target(args.url)[0], args.show_password))
    return 0


def add_camera_commands(sub: argparse._SubParsersAction) -> None:
    camera = sub.add_parser("camera", help="cameras").add_subparsers(dest="camera_command", required=True)
    s = camera.add_parser("probe", help="ask a camera (ONVIF device service) for its profiles, RTSP and snapshot "
                                        "URIs and print the config lines to paste")
    s.add_argument("url", help="http://user:pass@HOST[:PORT] (the ONVIF device service; port 80 by default)")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer")
    s.add_argument("--show-password", action="store_true", help="print the password in the URLs (masked otherwise)")
    s.set_defaults(func=_probe)
