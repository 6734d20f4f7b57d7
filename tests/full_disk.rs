//! Full disk: growth that cannot get space returns `Err` (never SIGBUS, never
//! a panic), the structure stays readable with everything written so far, and
//! a reopen holds exactly the last flush. The disk is filled in a child
//! process, so that a signal is seen as a failure: once under `RLIMIT_FSIZE`
//! (set with `setrlimit` in the child, which ignores SIGXFSZ as a program
//! running under a file-size limit must), and once on a 4 MiB tmpfs when the
//! test runs as root and may mount one (otherwise that part is skipped with a
//! note). Every structure (`EmDict`, `EmList`, `EmVec`) is covered. Also on
//! a tmpfs: space released to the file system after a flush is reserved
//! again before reuse, so when the disk filled up meanwhile the reuse is an
//! `Err` naming the segment file, never a SIGBUS, and loses nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Rng, TempDir};
use emds::{EmDict, EmList, EmVec, OpenOptions, Result};

/// Segments double from 64 KiB, so the store's files grow past a small limit.
fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 64 << 20);
    o
}

/// The value of item `i` of the dict and the list: 1 to 30 KB, derived from `i`.
fn value(i: u64) -> Vec<u8> {
    let mut r = Rng(i);
    let len = r.range(1000, 30_000) as usize;
    r.bytes(len)
}

/// Element `i` of the vector.
fn element(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// One structure being filled item by item: item `i` is key `i` of the dict,
/// element `i` of the list or of the vector.
enum Filling {
    Dict(Box<EmDict<u64, Vec<u8>>>),
    List(Box<EmList<Vec<u8>>>),
    Vec(Box<EmVec<u64>>),
}

impl Filling {
    fn open(kind: &str, dir: &Path) -> Result<Filling> {
        Ok(match kind {
            "dict" => Filling::Dict(Box::new(EmDict::open_with(dir, &options())?)),
            "list" => Filling::List(Box::new(EmList::open_with(dir, &options())?)),
            _ => Filling::Vec(Box::new(EmVec::open_with(dir, &options())?)),
        })
    }

    /// Items per flush.
    fn flush_every(&self) -> u64 {
        if let Filling::Vec(_) = self { 20_000 } else { 8 }
    }

    fn add(&mut self, i: u64) -> Result<()> {
        match self {
            Filling::Dict(d) => d.insert(i, value(i)).map(drop),
            Filling::List(l) => l.push(value(i)),
            Filling::Vec(v) => v.push(element(i)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Filling::Dict(d) => d.len(),
            Filling::List(l) => l.len(),
            Filling::Vec(v) => v.len(),
        }
    }

    /// Verifies that the structure holds exactly items `0..n`.
    fn verify(&self, n: u64) -> std::result::Result<(), String> {
        if self.len() as u64 != n {
            return Err(format!("holds {} items, expected {n}", self.len()));
        }
        match self {
            Filling::Dict(d) => {
                for i in 0..n {
                    if d.get(&i).map_err(|e| format!("get {i}: {e}"))? != Some(value(i)) {
                        return Err(format!("key {i} holds another value"));
                    }
                }
                if d.iter().count() as u64 != n {
                    return Err("iter disagrees with len".into());
                }
            }
            Filling::List(l) => {
                for (i, v) in l.iter().enumerate() {
                    if v.map_err(|e| format!("iter at {i}: {e}"))? != value(i as u64) {
                        return Err(format!("element {i} differs"));
                    }
                }
            }
            Filling::Vec(v) => {
                let all: Vec<u64> = v.chunks().flatten().copied().collect();
                if all.len() as u64 != n || all.iter().enumerate().any(|(i, &x)| x != element(i as u64)) {
                    return Err("elements differ".into());
                }
            }
        }
        self.check().map(drop).map_err(|e| format!("check(): {e}"))
    }

    fn check(&self) -> Result<emds::CheckReport> {
        match self {
            Filling::Dict(d) => d.check(),
            Filling::List(l) => l.check(),
            Filling::Vec(v) => v.check(),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Filling::Dict(d) => d.flush(),
            Filling::List(l) => l.flush(),
            Filling::Vec(v) => v.flush(),
        }
    }
}

/// Limits this process's files to `bytes`, ignoring SIGXFSZ so that an
/// oversized write fails with EFBIG instead of killing the process.
fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
    // SAFETY: setting a signal to SIG_IGN and a resource limit affects only this
    // process and passes valid pointers and constants.
    let ok = unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN) != libc::SIG_ERR && libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == 0
    };
    assert!(ok, "setrlimit: {}", std::io::Error::last_os_error());
}

