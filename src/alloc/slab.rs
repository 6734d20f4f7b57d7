//! The slab allocator: small objects share pages of one size class.
//!
//! Slot occupancy lives in memory and in the committed allocator state, never
//! inside the slab page, so a page holding committed objects is only written
//! where a slot is free. A slot freed since the last commit stays `pending`
//! (unusable) until the next commit, because the committed state may still
//! reach it; a slot allocated since the last commit is `fresh` and writable.

use std::collections::{BTreeSet, HashMap};

use super::pages::PAGE_SIZE;

/// Slot sizes of the slab classes; larger objects get whole pages.
pub(crate) const CLASSES: [u32; 14] = [16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1360, 2048];
/// The largest object the slabs hold.
pub(crate) const MAX_SLAB_OBJECT: u64 = 2048;
/// Bitmap words per page: enough for the smallest class.
const WORDS: usize = PAGE_SIZE / 16 / 64;

type Bits = [u64; WORDS];

/// The class index for an object of `len` bytes (`len <= MAX_SLAB_OBJECT`).
#[inline]
pub(crate) fn class_of(len: u64) -> usize {
    CLASSES.iter().position(|&c| c as u64 >= len).expect("object fits a slab class")
}

/// Slots in a page of class `class`.
pub(crate) fn slots(class: usize) -> usize {
    PAGE_SIZE / CLASSES[class] as usize
}

/// Bitmap words a page of class `class` needs.
pub(crate) fn words(class: usize) -> usize {
    slots(class).div_ceil(64)
}

#[derive(Debug, Clone)]
pub(crate) struct SlabPage {
    pub class: u8,
    pub used: Bits,
    pending: Bits,
    fresh: Bits,
}

impl SlabPage {
    fn new(class: usize, used: Bits) -> Self {
        SlabPage { class: class as u8, used, pending: [0; WORDS], fresh: [0; WORDS] }
    }

    fn first_free(&self) -> Option<usize> {
        let n = slots(self.class as usize);
        (0..WORDS).find_map(|w| {
            let taken = self.used[w] | self.pending[w];
            let free = !taken;
            (free != 0).then(|| w * 64 + free.trailing_zeros() as usize).filter(|&s| s < n)
        })
    }

    fn is_empty(&self) -> bool {
        self.used.iter().chain(&self.pending).all(|&w| w == 0)
    }
}

/// What freeing a slot did to its page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Freed {
    /// The page still holds objects, or slots that the committed state reaches.
    Kept,
    /// The page holds nothing live now or at the last commit: its page is free.
    PageEmpty(u64),
}

/// All slab pages, by page address.
#[derive(Debug)]
pub(crate) struct Slabs {
    pages: HashMap<u64, SlabPage>,
    /// Per class, the pages with an allocatable slot.
    open: Vec<BTreeSet<u64>>,
}

impl Default for Slabs {
    fn default() -> Self {
        Slabs { pages: HashMap::new(), open: vec![BTreeSet::new(); CLASSES.len()] }
    }
}

fn locate(addr: u64) -> (u64, u64) {
    let page = addr & !(PAGE_SIZE as u64 - 1);
    (page, addr - page)
}

impl Slabs {
    /// The page [`alloc`](Self::alloc) would take a slot of class `class` from.
    pub(crate) fn open_page(&self, class: usize) -> Option<u64> {
        self.open[class].first().copied()
    }

    /// Takes a free slot of class `class`, if any page has one.
    pub(crate) fn alloc(&mut self, class: usize) -> Option<u64> {
        let &page = self.open[class].first()?;
        let p = self.pages.get_mut(&page).expect("open pages are slab pages");
        let slot = p.first_free().expect("open pages have a free slot");
        p.used[slot / 64] |= 1 << (slot % 64);
        p.fresh[slot / 64] |= 1 << (slot % 64);
        if p.first_free().is_none() {
            self.open[class].remove(&page);
        }
        Some(page + (slot as u64) * CLASSES[class] as u64)
    }

    /// Makes the (newly allocated, writable) page at `page` a slab page of class `class`.
    pub(crate) fn add_page(&mut self, page: u64, class: usize) {
        self.pages.insert(page, SlabPage::new(class, [0; WORDS]));
        self.open[class].insert(page);
    }

    /// Adds a page loaded from a committed state.
    pub(crate) fn load_page(&mut self, page: u64, class: usize, used: Bits) -> Result<(), String> {
        let p = SlabPage::new(class, used);
        let n = slots(class);
        for (w, &bits) in used.iter().enumerate() {
            let valid = match n.saturating_sub(w * 64) {
                0 => 0,
                k if k >= 64 => u64::MAX,
                k => (1u64 << k) - 1,
            };
            if bits & !valid != 0 {
                return Err(format!("slab page {page:#x} marks slots past the end of its page"));
            }
        }
        if p.first_free().is_some() {
            self.open[class].insert(page);
        }
        if self.pages.insert(page, p).is_some() {
            return Err(format!("slab page {page:#x} listed twice"));
        }
        Ok(())
    }

