//! The bucket page: one 4096-byte page of entries whose key hashes share a
//! prefix of `depth` bits. The byte layout is specified in `docs/DESIGN.md`
//! ("EmDict pages"); this file is its only reader and writer.
//!
//! ```text
//! 0      8  sum    xxh3-64 of bytes 8..4096, set at commit
//! 8      1  depth  local depth
//! 9      1  flags  bit 0: overflow page of a chain; bit 1: hashed slots;
//!                  bit 2: packed integers (with bit 1, width 16)
//! 10     2  n      entries
//! 12     2  used   bytes of entry data (hashed pages: n·width)
//! 14     2  width  hashed pages: the slot width; otherwise 0
//! 16     8  next   address of the next page of the chain | 1, or 0
//! variable-width pages:
//! 24     n  tags   one byte of each entry's hash
//! 24+n   n  lens   each entry's length in bytes; 0 = an out-of-line record of 24 bytes
//! ...       free
//! 4096-used 4096 entry data: entry 0 ends at 4096, entry i+1 ends where entry i begins
//! hashed pages (an open-addressed table of C = 4072 / (width + 1) slots):
//! 24     C  tags   per slot: 0 = empty, else the entry's hash's low byte (0 -> 1)
//! ...       free
//! 4096-(i+1)·width  slot i
//! ```
//!
//! A variable-width entry is `varint(key_len) key value`; a hashed slot is
//! `key_len:u8 value_len:u8 key value zero-padding`, `width` bytes, or in a
//! packed page `key:u64 value:u64`, each the number whose canonical varint
//! is the stored postcard bytes.

use std::ops::Deref;

use crate::alloc::{PAGE_SIZE, match_byte16, match_tag_empty16, prefetch};
use crate::codec::{gather, varint_block};

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
/// Flag bit: the page is a hashed table of fixed-width slots.
pub(crate) const FLAG_FIXED: u8 = 2;
/// Flag bit (with [`FLAG_FIXED`]): every key and value is one canonical
/// varint, stored as a `u64` in slots of [`PACKED_WIDTH`] bytes.
pub(crate) const FLAG_PACKED: u8 = 4;
/// The slot width of a packed page: key and value as `u64`.
pub(crate) const PACKED_WIDTH: usize = 16;
/// The slots of a packed page.
pub(crate) const PACKED_CAP: usize = capacity(PACKED_WIDTH);
/// The widest fixed-width slot.
pub(crate) const MAX_WIDTH: usize = 256;
/// The longest inline entry (its length must fit the one-byte `lens` slot).
pub(crate) const MAX_INLINE: usize = 255;
/// The bytes of an out-of-line record: object address, key length, value length.
pub(crate) const REF_LEN: usize = 24;

/// Slots of a hashed page of slot width `w`: a tag byte and `w` bytes each.
#[inline]
pub(crate) const fn capacity(w: usize) -> usize {
    (PAGE - HEADER) / (w + 1)
}

/// [`capacity`] per width, so a lookup does not divide.
static CAPACITY: [u16; MAX_WIDTH + 1] = {
    let mut t = [0u16; MAX_WIDTH + 1];
    let mut w = 1;
    while w <= MAX_WIDTH {
        t[w] = capacity(w) as u16;
        w += 1;
    }
    t
};

/// The most entries a hashed page of `cap` slots holds: 7/8 of them, so a
/// probe soon meets an empty slot.
#[inline]
pub(crate) const fn max_load(cap: usize) -> usize {
    cap - cap / 8
}

/// The home slot of hash `h` in a table of `cap` slots: from bits 8..32,
/// which neither the tag (bits 0..8) nor the directory (the top bits, at
/// most 32) uses.
#[inline]
pub(crate) fn home(h: u64, cap: usize) -> usize {
    ((((h >> 8) & 0xff_ffff) * cap as u64) >> 24) as usize
}

/// The first empty slot (tag 0) of `tags` at or after `start`, wrapping
/// to slot 0; eight tags at a time (a probe at a page's maximum load passes
/// long runs of full slots).
#[inline]
fn first_empty(tags: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    for (from, to) in [(start, tags.len()), (0, start)] {
        let mut i = from;
        while let Some(group) = tags.get(i..i + 8).filter(|_| i + 8 <= to) {
            let w = u64::from_le_bytes(group.try_into().expect("8 bytes"));
            // The lowest byte that is 0 sets its high bit here (higher bytes may too, spuriously).
            let zero = w.wrapping_sub(ONES) & !w & (ONES << 7);
            if zero != 0 {
                return Some(i + zero.trailing_zeros() as usize / 8);
            }
            i += 8;
        }
        if let Some(j) = tags[i..to].iter().position(|&t| t == 0) {
            return Some(i + j);
        }
    }
    None
}

/// The most pages of one bucket (`docs/DESIGN.md`, "EmDict pages", Elastic buckets).
pub(crate) const K_MAX: usize = 8;

/// The page of a bucket of `k` pages that hash `h` selects, and the hash as
/// that page sees it: with `x` = bits 8..32 of `h`, the page is
/// `(x · k) >> 24` and bits 8..32 of the page's hash are the fraction
/// `(x · k) & 0xFF_FFFF`, from which [`home`] takes the home slot. Other
/// bits (the tag's, the directory's) are `h`'s. For `k = 1` it is
/// `(0, h)`: a one-page bucket is a format-2 bucket.
#[inline]
pub(crate) fn select(h: u64, k: usize) -> (usize, u64) {
    let y = ((h >> 8) & 0xff_ffff) * k as u64;
    ((y >> 24) as usize, (h & !(0xff_ffff << 8)) | ((y & 0xff_ffff) << 8))
}

/// The tag of hash `h` in a hashed page: its low byte, 0 taken as 1 (0 marks an empty slot).
#[inline]
pub(crate) fn tag_of(h: u64) -> u8 {
    (h as u8).max(1)
}

/// The layout of a page: how its entries are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Entries of any size, packed from the page's end.
    Variable,
    /// A hashed table of slots of this width.
    Fixed(usize),
    /// A hashed table of `u64` key and value pairs.
    Packed,
}

impl Format {
    /// The entries a fresh page of this format takes before it is full,
    /// for entries of `footprint` bytes in a variable-width page.
    pub(crate) fn per_page(self, footprint: usize) -> usize {
        match self {
            Format::Variable => (PAGE - HEADER) / footprint.max(1),
            Format::Fixed(w) => max_load(capacity(w)),
            Format::Packed => max_load(capacity(PACKED_WIDTH)),
        }
    }
}

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