/// The child: fills `EMDS_DIR` with `EMDS_KIND` items, flushing every few and
/// saying `F n` after each flush of `n` items, until an operation fails
/// (`E i <error>`). Then it verifies that every item added is still readable
/// (`R`), tries one more flush, and exits without closing the store.
fn run_child() {
    if let Ok(limit) = std::env::var("EMDS_FSIZE") {
        limit_file_size(limit.parse().unwrap());
    }
    let kind = common::arg("EMDS_KIND");
    let mut f = Filling::open(&kind, common::arg("EMDS_DIR").as_ref()).expect("open");
    let mut added = 0u64;
    let err = loop {
        if let Err(e) = f.add(added) {
            break e;
        }
        added += 1;
        if added.is_multiple_of(f.flush_every()) {
            match f.flush() {
                Ok(()) => common::say(format!("F {added}")),
                Err(e) => break e,
            }
        }
        assert!(added < 100_000_000, "the disk never filled");
    };
    common::say(format!("E {added} {err}"));
    // Reads go on: everything added before the error is there, and nothing else.
    f.verify(added).unwrap_or_else(|e| panic!("after the error: {e}"));
    common::say("R");
    if f.flush().is_ok() {
        common::say(format!("F {added}"));
    }
    // Exit without the best-effort flush of Drop, so the parent knows the last flush.
    std::mem::forget(f);
}

#[test]
#[ignore = "the child process of the full-disk tests; runs only when started by them"]
fn child() {
    match common::role().as_deref() {
        Some("fill") => run_child(),
        Some("reuse") => run_reuse_child(),
        _ => {}
    }
}

/// Fills a store of `kind` in `dir` in a child (under a file-size `limit` if
/// given), then checks what the child said and what a reopen shows.
fn fill_and_reopen(kind: &str, dir: &Path, limit: Option<u64>, write_after: bool) {
    let mut cmd = common::child("child", "fill");
    cmd.env("EMDS_DIR", dir).env("EMDS_KIND", kind);
    if let Some(l) = limit {
        cmd.env("EMDS_FSIZE", l.to_string());
    }
    let ended = common::start(cmd).wait(Duration::from_secs(120));
    assert!(ended.success(), "{kind}: {}", ended.describe());
    let error = ended.lines.iter().find(|l| l.starts_with("E ")).expect("the child saw no error");
    println!("{kind}: {error}");
    assert!(ended.lines.iter().any(|l| l == "R"), "{kind}: reads after the error failed");
    let flushed: u64 = ended.lines.iter().filter_map(|l| l.strip_prefix("F ")?.parse().ok()).next_back().unwrap_or(0);
    assert!(flushed > 0, "{kind}: no flush landed before the disk was full");
    let mut f = common::retry_locked(|| Filling::open(kind, dir)).expect("reopen");
    f.verify(flushed).unwrap_or_else(|e| panic!("{kind}: after reopen: {e}"));
    if write_after {
        for i in flushed..flushed + 20 {
            f.add(i).unwrap();
        }
        f.flush().unwrap();
        drop(f);
        common::retry_locked(|| Filling::open(kind, dir)).unwrap().verify(flushed + 20).unwrap();
    } else {
        // Still full: a write may fail, but only with an error.
        let _ = f.add(flushed).and_then(|()| f.flush());
    }
}

#[test]
fn file_size_limit_gives_errors_and_keeps_the_last_flush() {
    let base = TempDir::new("fsize");
    for kind in ["dict", "list", "vec"] {
        fill_and_reopen(kind, &base.join(kind), Some(1 << 20), true);
    }
}

/// A small tmpfs mounted for this test, unmounted on drop.
struct SmallDisk(TempDir);

