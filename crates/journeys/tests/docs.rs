//! docs/journeys.md stays true to the code: its configuration example parses into the
//! engine settings, and it lists every seed template and every step type.

use flywheel_journeys::EngineConfig;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/journeys.md")).unwrap()
}

/// Every step type (`remove_tag` shares the `add_tag` row of the table).
const STEP_TYPES: [&str; 14] = [
    "wait",
    "wait_until",
    "wait_for_event",
    "condition",
    "split",
    "send",
    "coupon",
    "points",
    "birthday_perk",
    "add_tag",
    "remove_tag",
    "set_trait",
    "webhook",
    "exit",
];

#[derive(serde::Deserialize)]
struct File {
    journeys: EngineConfig,
}

#[test]
fn the_configuration_example_parses() {
    let doc = doc();
    let toml_block = doc.split("```toml").nth(1).unwrap().split("```").next().unwrap();
    let f: File = toml::from_str(toml_block).unwrap();
    let c = f.journeys;
    assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(c.delivery, flywheel_journeys::DeliveryPolicy::default());
    assert!(c.email.is_some());
    assert!(c.providers.contains_key(&flywheel_journeys::Channel::Sms));
    assert_eq!(c.retry, flywheel_channels::RetryPolicy::default());
    assert_eq!((c.workers, c.batch, c.lease_ms), (2, 500, 30_000));
    assert_eq!(c.rendering, flywheel_channels::RenderLimits::default());
}

#[test]
fn every_seed_template_and_step_type_is_documented() {
    let doc = doc();
    for (name, _) in flywheel_journeys::seeds::JOURNEYS {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "seed {name} missing from docs/journeys.md"
        );
    }
    for t in STEP_TYPES.iter().filter(|t| **t != "remove_tag") {
        assert!(doc.contains(&format!("| `{t}`")), "step type {t} missing");
    }
    // Every step type the definition accepts is in that list (an unknown type is refused).
    let step = |t: &str| {
        format!(r#"{{"name":"x","trigger":{{"event":{{"name":"e"}}}},"steps":[{{"id":"s","type":"{t}"}}]}}"#)
    };
    let err = flywheel_journeys::Journey::from_json(&step("nope"))
        .unwrap_err()
        .to_string();
    for t in STEP_TYPES {
        assert!(err.contains(t), "{t} not among the accepted types: {err}");
    }
    // …and nothing else is: `nope` plus the accepted types, each in backticks.
    assert_eq!(err.matches('`').count() / 2, STEP_TYPES.len() + 1, "{err}");
}
