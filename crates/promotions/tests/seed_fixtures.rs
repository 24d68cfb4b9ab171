//! The seed examples of REQUIREMENTS §6 and fixtures F7–F13, as written there, through
//! the JSON form a client sends.

use flywheel_promotions::best::best_combination;
use flywheel_promotions::{price, PricingInput, Quote};
use serde_json::{json, Value};

fn input(v: Value) -> PricingInput {
    serde_json::from_value(v).expect("valid pricing input")
}

fn quote(v: Value) -> Quote {
    price(&input(v)).expect("priced")
}

fn line(shop: &str, product: &str, category: &str, price_fen: i64, qty: i64) -> Value {
    json!({"shop": shop, "product": product, "category": category, "unit_price": price_fen, "quantity": qty})
}

fn reason<'a>(q: &'a Quote, id: &str) -> &'a str {
    q.not_applied
        .iter()
        .find(|n| n.id == id)
        .map(|n| n.reason.as_str())
        .unwrap_or("applied")
}

const NOW: &str = "2024-11-11T12:00:00+08:00";

/// F9: 滿300減50, single store: 299.99 → 0 off; 300.00 → 50; 450.00 → 50 (not 每滿).
#[test]
fn f9_man_300_jian_50() {
    let rule = json!([{"id": "滿300減50", "scope": {"type": "shop", "shop": "X"},
                        "kind": {"type": "ladder", "steps": [{"min": 30000, "off": 5000}]}}]);
    for (cart, off, payable) in [(29999, 0, 29999), (30000, 5000, 25000), (45000, 5000, 40000)] {
        let q = quote(
            json!({"cart": {"lines": [line("X", "P1", "服飾", cart, 1)]}, "promotions": rule, "now": NOW}),
        );
        assert_eq!((q.discount.0, q.payable.0), (off, payable), "cart {cart}");
        if off == 0 {
            assert_eq!(reason(&q, "滿300減50"), "below_threshold");
            assert!(q.not_applied[0].message.contains("0.01"), "{:?}", q.not_applied);
        }
    }
}

/// F10: cross-store 滿200減20 over X 120 + Y 90 = 210 → 20 off, 190 payable; X alone would not qualify.
#[test]
fn f10_cross_store() {
    let rule =
        json!([{"id": "跨店滿200減20", "kind": {"type": "ladder", "steps": [{"min": 20000, "off": 2000}]}}]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 12000, 1), line("Y", "B", "食品", 9000, 1)]},
                         "promotions": rule, "now": NOW}),
    );
    assert_eq!((q.discount.0, q.payable.0), (2000, 19000));
    // Apportioned 120:90 → 11.43 and 8.57.
    assert_eq!(
        q.lines.iter().map(|l| l.discount.0).collect::<Vec<_>>(),
        vec![1143, 857]
    );
    let alone =
        quote(json!({"cart": {"lines": [line("X", "A", "服飾", 12000, 1)]}, "promotions": rule, "now": NOW}));
    assert_eq!(alone.discount.0, 0);
}

/// F11 (R6.4): 店鋪滿300減50 and 跨店滿200減20 stack on one order: X 300 + Y 50 → 280.
/// Just below either threshold, only the other applies.
#[test]
fn f11_shop_and_cross_store_stack() {
    let rules = json!([
        {"id": "店鋪滿300減50", "scope": {"type": "shop", "shop": "X"}, "kind": {"type": "ladder", "steps": [{"min": 30000, "off": 5000}]}},
        {"id": "跨店滿200減20", "kind": {"type": "ladder", "steps": [{"min": 20000, "off": 2000}]}}
    ]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 30000, 1), line("Y", "B", "食品", 5000, 1)]},
                         "promotions": rules, "now": NOW}),
    );
    assert_eq!(q.payable.0, 28000);
    assert_eq!(
        q.applied
            .iter()
            .map(|a| (a.id.as_str(), a.amount.0))
            .collect::<Vec<_>>(),
        vec![("店鋪滿300減50", 5000), ("跨店滿200減20", 2000)]
    );
    // X 299.99 + Y 50: no shop 滿減, cross-store still.
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 29999, 1), line("Y", "B", "食品", 5000, 1)]},
                         "promotions": rules, "now": NOW}),
    );
    assert_eq!(
        (reason(&q, "店鋪滿300減50"), q.payable.0),
        ("below_threshold", 29999 + 5000 - 2000)
    );
    // X 100 + Y 99.99: below the cross-store threshold too.
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 10000, 1), line("Y", "B", "食品", 9999, 1)]},
                         "promotions": rules, "now": NOW}),
    );
    assert_eq!(
        (reason(&q, "跨店滿200減20"), q.discount.0),
        ("below_threshold", 0)
    );
    // The cross-store threshold is measured before the shop 滿減 (F11's reading): X 300 alone
    // (250 after 滿300減50) still reaches 200; with the other reading, X 210 + nothing does not.
    let after = json!({"cross_shop_base": "after_shop_reductions"});
    let cart = json!({"lines": [line("X", "A", "服飾", 30000, 1)]});
    let before_q = quote(json!({"cart": cart, "promotions": rules, "now": NOW}));
    assert_eq!(before_q.payable.0, 30000 - 5000 - 2000);
    let rules_240 = json!([
        {"id": "店鋪滿300減50", "scope": {"type": "shop", "shop": "X"}, "kind": {"type": "ladder", "steps": [{"min": 30000, "off": 5000}]}},
        {"id": "跨店滿260減20", "kind": {"type": "ladder", "steps": [{"min": 26000, "off": 2000}]}}
    ]);
    let b = quote(json!({"cart": cart, "promotions": rules_240, "now": NOW}));
    let a = quote(json!({"cart": cart, "promotions": rules_240, "now": NOW, "policy": after}));
    assert_eq!((b.payable.0, a.payable.0), (23000, 25000));
}

