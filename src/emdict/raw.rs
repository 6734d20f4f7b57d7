//! The byte-level extendible hash under `EmDict`: keys and values are encoded
//! bytes here, so this code is compiled once, not per key and value type.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::alloc::{CheckReport, ROOT_SIZE, Store};
use crate::error::{Error, Result};

pub(crate) use super::bucket::EntrySize as Size;
use super::bucket::{
    Bucket, BucketMut, Bytes, Cursor, FLAG_FIXED, FLAG_OVERFLOW, FLAG_PACKED, Format, HEADER, K_MAX, MAX_INLINE,
    PACKED_CAP, PAGE, Stored, Varint, as_packed, footprint, home, max_load, prefetch_lookup, select, slot_width,
    tag_of, varint_len,
};
use super::directory::{Directory, MAX_DEPTH, Root, base, entry, pages_in};
use super::hash::KeyHash;

/// Where an entry is: the page (its position in its chain and address), its
/// index in the page and its data's extent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loc {
    pub pos: usize,
    pub page: u64,
    pub i: usize,
    pub start: usize,
    pub len: usize,
    /// The out-of-line object (address, length) if the entry has one.
    pub object: Option<(u64, usize)>,
    /// An inline entry's value: its offset in the page and length (in a
    /// packed page, of its `u64` word).
    pub value: Option<(usize, usize)>,
    /// The entry is a slot of a packed page.
    pub packed: bool,
}

/// Where the entry `stored` in slot `i` of the hashed page `b` (at `addr`,
/// position `pos` of its chain) is.
#[inline]
fn hashed_loc(b: &Bucket<'_>, pos: usize, addr: u64, i: usize, stored: Stored<'_>) -> Loc {
    let width = b.width();
    let start = PAGE - (i + 1) * width;
    let (value, packed) = match stored {
        Stored::Inline { value: v, .. } => (Some((v.as_ptr() as usize - b.page_ptr(), v.len())), false),
        _ => (Some((start + 8, 8)), true),
    };
    Loc { pos, page: addr, i, start, len: width, object: None, value, packed }
}

/// An entry read from a copied page, for rewriting.
struct Ent<'c> {
    hash: u64,
    /// The key, if inline (to tell the new key apart without reading objects).
    key: Option<&'c [u8]>,
    stored: Stored<'c>,
    size: Size,
}

/// The format for a page holding entries of `sizes`: a hashed one when the
/// entries fit one page in it and it pays (hashed lookups read no lengths
/// and probe from a home slot, so they are faster), else variable width.
/// Fixed width pays when every entry can have a slot and the slots take at
/// most 15% more space than variable-width entries; packed, when every
/// entry is packable and its slots take at most 15% more space than
/// variable-width entries or than paying fixed-width slots (a packed slot
/// compares one word).
fn choose_format(sizes: impl Iterator<Item = Size>) -> Format {
    choose_format_for(sizes, 1)
}

/// [`choose_format`] for the pages of a bucket of `k` pages holding
/// entries of `sizes` between them: one format for all (a hashed one when
/// the entries fit `k` pages in it and it pays).
fn choose_format_for(sizes: impl Iterator<Item = Size>, k: usize) -> Format {
    let (mut n, mut widest, mut variable, mut packable) = (0, 0, 0, true);
    for s in sizes {
        let Some(w) = slot_width(s.klen, s.vlen).filter(|_| s.inline) else {
            return Format::Variable;
        };
        widest = widest.max(w);
        variable += footprint(s.len());
        packable &= s.packable;
        n += 1;
    }
    // A hashed page's entries each take their share of the page at the
    // maximum load: (PAGE - HEADER) / per_page bytes.
    let fits = |f: Format| n > 0 && n <= f.per_page(0) * k;
    let within = |f: Format, bytes: usize| n * (PAGE - HEADER) * 20 <= bytes * 23 * f.per_page(0);
    let fixed = Format::Fixed(widest);
    let fixed_pays = fits(fixed) && within(fixed, variable);
    let fixed_bytes = n * (PAGE - HEADER) / fixed.per_page(0).max(1);
    let packed = Format::Packed;
    if packable && fits(packed) && (within(packed, variable) || (fixed_pays && within(packed, fixed_bytes))) {
        packed
    } else if fixed_pays {
        fixed
    } else {
        Format::Variable
    }
}

/// Whether entries of `sizes` fit one page in `format`.
fn fits(format: Format, sizes: impl Iterator<Item = Size>) -> bool {
    fits_at(format, sizes, FULL)
}

/// A fill of pages, as a fraction (numerator, denominator) of what a page holds.
type Fill = (usize, usize);
/// A page filled to its maximum (a hashed page: to its maximum load).
const FULL: Fill = (1, 1);
/// The fill a bucket made by a split is given pages for (at most; fewer
/// entries than this leave room): enough room that it does not grow again
/// at once, not so much that space is wasted (`docs/DESIGN.md`, "EmDict
/// pages", Elastic buckets).
const SPLIT_FILL: Fill = (17, 20);

/// Whether entries of `sizes` fit one page in `format` filled to at most `fill`.
fn fits_at(format: Format, sizes: impl Iterator<Item = Size>, (num, den): Fill) -> bool {
    match format {
        Format::Variable => sizes.map(|s| footprint(s.len())).sum::<usize>() * den <= (PAGE - HEADER) * num,
        hashed => sizes.count() * den <= hashed.per_page(0) * num,
    }
}

/// The entries `ents` grouped by the page of a `k`-page bucket their hashes select.
fn by_page<'e, 'c>(ents: &[&'e Ent<'c>], k: usize) -> Vec<Vec<&'e Ent<'c>>> {
    let mut counts = vec![0; k];
    for e in ents {
        counts[select(e.hash, k).0] += 1;
    }
    let mut groups: Vec<Vec<&Ent<'_>>> = counts.into_iter().map(Vec::with_capacity).collect();
    for &e in ents {
        groups[select(e.hash, k).0].push(e);
    }
    groups
}

