//! How an import file's columns are understood: `--map SRC=DEST` renames (or, with an
//! empty DEST, ignores) a column, each field has a role per file kind, and some fields a
//! record cannot do without (an order's time, its id, its amount; a customer's id). A
//! record without one is rejected with the column's name, never given a default such as
//! the import's own time.

use flywheel_core::ErrorCode;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ImportKind;
use crate::{Error, Result};

/// One `--map SRC=DEST`: the file's column (or JSONL field) `from` is read as `to`;
/// `to` is `None` when the column is to be ignored (`--map SRC=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRename {
    /// The name in the file.
    pub from: String,
    /// The field it is read as, or `None` to ignore it.
    pub to: Option<String>,
}

impl std::str::FromStr for ColumnRename {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidMapping(format!("--map {spec:?}: {why}"));
        let (from, to) = spec
            .split_once('=')
            .ok_or_else(|| bad("use SRC=DEST, e.g. ordered_at=timestamp"))?;
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() {
            return Err(bad("the file's column name (before =) is empty"));
        }
        Ok(ColumnRename {
            from: from.to_string(),
            to: (!to.is_empty()).then(|| to.to_string()),
        })
    }
}

/// The renames of one import (`--map`, repeatable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    renames: Vec<ColumnRename>,
}

impl ColumnMap {
    /// The renames, refusing a column mapped twice or two columns mapped to one field.
    pub fn new(renames: Vec<ColumnRename>) -> Result<ColumnMap> {
        for (i, r) in renames.iter().enumerate() {
            for earlier in &renames[..i] {
                if earlier.from == r.from {
                    return Err(Error::InvalidMapping(format!(
                        "--map: column {:?} is mapped twice",
                        r.from
                    )));
                }
                if r.to.is_some() && earlier.to == r.to {
                    return Err(Error::InvalidMapping(format!(
                        "--map: columns {:?} and {:?} are both mapped to {:?}",
                        earlier.from,
                        r.from,
                        r.to.as_deref().unwrap_or_default()
                    )));
                }
            }
        }
        Ok(ColumnMap { renames })
    }

    /// The renames.
    pub fn renames(&self) -> &[ColumnRename] {
        &self.renames
    }

    /// The field the file's column `name` is read as (`None`: ignored). A column named
    /// like another column's DEST gives way to it.
    pub fn field_of(&self, name: &str) -> Option<String> {
        if let Some(r) = self.renames.iter().find(|r| r.from == name) {
            return r.to.clone();
        }
        if self.renames.iter().any(|r| r.to.as_deref() == Some(name)) {
            return None;
        }
        Some(name.to_string())
    }

    /// Renames the fields of one record: a mapped field replaces the field of its DEST
    /// name; an ignored one is dropped.
    pub fn apply(&self, fields: &mut Map<String, Value>) {
        for r in &self.renames {
            if let Some(v) = fields.remove(&r.from) {
                if let Some(to) = &r.to {
                    fields.insert(to.clone(), v);
                }
            }
        }
    }
}

/// How one column of the file is understood (`flywheel import --dry-run` prints these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnUse {
    /// The column (or JSONL field) as the file names it.
    pub column: String,
    /// The field it is read as (after `--map`), or `None` when it is ignored.
    pub field: Option<String>,
    /// What Flywheel does with it, in words.
    pub meaning: String,
}

/// How the file's column `column` is understood for `kind`.
pub fn understand(kind: ImportKind, csv: bool, column: &str, map: &ColumnMap) -> ColumnUse {
    let field = map.field_of(column);
    let meaning = match &field {
        None if map.renames.iter().any(|r| r.from == column) => "ignored (--map)".to_string(),
        None => {
            let by = map
                .renames
                .iter()
                .find(|r| r.to.as_deref() == Some(column))
                .map(|r| r.from.as_str())
                .unwrap_or_default();
            format!("ignored: column {by:?} is mapped to {column:?}")
        }
        Some(f) => meaning(kind, csv, f),
    };
    ColumnUse {
        column: column.to_string(),
        field,
        meaning,
    }
}

fn meaning(kind: ImportKind, csv: bool, field: &str) -> String {
    let common = match field {
        "user_id" | "userId" => Some("user id"),
        "anonymous_id" | "anonymousId" => Some("anonymous id"),
        "timestamp" | "time" => Some(match kind {
            ImportKind::Users => "time the traits were true",
            ImportKind::Orders => "time the order was placed",
            ImportKind::Events => "time of the event",
        }),
        "message_id" | "messageId" => Some("message id (deduplication)"),
        _ => None,
    };
    if let Some(c) = common {
        return c.to_string();
    }
    match kind {
        ImportKind::Users if field == "traits" => "traits (JSON object)".into(),
        ImportKind::Users => format!("trait {field:?}"),
        ImportKind::Orders => match field {
            "order_id" => "order id".into(),
            "total" => "amount paid (元)".into(),
            "revenue" | "discount" | "shipping" | "tax" => format!("order {field} (元)"),
            "coupon" | "currency" => format!("order {field}"),
            "products" if !csv => "order lines (JSON array)".into(),
            "product_id" | "sku" | "category" | "brand" | "quantity" if csv => format!("line {field}"),
            "product_name" | "name" if csv => "line name".into(),
            "price" if csv => "line price (元)".into(),
            _ => format!("order property {field:?}"),
        },
        ImportKind::Events => match field {
            "type" | "event" | "name" | "groupId" | "previousId" | "category" | "channel" | "sentAt"
            | "originalTimestamp" | "writeKey" => format!("message {field}"),
            "properties" | "traits" | "context" | "integrations" => format!("{field} (JSON object)"),
            _ => "ignored: not a field of a Segment message (put it in properties)".into(),
        },
    }
}

