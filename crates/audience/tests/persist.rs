//! The engine's saved state: a state saved and loaded answers exactly as the one that was
//! saved — every column of every row, every tag and segment, the profile ids, the facts —
//! and keeps doing so as time passes and new events arrive; a damaged file, another
//! format version or other definitions are refused.

use std::sync::Arc;

use flywheel_audience::config::AudienceConfig;
use flywheel_audience::dsl;
use flywheel_audience::engine::{self, DefKind, State};
use flywheel_audience::traits::Measure;
use flywheel_core::time::from_millis;
use flywheel_core::{
    Event, EventKind, Fen, Order, OrderAdjustment, OrderAdjustmentKind, OrderLine, ProfileId,
};
use flywheel_store::{ApplyOutcome, NewEvent};
use serde_json::json;

const NOW: i64 = 1_735_660_800_000;
const DAY: i64 = 86_400_000;

fn event(kind: EventKind, user: &str, name: Option<&str>, at: i64, mid: &str) -> Event {
    Event::of_user(mid, kind, user, name, at)
}

fn order(user: &str, id: &str, at: i64, total: i64, category: &str) -> Order {
    Order {
        order_id: id.to_owned(),
        user_id: Some(user.to_owned()),
        anonymous_id: None,
        total: Fen(total),
        revenue: Fen(total),
        discount: Fen(0),
        shipping: Fen(0),
        tax: Fen(0),
        coupon: None,
        currency: "CNY".into(),
        placed_at: from_millis(at),
        lines: vec![OrderLine {
            product_id: Some(format!("P-{category}")),
            sku: None,
            name: None,
            category: Some(category.to_owned()),
            brand: Some("后".into()),
            price: Fen(total),
            quantity: 1,
        }],
        message_id: format!("m-{id}"),
    }
}

/// Applies `(profile, event)` pairs as one committed batch.
fn apply(state: &mut State, batch: Vec<(String, NewEvent)>, merges: Vec<(String, String)>, now: i64) {
    let (owners, events): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let outcome = ApplyOutcome {
        inserted: events.len() as u64,
        duplicates: 0,
        stored: vec![true; events.len()],
        profiles: owners.into_iter().map(|p| Some(ProfileId(p))).collect(),
        merges: merges
            .into_iter()
            .map(|(l, w)| (ProfileId(l), ProfileId(w)))
            .collect(),
        last_seq: None,
    };
    let events = Arc::new(events);
    state.apply_batch(&events, 0..events.len(), &outcome, now);
}

fn history(n: usize) -> Vec<(String, NewEvent)> {
    let mut out = Vec::new();
    for i in 0..n {
        let user = format!("u{i}");
        let pid = format!("user:{user}");
        let t0 = NOW - (i as i64 % 400) * DAY;
        let mut id = event(
            EventKind::Identify,
            &user,
            None,
            t0,
            &format!("0b7e8a2c-1d3f-4e5a-8b9c-{i:012x}"),
        );
        id.traits = json!({"gender": if i % 2 == 0 { "female" } else { "male" }, "city": (["上海", "北京", "成都"][i % 3]),
            "birthday": format!("19{:02}-0{}-1{}", 60 + i % 40, 1 + i % 9, i % 10)})
        .as_object()
        .cloned()
        .unwrap();
        out.push((pid.clone(), NewEvent::new(id, None)));
        out.push((
            pid.clone(),
            NewEvent::new(
                event(
                    EventKind::Track,
                    &user,
                    Some("Signed In"),
                    t0 + DAY / 2,
                    &format!("s{i}"),
                ),
                None,
            ),
        ));
        if i % 4 == 0 {
            let mut cart = event(
                EventKind::Track,
                &user,
                Some("Product Added"),
                NOW - (i as i64 % 40) * DAY,
                &format!("c{i}"),
            );
            cart.properties
                .insert("product_id".into(), json!(format!("P-{}", i % 7)));
            out.push((pid.clone(), NewEvent::new(cart, None)));
        }
        if i % 3 == 0 {
            for k in 0..2 {
                let at = NOW - ((i as i64 + 13 * k) % 90) * DAY - 1;
                let o = order(
                    &user,
                    &format!("O{i}-{k}"),
                    at,
                    10_000 + 50_000 * k + i as i64,
                    ["護膚", "彩妝"][k as usize],
                );
                let e = event(
                    EventKind::Track,
                    &user,
                    Some("Order Completed"),
                    at,
                    &format!("m-O{i}-{k}"),
                );
                out.push((pid.clone(), NewEvent::new(e, None).with_order(o)));
            }
        }
        if i % 9 == 0 {
            // A refund of an order, and one for an order not seen yet (pending).
            for (order_id, amount) in [
                (format!("O{i}-1"), Some(Fen(7_000))),
                (format!("later-{i}"), None),
            ] {
                let e = event(
                    EventKind::Track,
                    &user,
                    Some("Order Refunded"),
                    NOW - DAY,
                    &format!("r-{order_id}"),
                );
                let a = OrderAdjustment {
                    order_id,
                    kind: OrderAdjustmentKind::Refund,
                    amount,
                    at: from_millis(NOW - DAY),
                    message_id: e.message_id.clone(),
                };
                out.push((pid.clone(), NewEvent::new(e, None).with_adjustment(a)));
            }
        }
    }
    out
}

