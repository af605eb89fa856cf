"""H.264 over RTP (RFC 6184) back to access units, in the order the camera sent them.

Packetization modes 0 and 1 only, which is what cameras send: single NAL units, STAP-A
aggregates and FU-A fragments. An access unit ends at the RTP marker bit or when the RTP
timestamp changes. A unit with a sequence gap inside it is damaged and marked so; the
decoder would only make a smeared frame of it.
"""

from __future__ import annotations

from dataclasses import dataclass

START_CODE = b"\x00\x00\x00\x01"
NAL_IDR, NAL_SPS, NAL_PPS = 5, 7, 8
_STAP_A, _FU_A = 24, 28


@dataclass(slots=True)
class AccessUnit:
    nals: list[bytes]  # each without a start code
    timestamp: int  # RTP clock, unwrapped (keeps growing past 2**32)
    keyframe: bool  # holds an IDR slice
    damaged: bool  # an RTP packet inside it was lost

    def annex_b(self, parameter_sets: list[bytes] = ()) -> bytes:
        """The unit as the byte stream a decoder reads. A keyframe that lacks SPS or PPS gets
        the latest ones first: some cameras announce them only in the SDP, others send them
        as units of their own, which a reader that skips non-keyframes never decodes."""
        have = {n[0] & 0x1F for n in self.nals}
        extra = [p for p in parameter_sets if (p[0] & 0x1F) not in have] if self.keyframe else []
        return START_CODE + START_CODE.join(extra + self.nals)


# Bytes of one access unit: a 4K I-frame at high quality is 1-2 MB.
MAX_UNIT_BYTES = 8 * 2**20


class H264Depacketizer:
    def __init__(self, parameter_sets: list[bytes] = ()) -> None:
        self._sets = {p[0] & 0x1F: p for p in parameter_sets if p and p[0] & 0x1F in (NAL_SPS, NAL_PPS)}
        self._nals: list[bytes] = []
        self._fragment: bytearray | None = None
        self._keyframe = self._damaged = False
        self._timestamp: int | None = None  # RTP timestamp of the unit being built
        self._last_seq: int | None = None
        self._last_raw_ts: int | None = None
        self._last_ts = 0  # the last timestamp, unwrapped
        self._unit_bytes = 0
        self.lost_packets = 0
        self.unsupported_packets = 0
        self.late_packets = 0  # reordered or repeated: dropped, their unit has moved on
        self.oversized_units = 0  # dropped past MAX_UNIT_BYTES: a unit that never ended

    def push(self, packet: bytes) -> list[AccessUnit]:
        """One RTP packet in; the access units it completes out (usually none or one)."""
        if len(packet) < 13 or packet[0] >> 6 != 2:
            self.unsupported_packets += 1
            return []
        seq = packet[2] << 8 | packet[3]
        raw_ts = int.from_bytes(packet[4:8], "big")
        header = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10 and header + 4 <= len(packet):  # extension: 4 bytes + its length in words
            header += 4 + 4 * (packet[header + 2] << 8 | packet[header + 3])
        end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)  # padding
        if header >= end:
            self.unsupported_packets += 1
            return []
        missing = 0 if self._last_seq is None else (seq - self._last_seq - 1) & 0xFFFF
        if missing >= 0x8000:  # at or before the last one (a 16-bit difference below zero): late
            self.late_packets += 1
            return []
        timestamp = self._unwrap(raw_ts)

        gap = missing > 0
        if gap:  # the lost packets belonged to the unit being built, the next one, or both
            self.lost_packets += missing
            self._damaged, self._fragment = True, None
        done: list[AccessUnit] = []
        if self._timestamp is not None and timestamp != self._timestamp and (self._nals or self._fragment is not None):
            done += self._finish()  # the marker was lost: a new timestamp starts a new unit
            self._damaged = gap
        self._last_seq = seq
        self._timestamp = timestamp
        self._payload(packet[header:end])
        if packet[1] & 0x80:  # marker: the last packet of this unit
            done += self._finish()
        return done

    def _unwrap(self, raw: int) -> int:
        # Relative to the last timestamp, by the signed 32-bit difference: a wrap moves on by
        # less than half the range, and a stamp a little before the last one is not a wrap.
        if self._last_raw_ts is None:
            self._last_ts = raw
        else:
            delta = (raw - self._last_raw_ts) & 0xFFFFFFFF
            self._last_ts += delta - (1 << 32) if delta >= 1 << 31 else delta
        self._last_raw_ts = raw
        return self._last_ts

    def _payload(self, p: bytes) -> None:
        kind = p[0] & 0x1F
        if 1 <= kind <= 23:
            self._add(p)
        elif kind == _STAP_A:
            i = 1
            while i + 2 <= len(p):
                size = p[i] << 8 | p[i + 1]
                if size == 0 or i + 2 + size > len(p):
                    self._damaged = True
                    break
                self._add(p[i + 2:i + 2 + size])
                i += 2 + size
        elif kind == _FU_A and len(p) > 2:
            fu = p[1]
            if fu & 0x80:  # start: rebuild the NAL header from the indicator and the FU header
                if self._over_cap(len(p) - 1):
                    return
                self._fragment = bytearray(((p[0] & 0xE0) | (fu & 0x1F),)) + p[2:]
            elif self._fragment is not None:
                if self._over_cap(len(p) - 2):
                    return
                self._fragment += p[2:]
            else:  # a middle or end without its start (lost): the unit is damaged
                self._damaged = True
                return
            if fu & 0x40:  # end
                self._add(bytes(self._fragment), counted=True)
                self._fragment = None
        else:  # STAP-B, MTAP, FU-B: interleaved mode, which cameras do not use
            self.unsupported_packets += 1

    @property
    def parameter_sets(self) -> list[bytes]:
        """The latest SPS and PPS seen (in the SDP or the stream)."""
        return [self._sets[k] for k in (NAL_SPS, NAL_PPS) if k in self._sets]

    def _over_cap(self, more: int) -> bool:
        """A unit past MAX_UNIT_BYTES never ends (a broken camera): drop it, so memory stays bounded."""
        self._unit_bytes += more
        if self._unit_bytes <= MAX_UNIT_BYTES:
            return False
        self.oversized_units += 1
        self._nals, self._fragment, self._damaged, self._unit_bytes = [], None, True, 0
        return True

    def _add(self, nal: bytes, counted: bool = False) -> None:
        if not counted and self._over_cap(len(nal)):
            return
        kind = nal[0] & 0x1F
        if kind == NAL_IDR:
            self._keyframe = True
        elif kind in (NAL_SPS, NAL_PPS):
            self._sets[kind] = nal
        self._nals.append(nal)

    def _finish(self) -> list[AccessUnit]:
        damaged = self._damaged or self._fragment is not None
        units = [AccessUnit(self._nals, self._timestamp or 0, self._keyframe, damaged)] if self._nals else []
        self._nals, self._fragment, self._unit_bytes = [], None, 0
        self._keyframe = self._damaged = False
        return units