/// One thing a record of a kind cannot do without: any of `fields`, non-empty.
struct Requirement {
    fields: &'static [&'static str],
    /// How the reason names it.
    name: &'static str,
    /// The code of its rejection (the tracking API's where it has one).
    code: ErrorCode,
}

const IDS: Requirement = Requirement {
    fields: &["user_id", "userId", "anonymous_id", "anonymousId"],
    name: "\"user_id\" (or \"anonymous_id\")",
    code: ErrorCode::MissingId,
};
const TIME: Requirement = Requirement {
    fields: &["timestamp", "time"],
    name: "\"timestamp\"",
    code: ErrorCode::MissingColumn,
};
const ORDER_ID: Requirement = Requirement {
    fields: &["order_id"],
    name: "\"order_id\"",
    code: ErrorCode::MissingOrderId,
};
const AMOUNT: Requirement = Requirement {
    fields: &["total", "revenue", "price", "products"],
    name: "\"total\" (or \"revenue\", or the lines' \"price\")",
    code: ErrorCode::MissingColumn,
};
const EVENT_TIME: Requirement = Requirement {
    fields: &["timestamp", "time", "originalTimestamp"],
    name: "\"timestamp\"",
    code: ErrorCode::MissingColumn,
};

fn requirements(kind: ImportKind) -> &'static [Requirement] {
    match kind {
        ImportKind::Users => &[IDS],
        ImportKind::Orders => &[ORDER_ID, IDS, TIME, AMOUNT],
        ImportKind::Events => &[IDS, EVENT_TIME],
    }
}

/// A required field a record lacks: the code and the sentence it is rejected with.
pub type Gap = (ErrorCode, String);

/// The first required field `kind` cannot find among a CSV header's fields (after
/// `--map`), as every record of the file is rejected for it.
pub fn header_gap(kind: ImportKind, fields: &[String]) -> Option<Gap> {
    requirements(kind)
        .iter()
        .find(|req| !req.fields.iter().any(|f| fields.iter().any(|h| h == f)))
        .map(|req| {
            let dest = req.fields.first().copied().unwrap_or_default();
            let reason = format!(
                "column {} missing: the header has none (map yours with --map SRC={dest})",
                req.name
            );
            (req.code, reason)
        })
}

/// Why `fields` (one record, after `--map`) lacks a required field, if it does.
pub fn record_gap(kind: ImportKind, csv: bool, fields: &Map<String, Value>) -> Option<Gap> {
    let what = if csv { "column" } else { "field" };
    requirements(kind)
        .iter()
        .find(|req| !req.fields.iter().any(|f| filled(fields, f)))
        .map(|req| {
            let present = req.fields.iter().any(|f| fields.contains_key(*f));
            let why = if present { ": it is empty" } else { "" };
            (req.code, format!("{what} {} missing{why}", req.name))
        })
}

