// Campaign ROI: per-campaign funnel and money (GET /api/v1/analytics/campaigns), revenue
// by attribution model first/last and window (GET /api/v1/analytics/attribution; the
// server's configured default until one is picked), channels with the budget suggestion
// (GET /api/v1/analytics/channels), goals and alerts; the tables are ../marketing.js's
// (shared with 復盤).

import { api, qs } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, yuan, dateRange, lastDays, hashParams, setHashParams, errorBox, reloader } from "../ui.js";
import { campaignTable, channelTable, goalsTable, alertsTable } from "../marketing.js";

export async function render(el) {
  const p = hashParams();
  const range = p.from && p.to ? { from: p.from, to: p.to } : lastDays(30);
  const month = p.month || range.to.slice(0, 7);
  setHashParams({ ...range, month, model: p.model, window_days: p.window_days });
  const attrQuery = { model: p.model, window_days: p.window_days };
  const [campaigns, attribution, channels, goals, alerts] = await Promise.all([
    api(`/analytics/campaigns${qs(range)}`),
    api(`/analytics/attribution${qs({ ...range, ...attrQuery })}`),
    api(`/analytics/channels${qs({ month })}`),
    api("/analytics/goals"),
    api("/analytics/alerts"),
  ]);
  const reload = reloader(el, render, (next) => ({ ...hashParams(), ...next }));
  const monthInput = h("input", { type: "month", value: month, class: "month" });
  monthInput.addEventListener("change", () => monthInput.value && reload({ ...range, month: monthInput.value }));
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("campaignsTitle")), dateRange(range, (r) => reload({ ...r, month }))),
    panel(t("campaignsTitle"), h("div", { class: "scroll" }, campaignTable(campaigns.rows || []))),
    h(
      "div",
      { class: "two-col" },
      h(
        "div",
        {},
        panel(h("span", {}, t("channelsTitle"), " ", h("label", { class: "inline" }, t("month"), " ", monthInput)), channelTable(channels.rows || [])),
        attributionPanel(range, attribution),
      ),
      h("div", {}, panel(t("goals"), goalsTable(goals.goals || [])), panel(t("alerts"), alertsTable(alerts.alerts || []))),
    ),
  );
}

/**
 * Revenue credited by first or last touch within a window; switching the model or the
 * window reloads this panel only (and remembers the choice in the hash).
 */
function attributionPanel(range, first) {
  const body = h("div", { class: "attribution-body" });
  const box = h("section", { class: "panel attribution" }, h("h2", {}, t("attribution")));
  const toggle = h("div", { class: "toggle", role: "group", "aria-label": t("attribution") });
  const windowInput = h("input", { type: "number", min: 1, max: 365, step: 1, class: "window-days" });
  let seq = 0;
  const show = (data) => {
    box.dataset.model = data.model;
    box.dataset.window = String(data.window_days);
    windowInput.value = String(data.window_days);
    mount(
      toggle,
      ["first", "last"].map((m) =>
        h(
          "button",
          { type: "button", class: m === data.model ? "on" : "", "data-model": m, "aria-pressed": String(m === data.model), onclick: () => m !== box.dataset.model && load({ model: m }) },
          t(m === "first" ? "modelFirst" : "modelLast"),
        ),
      ),
    );
    mount(body, attributionTable(data.rows || []));
  };
  const load = async (change) => {
    const mine = ++seq;
    const q = { model: box.dataset.model, window_days: box.dataset.window, ...change };
    setHashParams({ ...hashParams(), ...q });
    box.classList.add("busy");
    try {
      const data = await api(`/analytics/attribution${qs({ ...range, ...q })}`);
      if (mine === seq) show(data);
    } catch (e) {
      if (mine === seq) mount(body, errorBox(e));
    } finally {
      if (mine === seq) box.classList.remove("busy");
    }
  };
  windowInput.addEventListener("change", () => {
    const n = parseInt(windowInput.value, 10);
    if (n >= 1 && n <= 365) load({ window_days: n });
  });
  show(first);
  box.append(
    h("div", { class: "panel-tools" }, toggle, h("label", { class: "inline" }, t("windowDays"), " ", windowInput)),
    body,
    h("p", { class: "hint" }, t("attributionHint")),
  );
  return box;
}

function attributionTable(rows) {
  return table(
    [
      { label: t("campaign"), cell: (x) => x.campaign },
      { label: t("channel"), cell: (x) => x.channel },
      { label: t("orders"), class: "num", cell: (x) => num(x.orders) },
      { label: t("revenue"), class: "num", cell: (x) => yuan(x.revenue) },
    ],
    rows,
  );
}
