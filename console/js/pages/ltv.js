// Customer value: historical LTV by first-order month and the predictive CLV
// (BG/NBD + Gamma-Gamma: churn-risk bands, top customers), one call:
// GET /api/v1/analytics/ltv?from&to. A CLV that cannot be fitted comes as clv.error.

import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, yuan, yuanShort, pct, chip, profileLink, dateRange, lastDays, hashParams, setHashParams, reloader } from "../ui.js";
import { barChart } from "../charts.js";

/** The segment expression of the high-risk band (the traits `report ltv --clv --save-traits` writes). */
export const HIGH_RISK = 'traits.clv_churn_risk == "high"';

const BAND_COLORS = { low: "#16a34a", medium: "#f59e0b", high: "#dc2626" };

export async function render(el) {
  const p = hashParams();
  const range = p.from && p.to ? { from: p.from, to: p.to } : lastDays(365);
  // Optional narrowing from the address (#/ltv?segment=NAME, campaign=, channel=).
  const filters = { segment: p.segment, campaign: p.campaign, channel: p.channel };
  const state = { ...range, ...filters };
  setHashParams(state);
  const data = await api(`/analytics/ltv${qs(state)}`);
  const reload = reloader(el, render, (next) => ({ ...next, ...filters }));
  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("navLtv")),
      Object.entries(filters)
        .filter(([, v]) => v)
        .map(([k, v]) => chip(`${t(k === "segment" ? "segments" : k)}: ${v}`, "seg filter")),
      dateRange(range, reload, [90, 180, 365]),
    ),
    cohortsPanel(data.cohorts || []),
    clvPanel(data.clv),
  );
}

function cohortsPanel(cohorts) {
  return panel(
    t("ltvTitle"),
    h("p", { class: "hint" }, t("ltvHint")),
    cohorts.length
      ? barChart(
          cohorts.map((c) => ({ label: c.month, value: c.ltv, sub: num(c.users), title: `${c.month}: ${yuan(c.ltv)} × ${num(c.users)}` })),
          { fmt: yuanShort, cls: "ltv-bars" },
        )
      : null,
    h(
      "div",
      { class: "scroll" },
      table(
        [
          { label: t("firstOrderMonth"), cell: (c) => c.month },
          { label: t("customers"), class: "num", cell: (c) => num(c.users) },
          { label: t("revenue"), class: "num", cell: (c) => yuan(c.revenue) },
          { label: t("ltv"), class: "num", cell: (c) => yuan(c.ltv) },
        ],
        cohorts,
        { rowAttrs: () => ({ class: "cohort-row" }) },
      ),
    ),
  );
}

function clvPanel(clv) {
  if (!clv) return panel(t("clvTitle"), h("p", { class: "empty" }, t("empty")));
  if (clv.error) {
    return panel(t("clvTitle"), h("div", { class: "notice clv-error", role: "status" }, `${t("clvNotFitted")}: ${clv.error}`));
  }
  const bands = ["low", "medium", "high"].map((b) => ({ band: b, users: clv.bands?.find((x) => x.band === b)?.users ?? 0 }));
  const total = bands.reduce((a, b) => a + b.users, 0);
  const g = clv.bgnbd || {};
  const gg = clv.gamma_gamma || {};
  const f = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(3));
  const segLink = `#/segments?expr=${encodeURIComponent(HIGH_RISK)}`;
  return h(
    "div",
    { class: "clv" },
    h(
      "div",
      { class: "two-col" },
      panel(
        t("churnBands"),
        h("p", { class: "hint" }, t("churnBandsHint", { n: num(clv.customers), days: clv.horizon_days })),
        barChart(
          bands.map((b) => ({
            label: t(`band_${b.band}`),
            value: b.users,
            color: BAND_COLORS[b.band],
            sub: total ? pct(b.users / total) : "",
          })),
          { fmt: num, height: 200, cls: "band-bars" },
        ),
        h(
          "p",
          { class: "hint seg-hint" },
          t("clvSegmentHint"),
          " ",
          h("a", { href: segLink, class: "seg-link" }, h("code", {}, HIGH_RISK)),
        ),
      ),
      panel(
        t("clvModel"),
        h(
          "dl",
          { class: "facts clv-params" },
          h("dt", {}, t("customers")),
          h("dd", {}, num(clv.customers)),
          h("dt", {}, "BG/NBD"),
          h("dd", {}, `r = ${f(g.r)} · α = ${f(g.alpha)} · a = ${f(g.a)} · b = ${f(g.b)}`),
          h("dt", {}, "Gamma-Gamma"),
          h("dd", {}, `p = ${f(gg.p)} · q = ${f(gg.q)} · v = ${f(gg.v)}`),
          clv.penalizer != null ? [h("dt", {}, t("penalizer")), h("dd", {}, String(clv.penalizer))] : null,
          h("dt", {}, t("horizon")),
          h("dd", {}, t("nDays", { n: clv.horizon_days })),
        ),
        h("p", { class: "hint" }, t("clvModelHint")),
      ),
    ),
    panel(
      t("topCustomers"),
      h(
        "div",
        { class: "scroll" },
        table(
          [
            { label: "#", class: "num", cell: (r) => r.rank },
            { label: t("profileId"), cell: (r) => profileLink(r.profile_id, r.user_id || r.anonymous_id) },
            { label: t("pAlive"), class: "num", cell: (r) => pct(r.p_alive) },
            { label: t("expectedPurchases", { n: clv.horizon_days }), class: "num", cell: (r) => (r.expected_purchases_90d == null ? t("na") : Number(r.expected_purchases_90d).toFixed(2)) },
            { label: t("clv"), class: "num", cell: (r) => yuan(r.clv) },
            { label: t("churnRisk"), cell: (r) => chip(t(`band_${r.churn_risk}`), `risk-${r.churn_risk}`) },
          ],
          (clv.top || []).map((r, i) => ({ ...r, rank: i + 1 })),
          { rowAttrs: () => ({ class: "top-row" }) },
        ),
      ),
    ),
  );
}
