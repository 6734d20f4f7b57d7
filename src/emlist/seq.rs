//! What `EmList` and `EmVec` share: a store whose root names one table object
//! listing the structure's regions, rewritten (copy-on-write) at every commit.
//! Layout in `docs/DESIGN.md` ("EmList and EmVec pages").

use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::region::{Reader, Region};
use crate::alloc::{CheckReport, Kind, ROOT_SIZE, Store};
use crate::error::{Error, Result};
use crate::options::OpenOptions;

/// Version of the table layout.
const TABLE_VERSION: u32 = 1;
/// Bytes of the table header.
const HEADER: usize = 32;

/// A store holding one sequence structure.
#[derive(Debug)]
pub(crate) struct Seq {
    pub(crate) store: Store,
    magic: [u8; 8],
    /// The current table object: address and length.
    table: Option<(u64, u64)>,
    root: [u8; ROOT_SIZE],
    /// Whether the structure changed since the last commit.
    pub(crate) changed: bool,
}

/// What a structure keeps besides its regions: its length and two words of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extra {
    pub(crate) len: u64,
    pub(crate) words: [u64; 2],
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Seq {
    /// Opens the store at `path` and decodes its table: one region per entry of `units`.
    pub(crate) fn open(
        path: &Path,
        opts: &OpenOptions,
        kind: Kind,
        type_size: u32,
        type_align: u32,
        magic: [u8; 8],
        units: &[u64],
    ) -> Result<(Seq, Vec<Region>, Extra)> {
        let store = Store::open(path, opts, kind, type_size, type_align)?;
        let root = *store.root();
        let mut seq = Seq { store, magic, table: None, root, changed: false };
        let (regions, extra) = seq.load(units)?;
        Ok((seq, regions, extra))
    }

    fn load(&mut self, units: &[u64]) -> Result<(Vec<Region>, Extra)> {
        let r = &self.root;
        let (len, addr, tlen, sum) = (u64_at(r, 0), u64_at(r, 8), u64_at(r, 16), u64_at(r, 24));
        let dir = self.store.dir().to_path_buf();
        let corrupt = |w: String| Error::corrupted(&dir, w);
        if tlen == 0 {
            if r.iter().any(|&b| b != 0) {
                return Err(corrupt("root names no table but is not empty".into()));
            }
            return Ok((units.iter().map(|&u| Region::new(u)).collect(), Extra::default()));
        }
        let tlen_usize = usize::try_from(tlen).map_err(|_| corrupt(format!("table of {tlen} bytes")))?;
        let bytes = self.store.read(addr, tlen_usize)?;
        if xxh3_64(bytes) != sum {
            return Err(corrupt(format!("table at {addr:#x}: checksum mismatch")));
        }
        let mut rd = Reader::new(bytes, &dir);
        let head = rd.take(HEADER)?;
        if head[..8] != self.magic {
            return Err(corrupt(format!("table at {addr:#x} has a foreign magic")));
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let count = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
        if version != TABLE_VERSION || count as usize != units.len() {
            return Err(corrupt(format!("table version {version} with {count} regions")));
        }
        let extra = Extra { len, words: [u64_at(head, 16), u64_at(head, 24)] };
        let mut regions = Vec::with_capacity(units.len());
        for (i, &u) in units.iter().enumerate() {
            regions.push(Region::decode(&mut rd, &self.store, u, &format!("table region {i}"))?);
        }
        if rd.remaining() != 0 {
            return Err(corrupt(format!("table at {addr:#x} has {} bytes after its end", rd.remaining())));
        }
        self.table = Some((addr, tlen));
        if !self.store.is_read_only() {
            // The committed state may read some blocks from shadows: copy them back.
            for r in &mut regions {
                self.changed |= r.fold(&mut self.store)?;
            }
        }
        Ok((regions, extra))
    }

    /// Commits the structure: writes a new table (if anything changed), then
    /// the store's commit; afterwards folds the shadows back.
    pub(crate) fn commit(&mut self, regions: &mut [&mut Region], extra: Extra) -> Result<()> {
        if self.store.is_read_only() {
            return Ok(());
        }
        self.store.writable()?;
        for r in regions.iter_mut() {
            r.prune(&mut self.store)?;
        }
        // A region with shadows must be recorded in a new table even if the
        // structure forgot to say it changed: the fold after the commit copies
        // the shadows into blocks that an old table would still read.
        self.changed |= regions.iter().any(|r| r.differs_from_committed());
        if self.changed {
            let mut out = Vec::with_capacity(HEADER + 64 * regions.len());
            out.extend_from_slice(&self.magic);
            out.extend_from_slice(&TABLE_VERSION.to_le_bytes());
            out.extend_from_slice(&(regions.len() as u32).to_le_bytes());
            out.extend_from_slice(&extra.words[0].to_le_bytes());
            out.extend_from_slice(&extra.words[1].to_le_bytes());
            for r in regions.iter() {
                r.encode(&mut out);
            }
            let addr = self.store.alloc(out.len())?;
            self.store.write(addr, out.len())?.copy_from_slice(&out);
            if let Some((a, l)) = self.table.replace((addr, out.len() as u64)) {
                self.store.free(a, l as usize)?;
            }
            let mut root = [0u8; ROOT_SIZE];
            root[0..8].copy_from_slice(&extra.len.to_le_bytes());
            root[8..16].copy_from_slice(&addr.to_le_bytes());
            root[16..24].copy_from_slice(&(out.len() as u64).to_le_bytes());
            root[24..32].copy_from_slice(&xxh3_64(&out).to_le_bytes());
            self.root = root;
        }
        self.store.commit(&self.root)?;
        self.changed = false;
        for r in regions.iter_mut() {
            self.changed |= r.fold(&mut self.store)?;
        }
        Ok(())
    }

    /// Checks the regions and the store's accounting; `more` are further
    /// findings of the structure's own check.
    pub(crate) fn check(&self, regions: &[&Region]) -> Result<CheckReport> {
        let corrupt = |w: String| Error::corrupted(self.store.dir(), format!("check: {w}"));
        for (i, r) in regions.iter().enumerate() {
            r.verify().map_err(|w| corrupt(format!("region {i}: {w}")))?;
        }
        let mut objects = Vec::new();
        if let Some((addr, len)) = self.table {
            let bytes = self.store.read(addr, len as usize)?;
            if xxh3_64(bytes) != u64_at(&self.root, 24) || u64_at(&self.root, 8) != addr {
                return Err(corrupt(format!("table at {addr:#x} does not match the root")));
            }
            objects.push((addr, len));
        }
        for r in regions {
            r.objects(&mut objects);
        }
        self.store.check(&objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmVec;

    /// Rewrites the committed table and root of the store at `dir` (opened
    /// as `kind` with the given element size and alignment) through the
    /// store's own commit (valid checksums throughout), after `edit` changed
    /// them; the root's table address, length and checksum are then set.
    fn forge(dir: &Path, kind: Kind, size: u32, align: u32, edit: impl FnOnce(&mut Vec<u8>, &mut [u8; ROOT_SIZE])) {
        let mut store = Store::open(dir, &OpenOptions::new(), kind, size, align).unwrap();
        let mut root = *store.root();
        let (addr, tlen) = (u64_at(&root, 8), u64_at(&root, 16));
        let mut table = store.read(addr, tlen as usize).unwrap().to_vec();
        edit(&mut table, &mut root);
        store.free(addr, tlen as usize).unwrap();
        let at = store.alloc(table.len()).unwrap();
        store.write(at, table.len()).unwrap().copy_from_slice(&table);
        root[8..16].copy_from_slice(&at.to_le_bytes());
        root[16..24].copy_from_slice(&(table.len() as u64).to_le_bytes());
        root[24..32].copy_from_slice(&xxh3_64(&table).to_le_bytes());
        store.commit(&root).unwrap();
    }

    /// [`forge`] for the table of an `EmVec<u64>`.
    fn forge_table(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        forge(dir, Kind::Vec, 8, 8, |t, _| edit(t));
    }

    /// Where each region entry of a table starts.
    fn region_offsets(t: &[u8]) -> Vec<usize> {
        let mut at = HEADER;
        let mut out = Vec::new();
        while at < t.len() {
            out.push(at);
            at += 32 + 16 * (u64_at(t, at + 16) + u64_at(t, at + 24)) as usize;
        }
        out
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn expect_corrupted<T: std::fmt::Debug>(r: Result<T>, needle: &str) {
        match r {
            Err(Error::Corrupted { what, .. }) => assert!(what.contains(needle), "{what}"),
            other => panic!("expected Corrupted naming {needle:?}, got {other:?}"),
        }
    }

    /// Regression: opening an `EmVec<()>` made one `()` per stored element
    /// (`vec![x; len]`), so a forged huge length kept open busy for a very
    /// long time. Open is O(1) now: the largest valid length opens at once
    /// and works; appending past it is `Full`.
    #[test]
    fn emvec_of_zero_sized_elements_with_a_forged_huge_length_opens_at_once() {
        let dir = crate::test_util::temp_dir("forged-zst-len");
        let mut v = EmVec::<()>::open(&dir).unwrap();
        v.extend_from_slice(&[(); 3]).unwrap();
        v.close().unwrap();
        let huge = crate::emlist::region::MAX_ZERO_SIZED;
        forge(&dir, Kind::Vec, 0, 1, |t, root| {
            set_u64(t, HEADER + 8, huge);
            set_u64(root, 0, huge);
        });
        let mut v = EmVec::<()>::open(&dir).unwrap();
        assert_eq!(v.len() as u64, huge);
        assert_eq!((v.get(v.len() - 1).unwrap(), v.get(v.len()).unwrap()), (Some(()), None));
        assert!(matches!(v.push(()), Err(Error::Full { .. })), "past the largest length");
        assert_eq!(v.len() as u64, huge, "a failed push changes nothing");
        assert_eq!(v.pop().unwrap(), Some(()));
        v.push(()).unwrap();
        v.check().unwrap();
        v.truncate(5).unwrap();
        v.close().unwrap();
        assert_eq!(EmVec::<()>::open(&dir).unwrap().len(), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Regression (as above): a zero-sized length past the largest valid one,
    /// or shadows in a region of zero-sized units (which has no blocks), is
    /// `Corrupted` naming the table region, never a hang or a panic.
    #[test]
    fn emvec_of_zero_sized_elements_with_an_impossible_length_is_corrupted() {
        let dir = crate::test_util::temp_dir("forged-zst-bad");
        let mut v = EmVec::<()>::open(&dir).unwrap();
        v.extend_from_slice(&[(); 3]).unwrap();
        v.close().unwrap();
        let copy = dir.with_extension("copy");
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["meta", "seg.000000"] {
            std::fs::copy(dir.join(f), copy.join(f)).unwrap();
        }
        forge(&dir, Kind::Vec, 0, 1, |t, root| {
            set_u64(t, HEADER + 8, u64::MAX);
            set_u64(root, 0, u64::MAX);
        });
        expect_corrupted(EmVec::<()>::open(&dir), "zero-sized units");
        expect_corrupted(EmVec::<()>::open_read_only(&dir), "zero-sized units");
        forge(&copy, Kind::Vec, 0, 1, |t, _| {
            set_u64(t, HEADER + 24, 1);
            t.extend_from_slice(&[0; 16]);
        });
        expect_corrupted(EmVec::<()>::open(&copy), "1 shadows");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&copy).unwrap();
    }

    /// An `EmList<()>` keeps one length code per element, so its length is
    /// bounded by the codes' chunks: a forged root length, or a forged codes
    /// length, is `Corrupted` at open (in O(1)).
    #[test]
    fn emlist_of_unit_with_a_forged_huge_length_is_corrupted() {
        let dir = crate::test_util::temp_dir("forged-list-unit-len");
        let mut l = crate::EmList::<()>::open(&dir).unwrap();
        l.extend([(); 40]).unwrap();
        l.close().unwrap();
        forge(&dir, Kind::List, 0, 0, |_, root| set_u64(root, 0, u64::MAX));
        expect_corrupted(crate::EmList::<()>::open(&dir), "list of");
        forge(&dir, Kind::List, 0, 0, |t, _| {
            let codes = region_offsets(t)[1];
            set_u64(t, codes + 8, u64::MAX);
        });
        expect_corrupted(crate::EmList::<()>::open(&dir), "exceeds the capacity");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A table naming the same chunk many times claims more capacity than the
    /// store holds: open refuses it before building a chunk directory for it.
    #[test]
    fn repeated_chunks_beyond_the_store_are_corrupted() {
        let dir = std::env::temp_dir().join(format!("emds-unit-forged-chunks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut v = EmVec::<u64>::open(&dir).unwrap();
        v.extend_from_slice(&[7; 100]).unwrap();
        v.close().unwrap();
        forge_table(&dir, |t| {
            // Header, then the region: unit, len, nchunks, nshadows, chunks.
            let nchunks = u64_at(t, HEADER + 16);
            assert_eq!((nchunks, u64_at(t, HEADER + 24)), (1, 0), "one chunk, no shadows");
            let chunk = t[HEADER + 32..HEADER + 48].to_vec();
            let copies = 100_000u64;
            t[HEADER + 16..HEADER + 24].copy_from_slice(&copies.to_le_bytes());
            for _ in 1..copies {
                t.extend_from_slice(&chunk);
            }
        });
        match EmVec::<u64>::open(&dir) {
            Err(Error::Corrupted { what, .. }) => assert!(what.contains("chunks of"), "{what}"),
            other => panic!("expected Corrupted, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