/// F7 + R6.7: the 10 元 no-threshold welcome coupon on a 50.00 first order; F8 + R6.8:
/// 首購立減5元 on the first order only.
#[test]
fn f7_f8_welcome_coupon_and_first_purchase() {
    let coupon = json!([{"id": "註冊禮10元", "owner": "u1", "benefit": {"type": "amount", "off": 1000}}]);
    let first = json!([{"id": "首購立減5元", "kind": {"type": "first_order", "off": 500}}]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "食品", 5000, 1)]}, "buyer": {"user_id": "u1"},
                         "coupons": coupon, "now": NOW}),
    );
    assert_eq!((q.payable.0, q.applied[0].id.as_str()), (4000, "註冊禮10元"));
    let order = |first_order: bool| {
        quote(json!({"cart": {"lines": [line("X", "A", "食品", 8000, 1)]},
        "buyer": {"user_id": "u1", "first_order": first_order}, "promotions": first, "now": NOW}))
    };
    assert_eq!(order(true).payable.0, 7500);
    let second = order(false);
    assert_eq!(
        (second.payable.0, reason(&second, "首購立減5元")),
        (8000, "not_first_order")
    );
    // Someone else's coupon is refused, not spent.
    let other = quote(
        json!({"cart": {"lines": [line("X", "A", "食品", 5000, 1)]}, "buyer": {"user_id": "u2"},
                             "coupons": coupon, "now": NOW}),
    );
    assert_eq!(
        (other.payable.0, reason(&other, "註冊禮10元")),
        (5000, "not_owner")
    );
}

/// F12 (R6.6): a 護膚 category coupon on a 服飾-only cart, and 滿100可用 10 元 on 99.00: both
/// refused with a reason code.
#[test]
fn f12_coupon_scope_and_threshold() {
    let coupons = json!([
        {"id": "護膚15元", "scope": {"type": "categories", "categories": ["護膚"]}, "benefit": {"type": "amount", "off": 1500}},
        {"id": "滿100可用10元", "benefit": {"type": "amount", "off": 1000, "min_spend": 10000}}
    ]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "T恤", "服飾", 9900, 1)]}, "coupons": coupons, "now": NOW}),
    );
    assert_eq!(q.payable.0, 9900);
    assert_eq!(
        (reason(&q, "護膚15元"), reason(&q, "滿100可用10元")),
        ("out_of_scope", "below_threshold")
    );
    // At exactly 100.00 the threshold coupon applies.
    let q = quote(
        json!({"cart": {"lines": [line("X", "T恤", "服飾", 10000, 1)]}, "coupons": coupons, "now": NOW}),
    );
    assert_eq!(q.payable.0, 9000);
}

/// F13 (R6.9): buy any 護膚品 → 面膜 × 1 at 0.00, tagged as a gift; buy 4 of a buy-2-get-1 → 2 gifts.
#[test]
fn f13_buy_gift() {
    let rule = |buy: i64| {
        json!([{"id": "買護膚送面膜", "scope": {"type": "categories", "categories": ["護膚"]},
        "kind": {"type": "buy_gift", "buy": buy, "gift_product": "面膜", "gift_quantity": 1}}])
    };
    let q = quote(
        json!({"cart": {"lines": [line("X", "精華", "護膚", 29900, 1)]}, "promotions": rule(1), "now": NOW}),
    );
    let gift = q.lines.iter().find(|l| l.gift).expect("a gift line");
    assert_eq!(
        (gift.product.as_str(), gift.quantity, gift.payable.0),
        ("面膜", 1, 0)
    );
    assert_eq!(q.payable.0, 29900);
    let q = quote(
        json!({"cart": {"lines": [line("X", "精華", "護膚", 29900, 4)]}, "promotions": rule(2), "now": NOW}),
    );
    assert_eq!(q.lines.iter().find(|l| l.gift).map(|l| l.quantity), Some(2));
}

