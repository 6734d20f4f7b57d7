//! Addresses and the page-extent free list.
//!
//! An address is a `u64`: the segment number in the top 24 bits and the byte
//! offset inside the segment in the low 40. Free space is a set of page extents,
//! kept three times: by address, to merge neighbours and to search first-fit,
//! and by size class and by size, so that first-fit skips the extents too
//! small for a request.

use std::collections::{BTreeMap, BTreeSet};

pub(crate) use super::meta::PAGE_SIZE;

/// Bits of an address that hold the offset inside a segment.
pub(crate) const SEG_SHIFT: u32 = 40;
/// The largest segment: offsets must stay below `1 << SEG_SHIFT`.
pub(crate) const MAX_SEGMENT_SIZE: u64 = (1 << SEG_SHIFT) - PAGE_SIZE as u64;
/// The most segments a store can have.
pub(crate) const MAX_SEGMENTS: usize = 1 << (64 - SEG_SHIFT);

/// The address of byte `offset` of segment `seg`.
#[inline]
pub(crate) fn addr(seg: usize, offset: u64) -> u64 {
    ((seg as u64) << SEG_SHIFT) | offset
}

/// The segment and offset of an address.
#[inline]
pub(crate) fn split(addr: u64) -> (usize, u64) {
    ((addr >> SEG_SHIFT) as usize, addr & ((1 << SEG_SHIFT) - 1))
}

/// The number of pages that hold `len` bytes.
#[inline]
pub(crate) fn pages_for(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE as u64)
}

/// Size classes of free extents: class `c` holds the extents of
/// `2^c ..= 2^(c+1) - 1` pages.
const SIZE_CLASSES: usize = 64;

#[inline]
fn size_class(pages: u64) -> usize {
    pages.ilog2() as usize
}

/// Free page extents, merged with their neighbours, handed out first-fit:
/// the lowest address that holds a request (`docs/DESIGN.md` §5.1).
#[derive(Debug)]
pub(crate) struct FreeExtents {
    by_addr: BTreeMap<u64, u64>,
    /// Per size class, the start addresses of its extents.
    by_class: Vec<BTreeSet<u64>>,
    /// Per size in pages, the start addresses of its extents: within a
    /// request's own class, first fit looks at each size large enough once,
    /// never at the extents too small.
    by_size: BTreeMap<u64, BTreeSet<u64>>,
    /// Bit `c` set when class `c` has an extent.
    classes: u64,
    pages: u64,
    /// Extents and classes looked at by `first_fit`, to test its cost.
    #[cfg(test)]
    examined: std::cell::Cell<u64>,
}

impl Default for FreeExtents {
    fn default() -> Self {
        FreeExtents {
            by_addr: BTreeMap::new(),
            by_class: vec![BTreeSet::new(); SIZE_CLASSES],
            by_size: BTreeMap::new(),
            classes: 0,
            pages: 0,
            #[cfg(test)]
            examined: std::cell::Cell::new(0),
        }
    }
}

impl FreeExtents {
    /// Adds `n` pages at `start`, merging with adjacent free extents.
    /// Fails, changing nothing, if any of the pages is already free.
    pub(crate) fn insert(&mut self, start: u64, n: u64) -> Result<(), String> {
        debug_assert!(n > 0 && start.is_multiple_of(PAGE_SIZE as u64));
        let end = start + n * PAGE_SIZE as u64;
        let prev = self.by_addr.range(..=start).next_back().map(|(&a, &m)| (a, m));
        let next = self.by_addr.range(start..).next().map(|(&a, &m)| (a, m));
        if let Some((a, m)) = prev
            && a + m * PAGE_SIZE as u64 > start
        {
            return Err(format!("pages at {start:#x} freed twice"));
        }
        if let Some((a, _)) = next
            && a < end
        {
            return Err(format!("pages at {a:#x} freed twice"));
        }
        let (mut s, mut len) = (start, n);
        if let Some((a, m)) = prev.filter(|&(a, m)| a + m * PAGE_SIZE as u64 == start) {
            self.remove(a, m);
            s = a;
            len += m;
        }
        if let Some((a, m)) = next.filter(|&(a, _)| a == end) {
            self.remove(a, m);
            len += m;
        }
        self.add(s, len);
        Ok(())
    }

