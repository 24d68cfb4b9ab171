// Charts: daily trend lines with the vendored uPlot (window.uPlot, MIT), the cohort
// heatmap as a coloured table and the funnel as SVG bars drawn here.

import { h, pct, num, duration } from "./ui.js";
import { t } from "./i18n.js";

const COLORS = ["#2563eb", "#f97316", "#16a34a", "#9333ea"];

/** Seconds since the epoch at local midnight of a YYYY-MM-DD day. */
const dayToTs = (d) => {
  const [y, m, dd] = d.split("-").map(Number);
  return new Date(y, m - 1, dd).getTime() / 1000;
};

/**
 * A daily trend chart.
 * series: [{label, values, fmt, axis: 0|1}] — axis 1 is drawn on the right with its own scale.
 */
export function trendChart(days, series, { height = 220 } = {}) {
  const el = h("div", { class: "chart" });
  const xs = days.map(dayToTs);
  const hasRight = series.some((s) => s.axis === 1);
  const opts = {
    width: 600,
    height,
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, left: {}, right: {} },
    series: [
      { label: t("time"), value: (u, v) => (v == null ? "" : new Date(v * 1000).toISOString().slice(0, 10)) },
      ...series.map((s, i) => ({
        label: s.label,
        scale: s.axis === 1 ? "right" : "left",
        stroke: COLORS[i % COLORS.length],
        width: 2,
        fill: i === 0 ? "rgba(37, 99, 235, 0.08)" : undefined,
        points: { show: days.length < 45 },
        value: (u, v) => (v == null ? "—" : s.fmt(v)),
      })),
    ],
    axes: [
      {},
      {
        scale: "left",
        size: 70,
        values: (u, vals) => vals.map((v) => series.find((s) => s.axis !== 1).fmt(v)),
      },
      hasRight
        ? {
            scale: "right",
            side: 1,
            size: 60,
            grid: { show: false },
            values: (u, vals) => vals.map((v) => series.find((s) => s.axis === 1).fmt(v)),
          }
        : { show: false, scale: "right" },
    ],
  };
  const data = [xs, ...series.map((s) => s.values)];
  // Drawn once the element is in the page and has a width.
  requestAnimationFrame(() => {
    if (!window.uPlot) {
      el.textContent = "uPlot missing";
      return;
    }
    opts.width = Math.max(300, el.clientWidth || 600);
    const plot = new window.uPlot(opts, data, el);
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height });
    });
    ro.observe(el);
  });
  return el;
}

/** A background colour for a retention rate (0 → light, 1 → deep blue). */
function heat(rate, max) {
  if (rate === null || rate === undefined) return "#f3f4f6";
  const x = max > 0 ? Math.min(1, rate / max) : 0;
  const l = 96 - x * 56;
  return `hsl(217, 80%, ${l}%)`;
}

/**
 * The cohort heatmap: one row per cohort (day, ISO week or month), one cell per period N,
 * coloured by rate, and the size-weighted average row last.
 * rows: [{day, size, retained:[{day_n, users, rate}]}]; average: {size, retained} or null.
 */
export function cohortHeatmap(rows, daysN, by = "day", average = null) {
  const rates = rows.flatMap((r) => r.retained.map((c) => c.rate).filter((x) => x !== null));
  const max = Math.max(0.0001, ...rates);
  const label = { day: "dayN", week: "weekN", month: "monthN" }[by] || "dayN";
  const row = (head, r, cls) =>
    h(
      "tr",
      { class: cls },
      h("th", {}, head),
      h("td", { class: "size" }, num(r.size)),
      daysN.map((n) => {
        const c = r.retained.find((x) => x.day_n === n);
        const rate = c ? c.rate : null;
        const dark = rate !== null && rate / max > 0.55;
        return h(
          "td",
          {
            class: `cell${rate === null ? " na" : ""}`,
            style: { background: heat(rate, max), color: dark ? "#fff" : "#111827" },
            title: c ? `${num(c.users)} / ${num(r.size)}` : "",
          },
          rate === null ? "—" : pct(rate),
        );
      }),
    );
  return h(
    "table",
    { class: "heatmap" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, t(by === "day" ? "signupDay" : "cohortStart")), h("th", {}, t("cohortSize")), daysN.map((n) => h("th", {}, t(label, { n })))),
    ),
    h("tbody", {}, rows.map((r) => row(r.day, r, "")), average && rows.length ? row(t("cohortAverage"), average, "average") : null),
  );
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * The funnel as horizontal SVG bars, widths proportional to the users at each step.
 * steps: [{name, users, from_first, from_previous, dropped, median_seconds_from_previous}]
 */
