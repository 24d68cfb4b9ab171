//! The demo shop's fixed data: categories, brands and price ranges, Chinese names,
//! cities, user agents, campaigns, search queries, reviews, the daily traffic curve,
//! and the seeded product catalogue built from them.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

pub(super) const SEC: i64 = 1000;
pub(super) const HOUR: i64 = 3600 * SEC;
pub(super) const DAY: i64 = 24 * HOUR;
/// China Standard Time (UTC+8), which drives the hour-of-day pattern and festivals.
pub(super) const CST: i64 = 8 * HOUR;
pub(super) const PRODUCTS_PER_CATEGORY: usize = 18;

/// A category: brands, item names with a base price in 元, most units per line,
/// and browsing weights for women and men.
pub(super) struct Category {
    pub(super) name: &'static str,
    pub(super) brands: &'static [&'static str],
    pub(super) items: &'static [(&'static str, i64)],
    pub(super) max_qty: i64,
    pub(super) weight: (u32, u32),
}

#[rustfmt::skip]
pub(super) const CATEGORIES: &[Category] = &[
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
pub(super) const SURNAMES: &[&str] = &[
    "王", "李", "張", "劉", "陳", "楊", "黃", "趙", "吳", "周", "徐", "孫", "馬", "朱", "胡", "郭", "何", "林",
    "高", "羅", "鄭", "梁", "謝", "宋", "唐", "許", "韓", "馮", "鄧", "曹", "彭", "曾", "蕭", "田", "董", "潘",
    "袁", "蔡", "蔣", "余", "歐陽", "司馬",
];
#[rustfmt::skip]
pub(super) const MALE_GIVEN: &[&str] = &[
    "偉", "強", "磊", "軍", "洋", "勇", "傑", "濤", "明", "超", "輝", "鵬", "浩", "宇", "俊", "峰", "建", "斌",
    "志", "晨", "子軒", "浩然", "宇航", "文博", "一鳴",
];
#[rustfmt::skip]
pub(super) const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "靜", "麗", "艷", "娟", "霞", "婷", "雪", "慧", "穎", "琳", "欣", "怡", "潔", "倩", "萱",
    "佳", "悅", "雨桐", "思涵", "欣怡", "梓萱", "詩雨",
];
/// (city, region, weight): tier-1 and tier-2 cities plus some tier-3 ones.
#[rustfmt::skip]
pub(super) const CITIES: &[(&str, &str, u32)] = &[
    ("上海", "華東", 12), ("北京", "華北", 11), ("廣州", "華南", 9), ("深圳", "華南", 9), ("杭州", "華東", 7),
    ("成都", "西南", 7), ("武漢", "華中", 6), ("南京", "華東", 5), ("西安", "西北", 5), ("重慶", "西南", 6),
    ("蘇州", "華東", 4), ("天津", "華北", 4), ("長沙", "華中", 4), ("鄭州", "華中", 3), ("瀋陽", "東北", 3),
    ("青島", "華東", 3), ("洛陽", "華中", 2), ("贛州", "華東", 2), ("桂林", "華南", 2), ("綿陽", "西南", 2),
    ("揚州", "華東", 2), ("保定", "華北", 2), ("遵義", "西南", 1), ("大慶", "東北", 1), ("天水", "西北", 1),
];
pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; V2231A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
];
/// (utm source, utm medium, utm campaign) of campaign traffic.
#[rustfmt::skip]
pub(super) const CAMPAIGNS: &[(&str, &str, &str)] = &[
    ("baidu", "cpc", "百度搜索-品牌詞"), ("wechat", "social", "公眾號推文"), ("douyin", "video", "抖音信息流"),
    ("xiaohongshu", "social", "小紅書種草"), ("weibo", "social", "微博話題"), ("newsletter", "email", "會員周刊"),
    ("sms", "sms", "短信召回"),
];
#[rustfmt::skip]
pub(super) const QUERIES: &[&str] = &[
    "精華液", "口紅", "羽絨服", "跑步鞋", "瑜伽褲", "堅果", "紙尿褲", "藍牙耳機", "四件套", "空氣炸鍋", "魚油",
    "防曬", "連衣裙", "奶粉", "雙11", "李寧", "小米", "花西子",
];
/// Review texts by rating (1–5 stars).
#[rustfmt::skip]
pub(super) const REVIEWS: &[&str] = &[
    "質量很差，不推薦", "一般般，和描述有差距", "還可以，物流有點慢", "不錯，性價比高", "非常滿意，會回購！",
];
/// Local (UTC+8) hour-of-day weights of visits: lunch and evening peaks.
#[rustfmt::skip]
pub(super) const HOURS: [u32; 24] = [3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 11, 9, 8, 8, 8, 9, 10, 13, 15, 16, 14, 8];

/// A catalogue entry; money in fen.
pub(super) struct Product {
    pub(super) id: String,
    pub(super) sku: String,
    pub(super) name: String,
    pub(super) category: &'static str,
    pub(super) brand: &'static str,
    pub(super) price: i64,
    pub(super) cost: i64,
    pub(super) max_qty: i64,
}

impl Product {
    /// Spec v2 product properties; `cost` only on browsing events (it feeds the catalogue).
    pub(super) fn props(&self, quantity: Option<i64>, cost: bool) -> Map<String, Value> {
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
pub(super) fn obj<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A JSON number in 元 with at most two decimals (the nearest double prints as that decimal).
pub(super) fn yuan(fen: i64) -> Value {
    json!(fen as f64 / 100.0)
}

/// 18 products per category (shuffled brand × item pairs) at shopfront prices
/// (¥X9, ¥X9.9), cheapest first; `Shopper::pick` favours the front, so cheap items sell more.
pub(super) fn catalogue(seed: u64) -> Vec<Vec<Product>> {
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