/// The number `b` encodes if `b` is exactly one canonical (minimal) LEB128
/// varint of a `u64`, as postcard writes every integer type; else `None`.
/// Re-encoding the number gives `b` back, byte for byte. Eight bytes are
/// checked and gathered at once, without a loop.
#[inline]
pub(crate) fn as_packed(b: &[u8]) -> Option<u64> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = b.len();
    if n == 0 || n > 10 {
        return None;
    }
    if n <= 8 {
        // Every byte but the last continues; the last is not 0 unless it is the only one.
        let w = short_word(b);
        let last = (w >> (8 * (n - 1))) as u8;
        let ok = w & HIGH == HIGH & ((1u64 << (8 * (n - 1))) - 1) && (last != 0 || n == 1);
        return ok.then(|| gather(w));
    }
    let w = word(&b[..8]);
    if w & HIGH != HIGH {
        return None;
    }
    let b8 = b[8];
    if n == 9 {
        return (b8 != 0 && b8 < 0x80).then(|| gather(w) | u64::from(b8) << 56);
    }
    // Ten bytes: the last holds the 64th bit only.
    let b9 = b[9];
    (b8 >= 0x80 && b9 == 1).then(|| gather(w) | u64::from(b8 & 0x7f) << 56 | 1 << 63)
}

/// Up to eight bytes as a little-endian word, zero above them.
#[inline]
fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        let lo = u64::from(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")));
        let hi = u64::from(u32::from_le_bytes(b[n - 4..].try_into().expect("4 bytes")));
        lo | hi << (8 * (n - 4))
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << (8 * (n / 2)) | u64::from(b[n - 1]) << (8 * (n - 1))
    } else {
        0
    }
}

/// The canonical varint of a number, on the stack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Varint {
    buf: [u8; 16],
    len: u8,
}

impl Varint {
    #[inline]
    pub(crate) fn new(v: u64) -> Varint {
        let (buf, len) = varint_block(v);
        Varint { buf, len: len as u8 }
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// Key or value bytes: in the store, or re-encoded from a packed slot.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bytes<'a> {
    Slice(&'a [u8]),
    Varint(Varint),
}

impl Deref for Bytes<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Slice(s) => s,
            Bytes::Varint(v) => v.bytes(),
        }
    }
}

/// One entry's data, as stored in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored<'a> {
    /// Key and value bytes inside the page.
    Inline { key: &'a [u8], value: &'a [u8] },
    /// Key and value in one object elsewhere: key bytes, then value bytes.
    OutOfLine { addr: u64, klen: u64, vlen: u64 },
    /// A slot of a packed page: the numbers whose varints are the key and value.
    Packed { key: u64, value: u64 },
}

impl<'a> Stored<'a> {
    /// The key bytes of an entry stored in the page (`None` if out of line).
    #[inline]
    pub(crate) fn inline_key(&self) -> Option<Bytes<'a>> {
        match *self {
            Stored::Inline { key, .. } => Some(Bytes::Slice(key)),
            Stored::Packed { key, .. } => Some(Bytes::Varint(Varint::new(key))),
            Stored::OutOfLine { .. } => None,
        }
    }

    /// The value bytes of an entry stored in the page (`None` if out of line).
    #[inline]
    pub(crate) fn inline_value(&self) -> Option<Bytes<'a>> {
        match *self {
            Stored::Inline { value, .. } => Some(Bytes::Slice(value)),
            Stored::Packed { value, .. } => Some(Bytes::Varint(Varint::new(value))),
            Stored::OutOfLine { .. } => None,
        }
    }
}

/// An entry of a page, as walked by [`Bucket::next_entry`]: its index (a
/// slot of a hashed page, a position in a variable one), its data, and
/// the bytes it takes in the page's entry data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub i: usize,
    pub stored: Stored<'a>,
    pub len: usize,
}

/// A position in a walk over a page's entries: in a variable-width page,
/// the next entry and where its data ends; in a hashed page, the next group
/// of sixteen slots to read and the occupied slots of the group read last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    i: usize,
    end: usize,
    base: usize,
    occupied: u32,
}

impl Cursor {
    pub(crate) const START: Cursor = Cursor { i: 0, end: PAGE, base: 0, occupied: 0 };
}

/// A read-only view of a bucket page whose header was validated.
#[derive(Clone, Copy)]
pub(crate) struct Bucket<'a> {
    page: &'a [u8; PAGE],
    n: usize,
    used: usize,
    /// Slot width of a hashed page; 0 for a variable-width one.
    width: usize,
    /// Slots of a hashed page; 0 for a variable-width one.
    cap: usize,
    packed: bool,
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

#[cold]
#[inline(never)]
fn bad_hashed_header(n: usize, width: usize, used: usize, flags: u8) -> String {
    format!("hashed bucket header claims {n} slots of {width} bytes in {used} (flags {flags:#x})")
}

/// Eight bytes as a little-endian word.
#[inline]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// A key looked up, with its first and last eight bytes as words when it
/// has 8 to 16 bytes, so a candidate slot's key is compared in two word
/// compares instead of a `memcmp` call.
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

/// The layout hint of a hashed page: `capacity << 16 | width`; 0 for none.
#[inline]
fn layout_code(width: usize, cap: usize) -> u32 {
    ((cap as u32) << 16) | width as u32
}

/// Starts loading, at once, the cache lines a lookup of hash `h` in the
/// hashed page `page` would read if the page has the layout `code` (from
/// [`Bucket::layout`]): the header, the home tag window and the home slot.
/// A wrong layout only loads lines that are not used.
#[inline]
pub(crate) fn prefetch_lookup(page: &[u8], h: u64, code: u32) {
    let (cap, width) = ((code >> 16) as usize, (code & 0xffff) as usize);
    let at = home(h, cap);
    prefetch(page, 0);
    prefetch(page, HEADER + at + 15);
    prefetch(page, PAGE.wrapping_sub((at + 1) * width));
}