const EXPRESSIONS: &[&str] = &[
    r#"spend(30d) > 100 元 and city in ["上海", "北京"] and gender = "女""#,
    "orders(90d) >= 2",
    r#"categories_bought contains "彩妝""#,
    "last_active within 7d or unbought_cart_items(30d) >= 1",
    "age >= 40 and rfm_r >= 3",
    r#"tag("高價值客戶") or tag("手動")"#,
];

fn counts(state: &State, now: i64) -> Vec<u64> {
    EXPRESSIONS
        .iter()
        .map(|t| {
            let plan = engine::compile(state, &dsl::parse(t).unwrap()).unwrap();
            state.index.count(&plan, &state.eval_ctx(now))
        })
        .collect()
}

/// Everything a row answers: every base column, its tags and segments, its ids, its facts.
fn rows(state: &State) -> Vec<String> {
    let measures = flywheel_audience::index::base_measures();
    (0..state.ids.len() as u32)
        .map(|row| {
            let mut line = format!(
                "{} {:?} {:?}",
                state.ids.id(row),
                state.ids.user_id(row),
                state.facts.get(row)
            );
            for m in measures.iter().chain([&Measure::RfmR, &Measure::RfmSegment]) {
                let key = m.key();
                let num = state.index.num_column(&key).and_then(|c| c.get(row));
                let cat = state.index.cat_column(&key).and_then(|c| c.get(row));
                line.push_str(&format!(" {key}={num:?}/{cat:?}"));
            }
            line.push_str(&format!(
                " {:?} {:?}",
                state.index.tags_of(row),
                state.index.segments_of(row)
            ));
            line
        })
        .collect()
}

#[test]
fn a_loaded_state_answers_as_the_saved_one_now_and_later() {
    let dir = std::env::temp_dir().join(format!("flywheel-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audience.snapshot");
    let config = AudienceConfig::default();
    let manual = vec![("手動".to_owned(), r#"{"name":"手動","kind":"manual"}"#.to_owned())];
    let segments = vec![(
        "上海女".to_owned(),
        r#"{"name":"上海女","expression":"city = \"上海\" and gender = \"女\""}"#.to_owned(),
    )];
    // Definitions registered as a start registers them, then a history, a merge.
    let mut built = engine::seeded(config.clone(), NOW - DAY, vec![]).unwrap();
    engine::register_definitions(&mut built, manual.clone(), segments.clone()).unwrap();
    built.refresh_needs();
    apply(&mut built, history(3_000), vec![], NOW - DAY);
    let merging = NewEvent::new(
        event(EventKind::Track, "u2", Some("Signed In"), NOW - 2, "merge-1"),
        None,
    );
    apply(
        &mut built,
        vec![("user:u2".into(), merging)],
        vec![("user:u5".into(), "user:u2".into())],
        NOW - DAY,
    );
    assert!(built.registry.get(DefKind::Segment, "上海女").is_some());
    let members: roaring::RoaringBitmap = (0..3_000).step_by(11).collect();
    built.put_members(DefKind::Tag, "手動", members);
    built.tick(NOW - DAY);
    built.tick(NOW - DAY + 1);
    built.save_to(&path, &manual, &segments, 42).unwrap();
    let (mut loaded, position) =
        State::load_from(&path, config.clone(), NOW, manual.clone(), segments.clone()).unwrap();
    assert_eq!(position, 42);
    assert_eq!(rows(&loaded), rows(&built));
    assert_eq!(counts(&loaded, NOW - DAY + 1), counts(&built, NOW - DAY + 1));
    assert!(
        counts(&built, NOW - DAY + 1).iter().all(|c| *c > 0),
        "{:?}",
        counts(&built, NOW - DAY + 1)
    );
    // Time passes (a new day, windows roll over) and new events arrive: both states move alike.
    let later = NOW + 3 * DAY;
    let t1 = built.tick(later);
    let t2 = loaded.tick(later);
    let key = |t: &flywheel_audience::definitions::Transition| {
        (t.kind, t.name.clone(), t.profile_id.clone(), t.entered)
    };
    assert_eq!(
        t1.iter().map(key).collect::<Vec<_>>(),
        t2.iter().map(key).collect::<Vec<_>>()
    );
    let more = || {
        vec![
            (
                "user:u3".to_owned(),
                NewEvent::new(
                    event(EventKind::Track, "u3", Some("Order Completed"), later, "m-new"),
                    None,
                )
                .with_order(order("u3", "new", later, 900_000, "母嬰")),
            ),
            (
                "user:new".to_owned(),
                NewEvent::new(
                    event(EventKind::Track, "new", Some("Signed In"), later, "s-new"),
                    None,
                ),
            ),
        ]
    };
    apply(&mut built, more(), vec![], later);
    apply(&mut loaded, more(), vec![], later);
    built.tick(later + 1);
    loaded.tick(later + 1);
    assert_eq!(rows(&loaded), rows(&built));
    assert_eq!(counts(&loaded, later + 1), counts(&built, later + 1));

    // Other definitions, a damaged file, another version: refused.
    assert!(State::load_from(&path, config.clone(), NOW, vec![], segments.clone()).is_err());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        State::load_from(&path, config.clone(), NOW, manual.clone(), segments.clone())
            .err()
            .is_some_and(|e| e.contains("checksum"))
    );
    bytes[last] ^= 1;
    bytes[8] = 99;
    std::fs::write(&path, &bytes).unwrap();
    assert!(State::load_from(&path, config, NOW, manual, segments)
        .err()
        .is_some_and(|e| e.contains("version")));
    let _ = std::fs::remove_dir_all(&dir);
}
