//! `flywheel import`: CSV and JSONL through the same validation as the API; bad lines
//! are reported with their numbers and written to the reject file, never stopping the
//! rest; importing the same file twice stores nothing twice.

mod common;

use common::{Backend, Site};
use serde_json::Value;

fn import(site: &Site, kind: &str, path: &std::path::Path) -> Value {
    let (code, summary) = import_with(site, kind, path, &[]);
    assert_eq!(code, Some(0), "{summary}");
    summary
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

/// Runs `flywheel import` with `extra` options, returning the exit code and the JSON summary.
fn import_with(site: &Site, kind: &str, path: &std::path::Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "import",
        "--kind",
        kind,
        path.to_str().unwrap(),
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = site.cli(&args);
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), summary)
}

fn rfm(site: &Site, as_of: &str) -> Value {
    site.cli_json(&["rfm", "--as-of", as_of, "--format", "json"])
}

/// The RFM row of `user`, if a buyer.
fn rfm_row<'a>(report: &'a Value, user: &str) -> Option<&'a Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == user)
}

/// Days since 1970-01-01 of a shop-local date.
fn day(d: &str) -> i64 {
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
}

/// A shop's history from 1997-1998 (CDNOW-like; times without an offset are the shop's,
/// Asia/Shanghai) is imported with its own dates, RFM and the KPI report see them there,
/// and a bare `--as-of` date ends at the shop's midnight, not UTC's.
fn history(site: Site) {
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let orders = site.data_dir.join("cdnow.csv");
    std::fs::write(
        &orders,
        "order_id,user_id,timestamp,total\n\
         A1,c1,1997-01-01,29.33\n\
         A2,c1,1997-01-18 10:00:00,29.73\n\
         A3,c1,1997-08-02T09:30:00+08:00,14.96\n\
         B1,c2,1997-01-12,11.77\n\
         B2,c2,1997-01-12 18:00:00,12.00\n\
         C1,c3,1998-06-30 23:00:00,20.76\n\
         C2,c3,1998-07-01 00:30:00,5.00\n",
    )
    .unwrap();
    // A floor (here from the config file) rejects what is older, naming it; a dry run
    // stores nothing.
    let config = site.data_dir.join("flywheel.toml");
    std::fs::write(&config, "[import]\nnot_before = \"1997-06-01\"\n").unwrap();
    let cfg = config.to_str().unwrap();
    let (code, s) = import_with(&site, "orders", &orders, &["--dry-run", "--config", cfg]);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(
        (s["dry_run"].as_bool(), s["accepted"].as_u64()),
        (Some(true), Some(3))
    );
    let rejected: Vec<(u64, &str)> = s["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (2, "timestamp_out_of_range"),
            (3, "timestamp_out_of_range"),
            (5, "timestamp_out_of_range"),
            (6, "timestamp_out_of_range")
        ]
    );
    assert!(s["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("--not-before"));
    // --not-before wins over the file.
    let (_, s) = import_with(
        &site,
        "orders",
        &orders,
        &["--dry-run", "--config", cfg, "--not-before", "1998-07-01"],
    );
    assert_eq!(s["accepted"], 1, "{s}");
    assert!(!site.data_dir.join("cdnow.csv.rejects.jsonl").exists());
    assert_eq!(rfm(&site, "1998-12-31")["buyers"], 0, "a dry run wrote nothing");

    // Without a floor every record is history the shop had.
    let (code, s) = import_with(&site, "orders", &orders, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        (s["accepted"].as_u64(), s["rejected"].as_array().map(Vec::len)),
        (Some(7), Some(0)),
        "{s}"
    );

    // --as-of 1998-06-30 is the end of that day in Shanghai: C1 at 23:00 counts, C2 at
    // 00:30 the next day does not.
    let r = rfm(&site, "1998-06-30");
    assert_eq!(r["buyers"], 3, "{r}");
    let c1 = &rfm_row(&r, "c1").unwrap()["summary"];
    assert_eq!(c1["frequency"], 2);
    assert_eq!(c1["first_day"], day("1997-01-01"));
    assert_eq!(c1["recency_days"], day("1997-08-02") - day("1997-01-01"));
    assert_eq!(c1["t_days"], day("1998-06-30") - day("1997-01-01"));
    let c2 = &rfm_row(&r, "c2").unwrap()["summary"];
    assert_eq!(
        (c2["frequency"].as_u64(), c2["first_day"].as_i64()),
        (Some(0), Some(day("1997-01-12")))
    );
    let c3 = &rfm_row(&r, "c3").expect("the 23:00 order counts")["summary"];
    assert_eq!(
        (c3["frequency"].as_u64(), c3["t_days"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(c3["first_day"], day("1998-06-30"));
    // A day later C2 counts; a full timestamp means that instant (16:00Z = midnight in Shanghai).
    let c3 = rfm(&site, "1998-07-01");
    assert_eq!(rfm_row(&c3, "c3").unwrap()["summary"]["frequency"], 1);
    let utc_midnight = rfm(&site, "1998-06-30T00:00:00Z");
    assert!(rfm_row(&utc_midnight, "c3").is_none(), "{utc_midnight}");

    // The KPI report of 1997 sees the five orders of that year.
    let out = site.cli(&[
        "report",
        "kpi",
        "--from",
        "1997-01-01",
        "--to",
        "1997-12-31",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(k["kpis"]["orders"], 5, "{k}");
    assert_eq!(k["kpis"]["gmv"], 2933 + 2973 + 1496 + 1177 + 1200, "{k}");

    let server = site.serve(&[]);
    let o = server.get("/api/v1/profiles/c1/orders").body;
    let mut placed: Vec<&str> = o["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["placed_at"].as_str().unwrap())
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        vec![
            "1996-12-31T16:00:00Z",
            "1997-01-18T02:00:00Z",
            "1997-08-02T01:30:00Z"
        ],
        "{o}"
    );
    // The API's observation end reads a bare date the same way.
    let r = server.get("/api/v1/rfm?as_of=1998-06-30").body;
    assert_eq!(r["buyers"], 3, "{r}");
    // The live tracking API keeps refusing absurd clocks.
    let key = site.write_key();
    for (path, body) in [
        (
            "/v1/track",
            serde_json::json!({"userId": "c1", "event": "Product Viewed", "timestamp": "1970-01-01T00:00:00Z"}),
        ),
        (
            "/v1/batch",
            serde_json::json!({"batch": [{"type": "identify", "userId": "c1", "timestamp": "1997-01-01T00:00:00Z"}]}),
        ),
    ] {
        let r = server.post(path, Some(&key), &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("timestamp_out_of_range")),
            "{path}: {}",
            r.body
        );
    }
}
on_each_backend!(history_round_trips, history);

/// An orders file whose date column has another name is rejected row by row, saying
/// which column is missing, never dated at the import; `--map` fixes it, and `--dry-run`
/// shows how each column is read without writing.
fn mapping(site: Site) {
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let orders = site.data_dir.join("shop.csv");
    std::fs::write(
        &orders,
        "order_no,customer,ordered_at,amount,note\n\
         S1,m1,1998-03-01 12:00:00,10.00,gift\n\
         S2,m1,1998-04-01 12:00:00,20.00,\n\
         S3,m2,1998-05-01 12:00:00,30.00,\n",
    )
    .unwrap();
    let (code, s) = import_with(&site, "orders", &orders, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(s["accepted"], 0, "{s}");
    let rejected = s["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{s}");
    for (r, line) in rejected.iter().zip(2..) {
        assert_eq!(
            (r["line"].as_u64(), r["code"].as_str()),
            (Some(line), Some("missing_order_id"))
        );
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("column \"order_id\" missing"),
            "{r}"
        );
    }
    assert_eq!(s["problems"].as_array().unwrap().len(), 1, "said once: {s}");
    // Only the date unmapped: the reason names it.
    let maps = [
        "--map",
        "order_no=order_id",
        "--map",
        "customer=user_id",
        "--map",
        "amount=total",
    ];
    let (_, s) = import_with(&site, "orders", &orders, &maps);
    assert_eq!(s["accepted"], 0, "{s}");
    let reason = s["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("column \"timestamp\" missing"), "{reason}");
    assert!(reason.contains("--map SRC=timestamp"), "{reason}");
    assert_eq!(rfm(&site, "1998-12-31")["buyers"], 0, "nothing was dated now");
    let table = site.cli(&[
        "import",
        "--kind",
        "orders",
        orders.to_str().unwrap(),
        "--map",
        "order_no=order_id",
    ]);
    let err = String::from_utf8_lossy(&table.stderr);
    assert!(err.contains("every record is rejected"), "{err}");

    // A dry run with the date mapped: every column explained, nothing written.
    let mut all = maps.to_vec();
    all.extend(["--map", "ordered_at=timestamp", "--map", "note="]);
    let mut dry = all.clone();
    dry.push("--dry-run");
    std::fs::remove_file(site.data_dir.join("shop.csv.rejects.jsonl")).unwrap();
    let (_, s) = import_with(&site, "orders", &orders, &dry);
    assert_eq!(
        (s["accepted"].as_u64(), s["rejected"].as_array().map(Vec::len)),
        (Some(3), Some(0)),
        "{s}"
    );
    let columns: Vec<(&str, Option<&str>)> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["column"].as_str().unwrap(), c["field"].as_str()))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("order_no", Some("order_id")),
            ("customer", Some("user_id")),
            ("ordered_at", Some("timestamp")),
            ("amount", Some("total")),
            ("note", None)
        ]
    );
    let mut args = vec!["import", "--kind", "orders", orders.to_str().unwrap()];
    args.extend_from_slice(&dry);
    let out = site.cli(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run: nothing was written"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ordered_at"))
        .unwrap_or_default();
    assert!(
        line.contains("timestamp") && line.contains("time the order was placed"),
        "{text}"
    );
    assert!(!site.data_dir.join("shop.csv.rejects.jsonl").exists());
    assert_eq!(rfm(&site, "1998-12-31")["buyers"], 0, "a dry run wrote nothing");

    // The real import with the map: the orders carry their own dates.
    let (_, s) = import_with(&site, "orders", &orders, &all);
    assert_eq!(s["accepted"], 3, "{s}");
    let r = rfm(&site, "1998-12-31");
    let m1 = &rfm_row(&r, "m1").unwrap()["summary"];
    assert_eq!(
        (m1["frequency"].as_u64(), m1["first_day"].as_i64()),
        (Some(1), Some(day("1998-03-01")))
    );
    // The note column was ignored; the amount is the total.
    let server = site.serve(&[]);
    let o = server.get("/api/v1/profiles/m1/orders").body;
    let s1 = o["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == "S1")
        .unwrap();
    assert_eq!(s1["total_fen"], 1000, "{o}");
    assert_eq!(s1["placed_at"], "1998-03-01T04:00:00Z", "{o}");
    drop(server);

    // A --map of a column the file lacks is refused before anything is read.
    let (code, _) = import_with(&site, "orders", &orders, &["--map", "ordered=timestamp"]);
    assert_eq!(code, Some(2));
    let (code, _) = import_with(&site, "orders", &orders, &["--map", "ordered_at"]);
    assert_eq!(code, Some(2));
    // JSONL: a record without its time is rejected naming the field.
    let events = site.data_dir.join("late.jsonl");
    std::fs::write(
        &events,
        "{\"order_id\":\"J1\",\"user_id\":\"m3\",\"total\":5}\n\
         {\"order_id\":\"J2\",\"user_id\":\"m3\",\"placed\":\"1998-01-01T00:00:00Z\",\"total\":5}\n",
    )
    .unwrap();
    let (_, s) = import_with(&site, "orders", &events, &["--dry-run"]);
    assert_eq!(s["rejected"][0]["reason"], "field \"timestamp\" missing", "{s}");
    let (_, s) = import_with(
        &site,
        "orders",
        &events,
        &["--dry-run", "--map", "placed=timestamp"],
    );
    assert_eq!(
        (s["accepted"].as_u64(), s["rejected"].as_array().map(Vec::len)),
        (Some(1), Some(1)),
        "{s}"
    );
}
on_each_backend!(import_mapping, mapping);