impl<'a> Bucket<'a> {
    /// Validates the header of `page` (4096 bytes): the counts fit the page.
    #[inline]
    pub(crate) fn new(page: &'a [u8]) -> Result<Bucket<'a>, String> {
        let Ok(page) = <&[u8; PAGE]>::try_from(page) else {
            return Err(format!("a page of {} bytes", page.len()));
        };
        // Bytes 8..16 (depth, flags, n, used, width) as one word.
        let head = u64_at(page, DEPTH);
        let field = |at: usize, bytes: usize| ((head >> (8 * (at - DEPTH))) & ((1 << (8 * bytes)) - 1)) as usize;
        let (flags, n, used) = (field(FLAGS, 1) as u8, field(N, 2), field(USED, 2));
        if flags & (FLAG_FIXED | FLAG_PACKED) != 0 {
            let width = field(WIDTH, 2);
            let packed = flags & FLAG_PACKED != 0;
            let cap = CAPACITY.get(width).map_or(0, |&c| c as usize);
            if width < 2
                || flags & FLAG_FIXED == 0
                || (packed && width != PACKED_WIDTH)
                || n >= cap
                || used != n * width
            {
                return Err(bad_hashed_header(n, width, used, flags));
            }
            return Ok(Bucket { page, n, used, width, cap, packed });
        }
        if HEADER + 2 * n + used > PAGE {
            return Err(format!("bucket header claims {n} entries in {used} bytes"));
        }
        Ok(Bucket { page, n, used, width: 0, cap: 0, packed: false })
    }

    /// The page as a lone packed page (the usual page of a dict of
    /// integers), if its header says it is one: flags exactly those of a
    /// packed head page, slot width 16, `n` below the capacity, `used = 16 n`,
    /// no next page. The header's bytes 8..16 are checked in one compare
    /// (the depth aside). `None` for every other page, damaged ones too:
    /// [`new`](Self::new) then reads it and reports any damage.
    #[inline]
    pub(crate) fn lone_packed(page: &'a [u8; PAGE]) -> Option<Bucket<'a>> {
        const FLAGS_WANT: u64 = (FLAG_FIXED | FLAG_PACKED) as u64;
        let head = u64_at(page, DEPTH);
        let n = (head >> 16) & 0xffff;
        let want = (PACKED_WIDTH as u64) << 48 | (n * PACKED_WIDTH as u64) << 32 | n << 16 | FLAGS_WANT << 8;
        let ok = head & !0xff == want && (n as usize) < PACKED_CAP && u64_at(page, NEXT) & 1 == 0;
        ok.then_some(Bucket {
            page,
            n: n as usize,
            used: n as usize * PACKED_WIDTH,
            width: PACKED_WIDTH,
            cap: PACKED_CAP,
            packed: true,
        })
    }

    /// The page's format.
    pub(crate) fn format(&self) -> Format {
        match (self.width, self.packed) {
            (0, _) => Format::Variable,
            (_, true) => Format::Packed,
            (w, false) => Format::Fixed(w),
        }
    }

    /// The slot width of a hashed page; 0 for a variable-width one.
    #[inline]
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The layout code of a hashed page, for [`prefetch_lookup`]; 0 otherwise.
    #[inline]
    pub(crate) fn layout(&self) -> u32 {
        layout_code(self.width, self.cap)
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

    /// Whether the page is a hashed table.
    #[inline(always)]
    pub(crate) fn is_hashed(&self) -> bool {
        self.width != 0
    }

    /// Free bytes between the arrays and the entry data of a variable-width page.
    #[inline]
    pub(crate) fn free(&self) -> usize {
        PAGE - HEADER - 2 * self.n - self.used
    }

    /// Bytes the page's entries take, counting a hashed page's unusable
    /// slots (past the maximum load) to its entries: for estimating sizes.
    pub(crate) fn footprint(&self) -> usize {
        if self.width != 0 { self.n * (PAGE - HEADER) / max_load(self.cap) } else { PAGE - HEADER - self.free() }
    }

    /// Whether an entry of `size` fits once an entry of data length
    /// `old_len` is removed.
    pub(crate) fn has_room_without(&self, old_len: usize, size: &EntrySize) -> bool {
        if self.width != 0 {
            // Removing an entry frees a slot.
            self.fits_slot(size)
        } else {
            self.free() + footprint(old_len) >= footprint(size.len())
        }
    }

    /// Whether an entry of `size` fits.
    #[inline]
    pub(crate) fn has_room(&self, size: &EntrySize) -> bool {
        if self.width != 0 {
            self.n < max_load(self.cap) && self.fits_slot(size)
        } else {
            self.free() >= footprint(size.len())
        }
    }

    /// Whether an entry of `size` can have a slot of this hashed page.
    #[inline]
    pub(crate) fn fits_slot(&self, size: &EntrySize) -> bool {
        if self.packed {
            size.packable
        } else {
            size.inline && slot_width(size.klen, size.vlen).is_some_and(|w| w <= self.width)
        }
    }

    /// The tags of a variable-width page, per entry; of a hashed page, per slot.
    #[inline]
    pub(crate) fn tags(&self) -> &'a [u8] {
        let count = if self.width != 0 { self.cap } else { self.n };
        &self.page[HEADER..HEADER + count]
    }

    /// Per entry of a variable-width page, its `lens` byte.
    #[inline]
    fn lens(&self) -> &'a [u8] {
        &self.page[HEADER + self.n..HEADER + 2 * self.n]
    }

    /// The end offset of entry `i` of a variable-width page: `PAGE` minus
    /// the lengths of entries `0..i`.
    #[inline]
    pub(crate) fn end_of(&self, i: usize) -> usize {
        debug_assert_eq!(self.width, 0);
        // A u16 sum vectorizes well; a valid page's lengths sum to at most 4096,
        // and damaged lengths give an end that `entry_at` rejects.
        let sum = self.lens()[..i]
            .iter()
            .fold(0u16, |a, &b| a.wrapping_add(if b == 0 { REF_LEN as u16 } else { u16::from(b) }));
        PAGE.saturating_sub(usize::from(sum))
    }

    /// The next entry at or after `c`, advancing `c` past it; `None` after
    /// the last. A hashed page's entries come in slot order.
    #[inline]
    pub(crate) fn next_entry(&self, c: &mut Cursor) -> Option<Result<Entry<'a>, String>> {
        if self.width != 0 {
            let i = self.next_occupied(c)?;
            return Some(self.slot(i).map(|stored| Entry { i, stored, len: self.width }));
        }
        if c.i >= self.n {
            return None;
        }
        let i = c.i;
        let r = self.entry_at(i, c.end).map(|(stored, start)| {
            let len = c.end - start;
            c.end = start;
            Entry { i, stored, len }
        });
        c.i += 1;
        Some(r)
    }

    /// The next occupied slot of a hashed page at or after `c`, advancing
    /// `c` past it. Sixteen tags at a time: the occupied slots as bits,
    /// taken in order without a branch per empty slot.
    #[inline(always)]
    pub(crate) fn next_occupied(&self, c: &mut Cursor) -> Option<usize> {
        while c.occupied == 0 {
            if c.i >= self.cap {
                return None;
            }
            let group = self.page[HEADER + c.i..HEADER + c.i + 16].try_into().expect("16 bytes");
            let valid = (self.cap - c.i).min(16);
            c.occupied = !match_byte16(group, 0) & (u32::MAX >> (32 - valid));
            c.base = c.i;
            c.i += valid;
        }
        let i = c.base + c.occupied.trailing_zeros() as usize;
        c.occupied &= c.occupied - 1;
        Some(i)
    }

