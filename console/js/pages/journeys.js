// Journeys: each journey with its status and per-step counts
// (GET /api/v1/journeys, then GET /api/v1/journeys/{name}/stats for each, in parallel);
// a journey's uplift over its holdout on demand (GET /api/v1/analytics/uplift?journey=).

import { api, seg, qs } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, when, chip, pct, pp, errorBox } from "../ui.js";

export async function render(el) {
  const data = await api("/journeys");
  const journeys = data.journeys || [];
  const stats = await Promise.all(journeys.map((j) => api(`/journeys/${seg(j.name)}/stats`)));
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("journeysTitle"))),
    panel(
      null,
      table(
        [
          {
            label: t("name"),
            cell: (j) =>
              h("button", { type: "button", class: "link", onclick: () => document.getElementById(`journey-${j.name}`)?.scrollIntoView() }, j.name),
          },
          { label: t("status"), cell: (j) => chip(j.status, `status-${j.status}`) },
          { label: t("version"), class: "num", cell: (j) => j.version },
          { label: t("steps"), class: "num", cell: (j) => (j.definition?.steps || []).length },
          { label: t("converted"), class: "num", cell: (j) => num(stats[journeys.indexOf(j)].converted) },
          { label: t("updated"), cell: (j) => when(j.updated_at) },
        ],
        journeys,
      ),
    ),
    h(
      "div",
      { class: "journey-grid" },
      journeys.map((j, i) => journeyPanel(j, stats[i])),
    ),
  );
}

/** One journey: its steps in order with their visits, then branch counts, run states, messages. */
function journeyPanel(j, s) {
  const visits = new Map(s.steps);
  const steps = (j.definition?.steps || []).map((st) => [st.id, st.type, visits.get(st.id) ?? 0]);
  const known = new Set(steps.map((x) => x[0]));
  const branches = s.steps.filter(([k]) => !known.has(k)).map(([k, v]) => [k, "", v]);
  const pairs = (rows) => (rows.length ? rows.map(([k, v]) => `${k}: ${num(v)}`).join(" · ") : "—");
  return h(
    "section",
    { class: "panel journey", id: `journey-${j.name}` },
    h("h2", {}, j.name, " ", chip(j.status, `status-${j.status}`)),
    j.definition?.description ? h("p", { class: "hint" }, j.definition.description) : null,
    table(
      [
        { label: t("step"), cell: (r) => r[0] },
        { label: t("kind"), cell: (r) => r[1] },
        { label: t("entered"), class: "num", cell: (r) => num(r[2]) },
      ],
      [...steps, ...branches],
    ),
    h(
      "dl",
      { class: "facts small" },
      h("dt", {}, t("runs")),
      h("dd", {}, pairs(s.states)),
      h("dt", {}, t("messages")),
      h("dd", {}, pairs(s.messages)),
      h("dt", {}, t("converted")),
      h("dd", {}, num(s.converted)),
    ),
    upliftBox(j),
  );
}

/** Does the journey hold users out (a split step with a holdout share)? */
const hasHoldout = (j) => (j.definition?.steps || []).some((st) => st.type === "split" && Number(st.holdout) > 0);

/** A button that fetches and shows the journey's uplift over its holdout. */
function upliftBox(j) {
  const out = h("div", { class: "uplift-result" });
  const box = h(
    "div",
    { class: "uplift", "data-journey": j.name },
    h("div", { class: "row" }, h("strong", {}, t("uplift")), h("button", { type: "button", class: "uplift-show", onclick: () => load() }, t("upliftShow"))),
    hasHoldout(j) ? null : h("p", { class: "hint" }, t("noHoldout")),
    out,
  );
  const load = async () => {
    box.classList.add("busy");
    try {
      const u = await api(`/analytics/uplift${qs({ journey: j.name })}`);
      mount(out, upliftView(u));
      box.dataset.ready = "1";
    } catch (e) {
      mount(out, errorBox(e));
    } finally {
      box.classList.remove("busy");
    }
  };
  return box;
}

function upliftView(u) {
  const arm = (key) => ({ arm: t(key), ...(u[key] || {}) });
  const ci = u.ci_low == null || u.ci_high == null ? t("na") : `${pp(u.ci_low)} … ${pp(u.ci_high)}`;
  return h(
    "div",
    {},
    h("div", { class: "uplift-value" }, pp(u.uplift)),
    h("div", { class: "hint uplift-ci" }, `${t("ci95")}: ${ci}`),
    table(
      [
        { label: t("arm"), cell: (r) => r.arm },
        { label: t("count"), class: "num", cell: (r) => num(r.users) },
        { label: t("converted"), class: "num", cell: (r) => num(r.converted) },
        { label: t("convRate"), class: "num", cell: (r) => pct(r.rate) },
      ],
      [arm("treated"), arm("holdout")],
    ),
    h("p", { class: "hint" }, t("upliftHint")),
  );
}
