//! Little-endian lengths, integers, texts and roaring bitmaps in a byte string: the
//! vocabulary of the engine's saved state (see [`crate::engine::persist`]).

use roaring::RoaringBitmap;

/// Appends `v`.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a length and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a bitmap in roaring's portable format.
pub fn put_bitmap(out: &mut Vec<u8>, b: &RoaringBitmap) {
    let mut bytes = Vec::with_capacity(b.serialized_size());
    // Writing to a Vec cannot fail.
    let _ = b.serialize_into(&mut bytes);
    put_bytes(out, &bytes);
}

/// Appends a count and the texts.
pub fn put_strs<'a>(out: &mut Vec<u8>, strs: impl ExactSizeIterator<Item = &'a str>) {
    put_u64(out, strs.len() as u64);
    for s in strs {
        put_bytes(out, s.as_bytes());
    }
}

/// Reads what the `put_*` functions wrote; every read is `None` past the end or on
/// malformed input.
pub struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, at: 0 }
    }

    /// Whether everything was read.
    pub fn at_end(&self) -> bool {
        self.at == self.b.len()
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        let s = self.b.get(self.at..self.at.checked_add(8)?)?;
        self.at += 8;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }

    /// A count (never more than the bytes there are).
    pub fn count(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok().filter(|n| *n <= self.b.len())
    }

    /// Bytes with their length.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count()?;
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    /// One byte.
    pub fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.at)?;
        self.at += 1;
        Some(x)
    }

    /// A text.
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// Texts with their count.
    pub fn strs(&mut self) -> Option<Vec<Box<str>>> {
        (0..self.count()?).map(|_| self.str().map(Into::into)).collect()
    }

    /// A bitmap.
    pub fn bitmap(&mut self) -> Option<RoaringBitmap> {
        RoaringBitmap::deserialize_from(self.bytes()?).ok()
    }
}
