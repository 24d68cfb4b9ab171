// 復盤 Reviews: the stored weekly and monthly reviews (GET /api/v1/analytics/reviews,
// newest period first, filtered here by cadence) and one of them as it was written
// (GET /api/v1/analytics/reviews/{id}), or the current week's or month's review computed
// now (GET /api/v1/analytics/review?cadence=&day=today). A review: KPIs against the
// period before, retention observed in the period, benchmark checks, and the campaign,
// channel, goal and alert tables of 營銷 ROI (../marketing.js).
//
// The address keeps the choice: #/reviews?cadence=weekly&id=3 or ?live=monthly.

import { api, qs, seg } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, yuan, pct, pp, signedPct, when, chip, day, hashParams, setHashParams, errorBox } from "../ui.js";
import { campaignTable, channelTable, goalsTable, alertsTable } from "../marketing.js";

const CADENCES = ["all", "weekly", "monthly"];

/** Metrics where a rise is bad (shown red when they go up). */
const LOWER_IS_BETTER = new Set(["churn_rate"]);

export async function render(el) {
  const p = hashParams();
  const state = {
    cadence: CADENCES.includes(p.cadence) ? p.cadence : "all",
    id: /^\d+$/.test(p.id || "") ? Number(p.id) : null,
    live: ["weekly", "monthly"].includes(p.live) ? p.live : null,
  };
  // A review named in the address loads alongside the list; otherwise the newest one shown.
  const chosen = state.live ? liveSource(state.live) : state.id !== null ? storedSource(state.id) : null;
  const [list, first] = await Promise.all([
    api(`/analytics/reviews${qs({ limit: 50 })}`),
    chosen && chosen.fetch().catch((error) => ({ error })),
  ]);
  const entries = list.reviews || [];

  const listBody = h("div", { class: "scroll short review-list" });
  const detail = h("div", { class: "review-detail" });
  const filter = h("div", { class: "toggle cadence-filter", role: "group", "aria-label": t("cadence") });
  let seq = 0;

  const save = () => setHashParams({ cadence: state.cadence === "all" ? "" : state.cadence, id: state.id, live: state.live });
  const showList = () => {
    mount(
      filter,
      CADENCES.map((c) =>
        h(
          "button",
          { type: "button", class: c === state.cadence ? "on" : "", "data-cadence": c, "aria-pressed": String(c === state.cadence), onclick: () => pick(c) },
          t(`cadence_${c}`),
        ),
      ),
    );
    const rows = entries.filter((e) => state.cadence === "all" || e.cadence === state.cadence);
    mount(
      listBody,
      table(
        [
          { label: t("cadence"), cell: (e) => chip(t(`cadence_${e.cadence}`), `cadence-${e.cadence}`) },
          {
            label: t("period"),
            cell: (e) => h("button", { type: "button", class: "link review-link", onclick: () => showReview(storedSource(e.id)) }, `${e.from} – ${e.to}`),
          },
          { label: t("written"), cell: (e) => when(e.created_at) },
          { label: t("delivery"), cell: (e) => e.delivery || h("span", { class: "hint" }, t("notSent")) },
        ],
        rows,
        {
          empty: t("noReviews"),
          rowAttrs: (e) => ({ "data-id": String(e.id), class: !state.live && e.id === state.id ? "selected review-row" : "review-row" }),
        },
      ),
    );
  };
  const pick = (cadence) => {
    state.cadence = cadence;
    save();
    showList();
  };
  /** Shows `source`'s review below the list (`data`: already fetched). */
  const showReview = async (source, data) => {
    const mine = ++seq;
    Object.assign(state, source.state);
    save();
    showList();
    detail.classList.add("busy");
    delete detail.dataset.ready;
    try {
      const r = data || (await source.fetch());
      if (mine !== seq) return;
      if (r.error) throw r.error;
      mount(detail, reviewView(r.review, r.entry));
      detail.dataset.ready = "1";
    } catch (e) {
      if (mine === seq) mount(detail, errorBox(e));
    } finally {
      if (mine === seq) detail.classList.remove("busy");
    }
  };

  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("navReviews")),
      ["weekly", "monthly"].map((c) =>
        h("button", { type: "button", class: `live-review live-${c}`, onclick: () => showReview(liveSource(c)) }, t(c === "weekly" ? "liveWeekly" : "liveMonthly")),
      ),
    ),
    panel(t("reviewList"), h("div", { class: "panel-tools" }, filter, h("span", { class: "hint" }, t("reviewListHint"))), listBody),
    detail,
  );
  showList();
  const newest = entries.find((e) => state.cadence === "all" || e.cadence === state.cadence);
  if (chosen) await showReview(chosen, first);
  else if (newest) await showReview(storedSource(newest.id));
}