/// Whether `ents` fit a bucket of `k` fixed-width hashed pages of slot
/// width `w` without a chain: every entry inline with a slot of at most
/// `w` bytes, and no page past its maximum load.
fn fixed_fits(ents: &[&Ent<'_>], k: usize, w: usize) -> bool {
    let most = Format::Fixed(w).per_page(0);
    let mut load = [0usize; K_MAX];
    for e in ents {
        let slot = slot_width(e.size.klen, e.size.vlen).filter(|_| e.size.inline);
        let p = select(e.hash, k).0;
        if slot.is_none_or(|s| s > w) || !matches!(e.stored, Stored::Inline { .. }) || load[p] == most {
            return false;
        }
        load[p] += 1;
    }
    true
}

/// Whether `ents` and `extra` (the hash and size of an entry about to be
/// inserted) fit a bucket of `k` pages with no page filled past `fill`, in
/// the format the bucket's entries would get.
fn layout_fits(ents: &[&Ent<'_>], k: usize, extra: Option<(u64, Size)>, fill: Fill, keep: Option<Format>) -> bool {
    let sizes = ents.iter().map(|e| e.size).chain(extra.map(|(_, s)| s));
    let format = keep.unwrap_or_else(|| choose_format_for(sizes, k));
    // Per page: entries (a hashed format) or bytes (variable width).
    let mut load = [0usize; K_MAX];
    let hashes = ents.iter().map(|e| (e.hash, e.size)).chain(extra);
    for (h, size) in hashes {
        load[select(h, k).0] += if format == Format::Variable { footprint(size.len()) } else { 1 };
    }
    let (num, den) = fill;
    let room = match format {
        Format::Variable => (PAGE - HEADER) * num,
        hashed => hashed.per_page(0) * num,
    };
    load[..k].iter().all(|&l| l * den <= room)
}

/// The fewest pages (at most [`K_MAX`]) that hold `ents` and `extra` with
/// no page filled past `fill`.
fn pages_needed(
    ents: &[&Ent<'_>],
    extra: Option<(u64, Size)>,
    fill: Fill,
    keep: Option<Format>,
    most: usize,
) -> Option<usize> {
    // Fewer pages than the entries fill on average cannot do (in a kept
    // hashed format, a page holds `per_page` of them).
    let n = ents.len() + usize::from(extra.is_some());
    let per_page = keep.filter(|&f| f != Format::Variable).map_or(usize::MAX, |f| f.per_page(0));
    let least = (n * fill.1).div_ceil(per_page.saturating_mul(fill.0)).max(1);
    (least..=most).find(|&k| layout_fits(ents, k, extra, fill, keep))
}

/// The pages of a bucket made by a split or a reservation for `ents` (and
/// `extra`), at most `most`: enough for [`SPLIT_FILL`], else for full
/// pages, else `most` (some page then gets an overflow chain).
fn pages_for_split(ents: &[&Ent<'_>], extra: Option<(u64, Size)>, keep: Option<Format>, most: usize) -> usize {
    pages_needed(ents, extra, SPLIT_FILL, keep, most)
        .or_else(|| pages_needed(ents, extra, FULL, keep, most))
        .unwrap_or(most)
}

/// What [`RawDict::lookup_varint`] found.
pub(crate) enum VarintLookup<'a> {
    /// The key's bucket is a lone packed page: the key's value word, if it is there.
    Packed(Option<u64>),
    /// Any other bucket: the entry, if the key is there.
    Other(Option<Stored<'a>>),
}

/// An entry of a packed page: its hash, key and value.
type Words = (u64, u64, u64);

/// Whether packed entries `words` (and an entry of hash `extra`) fit a
/// bucket of `k` packed pages with no page filled past `fill`:
/// [`layout_fits`] for a packed bucket, counting only.
fn words_fit(words: &[Words], k: usize, extra: Option<u64>, (num, den): Fill) -> bool {
    let mut load = [0usize; K_MAX];
    for h in words.iter().map(|w| w.0).chain(extra) {
        load[select(h, k).0] += 1;
    }
    let room = Format::Packed.per_page(0) * num;
    load[..k].iter().all(|&l| l * den <= room)
}

/// [`pages_for_split`] for a packed bucket; `None` if even `most` full
/// pages do not hold them (the general path then chains).
fn words_pages(words: &[Words], extra: Option<u64>, most: usize) -> Option<usize> {
    let n = words.len() + usize::from(extra.is_some());
    [SPLIT_FILL, FULL].into_iter().find_map(|fill| {
        let least = (n * fill.1).div_ceil(Format::Packed.per_page(0) * fill.0).max(1);
        (least..=most).find(|&k| words_fit(words, k, extra, fill))
    })
}

/// An entry found by key: where it is and its stored form.
pub(crate) struct Found<'a> {
    pub loc: Loc,
    pub stored: Stored<'a>,
}

/// The deepest directory that a reservation makes at once (2^26 buckets of
/// up to 8 pages, 2 TiB); a larger dict grows past it by splitting as usual.
const MAX_RESERVE_DEPTH: u32 = 26;

/// The share of a page's entries (`per_page`) a reservation plans for: a
/// bucket gets pages for its expected entries at this fill. Random keys
/// give some pages more than a page holds; their buckets then grow by a
/// page (`docs/DESIGN.md`, "EmDict pages", Elastic buckets).
const RESERVE_FILL: Fill = (19, 20);

/// The buckets a reservation for `total` entries, `per_page` to a full
/// page, makes: `2^d` buckets of depth `d` and `k` pages each (`k` at most
/// `most`), with `total / 2^d` at most [`RESERVE_FILL`] of `k` pages,
/// and the fewest pages so (the least depth among equals).
fn reserve_plan(total: u64, per_page: u64, most: usize) -> (u32, usize) {
    let room = (per_page.max(1) * RESERVE_FILL.0 as u64).div_ceil(RESERVE_FILL.1 as u64);
    let mut best: Option<(u64, u32, usize)> = None;
    for d in 0..=MAX_RESERVE_DEPTH {
        let k = (total >> d).div_ceil(room).max(1);
        if k <= most as u64 && best.is_none_or(|(pages, _, _)| k << d < pages) {
            best = Some((k << d, d, k as usize));
        }
    }
    best.map_or((MAX_RESERVE_DEPTH, most), |(_, d, k)| (d, k))
}

/// Two buddy buckets merge when their entries take at most this many bytes
/// together (half of a page's room): a merged bucket is then at most half
/// full, so merging and splitting cannot alternate (`docs/DESIGN.md`,
/// "EmDict pages", Merging). A removal tries to merge when it leaves its
/// page at most half of this (a quarter full).
const MERGE_FILL: usize = (PAGE - HEADER) / 2;

/// Bucket pages, and out-of-line objects as (address, length).
type Reachable = (Vec<u64>, Vec<(u64, u64)>);

/// The dict's state over its store.
#[derive(Debug)]
pub(crate) struct RawDict {
    pub store: Store,
    pub dir: Directory,
    len: u64,
    bucket_pages: u64,
    objects: u64,
    seed: u64,
    /// The hash, with its constants for short keys worked out.
    key_hash: KeyHash,
    /// Bucket pages allocated since the last commit: their checksums are set at commit.
    touched: HashSet<u64>,
    /// The first pages of the packed buckets a growth or a split made since
    /// the last commit ("young"): such a bucket grows straight to [`K_MAX`]
    /// pages and its halves get `K_MAX` pages each. With `true`, the bucket
    /// got its pages so (more than the rules for one growth or split would
    /// give), and the commit gives it the fewest pages that hold its
    /// entries ([`fit_young`](Self::fit_young)).
    young: HashMap<u64, bool>,
    /// Entries reserved (`reserve`) while the dict was empty, so of a size
    /// not known yet: the buckets are made at the next insertion.
    pending_reserve: u64,
    /// The layout of the last hashed page a lookup read (see
    /// [`Bucket::layout`]): a lookup starts loading the lines it will read
    /// in a page of that layout before it reads the page's header. Only a
    /// hint: a wrong one costs a cache miss, never a wrong result.
    hint: AtomicU32,
    /// Test hook: the hash is ANDed with this, to force collisions.
    #[cfg(test)]
    pub hash_mask: u64,
    /// Test hook: an injected allocation failure (`Store::fail_alloc_after`)
    /// skips the allocations of compaction, which swallows a full disk, and
    /// waits for those of the directory's save.
    #[cfg(test)]
    pub(crate) spare_compaction: bool,
    /// Test hook: the most pages a bucket grows to (1: the buckets of dict
    /// format 2), at most [`K_MAX`].
    #[cfg(test)]
    pub max_pages: usize,
}

/// The head of the page that hash `h` selects in the bucket whose
/// directory entry is `e`, and `h` as that page sees it (see [`select`]).
#[inline]
fn page_of(e: u64, h: u64) -> (u64, u64) {
    let (p, local) = select(h, pages_in(e));
    (base(e) + (p * PAGE) as u64, local)
}

/// Slice equality, without a `memcmp` call for short keys.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && if a.len() <= 16 { a.iter().zip(b).all(|(x, y)| x == y) } else { a == b }
}

#[cold]
#[inline(never)]
fn corrupt_bucket(store: &Store, addr: u64, what: String) -> Error {
    Error::corrupted(store.dir(), format!("bucket at {addr:#x}: {what}"))
}

/// Decrements a count read from the root; at zero the root lied.
#[inline]
fn decrement(store: &Store, count: &mut u64, field: &str) -> Result<()> {
    match count.checked_sub(1) {
        Some(c) => {
            *count = c;
            Ok(())
        }
        None => Err(count_underflow(store, field)),
    }
}

#[cold]
#[inline(never)]
fn count_underflow(store: &Store, field: &str) -> Error {
    Error::corrupted(store.dir().join("meta"), format!("dict root: {field} is 0 but the dict holds more"))
}

/// Validates the counts of a committed root against the store's size: a
/// bucket page is a page, an entry or an out-of-line object at least a byte.
fn validate_counts(store: &Store, r: &Root, has_dir: bool) -> Result<()> {
    let backed = store.backed_bytes();
    let bad = |what: String| Err(Error::corrupted(store.dir().join("meta"), format!("dict root: {what}")));
    if r.bucket_pages > backed / PAGE as u64 || (has_dir && r.bucket_pages == 0) {
        return bad(format!("bucket_pages {} in a store of {backed} bytes", r.bucket_pages));
    }
    if r.len > backed {
        return bad(format!("len {} in a store of {backed} bytes", r.len));
    }
    if r.objects > backed || r.objects > r.len {
        return bad(format!("objects {} with len {} in a store of {backed} bytes", r.objects, r.len));
    }
    Ok(())
}

impl RawDict {
    pub(crate) fn new(store: Store) -> Result<RawDict> {
        let root = Root::decode(store.root(), &store)?;
        let dir = match &root {
            Some(r) => Directory::load(&store, r)?,
            None => Directory::default(),
        };
        let r = root.unwrap_or_default();
        validate_counts(&store, &r, !dir.entries.is_empty())?;
        Ok(RawDict {
            seed: store.hash_seed(),
            key_hash: KeyHash::new(store.hash_seed()),
            store,
            dir,
            len: r.len,
            bucket_pages: r.bucket_pages,
            objects: r.objects,
            touched: HashSet::new(),
            young: HashMap::new(),
            pending_reserve: 0,
            hint: AtomicU32::new(0),
            #[cfg(test)]
            hash_mask: u64::MAX,
            #[cfg(test)]
            spare_compaction: false,
            #[cfg(test)]
            max_pages: K_MAX,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn bucket_pages(&self) -> u64 {
        self.bucket_pages
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        let h = self.key_hash.of(key);
        #[cfg(test)]
        let h = h & self.hash_mask;
        h
    }

    /// [`hash`](Self::hash) of the canonical varint of `k`.
    #[inline(always)]
    fn hash_varint(&self, k: u64) -> u64 {
        let h = self.key_hash.of_varint(k);
        #[cfg(test)]
        let h = h & self.hash_mask;
        h
    }

    /// The hash function as the pages of a bucket of `k` pages see it (see
    /// [`select`]), as a value that borrows nothing (for page writers).
    fn page_hasher(&self, k: usize) -> impl Fn(&[u8]) -> u64 + Copy + 'static {
        let hash = self.hasher();
        move |key| select(hash(key), k).1
    }

    /// The hash function, as a value that borrows nothing (for page writers).
    fn hasher(&self) -> impl Fn(&[u8]) -> u64 + Copy + 'static {
        let seed = self.seed;
        #[cfg(test)]
        let mask = self.hash_mask;
        #[cfg(not(test))]
        let mask = u64::MAX;
        move |k| xxh3_64_with_seed(k, seed) & mask
    }

    /// The most pages a bucket grows to: [`K_MAX`] (a test may set less).
    #[inline]
    fn k_max(&self) -> usize {
        #[cfg(test)]
        return self.max_pages;
        #[cfg(not(test))]
        K_MAX
    }

    /// The directory index of hash `h`: its top `depth` bits.
    #[inline]
    fn index(&self, h: u64) -> usize {
        // Two shifts, so that depth 0 needs no branch (the depth is at most 32).
        ((h >> 1) >> (63 - self.dir.depth)) as usize
    }

    #[inline]
    pub(crate) fn bucket(&self, addr: u64) -> Result<Bucket<'_>> {
        let page = self.store.read(addr, PAGE)?;
        Bucket::new(page).map_err(|w| corrupt_bucket(&self.store, addr, w))
    }

    /// The bytes of an out-of-line object's key or value.
    #[inline]
    fn object(&self, addr: u64, from: u64, len: u64) -> Result<&[u8]> {
        self.store.read(addr.wrapping_add(from), len as usize)
    }

    /// The key bytes of a stored entry.
    #[inline]
    pub(crate) fn key_of<'a>(&'a self, s: &Stored<'a>) -> Result<Bytes<'a>> {
        match *s {
            Stored::OutOfLine { addr, klen, .. } => self.object(addr, 0, klen).map(Bytes::Slice),
            _ => Ok(s.inline_key().expect("an inline entry")),
        }
    }

    /// The value bytes of a stored entry.
    #[inline]
    pub(crate) fn value_of<'a>(&'a self, s: &Stored<'a>) -> Result<Bytes<'a>> {
        match *s {
            Stored::OutOfLine { addr, klen, vlen } => self.object(addr, klen, vlen).map(Bytes::Slice),
            _ => Ok(s.inline_value().expect("an inline entry")),
        }
    }

    /// The stored entry with key bytes `key`, whose hash is `h`: the lookup
    /// of `get` and `contains_key`. A bucket of one hashed page (the common
    /// case) is searched without building a [`Loc`], and the lines of the
    /// page it reads are requested together, before the header is read
    /// (from the layout hint): one cache miss's wait instead of three.
    #[inline]
    pub(crate) fn lookup(&self, h: u64, key: &[u8]) -> Result<Option<Stored<'_>>> {
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return Ok(None);
        };
        let (head, h) = page_of(e, h);
        let page = self.store.read(head, PAGE)?;
        let hint = self.hint.load(Ordering::Relaxed);
        if hint != 0 {
            prefetch_lookup(page, h, hint);
        }
        let b = Bucket::new(page).map_err(|w| corrupt_bucket(&self.store, head, w))?;
        if b.is_lone_hashed() {
            if b.layout() != hint {
                self.hint.store(b.layout(), Ordering::Relaxed);
            }
            if b.is_packed() {
                // A key that is not one canonical varint is in no packed page.
                let Some(k) = as_packed(key) else {
                    return Ok(None);
                };
                return Ok(b.find_packed(h, k).map(|(_, value)| Stored::Packed { key: k, value }));
            }
            return match b.find_hashed(h, key) {
                Ok(v) => Ok(v.map(|(_, stored)| stored)),
                Err(w) => Err(corrupt_bucket(&self.store, head, w)),
            };
        }
        Ok(self.find_in(head, h, key)?.map(|f| f.stored))
    }

    /// The lookup of a key whose encoding is one canonical varint, of
    /// number `k` (see [`packed::encode`](super::packed::encode)): in a lone
    /// packed page (the usual page of a dict of integers) its value word is
    /// found without building a [`Bucket`] and without the general
    /// lookup's checks, which the header's one-compare test
    /// ([`Bucket::lone_packed`]) makes needless; any other page takes
    /// [`lookup`](Self::lookup).
    #[inline(always)]
    pub(crate) fn lookup_varint(&self, k: u64) -> Result<VarintLookup<'_>> {
        let h = self.hash_varint(k);
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return Ok(VarintLookup::Other(None));
        };
        let (head, local) = page_of(e, h);
        let Ok(page) = <&[u8; PAGE]>::try_from(self.store.read(head, PAGE)?) else {
            return self.lookup_varint_other(h, k);
        };
        if let Some(b) = Bucket::lone_packed(page) {
            return Ok(VarintLookup::Packed(b.find_packed(local, k).map(|(_, value)| value)));
        }
        self.lookup_varint_other(h, k)
    }

    /// The rest of [`lookup_varint`](Self::lookup_varint), out of line: the
    /// key's bucket is not a lone packed page.
    #[inline(never)]
    fn lookup_varint_other(&self, h: u64, k: u64) -> Result<VarintLookup<'_>> {
        self.lookup(h, Varint::new(k).bytes()).map(VarintLookup::Other)
    }

    /// Finds the entry with key bytes `key`, whose hash is `h`.
    #[inline]
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Result<Option<Found<'_>>> {
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return Ok(None);
        };
        let (head, h) = page_of(e, h);
        self.find_in(head, h, key)
    }

    /// Finds the entry with key bytes `key` in the chain of pages from
    /// `head`, the page its hash selects; `h` is the hash as that page sees
    /// it (see [`select`]).
    #[inline]
    fn find_in(&self, head: u64, h: u64, key: &[u8]) -> Result<Option<Found<'_>>> {
        let tag = h as u8;
        let mut addr = head;
        let mut pos = 0;
        loop {
            let b = self.bucket(addr)?;
            if b.is_hashed() {
                match b.find_hashed(h, key) {
                    Ok(Some((i, stored))) => {
                        return Ok(Some(Found { loc: hashed_loc(&b, pos, addr, i, stored), stored }));
                    }
                    Ok(None) => {}
                    Err(w) => return Err(corrupt_bucket(&self.store, addr, w)),
                }
            } else if let Some(r) = b.find_tag(tag, |i| {
                let end = b.end_of(i);
                let (stored, start) = match b.entry_at(i, end) {
                    Ok(x) => x,
                    Err(w) => return Some(Err(corrupt_bucket(&self.store, addr, w))),
                };
                let same = match stored {
                    Stored::Inline { key: k, .. } => same_bytes(k, key),
                    Stored::Packed { .. } => false,
                    Stored::OutOfLine { addr: a, klen, .. } => {
                        klen == key.len() as u64
                            && match self.object(a, 0, klen) {
                                Ok(k) => k == key,
                                Err(e) => return Some(Err(e)),
                            }
                    }
                };
                if !same {
                    return None;
                }
                let (object, value) = match stored {
                    Stored::OutOfLine { addr: a, klen, vlen } => (Some((a, klen.saturating_add(vlen) as usize)), None),
                    Stored::Inline { value: v, .. } => (None, Some((v.as_ptr() as usize - b.page_ptr(), v.len()))),
                    Stored::Packed { .. } => (None, None),
                };
                let loc = Loc { pos, page: addr, i, start, len: end - start, object, value, packed: false };
                Some(Ok(Found { loc, stored }))
            }) {
                return r.map(Some);
            }
            match b.next() {
                Some(next) if (pos as u64) < self.bucket_pages => {
                    addr = next;
                    pos += 1;
                }
                Some(_) => return Err(corrupt_bucket(&self.store, head, "its chain loops".into())),
                None => return Ok(None),
            }
        }
    }

    /// The chain of pages starting at `head`.
    fn chain(&self, head: u64) -> Result<Vec<u64>> {
        let mut pages = vec![head];
        let mut addr = head;
        while let Some(next) = self.bucket(addr)?.next() {
            if pages.len() as u64 > self.bucket_pages {
                return Err(corrupt_bucket(&self.store, head, "its chain loops".into()));
            }
            pages.push(next);
            addr = next;
        }
        Ok(pages)
    }

    /// The chains of the pages of the bucket whose directory entry is `e`, page by page.
    fn chains(&self, e: u64) -> Result<Vec<Vec<u64>>> {
        (0..pages_in(e)).map(|j| self.chain(base(e) + (j * PAGE) as u64)).collect()
    }

    /// The directory entry of the bucket at directory index `idx` (its
    /// address and pages, see [`entry`]), its local depth, and the first
    /// index and count of the directory entries that name it.
    fn span(&self, idx: usize) -> Result<(u64, u32, usize, usize)> {
        let e = self.dir.entries[idx];
        let depth = self.bucket(base(e))?.depth();
        if depth > self.dir.depth {
            let what = format!("local depth {depth} exceeds the directory's {}", self.dir.depth);
            return Err(corrupt_bucket(&self.store, base(e), what));
        }
        let count = 1usize << (self.dir.depth - depth);
        let start = idx & !(count - 1);
        // The entries naming a bucket are one aligned run: a depth that
        // claims a run other than its own (a damaged or forged header)
        // would have a copy or merge rewrite part of its run only, leaving
        // the rest naming freed pages. Four loads of the entries in memory.
        let entries = &self.dir.entries;
        if entries[start] != e
            || entries[start + count - 1] != e
            || (start > 0 && entries[start - 1] == e)
            || entries.get(start + count) == Some(&e)
        {
            let what = format!("local depth {depth} does not match its directory entries");
            return Err(corrupt_bucket(&self.store, base(e), what));
        }
        Ok((e, depth, start, count))
    }

    /// Makes the bucket at directory index `idx` writable for a change to
    /// the page that hash `h` selects: its `k` pages, and that page's chain,
    /// copying what is committed (all of the bucket, if its pages are);
    /// returns its directory entry. (Other chains of a bucket whose pages
    /// are writable may stay committed: nothing writes them in place.)
    #[inline]
    fn make_writable(&mut self, idx: usize, h: u64) -> Result<u64> {
        let e = self.dir.entries[idx];
        if self.store.is_writable(base(e), pages_in(e) * PAGE) && self.bucket(page_of(e, h).0)?.next().is_none() {
            return Ok(e);
        }
        self.copy_bucket(idx)
    }

    /// Copies the committed pages of the bucket at `idx`: its `k` pages to
    /// `k` fresh contiguous ones, and every committed overflow page. A
    /// failure (a full disk) frees the copies made and changes nothing.
    #[cold]
    #[inline(never)]
    fn copy_bucket(&mut self, idx: usize) -> Result<u64> {
        let (e, _, start, count) = self.span(idx)?;
        let (old_base, k) = (base(e), pages_in(e));
        let old = self.chains(e)?;
        if old.iter().flatten().all(|&a| self.store.is_writable(a, PAGE)) {
            return Ok(e);
        }
        let moved = !self.store.is_writable(old_base, k * PAGE);
        let new_base = if moved { self.copy_extent(old_base, k)? } else { old_base };
        let mut new: Vec<Vec<u64>> = Vec::with_capacity(k);
        let mut failed = None;
        'copy: for (j, chain) in old.iter().enumerate() {
            new.push(vec![new_base + (j * PAGE) as u64]);
            for &a in &chain[1..] {
                if self.store.is_writable(a, PAGE) {
                    new[j].push(a);
                    continue;
                }
                match self.copy_page(a) {
                    Ok(fresh) => new[j].push(fresh),
                    Err(err) => {
                        failed = Some(err);
                        break 'copy;
                    }
                }
            }
        }
        if let Some(err) = failed {
            // Nothing links the copies made so far: free them, so that a
            // failed copy (a full disk) leaks nothing.
            for (o, n) in old.iter().zip(&new) {
                for (&a, &b) in o.iter().zip(n).skip(1) {
                    if a != b {
                        self.store.free_pages(b, 1)?;
                        self.touched.remove(&b);
                    }
                }
            }
            if moved {
                self.forget_extent(new_base, k)?;
            }
            return Err(err);
        }
        for chain in &new {
            for w in chain.windows(2) {
                BucketMut::new(self.store.write(w[0], PAGE)?).set_next(Some(w[1]));
            }
        }
        for (o, n) in old.iter().zip(&new) {
            for (&a, &b) in o.iter().zip(n).skip(1) {
                if a != b {
                    self.store.free_pages(a, 1)?;
                }
            }
        }
        if moved {
            self.store.free_pages(old_base, k as u64)?;
        }
        let new_e = entry(new_base, k);
        self.dir.set_range(start, count, new_e);
        Ok(new_e)
    }

    /// A fresh copy of the `k` committed pages at `from` (one bucket's
    /// pages), each verified first as in [`copy_page`](Self::copy_page).
    fn copy_extent(&mut self, from: u64, k: usize) -> Result<u64> {
        for j in 0..k {
            self.verify_committed(from + (j * PAGE) as u64)?;
        }
        let fresh = self.store.alloc_pages(k as u64)?;
        let bytes = self.store.read(from, k * PAGE)?.to_vec();
        self.store.write(fresh, k * PAGE)?.copy_from_slice(&bytes);
        for j in 0..k {
            self.touched.insert(fresh + (j * PAGE) as u64);
        }
        Ok(fresh)
    }

    /// Frees the `k` pages at `at` made by [`copy_extent`](Self::copy_extent)
    /// for a copy that did not finish.
    fn forget_extent(&mut self, at: u64, k: usize) -> Result<()> {
        self.store.free_pages(at, k as u64)?;
        for j in 0..k {
            self.touched.remove(&(at + (j * PAGE) as u64));
        }
        Ok(())
    }

    /// A fresh copy of the committed bucket page at `a`, whose checksum is
    /// verified first: the copy gets a new checksum at the next commit, which
    /// would otherwise make damage in the committed page look valid. Once per
    /// page and commit, on the write path only (reads do not verify).
    fn copy_page(&mut self, a: u64) -> Result<u64> {
        self.verify_committed(a)?;
        let fresh = self.store.alloc_pages(1)?;
        let bytes = self.store.read(a, PAGE)?.to_vec();
        self.store.write(fresh, PAGE)?.copy_from_slice(&bytes);
        self.touched.insert(fresh);
        Ok(fresh)
    }

    /// The head of the bucket of hash `h`. If it is not `last` (the bucket of
    /// the previous entry of a load), its page is read line by line first:
    /// the entries of a batch come bucket by bucket, and the lines the
    /// insertions will touch (tags, slots compared on a tag match, the free
    /// slots written) then arrive in one burst instead of a miss at a time.
    #[inline]
    pub(crate) fn warm_bucket(&self, h: u64, last: Option<u64>) -> u64 {
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return 0;
        };
        let (head, _) = page_of(e, h);
        if last != Some(head)
            && let Ok(page) = self.store.read(head, PAGE)
        {
            std::hint::black_box(page.iter().step_by(64).fold(0u8, |a, &x| a ^ x));
        }
        head
    }

    /// Appends the entry (`h`, `key`, `value`) if its key is absent and its
    /// bucket is one fixed-width page, written since the last commit, with a
    /// free slot that fits it: the common case of a load, done with one read
    /// of the bucket and none of the general path's bookkeeping. Returns
    /// whether it did; if not, nothing changed and the general path applies.
    #[inline]
    pub(crate) fn append_if_absent(&mut self, h: u64, key: &[u8], value: &[u8]) -> Result<bool> {
        if self.pending_reserve != 0 {
            return Ok(false);
        }
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return Ok(false);
        };
        let (head, h) = page_of(e, h);
        let b = self.bucket(head)?;
        let size = Size::of_pair(key, value);
        if !b.is_lone_hashed() || !b.has_room(&size) {
            return Ok(false);
        }
        match b.find_hashed(h, key) {
            Ok(None) if self.store.is_writable(head, PAGE) => {}
            Ok(_) => return Ok(false),
            Err(w) => return Err(corrupt_bucket(&self.store, head, w)),
        }
        let appended = BucketMut::new(self.store.write(head, PAGE)?).append_inline(h, key, value);
        appended.map_err(|w| corrupt_bucket(&self.store, head, w))?;
        self.len += 1;
        Ok(true)
    }

    /// [`append_if_absent`](Self::append_if_absent) for an entry whose key
    /// and value are each one canonical varint, of numbers `k` and `v` (see
    /// [`packed::encode`](super::packed::encode)): the common case of a
    /// load of integers, without encoding them, hashing bytes or parsing
    /// the page's header field by field. Appends the entry if its key is
    /// absent and its page is a lone packed page written since the last
    /// commit with room for it; returns whether it did (if not, nothing
    /// changed and the general path applies).
    #[inline]
    pub(crate) fn append_words_if_absent(&mut self, k: u64, v: u64) -> Result<bool> {
        if self.pending_reserve != 0 {
            return Ok(false);
        }
        let h = self.hash_varint(k);
        let Some(&e) = self.dir.entries.get(self.index(h)) else {
            return Ok(false);
        };
        let (head, local) = page_of(e, h);
        let Ok(page) = <&[u8; PAGE]>::try_from(self.store.read(head, PAGE)?) else {
            return Ok(false);
        };
        let Some(b) = Bucket::lone_packed(page) else {
            return Ok(false);
        };
        if b.len() >= max_load(PACKED_CAP) || b.find_packed(local, k).is_some() || !self.store.is_writable(head, PAGE) {
            return Ok(false);
        }
        let appended = BucketMut::new(self.store.write(head, PAGE)?).append_words(local, k, v);
        appended.map_err(|w| corrupt_bucket(&self.store, head, w))?;
        self.len += 1;
        Ok(true)
    }

    /// Inserts an entry whose key is known to be absent.
    pub(crate) fn put_new(&mut self, h: u64, key: &[u8], value: &[u8]) -> Result<()> {
        self.store.writable()?;
        let size = Size::of_pair(key, value);
        if self.pending_reserve != 0 {
            self.reserve_sized(0, size)?;
        }
        if self.dir.entries.is_empty() {
            self.first_bucket()?;
        }
        loop {
            let idx = self.index(h);
            let e = self.make_writable(idx, h)?;
            let (mut addr, local) = page_of(e, h);
            loop {
                let b = self.bucket(addr)?;
                if b.has_room(&size) {
                    return self.write_entry(addr, local, key, value, size.inline);
                }
                match b.next() {
                    Some(next) => addr = next,
                    None => break,
                }
            }
            self.grow(h, key, size)?;
        }
    }

    #[inline]
    fn write_entry(&mut self, page: u64, h: u64, key: &[u8], value: &[u8], inline: bool) -> Result<()> {
        let obj = if inline { None } else { Some(self.new_object(key, value)?) };
        self.append_entry(page, h, key, value, obj)?;
        self.len += 1;
        Ok(())
    }

    /// Stores an out-of-line object: the key's bytes, then the value's.
    fn new_object(&mut self, key: &[u8], value: &[u8]) -> Result<u64> {
        let total = key.len() + value.len();
        let obj = self.store.alloc(total)?;
        let out = self.store.write(obj, total)?;
        out[..key.len()].copy_from_slice(key);
        out[key.len()..].copy_from_slice(value);
        Ok(obj)
    }

    /// Appends an entry to the (writable) `page`, which has room for it:
    /// inline, or as a record naming `obj` (from [`new_object`](Self::new_object)).
    #[inline]
    fn append_entry(&mut self, page: u64, h: u64, key: &[u8], value: &[u8], obj: Option<u64>) -> Result<()> {
        let mut b = BucketMut::new(self.store.write(page, PAGE)?);
        match obj {
            None => b.append_inline(h, key, value).map_err(|w| corrupt_bucket(&self.store, page, w))?,
            Some(obj) => {
                b.append_ref(h, obj, key.len() as u64, value.len() as u64);
                self.objects += 1;
            }
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn first_bucket(&mut self) -> Result<()> {
        let addr = self.new_page(0, 0, Format::Variable)?;
        self.dir.init(addr);
        Ok(())
    }

    /// A fresh, empty bucket page.
    fn new_page(&mut self, depth: u32, flags: u8, format: Format) -> Result<u64> {
        let addr = self.store.alloc_pages(1)?;
        BucketMut::new(self.store.write(addr, PAGE)?).init(depth, flags, format);
        self.touched.insert(addr);
        self.bucket_pages += 1;
        Ok(addr)
    }

    fn free_page(&mut self, addr: u64) -> Result<()> {
        self.store.free_pages(addr, 1)?;
        self.touched.remove(&addr);
        decrement(&self.store, &mut self.bucket_pages, "bucket_pages")?;
        Ok(())
    }

    /// Makes room for a new entry (hash `h`, its key, and `size`) whose
    /// page (the one its hash selects in its bucket) has none: rewrites that
    /// page in another format if that makes it fit; else rebuilds the bucket
    /// with more pages (up to [`K_MAX`]) if its entries and the new one then
    /// fit; else splits the bucket, doubling the directory if needed; else,
    /// when splitting cannot separate the keys or the directory may not
    /// grow, chains an overflow page to the page.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, h: u64, key: &[u8], size: Size) -> Result<()> {
        let idx = self.index(h);
        let (e, depth, _, _) = self.span(idx)?;
        let k = pages_in(e);
        let p = select(h, k).0;
        let chains = self.chains(e)?;
        // A hashed page whose slots cannot take the entry (too narrow, or
        // packed and the entry not packable) is rewritten in a format that
        // can, if its entries and the new one then fit it; a page that is
        // only full grows its bucket (a rewrite in a denser format would
        // trade lookup speed for space the growth gives anyway).
        let b = self.bucket(chains[p][0])?;
        if chains[p].len() == 1 && b.is_hashed() && !b.fits_slot(&size) {
            let copies = self.copy_pages(&chains[p])?;
            let ents = self.entries_of(&copies, &chains[p])?;
            let sizes = ents.iter().map(|e| e.size).chain([size]);
            let format = choose_format(sizes.clone());
            if fits(format, sizes) {
                let mut chain = vec![chains[p][0]];
                if let Err(err) = self.write_page(&mut chain, depth, k, format, &ents) {
                    self.undo_rewrite(&copies[0], &chain, &[])?;
                    return Err(err);
                }
                return Ok(());
            }
        }
        let pages = chains.concat();
        // The bucket's pages keep their format if it takes the new entry too.
        let keep = self.common_format(&chains)?.filter(|_| !b.is_hashed() || b.fits_slot(&size));
        if keep == Some(Format::Packed) && self.grow_packed(idx, h, depth, &chains, &pages)? {
            return Ok(());
        }
        let copies = self.copy_pages(&pages)?;
        let ents = self.entries_of(&copies, &pages)?;
        let refs: Vec<&Ent<'_>> = ents.iter().collect();
        let extra = Some((h, size));
        if let Some(more) = (k + 1..=self.k_max()).find(|&m| layout_fits(&refs, m, extra, FULL, keep)) {
            let new = self.build(depth, more, &refs, extra, keep)?;
            let (_, _, start, count) = self.span(idx)?;
            self.free_chains(&chains)?;
            self.dir.set_range(start, count, new);
            return Ok(());
        }
        // Splitting helps only if some entry's hash differs from h.
        let differs = ents.iter().any(|e| e.hash != h && e.key != Some(key));
        let may_double =
            self.dir.depth < MAX_DEPTH && (1u64 << (self.dir.depth + 1)) <= (8 * self.bucket_pages).max(1 << 12);
        if differs && depth < 64 && (depth < self.dir.depth || may_double) {
            if depth == self.dir.depth {
                self.dir.double();
            }
            self.split(h, size, depth, &chains, &refs, keep)
        } else {
            let last = *chains[p].last().expect("a chain has a head");
            let page = self.new_page(depth, FLAG_OVERFLOW, Format::Variable)?;
            BucketMut::new(self.store.write(last, PAGE)?).set_next(Some(page));
            Ok(())
        }
    }

    /// [`grow`](Self::grow) for a bucket of packed pages (without chains,
    /// its `pages`) and a packable entry of hash `h`, the common case of
    /// integer dicts, without the general path's per-entry bookkeeping: a
    /// rebuild with more pages (all it may have if it is young, see
    /// [`young`](Self::young)), or a split when the directory may double
    /// (one half in the bucket's own pages if it was written since the
    /// last commit). Returns `false`, having changed nothing, when the
    /// bucket can do neither or a half would need more than full pages:
    /// the general path then decides (a chain).
    #[cold]
    #[inline(never)]
    fn grow_packed(&mut self, idx: usize, h: u64, depth: u32, chains: &[Vec<u64>], pages: &[u64]) -> Result<bool> {
        let words = self.words_in(pages)?;
        let k = chains.len();
        let young = self.young.contains_key(&pages[0]) && self.store.is_writable(pages[0], k * PAGE);
        let fits = |&m: &usize| words_fit(&words, m, Some(h), FULL);
        let more = if young { (k + 1..=self.k_max()).rev().find(fits) } else { (k + 1..=self.k_max()).find(fits) };
        if let Some(more) = more {
            let new = self.build_packed(depth, more, &words)?;
            let (_, _, start, count) = self.span(idx)?;
            self.free_chains(chains)?;
            self.dir.set_range(start, count, new);
            self.young.insert(base(new), young);
            return Ok(true);
        }
        let differs = words.iter().any(|w| w.0 != h);
        let may_double =
            self.dir.depth < MAX_DEPTH && (1u64 << (self.dir.depth + 1)) <= (8 * self.bucket_pages).max(1 << 12);
        if !differs || depth >= 64 || (depth == self.dir.depth && !may_double) {
            return Ok(false);
        }
        let bit = 63 - depth;
        let high = |hash: u64| (hash >> bit) & 1 == 1;
        let (hi, lo): (Vec<Words>, Vec<Words>) = words.iter().partition(|w| high(w.0));
        let most = self.k_max();
        // Halves of a young bucket get all the pages they may have: they fill up in this transaction.
        let half_pages = |part: &[Words], extra: Option<u64>| {
            if young && words_fit(part, most, extra, FULL) { Some(most) } else { words_pages(part, extra, most) }
        };
        let (Some(lo_k), Some(hi_k)) =
            (half_pages(&lo, (!high(h)).then_some(h)), half_pages(&hi, high(h).then_some(h)))
        else {
            return Ok(false);
        };
        if depth == self.dir.depth {
            self.dir.double();
        }
        let (_, _, start, count) = self.span(self.index(h))?;
        let (lo_e, hi_e) = if self.store.is_writable(pages[0], k * PAGE) && lo_k.max(hi_k) <= k {
            // The bucket's own pages may be rewritten: the larger half goes
            // there (and the pages after it are freed), the other to fresh pages.
            if lo_k >= hi_k {
                let hi_e = self.build_packed(depth + 1, hi_k, &hi)?;
                (self.split_in_place(pages[0], depth, (k, &words), (lo_k, &lo), hi_e)?, hi_e)
            } else {
                let lo_e = self.build_packed(depth + 1, lo_k, &lo)?;
                (lo_e, self.split_in_place(pages[0], depth, (k, &words), (hi_k, &hi), lo_e)?)
            }
        } else {
            let lo_e = self.build_packed(depth + 1, lo_k, &lo)?;
            let hi_e = match self.build_packed(depth + 1, hi_k, &hi) {
                Ok(e) => e,
                Err(err) => {
                    self.free_bucket(lo_e)?;
                    return Err(err);
                }
            };
            self.free_chains(chains)?;
            (lo_e, hi_e)
        };
        let half = count / 2;
        self.dir.set_range(start, half, lo_e);
        self.dir.set_range(start + half, half, hi_e);
        self.young.extend([(base(lo_e), young), (base(hi_e), young)]);
        Ok(true)
    }

    /// Gives every young bucket that got more pages than the rules for one
    /// growth or split give (see [`young`](Self::young)) the fewest pages
    /// that hold its entries, each page within its maximum load: it
    /// is rewritten in place in its first pages, and the pages after them
    /// are freed (compaction then slides the buckets above down over them).
    /// Before a commit; the young buckets are none after it.
    fn fit_young(&mut self) -> Result<()> {
        if self.young.is_empty() {
            return Ok(());
        }
        let mut idx = 0;
        while idx < self.dir.entries.len() {
            let e = self.dir.entries[idx];
            if pages_in(e) > 1 && self.young.get(&base(e)) == Some(&true) {
                match self.fit_packed(idx) {
                    // Only saves space: a bucket whose header does not
                    // match its directory entries stays as it is, for the
                    // writes to it and `check()` to report.
                    Ok(()) | Err(Error::Corrupted { .. }) => {}
                    Err(err) => return Err(err),
                }
            }
            // The run of entries naming the bucket (the fit keeps its address).
            idx += self.dir.entries[idx..].iter().take_while(|&&x| base(x) == base(e)).count();
        }
        self.young.clear();
        Ok(())
    }

    /// Rewrites the bucket at directory index `idx`, if it is packed, has
    /// no chains and was written since the last commit, with the fewest
    /// pages that hold its entries (in place, freeing the pages after
    /// them), if that is fewer than it has.
    fn fit_packed(&mut self, idx: usize) -> Result<()> {
        let (e, depth, start, count) = self.span(idx)?;
        let (first, k) = (base(e), pages_in(e));
        if !self.store.is_writable(first, k * PAGE) {
            return Ok(());
        }
        let pages: Vec<u64> = (0..k).map(|j| first + (j * PAGE) as u64).collect();
        for &p in &pages {
            let b = self.bucket(p)?;
            if !b.is_packed() || b.next().is_some() {
                return Ok(());
            }
        }
        let words = self.words_in(&pages)?;
        let Some(m) = (1..k).find(|&m| words_fit(&words, m, None, FULL)) else {
            return Ok(());
        };
        if let Err(err) = self.fill_packed(first, depth, m, &words) {
            // The words fit (a bug otherwise): the bucket as it was.
            self.fill_packed(first, depth, k, &words)?;
            return Err(err);
        }
        for j in m..k {
            self.free_page(first + (j * PAGE) as u64)?;
        }
        self.dir.set_range(start, count, entry(first, m));
        Ok(())
    }

    /// The half of a split of the packed bucket of `k` writable pages at
    /// `first` (local depth `depth`, entries `words`: `whole = (k, words)`)
    /// that stays there: its first `part_k` pages (at most `k`) are
    /// rewritten to hold the half's entries `part` at depth + 1 (`half =
    /// (part_k, part)`), and the pages after them are freed. `other` is the
    /// other half, already built: if the rewrite fails (a bug: the words
    /// fit), the bucket is put back as it was and `other` freed. Returns
    /// the half's directory entry.
    fn split_in_place(
        &mut self,
        first: u64,
        depth: u32,
        (k, words): (usize, &[Words]),
        (part_k, part): (usize, &[Words]),
        other: u64,
    ) -> Result<u64> {
        if let Err(err) = self.fill_packed(first, depth + 1, part_k, part) {
            self.fill_packed(first, depth, k, words)?;
            self.free_bucket(other)?;
            return Err(err);
        }
        for j in part_k..k {
            self.free_page(first + (j * PAGE) as u64)?;
        }
        Ok(entry(first, part_k))
    }

    /// The entries of the packed `pages` as words, with hashes; a committed
    /// page is verified first, as in [`copy_page`](Self::copy_page) (its
    /// entries are about to be rewritten into pages that get a new checksum).
    fn words_in(&self, pages: &[u64]) -> Result<Vec<Words>> {
        let mut words = Vec::with_capacity(pages.len() * Format::Packed.per_page(0));
        for &p in pages {
            if !self.store.is_writable(p, PAGE) {
                self.verify_committed(p)?;
            }
            let b = self.bucket(p)?;
            let mut c = Cursor::START;
            while let Some(i) = b.next_occupied(&mut c) {
                match b.slot(i) {
                    Ok(Stored::Packed { key, value }) => words.push((self.hash_varint(key), key, value)),
                    Ok(_) => return Err(corrupt_bucket(&self.store, p, format!("slot {i} is not packed"))),
                    Err(w) => return Err(corrupt_bucket(&self.store, p, w)),
                }
            }
        }
        Ok(words)
    }

    /// A new bucket of local depth `depth` and `k` fresh packed pages holding
    /// `words`, which fit them ([`words_fit`] with full pages). On a failure
    /// (a full disk) the pages are freed and nothing else has changed.
    fn build_packed(&mut self, depth: u32, k: usize, words: &[Words]) -> Result<u64> {
        let first = self.store.alloc_pages(k as u64)?;
        self.bucket_pages += k as u64;
        for j in 0..k {
            self.touched.insert(first + (j * PAGE) as u64);
        }
        if let Err(err) = self.fill_packed(first, depth, k, words) {
            for j in 0..k {
                self.free_page(first + (j * PAGE) as u64)?;
            }
            return Err(err);
        }
        Ok(entry(first, k))
    }

    /// Writes the `k` writable pages at `first` as the packed pages of a
    /// bucket of local depth `depth` holding `words`, which fit them
    /// ([`words_fit`] with full pages).
    fn fill_packed(&mut self, first: u64, depth: u32, k: usize, words: &[Words]) -> Result<()> {
        let out = self.store.write(first, k * PAGE)?;
        for page in out.chunks_exact_mut(PAGE) {
            BucketMut::new(page).init(depth, 0, Format::Packed);
        }
        let written = words.iter().try_for_each(|&(h, key, value)| {
            let (p, local) = select(h, k);
            let mut b = BucketMut::new(&mut out[p * PAGE..(p + 1) * PAGE]);
            if !b.packed_room() {
                return Err(format!("page {p} of a new bucket overflows"));
            }
            b.append_words(local, key, value)
        });
        written.map_err(|w| corrupt_bucket(&self.store, first, w))
    }

    /// A new bucket of local depth `depth` and `k` contiguous fresh pages
    /// holding `ents`, every page in the format that suits the bucket's
    /// entries and `extra` (the hash and size of an entry about to be
    /// inserted); a page whose entries do not fit gets an overflow chain.
    /// Returns its directory entry. On a failure (a full disk) the pages it
    /// made are freed and nothing else has changed.
    fn build(
        &mut self,
        depth: u32,
        k: usize,
        ents: &[&Ent<'_>],
        extra: Option<(u64, Size)>,
        keep: Option<Format>,
    ) -> Result<u64> {
        let first = self.store.alloc_pages(k as u64)?;
        self.bucket_pages += k as u64;
        // One format for the bucket's pages: they hold entries alike.
        let format =
            keep.unwrap_or_else(|| choose_format_for(ents.iter().map(|e| e.size).chain(extra.map(|(_, s)| s)), k));
        let mut chains: Vec<Vec<u64>> = (0..k).map(|j| vec![first + (j * PAGE) as u64]).collect();
        for chain in &chains {
            self.touched.insert(chain[0]);
        }
        let filled = match format {
            Format::Fixed(w) if fixed_fits(ents, k, w) => self.fill_fixed(first, depth, k, w, ents),
            _ => self.fill_chains(&mut chains, depth, format, ents),
        };
        if let Err(err) = filled {
            self.free_chains(&chains)?;
            return Err(err);
        }
        Ok(entry(first, k))
    }

    /// Writes `ents` into the fresh pages `chains` (one chain per page of a
    /// bucket of local depth `depth`, each its head only) in `format`, each
    /// entry into the page its hash selects, chaining overflow pages (pushed
    /// to the chains) where a page has no room: the general case of
    /// [`build`](Self::build).
    fn fill_chains(&mut self, chains: &mut [Vec<u64>], depth: u32, format: Format, ents: &[&Ent<'_>]) -> Result<()> {
        let k = chains.len();
        let groups = by_page(ents, k);
        for (chain, group) in chains.iter_mut().zip(&groups) {
            self.write_page(chain, depth, k, format, group.iter().copied())?;
        }
        Ok(())
    }

    /// Writes the `k` writable pages at `first` as the fixed-width hashed
    /// pages (slot width `w`) of a bucket of local depth `depth` holding
    /// `ents`, which fit them ([`fixed_fits`]): each entry straight into
    /// the page its hash selects, without the general path's per-entry
    /// look at the page ([`push`](Self::push)).
    fn fill_fixed(&mut self, first: u64, depth: u32, k: usize, w: usize, ents: &[&Ent<'_>]) -> Result<()> {
        let out = self.store.write(first, k * PAGE)?;
        for page in out.chunks_exact_mut(PAGE) {
            BucketMut::new(page).init(depth, 0, Format::Fixed(w));
        }
        let written = ents.iter().try_for_each(|e| {
            let Stored::Inline { key, value } = e.stored else {
                return Err("an entry that is not inline in a fixed-width page".to_string());
            };
            let (p, local) = select(e.hash, k);
            BucketMut::new(&mut out[p * PAGE..(p + 1) * PAGE]).append_inline(local, key, value)
        });
        written.map_err(|w| corrupt_bucket(&self.store, first, w))
    }

    /// The hashed format every page of `chains` (the pages of one or more
    /// buckets) has, if they have one and no page has a chain (an overflow
    /// page may hold entries of any size): pages rebuilt from them keep it
    /// (a variable-width format is chosen again from the entries).
    fn common_format(&self, chains: &[Vec<u64>]) -> Result<Option<Format>> {
        let mut common = None;
        for chain in chains {
            let f = self.bucket(chain[0])?.format();
            if chain.len() > 1 || f == Format::Variable || common.is_some_and(|c| c != f) {
                return Ok(None);
            }
            common = Some(f);
        }
        Ok(common)
    }

    /// Frees every page of the bucket of directory entry `e` (one this
    /// operation made and now undoes, or one that is no more).
    fn free_bucket(&mut self, e: u64) -> Result<()> {
        let chains = self.chains(e)?;
        self.free_chains(&chains)
    }

    /// Frees every page of `chains` (the pages of a bucket that is no more).
    /// The heads, a bucket's contiguous pages, go back as one extent when
    /// they are alike (all written since the last commit, or none): the
    /// allocator then merges one extent instead of one per page.
    fn free_chains(&mut self, chains: &[Vec<u64>]) -> Result<()> {
        for chain in chains {
            self.young.remove(&chain[0]);
        }
        let k = chains.len();
        if k > 1 && self.heads_alike(chains) {
            let first = chains[0][0];
            self.store.free_pages(first, k as u64)?;
            for j in 0..k {
                self.touched.remove(&(first + (j * PAGE) as u64));
                decrement(&self.store, &mut self.bucket_pages, "bucket_pages")?;
            }
            for &p in chains.iter().flat_map(|c| &c[1..]) {
                self.free_page(p)?;
            }
            return Ok(());
        }
        for &p in chains.iter().flatten() {
            self.free_page(p)?;
        }
        Ok(())
    }

    /// Whether the heads of `chains` are contiguous pages, all written
    /// since the last commit or none (so freeing them together frees each
    /// as freeing it alone would: at once, or pending until the commit).
    fn heads_alike(&self, chains: &[Vec<u64>]) -> bool {
        let first = chains[0][0];
        let contiguous = chains.iter().enumerate().all(|(j, c)| c[0] == first + (j * PAGE) as u64);
        contiguous
            && (self.store.is_writable(first, chains.len() * PAGE)
                || chains.iter().all(|c| !self.store.is_writable(c[0], PAGE)))
    }

    /// Prepares for `additional` more entries: makes enough buckets at once
    /// that loading them does not split buckets over and over (see
    /// [`reserve_sized`](Self::reserve_sized)). The size of an entry is
    /// estimated from a few buckets; in an empty dict, where there is none
    /// to look at, the buckets are made at the next insertion.
    pub(crate) fn reserve(&mut self, additional: u64) -> Result<()> {
        self.store.writable()?;
        if self.len == 0 {
            self.pending_reserve = self.pending_reserve.max(additional);
            return Ok(());
        }
        let per_page = (PAGE - HEADER) / self.sampled_footprint()?;
        self.reserve_for(self.len.saturating_add(additional), per_page, Format::Variable)
    }

    /// Reserves room for `more` entries beyond those in the dict (and any
    /// pending reservation), of about `size` each.
    pub(crate) fn reserve_sized(&mut self, more: u64, size: Size) -> Result<()> {
        let total = self.len.saturating_add(more).saturating_add(std::mem::take(&mut self.pending_reserve));
        let format = choose_format([size].into_iter());
        self.reserve_for(total, format.per_page(footprint(size.len())), format)
    }

    /// The mean bytes per entry (tag, length and data; in a hashed page, its
    /// share of the page at the maximum load) in up to 8 buckets spread over
    /// the directory.
    fn sampled_footprint(&self) -> Result<usize> {
        let n = self.dir.entries.len();
        let (mut entries, mut bytes) = (0, 0);
        for i in 0..8 {
            let b = self.bucket(base(self.dir.entries[i * n / 8]))?;
            entries += b.len();
            bytes += b.footprint();
        }
        Ok(bytes.div_ceil(entries.max(1)).max(1))
    }

    /// Makes the buckets that `total` entries, `per_page` to a full page, need
    /// (see [`reserve_plan`]): `2^d` of depth `d` and `k` pages each. Nothing
    /// is done if the dict has that many bucket pages already; otherwise
    /// every bucket of less depth or fewer pages is rebuilt so in one pass
    /// (split to depth `d`, each part with at least `k` pages), and an empty
    /// dict gets `2^d` empty buckets at once, their pages contiguous in hash
    /// order, in `format`. A bucket's rebuild fails without changing it (a
    /// full disk); the buckets rebuilt before it stay so (a valid state).
    fn reserve_for(&mut self, total: u64, per_page: usize, format: Format) -> Result<()> {
        let (depth, k) = reserve_plan(total, per_page as u64, self.k_max());
        if (depth == 0 && k == 1) || self.bucket_pages >= (k as u64) << depth {
            return Ok(());
        }
        if self.dir.entries.is_empty() {
            return self.fresh_buckets(depth, k, format);
        }
        let before = self.dir.depth;
        while self.dir.depth < depth {
            self.dir.double();
        }
        let mut idx = 0;
        while idx < self.dir.entries.len() {
            let (e, d, _, count) = self.span(idx)?;
            if (d < depth || pages_in(e) < k)
                && let Err(err) = self.split_to(idx, depth.max(d), k)
            {
                // A failed reservation (a full disk) keeps the buckets it split,
                // but not a directory deeper than they need: up to 2^26
                // entries, kept in memory and written by every later commit.
                self.shrink_directory(before)?;
                return Err(err);
            }
            idx += count;
        }
        Ok(())
    }

    /// Halves the directory to the deepest bucket's depth, but not below `floor`.
    #[cold]
    fn shrink_directory(&mut self, floor: u32) -> Result<()> {
        let (mut deepest, mut idx) = (floor, 0);
        while idx < self.dir.entries.len() {
            let (_, d, _, count) = self.span(idx)?;
            deepest = deepest.max(d);
            idx += count;
        }
        self.dir.halve_to(deepest);
        Ok(())
    }

    /// Makes the first buckets of an empty dict: `2^depth` empty ones of `k`
    /// pages each, in runs of contiguous pages.
    #[cold]
    fn fresh_buckets(&mut self, depth: u32, k: usize, format: Format) -> Result<()> {
        let run = (1u64 << 14) / k as u64 * k as u64;
        let count = (k as u64) << depth;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut made = 0;
        while made < count {
            let n = run.min(count - made);
            match self.store.alloc_pages(n) {
                Ok(a) => runs.push((a, n)),
                Err(e) => {
                    for (a, n) in runs {
                        self.store.free_pages(a, n)?;
                    }
                    return Err(e);
                }
            }
            made += n;
        }
        let mut entries = Vec::with_capacity(1 << depth);
        for (start, n) in runs {
            for p in 0..n {
                let addr = start + p * PAGE as u64;
                BucketMut::new(self.store.write(addr, PAGE)?).init(depth, 0, format);
                self.touched.insert(addr);
                if p % k as u64 == 0 {
                    entries.push(entry(addr, k));
                }
            }
        }
        self.bucket_pages += count;
        self.dir.init_with(depth, entries);
        Ok(())
    }

    /// Splits the bucket at directory index `idx` into `2^(depth - d)`
    /// buckets of depth `depth` (its own depth `d` is at most that, and
    /// `depth` at most the directory's; at `d` the bucket is rebuilt), in one
    /// pass over its entries: new buckets are built (each with the pages
    /// [`pages_for_split`] gives it, and at least `k`), then the old pages
    /// freed.
    #[cold]
    fn split_to(&mut self, idx: usize, depth: u32, k: usize) -> Result<()> {
        let (e, d, start, count) = self.span(idx)?;
        let chains = self.chains(e)?;
        let keep = self.common_format(&chains)?;
        let pages = chains.concat();
        let copies = self.copy_pages(&pages)?;
        let ents = self.entries_of(&copies, &pages)?;
        let parts = 1usize << (depth - d);
        let part_of = |h: u64| (h << d).checked_shr(64 - (depth - d)).unwrap_or(0) as usize;
        let mut groups: Vec<Vec<&Ent<'_>>> = (0..parts).map(|_| Vec::new()).collect();
        for e in &ents {
            groups[part_of(e.hash)].push(e);
        }
        let mut made: Vec<u64> = Vec::with_capacity(parts);
        for group in &groups {
            let pages = pages_for_split(group, None, keep, self.k_max()).max(k);
            match self.build(depth, pages, group, None, keep) {
                Ok(b) => made.push(b),
                Err(err) => {
                    for b in made {
                        self.free_bucket(b)?;
                    }
                    return Err(err);
                }
            }
        }
        self.free_chains(&chains)?;
        let per = count / parts;
        for (i, &b) in made.iter().enumerate() {
            self.dir.set_range(start + i * per, per, b);
        }
        Ok(())
    }

    /// Copies of the bucket pages `pages`, whose entries are about to be
    /// rewritten into other pages: a committed one is verified first, as in
    /// [`copy_page`](Self::copy_page).
    fn copy_pages(&self, pages: &[u64]) -> Result<Vec<Vec<u8>>> {
        let copy = |&p: &u64| {
            if !self.store.is_writable(p, PAGE) {
                self.verify_committed(p)?;
            }
            self.store.read(p, PAGE).map(<[u8]>::to_vec)
        };
        pages.iter().map(copy).collect()
    }

    /// Verifies the checksum of the committed bucket page at `a` (pages
    /// changed since the last commit get theirs at the next commit).
    #[cold]
    fn verify_committed(&self, a: u64) -> Result<()> {
        if xxh3_64(&self.store.read(a, PAGE)?[8..]) != self.bucket(a)?.stored_sum() {
            return Err(corrupt_bucket(&self.store, a, "checksum mismatch (found copying it for a write)".into()));
        }
        Ok(())
    }

    /// The entries of copied pages, with their hashes.
    fn entries_of<'c>(&self, copies: &'c [Vec<u8>], pages: &[u64]) -> Result<Vec<Ent<'c>>> {
        let count = copies.iter().map(|c| Bucket::new(c).map_or(0, |b| b.len())).sum();
        let mut ents = Vec::with_capacity(count);
        for (copy, &p) in copies.iter().zip(pages) {
            let b = Bucket::new(copy).map_err(|w| corrupt_bucket(&self.store, p, w))?;
            let mut c = Cursor::START;
            while let Some(e) = b.next_entry(&mut c) {
                let stored = e.map_err(|w| corrupt_bucket(&self.store, p, w))?.stored;
                let (key, hash) = match stored {
                    Stored::Inline { key, .. } => (Some(key), self.hash(key)),
                    Stored::Packed { key, .. } => (None, self.hash_varint(key)),
                    Stored::OutOfLine { .. } => (None, self.hash(&self.key_of(&stored)?)),
                };
                ents.push(Ent { hash, key, stored, size: Size::of(&stored) });
            }
        }
        Ok(ents)
    }

    /// Rewrites the page `chain[0]` (writable, without a chain), a page of a
    /// bucket of `k` pages and local depth `depth`, to hold `ents` in
    /// `format`, chaining overflow pages (pushed to `chain`) if they do not fit.
    fn write_page<'e, 'c: 'e>(
        &mut self,
        chain: &mut Vec<u64>,
        depth: u32,
        k: usize,
        format: Format,
        ents: impl IntoIterator<Item = &'e Ent<'c>>,
    ) -> Result<()> {
        let head = chain[0];
        let mut ents = ents.into_iter().peekable();
        let mut out = BucketMut::new(self.store.write(head, PAGE)?);
        out.init(depth, 0, format);
        // The common case, without a lookup of the page per entry: packed
        // entries into the packed page while it has room.
        while let Some(&&Ent { hash, stored: Stored::Packed { key, value }, .. }) = ents.peek() {
            if !out.packed_room() {
                break;
            }
            if let Err(w) = out.append_words(select(hash, k).1, key, value) {
                return Err(corrupt_bucket(&self.store, head, w));
            }
            ents.next();
        }
        for e in ents {
            self.push(chain, depth, k, e)?;
        }
        Ok(())
    }

    /// Undoes a rewrite of a bucket that failed (a full disk) into the chains
    /// `lo` (whose head is the old head) and `hi`: puts the head's bytes
    /// `head_copy` back and frees the pages the rewrite added. The old chain's
    /// other pages were only read, so no entry is lost and no page leaks.
    #[cold]
    fn undo_rewrite(&mut self, head_copy: &[u8], lo: &[u64], hi: &[u64]) -> Result<()> {
        self.store.write(lo[0], PAGE)?.copy_from_slice(head_copy);
        for &p in lo[1..].iter().chain(hi) {
            self.free_page(p)?;
        }
        Ok(())
    }

    /// Splits the bucket of hash `h` (local depth `depth`, below the global
    /// depth; its pages `chains` and entries `ents`) into two buckets of
    /// depth + 1, each built with the pages [`pages_for_split`] gives its
    /// entries (and the new entry of hash `h` and `size`, if it goes
    /// there). The old pages are freed once both are built; a failure (a
    /// full disk) frees what was built and changes nothing.
    fn split(
        &mut self,
        h: u64,
        size: Size,
        depth: u32,
        chains: &[Vec<u64>],
        ents: &[&Ent<'_>],
        keep: Option<Format>,
    ) -> Result<()> {
        let (_, _, start, count) = self.span(self.index(h))?;
        let bit = 63 - depth;
        let high = |hash: u64| (hash >> bit) & 1 == 1;
        let (hi_ents, lo_ents): (Vec<&Ent<'_>>, Vec<&Ent<'_>>) = ents.iter().partition(|e| high(e.hash));
        let extra = |side_high: bool| (high(h) == side_high).then_some((h, size));
        let most = self.k_max();
        let lo_pages = pages_for_split(&lo_ents, extra(false), keep, most);
        let hi_pages = pages_for_split(&hi_ents, extra(true), keep, most);
        let lo = self.build(depth + 1, lo_pages, &lo_ents, extra(false), keep)?;
        let hi = match self.build(depth + 1, hi_pages, &hi_ents, extra(true), keep) {
            Ok(hi) => hi,
            Err(err) => {
                self.free_bucket(lo)?;
                return Err(err);
            }
        };
        self.free_chains(chains)?;
        let half = count / 2;
        self.dir.set_range(start, half, lo);
        self.dir.set_range(start + half, half, hi);
        Ok(())
    }

    /// Appends an entry to the last page of `chain` (a page of a bucket of
    /// `k` pages), chaining a new (variable-width) page when it has no room.
    fn push(&mut self, chain: &mut Vec<u64>, depth: u32, k: usize, e: &Ent<'_>) -> Result<()> {
        let h = select(e.hash, k).1;
        let last = *chain.last().expect("a chain has a head");
        if let Stored::Packed { key, value } = e.stored {
            // The common case of a rebuild: a packed entry into a packed page.
            let mut out = BucketMut::new(self.store.write(last, PAGE)?);
            if out.packed_room() {
                return out.append_words(h, key, value).map_err(|w| corrupt_bucket(&self.store, last, w));
            }
        }
        let b = self.bucket(last)?;
        let page = if b.has_room(&e.size) {
            last
        } else {
            let page = self.new_page(depth, FLAG_OVERFLOW, Format::Variable)?;
            BucketMut::new(self.store.write(last, PAGE)?).set_next(Some(page));
            chain.push(page);
            page
        };
        let mut out = BucketMut::new(self.store.write(page, PAGE)?);
        let appended = match e.stored {
            Stored::Inline { key, value } => out.append_inline(h, key, value),
            Stored::Packed { key, value } => out.append_inline(h, Varint::new(key).bytes(), Varint::new(value).bytes()),
            Stored::OutOfLine { addr, klen, vlen } => {
                out.append_ref(h, addr, klen, vlen);
                Ok(())
            }
        };
        appended.map_err(|w| corrupt_bucket(&self.store, page, w))
    }

    /// Overwrites the value of the entry at `loc` when the new entry has the
    /// same inline length; otherwise removes it and inserts anew.
    pub(crate) fn replace(&mut self, h: u64, loc: Loc, key: &[u8], value: &[u8]) -> Result<()> {
        self.store.writable()?;
        let same_size = match loc.value {
            Some((_, vlen)) if loc.packed => vlen == 8 && as_packed(value).is_some(),
            Some((_, vlen)) => vlen == value.len(),
            None => false,
        };
        if let Some((vstart, _)) = loc.value.filter(|_| same_size) {
            let (head, _) = page_of(self.make_writable(self.index(h), h)?, h);
            let page = self.page_at(head, loc.pos)?;
            BucketMut::new(self.store.write(page, PAGE)?).set_value(vstart, value);
            return Ok(());
        }
        self.replace_moving(h, key, value)
    }

    /// Replaces the entry of `key` by one of another size. Everything that
    /// can fail for lack of space (the new out-of-line object, copying the
    /// chain, growing the bucket) happens before the old entry goes, so a
    /// failed replace leaves the old entry in place.
    fn replace_moving(&mut self, h: u64, key: &[u8], value: &[u8]) -> Result<()> {
        let size = Size::of_pair(key, value);
        let obj = if size.inline { None } else { Some(self.new_object(key, value)?) };
        let (e, loc, page) = match self.make_room_for_replace(h, key, size) {
            Ok(x) => x,
            Err(e) => {
                if let Some(obj) = obj {
                    self.store.free(obj, key.len() + value.len())?;
                }
                return Err(e);
            }
        };
        let hash = self.page_hasher(pages_in(e));
        BucketMut::new(self.store.write(loc.page, PAGE)?).remove(loc.i, loc.start, loc.len, hash);
        if let Some((addr, len)) = loc.object {
            self.store.free(addr, len)?;
            decrement(&self.store, &mut self.objects, "objects")?;
        }
        let (head, local) = page_of(e, h);
        self.append_entry(page, local, key, value, obj)?;
        if self.bucket(loc.page)?.len() == 0 {
            // The new entry went to another page of the chain: unlink the
            // emptied page (which needs no allocation: the chain has another page).
            self.empty_page(self.index(h), head, loc.page)?;
        }
        Ok(())
    }

    /// Makes the bucket of `key` (present, of hash `h`) writable and ensures
    /// that an entry of `size` fits once the old entry is removed. Returns the
    /// bucket's directory entry, the old entry's location and the page for
    /// the new entry.
    fn make_room_for_replace(&mut self, h: u64, key: &[u8], size: Size) -> Result<(u64, Loc, u64)> {
        loop {
            let e = self.make_writable(self.index(h), h)?;
            let (head, _) = page_of(e, h);
            let Some(loc) = self.find(h, key)?.map(|f| f.loc) else {
                return Err(corrupt_bucket(&self.store, head, "an entry vanished while it was replaced".into()));
            };
            if self.bucket(loc.page)?.has_room_without(loc.len, &size) {
                return Ok((e, loc, loc.page));
            }
            let mut addr = head;
            loop {
                let b = self.bucket(addr)?;
                if b.has_room(&size) {
                    return Ok((e, loc, addr));
                }
                match b.next() {
                    Some(next) => addr = next,
                    None => break,
                }
            }
            self.grow(h, key, size)?;
        }
    }

    /// The page at position `pos` of the chain starting at `head`.
    fn page_at(&self, head: u64, pos: usize) -> Result<u64> {
        let mut addr = head;
        for _ in 0..pos {
            addr =
                self.bucket(addr)?.next().ok_or_else(|| corrupt_bucket(&self.store, head, "chain too short".into()))?;
        }
        Ok(addr)
    }

    /// Removes the entry at `loc` (found for hash `h`).
    pub(crate) fn remove(&mut self, h: u64, loc: Loc) -> Result<()> {
        self.store.writable()?;
        if self.len == 0 || (loc.object.is_some() && self.objects == 0) {
            return Err(count_underflow(&self.store, if self.len == 0 { "len" } else { "objects" }));
        }
        let idx = self.index(h);
        let e = self.make_writable(idx, h)?;
        let (head, _) = page_of(e, h);
        let page = self.page_at(head, loc.pos)?;
        let hash = self.page_hasher(pages_in(e));
        BucketMut::new(self.store.write(page, PAGE)?).remove(loc.i, loc.start, loc.len, hash);
        if let Some((addr, len)) = loc.object {
            self.store.free(addr, len)?;
            decrement(&self.store, &mut self.objects, "objects")?;
        }
        decrement(&self.store, &mut self.len, "len")?;
        let b = self.bucket(page)?;
        let merge = if b.len() == 0 {
            self.empty_page(idx, head, page)
        } else if loc.pos == 0 && b.next().is_none() && b.footprint() <= MERGE_FILL / 2 {
            self.merge(idx)
        } else {
            Ok(())
        };
        match merge {
            // A merge that cannot finish (a full disk) leaves the buckets as
            // they are (a valid state), and the removal, already done, succeeds.
            Err(Error::Full { .. } | Error::Io { .. }) => Ok(()),
            r => r,
        }
    }

    /// An emptied page leaves its chain, or its bucket merges with its buddy.
    #[cold]
    #[inline(never)]
    fn empty_page(&mut self, idx: usize, head: u64, page: u64) -> Result<()> {
        let pages = self.chain(head)?;
        if pages.len() > 1 {
            let pos = pages.iter().position(|&p| p == page).expect("the page is in its chain");
            let next = pages.get(pos + 1).copied();
            if pos == 0 {
                // Keep the head: move the second page's entries into it by swapping roles.
                let second = pages[1];
                let bytes = self.store.read(second, PAGE)?.to_vec();
                let out = self.store.write(head, PAGE)?;
                out.copy_from_slice(&bytes);
                out[9] &= !FLAG_OVERFLOW;
                self.free_page(second)?;
            } else {
                BucketMut::new(self.store.write(pages[pos - 1], PAGE)?).set_next(next);
                self.free_page(page)?;
            }
            return Ok(());
        }
        self.merge(idx)
    }

    /// Merges the bucket at `idx` with its buddy, and the merged bucket with
    /// its own buddy, as long as the rule of `docs/DESIGN.md` ("EmDict
    /// pages", Merging) allows; then gives the bucket fewer pages if its
    /// entries take at most half of fewer pages.
    fn merge(&mut self, idx: usize) -> Result<()> {
        while self.merge_with_buddy(idx)? {}
        let (e, depth, start, count) = self.span(idx)?;
        if pages_in(e) > 1 {
            self.repack(&[e], depth, start, count)?;
        }
        Ok(())
    }

    /// Merges the bucket at `idx` with its buddy if both have the same depth
    /// and their entries fit [`repack`](Self::repack)'s rule: one bucket of
    /// depth one less then takes them. Returns whether it merged.
    fn merge_with_buddy(&mut self, idx: usize) -> Result<bool> {
        let (e, depth, start, count) = self.span(idx)?;
        if depth == 0 {
            return Ok(false);
        }
        let buddy_start = start ^ count;
        // A buddy whose header is damaged is not merged, as one that fails
        // its checksum (in `repack`): the removal succeeds.
        let (buddy, buddy_depth) = match self.span(buddy_start) {
            Ok((b, d, _, _)) => (b, d),
            Err(Error::Corrupted { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        if buddy_depth != depth || !self.repack(&[e, buddy], depth - 1, start.min(buddy_start), 2 * count)? {
            return Ok(false);
        }
        self.dir.note_merge();
        Ok(true)
    }

    /// Rewrites the buckets `parts` (directory entries) as one new bucket of
    /// local depth `depth`, named by directory entries `start..start +
    /// count`, if none has overflow pages and their entries take at most
    /// half (`MERGE_FILL`) of each of fewer pages than they have: it gets
    /// the fewest pages that holds them so. The old buckets are only read
    /// and then freed, never copied. Returns whether it rewrote them. A
    /// bucket whose committed page fails its checksum (or whose header is
    /// damaged) is left as it is (`Ok(false)`): a valid state, reported by
    /// `check()` and the next write to it.
    fn repack(&mut self, parts: &[u64], depth: u32, start: usize, count: usize) -> Result<bool> {
        let mut chains = Vec::new();
        for &e in parts {
            match self.chains(e) {
                Ok(c) => chains.extend(c),
                Err(Error::Corrupted { .. }) => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        if chains.iter().any(|c| c.len() > 1) {
            return Ok(false);
        }
        let pages: Vec<u64> = chains.iter().flatten().copied().collect();
        let mut used = 0;
        for &p in &pages {
            used += self.bucket(p)?.footprint();
        }
        let Some(k) = (1..=K_MAX).find(|&k| used <= k * MERGE_FILL).filter(|&k| k < pages.len()) else {
            return Ok(false);
        };
        let copies = match self.copy_pages(&pages) {
            Ok(c) => c,
            Err(Error::Corrupted { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        let ents = self.entries_of(&copies, &pages)?;
        let refs: Vec<&Ent<'_>> = ents.iter().collect();
        let keep = self.common_format(&chains)?;
        if !layout_fits(&refs, k, None, FULL, keep) {
            return Ok(false);
        }
        let merged = self.build(depth, k, &refs, None, keep)?;
        self.free_chains(&chains)?;
        self.dir.set_range(start, count, merged);
        Ok(true)
    }

    /// Removes every entry, freeing every page and object.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.store.writable()?;
        let (pages, objects) = self.reachable()?;
        for (addr, len) in objects {
            self.store.free(addr, len as usize)?;
        }
        for addr in pages {
            self.store.free_pages(addr, 1)?;
        }
        for (addr, len) in self.dir.take_file_objects() {
            if len == PAGE as u64 {
                self.store.free_pages(addr, 1)?;
            } else {
                self.store.free(addr, len as usize)?;
            }
        }
        self.dir = Directory::default();
        self.touched.clear();
        self.young.clear();
        self.len = 0;
        self.bucket_pages = 0;
        self.objects = 0;
        Ok(())
    }

    /// Every bucket page and every out-of-line object (address, length).
    fn reachable(&self) -> Result<Reachable> {
        let mut pages = Vec::new();
        let mut objects = Vec::new();
        let mut idx = 0;
        while idx < self.dir.entries.len() {
            let (e, _, _, count) = self.span(idx)?;
            for p in self.chains(e)?.into_iter().flatten() {
                pages.push(p);
                let b = self.bucket(p)?;
                let mut c = Cursor::START;
                while let Some(e) = b.next_entry(&mut c) {
                    let e = e.map_err(|w| corrupt_bucket(&self.store, p, w))?;
                    if let Stored::OutOfLine { addr, klen, vlen } = e.stored {
                        objects.push((addr, klen.saturating_add(vlen)));
                    }
                }
            }
            idx += count;
        }
        Ok((pages, objects))
    }

    /// Every bucket page, overflow pages included (for tests that damage them).
    #[cfg(test)]
    pub(crate) fn all_bucket_pages(&self) -> Vec<u64> {
        self.reachable().expect("a sound dict").0
    }

    /// Commits: sets the checksums of the pages written since the last commit,
    /// saves the directory and writes the root.
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.commit_compacting(false)
    }

    /// Commits, and then, if that left free pages that hold disk blocks,
    /// compacts without a budget and commits again: the pages freed by the
    /// last commit lie between live ones, and only moving the pages above
    /// them lets a commit release them; then the unused part of the last
    /// growth step is released too, so a closed dict holds about its live
    /// pages on disk (`docs/DESIGN.md` §5.4).
    pub(crate) fn close(&mut self) -> Result<()> {
        self.commit()?;
        if !self.store.is_read_only() && self.store.held_free_pages() >= 16 {
            self.commit_compacting(true)?;
            self.store.release_unused();
        }
        Ok(())
    }

    fn commit_compacting(&mut self, all: bool) -> Result<()> {
        if self.store.is_read_only() {
            return Ok(());
        }
        self.store.writable()?;
        self.fit_young()?;
        #[cfg(test)]
        let armed = if self.spare_compaction { self.store.fail_alloc_after.take() } else { None };
        self.compact(all)?;
        #[cfg(test)]
        if armed.is_some() {
            self.store.fail_alloc_after = armed;
        }
        for &addr in &self.touched {
            let mut b = BucketMut::new(self.store.write(addr, PAGE)?);
            let sum = xxh3_64(b.summed());
            b.set_sum(sum);
        }
        let root = if self.dir.entries.is_empty() {
            [0u8; ROOT_SIZE]
        } else {
            self.dir.shrink_after_merges();
            let (index_addr, index_sum) = self.dir.save(&mut self.store)?;
            Root {
                depth: self.dir.depth,
                len: self.len,
                index_addr,
                dir_pages: super::directory::pages_for_depth(self.dir.depth) as u64,
                index_sum,
                bucket_pages: self.bucket_pages,
                objects: self.objects,
            }
            .encode()
        };
        self.store.commit(&root)?;
        self.touched.clear();
        Ok(())
    }

    /// Compaction (`docs/DESIGN.md` §5.4): moves committed bucket pages that
    /// lie above a free page down into the lowest free pages (a copy-on-write
    /// copy, which goes there first-fit), highest first, at most
    /// `max(1024, pages this transaction allocated)` of them (no limit with
    /// `all`). Free space then gathers at the end of the store in runs that
    /// a commit releases.
    fn compact(&mut self, all: bool) -> Result<()> {
        let lowest = self.store.lowest_free_page();
        if lowest.is_none_or(|f| self.dir.highest_bucket().is_none_or(|top| top < f)) {
            return Ok(());
        }
        let mut budget = if all { u64::MAX } else { self.store.pages_allocated_since_commit().max(1024) };
        let mut heads = self.dir.buckets_from_the_top();
        let before = budget;
        for &(e, idx) in &heads {
            let (addr, k) = (base(e), pages_in(e));
            if budget == 0 || self.store.lowest_free_page().is_none_or(|f| f > addr) {
                break;
            }
            // A bucket of k pages moves only if k free pages lie below it.
            let moved = if self.store.is_writable(addr, PAGE) {
                self.move_fresh(idx)
            } else if self.store.first_free_run(k as u64).is_none_or(|f| f > addr) {
                continue;
            } else {
                self.copy_bucket(idx).map(|_| true)
            };
            match moved.map(u64::from) {
                Ok(n) => budget -= n,
                // A damaged page stays where it is, for `check()` to report.
                Err(Error::Corrupted { .. }) => {}
                // Only saves space: a full disk stops it, the commit goes on.
                Err(Error::Full { .. } | Error::Io { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        // Free runs shorter than every bucket above them (a bucket that grew
        // a page at a time left its old, shorter extent behind) take no
        // bucket first fit: from the bottom up, the buckets of this
        // transaction slide down over the free run right below them, and the
        // runs merge as they rise until they join the tail. In the order of
        // where the buckets are now: a run left below a bucket that the
        // pass above moved down would stay there.
        if budget != before {
            heads = self.dir.buckets_from_the_top();
        }
        for &(_, idx) in heads.iter().rev() {
            if budget == 0 {
                break;
            }
            if self.store.lowest_free_page().is_none_or(|f| f > base(self.dir.entries[idx])) {
                continue;
            }
            match self.slide_fresh(idx).map(u64::from) {
                Ok(n) => budget -= n,
                Err(Error::Corrupted { .. }) => {}
                Err(Error::Full { .. } | Error::Io { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Slides the bucket at directory index `idx`, if this transaction made
    /// its pages, down over the free run that ends where it begins
    /// ([`Store::slide_down`]). Its overflow pages, if any, stay where they
    /// are (the links point at them, nothing points back). Returns whether
    /// it moved.
    fn slide_fresh(&mut self, idx: usize) -> Result<bool> {
        let (e, _, start, count) = self.span(idx)?;
        let (old, k) = (base(e), pages_in(e));
        let Some(new) = self.store.slide_down(old, k as u64)? else {
            return Ok(false);
        };
        for j in 0..k {
            self.touched.remove(&(old + (j * PAGE) as u64));
        }
        for j in 0..k {
            self.touched.insert(new + (j * PAGE) as u64);
        }
        self.dir.set_range(start, count, entry(new, k));
        Ok(true)
    }

    /// Moves the bucket at directory index `idx`, allocated in this
    /// transaction, down into the lowest free run of its pages, if one lies
    /// below it: the pages a transaction frees again (a merge's buddy after
    /// its copy) lie between its copies, and only moving the copies above
    /// them into them lets the commit release that space at the end of the
    /// store. Its own pages: no checksum to verify (it is set at the
    /// commit), and the old pages are free at once (§6.1). Returns whether
    /// it moved (a bucket with an overflow page stays).
    fn move_fresh(&mut self, idx: usize) -> Result<bool> {
        let (e, _, start, count) = self.span(idx)?;
        let (old, k) = (base(e), pages_in(e));
        let below = self.store.first_free_run(k as u64).is_some_and(|f| f < old);
        if !below || !self.store.is_writable(old, k * PAGE) {
            return Ok(false);
        }
        for j in 0..k {
            if self.bucket(old + (j * PAGE) as u64)?.next().is_some() {
                return Ok(false);
            }
        }
        let fresh = self.store.alloc_pages(k as u64)?;
        if let Err(err) = self.store.copy(old, fresh, k * PAGE) {
            self.store.free_pages(fresh, k as u64)?;
            return Err(err);
        }
        self.store.free_pages(old, k as u64)?;
        for j in 0..k {
            self.touched.remove(&(old + (j * PAGE) as u64));
            self.touched.insert(fresh + (j * PAGE) as u64);
        }
        self.dir.set_range(start, count, entry(fresh, k));
        Ok(true)
    }

    /// Walks every bucket and object, verifying structure and checksums, then
    /// has the store prove that allocated space equals reachable space.
    pub(crate) fn check(&self) -> Result<CheckReport> {
        let bad = |addr: u64, w: String| corrupt_bucket(&self.store, addr, w);
        let mut objects: Vec<(u64, u64)> = Vec::new();
        let (mut entries, mut pages_seen) = (0u64, 0u64);
        let mut idx = 0;
        while idx < self.dir.entries.len() {
            let (e, depth, start, count) = self.span(idx)?;
            let k = pages_in(e);
            if start != idx || self.dir.entries[idx..idx + count].iter().any(|&a| a != e) {
                return Err(bad(base(e), format!("directory entries {idx}..{} do not all name it", idx + count)));
            }
            let pages = self.chains(e)?.into_iter().enumerate();
            for (j, (pos, p)) in pages.flat_map(|(j, chain)| chain.into_iter().enumerate().map(move |x| (j, x))) {
                pages_seen += 1;
                objects.push((p, PAGE as u64));
                let b = self.bucket(p)?;
                if !self.touched.contains(&p) && xxh3_64(&self.store.read(p, PAGE)?[8..]) != b.stored_sum() {
                    return Err(bad(p, "checksum mismatch".into()));
                }
                let want = if pos == 0 { 0 } else { FLAG_OVERFLOW };
                if b.depth() != depth || b.flags() & !(FLAG_FIXED | FLAG_PACKED) != want {
                    return Err(bad(p, format!("depth {} flags {} in a chain of depth {depth}", b.depth(), b.flags())));
                }
                if b.len() == 0 && pos > 0 {
                    return Err(bad(p, "an empty overflow page".into()));
                }
                let (mut c, mut count, mut bytes) = (Cursor::START, 0, 0);
                while let Some(e) = b.next_entry(&mut c) {
                    let e = e.map_err(|w| bad(p, w))?;
                    let (i, s) = (e.i, e.stored);
                    let h = self.hash(&self.key_of(&s)?);
                    let tag = if b.is_hashed() { tag_of(h) } else { h as u8 };
                    if self.index(h) >> (self.dir.depth - depth) != idx >> (self.dir.depth - depth)
                        || b.tags()[i] != tag
                    {
                        return Err(bad(p, format!("entry {i} is in the wrong bucket for its hash")));
                    }
                    let (page, h) = select(h, k);
                    if page != j {
                        return Err(bad(p, format!("entry {i} is in page {j} of its bucket, its hash selects {page}")));
                    }
                    if b.is_hashed() && !b.reachable(i, home(h, b.tags().len())) {
                        return Err(bad(p, format!("slot {i}: an empty slot lies between it and its home slot")));
                    }
                    if let Stored::Inline { key, value } = s
                        && b.format() == Format::Packed
                        && (as_packed(key).is_none() || as_packed(value).is_none())
                    {
                        return Err(bad(p, format!("slot {i}: not a packed entry in a packed page")));
                    }
                    if let Stored::OutOfLine { addr, klen, vlen } = s {
                        if (varint_len(klen) as u64).saturating_add(klen).saturating_add(vlen) <= MAX_INLINE as u64 {
                            return Err(bad(p, format!("entry {i}: a small entry stored out of line")));
                        }
                        self.object(addr, 0, klen.saturating_add(vlen))?;
                        objects.push((addr, klen.saturating_add(vlen)));
                    }
                    count += 1;
                    bytes += e.len;
                }
                if count != b.len() || bytes != b.used() {
                    let what = format!("{count} entries take {bytes} bytes, header says {} in {}", b.len(), b.used());
                    return Err(bad(p, what));
                }
                entries += count as u64;
            }
            idx += count;
        }
        if entries != self.len {
            return Err(Error::corrupted(
                self.store.dir(),
                format!("{entries} entries found, length says {}", self.len),
            ));
        }
        if pages_seen != self.bucket_pages {
            let what = format!("{pages_seen} bucket pages found, root says {}", self.bucket_pages);
            return Err(Error::corrupted(self.store.dir(), what));
        }
        objects.extend(self.dir.objects());
        self.store.check(&objects)
    }
}

impl Drop for RawDict {
    /// Best-effort flush; errors are lost (call `flush` or `close` to see them).
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn a_reservation_plans_the_fewest_pages_at_its_fill() {
        // 10 M packed entries (210 to a page, planned at 95%: 200): 2^13
        // buckets of 7 pages, 1221 entries a bucket, 175 a page (one-page
        // buckets: 2^16 at 153 a page).
        let (d, k) = reserve_plan(10_000_000, 210, K_MAX);
        assert!((10_000_000u64 >> d).div_ceil(k as u64) <= 200, "{d} {k}");
        assert_eq!((d, k), (13, 7));
        // Every total: pages at most ~1.3x the entries' need at the fill, never under it.
        for total in (1..400).map(|i| i * 37_813) {
            let (d, k) = reserve_plan(total, 210, K_MAX);
            let need = total.div_ceil(200);
            let pages = (k as u64) << d;
            assert!((total >> d).div_ceil(k as u64) <= 200, "{total}: {d} {k}");
            assert!(pages <= need + need / 3 + 1, "{total}: {pages} pages for a need of {need}");
        }
        assert_eq!(reserve_plan(100, 210, K_MAX), (0, 1));
        assert_eq!(reserve_plan(u64::MAX, 210, K_MAX), (MAX_RESERVE_DEPTH, K_MAX));
        assert_eq!(reserve_plan(1000, 210, 1).1, 1);
    }
}

#[cfg(test)]
mod build_tests {
    use super::*;
    use crate::EmDict;
    use crate::emdict::dict::raw_mut;
    use crate::test_util::{Rng, seed, temp_dir};

    /// What a reader sees of the `k` pages at `first`: each page's header
    /// fields past the checksum, its tags, and its occupied slots (an empty
    /// slot's bytes are whatever the page held before).
    fn content(raw: &RawDict, first: u64, k: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..k)
            .map(|j| {
                let page = raw.store.read(first + (j * PAGE) as u64, PAGE).unwrap();
                let b = Bucket::new(page).unwrap();
                let mut c = Cursor::START;
                let mut slots = Vec::new();
                while let Some(i) = b.next_occupied(&mut c) {
                    slots.extend_from_slice(&page[PAGE - (i + 1) * b.width()..PAGE - i * b.width()]);
                }
                (page[8..HEADER].iter().chain(b.tags()).copied().collect(), slots)
            })
            .collect()
    }

    /// The fixed-width rebuild ([`RawDict::fill_fixed`], taken by growths
    /// and splits of fixed-width buckets) writes exactly the pages the
    /// general path ([`RawDict::fill_chains`]) writes for the same entries,
    /// for every bucket of a dict of mixed entry sizes and every page count
    /// the entries fit; then the dict is as it was.
    #[test]
    fn a_fixed_width_rebuild_writes_what_the_general_path_writes() {
        let dir = temp_dir("fixed-rebuild");
        let seed = seed("fixed rebuild");
        let mut rng = Rng(seed);
        let mut d: EmDict<Vec<u8>, Vec<u8>> = EmDict::open(&dir).unwrap();
        for i in 0..3000u64 {
            // Near-uniform sizes (those of 64-byte keys and values): fixed-width
            // pages, with slots wider than some entries.
            let key: Vec<u8> = (0..7).flat_map(|_| rng.next().to_le_bytes()).chain(i.to_le_bytes()).collect();
            let value = vec![i as u8; 62 + rng.below(3) as usize];
            d.insert(key, value).unwrap();
        }
        let raw = raw_mut(&mut d);
        let heads: std::collections::BTreeSet<u64> = raw.dir.entries.iter().copied().collect();
        let mut compared = 0;
        for e in heads {
            let pages = raw.chains(e).unwrap().concat();
            let copies = raw.copy_pages(&pages).unwrap();
            let ents = raw.entries_of(&copies, &pages).unwrap();
            let refs: Vec<&Ent<'_>> = ents.iter().collect();
            let head = raw.bucket(base(e)).unwrap();
            let depth = head.depth();
            let Format::Fixed(w) = head.format() else {
                continue;
            };
            for k in (1..=K_MAX).filter(|&k| fixed_fits(&refs, k, w)) {
                let fast = raw.store.alloc_pages(k as u64).unwrap();
                raw.fill_fixed(fast, depth, k, w, &refs).unwrap();
                let general = raw.store.alloc_pages(k as u64).unwrap();
                let mut chains: Vec<Vec<u64>> = (0..k).map(|j| vec![general + (j * PAGE) as u64]).collect();
                raw.fill_chains(&mut chains, depth, Format::Fixed(w), &refs).unwrap();
                assert!(chains.iter().all(|c| c.len() == 1), "seed {seed:#x}: a chain where the entries fit");
                assert_eq!(content(raw, fast, k), content(raw, general, k), "seed {seed:#x}: bucket {e:#x}, {k} pages");
                raw.store.free_pages(fast, k as u64).unwrap();
                raw.store.free_pages(general, k as u64).unwrap();
                compared += 1;
            }
        }
        assert!(compared > 10, "seed {seed:#x}: only {compared} rebuilds compared");
        d.check().unwrap();
        drop(d);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
