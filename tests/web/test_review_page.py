"""The review page in a real browser against a real server: log in, confirm (dispatch) and
reject orders from the queue, switch language, open an order's detail and the dashboard.
Every action is checked through the JSON API, not only on screen."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.web.conftest import World, screenshot


def login(page: Page, key: str) -> None:
    page.goto("/review/")
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#cards[data-loaded=true]")).to_be_visible()


def card(page: Page, order_id: int):
    return page.locator(f'.card[data-order-id="{order_id}"]')


def images_loaded(page: Page, selector: str) -> None:
    """Wait until every image under the selector has loaded a real picture (a broken or
    refused evidence URL never gets a natural width)."""
    page.wait_for_function(
        """sel => { const imgs = [...document.querySelectorAll(sel)];
                    return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=selector)


def test_root_redirects_to_the_page_and_nothing_comes_from_elsewhere(world: World) -> None:
    resp = httpx.get(f"{world.url}/", follow_redirects=False)
    assert resp.status_code in (302, 307) and resp.headers["location"] == "/review/"
    page = httpx.get(f"{world.url}/review/")
    assert "Content-Security-Policy" in page.text and "default-src 'self'" in page.text
    # as headers too: only a header can forbid framing (clickjacking the reviewer's buttons)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    for asset in ("app.js", "i18n.js", "charts.js", "style.css"):
        body = httpx.get(f"{world.url}/review/{asset}")
        assert body.status_code == 200, asset
        assert "http://" not in body.text.replace("http://www.w3.org/2000/svg", "") and "https://" not in body.text


