//! A deterministic demo shop: a catalogue of about 200 products in eleven
//! categories and `users` registered shoppers with a year of behaviour before
//! `end`, emitted as Segment HTTP API messages (`track`, `page`, `identify`).
//!
//! Each shopper browses anonymously, signs up (an `identify` carrying both ids links
//! the anonymous history), then returns in sessions until churning. Visit rate,
//! per-session dropout and conversion are drawn per user from gamma/beta mixtures
//! (BG/NBD-like), so a few heavy buyers, many one-off buyers and many non-buyers
//! with abandoned carts appear. Orders are sometimes refunded or cancelled later.
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

const SURNAMES: &[&str] = &[
    "王", "李", "張", "劉", "陳", "楊", "黃", "趙", "吳", "周", "徐", "孫", "馬", "朱", "胡", "郭", "何",
    "林", "高", "羅", "鄭", "梁", "謝", "宋", "唐", "許", "韓", "馮", "鄧", "曹", "彭", "曾", "蕭", "田",
    "董", "潘", "袁", "蔡", "蔣", "余", "歐陽", "司馬",
];
const MALE_GIVEN: &[&str] = &[
    "偉", "強", "磊", "軍", "洋", "勇", "傑", "濤", "明", "超", "輝", "鵬", "浩", "宇", "俊", "峰", "建",
    "斌", "志", "晨", "子軒", "浩然", "宇航", "文博", "一鳴",
];
const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "靜", "麗", "艷", "娟", "霞", "婷", "雪", "慧", "穎", "琳", "欣", "怡", "潔", "倩",
    "萱", "佳", "悅", "雨桐", "思涵", "欣怡", "梓萱", "詩雨",
];
/// (city, region, weight): tier-1 and tier-2 cities plus some tier-3 ones.
const CITIES: &[(&str, &str, u32)] = &[
    ("上海", "華東", 12),
    ("北京", "華北", 11),
    ("廣州", "華南", 9),
    ("深圳", "華南", 9),
    ("杭州", "華東", 7),
    ("成都", "西南", 7),
    ("武漢", "華中", 6),
    ("南京", "華東", 5),
    ("西安", "西北", 5),
    ("重慶", "西南", 6),
    ("蘇州", "華東", 4),
    ("天津", "華北", 4),
    ("長沙", "華中", 4),
    ("鄭州", "華中", 3),
    ("瀋陽", "東北", 3),
    ("青島", "華東", 3),
    ("洛陽", "華中", 2),
    ("贛州", "華東", 2),
    ("桂林", "華南", 2),
    ("綿陽", "西南", 2),
    ("揚州", "華東", 2),
    ("保定", "華北", 2),
    ("遵義", "西南", 1),
    ("大慶", "東北", 1),
    ("天水", "西北", 1),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; V2231A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
];
/// (utm source, utm medium) of campaign traffic.
const CAMPAIGNS: &[(&str, &str)] = &[
    ("baidu", "cpc"),
    ("wechat", "social"),
    ("douyin", "video"),
    ("xiaohongshu", "social"),
    ("weibo", "social"),
    ("newsletter", "email"),
    ("sms", "sms"),
];
const QUERIES: &[&str] = &[
    "精華液",
    "口紅",
    "羽絨服",
    "跑步鞋",
    "瑜伽褲",
    "堅果",
    "紙尿褲",
    "藍牙耳機",
    "四件套",
    "空氣炸鍋",
    "魚油",
    "防曬",
    "連衣裙",
    "奶粉",
    "雙11",
    "李寧",
    "小米",
    "花西子",
];
const REVIEWS: &[&str] = &[
    "質量很差，不推薦",
    "一般般，和描述有差距",
    "還可以，物流有點慢",
    "不錯，性價比高",
    "非常滿意，會回購！",
];
/// Local (UTC+8) hour-of-day weights: lunch and evening peaks.
const HOURS: [u32; 24] = [
    3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 9, 8, 8, 8, 9, 10, 13, 15, 16, 14, 8,
];

