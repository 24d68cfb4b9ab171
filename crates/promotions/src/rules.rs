//! Promotions and coupons as data (REQUIREMENTS R6.1–R6.9), and the stacking policy.
//!
//! Percentages are the share **paid**, as a Chinese 折 is written: `90` is 9折 (10 % off),
//! `85` is 85折. Money is fen. A rule applies to the lines of its [`Scope`], minus
//! `exclude_products`.

use std::collections::BTreeMap;

use flywheel_core::{Fen, Timestamp};
use serde::{Deserialize, Serialize};

/// Which lines a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// Every line of the cart, across shops (跨店, 全品類, platform-wide).
    #[default]
    All,
    /// The lines of one shop (店鋪).
    Shop {
        /// The shop.
        shop: String,
    },
    /// Lines of these categories (指定品類).
    Categories {
        /// The categories.
        categories: Vec<String>,
    },
    /// Lines of these products (指定商品).
    Products {
        /// The products.
        products: Vec<String>,
    },
}

/// One step of a 滿減 ladder: at least `min` → `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Threshold, inclusive (滿).
    pub min: Fen,
    /// Amount off (減).
    pub off: Fen,
}

/// One step of a 多件折扣: at least `quantity` items → pay `percent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityStep {
    /// Items in scope, at least.
    pub quantity: i64,
    /// Share paid, 1–100 (90 = 9折).
    pub percent: u32,
}

/// What a promotion does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PromotionKind {
    /// 滿減 ladder (滿100減10, 滿200減30): the highest step whose threshold the scope's
    /// amount meets; not repeating.
    Ladder {
        /// The steps.
        steps: Vec<Step>,
    },
    /// 每滿 X 減 Y, repeating, with an optional cap on the total off.
    EveryFull {
        /// Each full `per`…
        per: Fen,
        /// …takes `off`.
        off: Fen,
        /// At most this much off in all.
        #[serde(default)]
        cap: Option<Fen>,
    },
    /// 多件折扣 (2 件 9 折, 3 件 8 折): by the number of items in scope, every item in
    /// scope is priced at the highest step reached.
    MultiBuy {
        /// The steps.
        steps: Vec<QuantityStep>,
    },
    /// 買贈: every `buy` items in scope add `gift_quantity` of `gift_product` at 0.00
    /// (buy 4 of a buy-2-get-1 → 2 gifts), up to `max_gifts`.
    BuyGift {
        /// Items to buy per gift round.
        buy: i64,
        /// The gift's product id.
        gift_product: String,
        /// Its name, shown on the gift line.
        #[serde(default)]
        gift_name: Option<String>,
        /// Gifts per round.
        #[serde(default = "one")]
        gift_quantity: i64,
        /// At most this many gifts.
        #[serde(default)]
        max_gifts: Option<i64>,
    },
    /// 限時折扣 / 老用戶專享價: a share paid (`percent`) or a unit `price`, usually with a
    /// time window and perhaps an audience tag.
    PriceCut {
        /// Share paid, 1–100.
        #[serde(default)]
        percent: Option<u32>,
        /// Fixed unit price.
        #[serde(default)]
        price: Option<Fen>,
    },
    /// 會員價: share paid by member tier (tiers not listed pay full price).
    TierDiscount {
        /// Tier → share paid.
        percents: BTreeMap<String, u32>,
    },
    /// 首購立減: `off` on the buyer's first paid order (R6.8: 5 元).
    FirstOrder {
        /// Amount off.
        off: Fen,
    },
}

fn one() -> i64 {
    1
}

/// A promotion: applies by itself, no coupon needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Unique id.
    pub id: String,
    /// Display name (滿300減50).
    #[serde(default)]
    pub name: String,
    /// Lines covered.
    #[serde(default)]
    pub scope: Scope,
    /// Products never covered.
    #[serde(default)]
    pub exclude_products: Vec<String>,
    /// What it does.
    pub kind: PromotionKind,
    /// Active from (inclusive).
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    /// Active until (exclusive).
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    /// Only for buyers carrying this tag (e.g. 老用戶專享價).
    #[serde(default)]
    pub audience_tag: Option<String>,
}

/// What a coupon gives (R6.6, R6.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouponBenefit {
    /// A fixed amount off; with `min_spend` a 滿減券 / 滿額可用券, without a 無門檻券.
    Amount {
        /// Amount off.
        off: Fen,
        /// The scope's amount must be at least this.
        #[serde(default)]
        min_spend: Option<Fen>,
    },
    /// 折扣券: pay `percent` of the scope's amount, at most `cap` off.
    Percent {
        /// Share paid, 1–100.
        percent: u32,
        /// At most this much off.
        #[serde(default)]
        cap: Option<Fen>,
        /// The scope's amount must be at least this.
        #[serde(default)]
        min_spend: Option<Fen>,
    },
    /// 免運券: shipping becomes free.
    FreeShipping {
        /// The scope's amount must be at least this.
        #[serde(default)]
        min_spend: Option<Fen>,
    },
}

