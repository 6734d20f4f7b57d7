//! A region: a growable array of fixed-size units (an `EmVec`'s elements, an
//! `EmList`'s bytes, length codes and group offsets), kept in chunks, each a
//! page-aligned extent of whole blocks, with copy-on-write by block. The format
//! is specified in `docs/DESIGN.md` ("EmList and EmVec pages").
//!
//! A block is the smallest run of whole pages that holds whole units
//! (`lcm(unit, 4096)` bytes), so units never straddle a block, and a block can
//! be copied (shadowed) without splitting a unit. Writes go in place where the
//! committed state does not reach the block (allocated since the last commit,
//! past the committed length, or shadowed in the committed state), and to a
//! shadow copy otherwise. After a commit, the shadows are copied back into
//! their blocks, which the new committed state does not reach, and freed at the
//! next commit: reads stay contiguous.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use crate::alloc::{PAGE_SIZE, Store};
use crate::error::{Error, Result};

const PAGE: u64 = PAGE_SIZE as u64;
/// A chunk holds at least this many bytes (or one block, if larger).
const MIN_CHUNK_BYTES: u64 = 64 << 10;
/// New chunks hold an eighth of what the region holds, up to this many bytes
/// (or one block, if larger).
const MAX_CHUNK_BYTES: u64 = 16 << 20;
/// Appended bytes between two starts of their writeback.
const WRITEBACK: u64 = 8 << 20;
/// Appends of at least this many bytes go through the file, not the mapping.
const WRITE_FILE: usize = 64 << 10;
/// A region of zero-sized units (an `EmVec<()>`) holds at most this many: a
/// length that index arithmetic never overflows, as for a slice of sized
/// elements. A stored length above it cannot have been written: corrupted.
pub(crate) const MAX_ZERO_SIZED: u64 = isize::MAX as u64;

/// One extent of units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Address of the first unit.
    pub addr: u64,
    /// Index of the first unit in the region.
    pub start: u64,
    /// Units the chunk holds: a multiple of the block's units.
    pub cap: u64,
}

