// Tags: every tag by group with its member count (GET /api/v1/tags); a tag's members
// (GET /api/v1/tags/{name}/members) beside the list.

import { api, qs, seg } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, chip, profileLink, errorBox, hashParams, setHashParams } from "../ui.js";

export async function render(el) {
  const data = await api("/tags");
  const tags = data.tags || [];
  const side = h("div", { class: "members" });
  const showMembers = async (name) => {
    setHashParams({ tag: name });
    el.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
    el.querySelector(`tr[data-tag="${CSS.escape(name)}"]`)?.classList.add("selected");
    try {
      mount(side, await members(name));
    } catch (err) {
      mount(side, errorBox(err));
    }
  };
  const groups = [...new Set(tags.map((x) => x.group || "—"))];
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("tagsTitle"))),
    h(
      "div",
      { class: "two-col" },
      h(
        "div",
        {},
        groups.map((g) =>
          panel(
            g,
            table(
              [
                { label: t("name"), cell: (x) => h("button", { type: "button", class: "link tag-link", onclick: () => showMembers(x.name) }, x.name) },
                { label: t("kind"), cell: (x) => chip(x.kind, x.kind) },
                { label: t("rule"), cell: (x) => (x.rule ? h("code", {}, x.rule) : "") },
                { label: t("members"), class: "num", cell: (x) => num(x.members) },
              ],
              tags.filter((x) => (x.group || "—") === g),
              { rowAttrs: (x) => ({ "data-tag": x.name }) },
            ),
          ),
        ),
      ),
      side,
    ),
  );
  const first = hashParams().tag || tags.find((x) => x.members > 0)?.name;
  if (first) await showMembers(first);
}

async function members(name) {
  const data = await api(`/tags/${seg(name)}/members${qs({ limit: 50 })}`);
  return panel(
    `${t("membersOf", { name })} · ${num(data.total)}`,
    table([{ label: t("profileId"), cell: (m) => profileLink(m.profile_id, m.user_id || m.profile_id) }], data.members || []),
  );
}
