//! Reading the benchmark data written by `gen.py`: `manifest.json` and one raw
//! little-endian array without a header per column.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

/// One column file listed in the manifest.
#[derive(Debug, Clone)]
pub struct ColumnFile {
    /// Column name (`spend_30d`, `user`, ...).
    pub name: String,
    /// Element type: `u8`, `u16`, `u32` or `i64`.
    pub dtype: String,
    /// Path of the raw file.
    pub path: PathBuf,
}

/// What `manifest.json` says about the data.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Number of profiles (rows of every profile column).
    pub profiles: usize,
    /// The instant the data was generated for, ms since the epoch.
    pub now_ms: i64,
    /// Profile columns in file order.
    pub columns: Vec<ColumnFile>,
    /// Dictionaries of the categorical columns: the index is the code.
    pub dictionaries: HashMap<String, Vec<String>>,
    /// Tag columns and their display names (`tag_churn_risk` → 流失風險客戶).
    pub tags: Vec<(String, String)>,
    /// The `last_order` value of a profile without an order.
    pub last_order_none: i64,
    /// Number of users in the order log (user ids are `0..users`).
    pub users: usize,
    /// Number of orders.
    pub orders: usize,
    /// Order columns (`user`, `ts`, `amount`).
    pub order_columns: Vec<ColumnFile>,
}

/// The member `key` of a manifest object.
fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key).with_context(|| format!("manifest: missing {key:?}"))
}

/// The member `key` as a non-negative integer.
fn as_u64(v: &Value, key: &str) -> Result<u64> {
    field(v, key)?
        .as_u64()
        .with_context(|| format!("manifest: {key:?} is not a non-negative integer"))
}

/// The member `key` as an integer.
fn as_i64(v: &Value, key: &str) -> Result<i64> {
    field(v, key)?
        .as_i64()
        .with_context(|| format!("manifest: {key:?} is not an integer"))
}

/// The member `key` as a string.
fn as_str<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    field(v, key)?
        .as_str()
        .with_context(|| format!("manifest: {key:?} is not a string"))
}

/// A manifest list of column files, paths resolved against `dir`.
fn columns(dir: &Path, v: &Value) -> Result<Vec<ColumnFile>> {
    let list = v.as_array().context("manifest: columns is not a list")?;
    list.iter()
        .map(|c| {
            Ok(ColumnFile {
                name: as_str(c, "name")?.to_owned(),
                dtype: as_str(c, "dtype")?.to_owned(),
                path: dir.join(as_str(c, "file")?),
            })
        })
        .collect()
}

/// A manifest list of strings (`what` names it in errors).
fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    v.as_array()
        .with_context(|| format!("manifest: {what} is not a list"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .with_context(|| format!("manifest: {what} holds a non-string"))
        })
        .collect()
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join("manifest.json");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {} (run bench/audience/gen.py first)", path.display()))?;
        let m: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let endianness = as_str(&m, "endianness")?;
        ensure!(
            endianness == "little",
            "manifest: unsupported endianness {endianness:?}"
        );
        let dictionaries = field(&m, "dictionaries")?
            .as_object()
            .context("manifest: dictionaries is not an object")?
            .iter()
            .map(|(k, v)| Ok((k.clone(), strings(v, k)?)))
            .collect::<Result<_>>()?;
        let tags = field(&m, "tags")?
            .as_object()
            .context("manifest: tags is not an object")?
            .iter()
            .map(|(k, v)| {
                let name = v
                    .as_str()
                    .with_context(|| format!("manifest: tag {k:?} has no name"))?;
                Ok((k.clone(), name.to_owned()))
            })
            .collect::<Result<_>>()?;
        let orders = field(&m, "orders")?;
        Ok(Manifest {
            profiles: usize::try_from(as_u64(&m, "profiles")?)?,
            now_ms: as_i64(&m, "now_ms")?,
            columns: columns(dir, field(&m, "columns")?)?,
            dictionaries,
            tags,
            last_order_none: as_i64(&m, "last_order_none")?,
            users: usize::try_from(as_u64(orders, "users")?)?,
            orders: usize::try_from(as_u64(orders, "orders")?)?,
            order_columns: columns(dir, field(orders, "columns")?)?,
        })
    }

    /// The profile column `name`.
    pub fn column(&self, name: &str) -> Result<&ColumnFile> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("manifest: no profile column {name:?}"))
    }

    /// The order column `name`.
    pub fn order_column(&self, name: &str) -> Result<&ColumnFile> {
        self.order_columns
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("manifest: no order column {name:?}"))
    }

    /// The dictionary of the categorical column `name`.
    pub fn dictionary(&self, name: &str) -> Result<&[String]> {
        self.dictionaries
            .get(name)
            .map(Vec::as_slice)
            .with_context(|| format!("manifest: no dictionary for {name:?}"))
    }
}

/// The values of a raw column, widened to a common type per kind.
#[derive(Debug)]
pub enum Raw {
    /// A `u8`, `u16` or `u32` column.
    Unsigned(Vec<u32>),
    /// An `i64` column.
    Signed(Vec<i64>),
}

/// Reads a whole column file of `rows` elements.
pub fn read(col: &ColumnFile, rows: usize) -> Result<Raw> {
    let bytes = fs::read(&col.path).with_context(|| format!("reading {}", col.path.display()))?;
    let width = match col.dtype.as_str() {
        "u8" => 1,
        "u16" => 2,
        "u32" => 4,
        "i64" => 8,
        other => bail!("{}: unsupported dtype {other:?}", col.path.display()),
    };
    ensure!(
        bytes.len() == rows * width,
        "{}: {} bytes, expected {rows} × {width}",
        col.path.display(),
        bytes.len()
    );
    Ok(match width {
        1 => Raw::Unsigned(bytes.iter().map(|b| u32::from(*b)).collect()),
        2 => Raw::Unsigned(
            bytes
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        4 => Raw::Unsigned(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => Raw::Signed(
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    })
}

impl Raw {
    /// The values as `i64` (any column).
    pub fn into_i64(self) -> Vec<i64> {
        match self {
            Raw::Signed(v) => v,
            Raw::Unsigned(v) => v.into_iter().map(i64::from).collect(),
        }
    }

    /// The values of an unsigned column.
    pub fn into_u32(self, what: &str) -> Result<Vec<u32>> {
        match self {
            Raw::Unsigned(v) => Ok(v),
            Raw::Signed(_) => bail!("{what}: expected an unsigned column, found i64"),
        }
    }
}

/// Resident set size of this process in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> Result<u64> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("/proc/self/status: no VmRSS")?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("/proc/self/status: bad line {line:?}"))?;
    Ok(kib * 1024)
}
