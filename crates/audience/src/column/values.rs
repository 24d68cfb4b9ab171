//! The values of a numeric column in the narrowest width that holds them: each row
//! stores `value − base` in 1, 2 or 4 bytes (the width's largest number meaning null),
//! or the value itself in 8 bytes. Counts, ages and scores take a byte, money and ratios
//! four, instants eight — instead of eight bytes for everything.
//!
//! A value that does not fit widens (or re-centres) the whole column, leaving room on
//! both sides (a quarter of the width at least), so that happens a few times in a
//! column's life, not per row.

/// Null, as the column's callers write it.
pub const NULL: i64 = i64::MIN;

/// Row values in a chosen width.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// 0 while every row is null (no bytes), else 1, 2, 4 or 8.
    width: usize,
    /// Added to a stored number (widths below 8).
    base: i64,
    /// Rows covered.
    len: usize,
    bytes: Vec<u8>,
}

/// The largest number of `width` bytes: null (widths below 8).
fn top(width: usize) -> u64 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

impl Values {
    /// From one value per row ([`NULL`] for null), in the narrowest width.
    pub fn from_vec(values: &[i64]) -> Values {
        let mut out = Values::default();
        out.refit(values.iter().copied(), values.len(), None);
        out
    }

    /// Rows covered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it covers no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn null_raw(&self) -> u64 {
        if self.width == 8 {
            NULL as u64
        } else {
            top(self.width)
        }
    }

    fn raw(&self, i: usize) -> u64 {
        let w = self.width;
        let s = &self.bytes[i * w..i * w + w];
        match w {
            1 => u64::from(s[0]),
            2 => u64::from(u16::from_le_bytes([s[0], s[1]])),
            4 => u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            _ => u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        }
    }

    fn put_raw(&mut self, i: usize, r: u64) {
        let w = self.width;
        self.bytes[i * w..i * w + w].copy_from_slice(&r.to_le_bytes()[..w]);
    }

    /// The value of row `i` ([`NULL`] when null or beyond the end).
    pub fn get(&self, i: usize) -> i64 {
        if i >= self.len || self.width == 0 {
            return NULL;
        }
        let r = self.raw(i);
        match self.width {
            8 => r as i64,
            w if r == top(w) => NULL,
            _ => self.base.wrapping_add(r as i64),
        }
    }

    /// `v` as stored in the current width, if it fits.
    fn encode(&self, v: i64) -> Option<u64> {
        if v == NULL {
            return (self.width > 0).then(|| self.null_raw());
        }
        match self.width {
            0 => None,
            8 => Some(v as u64),
            w => {
                let d = i128::from(v) - i128::from(self.base);
                (d >= 0 && (d as u128) < u128::from(top(w))).then_some(d as u64)
            }
        }
    }

    /// Sets row `i` to `v` (growing the column with nulls as needed).
    pub fn set(&mut self, i: usize, v: i64) {
        if i >= self.len {
            self.grow(i + 1);
        }
        if v == NULL && self.width == 0 {
            return;
        }
        let r = match self.encode(v) {
            Some(r) => r,
            None => {
                let all: Vec<i64> = (0..self.len).map(|j| self.get(j)).collect();
                self.refit(all.into_iter(), self.len, Some(v));
                match self.encode(v) {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        self.put_raw(i, r);
    }

    /// Grows to `n` rows of null, keeping about an eighth spare.
    fn grow(&mut self, n: usize) {
        if self.width > 0 {
            let need = n * self.width;
            if need > self.bytes.capacity() {
                let extra = (need - self.bytes.len()).max(self.bytes.len() / 8).max(1024);
                self.bytes.reserve_exact(extra);
            }
            let null = self.null_raw().to_le_bytes();
            while self.bytes.len() < need {
                self.bytes.extend_from_slice(&null[..self.width]);
            }
        }
        self.len = n;
    }

    /// Re-encodes `len` rows of `values` (and room for `extra`) in the narrowest width
    /// that holds them with a margin on both sides.
    fn refit(&mut self, values: impl Iterator<Item = i64> + Clone, len: usize, extra: Option<i64>) {
        let present = values.clone().filter(|v| *v != NULL).chain(extra);
        let (lo, hi) = present.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (width, base) = if lo > hi {
            (0, 0)
        } else {
            let range = (i128::from(hi) - i128::from(lo)) as u128;
            match [1usize, 2, 4]
                .into_iter()
                .find(|w| range < u128::from(top(*w)) / 2)
            {
                Some(w) => {
                    let spare = (u128::from(top(w)) - 1 - range) / 2;
                    (
                        w,
                        (i128::from(lo) - spare as i128).max(i128::from(i64::MIN + 1)) as i64,
                    )
                }
                None => (8, 0),
            }
        };
        self.width = width;
        self.base = base;
        self.len = len;
        self.bytes = Vec::with_capacity(len * width);
        if width > 0 {
            let null = self.null_raw().to_le_bytes();
            for v in values.take(len) {
                let r = self.encode(v).unwrap_or(u64::from_le_bytes(null));
                self.bytes.extend_from_slice(&r.to_le_bytes()[..width]);
            }
        }
    }

    /// Appends its saved form: width, base, rows, bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.width as u8);
        crate::bytes::put_u64(out, self.base as u64);
        crate::bytes::put_u64(out, self.len as u64);
        crate::bytes::put_bytes(out, &self.bytes);
    }

    /// Reads what [`Values::write`] wrote.
    pub fn read(c: &mut crate::bytes::Cursor<'_>) -> Option<Values> {
        let width = usize::from(c.byte()?);
        let base = c.u64()? as i64;
        let len = usize::try_from(c.u64()?).ok()?;
        let bytes = c.bytes()?.to_vec();
        let fits = matches!(width, 0 | 1 | 2 | 4 | 8) && len.checked_mul(width) == Some(bytes.len());
        fits.then_some(Values {
            width,
            base,
            len,
            bytes,
        })
    }

    /// Gives back the room kept for growth.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> u64 {
        self.bytes.capacity() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_widen_and_recentre_without_changing_any() {
        let mut v = Values::default();
        let mut truth: Vec<i64> = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let put = |v: &mut Values, truth: &mut Vec<i64>, i: usize, val: i64| {
            if truth.len() <= i {
                truth.resize(i + 1, NULL);
            }
            truth[i] = val;
            v.set(i, val);
        };
        for i in 0..300 {
            put(&mut v, &mut truth, i, (next() % 50) as i64);
        }
        assert_eq!(v.width, 1);
        put(&mut v, &mut truth, 310, NULL);
        put(&mut v, &mut truth, 5, -40);
        put(&mut v, &mut truth, 6, 1_000);
        assert_eq!(v.width, 2);
        put(&mut v, &mut truth, 7, 5_000_000);
        assert_eq!(v.width, 4);
        put(&mut v, &mut truth, 8, 1_735_660_800_000);
        put(&mut v, &mut truth, 9, i64::MAX);
        put(&mut v, &mut truth, 10, i64::MIN + 1);
        assert_eq!(v.width, 8);
        put(&mut v, &mut truth, 11, NULL);
        for (i, t) in truth.iter().enumerate() {
            assert_eq!(v.get(i), *t, "row {i}");
        }
        assert_eq!(v.get(truth.len() + 3), NULL);
        let back = Values::from_vec(&truth);
        for (i, t) in truth.iter().enumerate() {
            assert_eq!(back.get(i), *t, "row {i}");
        }
        let narrow = Values::from_vec(&[NULL, 3, 1, NULL]);
        assert_eq!((narrow.width, narrow.len()), (1, 4));
        assert_eq!(
            (0..4).map(|i| narrow.get(i)).collect::<Vec<_>>(),
            [NULL, 3, 1, NULL]
        );
        let empty = Values::from_vec(&[NULL, NULL]);
        assert_eq!((empty.width, empty.get(1)), (0, NULL));
    }
}