def test_login_refuses_a_bad_key_then_shows_the_review_queue(page: Page, world: World) -> None:
    page.goto("/")
    expect(page).to_have_url(f"{world.url}/review/#/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.fill("#login-key", "sw_not-a-key")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("密钥无效或已吊销。")
    _, edge_key = world.api.key("edge", "an-edge-box")
    page.fill("#login-key", edge_key)
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("此密钥的角色（edge）不能审核工单，请使用审核员或管理员密钥。")
    assert page.evaluate("sessionStorage.getItem('streetwatch.key')") is None

    page.fill("#login-key", world.reviewer_key)
    page.click("#login-submit")
    expect(page.locator("#cards[data-loaded=true]")).to_be_visible()
    needs_review = world.api.orders(state="reported")["data"] + world.api.orders(state="reopened")["data"]
    assert needs_review, "the seed leaves orders to review"
    shown = [int(x) for x in page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.orderId)")]
    assert sorted(shown) == sorted(o["id"] for o in needs_review)
    assert set(page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.state)")) <= {"reported", "reopened"}
    # The late flooding order comes first (soonest SLA deadline) and says it is overdue.
    first = page.locator(".card").first
    expect(first.locator(".badge.overdue")).to_be_visible()
    images_loaded(page, ".card img.evidence")
    width = page.locator(".card img.evidence").first.evaluate("i => i.getBoundingClientRect().width")
    assert width >= 480, f"evidence shown {width}px wide: too small to judge"
    # Filters: only clutter, then only overdue.
    page.select_option("#filter-type", "clutter")
    expect(page.locator(".card")).to_have_count(len([o for o in needs_review if o["issue_type"] == "clutter"]))
    page.select_option("#filter-type", "")
    page.check("#filter-overdue")
    expect(page.locator(".card")).to_have_count(len([o for o in needs_review if o["overdue"]]))
    page.uncheck("#filter-overdue")
    expect(page.locator(".card")).to_have_count(len(needs_review))
    page.fill("#filter-camera", "cam-2")
    page.press("#filter-camera", "Enter")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card .facts")).to_contain_text("cam-2")
    page.fill("#filter-camera", "")
    page.press("#filter-camera", "Enter")
    expect(page.locator(".card")).to_have_count(len(needs_review))
    for field, none, every in (("#filter-model", "v9", "v1"), ("#filter-grid", "g-none", "")):
        page.fill(field, none)
        page.press(field, "Enter")
        expect(page.locator(".card")).to_have_count(0)
        page.fill(field, every)
        page.press(field, "Enter")
        expect(page.locator(".card")).to_have_count(len(needs_review))
    page.select_option("#filter-period", "24")  # everything here was reported minutes ago
    expect(page.locator(".card")).to_have_count(len(needs_review))
    screenshot(page, "queue", doc=True)


def test_confirm_reject_and_bulk_reject_change_the_orders(page: Page, world: World) -> None:
    api = world.api
    no_worker, by_key, rejected, bulk_a, bulk_b = (api.sight(f"cam-{n}", t, seed=n) for n, t in
                                                   [(11, "clutter"), (12, "street_vending"), (13, "clutter"),
                                                    (14, "flooding"), (15, "clutter")])
    login(page, world.reviewer_key)

    # Confirm with nobody on duty: a clear message, then the reviewer picks a worker.
    card(page, no_worker).locator(".btn-dispatch").click()
    expect(page.locator("#no-worker-message")).to_contain_text(f"#{no_worker}")
    expect(page.locator("#no-worker-message")).to_contain_text("没有在岗")
    worker_id, worker_name = world.picker_worker
    page.locator("#worker-choices label", has_text=worker_name).click()
    page.click("#worker-submit")
    expect(card(page, no_worker)).to_have_count(0)
    order = api.order(no_worker)
    assert (order["state"], order["worker_id"]) == ("dispatched", worker_id)

    # Reject from the keyboard: focus the card, R, reason 3 (duplicate), a note, Enter.
    card(page, rejected).locator("dl.facts").click()
    page.keyboard.press("r")
    expect(page.locator("#reject-dialog")).to_be_visible()
    page.keyboard.press("3")
    page.fill("#reject-note", "与 #%d 重复" % by_key)
    page.locator("#reject-reasons input").nth(2).focus()
    page.keyboard.press("Enter")
    expect(card(page, rejected)).to_have_count(0)
    order = api.order(rejected)
    assert (order["state"], order["reject_reason"]) == ("rejected", "duplicate")
    assert order["timeline"][-1]["note"].endswith("与 #%d 重复" % by_key)

    # Bulk reject two selected orders.
    card(page, bulk_a).locator(".select-order").check()
    card(page, bulk_b).locator(".select-order").check()
    expect(page.locator("#selected-count")).to_have_text("已选 2 条")
    page.click("#bulk-reject")
    page.locator("#reject-reasons label").nth(3).click()  # permitted
    page.click("#reject-submit")
    expect(card(page, bulk_a)).to_have_count(0)
    expect(card(page, bulk_b)).to_have_count(0)
    for order_id in (bulk_a, bulk_b):
        order = api.order(order_id)
        assert (order["state"], order["reject_reason"]) == ("rejected", "permitted")

    # With someone on duty, D dispatches at once (no picker).
    api.set_on_duty(worker_id, True)
    try:
        card(page, by_key).locator("dl.facts").click()
        page.keyboard.press("d")
        expect(card(page, by_key)).to_have_count(0)
        expect(page.locator("#worker-dialog")).to_have_count(0)
    finally:
        api.set_on_duty(worker_id, False)
    order = api.order(by_key)
    assert (order["state"], order["worker_id"]) == ("dispatched", worker_id)


def test_language_switch_is_remembered_and_every_label_is_translated(page: Page, world: World) -> None:
    login(page, world.reviewer_key)
    expect(page.locator("#nav-queue")).to_have_text("审核队列")
    expect(page.locator(".card .state").first).to_have_text("待审核")
    page.click("#lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#nav-queue")).to_have_text("Review queue")
    expect(page.locator(".card .state").first).to_have_text("Reported")
    page.reload()  # the choice (localStorage) and the key (sessionStorage) both survive a reload
    expect(page.locator("#cards[data-loaded=true]")).to_be_visible()
    expect(page.locator("#nav-queue")).to_have_text("Review queue")
    expect(page).to_have_title("Streetwatch · order review")
    for route in ("#/dashboard", f"#/order/{world.story_order}"):
        page.goto(f"/review/{route}")
        expect(page.locator("[data-loaded=true]")).to_be_visible()
    page.click("#lang-switch")
    expect(page.locator("#order-detail h2").first).to_have_text("证据图片")
    keys = page.evaluate("Object.fromEntries(Object.entries(I18N).map(([k, d]) => [k, Object.keys(d).sort()]))")
    assert keys["zh-CN"] == keys["en"]
    assert page.evaluate("[...window.__i18nMissing]") == []


def test_order_detail_shows_all_evidence_timeline_and_takes_comments(page: Page, world: World) -> None:
    login(page, world.reviewer_key)
    order = world.api.order(world.story_order)
    page.goto(f"/review/#/order/{world.story_order}")
    expect(page.locator("#order-detail[data-loaded=true]")).to_be_visible()
    kinds = page.locator("figure.evidence-figure").evaluate_all("fs => fs.map(f => f.dataset.kind)")
    assert sorted(kinds) == sorted(e["kind"] for e in order["evidence"])
    assert {"annotated", "frame", "crop", "report", "resolution", "before", "after"} <= set(kinds)
    images_loaded(page, "figure.evidence-figure img")
    expect(page.locator("#before-after figure")).to_have_count(2)
    expect(page.locator("#order-detail dl.facts")).to_contain_text("李师傅")  # the worker by name, not only id
    expect(page.locator("#timeline tbody tr")).to_have_count(len(order["timeline"]))
    expect(page.locator("#events tbody tr")).to_have_count(len(order["events"]))
    expect(page.locator("#reports tbody tr")).to_contain_text(order["reports"][0]["tracking_id"])
    expect(page.locator("#comments li")).to_have_count(len(order["comments"]))
    screenshot(page, "detail", doc=True)

    page.fill("#comment-text", "已电话回访举报人")
    page.click("#comment-submit")
    expect(page.locator("#comments li")).to_have_count(len(order["comments"]) + 1)
    expect(page.locator("#comments li").last).to_contain_text("已电话回访举报人")
    assert world.api.order(world.story_order)["comments"][-1]["text"] == "已电话回访举报人"


