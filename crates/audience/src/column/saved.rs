//! Columns in the engine's saved state: a numeric column as its values (its buckets are
//! built again when a query reads it), a text column as its dictionary and codes, a
//! multi-valued column as one bitmap per value. Reading rebuilds the same column.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::values::{Values, NULL};
use super::{CatColumn, Codes, MultiColumn, NumColumn};
use crate::bytes::{put_bitmap, put_bytes, put_strs, put_u64, Cursor};

impl NumColumn {
    /// Appends its saved form (the values).
    pub fn write(&self, out: &mut Vec<u8>) {
        self.values.write(out);
    }

    /// Reads what [`NumColumn::write`] wrote: the same values, one bucket.
    pub fn read(c: &mut Cursor<'_>) -> Option<NumColumn> {
        let values = Values::read(c)?;
        let nonnull: RoaringBitmap = (0..values.len())
            .filter(|i| values.get(*i) != NULL)
            .map(|i| i as u32)
            .collect();
        Some(NumColumn {
            values,
            codes: Vec::new(),
            fine: vec![NULL + 1],
            bounds: vec![NULL + 1],
            lens: vec![nonnull.len()],
            buckets: vec![nonnull.clone()],
            below: Vec::new(),
            nonnull,
        })
    }
}

impl CatColumn {
    /// Appends its saved form: the dictionary, then the codes in their width.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_strs(out, self.dict.iter().map(String::as_str));
        let (width, raw): (u8, Vec<u8>) = match &self.codes {
            Codes::U8(v) => (1, v.clone()),
            Codes::U16(v) => (2, v.iter().flat_map(|c| c.to_le_bytes()).collect()),
            Codes::U32(v) => (4, v.iter().flat_map(|c| c.to_le_bytes()).collect()),
        };
        out.push(width);
        put_bytes(out, &raw);
    }

    /// Reads what [`CatColumn::write`] wrote.
    pub fn read(c: &mut Cursor<'_>) -> Option<CatColumn> {
        let dict: Vec<String> = c.strs()?.into_iter().map(String::from).collect();
        let width = usize::from(c.byte()?);
        let raw = c.bytes()?;
        if !matches!(width, 1 | 2 | 4) || raw.len() % width != 0 {
            return None;
        }
        let codes: Vec<u32> = raw
            .chunks_exact(width)
            .map(|b| match b {
                [x] => u32::from(*x),
                [x, y] => u32::from(u16::from_le_bytes([*x, *y])),
                [a, b2, c2, d] => u32::from_le_bytes([*a, *b2, *c2, *d]),
                _ => 0,
            })
            .collect();
        if codes.iter().any(|x| *x as usize >= dict.len().max(1)) {
            return None;
        }
        Some(CatColumn::from_codes(dict, codes))
    }
}

impl MultiColumn {
    /// Appends its saved form: each value with its rows, then the rows with a value.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut by_index: Vec<(&String, usize)> = self.lookup.iter().map(|(v, i)| (v, *i)).collect();
        by_index.sort_by_key(|(_, i)| *i);
        put_u64(out, by_index.len() as u64);
        for (v, i) in by_index {
            put_bytes(out, v.as_bytes());
            put_bitmap(out, &self.bitmaps[i]);
        }
        put_bitmap(out, &self.nonempty);
    }

    /// Reads what [`MultiColumn::write`] wrote.
    pub fn read(c: &mut Cursor<'_>) -> Option<MultiColumn> {
        let mut lookup = HashMap::new();
        let mut bitmaps = Vec::new();
        for i in 0..c.count()? {
            lookup.insert(c.str()?.to_owned(), i);
            bitmaps.push(c.bitmap()?);
        }
        let nonempty = c.bitmap()?;
        Some(MultiColumn {
            lookup,
            bitmaps,
            nonempty,
        })
    }
}