    fn add(&mut self, start: u64, n: u64) {
        self.by_addr.insert(start, n);
        let c = size_class(n);
        self.by_class[c].insert(start);
        self.by_size.entry(n).or_default().insert(start);
        self.classes |= 1 << c;
        self.pages += n;
    }

    fn remove(&mut self, start: u64, n: u64) {
        self.by_addr.remove(&start);
        let c = size_class(n);
        self.by_class[c].remove(&start);
        if self.by_class[c].is_empty() {
            self.classes &= !(1 << c);
        }
        if let Some(starts) = self.by_size.get_mut(&n) {
            starts.remove(&start);
            if starts.is_empty() {
                self.by_size.remove(&n);
            }
        }
        self.pages -= n;
    }

    /// Takes `n` pages (`n > 0`) from the free extent with the lowest address
    /// that holds them (first fit). Live data thus moves towards the front of
    /// the store as it is copied, and free space gathers in long runs behind
    /// it, where it can be released (§5.4).
    pub(crate) fn take(&mut self, n: u64) -> Option<u64> {
        let start = self.first_fit(n)?;
        let len = self.by_addr[&start];
        self.remove(start, len);
        if len > n {
            self.add(start + n * PAGE_SIZE as u64, len - n);
        }
        Some(start)
    }

    /// The lowest start address of an extent of at least `n` pages: the
    /// least first address of the classes whose every extent is large
    /// enough, and of the sizes of `n`'s own class from `n` up. At most 64
    /// classes and `min(2^class, pages / 2^class)` sizes are looked at,
    /// however many free extents are too small.
    pub(crate) fn first_fit(&self, n: u64) -> Option<u64> {
        if n == 1 {
            return self.by_addr.keys().next().copied();
        }
        let own = size_class(n);
        let whole = if n.is_power_of_two() { own } else { own + 1 };
        let mut best: Option<u64> = None;
        let mut larger = if whole >= SIZE_CLASSES { 0 } else { self.classes >> whole << whole };
        while larger != 0 {
            let c = larger.trailing_zeros() as usize;
            larger &= larger - 1;
            #[cfg(test)]
            self.examined.set(self.examined.get() + 1);
            let first = *self.by_class[c].first().expect("a class bit is set only when the class has an extent");
            best = Some(best.map_or(first, |b| b.min(first)));
        }
        if whole != own {
            let next_class = 1u64.checked_shl(whole as u32).unwrap_or(u64::MAX);
            for starts in self.by_size.range(n..next_class).map(|(_, starts)| starts) {
                #[cfg(test)]
                self.examined.set(self.examined.get() + 1);
                let first = *starts.first().expect("a size is listed only while it has an extent");
                best = Some(best.map_or(first, |b| b.min(first)));
            }
        }
        best
    }

    /// The free extents in address order, as `(start, pages)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.by_addr.iter().map(|(&a, &n)| (a, n))
    }

    pub(crate) fn extent_count(&self) -> usize {
        self.by_addr.len()
    }

    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }
}

/// A set of pages kept as merged, disjoint ranges (`start -> pages`). Unlike
/// [`FreeExtents`] it allows overlapping inserts and removals of pages that are
/// not in it: it is used for page sets that are subsets of the free space
/// (pages released to the file system, pages freed since the last release).
#[derive(Debug, Default)]
pub(crate) struct PageSet {
    ranges: BTreeMap<u64, u64>,
    pages: u64,
}