struct Product {
    id: String,
    sku: String,
    name: String,
    category: &'static str,
    brand: &'static str,
    price: i64,
    cost: i64,
}

impl Product {
    fn props(&self, quantity: Option<i64>, cost: bool) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("product_id".into(), json!(self.id));
        m.insert("sku".into(), json!(self.sku));
        m.insert("name".into(), json!(self.name));
        m.insert("category".into(), json!(self.category));
        m.insert("brand".into(), json!(self.brand));
        m.insert("price".into(), yuan(self.price));
        if cost {
            m.insert("cost".into(), yuan(self.cost));
        }
        if let Some(q) = quantity {
            m.insert("quantity".into(), json!(q));
        }
        m
    }
}

/// The fields of a JSON object literal.
fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A JSON number in 元 with at most two decimals (exact: the nearest double prints as the decimal).
fn yuan(fen: i64) -> Value {
    json!(fen as f64 / 100.0)
}

/// 18 products per category (brand × item pairs) with shopfront prices (¥X9, ¥X9.9).
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
            let raw = (base * rng.gen_range(70..=150) / 100).max(9);
            let price = match raw {
                r if r >= 100 => (r / 10 * 10 + 9) * 100,
                r if rng.gen_bool(0.5) => r / 10 * 1000 + 990,
                r => r * 100,
            };
            products.push(Product {
                id: format!("P{number:04}"),
                sku: format!("SKU-{number:04}"),
                name: format!("{}{item}", cat.brands[b]),
                category: cat.name,
                brand: cat.brands[b],
                price,
                cost: price * rng.gen_range(40..=70) / 100,
            });
        }
        // Cheaper products sell more: `Shopper::pick` favours the front of each list.
        products.sort_by_key(|p| p.price);
        out.push(products);
    }
    out
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.gen::<f64>()).cos()
}

/// Gamma(shape, 1) by Marsaglia–Tsang.
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v > 0.0 && rng.gen::<f64>().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

fn beta(rng: &mut ChaCha8Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    x / (x + gamma(rng, b)).max(f64::MIN_POSITIVE)
}

fn weighted<T>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    let mut r = rng.gen_range(0..total.max(1));
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

/// Shopping festivals (雙11, 618, 雙12) inside the window: (UTC start of the local day, label).
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
    out.sort_unstable();
    out
}

type Msg = (i64, String, Map<String, Value>);

/// One shopper's simulation state and message sink.
struct Shopper<'a> {
    rng: ChaCha8Rng,
    seed: u64,
    n: usize,
    user_id: String,
    anon_id: String,
    /// 0: anonymous, 1: userId and anonymousId (signup), 2: userId.
    phase: u8,
    ua: &'static str,
    campaign: Option<(&'static str, &'static str)>,
    /// The next message opens a visit and carries the `context` (device, campaign).
    /// Later messages of the visit omit it, which keeps 600k messages affordable.
    fresh: bool,
    favourites: [usize; 2],
    clock: i64,
    start: i64,
    end: i64,
    seq: u32,
    carts: u32,
    orders: u32,
    out: &'a mut Vec<Msg>,
}

