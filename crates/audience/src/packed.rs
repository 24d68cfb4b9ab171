//! Per-profile facts held compactly: every profile's [`Facts`] as one byte string
//! (variable-length integers, times as differences, repeated text as codes of
//! engine-wide dictionaries), decoded when a row is read or folded and encoded again
//! after. Ten million profiles with a few traits and orders each fit in a few hundred
//! megabytes this way, where the decoded form takes kilobytes a profile.
//!
//! What is a code: trait keys (one dictionary), and the values of order lines and cart
//! products (another) — a shop's catalogue, bounded. What stays inline: trait values,
//! order ids and message ids (a canonical UUID in 16 bytes). Decoding gives back exactly
//! the facts that were encoded ([`FactTable::put`] then [`FactTable::get`] is the
//! identity), so every computed trait is the same as before.

use std::collections::HashMap;

use crate::counter::{CounterId, CounterState};
use crate::dsl::ast::{Duration, DurationUnit};
use crate::facts::{Bought, Facts, LineField, OrderFact, TraitFact};

/// An interner: each distinct text once, by a dense `u32` code.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    names: Vec<Box<str>>,
    codes: HashMap<Box<str>, u32>,
}

impl Dict {
    /// The code of `s`, added when new.
    pub fn code(&mut self, s: &str) -> u32 {
        if let Some(c) = self.codes.get(s) {
            return *c;
        }
        let c = self.names.len() as u32;
        self.names.push(s.into());
        self.codes.insert(s.into(), c);
        c
    }

    /// The text of `code`.
    pub fn name(&self, code: u32) -> Option<&str> {
        self.names.get(code as usize).map(|s| &**s)
    }

    /// Every text, by code.
    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// A dictionary of these texts (codes in order).
    pub fn from_names(names: Vec<Box<str>>) -> Dict {
        let codes = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Dict { names, codes }
    }
}

/// Every profile's facts, encoded, with the dictionaries of their codes.
#[derive(Debug, Default)]
pub struct FactTable {
    rows: Vec<Box<[u8]>>,
    /// Trait keys.
    pub keys: Dict,
    /// Line values (category, brand, sku, product) and cart products.
    pub values: Dict,
}

impl FactTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Gives back the room kept for growth.
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
    }

    /// Adds a row with no facts.
    pub fn push_empty(&mut self) {
        self.rows.push(Box::default());
    }

    /// The facts of `row` (empty when unknown or unreadable).
    pub fn get(&self, row: u32) -> Facts {
        let Some(bytes) = self.rows.get(row as usize) else {
            return Facts::default();
        };
        decode(bytes, self).unwrap_or_else(|| {
            tracing::error!(row, "audience facts unreadable; the profile is read as empty");
            Facts::default()
        })
    }

    /// Replaces the facts of `row`.
    pub fn put(&mut self, row: u32, facts: &Facts) {
        let bytes = encode(facts, self);
        if let Some(slot) = self.rows.get_mut(row as usize) {
            *slot = bytes;
        }
    }

    /// Changes the facts of `row` with `f`.
    pub fn edit<R>(&mut self, row: u32, f: impl FnOnce(&mut Facts) -> R) -> R {
        let mut facts = self.get(row);
        let out = f(&mut facts);
        self.put(row, &facts);
        out
    }

    /// Takes the facts of `row`, leaving it empty (a merged-away profile).
    pub fn take(&mut self, row: u32) -> Facts {
        let facts = self.get(row);
        if let Some(slot) = self.rows.get_mut(row as usize) {
            *slot = Box::default();
        }
        facts
    }

    /// The encoded rows (persisting).
    pub fn raw_rows(&self) -> &[Box<[u8]>] {
        &self.rows
    }

    /// Rebuilt from encoded rows and their dictionaries (loading), checked by decoding
    /// every row, each handed to `seen` with its row; `None` when one does not decode.
    pub fn from_raw(
        rows: Vec<Box<[u8]>>,
        keys: Dict,
        values: Dict,
        mut seen: impl FnMut(u32, &Facts),
    ) -> Option<FactTable> {
        let t = FactTable { rows, keys, values };
        for (row, r) in t.rows.iter().enumerate() {
            seen(row as u32, &decode(r, &t)?);
        }
        Some(t)
    }
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A message id: a canonical lowercase UUID as 16 bytes (tag 1), else its text (tag 0).
fn put_message(out: &mut Vec<u8>, m: &str) {
    match uuid_bytes(m) {
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&b);
        }
        None => {
            out.push(0);
            put_str(out, m);
        }
    }
}

