//! A deterministic demo shop: a catalogue of about 200 products in eleven
//! categories and `users` registered shoppers with a year of behaviour before
//! `end`, emitted as Segment HTTP API messages (`track`, `page`, `identify`).
//!
//! Each shopper browses anonymously, signs up (an `identify` carrying both ids links
//! the anonymous history), then returns in sessions until churning. Visit rate,
//! per-session dropout and conversion are drawn per user from gamma/beta mixtures
//! (BG/NBD-like), so a few heavy buyers, many one-off buyers and many non-buyers
//! with abandoned carts appear. Orders are sometimes refunded or cancelled later.
//! The first message of each visit carries `context` (library, ip, userAgent and,
//! for campaign traffic, `campaign`); the visit's later messages omit it to save memory.
//!
//! Determinism: the catalogue comes from a ChaCha8 stream seeded with `seed`, and
//! user `n` from stream `n` of the same seed, so output depends only on the options
//! (messageIds, timestamps and order included). Money is computed in integer fen.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map};

/// What [`generate`] builds.
pub struct DemoOptions {
    /// Registered users (`u000001`, `u000002`, …).
    pub users: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// No message is later than this; the history covers the 365 days before it.
    pub end: DateTime<Utc>,
}

mod catalogue;
mod shopper;

use catalogue::*;
use shopper::*;