    /// Entry `i` of a variable-width page, whose data ends at `end` (from
    /// [`end_of`](Self::end_of) or the previous entry's start).
    #[inline]
    pub(crate) fn entry_at(&self, i: usize, end: usize) -> Result<(Stored<'a>, usize), String> {
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

    /// Slot `i` (`i < cap`, its tag not 0) of a hashed page.
    #[inline(always)]
    pub(crate) fn slot(&self, i: usize) -> Result<Stored<'a>, String> {
        let w = self.width;
        let start = PAGE - (i + 1) * w;
        let data = &self.page[start..start + w];
        if self.packed {
            return Ok(Stored::Packed { key: u64_at(data, 0), value: u64_at(data, 8) });
        }
        let (klen, vlen) = (data[0] as usize, data[1] as usize);
        if 2 + klen + vlen > w {
            return Err(slot_overrun(i, klen, vlen, w));
        }
        Ok(Stored::Inline { key: &data[2..2 + klen], value: &data[2 + klen..2 + klen + vlen] })
    }

    /// Whether the page is hashed and the only page of its bucket.
    #[inline]
    pub(crate) fn is_lone_hashed(&self) -> bool {
        self.width != 0 && u64_at(self.page, NEXT) & 1 == 0
    }

    /// Calls `f(i)` for every slot `i` of a hashed page whose tag is that
    /// of `h`, in probe order from `h`'s home slot up to the first empty
    /// slot, until `f` returns `Some`. Sixteen tags are compared per step
    /// (the step at the table's end reads past the tags, inside the page,
    /// and ignores what it finds there); at most every slot once, so a
    /// damaged page without an empty slot ends too.
    #[inline]
    pub(crate) fn probe<R>(&self, h: u64, mut f: impl FnMut(usize) -> Option<R>) -> Option<R> {
        let (cap, tag) = (self.cap, tag_of(h));
        let mut pos = home(h, cap);
        let mut left = cap;
        loop {
            // HEADER + cap + 16 <= PAGE for every width (the slots take more than 16 bytes).
            let group = self.page[HEADER + pos..HEADER + pos + 16].try_into().expect("16 bytes");
            let valid = (cap - pos).min(16);
            let live = u32::MAX >> (32 - valid);
            let (hits, empty) = match_tag_empty16(group, tag);
            let (mut hits, empty) = (hits & live, empty & live);
            if empty != 0 {
                hits &= (empty & empty.wrapping_neg()) - 1;
            }
            while hits != 0 {
                if let Some(r) = f(pos + hits.trailing_zeros() as usize) {
                    return Some(r);
                }
                hits &= hits - 1;
            }
            if empty != 0 || left <= valid {
                return None;
            }
            left -= valid;
            pos += valid;
            if pos == cap {
                pos = 0;
            }
        }
    }

    /// Whether the page is packed.
    #[inline]
    pub(crate) fn is_packed(&self) -> bool {
        self.packed
    }

    /// In a hashed page: the slot and entry whose key is `key` (hash `h`).
    #[inline]
    pub(crate) fn find_hashed(&self, h: u64, key: &[u8]) -> Result<Option<(usize, Stored<'a>)>, String> {
        debug_assert!(self.width != 0);
        if self.packed {
            let Some(k) = as_packed(key) else {
                return Ok(None);
            };
            return Ok(self.find_packed(h, k).map(|(i, value)| (i, Stored::Packed { key: k, value })));
        }
        let key = Key::new(key);
        let w = self.width;
        let hit = self.probe(h, |i| {
            let slot = &self.page[PAGE - (i + 1) * w..PAGE - i * w];
            let klen = slot[0] as usize;
            if klen != key.bytes.len() || !key.equals(&slot[2..]) {
                return None;
            }
            Some(match slot[2 + klen..].get(..slot[1] as usize) {
                Some(value) => Ok((i, Stored::Inline { key: &slot[2..2 + klen], value })),
                None => Err(slot_overrun(i, klen, slot[1] as usize, w)),
            })
        });
        hit.transpose()
    }

    /// In a packed page: the slot and value of key `k` (hash `h`).
    ///
    /// Three steps, each with well-predicted branches, so that lookups in a
    /// loop overlap their cache misses: the home slot (most keys are there;
    /// its tag and key are read at once), then the first slot whose tag
    /// matches among the sixteen from the home slot on, before an empty one
    /// (the key, or no match before an empty slot: the key is absent);
    /// anything else (a false tag match, a run of full slots) takes the
    /// whole [`probe`](Self::probe), out of line.
    #[inline(always)]
    pub(crate) fn find_packed(&self, h: u64, k: u64) -> Option<(usize, u64)> {
        let (page, cap) = (self.page, self.cap);
        let at = home(h, cap);
        let slot = PAGE - (at + 1) * PACKED_WIDTH;
        if page[HEADER + at] == tag_of(h) && u64_at(page, slot) == k {
            return Some((at, u64_at(page, slot + 8)));
        }
        // As in `probe`: the group lies in the page; tags past the table's end are masked off.
        let group = page[HEADER + at..HEADER + at + 16].try_into().expect("16 bytes");
        let live = u32::MAX >> (32 - (cap - at).min(16));
        let (hits, empty) = match_tag_empty16(group, tag_of(h));
        let (hits, empty) = (hits & live, empty & live);
        // The matching tags before the first empty slot (all, if none is empty).
        let hits = hits & (empty & empty.wrapping_neg()).wrapping_sub(1);
        if hits != 0 {
            let i = at + hits.trailing_zeros() as usize;
            let slot = PAGE - (i + 1) * PACKED_WIDTH;
            if u64_at(page, slot) == k {
                return Some((i, u64_at(page, slot + 8)));
            }
        } else if empty != 0 {
            return None;
        }
        Bucket::probe_packed(page, cap, h, k)
    }

    /// [`find_packed`](Self::find_packed) by the whole probe, in the packed
    /// page `page` of `cap` slots (passed by value: the caller's view stays in registers).
    #[inline(never)]
    fn probe_packed(page: &'a [u8; PAGE], cap: usize, h: u64, k: u64) -> Option<(usize, u64)> {
        let b = Bucket { page, n: 0, used: 0, width: PACKED_WIDTH, cap, packed: true };
        b.probe(h, |i| {
            let at = PAGE - (i + 1) * PACKED_WIDTH;
            (u64_at(page, at) == k).then(|| (i, u64_at(page, at + 8)))
        })
    }

