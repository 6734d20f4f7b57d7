//! The bucket page: one 4096-byte page of entries whose key hashes share a
//! prefix of `depth` bits. The byte layout is specified in `docs/DESIGN.md`
//! ("EmDict pages"); this file is its only reader and writer.
//!
//! ```text
//! 0      8  sum    xxh3-64 of bytes 8..4096, set at commit
//! 8      1  depth  local depth
//! 9      1  flags  bit 0: overflow page of a chain; bit 1: fixed-width slots
//! 10     2  n      entries
//! 12     2  used   bytes of entry data at the end of the page
//! 14     2  width  fixed-width pages: the slot width; otherwise 0
//! 16     8  next   address of the next page of the chain | 1, or 0
//! 24     n  tags   one byte of each entry's hash
//! 24+n   n  lens   variable-width pages only: each entry's length in bytes;
//!                  0 = an out-of-line record of 24 bytes
//! ...       free
//! 4096-used 4096 entry data: entry 0 ends at 4096, entry i+1 ends where entry i begins
//! ```
//!
//! A variable-width entry is `varint(key_len) key value`; a fixed-width slot
//! is `key_len:u8 value_len:u8 key value zero-padding`, `width` bytes, so
//! entry `i` is found without reading any length.

use crate::alloc::PAGE_SIZE;

pub(crate) const PAGE: usize = PAGE_SIZE;
pub(crate) const HEADER: usize = 24;
const SUM: usize = 0;
const DEPTH: usize = 8;
const FLAGS: usize = 9;
const N: usize = 10;
const USED: usize = 12;
const WIDTH: usize = 14;
const NEXT: usize = 16;

/// Flag bit: the page is an overflow page of a chain, not a chain's head.
pub(crate) const FLAG_OVERFLOW: u8 = 1;
/// Flag bit: the page holds fixed-width slots.
pub(crate) const FLAG_FIXED: u8 = 2;
/// The widest fixed-width slot.
pub(crate) const MAX_WIDTH: usize = 256;
/// The longest inline entry (its length must fit the one-byte `lens` slot).
pub(crate) const MAX_INLINE: usize = 255;
/// The bytes of an out-of-line record: object address, key length, value length.
pub(crate) const REF_LEN: usize = 24;

/// The data length of an entry whose `lens` byte is `b`.
#[inline]
pub(crate) fn entry_len(b: u8) -> usize {
    if b == 0 { REF_LEN } else { b as usize }
}

/// Bytes a new entry of data length `len` takes in a variable-width page: tag, length, data.
#[inline]
pub(crate) fn footprint(len: usize) -> usize {
    2 + len
}

/// The slot width an entry needs in a fixed-width page, if it can have one.
#[inline]
pub(crate) fn slot_width(klen: usize, vlen: usize) -> Option<usize> {
    let w = 2 + klen + vlen;
    (klen <= 255 && vlen <= 255 && w <= MAX_WIDTH).then_some(w)
}

/// Appends the LEB128 varint of `v` to `out` at `at`; returns the bytes written.
#[inline]
pub(crate) fn put_varint(out: &mut [u8], at: usize, mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[at + i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[at + i] = v as u8;
    i + 1
}

/// The bytes of the varint of `v`.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint; `None` if it is truncated or too long.
#[inline]
pub(crate) fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// One entry's data, as stored in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored<'a> {
    /// Key and value bytes inside the page.
    Inline { key: &'a [u8], value: &'a [u8] },
    /// Key and value in one object elsewhere: key bytes, then value bytes.
    OutOfLine { addr: u64, klen: u64, vlen: u64 },
}

/// A read-only view of a bucket page whose header was validated.
#[derive(Clone, Copy)]
pub(crate) struct Bucket<'a> {
    page: &'a [u8],
    n: usize,
    used: usize,
    /// Slot width of a fixed-width page; 0 for a variable-width one.
    width: usize,
}

#[inline]
fn u16_at(p: &[u8], at: usize) -> usize {
    u16::from_le_bytes([p[at], p[at + 1]]) as usize
}

