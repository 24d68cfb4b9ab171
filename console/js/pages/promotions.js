// Coupons and promotions: coupon templates (GET /api/v1/coupon-templates), flash sales
// (GET /api/v1/flash-sales) and group deals (GET /api/v1/group-deals).

import { api } from "../api.js";
import { t, lang } from "../i18n.js";
import { h, mount, panel, table, num, yuan, when } from "../ui.js";

export async function render(el) {
  const [templates, flash, deals] = await Promise.all([api("/coupon-templates"), api("/flash-sales"), api("/group-deals")]);
  mount(
    el,
    h("div", { class: "page-head" }, h("h1", {}, t("navPromotions"))),
    panel(
      t("couponTemplates"),
      table(
        [
          { label: "ID", cell: (r) => h("code", {}, r.template.id) },
          { label: t("name"), cell: (r) => r.template.name },
          { label: t("benefit"), cell: (r) => benefit(r.template.benefit) },
          { label: t("validity"), cell: (r) => validity(r.template.validity) },
          { label: t("quantity"), class: "num", cell: (r) => (r.template.total_quantity == null ? "∞" : num(r.template.total_quantity)) },
          { label: t("issued"), class: "num", cell: (r) => num(r.issued) },
        ],
        templates.templates || [],
      ),
    ),
    panel(
      t("flashSales"),
      table(
        [
          { label: "ID", cell: (r) => h("code", {}, r.sale.id) },
          { label: t("product"), cell: (r) => r.sale.product },
          { label: t("price"), class: "num", cell: (r) => yuan(r.sale.price) },
          { label: t("stock"), class: "num", cell: (r) => num(r.sale.stock) },
          { label: t("remaining"), class: "num", cell: (r) => num(r.remaining) },
          { label: t("starts"), cell: (r) => when(r.sale.starts_at) },
          { label: t("ends"), cell: (r) => when(r.sale.ends_at) },
        ],
        flash.sales || [],
      ),
    ),
    panel(
      t("groupDeals"),
      table(
        [
          { label: "ID", cell: (r) => h("code", {}, r.id) },
          { label: t("product"), cell: (r) => r.product },
          { label: t("groupPrice"), class: "num", cell: (r) => yuan(r.group_price) },
          { label: t("groupSize"), class: "num", cell: (r) => num(r.group_size) },
          { label: t("joinHours"), class: "num", cell: (r) => num(r.join_hours) },
        ],
        deals.deals || [],
      ),
    ),
  );
}

/** "滿100減10" / "100 off 10" style text for a coupon benefit. */
function benefit(b) {
  const zh = lang() === "zh";
  const min = b.min_spend ? (zh ? `滿${b.min_spend / 100}` : `over ¥${b.min_spend / 100}, `) : zh ? "無門檻" : "";
  if (b.type === "amount") return zh ? `${min}減${b.off / 100}元` : `${min}¥${b.off / 100} off`;
  if (b.type === "percent") {
    const cap = b.cap ? (zh ? `，最多減${b.cap / 100}元` : ` (at most ¥${b.cap / 100})`) : "";
    return zh ? `${min}${b.percent / 10}折${cap}` : `${min}pay ${b.percent}%${cap}`;
  }
  if (b.type === "free_shipping") return zh ? `${min}免運費` : `${min}free shipping`;
  return JSON.stringify(b);
}

function validity(v) {
  if (!v) return "—";
  if (v.type === "days_after_issue") return lang() === "zh" ? `領取後 ${v.days} 天` : `${v.days} days after issue`;
  if (v.type === "window") return `${when(v.from)} – ${when(v.until)}`;
  return JSON.stringify(v);
}