/// A growable array of `unit`-byte units in a store.
#[derive(Debug)]
pub(crate) struct Region {
    unit: u64,
    block_units: u64,
    block_bytes: u64,
    /// Every chunk holds at least this many units.
    min_chunk: u64,
    len: u64,
    /// The length the committed state has.
    committed_len: u64,
    cap: u64,
    chunks: Vec<Chunk>,
    /// `dir[k]` is the chunk holding unit `k * min_chunk`: unit `i` lies in
    /// chunk `dir[i / min_chunk]` or the one after it.
    dir: Vec<u32>,
    /// Shadowed blocks: block number to the address of its copy, which reads use.
    overlay: BTreeMap<u64, u64>,
    /// Blocks the committed state reads from a shadow, folded back since: writable in place.
    unreached: HashSet<u64>,
    /// The last block found writable for appending, and where to write it.
    tail: Option<(u64, u64)>,
    /// Units up to which writeback was started since the last commit.
    written_back: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Region {
    /// An empty region of `unit`-byte units (`unit` may be 0: then only the length is kept).
    pub(crate) fn new(unit: u64) -> Region {
        let (block_units, block_bytes) = match unit {
            0 => (1, 0),
            u => (PAGE / gcd(u, PAGE), u / gcd(u, PAGE) * PAGE),
        };
        let min_chunk = block_units * MIN_CHUNK_BYTES.div_ceil(block_bytes.max(1)).max(1);
        Region {
            unit,
            block_units,
            block_bytes,
            min_chunk,
            len: 0,
            committed_len: 0,
            cap: 0,
            chunks: Vec::new(),
            dir: Vec::new(),
            overlay: BTreeMap::new(),
            unreached: HashSet::new(),
            tail: None,
            written_back: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the committed table does not describe this region: it has
    /// shadows (which only a new table records) or another length.
    pub(crate) fn differs_from_committed(&self) -> bool {
        !self.overlay.is_empty() || self.len != self.committed_len
    }

    /// Whether every unit lies in one contiguous run of the mapping.
    pub(crate) fn is_contiguous(&self) -> bool {
        self.overlay.is_empty() && self.chunks.iter().filter(|c| c.start < self.len).count() <= 1
    }

    /// The chunk holding unit `i < cap`.
    #[inline]
    fn chunk_of(&self, i: u64) -> usize {
        let c = self.dir[(i / self.min_chunk) as usize] as usize;
        let ch = &self.chunks[c];
        if i >= ch.start + ch.cap { c + 1 } else { c }
    }

    /// The address of unit `i < cap` in its chunk (not in a shadow).
    #[inline]
    fn home(&self, i: u64) -> u64 {
        let ch = &self.chunks[self.chunk_of(i)];
        ch.addr + (i - ch.start) * self.unit
    }

    /// The bytes from unit `i < len` to the end of its contiguous run (of the
    /// chunk, of a shadow, or of the units before the next shadow), at most to `len`.
    #[inline]
    pub(crate) fn run<'s>(&self, store: &'s Store, i: u64) -> Result<&'s [u8]> {
        // Positions come from stored offsets and lengths: damaged ones are an error, not a panic.
        if i >= self.len || self.unit == 0 {
            return Err(self.out_of_range(store, i, 1));
        }
        let ch = &self.chunks[self.chunk_of(i)];
        let mut end = (ch.start + ch.cap).min(self.len);
        let mut addr = ch.addr + (i - ch.start) * self.unit;
        if !self.overlay.is_empty() {
            let b = i / self.block_units;
            if let Some(&s) = self.overlay.get(&b) {
                addr = s + (i - b * self.block_units) * self.unit;
                end = end.min((b + 1) * self.block_units);
            } else if let Some((&next, _)) = self.overlay.range(b + 1..).next() {
                end = end.min(next * self.block_units);
            }
        }
        store.read(addr, ((end - i) * self.unit) as usize)
    }

    /// The bytes from the start of the contiguous run holding unit `end - 1`
    /// up to unit `end` (`0 < end <= len`): [`run`](Self::run) from the back.
    pub(crate) fn run_back<'s>(&self, store: &'s Store, end: u64) -> Result<&'s [u8]> {
        if end == 0 || end > self.len || self.unit == 0 {
            return Err(self.out_of_range(store, end, 0));
        }
        let last = end - 1;
        let ch = &self.chunks[self.chunk_of(last)];
        let mut start = ch.start;
        let mut base = ch.addr;
        let mut base_unit = ch.start;
        if !self.overlay.is_empty() {
            let b = last / self.block_units;
            if let Some(&s) = self.overlay.get(&b) {
                start = start.max(b * self.block_units);
                base = s;
                base_unit = b * self.block_units;
            } else if let Some((&prev, _)) = self.overlay.range(..b).next_back() {
                start = start.max((prev + 1) * self.block_units);
            }
        }
        let addr = base + (start - base_unit) * self.unit;
        store.read(addr, ((end - start) * self.unit) as usize)
    }

    #[cold]
    #[inline(never)]
    fn out_of_range(&self, store: &Store, i: u64, n: u64) -> Error {
        let what = format!("units {i}..+{n} of a region of {} units of {} bytes", self.len, self.unit);
        Error::corrupted(store.dir(), format!("reference to {what} lies outside it"))
    }

    /// Unit `i < len`.
    #[inline]
    pub(crate) fn unit_at<'s>(&self, store: &'s Store, i: u64) -> Result<&'s [u8]> {
        Ok(&self.run(store, i)?[..self.unit as usize])
    }

    /// The `n` units from `i` (`i + n <= len`): borrowed from the mapping when
    /// they are contiguous there, copied otherwise.
    pub(crate) fn bytes<'s>(&self, store: &'s Store, i: u64, n: u64) -> Result<Cow<'s, [u8]>> {
        if n == 0 || self.unit == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if i.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(self.out_of_range(store, i, n));
        }
        let want = (n * self.unit) as usize;
        let first = self.run(store, i)?;
        if first.len() >= want {
            return Ok(Cow::Borrowed(&first[..want]));
        }
        let mut out = Vec::with_capacity(want);
        out.extend_from_slice(first);
        while out.len() < want {
            let run = self.run(store, i + (out.len() as u64) / self.unit)?;
            let take = run.len().min(want - out.len());
            out.extend_from_slice(&run[..take]);
        }
        Ok(Cow::Owned(out))
    }

    /// The units of block `b` in the bytes of the block: where to write it.
    /// Creates a shadow copy if the committed state reaches the block in place.
    fn writable_block(&mut self, store: &mut Store, b: u64) -> Result<u64> {
        if let Some(&s) = self.overlay.get(&b) {
            return Ok(s);
        }
        let home = self.home(b * self.block_units);
        let bb = self.block_bytes as usize;
        if b * self.block_units >= self.committed_len || self.unreached.contains(&b) || store.is_writable(home, bb) {
            return Ok(home);
        }
        let s = store.alloc_pages(self.block_bytes / PAGE)?;
        store.copy(home, s, bb)?;
        self.overlay.insert(b, s);
        Ok(s)
    }

    /// Makes every block holding units `i..i + n` writable (shadowing as
    /// needed), so that writing them afterwards cannot fail for lack of space.
    fn prepare(&mut self, store: &mut Store, i: u64, n: u64) -> Result<()> {
        // Blocks wholly past the committed length never need a shadow.
        if n == 0 || self.committed_len == 0 {
            return Ok(());
        }
        let first = i / self.block_units;
        let last = ((i + n - 1) / self.block_units).min((self.committed_len - 1) / self.block_units);
        for b in first..=last {
            self.writable_block(store, b)?;
        }
        Ok(())
    }

    /// Writes `bytes` (whole units) from unit `i`; every block must have been prepared.
    fn put(&mut self, store: &mut Store, i: u64, bytes: &[u8]) -> Result<()> {
        let mut at = i;
        let mut rest = bytes;
        while !rest.is_empty() {
            let b = at / self.block_units;
            let base = match self.tail {
                Some((tb, addr)) if tb == b => addr,
                _ => {
                    let addr = self.writable_block(store, b)?;
                    self.tail = Some((b, addr));
                    addr
                }
            };
            let in_block = at - b * self.block_units;
            let take = (((self.block_units - in_block) * self.unit) as usize).min(rest.len());
            let out = store.write_unreached(base + in_block * self.unit, take)?;
            out.copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            at += take as u64 / self.unit;
        }
        Ok(())
    }

    /// Appends `n` units, whose bytes are `bytes`. On error nothing changed.
    #[inline]
    pub(crate) fn append(&mut self, store: &mut Store, bytes: &[u8], n: u64) -> Result<()> {
        debug_assert_eq!(bytes.len() as u64, n * self.unit);
        if self.unit == 0 {
            return self.append_zero_sized(store, n);
        }
        // Fast path: the units fit the block last written.
        if let Some((b, addr)) = self.tail {
            let in_block = self.len.wrapping_sub(b * self.block_units);
            if in_block < self.block_units && in_block + n <= self.block_units {
                let out = store.write_unreached(addr + in_block * self.unit, bytes.len())?;
                out.copy_from_slice(bytes);
                self.len += n;
                return Ok(());
            }
        }
        self.append_slow(store, bytes, n)
    }

    /// Appends `n` zero-sized units: only the length changes, up to [`MAX_ZERO_SIZED`].
    #[cold]
    #[inline(never)]
    fn append_zero_sized(&mut self, store: &Store, n: u64) -> Result<()> {
        let Some(len) = self.len.checked_add(n).filter(|&l| l <= MAX_ZERO_SIZED) else {
            let what = format!("{} zero-sized elements and {n} more exceed {MAX_ZERO_SIZED}", self.len);
            return Err(Error::Full { path: store.dir().to_path_buf(), what });
        };
        self.len = len;
        Ok(())
    }

    #[inline(never)]
    fn append_slow(&mut self, store: &mut Store, bytes: &[u8], n: u64) -> Result<()> {
        self.reserve(store, n)?;
        self.prepare(store, self.len, n)?;
        // Blocks from `free` on lie wholly past the committed length: written
        // in place, large runs through the file rather than the mapping.
        let free = self.committed_len.div_ceil(self.block_units) * self.block_units;
        let split = if bytes.len() >= WRITE_FILE { free.clamp(self.len, self.len + n) } else { self.len + n };
        let (head, rest) = bytes.split_at(((split - self.len) * self.unit) as usize);
        self.put(store, self.len, head)?;
        let mut at = split;
        let mut rest = rest;
        while !rest.is_empty() {
            let ch = self.chunks[self.chunk_of(at)];
            let take = (((ch.start + ch.cap - at) * self.unit) as usize).min(rest.len());
            store.write_file(ch.addr + (at - ch.start) * self.unit, &rest[..take])?;
            rest = &rest[take..];
            at += take as u64 / self.unit;
        }
        self.len += n;
        if self.len.saturating_sub(self.written_back) * self.unit >= WRITEBACK {
            self.start_writeback(store);
        }
        Ok(())
    }

    /// Starts writing back the units appended since the last call (or commit),
    /// so that a large append does not leave all of its pages to the commit.
    fn start_writeback(&mut self, store: &Store) {
        let mut at = self.written_back.max(self.committed_len);
        while at < self.len {
            let ch = &self.chunks[self.chunk_of(at)];
            let end = (ch.start + ch.cap).min(self.len);
            store.start_writeback(ch.addr + (at - ch.start) * self.unit, (end - at) * self.unit);
            at = end;
        }
        self.written_back = self.len;
    }

    /// Advises the kernel that units `range` will be read in order (or, with
    /// `false`, no longer).
    pub(crate) fn advise(&self, store: &Store, range: std::ops::Range<u64>, sequential: bool) {
        let mut at = range.start;
        let end = range.end.min(self.len);
        while at < end && self.unit > 0 {
            let ch = &self.chunks[self.chunk_of(at)];
            let stop = (ch.start + ch.cap).min(end);
            store.advise_range(ch.addr + (at - ch.start) * self.unit, (stop - at) * self.unit, sequential);
            at = stop;
        }
    }

    /// Advises the kernel that every chunk (its whole capacity, so also units
    /// appended later) has no particular read pattern (`MADV_NORMAL`).
    pub(crate) fn advise_normal(&self, store: &Store) {
        for ch in &self.chunks {
            store.advise_range(ch.addr, ch.cap * self.unit, false);
        }
    }

    /// Overwrites units from `i` (`i + n <= len`) with `bytes`. On error nothing changed.
    pub(crate) fn write(&mut self, store: &mut Store, i: u64, bytes: &[u8]) -> Result<()> {
        let n = bytes.len() as u64 / self.unit.max(1);
        debug_assert!(i + n <= self.len);
        self.prepare(store, i, n)?;
        self.put(store, i, bytes)
    }

    /// Makes sure that units `i..i + n` (within the length) can be written
    /// afterwards with [`write`](Self::write) without failing.
    pub(crate) fn make_writable(&mut self, store: &mut Store, i: u64, n: u64) -> Result<()> {
        if self.unit == 0 {
            return Ok(());
        }
        self.prepare(store, i, n)
    }

    /// Allocates chunks until `n` more units fit.
    pub(crate) fn reserve(&mut self, store: &mut Store, n: u64) -> Result<()> {
        while self.cap < self.len + n {
            self.grow(store, self.len + n - self.cap)?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, store: &mut Store, want: u64) -> Result<()> {
        let held = self.cap * self.unit;
        let wanted = want.saturating_mul(self.unit).min(MAX_CHUNK_BYTES);
        let bytes = (held / 8).max(wanted).clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES);
        let blocks = bytes.div_ceil(self.block_bytes).max(1);
        let cap = (blocks * self.block_units).max(self.min_chunk);
        let addr = store.alloc_pages(cap * self.unit / PAGE)?;
        self.push_chunk(Chunk { addr, start: self.cap, cap });
        Ok(())
    }

    fn push_chunk(&mut self, ch: Chunk) {
        let idx = self.chunks.len() as u32;
        self.chunks.push(ch);
        self.cap = ch.start + ch.cap;
        while (self.dir.len() as u64) * self.min_chunk < self.cap {
            self.dir.push(idx);
        }
    }

    /// Shortens the region to `n` units, freeing chunks that hold none of them
    /// and shadows of blocks past them. The length is cut first, so on an error
    /// from freeing the region is shorter and the store holds some garbage pages
    /// until it is reopened.
    pub(crate) fn truncate(&mut self, store: &mut Store, n: u64) -> Result<()> {
        if n >= self.len {
            return Ok(());
        }
        self.len = n;
        self.tail = None;
        self.written_back = self.written_back.min(n);
        if self.unit == 0 {
            return Ok(());
        }
        self.prune(store)?;
        while let Some(&ch) = self.chunks.last().filter(|c| c.start >= n) {
            self.chunks.pop();
            self.cap = ch.start;
            self.dir.truncate(self.cap.div_ceil(self.min_chunk) as usize);
            store.free_pages(ch.addr, ch.cap * self.unit / PAGE)?;
        }
        Ok(())
    }

    /// Frees every chunk and shadow of a region that is being discarded
    /// (whatever its length: a failed append may have left chunks at length 0).
    pub(crate) fn release(&mut self, store: &mut Store) -> Result<()> {
        self.len = 0;
        self.tail = None;
        self.written_back = 0;
        self.prune(store)?;
        while let Some(ch) = self.chunks.pop() {
            self.cap = ch.start;
            self.dir.truncate(self.cap.div_ceil(self.min_chunk) as usize);
            store.free_pages(ch.addr, ch.cap * self.unit / PAGE)?;
        }
        Ok(())
    }

    /// Drops and frees the shadows of blocks wholly past the length: they
    /// hold no unit of the region. A rewrite that lowers the length with
    /// [`set_len`](Self::set_len) and appends less than before leaves such
    /// shadows behind; the commit prunes them, since the table records shadows
    /// of blocks below the length only.
    pub(crate) fn prune(&mut self, store: &mut Store) -> Result<()> {
        let first_gone = self.len.div_ceil(self.block_units);
        while let Some((&b, &s)) = self.overlay.range(first_gone..).next() {
            self.overlay.remove(&b);
            self.tail = None;
            store.free_pages(s, self.block_bytes / PAGE)?;
        }
        Ok(())
    }

    /// Sets the length to `n <= capacity` without freeing or writing anything:
    /// to cut a failed multi-step operation back (the units past `n` become
    /// unreached garbage), or to restore a length whose units are unchanged.
    pub(crate) fn set_len(&mut self, n: u64) {
        debug_assert!(n <= self.cap || self.unit == 0);
        self.len = n;
        self.written_back = self.written_back.min(n);
    }

    /// After a commit: the committed length is the length, and every shadow is
    /// copied back into its block (which the new committed state does not
    /// reach) and freed (it becomes reusable after the next commit).
    /// Returns whether anything was folded, which the next commit must record.
    pub(crate) fn fold(&mut self, store: &mut Store) -> Result<bool> {
        self.committed_len = self.len;
        self.written_back = self.len;
        self.unreached.clear();
        self.tail = None;
        let shadows = std::mem::take(&mut self.overlay);
        let folded = !shadows.is_empty();
        for (b, s) in shadows {
            let home = self.home(b * self.block_units);
            store.copy(s, home, self.block_bytes as usize)?;
            store.free_pages(s, self.block_bytes / PAGE)?;
            self.unreached.insert(b);
        }
        Ok(folded)
    }

    /// Appends the region's table entry to `out` (layout in `docs/DESIGN.md`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.unit, self.len, self.chunks.len() as u64, self.overlay.len() as u64] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for ch in &self.chunks {
            out.extend_from_slice(&ch.addr.to_le_bytes());
            out.extend_from_slice(&ch.cap.to_le_bytes());
        }
        for (&b, &s) in &self.overlay {
            out.extend_from_slice(&b.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Decodes a table entry written by [`encode`](Self::encode) from `r`,
    /// validating it against `store`.
    pub(crate) fn decode(r: &mut Reader<'_>, store: &Store, unit: u64, what: &str) -> Result<Region> {
        let bad = |w: String| Error::corrupted(store.dir(), format!("{what}: {w}"));
        let found = r.u64()?;
        if found != unit {
            return Err(bad(format!("unit of {found} bytes, expected {unit}")));
        }
        let mut reg = Region::new(unit);
        let (len, nchunks, nshadows) = (r.u64()?, r.u64()?, r.u64()?);
        if nchunks.saturating_add(nshadows).saturating_mul(16) > r.remaining() as u64 {
            return Err(bad(format!("{nchunks} chunks and {nshadows} shadows exceed the table")));
        }
        // Chunks are disjoint extents of the store: together they hold at most
        // its backed bytes. Repeated or overlapping chunks would otherwise
        // make the in-memory chunk directory (an entry per minimum chunk of
        // capacity) arbitrarily large.
        let backed = store.backed_bytes();
        let mut total: u64 = 0;
        for _ in 0..nchunks {
            let (addr, cap) = (r.u64()?, r.u64()?);
            if unit == 0 || cap == 0 || cap % reg.block_units != 0 || cap < reg.min_chunk {
                return Err(bad(format!("chunk at {addr:#x} of {cap} units is not a whole number of blocks")));
            }
            let bytes = cap.checked_mul(unit).filter(|&b| b <= usize::MAX as u64);
            let Some(bytes) = bytes else {
                return Err(bad(format!("chunk at {addr:#x} of {cap} units is too large")));
            };
            if addr % PAGE != 0 || store.read(addr, bytes as usize).is_err() {
                return Err(bad(format!("chunk at {addr:#x} of {bytes} bytes lies outside the store")));
            }
            total = total.saturating_add(bytes);
            if total > backed {
                return Err(bad(format!("chunks of {total} bytes in all exceed the store's {backed} bytes")));
            }
            reg.push_chunk(Chunk { addr, start: reg.cap, cap });
        }
        if (unit > 0 && len > reg.cap) || (unit == 0 && nchunks != 0) {
            return Err(bad(format!("length {len} exceeds the capacity {} of its chunks", reg.cap)));
        }
        if unit == 0 && (len > MAX_ZERO_SIZED || nshadows != 0) {
            let what = format!("{len} zero-sized units (at most {MAX_ZERO_SIZED}) with {nshadows} shadows (none)");
            return Err(bad(what));
        }
        reg.len = len;
        reg.committed_len = len;
        reg.written_back = len;
        let blocks = len.div_ceil(reg.block_units);
        for _ in 0..nshadows {
            let (b, s) = (r.u64()?, r.u64()?);
            let ok = b < blocks && s % PAGE == 0 && store.read(s, reg.block_bytes as usize).is_ok();
            if !ok || reg.overlay.insert(b, s).is_some() {
                return Err(bad(format!("shadow of block {b} at {s:#x} is invalid")));
            }
        }
        Ok(reg)
    }

    /// The extents the region reaches, as `(address, bytes)`, for `check`.
    pub(crate) fn objects(&self, out: &mut Vec<(u64, u64)>) {
        out.extend(self.chunks.iter().map(|c| (c.addr, c.cap * self.unit)));
        out.extend(self.overlay.values().map(|&s| (s, self.block_bytes)));
    }

    /// Checks the in-memory invariants, for `check`.
    pub(crate) fn verify(&self) -> std::result::Result<(), String> {
        let mut start = 0;
        for (i, c) in self.chunks.iter().enumerate() {
            if c.start != start || c.cap % self.block_units != 0 || c.cap < self.min_chunk {
                return Err(format!("chunk {i} at {:#x} starts at unit {} of {}", c.addr, c.start, c.cap));
            }
            start += c.cap;
        }
        if start != self.cap || (self.unit > 0 && self.len > self.cap) {
            return Err(format!("length {} exceeds capacity {}", self.len, self.cap));
        }
        if let Some((&b, _)) = self.overlay.iter().next_back().filter(|(b, _)| **b * self.block_units >= self.cap) {
            return Err(format!("shadow of block {b} lies past the capacity {}", self.cap));
        }
        for k in 0..self.dir.len() as u64 {
            let c = self.chunk_of(k * self.min_chunk);
            let ch = &self.chunks[c];
            if !(ch.start..ch.start + ch.cap).contains(&(k * self.min_chunk)) {
                return Err(format!("directory entry {k} misses its chunk"));
            }
        }
        Ok(())
    }
}

/// Reads little-endian integers from a table.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a std::path::Path,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], path: &'a std::path::Path) -> Self {
        Reader { bytes, at: 0, path }
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let b =
            self.bytes.get(self.at..self.at + n).ok_or_else(|| Error::corrupted(self.path, "table is truncated"))?;
        self.at += n;
        Ok(b)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_whole_units() {
        for unit in [1u64, 8, 12, 16, 24, 1000, 4096, 5128, 12288] {
            let r = Region::new(unit);
            assert_eq!(r.block_bytes % PAGE, 0, "unit {unit}");
            assert_eq!(r.block_units * unit, r.block_bytes, "unit {unit}");
            assert_eq!(r.block_bytes, unit / gcd(unit, PAGE) * PAGE, "lcm for unit {unit}");
            assert!(r.min_chunk * unit >= MIN_CHUNK_BYTES && r.min_chunk.is_multiple_of(r.block_units));
        }
        assert_eq!(Region::new(12).block_bytes, 3 * PAGE);
        assert_eq!(Region::new(8).block_units, 512);
    }

    #[test]
    fn the_directory_finds_every_unit_in_chunks_of_any_size() {
        let mut r = Region::new(8);
        let m = r.min_chunk;
        for (k, cap) in [m, 3 * m, m, 7 * m + r.block_units, m].into_iter().enumerate() {
            r.push_chunk(Chunk { addr: (k as u64) << 30, start: r.cap, cap });
        }
        r.len = r.cap;
        r.verify().unwrap();
        for i in (0..r.cap).step_by(97).chain([r.cap - 1]) {
            let c = r.chunk_of(i);
            let ch = r.chunks[c];
            assert!((ch.start..ch.start + ch.cap).contains(&i), "unit {i} found in chunk {c}");
            assert_eq!(r.home(i), ch.addr + (i - ch.start) * 8);
        }
    }

    #[test]
    fn tables_round_trip_and_refuse_damage() {
        let mut r = Region::new(8);
        r.len = 5;
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.len(), 32);
        let path = std::path::Path::new("/nowhere");
        let mut rd = Reader::new(&out, path);
        assert_eq!((rd.u64().unwrap(), rd.u64().unwrap()), (8, 5));
        let mut cut = Reader::new(&out[..31], path);
        cut.take(24).unwrap();
        assert!(cut.u64().is_err(), "a truncated table is an error");
    }
}
