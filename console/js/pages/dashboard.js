// Dashboard: the shop KPIs of a period (GET /api/v1/analytics/kpi) as cards and daily trends.

import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, yuan, yuanShort, num, pct, dateRange, lastDays, hashParams, setHashParams, errorBox } from "../ui.js";
import { trendChart } from "../charts.js";

const CARDS = [
  ["gmv", yuan],
  ["net_revenue", yuan],
  ["orders", num],
  ["buyers", num],
  ["aov", yuan],
  ["repurchase_rate", pct],
  ["conversion", pct],
  ["churn_rate", pct],
];

const SMALL = [
  ["new_buyers", num],
  ["returning_buyers", num],
  ["visitors", num],
];

export async function render(el) {
  const p = hashParams();
  const range = p.from && p.to ? { from: p.from, to: p.to } : lastDays(30);
  setHashParams(range);
  const data = await api(`/analytics/kpi${qs(range)}`);
  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("navDashboard")),
      dateRange(range, (r) => {
        setHashParams(r);
        el.classList.add("busy");
        render(el).catch((e) => mount(el, errorBox(e))).finally(() => el.classList.remove("busy"));
      }),
    ),
    view(data),
  );
}

function view(data) {
  const k = data.kpis;
  const daily = data.daily || [];
  const days = daily.map((d) => d.day);
  const cards = h(
    "div",
    { class: "cards kpis" },
    CARDS.map(([key, fmt]) =>
      h("div", { class: "card kpi", "data-kpi": key }, h("div", { class: "kpi-label" }, t(key)), h("div", { class: "kpi-value" }, fmt(k[key]))),
    ),
  );
  const small = h(
    "div",
    { class: "cards small" },
    SMALL.map(([key, fmt]) =>
      h("div", { class: "card kpi", "data-kpi": key }, h("div", { class: "kpi-label" }, t(key)), h("div", { class: "kpi-value" }, fmt(k[key]))),
    ),
  );
  const conv = daily.map((d) => (d.visitors > 0 ? d.buyers / d.visitors : null));
  return h(
    "div",
    {},
    cards,
    small,
    h(
      "div",
      { class: "charts" },
      panel(
        t("trendRevenue"),
        trendChart(days, [
          { label: t("gmv"), values: daily.map((d) => d.gmv), fmt: yuanShort },
          { label: t("net_revenue"), values: daily.map((d) => d.net_revenue), fmt: yuanShort },
        ]),
      ),
      panel(
        t("trendOrders"),
        trendChart(days, [
          { label: t("orders"), values: daily.map((d) => d.orders), fmt: num },
          { label: t("buyers"), values: daily.map((d) => d.buyers), fmt: num },
        ]),
      ),
      panel(
        t("trendVisitors"),
        trendChart(days, [
          { label: t("visitors"), values: daily.map((d) => d.visitors), fmt: num },
          { label: t("conversion"), values: conv, fmt: (v) => pct(v), axis: 1 },
        ]),
      ),
    ),
  );
}
