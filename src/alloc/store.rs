//! The store: a directory of mapped segment files, an allocator over them, and
//! the commit that makes a state durable. The protocol is specified in
//! `docs/DESIGN.md`; this file follows it step by step.

use std::fs::{self, File};
use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Advice;
use xxhash_rust::xxh3::xxh3_64;

use super::meta::{Kind, Meta, RECORD_SIZE, ROOT_SIZE, SLOT_SIZE, SlotError};
use super::os::{self, Mapping};
use super::pages::{FreeExtents, MAX_SEGMENT_SIZE, MAX_SEGMENTS, PAGE_SIZE, PageSet, addr, pages_for, split};
use super::slab::{self, CLASSES, Freed, MAX_SLAB_OBJECT, Slabs};
use super::state::{self, SegInfo};
use crate::error::{Error, Result};
use crate::options::OpenOptions;

const PAGE: u64 = PAGE_SIZE as u64;
/// The largest page-cache folio the store allows for: a transparent huge
/// page (2 MiB on x86-64, and on arm64 with 4 KiB pages). See §8.
const HUGE: u64 = 2 << 20;

/// One segment file and its mapping.
#[derive(Debug)]
struct Segment {
    file: File,
    map: Mapping,
    info: SegInfo,
    /// One bit per page: allocated since the last commit, so writable in place.
    dirty: Vec<u64>,
    /// Whether any page of this segment was written since the last commit.
    written: bool,
    /// Where the range advised for huge pages begins (it runs to the end of
    /// the segment), or `None` if none is; see [`Store::advise_huge`].
    huge_from: Option<u64>,
}

/// What [`check`](crate::EmDict::check) found: sizes of a store that passed
/// (also returned by [`EmList::check`](crate::EmList::check) and
/// [`EmVec::check`](crate::EmVec::check)).
///
/// # Examples
///
/// ```
/// use emds::EmDict;
///
/// # let dir = std::env::temp_dir().join(format!("emds-doc-check-report-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut d: EmDict<u64, String> = EmDict::open(&dir)?;
/// d.insert(1, "x".repeat(100_000))?;
/// let report = d.check()?;
/// assert!(report.segments >= 1);
/// assert!(report.bytes_live >= 100_000);
/// # drop(d);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Segment files.
    pub segments: usize,
    /// Bytes of address space the segment files span.
    pub bytes_reserved: u64,
    /// Bytes backed by disk blocks (preallocated).
    pub bytes_backed: u64,
    /// Backed bytes in free pages, or freed since the last commit.
    pub bytes_free: u64,
    /// Of the free bytes, those that may hold no disk blocks: released to the
    /// file system (a punched hole), or free since the store was opened. They
    /// are reserved again before they are reused.
    pub bytes_released: u64,
    /// Live objects reached from the structure's root.
    pub objects: u64,
    /// Bytes of those objects.
    pub bytes_live: u64,
    /// Pages of the slab allocator.
    pub slab_pages: u64,
}

/// A store opened read-write or read-only.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    _lock: File,
    meta_file: File,
    segs: Vec<Segment>,
    read_only: bool,
    opts: OpenOptions,
    committed: Meta,
    free: FreeExtents,
    /// Extents freed since the last commit that the committed state reaches.
    pending: Vec<(u64, u64)>,
    /// Free pages that may hold no disk blocks (released, or free since the
    /// store was opened): reserved again before they are handed out.
    unreserved: PageSet,
    /// Free pages not released since they were freed: the candidates of the
    /// release after the next commit.
    unreleased: PageSet,
    /// Release free runs in free extents of at least this many pages; 0 never.
    release_min: u64,
    /// Whether the store grew (backed more pages) since the last commit: the
    /// commit then releases the unused part of the growth (§5.4).
    grew: bool,
    /// Whether the record read at open is known to be on disk: true after a
    /// commit (its `fdatasync` covers the whole meta file) or for a store that
    /// is not durable. Until then no page free at open is reused (§5.4).
    record_synced: bool,
    slabs: Slabs,
    /// Extents marked dirty since the last commit, to clear at commit.
    dirty_extents: Vec<(u64, u64)>,
    /// Pages holding the committed allocator state.
    state_extent: Option<(u64, u64)>,
    /// Segments created since the last commit.
    new_segments: Vec<usize>,
    poisoned: Option<String>,
    changed: bool,
    /// Test hook: the next commit's data sync fails as an fsync error would.
    #[cfg(test)]
    pub(crate) fail_next_sync: bool,
    /// Test hook: after this many more allocations succeed, the next fails as
    /// a full disk would (`Error::Full`); `None` never fails.
    #[cfg(test)]
    pub(crate) fail_alloc_after: Option<u64>,
    /// Test hook: the next re-reservation of released space fails as a full disk would.
    #[cfg(test)]
    pub(crate) fail_next_reserve: bool,
    /// Test hook: how many times the meta record read at open was synced.
    #[cfg(test)]
    pub(crate) open_syncs: u32,
}

fn seg_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("seg.{i:06}"))
}

