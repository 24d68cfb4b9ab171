//! Properties of the engine on random carts, promotions and coupons: the payable total
//! is never negative and never above the undiscounted total; apportioned shares add up
//! to each rule's amount and to each line's discount; the best combination pays no more
//! than any combination of the same coupons (brute force over all subsets).

use flywheel_core::Fen;
use flywheel_promotions::best::best_combination;
use flywheel_promotions::rules::{CouponBenefit, PromotionKind, QuantityStep, Scope, Step};
use flywheel_promotions::{price, Cart, CartLine, Coupon, PricingInput, Promotion};
use proptest::prelude::*;

const SHOPS: [&str; 2] = ["X", "Y"];
const CATEGORIES: [&str; 3] = ["護膚", "服飾", "食品"];

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::All),
        prop::sample::select(SHOPS.to_vec()).prop_map(|s| Scope::Shop { shop: s.into() }),
        prop::sample::select(CATEGORIES.to_vec()).prop_map(|c| Scope::Categories {
            categories: vec![c.into()]
        }),
    ]
}

fn cart() -> impl Strategy<Value = Cart> {
    (
        prop::collection::vec(
            (
                prop::sample::select(SHOPS.to_vec()),
                prop::sample::select(CATEGORIES.to_vec()),
                0i64..60_000,
                1i64..4,
                0i64..30_000,
            ),
            1..5,
        ),
        0i64..2_000,
    )
        .prop_map(|(lines, shipping)| Cart {
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, (shop, cat, price, qty, cost))| CartLine {
                    line_id: None,
                    shop: shop.into(),
                    product: format!("P{i}"),
                    category: Some(cat.into()),
                    unit_price: Fen(price),
                    unit_cost: Some(Fen(cost)),
                    quantity: qty,
                })
                .collect(),
            shipping: Fen(shipping),
        })
}

fn promotion() -> impl Strategy<Value = PromotionKind> {
    prop_oneof![
        (0i64..80_000, 0i64..20_000).prop_map(|(min, off)| PromotionKind::Ladder {
            steps: vec![Step {
                min: Fen(min),
                off: Fen(off)
            }]
        }),
        (1i64..30_000, 0i64..5_000, prop::option::of(0i64..20_000)).prop_map(|(per, off, cap)| {
            PromotionKind::EveryFull {
                per: Fen(per),
                off: Fen(off),
                cap: cap.map(Fen),
            }
        }),
        (1i64..4, 1u32..=100).prop_map(|(q, p)| PromotionKind::MultiBuy {
            steps: vec![QuantityStep {
                quantity: q,
                percent: p
            }]
        }),
        (1u32..=100).prop_map(|p| PromotionKind::PriceCut {
            percent: Some(p),
            price: None
        }),
        (0i64..60_000).prop_map(|p| PromotionKind::PriceCut {
            percent: None,
            price: Some(Fen(p))
        }),
        (0i64..3_000).prop_map(|off| PromotionKind::FirstOrder { off: Fen(off) }),
        (1i64..3).prop_map(|buy| PromotionKind::BuyGift {
            buy,
            gift_product: "面膜".into(),
            gift_name: None,
            gift_quantity: 1,
            max_gifts: None
        }),
    ]
}

fn benefit() -> impl Strategy<Value = CouponBenefit> {
    prop_oneof![
        (0i64..20_000, prop::option::of(0i64..80_000)).prop_map(|(off, min)| CouponBenefit::Amount {
            off: Fen(off),
            min_spend: min.map(Fen)
        }),
        (1u32..=100, prop::option::of(0i64..20_000)).prop_map(|(p, cap)| CouponBenefit::Percent {
            percent: p,
            cap: cap.map(Fen),
            min_spend: None
        }),
        Just(CouponBenefit::FreeShipping { min_spend: None }),
    ]
}