#[cold]
#[inline(never)]
fn overrun(what: &str, i: usize) -> String {
    format!("{what} {i} overruns the entry data")
}

#[cold]
#[inline(never)]
fn bad_key_length(i: usize) -> String {
    format!("entry {i} has a bad key length")
}

#[cold]
#[inline(never)]
fn slot_overrun(i: usize, klen: usize, vlen: usize, w: usize) -> String {
    format!("slot {i} claims {klen} + {vlen} bytes in {w}")
}

/// Eight bytes as a little-endian word.
#[inline]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// `b` in every byte of a word.
#[inline]
fn splat(b: u8) -> u64 {
    u64::from(b) * 0x0101_0101_0101_0101
}

/// The high bit of each byte of `x` that is zero (exactly those).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    let low = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & low) + low) | x | low)
}

/// A key looked up, with its first and last eight bytes as words when it
/// has 8 to 16 bytes (a `u64` key mostly does), so a candidate slot's key is
/// compared in two word compares instead of a `memcmp` call.
struct Key<'k> {
    bytes: &'k [u8],
    first: u64,
    last: u64,
}

impl<'k> Key<'k> {
    #[inline]
    fn new(bytes: &'k [u8]) -> Key<'k> {
        let n = bytes.len();
        let (first, last) = if (8..=16).contains(&n) { (word(&bytes[..8]), word(&bytes[n - 8..])) } else { (0, 0) };
        Key { bytes, first, last }
    }

    /// Whether `stored` begins with this key (`stored` is at least as long).
    #[inline]
    fn equals(&self, stored: &[u8]) -> bool {
        let n = self.bytes.len();
        match stored.get(..n) {
            Some(s) if (8..=16).contains(&n) => word(&s[..8]) == self.first && word(&s[n - 8..]) == self.last,
            Some(s) if n < 8 => s.iter().zip(self.bytes).all(|(a, b)| a == b),
            Some(s) => s == self.bytes,
            None => false,
        }
    }
}

#[inline]
fn u64_at(p: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(p[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> Bucket<'a> {
    /// Validates the header of `page` (4096 bytes): the counts fit the page.
    #[inline]
    pub(crate) fn new(page: &'a [u8]) -> Result<Bucket<'a>, String> {
        debug_assert_eq!(page.len(), PAGE);
        let n = u16_at(page, N);
        let used = u16_at(page, USED);
        if page[FLAGS] & FLAG_FIXED != 0 {
            let width = u16_at(page, WIDTH);
            if !(2..=MAX_WIDTH).contains(&width) || used != n * width || HEADER + n + used > PAGE {
                return Err(format!("fixed-width bucket header claims {n} slots of {width} bytes in {used}"));
            }
            return Ok(Bucket { page, n, used, width });
        }
        if HEADER + 2 * n + used > PAGE {
            return Err(format!("bucket header claims {n} entries in {used} bytes"));
        }
        Ok(Bucket { page, n, used, width: 0 })
    }

    /// The slot width of a fixed-width page, or `None`.
    #[cfg(test)]
    pub(crate) fn width(&self) -> Option<usize> {
        (self.width != 0).then_some(self.width)
    }

    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The address of the page's first byte, to turn slices of it into offsets.
    #[inline]
    pub(crate) fn page_ptr(&self) -> usize {
        self.page.as_ptr() as usize
    }

    pub(crate) fn depth(&self) -> u32 {
        u32::from(self.page[DEPTH])
    }

    pub(crate) fn flags(&self) -> u8 {
        self.page[FLAGS]
    }

    pub(crate) fn used(&self) -> usize {
        self.used
    }

    pub(crate) fn stored_sum(&self) -> u64 {
        u64_at(self.page, SUM)
    }

    /// The next page of the chain.
    pub(crate) fn next(&self) -> Option<u64> {
        let v = u64_at(self.page, NEXT);
        (v & 1 == 1).then_some(v & !1)
    }

    /// Free bytes between the arrays and the entry data.
    #[inline]
    pub(crate) fn free(&self) -> usize {
        let arrays = if self.width != 0 { self.n } else { 2 * self.n };
        PAGE - HEADER - arrays - self.used
    }

    /// Whether an entry with these lengths (and variable-width data length
    /// `len`) fits once an entry of data length `old_len` is removed.
    pub(crate) fn has_room_without(&self, old_len: usize, klen: usize, vlen: usize, len: usize, inline: bool) -> bool {
        if self.width != 0 {
            // Removing an entry frees a slot.
            inline && slot_width(klen, vlen).is_some_and(|w| w <= self.width)
        } else {
            self.free() + footprint(old_len) >= footprint(len)
        }
    }

    /// Whether an entry with these lengths (and variable-width data length `len`) fits.
    #[inline]
    pub(crate) fn has_room(&self, klen: usize, vlen: usize, len: usize, inline: bool) -> bool {
        if self.width != 0 {
            inline && slot_width(klen, vlen).is_some_and(|w| w <= self.width) && self.free() > self.width
        } else {
            self.free() >= footprint(len)
        }
    }

    #[inline]
    pub(crate) fn tags(&self) -> &'a [u8] {
        &self.page[HEADER..HEADER + self.n]
    }

    /// Per entry, its `lens` byte (a fixed-width page has no array: every
    /// slot is `width` bytes).
    #[inline]
    pub(crate) fn lens(&self) -> &'a [u8] {
        if self.width != 0 { &[] } else { &self.page[HEADER + self.n..HEADER + 2 * self.n] }
    }

    /// The end offset of entry `i`: `PAGE` minus the lengths of entries `0..i`.
    #[inline]
    pub(crate) fn end_of(&self, i: usize) -> usize {
        if self.width != 0 {
            return PAGE - i * self.width;
        }
        // A u16 sum vectorizes well; a valid page's lengths sum to at most 4096,
        // and damaged lengths give an end that `entry_at` rejects.
        let sum = self.lens()[..i]
            .iter()
            .fold(0u16, |a, &b| a.wrapping_add(if b == 0 { REF_LEN as u16 } else { u16::from(b) }));
        PAGE.saturating_sub(usize::from(sum))
    }

    /// Entry `i`, whose data ends at `end` (from [`end_of`](Self::end_of) or
    /// the previous entry's start).
    #[inline]
    pub(crate) fn entry_at(&self, i: usize, end: usize) -> Result<(Stored<'a>, usize), String> {
        if self.width != 0 {
            return self.slot_at(i, end);
        }
        let b = self.lens()[i];
        let len = entry_len(b);
        let start = end.checked_sub(len).filter(|&s| s >= PAGE - self.used && end <= PAGE);
        let Some(start) = start else {
            return Err(overrun("entry", i));
        };
        let data = &self.page[start..end];
        if b == 0 {
            let (addr, klen, vlen) = (u64_at(data, 0), u64_at(data, 8), u64_at(data, 16));
            return Ok((Stored::OutOfLine { addr, klen, vlen }, start));
        }
        let varint = if data[0] < 0x80 { Some((u64::from(data[0]), 1)) } else { get_varint(data) };
        match varint {
            Some((klen, vl)) if klen <= (len - vl) as u64 => {
                let (key, value) = data[vl..].split_at(klen as usize);
                Ok((Stored::Inline { key, value }, start))
            }
            _ => Err(bad_key_length(i)),
        }
    }

    #[inline]
    fn slot_at(&self, i: usize, end: usize) -> Result<(Stored<'a>, usize), String> {
        let w = self.width;
        let start = end.checked_sub(w).filter(|&s| s >= PAGE - self.used && end <= PAGE);
        let Some(start) = start else {
            return Err(overrun("slot", i));
        };
        let data = &self.page[start..end];
        let (klen, vlen) = (data[0] as usize, data[1] as usize);
        if 2 + klen + vlen > w {
            return Err(slot_overrun(i, klen, vlen, w));
        }
        let key = &data[2..2 + klen];
        let value = &data[2 + klen..2 + klen + vlen];
        Ok((Stored::Inline { key, value }, start))
    }

    /// Key and value of slot `i` of a fixed-width page, the slot ending at
    /// `end` (`PAGE - i·width`), and where the slot starts; `None` if the
    /// page is not fixed width, `i` is past the last slot or the slot's
    /// lengths overrun it (then [`entry_at`](Self::entry_at) names the fault).
    #[inline]
    pub(crate) fn fixed_slot(&self, i: usize, end: usize) -> Option<(&'a [u8], &'a [u8], usize)> {
        let w = self.width;
        if w == 0 || i >= self.n {
            return None;
        }
        let start = end.checked_sub(w)?;
        let slot = self.page.get(start..end)?;
        let klen = slot[0] as usize;
        let (key, rest) = slot[2..].split_at_checked(klen)?;
        Some((key, rest.get(..slot[1] as usize)?, start))
    }

    /// Whether the page holds fixed-width slots and is the only page of its bucket.
    #[inline]
    pub(crate) fn is_lone_fixed(&self) -> bool {
        self.width != 0 && u64_at(self.page, NEXT) & 1 == 0
    }

    /// In a fixed-width page: the value of the entry whose key is `key` and
    /// whose tag is `tag`. Sixteen tags are compared per step (two words;
    /// the last step reads past the tags, inside the page, and ignores what
    /// it finds there), and a slot is only read for a matching tag.
    #[inline]
    pub(crate) fn find_fixed(&self, tag: u8, key: &[u8]) -> Result<Option<&'a [u8]>, String> {
        debug_assert!(self.width != 0);
        let key = Key::new(key);
        let pattern = splat(tag);
        let mut base = 0;
        while base < self.n {
            // A valid fixed-width header has 24 + n + 2·n <= 4096, so 16 bytes from n fit.
            let g = &self.page[HEADER + base..HEADER + base + 16];
            let (lo, hi) = (zero_bytes(word(&g[..8]) ^ pattern), zero_bytes(word(&g[8..]) ^ pattern));
            if lo | hi != 0 {
                for (mut hits, at) in [(lo, base), (hi, base + 8)] {
                    while hits != 0 {
                        let i = at + (hits.trailing_zeros() / 8) as usize;
                        if i >= self.n {
                            return Ok(None);
                        }
                        if let Some(v) = self.slot_value(i, &key)? {
                            return Ok(Some(v));
                        }
                        hits &= hits - 1;
                    }
                }
            }
            base += 16;
        }
        Ok(None)
    }

    /// The value in slot `i` (`i < n`) of a fixed-width page if its key is `key`.
    #[inline]
    fn slot_value(&self, i: usize, key: &Key<'_>) -> Result<Option<&'a [u8]>, String> {
        let w = self.width;
        // `Bucket::new` checked that n slots of `w` bytes fit the page.
        let slot = &self.page[PAGE - (i + 1) * w..PAGE - i * w];
        let klen = slot[0] as usize;
        if klen != key.bytes.len() || !key.equals(&slot[2..]) {
            return Ok(None);
        }
        match slot[2 + klen..].get(..slot[1] as usize) {
            Some(value) => Ok(Some(value)),
            None => Err(slot_overrun(i, klen, slot[1] as usize, w)),
        }
    }

    /// Calls `f(i)` for every entry whose tag is `tag`, until `f` returns `Some`.
    #[inline]
    pub(crate) fn find_tag<R>(&self, tag: u8, mut f: impl FnMut(usize) -> Option<R>) -> Option<R> {
        let tags = self.tags();
        let pattern = u64::from(tag) * 0x0101_0101_0101_0101;
        let mut chunks = tags.chunks_exact(8);
        let mut base = 0;
        for chunk in &mut chunks {
            let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ pattern;
            // High bit of each byte set exactly where x's byte is zero.
            let low = 0x7f7f_7f7f_7f7f_7f7f;
            let mut hits = !(((x & low) + low) | x | low);
            while hits != 0 {
                let i = base + (hits.trailing_zeros() / 8) as usize;
                if let Some(r) = f(i) {
                    return Some(r);
                }
                hits &= hits - 1;
            }
            base += 8;
        }
        for (j, &t) in chunks.remainder().iter().enumerate() {
            if t == tag
                && let Some(r) = f(base + j)
            {
                return Some(r);
            }
        }
        None
    }
}

/// A writable bucket page.
pub(crate) struct BucketMut<'a> {
    page: &'a mut [u8],
}

impl<'a> BucketMut<'a> {
    pub(crate) fn new(page: &'a mut [u8]) -> Self {
        debug_assert_eq!(page.len(), PAGE);
        BucketMut { page }
    }

