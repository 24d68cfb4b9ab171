//! The margin guard, the exclusion matrix and refused input.

use flywheel_promotions::best::best_combination;
use flywheel_promotions::{price, PricingInput};
use serde_json::{json, Value};

fn input(v: Value) -> PricingInput {
    serde_json::from_value(v).expect("valid pricing input")
}

const NOW: &str = "2024-11-11T12:00:00+08:00";

fn cart() -> Value {
    json!({"lines": [{"shop": "X", "product": "A", "category": "護膚", "unit_price": 10000, "unit_cost": 7000, "quantity": 1}]})
}

#[test]
fn the_margin_guard_warns_or_refuses_below_cost_times_k() {
    let coupon = json!([{"id": "減40", "benefit": {"type": "amount", "off": 4000}}]);
    for (action, refused) in [("warn", false), ("refuse", true)] {
        let q = price(&input(json!({"cart": cart(), "coupons": coupon, "now": NOW,
            "policy": {"margin_floor": {"cost_percent": 100, "action": action}}})))
        .unwrap();
        assert_eq!(q.refused, refused);
        assert_eq!(q.margin_violations.len(), 1);
        assert_eq!(
            (q.margin_violations[0].payable.0, q.margin_violations[0].floor.0),
            (6000, 7000)
        );
    }
    // Exactly at the floor is allowed; best combination skips a refused combination.
    let q = price(&input(
        json!({"cart": cart(), "coupons": [{"id": "減30", "benefit": {"type": "amount", "off": 3000}}],
        "now": NOW, "policy": {"margin_floor": {"cost_percent": 100, "action": "refuse"}}}),
    ))
    .unwrap();
    assert!(!q.refused && q.margin_violations.is_empty());
    let both = json!([{"id": "減40", "benefit": {"type": "amount", "off": 4000}, "stacking_group": "a"},
                      {"id": "減20", "benefit": {"type": "amount", "off": 2000}, "stacking_group": "b"}]);
    let q = best_combination(&input(json!({"cart": cart(), "coupons": both, "now": NOW,
        "policy": {"margin_floor": {"cost_percent": 100, "action": "refuse"}}})))
    .unwrap();
    assert_eq!((q.payable.0, q.refused), (8000, false));
}

#[test]
fn the_exclusion_matrix_refuses_the_later_stage() {
    let v = json!({"cart": cart(), "now": NOW,
        "promotions": [{"id": "滿100減10", "kind": {"type": "ladder", "steps": [{"min": 10000, "off": 1000}]}}],
        "coupons": [{"id": "平臺5元", "benefit": {"type": "amount", "off": 500}}],
        "policy": {"exclusive": [["cross_shop_full_reduction", "platform_coupon"]]}});
    let q = price(&input(v)).unwrap();
    assert_eq!(q.payable.0, 9000);
    let n = &q.not_applied[0];
    assert_eq!((n.id.as_str(), n.reason.as_str()), ("平臺5元", "excluded_by"));
    assert!(n.message.contains("滿100減10"));
}

#[test]
fn bad_input_is_refused_with_a_stable_code() {
    let line =
        |price: i64, qty: i64| json!({"shop": "X", "product": "A", "unit_price": price, "quantity": qty});
    for (v, code) in [
        (json!({"cart": {"lines": [line(-1, 1)]}}), "negative_amount"),
        (json!({"cart": {"lines": [line(100, 0)]}}), "invalid_quantity"),
        (json!({"cart": {"lines": []}}), "empty_cart"),
        (
            json!({"cart": {"lines": [{"line_id": "a", "shop": "X", "product": "A", "unit_price": 1, "quantity": 1},
                                   {"line_id": "a", "shop": "X", "product": "B", "unit_price": 1, "quantity": 1}]}}),
            "duplicate_line",
        ),
        (
            json!({"cart": {"lines": [line(100, 1)]}, "coupons": [{"id": "c", "benefit": {"type": "percent", "percent": 0}}]}),
            "invalid_rule",
        ),
        (
            json!({"cart": {"lines": [line(100, 1)]}, "coupons": [{"id": "c", "benefit": {"type": "amount", "off": -5}}]}),
            "negative_amount",
        ),
        (
            json!({"cart": {"lines": [line(100, 1)]}, "promotions": [{"id": "p", "kind": {"type": "ladder", "steps": []}}]}),
            "invalid_rule",
        ),
        (
            json!({"cart": {"lines": [line(100, 1)]}, "promotions": [{"id": "p", "kind": {"type": "first_order", "off": 1}},
                                                                 {"id": "p", "kind": {"type": "first_order", "off": 1}}]}),
            "duplicate_rule",
        ),
    ] {
        let err = price(&input(v.clone())).unwrap_err();
        assert_eq!(err.code(), code, "{v}");
    }
    // Unknown fields are refused when reading JSON.
    assert!(
        serde_json::from_value::<PricingInput>(json!({"cart": {"lines": [line(1, 1)]}, "coupon": []}))
            .is_err()
    );
    // Too many combinations to try exactly.
    let many: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("c{i}"), "stacking_group": format!("g{}", i % 8), "benefit": {"type": "amount", "off": 1}}))
        .collect();
    let err = best_combination(&input(
        json!({"cart": {"lines": [line(100, 1)]}, "coupons": many}),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "too_many_coupons");
}

#[test]
fn points_pay_part_of_the_order_up_to_the_cap() {
    let line = json!({"shop": "X", "product": "A", "unit_price": 10000, "quantity": 1});
    let q = price(&input(
        json!({"cart": {"lines": [line]}, "now": NOW, "points": {"points": 3000}}),
    ))
    .unwrap();
    assert_eq!(q.payable.0, 7000);
    assert_eq!(q.applied[0].name, "積分抵現（3000 積分）");
    // Capped at 50 % of what is left to pay: 10000 points pay 50.00 元 and 5000 points are used.
    let q = price(&input(
        json!({"cart": {"lines": [line]}, "now": NOW, "points": {"points": 10000}}),
    ))
    .unwrap();
    assert_eq!(
        (q.payable.0, q.applied[0].name.as_str()),
        (5000, "積分抵現（5000 積分）")
    );
    // Applied after coupons.
    let q = price(&input(
        json!({"cart": {"lines": [line]}, "now": NOW, "points": {"points": 10000, "max_percent": 100},
        "coupons": [{"id": "c", "benefit": {"type": "amount", "off": 2000}}]}),
    ))
    .unwrap();
    assert_eq!(q.payable.0, 0);
    assert_eq!(
        q.applied.iter().map(|a| a.amount.0).collect::<Vec<_>>(),
        vec![2000, 8000]
    );
    let err = price(&input(
        json!({"cart": {"lines": [line]}, "points": {"points": -1}}),
    ))
    .unwrap_err();
    assert_eq!(err.code(), "invalid_points");
}
