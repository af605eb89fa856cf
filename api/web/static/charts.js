// Small inline-SVG charts for the dashboard: stacked bars, horizontal rate bars, a donut.
// No library: each chart is a handful of <rect>/<path>/<text> elements.
"use strict";

window.Charts = (function () {
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(width, height, label) {
    return el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
                       preserveAspectRatio: "xMidYMid meet" });
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
    return 10 * step;
  }

  // categories: [{key, label}]; series: [{key, label, color, values: [n per category]}]
  function stackedBars(title, categories, series, noData) {
    const W = 520, H = 280, left = 40, right = 10, top = 10, bottom = 76;
    const root = svg(W, H, title);
    root.dataset.chart = "stacked";
    const totals = categories.map((_, i) => series.reduce((s, ser) => s + ser.values[i], 0));
    const max = niceMax(Math.max(0, ...totals));
    const plotH = H - top - bottom, plotW = W - left - right;
    for (let g = 0; g <= 4; g++) {
      const y = top + plotH - (plotH * g) / 4;
      root.appendChild(el("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
      root.appendChild(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" },
                          String(Math.round((max * g) / 4 * 10) / 10)));
    }
    const slot = plotW / Math.max(1, categories.length), barW = Math.min(70, slot * 0.6);
    categories.forEach((cat, i) => {
      const x = left + slot * i + (slot - barW) / 2;
      let y = top + plotH;
      series.forEach((ser) => {
        const v = ser.values[i];
        if (!v) return;
        const h = (plotH * v) / max;
        y -= h;
        const r = el("rect", { x, y, width: barW, height: h, fill: ser.color, class: "bar",
                               "data-category": cat.key, "data-series": ser.key, "data-value": v });
        r.appendChild(el("title", {}, `${cat.label} · ${ser.label}: ${v}`));
        root.appendChild(r);
      });
      root.appendChild(el("text", { x: x + barW / 2, y: top + plotH - (plotH * totals[i]) / max - 4,
                                    "text-anchor": "middle", class: "value" }, String(totals[i])));
      root.appendChild(el("text", { x: x + barW / 2, y: H - bottom + 16, "text-anchor": "middle", class: "axis" },
                          cat.label));
    });
    // legend: four columns, as many rows as needed
    const colW = (W - left - right) / 4;
    series.forEach((ser, i) => {
      const lx = left + colW * (i % 4), ly = H - bottom + 36 + 16 * Math.floor(i / 4);
      root.appendChild(el("rect", { x: lx, y: ly - 9, width: 10, height: 10, fill: ser.color }));
      root.appendChild(el("text", { x: lx + 14, y: ly, class: "legend" }, ser.label));
    });
    if (!totals.some(Boolean)) {
      root.appendChild(el("text", { x: W / 2, y: top + plotH / 2, "text-anchor": "middle", class: "empty" }, noData));
    }
    return root;
  }

  // rows: [{key, rate (0..1 or null), detail}]
  function rateBars(title, rows, noData) {
    const rowH = 26, W = 520, labelW = 170, top = 6;
    const H = Math.max(1, rows.length) * rowH + top * 2;
    const root = svg(W, H, title);
    root.dataset.chart = "rates";
    if (!rows.length) {
      root.appendChild(el("text", { x: W / 2, y: H / 2 + 4, "text-anchor": "middle", class: "empty" }, noData));
      return root;
    }
    const barMax = W - labelW - 120;
    rows.forEach((row, i) => {
      const y = top + i * rowH;
      root.appendChild(el("text", { x: labelW - 8, y: y + 17, "text-anchor": "end", class: "axis" }, row.key));
      root.appendChild(el("rect", { x: labelW, y: y + 5, width: barMax, height: 16, class: "track" }));
      const rate = row.rate === null || row.rate === undefined ? null : row.rate;
      const bar = el("rect", { x: labelW, y: y + 5, width: rate === null ? 0 : Math.max(1, barMax * rate), height: 16,
                               class: "bar rate" + (rate !== null && rate >= 0.5 ? " high" : ""),
                               "data-key": row.key, "data-value": rate === null ? "" : rate });
      bar.appendChild(el("title", {}, `${row.key}: ${row.detail}`));
      root.appendChild(bar);
      root.appendChild(el("text", { x: labelW + barMax + 8, y: y + 17, class: "value" },
                          rate === null ? "–" : `${Math.round(rate * 1000) / 10}%`));
    });
    return root;
  }

  // parts: [{key, label, value, color}]
  function donut(title, parts, center, noData) {
    const W = 260, H = 200, cx = 100, cy = 100, r = 80, inner = 50;
    const root = svg(W, H, title);
    root.dataset.chart = "donut";
    const total = parts.reduce((s, p) => s + p.value, 0);
    if (!total) {
      root.appendChild(el("circle", { cx, cy, r, class: "track" }));
      root.appendChild(el("circle", { cx, cy, r: inner, fill: "#fff" }));
      root.appendChild(el("text", { x: cx, y: cy + 4, "text-anchor": "middle", class: "empty" }, noData));
      return root;
    }
    let angle = -Math.PI / 2;
    parts.forEach((p) => {
      if (!p.value) return;
      const sweep = (2 * Math.PI * p.value) / total;
      let node;
      if (sweep >= 2 * Math.PI - 1e-9) {
        node = el("circle", { cx, cy, r, fill: p.color });
      } else {
        const a2 = angle + sweep, large = sweep > Math.PI ? 1 : 0;
        const d = `M ${cx} ${cy} L ${cx + r * Math.cos(angle)} ${cy + r * Math.sin(angle)} ` +
                  `A ${r} ${r} 0 ${large} 1 ${cx + r * Math.cos(a2)} ${cy + r * Math.sin(a2)} Z`;
        node = el("path", { d, fill: p.color });
      }
      node.setAttribute("class", "slice");
      node.setAttribute("data-key", p.key);
      node.setAttribute("data-value", p.value);
      node.appendChild(el("title", {}, `${p.label}: ${p.value}`));
      root.appendChild(node);
      angle += sweep;
    });
    root.appendChild(el("circle", { cx, cy, r: inner, fill: "#fff" }));
    root.appendChild(el("text", { x: cx, y: cy + 6, "text-anchor": "middle", class: "center" }, center));
    parts.forEach((p, i) => {
      root.appendChild(el("rect", { x: 196, y: 70 + i * 22, width: 10, height: 10, fill: p.color }));
      root.appendChild(el("text", { x: 210, y: 79 + i * 22, class: "legend" }, `${p.label} ${p.value}`));
    });
    return root;
  }

  return { stackedBars, rateBars, donut };
})();
