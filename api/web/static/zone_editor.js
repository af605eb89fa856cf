// One camera's page on the Cameras tab: its snapshot with its central zones and masks, and
// the editor an admin draws them with (click to add corners, close, pick issue types, save
// with PUT /api/v1/cameras/{name}/zones; delete to fall back to the box's YAML). Polygons are
// not judged here: the API refuses a bad one with the reason, and the page shows that reason.
"use strict";

window.ZoneEditor = (function () {
  const V = () => window.CameraViews;
  const TYPES = ["street_vending", "clutter", "flooding"];

  function cornerAt(svg, ev, width, height) {
    // Screen → frame pixels, through the SVG's own transform (the viewBox scaling).
    const pt = svg.createSVGPoint();
    pt.x = ev.clientX;
    pt.y = ev.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.round(Math.min(width, Math.max(0, p.x))), Math.round(Math.min(height, Math.max(0, p.y)))];
  }

  async function render(ctx, name) {
    const { h, t } = ctx;
    const root = h("section", { class: "camera-detail", id: "camera-detail" },
      h("div", { class: "title-row" }, h("a", { href: "#/cameras", class: "button", id: "camera-back" }, t("cam.back")),
        h("h1", {}, name)),
      h("p", { class: "muted" }, t("common.loading")));
    ctx.view().replaceChildren(root);
    const [cameras, zones, snap] = await Promise.all([
      ctx.getJSON("/api/v1/cameras?limit=5000"), V().centralZones(ctx, name), V().snapshot(name)]);
    if (!root.isConnected) return;
    const camera = cameras.find((c) => c.name === name);
    const st = {
      width: zones ? zones.frame_width : snap ? snap.width : null,
      height: zones ? zones.frame_height : snap ? snap.height : null,
      zones: zones ? { ...zones.zones } : {}, masks: zones ? [...zones.masks] : [], central: zones, drawing: null,
    };
    const error = h("p", { class: "error", id: "zone-error", role: "alert" });
    const source = h("p", { class: "muted", id: "zone-source" });
    const list = h("ul", { class: "zone-list", id: "zone-list" });
    const nameInput = h("input", { id: "zone-name", maxlength: "100", spellcheck: "false" });
    const typeBoxes = TYPES.map((ty) => h("label", { class: "check" },
      h("input", { type: "checkbox", class: "zone-type", value: ty }), ctx.tOr("type", ty)));
    const pointsLabel = h("span", { class: "muted", id: "zone-points" });
    const closeBtn = h("button", { type: "button", id: "zone-close", class: "primary", onclick: () => finish() },
                       t("zone.close"));
    const drawForm = h("div", { class: "zone-draw", id: "zone-draw", hidden: true },
      h("p", { class: "muted" }, t("zone.drawing")),
      h("label", {}, t("zone.name"), nameInput),
      h("div", { class: "zone-types" }, h("span", { class: "muted" }, t("zone.types")), typeBoxes),
      h("div", { class: "actions" }, closeBtn, pointsLabel,
        h("button", { type: "button", id: "zone-cancel", onclick: () => { st.drawing = null; paint(); } },
          t("zone.cancel"))));
    const newButtons = h("div", { class: "actions", id: "zone-new-buttons" },
      h("button", { type: "button", id: "zone-new", onclick: () => start("zone") }, t("zone.new_zone")),
      h("button", { type: "button", id: "mask-new", onclick: () => start("mask") }, t("zone.new_mask")));
    const saveBtn = h("button", { type: "button", id: "zone-save", class: "primary", onclick: () => save() },
                      t("zone.save"));
    const deleteBtn = h("button", { type: "button", id: "zone-delete", class: "danger", onclick: () => removeAll() },
                        t("zone.delete_all"));
    const canDraw = st.width !== null;
    const svg = canDraw ? V().stage(st.width, st.height, snap, "zone-svg") : null;
    if (svg) svg.addEventListener("click", (ev) => click(ev));

    function start(kind) {
      const used = new Set(Object.keys(st.zones));
      let n = used.size + 1;
      while (used.has(`zone-${n}`)) n += 1;
      st.drawing = { kind, points: [] };
      nameInput.value = kind === "zone" ? `zone-${n}` : "";
      nameInput.disabled = kind === "mask";  // masks have no names
      typeBoxes.forEach((l) => { l.querySelector("input").checked = false; });
      error.textContent = "";
      paint();
    }

    function click(ev) {
      if (!st.drawing) return;
      const corner = cornerAt(svg, ev, st.width, st.height);
      const pts = st.drawing.points;
      const near = pts.length >= 3 && Math.hypot(corner[0] - pts[0][0], corner[1] - pts[0][1]) < st.width / 60;
      if (near) { finish(); return; }
      pts.push(corner);
      paint();
    }

    function finish() {
      const d = st.drawing;
      if (!d || d.points.length < 3) return;
      const types = typeBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      if (d.kind === "zone") {
        const zname = nameInput.value.trim() || `zone-${Object.keys(st.zones).length + 1}`;
        st.zones[zname] = { polygon: d.points, issue_types: types };
      } else {
        st.masks.push({ polygon: d.points, issue_types: types });
      }
      st.drawing = null;
      paint();
    }

    function paint() {
      if (svg) {
        svg.querySelectorAll(".area, .drawing").forEach((n) => n.remove());
        V().drawAreas(svg, st.zones, st.masks, st.width);
        const d = st.drawing;
        if (d && d.points.length) {
          const g = V().svgEl("g", { class: "drawing" });
          g.appendChild(V().svgEl("polyline", { points: d.points.map((p) => p.join(",")).join(" "),
                                                "vector-effect": "non-scaling-stroke" }));
          d.points.forEach((p, i) => g.appendChild(V().svgEl("circle", {
            cx: p[0], cy: p[1], r: Math.max(3, st.width / (i === 0 ? 110 : 200)), class: i === 0 ? "first" : "" })));
          svg.appendChild(g);
        }
        svg.classList.toggle("drawing-mode", !!d);
      }
      drawForm.hidden = !st.drawing;
      newButtons.hidden = !!st.drawing || !canDraw;
      closeBtn.disabled = !st.drawing || st.drawing.points.length < 3;
      pointsLabel.textContent = st.drawing ? t("zone.points", { n: st.drawing.points.length }) : "";
      source.textContent = st.central ? t("zone.central", { who: st.central.updated_by, time: ctx.fmtTime(st.central.updated_at) })
                                      : t("zone.yaml");
      deleteBtn.disabled = !st.central;
      saveBtn.disabled = !canDraw;
      const typesText = (a) => (a.issue_types.length ? a.issue_types.map((ty) => ctx.tOr("type", ty)).join("、")
                                                      : t("zone.all_types"));
      const rows = Object.entries(st.zones).map(([zname, z]) => h("li", { dataset: { kind: "zone", name: zname } },
        h("span", { class: "badge zone-kind zone" }, t("zone.kind_zone")), h("strong", {}, zname),
        h("span", { class: "muted" }, typesText(z)),
        h("button", { type: "button", class: "zone-remove", onclick: () => { delete st.zones[zname]; paint(); } },
          t("zone.delete_one"))));
      st.masks.forEach((m, i) => rows.push(h("li", { dataset: { kind: "mask", name: `#${i + 1}` } },
        h("span", { class: "badge zone-kind mask" }, t("zone.kind_mask")), h("strong", {}, `#${i + 1}`),
        h("span", { class: "muted" }, typesText(m)),
        h("button", { type: "button", class: "zone-remove", onclick: () => { st.masks.splice(i, 1); paint(); } },
          t("zone.delete_one")))));
      list.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, t("zone.empty"))]));
    }

    async function save() {
      error.textContent = "";
      const body = { frame_width: st.width, frame_height: st.height, zones: st.zones, masks: st.masks };
      const res = await ctx.api("PUT", `${V().cameraPath(name)}/zones`, body);
      if (!res.ok) { error.textContent = t("zone.refused", { reason: ctx.errorText(res.body, res.status) }); return; }
      st.central = res.body;
      ctx.toast(t("zone.saved"));
      paint();
      root.dataset.saved = String(Number(root.dataset.saved || 0) + 1);
    }

    async function removeAll() {
      error.textContent = "";
      const res = await ctx.api("DELETE", `${V().cameraPath(name)}/zones`);
      if (!res.ok) { error.textContent = t("zone.refused", { reason: ctx.errorText(res.body, res.status) }); return; }
      ctx.toast(t("zone.deleted"));
      render(ctx, name);
    }

    const state = camera ? camera.state || "unknown" : "unknown";
    root.replaceChildren(root.firstChild,
      h("p", { class: "cam-meta" }, V().stateBadge(ctx, state),
        camera && camera.box_id ? ` ${t("cam.box", { id: camera.box_id })}` : "",
        camera && camera.grid_id ? ` · ${t("cam.grid", { id: camera.grid_id })}` : "",
        camera ? ` · ${t("cam.last_seen")}: ${ctx.fmtTime(camera.last_seen)}` : "",
        snap ? ` · ${t("cam.snapshot_at", { time: ctx.fmtTime(camera && camera.snapshot_at) })}` : ""),
      h("div", { class: "zone-editor" },
        h("div", { class: "zone-canvas" }, svg || h("p", { class: "muted" }, t("zone.need_snapshot"))),
        h("div", { class: "zone-side panel" }, h("h2", {}, t("zone.title")), source, list, newButtons, drawForm,
          h("div", { class: "actions" }, saveBtn, deleteBtn), error)));
    paint();
    root.dataset.loaded = "true";
  }

  return { render };
})();