    /// The key bytes of slot `i` of a hashed page (for its hash).
    fn slot_key(&self, i: usize) -> Bytes<'a> {
        let start = PAGE - (i + 1) * self.width;
        if self.packed {
            return Bytes::Varint(Varint::new(u64_at(self.page, start)));
        }
        let klen = (self.page[start] as usize).min(self.width - 2);
        Bytes::Slice(&self.page[start + 2..start + 2 + klen])
    }

    /// Whether the entry in slot `i`, whose home slot is `home`, is reachable
    /// by a probe: no empty slot lies from its home up to it.
    pub(crate) fn reachable(&self, i: usize, home: usize) -> bool {
        let tags = self.tags();
        let mut j = home;
        for _ in 0..self.cap {
            if j == i {
                return true;
            }
            if tags[j] == 0 {
                return false;
            }
            j = if j + 1 == self.cap { 0 } else { j + 1 };
        }
        false
    }

    /// Calls `f(i)` for every entry whose tag is `tag`, in a variable-width
    /// page, until `f` returns `Some`.
    #[inline]
    pub(crate) fn find_tag<R>(&self, tag: u8, mut f: impl FnMut(usize) -> Option<R>) -> Option<R> {
        debug_assert_eq!(self.width, 0);
        // A valid header has 24 + 2·n <= 4096 (each entry has a tag and a
        // length), so the tags rounded up to whole groups of 16 lie
        // inside the page; bits past the last tag are ignored.
        let groups = &self.page[HEADER..HEADER + self.n.next_multiple_of(16)];
        for (g, group) in groups.chunks_exact(16).enumerate() {
            let mut hits = match_byte16(group.try_into().expect("16 bytes"), tag);
            while hits != 0 {
                let i = 16 * g + hits.trailing_zeros() as usize;
                if i >= self.n {
                    return None;
                }
                if let Some(r) = f(i) {
                    return Some(r);
                }
                hits &= hits - 1;
            }
        }
        None
    }
}

/// The sizes of an entry: key and value lengths, whether it is stored
/// inline, and whether it can go in a packed page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntrySize {
    pub klen: usize,
    pub vlen: usize,
    pub inline: bool,
    /// Key and value are each one canonical varint (see [`as_packed`]).
    pub packable: bool,
}

impl EntrySize {
    /// The sizes of an entry of these lengths, not packable.
    #[inline]
    pub(crate) fn new(klen: usize, vlen: usize) -> EntrySize {
        EntrySize { klen, vlen, inline: varint_len(klen as u64) + klen + vlen <= MAX_INLINE, packable: false }
    }

    /// The sizes of the entry `key`, `value`.
    #[inline]
    pub(crate) fn of_pair(key: &[u8], value: &[u8]) -> EntrySize {
        let packable = as_packed(key).is_some() && as_packed(value).is_some();
        EntrySize { packable, ..EntrySize::new(key.len(), value.len()) }
    }

    pub(crate) fn of(s: &Stored<'_>) -> EntrySize {
        match *s {
            Stored::Inline { key, value } => EntrySize::of_pair(key, value),
            Stored::OutOfLine { klen, vlen, .. } => {
                EntrySize { klen: klen as usize, vlen: vlen as usize, inline: false, packable: false }
            }
            Stored::Packed { key, value } => {
                EntrySize { packable: true, ..EntrySize::new(varint_len(key), varint_len(value)) }
            }
        }
    }

    /// Its data length in a variable-width page.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.inline { varint_len(self.klen as u64) + self.klen + self.vlen } else { REF_LEN }
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

    /// Makes the page an empty bucket of local depth `depth` in `format`.
    pub(crate) fn init(&mut self, depth: u32, flags: u8, format: Format) {
        self.page[..HEADER].fill(0);
        self.page[DEPTH] = depth as u8;
        self.page[FLAGS] = flags;
        let (w, extra) = match format {
            Format::Variable => return,
            Format::Fixed(w) => (w, FLAG_FIXED),
            Format::Packed => (PACKED_WIDTH, FLAG_FIXED | FLAG_PACKED),
        };
        debug_assert!((2..=MAX_WIDTH).contains(&w));
        self.page[FLAGS] |= extra;
        self.page[WIDTH..WIDTH + 2].copy_from_slice(&(w as u16).to_le_bytes());
        self.page[HEADER..HEADER + capacity(w)].fill(0);
    }

    fn n(&self) -> usize {
        u16_at(self.page, N)
    }

    fn width(&self) -> usize {
        if self.page[FLAGS] & FLAG_FIXED != 0 { u16_at(self.page, WIDTH) } else { 0 }
    }

    fn packed(&self) -> bool {
        self.page[FLAGS] & FLAG_PACKED != 0
    }

    fn used(&self) -> usize {
        u16_at(self.page, USED)
    }

    fn set_counts(&mut self, n: usize, used: usize) {
        self.page[N..N + 2].copy_from_slice(&(n as u16).to_le_bytes());
        self.page[USED..USED + 2].copy_from_slice(&(used as u16).to_le_bytes());
    }

