//! The index in the engine's saved state: its rows, every column, tag and segment. A
//! numeric column that had value buckets is read without them and asked for again, so
//! the writer rebuilds them one at a time after the start.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::Index;
use crate::bytes::{put_bitmap, put_bytes, put_u64, Cursor};
use crate::column::{CatColumn, MultiColumn, NumColumn};

fn put_bitmaps(out: &mut Vec<u8>, maps: &HashMap<String, RoaringBitmap>) {
    put_u64(out, maps.len() as u64);
    for (k, b) in maps {
        put_bytes(out, k.as_bytes());
        put_bitmap(out, b);
    }
}

fn read_bitmaps(c: &mut Cursor<'_>) -> Option<HashMap<String, RoaringBitmap>> {
    (0..c.count()?)
        .map(|_| Some((c.str()?.to_owned(), c.bitmap()?)))
        .collect()
}

impl Index {
    /// Appends its saved form.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_u64(out, u64::from(self.rows));
        put_bitmap(out, &self.alive);
        put_u64(out, self.num.len() as u64);
        for (k, col) in &self.num {
            put_bytes(out, k.as_bytes());
            out.push(u8::from(col.is_bucketed()));
            col.write(out);
        }
        put_u64(out, self.cat.len() as u64);
        for (k, col) in &self.cat {
            put_bytes(out, k.as_bytes());
            col.write(out);
        }
        put_u64(out, self.multi.len() as u64);
        for (k, col) in &self.multi {
            put_bytes(out, k.as_bytes());
            col.write(out);
        }
        put_bitmaps(out, &self.tags);
        put_bitmaps(out, &self.segments);
    }

    /// Reads what [`Index::write`] wrote.
    pub fn read(c: &mut Cursor<'_>) -> Option<Index> {
        let mut index = Index {
            rows: u32::try_from(c.u64()?).ok()?,
            alive: c.bitmap()?,
            ..Index::default()
        };
        for _ in 0..c.count()? {
            let key = c.str()?.to_owned();
            let bucketed = c.byte()? != 0;
            let col = NumColumn::read(c)?;
            if bucketed {
                index.asked.get_mut().ok()?.insert(key.clone());
            }
            index.num.insert(key, col);
        }
        for _ in 0..c.count()? {
            let key = c.str()?.to_owned();
            index.cat.insert(key, CatColumn::read(c)?);
        }
        for _ in 0..c.count()? {
            let key = c.str()?.to_owned();
            index.multi.insert(key, MultiColumn::read(c)?);
        }
        index.tags = read_bitmaps(c)?;
        index.segments = read_bitmaps(c)?;
        Some(index)
    }
}
