// Profiles: find one by any of its ids, find many by a segment expression
// (POST /api/v1/segments/preview), or page through the profile list (GET /api/v1/profiles).

import { api, qs, seg } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, when, profileLink, errorBox, hashParams, setHashParams } from "../ui.js";

const PAGE = 50;

export async function render(el) {
  const p = hashParams();
  const results = h("div", { class: "results" });
  const idInput = h("input", { type: "search", class: "search-id", placeholder: "u000001", value: "" });
  const idStatus = h("span", { class: "status" });
  const ruleInput = h("input", { type: "search", class: "search-rule", placeholder: 'city = "上海" and orders(all) >= 2', value: p.rule || "" });
  const findId = async (e) => {
    e.preventDefault();
    const id = idInput.value.trim();
    if (!id) return;
    mount(idStatus, t("loading"));
    try {
      const prof = await api(`/profiles/${seg(id)}`);
      location.hash = `#/profile/${encodeURIComponent(prof.id)}`;
    } catch (err) {
      mount(idStatus, err.status === 404 ? h("span", { class: "error" }, t("notFound")) : errorBox(err));
    }
  };
  const findRule = async (e) => {
    e?.preventDefault();
    const rule = ruleInput.value.trim();
    setHashParams(rule ? { rule } : {});
    try {
      mount(results, rule ? await byRule(rule) : await list());
    } catch (err) {
      mount(results, errorBox(err));
    }
  };
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("profilesTitle"))),
    h(
      "div",
      { class: "search-forms" },
      h("form", { class: "panel", onsubmit: findId }, h("label", {}, t("searchById")), h("div", { class: "row" }, idInput, h("button", { class: "primary" }, t("search")), idStatus)),
      h("form", { class: "panel", onsubmit: findRule }, h("label", {}, t("searchByRule")), h("div", { class: "row" }, ruleInput, h("button", { class: "primary" }, t("search")))),
    ),
    results,
  );
  mount(results, p.rule ? await byRule(p.rule) : await list());
}

/** Profiles matching a segment expression: the total and the first page. */
async function byRule(expression) {
  const data = await api("/segments/preview", { method: "POST", body: { expression, limit: PAGE } });
  return panel(
    t("matches", { n: num(data.total) }),
    table(
      [
        { label: t("profileId"), cell: (m) => profileLink(m.profile_id) },
        { label: t("userIds"), cell: (m) => m.user_id || "—" },
      ],
      data.members,
    ),
  );
}

/** The profile list, a page at a time. */
async function list(cursor) {
  const data = await api(`/profiles${qs({ limit: PAGE, cursor })}`);
  const rows = h("div", {});
  const more = data.next_cursor
    ? h(
        "button",
        {
          class: "ghost",
          onclick: async (e) => {
            e.target.remove();
            rows.append(await list(data.next_cursor));
          },
        },
        t("more"),
      )
    : null;
  mount(
    rows,
    table(
      [
        { label: t("profileId"), cell: (r) => profileLink(r.id) },
        { label: t("firstSeen"), cell: (r) => when(r.first_seen) },
        { label: t("lastSeen"), cell: (r) => when(r.last_seen) },
        { label: t("events"), class: "num", cell: (r) => num(r.event_count) },
      ],
      data.profiles,
    ),
    more,
  );
  return cursor ? rows : panel(t("profilesTitle"), rows);
}
