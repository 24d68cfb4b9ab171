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
use serde_json::{json, Map, Value};

/// What [`generate`] builds.
pub struct DemoOptions {
    /// Registered users (`u000001`, `u000002`, …).
    pub users: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// No message is later than this; the history covers the 365 days before it.
    pub end: DateTime<Utc>,
}

const SEC: i64 = 1000;
const HOUR: i64 = 3600 * SEC;
const DAY: i64 = 24 * HOUR;
/// China Standard Time (UTC+8), which drives the hour-of-day pattern and festivals.
const CST: i64 = 8 * HOUR;
const PRODUCTS_PER_CATEGORY: usize = 18;

/// A category: brands, item names with a base price in 元, most units per line,
/// and browsing weights for women and men.
struct Category {
    name: &'static str,
    brands: &'static [&'static str],
    items: &'static [(&'static str, i64)],
    max_qty: i64,
    weight: (u32, u32),
}

#[rustfmt::skip]
const CATEGORIES: &[Category] = &[
    Category { name: "護膚", brands: &["蘭蔻", "雅詩蘭黛", "資生堂", "珀萊雅", "百雀羚", "自然堂"],
        items: &[("小黑瓶精華液 30ml", 760), ("保濕面霜 50g", 420), ("氨基酸潔面乳", 89), ("補水爽膚水 200ml", 199),
                 ("清爽防曬乳 SPF50", 169), ("玻尿酸面膜 10片裝", 129), ("抗皺眼霜 15ml", 399), ("修護乳液 100ml", 259)],
        max_qty: 3, weight: (14, 3) },
    Category { name: "彩妝", brands: &["花西子", "完美日記", "迪奧", "聖羅蘭", "美寶蓮", "毛戈平"],
        items: &[("絲絨啞光口紅", 189), ("持妝氣墊粉底", 259), ("眼影盤 12色", 159), ("控油定妝散粉", 129),
                 ("纖長睫毛膏", 99), ("防水眉筆", 59), ("柔霧腮紅", 109), ("溫和卸妝水 400ml", 89)],
        max_qty: 3, weight: (12, 1) },
    Category { name: "服飾", brands: &["優衣庫", "ZARA", "太平鳥", "波司登", "森馬", "海瀾之家"],
        items: &[("純棉圓領T恤", 79), ("修身牛仔褲", 229), ("輕薄羽絨服", 499), ("針織開衫", 259),
                 ("休閒襯衫", 169), ("碎花連衣裙", 299), ("連帽衛衣", 199), ("雙面羊毛大衣", 899)],
        max_qty: 2, weight: (12, 8) },
    Category { name: "運動鞋", brands: &["耐克", "阿迪達斯", "李寧", "安踏", "特步", "新百倫"],
        items: &[("緩震跑步鞋", 699), ("實戰籃球鞋", 899), ("經典板鞋", 459), ("綜合訓練鞋", 499),
                 ("休閒老爹鞋", 559), ("輕量慢跑鞋", 399)],
        max_qty: 1, weight: (6, 12) },
    Category { name: "運動服", brands: &["耐克", "阿迪達斯", "李寧", "安踏", "露露檸檬"],
        items: &[("速乾運動T恤", 149), ("訓練短褲", 129), ("高腰瑜伽褲", 299), ("高強度運動文胸", 229),
                 ("防風連帽外套", 459), ("運動套裝", 599)],
        max_qty: 2, weight: (7, 9) },
    Category { name: "食品", brands: &["三隻松鼠", "良品鋪子", "百草味", "衛龍", "五芳齋"],
        items: &[("每日堅果 30袋", 129), ("風乾牛肉乾 500g", 89), ("辣條大禮包", 29), ("芒果乾 500g", 39),
                 ("鮮肉粽子禮盒", 99), ("手撕麵包 1kg", 25), ("掛耳咖啡 50包", 79), ("龍井茶葉禮盒", 199)],
        max_qty: 6, weight: (10, 8) },
    Category { name: "母嬰", brands: &["幫寶適", "花王", "飛鶴", "貝親", "好孩子"],
        items: &[("紙尿褲 L碼 54片", 119), ("嬰兒奶粉 3段 800g", 269), ("寬口徑玻璃奶瓶", 99),
                 ("嬰兒濕巾 80抽×6包", 49), ("輕便嬰兒推車", 899), ("兒童安全座椅", 1299)],
        max_qty: 4, weight: (7, 2) },
    Category { name: "數碼", brands: &["小米", "華為", "蘋果", "OPPO", "漫步者"],
        items: &[("降噪藍牙耳機", 499), ("智能手錶", 1299), ("充電寶 20000mAh", 129), ("平板電腦", 2999),
                 ("5G 智能手機", 3999), ("無線充電器", 99)],
        max_qty: 1, weight: (5, 14) },
    Category { name: "家居", brands: &["宜家", "無印良品", "水星家紡", "網易嚴選", "南極人"],
        items: &[("純棉四件套", 399), ("記憶棉枕頭", 129), ("桑蠶絲被", 899), ("摺疊收納箱", 59),
                 ("香薰蠟燭", 79), ("純棉毛巾 3條裝", 49), ("防滑地墊", 69)],
        max_qty: 3, weight: (8, 5) },
    Category { name: "廚具", brands: &["蘇泊爾", "九陽", "美的", "雙立人", "樂扣樂扣"],
        items: &[("不粘炒鍋", 299), ("智能電飯煲", 399), ("破壁料理機", 699), ("不鏽鋼刀具套裝", 599),
                 ("玻璃保鮮盒套裝", 99), ("空氣炸鍋", 399), ("電熱水壺", 129)],
        max_qty: 2, weight: (6, 5) },
    Category { name: "保健品", brands: &["湯臣倍健", "善存", "Swisse", "同仁堂", "鈣爾奇"],
        items: &[("維生素C咀嚼片 100片", 99), ("深海魚油軟膠囊", 168), ("乳清蛋白粉 450g", 298),
                 ("鈣維D片", 89), ("益生菌 30袋", 199), ("葉黃素軟糖", 159)],
        max_qty: 4, weight: (6, 6) },
];

