//! Bulk insertion: `extend` encodes pairs into a [`Batch`], which is
//! inserted bucket by bucket (grouped by the top bits of the hashes), so each
//! bucket page is brought into the cache once per batch instead of once per
//! entry, and a dict that knows how many entries are coming ([`RawDict::reserve`])
//! makes its buckets once instead of splitting them again and again.

use crate::error::Result;

use super::bucket::as_packed;
use super::raw::{RawDict, Size};

/// The most entries a batch holds before it is inserted.
pub(crate) const MAX_ENTRIES: usize = 1 << 20;
/// The most bytes of encoded keys and values a batch holds before it is inserted.
pub(crate) const MAX_BYTES: usize = 64 << 20;
/// Bits of a sort key that hold the entry's index in its part.
const IDX_BITS: u32 = 24;
const _: () = assert!(MAX_ENTRIES <= 1 << IDX_BITS);
/// A batch is kept in 256 parts by the top byte of the hash: each part is
/// then small enough to sort and read from the cache.
const PARTS: usize = 256;

/// The pairs of a batch whose hashes share their top byte.
#[derive(Debug, Default)]
struct Part {
    /// Every key's bytes followed by its value's, pair after pair.
    bytes: Vec<u8>,
    /// Per pair: where its key ends and where its value ends in `bytes`
    /// (its key starts where the previous value ends).
    ends: Vec<(usize, usize)>,
    /// Per pair: the hash of its key.
    hashes: Vec<u64>,
}

impl Part {
    /// Pair `i`: its hash, key and value.
    #[inline]
    fn pair(&self, i: usize) -> (u64, &[u8], &[u8]) {
        let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
        let (kend, vend) = self.ends[i];
        (self.hashes[i], &self.bytes[start..kend], &self.bytes[kend..vend])
    }

    /// The bytes of all keys.
    fn key_bytes(&self) -> usize {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| e.1));
        self.ends.iter().zip(starts).map(|(e, start)| e.0 - start).sum()
    }

    /// Sort keys of the pairs (the hash with its low bits replaced by the
    /// index), ordered by the hash's bits 63 - `bits` .. 55 (the top byte is
    /// the same for all): a stable LSD radix sort, one byte per pass, so the
    /// pairs of one bucket end up next to each other and, among them, in the
    /// order they were pushed.
    fn group(&self, bits: u32, order: &mut Vec<u64>, scratch: &mut Vec<u64>) {
        let idx_mask = (1u64 << IDX_BITS) - 1;
        order.clear();
        order.extend(self.hashes.iter().enumerate().map(|(i, &h)| (h & !idx_mask) | i as u64));
        scratch.clear();
        scratch.resize(order.len(), 0);
        let passes = bits.saturating_sub(8).div_ceil(8).min((64 - 8 - IDX_BITS) / 8);
        for pass in (0..passes).rev() {
            let shift = 48 - 8 * pass;
            let mut counts = [0usize; 257];
            for &k in order.iter() {
                counts[((k >> shift) & 0xff) as usize + 1] += 1;
            }
            for b in 1..257 {
                counts[b] += counts[b - 1];
            }
            for &k in order.iter() {
                let b = ((k >> shift) & 0xff) as usize;
                scratch[counts[b]] = k;
                counts[b] += 1;
            }
            std::mem::swap(order, scratch);
        }
    }

    /// Reads the part's pairs once in address order, so that the reads in
    /// bucket order that follow find them in the cache (the part was written
    /// long before, among the other parts of the batch, and is a few hundred
    /// KiB: brought in by a sequential pass at memory bandwidth rather than a
    /// cache miss at a time).
    fn warm(&self) {
        let bytes = self.bytes.iter().step_by(64).fold(0u8, |a, &x| a ^ x);
        let ends = self.ends.iter().step_by(4).fold(0usize, |a, e| a ^ e.0);
        std::hint::black_box((bytes, ends));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.hashes.clear();
    }
}

/// Encoded pairs waiting to be inserted together.
#[derive(Debug)]
pub(crate) struct Batch {
    parts: Vec<Part>,
    len: usize,
    bytes: usize,
    /// Every pair so far is packable (see [`Size::packable`]).
    packable: bool,
    /// Sort keys of one part and scratch space for sorting them.
    order: Vec<u64>,
    scratch: Vec<u64>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            parts: (0..PARTS).map(|_| Part::default()).collect(),
            len: 0,
            bytes: 0,
            packable: true,
            order: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

impl Batch {
    /// Adds a pair whose key hashes to `hash`.
    #[inline]
    pub(crate) fn push(&mut self, hash: u64, key: &[u8], value: &[u8]) {
        let part = &mut self.parts[(hash >> 56) as usize];
        part.bytes.extend_from_slice(key);
        let kend = part.bytes.len();
        part.bytes.extend_from_slice(value);
        part.ends.push((kend, part.bytes.len()));
        part.hashes.push(hash);
        self.len += 1;
        self.bytes += key.len() + value.len();
        self.packable &= as_packed(key).is_some() && as_packed(value).is_some();
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch should be inserted before it takes another pair.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len >= MAX_ENTRIES || self.bytes >= MAX_BYTES
    }

