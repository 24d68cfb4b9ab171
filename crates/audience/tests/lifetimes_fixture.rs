//! `rfm::summary::summarize` against the Python `lifetimes` package, without Python.
//!
//! `fixtures/lifetimes_summary.json` holds a seeded random shop (UTC millisecond timestamps
//! and amounts in fen per buyer) and what `lifetimes.utils.summary_data_from_transaction_data`
//! gave for it over Asia/Shanghai calendar days, at two observation ends. It is written by
//! `tests/audience/test_lifetimes.py --write-fixture`, whose pytest also checks that the
//! checked-in file is still what the generator and lifetimes give.

use std::collections::BTreeMap;

use flywheel_audience::rfm::summary::{local_day, summarize, Purchase};
use serde::Deserialize;

const FIXTURE: &str = include_str!("fixtures/lifetimes_summary.json");

/// lifetimes' `monetary_value` is a float mean of float amounts in 元; ours is exact in fen.
const MONEY_TOLERANCE_YUAN: f64 = 1e-6;

#[derive(Deserialize)]
struct Fixture {
    timezone: String,
    customers: Vec<Customer>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Customer {
    user_id: String,
    /// `[UTC ms, amount in fen]`.
    purchases: Vec<(i64, i64)>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    observation_end_day: i32,
    expected: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    user_id: String,
    frequency: u32,
    recency: u32,
    #[serde(rename = "T")]
    t: u32,
    monetary_value: f64,
}

#[test]
fn summarize_matches_lifetimes() {
    let fixture: Fixture = serde_json::from_str(FIXTURE).expect("fixture parses");
    let tz: chrono_tz::Tz = fixture.timezone.parse().expect("fixture timezone");
    let buyers: BTreeMap<&str, Vec<Purchase>> = fixture
        .customers
        .iter()
        .map(|c| {
            let purchases = c
                .purchases
                .iter()
                .map(|&(ts_ms, amount_fen)| Purchase {
                    day: local_day(ts_ms, tz),
                    amount_fen,
                })
                .collect();
            (c.user_id.as_str(), purchases)
        })
        .collect();
    assert!(fixture.cases.len() >= 2);

    for case in &fixture.cases {
        let expected: BTreeMap<&str, &Expected> =
            case.expected.iter().map(|e| (e.user_id.as_str(), e)).collect();
        let mut compared = 0;
        for (user_id, purchases) in &buyers {
            let got = summarize(purchases, case.observation_end_day);
            let Some(want) = expected.get(user_id) else {
                assert_eq!(got, None, "{}: {user_id} has no purchase by the end", case.name);
                continue;
            };
            let got = got.unwrap_or_else(|| panic!("{}: {user_id} missing", case.name));
            assert_eq!(
                (got.frequency, got.recency_days, got.t_days),
                (want.frequency, want.recency, want.t),
                "{}: {user_id} frequency, recency, T",
                case.name
            );
            let monetary_yuan = got.monetary_fen / 100.0;
            assert!(
                (monetary_yuan - want.monetary_value).abs() <= MONEY_TOLERANCE_YUAN,
                "{}: {user_id} monetary {monetary_yuan} vs lifetimes {}",
                case.name,
                want.monetary_value
            );
            compared += 1;
        }
        assert_eq!(
            compared,
            expected.len(),
            "{}: every expected buyer compared",
            case.name
        );
    }
}

#[test]
fn orders_and_total_count_what_was_summarized() {
    let fixture: Fixture = serde_json::from_str(FIXTURE).expect("fixture parses");
    let tz: chrono_tz::Tz = fixture.timezone.parse().expect("fixture timezone");
    for case in &fixture.cases {
        for c in &fixture.customers {
            let purchases: Vec<Purchase> = c
                .purchases
                .iter()
                .map(|&(ts_ms, amount_fen)| Purchase {
                    day: local_day(ts_ms, tz),
                    amount_fen,
                })
                .collect();
            let counted: Vec<&Purchase> = purchases
                .iter()
                .filter(|p| p.day <= case.observation_end_day)
                .collect();
            let Some(s) = summarize(&purchases, case.observation_end_day) else {
                assert!(counted.is_empty());
                continue;
            };
            assert_eq!(s.orders as usize, counted.len(), "{}", c.user_id);
            assert_eq!(s.total_fen, counted.iter().map(|p| p.amount_fen).sum::<i64>());
            assert_eq!(
                s.first_day,
                counted.iter().map(|p| p.day).min().unwrap_or_default()
            );
            assert_eq!(
                s.last_day,
                counted.iter().map(|p| p.day).max().unwrap_or_default()
            );
        }
    }
}