/// A coupon a user holds (an instance of a template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coupon {
    /// Unique id of this coupon.
    pub id: String,
    /// Display name (店鋪滿300減50券).
    #[serde(default)]
    pub name: String,
    /// The user it belongs to; another user cannot use it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Lines covered.
    #[serde(default)]
    pub scope: Scope,
    /// Products never covered.
    #[serde(default)]
    pub exclude_products: Vec<String>,
    /// What it gives.
    pub benefit: CouponBenefit,
    /// Usable from (inclusive).
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Usable until (exclusive).
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    /// Coupons of one group never combine; default `shipping` for free-shipping coupons, else
    /// by scope: `shop:<shop>`, `category`, `platform`.
    #[serde(default)]
    pub stacking_group: Option<String>,
    /// Combines with no other coupon.
    #[serde(default)]
    pub exclusive: bool,
}

/// The kinds the stacking matrix speaks of, in the order their stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// 限時折扣, 會員價, 多件折扣, 老用戶專享價 (unit-price changes).
    ItemDiscount,
    /// 買贈.
    Gift,
    /// 店鋪滿減 (scope: one shop, a category or products).
    ShopFullReduction,
    /// 跨店滿減 (scope: the whole cart).
    CrossShopFullReduction,
    /// 店鋪券.
    ShopCoupon,
    /// 品類券 / 商品券.
    CategoryCoupon,
    /// 平臺券 (跨店, 全品類).
    PlatformCoupon,
    /// 首購立減.
    FirstOrder,
    /// 積分抵現: points paying part of the order.
    Points,
}

/// 積分抵現: the buyer pays part of the order with points (REQUIREMENTS §7, issue 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsUse {
    /// Points the buyer offers (at most their balance; the caller checks it).
    pub points: i64,
    /// Points worth 1 元 ([SUGGESTED DEFAULT] 100).
    #[serde(default = "hundred")]
    pub points_per_yuan: i64,
    /// At most this share (percent) of what is left to pay may be paid with points
    /// ([SUGGESTED DEFAULT] 50).
    #[serde(default = "fifty")]
    pub max_percent: u32,
}

fn hundred() -> i64 {
    100
}

fn fifty() -> u32 {
    50
}

/// How unit-price changes on one line combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ItemDiscounts {
    /// The lowest price wins per line (default: 限時折扣 and 會員價 do not stack).
    #[default]
    Best,
    /// Each applies to the price the previous ones left.
    Stack,
}

/// The amount a cross-shop 滿減 threshold is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CrossShopBase {
    /// After unit-price changes, before shop 滿減 (default; fixture F11's reading).
    #[default]
    BeforeShopReductions,
    /// After shop 滿減 too.
    AfterShopReductions,
}

/// What the margin guard does below the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginAction {
    /// Price anyway, listing the lines below the floor.
    Warn,
    /// Refuse the quote (`margin_floor`).
    Refuse,
}

/// The margin guard (R6.5): each line's payable amount ≥ its cost × `cost_percent` / 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginFloor {
    /// Floor as a share of cost, e.g. 100 = sell at cost at least, 110 = cost + 10 %.
    pub cost_percent: u32,
    /// Warn or refuse.
    pub action: MarginAction,
}

/// The stacking and exclusion rules (R6.4: 店鋪滿減 and 跨店滿減 stack by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StackingPolicy {
    /// Pairs of kinds that never apply together; the later stage's rule is the one refused.
    pub exclusive: Vec<[RuleKind; 2]>,
    /// How unit-price changes combine.
    pub item_discounts: ItemDiscounts,
    /// What a cross-shop threshold is measured on.
    pub cross_shop_base: CrossShopBase,
    /// The margin guard, off when absent.
    pub margin_floor: Option<MarginFloor>,
}

impl StackingPolicy {
    /// Whether kinds `a` and `b` exclude each other.
    pub fn excludes(&self, a: RuleKind, b: RuleKind) -> bool {
        self.exclusive
            .iter()
            .any(|[x, y]| (*x == a && *y == b) || (*x == b && *y == a))
    }
}

impl Promotion {
    /// The stage this promotion runs in.
    pub fn rule_kind(&self) -> RuleKind {
        match (&self.kind, &self.scope) {
            (
                PromotionKind::MultiBuy { .. }
                | PromotionKind::PriceCut { .. }
                | PromotionKind::TierDiscount { .. },
                _,
            ) => RuleKind::ItemDiscount,
            (PromotionKind::BuyGift { .. }, _) => RuleKind::Gift,
            (PromotionKind::FirstOrder { .. }, _) => RuleKind::FirstOrder,
            (_, Scope::All) => RuleKind::CrossShopFullReduction,
            _ => RuleKind::ShopFullReduction,
        }
    }
}

impl Coupon {
    /// The stage (and matrix kind) of this coupon.
    pub fn rule_kind(&self) -> RuleKind {
        match self.scope {
            Scope::Shop { .. } => RuleKind::ShopCoupon,
            Scope::Categories { .. } | Scope::Products { .. } => RuleKind::CategoryCoupon,
            Scope::All => RuleKind::PlatformCoupon,
        }
    }

    /// Its stacking group.
    pub fn group(&self) -> String {
        if let Some(g) = &self.stacking_group {
            return g.clone();
        }
        if matches!(self.benefit, CouponBenefit::FreeShipping { .. }) {
            return "shipping".to_owned();
        }
        match &self.scope {
            Scope::Shop { shop } => format!("shop:{shop}"),
            Scope::Categories { .. } | Scope::Products { .. } => "category".to_owned(),
            Scope::All => "platform".to_owned(),
        }
    }
}