    /// Makes the page an empty bucket of local depth `depth`, with fixed-width
    /// slots of `width` bytes if `width` is given.
    pub(crate) fn init(&mut self, depth: u32, flags: u8, width: Option<usize>) {
        self.page[..HEADER].fill(0);
        self.page[DEPTH] = depth as u8;
        self.page[FLAGS] = flags;
        if let Some(w) = width {
            debug_assert!((2..=MAX_WIDTH).contains(&w));
            self.page[FLAGS] |= FLAG_FIXED;
            self.page[WIDTH..WIDTH + 2].copy_from_slice(&(w as u16).to_le_bytes());
        }
    }

    fn n(&self) -> usize {
        u16_at(self.page, N)
    }

    fn width(&self) -> usize {
        if self.page[FLAGS] & FLAG_FIXED != 0 { u16_at(self.page, WIDTH) } else { 0 }
    }

    fn used(&self) -> usize {
        u16_at(self.page, USED)
    }

    fn set_counts(&mut self, n: usize, used: usize) {
        self.page[N..N + 2].copy_from_slice(&(n as u16).to_le_bytes());
        self.page[USED..USED + 2].copy_from_slice(&(used as u16).to_le_bytes());
    }

    pub(crate) fn set_depth(&mut self, depth: u32) {
        self.page[DEPTH] = depth as u8;
    }

