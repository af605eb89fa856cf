"""/docs and /redoc load nothing from a CDN and carry the review page's headers (issue 19, item 7):
FastAPI's pages loaded Swagger UI and ReDoc from jsDelivr without integrity, CSP or framing
protection, on the page where people paste their keys."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_their_own_files_with_a_strict_policy(sqlite_client, page):
    resp = sqlite_client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in resp.text  # no inline script: the policy could not allow it
    assets = re.findall(r'(?:src|href)="([^"]+)"', resp.text)
    assert assets and not [a for a in assets if "//" in a]  # nothing from another host
    for asset in assets:
        got = sqlite_client.get(urljoin(f"http://testserver{page}", asset))
        assert got.status_code == 200 and len(got.content) > 100, asset
        assert got.headers["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in got.headers
    spec = re.search(r'spec-url="([^"]+)"', resp.text)
    if spec:
        assert sqlite_client.get(urljoin(f"http://testserver{page}", spec.group(1))).status_code == 200
