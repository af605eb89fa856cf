"""GeoReport v2 XML, the format the standard requires: the same content as the JSON answers,
with the element names of the documentation's examples (`<services>`/`<service>`,
`<service_requests>`/`<request>`, `<errors>`/`<error>`, `<discovery>`, `<service_definition>`).

Written with the standard library's ElementTree, which escapes text; nothing is concatenated."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# A list under one of these names is written as repeated elements of the item name.
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
# Characters XML 1.0 cannot carry at all, even escaped (C0 controls but tab, CR, LF; surrogates;
# U+FFFE/U+FFFF). ElementTree writes them as they are, which makes the whole document unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in value.items():
            _fill(ET.SubElement(element, name), child)
    elif isinstance(value, list):
        item = ITEM_NAMES.get(element.tag)
        if item is None:
            raise ValueError(f"no item element name for a list in <{element.tag}>")
        for child in value:
            _fill(ET.SubElement(element, item), child)
    else:
        element.text = _text(value)


def to_xml(root: str, content: Any) -> bytes:
    """`content` as plain JSON-like data (dicts, lists, scalars) under the element `root`:
    UTF-8 with the XML declaration."""
    element = ET.Element(root)
    _fill(element, content)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
