// The Cameras tab: edge boxes (online or not, last heartbeat, model version) and their cameras
// grouped by grid, coloured by state, each with its latest privacy-blurred snapshot and its
// central zones drawn over it. The zone editor of one camera is zone_editor.js. Both get the
// page's helpers (h, t, api, …) from app.js as `ctx`.
"use strict";

window.CameraViews = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const KEY_STORE = "streetwatch.key";
  const STATE_ORDER = ["failed", "stalled", "offline", "reconnecting", "unknown", "streaming", "disabled"];

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const cameraPath = (name) => `/api/v1/cameras/${encodeURIComponent(name)}`;

  async function snapshot(name) {
    // Fetched with the key (an <img> cannot send one) and shown as a data: URL, which the
    // page's Content-Security-Policy allows for images (blob: it does not). null: none yet.
    const resp = await fetch(`${cameraPath(name)}/snapshot`, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE) || ""}` }, cache: "no-store" });
    if (!resp.ok) return null;
    const blob = await resp.blob();
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
    const img = new Image();
    await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url; });
    return { url, width: img.naturalWidth, height: img.naturalHeight,
             at: resp.headers.get("Last-Modified") };
  }

  async function centralZones(ctx, name) {
    // null: the camera has no central zones (its box's YAML decides)
    const res = await ctx.api("GET", `${cameraPath(name)}/zones`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(ctx.errorText(res.body, res.status));
    return res.body;
  }

  // An SVG the size of the camera's frame (the zones' frame_width × frame_height, else the
  // snapshot's): the snapshot as its background, polygons in frame pixels on top.
  function stage(width, height, snap, id) {
    const svg = svgEl("svg", { class: "zone-stage", viewBox: `0 0 ${width} ${height}`, role: "img" });
    if (id) svg.id = id;
    svg.dataset.frame = `${width}x${height}`;
    if (snap) {
      svg.appendChild(svgEl("image", { href: snap.url, x: 0, y: 0, width, height, preserveAspectRatio: "none",
                                       class: "snapshot-image" }));
    } else {
      svg.appendChild(svgEl("rect", { x: 0, y: 0, width, height, class: "no-snapshot" }));
    }
    return svg;
  }

  function areaShape(points, kind, label, fontSize) {
    const g = svgEl("g", { class: `area ${kind}`, "data-name": label });
    g.appendChild(svgEl("polygon", { points: points.map((p) => p.join(",")).join(" "),
                                     "vector-effect": "non-scaling-stroke" }));
    g.appendChild(svgEl("text", { x: points[0][0], y: points[0][1], "font-size": fontSize, class: "area-label" }, label));
    return g;
  }

  function drawAreas(svg, zones, masks, width) {
    const size = Math.max(10, Math.round(width / 28));
    for (const [name, z] of Object.entries(zones || {})) svg.appendChild(areaShape(z.polygon, "zone", name, size));
    (masks || []).forEach((m, i) => svg.appendChild(areaShape(m.polygon, "mask", `#${i + 1}`, size)));
  }

  // ---- the list -------------------------------------------------------------------------
  function stateOf(camera) {
    return camera.state || "unknown";
  }

  function stateBadge(ctx, state) {
    return ctx.h("span", { class: `badge cam-state cam-state-${state}`, dataset: { state } },
                 ctx.tOr("camstate", state));
  }

  function boxBadge(ctx, box) {
    if (!box) return null;
    return ctx.h("span", { class: `badge box-state ${box.online ? "box-online" : "box-offline"}` },
                 ctx.t(box.online ? "cam.box_online" : "cam.box_offline"));
  }

  function modelText(box) {
    return box && box.model ? `${box.model.name} v${box.model.version}` : "–";
  }

  function boxTable(ctx, boxes) {
    const { h, t } = ctx;
    return h("table", { id: "boxes-table" },
      h("thead", {}, h("tr", {}, [t("cam.boxes"), "", t("cam.last_heartbeat"), t("cam.model"),
                                   t("cam.cameras_streaming")].map((c) => h("th", {}, c)))),
      h("tbody", {}, boxes.map((b) => h("tr", { dataset: { box: b.id } },
        h("td", {}, b.id), h("td", {}, boxBadge(ctx, b)), h("td", {}, ctx.fmtTime(b.last_heartbeat_at)),
        h("td", { class: "box-model" }, modelText(b),
          b.model_error ? h("div", { class: "warn-text" }, t("cam.model_error", { error: b.model_error })) : null),
        h("td", {}, `${b.cameras_streaming} / ${b.cameras}`)))));
  }

  function cameraCard(ctx, camera) {
    const { h, t } = ctx;
    const state = stateOf(camera);
    const snap = h("div", { class: "cam-snap", dataset: { camera: camera.name } },
                   h("span", { class: "muted" }, camera.snapshot_at ? t("common.loading") : t("cam.no_snapshot")));
    return h("div", { class: `cam-card cam-state-${state}`, dataset: { camera: camera.name, state } },
      h("div", { class: "cam-head" },
        h("a", { class: "cam-name", href: `#/camera/${encodeURIComponent(camera.name)}` }, camera.name),
        stateBadge(ctx, state)),
      snap,
      h("div", { class: "muted cam-meta" }, `${t("cam.last_seen")}: ${ctx.fmtTime(camera.last_seen)}`,
        camera.snapshot_at ? h("span", {}, ` · ${t("cam.snapshot_at", { time: ctx.fmtTime(camera.snapshot_at) })}`)
                           : null),
      h("a", { class: "button cam-zones", href: `#/camera/${encodeURIComponent(camera.name)}` }, t("cam.edit_zones")));
  }

  async function fillSnapshot(ctx, camera, holder) {
    try {
      const [snap, zones] = await Promise.all([camera.snapshot_at ? snapshot(camera.name) : null,
                                               centralZones(ctx, camera.name)]);
      if (!snap && !zones) { holder.replaceChildren(ctx.h("span", { class: "muted" }, ctx.t("cam.no_snapshot"))); return; }
      const width = zones ? zones.frame_width : snap.width, height = zones ? zones.frame_height : snap.height;
      const svg = stage(width, height, snap);
      if (zones) drawAreas(svg, zones.zones, zones.masks, width);
      holder.replaceChildren(svg);
      holder.dataset.loaded = snap ? "snapshot" : "zones";
    } catch (exc) {
      holder.replaceChildren(ctx.h("span", { class: "error" }, ctx.t("common.error", { detail: exc.message })));
    }
  }

  function byGridThenBox(cameras) {
    const grids = new Map();
    for (const c of cameras) {
      const grid = c.grid_id || "", box = c.box_id || "";
      if (!grids.has(grid)) grids.set(grid, new Map());
      if (!grids.get(grid).has(box)) grids.get(grid).set(box, []);
      grids.get(grid).get(box).push(c);
    }
    const last = (a, b) => (a === "") - (b === "") || a.localeCompare(b);  // the unnamed group last
    return [...grids.entries()].sort((a, b) => last(a[0], b[0]))
      .map(([grid, boxes]) => [grid, [...boxes.entries()].sort((a, b) => last(a[0], b[0]))]);
  }

  async function renderList(ctx) {
    const { h, t } = ctx;
    const body = h("div", { id: "cameras-body" }, h("p", { class: "muted" }, t("common.loading")));
    const root = h("section", { class: "cameras", id: "cameras-page" },
      h("div", { class: "title-row" }, h("h1", {}, t("cam.title")), h("span", { class: "spacer" }),
        h("button", { type: "button", id: "cameras-refresh", onclick: () => renderList(ctx) }, t("common.refresh"))),
      body);
    ctx.view().replaceChildren(root);
    const [boxes, cameras] = await Promise.all([ctx.getJSON("/api/v1/boxes"), ctx.getJSON("/api/v1/cameras?limit=5000")]);
    if (!root.isConnected) return;
    const boxById = new Map(boxes.map((b) => [b.id, b]));
    const streaming = cameras.filter((c) => c.state === "streaming").length;
    const rank = (c) => STATE_ORDER.indexOf(stateOf(c));
    const groups = byGridThenBox(cameras).map(([grid, boxGroups]) =>
      h("section", { class: "grid-group", dataset: { grid } },
        h("h2", {}, grid ? t("cam.grid", { id: grid }) : t("cam.no_grid")),
        boxGroups.map(([boxId, cams]) => {
          const box = boxById.get(boxId);
          return h("div", { class: "box-group", dataset: { box: boxId } },
            h("div", { class: "box-head" }, h("strong", {}, boxId ? t("cam.box", { id: boxId }) : t("cam.no_box")),
              boxBadge(ctx, box),
              box ? h("span", { class: "muted" }, `${t("cam.last_heartbeat")}: ${ctx.fmtTime(box.last_heartbeat_at)}`)
                  : null,
              box ? h("span", { class: "badge box-model" }, `${t("cam.model")}: ${modelText(box)}`) : null),
            h("div", { class: "cam-cards" },
              cams.slice().sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
                .map((c) => cameraCard(ctx, c))));
        })));
    body.replaceChildren(
      h("p", { class: "muted", id: "cameras-summary" },
        t("cam.summary", { boxes: boxes.length, cameras: cameras.length, streaming })),
      ...(boxes.length ? [boxTable(ctx, boxes)] : []),
      ...(cameras.length ? groups : [h("p", { class: "muted" }, t("cam.none"))]));
    root.dataset.loaded = "true";
    // Snapshots load as their cards come into view: a city's grid may hold hundreds.
    const byName = new Map(cameras.map((c) => [c.name, c]));
    const seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        seen.unobserve(entry.target);
        fillSnapshot(ctx, byName.get(entry.target.dataset.camera), entry.target);
      }
    }, { rootMargin: "300px" });
    root.querySelectorAll(".cam-snap").forEach((node) => seen.observe(node));
  }

  return { renderList, snapshot, centralZones, stage, drawAreas, svgEl, stateBadge, cameraPath };
})();
