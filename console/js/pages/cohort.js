// Cohort retention by sign-up or first purchase, per day, ISO week or month
// (GET /api/v1/analytics/cohort) as a heatmap with the size-weighted average row.

import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, dateRange, lastDays, hashParams, setHashParams, reloader } from "../ui.js";
import { cohortHeatmap } from "../charts.js";

const DEFAULT_DAYS = "1,3,7,14,30";

export async function render(el) {
  const p = hashParams();
  const range = p.from && p.to ? { from: p.from, to: p.to } : lastDays(30);
  const days = (p.days || DEFAULT_DAYS)
    .split(",")
    .map((x) => parseInt(x, 10))
    .filter((n) => n > 0);
  const by = ["day", "week", "month"].includes(p.by) ? p.by : "day";
  const cohort = p.cohort === "first-purchase" ? "first-purchase" : "signup";
  const state = { ...range, days: days.join(","), by, cohort };
  setHashParams(state);
  const data = await api(`/analytics/cohort${qs(state)}`);
  const reload = reloader(el, render);
  const daysInput = h("input", { type: "text", value: state.days, class: "days", size: 16 });
  daysInput.addEventListener("change", () => reload({ ...state, days: daysInput.value.replace(/\s+/g, "") }));
  const select = (key, options) => {
    const el = h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: state[key] === v ? "selected" : null }, t(label))));
    el.addEventListener("change", () => reload({ ...state, [key]: el.value }));
    return el;
  };
  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("navCohort")),
      dateRange(range, (r) => reload({ ...state, ...r })),
      h("label", {}, t("cohortBasis"), " ", select("cohort", [["signup", "basisSignup"], ["first-purchase", "basisFirstPurchase"]])),
      h("label", {}, t("cohortBy"), " ", select("by", [["day", "byDay"], ["week", "byWeek"], ["month", "byMonth"]])),
      h("label", {}, t("cohortDays"), " ", daysInput),
    ),
    panel(t("cohortTitle"), h("div", { class: "scroll" }, cohortHeatmap(data.rows || [], days, by, data.average))),
  );
}