    pub(crate) fn set_next(&mut self, next: Option<u64>) {
        let v = next.map_or(0, |a| a | 1);
        self.page[NEXT..NEXT + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn set_sum(&mut self, sum: u64) {
        self.page[SUM..SUM + 8].copy_from_slice(&sum.to_le_bytes());
    }

    /// Appends an entry of `len` data bytes with `tag` and `lens` byte `b`;
    /// returns the data bytes to fill. The caller checked that it fits.
    #[inline]
    pub(crate) fn append(&mut self, tag: u8, b: u8, len: usize) -> &mut [u8] {
        let (n, used) = (self.n(), self.used());
        debug_assert!(HEADER + 2 * (n + 1) + used + len <= PAGE);
        self.page.copy_within(HEADER + n..HEADER + 2 * n, HEADER + n + 1);
        self.page[HEADER + n] = tag;
        self.page[HEADER + 2 * n + 1] = b;
        self.set_counts(n + 1, used + len);
        let start = PAGE - used - len;
        &mut self.page[start..start + len]
    }

    /// Appends an inline entry: a slot in a fixed-width page, else varint
    /// key length, key, value. The caller checked that it fits.
    #[inline]
    pub(crate) fn append_inline(&mut self, tag: u8, key: &[u8], value: &[u8]) {
        let w = self.width();
        if w != 0 {
            let (n, used) = (self.n(), self.used());
            debug_assert!(HEADER + n + 1 + used + w <= PAGE && 2 + key.len() + value.len() <= w);
            self.page[HEADER + n] = tag;
            self.set_counts(n + 1, used + w);
            let start = PAGE - used - w;
            let out = &mut self.page[start..start + w];
            out[0] = key.len() as u8;
            out[1] = value.len() as u8;
            out[2..2 + key.len()].copy_from_slice(key);
            out[2 + key.len()..2 + key.len() + value.len()].copy_from_slice(value);
            out[2 + key.len() + value.len()..].fill(0);
            return;
        }
        let vl = varint_len(key.len() as u64);
        let len = vl + key.len() + value.len();
        debug_assert!(len <= MAX_INLINE);
        let out = self.append(tag, len as u8, len);
        put_varint(out, 0, key.len() as u64);
        out[vl..vl + key.len()].copy_from_slice(key);
        out[vl + key.len()..].copy_from_slice(value);
    }

    /// Appends an out-of-line record.
    pub(crate) fn append_ref(&mut self, tag: u8, addr: u64, klen: u64, vlen: u64) {
        let out = self.append(tag, 0, REF_LEN);
        out[0..8].copy_from_slice(&addr.to_le_bytes());
        out[8..16].copy_from_slice(&klen.to_le_bytes());
        out[16..24].copy_from_slice(&vlen.to_le_bytes());
    }

    /// Removes entry `i`, whose data is `[start, start + len)`. In a
    /// variable-width page the entries after it keep their order; in a
    /// fixed-width page the last entry moves into its slot.
    pub(crate) fn remove(&mut self, i: usize, start: usize, len: usize) {
        let (n, used) = (self.n(), self.used());
        let low = PAGE - used;
        if self.width() != 0 {
            // Fixed width: the last slot takes the removed one's place.
            if i + 1 != n {
                self.page.copy_within(low..low + len, start);
                self.page[HEADER + i] = self.page[HEADER + n - 1];
            }
            self.set_counts(n - 1, used - len);
            return;
        }
        self.page.copy_within(low..start, low + len);
        self.page.copy_within(HEADER + i + 1..HEADER + n + i, HEADER + i);
        self.page.copy_within(HEADER + n + i + 1..HEADER + 2 * n, HEADER + n + i - 1);
        self.set_counts(n - 1, used - len);
    }

    /// The page's bytes covered by the checksum.
    pub(crate) fn summed(&self) -> &[u8] {
        &self.page[8..]
    }

    #[cfg(test)]
    pub(crate) fn as_ref(&self) -> Bucket<'_> {
        Bucket::new(self.page).expect("a page this handle wrote is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, u64::MAX] {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, 0, v);
            assert_eq!(n, varint_len(v));
            assert_eq!(get_varint(&buf[..n]), Some((v, n)));
        }
        assert_eq!(get_varint(&[0x80, 0x80]), None);
    }

    #[test]
    fn append_find_remove_keep_the_rest() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(3, 0, None);
        for i in 0..40u8 {
            b.append_inline(i % 5, &[i; 3], &vec![i; i as usize]);
        }
        b.append_ref(7, 0x5000, 10, 20);
        let view = b.as_ref();
        assert_eq!(view.len(), 41);
        let mut seen = Vec::new();
        view.find_tag(2, |i| {
            seen.push(i);
            None::<()>
        });
        assert_eq!(seen, (0..40).filter(|i| i % 5 == 2).collect::<Vec<_>>());
        let end = view.end_of(40);
        assert_eq!(view.entry_at(40, end).unwrap().0, Stored::OutOfLine { addr: 0x5000, klen: 10, vlen: 20 });
        // Remove entry 10; entry 11 moves to index 10 intact.
        let end10 = view.end_of(10);
        let (_, start10) = view.entry_at(10, end10).unwrap();
        b.remove(10, start10, end10 - start10);
        let view = b.as_ref();
        assert_eq!(view.len(), 40);
        let (e, _) = view.entry_at(10, view.end_of(10)).unwrap();
        assert_eq!(e, Stored::Inline { key: &[11; 3], value: &[11; 11] });
        assert_eq!(view.tags()[10], 11 % 5);
        let (e, _) = view.entry_at(39, view.end_of(39)).unwrap();
        assert_eq!(e, Stored::OutOfLine { addr: 0x5000, klen: 10, vlen: 20 });
    }
}

#[cfg(test)]
mod fixed_tests {
    use super::*;

