//! Flash sales through the real binary, with in-process stock and with `--redis`: a crowd
//! buys exactly the stock, a held order is paid, bad requests are refused.

mod common;

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn sale_run(s: &Server, id: &str) {
    let now = chrono::Utc::now();
    let sale = json!({"id": id, "product": "茅台", "price": 149900, "stock": 5,
        "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339()});
    assert_eq!(s.admin_post("/api/v1/flash-sales", &sale).status, 201);
    assert_eq!(
        s.admin_post("/api/v1/flash-sales", &sale).body["code"],
        "sale_exists"
    );
    let url = s.url.clone();
    let buyers: Vec<_> = (0..60)
        .map(|i| {
            let (url, id) = (url.clone(), id.to_owned());
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{url}/api/v1/flash-sales/{id}/orders"))
                    .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
                    .send_string(&json!({"user_id": format!("b{i}")}).to_string());
                match r {
                    Ok(r) => Some(r.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()),
                    Err(ureq::Error::Status(409, r)) => {
                        assert_eq!(r.into_json::<Value>().unwrap()["code"], "sold_out");
                        None
                    }
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let orders: Vec<String> = buyers.into_iter().filter_map(|b| b.join().unwrap()).collect();
    assert_eq!(orders.len(), 5, "exactly the stock is sold");
    let list = s.get("/api/v1/flash-sales").body;
    let left = list["sales"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["sale"]["id"] == id)
        .unwrap()["remaining"]
        .clone();
    assert_eq!(left, 0);
    let r = s.admin_post(&format!("/api/v1/flash-orders/{}/pay", orders[0]), &json!({}));
    assert_eq!((r.status, r.body["state"].clone()), (200, json!("paid")));
    for (path, body, status, code) in [
        (
            format!("/api/v1/flash-sales/{id}/orders"),
            json!({"user_id": ""}),
            400,
            "invalid_order",
        ),
        (
            "/api/v1/flash-sales/nope/orders".to_owned(),
            json!({"user_id": "x"}),
            404,
            "not_found",
        ),
        (
            "/api/v1/flash-sales".to_owned(),
            json!({"id": "bad", "product": "p", "price": 1, "stock": -1,
            "starts_at": now.to_rfc3339(), "ends_at": now.to_rfc3339()}),
            400,
            "invalid_sale",
        ),
    ] {
        let r = s.admin_post(&path, &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{path}: {:?}",
            r.body
        );
    }
}

#[test]
fn flash_sale_embedded() {
    let site = Site::new(Backend::Sqlite, "flash").unwrap();
    sale_run(&site.serve(&[]), "s-embedded");
}

#[test]
fn flash_sale_redis() {
    let site = Site::new(Backend::Sqlite, "flash_redis").unwrap();
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis is required when CI=true"
        );
        eprintln!("SKIPPED redis backend: nothing on 127.0.0.1:6379");
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("s-redis-{}-{nanos}", std::process::id());
    sale_run(&site.serve(&["--redis", "redis://127.0.0.1:6379"]), &id);
}
