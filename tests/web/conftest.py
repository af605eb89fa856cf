"""Browser tests of the review page: a real API server (uvicorn, SQLite, local evidence folder)
seeded through its own API, and Debian's Chromium driven by Playwright (no browser download).

Screenshots go to var/screenshots/web/; with STREETWATCH_DOC_SCREENSHOTS=1 the queue, detail
and dashboard shots are also written to docs/screenshots/ for the README."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from api.auth import create_key
from api.db import get_engine, upgrade_database
from api.keepalive import SERVER_KEEP_ALIVE_S
from api.models import Order, Role
from tests.web.seed import Api, bearer, full_story

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("STREETWATCH_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "var" / "screenshots" / "web"
DOC_SHOTS = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    """The running server, clients per role, and what was seeded."""

    api: Api
    url: str
    database_url: str
    reviewer_key: str
    story_order: int  # an order with every kind of evidence, a report, a timeline and a comment
    picker_worker: tuple[int, str]  # an off-duty worker the reviewer can pick (id, name)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web")
    database_url = f"sqlite:///{tmp / 'sw.db'}"
    upgrade_database(database_url)
    with Session(get_engine(database_url)) as s:
        keys = {role: create_key(s, f"web-{role}", Role(role)) for role in ("admin", "reviewer", "edge")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    env.update(STREETWATCH_DATABASE_URL=database_url, STREETWATCH_EVIDENCE_DIR=str(tmp / "evidence"),
               STREETWATCH_SECRET_KEY="web-test-secret-key-0123456789abcdef", STREETWATCH_SWEEP_INTERVAL_SECONDS="0",
               STREETWATCH_EXPORT_DIR=str(tmp / "exports"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "wb")
    # The server keeps idle connections longer than httpx's pool does (5 s), as `api serve`
    # does: at uvicorn's own 5 s both sides dropped them together, and a request sent on one
    # the server was closing failed ("Server disconnected without sending a response").
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--no-access-log", "--timeout-keep-alive", str(SERVER_KEEP_ALIVE_S)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(proc, url, tmp / "server.log")
        clients = {role: httpx.Client(base_url=url, headers=bearer(key), timeout=30) for role, key in keys.items()}
        api = Api(url, clients["admin"], clients["reviewer"], clients["edge"])
        assert api.admin.post("/api/v1/grids", json={"id": "g-1", "name": "南京东路网格",
                                                     "supervisor": "张主任"}).status_code == 201
        picker = api.worker("王师傅", ["g-1"], on_duty=False)
        story_worker = api.worker("李师傅", ["g-1"], on_duty=False)
        _, worker_key = api.key("worker", "li", worker_id=story_worker)
        # The queue: new camera orders that no on-duty worker could take, one of them late.
        for n, issue in [(1, "street_vending"), (2, "clutter"), (3, "flooding"), (4, "clutter"), (5, "street_vending")]:
            order_id = api.sight(f"cam-{n}", issue, seed=n)
            if issue == "flooding":
                set_order_late(database_url, order_id)
        story = full_story(api, "cam-7", story_worker, worker_key)
        false_alarm = api.sight("cam-8", "clutter", seed=8)
        assert api.reviewer.post(f"/api/v1/orders/{false_alarm}/reject",
                                 json={"reason": "not_an_issue", "note": "路边停放的三轮车"}).status_code == 200
        yield World(api, url, database_url, keys["reviewer"], story, (picker, "王师傅"))
        for client in clients.values():
            client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def set_order_late(database_url: str, order_id: int) -> None:
    """As if the order had waited past its SLA."""
    with Session(get_engine(database_url)) as s:
        order = s.get(Order, order_id)
        assert order is not None
        order.sla_due_at = datetime.now(timezone.utc) - timedelta(minutes=30)
        s.add(order)
        s.commit()


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"API server did not answer /healthz:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module, not session: while sync_playwright is open, this thread has a running asyncio loop,
    # and every asyncio.run() in a later test fails ("cannot be called from a running event
    # loop"). Last in the suite that went unnoticed; under pytest-xdist other modules follow.
    # Missing pieces fail rather than skip: a CI run without its browser must not pass quietly.
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]' (scripts/bootstrap.sh does)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/bootstrap.sh does)")
    sync_api.expect.set_options(timeout=15_000)  # a shared 2-core machine can be slow to paint
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-dev-shm-usage", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, world: World) -> Iterator[object]:
    """A fresh browser context (empty sessionStorage and localStorage) per test; JavaScript
    errors and CSP violations fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=world.url, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    # Chromium logs every 4xx answer as "Failed to load resource"; the tests provoke some on purpose.
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    yield page
    context.close()
    assert not errors, errors


def screenshot(page, name: str, doc: bool = False) -> Path:
    """Keep a screenshot as a test artifact; doc shots also go to docs/screenshots/ when asked."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc and os.environ.get("STREETWATCH_DOC_SCREENSHOTS"):
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SHOTS / f"{name}.png"), full_page=False)
    return path
