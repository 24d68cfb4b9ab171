// Segment builder: type an expression (docs/segments.md), see the live count
// (POST /api/v1/segments/count, debounced, errors inline), save it (POST /api/v1/segments);
// the saved segments with their sizes (GET /api/v1/segments).

import { api } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, errorBox, debounce, hashParams, setHashParams } from "../ui.js";

const EXAMPLES = [
  'spend(90d) > 500 元 and event("Product Added", within: 30d) >= 1',
  'gender = "女" and age >= 25 and age < 35',
  'region in ["華東", "華北"] and orders(365d) >= 2',
  'last_sign_in within 30d and not tag("流失風險客戶")',
  'categories_bought contains "護膚"',
  'bought category "彩妝" within 90d and not bought brand "雪花秀"',
];

export async function render(el) {
  const p = hashParams();
  const listBox = h("div", {});
  const expr = h("textarea", { class: "expression", rows: 4, spellcheck: false }, p.expr || EXAMPLES[0]);
  const count = h("div", { class: "live-count", "aria-live": "polite" });
  const canonical = h("div", { class: "canonical" });
  const message = h("div", { class: "save-status" });
  let inflight = null;

  const recount = async () => {
    const expression = expr.value.trim();
    setHashParams(expression ? { expr: expression } : {});
    if (!expression) {
      mount(count);
      mount(canonical);
      return;
    }
    inflight?.abort();
    const ctl = new AbortController();
    inflight = ctl;
    count.classList.add("busy");
    try {
      const r = await api("/segments/count", { method: "POST", body: { expression }, signal: ctl.signal });
      if (ctl !== inflight) return;
      mount(count, h("span", { class: "label" }, t("liveCount")), h("span", { class: "value", "data-count": r.count }, num(r.count)));
      mount(canonical, h("span", { class: "label" }, t("canonical")), " ", h("code", {}, r.expression));
    } catch (err) {
      if (err.name === "AbortError" || ctl !== inflight) return;
      mount(count, errorBox(err));
      mount(canonical);
    } finally {
      if (ctl === inflight) count.classList.remove("busy");
    }
  };
  expr.addEventListener("input", debounce(recount, 350));

  const name = h("input", { type: "text", class: "seg-name", placeholder: "high_value_women", required: true });
  const desc = h("input", { type: "text", class: "seg-desc" });
  const save = async (e) => {
    e.preventDefault();
    try {
      const r = await api("/segments", {
        method: "POST",
        body: { name: name.value.trim(), expression: expr.value.trim(), description: desc.value.trim() || undefined },
      });
      mount(message, h("span", { class: "ok" }, t("saved", { name: r.name })));
      mount(listBox, await segmentList());
    } catch (err) {
      mount(message, errorBox(err));
    }
  };

  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("segmentsTitle"))),
    panel(
      t("expression"),
      expr,
      h("div", { class: "examples" }, h("span", { class: "hint" }, `${t("examples")}: `), EXAMPLES.map((x) => h("button", { type: "button", class: "chip example", onclick: () => { expr.value = x; recount(); } }, x))),
      count,
      canonical,
      h("p", { class: "hint" }, t("docsHint")),
      h(
        "form",
        { class: "row save-form", onsubmit: save },
        h("label", {}, t("name"), " ", name),
        h("label", {}, t("description"), " ", desc),
        h("button", { type: "submit", class: "primary" }, t("saveAs")),
        message,
      ),
    ),
    listBox,
  );
  const [list] = await Promise.all([segmentList(), recount()]);
  mount(listBox, list);
}

async function segmentList() {
  const data = await api("/segments");
  return panel(
    t("segmentList"),
    table(
      [
        { label: t("name"), cell: (s) => s.name },
        { label: t("expression"), cell: (s) => h("code", {}, s.expression) },
        { label: t("description"), cell: (s) => s.description || "" },
        { label: t("size"), class: "num", cell: (s) => num(s.members) },
      ],
      data.segments || [],
    ),
  );
}