pub(crate) fn random_seed() -> u64 {
    RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

impl Store {
    /// Opens (or creates) the store in `dir` holding a structure of `kind`.
    /// `type_size` and `type_align` describe the element type where the kind has one.
    pub(crate) fn open(dir: &Path, opts: &OpenOptions, kind: Kind, type_size: u32, type_align: u32) -> Result<Store> {
        let dir = dir.to_path_buf();
        let writable = !opts.read_only;
        if writable && opts.create {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create store directory", &dir, e))?;
        }
        let lock = Self::lock(&dir, writable)?;
        let meta_path = dir.join("meta");
        if writable && opts.truncate {
            Self::remove_files(&dir)?;
        }
        let exists = fs::metadata(&meta_path).map(|m| m.len() > 0).unwrap_or(false);
        if !exists {
            if !(writable && opts.create) {
                let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no emds store here");
                return Err(Error::io("open store", &meta_path, e));
            }
            Self::init(&dir, kind, type_size, type_align)?;
        }
        let meta_file = File::options()
            .read(true)
            .write(writable)
            .open(&meta_path)
            .map_err(|e| Error::io("open", &meta_path, e))?;
        let committed = Self::read_meta(&meta_file, &meta_path)?;
        if committed.kind != kind || committed.type_size != type_size || committed.type_align != type_align {
            return Err(Error::WrongKind {
                path: dir,
                expected: describe(kind, type_size, type_align),
                found: describe(committed.kind, committed.type_size, committed.type_align),
            });
        }
        let mut store = Store {
            dir,
            _lock: lock,
            meta_file,
            segs: Vec::new(),
            read_only: !writable,
            opts: opts.clone(),
            committed,
            free: FreeExtents::default(),
            pending: Vec::new(),
            unreserved: PageSet::default(),
            unreleased: PageSet::default(),
            release_min: if writable { opts.release_min.div_ceil(PAGE) } else { 0 },
            grew: false,
            record_synced: !opts.durable,
            slabs: Slabs::default(),
            dirty_extents: Vec::new(),
            state_extent: None,
            new_segments: Vec::new(),
            poisoned: None,
            changed: false,
            #[cfg(test)]
            fail_next_sync: false,
            #[cfg(test)]
            fail_alloc_after: None,
            #[cfg(test)]
            fail_next_reserve: false,
            #[cfg(test)]
            open_syncs: 0,
        };
        store.load_segments()?;
        if writable {
            store.after_open()?;
            if exists {
                // Before this handle writes anything at all, not only before
                // it reuses a free page: see `sync_open_record`.
                store.sync_open_record()?;
            }
        }
        Ok(store)
    }

    /// A read-write open counts every free page as possibly released: which
    /// ones a previous session punched is not recorded (`docs/DESIGN.md` §5.4).
    fn after_open(&mut self) -> Result<()> {
        for (start, n) in self.free.iter() {
            self.unreserved.insert(start, n);
            self.unreleased.insert(start, n);
        }
        Ok(())
    }

    /// Makes the meta record read at open durable (once; a read-write open of
    /// a durable store does it before the handle writes anything). Its writer
    /// may have died between the record's `pwrite` and its `fdatasync` (§6.2
    /// step 3); without this, writes into space that the record frees but the
    /// one before it reaches (pages, slab slots, the tail of an
    /// `EmList`/`EmVec` chunk past a truncation) could reach the disk while
    /// the record does not, and a power loss would leave the previous record
    /// with that space overwritten. Cheap when the file is clean (about 2 ms
    /// on the development VM's ext4, which still flushes the disk cache).
    fn sync_open_record(&mut self) -> Result<()> {
        if !self.record_synced {
            let path = self.dir.join("meta");
            self.meta_file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
            self.record_synced = true;
            #[cfg(test)]
            {
                self.open_syncs += 1;
            }
        }
        Ok(())
    }

    fn lock(dir: &Path, writable: bool) -> Result<File> {
        let path = dir.join("lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|e| if writable { Err(e) } else { File::open(&path) })
            .map_err(|e| Error::io("open lock file", &path, e))?;
        let taken = if writable { file.try_lock() } else { file.try_lock_shared() };
        match taken {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
        }
    }

    fn remove_files(dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io("list store directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list store directory", dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "meta" || name == "meta.tmp" || name.starts_with("seg.") {
                fs::remove_file(entry.path()).map_err(|e| Error::io("remove", entry.path(), e))?;
            }
        }
        sync_dir(dir)
    }

    /// Writes the first meta record of a new, empty store, atomically: a crash
    /// leaves either no `meta` file (the store does not exist yet) or a whole one.
    fn init(dir: &Path, kind: Kind, type_size: u32, type_align: u32) -> Result<()> {
        let meta = Meta {
            txn: 1,
            kind,
            hash_seed: random_seed(),
            type_size,
            type_align,
            seg_count: 0,
            state_addr: 0,
            state_len: 0,
            state_sum: 0,
            root: [0; ROOT_SIZE],
        };
        let mut buf = vec![0u8; 2 * SLOT_SIZE];
        buf[SLOT_SIZE..SLOT_SIZE + RECORD_SIZE].copy_from_slice(&meta.encode());
        let tmp = dir.join("meta.tmp");
        let write = || -> std::io::Result<()> {
            let f = File::options().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all_at(&buf, 0)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io("write", &tmp, e))?;
        let meta_path = dir.join("meta");
        fs::rename(&tmp, &meta_path).map_err(|e| Error::io("rename", &meta_path, e))?;
        sync_dir(dir)
    }

    /// Reads both meta slots and picks the valid one with the higher transaction id.
    fn read_meta(file: &File, path: &Path) -> Result<Meta> {
        let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
        if len != 2 * SLOT_SIZE as u64 {
            return Err(Error::corrupted(path, format!("meta file is {len} bytes, expected {}", 2 * SLOT_SIZE)));
        }
        let mut buf = vec![0u8; 2 * SLOT_SIZE];
        file.read_exact_at(&mut buf, 0).map_err(|e| Error::io("read", path, e))?;
        let slots = [Meta::decode(&buf[..SLOT_SIZE]), Meta::decode(&buf[SLOT_SIZE..])];
        match slots {
            [Ok(a), Ok(b)] => Ok(if a.txn >= b.txn { a } else { b }),
            [Ok(m), Err(_)] | [Err(_), Ok(m)] => Ok(m),
            [Err(a), Err(b)] => Err(match (a, b) {
                (SlotError::Foreign, _) | (_, SlotError::Foreign) => {
                    Error::incompatible(path, "not an emds meta file (bad magic)")
                }
                (SlotError::Incompatible(w), _) | (_, SlotError::Incompatible(w)) => Error::incompatible(path, w),
                (a, b) => Error::corrupted(path, format!("no valid meta record: slot 0 {a:?}, slot 1 {b:?}")),
            }),
        }
    }

    /// Maps the committed segments and loads the committed allocator state.
    fn load_segments(&mut self) -> Result<()> {
        let m = &self.committed;
        for i in 0..m.seg_count as usize {
            let path = seg_path(&self.dir, i);
            let file = File::options()
                .read(true)
                .write(!self.read_only)
                .open(&path)
                .map_err(|e| Error::io("open segment", &path, e))?;
            let len = file.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
            if len == 0 || len > MAX_SEGMENT_SIZE || len % PAGE != 0 {
                return Err(Error::corrupted(&path, format!("segment file is {len} bytes")));
            }
            let map = Mapping::new(&file, len as usize, !self.read_only).map_err(|e| Error::io("map", &path, e))?;
            let info = SegInfo { size: len, backed: len };
            self.segs.push(Segment { file, map, info, dirty: Vec::new(), written: false, huge_from: None });
        }
        if m.state_len == 0 {
            if m.seg_count != 0 {
                return Err(self.meta_corrupted("segments listed without an allocator state"));
            }
            return Ok(());
        }
        let (state_addr, state_len, state_sum) = (m.state_addr, m.state_len, m.state_sum);
        let len = usize::try_from(state_len).map_err(|_| self.meta_corrupted("allocator state too long"))?;
        let bytes = self.read(state_addr, len)?;
        if xxh3_64(bytes) != state_sum {
            return Err(Error::corrupted(&self.dir, format!("allocator state at {state_addr:#x}: checksum mismatch")));
        }
        let st = state::decode(bytes).map_err(|w| Error::corrupted(&self.dir, w))?;
        self.adopt_state(st, state_addr, state_len)
    }

    fn meta_corrupted(&self, what: &str) -> Error {
        Error::corrupted(self.dir.join("meta"), what)
    }

    fn adopt_state(&mut self, st: state::State, state_addr: u64, state_len: u64) -> Result<()> {
        if st.segs.len() != self.segs.len() {
            return Err(self.meta_corrupted("segment count differs from the allocator state"));
        }
        for (i, (seg, info)) in self.segs.iter_mut().zip(&st.segs).enumerate() {
            let ok = info.size <= seg.info.size && info.backed <= info.size && info.backed % PAGE == 0;
            if !ok {
                let what = format!("recorded {info:?}, file has {} bytes", seg.info.size);
                return Err(Error::corrupted(seg_path(&self.dir, i), what));
            }
            seg.info = *info;
            if !self.read_only {
                seg.dirty = vec![0; (info.size / PAGE).div_ceil(64) as usize];
            }
        }
        let corrupt = |w: String| Error::corrupted(&self.dir, format!("allocator state: {w}"));
        for &(start, n) in &st.free {
            self.check_extent(start, n).map_err(corrupt)?;
            self.free.insert(start, n).map_err(corrupt)?;
        }
        for (page, class, used) in st.slabs {
            self.check_extent(page, 1).map_err(corrupt)?;
            self.slabs.load_page(page, class, used).map_err(corrupt)?;
        }
        self.check_extent(state_addr, pages_for(state_len)).map_err(corrupt)?;
        self.state_extent = Some((state_addr, pages_for(state_len)));
        self.check_disjoint().map_err(corrupt)
    }

    /// Free extents, slab pages and the allocator state must not share a page:
    /// a damaged state that says otherwise is refused at open, before it could
    /// hand out a page twice.
    fn check_disjoint(&self) -> std::result::Result<(), String> {
        let slabs = self.slabs.iter().map(|(page, _, _)| (page, 1));
        let mut extents: Vec<(u64, u64)> = self.free.iter().chain(slabs).chain(self.state_extent).collect();
        extents.sort_unstable();
        match extents.windows(2).find(|w| w[0].0 + w[0].1 * PAGE > w[1].0) {
            Some(w) => Err(format!("extents at {:#x} and {:#x} overlap", w[0].0, w[1].0)),
            None => Ok(()),
        }
    }

    /// Whether `n` pages at `start` are page-aligned and backed.
    fn check_extent(&self, start: u64, n: u64) -> std::result::Result<(), String> {
        let (seg, off) = split(start);
        let end = n.checked_mul(PAGE).and_then(|b| off.checked_add(b));
        match (self.segs.get(seg), end) {
            (Some(s), Some(end)) if off % PAGE == 0 && n > 0 && end <= s.info.backed => Ok(()),
            _ => Err(format!("extent of {n} pages at {start:#x} is outside the store")),
        }
    }

    /// The structure's root as last committed (or as created).
    pub(crate) fn root(&self) -> &[u8; ROOT_SIZE] {
        &self.committed.root
    }

    /// The seed of the store's key hash, fixed at creation.
    pub(crate) fn hash_seed(&self) -> u64 {
        self.committed.hash_seed
    }

    /// The lowest free page, where the next allocation of a page goes (first
    /// fit, §5.1): a page above it can be moved down by copying it.
    pub(crate) fn lowest_free_page(&self) -> Option<u64> {
        self.free.iter().next().map(|(start, _)| start)
    }

    /// Where an allocation of `n` pages would go if it were made now (the
    /// first fit, §5.1); `None` if it would grow the store.
    pub(crate) fn first_free_run(&self, n: u64) -> Option<u64> {
        self.free.first_fit(n)
    }

    /// Free pages that still hold their disk blocks (not released, §5.4).
    pub(crate) fn held_free_pages(&self) -> u64 {
        self.free.pages() - self.unreserved.pages()
    }

    /// Pages allocated since the last commit (still allocated or not): the
    /// size of the transaction's writes, for budgets proportional to them.
    pub(crate) fn pages_allocated_since_commit(&self) -> u64 {
        self.dirty_extents.iter().map(|&(_, n)| n).sum()
    }

    /// Bytes of the store backed by disk blocks: a bound on anything a
    /// committed root may count (pages, objects, entries), for validation on open.
    pub(crate) fn backed_bytes(&self) -> u64 {
        self.segs.iter().map(|s| s.info.backed).fold(0, u64::saturating_add)
    }

    /// The store's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Fails unless writes are allowed: the store is read-write and not poisoned.
    #[inline]
    pub(crate) fn writable(&self) -> Result<()> {
        if self.read_only || self.poisoned.is_some() {
            return Err(self.not_writable());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn not_writable(&self) -> Error {
        match &self.poisoned {
            Some(cause) if !self.read_only => Error::Poisoned { path: self.dir.clone(), cause: cause.clone() },
            _ => Error::ReadOnly { path: self.dir.clone() },
        }
    }

    /// The `len` bytes at `addr`, or a corruption error if they are not inside the store.
    #[inline]
    pub(crate) fn read(&self, addr: u64, len: usize) -> Result<&[u8]> {
        let (seg, off) = split(addr);
        if let Some(s) = self.segs.get(seg)
            && let Some(end) = off.checked_add(len as u64).filter(|&e| e <= s.info.backed)
        {
            return Ok(&s.map.bytes()[off as usize..end as usize]);
        }
        Err(self.bad_reference(addr, len))
    }

    #[cold]
    #[inline(never)]
    fn bad_reference(&self, addr: u64, len: usize) -> Error {
        Error::corrupted(&self.dir, format!("reference to {len} bytes at {addr:#x} lies outside the store"))
    }

    /// Whether `len` bytes at `addr` were allocated since the last commit (and so
    /// may be written in place without touching the committed state).
    pub(crate) fn is_writable(&self, addr: u64, len: usize) -> bool {
        let (seg, off) = split(addr);
        let Some(s) = self.segs.get(seg) else {
            return false;
        };
        let first = off / PAGE;
        let last = (off + len.max(1) as u64 - 1) / PAGE;
        let dirty = (first..=last).all(|p| s.dirty.get((p / 64) as usize).is_some_and(|w| w >> (p % 64) & 1 == 1));
        dirty || (len as u64 <= MAX_SLAB_OBJECT && self.slabs.is_fresh(addr))
    }

    /// The `len` writable bytes at `addr`, which must have been allocated since
    /// the last commit; anything else is a bug that would break the commit protocol.
    #[inline]
    pub(crate) fn write(&mut self, addr: u64, len: usize) -> Result<&mut [u8]> {
        self.writable()?;
        if !self.is_writable(addr, len) {
            return Err(self.committed_write(addr, len));
        }
        let (seg, off) = split(addr);
        let s = &mut self.segs[seg];
        s.written = true;
        let bytes = s.map.bytes_mut().expect("a read-write store maps segments writable");
        Ok(&mut bytes[off as usize..off as usize + len])
    }

    /// The `len` bytes at `addr` for writing in place, although they may have
    /// been allocated before the last commit. Only bounds are checked.
    ///
    /// # Correctness
    ///
    /// The caller guarantees that the committed state does not reach these
    /// bytes: they lie past the committed length of a sequence, or they are
    /// shadowed by a copy that the committed state reads instead (see
    /// `docs/DESIGN.md`, "EmList and EmVec pages"). Writing bytes the committed
    /// state reaches would break crash consistency (§6.1).
    #[inline]
    pub(crate) fn write_unreached(&mut self, addr: u64, len: usize) -> Result<&mut [u8]> {
        self.writable()?;
        let (seg, off) = split(addr);
        let end = off.checked_add(len as u64);
        if self.segs.get(seg).is_none_or(|s| end.is_none_or(|e| e > s.info.backed)) {
            return Err(self.bad_reference(addr, len));
        }
        // Committed pages, written through the mapping: a write fault beside
        // whatever was released since (§5.4, Reuse).
        if len > 0 {
            let first = addr & !(PAGE - 1);
            self.reserve_released(first, pages_for(addr + len as u64 - first))?;
        }
        let s = &mut self.segs[seg];
        s.written = true;
        let bytes = s.map.bytes_mut().expect("a read-write store maps segments writable");
        Ok(&mut bytes[off as usize..off as usize + len])
    }

    /// Writes `bytes` at `addr` through the segment file (`pwrite`) rather
    /// than the mapping, which sees them at once (one page cache): for large
    /// writes this spares a page fault, and the read of a never-written page,
    /// per page. Only bounds are checked.
    ///
    /// # Correctness
    ///
    /// As for [`write_unreached`](Self::write_unreached).
    pub(crate) fn write_file(&mut self, addr: u64, bytes: &[u8]) -> Result<()> {
        self.write_unreached(addr, bytes.len())?;
        let (seg, off) = split(addr);
        let s = &self.segs[seg];
        s.file.write_all_at(bytes, off).map_err(|e| Error::io("write", seg_path(&self.dir, seg), e))
    }

    /// Copies `len` bytes from `from` to `to`.
    ///
    /// # Correctness
    ///
    /// As for [`write_unreached`](Self::write_unreached): the committed state
    /// must not reach the destination.
    pub(crate) fn copy(&mut self, from: u64, to: u64, len: usize) -> Result<()> {
        self.read(from, len)?;
        self.write_unreached(to, len)?;
        let (fs, fo) = split(from);
        let (ts, to_off) = split(to);
        if fs == ts {
            let bytes = self.segs[fs].map.bytes_mut().expect("checked writable above");
            bytes.copy_within(fo as usize..fo as usize + len, to_off as usize);
        } else {
            let (a, b) = if fs < ts { self.segs.split_at_mut(ts) } else { self.segs.split_at_mut(fs) };
            let (src, dst) = if fs < ts { (&a[fs], &mut b[0]) } else { (&b[0], &mut a[ts]) };
            let dst = dst.map.bytes_mut().expect("checked writable above");
            dst[to_off as usize..to_off as usize + len]
                .copy_from_slice(&src.map.bytes()[fo as usize..fo as usize + len]);
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn committed_write(&self, addr: u64, len: usize) -> Error {
        Error::corrupted(
            &self.dir,
            format!("internal: write of {len} bytes at {addr:#x} would change the committed state"),
        )
    }

    fn mark_dirty(&mut self, start: u64, n: u64) {
        let (seg, off) = split(start);
        let s = &mut self.segs[seg];
        for p in off / PAGE..off / PAGE + n {
            s.dirty[(p / 64) as usize] |= 1 << (p % 64);
        }
        self.dirty_extents.push((start, n));
    }

    fn is_dirty_page(&self, page: u64) -> bool {
        let (seg, off) = split(page);
        let p = off / PAGE;
        self.segs[seg].dirty[(p / 64) as usize] >> (p % 64) & 1 == 1
    }

    /// Test hook: fails the allocation as a full disk would, once
    /// `fail_alloc_after` allocations have succeeded.
    #[cfg(test)]
    fn injected_failure(&mut self) -> Result<()> {
        match self.fail_alloc_after {
            Some(0) => {
                self.fail_alloc_after = None;
                Err(Error::Full { path: self.dir.clone(), what: "injected allocation failure".into() })
            }
            Some(n) => {
                self.fail_alloc_after = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Allocates `n` contiguous pages, growing the store if no free extent holds them.
    pub(crate) fn alloc_pages(&mut self, n: u64) -> Result<u64> {
        self.writable()?;
        #[cfg(test)]
        self.injected_failure()?;
        let start = match self.free.take(n) {
            Some(start) => start,
            None => {
                self.grow(n)?;
                self.free.take(n).expect("growth backs enough pages")
            }
        };
        if let Err(e) = self.reserve_released(start, n) {
            self.free.insert(start, n).map_err(|w| Error::corrupted(&self.dir, w))?;
            return Err(e);
        }
        self.unreleased.remove(start, n);
        self.mark_dirty(start, n);
        self.changed = true;
        Ok(start)
    }

    /// Moves the `n` pages at `start`, all allocated since the last commit,
    /// down over the free extent that ends where they begin, if there is one
    /// (its pages are reserved again first if they may have been released):
    /// the data moves (`memmove`), and as many pages as the extent had
    /// become free behind the moved ones. Returns the new address, or `None`
    /// if the page below is not free. A compaction step for space that
    /// first fit cannot fill (free runs shorter than any object above them).
    pub(crate) fn slide_down(&mut self, start: u64, n: u64) -> Result<Option<u64>> {
        self.writable()?;
        let (seg, off) = split(start);
        if off == 0 || !self.is_writable(start, (n * PAGE) as usize) {
            return Ok(None);
        }
        let Some((hole, m)) = self.free.extent_of(start - PAGE) else {
            return Ok(None);
        };
        // The pages of the run the data moves into; the rest of a longer run
        // stays as it was (released or not).
        let used = m.min(n);
        self.reserve_released(hole, used)?;
        self.free.take_extent(hole).ok_or_else(|| Error::corrupted(&self.dir, "a free extent vanished"))?;
        self.unreleased.remove(hole, used);
        self.mark_dirty(hole, used);
        let to = split(hole).1 as usize;
        let s = &mut self.segs[seg];
        s.written = true;
        let bytes = s.map.bytes_mut().expect("a read-write store maps segments writable");
        bytes.copy_within(off as usize..(off + n * PAGE) as usize, to);
        self.changed = true;
        self.free.insert(hole + n * PAGE, m).map_err(|w| Error::corrupted(&self.dir, w))?;
        // The pages the data left are candidates for release.
        let left = start.max(hole + n * PAGE);
        self.unreleased.insert(left, (start + n * PAGE - left) / PAGE);
        Ok(Some(hole))
    }

    /// Frees `n` pages at `start`. Pages the committed state reaches stay
    /// unusable until the next commit.
    pub(crate) fn free_pages(&mut self, start: u64, n: u64) -> Result<()> {
        self.writable()?;
        self.check_extent(start, n).map_err(|w| Error::corrupted(&self.dir, w))?;
        self.changed = true;
        if self.is_dirty_page(start) {
            self.make_free(start, n)
        } else {
            self.pending.push((start, n));
            Ok(())
        }
    }

    /// Allocates room for an object of `len` bytes: a slab slot for small
    /// objects, whole pages for large ones. The memory is writable until the next commit.
    pub(crate) fn alloc(&mut self, len: usize) -> Result<u64> {
        let len = len as u64;
        if len > MAX_SLAB_OBJECT {
            return self.alloc_pages(pages_for(len));
        }
        self.writable()?;
        #[cfg(test)]
        self.injected_failure()?;
        let class = slab::class_of(len);
        if let Some(page) = self.slabs.open_page(class) {
            // A slot in a page committed before neighbours were released is a
            // write fault beside holes: reserve them first (§5.4, Reuse).
            if !self.is_dirty_page(page) {
                self.reserve_released(page, 1)?;
            }
            self.changed = true;
            return Ok(self.slabs.alloc(class).expect("an open slab page has a free slot"));
        }
        let page = self.alloc_pages(1)?;
        self.slabs.add_page(page, class);
        Ok(self.slabs.alloc(class).expect("a new slab page has free slots"))
    }

    /// Frees an object allocated with `alloc(len)`.
    pub(crate) fn free(&mut self, addr: u64, len: usize) -> Result<()> {
        let len = len as u64;
        if len > MAX_SLAB_OBJECT {
            return self.free_pages(addr, pages_for(len));
        }
        self.writable()?;
        self.changed = true;
        match self.slabs.free(addr, slab::class_of(len)) {
            Ok(Freed::Kept) => Ok(()),
            // Nothing in the page is live now or at the last commit.
            Ok(Freed::PageEmpty(page)) => self.make_free(page, 1),
            Err(w) => Err(Error::corrupted(&self.dir, w)),
        }
    }

    /// Makes the `n` (reserved) pages at `start` free, to be released after the next commit.
    fn make_free(&mut self, start: u64, n: u64) -> Result<()> {
        self.free.insert(start, n).map_err(|w| Error::corrupted(&self.dir, w))?;
        self.unreleased.insert(start, n);
        Ok(())
    }

    /// Pages reserved at once when an allocation reuses released space: one
    /// `fallocate` serves the next allocations from the same free extent too.
    const RESERVE_PAGES: u64 = 16;

    /// Reserves disk blocks again for whatever part of the `n` pages at
    /// `start` (just taken from the free extents) may have been released, and
    /// for up to [`Self::RESERVE_PAGES`] pages of the free extent after them,
    /// widened to the 2 MiB blocks they lie in. A full disk is an error naming
    /// the segment file; nothing changes then but the pages reserved so far.
    fn reserve_released(&mut self, start: u64, n: u64) -> Result<()> {
        if self.unreserved.is_empty() {
            return Ok(());
        }
        let after = start + n * PAGE;
        let rest = self.free.extent_of(after).filter(|&(a, _)| a == after).map_or(0, |(_, m)| m);
        let want = n + rest.min(Self::RESERVE_PAGES.saturating_sub(n));
        // Widened to whole 2 MiB blocks: the kernel may cache the pages in one
        // large folio, and a write fault on it claims blocks for every hole in
        // the folio (ext4's page_mkwrite), so a free released page beside a
        // reused one could make that fault a SIGBUS on a full disk (§5.4).
        let (seg, off) = split(start);
        let lo = off / HUGE * HUGE;
        let hi = (off + want * PAGE).next_multiple_of(HUGE).min(self.segs[seg].info.backed).max(off + want * PAGE);
        let parts = self.unreserved.overlaps(addr(seg, lo), (hi - lo) / PAGE);
        if !parts.is_empty() {
            self.sync_open_record()?;
        }
        for (s, m) in parts {
            let (seg, off) = split(s);
            #[cfg(test)]
            if std::mem::take(&mut self.fail_next_reserve) {
                let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
                return Err(Error::io("reserve released space", seg_path(&self.dir, seg), e));
            }
            os::reserve(&self.segs[seg].file, off, m * PAGE)
                .map_err(|e| Error::io("reserve released space", seg_path(&self.dir, seg), e))?;
            self.unreserved.remove(s, m);
            // Free pages reserved only for the widening stay candidates for release.
            self.unreleased.insert(s, m);
        }
        Ok(())
    }

    /// After a durable commit: returns to the file system the disk blocks of
    /// free pages freed since they were last released, where they lie in a
    /// free extent of at least `release_min` pages (`docs/DESIGN.md`, "Releasing
    /// free space"). With `whole_tail` (after a transaction that grew the
    /// store, and at close) the **tail** too, the free extent that ends where
    /// the last segment's backed space ends: the unused part of the growth.
    /// A file system that cannot punch holes turns releasing off; any other
    /// failure leaves the pages counted as released, which only costs a
    /// reservation at their reuse.
    fn release_free_space(&mut self, whole_tail: bool) {
        if self.release_min == 0 {
            return;
        }
        if whole_tail && let Some((start, n)) = self.tail() {
            self.make_candidates(start, n);
        }
        let runs: Vec<(u64, u64)> = self.unreleased.iter().collect();
        for (start, n) in runs {
            if self.free.extent_of(start).is_none_or(|(_, len)| len < self.release_min) {
                continue;
            }
            self.unreleased.remove(start, n);
            self.unreserved.insert(start, n);
            let (seg, off) = split(start);
            if let Err(e) = os::punch_hole(&self.segs[seg].file, off, n * PAGE)
                && matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS))
            {
                self.release_min = 0;
                self.unreleased = PageSet::default();
                return;
            }
        }
    }

    /// The free extent that ends where the last segment's backed space ends,
    /// as `(start, pages)`: where growth left pages unused.
    fn tail(&self) -> Option<(u64, u64)> {
        let (i, s) = self.segs.iter().enumerate().next_back().filter(|(_, s)| s.info.backed > 0)?;
        let end = addr(i, s.info.backed);
        let (start, n) = self.free.extent_of(end - PAGE)?;
        (start + n * PAGE == end).then_some((start, n))
    }

    /// Makes the `n` free pages at `start` release candidates where they hold
    /// disk blocks (are not released already).
    fn make_candidates(&mut self, start: u64, n: u64) {
        self.unreleased.insert(start, n);
        for (s, m) in self.unreserved.overlaps(start, n) {
            self.unreleased.remove(s, m);
        }
    }

    /// For a store about to close, right after a commit: makes every free
    /// page that still holds its blocks a release candidate, the unused part
    /// of the last growth step included, and releases what lies in free
    /// extents of at least the threshold.
    pub(crate) fn release_unused(&mut self) {
        if self.release_min == 0 || self.read_only || self.poisoned.is_some() {
            return;
        }
        let free: Vec<(u64, u64)> = self.free.iter().collect();
        for (start, n) in free {
            self.make_candidates(start, n);
        }
        self.release_free_space(true);
    }

    /// Backs more pages with disk blocks: in the last segment if it has room,
    /// else in a new segment.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: u64) -> Result<()> {
        let need = n.checked_mul(PAGE).filter(|&b| b <= MAX_SEGMENT_SIZE).ok_or_else(|| Error::Full {
            path: self.dir.clone(),
            what: format!("an object of {n} pages exceeds the largest segment"),
        })?;
        let backed: u64 = self.segs.iter().map(|s| s.info.backed).sum();
        let step = (backed / 16).clamp(64 << 10, 64 << 20).next_multiple_of(PAGE);
        let room = self.segs.last().map_or(0, |s| s.info.size - s.info.backed);
        if room < need {
            self.add_segment(need)?;
        }
        let last = self.segs.len() - 1;
        let (size, backed) = (self.segs[last].info.size, self.segs[last].info.backed);
        let bytes = step.max(need).min(size - backed);
        self.grew = true;
        if step < HUGE {
            return self.back(last, bytes);
        }
        // From a 32 MiB store on, every step ends on a 2 MiB boundary (at most
        // 2 MiB more), so that no huge page ever spans backed and unbacked space.
        self.back(last, (backed + bytes).next_multiple_of(HUGE).min(size) - backed)?;
        self.advise_huge(last, backed);
        Ok(())
    }

    /// Asks for transparent huge pages in segment `i` from `backed` (where its
    /// backed space ended before the step just made), rounded up to 2 MiB, to
    /// its end; once per segment. Steps from now on end on 2 MiB boundaries
    /// (`grow`), so a huge page there never spans unbacked space, and the
    /// space holds no data: the kernel fills a huge page-cache folio there
    /// without reading anything or allocating a block at a write fault (which
    /// on a full disk would be SIGBUS). Each commit withdraws the advice from
    /// what it made durable ([`Store::withdraw_huge`]), so data read back from
    /// disk later comes in 4 KiB pages. `docs/DESIGN.md` §8.
    fn advise_huge(&mut self, i: usize, backed: u64) {
        let s = &mut self.segs[i];
        let from = backed.next_multiple_of(HUGE);
        if self.opts.huge_pages && s.huge_from.is_none() && from < s.info.size {
            s.map.advise_huge(from as usize, (s.info.size - from) as usize, true);
            s.huge_from = Some(from);
        }
    }

    /// After a commit: withdraws the huge-page advice from the backed part of
    /// each advised range, whose data is now on disk (see `advise_huge`).
    /// Huge folios already cached stay, and stay mapped.
    fn withdraw_huge(&mut self) {
        for s in &mut self.segs {
            if let Some(from) = s.huge_from
                && from < s.info.backed
            {
                s.map.advise_huge(from as usize, (s.info.backed - from) as usize, false);
                s.huge_from = Some(s.info.backed);
            }
        }
    }

    /// Preallocates `bytes` more of segment `i` and frees them for allocation.
    fn back(&mut self, i: usize, bytes: u64) -> Result<()> {
        let s = &mut self.segs[i];
        os::preallocate(&s.file, s.info.backed, bytes)
            .map_err(|e| Error::io("preallocate", seg_path(&self.dir, i), e))?;
        let start = addr(i, s.info.backed);
        s.info.backed += bytes;
        self.changed = true;
        self.free.insert(start, bytes / PAGE).map_err(|w| Error::corrupted(&self.dir, w))
    }

    /// Creates and maps segment file number `segs.len()`, at least `need` bytes long.
    fn add_segment(&mut self, need: u64) -> Result<()> {
        let i = self.segs.len();
        if i >= MAX_SEGMENTS {
            return Err(Error::Full { path: self.dir.clone(), what: format!("{MAX_SEGMENTS} segments") });
        }
        let nominal = match self.segs.last() {
            None => self.opts.initial_segment_size,
            Some(s) => (s.info.size * 2).clamp(self.opts.initial_segment_size, self.opts.max_segment_size),
        };
        let size = nominal.max(need).min(MAX_SEGMENT_SIZE);
        let path = seg_path(&self.dir, i);
        let made = File::options().read(true).write(true).create(true).truncate(true).open(&path).and_then(|file| {
            file.set_len(size)?;
            let map = Mapping::new(&file, size as usize, true)?;
            Ok((file, map))
        });
        let (file, map) = made.map_err(|e| {
            let _ = fs::remove_file(&path);
            Error::io("create segment", &path, e)
        })?;
        let dirty = vec![0; (size / PAGE).div_ceil(64) as usize];
        self.segs.push(Segment {
            file,
            map,
            info: SegInfo { size, backed: 0 },
            dirty,
            written: false,
            huge_from: None,
        });
        self.new_segments.push(i);
        Ok(())
    }

    /// Commits everything written since the last commit with `root` as the
    /// structure's root, following the protocol of `docs/DESIGN.md`.
    pub(crate) fn commit(&mut self, root: &[u8; ROOT_SIZE]) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.writable()?;
        if !self.changed && *root == self.committed.root {
            return Ok(());
        }
        let old_state = self.state_extent;
        let (state_addr, state_pages, state_len, state_sum) = self.write_state(old_state)?;
        let meta = Meta {
            txn: self.committed.txn + 1,
            seg_count: self.segs.len() as u32,
            state_addr,
            state_len,
            state_sum,
            root: *root,
            ..self.committed.clone()
        };
        if let Err(e) = self.make_durable(&meta) {
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        if let Err(e) = self.after_commit(old_state) {
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        self.state_extent = Some((state_addr, state_pages));
        self.committed = meta;
        self.record_synced = true;
        self.withdraw_huge();
        let grew = std::mem::take(&mut self.grew);
        self.release_free_space(grew);
        Ok(())
    }

    /// Writes the allocator state as it will be after the commit into freshly
    /// allocated pages. Returns its address, pages, length and checksum.
    fn write_state(&mut self, old: Option<(u64, u64)>) -> Result<(u64, u64, u64, u64)> {
        // Pending extents come one per free: a removal from a dict frees every
        // bucket page on its own, and listed so the state of that commit took
        // 16 bytes per page (1 MiB for a 10 M-entry dict). Sorted and merged
        // they are a few runs.
        merge_adjacent(&mut self.pending);
        loop {
            // One extent and one segment of slack: allocating may split or add one.
            let extents = self.free.extent_count() + self.pending.len() + 2;
            let slabs = self.slabs.iter().map(|(_, class, _)| class);
            let n = pages_for(state::encoded_len(self.segs.len() + 1, extents, slabs) as u64);
            let start = self.alloc_pages(n)?;
            let segs: Vec<SegInfo> = self.segs.iter().map(|s| s.info).collect();
            let free = self.free.iter().chain(self.pending.iter().copied()).chain(old);
            let bytes = state::encode(&segs, free, self.slabs.iter());
            if bytes.len() as u64 <= n * PAGE {
                // Zero padding fills the extent, so reopen derives exactly these pages from the length.
                let len = (n * PAGE) as usize;
                let out = self.write(start, len)?;
                out[..bytes.len()].copy_from_slice(&bytes);
                out[bytes.len()..].fill(0);
                let sum = xxh3_64(out);
                return Ok((start, n, len as u64, sum));
            }
            self.free_pages(start, n)?;
        }
    }

    /// Steps 2-4 of the commit: data to disk, new files' names to disk, then the meta record.
    fn make_durable(&mut self, meta: &Meta) -> Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(Error::io("msync", &self.dir, std::io::Error::other("injected fsync failure")));
        }
        if self.opts.durable {
            for &i in &self.new_segments {
                let s = &self.segs[i];
                s.file.sync_all().map_err(|e| Error::io("fsync", seg_path(&self.dir, i), e))?;
            }
            for (i, s) in self.segs.iter().enumerate() {
                if s.written {
                    let len = s.info.backed as usize;
                    s.map.sync_range(0, len).map_err(|e| Error::io("msync", seg_path(&self.dir, i), e))?;
                }
            }
            if !self.new_segments.is_empty() {
                sync_dir(&self.dir)?;
            }
        }
        let mut slot = [0u8; SLOT_SIZE];
        slot[..RECORD_SIZE].copy_from_slice(&meta.encode());
        let offset = (meta.txn % 2) * SLOT_SIZE as u64;
        let path = self.dir.join("meta");
        self.meta_file.write_all_at(&slot, offset).map_err(|e| Error::io("write meta record", &path, e))?;
        if self.opts.durable {
            self.meta_file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
        }
        Ok(())
    }

    /// Step 5: what the old state reached and the new one does not becomes free.
    fn after_commit(&mut self, old_state: Option<(u64, u64)>) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        for (start, n) in pending.into_iter().chain(old_state) {
            self.make_free(start, n)?;
        }
        for page in self.slabs.commit() {
            self.make_free(page, 1)?;
        }
        for (start, n) in self.dirty_extents.drain(..) {
            let (seg, off) = split(start);
            let s = &mut self.segs[seg];
            for p in off / PAGE..off / PAGE + n {
                s.dirty[(p / 64) as usize] &= !(1 << (p % 64));
            }
        }
        for s in &mut self.segs {
            s.written = false;
        }
        self.new_segments.clear();
        self.changed = false;
        Ok(())
    }

    /// Starts writing back the `len` bytes at `addr` (written since the last
    /// commit, and not to be written again before it) without waiting, so the
    /// next commit's data sync has less left to do. Only for durable stores;
    /// a hint: errors are left for the commit's sync to report.
    pub(crate) fn start_writeback(&self, addr: u64, len: u64) {
        if !self.opts.durable || self.read_only {
            return;
        }
        let (seg, off) = split(addr);
        if let Some(s) = self.segs.get(seg).filter(|s| off + len <= s.info.backed) {
            let _ = os::start_writeback(&s.file, off, len);
        }
    }

    /// Advises the kernel that the `len` bytes at `addr` will be read in order
    /// (`MADV_SEQUENTIAL`: read ahead aggressively), or, with `false`, that
    /// they have no particular pattern any more (`MADV_NORMAL`).
    pub(crate) fn advise_range(&self, addr: u64, len: u64, sequential: bool) {
        let (seg, off) = split(addr);
        if let Some(s) = self.segs.get(seg).filter(|s| off + len <= s.info.backed) {
            let start = off & !(PAGE - 1);
            let advice = if sequential { Advice::Sequential } else { Advice::Normal };
            s.map.advise_range(advice, start as usize, (off + len - start) as usize);
        }
    }

    /// Advises the kernel that the store will be read sequentially (or, with
    /// `false`, at random).
    #[allow(dead_code, reason = "kept for structures that scan in address order")]
    pub(crate) fn advise_sequential(&self, sequential: bool) {
        let advice = if sequential { Advice::Sequential } else { Advice::Random };
        for s in &self.segs {
            s.map.advise(advice);
        }
    }

    /// Checks the committed meta record and allocator state against the disk,
    /// and that `objects` (every object the structure reaches, as address and
    /// allocated length) and the allocator's free space cover every backed page
    /// exactly once: nothing overlaps, nothing leaks.
    pub(crate) fn check(&self, objects: &[(u64, u64)]) -> Result<CheckReport> {
        self.check_committed()?;
        let corrupt = |w: String| Error::corrupted(&self.dir, format!("check: {w}"));
        let mut claimed: Vec<Vec<u64>> =
            self.segs.iter().map(|s| vec![0; (s.info.backed / PAGE).div_ceil(64) as usize]).collect();
        let mut claim = |start: u64, n: u64, what: &str| -> std::result::Result<(), String> {
            self.check_extent(start, n).map_err(|w| format!("{what}: {w}"))?;
            let (seg, off) = split(start);
            for p in off / PAGE..off / PAGE + n {
                let w = &mut claimed[seg][(p / 64) as usize];
                if *w >> (p % 64) & 1 == 1 {
                    return Err(format!("{what} at {start:#x} overlaps other data in page {p} of segment {seg}"));
                }
                *w |= 1 << (p % 64);
            }
            Ok(())
        };
        let mut report = CheckReport::default();
        for (start, n) in self.free.iter().chain(self.pending.iter().copied()) {
            claim(start, n, "free extent").map_err(corrupt)?;
            report.bytes_free += n * PAGE;
        }
        // Released pages (which may be holes) and release candidates are free
        // pages, never pending ones that the committed state still reaches.
        for (set, what) in [(&self.unreserved, "released"), (&self.unreleased, "release candidate")] {
            for (start, n) in set.iter() {
                let inside = self.free.extent_of(start).is_some_and(|(a, m)| start + n * PAGE <= a + m * PAGE);
                if !inside {
                    return Err(corrupt(format!("{what} pages at {start:#x} ({n}) are not free")));
                }
            }
        }
        report.bytes_released = self.unreserved.pages() * PAGE;
        if let Some((start, n)) = self.state_extent {
            claim(start, n, "allocator state").map_err(corrupt)?;
        }
        // Per slab page: its class, its allocated slots, and the slots reached.
        let mut slabs: std::collections::HashMap<u64, (usize, [u64; 4], [u64; 4])> = Default::default();
        for (page, class, used) in self.slabs.iter() {
            claim(page, 1, "slab page").map_err(corrupt)?;
            slabs.insert(page, (class, *used, [0; 4]));
            report.slab_pages += 1;
        }
        for &(a, len) in objects {
            report.objects += 1;
            report.bytes_live += len;
            if len > MAX_SLAB_OBJECT {
                claim(a, pages_for(len), "object").map_err(corrupt)?;
                continue;
            }
            let page = a & !(PAGE - 1);
            let class = slab::class_of(len);
            let size = CLASSES[class] as u64;
            let slot = ((a - page) / size) as usize;
            let (w, bit) = (slot / 64, 1u64 << (slot % 64));
            match slabs.get_mut(&page) {
                Some((c, used, seen)) if *c == class && (a - page).is_multiple_of(size) && used[w] & bit != 0 => {
                    if seen[w] & bit != 0 {
                        return Err(corrupt(format!("object at {a:#x} is reached twice")));
                    }
                    seen[w] |= bit;
                }
                _ => {
                    return Err(corrupt(format!("object of {len} bytes at {a:#x} is not an allocated slab slot")));
                }
            }
        }
        if let Some((page, _)) = slabs.iter().find(|(_, (_, used, seen))| used != seen) {
            return Err(corrupt(format!("slab page {page:#x} has allocated slots nothing reaches (leak)")));
        }
        for (seg, bits) in claimed.iter().enumerate() {
            let pages = self.segs[seg].info.backed / PAGE;
            if let Some(p) = (0..pages).find(|p| bits[(p / 64) as usize] >> (p % 64) & 1 == 0) {
                return Err(corrupt(format!("page {p} of segment {seg} is neither free nor reached (leak)")));
            }
        }
        report.segments = self.segs.len();
        report.bytes_reserved = self.segs.iter().map(|s| s.info.size).sum();
        report.bytes_backed = self.segs.iter().map(|s| s.info.backed).sum();
        Ok(report)
    }

    /// Re-reads the current meta record and allocator state from disk and verifies both.
    fn check_committed(&self) -> Result<()> {
        let path = self.dir.join("meta");
        let mut slot = vec![0u8; SLOT_SIZE];
        let offset = (self.committed.txn % 2) * SLOT_SIZE as u64;
        self.meta_file.read_exact_at(&mut slot, offset).map_err(|e| Error::io("read", &path, e))?;
        match Meta::decode(&slot) {
            Ok(m) if m == self.committed => {}
            other => {
                return Err(Error::corrupted(&path, format!("current meta record reads back as {other:?}")));
            }
        }
        if let Some((start, _)) = self.state_extent {
            let bytes = self.read(start, self.committed.state_len as usize)?;
            if xxh3_64(bytes) != self.committed.state_sum {
                return Err(Error::corrupted(&self.dir, "allocator state: checksum mismatch"));
            }
        }
        Ok(())
    }

    /// The store's files, for tools that copy or measure them.
    #[allow(dead_code, reason = "for tools that copy or measure a store")]
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.dir.join("meta")];
        v.extend((0..self.segs.len()).map(|i| seg_path(&self.dir, i)));
        v
    }
}

/// Sorts page extents (disjoint) by address and merges the adjacent ones.
fn merge_adjacent(extents: &mut Vec<(u64, u64)>) {
    extents.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(extents.len());
    for &(start, n) in extents.iter() {
        match merged.last_mut() {
            Some((a, m)) if *a + *m * PAGE == start => *m += n,
            _ => merged.push((start, n)),
        }
    }
    *extents = merged;
}

fn describe(kind: Kind, size: u32, align: u32) -> String {
    match kind {
        Kind::Vec => format!("{} of {size}-byte elements aligned to {align}", kind.name()),
        _ => kind.name().to_string(),
    }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;
