//! Bulk import of users, orders and events from CSV or JSONL files.
//!
//! Every record becomes a Segment message and goes through the same validation
//! ([`crate::message`], [`crate::ecommerce`]) and the same write pipeline as the
//! tracking API. A bad record is rejected with its line number and reason (and
//! written to the reject file); it never stops or corrupts the rest. Each record's
//! `messageId` is derived from the file kind and the record's content, so importing
//! the same file twice stores nothing twice. Columns are documented in `docs/import.md`.
//!
//! Imports never lie about what they read: `--map SRC=DEST` names a column for a field
//! ([`columns`]); a record without a field its kind needs (an order's time, id and amount,
//! a customer's id; an event's time) is rejected naming the column, never defaulted to the
//! import's time; a header without such a column rejects every record, and the summary
//! says so once. History is welcome: an import takes timestamps of any past date unless it
//! sets a floor ([`ImportOptions::not_before`]); a time without an offset is a wall-clock
//! reading in the shop timezone. A dry run ([`import_file`] without a pipeline) validates
//! and describes the columns without writing anything.

pub mod columns;
mod reader;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use chrono_tz::Tz;
use flywheel_core::time::{format_timestamp, parse_timestamp_in};
use flywheel_core::{ErrorCode, Timestamp};
use flywheel_store::NewEvent;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use self::columns::{ColumnMap, ColumnUse};
use self::reader::{CountingReader, Record, RecordReader};
use crate::message::{self, Envelope, TimeBounds};
use crate::{ecommerce, Error, Pipeline, Result};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// One user per record: becomes an `identify`.
    Users,
    /// Orders: becomes `Order Completed` (CSV: one row per order line).
    Orders,
    /// Segment messages of any type.
    Events,
}

impl ImportKind {
    fn name(self) -> &'static str {
        match self {
            ImportKind::Users => "users",
            ImportKind::Orders => "orders",
            ImportKind::Events => "events",
        }
    }
}

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl ImportFormat {
    /// The format a file name implies (`.csv`; `.jsonl`/`.ndjson`/`.json`).
    pub fn from_path(path: &Path) -> Option<ImportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(ImportFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(ImportFormat::Jsonl),
            _ => None,
        }
    }
}

/// One refused record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// 1-based line number in the file.
    pub line: u64,
    /// Stable error code.
    pub code: ErrorCode,
    /// Why.
    pub reason: String,
}

/// How to read one file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What the file holds.
    pub kind: ImportKind,
    /// Its format.
    pub format: ImportFormat,
    /// `--map SRC=DEST` renames.
    pub columns: ColumnMap,
    /// The earliest timestamp accepted (`--not-before`, `[import] not_before`); `None`
    /// takes any past time.
    pub not_before: Option<Timestamp>,
    /// The shop timezone: a time without an offset (or a bare date) is read in it.
    pub timezone: Tz,
}

