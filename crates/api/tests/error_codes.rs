//! docs/errors.md and docs/openapi.json name exactly the codes of [`ErrorCode`], each
//! with the status the API answers it with: a code added, removed or re-statused in the
//! enum without the documentation (or the other way round) fails here.

use std::collections::{BTreeMap, BTreeSet};

use flywheel_core::ErrorCode;

const ERRORS_MD: &str = include_str!("../../../docs/errors.md");
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The rows of docs/errors.md's tables: `` | `code` | status | meaning | what to do | ``.
fn documented() -> Vec<(String, u16, String, String)> {
    ERRORS_MD
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "a row has code, status, meaning, what to do: {l}");
            let code = cells[0].trim_matches('`').to_owned();
            let status = cells[1]
                .parse()
                .unwrap_or_else(|_| panic!("status of {code}: {l}"));
            (code, status, cells[2].to_owned(), cells[3].to_owned())
        })
        .collect()
}

#[test]
fn every_code_is_documented_once_with_its_status() {
    let rows = documented();
    let mut seen = BTreeMap::new();
    for (code, status, meaning, todo) in &rows {
        assert!(
            seen.insert(code.clone(), *status).is_none(),
            "{code} is documented twice"
        );
        assert!(
            !meaning.is_empty() && !todo.is_empty(),
            "{code}: say what it means and what to do"
        );
        let known = ErrorCode::parse(code)
            .unwrap_or_else(|| panic!("docs/errors.md lists {code}, which the API never answers"));
        assert_eq!(
            known.status(),
            *status,
            "{code}: the API answers {}",
            known.status()
        );
    }
    for code in ErrorCode::ALL {
        assert!(
            seen.contains_key(code.as_str()),
            "{code} is missing from docs/errors.md"
        );
    }
    assert_eq!(seen.len(), ErrorCode::ALL.len());
}

#[test]
fn codes_are_unique() {
    let set: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(set.len(), ErrorCode::ALL.len(), "two variants share a code");
}

#[test]
fn the_openapi_error_schema_names_every_code() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the Error schema's code has an enum")
        .iter()
        .map(|v| v.as_str().expect("codes are strings"))
        .collect();
    let ours: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, ours);
}
