//! The directory of an extendible hash: `2^depth` bucket addresses, indexed by
//! the top `depth` bits of a key's hash. It lives in memory while a dict is
//! open and in the file as copy-on-write pages named by an index object, which
//! the dict's root names. Layouts: `docs/DESIGN.md` ("EmDict pages").

use xxhash_rust::xxh3::xxh3_64;

use crate::alloc::{ROOT_SIZE, Store};
use crate::error::{Error, Result};

use super::bucket::{K_MAX, PAGE};

/// Addresses per directory page.
pub(crate) const PER_PAGE: usize = PAGE / 8;
/// The dict format version recorded in the root.
pub(crate) const DICT_VERSION: u32 = 3;
/// The oldest dict format version this build opens: a version-2 dict is a
/// version-3 dict whose buckets are all one page; its first commit
/// records version 3.
pub(crate) const OLDEST_DICT_VERSION: u32 = 2;
pub(crate) const ROOT_MAGIC: [u8; 8] = *b"EMDICT\0\0";

/// The dict's part of the meta record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Root {
    pub depth: u32,
    pub len: u64,
    pub index_addr: u64,
    pub dir_pages: u64,
    pub index_sum: u64,
    pub bucket_pages: u64,
    pub objects: u64,
}

impl Root {
    pub(crate) fn encode(&self) -> [u8; ROOT_SIZE] {
        let mut r = [0u8; ROOT_SIZE];
        r[0..8].copy_from_slice(&ROOT_MAGIC);
        r[8..12].copy_from_slice(&DICT_VERSION.to_le_bytes());
        r[12..16].copy_from_slice(&self.depth.to_le_bytes());
        let words = [self.len, self.index_addr, self.dir_pages, self.index_sum, self.bucket_pages, self.objects];
        for (i, w) in words.iter().enumerate() {
            r[16 + 8 * i..24 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        r
    }

    /// Decodes a root; `Ok(None)` for the all-zero root of a dict never committed.
    pub(crate) fn decode(r: &[u8; ROOT_SIZE], store: &Store) -> Result<Option<Root>> {
        if r.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let meta = store.dir().join("meta");
        if r[0..8] != ROOT_MAGIC {
            return Err(Error::corrupted(meta, "the dict root has a bad magic"));
        }
        let version = u32::from_le_bytes(r[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_DICT_VERSION..=DICT_VERSION).contains(&version) {
            let how = if version < OLDEST_DICT_VERSION {
                " (an older format: copy its entries into a new dict with the emds that wrote it)"
            } else {
                " (a newer format: open it with a newer emds)"
            };
            let what = format!(
                "dict format version {version}; this build reads versions {OLDEST_DICT_VERSION}..={DICT_VERSION}{how}"
            );
            return Err(Error::incompatible(meta, what));
        }
        let word = |i: usize| u64::from_le_bytes(r[16 + 8 * i..24 + 8 * i].try_into().expect("8 bytes"));
        let root = Root {
            depth: u32::from_le_bytes(r[12..16].try_into().expect("4 bytes")),
            len: word(0),
            index_addr: word(1),
            dir_pages: word(2),
            index_sum: word(3),
            bucket_pages: word(4),
            objects: word(5),
        };
        if root.depth > MAX_DEPTH || root.dir_pages != pages_for_depth(root.depth) as u64 {
            return Err(Error::corrupted(
                meta,
                format!("dict root: depth {} with {} pages", root.depth, root.dir_pages),
            ));
        }
        Ok(Some(root))
    }
}

/// The address of the first page of the bucket a directory entry names.
#[inline]
pub(crate) fn base(entry: u64) -> u64 {
    entry & !(PAGE as u64 - 1)
}

/// The pages of the bucket a directory entry names (its low bits hold pages - 1).
#[inline]
pub(crate) fn pages_in(entry: u64) -> usize {
    (entry & (PAGE as u64 - 1)) as usize + 1
}

/// The directory entry of a bucket of `k` pages at `base`.
#[inline]
pub(crate) fn entry(base: u64, k: usize) -> u64 {
    debug_assert!(base.is_multiple_of(PAGE as u64) && (1..=K_MAX).contains(&k));
    base | (k as u64 - 1)
}

/// The deepest directory the format allows (2^32 addresses, 32 GiB).
pub(crate) const MAX_DEPTH: u32 = 32;

pub(crate) fn pages_for_depth(depth: u32) -> usize {
    (1usize << depth).div_ceil(PER_PAGE)
}

/// The directory in memory and where its pages are in the file.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    /// Bucket addresses; empty until the first bucket exists.
    pub entries: Vec<u64>,
    /// Global depth: `entries.len() == 1 << depth` once non-empty.
    pub depth: u32,
    /// File address of each directory page as last written.
    pages: Vec<u64>,
    /// Checksum of each page as last written.
    sums: Vec<u64>,
    /// Per page: changed since the last save.
    dirty: Vec<bool>,
    /// The index object as last written: address and length.
    index: Option<(u64, usize)>,
    index_sum: u64,
    /// Some page was rewritten since the index was last written: the index
    /// (which names every page) must be written again, even if the save that
    /// rewrote the page failed before it got to the index.
    index_stale: bool,
    /// Buckets merged since the last commit: the commit tries to halve the directory.
    merged: bool,
}

impl Directory {
    /// Reads the directory a committed root names, verifying every checksum.
    pub(crate) fn load(store: &Store, root: &Root) -> Result<Directory> {
        let n = root.dir_pages as usize;
        let ilen = 16 * n;
        let index = store.read(root.index_addr, ilen)?;
        if xxh3_64(index) != root.index_sum {
            let what = format!("directory index at {:#x}: checksum mismatch", root.index_addr);
            return Err(Error::corrupted(store.dir(), what));
        }
        // Every page is read and verified before memory is reserved for the
        // entries: a forged depth then costs at most a failed read per page,
        // and a reservation of 2^depth entries is backed by as many bytes of
        // the store (never 32 GiB for a root that only claims them).
        let mut pages = Vec::new();
        for p in 0..n {
            let addr = u64::from_le_bytes(index[16 * p..16 * p + 8].try_into().expect("8 bytes"));
            let sum = u64::from_le_bytes(index[16 * p + 8..16 * p + 16].try_into().expect("8 bytes"));
            let page = store.read(addr, PAGE).map_err(|_| {
                let what = format!("directory page {p} at {addr:#x} lies outside the store");
                Error::corrupted(store.dir(), what)
            })?;
            if xxh3_64(page) != sum {
                return Err(Error::corrupted(
                    store.dir(),
                    format!("directory page {p} at {addr:#x}: checksum mismatch"),
                ));
            }
            pages.push((addr, sum, page));
        }
        let size = 1usize << root.depth;
        let mut dir = Directory {
            entries: Vec::with_capacity(size),
            depth: root.depth,
            pages: Vec::with_capacity(n),
            sums: Vec::with_capacity(n),
            dirty: vec![false; n],
            index: Some((root.index_addr, ilen)),
            index_sum: root.index_sum,
            index_stale: false,
            merged: false,
        };
        for (p, (addr, sum, page)) in pages.into_iter().enumerate() {
            let take = (size - p * PER_PAGE).min(PER_PAGE);
            for w in page.chunks_exact(8).take(take) {
                let a = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                if pages_in(a) > K_MAX {
                    let what = format!("directory page {p} names a bucket {a:#x} (not a page address | pages - 1)");
                    return Err(Error::corrupted(store.dir(), what));
                }
                // Every page of the bucket lies in the store: the address of
                // page j (base + j·4096) is then computed without overflow.
                if store.read(base(a), pages_in(a) * PAGE).is_err() {
                    let what = format!("directory page {p} names a bucket {a:#x} whose pages lie outside the store");
                    return Err(Error::corrupted(store.dir(), what));
                }
                dir.entries.push(a);
            }
            dir.pages.push(addr);
            dir.sums.push(sum);
        }
        Ok(dir)
    }

    /// Marks the pages holding entries `start..start + count` as changed.
    #[inline]
    pub(crate) fn touch(&mut self, start: usize, count: usize) {
        let (first, last) = (start / PER_PAGE, (start + count - 1) / PER_PAGE);
        let n = self.dirty.len();
        for d in &mut self.dirty[first.min(n)..(last + 1).min(n)] {
            *d = true;
        }
    }

    /// Points entries `start..start + count` at `addr`.
    #[inline]
    pub(crate) fn set_range(&mut self, start: usize, count: usize, addr: u64) {
        self.entries[start..start + count].fill(addr);
        self.touch(start, count);
    }

    /// Doubles the directory: entry `i` of the new one is entry `i / 2` of the old.
    #[cold]
    #[inline(never)]
    pub(crate) fn double(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.entries = old.iter().flat_map(|&a| [a, a]).collect();
        self.depth += 1;
        self.resize_pages();
    }

    /// Halves the directory down to depth `depth`: entry `i` of the new one
    /// is entry `i·2^(old − depth)` of the old. Every bucket's local depth must
    /// be at most `depth`, so that the entries dropped name the same buckets.
    #[cold]
    #[inline(never)]
    pub(crate) fn halve_to(&mut self, depth: u32) {
        if self.depth <= depth {
            return;
        }
        self.entries = self.entries.iter().step_by(1 << (self.depth - depth)).copied().collect();
        self.depth = depth;
        self.resize_pages();
    }

    /// Records that two buckets merged: the next commit may halve the directory.
    pub(crate) fn note_merge(&mut self) {
        self.merged = true;
    }

    /// If buckets merged since the last call, halves the directory as often
    /// as no bucket's local depth equals the global depth any more, which is
    /// when entries `2i` and `2i + 1` name the same bucket for every `i`: a
    /// scan of the entries in memory, no bucket is read. Returns the new depth.
    #[cold]
    #[inline(never)]
    pub(crate) fn shrink_after_merges(&mut self) -> u32 {
        if !std::mem::take(&mut self.merged) {
            return self.depth;
        }
        let (mut depth, mut stride) = (self.depth, 1);
        let e = &self.entries;
        while depth > 0 && (0..e.len()).step_by(2 * stride).all(|i| e[i] == e[i + stride]) {
            depth -= 1;
            stride *= 2;
        }
        self.halve_to(depth);
        depth
    }

    /// Every bucket once, as its head's address and its first directory
    /// index, highest address first: the candidates of compaction (a bucket's
    /// entries are one run of equal addresses, so no bucket is read).
    pub(crate) fn buckets_from_the_top(&self) -> Vec<(u64, usize)> {
        let mut heads: Vec<(u64, usize)> = Vec::new();
        for (i, &a) in self.entries.iter().enumerate() {
            if heads.last().is_none_or(|&(last, _)| last != a) {
                heads.push((a, i));
            }
        }
        heads.sort_unstable_by(|x, y| y.cmp(x));
        heads
    }

    /// The highest bucket address, without sorting.
    pub(crate) fn highest_bucket(&self) -> Option<u64> {
        self.entries.iter().copied().max().map(base)
    }

    /// Makes a directory of depth `depth` whose entry `i` is `entries[i]`
    /// (`2^depth` of them), for the first buckets of an empty dict.
    pub(crate) fn init_with(&mut self, depth: u32, entries: Vec<u64>) {
        debug_assert_eq!(entries.len(), 1 << depth);
        self.entries = entries;
        self.depth = depth;
        self.resize_pages();
    }

    /// Makes a one-entry directory for the first bucket.
    pub(crate) fn init(&mut self, addr: u64) {
        self.entries = vec![addr];
        self.depth = 0;
        self.resize_pages();
    }

    /// After a resize every page is rewritten; old pages stay listed until the save frees them.
    fn resize_pages(&mut self) {
        let n = pages_for_depth(self.depth);
        self.dirty.clear();
        self.dirty.resize(n, true);
    }

    /// Addresses of the directory's pages and index object in the file, for `check`.
    pub(crate) fn objects(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.pages.iter().map(|&p| (p, PAGE as u64)).chain(self.index.map(|(a, l)| (a, l as u64)))
    }

    /// Writes the changed pages (copy-on-write) and, if any page moved, a new
    /// index. Returns the index address and checksum for the root.
    pub(crate) fn save(&mut self, store: &mut Store) -> Result<(u64, u64)> {
        let n = pages_for_depth(self.depth);
        // Any changed page changes the index, which holds each page's checksum.
        self.index_stale |= self.index.is_none() || self.pages.len() != n;
        // Pages beyond the new size (never after a doubling; kept for symmetry) are freed.
        while self.pages.len() > n {
            let p = self.pages.pop().expect("non-empty");
            self.sums.pop();
            store.free_pages(p, 1)?;
        }
        for p in 0..n {
            if !self.dirty[p] {
                continue;
            }
            let existing = self.pages.get(p).copied();
            let addr = match existing {
                Some(a) if store.is_writable(a, PAGE) => a,
                _ => {
                    let a = store.alloc_pages(1)?;
                    if let Some(old) = existing {
                        store.free_pages(old, 1)?;
                    }
                    a
                }
            };
            let from = p * PER_PAGE;
            let to = (from + PER_PAGE).min(self.entries.len());
            let out = store.write(addr, PAGE)?;
            for (w, a) in out.chunks_exact_mut(8).zip(&self.entries[from..to]) {
                w.copy_from_slice(&a.to_le_bytes());
            }
            out[(to - from) * 8..].fill(0);
            let sum = xxh3_64(out);
            if p < self.pages.len() {
                self.pages[p] = addr;
                self.sums[p] = sum;
            } else {
                self.pages.push(addr);
                self.sums.push(sum);
            }
            self.dirty[p] = false;
            self.index_stale = true;
        }
        if self.index_stale {
            let len = 16 * n;
            let addr = store.alloc(len)?;
            let out = store.write(addr, len)?;
            for (p, chunk) in out.chunks_exact_mut(16).enumerate() {
                chunk[..8].copy_from_slice(&self.pages[p].to_le_bytes());
                chunk[8..].copy_from_slice(&self.sums[p].to_le_bytes());
            }
            self.index_sum = xxh3_64(out);
            if let Some((old, old_len)) = self.index.replace((addr, len)) {
                store.free(old, old_len)?;
            }
            self.index_stale = false;
        }
        let (addr, _) = self.index.expect("an index was written");
        Ok((addr, self.index_sum))
    }

    /// Forgets the file pages after they were freed (by `clear`).
    pub(crate) fn take_file_objects(&mut self) -> Vec<(u64, u64)> {
        let objs: Vec<_> = self.objects().collect();
        self.pages.clear();
        self.sums.clear();
        self.index = None;
        self.index_stale = false;
        objs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(entries: &[u64]) -> Directory {
        let mut d = Directory::default();
        d.init_with(entries.len().trailing_zeros(), entries.to_vec());
        d
    }

    #[test]
    fn halves_only_after_a_merge_and_while_every_pair_is_one_bucket() {
        let mut d = dir(&[1, 1, 2, 2, 3, 3, 3, 3]);
        assert_eq!(d.shrink_after_merges(), 3, "no merge since the last commit: no scan");
        d.note_merge();
        assert_eq!(d.shrink_after_merges(), 2);
        assert_eq!(d.entries, vec![1, 2, 3, 3]);
        d.note_merge();
        assert_eq!(d.shrink_after_merges(), 2, "bucket 1 and 2 still have the global depth");
        assert_eq!(d.entries, vec![1, 2, 3, 3]);
        let mut d = dir(&[7; 16]);
        d.note_merge();
        assert_eq!(d.shrink_after_merges(), 0);
        assert_eq!(d.entries, vec![7]);
        let mut d = dir(&[1, 2]);
        d.note_merge();
        assert_eq!(d.shrink_after_merges(), 1);
    }

    #[test]
    fn a_halved_directory_rewrites_fewer_pages() {
        let mut d = dir(&vec![5; 4 * PER_PAGE]);
        assert_eq!(d.dirty.len(), 4);
        d.note_merge();
        d.shrink_after_merges();
        assert_eq!((d.depth, d.dirty.len()), (0, 1));
    }
}