    #[test]
    fn find_fixed_finds_every_key_and_nothing_else() {
        // Keys of 1..=24 bytes cover the byte loop, the two-word compare and
        // the slice compare; tags repeat so that most candidates are false.
        let key = |i: usize| (0..1 + i % 24).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>();
        for count in [0, 1, 15, 16, 17, 40, 100] {
            let mut page = vec![0u8; PAGE];
            let mut b = BucketMut::new(&mut page);
            b.init(1, 0, Some(2 + 24 + 8));
            for i in 0..count {
                b.append_inline((i % 4) as u8, &key(i), &(i as u64).to_le_bytes());
            }
            // Bytes past the tags that equal a tag must be ignored.
            let view = b.as_ref();
            for i in 0..count {
                let v = view.find_fixed((i % 4) as u8, &key(i)).unwrap();
                assert_eq!(v, Some(&(i as u64).to_le_bytes()[..]), "count {count} entry {i}");
                assert_eq!(view.find_fixed((i % 4) as u8 + 1, &key(i + 1000)).unwrap(), None);
            }
            assert_eq!(view.find_fixed(0, &[0xee; 9]).unwrap(), None);
            assert_eq!(view.find_fixed(0, &[]).unwrap(), None);
        }
    }

    #[test]
    fn fixed_slot_walks_the_slots_and_leaves_faults_to_entry_at() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(1, 0, Some(10));
        for i in 0..3u8 {
            b.append_inline(i, &[i; 3], &[i + 10; 2]);
        }
        let view = b.as_ref();
        let mut end = PAGE;
        for i in 0..3u8 {
            let (key, value, start) = view.fixed_slot(i as usize, end).unwrap();
            assert_eq!((key, value, start), (&[i; 3][..], &[i + 10; 2][..], end - 10));
            end = start;
        }
        assert_eq!(view.fixed_slot(3, end), None);
        page[PAGE - 10 + 1] = 6; // slot 0: 3 + 6 bytes in a slot of 10
        let view = Bucket::new(&page).unwrap();
        assert_eq!(view.fixed_slot(0, PAGE), None);
        assert!(view.entry_at(0, PAGE).is_err());
        let mut variable = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut variable);
        b.init(1, 0, None);
        b.append_inline(1, &[1], &[2]);
        assert_eq!(b.as_ref().fixed_slot(0, PAGE), None);
    }

    #[test]
    fn find_fixed_reports_a_slot_that_overruns() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(1, 0, Some(8));
        b.append_inline(9, &[1, 2], &[3]);
        page[PAGE - 8 + 1] = 7; // value length 7 in a slot of 8 with a key of 2
        let view = Bucket::new(&page).unwrap();
        assert!(view.find_fixed(9, &[1, 2]).is_err());
    }

    #[test]
    fn fixed_width_slots_append_find_remove() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(2, 0, Some(12));
        for i in 0..50u8 {
            b.append_inline(i % 3, &[i; 4], &vec![i; (i % 6) as usize]);
        }
        let view = b.as_ref();
        assert_eq!((view.len(), view.width(), view.used()), (50, Some(12), 600));
        let (e, start) = view.entry_at(7, view.end_of(7)).unwrap();
        assert_eq!(e, Stored::Inline { key: &[7; 4], value: &[7; 1] });
        b.remove(7, start, 12);
        let view = b.as_ref();
        assert_eq!(view.len(), 49);
        // The last slot (49) took the place of slot 7.
        assert_eq!(view.entry_at(7, view.end_of(7)).unwrap().0, Stored::Inline { key: &[49; 4], value: &[49; 1] });
        assert_eq!(view.tags()[7], 49 % 3);
        assert_eq!(view.entry_at(8, view.end_of(8)).unwrap().0, Stored::Inline { key: &[8; 4], value: &[8; 2] });
        assert!(view.has_room(4, 6, 11, true));
        assert!(!view.has_room(4, 7, 12, true));
        assert!(!view.has_room(4, 6, 11, false));
    }
}
