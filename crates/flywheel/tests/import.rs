//! `flywheel import`: CSV and JSONL through the same validation as the API; bad lines
//! are reported with their numbers and written to the reject file, never stopping the
//! rest; importing the same file twice stores nothing twice.

mod common;

use common::{Backend, Site};
use serde_json::Value;

fn import(site: &Site, kind: &str, path: &std::path::Path) -> Value {
    let out = site.cli(&[
        "import",
        "--kind",
        kind,
        path.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn imports(site: Site) {
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let users = site.data_dir.join("users.csv");
    std::fs::write(
        &users,
        "user_id,name,city,timestamp\n\
         u1,王芳,杭州,2024-01-01T00:00:00Z\n\
         ,nobody,北京,2024-01-01T00:00:00Z\n\
         u2,\"Li, Lei\",上海,2024-01-02T00:00:00Z\n\
         u3,bad time,上海,not-a-time\n\
         u4,short\n",
    )
    .unwrap();
    let s = import(&site, "users", &users);
    assert_eq!(s["records"], 5);
    assert_eq!(s["accepted"], 2);
    let lines: Vec<u64> = s["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 5, 6]);
    let rejects = std::fs::read_to_string(site.data_dir.join("users.csv.rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), 3);
    assert!(rejects.contains("missing_id") && rejects.contains("invalid_timestamp"));
    // Again: nothing new.
    let again = import(&site, "users", &users);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    let orders = site.data_dir.join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,user_id,timestamp,total,product_id,product_name,category,price,quantity\n\
         O1,u1,2024-02-01T00:00:00Z,300,P1,面膜,護膚,100,2\n\
         O1,u1,2024-02-01T00:00:00Z,300,P2,精華,護膚,100,1\n\
         O2,u1,2024-02-02T00:00:00Z,lots,P1,面膜,護膚,100,1\n\
         O3,u2,2024-02-03T00:00:00Z,99.9,P3,T恤,服飾,99.9,1\n",
    )
    .unwrap();
    let s = import(&site, "orders", &orders);
    assert_eq!(
        (s["records"].as_u64(), s["accepted"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(s["rejected"][0]["line"], 4);
    assert_eq!(s["rejected"][0]["code"], "invalid_money");

    let events = site.data_dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Product Viewed\",\"timestamp\":\"2024-03-01T00:00:00Z\"}\n\
         {not json\n\
         \n\
         {\"anonymousId\":\"d9\",\"event\":\"Signed Up\",\"timestamp\":\"2024-03-02T00:00:00Z\"}\n\
         {\"type\":\"identify\",\"userId\":\"u1\",\"anonymousId\":\"d9\",\"timestamp\":\"2024-03-03T00:00:00Z\"}\n",
    )
    .unwrap();
    let s = import(&site, "events", &events);
    assert_eq!(
        (s["records"].as_u64(), s["accepted"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(s["rejected"][0]["line"], 2);

    let server = site.serve(&[]);
    let p = server.get("/api/v1/profiles/d9").body;
    assert_eq!(p["user_ids"], serde_json::json!(["u1"]));
    assert_eq!(p["traits"]["name"], "王芳");
    let o = server.get("/api/v1/profiles/u1/orders").body;
    let o1 = &o["orders"][0];
    assert_eq!(o1["order_id"], "O1");
    assert_eq!(o1["total_fen"], 30_000);
    assert_eq!(o1["lines"].as_array().unwrap().len(), 2);
    // Unreadable file: exit code 2.
    let out = site.cli(&["import", "--kind", "users", "/nonexistent/file.csv"]);
    assert_eq!(out.status.code(), Some(2));
    let out = site.cli(&[
        "import",
        "--kind",
        "users",
        users.with_extension("txt").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
on_each_backend!(import_files, imports);
