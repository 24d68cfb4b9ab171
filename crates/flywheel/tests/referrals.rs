//! The referral program through the real binary: a program with coupon rewards, an
//! invite code, registration rules, rewards on the first paid order, claw-back.

mod common;

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn send(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = ureq::request(method, &format!("{}{path}", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_string(&body.to_string());
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn referral_flow() {
    let site = Site::new(Backend::Sqlite, "referrals").unwrap();
    let s = site.serve(&[]);
    let t = json!({"id": "邀請獎勵", "name": "邀請獎勵10元", "benefit": {"type": "amount", "off": 1000},
                   "validity": {"type": "days_after_issue", "days": 30}});
    assert_eq!(send(&s, "POST", "/api/v1/coupon-templates", &t).0, 201);
    let program = json!({"inviter_reward": {"coupon_template": "邀請獎勵", "points": 50}, "invitee_reward": {"coupon_template": "邀請獎勵"}});
    assert_eq!(send(&s, "PUT", "/api/v1/referral-program", &program).0, 200);
    let (_, code) = send(&s, "GET", "/api/v1/users/alice/invite-code", &json!(null));
    let code = code["code"].as_str().unwrap().to_owned();
    let (status, r) = send(
        &s,
        "POST",
        "/api/v1/referrals",
        &json!({"code": code, "invitee": "bob", "device_id": "d1"}),
    );
    assert_eq!((status, r["state"].clone()), (201, json!("pending")));
    let (status, r) = send(
        &s,
        "POST",
        "/api/v1/referrals",
        &json!({"code": code, "invitee": "alice"}),
    );
    assert_eq!((status, r["code"].clone()), (409, json!("self_referral")));
    let (status, r) = send(
        &s,
        "POST",
        "/api/v1/referrals/bob/first-order",
        &json!({"order_id": "o1"}),
    );
    assert_eq!((status, r["state"].clone()), (200, json!("rewarded")), "{r}");
    assert_eq!(r["rewards"]["inviter"]["points"], 50);
    let (_, wallet) = send(&s, "GET", "/api/v1/users/alice/coupons", &json!(null));
    assert_eq!(wallet["coupons"].as_array().map(Vec::len), Some(1));
    let (status, r) = send(
        &s,
        "POST",
        "/api/v1/referrals/bob/first-order",
        &json!({"order_id": "o2"}),
    );
    assert_eq!((status, r["code"].clone()), (409, json!("already_rewarded")));
    let (_, r) = send(
        &s,
        "POST",
        "/api/v1/referrals/bob/claw-back",
        &json!({"order_id": "o1"}),
    );
    assert_eq!(r["state"], "clawed_back");
    let (_, wallet) = send(&s, "GET", "/api/v1/users/bob/coupons", &json!(null));
    assert_eq!(wallet["coupons"][0]["state"], "void");
    let (_, list) = send(&s, "GET", "/api/v1/users/alice/referrals", &json!(null));
    assert_eq!(list["referrals"].as_array().map(Vec::len), Some(1));
}