impl Shopper<'_> {
    /// Records a message at `at` unless that is after `end`.
    fn push(&mut self, at: i64, kind: &str, mut m: Map<String, Value>) -> bool {
        let Some(ts) = DateTime::from_timestamp_millis(at).filter(|_| at <= self.end && at > self.start)
        else {
            return false;
        };
        self.seq += 1;
        let id = format!("demo-{}-{:06}-{:05}", self.seed, self.n, self.seq);
        m.insert("type".into(), json!(kind));
        m.insert("messageId".into(), json!(id));
        m.insert(
            "timestamp".into(),
            json!(ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        if self.phase > 0 {
            m.insert("userId".into(), json!(self.user_id));
        }
        if self.phase < 2 {
            m.insert("anonymousId".into(), json!(self.anon_id));
        }
        if std::mem::take(&mut self.fresh) {
            let mut ctx = obj(
                json!({"library": {"name": "flywheel-demo", "version": "1.0"}, "ip": "127.0.0.1",
                "userAgent": self.ua, "locale": "zh-CN", "timezone": "Asia/Shanghai"}),
            );
            if let Some((source, medium)) = self.campaign {
                ctx.insert(
                    "campaign".into(),
                    json!({"source": source, "medium": medium, "name": "demo"}),
                );
            }
            m.insert("context".into(), Value::Object(ctx));
        }
        self.out.push((at, id, m));
        true
    }

    fn tick(&mut self) -> i64 {
        self.clock += self.rng.gen_range(8 * SEC..150 * SEC);
        self.clock
    }

    fn track_at(&mut self, at: i64, event: &str, props: Map<String, Value>) -> bool {
        let mut m = Map::new();
        m.insert("event".into(), json!(event));
        m.insert("properties".into(), Value::Object(props));
        self.push(at, "track", m)
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
        let props = json!({"path": path, "url": format!("https://shop.example.com{path}"),
            "title": format!("{name} - 飛輪商城"), "referrer": ""});
        self.push(at, "page", obj(json!({"name": name, "properties": props})))
    }

    /// A product to show: mostly from the favourite categories, popular items more often.
    fn pick<'c>(&mut self, cat: &'c [Vec<Product>]) -> &'c Product {
        let c = if self.rng.gen_bool(0.65) {
            self.favourites[self.rng.gen_range(0..2)]
        } else {
            self.rng.gen_range(0..cat.len())
        };
        let list = &cat[c];
        let i = (list.len() as f64 * self.rng.gen::<f64>().powf(1.8)) as usize;
        &list[i.min(list.len() - 1)]
    }

    /// An instant on `t`'s local day at an hour drawn from the daily pattern.
    fn place(&mut self, t: i64) -> i64 {
        let day = (t + CST).div_euclid(DAY) * DAY - CST;
        day + weighted(&mut self.rng, &HOURS, |w| *w) as i64 * HOUR + self.rng.gen_range(0..HOUR)
    }

    /// One visit; `buy` is the chance it ends in an order. Returns whether it ordered.
    fn session(&mut self, cat: &[Vec<Product>], buy: f64, festival: Option<&'static str>) -> bool {
        let landing = match (self.campaign, festival) {
            (_, Some(f)) => ("活動頁", format!("/promo/{f}")),
            (Some(_), None) => ("活動頁", "/promo/weekly".to_string()),
            _ if self.rng.gen_bool(0.75) => ("首頁", "/".to_string()),
            _ => ("分類頁", format!("/category/{}", self.favourites[0] + 1)),
        };
        self.page(landing.0, &landing.1);
        if self.rng.gen_bool(0.12) {
            let query = QUERIES[self.rng.gen_range(0..QUERIES.len())];
            self.track("Products Searched", obj(json!({"query": query})));
        }
        if self.rng.gen_bool(0.3) {
            let c = self.favourites[0];
            self.page("分類頁", &format!("/category/{}", c + 1));
        }
        let mut viewed = Vec::new();
        for _ in 0..self.rng.gen_range(1..=5) {
            let p = self.pick(cat);
            self.track("Product Viewed", p.props(None, true));
            if self.rng.gen_bool(0.04) {
                self.track("Product Added to Wishlist", p.props(None, false));
            }
            viewed.push(p);
        }
        let ordering = self.rng.gen_bool(buy.clamp(0.0, 1.0));
        let lines = if ordering {
            1 + weighted(&mut self.rng, &[62, 27, 11], |w| *w)
        } else {
            usize::from(self.rng.gen_bool(0.3))
        };
        let mut cart: Vec<(&Product, i64)> = Vec::new();
        for k in 0..lines {
            let p = viewed.get(k).copied().unwrap_or_else(|| self.pick(cat));
            if cart.iter().any(|(q, _)| q.id == p.id) {
                continue;
            }
            let max_qty = CATEGORIES
                .iter()
                .find(|c| c.name == p.category)
                .map_or(1, |c| c.max_qty);
            let qty = if self.rng.gen_bool(0.75) {
                1
            } else {
                self.rng.gen_range(1..=max_qty)
            };
            self.track("Product Added", p.props(Some(qty), true));
            cart.push((p, qty));
        }
        if cart.is_empty() {
            return false;
        }
        let products: Vec<Value> = cart
            .iter()
            .map(|(p, q)| Value::Object(p.props(Some(*q), false)))
            .collect();
        let subtotal: i64 = cart.iter().map(|(p, q)| p.price * q).sum();
        if self.rng.gen_bool(if ordering { 0.75 } else { 0.4 }) {
            self.track("Cart Viewed", obj(json!({"products": products})));
        }
        if !ordering && !self.rng.gen_bool(0.2) {
            return false;
        }
        self.carts += 1;
        let order_id = format!("O{}-{:06}-{}", self.seed, self.n, self.carts);
        let checkout =
            json!({"order_id": order_id, "value": yuan(subtotal), "currency": "CNY", "products": products});
        self.track("Checkout Started", obj(checkout));
        if !ordering {
            return false;
        }
        let (coupon, discount) = match (self.orders, festival, self.rng.gen::<f64>()) {
            (0, _, r) if r < 0.35 => (Some("NEW10".to_string()), subtotal / 10),
            (_, Some(f), r) if r < 0.6 && subtotal >= 40_000 => (Some(format!("{f}滿400減60")), 6000),
            (_, _, r) if r < 0.12 && subtotal >= 30_000 => (Some("滿300減50".to_string()), 5000),
            (_, _, r) if r < 0.12 && subtotal >= 19_900 => (Some("滿199減20".to_string()), 2000),
            (_, _, r) if r < 0.16 => (Some("VIP95".to_string()), subtotal / 20),
            _ => (None, 0),
        };
        let total = subtotal - discount;
        if let Some(code) = &coupon {
            let props = json!({"order_id": order_id, "coupon_id": code, "coupon_name": code, "discount": yuan(discount)});
            self.track("Coupon Applied", obj(props));
        }
        let mut props = obj(
            json!({"order_id": order_id, "total": yuan(total), "revenue": yuan(total),
            "discount": yuan(discount), "currency": "CNY", "products": products}),
        );
        if let Some(code) = coupon {
            props.insert("coupon".into(), json!(code));
        }
        let placed = self.tick();
        if !self.track_at(placed, "Order Completed", props) {
            return false;
        }
        self.orders += 1;
        let fate = self.rng.gen::<f64>();
        let adjust = obj(json!({"order_id": order_id, "total": yuan(total), "currency": "CNY"}));
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
            m.insert(
                "review_id".into(),
                json!(format!("R{}-{:06}-{}", self.seed, self.n, self.carts)),
            );
            m.insert("rating".into(), json!(rating));
            m.insert("review_body".into(), json!(REVIEWS[rating - 1]));
            self.track_later(at, "Product Reviewed", m);
        }
        true
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
    let mut out: Vec<Msg> = Vec::with_capacity(opts.users * 36);
    for n in 1..=opts.users {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        rng.set_stream(n as u64);
        simulate(rng, &shop, n, &mut out);
    }
    out.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.into_iter().map(|(_, _, m)| Value::Object(m)).collect()
}