const DASHES: [usize; 4] = [8, 13, 18, 23];

fn uuid_bytes(m: &str) -> Option<[u8; 16]> {
    let b = m.as_bytes();
    if b.len() != 36 || DASHES.iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !DASHES.contains(i))
        .map(|(_, c)| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        });
    for o in &mut out {
        let hi = digits.next()??;
        let lo = digits.next()??;
        *o = hi << 4 | lo;
    }
    Some(out)
}

fn uuid_text(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

fn unit_code(u: DurationUnit) -> u8 {
    match u {
        DurationUnit::Minutes => 1,
        DurationUnit::Hours => 2,
        DurationUnit::Days => 3,
        DurationUnit::Weeks => 4,
    }
}

fn unit_of(c: u8) -> Option<DurationUnit> {
    Some(match c {
        1 => DurationUnit::Minutes,
        2 => DurationUnit::Hours,
        3 => DurationUnit::Days,
        4 => DurationUnit::Weeks,
        _ => return None,
    })
}

fn field_code(f: LineField) -> u64 {
    match f {
        LineField::Category => 0,
        LineField::Brand => 1,
        LineField::Sku => 2,
        LineField::Product => 3,
    }
}

const HAS_TRAITS: u8 = 1 << 4;
const HAS_ORDERS: u8 = 1 << 5;
const HAS_CARTS: u8 = 1 << 6;
const HAS_COUNTERS: u8 = 1 << 7;

/// Encodes `f`; new texts join the table's dictionaries.
fn encode(f: &Facts, t: &mut FactTable) -> Box<[u8]> {
    let times = [f.first_seen, f.last_active, f.registered_at, f.last_sign_in];
    let mut flags = 0u8;
    for (i, x) in times.iter().enumerate() {
        if x.is_some() {
            flags |= 1 << i;
        }
    }
    if !f.traits.is_empty() {
        flags |= HAS_TRAITS;
    }
    if !f.orders.is_empty() {
        flags |= HAS_ORDERS;
    }
    if !f.carts.is_empty() {
        flags |= HAS_CARTS;
    }
    if !f.counters.is_empty() {
        flags |= HAS_COUNTERS;
    }
    if flags == 0 {
        return Box::default();
    }
    let mut out = Vec::with_capacity(64);
    out.push(flags);
    let base = times.iter().flatten().next().copied().unwrap_or(0);
    let mut first = true;
    for x in times.iter().flatten() {
        if first {
            put_i(&mut out, *x);
            first = false;
        } else {
            put_i(&mut out, x.wrapping_sub(base));
        }
    }
    // Message ids, each once: traits set by one call share theirs.
    let mut messages: Vec<&str> = Vec::new();
    fn message<'a>(m: &'a str, messages: &mut Vec<&'a str>) -> u64 {
        match messages.iter().position(|x| *x == m) {
            Some(i) => i as u64,
            None => {
                messages.push(m);
                (messages.len() - 1) as u64
            }
        }
    }
    let mut body = Vec::with_capacity(64);
    if flags & HAS_TRAITS != 0 {
        put_u(&mut body, f.traits.len() as u64);
        for (k, v) in f.traits.iter() {
            put_u(&mut body, u64::from(t.keys.code(k)));
            put_str(&mut body, &v.value);
            put_i(&mut body, v.ts.wrapping_sub(base));
            put_u(&mut body, message(&v.message_id, &mut messages));
        }
    }
    if flags & HAS_ORDERS != 0 {
        put_u(&mut body, f.orders.len() as u64);
        for o in &f.orders {
            put_str(&mut body, &o.order_id);
            put_i(&mut body, o.at.wrapping_sub(base));
            put_i(&mut body, o.total);
            put_i(&mut body, o.refunded);
            let bits =
                u8::from(o.cancelled) | u8::from(o.promo) << 1 | u8::from(!o.adjustments.is_empty()) << 2;
            body.push(bits);
            let entries = o.bought.entries();
            put_u(&mut body, entries.len() as u64);
            for (field, v) in entries {
                put_u(&mut body, u64::from(t.values.code(v)) << 2 | field_code(*field));
            }
            if !o.adjustments.is_empty() {
                put_u(&mut body, o.adjustments.len() as u64);
                for (m, cancel, amount) in &o.adjustments {
                    put_u(&mut body, message(m, &mut messages));
                    body.push(u8::from(*cancel) | u8::from(amount.is_some()) << 1);
                    if let Some(a) = amount {
                        put_i(&mut body, *a);
                    }
                }
            }
        }
    }
    if flags & HAS_CARTS != 0 {
        put_u(&mut body, f.carts.len() as u64);
        let mut prev = base;
        for (ts, p) in &f.carts {
            put_i(&mut body, ts.wrapping_sub(prev));
            prev = *ts;
            put_u(&mut body, u64::from(t.values.code(p)));
        }
    }
    if flags & HAS_COUNTERS != 0 {
        put_u(&mut body, f.counters.len() as u64);
        for (id, c) in f.counters.iter() {
            put_u(&mut body, u64::from(id.0));
            match c.window {
                None => body.push(0),
                Some(d) => {
                    body.push(unit_code(d.unit));
                    put_u(&mut body, u64::from(d.amount));
                }
            }
            put_u(&mut body, c.all);
            put_u(&mut body, c.recent.len() as u64);
            let mut prev = base;
            for ts in &c.recent {
                put_i(&mut body, ts.wrapping_sub(prev));
                prev = *ts;
            }
        }
    }
    if flags & (HAS_TRAITS | HAS_ORDERS) != 0 {
        put_u(&mut out, messages.len() as u64);
        for m in &messages {
            put_message(&mut out, m);
        }
    }
    out.extend_from_slice(&body);
    out.into_boxed_slice()
}