#[rustfmt::skip]
const SURNAMES: &[&str] = &[
    "王", "李", "張", "劉", "陳", "楊", "黃", "趙", "吳", "周", "徐", "孫", "馬", "朱", "胡", "郭", "何", "林",
    "高", "羅", "鄭", "梁", "謝", "宋", "唐", "許", "韓", "馮", "鄧", "曹", "彭", "曾", "蕭", "田", "董", "潘",
    "袁", "蔡", "蔣", "余", "歐陽", "司馬",
];
#[rustfmt::skip]
const MALE_GIVEN: &[&str] = &[
    "偉", "強", "磊", "軍", "洋", "勇", "傑", "濤", "明", "超", "輝", "鵬", "浩", "宇", "俊", "峰", "建", "斌",
    "志", "晨", "子軒", "浩然", "宇航", "文博", "一鳴",
];
#[rustfmt::skip]
const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "靜", "麗", "艷", "娟", "霞", "婷", "雪", "慧", "穎", "琳", "欣", "怡", "潔", "倩", "萱",
    "佳", "悅", "雨桐", "思涵", "欣怡", "梓萱", "詩雨",
];
/// (city, region, weight): tier-1 and tier-2 cities plus some tier-3 ones.
#[rustfmt::skip]
const CITIES: &[(&str, &str, u32)] = &[
    ("上海", "華東", 12), ("北京", "華北", 11), ("廣州", "華南", 9), ("深圳", "華南", 9), ("杭州", "華東", 7),
    ("成都", "西南", 7), ("武漢", "華中", 6), ("南京", "華東", 5), ("西安", "西北", 5), ("重慶", "西南", 6),
    ("蘇州", "華東", 4), ("天津", "華北", 4), ("長沙", "華中", 4), ("鄭州", "華中", 3), ("瀋陽", "東北", 3),
    ("青島", "華東", 3), ("洛陽", "華中", 2), ("贛州", "華東", 2), ("桂林", "華南", 2), ("綿陽", "西南", 2),
    ("揚州", "華東", 2), ("保定", "華北", 2), ("遵義", "西南", 1), ("大慶", "東北", 1), ("天水", "西北", 1),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; V2231A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
];
/// (utm source, utm medium) of campaign traffic.
#[rustfmt::skip]
const CAMPAIGNS: &[(&str, &str)] = &[
    ("baidu", "cpc"), ("wechat", "social"), ("douyin", "video"), ("xiaohongshu", "social"), ("weibo", "social"),
    ("newsletter", "email"), ("sms", "sms"),
];
#[rustfmt::skip]
const QUERIES: &[&str] = &[
    "精華液", "口紅", "羽絨服", "跑步鞋", "瑜伽褲", "堅果", "紙尿褲", "藍牙耳機", "四件套", "空氣炸鍋", "魚油",
    "防曬", "連衣裙", "奶粉", "雙11", "李寧", "小米", "花西子",
];
/// Review texts by rating (1–5 stars).
#[rustfmt::skip]
const REVIEWS: &[&str] = &[
    "質量很差，不推薦", "一般般，和描述有差距", "還可以，物流有點慢", "不錯，性價比高", "非常滿意，會回購！",
];
/// Local (UTC+8) hour-of-day weights of visits: lunch and evening peaks.
#[rustfmt::skip]
const HOURS: [u32; 24] = [3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 9, 8, 8, 8, 9, 10, 13, 15, 16, 14, 8];

