"""A JPEG's structure read without decoding its image data (ITU-T T.81, annex B).

An edge event's images come from the box's own encoder, over HTTP with a declared length:
what goes wrong with them on the way is a cut (a lost connection, a full disk on the box).
Decoding a 1280x720 frame to check it cost 1.2-1.4 ms of the API's CPU per event, a quarter
of the whole, and libjpeg does not refuse damaged image data anyway: it warns and paints grey.
This reads every marker segment and the headers a decoder needs (frame, quantisation and
Huffman tables, scans, checked as libjpeg checks them), and finds the end of every scan with a
C search for its 0xFF bytes (~1 byte in 250): ~0.05 ms. Of 400 frames with random bytes
changed (half of them in the headers), decoding refused 209: one for its size, which the
header check before either refuses, and 208 that this refuses too; it accepted the other 191,
and so does this (tests/api/test_jpeg_structure.py keeps that property). Photos from people
(citizens, workers) are still decoded whole (api/images.py).
"""

from __future__ import annotations

SOI, EOI, SOS, DQT, DHT = 0xD8, 0xD9, 0xDA, 0xDB, 0xC4
# Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
SOF = frozenset(range(0xC0, 0xD0)) - {DHT, 0xC8, 0xCC}
TRUNCATED = "ends before its end-of-image marker (truncated)"


