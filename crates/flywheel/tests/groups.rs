//! Group buys through the real binary: 3N concurrent joins over HTTP fill a group of N.

mod common;

use common::{Backend, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn groups(site: Site) {
    let s = site.serve(&[]);
    let deal =
        json!({"id": "4人團", "product": "P1", "group_price": 9900, "group_size": 4, "join_hours": 24});
    assert_eq!(s.admin_post("/api/v1/group-deals", &deal).status, 201);
    let r = s.admin_post("/api/v1/group-deals/4人團/groups", &json!({"user_id": "leader"}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let url = s.url.clone();
    let joins: Vec<_> = (0..12)
        .map(|i| {
            let (url, id) = (url.clone(), id.clone());
            std::thread::spawn(move || {
                match ureq::post(&format!("{url}/api/v1/groups/{id}/join"))
                    .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
                    .send_string(&json!({"user_id": format!("u{i}")}).to_string())
                {
                    Ok(_) => true,
                    Err(ureq::Error::Status(409, r)) => {
                        assert_eq!(r.into_json::<Value>().unwrap()["code"], "group_full");
                        false
                    }
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let joined = joins
        .into_iter()
        .map(|j| j.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(joined, 3);
    let g = s.get(&format!("/api/v1/groups/{id}")).body;
    assert_eq!(
        (g["state"].clone(), g["members"].as_array().map(Vec::len)),
        (json!("full"), Some(4))
    );
    let r = s.admin_post(
        "/api/v1/group-deals",
        &json!({"id": "x", "product": "p", "group_price": 1, "group_size": 1, "join_hours": 1}),
    );
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_deal")));
}

#[test]
fn groups_sqlite() {
    groups(Site::new(Backend::Sqlite, "groups").unwrap());
}

#[test]
fn groups_postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "groups") {
        groups(site);
    }
}
