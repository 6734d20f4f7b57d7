//! Opens fuzzer-chosen bytes as an emds store and runs operations on it
//! against an in-memory model.
//!
//! Input: a flags byte, then either
//! - raw mode (flag 0x80): the rest is the store's files: `meta` (the first
//!   8192 bytes) and `seg.000000` (the remainder, zero-padded to whole pages); or
//! - built mode: a length byte `n`, `n` operation bytes, then damage records.
//!   The operations build a real store (through the public API), the damage
//!   records change its files (xor a byte, zero a page, truncate a file), and
//!   flag 0x40 then recomputes the allocator-state and meta checksums so the
//!   damage gets past them to the structures' own validation.
//!
//! The store (an `EmDict`, `EmList` or `EmVec`, by flags % 3) is then opened
//! read-only and read-write, read, iterated and checked; each step may fail
//! with an error, none may panic or crash. Where the opened store passes
//! `check()`, the operations are applied to it and to a model of its
//! contents, which must agree, also after a flush and reopen.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use emds::{EmDict, EmList, EmVec, OpenOptions};
use libfuzzer_sys::fuzz_target;

const PAGE: usize = 4096;
const SLOT: usize = 4096;
const RECORD: usize = 256;

fuzz_target!(|data: &[u8]| run(data));

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.durable(false).segment_sizes(64 << 10, 256 << 10);
    o
}

/// On a tmpfs where there is one: creating a store fsyncs, which a disk makes slow.
fn store_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    base.join(format!("emds-fuzz-{}", std::process::id()))
}

fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let dir = store_dir();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let kind = flags % 3;
    let ops: &[u8] = if flags & 0x80 != 0 {
        write_raw(&dir, rest);
        &[]
    } else {
        let Some((&n, rest)) = rest.split_first() else { return };
        let (ops, damage) = rest.split_at((n as usize).min(rest.len()));
        match kind {
            0 => DictRun::build(&dir, ops),
            1 => ListRun::build(&dir, ops),
            _ => VecRun::build(&dir, ops),
        }
        apply_damage(&dir, damage);
        if flags & 0x40 != 0 {
            fix_checksums(&dir);
        }
        ops
    };
    match kind {
        0 => exercise::<DictRun>(&dir, ops),
        1 => exercise::<ListRun>(&dir, ops),
        _ => exercise::<VecRun>(&dir, ops),
    }
}

fn write_raw(dir: &Path, bytes: &[u8]) {
    let (meta, seg) = bytes.split_at(bytes.len().min(2 * SLOT));
    fs::write(dir.join("meta"), meta).unwrap();
    if !seg.is_empty() {
        let mut seg = seg.to_vec();
        seg.resize(seg.len().next_multiple_of(PAGE), 0);
        fs::write(dir.join("seg.000000"), seg).unwrap();
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "lock"))
        .collect();
    v.sort();
    v
}

/// Damage records of 5 bytes: file selector, 24-bit offset, xor byte. Selector
/// bit 0x80 truncates the file at the offset; a zero xor byte zeroes the page.
fn apply_damage(dir: &Path, damage: &[u8]) {
    let files = files(dir);
    if files.is_empty() {
        return;
    }
    for r in damage.chunks_exact(5) {
        let f = &files[(r[0] & 0x7f) as usize % files.len()];
        let Ok(mut b) = fs::read(f) else { continue };
        if b.is_empty() {
            continue;
        }
        let off = u32::from_le_bytes([r[1], r[2], r[3], 0]) as usize % b.len();
        if r[0] & 0x80 != 0 {
            b.truncate(off);
        } else if r[4] == 0 {
            let p = off / PAGE * PAGE;
            let end = (p + PAGE).min(b.len());
            b[p..end].fill(0);
        } else {
            b[off] ^= r[4];
        }
        fs::write(f, &b).unwrap();
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Recomputes, in each meta slot that has the magic, the allocator state's
/// checksum (when the state lies in segment 0) and the record's checksum.
fn fix_checksums(dir: &Path) {
    let Ok(mut meta) = fs::read(dir.join("meta")) else { return };
    let seg = fs::read(dir.join("seg.000000")).unwrap_or_default();
    for s in 0..2 {
        let at = s * SLOT;
        if meta.len() < at + RECORD || &meta[at..at + 8] != b"EMDSMETA" {
            continue;
        }
        let (addr, len) = (le64(&meta, at + 56), le64(&meta, at + 64));
        if addr >> 40 == 0 && len > 0 && (addr + len) as usize <= seg.len() {
            let sum = xxhash_rust::xxh3::xxh3_64(&seg[addr as usize..(addr + len) as usize]);
            meta[at + 72..at + 80].copy_from_slice(&sum.to_le_bytes());
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&meta[at..at + RECORD - 8]);
        meta[at + RECORD - 8..at + RECORD].copy_from_slice(&sum.to_le_bytes());
    }
    fs::write(dir.join("meta"), &meta).unwrap();
}

/// Reads operation bytes.
struct Ops<'a>(&'a [u8]);

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn value(&mut self) -> Option<Vec<u8>> {
        let b = self.byte()?;
        // Mostly small; 0xff..: large enough for pages of their own.
        let len = if b >= 0xf8 { (b as usize - 0xf7) * 9000 } else { b as usize };
        Some(vec![b; len])
    }
}