impl PageSet {
    /// Adds the `n` pages at `start` (some may be in the set already).
    pub(crate) fn insert(&mut self, start: u64, n: u64) {
        if n == 0 {
            return;
        }
        let (mut s, mut e) = (start, start + n * PAGE_SIZE as u64);
        if let Some((&a, &m)) = self.ranges.range(..=s).next_back()
            && a + m * PAGE_SIZE as u64 >= s
        {
            s = a;
            e = e.max(a + m * PAGE_SIZE as u64);
        }
        let absorbed: Vec<(u64, u64)> = self.ranges.range(s..=e).map(|(&a, &m)| (a, m)).collect();
        for (a, m) in absorbed {
            e = e.max(a + m * PAGE_SIZE as u64);
            self.ranges.remove(&a);
            self.pages -= m;
        }
        let len = (e - s) / PAGE_SIZE as u64;
        self.ranges.insert(s, len);
        self.pages += len;
    }

    /// Removes the `n` pages at `start` (some may not be in the set).
    pub(crate) fn remove(&mut self, start: u64, n: u64) {
        for (a, m) in self.overlaps(start, n) {
            let (&first, &len) = self.ranges.range(..=a).next_back().expect("an overlap lies in a range");
            let end = first + len * PAGE_SIZE as u64;
            let cut = a + m * PAGE_SIZE as u64;
            self.ranges.remove(&first);
            self.pages -= len;
            if first < a {
                self.ranges.insert(first, (a - first) / PAGE_SIZE as u64);
                self.pages += (a - first) / PAGE_SIZE as u64;
            }
            if cut < end {
                self.ranges.insert(cut, (end - cut) / PAGE_SIZE as u64);
                self.pages += (end - cut) / PAGE_SIZE as u64;
            }
        }
    }

    /// The parts of the `n` pages at `start` that are in the set, in address order.
    pub(crate) fn overlaps(&self, start: u64, n: u64) -> Vec<(u64, u64)> {
        let end = start + n * PAGE_SIZE as u64;
        let first = self.ranges.range(..=start).next_back().map_or(start, |(&a, _)| a);
        self.ranges
            .range(first..end)
            .filter_map(|(&a, &m)| {
                let (s, e) = (a.max(start), (a + m * PAGE_SIZE as u64).min(end));
                (s < e).then(|| (s, (e - s) / PAGE_SIZE as u64))
            })
            .collect()
    }