impl ImportOptions {
    /// A file of `kind` in `format`, no renames, no floor, read in the default shop timezone.
    pub fn new(kind: ImportKind, format: ImportFormat) -> ImportOptions {
        ImportOptions {
            kind,
            format,
            columns: ColumnMap::default(),
            not_before: None,
            timezone: chrono_tz::Asia::Shanghai,
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportSummary {
    /// A dry run: nothing was written, `accepted` counts the records that passed
    /// validation and `duplicates` is not looked up.
    pub dry_run: bool,
    /// How each column (JSONL: each field name) was understood.
    pub columns: Vec<ColumnUse>,
    /// What is wrong with the file as a whole (a required column the header lacks, a
    /// `--map` source no record has), said once; its records are rejected one by one too.
    pub problems: Vec<String>,
    /// Records read.
    pub records: u64,
    /// Events stored now (dry run: records that would be stored or found already stored).
    pub accepted: u64,
    /// Records already stored by an earlier import (same content).
    pub duplicates: u64,
    /// Refused records: how many.
    pub rejected_total: u64,
    /// The first [`KEPT_REJECTIONS`] refused records (every one is in the reject file),
    /// so a file whose every line is refused does not fill memory.
    pub rejected: Vec<Rejection>,
    /// Where rejected lines were written, if any were.
    pub reject_file: Option<PathBuf>,
}

/// Records per write batch.
const BATCH: usize = 1000;

/// Refused records an [`ImportSummary`] keeps with their reasons.
pub const KEPT_REJECTIONS: usize = 1000;

/// Imports `path` through `pipeline`, or with `None` validates it without writing
/// anything (a dry run: no event, no reject file); `progress` is called with the bytes
/// read so far.
pub async fn import_file(
    pipeline: Option<&Pipeline>,
    path: &Path,
    options: &ImportOptions,
    mut progress: impl FnMut(u64),
) -> Result<ImportSummary> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let counter = CountingReader { inner: file, read: 0 };
    let reject_path = reject_path(path);
    let mut rejects: Option<std::fs::File> = None;
    let mut summary = ImportSummary {
        dry_run: pipeline.is_none(),
        ..Default::default()
    };
    let mut pending: Vec<(u64, String, NewEvent)> = Vec::with_capacity(BATCH);
    let mut reject =
        |summary: &mut ImportSummary, line: u64, raw: &str, code: ErrorCode, reason: String| -> Result<()> {
            if pipeline.is_some() && rejects.is_none() {
                rejects = Some(std::fs::File::create(&reject_path).map_err(io)?);
                summary.reject_file = Some(reject_path.clone());
            }
            if let Some(f) = rejects.as_mut() {
                let row = json!({"line": line, "code": code, "reason": reason, "record": raw});
                writeln!(f, "{row}").map_err(io)?;
            }
            summary.rejected_total += 1;
            if summary.rejected.len() < KEPT_REJECTIONS {
                summary.rejected.push(Rejection { line, code, reason });
            }
            Ok(())
        };
    let csv = options.format == ImportFormat::Csv;
    let mut records = RecordReader::new(counter, options.format, options.kind, options.columns.clone());
    let mut header_gap: Option<Option<columns::Gap>> = None;
    loop {
        let next = records.next_record();
        progress(records.bytes_read());
        if header_gap.is_none() {
            if let Some(fields) = records.header_fields() {
                let gap = columns::header_gap(options.kind, fields);
                summary
                    .problems
                    .extend(gap.iter().map(|(_, g)| format!("{g}; every record is rejected")));
                header_gap = Some(gap);
            }
        }
        let record = match next {
            None => break,
            Some(Err((line, raw, reason))) => {
                summary.records += 1;
                reject(&mut summary, line, &raw, ErrorCode::UnreadableRecord, reason)?;
                continue;
            }
            Some(Ok(r)) => r,
        };
        summary.records += 1;
        let gap = match header_gap.as_ref().and_then(Option::as_ref) {
            Some(g) => Some(g.clone()),
            None => columns::record_gap(options.kind, csv, &record.fields),
        };
        if let Some((code, reason)) = gap {
            reject(&mut summary, record.line, &record.raw, code, reason)?;
            continue;
        }
        match to_event(options, &record) {
            Ok(ev) => pending.push((record.line, record.raw, ev)),
            Err(e) => reject(&mut summary, record.line, &record.raw, e.code(), e.to_string())?,
        }
        if pending.len() >= BATCH {
            flush(pipeline, &mut pending, &mut summary).await?;
        }
    }
    flush(pipeline, &mut pending, &mut summary).await?;
    summary.columns = records.columns().to_vec();
    if !csv {
        for r in options.columns.renames() {
            if !summary.columns.iter().any(|c| c.column == r.from) {
                summary
                    .problems
                    .push(format!("--map {}=…: no record has a field {:?}", r.from, r.from));
            }
        }
    }
    Ok(summary)
}

/// Refuses a `--map` whose source column a CSV header does not have (JSONL files have no
/// header; the summary names such a source instead).
pub fn check_header(path: &Path, options: &ImportOptions) -> Result<()> {
    if options.format != ImportFormat::Csv || options.columns.renames().is_empty() {
        return Ok(());
    }
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let counter = CountingReader { inner: file, read: 0 };
    let mut records = RecordReader::new(counter, options.format, options.kind, options.columns.clone());
    let _ = records.next_record();
    let have: Vec<&str> = records.columns().iter().map(|c| c.column.as_str()).collect();
    for r in options.columns.renames() {
        if !have.contains(&r.from.as_str()) {
            return Err(Error::InvalidMapping(format!(
                "--map {}={}: the file has no column {:?} (its columns: {})",
                r.from,
                r.to.as_deref().unwrap_or_default(),
                r.from,
                have.join(", ")
            )));
        }
    }
    Ok(())
}

async fn flush(
    pipeline: Option<&Pipeline>,
    pending: &mut Vec<(u64, String, NewEvent)>,
    summary: &mut ImportSummary,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let Some(pipeline) = pipeline else {
        summary.accepted += pending.len() as u64;
        pending.clear();
        return Ok(());
    };
    let events: Vec<NewEvent> = pending.drain(..).map(|(_, _, e)| e).collect();
    let outcome = pipeline.submit_waiting(events).await?;
    summary.accepted += outcome.inserted;
    summary.duplicates += outcome.duplicates;
    Ok(())
}

/// `FILE.rejects.jsonl` beside the input.
pub fn reject_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".rejects.jsonl");
    path.with_file_name(name)
}