    /// Frees the object of class `class` at `addr`.
    pub(crate) fn free(&mut self, addr: u64, class: usize) -> Result<Freed, String> {
        let (page, off) = locate(addr);
        let size = CLASSES[class] as u64;
        let p = self.pages.get_mut(&page).ok_or_else(|| format!("free of {addr:#x}: not a slab page"))?;
        if p.class as usize != class || off % size != 0 {
            return Err(format!("free of {addr:#x}: not a slot of class {size}"));
        }
        let slot = (off / size) as usize;
        let (w, bit) = (slot / 64, 1u64 << (slot % 64));
        if p.used[w] & bit == 0 {
            return Err(format!("free of {addr:#x}: slot is not allocated"));
        }
        p.used[w] &= !bit;
        if p.fresh[w] & bit != 0 {
            p.fresh[w] &= !bit;
        } else {
            p.pending[w] |= bit;
        }
        if p.is_empty() {
            self.pages.remove(&page);
            self.open[class].remove(&page);
            return Ok(Freed::PageEmpty(page));
        }
        if p.first_free().is_some() {
            self.open[class].insert(page);
        }
        Ok(Freed::Kept)
    }

    /// Whether the object at `addr` was allocated since the last commit.
    pub(crate) fn is_fresh(&self, addr: u64) -> bool {
        let (page, off) = locate(addr);
        self.pages.get(&page).is_some_and(|p| {
            let slot = (off / CLASSES[p.class as usize] as u64) as usize;
            p.fresh[slot / 64] & (1 << (slot % 64)) != 0
        })
    }

    /// The class of the slab page at `page`, if it is one.
    #[allow(dead_code, reason = "accounting kept for tools and tests")]
    pub(crate) fn class_of_page(&self, page: u64) -> Option<usize> {
        self.pages.get(&page).map(|p| p.class as usize)
    }

    /// Ends a transaction: pending slots become free, fresh slots committed.
    /// Returns the pages that hold nothing any more, which leave the slabs.
    pub(crate) fn commit(&mut self) -> Vec<u64> {
        let mut empty = Vec::new();
        for (&page, p) in &mut self.pages {
            let had_pending = p.pending.iter().any(|&w| w != 0);
            p.pending = [0; WORDS];
            p.fresh = [0; WORDS];
            if p.used.iter().all(|&w| w == 0) {
                empty.push(page);
            } else if had_pending {
                self.open[p.class as usize].insert(page);
            }
        }
        for page in &empty {
            let p = self.pages.remove(page).expect("listed above");
            self.open[p.class as usize].remove(page);
        }
        empty
    }

    /// The slab pages in address order: `(page, class, used bits)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, usize, &Bits)> {
        let mut v: Vec<_> = self.pages.iter().map(|(&a, p)| (a, p.class as usize, &p.used)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v.into_iter()
    }

    #[allow(dead_code, reason = "accounting kept for tools and tests")]
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_size() {
        assert_eq!(class_of(1), 0);
        assert_eq!(class_of(16), 0);
        assert_eq!(class_of(17), 1);
        assert_eq!(CLASSES[class_of(MAX_SLAB_OBJECT)], 2048);
        assert!(CLASSES.windows(2).all(|w| w[0] < w[1]));
        assert!(words(0) <= WORDS);
    }

    #[test]
    fn committed_slots_wait_for_the_next_commit() {
        let mut s = Slabs::default();
        s.add_page(0, 13); // two 2048-byte slots
        let a = s.alloc(13).unwrap();
        let b = s.alloc(13).unwrap();
        assert_eq!((a, b), (0, 2048));
        assert!(s.alloc(13).is_none());
        assert!(s.commit().is_empty());
        assert!(!s.is_fresh(a));
        assert_eq!(s.free(a, 13), Ok(Freed::Kept));
        assert!(s.alloc(13).is_none(), "a committed slot is reused before the commit");
        s.commit();
        assert_eq!(s.alloc(13), Some(0));
        assert!(s.is_fresh(0));
    }

    #[test]
    fn fresh_slots_are_reused_at_once_and_empty_pages_leave() {
        let mut s = Slabs::default();
        s.add_page(4096, 0);
        let a = s.alloc(0).unwrap();
        assert_eq!(s.free(a, 0), Ok(Freed::PageEmpty(4096)));
        assert_eq!(s.len(), 0);
        assert!(s.free(a, 0).is_err());
    }

    #[test]
    fn wrong_frees_are_refused() {
        let mut s = Slabs::default();
        s.add_page(0, 2);
        let a = s.alloc(2).unwrap();
        assert!(s.free(a + 1, 2).is_err());
        assert!(s.free(a, 3).is_err());
        assert!(s.free(a + 48, 2).is_err());
    }
}
