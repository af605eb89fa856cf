// The Streetwatch review page: a queue of orders to confirm (dispatch) or reject, an order's
// detail with all its evidence, and a dashboard. Plain JS against the JSON API; the API key
// lives in sessionStorage and goes out as `Authorization: Bearer`.
"use strict";

(function () {
  const KEY_STORE = "streetwatch.key";
  const LANG_STORE = "streetwatch.lang";
  const LANGS = ["zh-CN", "en"];
  const STATES = ["reported", "reopened", "dispatched", "in_progress", "resolved", "closed", "rejected"];
  const REVIEW_STATES = ["reported", "reopened"];
  const TYPES = ["street_vending", "clutter", "flooding"];
  const REASONS = ["not_an_issue", "wrong_type", "duplicate", "permitted", "outside_jurisdiction", "other"];
  const EVIDENCE_ORDER = ["annotated", "frame", "crop", "report", "resolution"];
  const CAN_DISPATCH = ["reported", "reopened"];
  const CAN_REJECT = ["reported", "dispatched", "reopened"];
  const CAN_CLOSE = ["resolved"];
  const CAN_REOPEN = ["resolved", "rejected"];
  const STATE_COLORS = { reported: "#e67e22", reopened: "#d4a017", dispatched: "#2e86de", in_progress: "#8e44ad",
                         resolved: "#27ae60", closed: "#7f8c8d", rejected: "#c0392b" };

  // ---- language ---------------------------------------------------------------------------
  let lang = LANGS.includes(localStorage.getItem(LANG_STORE)) ? localStorage.getItem(LANG_STORE) : "zh-CN";
  window.__i18nMissing = new Set();

  function t(key, params) {
    let text = window.I18N[lang][key];
    if (text === undefined) {
      window.__i18nMissing.add(`${lang}:${key}`);
      text = key;
    }
    for (const [k, v] of Object.entries(params || {})) text = text.split(`{${k}}`).join(String(v));
    return text;
  }

  function tOr(prefix, value) {
    // A label for an enum value; an unknown value (newer API) shows as itself.
    const key = `${prefix}.${value}`;
    return window.I18N[lang][key] !== undefined ? t(key) : String(value);
  }

  function applyStaticLabels() {
    document.documentElement.lang = lang;
    document.title = t("app.title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  }

  function switchLanguage() {
    lang = lang === "zh-CN" ? "en" : "zh-CN";
    localStorage.setItem(LANG_STORE, lang);
    applyStaticLabels();
    render();
  }

  // ---- DOM helpers --------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child))
                                                                             : child);
    }
    return node;
  }

  const view = () => document.getElementById("view");

  function parseTime(value) {
    if (!value) return null;
    // SQLite hands back naive UTC times: read them as UTC, not local time.
    const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z";
    const d = new Date(iso);
    return isNaN(d) ? null : d;
  }

  function fmtTime(value) {
    const d = parseTime(value);
    return d ? d.toLocaleString(lang, { hour12: false }) : "–";
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const round1 = (x) => Math.round(x * 10) / 10;
    if (seconds < 90) return t("common.seconds", { n: Math.round(seconds) });
    if (seconds < 90 * 60) return t("common.minutes", { n: round1(seconds / 60) });
    if (seconds < 48 * 3600) return t("common.hours", { n: round1(seconds / 3600) });
    return t("common.days", { n: round1(seconds / 86400) });
  }

  function fmtPercent(rate) {
    return rate === null || rate === undefined ? "–" : `${Math.round(rate * 1000) / 10}%`;
  }

  function stateBadge(state) {
    return h("span", { class: `badge state state-${state}`, dataset: { state } }, tOr("state", state));
  }

  function typeBadge(type) {
    return h("span", { class: `badge type type-${type}` }, tOr("type", type));
  }

  function toast(message, kind) {
    const node = h("div", { class: `toast ${kind || "ok"}`, role: kind === "error" ? "alert" : "status",
                            onclick: () => node.remove() }, message);
    document.getElementById("toasts").appendChild(node);
    if (kind !== "error") setTimeout(() => node.remove(), 8000);
  }

  function errorText(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    return `HTTP ${status}`;
  }

  // ---- the API ------------------------------------------------------------------------------
  class LoggedOut extends Error {}

  async function api(method, path, body, options) {
    const headers = { Authorization: `Bearer ${(options && options.key) || sessionStorage.getItem(KEY_STORE) || ""}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                     cache: "no-store" });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (resp.status === 401 && !(options && options.login)) {
      logout("login.expired");
      throw new LoggedOut();
    }
    return { status: resp.status, ok: resp.ok, body: data };
  }

  async function getJSON(path) {
    const res = await api("GET", path);
    if (!res.ok) throw new Error(errorText(res.body, res.status));
    return res.body;
  }

  function logout(messageKey) {
    sessionStorage.removeItem(KEY_STORE);
    closeModal();
    // The next person to log in at this screen starts afresh: no selection, filters or
    // messages of the last one.
    Object.assign(queue, freshQueue());
    document.getElementById("toasts").replaceChildren();
    loginMessage = messageKey || null;
    if (location.hash !== "#/login") location.hash = "#/login";
    else render();
  }

  // ---- modal --------------------------------------------------------------------------------
  let modalKeys = null;

  function openModal(content, onKey) {
    const modal = document.getElementById("modal");
    modal.replaceChildren(content);
    document.getElementById("modal-backdrop").hidden = false;
    modalKeys = onKey || null;
    const first = modal.querySelector("input:checked, input, select, textarea, button");
    if (first) first.focus();
  }

  function closeModal() {
    document.getElementById("modal-backdrop").hidden = true;
    document.getElementById("modal").replaceChildren();
    modalKeys = null;
  }

  const modalOpen = () => !document.getElementById("modal-backdrop").hidden;

  // ---- login --------------------------------------------------------------------------------
  let loginMessage = null;

  function renderLogin() {
    const error = h("p", { class: "error", id: "login-error", role: "alert" }, loginMessage ? t(loginMessage) : "");
    const input = h("input", { type: "password", id: "login-key", autocomplete: "off", required: true,
                               spellcheck: "false" });
    const form = h("form", { class: "login panel", id: "login-form" },
      h("h1", {}, t("login.title")),
      h("p", { class: "muted" }, t("login.help")),
      h("label", { for: "login-key" }, t("login.key")),
      input, error,
      h("button", { type: "submit", class: "primary", id: "login-submit" }, t("login.submit")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      error.textContent = t("common.loading");
      try {
        // /workers needs the reviewer role (or admin): the same as everything this page does.
        const res = await api("GET", "/api/v1/workers", undefined, { key, login: true });
        if (res.status === 401) { error.textContent = t("login.bad_key"); return; }
        if (res.status === 403) {
          const m = /role (\w+)/.exec(errorText(res.body, 403));
          error.textContent = t("login.wrong_role", { role: m ? m[1] : "?" });
          return;
        }
        if (!res.ok) { error.textContent = t("common.error", { detail: errorText(res.body, res.status) }); return; }
      } catch (exc) {
        error.textContent = t("common.error", { detail: exc.message });
        return;
      }
      sessionStorage.setItem(KEY_STORE, key);
      loginMessage = null;
      location.hash = "#/queue";
    });
    view().replaceChildren(form);
    input.focus();
  }

  // ---- the review queue ---------------------------------------------------------------------
  function freshQueue() {
    return { filters: { state: "review", issue_type: "", camera: "", grid: "", model: "", period: "all",
                        overdue: false, unassigned: false },
             orders: [], count: 0, focus: 0, selected: new Set(), busy: false };
  }
  const queue = freshQueue();

  function queueQuery(state) {
    const q = new URLSearchParams({ sort: "due", limit: "200" });
    const f = queue.filters;
    if (state) q.set("state", state);
    if (f.issue_type) q.set("issue_type", f.issue_type);
    if (f.camera.trim()) q.set("camera", f.camera.trim());
    if (f.grid.trim()) q.set("grid_id", f.grid.trim());
    if (f.model.trim()) q.set("model_version", f.model.trim());
    if (f.period !== "all") q.set("since", new Date(Date.now() - Number(f.period) * 3600e3).toISOString());
    if (f.overdue) q.set("overdue", "true");
    if (f.unassigned) q.set("unassigned", "true");
    return `/api/v1/orders?${q}`;
  }

  function dueKey(o) {
    const d = parseTime(o.sla_due_at);
    return d ? d.getTime() : Infinity;
  }

  async function loadQueue() {
    const f = queue.filters;
    let orders = [], count = 0;
    if (f.state === "review" || f.state === "all") {
      const pages = f.state === "review" ? await Promise.all(REVIEW_STATES.map((s) => getJSON(queueQuery(s))))
                                         : [await getJSON(queueQuery(null))];
      for (const p of pages) { orders = orders.concat(p.data); count += p.count; }
      // Orders that need a reviewer first, then by SLA deadline (soonest first).
      const rank = (o) => (REVIEW_STATES.includes(o.state) ? 0 : 1);
      orders.sort((a, b) => rank(a) - rank(b) || dueKey(a) - dueKey(b) || a.id - b.id);
    } else {
      const page = await getJSON(queueQuery(f.state));
      orders = page.data;
      count = page.count;
    }
    queue.orders = orders;
    queue.count = count;
    const ids = new Set(orders.map((o) => o.id));
    for (const id of [...queue.selected]) if (!ids.has(id)) queue.selected.delete(id);
    queue.focus = Math.max(0, Math.min(queue.focus, orders.length - 1));
  }

  function filterBar() {
    const f = queue.filters;
    const reload = () => { queue.focus = 0; renderQueue(); };
    const stateSel = h("select", { id: "filter-state", onchange: (e) => { f.state = e.target.value; reload(); } },
      h("option", { value: "review" }, t("filter.needs_review")),
      h("option", { value: "all" }, t("filter.all_states")),
      STATES.map((s) => h("option", { value: s }, tOr("state", s))));
    stateSel.value = f.state;
    const typeSel = h("select", { id: "filter-type", onchange: (e) => { f.issue_type = e.target.value; reload(); } },
      h("option", { value: "" }, t("filter.all_types")),
      TYPES.map((ty) => h("option", { value: ty }, tOr("type", ty))));
    typeSel.value = f.issue_type;
    const text = (id, name, placeholderKey) => h("input", { id, type: "search", value: f[name],
                                placeholder: t(placeholderKey), onchange: (e) => { f[name] = e.target.value; reload(); } });
    const camera = text("filter-camera", "camera", "filter.camera_placeholder");
    const grid = text("filter-grid", "grid", "filter.grid_placeholder");
    const model = text("filter-model", "model", "filter.model_placeholder");
    const period = h("select", { id: "filter-period", onchange: (e) => { f.period = e.target.value; reload(); } },
      ["all", "24", "168", "720"].map((hours) => h("option", { value: hours }, t(`filter.period_${hours}`))));
    period.value = f.period;
    const check = (id, name) => h("label", { class: "check" },
      h("input", { type: "checkbox", id, checked: f[name], onchange: (e) => { f[name] = e.target.checked; reload(); } }),
      t(`filter.${name}`));
    return h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", {}, t("filter.state"), stateSel),
      h("label", {}, t("filter.type"), typeSel),
      h("label", {}, t("filter.camera"), camera),
      h("label", {}, t("filter.grid"), grid),
      h("label", {}, t("filter.model"), model),
      h("label", {}, t("filter.period"), period),
      check("filter-overdue", "overdue"), check("filter-unassigned", "unassigned"),
      h("button", { type: "button", id: "queue-refresh", onclick: () => renderQueue() }, t("common.refresh")));
  }

  function orderCard(order, index) {
    const selected = queue.selected.has(order.id);
    const card = h("article", {
      class: `card${index === queue.focus ? " focused" : ""}${selected ? " selected" : ""}`,
      dataset: { orderId: order.id, state: order.state }, tabindex: "-1",
      onclick: (e) => { if (!e.target.closest("button, a, input")) { queue.focus = index; highlight(); } },
    },
      h("div", { class: "card-head" },
        h("label", { class: "check", title: t("queue.select") },
          h("input", { type: "checkbox", class: "select-order", checked: selected,
                       "aria-label": `${t("queue.select")} #${order.id}`,
                       onchange: (e) => toggleSelected(order.id, e.target.checked) })),
        h("a", { href: `#/order/${order.id}`, class: "order-id" }, `#${order.id}`),
        typeBadge(order.issue_type), stateBadge(order.state),
        order.overdue ? h("span", { class: "badge warn overdue" }, t("order.overdue")) : null,
        order.unassigned ? h("span", { class: "badge warn unassigned" }, t("order.unassigned")) : null),
      order.snapshot_url
        ? h("a", { href: `#/order/${order.id}`, class: "snapshot" },
            h("img", { src: order.snapshot_url, alt: `#${order.id} ${tOr("type", order.issue_type)}`,
                       class: "evidence", loading: "lazy" }))
        : h("div", { class: "snapshot noimage" }, t("common.no_image")),
      h("dl", { class: "facts compact" },
        fact("order.camera", order.camera || tOr("source", order.source)),
        fact("order.created", fmtTime(order.created_at)),
        fact("order.sla_due", fmtTime(order.sla_due_at)),
        fact("order.events", order.event_count)),
      h("div", { class: "actions" },
        CAN_DISPATCH.includes(order.state)
          ? h("button", { type: "button", class: "primary btn-dispatch", onclick: () => confirmOrder(order) },
              t("action.dispatch"), h("kbd", {}, "D")) : null,
        CAN_REJECT.includes(order.state)
          ? h("button", { type: "button", class: "danger btn-reject", onclick: () => rejectDialog([order]) },
              t("action.reject"), h("kbd", {}, "R")) : null,
        h("a", { href: `#/order/${order.id}`, class: "button btn-details" }, t("action.details"), h("kbd", {}, "O"))));
    return card;
  }

  function fact(labelKey, value) {
    return h("div", {}, h("dt", {}, t(labelKey)), h("dd", {}, value === null || value === undefined ? "–" : value));
  }

  function toggleSelected(id, on) {
    if (on) queue.selected.add(id); else queue.selected.delete(id);
    renderBulkBar();
    const card = document.querySelector(`.card[data-order-id="${id}"]`);
    if (card) {
      card.classList.toggle("selected", on);
      card.querySelector(".select-order").checked = on;
    }
  }

  function renderBulkBar() {
    const bar = document.getElementById("bulk-bar");
    if (!bar) return;
    const n = queue.selected.size;
    bar.replaceChildren(
      h("span", { id: "selected-count" }, t("queue.selected", { n })),
      h("button", { type: "button", id: "select-all", onclick: selectAll }, t("queue.select_all"), h("kbd", {}, "A")),
      h("button", { type: "button", id: "clear-selection", disabled: !n,
                    onclick: () => { for (const id of [...queue.selected]) toggleSelected(id, false); } },
        t("queue.clear_selection")),
      h("button", { type: "button", id: "bulk-reject", class: "danger", disabled: !n,
                    onclick: () => rejectDialog(queue.orders.filter((o) => queue.selected.has(o.id))) },
        t("queue.bulk_reject")));
  }

  function selectAll() {
    for (const o of queue.orders) if (CAN_REJECT.includes(o.state)) toggleSelected(o.id, true);
  }

  function highlight() {
    document.querySelectorAll(".card").forEach((card, i) => {
      card.classList.toggle("focused", i === queue.focus);
      if (i === queue.focus) card.scrollIntoView({ block: "nearest" });
    });
  }

  async function renderQueue() {
    const root = h("section", { class: "queue" },
      h("div", { class: "title-row" }, h("h1", {}, t("queue.title")), h("span", { class: "muted", id: "queue-count" })),
      filterBar(),
      h("p", { class: "muted shortcuts" }, t("queue.shortcuts")),
      h("div", { class: "bulk-bar", id: "bulk-bar" }),
      h("div", { class: "cards", id: "cards" }, h("p", { class: "muted" }, t("common.loading"))));
    view().replaceChildren(root);
    renderBulkBar();
    try {
      await loadQueue();
    } catch (exc) {
      if (exc instanceof LoggedOut) return;
      document.getElementById("cards").replaceChildren(h("p", { class: "error" }, t("common.error", { detail: exc.message })));
      return;
    }
    if (!root.isConnected) return;  // the reviewer went elsewhere meanwhile
    document.getElementById("queue-count").textContent = t("queue.count", { n: queue.count });
    const cards = document.getElementById("cards");
    cards.replaceChildren(...(queue.orders.length ? queue.orders.map(orderCard)
                                                  : [h("p", { class: "muted empty", id: "queue-empty" }, t("queue.empty"))]));
    cards.dataset.loaded = "true";
    renderBulkBar();
  }

  function focusedOrder() {
    return queue.orders[queue.focus];
  }

  // ---- actions: confirm (dispatch), reject, bulk reject ----------------------------------------
  async function afterAction() {
    if (currentRoute().name === "order") render();
    else await renderQueue();
  }

  async function confirmOrder(order, workerId) {
    if (queue.busy) return;
    queue.busy = true;
    try {
      const res = await api("POST", `/api/v1/orders/${order.id}/dispatch`, workerId ? { worker_id: workerId } : {});
      if (res.ok) {
        closeModal();
        toast(t("action.dispatched", { id: order.id }));
        queue.selected.delete(order.id);
        await afterAction();
      } else if (res.status === 409 && !(res.body && res.body.allowed)) {
        // No on-duty worker: the reviewer picks one.
        await workerPicker(order);
      } else if (res.status === 409) {
        closeModal();
        toast(t("action.conflict", { id: order.id, detail: errorText(res.body, 409) }), "error");
        await afterAction();
      } else {
        toast(t("common.error", { detail: errorText(res.body, res.status) }), "error");
      }
    } catch (exc) {
      if (!(exc instanceof LoggedOut)) toast(t("common.error", { detail: exc.message }), "error");
    } finally {
      queue.busy = false;
    }
  }

  // ---- closing (with the evaluation) and reopening, from the order detail -------------------
  function smallDialog(id, title, body, submitLabel, onSubmit) {
    const error = h("p", { class: "error", id: `${id}-error`, role: "alert" });
    const form = h("form", { class: "dialog", id }, h("h2", {}, title), ...body, error,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", id: `${id}-submit` }, submitLabel),
        h("button", { type: "button", onclick: closeModal }, t("common.cancel"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const message = await onSubmit(form);
        if (message) error.textContent = message;
      } catch (exc) {
        if (!(exc instanceof LoggedOut)) error.textContent = exc.message;
      }
    });
    openModal(form, (ev) => { if (ev.key === "Escape") { closeModal(); return true; } return false; });
  }

  function closeDialog(order) {
    const ratings = h("div", { class: "choices", id: "close-rating" }, [1, 2, 3, 4, 5].map((n) =>
      h("label", { class: "choice" }, h("input", { type: "radio", name: "rating", value: n, checked: n === 4 }),
        h("span", {}, "★".repeat(n)))));
    const comment = h("textarea", { id: "close-comment", name: "comment", rows: "3", maxlength: "2000" });
    smallDialog("close-dialog", `${t("close.title")} #${order.id}`,
      [h("p", { class: "muted" }, t("close.rating")), ratings, h("label", { for: "close-comment" }, t("close.comment")), comment],
      t("close.submit"), async (form) => {
        const rating = Number(form.querySelector("input[name=rating]:checked").value);
        const res = await api("POST", `/api/v1/orders/${order.id}/close`, { rating, comment: comment.value.trim() || null });
        if (!res.ok) return errorText(res.body, res.status);
        closeModal();
        toast(t("action.closed", { id: order.id }));
        await afterAction();
        return null;
      });
  }

  function reopenDialog(order) {
    const note = h("textarea", { id: "reopen-note", name: "note", rows: "3", maxlength: "2000" });
    smallDialog("reopen-dialog", `${t("reopen.title")} #${order.id}`,
      [h("label", { for: "reopen-note" }, t("reopen.note")), note], t("reopen.submit"), async () => {
        if (!note.value.trim()) return t("reopen.need_note");
        const res = await api("POST", `/api/v1/orders/${order.id}/reopen`, { note: note.value.trim() });
        if (!res.ok) return errorText(res.body, res.status);
        closeModal();
        toast(t("action.reopened", { id: order.id }));
        await afterAction();
        return null;
      });
  }

  async function workerPicker(order) {
    const workers = await getJSON("/api/v1/workers");
    // On-duty workers of the order's grid first, then other on-duty ones, then the rest.
    const score = (w) => (w.on_duty ? 0 : 2) + ((w.grid_ids || []).includes(order.grid_id) ? 0 : 1);
    workers.sort((a, b) => score(a) - score(b) || a.name.localeCompare(b.name));
    const list = h("div", { class: "choices", id: "worker-choices" },
      workers.map((w, i) => h("label", { class: "choice" },
        h("input", { type: "radio", name: "worker", value: w.id, checked: i === 0 }),
        h("span", { class: "worker-name" }, w.name),
        h("span", { class: `badge ${w.on_duty ? "ok" : "muted"}` }, t(w.on_duty ? "dispatch.on_duty" : "dispatch.off_duty")),
        (w.grid_ids || []).length ? h("span", { class: "muted" }, `${t("order.grid")}: ${w.grid_ids.join(", ")}`) : null)));
    const form = h("form", { class: "dialog", id: "worker-dialog" },
      h("h2", {}, t("dispatch.no_worker_title")),
      h("p", { class: "warn-text", id: "no-worker-message" }, t("dispatch.no_worker", { id: order.id })),
      workers.length ? list : h("p", { class: "error" }, t("dispatch.no_workers")),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "worker-submit", disabled: !workers.length },
          t("dispatch.submit")),
        h("button", { type: "button", onclick: closeModal }, t("common.cancel"))));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const picked = form.querySelector("input[name=worker]:checked");
      if (picked) confirmOrder(order, Number(picked.value));
    });
    openModal(form, (ev) => { if (ev.key === "Escape") { closeModal(); return true; } return false; });
  }

  function rejectDialog(orders) {
    if (!orders.length) return;
    const bulk = orders.length > 1;
    const reasons = h("div", { class: "choices", id: "reject-reasons" },
      REASONS.map((r, i) => h("label", { class: "choice" },
        h("input", { type: "radio", name: "reason", value: r }),
        h("kbd", {}, String(i + 1)), h("span", {}, tOr("reason", r)))));
    const corrected = h("select", { id: "reject-corrected", name: "corrected_type" },
      h("option", { value: "" }, "–"),
      TYPES.filter((ty) => bulk || ty !== orders[0].issue_type).map((ty) => h("option", { value: ty }, tOr("type", ty))));
    const correctedRow = h("label", { id: "corrected-row", hidden: true }, t("reject.corrected_type"), corrected);
    const note = h("textarea", { id: "reject-note", name: "note", rows: "3", maxlength: "2000" });
    const error = h("p", { class: "error", id: "reject-error", role: "alert" });
    const form = h("form", { class: "dialog", id: "reject-dialog" },
      h("h2", {}, bulk ? t("reject.title_bulk", { n: orders.length }) : `${t("reject.title")} #${orders[0].id}`),
      h("p", { class: "muted" }, t("reject.reason")), reasons,
      bulk ? null : correctedRow,
      h("label", { for: "reject-note" }, t("reject.note")), note, error,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "danger", id: "reject-submit" }, t("reject.submit")),
        h("button", { type: "button", onclick: closeModal }, t("common.cancel"))));
    reasons.addEventListener("change", () => {
      const r = form.querySelector("input[name=reason]:checked");
      correctedRow.hidden = !(r && r.value === "wrong_type");
    });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const r = form.querySelector("input[name=reason]:checked");
      if (!r) { error.textContent = t("reject.pick_reason"); return; }
      const noteText = note.value.trim() || null;
      if (bulk) bulkReject(orders, r.value, noteText, error);
      else rejectOne(orders[0], r.value, noteText, !correctedRow.hidden && corrected.value ? corrected.value : null, error);
    });
    openModal(form, (ev) => {
      if (ev.key === "Escape") { closeModal(); return true; }
      if (ev.target === note || ev.target === corrected) return false;
      const n = Number(ev.key);
      if (n >= 1 && n <= REASONS.length) {
        const input = form.querySelectorAll("input[name=reason]")[n - 1];
        input.checked = true;
        input.focus();
        reasons.dispatchEvent(new Event("change"));
        return true;
      }
      if (ev.key === "Enter") { form.requestSubmit(); return true; }
      return false;
    });
  }

  async function rejectOne(order, reason, note, correctedType, errorNode) {
    if (queue.busy) return;
    queue.busy = true;
    try {
      const body = { reason, note };
      if (correctedType) body.corrected_type = correctedType;
      const res = await api("POST", `/api/v1/orders/${order.id}/reject`, body);
      if (res.ok) {
        closeModal();
        toast(t("action.rejected", { id: order.id, reason: tOr("reason", reason) }));
        queue.selected.delete(order.id);
        await afterAction();
      } else if (res.status === 409) {
        closeModal();
        toast(t("action.conflict", { id: order.id, detail: errorText(res.body, 409) }), "error");
        await afterAction();
      } else {
        errorNode.textContent = t("common.error", { detail: errorText(res.body, res.status) });
      }
    } catch (exc) {
      if (!(exc instanceof LoggedOut)) errorNode.textContent = t("common.error", { detail: exc.message });
    } finally {
      queue.busy = false;
    }
  }

  async function bulkReject(orders, reason, note, errorNode) {
    if (queue.busy) return;
    queue.busy = true;
    const ids = orders.map((o) => o.id);
    try {
      let result;
      const res = await api("POST", "/api/v1/orders/bulk-reject", { order_ids: ids, reason, note });
      if (res.ok) {
        result = res.body;
      } else if (res.status === 404 || res.status === 405) {
        // An API without the bulk endpoint: one reject per order.
        result = { rejected: [], failed: [] };
        for (const id of ids) {
          const one = await api("POST", `/api/v1/orders/${id}/reject`, { reason, note });
          if (one.ok) result.rejected.push(id);
          else result.failed.push({ order_id: id, detail: errorText(one.body, one.status) });
        }
      } else {
        errorNode.textContent = t("common.error", { detail: errorText(res.body, res.status) });
        return;
      }
      closeModal();
      for (const id of result.rejected) queue.selected.delete(id);
      if (result.rejected.length) toast(t("action.bulk_done", { n: result.rejected.length }));
      if (result.failed.length) {
        toast(t("action.bulk_failed", { n: result.failed.length,
                                        details: result.failed.map((f) => `#${f.order_id}: ${f.detail}`).join("; ") }),
              "error");
      }
      await afterAction();
    } catch (exc) {
      if (!(exc instanceof LoggedOut)) errorNode.textContent = t("common.error", { detail: exc.message });
    } finally {
      queue.busy = false;
    }
  }

  // ---- order detail -------------------------------------------------------------------------
  function figure(ev) {
    return h("figure", { class: `evidence-figure kind-${ev.kind}`, dataset: { kind: ev.kind, evidenceId: ev.id } },
      h("a", { href: ev.url, target: "_blank", rel: "noopener noreferrer", title: t("detail.open_full") },
        h("img", { src: ev.url, alt: tOr("evidence", ev.kind), class: "evidence", width: ev.width, height: ev.height })),
      h("figcaption", {}, h("strong", {}, tOr("evidence", ev.kind)), ` · ${fmtTime(ev.created_at)} · ${ev.width}×${ev.height}`));
  }

  function table(id, columns, rows, emptyKey) {
    if (!rows.length) return h("p", { class: "muted", id: `${id}-empty` }, t(emptyKey));
    return h("table", { id },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, t(c))))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))));
  }

  async function renderOrder(orderId) {
    view().replaceChildren(h("p", { class: "muted" }, t("common.loading")));
    const res = await api("GET", `/api/v1/orders/${orderId}`);
    if (!res.ok) {
      view().replaceChildren(h("section", {}, h("a", { href: "#/queue" }, `← ${t("common.back")}`),
        h("p", { class: "error" }, t("common.error", { detail: errorText(res.body, res.status) }))));
      return;
    }
    const o = res.body;
    let workerName = o.worker_id ? `#${o.worker_id}` : null;
    if (o.worker_id) {
      const workers = await api("GET", "/api/v1/workers");
      const w = workers.ok ? workers.body.find((x) => x.id === o.worker_id) : null;
      if (w) workerName = `${w.name} (#${w.id})`;
    }
    const byKind = {};
    for (const ev of o.evidence) (byKind[ev.kind] = byKind[ev.kind] || []).push(ev);
    const main = EVIDENCE_ORDER.flatMap((k) => byKind[k] || []);
    const before = byKind.before || [], after = byKind.after || [];
    const pairs = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) pairs.push([before[i], after[i]]);

    const comments = h("ul", { class: "comments", id: "comments" },
      o.comments.length ? o.comments.map((c) => h("li", {},
        h("div", { class: "muted" }, `${c.author} (${c.role}) · ${fmtTime(c.at)}`), h("p", {}, c.text)))
        : h("li", { class: "muted", id: "comments-empty" }, t("detail.no_comments")));
    const commentText = h("textarea", { id: "comment-text", rows: "3", maxlength: "4000",
                                        placeholder: t("detail.comment_placeholder") });
    const commentError = h("p", { class: "error", role: "alert" });
    const commentForm = h("form", { class: "comment-form", id: "comment-form" }, commentText, commentError,
      h("button", { type: "submit", class: "primary", id: "comment-submit" }, t("detail.comment_submit")));
    commentForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = commentText.value.trim();
      if (!text) return;
      try {
        const r = await api("POST", `/api/v1/orders/${o.id}/comments`, { text });
        if (r.ok) renderOrder(o.id);
        else commentError.textContent = t("common.error", { detail: errorText(r.body, r.status) });
      } catch (exc) {
        if (!(exc instanceof LoggedOut)) commentError.textContent = t("common.error", { detail: exc.message });
      }
    });

    const page = h("section", { class: "detail", id: "order-detail", dataset: { orderId: o.id, state: o.state } },
      h("a", { href: "#/queue", class: "back" }, `← ${t("common.back")}`),
      h("div", { class: "title-row" },
        h("h1", {}, t("order.title", { id: o.id })), typeBadge(o.issue_type), stateBadge(o.state),
        o.overdue ? h("span", { class: "badge warn" }, t("order.overdue")) : null,
        o.unassigned ? h("span", { class: "badge warn" }, t("order.unassigned")) : null,
        o.cleared_by_camera ? h("span", { class: "badge muted" }, t("order.cleared")) : null,
        h("span", { class: "spacer" }),
        CAN_DISPATCH.includes(o.state)
          ? h("button", { type: "button", class: "primary btn-dispatch", onclick: () => confirmOrder(o) }, t("action.dispatch"))
          : null,
        CAN_REJECT.includes(o.state)
          ? h("button", { type: "button", class: "danger btn-reject", onclick: () => rejectDialog([o]) }, t("action.reject"))
          : null,
        CAN_CLOSE.includes(o.state)
          ? h("button", { type: "button", class: "primary btn-close", onclick: () => closeDialog(o) }, t("action.close"))
          : null,
        CAN_REOPEN.includes(o.state)
          ? h("button", { type: "button", class: "btn-reopen", onclick: () => reopenDialog(o) }, t("action.reopen"))
          : null),
      h("dl", { class: "facts" },
        fact("order.source", tOr("source", o.source)),
        fact("order.camera", o.camera),
        fact("order.created", fmtTime(o.created_at)),
        fact("order.last_seen", fmtTime(o.last_seen)),
        fact("order.sla_due", fmtTime(o.sla_due_at)),
        fact("order.worker", workerName),
        fact("order.grid", o.grid_id),
        fact("order.events", o.event_count),
        fact("order.model", o.model_name ? `${o.model_name}:${o.model_version}` : null),
        fact("order.location", o.lat !== null && o.lat !== undefined ? `${o.lat.toFixed(5)}, ${o.lon.toFixed(5)}` : null),
        o.reject_reason ? fact("order.reject_reason", tOr("reason", o.reject_reason)) : null,
        o.corrected_type ? fact("order.corrected_type", tOr("type", o.corrected_type)) : null,
        o.rating ? fact("order.rating", `${o.rating}/5${o.evaluation ? " · " + o.evaluation : ""}`) : null,
        o.recurrence_of ? h("div", {}, h("dd", {}, h("a", { href: `#/order/${o.recurrence_of}` },
                                                     t("order.recurrence_of", { id: o.recurrence_of })))) : null),
      h("h2", {}, t("detail.evidence")),
      main.length ? h("div", { class: "gallery", id: "evidence" }, main.map(figure))
                  : h("p", { class: "muted" }, t("detail.no_evidence")),
      pairs.length ? [h("h2", {}, t("detail.before_after")),
                      h("div", { class: "before-after", id: "before-after" },
                        pairs.map(([b, a]) => h("div", { class: "pair" }, b ? figure(b) : null, a ? figure(a) : null)))]
                   : null,
      h("div", { class: "columns" },
        h("div", {},
          h("h2", {}, t("detail.timeline")),
          table("timeline", ["col.time", "col.action", "col.change", "col.actor", "col.note"],
            o.timeline.map((a) => [fmtTime(a.at), tOr("audit", a.action),
              a.to_state ? h("span", {}, a.from_state ? stateBadge(a.from_state) : "", " → ", stateBadge(a.to_state)) : "",
              a.actor, a.note || ""]), "common.none"),
          h("h2", {}, t("detail.comments")), comments, commentForm),
        h("div", {},
          h("h2", {}, t("detail.events")),
          table("events", ["col.time", "col.class", "col.confidence", "col.model", "col.box"],
            o.events.map((e) => [fmtTime(e.confirmed_at), e.class_name, e.confidence.toFixed(2),
                                 `${e.model_name}:${e.model_version}`, e.bbox.map((v) => Math.round(v)).join(", ")]),
            "detail.no_events"),
          h("h2", {}, t("detail.reports")),
          table("reports", ["col.tracking_id", "col.time", "col.text", "col.position"],
            o.reports.map((r) => [r.tracking_id, fmtTime(r.created_at), r.text || "",
                                  `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}`]), "detail.no_reports"))));
    view().replaceChildren(page);
    page.dataset.loaded = "true";
  }

  // ---- dashboard ----------------------------------------------------------------------------
  let dashPeriod = "30";

  function kpi(id, labelKey, value, detail) {
    return h("div", { class: "kpi", dataset: { kpi: id } },
      h("div", { class: "kpi-label" }, t(labelKey)), h("div", { class: "kpi-value" }, value),
      detail ? h("div", { class: "muted kpi-detail" }, detail) : null);
  }

  function chartPanel(id, titleKey, svgNode) {
    return h("div", { class: "panel chart", id }, h("h2", {}, t(titleKey)), svgNode);
  }

  async function renderDashboard() {
    const period = h("select", { id: "dash-period", onchange: (e) => { dashPeriod = e.target.value; renderDashboard(); } },
      ["7", "30", "all"].map((p) => h("option", { value: p }, t(`dash.period_${p}`))));
    period.value = dashPeriod;
    const body = h("div", { id: "dash-body" }, h("p", { class: "muted" }, t("common.loading")));
    const root = h("section", { class: "dashboard" },
      h("div", { class: "title-row" }, h("h1", {}, t("dash.title")),
        h("label", {}, t("dash.period"), period)), body);
    view().replaceChildren(root);
    const q = new URLSearchParams();
    if (dashPeriod !== "all") q.set("since", new Date(Date.now() - Number(dashPeriod) * 86400e3).toISOString());
    let s;
    try {
      s = await getJSON(`/api/v1/stats?${q}`);
    } catch (exc) {
      if (!(exc instanceof LoggedOut)) body.replaceChildren(h("p", { class: "error" }, t("common.error", { detail: exc.message })));
      return;
    }
    if (!root.isConnected) return;
    const noData = t("dash.no_data");
    const types = TYPES.filter((ty) => s.by_type_and_state[ty]).concat(
      Object.keys(s.by_type_and_state).filter((ty) => !TYPES.includes(ty)));
    const stacked = Charts.stackedBars(t("dash.by_type_state"),
      types.map((ty) => ({ key: ty, label: tOr("type", ty) })),
      STATES.map((st) => ({ key: st, label: tOr("state", st), color: STATE_COLORS[st],
                            values: types.map((ty) => (s.by_type_and_state[ty] || {})[st] || 0) })), noData);
    const sla = Charts.donut(t("dash.sla_chart"),
      [{ key: "met", label: t("dash.sla_met"), value: s.sla_met, color: "#27ae60" },
       { key: "missed", label: t("dash.sla_missed"), value: s.sla_missed, color: "#c0392b" }],
      fmtPercent(s.sla_compliance), noData);
    const rateRows = (rows) => rows.map((r) => ({ key: r.key, rate: r.false_alarm_rate,
      detail: `${t("col.orders")} ${r.orders} · ${t("col.false_alarms")} ${r.false_alarms} · ` +
              `${t("col.confirmed_rate")} ${fmtPercent(r.confirmed_rate)}` }));
    body.replaceChildren(
      h("div", { class: "kpis" },
        kpi("orders", "dash.orders", String(s.orders)),
        kpi("mean_dispatch", "dash.mean_dispatch", fmtDuration(s.mean_time_to_dispatch_s)),
        kpi("mean_resolve", "dash.mean_resolve", fmtDuration(s.mean_time_to_resolve_s)),
        kpi("sla", "dash.sla", fmtPercent(s.sla_compliance), t("dash.sla_detail", { met: s.sla_met, missed: s.sla_missed })),
        kpi("overdue", "dash.overdue_now", String(s.overdue_now)),
        kpi("recurrences", "dash.recurrences", String(s.recurrences)),
        kpi("citizen", "dash.citizen", String(s.citizen_reported))),
      h("div", { class: "charts" },
        chartPanel("chart-type-state", "dash.by_type_state", stacked),
        chartPanel("chart-sla", "dash.sla_chart", sla),
        chartPanel("chart-camera", "dash.per_camera", Charts.rateBars(t("dash.per_camera"), rateRows(s.per_camera), noData)),
        chartPanel("chart-model", "dash.per_model",
                   Charts.rateBars(t("dash.per_model"), rateRows(s.per_model_version), noData))));
    body.dataset.loaded = "true";
  }

  // What the Cameras tab (cameras.js, zone_editor.js) uses of this page.
  const pageTools = { h, t, tOr, api, getJSON, fmtTime, toast, errorText, view };

  // ---- routing and keys ---------------------------------------------------------------------
  function currentRoute() {
    const hash = location.hash || "#/queue";
    let m;
    if (hash === "#/login") return { name: "login" };
    if ((m = /^#\/order\/(\d+)$/.exec(hash))) return { name: "order", id: Number(m[1]) };
    if (hash === "#/dashboard") return { name: "dashboard" };
    if (hash === "#/cameras") return { name: "cameras" };
    if ((m = /^#\/camera\/([A-Za-z0-9_.\-]+)$/.exec(hash))) return { name: "camera", id: m[1] };
    return { name: "queue" };
  }

  function render() {
    const loggedIn = !!sessionStorage.getItem(KEY_STORE);
    document.body.classList.toggle("logged-in", loggedIn);
    const route = currentRoute();
    if (!loggedIn && route.name !== "login") { location.hash = "#/login"; return; }
    if (loggedIn && route.name === "login") { location.hash = "#/queue"; return; }
    const tab = route.name === "camera" ? "cameras" : route.name;
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === `#/${tab}`));
    closeModal();
    const run = { login: renderLogin, queue: renderQueue, dashboard: renderDashboard,
                  order: () => renderOrder(route.id), cameras: () => CameraViews.renderList(pageTools),
                  camera: () => ZoneEditor.render(pageTools, route.id) }[route.name];
    Promise.resolve(run()).catch((exc) => {
      if (!(exc instanceof LoggedOut)) view().replaceChildren(h("p", { class: "error" }, t("common.error", { detail: exc.message })));
    });
  }

  function onKey(ev) {
    if (modalOpen()) {
      if (modalKeys && modalKeys(ev)) ev.preventDefault();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select")) return;
    if (currentRoute().name !== "queue" || !queue.orders.length) return;
    const order = focusedOrder();
    const key = ev.key.toLowerCase();
    if (key === "j" || ev.key === "ArrowDown") queue.focus = Math.min(queue.focus + 1, queue.orders.length - 1);
    else if (key === "k" || ev.key === "ArrowUp") queue.focus = Math.max(queue.focus - 1, 0);
    else if (key === "d") { if (CAN_DISPATCH.includes(order.state)) confirmOrder(order); }
    else if (key === "r") { if (CAN_REJECT.includes(order.state)) rejectDialog([order]); }
    else if (key === "x") toggleSelected(order.id, !queue.selected.has(order.id));
    else if (key === "a") selectAll();
    else if (key === "o" || ev.key === "Enter") location.hash = `#/order/${order.id}`;
    else return;
    ev.preventDefault();
    highlight();
  }

  document.getElementById("lang-switch").addEventListener("click", switchLanguage);
  document.getElementById("logout").addEventListener("click", () => logout(null));
  document.getElementById("modal-backdrop").addEventListener("click", (ev) => {
    if (ev.target.id === "modal-backdrop") closeModal();
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", render);
  applyStaticLabels();
  render();
})();
