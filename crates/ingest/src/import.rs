//! Bulk import of users, orders and events from CSV or JSONL files.
//!
//! Every record becomes a Segment message and goes through the same validation
//! ([`crate::message`], [`crate::ecommerce`]) and the same write pipeline as the
//! tracking API. A bad record is rejected with its line number and reason (and
//! written to the reject file); it never stops or corrupts the rest. Each record's
//! `messageId` is derived from the file kind and the record's content, so importing
//! the same file twice stores nothing twice. Columns are documented in `docs/import.md`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use flywheel_core::ErrorCode;
use flywheel_store::NewEvent;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::message::{self, Envelope};
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

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportSummary {
    /// Records read.
    pub records: u64,
    /// Events stored now.
    pub accepted: u64,
    /// Records already stored by an earlier import (same content).
    pub duplicates: u64,
    /// Refused records.
    pub rejected: Vec<Rejection>,
    /// Where rejected lines were written, if any were.
    pub reject_file: Option<PathBuf>,
}

/// Records per write batch.
const BATCH: usize = 1000;

/// A record read from the file: its first line number, the raw text and the fields.
struct Record {
    line: u64,
    raw: String,
    fields: Map<String, Value>,
}

/// Imports `path`; `progress` is called with the bytes read so far.
pub async fn import_file(
    pipeline: &Pipeline,
    path: &Path,
    kind: ImportKind,
    format: ImportFormat,
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
    let mut summary = ImportSummary::default();
    let mut pending: Vec<(u64, String, NewEvent)> = Vec::with_capacity(BATCH);
    let mut reject =
        |summary: &mut ImportSummary, line: u64, raw: &str, code: ErrorCode, reason: String| -> Result<()> {
            if rejects.is_none() {
                rejects = Some(std::fs::File::create(&reject_path).map_err(io)?);
                summary.reject_file = Some(reject_path.clone());
            }
            if let Some(f) = rejects.as_mut() {
                let row = json!({"line": line, "code": code, "reason": reason, "record": raw});
                writeln!(f, "{row}").map_err(io)?;
            }
            summary.rejected.push(Rejection { line, code, reason });
            Ok(())
        };
    let mut records = RecordReader::new(counter, format, kind);
    loop {
        let next = records.next_record();
        progress(records.bytes_read());
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
        match to_event(kind, &record) {
            Ok(ev) => pending.push((record.line, record.raw, ev)),
            Err(e) => reject(&mut summary, record.line, &record.raw, e.code(), e.to_string())?,
        }
        if pending.len() >= BATCH {
            flush(pipeline, &mut pending, &mut summary).await?;
        }
    }
    flush(pipeline, &mut pending, &mut summary).await?;
    Ok(summary)
}

