//! `docs/loyalty.md` says what the code does: its configuration example parses and shows
//! the defaults, its tier table is the default tier configuration, and its growth table
//! is the default growth per activity.

use flywheel_loyalty::LoyaltyConfig;
use serde::Deserialize;

const GUIDE: &str = include_str!("../../../docs/loyalty.md");

#[derive(Deserialize)]
struct File {
    loyalty: LoyaltyConfig,
}

#[test]
fn the_configuration_example_is_the_default() {
    let block = GUIDE
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let file: File = toml::from_str(block).unwrap();
    assert_eq!(file.loyalty, LoyaltyConfig::default());
}

#[test]
fn the_tier_table_is_the_default_tiers() {
    let defaults = LoyaltyConfig::default().tiers.tiers;
    let rows: Vec<Vec<String>> = GUIDE
        .lines()
        .filter(|l| {
            l.starts_with("| ")
                && ["青銅", "白銀", "黃金", "鉑金"]
                    .iter()
                    .any(|t| l.starts_with(&format!("| {t} ")))
        })
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 4);
    for (row, tier) in rows.iter().zip(&defaults) {
        assert_eq!(row[0], tier.name);
        let yuan: i64 = row[1].trim_end_matches(" 元").replace(',', "").parse().unwrap();
        assert_eq!(yuan * 100, tier.min_spend.0, "{}", tier.name);
        assert_eq!(row[2], tier.min_growth.unwrap_or(0).to_string(), "{}", tier.name);
        assert_eq!(row[3], format!("{} %", tier.pay_percent));
        assert_eq!(row[4] == "yes", tier.free_shipping, "{}", tier.name);
        assert_eq!(row[5], format!("{} 元", tier.birthday_perk.0 / 100));
    }
}

#[test]
fn the_growth_table_is_the_default_growth() {
    let g = LoyaltyConfig::default().growth;
    let section = GUIDE.split("- **Growth**").nth(1).unwrap();
    let amounts: Vec<i64> = section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| ") && !l.starts_with("| activity"))
        .take(4)
        .map(|l| {
            l.trim_end_matches('|')
                .rsplit('|')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        amounts,
        vec![g.per_active_day, g.per_sign_in_day, g.per_order, g.per_review]
    );
}
