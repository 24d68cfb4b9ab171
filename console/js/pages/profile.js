// One profile: ids, traits, tags, segments, RFM, lifecycle, tier and points, the event
// timeline (cursor-paged), orders, messages and coupons — all fetched in parallel.

import { api, qs, seg } from "../api.js";
import { t } from "../i18n.js";
import { h, mount, panel, table, num, yuan, when, chip, errorBox } from "../ui.js";

const EVENTS_PAGE = 30;

export async function render(el, id) {
  const profile = await api(`/profiles/${seg(id)}`);
  const pid = seg(profile.id);
  const userId = (profile.user_ids || [])[0];
  const u = userId ? seg(userId) : null;
  const [audience, events, orders, coupons, points, tier, messages] = await Promise.all([
    api(`/profiles/${pid}/audience`),
    api(`/profiles/${pid}/events${qs({ limit: EVENTS_PAGE })}`),
    api(`/profiles/${pid}/orders`),
    u ? api(`/users/${u}/coupons`) : null,
    u ? api(`/users/${u}/points${qs({ limit: 10 })}`) : null,
    u ? api(`/users/${u}/tier`) : null,
    u ? api(`/messages${qs({ user_id: userId, limit: 20 })}`) : null,
  ]);
  const name = profile.traits?.name;
  mount(
    el,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("profileTitle"), ": ", name ? `${name} · ` : "", h("code", {}, profile.id)),
    ),
    summary(profile, audience, tier, points),
    h(
      "div",
      { class: "two-col" },
      h("div", {}, traitsPanel(profile, audience), ordersPanel(orders), messagesPanel(messages), couponsPanel(coupons)),
      h("div", {}, timeline(pid, events)),
    ),
  );
}

function summary(profile, audience, tier, points) {
  const rfm = audience.rfm;
  const item = (label, value) => h("div", { class: "card kpi" }, h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value small" }, value));
  return h(
    "div",
    {},
    h(
      "div",
      { class: "cards" },
      item(t("tier"), tier ? tier.tier || "—" : "—"),
      item(t("spend365"), tier ? yuan(tier.spend_365d) : "—"),
      item(t("growth365"), tier ? num(tier.growth_365d) : "—"),
      item(t("points"), points ? num(points.balance) : "—"),
      item(t("lifecycle"), audience.lifecycle || "—"),
      item(t("rfm"), rfm ? `R${rfm.r} F${rfm.f} M${rfm.m} · ${rfm.segment}` : "—"),
      item(t("events"), num(profile.event_count)),
    ),
    panel(
      null,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("userIds")),
        h("dd", {}, (profile.user_ids || []).join(", ") || "—"),
        h("dt", {}, t("anonIds")),
        h("dd", {}, (profile.anonymous_ids || []).join(", ") || "—"),
        h("dt", {}, t("firstSeen")),
        h("dd", {}, when(profile.first_seen)),
        h("dt", {}, t("lastSeen")),
        h("dd", {}, when(profile.last_seen)),
        h("dt", {}, t("lastActive")),
        h("dd", {}, profile.last_active ? when(profile.last_active) : "—"),
        h("dt", {}, t("tags")),
        h("dd", { class: "tags" }, audience.tags.length ? audience.tags.map((x) => chip(x)) : "—"),
        h("dt", {}, t("segments")),
        h("dd", { class: "segments" }, audience.segments.length ? audience.segments.map((x) => chip(x, "seg")) : "—"),
      ),
      (profile.user_ids || []).length ? null : h("p", { class: "hint" }, t("noUserId")),
    ),
  );
}

const show = (v) => (v === null || v === undefined ? "—" : Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v));

/** A computed trait's value: money traits (fen) in yuan, times in the viewer's zone. */
function showTrait(name, v) {
  if (typeof v === "number" && /^(spend|aov)\b/.test(name)) return yuan(v);
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) return when(v);
  return show(v);
}

function traitsPanel(profile, audience) {
  const own = Object.entries(profile.traits || {});
  const computed = Object.entries(audience.traits || {}).filter(([, v]) => v !== null);
  const kv = (rows) =>
    table(
      [
        { label: t("name"), cell: (r) => r[0] },
        { label: "", cell: (r) => showTrait(r[0], r[1]) },
      ],
      rows,
    );
  return h("div", {}, panel(t("traits"), kv(own)), panel(t("computed"), h("div", { class: "scroll short" }, kv(computed))));
}

function ordersPanel(data) {
  return panel(
    t("ordersTitle"),
    table(
      [
        { label: "ID", cell: (o) => o.order_id },
        { label: t("placedAt"), cell: (o) => when(o.placed_at) },
        { label: t("status"), cell: (o) => o.status },
        { label: t("total"), class: "num", cell: (o) => yuan(o.total_fen) },
        { label: t("refunded"), class: "num", cell: (o) => (o.refunded_fen ? yuan(o.refunded_fen) : "") },
      ],
      data.orders || [],
    ),
  );
}

function messagesPanel(data) {
  if (!data) return null;
  return panel(
    t("messages"),
    table(
      [
        { label: t("time"), cell: (m) => when(m.created_at) },
        { label: t("channel"), cell: (m) => m.channel },
        { label: t("journey"), cell: (m) => m.journey || m.campaign || "—" },
        { label: t("subject"), cell: (m) => m.subject || "—" },
        { label: t("status"), cell: (m) => m.status },
      ],
      data.messages || [],
    ),
  );
}

function couponsPanel(data) {
  if (!data) return null;
  return panel(
    t("coupons"),
    table(
      [
        { label: t("code"), cell: (c) => c.code || c.id },
        { label: t("name"), cell: (c) => c.template_id },
        { label: t("state"), cell: (c) => show(c.state) },
      ],
      data.coupons || [],
    ),
  );
}

/** A short description of an event's properties. */
function describe(e) {
  const p = e.properties || {};
  if (e.type === "identify") return Object.keys(e.traits || {}).join(", ");
  if (Array.isArray(p.products)) return `${p.products.map((x) => x.name).join("、")}${p.total ? ` · ¥${p.total}` : ""}`;
  if (p.name) return `${p.name}${p.price ? ` · ¥${p.price}` : ""}`;
  if (p.query) return p.query;
  return e.name || "";
}

function timeline(pid, page) {
  const list = h("ol", { class: "timeline" });
  const add = (events) =>
    list.append(
      ...events.map((e) =>
        h(
          "li",
          { class: "event" },
          h("time", {}, when(e.timestamp)),
          h("strong", {}, e.event || e.name || e.type),
          h("span", { class: "desc" }, describe(e)),
        ),
      ),
    );
  add(page.events || []);
  const box = panel(t("timeline"), list);
  let cursor = page.next_cursor;
  const more = h(
    "button",
    {
      class: "ghost",
      onclick: async () => {
        try {
          const next = await api(`/profiles/${pid}/events${qs({ limit: EVENTS_PAGE, cursor })}`);
          add(next.events || []);
          cursor = next.next_cursor;
          if (!cursor) more.remove();
        } catch (err) {
          box.append(errorBox(err));
        }
      },
    },
    t("more"),
  );
  if (cursor) box.append(more);
  if (!(page.events || []).length) list.append(h("li", { class: "empty" }, t("empty")));
  return box;
}
