"""A fake ONVIF camera for the probe's tests: the device and media services over SOAP 1.2
(GetSystemDateAndTime, GetServices, GetCapabilities, GetProfiles, GetStreamUri,
GetSnapshotUri), WS-Security UsernameToken digest checked like a camera does."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = ('xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
      'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" '
      'xmlns:ter="http://www.onvif.org/ver10/error"')


def envelope(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope {NS}><s:Body>{body}</s:Body></s:Envelope>'.encode()


FAULT = envelope('<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value>'
                 '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">Sender not Authorized</s:Text></s:Reason>'
                 '</s:Fault>')


class FakeOnvifCamera:
    def __init__(self, user: str = "admin", password: str = "secret", rtsp_port: int = 554, snapshot: bool = True):
        self.user, self.password, self.rtsp_port, self.snapshot = user, password, rtsp_port, snapshot
        self.actions: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/device_service"

    def __enter__(self) -> "FakeOnvifCamera":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                status, answer = outer.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _authorised(self, body: str) -> bool:
        user = re.search(r"<(?:\w+:)?Username>([^<]*)<", body)
        digest = re.search(r"<(?:\w+:)?Password[^>]*>([^<]*)<", body)
        nonce = re.search(r"<(?:\w+:)?Nonce[^>]*>([^<]*)<", body)
        created = re.search(r"<(?:\w+:)?Created[^>]*>([^<]*)<", body)
        if not (user and digest and nonce and created) or user.group(1) != self.user:
            return False
        expected = base64.b64encode(hashlib.sha1(base64.b64decode(nonce.group(1)) + created.group(1).encode()
                                                 + self.password.encode()).digest()).decode()
        return digest.group(1) == expected

    def answer(self, body: str) -> tuple[int, bytes]:
        action = re.search(r"<(?:s|soap-env|env|\w+):Body[^>]*>\s*<(?:\w+:)?(\w+)", body)
        name = action.group(1) if action else "?"
        self.actions.append(name)
        base = f"http://127.0.0.1:{self.port}"
        if name == "GetSystemDateAndTime":  # answered without credentials, as cameras do
            now = datetime.now(timezone.utc)
            return 200, envelope(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
                "<tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time>"
                f"<tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute><tt:Second>{now.second}</tt:Second>"
                f"</tt:Time><tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month>"
                f"<tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
                "</tds:GetSystemDateAndTimeResponse>")
        if not self._authorised(body):
            return 400, FAULT
        if name == "GetServices":
            services = "".join(
                f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}{path}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                for ns, path in (("http://www.onvif.org/ver10/device/wsdl", "/onvif/device_service"),
                                 ("http://www.onvif.org/ver10/media/wsdl", "/onvif/media_service")))
            return 200, envelope(f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>")
        if name == "GetCapabilities":
            return 200, envelope(
                f"<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>{base}/onvif/media_service"
                "</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true"
                "</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>")
        if name == "GetProfiles":
            profiles = "".join(
                f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{label}</tt:Name>'
                f'<tt:VideoEncoderConfiguration token="enc-{token}"><tt:Name>enc</tt:Name><tt:UseCount>1</tt:UseCount>'
                f"<tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height>"
                "</tt:Resolution><tt:Quality>5</tt:Quality></tt:VideoEncoderConfiguration></trt:Profiles>"
                for token, label, w, h in (("Profile_1", "mainStream", 1920, 1080), ("Profile_2", "subStream", 640, 360)))
            return 200, envelope(f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>")
        token = re.search(r"ProfileToken>([^<]*)<", body)
        channel = "101" if token and token.group(1) == "Profile_1" else "102"
        if name == "GetStreamUri":
            return 200, envelope(
                f"<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://127.0.0.1:{self.rtsp_port}/Streaming/"
                f"Channels/{channel}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
                "</trt:GetStreamUriResponse>")
        if name == "GetSnapshotUri" and self.snapshot:
            return 200, envelope(
                f"<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>{base}/ISAPI/Streaming/channels/{channel}/picture"
                "</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
                "</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>")
        return 400, envelope('<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>ter:ActionNotSupported'
                             '</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">not supported</s:Text>'
                             '</s:Reason></s:Fault>')
