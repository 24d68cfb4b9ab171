//! One simulated shopper: sessions, browsing, carts, orders, refunds, with
//! BG/NBD-like purchase propensity and dropout (see the module root).

use chrono::{DateTime, SecondsFormat};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::catalogue::*;
use super::*;

/// Gamma(shape, 1) by Marsaglia–Tsang (normals by Box–Muller).
pub(super) fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        let x = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.gen::<f64>()).cos();
        let v = (1.0 + c * x).powi(3);
        if v > 0.0 && rng.gen::<f64>().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Beta(a, b) from two gammas.
pub(super) fn beta(rng: &mut ChaCha8Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    x / (x + gamma(rng, b)).max(f64::MIN_POSITIVE)
}

/// An index drawn with the given integer weights.
pub(super) fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let mut r = rng.gen_range(0..items.iter().map(&weight).sum::<u32>().max(1));
    for (i, item) in items.iter().enumerate() {
        match r.checked_sub(weight(item)) {
            Some(rest) => r = rest,
            None => return i,
        }
    }
    0
}

/// Shopping festivals (618, 雙11, 雙12) inside the window: (UTC start of the local day, label).
pub(super) fn festivals(start: i64, end: i64) -> Vec<(i64, &'static str)> {
    let year = |t: i64| DateTime::from_timestamp_millis(t + CST).map_or(2024, |d| chrono::Datelike::year(&d));
    let mut out = Vec::new();
    for y in year(start)..=year(end) {
        for (m, d, label) in [(6, 18, "618"), (11, 11, "雙11"), (12, 12, "雙12")] {
            if let Some(day) = chrono::NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(0, 0, 0)) {
                let at = day.and_utc().timestamp_millis() - CST;
                if at > start && at < end {
                    out.push((at, label));
                }
            }
        }
    }
    out
}

pub(super) struct Shopper<'a> {
    pub(super) shop: &'a Shop,
    pub(super) rng: ChaCha8Rng,
    pub(super) n: usize,
    /// 0: anonymous, 1: userId and anonymousId (signup), 2: userId.
    pub(super) phase: u8,
    pub(super) ua: &'static str,
    pub(super) campaign: Option<(&'static str, &'static str, &'static str)>,
    /// The next message opens a visit and carries the `context` (device, campaign). The
    /// visit's other messages omit it, which halves the memory of 600k messages.
    pub(super) fresh: bool,
    pub(super) favourites: [usize; 2],
    pub(super) clock: i64,
    pub(super) seq: u32,
    pub(super) carts: u32,
    pub(super) orders: u32,
    pub(super) out: &'a mut Vec<Msg>,
}

impl<'a> Shopper<'a> {
    /// Records a message at `at` unless that is outside the window (returns whether it did).
    pub(super) fn push(&mut self, at: i64, kind: &str, mut m: Map<String, Value>) -> bool {
        let in_window = at <= self.shop.end && at > self.shop.start;
        let Some(ts) = DateTime::from_timestamp_millis(at).filter(|_| in_window) else {
            return false;
        };
        self.seq += 1;
        let id = format!("demo-{}-{:06}-{:05}", self.shop.seed, self.n, self.seq);
        m.insert("type".into(), kind.into());
        m.insert("messageId".into(), id.as_str().into());
        m.insert(
            "timestamp".into(),
            ts.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
        );
        if self.phase > 0 {
            m.insert("userId".into(), format!("u{:06}", self.n).into());
        }
        if self.phase < 2 {
            m.insert("anonymousId".into(), format!("anon-{:06}", self.n).into());
        }
        if std::mem::take(&mut self.fresh) {
            let mut ctx = json!({"library": {"name": "flywheel-demo", "version": "1.0"},
                "ip": "127.0.0.1", "userAgent": self.ua, "locale": "zh-CN", "timezone": "Asia/Shanghai"});
            if let (Some((source, medium, name)), Some(c)) = (self.campaign, ctx.as_object_mut()) {
                c.insert(
                    "campaign".into(),
                    json!({"source": source, "medium": medium, "name": name}),
                );
            }
            m.insert("context".into(), ctx);
        }
        self.out.push((at, id, Value::Object(m).to_string()));
        true
    }

