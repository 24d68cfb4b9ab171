//! The trust boundary between client and server write keys (`docs/ingest.md`, "Trust
//! boundary: client and server keys").
//!
//! A write key in a web page or an app is public: anyone can read it and send whatever
//! they like with it. So a [`KeyScope::Client`] key's messages are accepted as behaviour
//! only ([`withhold`]):
//!
//! * money-moving facts — `Order Completed`, `Order Refunded`, `Order Cancelled` — are
//!   validated as usual and stored as plain events, but place or adjust no order, so
//!   they earn no points, change no tier, spend or referral reward, and redeem nothing;
//!   product events still fill the catalogue, without a unit `cost`;
//! * server-only traits ([`is_server_only_trait`]) are removed from `traits` and
//!   `context.traits` before the event is stored, so they never reach a profile: the
//!   contact traits used for delivery ([`is_contact_trait`]: email, phone, push and WeChat
//!   ids, any case and spelling of separators) and the traits that stand for money the
//!   shop or Flywheel computes (`tier`, `member_tier`, the predicted-CLV `clv_*`).
//!
//! * its `messageId` is deduplicated per key: it is stored as `<key id>/<messageId>`, so a
//!   public key cannot send first the ids the shop's backend will use (`refund-O-1`) and
//!   have the real order or refund dropped as a duplicate.
//!
//! The rest of the message is stored: an SDK that sends these never starts failing.
//! What was withheld is counted on `/metrics` and logged at debug level by the API.
//! Joining two known customers into one profile is refused by the store for client
//! events (see `flywheel_store::NewEvent::with_scope`).

use flywheel_core::Event;
use flywheel_store::{KeyScope, NewEvent};
use serde_json::{Map, Value};

use crate::{ecommerce, Result};

/// Trait names (lower case, letters and digits only) that carry an address messages are
/// delivered to. A trait whose name normalises to one of these is a contact trait.
const CONTACT_TRAITS: &[&str] = &[
    "email",
    "emailaddress",
    "mail",
    "phone",
    "phonenumber",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "cellphone",
    "tel",
    "telephone",
    "pushtoken",
    "devicetoken",
    "fcmtoken",
    "apnstoken",
    "openid",
    "wechatopenid",
    "unionid",
    "wechatunionid",
];

/// Trait names (normalised as [`CONTACT_TRAITS`]) that stand for money: the member
/// tier segments read (`tier`, `member_tier`).
const MONEY_TRAITS: &[&str] = &["tier", "membertier"];

/// Normalised prefix of the predicted-CLV traits Flywheel writes (`clv_value`, …).
const CLV_PREFIX: &str = "clv";

/// A trait name lower-cased, without anything but letters and digits.
fn normal(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a trait named `key` is a contact trait: its name, lower-cased and without
/// anything but letters and digits (`E-Mail`, `phone_number`, `pushToken`), is one of
/// the delivery addresses the channels read.
pub fn is_contact_trait(key: &str) -> bool {
    CONTACT_TRAITS.contains(&normal(key).as_str())
}

/// Whether only a server key may set the trait `key`: a contact trait, the member tier,
/// or a predicted-CLV trait.
pub fn is_server_only_trait(key: &str) -> bool {
    let n = normal(key);
    CONTACT_TRAITS.contains(&n.as_str()) || MONEY_TRAITS.contains(&n.as_str()) || n.starts_with(CLV_PREFIX)
}

pub use flywheel_core::commerce::is_commerce_fact;

/// What the trust boundary kept out of one client-key message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Withheld {
    /// Server-only traits removed (contact details, tier, predicted CLV).
    pub traits: usize,
    /// Orders, refunds or cancellations stored as plain events only.
    pub commerce_facts: usize,
}

impl Withheld {
    /// Whether anything was withheld.
    pub fn is_empty(&self) -> bool {
        *self == Withheld::default()
    }
}

/// [`ecommerce::materialise`] for a message that came with the write key `key_id` of
/// `scope`: a client key's message is validated as any other, then loses what it may not
/// change. Returns the event to store and what was withheld.
pub fn materialise(
    mut event: Event,
    key_id: String,
    scope: KeyScope,
    index: usize,
) -> Result<(NewEvent, Withheld)> {
    let traits = before_materialise(&mut event, scope);
    if scope == KeyScope::Client {
        event.message_id = format!("{key_id}/{}", event.message_id);
    }
    let mut out = ecommerce::materialise(event, Some(key_id), index)?;
    let commerce_facts = after_materialise(&mut out, scope);
    Ok((
        out.with_scope(scope),
        Withheld {
            traits,
            commerce_facts,
        },
    ))
}

/// Removes server-only traits from `traits` and `context.traits`; returns how many.
pub fn drop_server_only_traits(event: &mut Event) -> usize {
    let mut dropped = strip(&mut event.traits);
    if let Some(Value::Object(ct)) = event.context.get_mut("traits") {
        dropped += strip(ct);
    }
    dropped
}

fn strip(map: &mut Map<String, Value>) -> usize {
    let before = map.len();
    map.retain(|k, _| !is_server_only_trait(k));
    before - map.len()
}