    pub(crate) fn set_next(&mut self, next: Option<u64>) {
        let v = next.map_or(0, |a| a | 1);
        self.page[NEXT..NEXT + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn set_sum(&mut self, sum: u64) {
        self.page[SUM..SUM + 8].copy_from_slice(&sum.to_le_bytes());
    }

    /// Appends an entry of `len` data bytes with `tag` and `lens` byte `b`
    /// to a variable-width page; returns the data bytes to fill. The caller
    /// checked that it fits.
    #[inline]
    fn append(&mut self, tag: u8, b: u8, len: usize) -> &mut [u8] {
        let (n, used) = (self.n(), self.used());
        debug_assert!(HEADER + 2 * (n + 1) + used + len <= PAGE);
        self.page.copy_within(HEADER + n..HEADER + 2 * n, HEADER + n + 1);
        self.page[HEADER + n] = tag;
        self.page[HEADER + 2 * n + 1] = b;
        self.set_counts(n + 1, used + len);
        let start = PAGE - used - len;
        &mut self.page[start..start + len]
    }

    /// Adds an inline entry of hash `h`: in its probe's first empty slot in
    /// a hashed page, else appended as varint key length, key, value. The
    /// caller checked that it fits (in a packed page: that it is packable)
    /// and that its key is absent. `Err` if a hashed page has no empty slot
    /// although its header says it has room (damage).
    #[inline]
    pub(crate) fn append_inline(&mut self, h: u64, key: &[u8], value: &[u8]) -> Result<(), String> {
        let w = self.width();
        if w != 0 {
            let start = self.claim_slot(h, w)?;
            let packed = self.packed();
            let out = &mut self.page[start..start + w];
            if packed {
                let (k, v) = (as_packed(key).unwrap_or(0), as_packed(value).unwrap_or(0));
                debug_assert!(as_packed(key).is_some() && as_packed(value).is_some());
                out[..8].copy_from_slice(&k.to_le_bytes());
                out[8..].copy_from_slice(&v.to_le_bytes());
                return Ok(());
            }
            debug_assert!(2 + key.len() + value.len() <= w);
            out[0] = key.len() as u8;
            out[1] = value.len() as u8;
            out[2..2 + key.len()].copy_from_slice(key);
            out[2 + key.len()..2 + key.len() + value.len()].copy_from_slice(value);
            out[2 + key.len() + value.len()..].fill(0);
            return Ok(());
        }
        let vl = varint_len(key.len() as u64);
        let len = vl + key.len() + value.len();
        debug_assert!(len <= MAX_INLINE);
        let out = self.append(h as u8, len as u8, len);
        put_varint(out, 0, key.len() as u64);
        out[vl..vl + key.len()].copy_from_slice(key);
        out[vl + key.len()..].copy_from_slice(value);
        Ok(())
    }

    /// Takes the first empty slot of a hashed page of width `w` in the probe
    /// of hash `h` for a new entry (its tag and the counts are set); returns
    /// the offset of the slot's bytes. `Err` if there is none (damage: the
    /// caller checked that the page has room).
    #[inline]
    fn claim_slot(&mut self, h: u64, w: usize) -> Result<usize, String> {
        let cap = capacity(w);
        let (n, used) = (self.n(), self.used());
        debug_assert!(n + 1 < cap);
        let Some(i) = first_empty(&self.page[HEADER..HEADER + cap], home(h, cap)) else {
            return Err(format!("no empty slot among {cap}, with {n} entries"));
        };
        self.page[HEADER + i] = tag_of(h);
        self.set_counts(n + 1, used + w);
        Ok(PAGE - (i + 1) * w)
    }

    /// Whether this is a packed page with room for another entry.
    #[inline]
    pub(crate) fn packed_room(&self) -> bool {
        self.packed() && self.n() < max_load(capacity(PACKED_WIDTH))
    }

    /// Adds the entry of hash `h` whose key and value are the numbers `k` and
    /// `v` to a packed page with room ([`packed_room`](Self::packed_room)):
    /// [`append_inline`](Self::append_inline) without the varints.
    #[inline]
    pub(crate) fn append_words(&mut self, h: u64, k: u64, v: u64) -> Result<(), String> {
        let start = self.claim_slot(h, PACKED_WIDTH)?;
        self.page[start..start + 8].copy_from_slice(&k.to_le_bytes());
        self.page[start + 8..start + 16].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    /// Appends an out-of-line record to a variable-width page.
    pub(crate) fn append_ref(&mut self, h: u64, addr: u64, klen: u64, vlen: u64) {
        let out = self.append(h as u8, 0, REF_LEN);
        out[0..8].copy_from_slice(&addr.to_le_bytes());
        out[8..16].copy_from_slice(&klen.to_le_bytes());
        out[16..24].copy_from_slice(&vlen.to_le_bytes());
    }

    /// Overwrites the value of an inline entry whose value bytes lie at
    /// `at` (a packed slot's value word: then `value` is packable) with
    /// `value` of the same length.
    pub(crate) fn set_value(&mut self, at: usize, value: &[u8]) {
        if self.packed() {
            let v = as_packed(value).unwrap_or(0);
            self.page[at..at + 8].copy_from_slice(&v.to_le_bytes());
        } else {
            self.page[at..at + value.len()].copy_from_slice(value);
        }
    }

    /// Removes entry `i`, whose data is `[start, start + len)`. In a
    /// variable-width page the entries after it keep their order; in a
    /// hashed page the entries after it in its probe run move back (the
    /// backward-shift deletion of linear probing: no tombstones), which
    /// needs each one's home slot, from `hash` of its key.
    pub(crate) fn remove(&mut self, i: usize, start: usize, len: usize, hash: impl Fn(&[u8]) -> u64) {
        let (n, used) = (self.n(), self.used());
        let w = self.width();
        if w != 0 {
            self.remove_slot(i, w, hash);
            self.set_counts(n - 1, used - w);
            return;
        }
        let low = PAGE - used;
        self.page.copy_within(low..start, low + len);
        self.page.copy_within(HEADER + i + 1..HEADER + n + i, HEADER + i);
        self.page.copy_within(HEADER + n + i + 1..HEADER + 2 * n, HEADER + n + i - 1);
        self.set_counts(n - 1, used - len);
    }

    /// Empties slot `i` of a hashed page of width `w`, moving back the
    /// entries after it that a probe from their home would no longer reach.
    fn remove_slot(&mut self, i: usize, w: usize, hash: impl Fn(&[u8]) -> u64) {
        let cap = capacity(w);
        let (mut hole, mut j) = (i, i);
        for _ in 0..cap {
            j = if j + 1 == cap { 0 } else { j + 1 };
            if self.page[HEADER + j] == 0 {
                break;
            }
            let view = Bucket {
                page: (&*self.page).try_into().expect("a page"),
                n: 0,
                used: 0,
                width: w,
                cap,
                packed: self.packed(),
            };
            let at = home(hash(&view.slot_key(j)), cap);
            // The entry stays if its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < at && at <= j } else { hole < at || at <= j };
            if stays {
                continue;
            }
            self.page[HEADER + hole] = self.page[HEADER + j];
            let (from, to) = (PAGE - (j + 1) * w, PAGE - (hole + 1) * w);
            self.page.copy_within(from..from + w, to);
            hole = j;
        }
        self.page[HEADER + hole] = 0;
        self.page[PAGE - (hole + 1) * w..PAGE - hole * w].fill(0);
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

    fn hash(k: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(k, 7)
    }

    #[test]
    fn one_page_selection_is_the_format_2_home() {
        for i in 0..10_000u64 {
            let h = hash(&i.to_le_bytes());
            assert_eq!(select(h, 1), (0, h));
            assert_eq!(home(select(h, 1).1, 239), home(h, 239));
        }
    }

    #[test]
    fn selection_spreads_hashes_over_pages_in_order_and_keeps_tag_and_top_bits() {
        for k in 1..=K_MAX {
            let mut counts = vec![0usize; k];
            let mut last = (0, 0);
            // Hashes in increasing order of bits 8..32 select pages in order,
            // and, within a page, home slots in order.
            for x in (0..1u64 << 24).step_by(4099) {
                let h = 0xabcd_0000_0000_0000 | (x << 8) | 0x5a;
                let (p, local) = select(h, k);
                assert!(p < k);
                assert_eq!((local as u8, local >> 32), (0x5a, h >> 32));
                let at = (p, home(local, 239));
                assert!(at >= last, "k {k}: {at:?} after {last:?}");
                last = at;
                counts[p] += 1;
            }
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 1, "k {k}: pages get {counts:?}");
        }
    }

    /// The first empty tag, eight at a time, is the one a walk tag by tag
    /// from `start` (wrapping) finds, for every start, in tables of every
    /// fill and of lengths that are not multiples of eight.
    #[test]
    fn the_first_empty_slot_is_found_as_a_walk_would() {
        let mut rng = crate::test_util::Rng(0x5107);
        for len in [1, 7, 8, 9, 17, 239, 240] {
            for fill in [0, 50, 90, 99, 100] {
                let tags: Vec<u8> =
                    (0..len).map(|_| u8::from(rng.below(100) < fill) * (1 + rng.below(255) as u8)).collect();
                for start in 0..len {
                    let walk = (0..len).map(|d| (start + d) % len).find(|&i| tags[i] == 0);
                    assert_eq!(first_empty(&tags, start), walk, "len {len}, fill {fill}, start {start}: {tags:?}");
                }
            }
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, u64::MAX] {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, 0, v);
            assert_eq!(n, varint_len(v));
            assert_eq!(get_varint(&buf[..n]), Some((v, n)));
            assert_eq!(as_packed(&buf[..n]), Some(v), "canonical varint of {v}");
        }
        assert_eq!(get_varint(&[0x80, 0x80]), None);
    }

    #[test]
    fn packing_round_trips_every_length() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for bits in 0..=64 {
            for _ in 0..50 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = if bits == 64 { x } else { x & ((1u64 << bits) - 1) };
                let mut buf = [0u8; 10];
                let n = put_varint(&mut buf, 0, v);
                assert_eq!(Varint::new(v).bytes(), &buf[..n], "{v:#x}");
                assert_eq!(as_packed(&buf[..n]), Some(v), "{v:#x}");
                // One more byte, one fewer, or a padded last byte: not one canonical varint.
                assert_eq!(as_packed(&[&buf[..n], &[0]].concat()), None, "{v:#x} + 0");
                if n > 1 {
                    assert_eq!(as_packed(&buf[..n - 1]), None, "{v:#x} cut");
                }
                if n < 10 {
                    let mut long = buf;
                    long[n - 1] |= 0x80;
                    assert_eq!(as_packed(&long[..n + 1]), None, "{v:#x} padded");
                }
            }
        }
    }

