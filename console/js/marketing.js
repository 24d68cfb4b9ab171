// The marketing tables shared by 營銷 ROI (pages/campaigns.js) and 復盤 (pages/reviews.js):
// campaign rows, channel rows with the budget suggestion, goals and alerts, as the API
// answers them (/api/v1/analytics/campaigns, /channels, /goals, /alerts, and the same
// sections of a review).

import { t } from "./i18n.js";
import { h, table, num, yuan, pct, ratio, when, chip } from "./ui.js";
import { progressBar } from "./charts.js";

/**
 * Per-campaign funnel and money: one row per campaign across its channels, and under a
 * campaign on several channels one indented row per channel (its `by_channel` part).
 */
export function campaignTable(rows) {
  const n = (k) => ({ label: t(k), class: "num", cell: (r) => num(r[k]) });
  const m = (k) => ({ label: t(k), class: "num", cell: (r) => yuan(r[k]) });
  const r = (k) => ({ label: t(k), class: "num", cell: (x) => pct(x[k]) });
  const flat = rows.flatMap((x) => {
    const parts = x.by_channel || [];
    return parts.length > 1 ? [x, ...parts.map((p) => ({ ...p, part: true, campaign: x.campaign }))] : [x];
  });
  const channels = (x) => (x.part ? `↳ ${x.channel}` : (x.channels || [x.channel]).join(" + "));
  return table(
    [
      { label: t("campaign"), cell: (x) => (x.part ? "" : x.campaign) },
      { label: t("channel"), cell: channels },
      { label: t("status"), cell: (x) => (!x.part && x.status && x.status !== "-" ? chip(x.status, `status-${x.status}`) : "—") },
      n("sent"),
      n("delivered"),
      n("opened"),
      n("clicked"),
      n("converted"),
      r("open_rate"),
      r("ctr"),
      r("cvr"),
      m("revenue"),
      m("spend"),
      m("true_cost"),
      m("cpa"),
      { label: t("roi"), class: "num", cell: (x) => h("span", { class: x.roi !== null && x.roi < 1 ? "bad" : "" }, ratio(x.roi)) },
      { label: t("roas"), class: "num", cell: (x) => ratio(x.roas) },
      { label: t("profitRoi"), class: "num", cell: (x) => ratio(x.profit_roi) },
    ],
    flat,
    { rowAttrs: (x) => (x.part ? { class: "channel-part" } : {}) },
  );
}

/** Spend, revenue and ROI per channel, with the budget and the suggested budget. */
export function channelTable(rows) {
  return table(
    [
      { label: t("channel"), cell: (x) => x.channel },
      { label: t("kind"), cell: (x) => x.kind },
      { label: t("spend"), class: "num", cell: (x) => yuan(x.spend) },
      { label: t("revenue"), class: "num", cell: (x) => yuan(x.revenue) },
      { label: t("roi"), class: "num", cell: (x) => ratio(x.roi) },
      { label: t("budget"), class: "num", cell: (x) => yuan(x.budget) },
      {
        label: t("suggested"),
        class: "num",
        cell: (x) =>
          h("span", { class: x.suggested_budget > x.budget ? "up" : x.suggested_budget < x.budget ? "down" : "" }, yuan(x.suggested_budget)),
      },
    ],
    rows,
  );
}

/** Goals with their progress and whether each is met. */
export function goalsTable(goals) {
  return table(
    [
      { label: t("name"), cell: (g) => g.name },
      { label: t("metric"), cell: (g) => g.metric },
      { label: t("target"), class: "num", cell: (g) => goalValue(g, g.target) },
      { label: t("current"), class: "num", cell: (g) => goalValue(g, g.current) },
      { label: t("progress"), cell: (g) => h("div", { class: "goal-progress" }, progressBar(g.progress), pct(g.progress, 0)) },
      { label: "", cell: (g) => chip(g.met ? t("met") : t("notMet"), g.met ? "ok" : "warn") },
    ],
    goals,
  );
}

/** A goal's target or current value: rates and growths (within ±1) as percentages. */
function goalValue(g, v) {
  if (v === null || v === undefined) return t("na");
  return Math.abs(g.target) <= 1 ? pct(v) : num(v);
}

/** Alerts (guardrails, missed benchmarks): when, what, and what was done. */
export function alertsTable(alerts) {
  return table(
    [
      { label: t("time"), cell: (a) => when(a.at) },
      { label: t("campaign"), cell: (a) => a.campaign },
      { label: t("rule"), cell: (a) => a.rule },
      { label: t("detail"), cell: (a) => a.detail },
      { label: t("action"), cell: (a) => a.action },
    ],
    alerts,
  );
}
