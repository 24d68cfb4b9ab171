// Small DOM and formatting helpers shared by the pages.

import { t, lang } from "./i18n.js";

/**
 * Builds an element: h("div", {class: "x", onclick: fn}, "text", child, [more]).
 * Attributes starting with "on" become listeners; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const locale = () => (lang() === "zh" ? "zh-TW" : "en-US");

/** Integer with grouping; "—" for null. */
export function num(n) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString(locale(), { maximumFractionDigits: 2 });
}

/** Money in fen as yuan: ¥1,234.50; "—" for null. */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "—";
  return `¥${(Number(fen) / 100).toLocaleString(locale(), {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  })}`;
}

/** Compact yuan for axes and cards: ¥12.3萬 / ¥123.4k. */
export function yuanShort(fen) {
  if (fen === null || fen === undefined) return "—";
  const y = Number(fen) / 100;
  return `¥${Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 }).format(y)}`;
}

/** A ratio in [0,1] as a percentage; "n/a" for null. */
export function pct(r, digits = 1) {
  if (r === null || r === undefined || Number.isNaN(r)) return t("na");
  return `${(Number(r) * 100).toFixed(digits)}%`;
}

/** A difference of two ratios as signed percentage points: +1.2 pp; "n/a" for null. */
export function pp(d, digits = 1) {
  if (d === null || d === undefined || Number.isNaN(d)) return t("na");
  const x = Number(d) * 100;
  const sign = x > 0 ? "+" : x < 0 ? "−" : "";
  return `${sign}${Math.abs(x).toFixed(digits)} ${t("ppUnit")}`;
}

/** A relative change as a signed percentage: +12.5%, −3.0%; "n/a" for null. */
export function signedPct(r, digits = 1) {
  if (r === null || r === undefined || Number.isNaN(r)) return t("na");
  const x = Number(r) * 100;
  const sign = x > 0 ? "+" : x < 0 ? "−" : "";
  return `${sign}${Math.abs(x).toFixed(digits)}%`;
}

/** A plain float (ROI, ROAS): two decimals; "n/a" for null. */
export function ratio(x) {
  if (x === null || x === undefined) return t("na");
  return Number(x).toFixed(2);
}

/** A time (epoch ms or ISO text) in the viewer's time zone. */
export function when(v) {
  if (v === null || v === undefined || v === "") return "—";
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(locale(), { hour12: false });
}

/** Seconds as a short duration: 45 s, 12 min, 3.5 h, 2.1 d. */
export function duration(s) {
  if (s === null || s === undefined) return t("na");
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** Local calendar day YYYY-MM-DD of a Date. */
export function day(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The `n` days ending today, as {from, to}. */
export function lastDays(n) {
  const to = new Date();
  const from = new Date(to);
  from.setDate(from.getDate() - (n - 1));
  return { from: day(from), to: day(to) };
}

/** A table: columns [{label, cell(row) → node|text, class}], rows. */
export function table(columns, rows, { empty = t("empty"), rowAttrs } = {}) {
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h(
      "tbody",
      {},
      rows.length === 0
        ? h("tr", {}, h("td", { class: "empty", colSpan: columns.length }, empty))
        : rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {}, columns.map((c) => h("td", { class: c.class }, c.cell(r))))),
    ),
  );
}

/** A titled panel. */
export function panel(title, ...children) {
  return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...children);
}

/** An inline error message for a failed call. */
export function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : "";
  return h("div", { class: "error", role: "alert" }, `${t("error")}: ${err?.message || err}${code}`);
}

/** A tag-like chip. */
export function chip(text, cls = "") {
  return h("span", { class: `chip ${cls}` }, text);
}

/** A link to a profile page. */
export function profileLink(id, label) {
  return h("a", { href: `#/profile/${encodeURIComponent(id)}` }, label || id);
}

/**
 * A date-range picker: two date inputs and presets (last N days); calls onChange({from, to}).
 */
export function dateRange(range, onChange, presets = [7, 30, 90]) {
  const from = h("input", { type: "date", value: range.from, class: "date-from" });
  const to = h("input", { type: "date", value: range.to, class: "date-to" });
  const apply = () => {
    if (from.value && to.value && from.value <= to.value) onChange({ from: from.value, to: to.value });
  };
  from.addEventListener("change", apply);
  to.addEventListener("change", apply);
  const preset = (n) =>
    h("button", { type: "button", class: "ghost", onclick: () => onChange(lastDays(n)) }, t("lastDays", { n }));
  return h(
    "div",
    { class: "range" },
    h("label", {}, t("from"), " ", from),
    h("label", {}, t("to"), " ", to),
    presets.map(preset),
  );
}

/** Reads `?a=b` parameters after the hash route into an object. */
export function hashParams() {
  const q = location.hash.split("?")[1] || "";
  return Object.fromEntries(new URLSearchParams(q));
}

/** Replaces the hash route's query (keeps history clean) without re-rendering. */
export function setHashParams(params) {
  const base = location.hash.split("?")[0] || "#/";
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();
  history.replaceState(null, "", q ? `${base}?${q}` : base);
}

/**
 * A page's reload: stores `next` (as `shape(next)`) in the hash and renders page `el`
 * again, marked busy meanwhile; an error replaces the page with its message.
 */
export function reloader(el, render, shape = (next) => next) {
  return (next) => {
    setHashParams(shape(next));
    el.classList.add("busy");
    render(el)
      .catch((e) => mount(el, errorBox(e)))
      .finally(() => el.classList.remove("busy"));
  };
}

/** Debounces `fn` by `ms`. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