def jpeg_structure_problem(data: bytes) -> str | None:
    """What is wrong with the JPEG's structure, or None when every segment is whole and
    usable, the frame header and the tables a scan uses come before it, and the last scan
    ends with EOI. Bytes after EOI are allowed, as decoders allow them."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != SOI:
        return "does not start with a JPEG start-of-image marker"
    pos, end, scans = 2, len(data), 0
    components: dict[int, int] | None = None  # the frame's component ids → quantisation table
    frame_marker = 0
    quant_tables: set[int] = set()
    huffman_tables: set[tuple[int, int]] = set()  # (0 for DC / 1 for AC, id)
    while True:
        while pos + 2 <= end and data[pos] == 0xFF and data[pos + 1] == 0xFF:  # fill before a marker
            pos += 1
        if pos + 2 > end:
            return TRUNCATED
        if data[pos] != 0xFF:
            return f"a marker was expected at byte {pos}"
        marker = data[pos + 1]
        if marker == EOI:
            return None if scans else "ends before any image data"
        if marker == SOI or 0xD0 <= marker <= 0xD7 or marker < 0xC0:  # below C0: reserved, or TEM
            return f"marker 0x{marker:02X} out of place at byte {pos}"
        if pos + 4 > end:
            return TRUNCATED
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        body, following = pos + 4, pos + 2 + length
        if following > end:
            return TRUNCATED
        if length < 2:
            return f"bad segment length at byte {pos}"
        segment = data[body:following]
        problem = None
        if marker in SOF:
            problem = "a second frame header" if components is not None else None
            components, frame_marker = _frame_components(segment), marker
            if components is None:
                problem = "a frame header a decoder cannot use"
        elif marker == DQT:
            problem = _read_quant_tables(segment, quant_tables)
        elif marker == DHT:
            problem = _read_huffman_tables(segment, huffman_tables)
        elif marker == SOS:
            problem = _scan_header_problem(segment, components, quant_tables) or \
                _scan_tables_problem(segment, frame_marker, huffman_tables)
            if problem is None:
                following = _scan_end(data, following)
                if following < 0:
                    return "ends inside its image data (truncated)"
                scans += 1
        if problem is not None:
            return problem
        pos = following


def _frame_components(segment: bytes) -> dict[int, int] | None:
    if len(segment) < 6 or len(segment) != 6 + 3 * segment[5] or segment[5] not in (1, 2, 3, 4):
        return None
    height, width = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big")
    if segment[0] not in (8, 12) or height == 0 or width == 0:
        return None
    components: dict[int, int] = {}
    for at in range(6, len(segment), 3):
        ident, sampling, table = segment[at:at + 3]
        if ident in components or not (1 <= sampling >> 4 <= 4 and 1 <= sampling & 15 <= 4) or table > 3:
            return None
        components[ident] = table
    return components


def _read_quant_tables(segment: bytes, defined: set[int]) -> str | None:
    at = 0
    while at < len(segment):
        precision, table = segment[at] >> 4, segment[at] & 15
        if precision > 1 or table > 3:
            return "a quantisation table a decoder cannot use"
        defined.add(table)
        at += 65 if precision == 0 else 129
    return None if at == len(segment) > 0 else "quantisation tables of the wrong length"


def _read_huffman_tables(segment: bytes, defined: set[tuple[int, int]]) -> str | None:
    """Each table: its class and id, 16 code counts, then as many symbols as they add up to;
    the counts must leave room in the code space, as libjpeg requires."""
    at = 0
    while at < len(segment):
        kind, table = segment[at] >> 4, segment[at] & 15
        counts = segment[at + 1:at + 17]
        if kind > 1 or table > 3 or len(counts) < 16:
            return "a Huffman table a decoder cannot use"
        code = 0
        for bits in range(1, 17):
            if counts[bits - 1]:
                code += counts[bits - 1]
                if code >= 1 << bits:
                    return "a Huffman table with more codes than its lengths allow"
            code <<= 1
        symbols = segment[at + 17:at + 17 + sum(counts)]
        if len(symbols) < sum(counts) or (kind == 0 and any(s > 15 for s in symbols)):
            return "a Huffman table a decoder cannot use"
        defined.add((kind, table))
        at += 17 + len(symbols)
    return None if at == len(segment) > 0 else "Huffman tables of the wrong length"


def _scan_header_problem(segment: bytes, components: dict[int, int] | None, quant_tables: set[int]) -> str | None:
    if components is None:
        return "image data before its frame header"
    if not segment or segment[0] not in (1, 2, 3, 4) or len(segment) != 4 + 2 * segment[0]:
        return "a scan header a decoder cannot use"
    for at in range(1, 1 + 2 * segment[0], 2):
        ident, tables = segment[at], segment[at + 1]
        if ident not in components or tables >> 4 > 3 or tables & 15 > 3:
            return "a scan header a decoder cannot use"
        if components[ident] not in quant_tables:
            return "image data before its quantisation tables"
    return None


def _scan_tables_problem(segment: bytes, frame_marker: int, defined: set[tuple[int, int]]) -> str | None:
    """The Huffman tables the scan decodes with must be defined, if the file defines any: a
    file without (Motion JPEG's habit) gets the standard tables from the decoder. A sequential
    scan uses a DC and an AC table per component; a progressive one, a DC table in its first
    DC scan and an AC table in its AC scans; arithmetic coding (C9-CF) none."""
    if not defined or frame_marker >= 0xC9:
        return None
    progressive = frame_marker in (0xC2, 0xC6)
    first_coefficient, refining = segment[-3], segment[-1] >> 4
    for at in range(1, 1 + 2 * segment[0], 2):
        dc, ac = segment[at + 1] >> 4, segment[at + 1] & 15
        if (not progressive or (first_coefficient == 0 and refining == 0)) and (0, dc) not in defined \
                or (not progressive or first_coefficient > 0) and (1, ac) not in defined:
            return "image data coded with a Huffman table that is not defined"
    return None


def _scan_end(data: bytes, start: int) -> int:
    """Where the marker that ends the scan data from `start` begins, or -1. Inside scan data a
    0xFF byte is followed by 0x00 (a stuffed byte) or a restart marker (D0-D7)."""
    find = data.find
    at = find(b"\xff", start)
    while at >= 0:
        following = data[at + 1:at + 2]
        if not following:
            return -1
        if following != b"\x00" and not b"\xd0" <= following <= b"\xd7":
            return at  # 0xFF fill bytes before the marker are skipped by the caller
        at = find(b"\xff", at + 2)
    return -1