/// What every shopper shares; times in Unix milliseconds.
struct Shop {
    pub(in crate::demo_data) seed: u64,
    pub(in crate::demo_data) start: i64,
    pub(in crate::demo_data) end: i64,
    pub(in crate::demo_data) catalogue: Vec<Vec<Product>>,
    pub(in crate::demo_data) festivals: Vec<(i64, &'static str)>,
}

/// A message, already serialized as JSON (a shop's year is half a million of them: as
/// text they take a tenth of the memory they take as JSON trees), with its sort key
/// (timestamp ms, messageId).
type Msg = (i64, String, String);

/// One shopper's simulation state and message sink.
/// Generates every message of the demo shop; same options => identical output (same
/// messageIds, same timestamps, same order). Messages are sorted by timestamp, then
/// messageId, each a Segment message as JSON text.
pub fn generate(opts: &DemoOptions) -> Vec<String> {
    let end = opts.end.timestamp_millis();
    let start = end - 365 * DAY;
    let shop = Shop {
        seed: opts.seed,
        start,
        end,
        catalogue: catalogue(opts.seed),
        festivals: festivals(start, end),
    };
    let mut out: Vec<Msg> = Vec::with_capacity(opts.users.saturating_mul(30));
    for n in 1..=opts.users {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        rng.set_stream(n as u64);
        simulate(rng, &shop, n, &mut out);
    }
    out.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.into_iter().map(|(_, _, m)| m).collect()
}

/// Emits user `n`'s whole life: anonymous visit, signup, visits until churn.
fn simulate(mut rng: ChaCha8Rng, shop: &Shop, n: usize, out: &mut Vec<Msg>) {
    let (start, end) = (shop.start, shop.end);
    let female = rng.gen_bool(0.62);
    let given = if female { FEMALE_GIVEN } else { MALE_GIVEN };
    let mut name = SURNAMES[rng.gen_range(0..SURNAMES.len())].to_string();
    // A given name of one or two characters (some entries already have two).
    let (a, b) = (
        given[rng.gen_range(0..given.len())],
        given[rng.gen_range(0..given.len())],
    );
    name.push_str(a);
    if a.chars().count() == 1 && b.chars().count() == 1 && rng.gen_bool(0.6) {
        name.push_str(b);
    }
    let (city, region, _) = CITIES[weighted(&mut rng, CITIES, |c| c.2)];
    let ages = [(18, 24, 25), (25, 34, 40), (35, 44, 22), (45, 60, 13)];
    let (young, old, _) = ages[weighted(&mut rng, &ages, |a| a.2)];
    let born = end - rng.gen_range(young * 365..(old + 1) * 365) * DAY - rng.gen_range(0..DAY);
    let birthday = DateTime::from_timestamp_millis(born).map(|d| d.format("%Y-%m-%d").to_string());
    let phone = format!(
        "1{}{:09}",
        [3, 5, 7, 8, 9][rng.gen_range(0..5)],
        rng.gen_range(0..1_000_000_000)
    );
    let by_gender = |c: &Category| if female { c.weight.0 } else { c.weight.1 };
    let favourites = [
        weighted(&mut rng, CATEGORIES, by_gender),
        weighted(&mut rng, CATEGORIES, by_gender),
    ];
    // Heterogeneity (BG/NBD-like): visits per day ~ gamma, dropout per visit and
    // conversion per visit ~ beta.
    let rate = 0.004 + gamma(&mut rng, 0.8) / 14.0;
    let dropout = beta(&mut rng, 1.2, 2.5);
    let conv = beta(&mut rng, 0.35, 1.3);
    let joined = start + rng.gen_range(2 * HOUR..end - start - HOUR);
    let ua = USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())];
    let mut s = Shopper {
        shop,
        rng,
        n,
        phase: 0,
        ua,
        campaign: None,
        fresh: true,
        favourites,
        clock: 0,
        seq: 0,
        carts: 0,
        orders: 0,
        out,
    };
    let placed = s.place(joined);
    let signup = Some(placed)
        .filter(|t| *t > start + HOUR && *t < end - HOUR)
        .unwrap_or(joined);
    // Anonymous browsing before signup (0–3 messages), often from a campaign.
    let anon = s.rng.gen_range(0..=3);
    s.visit(0.4);
    s.clock = (signup - s.rng.gen_range(10 * 60 * SEC..3 * DAY)).max(start + SEC);
    for k in 0..anon {
        if k == 0 {
            s.page("首頁", "/");
        } else {
            let p = s.pick();
            s.track("Product Viewed", p.props(None, true));
        }
    }
    s.clock = s.clock.max(signup);
    (s.phase, s.fresh) = (1, true);
    let method = ["手機號", "微信"][usize::from(s.rng.gen_bool(0.3))];
    s.track("Signed Up", obj([("method", method.into())]));
    let created =
        DateTime::from_timestamp_millis(s.clock).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true));
    let traits = json!({"name": name, "gender": if female { "女" } else { "男" }, "birthday": birthday,
        "city": city, "region": region, "phone": phone, "email": format!("user{n}@example.com"),
        "created_at": created});
    let at = s.tick();
    s.fresh = true;
    s.push(at, "identify", obj([("traits", traits)]));
    s.phase = 2;
    let mut first = true;
    loop {
        let today = (s.clock + CST).div_euclid(DAY);
        let festival = shop
            .festivals
            .iter()
            .find(|f| (f.0 + CST).div_euclid(DAY) == today)
            .map(|f| f.1);
        let chance = match (first, festival) {
            (true, _) => 0.46 + 0.4 * conv,
            (false, Some(_)) => 1.8 * conv,
            (false, None) => conv,
        };
        s.session(chance, festival);
        first = false;
        if s.clock >= end || s.rng.gen_bool(dropout) {
            break;
        }
        // Next visit: exponential gap, sometimes pulled to a festival, at a typical hour.
        let gap = -s.rng.gen_range(f64::MIN_POSITIVE..1.0).ln() / rate;
        let mut next = s.clock + (gap.min(400.0) * DAY as f64) as i64;
        if let Some(f) = shop.festivals.iter().find(|f| f.0 > s.clock && f.0 < next) {
            if s.rng.gen_bool(0.45) {
                next = f.0;
            }
        }
        let earliest = s.clock + 30 * 60 * SEC;
        let placed = s.place(next);
        next = Some(placed)
            .filter(|t| *t > earliest)
            .unwrap_or(next.max(earliest));
        if next >= end {
            break;
        }
        s.clock = next;
        s.visit(0.15);
        s.track("Signed In", Map::new());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::TimeZone;
    use serde_json::Value;

    use super::*;

    fn opts(users: usize, seed: u64) -> DemoOptions {
        DemoOptions {
            users,
            seed,
            end: Utc.with_ymd_and_hms(2025, 11, 20, 15, 30, 0).unwrap(),
        }
    }

    /// Integer fen of a JSON money number, checking it has at most two decimals.
    fn fen(v: &Value) -> i64 {
        let text = v.as_number().unwrap().to_string();
        assert!(text.split_once('.').is_none_or(|(_, d)| d.len() <= 2), "{text}");
        (v.as_f64().unwrap() * 100.0).round() as i64
    }

    /// The generated messages as JSON trees.
    fn generate(opts: &DemoOptions) -> Vec<Value> {
        super::generate(opts)
            .iter()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect()
    }

    #[test]
    fn same_options_same_output_other_seed_differs() {
        let a = generate(&opts(300, 7));
        assert_eq!(a, generate(&opts(300, 7)));
        assert_ne!(a, generate(&opts(300, 8)));
    }

    #[test]
    fn messages_are_well_formed_sorted_and_in_the_window() {
        let o = opts(500, 1);
        let msgs = generate(&o);
        assert!(msgs.len() > 500 * 15, "{}", msgs.len());
        let first = o.end - chrono::Duration::days(365);
        let mut ids = HashSet::new();
        let mut prev = (String::new(), String::new());
        for m in &msgs {
            let ts = m["timestamp"].as_str().unwrap();
            let t = DateTime::parse_from_rfc3339(ts).unwrap();
            assert!(ts.ends_with('Z') && t <= o.end && t >= first, "{ts}");
            assert!(m["userId"].is_string() || m["anonymousId"].is_string(), "{m}");
            let id = m["messageId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "duplicate {id}");
            let key = (ts.to_string(), id);
            assert!(key > prev, "not sorted at {key:?}");
            prev = key;
            match m["type"].as_str().unwrap() {
                "track" => assert!(m["event"].is_string() && m["properties"].is_object()),
                "page" => assert!(m["name"].is_string() && m["properties"].is_object()),
                "identify" => {
                    assert!(m["userId"].is_string() && m["anonymousId"].is_string());
                    for k in [
                        "name",
                        "gender",
                        "birthday",
                        "city",
                        "region",
                        "phone",
                        "email",
                        "created_at",
                    ] {
                        assert!(m["traits"][k].is_string(), "{k} in {m}");
                    }
                    assert_eq!(m["traits"]["phone"].as_str().unwrap().len(), 11);
                }
                other => panic!("type {other}"),
            }
        }
        let signups = msgs.iter().filter(|m| m["event"] == "Signed Up").count();
        assert_eq!(signups, 500);
    }

    #[test]
    fn orders_add_up_refunds_follow_orders_and_buyers_repeat() {
        let msgs = generate(&opts(2000, 3));
        let mut placed: HashMap<&str, &str> = HashMap::new();
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        let (mut refunds, mut cancels) = (0, 0);
        for m in &msgs {
            let (p, ts) = (&m["properties"], m["timestamp"].as_str().unwrap());
            let order_id = p["order_id"].as_str().unwrap_or_default();
            match m["event"].as_str().unwrap_or_default() {
                "Order Completed" => {
                    let lines: i64 = p["products"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| fen(&l["price"]) * l["quantity"].as_i64().unwrap())
                        .sum();
                    let total = fen(&p["total"]);
                    assert_eq!(total, lines - fen(&p["discount"]), "{m}");
                    assert!(total >= 0 && fen(&p["revenue"]) == total && p["currency"] == "CNY");
                    assert!(placed.insert(order_id, ts).is_none(), "order {order_id} twice");
                    *per_user.entry(m["userId"].as_str().unwrap()).or_default() += 1;
                }
                e @ ("Order Refunded" | "Order Cancelled") => {
                    let at = placed
                        .get(order_id)
                        .unwrap_or_else(|| panic!("{e} of unknown {order_id}"));
                    assert!(ts > *at, "{e} of {order_id} before the order");
                    if e == "Order Refunded" {
                        refunds += 1;
                    } else {
                        cancels += 1;
                    }
                }
                _ => {}
            }
        }
        let orders = placed.len() as f64;
        assert!(
            (0.02..0.09).contains(&(refunds as f64 / orders)),
            "{refunds} refunds of {orders}"
        );
        assert!(
            cancels > 0 && (cancels as f64) < orders * 0.03,
            "{cancels} cancels"
        );
        let buyers = per_user.len() as f64;
        let repeat = per_user.values().filter(|&&n| n >= 2).count() as f64;
        assert!((0.55..0.75).contains(&(buyers / 2000.0)), "{buyers} buyers");
        assert!(
            (0.2..0.4).contains(&(repeat / buyers)),
            "{repeat} repeat buyers of {buyers}"
        );
        assert!(per_user.values().any(|&n| n >= 10), "no heavy buyer");
    }
}