/** A stored review: what it sets in the address, and how to fetch it. */
function storedSource(id) {
  return { state: { id, live: null }, fetch: () => api(`/analytics/reviews/${seg(id)}`) };
}

/** The review of the current week or month, computed now. */
function liveSource(cadence) {
  return { state: { id: null, live: cadence }, fetch: () => api(`/analytics/review${qs({ cadence, day: day(new Date()) })}`) };
}

/** A review: heading and facts, KPIs, retention, benchmarks, then the marketing tables. */
function reviewView(r, entry) {
  return h(
    "div",
    { "data-cadence": r.cadence, "data-from": r.from },
    panel(
      h(
        "span",
        {},
        `${t(`review_${r.cadence}`)} ${r.from} – ${r.to} `,
        entry ? null : chip(t("live"), "live"),
        r.complete ? null : chip(t("periodOpen"), "warn"),
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("previousPeriod")),
        h("dd", {}, `${r.previous_from} – ${r.previous_to}`),
        h("dt", {}, t("generatedAt")),
        h("dd", {}, when(r.generated_at)),
        entry ? [h("dt", {}, t("delivery")), h("dd", {}, entry.delivery || t("notSent"))] : null,
      ),
    ),
    h(
      "div",
      { class: "two-col" },
      panel(t("kpiChanges"), changesTable(r.changes || []), h("p", { class: "hint" }, t("changeHint"))),
      h(
        "div",
        {},
        panel(t("benchmarks"), benchmarksTable(r.benchmarks || []), h("p", { class: "hint" }, t("benchmarksHint"))),
        panel(t("retentionObserved"), retentionTable(r.retention || []), h("p", { class: "hint" }, t("retentionHint"))),
      ),
    ),
    panel(t("campaignsTitle"), h("div", { class: "scroll" }, campaignTable(r.campaigns || []))),
    h(
      "div",
      { class: "two-col" },
      panel(t("channelsTitle"), channelTable(r.channels || [])),
      h("div", {}, panel(t("goals"), goalsTable(r.goals || [])), panel(t("alerts"), alertsTable(r.alerts || []))),
    ),
  );
}

/** A review figure: money in yuan, a count, or a rate. */
function figure(f) {
  if (!f) return t("na");
  if (f.unit === "fen") return yuan(f.value);
  if (f.unit === "rate") return pct(f.value, 2);
  return num(f.value);
}

/** The change of a metric: relative for money and counts, points for rates; coloured good/bad. */
function changeCell(c) {
  const text = c.current?.unit === "rate" ? pp(c.change, 2) : signedPct(c.change, 2);
  if (c.change === null || c.change === undefined || c.change === 0) return text;
  const better = LOWER_IS_BETTER.has(c.metric) ? c.change < 0 : c.change > 0;
  return h("span", { class: better ? "up" : "down", "data-dir": c.change > 0 ? "up" : "down" }, text);
}

function changesTable(changes) {
  return table(
    [
      { label: t("metric"), cell: (c) => t(c.metric) },
      { label: t("thisPeriod"), class: "num current", cell: (c) => figure(c.current) },
      { label: t("previousValue"), class: "num", cell: (c) => figure(c.previous) },
      { label: t("change"), class: "num change", cell: changeCell },
    ],
    changes,
    { rowAttrs: (c) => ({ "data-metric": c.metric, class: "kpi-change" }) },
  );
}

function retentionTable(rows) {
  return table(
    [
      { label: t("retentionDay"), cell: (x) => t("dayNShort", { n: x.day_n }) },
      { label: t("count"), class: "num", cell: (x) => num(x.users) },
      { label: t("retained"), class: "num", cell: (x) => num(x.retained) },
      { label: t("retentionRate"), class: "num", cell: (x) => pct(x.rate, 2) },
    ],
    rows,
  );
}

function benchmarksTable(rows) {
  return table(
    [
      { label: t("name"), cell: (b) => b.name },
      { label: t("metric"), cell: (b) => t(b.metric) },
      { label: t("value"), class: "num", cell: (b) => pct(b.value, 2) },
      { label: t("benchmark"), class: "num", cell: (b) => pct(b.benchmark, 2) },
      {
        label: "",
        cell: (b) => (b.value === null || b.value === undefined ? t("na") : chip(b.missed ? t("benchMissed") : t("benchOk"), b.missed ? "missed" : "ok")),
      },
    ],
    rows,
    { rowAttrs: (b) => ({ class: b.missed ? "benchmark missed" : "benchmark" }) },
  );
}