/// A catalogue entry; money in fen.
struct Product {
    id: String,
    sku: String,
    name: String,
    category: &'static str,
    brand: &'static str,
    price: i64,
    cost: i64,
    max_qty: i64,
}

impl Product {
    /// Spec v2 product properties; `cost` only on browsing events (it feeds the catalogue).
    fn props(&self, quantity: Option<i64>, cost: bool) -> Map<String, Value> {
        let mut m = obj([
            ("product_id", self.id.as_str().into()),
            ("sku", self.sku.as_str().into()),
            ("name", self.name.as_str().into()),
            ("category", self.category.into()),
            ("brand", self.brand.into()),
            ("price", yuan(self.price)),
        ]);
        if cost {
            m.insert("cost".into(), yuan(self.cost));
        }
        if let Some(q) = quantity {
            m.insert("quantity".into(), q.into());
        }
        m
    }
}

/// A JSON object from its fields (cheaper than `json!`, which re-serialises interpolated values).
fn obj<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A JSON number in 元 with at most two decimals (the nearest double prints as that decimal).
fn yuan(fen: i64) -> Value {
    json!(fen as f64 / 100.0)
}

/// 18 products per category (shuffled brand × item pairs) at shopfront prices
/// (¥X9, ¥X9.9), cheapest first; `Shopper::pick` favours the front, so cheap items sell more.
fn catalogue(seed: u64) -> Vec<Vec<Product>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut number = 0;
    let mut out = Vec::with_capacity(CATEGORIES.len());
    for cat in CATEGORIES {
        let mut pairs: Vec<(usize, usize)> = (0..cat.brands.len())
            .flat_map(|b| (0..cat.items.len()).map(move |i| (b, i)))
            .collect();
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, rng.gen_range(0..=i));
        }
        let mut products = Vec::with_capacity(PRODUCTS_PER_CATEGORY);
        for &(b, i) in pairs.iter().take(PRODUCTS_PER_CATEGORY) {
            number += 1;
            let (item, base) = cat.items[i];
            let whole = base * rng.gen_range(70..=150) / 100 / 10 * 10 + 9;
            let price = if whole < 100 && rng.gen_bool(0.5) {
                whole * 100 + 90
            } else {
                whole * 100
            };
            products.push(Product {
                id: format!("P{number:04}"),
                sku: format!("SKU-{number:04}"),
                name: format!("{}{item}", cat.brands[b]),
                category: cat.name,
                brand: cat.brands[b],
                price,
                cost: price * rng.gen_range(40..=70) / 100,
                max_qty: cat.max_qty,
            });
        }
        products.sort_by_key(|p| p.price);
        out.push(products);
    }
    out
}