fn input(max_coupons: usize) -> impl Strategy<Value = PricingInput> {
    (
        cart(),
        prop::collection::vec((scope(), promotion()), 0..4),
        prop::collection::vec(
            (scope(), benefit(), any::<bool>(), prop::option::of(0u8..2)),
            0..=max_coupons,
        ),
        any::<bool>(),
        prop::option::of((0i64..50_000, 1i64..200, 0u32..=100)),
    )
        .prop_map(|(cart, promotions, coupons, first_order, points)| PricingInput {
            cart,
            buyer: flywheel_promotions::Buyer {
                user_id: Some("u".into()),
                first_order,
                ..Default::default()
            },
            promotions: promotions
                .into_iter()
                .enumerate()
                .map(|(i, (scope, kind))| Promotion {
                    id: format!("p{i}"),
                    name: String::new(),
                    scope,
                    exclude_products: vec![],
                    kind,
                    starts_at: None,
                    ends_at: None,
                    audience_tag: None,
                })
                .collect(),
            coupons: coupons
                .into_iter()
                .enumerate()
                .map(|(i, (scope, benefit, exclusive, group))| Coupon {
                    id: format!("c{i}"),
                    name: String::new(),
                    owner: Some("u".into()),
                    scope,
                    exclude_products: vec![],
                    benefit,
                    valid_from: None,
                    valid_until: None,
                    stacking_group: group.map(|g| format!("g{g}")),
                    exclusive: exclusive && i % 3 == 0,
                })
                .collect(),
            policy: Default::default(),
            now: Some(chrono::Utc::now()),
            best_combination: false,
            points: points.map(|(points, points_per_yuan, max_percent)| {
                flywheel_promotions::rules::PointsUse {
                    points,
                    points_per_yuan,
                    max_percent,
                }
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn totals_stay_between_zero_and_the_undiscounted_total(input in input(4)) {
        let q = price(&input).unwrap();
        let subtotal: i64 = input.cart.lines.iter().map(|l| l.unit_price.0 * l.quantity).sum();
        prop_assert_eq!(q.subtotal.0, subtotal);
        prop_assert!(q.payable.0 >= 0);
        prop_assert!(q.payable.0 <= subtotal + input.cart.shipping.0);
        prop_assert_eq!(q.payable.0, q.subtotal.0 - q.discount.0 + q.shipping.0 - q.shipping_discount.0);
        for l in &q.lines {
            prop_assert!(l.payable.0 >= 0 && l.payable.0 <= l.amount.0, "{:?}", l);
            prop_assert_eq!(l.discounts.iter().map(|s| s.amount.0).sum::<i64>(), l.discount.0);
        }
        // Each rule's shares over the lines add up to exactly its amount (a free-shipping
        // coupon's amount is the shipping it took off); no rule applies for nothing.
        let free_shipping: Vec<&str> = input
            .coupons
            .iter()
            .filter(|c| matches!(c.benefit, CouponBenefit::FreeShipping { .. }))
            .map(|c| c.id.as_str())
            .collect();
        for a in q.applied.iter().filter(|a| !matches!(a.kind, flywheel_promotions::rules::RuleKind::Gift)) {
            let shares: i64 = q.lines.iter().flat_map(|l| &l.discounts).filter(|s| s.rule == a.id).map(|s| s.amount.0).sum();
            let expected = if free_shipping.contains(&a.id.as_str()) { q.shipping_discount.0 } else { shares };
            prop_assert_eq!(expected, a.amount.0, "{}", a.id);
            prop_assert!(a.amount.0 > 0, "{} applied for nothing", a.id);
        }
        let applied_total: i64 = q.applied.iter().map(|a| a.amount.0).sum();
        prop_assert_eq!(applied_total, q.discount.0 + q.shipping_discount.0);
    }

    #[test]
    fn the_best_combination_pays_no_more_than_any_subset(input in input(5)) {
        let best = best_combination(&input).unwrap();
        let n = input.coupons.len();
        for mask in 0u32..(1 << n) {
            let mut one = input.clone();
            one.coupons = (0..n).filter(|i| mask & (1 << i) != 0).map(|i| input.coupons[i].clone()).collect();
            let q = price(&one).unwrap();
            prop_assert!(best.payable.0 <= q.payable.0, "subset {:b} pays {} < best {}", mask, q.payable.0, best.payable.0);
        }
    }
}