/// Applies the limits of `scope` to an event about to be materialised: for a client key,
/// removes its server-only traits. Returns how many were removed.
pub fn before_materialise(event: &mut Event, scope: KeyScope) -> usize {
    match scope {
        KeyScope::Client => drop_server_only_traits(event),
        KeyScope::Server => 0,
    }
}

/// Applies the limits of `scope` to what an event materialised: a client key's order,
/// refund or cancellation is dropped (the event itself is kept), with the products of
/// the order's lines, and unit costs are dropped from product events. Marks the event
/// with its scope. Returns how many commerce facts were dropped.
pub fn after_materialise(event: &mut NewEvent, scope: KeyScope) -> usize {
    if scope == KeyScope::Server {
        return 0;
    }
    let mut dropped = 0;
    if event.order.take().is_some() {
        event.products.clear();
        dropped += 1;
    }
    if event.adjustment.take().is_some() {
        dropped += 1;
    }
    for p in &mut event.products {
        p.cost = None;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::{parse, Envelope};

    fn message(v: Value) -> Event {
        parse(v, &Envelope::default()).unwrap().event
    }

    #[test]
    fn a_client_order_is_a_plain_event() {
        for name in ["Order Completed", "Order Refunded", "Order Cancelled"] {
            let e = message(json!({"type": "track", "userId": "u1", "event": name,
                "properties": {"order_id": "F1", "total": 99999, "products": [{"product_id": "p", "price": 1}]}}));
            let (n, w) = materialise(e.clone(), "key_web".into(), KeyScope::Client, 0).unwrap();
            assert!(
                n.order.is_none() && n.adjustment.is_none() && n.products.is_empty(),
                "{name}"
            );
            assert_eq!(n.scope(), KeyScope::Client);
            assert_eq!(n.event().message_id, format!("key_web/{}", e.message_id));
            assert_eq!(w.commerce_facts, 1);
            assert_eq!(n.event().event.as_deref(), Some(name));
            let (n, w) = materialise(e, "key_shop".into(), KeyScope::Server, 0).unwrap();
            assert!(n.order.is_some() || n.adjustment.is_some(), "{name}");
            assert!(w.is_empty());
        }
        // Still validated: a client's malformed order is refused as anyone's.
        let e = message(
            json!({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 5}}),
        );
        assert_eq!(
            materialise(e, "k".into(), KeyScope::Client, 0)
                .unwrap_err()
                .code(),
            "missing_order_id"
        );
    }

    #[test]
    fn a_client_loses_contact_traits_and_keeps_the_rest() {
        let e = message(json!({"type": "identify", "userId": "u1",
            "traits": {"Email": "evil@example.com", "phone": "13800000000", "name": "李雷", "pushToken": "t"},
            "context": {"traits": {"EMAIL": "evil@example.com", "city": "上海"}, "ip": "1.2.3.4"}}));
        let (n, w) = materialise(e.clone(), "k".into(), KeyScope::Client, 0).unwrap();
        assert_eq!(w.traits, 4);
        let ev = n.event();
        assert_eq!(ev.traits.keys().collect::<Vec<_>>(), ["name"]);
        assert_eq!(ev.context["traits"], json!({"city": "上海"}));
        assert_eq!(ev.context["ip"], "1.2.3.4");
        assert!(!n.body().to_lowercase().contains("evil"), "{}", n.body());
        let (n, w) = materialise(e, "k".into(), KeyScope::Server, 0).unwrap();
        assert_eq!(w.traits, 0);
        assert_eq!(n.event().traits["Email"], "evil@example.com");
    }

    #[test]
    fn a_client_product_event_fills_the_catalogue_without_cost() {
        let e = message(json!({"type": "track", "userId": "u1", "event": "Product Viewed",
            "properties": {"product_id": "p1", "price": 10, "cost": 1}}));
        let (n, w) = materialise(e, "k".into(), KeyScope::Client, 0).unwrap();
        assert!(w.is_empty());
        assert_eq!(n.products[0].product_id, "p1");
        assert_eq!(n.products[0].cost, None);
    }

    #[test]
    fn contact_traits_in_any_spelling() {
        for k in [
            "email",
            "Email",
            "EMAIL",
            "e-mail",
            "E_Mail",
            " email ",
            "phone",
            "Phone",
            "phone_number",
            "phoneNumber",
            "mobile",
            "push_token",
            "pushToken",
            "device_token",
            "wechat_openid",
            "openid",
        ] {
            assert!(is_contact_trait(k), "{k}");
        }
        for k in [
            "name",
            "city",
            "email_verified",
            "phone_model",
            "gender",
            "emails_opened",
        ] {
            assert!(!is_contact_trait(k), "{k}");
        }
        for k in ["tier", "Member_Tier", "clv_value", "CLV_churn_risk", "email"] {
            assert!(is_server_only_trait(k), "{k}");
        }
        for k in ["name", "city", "birthday", "tiers_seen"] {
            assert!(!is_server_only_trait(k), "{k}");
        }
    }
}