    /// The ranges in address order, as `(start, pages)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&a, &n)| (a, n))
    }

    /// Pages in the set.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl FreeExtents {
    /// Takes the whole free extent that starts at `start`, if there is one;
    /// returns its pages.
    pub(crate) fn take_extent(&mut self, start: u64) -> Option<u64> {
        let n = *self.by_addr.get(&start)?;
        self.remove(start, n);
        Some(n)
    }

    /// The free extent holding the page at `page`, as `(start, pages)`.
    pub(crate) fn extent_of(&self, page: u64) -> Option<(u64, u64)> {
        let (&a, &n) = self.by_addr.range(..=page).next_back()?;
        (page < a + n * PAGE_SIZE as u64).then_some((a, n))
    }

    /// Whether any of the `n` pages at `start` is free.
    pub(crate) fn overlaps(&self, start: u64, n: u64) -> bool {
        let end = start + n * PAGE_SIZE as u64;
        // Extents are disjoint: only the last one starting before `end` can reach past `start`.
        self.by_addr.range(..end).next_back().is_some_and(|(&a, &m)| a + m * PAGE_SIZE as u64 > start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const P: u64 = PAGE_SIZE as u64;

    #[test]
    fn neighbours_merge_and_first_fit_wins() {
        let mut f = FreeExtents::default();
        f.insert(0, 2).unwrap();
        f.insert(4 * P, 1).unwrap();
        f.insert(2 * P, 1).unwrap();
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(0, 3), (4 * P, 1)]);
        assert_eq!(f.take(1), Some(0));
        assert_eq!(f.take(2), Some(P));
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(4 * P, 1)]);
        assert_eq!(f.pages(), 1);
        assert_eq!(f.take(2), None);
    }

    #[test]
    fn first_fit_matches_a_scan_in_address_order() {
        let mut f = FreeExtents::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut taken: Vec<(u64, u64)> = Vec::new();
        f.insert(0, 4096).unwrap();
        for step in 0..20_000 {
            let r = next();
            if r & 1 == 0 || taken.is_empty() {
                let n = [1, 1, 2, 3, 5, 8, 13, 16, 17, 100][(r >> 8) as usize % 10];
                let want = f.iter().find(|&(_, m)| m >= n).map(|(a, _)| a);
                assert_eq!(f.take(n), want, "take({n}) at step {step}");
                if let Some(a) = want {
                    taken.push((a, n));
                }
            } else {
                let (a, n) = taken.swap_remove((r >> 8) as usize % taken.len());
                f.insert(a, n).unwrap();
            }
            let total: u64 = f.iter().map(|(_, m)| m).sum();
            assert_eq!(f.pages(), total, "step {step}");
        }
    }

    /// First fit costs a few steps per class, not one per free extent: a
    /// store fragmented into many extents one page too small for a request
    /// (here 20 000 of two pages, and requests of three) must not scan them
    /// on every allocation.
    #[test]
    fn first_fit_does_not_scan_the_extents_too_small_for_a_request() {
        let mut f = FreeExtents::default();
        for i in 0..20_000 {
            f.insert(3 * i * P, 2).unwrap();
        }
        f.insert(60_000 * P, 1000).unwrap();
        for i in 0..100 {
            assert_eq!(f.take(3), Some((60_000 + 3 * i) * P));
        }
        assert_eq!(f.take(2), Some(0), "first fit still");
        let examined = f.examined.get();
        assert!(examined <= 101 * (SIZE_CLASSES as u64 + 4), "{examined} extents examined for 101 requests");
    }

    #[test]
    fn double_free_is_refused() {
        let mut f = FreeExtents::default();
        f.insert(P, 2).unwrap();
        assert!(f.insert(2 * P, 1).is_err());
        assert!(f.insert(0, 2).is_err());
        assert_eq!(f.pages(), 2);
        assert!(f.overlaps(0, 2) && f.overlaps(2 * P, 5) && f.overlaps(0, 10));
        assert!(!f.overlaps(0, 1) && !f.overlaps(3 * P, 4));
    }

    #[test]
    fn segments_never_merge() {
        let mut f = FreeExtents::default();
        f.insert(addr(0, 0), 1).unwrap();
        f.insert(addr(1, 0), 1).unwrap();
        assert_eq!(f.extent_count(), 2);
        assert_eq!(split(addr(3, 8192)), (3, 8192));
    }

    #[test]
    fn page_sets_merge_and_cut() {
        let mut s = PageSet::default();
        s.insert(0, 2);
        s.insert(4 * P, 2);
        s.insert(P, 4); // overlaps both and bridges them
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(0, 6)]);
        assert_eq!(s.pages(), 6);
        s.remove(2 * P, 1);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(0, 2), (3 * P, 3)]);
        assert_eq!(s.overlaps(P, 3), vec![(P, 1), (3 * P, 1)]);
        s.remove(0, 10);
        assert!(s.is_empty());
        assert_eq!(s.pages(), 0);
        s.insert(addr(0, 0), 1);
        s.insert(addr(1, 0), 1);
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn page_sets_match_a_bitmap_model() {
        let mut s = PageSet::default();
        let mut model = [false; 64];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (a, n) = (x % 60, 1 + (x >> 8) % 4);
            if x >> 16 & 1 == 0 {
                s.insert(a * P, n);
                model[a as usize..(a + n) as usize].fill(true);
            } else {
                s.remove(a * P, n);
                model[a as usize..(a + n) as usize].fill(false);
            }
            let mut got = [false; 64];
            for (start, m) in s.iter() {
                got[(start / P) as usize..(start / P + m) as usize].fill(true);
            }
            assert_eq!(got, model, "step {step}");
            assert_eq!(s.pages(), model.iter().filter(|&&b| b).count() as u64);
            assert!(s.iter().zip(s.iter().skip(1)).all(|(a, b)| a.0 + a.1 * P < b.0), "unmerged at step {step}");
        }
    }
}