    #[test]
    fn only_canonical_varints_pack() {
        for bad in [&[][..], &[0x80, 0x00], &[0x81], &[0x85, 0x80, 0x00], &[0xff; 11], &[1, 2]] {
            assert_eq!(as_packed(bad), None, "{bad:?}");
        }
        // Ten bytes hold 64 bits only if the last is 0 or 1.
        let mut ten = [0xffu8; 10];
        ten[9] = 2;
        assert_eq!(as_packed(&ten), None);
        ten[9] = 1;
        assert_eq!(as_packed(&ten), Some(u64::MAX));
    }

    #[test]
    fn append_find_remove_keep_the_rest() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(3, 0, Format::Variable);
        for i in 0..40u8 {
            b.append_inline(u64::from(i % 5), &[i; 3], &vec![i; i as usize]).unwrap();
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
        b.remove(10, start10, end10 - start10, hash);
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
mod hashed_tests {
    use super::*;

    fn hash(k: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(k, 7)
    }

    /// Every entry of a hashed page is found by its probe, and the page's
    /// counts and tags agree with its entries.
    fn assert_consistent(b: &Bucket<'_>, hash: impl Fn(&[u8]) -> u64) {
        let (mut c, mut count) = (Cursor::START, 0);
        while let Some(e) = b.next_entry(&mut c) {
            let e = e.unwrap();
            let key = e.stored.inline_key().unwrap();
            let h = hash(&key);
            assert_eq!(b.tags()[e.i], tag_of(h));
            assert!(b.reachable(e.i, home(h, b.tags().len())), "slot {} unreachable", e.i);
            assert_eq!(b.find_hashed(h, &key).unwrap().map(|(i, _)| i), Some(e.i));
            count += 1;
        }
        assert_eq!((count, count * b.width()), (b.len(), b.used()));
    }

    #[test]
    fn hashed_page_finds_every_key_and_survives_any_removal_order() {
        // Keys of 1..=24 bytes cover the byte loop, the two-word compare and
        // the slice compare.
        let key = |i: usize| (0..1 + i % 24).map(|j| (i * 7 + j) as u8).collect::<Vec<u8>>();
        let w = 2 + 24 + 8;
        let most = max_load(capacity(w));
        for count in [0, 1, 15, 16, 17, 40, most] {
            let mut page = vec![0u8; PAGE];
            let mut b = BucketMut::new(&mut page);
            b.init(1, 0, Format::Fixed(w));
            for i in 0..count {
                b.append_inline(hash(&key(i)), &key(i), &(i as u64).to_le_bytes()).unwrap();
            }
            let view = b.as_ref();
            assert_consistent(&view, hash);
            for i in 0..count {
                let found = view.find_hashed(hash(&key(i)), &key(i)).unwrap().map(|(_, s)| s);
                assert_eq!(found, Some(Stored::Inline { key: &key(i), value: &(i as u64).to_le_bytes() }));
                assert_eq!(view.find_hashed(hash(&key(i + 1000)), &key(i + 1000)).unwrap(), None);
            }
            assert_eq!(view.has_room(&EntrySize::new(24, 8)), count < most);
            // Remove in a scrambled order; after each removal every other key is found.
            let mut left: Vec<usize> = (0..count).collect();
            let mut x = 12345usize;
            while !left.is_empty() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let gone = left.swap_remove((x >> 33) % left.len());
                let (i, _) = b.as_ref().find_hashed(hash(&key(gone)), &key(gone)).unwrap().unwrap();
                let start = PAGE - (i + 1) * w;
                b.remove(i, start, w, hash);
                let view = b.as_ref();
                assert_eq!(view.find_hashed(hash(&key(gone)), &key(gone)).unwrap(), None);
                if left.len().is_multiple_of(7) {
                    assert_consistent(&view, hash);
                }
            }
            assert!(b.as_ref().tags().iter().all(|&t| t == 0));
        }
    }

    /// A hash whose home slot is `at` in a table of `cap` slots, with tag `tag`.
    fn hash_homed(at: usize, cap: usize, tag: u8) -> u64 {
        let x = ((at as u64) << 24).div_ceil(cap as u64);
        assert_eq!(home(x << 8, cap), at);
        (x << 8) | u64::from(tag)
    }

    #[test]
    fn probes_wrap_around_and_backward_shift_moves_runs_back() {
        let cap = capacity(PACKED_WIDTH);
        // Keys k are homed at cap - 2 (k < 4) or 0 (k >= 4): a run that wraps.
        let hash = move |k: &[u8]| {
            let k = as_packed(k).unwrap();
            hash_homed(if k < 4 { cap - 2 } else { 0 }, cap, k as u8)
        };
        let key = |k: u64| Varint::new(k).bytes().to_vec();
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(0, 0, Format::Packed);
        for k in [0u64, 1, 4, 2, 3, 5] {
            b.append_inline(hash(&key(k)), &key(k), &key(k * 100)).unwrap();
        }
        let slots = |b: &Bucket<'_>, k: u64| b.find_hashed(hash(&key(k)), &key(k)).unwrap().map(|(i, _)| i);
        let view = b.as_ref();
        let at: Vec<_> = [0u64, 1, 4, 2, 3, 5].iter().map(|&k| slots(&view, k)).collect();
        assert_eq!(at, [Some(cap - 2), Some(cap - 1), Some(0), Some(1), Some(2), Some(3)]);
        assert_consistent(&view, hash);
        // Removing key 1 (slot cap - 1) moves 2 and 3 back across the wrap;
        // 4 and 5 (homed at 0) stay where a probe from 0 finds them... or move
        // back too if that keeps them reachable.
        b.remove(cap - 1, PAGE - cap * PACKED_WIDTH, PACKED_WIDTH, hash);
        let view = b.as_ref();
        assert_consistent(&view, hash);
        assert_eq!(slots(&view, 2), Some(cap - 1));
        assert_eq!(slots(&view, 4), Some(0));
        assert_eq!(slots(&view, 3), Some(1));
        assert_eq!(slots(&view, 5), Some(2));
        assert_eq!(slots(&view, 1), None);
        assert_eq!(view.len(), 5);
        // Values read back as the numbers whose varints were stored.
        let (_, s) = view.find_hashed(hash(&key(3)), &key(3)).unwrap().unwrap();
        assert_eq!(s, Stored::Packed { key: 3, value: 300 });
        assert_eq!(&*s.inline_value().unwrap(), &key(300)[..]);
    }

    #[test]
    fn packed_pages_hold_u64_words_and_ignore_other_keys() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(2, 0, Format::Packed);
        let most = max_load(capacity(PACKED_WIDTH));
        let pair = |i: u64| (Varint::new(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), Varint::new(u64::MAX - i));
        for i in 0..most as u64 {
            let (k, v) = pair(i);
            assert!(b.as_ref().has_room(&EntrySize::of_pair(k.bytes(), v.bytes())));
            b.append_inline(hash(k.bytes()), k.bytes(), v.bytes()).unwrap();
        }
        let view = b.as_ref();
        assert_eq!((view.format(), view.len()), (Format::Packed, most));
        assert!(!view.has_room(&EntrySize::of_pair(&[1], &[2])), "full at the maximum load");
        assert_consistent(&view, hash);
        for i in 0..most as u64 {
            let (k, v) = pair(i);
            let (_, s) = view.find_hashed(hash(k.bytes()), k.bytes()).unwrap().unwrap();
            assert_eq!(&*s.inline_value().unwrap(), v.bytes());
        }
        // A key that is not one canonical varint cannot be in a packed page.
        assert_eq!(view.find_hashed(hash(&[0x80, 0x00]), &[0x80, 0x00]).unwrap(), None);
        // Nor can an entry that does not pack have a slot.
        let mut one = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut one);
        b.init(2, 0, Format::Packed);
        assert!(!b.as_ref().has_room(&EntrySize::of_pair(b"ab", &[1])));
        assert!(b.as_ref().has_room(&EntrySize::of_pair(&[5], &[1])));
        b.append_inline(hash(&[5]), &[5], &[1]).unwrap();
        let (i, _) = b.as_ref().find_hashed(hash(&[5]), &[5]).unwrap().unwrap();
        b.set_value(PAGE - (i + 1) * PACKED_WIDTH + 8, &[0x80, 0x01]);
        let (_, s) = b.as_ref().find_hashed(hash(&[5]), &[5]).unwrap().unwrap();
        assert_eq!(s, Stored::Packed { key: 5, value: 128 });
    }

    #[test]
    fn damaged_hashed_pages_are_errors_and_probes_end() {
        let mut page = vec![0u8; PAGE];
        let mut b = BucketMut::new(&mut page);
        b.init(1, 0, Format::Fixed(8));
        b.append_inline(hash(&[1, 2]), &[1, 2], &[3]).unwrap();
        let (i, _) = b.as_ref().find_hashed(hash(&[1, 2]), &[1, 2]).unwrap().unwrap();
        page[PAGE - (i + 1) * 8 + 1] = 7; // value length 7 in a slot of 8 with a key of 2
        let view = Bucket::new(&page).unwrap();
        assert!(view.find_hashed(hash(&[1, 2]), &[1, 2]).is_err());
        assert!(view.slot(i).is_err());
        // No empty slot at all: a probe still ends.
        let cap = capacity(8);
        page[HEADER..HEADER + cap].fill(0x33);
        let view = Bucket::new(&page).unwrap();
        assert_eq!(view.find_hashed(0x33, &[9, 9]).unwrap(), None);
        // ... and an insertion reports it instead of looking for a slot forever.
        assert!(BucketMut::new(&mut page.clone()).append_inline(0x1234, &[9, 9], &[1]).is_err());
        // Headers whose counts do not fit, or whose flags disagree with the width.
        for (n, width, flags) in
            [(cap as u16, 8u16, FLAG_FIXED), (1, 1, FLAG_FIXED), (1, 8, FLAG_FIXED | FLAG_PACKED), (1, 16, FLAG_PACKED)]
        {
            let mut bad = page.clone();
            bad[FLAGS] = flags;
            bad[N..N + 2].copy_from_slice(&n.to_le_bytes());
            bad[USED..USED + 2].copy_from_slice(&(n * width).to_le_bytes());
            bad[WIDTH..WIDTH + 2].copy_from_slice(&width.to_le_bytes());
            assert!(Bucket::new(&bad).is_err(), "n {n} width {width} flags {flags}");
        }
    }
}