/// What every shopper shares.
struct Shop {
    seed: u64,
    start: i64,
    end: i64,
    catalogue: Vec<Vec<Product>>,
    festivals: Vec<(i64, &'static str)>,
}

/// Emits user `n`'s whole life: anonymous visit, signup, sessions until churn.
fn simulate(mut rng: ChaCha8Rng, shop: &Shop, n: usize, out: &mut Vec<Msg>) {
    let (start, end, cat) = (shop.start, shop.end, &shop.catalogue);
    let female = rng.gen_bool(0.62);
    let given = if female { FEMALE_GIVEN } else { MALE_GIVEN };
    let mut name = SURNAMES[rng.gen_range(0..SURNAMES.len())].to_string();
    for _ in 0..if rng.gen_bool(0.6) { 2 } else { 1 } {
        name.push_str(given[rng.gen_range(0..given.len())]);
    }
    let (city, region, _) = CITIES[weighted(&mut rng, CITIES, |c| c.2)];
    let age = [(18, 24, 25), (25, 34, 40), (35, 44, 22), (45, 60, 13)]
        [weighted(&mut rng, &[25, 40, 22, 13], |w| *w)];
    let born = end - rng.gen_range(age.0 * 365..(age.1 + 1) * 365) * DAY - rng.gen_range(0..DAY);
    let birthday =
        DateTime::from_timestamp_millis(born).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
    let phone = format!(
        "1{}{:09}",
        [3, 5, 7, 8, 9][rng.gen_range(0..5)],
        rng.gen_range(0..1_000_000_000u64)
    );
    let gender_weight = |c: &Category| if female { c.weight.0 } else { c.weight.1 };
    let fav0 = weighted(&mut rng, CATEGORIES, gender_weight);
    let fav1 = weighted(&mut rng, CATEGORIES, gender_weight);
    // Heterogeneity: visits per day (gamma), dropout per visit and conversion (beta).
    let rate = 0.004 + gamma(&mut rng, 0.8) / 14.0;
    let dropout = beta(&mut rng, 1.2, 2.5);
    let conv = beta(&mut rng, 0.35, 1.3);
    let window = rng.gen_range(2 * HOUR..end - start - HOUR);
    let mut s = Shopper {
        seed: shop.seed,
        n,
        user_id: format!("u{n:06}"),
        anon_id: format!("anon-{n:06}"),
        phase: 0,
        ua: USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())],
        campaign: None,
        fresh: true,
        favourites: [fav0, fav1],
        clock: 0,
        start,
        end,
        seq: 0,
        carts: 0,
        orders: 0,
        rng,
        out,
    };
    let mut signup = s.place(start + window);
    if signup <= start + HOUR || signup >= end - HOUR {
        signup = start + window;
    }
    // Anonymous browsing before signup (0–3 messages), often from a campaign.
    let anon = s.rng.gen_range(0..=3);
    s.campaign = s
        .rng
        .gen_bool(0.4)
        .then(|| CAMPAIGNS[s.rng.gen_range(0..CAMPAIGNS.len())]);
    s.clock = (signup - s.rng.gen_range(10 * 60 * SEC..3 * DAY)).max(start + SEC);
    for k in 0..anon {
        if k == 0 {
            s.page("首頁", "/");
        } else {
            let p = s.pick(cat);
            s.track("Product Viewed", p.props(None, true));
        }
    }
    s.clock = s.clock.max(signup);
    s.phase = 1;
    s.fresh = true;
    let signed_up = json!({"method": if s.rng.gen_bool(0.7) { "手機號" } else { "微信" }});
    s.track("Signed Up", obj(signed_up));
    let created =
        DateTime::from_timestamp_millis(s.clock).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true));
    let traits = json!({"name": name, "gender": if female { "女" } else { "男" }, "birthday": birthday,
        "city": city, "region": region, "phone": phone, "email": format!("user{n}@example.com"), "created_at": created});
    let at = s.tick();
    s.fresh = true;
    s.push(at, "identify", obj(json!({"traits": traits})));
    s.phase = 2;
    let mut first = true;
    loop {
        let local_day = (s.clock + CST).div_euclid(DAY);
        let festival = shop
            .festivals
            .iter()
            .find(|f| (f.0 + CST).div_euclid(DAY) == local_day)
            .map(|f| f.1);
        let boost = if festival.is_some() { 1.8 } else { 1.0 };
        let chance = if first { 0.46 + 0.4 * conv } else { conv * boost };
        s.session(cat, chance, festival);
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
        let placed = s.place(next);
        next = if placed > s.clock + 30 * 60 * SEC {
            placed
        } else {
            next.max(s.clock + 30 * 60 * SEC)
        };
        if next >= end {
            break;
        }
        s.clock = next;
        s.campaign = s
            .rng
            .gen_bool(0.15)
            .then(|| CAMPAIGNS[s.rng.gen_range(0..CAMPAIGNS.len())]);
        s.fresh = true;
        s.track("Signed In", Map::new());
    }
}