    /// Starts a visit: a new `context`, from a campaign with probability `share`.
    pub(super) fn visit(&mut self, share: f64) {
        self.campaign = self
            .rng
            .gen_bool(share)
            .then(|| CAMPAIGNS[self.rng.gen_range(0..CAMPAIGNS.len())]);
        self.fresh = true;
    }

    /// Moves the clock on by a browsing pause.
    pub(super) fn tick(&mut self) -> i64 {
        self.clock += self.rng.gen_range(8 * SEC..150 * SEC);
        self.clock
    }

    pub(super) fn track_at(&mut self, at: i64, event: &str, props: Map<String, Value>) -> bool {
        self.push(
            at,
            "track",
            obj([("event", event.into()), ("properties", props.into())]),
        )
    }

    pub(super) fn track(&mut self, event: &str, props: Map<String, Value>) -> bool {
        let at = self.tick();
        self.track_at(at, event, props)
    }

    /// A later, server-side event (refund, review): no context, clock untouched.
    pub(super) fn track_later(&mut self, at: i64, event: &str, props: Map<String, Value>) -> bool {
        let fresh = std::mem::take(&mut self.fresh);
        let ok = self.track_at(at, event, props);
        self.fresh = fresh;
        ok
    }

    pub(super) fn page(&mut self, name: &str, path: &str) -> bool {
        let at = self.tick();
        let props = obj([
            ("path", path.into()),
            ("url", format!("https://shop.example.com{path}").into()),
            ("title", format!("{name} - 飛輪商城").into()),
            ("referrer", "".into()),
        ]);
        self.push(
            at,
            "page",
            obj([("name", name.into()), ("properties", props.into())]),
        )
    }

