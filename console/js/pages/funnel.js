// Funnel: users reaching each step in order within a window (GET /api/v1/analytics/funnel),
// with editable steps, the window, a date range and an optional breakdown by a user trait
// or a property of the step-1 event; saved funnels (GET/POST/DELETE
// /api/v1/analytics/funnels) are picked, saved and deleted here. A misspelt step shows the
// API's "did you mean" instead of a chart.

import { api, qs, seg } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, pct, dateRange, lastDays, hashParams, setHashParams, reloader, errorBox } from "../ui.js";
import { funnelChart } from "../charts.js";

const DEFAULT_STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"];
const EVENTS = [
  "Signed Up",
  "Signed In",
  "Products Searched",
  "Product List Viewed",
  "Product Viewed",
  "Product Added",
  "Cart Viewed",
  "Checkout Started",
  "Order Completed",
  "Order Refunded",
];
// Profile traits, and properties of the step-1 event (each user under the value on their
// first step-1 event in the period).
const TRAITS = [
  "gender",
  "city",
  "region",
  "age_band",
  "lifecycle",
  "tier",
  "properties.category",
  "properties.brand",
  "context.campaign.source",
  "context.campaign.name",
];

export async function render(el) {
  const p = hashParams();
  const range = p.from && p.to ? { from: p.from, to: p.to } : lastDays(30);
  const state = {
    ...range,
    steps: p.steps || DEFAULT_STEPS.join(","),
    window_hours: p.window_hours || "24",
    breakdown: p.breakdown || "",
  };
  setHashParams(state);
  const [data, saved] = await Promise.all([
    api(`/analytics/funnel${qs(state)}`).catch((error) => ({ error })),
    api("/analytics/funnels").catch(() => ({ funnels: [] })),
  ]);
  const reload = reloader(el, render);
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("navFunnel")), dateRange(range, (r) => reload({ ...state, ...r }))),
    editor(state, reload),
    savedFunnels(state, reload, saved.funnels || []),
    data.error
      ? errorBox(data.error)
      : panel(t("funnelTitle"), data.steps && data.steps.length ? funnelChart(data.steps) : h("p", { class: "empty" }, t("empty"))),
    data.groups && data.groups.length ? breakdownTable(data) : null,
  );
}

/** The saved funnels: run one, save the current one under a name, delete one. */
function savedFunnels(state, reload, funnels) {
  const run = (f) => reload({ ...state, steps: f.steps.join(","), window_hours: String(f.window_hours), breakdown: f.breakdown_by || "" });
  const pick = h("select", { class: "saved-funnel" }, h("option", { value: "" }, "—"), funnels.map((f) => h("option", { value: f.name }, f.name)));
  pick.addEventListener("change", () => {
    const f = funnels.find((x) => x.name === pick.value);
    if (f) run(f);
  });
  const name = h("input", { type: "text", class: "funnel-name", size: 14, placeholder: t("name") });
  const note = h("span", { class: "note" });
  const act = async (fn) => {
    try {
      await fn();
      reload(state);
    } catch (e) {
      mount(note, errorBox(e));
    }
  };
  const save = () =>
    act(() =>
      api("/analytics/funnels", {
        method: "POST",
        body: { name: name.value.trim(), steps: state.steps.split(","), window_hours: Number(state.window_hours), breakdown_by: state.breakdown || null },
      }),
    );
  const remove = () => pick.value && act(() => api(`/analytics/funnels/${seg(pick.value)}`, { method: "DELETE" }));
  return h(
    "div",
    { class: "panel funnel-saved" },
    h("label", {}, t("savedFunnels"), " ", pick),
    h("button", { type: "button", class: "ghost", onclick: remove }, t("deleteFunnel")),
    h("label", {}, t("name"), " ", name),
    h("button", { type: "button", class: "primary", onclick: save }, t("saveFunnel")),
    note,
  );
}

/** The steps, window and breakdown form. */
function editor(state, reload) {
  const list = h("ol", { class: "steps-edit" });
  const datalist = h("datalist", { id: "funnel-events" }, EVENTS.map((e) => h("option", { value: e })));
  const addRow = (value) => {
    const input = h("input", { type: "text", value, list: "funnel-events", class: "step-name" });
    const li = h("li", {}, input, h("button", { type: "button", class: "ghost", onclick: () => li.remove() }, t("removeStep")));
    list.append(li);
  };
  state.steps.split(",").forEach(addRow);
  const win = h("input", { type: "number", min: 1, value: state.window_hours, class: "window" });
  const bd = h("input", { type: "text", value: state.breakdown, list: "funnel-traits", class: "breakdown", size: 12 });
  const traits = h("datalist", { id: "funnel-traits" }, TRAITS.map((x) => h("option", { value: x })));
  return h(
    "form",
    {
      class: "panel funnel-form",
      onsubmit: (e) => {
        e.preventDefault();
        const steps = [...list.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
        reload({ ...state, steps: steps.join(","), window_hours: win.value, breakdown: bd.value.trim() });
      },
    },
    h("div", {}, h("strong", {}, t("funnelSteps")), list, datalist, h("button", { type: "button", class: "ghost", onclick: () => addRow("") }, t("addStep"))),
    h("label", {}, t("windowHours"), " ", win),
    h("label", {}, t("breakdown"), " ", bd, traits),
    h("button", { type: "submit", class: "primary" }, t("run")),
  );
}

/** One row per breakdown value: the users and overall conversion at each step. */
function breakdownTable(data) {
  const names = data.steps.map((s) => s.name);
  const cols = [
    { label: t("breakdown"), cell: (r) => r.value || "—" },
    ...names.map((n, i) => ({
      label: n,
      class: "num",
      cell: (r) => {
        const s = r.steps[i];
        return s ? `${num(s.users)} (${pct(s.from_first)})` : "—";
      },
    })),
  ];
  return panel(t("breakdown"), table(cols, data.groups));
}