/// One structure under the fuzzer: how to build it, read it, and run ops on it and a model.
trait Run: Sized {
    type Model: PartialEq + Clone;
    fn open(dir: &Path, read_only: bool) -> emds::Result<Self>;
    /// Everything the handle holds, or the first error.
    fn read(&self) -> emds::Result<Self::Model>;
    fn check(&self) -> emds::Result<()>;
    /// Applies the next operation to the handle and, if given, the model; false at the end of the ops.
    fn step(&mut self, ops: &mut Ops, model: Option<&mut Self::Model>) -> Option<emds::Result<()>>;
    fn flush(&mut self) -> emds::Result<()>;

    fn build(dir: &Path, ops: &[u8]) {
        let Ok(mut h) = Self::open(dir, false) else { return };
        let mut ops = Ops(ops);
        while let Some(r) = h.step(&mut ops, None) {
            let _ = r;
        }
        let _ = h.flush();
    }
}

fn exercise<R: Run>(dir: &Path, ops: &[u8]) {
    if let Ok(h) = R::open(dir, true) {
        let _ = h.read();
        let _ = h.check();
    }
    let Ok(mut h) = R::open(dir, false) else { return };
    let consistent = h.check().is_ok();
    let model = h.read();
    let (true, Ok(mut model)) = (consistent, model) else {
        // A store that fails its check: operations may fail, but only with errors.
        let mut o = Ops(ops);
        while h.step(&mut o, None).is_some() {}
        let _ = h.flush();
        return;
    };
    // A store that passes its check behaves like its model.
    let mut o = Ops(ops);
    while let Some(r) = h.step(&mut o, Some(&mut model)) {
        r.expect("an operation on a store that passed check() failed");
    }
    assert!(h.read().expect("read after operations") == model, "the store differs from its model");
    h.flush().expect("flush");
    drop(h);
    let h = R::open(dir, false).expect("reopen");
    assert!(h.read().expect("read after reopen") == model, "the reopened store differs from its model");
    h.check().expect("check after reopen");
}

struct DictRun(EmDict<u8, Vec<u8>>);

impl Run for DictRun {
    type Model = BTreeMap<u8, Vec<u8>>;

    fn open(dir: &Path, read_only: bool) -> emds::Result<Self> {
        EmDict::open_with(dir, options().read_only(read_only)).map(DictRun)
    }

    fn read(&self) -> emds::Result<Self::Model> {
        let mut m = BTreeMap::new();
        for item in self.0.iter().take(1 << 16) {
            let (k, v) = item?;
            m.insert(k, v);
        }
        for k in 0..=255u8 {
            if self.0.get(&k)? != m.get(&k).cloned() {
                return Err(emds::Error::IndexOutOfBounds { index: k as u64, len: 0 });
            }
        }
        if m.len() != self.0.len() {
            return Err(emds::Error::IndexOutOfBounds { index: m.len() as u64, len: self.0.len() as u64 });
        }
        Ok(m)
    }

    fn check(&self) -> emds::Result<()> {
        self.0.check().map(drop)
    }