    /// A product to show: mostly from the favourite categories, cheap (popular) items more often.
    pub(super) fn pick(&mut self) -> &'a Product {
        let cat = &self.shop.catalogue;
        let c = if self.rng.gen_bool(0.65) {
            self.favourites[self.rng.gen_range(0..2)]
        } else {
            self.rng.gen_range(0..cat.len())
        };
        let i = (cat[c].len() as f64 * self.rng.gen::<f64>().powf(1.8)) as usize;
        &cat[c][i.min(cat[c].len() - 1)]
    }

    /// An instant on `t`'s local day at an hour drawn from the daily pattern.
    pub(super) fn place(&mut self, t: i64) -> i64 {
        let day = (t + CST).div_euclid(DAY) * DAY - CST;
        day + weighted(&mut self.rng, &HOURS, |w| *w) as i64 * HOUR + self.rng.gen_range(0..HOUR)
    }

    /// One visit from the clock on; `buy` is the chance it ends in an order.
    pub(super) fn session(&mut self, buy: f64, festival: Option<&'static str>) {
        let (name, path) = match (self.campaign, festival) {
            (_, Some(f)) => ("活動頁", format!("/promo/{f}")),
            (Some(_), None) => ("活動頁", "/promo/weekly".to_string()),
            _ if self.rng.gen_bool(0.75) => ("首頁", "/".to_string()),
            _ => ("分類頁", format!("/category/{}", self.favourites[0] + 1)),
        };
        self.page(name, &path);
        if self.rng.gen_bool(0.12) {
            let query = QUERIES[self.rng.gen_range(0..QUERIES.len())];
            self.track("Products Searched", obj([("query", query.into())]));
        }
        if self.rng.gen_bool(0.3) {
            self.page("分類頁", &format!("/category/{}", self.favourites[1] + 1));
        }
        let mut viewed = Vec::new();
        for _ in 0..self.rng.gen_range(1..=5) {
            let p = self.pick();
            self.track("Product Viewed", p.props(None, true));
            if self.rng.gen_bool(0.04) {
                self.track("Product Added to Wishlist", p.props(None, false));
            }
            viewed.push(p);
        }
        let ordering = self.rng.gen_bool(buy.clamp(0.0, 1.0));
        let lines = match ordering {
            true => 1 + weighted(&mut self.rng, &[62, 27, 11], |w| *w),
            false => usize::from(self.rng.gen_bool(0.3)),
        };
        let mut cart: Vec<(&Product, i64)> = Vec::new();
        for k in 0..lines {
            let p = viewed.get(k).copied().unwrap_or_else(|| self.pick());
            if cart.iter().all(|(q, _)| q.id != p.id) {
                let qty = if self.rng.gen_bool(0.75) {
                    1
                } else {
                    self.rng.gen_range(1..=p.max_qty)
                };
                self.track("Product Added", p.props(Some(qty), true));
                cart.push((p, qty));
            }
        }
        if cart.is_empty() {
            return;
        }
        let products: Vec<Value> = cart
            .iter()
            .map(|(p, q)| Value::Object(p.props(Some(*q), false)))
            .collect();
        let subtotal: i64 = cart.iter().map(|(p, q)| p.price * q).sum();
        if self.rng.gen_bool(if ordering { 0.75 } else { 0.4 }) {
            self.track("Cart Viewed", obj([("products", products.clone().into())]));
        }
        // Abandoned carts stop here; a fifth of them after starting checkout.
        if !ordering && !self.rng.gen_bool(0.2) {
            return;
        }
        self.carts += 1;
        let order_id = format!("O{}-{:06}-{}", self.shop.seed, self.n, self.carts);
        let checkout = obj([
            ("order_id", order_id.as_str().into()),
            ("value", yuan(subtotal)),
            ("currency", "CNY".into()),
            ("products", products.clone().into()),
        ]);
        self.track("Checkout Started", checkout);
        if !ordering {
            return;
        }
        let (coupon, discount) = match (self.orders, festival, self.rng.gen::<f64>()) {
            (0, _, r) if r < 0.35 => ("NEW10".to_string(), subtotal / 10),
            (_, Some(f), r) if r < 0.6 && subtotal >= 40_000 => (format!("{f}滿400減60"), 6000),
            (_, _, r) if r < 0.12 && subtotal >= 30_000 => ("滿300減50".to_string(), 5000),
            (_, _, r) if r < 0.12 && subtotal >= 19_900 => ("滿199減20".to_string(), 2000),
            (_, _, r) if r < 0.16 => ("VIP95".to_string(), subtotal / 20),
            _ => (String::new(), 0),
        };
        let total = subtotal - discount;
        let mut props = obj([
            ("order_id", order_id.as_str().into()),
            ("total", yuan(total)),
            ("revenue", yuan(total)),
            ("discount", yuan(discount)),
            ("currency", "CNY".into()),
            ("products", products.into()),
        ]);
        if !coupon.is_empty() {
            let applied = obj([
                ("order_id", order_id.as_str().into()),
                ("coupon_id", coupon.as_str().into()),
                ("coupon_name", coupon.as_str().into()),
                ("discount", yuan(discount)),
            ]);
            self.track("Coupon Applied", applied);
            props.insert("coupon".into(), coupon.into());
        }
        let placed = self.tick();
        if !self.track_at(placed, "Order Completed", props) {
            return;
        }
        self.orders += 1;
        let fate = self.rng.gen::<f64>();
        let adjust = obj([
            ("order_id", order_id.as_str().into()),
            ("total", yuan(total)),
            ("currency", "CNY".into()),
        ]);
        if fate < 0.01 {
            let at = placed + self.rng.gen_range(5 * 60 * SEC..55 * 60 * SEC);
            self.track_later(at, "Order Cancelled", adjust);
        } else if fate < 0.06 {
            let at = placed + self.rng.gen_range(2 * DAY..10 * DAY);
            self.track_later(at, "Order Refunded", adjust);
        } else if fate < 0.18 {
            let at = placed + self.rng.gen_range(3 * DAY..15 * DAY);
            let rating = 1 + weighted(&mut self.rng, &[3, 4, 10, 28, 55], |w| *w);
            let mut m = cart[0].0.props(None, false);
            m.insert("review_id".into(), format!("R{}", &order_id[1..]).into());
            m.insert("rating".into(), rating.into());
            m.insert("review_body".into(), REVIEWS[rating - 1].into());
            self.track_later(at, "Product Reviewed", m);
        }
    }
}