async fn flush(
    pipeline: &Pipeline,
    pending: &mut Vec<(u64, String, NewEvent)>,
    summary: &mut ImportSummary,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
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

/// Builds the Segment message of a record and validates it.
fn to_event(kind: ImportKind, record: &Record) -> Result<NewEvent> {
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
        msg.insert("timestamp".into(), t);
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

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

type RecordResult = std::result::Result<Record, (u64, String, String)>;

/// Reads records, grouping consecutive CSV order rows of one `order_id` into one order.
struct RecordReader<R: Read> {
    source: Source<R>,
    kind: ImportKind,
    held: Option<Record>,
    held_error: Option<(u64, String, String)>,
}

enum Source<R: Read> {
    Jsonl {
        reader: BufReader<CountingReader<R>>,
        line: u64,
    },
    Csv {
        reader: Box<csv::Reader<CountingReader<R>>>,
        headers: Option<Vec<String>>,
    },
}

impl<R: Read> RecordReader<R> {
    fn new(inner: CountingReader<R>, format: ImportFormat, kind: ImportKind) -> Self {
        let source = match format {
            ImportFormat::Jsonl => Source::Jsonl {
                reader: BufReader::new(inner),
                line: 0,
            },
            ImportFormat::Csv => Source::Csv {
                reader: Box::new(
                    csv::ReaderBuilder::new()
                        .flexible(true)
                        .has_headers(false)
                        .from_reader(inner),
                ),
                headers: None,
            },
        };
        RecordReader {
            source,
            kind,
            held: None,
            held_error: None,
        }
    }

    fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Jsonl { reader, .. } => reader.get_ref().read,
            Source::Csv { reader, .. } => reader.get_ref().read,
        }
    }

    fn next_record(&mut self) -> Option<RecordResult> {
        if self.kind != ImportKind::Orders || matches!(self.source, Source::Jsonl { .. }) {
            return self.next_raw();
        }
        // CSV orders: gather the rows of one order.
        if let Some(e) = self.held_error.take() {
            return Some(Err(e));
        }
        let mut order = match self.held.take() {
            Some(r) => r,
            None => match self.next_raw()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            },
        };
        let mut lines = vec![line_of(&mut order.fields)];
        loop {
            match self.next_raw() {
                None => break,
                Some(Err(e)) => {
                    // Keep the order; the bad row is reported on the next call.
                    self.held_error = Some(e);
                    break;
                }
                Some(Ok(mut next)) => {
                    if next.fields.get("order_id") == order.fields.get("order_id") {
                        lines.push(line_of(&mut next.fields));
                        order.raw.push('\n');
                        order.raw.push_str(&next.raw);
                    } else {
                        self.held = Some(next);
                        break;
                    }
                }
            }
        }
        let lines: Vec<Value> = lines
            .into_iter()
            .filter(|l| !l.as_object().is_some_and(Map::is_empty))
            .collect();
        if !lines.is_empty() {
            order.fields.insert("products".into(), Value::Array(lines));
        }
        Some(Ok(order))
    }

    fn next_raw(&mut self) -> Option<RecordResult> {
        match &mut self.source {
            Source::Jsonl { reader, line } => loop {
                let mut buf = Vec::new();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err((*line + 1, String::new(), e.to_string()))),
                }
                *line += 1;
                let raw = String::from_utf8_lossy(&buf).trim_end().to_string();
                if raw.trim().is_empty() {
                    continue;
                }
                if std::str::from_utf8(&buf).is_err() {
                    return Some(Err((*line, raw, "line is not valid UTF-8".into())));
                }
                let mut parsed = serde_json::from_str::<Value>(&raw);
                if let Ok(v) = &mut parsed {
                    crate::exact::exact_ids(&raw, v);
                }
                return Some(match parsed {
                    Ok(Value::Object(fields)) => Ok(Record {
                        line: *line,
                        raw,
                        fields,
                    }),
                    Ok(_) => Err((*line, raw, "line is not a JSON object".into())),
                    Err(e) => Err((*line, raw, format!("invalid JSON: {e}"))),
                });
            },
            Source::Csv { reader, headers } => loop {
                let mut row = csv::ByteRecord::new();
                match reader.read_byte_record(&mut row) {
                    Ok(false) => return None,
                    Ok(true) => {}
                    Err(e) => {
                        let line = e.position().map(|p| p.line()).unwrap_or(0);
                        return Some(Err((line, String::new(), format!("invalid CSV: {e}"))));
                    }
                }
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                let cells: std::result::Result<Vec<&str>, _> = row.iter().map(std::str::from_utf8).collect();
                let raw = row
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(",");
                let Ok(cells) = cells else {
                    return Some(Err((line, raw, "row is not valid UTF-8".into())));
                };
                let Some(h) = headers.as_ref() else {
                    *headers = Some(
                        cells
                            .iter()
                            .map(|c| c.trim().trim_start_matches('\u{feff}').to_string())
                            .collect(),
                    );
                    continue;
                };
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                if cells.len() != h.len() {
                    return Some(Err((
                        line,
                        raw,
                        format!("row has {} cells; the header has {}", cells.len(), h.len()),
                    )));
                }
                let mut fields = Map::new();
                for (name, cell) in h.iter().zip(cells) {
                    fields.insert(name.clone(), csv_value(name, cell));
                }
                return Some(Ok(Record { line, raw, fields }));
            },
        }
    }
}

/// Cells named `properties`, `traits`, `context`, `integrations` hold JSON objects; others are text.
fn csv_value(name: &str, cell: &str) -> Value {
    if matches!(name, "properties" | "traits" | "context" | "integrations") && !cell.trim().is_empty() {
        if let Ok(v) = serde_json::from_str::<Value>(cell) {
            return v;
        }
    }
    Value::String(cell.to_string())
}

/// Takes the order-line columns out of a CSV order row.
fn line_of(fields: &mut Map<String, Value>) -> Value {
    let mut line = BTreeMap::new();
    for (col, key) in [
        ("product_id", "product_id"),
        ("sku", "sku"),
        ("product_name", "name"),
        ("name", "name"),
        ("category", "category"),
        ("brand", "brand"),
        ("price", "price"),
        ("quantity", "quantity"),
    ] {
        if let Some(v) = fields.remove(col) {
            if v.as_str().is_some_and(|s| !s.is_empty()) {
                let v = if key == "quantity" {
                    v.as_str()
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .map(Value::from)
                        .unwrap_or(v)
                } else {
                    v
                };
                line.insert(key.to_string(), v);
            }
        }
    }
    Value::Object(line.into_iter().collect())
}