    fn step(&mut self, ops: &mut Ops, model: Option<&mut Self::Model>) -> Option<emds::Result<()>> {
        let op = ops.byte()?;
        let key = ops.byte()?;
        Some(match op % 5 {
            0 | 1 => {
                let v = ops.value()?;
                if let Some(m) = model {
                    m.insert(key, v.clone());
                }
                self.0.insert(key, v).map(drop)
            }
            2 => {
                if let Some(m) = model {
                    m.remove(&key);
                }
                self.0.remove(&key).map(drop)
            }
            3 => self.flush(),
            _ => {
                if op & 0x80 != 0 {
                    if let Some(m) = model {
                        m.clear();
                    }
                    self.0.clear()
                } else {
                    let v = ops.value()?;
                    if let Some(m) = model {
                        m.insert(key, v.clone());
                    }
                    self.0.update(key, |_| Some(v)).map(drop)
                }
            }
        })
    }

    fn flush(&mut self) -> emds::Result<()> {
        self.0.flush()
    }
}

struct ListRun(EmList<Vec<u8>>);

impl Run for ListRun {
    type Model = Vec<Vec<u8>>;

    fn open(dir: &Path, read_only: bool) -> emds::Result<Self> {
        EmList::open_with(dir, options().read_only(read_only)).map(ListRun)
    }

    fn read(&self) -> emds::Result<Self::Model> {
        let v = self.0.iter().take(1 << 16).collect::<emds::Result<Vec<_>>>()?;
        if v.len() != self.0.len() {
            return Err(emds::Error::IndexOutOfBounds { index: v.len() as u64, len: self.0.len() as u64 });
        }
        Ok(v)
    }

    fn check(&self) -> emds::Result<()> {
        self.0.check().map(drop)
    }

    fn step(&mut self, ops: &mut Ops, model: Option<&mut Self::Model>) -> Option<emds::Result<()>> {
        let op = ops.byte()?;
        Some(match op % 6 {
            0 | 1 => {
                let v = ops.value()?;
                if let Some(m) = model {
                    m.push(v.clone());
                }
                self.0.push(v)
            }
            2 => {
                if let Some(m) = model {
                    m.pop();
                }
                self.0.pop().map(drop)
            }
            3 => {
                let i = ops.byte()? as usize;
                let v = ops.value()?;
                match model {
                    Some(m) if i < m.len() => {
                        m[i] = v.clone();
                        self.0.set(i, v)
                    }
                    Some(_) => match self.0.set(i, v) {
                        Err(emds::Error::IndexOutOfBounds { .. }) => Ok(()),
                        other => panic!("set past the end gave {other:?}"),
                    },
                    None => self.0.set(i, v),
                }
            }
            4 => {
                let n = ops.byte()? as usize;
                if let Some(m) = model {
                    m.truncate(n);
                }
                self.0.truncate(n)
            }
            _ => self.flush(),
        })
    }

    fn flush(&mut self) -> emds::Result<()> {
        self.0.flush()
    }
}

struct VecRun(EmVec<u32>);

impl Run for VecRun {
    type Model = Vec<u32>;

    fn open(dir: &Path, read_only: bool) -> emds::Result<Self> {
        EmVec::open_with(dir, options().read_only(read_only)).map(VecRun)
    }

    fn read(&self) -> emds::Result<Self::Model> {
        let mut v = Vec::new();
        for c in self.0.chunks() {
            v.extend_from_slice(c);
            assert!(v.len() <= self.0.len(), "chunks() cover more than len()");
        }
        assert_eq!(v.len(), self.0.len(), "chunks() cover less than len()");
        Ok(v)
    }

    fn check(&self) -> emds::Result<()> {
        self.0.check().map(drop)
    }

    fn step(&mut self, ops: &mut Ops, model: Option<&mut Self::Model>) -> Option<emds::Result<()>> {
        let op = ops.byte()?;
        let x = ops.byte()? as u32;
        Some(match op % 6 {
            0 | 1 => {
                if let Some(m) = model {
                    m.push(x);
                }
                self.0.push(x)
            }
            2 => {
                if let Some(m) = model {
                    m.pop();
                }
                self.0.pop().map(drop)
            }
            3 => {
                // Long runs cross pages and segments.
                let run: Vec<u32> = (0..x * 97).collect();
                if let Some(m) = model {
                    m.extend_from_slice(&run);
                }
                self.0.extend_from_slice(&run)
            }
            4 => {
                let n = x as usize * 50;
                if let Some(m) = model {
                    m.truncate(n);
                }
                self.0.truncate(n)
            }
            _ => self.flush(),
        })
    }

    fn flush(&mut self) -> emds::Result<()> {
        self.0.flush()
    }
}