impl SmallDisk {
    /// Mounts it at a directory of its own: the tests run in parallel, and a
    /// second mount on the same path would hide the first one's files.
    fn mount(name: &str, bytes: u64) -> Option<SmallDisk> {
        let dir = TempDir::new(name);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn full_tmpfs_gives_errors_and_keeps_the_last_flush() {
    for kind in ["dict", "list", "vec"] {
        let Some(disk) = SmallDisk::mount("tmpfs-fill", 4 << 20) else {
            println!("skipped: cannot mount a tmpfs here (this needs root); the RLIMIT_FSIZE test still runs");
            return;
        };
        fill_and_reopen(kind, &disk.0.join("store"), None, false);
    }
}

/// Writes `path` until the file system is full.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5a; 64 << 10];
    let mut len = block.len();
    while len > 0 {
        if f.write_all(&block[..len]).is_err() {
            len /= 2;
        }
    }
    let _ = f.sync_all();
}

/// Verifies that `d` holds exactly the keys in `keys`, each with its `value`.
fn holds(d: &EmDict<u64, Vec<u8>>, keys: impl Iterator<Item = u64> + Clone) -> std::result::Result<(), String> {
    for k in keys.clone() {
        if d.get(&k).map_err(|e| format!("get {k}: {e}"))? != Some(value(k)) {
            return Err(format!("key {k} is missing or differs"));
        }
    }
    if d.len() != keys.count() {
        return Err(format!("holds {} keys", d.len()));
    }
    d.check().map(drop).map_err(|e| format!("check(): {e}"))
}

/// The child of the re-reservation test, on a small tmpfs: fills a dict,
/// removes most of it and flushes (its pages go back to the file system),
/// fills the file system with another file, then inserts until an insert
/// fails. The failure must come from reserving the released space again,
/// and leave the dict as it was; with the other file gone, inserts work again.
fn run_reuse_child() {
    let dir = std::path::PathBuf::from(common::arg("EMDS_DIR"));
    let filler = std::path::PathBuf::from(common::arg("EMDS_FILLER"));
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open_with(&dir, &options()).unwrap();
    for k in 0..80 {
        d.insert(k, value(k)).unwrap();
    }
    d.flush().unwrap();
    for k in 0..70 {
        d.remove(&k).unwrap();
    }
    d.flush().unwrap();
    let released = d.check().unwrap().bytes_released;
    assert!(released >= 256 << 10, "only {released} bytes released");
    common::say(format!("released {released}"));
    fill_up(&filler);
    let mut next = 1000;
    let err = loop {
        match d.insert(next, value(next)) {
            Ok(_) => next += 1,
            Err(e) => break e,
        }
        assert!(next < 1200, "the disk never filled");
    };
    common::say(format!("E {err}"));
    assert!(err.to_string().contains("reserve released space") && err.to_string().contains("seg."), "{err}");
    holds(&d, (70..80).chain(1000..next)).unwrap_or_else(|e| panic!("after the failed insert: {e}"));
    std::fs::remove_file(&filler).unwrap();
    d.insert(next, value(next)).unwrap();
    d.flush().unwrap();
    drop(d);
    let d: EmDict<u64, Vec<u8>> = EmDict::open_with(&dir, &options()).unwrap();
    holds(&d, (70..80).chain(1000..=next)).unwrap_or_else(|e| panic!("after reopen: {e}"));
    common::say("R");
}

#[test]
fn released_space_on_a_full_tmpfs_gives_an_error_at_reuse() {
    let Some(disk) = SmallDisk::mount("tmpfs-reuse", 4 << 20) else {
        println!("skipped: cannot mount a tmpfs here (this needs root)");
        return;
    };
    let mut cmd = common::child("child", "reuse");
    cmd.env("EMDS_DIR", disk.0.join("store")).env("EMDS_FILLER", disk.0.join("filler"));
    let ended = common::start(cmd).wait(Duration::from_secs(120));
    assert!(ended.success(), "{}", ended.describe());
    let error = ended.lines.iter().find(|l| l.starts_with("E ")).expect("no insert failed");
    println!("{error}");
    assert!(ended.lines.iter().any(|l| l == "R"), "inserts after freeing space failed");
}