/// Reads what [`encode`] wrote.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.at)?;
        self.at += 1;
        Some(x)
    }

    fn u(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = self.byte()?;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn i(&mut self) -> Option<i64> {
        let v = self.u()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.u()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }

    fn len(&mut self) -> Option<usize> {
        // A count never exceeds the bytes left (every element takes at least one).
        usize::try_from(self.u()?).ok().filter(|n| *n <= self.b.len())
    }

    fn message(&mut self) -> Option<String> {
        match self.byte()? {
            1 => Some(uuid_text(self.bytes(16)?)),
            0 => Some(self.str()?.to_owned()),
            _ => None,
        }
    }
}

fn decode(b: &[u8], t: &FactTable) -> Option<Facts> {
    let mut f = Facts::default();
    if b.is_empty() {
        return Some(f);
    }
    let mut r = Reader { b, at: 0 };
    let flags = r.byte()?;
    let mut base = None;
    let mut times = [None; 4];
    for (i, slot) in times.iter_mut().enumerate() {
        if flags & (1 << i) != 0 {
            let v = match base {
                None => {
                    let v = r.i()?;
                    base = Some(v);
                    v
                }
                Some(b) => b.wrapping_add(r.i()?),
            };
            *slot = Some(v);
        }
    }
    let base = base.unwrap_or(0);
    [f.first_seen, f.last_active, f.registered_at, f.last_sign_in] = times;
    let mut messages = Vec::new();
    if flags & (HAS_TRAITS | HAS_ORDERS) != 0 {
        for _ in 0..r.len()? {
            messages.push(r.message()?);
        }
    }
    let message = |i: u64| messages.get(usize::try_from(i).ok()?).cloned();
    if flags & HAS_TRAITS != 0 {
        for _ in 0..r.len()? {
            let key = t.keys.name(u32::try_from(r.u()?).ok()?)?;
            let value = r.str()?;
            let ts = base.wrapping_add(r.i()?);
            let message_id = message(r.u()?)?;
            f.traits.insert(
                key.into(),
                TraitFact {
                    value: value.into(),
                    ts,
                    message_id: message_id.into(),
                },
            );
        }
    }
    if flags & HAS_ORDERS != 0 {
        for _ in 0..r.len()? {
            let order_id = r.str()?.to_owned();
            let at = base.wrapping_add(r.i()?);
            let total = r.i()?;
            let refunded = r.i()?;
            let bits = r.byte()?;
            let mut entries = Vec::new();
            for _ in 0..r.len()? {
                let x = r.u()?;
                let field = LineField::ALL[(x & 3) as usize];
                let v = t.values.name(u32::try_from(x >> 2).ok()?)?;
                entries.push((field, Box::<str>::from(v)));
            }
            let mut adjustments = Vec::new();
            if bits & 4 != 0 {
                for _ in 0..r.len()? {
                    let m = message(r.u()?)?;
                    let a = r.byte()?;
                    let amount = if a & 2 != 0 { Some(r.i()?) } else { None };
                    adjustments.push((m, a & 1 != 0, amount));
                }
            }
            f.orders.push(OrderFact {
                order_id,
                at,
                total,
                refunded,
                cancelled: bits & 1 != 0,
                promo: bits & 2 != 0,
                bought: Bought::from_entries(entries),
                adjustments,
            });
        }
    }
    if flags & HAS_CARTS != 0 {
        let mut prev = base;
        for _ in 0..r.len()? {
            let ts = prev.wrapping_add(r.i()?);
            prev = ts;
            let p = t.values.name(u32::try_from(r.u()?).ok()?)?;
            f.carts.push((ts, p.to_owned()));
        }
    }
    if flags & HAS_COUNTERS != 0 {
        for _ in 0..r.len()? {
            let id = CounterId(u32::try_from(r.u()?).ok()?);
            let window = match r.byte()? {
                0 => None,
                u => Some(Duration {
                    unit: unit_of(u)?,
                    amount: u32::try_from(r.u()?).ok()?,
                }),
            };
            let all = r.u()?;
            let mut recent = Vec::new();
            let mut prev = base;
            for _ in 0..r.len()? {
                let ts = prev.wrapping_add(r.i()?);
                prev = ts;
                recent.push(ts);
            }
            f.counters.insert(id, CounterState { window, all, recent });
        }
    }
    (r.at == b.len()).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::LineRef;
    use crate::window::days;

    #[test]
    fn facts_come_back_exactly_as_they_were_put() {
        let mut f = Facts::default();
        f.touch(1_700_000_000_000);
        f.touch(1_700_000_500_000);
        f.sign_in(1_700_000_100_000);
        f.sign_up(i64::MIN + 1);
        f.cart_add(1_700_000_200_000, "P1".into());
        f.cart_add(1_600_000_000_000, "商品2".into());
        f.set_trait_text(
            "gender".into(),
            "女".into(),
            5,
            "0b7e8a2c-1d3f-4e5a-8b9c-0d1e2f3a4b5c",
        );
        f.set_trait_text(
            "city".into(),
            "上海".into(),
            5,
            "0b7e8a2c-1d3f-4e5a-8b9c-0d1e2f3a4b5c",
        );
        f.set_trait_text("birthday".into(), "1990-01-02".into(), -7, "M-Not-A-UUID");
        f.set_trait_text(
            "tier".into(),
            "".into(),
            9,
            "0B7E8A2C-1D3F-4E5A-8B9C-0D1E2F3A4B5C",
        );
        let mut o = OrderFact {
            order_id: "O-1".into(),
            at: 1_700_000_300_000,
            total: 12_345,
            refunded: 0,
            cancelled: false,
            promo: true,
            bought: Bought::of_lines([
                LineRef {
                    product_id: Some("P1"),
                    sku: Some("S1"),
                    category: Some("護膚"),
                    brand: Some("后"),
                },
                LineRef {
                    sku: Some("S2"),
                    ..Default::default()
                },
            ]),
            adjustments: vec![],
        };
        o.adjust("r1", false, Some(45));
        o.adjust("c1", true, None);
        f.add_order(o);
        f.add_order(OrderFact {
            order_id: "".into(),
            at: i64::MAX,
            total: -3,
            refunded: 0,
            cancelled: false,
            promo: false,
            bought: Bought::default(),
            adjustments: vec![],
        });
        f.counters
            .entry_or_default(CounterId(3))
            .record(Some(days(7)), 1_700_000_000_001);
        f.counters
            .entry_or_default(CounterId(3))
            .record(Some(days(7)), 1_700_000_000_000);
        f.counters.entry_or_default(CounterId(1)).record(None, 5);
        let mut t = FactTable::default();
        t.push_empty();
        t.push_empty();
        t.put(1, &f);
        assert_eq!(t.get(1), f);
        assert_eq!(t.get(0), Facts::default());
        assert_eq!(t.get(9), Facts::default());
        let mut orders = 0;
        assert!(
            FactTable::from_raw(t.rows.clone(), t.keys.clone(), t.values.clone(), |_, f| orders +=
                f.orders.len())
            .is_some()
        );
        assert_eq!(orders, 2);
        let mut broken = t.rows.clone();
        let cut = broken[1].len() - 1;
        broken[1] = broken[1][..cut].into();
        assert!(FactTable::from_raw(broken, t.keys.clone(), t.values.clone(), |_, _| {}).is_none());
        assert_eq!(t.take(1), f);
        assert_eq!(t.get(1), Facts::default());
    }
}