export function funnelChart(steps) {
  const rowH = 56;
  const labelW = 180;
  const barW = 520;
  const width = labelW + barW + 20;
  const height = steps.length * rowH + 10;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "funnel", role: "img" });
  const top = Math.max(1, steps[0]?.users || 0);
  steps.forEach((st, i) => {
    const y = i * rowH + 5;
    const w = Math.max(2, (st.users / top) * barW);
    const g = s("g", { class: "funnel-step" });
    g.append(s("text", { x: labelW - 10, y: y + 22, "text-anchor": "end", class: "funnel-label" }, st.name));
    g.append(s("rect", { x: labelW, y, width: barW, height: 32, rx: 4, fill: "#eef2ff" }));
    g.append(s("rect", { x: labelW, y, width: w, height: 32, rx: 4, fill: COLORS[0], class: "funnel-bar" }));
    const inside = w > 170;
    g.append(
      s(
        "text",
        { x: inside ? labelW + 10 : labelW + w + 8, y: y + 21, fill: inside ? "#fff" : "#111827", class: "funnel-value" },
        `${num(st.users)} · ${pct(st.from_first)}`,
      ),
    );
    if (i > 0) {
      const extra = st.median_seconds_from_previous == null ? "" : ` · ${t("medianTime")} ${duration(st.median_seconds_from_previous)}`;
      g.append(
        s(
          "text",
          { x: labelW, y: y + 47, class: "funnel-note" },
          `${t("stepStepConversion")} ${pct(st.from_previous)} · ${t("dropOff")} ${num(st.dropped)}${extra}`,
        ),
      );
    }
    svg.append(g);
  });
  return svg;
}

/** A horizontal progress bar for a ratio in [0,1] (null → empty). */
export function progressBar(r) {
  const w = r === null || r === undefined ? 0 : Math.max(0, Math.min(1, r)) * 100;
  return h("div", { class: "progress" }, h("div", { class: "progress-fill", style: { width: `${w}%` } }));
}

/**
 * Vertical bars as SVG, one per item, heights proportional to the values (0 at the base).
 * items: [{label, value, color?, title?}]; fmt formats a value for the label above its bar.
 */
export function barChart(items, { fmt = num, height = 220, cls = "" } = {}) {
  const labelH = 34;
  const topPad = 20;
  const slot = Math.max(44, Math.min(90, 760 / Math.max(1, items.length)));
  const width = Math.max(300, items.length * slot + 20);
  const plotH = height - labelH - topPad;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: `bars ${cls}`.trim(), role: "img", style: `max-width: ${width}px` });
  const max = Math.max(0, ...items.map((it) => Number(it.value) || 0));
  svg.append(s("line", { x1: 10, x2: width - 10, y1: topPad + plotH, y2: topPad + plotH, class: "bars-axis" }));
  items.forEach((it, i) => {
    const v = Math.max(0, Number(it.value) || 0);
    const bh = max > 0 ? Math.max(v > 0 ? 2 : 0, (v / max) * plotH) : 0;
    const x = 10 + i * slot + slot * 0.15;
    const w = slot * 0.7;
    const y = topPad + plotH - bh;
    const g = s("g", { class: "bar", "data-label": it.label });
    const rect = s("rect", { x, y, width: w, height: bh, rx: 3, fill: it.color || COLORS[0], class: "bar-rect" });
    if (it.title) rect.append(s("title", {}, it.title));
    g.append(rect);
    g.append(s("text", { x: x + w / 2, y: y - 5, "text-anchor": "middle", class: "bar-value" }, fmt(it.value)));
    g.append(s("text", { x: x + w / 2, y: topPad + plotH + 16, "text-anchor": "middle", class: "bar-label" }, it.label));
    if (it.sub) g.append(s("text", { x: x + w / 2, y: topPad + plotH + 30, "text-anchor": "middle", class: "bar-sub" }, it.sub));
    svg.append(g);
  });
  return svg;
}