    /// The size of the mean pair: its key and value lengths rounded up,
    /// packable if every pair is.
    fn mean_size(&self) -> Size {
        let n = self.len.max(1);
        let keys: usize = self.parts.iter().map(Part::key_bytes).sum();
        let size = Size::new(keys.div_ceil(n), (self.bytes - keys).div_ceil(n));
        Size { packable: self.packable && size.klen <= 10 && size.vlen <= 10, ..size }
    }

    /// Empties the batch, keeping its memory.
    fn clear(&mut self) {
        self.parts.iter_mut().for_each(Part::clear);
        self.len = 0;
        self.bytes = 0;
        self.packable = true;
    }
}

impl RawDict {
    /// Inserts every pair of `batch` (a later pair with the same key replaces
    /// an earlier one, as if inserted one by one in order) and empties it.
    /// `more` is how many pairs are still to come after this batch, as far as
    /// the caller knows: the dict reserves room for them as well.
    ///
    /// On an error the pairs inserted so far stay; which ones they are is
    /// not specified (pairs go in bucket by bucket).
    pub(crate) fn put_batch(&mut self, batch: &mut Batch, more: usize) -> Result<()> {
        if batch.len() == 0 {
            return Ok(());
        }
        self.store.writable()?;
        self.reserve_sized((batch.len() + more) as u64, batch.mean_size())?;
        let (mut order, mut scratch) = (std::mem::take(&mut batch.order), std::mem::take(&mut batch.scratch));
        for part in &batch.parts {
            part.group(self.dir.depth, &mut order, &mut scratch);
            part.warm();
            let mut last = None;
            for &k in &order {
                let (h, key, value) = part.pair((k & ((1 << IDX_BITS) - 1)) as usize);
                last = Some(self.warm_bucket(h, last));
                if self.append_if_absent(h, key, value)? {
                    continue;
                }
                match self.find(h, key)?.map(|f| f.loc) {
                    Some(loc) => self.replace(h, loc, key, value)?,
                    None => self.put_new(h, key, value)?,
                }
            }
        }
        (batch.order, batch.scratch) = (order, scratch);
        batch.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indices(order: &[u64]) -> Vec<usize> {
        order.iter().map(|&k| (k & ((1 << IDX_BITS) - 1)) as usize).collect()
    }

    #[test]
    fn pairs_go_to_parts_by_top_byte() {
        let mut b = Batch::default();
        let hashes = [0xff00_0000_0000_0001u64, 0x0100_0000_0000_0000, 0xff00_0000_0000_0002];
        for (i, &h) in hashes.iter().enumerate() {
            b.push(h, &[i as u8], &[i as u8; 3]);
        }
        let size = b.mean_size();
        assert_eq!((b.len(), size.klen, size.vlen, size.packable), (3, 1, 3, false));
        assert_eq!(b.parts[0xff].pair(1), (hashes[2], &[2u8][..], &[2u8; 3][..]));
        assert_eq!(b.parts[1].pair(0), (hashes[1], &[1u8][..], &[1u8; 3][..]));
        b.clear();
        assert_eq!((b.len(), b.parts[0xff].hashes.len()), (0, 0));
    }

    #[test]
    fn group_is_stable_and_ordered_by_the_bits_below_the_top_byte() {
        let mut p = Part::default();
        let hashes = [0x13_45u64 << 44, 0x13_31 << 44, 0x10_00 << 44, 0x13_40 << 44, 0x13_30 << 44];
        for &h in &hashes {
            p.hashes.push(h);
            p.ends.push((0, 0));
        }
        let (mut order, mut scratch) = (Vec::new(), Vec::new());
        p.group(16, &mut order, &mut scratch);
        assert_eq!(indices(&order), [2, 1, 4, 0, 3]);
        p.group(24, &mut order, &mut scratch);
        assert_eq!(indices(&order), [2, 4, 1, 3, 0]);
        p.group(8, &mut order, &mut scratch);
        assert_eq!(indices(&order), [0, 1, 2, 3, 4]);
    }
}
