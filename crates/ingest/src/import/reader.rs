//! Reading an import file into records: JSONL lines or CSV rows (consecutive rows of one
//! `order_id` grouped into one order), with the `--map` renames applied, and how each
//! column was understood.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::columns::{self, ColumnMap, ColumnUse};
use super::{ImportFormat, ImportKind};

/// A record read from the file: its first line number, the raw text and the fields
/// (after `--map`).
pub(super) struct Record {
    pub(super) line: u64,
    pub(super) raw: String,
    pub(super) fields: Map<String, Value>,
}

/// The JSONL fields described at most (a file of free-form keys stays bounded).
const MAX_COLUMNS: usize = 1000;

pub(super) struct CountingReader<R> {
    pub(super) inner: R,
    pub(super) read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

pub(super) type RecordResult = std::result::Result<Record, (u64, String, String)>;

/// Reads records, grouping consecutive CSV order rows of one `order_id` into one order.
pub(super) struct RecordReader<R: Read> {
    source: Source<R>,
    kind: ImportKind,
    map: ColumnMap,
    held: Option<Record>,
    held_error: Option<(u64, String, String)>,
    /// How each column (CSV header; JSONL: each field name first seen) is understood.
    columns: Vec<ColumnUse>,
    seen: HashSet<String>,
    /// A CSV header's fields after `--map` (`None` for JSONL or before the header).
    header_fields: Option<Vec<String>>,
}

enum Source<R: Read> {
    Jsonl {
        reader: BufReader<CountingReader<R>>,
        line: u64,
    },
    Csv {
        reader: Box<csv::Reader<CountingReader<R>>>,
        /// The header's fields after `--map` (`None`: the column is ignored).
        headers: Option<Vec<Option<String>>>,
    },
}

impl<R: Read> RecordReader<R> {
    pub(super) fn new(
        inner: CountingReader<R>,
        format: ImportFormat,
        kind: ImportKind,
        map: ColumnMap,
    ) -> Self {
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
            map,
            held: None,
            held_error: None,
            columns: Vec::new(),
            seen: HashSet::new(),
            header_fields: None,
        }
    }

    /// How the columns read so far are understood.
    pub(super) fn columns(&self) -> &[ColumnUse] {
        &self.columns
    }

    /// A CSV header's fields after `--map`, once the header is read.
    pub(super) fn header_fields(&self) -> Option<&[String]> {
        self.header_fields.as_deref()
    }

    /// Notes the columns of a record not seen before (JSONL; bounded).
    fn see(&mut self, fields: &Map<String, Value>) {
        for name in fields.keys() {
            if self.seen.len() >= MAX_COLUMNS {
                return;
            }
            if !self.seen.contains(name) {
                self.seen.insert(name.clone());
                self.columns
                    .push(columns::understand(self.kind, false, name, &self.map));
            }
        }
    }

    pub(super) fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Jsonl { reader, .. } => reader.get_ref().read,
            Source::Csv { reader, .. } => reader.get_ref().read,
        }
    }

    pub(super) fn next_record(&mut self) -> Option<RecordResult> {
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
                    if same_order(&order.fields, &next.fields) {
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
        let jsonl = matches!(self.source, Source::Jsonl { .. });
        let mut next = self.read_raw();
        if jsonl {
            if let Some(Ok(record)) = &mut next {
                self.see(&record.fields);
                self.map.apply(&mut record.fields);
            }
        }
        next
    }

    fn read_raw(&mut self) -> Option<RecordResult> {
        let RecordReader {
            source,
            kind,
            map,
            columns,
            header_fields,
            ..
        } = self;
        match source {
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
                    let names = cells.iter().map(|c| c.trim().trim_start_matches('\u{feff}'));
                    *columns = names
                        .map(|name| columns::understand(*kind, true, name, map))
                        .collect();
                    *header_fields = Some(columns.iter().filter_map(|c| c.field.clone()).collect());
                    *headers = Some(columns.iter().map(|c| c.field.clone()).collect());
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
                    if let Some(name) = name {
                        fields.insert(name.clone(), csv_value(name, cell));
                    }
                }
                return Some(Ok(Record { line, raw, fields }));
            },
        }
    }
}

/// Whether two CSV rows are lines of one order: the same, non-empty `order_id` (rows
/// without one are never grouped, so each is rejected on its own line).
fn same_order(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let id = |f: &Map<String, Value>| {
        f.get("order_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    id(a).is_some() && id(a) == id(b)
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