fn content_id(kind: ImportKind, fields: &Map<String, Value>) -> String {
    let canonical = serde_json::to_string(fields).unwrap_or_default();
    let digest = Sha256::digest(format!("{}\n{canonical}", kind.name()).as_bytes());
    format!("import-{}-{}", kind.name(), &hex::encode(digest)[..32])
}

fn take_text(m: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter()
        .find_map(|k| m.remove(*k))
        .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
}

/// A time without an offset as the shop's wall clock read it: rewritten with its offset
/// (text that is no timestamp is left for validation to refuse).
fn in_shop_time(v: Value, tz: Tz) -> Value {
    match v.as_str().map(|s| parse_timestamp_in(s, &tz)) {
        Some(Ok(t)) => Value::String(format_timestamp(t)),
        _ => v,
    }
}

/// Builds the Segment message of a record and validates it.
fn to_event(options: &ImportOptions, record: &Record) -> Result<NewEvent> {
    let kind = options.kind;
    let mut f = record.fields.clone();
    let message_id = take_text(&mut f, &["message_id", "messageId"])
        .unwrap_or_else(|| Value::String(content_id(kind, &record.fields)));
    let mut msg = Map::new();
    msg.insert("messageId".into(), message_id);
    for (to, from) in [
        ("userId", &["user_id", "userId"][..]),
        ("anonymousId", &["anonymous_id", "anonymousId"][..]),
    ] {
        if let Some(v) = take_text(&mut f, from) {
            msg.insert(to.into(), v);
        }
    }
    if let Some(t) = take_text(&mut f, &["timestamp", "time"]) {
        msg.insert("timestamp".into(), in_shop_time(t, options.timezone));
    }
    if kind == ImportKind::Events {
        if let Some(t) = take_text(&mut f, &["originalTimestamp"]) {
            msg.insert("originalTimestamp".into(), in_shop_time(t, options.timezone));
        }
    }
    match kind {
        ImportKind::Users => {
            msg.insert("type".into(), "identify".into());
            let mut traits = match f.remove("traits") {
                Some(Value::Object(t)) => t,
                _ => Map::new(),
            };
            traits.extend(
                f.into_iter()
                    .filter(|(_, v)| !v.is_null() && v.as_str() != Some("")),
            );
            msg.insert("traits".into(), Value::Object(traits));
        }
        ImportKind::Orders => {
            msg.insert("type".into(), "track".into());
            msg.insert("event".into(), ecommerce::names::ORDER_COMPLETED.into());
            msg.insert("properties".into(), Value::Object(f));
        }
        ImportKind::Events => {
            msg.extend(f);
            if msg.get("event").is_some() && msg.get("type").is_none() {
                msg.insert("type".into(), "track".into());
            }
        }
    }
    let env = Envelope {
        index: 0,
        received_at: Some(Utc::now()),
        bounds: TimeBounds::Import {
            not_before: options.not_before,
        },
        ..Default::default()
    };
    let parsed = message::parse(Value::Object(msg), &env).map_err(strip_index)?;
    let event = ecommerce::materialise(parsed.event, None, 0).map_err(strip_index)?;
    // Imported customer attributes update profiles but are not activity.
    Ok(if kind == ImportKind::Users {
        event.system_write()
    } else {
        event
    })
}

/// Import errors name the line, not the batch position.
fn strip_index(e: Error) -> Error {
    match e {
        Error::InvalidMessage { code, reason, .. } => {
            let reason = reason.strip_prefix("message 0: ").unwrap_or(&reason).to_string();
            Error::InvalidMessage {
                index: 0,
                code,
                reason,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose every record is refused keeps the first [`KEPT_REJECTIONS`] with their
    /// reasons and counts them all.
    #[tokio::test]
    async fn rejections_are_counted_and_a_bounded_number_kept() {
        let dir = std::env::temp_dir().join(format!("flywheel-import-rejections-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("orders.csv");
        let mut csv = String::from("order_id,user_id,ordered_at,total\n");
        let n = KEPT_REJECTIONS + 5;
        for i in 0..n {
            csv.push_str(&format!("o{i},u{i},2024-01-01T00:00:00Z,10.00\n"));
        }
        std::fs::write(&path, csv).unwrap();
        let options = ImportOptions::new(ImportKind::Orders, ImportFormat::Csv);
        let summary = import_file(None, &path, &options, |_| {}).await.unwrap();
        assert_eq!(summary.records, n as u64);
        assert_eq!(summary.rejected_total, n as u64, "no timestamp column: every row");
        assert_eq!(summary.rejected.len(), KEPT_REJECTIONS);
        assert_eq!(summary.rejected[0].line, 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