/// 多件折扣 (2 件 9 折, 3 件 8 折), 每滿 with a cap, a time-limited price, member prices.
#[test]
fn multi_buy_every_full_time_window_and_tiers() {
    let multi = json!([{"id": "多件", "kind": {"type": "multi_buy", "steps": [{"quantity": 2, "percent": 90}, {"quantity": 3, "percent": 80}]}}]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 10000, 3)]}, "promotions": multi, "now": NOW}),
    );
    assert_eq!(q.payable.0, 24000);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 10000, 1)]}, "promotions": multi, "now": NOW}),
    );
    assert_eq!(reason(&q, "多件"), "below_quantity");
    let every = json!([{"id": "每滿100減10", "kind": {"type": "every_full", "per": 10000, "off": 1000, "cap": 3000}}]);
    for (cart, off) in [(9999, 0), (10000, 1000), (29999, 2000), (99900, 3000)] {
        let q = quote(
            json!({"cart": {"lines": [line("X", "A", "服飾", cart, 1)]}, "promotions": every, "now": NOW}),
        );
        assert_eq!(q.discount.0, off, "{cart}");
    }
    let flash = json!([{"id": "限時8折", "kind": {"type": "price_cut", "percent": 80},
        "starts_at": "2024-11-11T00:00:00+08:00", "ends_at": "2024-11-12T00:00:00+08:00"}]);
    let at = |now: &str| {
        quote(json!({"cart": {"lines": [line("X", "A", "服飾", 9999, 1)]}, "promotions": flash, "now": now}))
    };
    assert_eq!(at(NOW).payable.0, 9999 - 1999); // 19.998 off rounds down to 19.99
    assert_eq!(reason(&at("2024-11-12T00:00:00+08:00"), "限時8折"), "expired");
    assert_eq!(reason(&at("2024-11-10T23:59:59+08:00"), "限時8折"), "not_started");
    // Member price and the time-limited price do not stack: the lower price wins per line.
    let both = json!([
        {"id": "限時9折", "kind": {"type": "price_cut", "percent": 90}},
        {"id": "會員價", "kind": {"type": "tier_discount", "percents": {"黃金": 85, "白銀": 95}}}
    ]);
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 10000, 1)]}, "buyer": {"tier": "黃金"}, "promotions": both, "now": NOW}),
    );
    assert_eq!(
        (q.payable.0, reason(&q, "限時9折")),
        (8500, "better_item_discount")
    );
    let q = quote(
        json!({"cart": {"lines": [line("X", "A", "服飾", 10000, 1)]}, "buyer": {"tier": "白銀"}, "promotions": both, "now": NOW}),
    );
    assert_eq!(
        (q.payable.0, reason(&q, "會員價")),
        (9000, "better_item_discount")
    );
}

/// Best combination: the user's coupons that pay least, one per stacking group.
#[test]
fn best_combination_picks_the_cheapest_allowed_set() {
    let v = json!({
        "cart": {"lines": [line("X", "A", "護膚", 30000, 1), line("Y", "B", "食品", 10000, 1)]},
        "buyer": {"user_id": "u1"},
        "coupons": [
            {"id": "店X滿300減40", "scope": {"type": "shop", "shop": "X"}, "benefit": {"type": "amount", "off": 4000, "min_spend": 30000}},
            {"id": "店X9折", "scope": {"type": "shop", "shop": "X"}, "benefit": {"type": "percent", "percent": 90, "cap": 5000}},
            {"id": "平臺滿399減30", "benefit": {"type": "amount", "off": 3000, "min_spend": 39900}},
            {"id": "平臺無門檻5元", "benefit": {"type": "amount", "off": 500}},
            {"id": "獨享8折", "exclusive": true, "benefit": {"type": "percent", "percent": 80, "cap": 6000}}
        ],
        "now": NOW
    });
    let q = best_combination(&input(v)).unwrap();
    // One shop coupon at most: 滿300減40 (−40) beats 9折 (−30); after it 360 is left, below the
    // platform 滿399, so the platform pick is 無門檻5元: 400 − 45 = 355. The exclusive 8折 alone
    // takes 60 (its cap): 340, the lowest.
    assert_eq!(q.payable.0, 34000, "{:?}", q.applied);
    assert_eq!(
        q.applied.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        vec!["獨享8折"]
    );
    assert!(
        q.not_applied
            .iter()
            .all(|n| n.reason == "not_in_best_combination" || n.reason == "exclusive"),
        "{:?}",
        q.not_applied
    );
}