/// Gamma(shape, 1) by Marsaglia–Tsang (normals by Box–Muller).
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
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
fn beta(rng: &mut ChaCha8Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    x / (x + gamma(rng, b)).max(f64::MIN_POSITIVE)
}

/// An index drawn with the given integer weights.
fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
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
fn festivals(start: i64, end: i64) -> Vec<(i64, &'static str)> {
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

/// What every shopper shares; times in Unix milliseconds.
struct Shop {
    seed: u64,
    start: i64,
    end: i64,
    catalogue: Vec<Vec<Product>>,
    festivals: Vec<(i64, &'static str)>,
}

/// A message with its sort key (timestamp ms, messageId).
type Msg = (i64, String, Map<String, Value>);

/// One shopper's simulation state and message sink.
struct Shopper<'a> {
    shop: &'a Shop,
    rng: ChaCha8Rng,
    n: usize,
    /// 0: anonymous, 1: userId and anonymousId (signup), 2: userId.
    phase: u8,
    ua: &'static str,
    campaign: Option<(&'static str, &'static str)>,
    /// The next message opens a visit and carries the `context` (device, campaign). The
    /// visit's other messages omit it, which halves the memory of 600k messages.
    fresh: bool,
    favourites: [usize; 2],
    clock: i64,
    seq: u32,
    carts: u32,
    orders: u32,
    out: &'a mut Vec<Msg>,
}

impl<'a> Shopper<'a> {
    /// Records a message at `at` unless that is outside the window (returns whether it did).
    fn push(&mut self, at: i64, kind: &str, mut m: Map<String, Value>) -> bool {
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
            if let (Some((source, medium)), Some(c)) = (self.campaign, ctx.as_object_mut()) {
                c.insert(
                    "campaign".into(),
                    json!({"source": source, "medium": medium, "name": "demo"}),
                );
            }
            m.insert("context".into(), ctx);
        }
        self.out.push((at, id, m));
        true
    }

    /// Starts a visit: a new `context`, from a campaign with probability `share`.
    fn visit(&mut self, share: f64) {
        self.campaign = self
            .rng
            .gen_bool(share)
            .then(|| CAMPAIGNS[self.rng.gen_range(0..CAMPAIGNS.len())]);
        self.fresh = true;
    }

    /// Moves the clock on by a browsing pause.
    fn tick(&mut self) -> i64 {
        self.clock += self.rng.gen_range(8 * SEC..150 * SEC);
        self.clock
    }

    fn track_at(&mut self, at: i64, event: &str, props: Map<String, Value>) -> bool {
        self.push(
            at,
            "track",
            obj([("event", event.into()), ("properties", props.into())]),
        )
    }

    fn track(&mut self, event: &str, props: Map<String, Value>) -> bool {
        let at = self.tick();
        self.track_at(at, event, props)
    }

    /// A later, server-side event (refund, review): no context, clock untouched.
    fn track_later(&mut self, at: i64, event: &str, props: Map<String, Value>) -> bool {
        let fresh = std::mem::take(&mut self.fresh);
        let ok = self.track_at(at, event, props);
        self.fresh = fresh;
        ok
    }

    fn page(&mut self, name: &str, path: &str) -> bool {
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
    fn pick(&mut self) -> &'a Product {
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
    fn place(&mut self, t: i64) -> i64 {
        let day = (t + CST).div_euclid(DAY) * DAY - CST;
        day + weighted(&mut self.rng, &HOURS, |w| *w) as i64 * HOUR + self.rng.gen_range(0..HOUR)
    }

    /// One visit from the clock on; `buy` is the chance it ends in an order.
    fn session(&mut self, buy: f64, festival: Option<&'static str>) {
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

/// Generates every message of the demo shop; same options => identical output (same
/// messageIds, same timestamps, same order). Messages are sorted by timestamp, then messageId.
pub fn generate(opts: &DemoOptions) -> Vec<Value> {
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
    out.into_iter().map(|(_, _, m)| Value::Object(m)).collect()
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