def test_dashboard_draws_the_stats(page: Page, world: World) -> None:
    login(page, world.reviewer_key)
    page.click("#nav-dashboard")
    page.select_option("#dash-period", "all")
    expect(page.locator("#dash-body[data-loaded=true]")).to_be_visible()
    stats = world.api.stats()
    expect(page.locator('[data-kpi="orders"] .kpi-value')).to_have_text(str(stats["orders"]))
    expect(page.locator('[data-kpi="overdue"] .kpi-value')).to_have_text(str(stats["overdue_now"]))
    bars = page.locator("#chart-type-state rect.bar").evaluate_all(
        "rs => rs.map(r => [r.dataset.category, r.dataset.series, Number(r.dataset.value)])")
    drawn = {(t, s): v for t, s, v in bars}
    expected = {(t, s): n for t, row in stats["by_type_and_state"].items() for s, n in row.items() if n}
    assert drawn == expected
    cams = page.locator("#chart-camera rect.bar").evaluate_all("rs => rs.map(r => [r.dataset.key, r.dataset.value])")
    assert [k for k, _ in cams] == [r["key"] for r in stats["per_camera"]]
    rejected_cam = next(r for r in stats["per_camera"] if r["key"] == "cam-8")
    assert float(dict(cams)["cam-8"]) == rejected_cam["false_alarm_rate"] == 1.0  # its one order was rejected
    models = page.locator("#chart-model rect.bar").evaluate_all("rs => rs.map(r => r.dataset.key)")
    assert models == [r["key"] for r in stats["per_model_version"]]
    assert stats["sla_met"] >= 1
    expect(page.locator('#chart-sla [data-key="met"]')).to_have_attribute("data-value", str(stats["sla_met"]))
    expect(page.locator('[data-kpi="mean_resolve"] .kpi-value')).not_to_have_text("–")
    screenshot(page, "dashboard", doc=True)


def test_a_revoked_key_goes_back_to_login(page: Page, world: World) -> None:
    key_id, key = world.api.key("reviewer", "short-lived")
    login(page, key)
    assert world.api.admin.delete(f"/api/v1/keys/{key_id}").status_code == 204
    page.click("#queue-refresh")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("密钥已失效，请重新登录。")
    assert page.evaluate("sessionStorage.getItem('streetwatch.key')") is None


def test_logging_out_forgets_the_selection_and_filters(page: Page, world: World) -> None:
    mine = world.api.sight("cam-21", "clutter", seed=21)
    login(page, world.reviewer_key)
    page.select_option("#filter-type", "clutter")
    page.wait_for_function("() => [...document.querySelectorAll('.card')].every(c => c.querySelector('.type-clutter'))")
    card(page, mine).locator(".select-order").check()
    expect(page.locator("#selected-count")).to_have_text("已选 1 条")
    page.click("#logout")
    _, other = world.api.key("reviewer", "the-next-shift")
    page.fill("#login-key", other)  # at the same screen: the page is not loaded again
    page.click("#login-submit")
    expect(page.locator("#cards[data-loaded=true]")).to_be_visible()
    expect(page.locator("#selected-count")).to_have_text("已选 0 条")
    expect(page.locator("#filter-type")).to_have_value("")


def test_close_with_rating_and_reopen_from_the_detail_page(page: Page, world: World) -> None:
    login(page, world.reviewer_key)
    assert world.api.order(world.story_order)["state"] == "resolved"
    page.goto(f"/review/#/order/{world.story_order}")
    expect(page.locator("#order-detail[data-loaded=true]")).to_be_visible()
    page.click(".btn-close")
    page.check("#close-rating input[value='5']")
    page.fill("#close-comment", "现场已清理干净")
    page.click("#close-dialog-submit")
    expect(page.locator("#order-detail[data-state=closed]")).to_be_visible()
    closed = world.api.order(world.story_order)
    assert (closed["state"], closed["rating"], closed["evaluation"]) == ("closed", 5, "现场已清理干净")
    expect(page.locator(".btn-close")).to_have_count(0)

    rejected = world.api.orders(state="rejected")["data"][0]["id"]
    page.goto(f"/review/#/order/{rejected}")
    expect(page.locator(f"#order-detail[data-order-id='{rejected}']")).to_be_visible()
    page.click(".btn-reopen")
    page.click("#reopen-dialog-submit")
    expect(page.locator("#reopen-dialog-error")).to_have_text("请写明重新打开的原因。")
    assert world.api.order(rejected)["state"] == "rejected"
    page.fill("#reopen-note", "复核后确认是占道经营")
    page.click("#reopen-dialog-submit")
    expect(page.locator("#order-detail[data-state=reopened]")).to_be_visible()
    assert world.api.order(rejected)["timeline"][-1]["note"] == "复核后确认是占道经营"