/// Whether `field` holds something: not null, not empty text; a line price counts when
/// any order line (`products`) has one.
fn filled(fields: &Map<String, Value>, field: &str) -> bool {
    let some = |v: &Value| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty());
    match field {
        "price" | "products" => fields
            .get("products")
            .and_then(Value::as_array)
            .is_some_and(|lines| lines.iter().any(|l| l.get("price").is_some_and(some))),
        f => fields.get(f).is_some_and(some),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(specs: &[&str]) -> ColumnMap {
        ColumnMap::new(specs.iter().map(|s| s.parse().unwrap()).collect()).unwrap()
    }

    #[test]
    fn renames_parse_and_conflicts_are_refused() {
        let r: ColumnRename = "ordered_at=timestamp".parse().unwrap();
        assert_eq!(
            (r.from.as_str(), r.to.as_deref()),
            ("ordered_at", Some("timestamp"))
        );
        let r: ColumnRename = " notes = ".parse().unwrap();
        assert_eq!((r.from.as_str(), r.to), ("notes", None));
        assert!("ordered_at".parse::<ColumnRename>().is_err());
        assert!("=timestamp".parse::<ColumnRename>().is_err());
        let twice = vec!["a=timestamp".parse().unwrap(), "a=total".parse().unwrap()];
        assert!(ColumnMap::new(twice).is_err());
        let both = vec!["a=timestamp".parse().unwrap(), "b=timestamp".parse().unwrap()];
        assert!(ColumnMap::new(both).is_err());
        // Two ignored columns are fine.
        assert!(ColumnMap::new(vec!["a=".parse().unwrap(), "b=".parse().unwrap()]).is_ok());
    }

    #[test]
    fn a_mapped_column_replaces_its_destination() {
        let m = map(&["ordered_at=timestamp", "notes="]);
        let mut f =
            json!({"ordered_at": "1997-01-01", "timestamp": "2024-01-01", "notes": "x", "total": "1"})
                .as_object()
                .unwrap()
                .clone();
        m.apply(&mut f);
        assert_eq!(
            f,
            *json!({"timestamp": "1997-01-01", "total": "1"})
                .as_object()
                .unwrap()
        );
        assert_eq!(m.field_of("ordered_at").as_deref(), Some("timestamp"));
        assert_eq!(m.field_of("timestamp"), None);
        assert_eq!(m.field_of("notes"), None);
        assert_eq!(m.field_of("total").as_deref(), Some("total"));
    }

    #[test]
    fn columns_are_described_per_kind() {
        let m = map(&["ordered_at=timestamp", "notes="]);
        let u = |k, c: &str| understand(k, true, c, &m).meaning;
        assert_eq!(u(ImportKind::Orders, "ordered_at"), "time the order was placed");
        assert_eq!(u(ImportKind::Orders, "notes"), "ignored (--map)");
        assert!(u(ImportKind::Orders, "timestamp").contains("\"ordered_at\" is mapped"));
        assert_eq!(u(ImportKind::Orders, "price"), "line price (元)");
        assert_eq!(u(ImportKind::Orders, "gift_wrap"), "order property \"gift_wrap\"");
        assert_eq!(u(ImportKind::Users, "city"), "trait \"city\"");
        assert!(u(ImportKind::Events, "color").starts_with("ignored"));
        assert_eq!(
            understand(ImportKind::Orders, false, "price", &m).meaning,
            "order property \"price\""
        );
    }

    #[test]
    fn required_fields_per_kind() {
        let h = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let head = |kind, cols: &[&str]| header_gap(kind, &h(cols));
        let (code, gap) = head(
            ImportKind::Orders,
            &["order_id", "user_id", "ordered_at", "total"],
        )
        .unwrap();
        assert_eq!(code, ErrorCode::MissingColumn);
        assert!(gap.starts_with("column \"timestamp\" missing"), "{gap}");
        assert!(gap.contains("--map SRC=timestamp"), "{gap}");
        assert_eq!(
            head(ImportKind::Orders, &["order_id", "anonymous_id", "time", "price"]),
            None
        );
        let (_, gap) = head(ImportKind::Orders, &["order_id", "user_id", "timestamp"]).unwrap();
        assert!(gap.contains("\"total\""), "{gap}");
        let (code, _) = head(ImportKind::Orders, &["user_id", "timestamp", "total"]).unwrap();
        assert_eq!(code, ErrorCode::MissingOrderId);
        assert_eq!(head(ImportKind::Users, &["user_id", "name"]), None);
        let (code, gap) = head(ImportKind::Users, &["name"]).unwrap();
        assert_eq!(code, ErrorCode::MissingId);
        assert!(gap.contains("\"user_id\""), "{gap}");
        assert!(head(ImportKind::Events, &["type", "userId", "event"]).is_some());

        let rec = |v: Value| v.as_object().unwrap().clone();
        let order = rec(json!({"order_id": "O1", "user_id": "u", "timestamp": "", "total": "1"}));
        let empty = "column \"timestamp\" missing: it is empty".to_string();
        assert_eq!(
            record_gap(ImportKind::Orders, true, &order),
            Some((ErrorCode::MissingColumn, empty))
        );
        let order = rec(json!({"order_id": "O1", "userId": "u", "time": "1997-01-01",
                               "products": [{"product_id": "P", "price": "0"}]}));
        assert_eq!(record_gap(ImportKind::Orders, false, &order), None);
        let order = rec(
            json!({"order_id": "O1", "user_id": "u", "timestamp": "1997-01-01",
                               "products": [{"product_id": "P"}]}),
        );
        let (_, gap) = record_gap(ImportKind::Orders, false, &order).unwrap();
        assert!(gap.starts_with("field \"total\""), "{gap}");
        // Zero is an amount.
        let order = rec(json!({"order_id": "O1", "user_id": "u", "timestamp": "1997-01-01", "total": 0}));
        assert_eq!(record_gap(ImportKind::Orders, false, &order), None);
        let ev = rec(json!({"type": "identify", "userId": "u"}));
        assert_eq!(
            record_gap(ImportKind::Events, false, &ev),
            Some((ErrorCode::MissingColumn, "field \"timestamp\" missing".into()))
        );
    }
}
