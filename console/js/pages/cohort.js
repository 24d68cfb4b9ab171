// Cohort retention: D-N retention by sign-up day (GET /api/v1/analytics/cohort) as a heatmap.

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
  const state = { ...range, days: days.join(",") };
  setHashParams(state);
  const data = await api(`/analytics/cohort${qs(state)}`);
  const reload = reloader(el, render);
  const daysInput = h("input", { type: "text", value: state.days, class: "days", size: 16 });
  daysInput.addEventListener("change", () => reload({ ...range, days: daysInput.value.replace(/\s+/g, "") }));
  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("navCohort")),
      dateRange(range, (r) => reload({ ...r, days: state.days })),
      h("label", {}, t("cohortDays"), " ", daysInput),
    ),
    panel(t("cohortTitle"), h("div", { class: "scroll" }, cohortHeatmap(data.rows || [], days))),
  );
}
