//! Shared harness of the reliability suite: a seeded generator that prints its
//! seed, temporary directories, child processes that re-execute the test binary
//! in a role chosen by an environment variable, and the three structures behind
//! one `Subject` trait with deterministic random workloads and in-memory models.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use emds::{CheckReport, EmDict, EmList, EmVec, Error, OpenOptions, Result};

// ---------------------------------------------------------------------------
// Randomness

mod rng;

// Not every test file seeds a generator.
#[allow(unused_imports)]
pub use rng::{Rng, seed};

impl Rng {
    /// A value of [`value_len`] random bytes.
    pub fn value(&mut self) -> Vec<u8> {
        let n = value_len(self);
        self.bytes(n)
    }
}

/// A count from the environment variable `var`, or `default`.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------
// Files

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("emds-it-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    /// Removes the directory, unless `EMDS_KEEP` is set (to look at a failure).
    fn drop(&mut self) {
        if std::env::var_os("EMDS_KEEP").is_some() {
            println!("kept {}", self.0.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Copies the files of one store directory (not the lock) into `to`, replacing what is there.
pub fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "lock" {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The store files of a directory (meta and segments), sorted.
pub fn store_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "lock"))
        .collect();
    files.sort();
    files
}

/// Whether the file system under `dir` can punch holes; where it cannot,
/// releasing is off and a test of released space has nothing to measure.
pub fn can_punch(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let path = dir.join("probe");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(8192).unwrap();
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate reads only its integer arguments; `f` keeps the descriptor open.
    let ok = unsafe { libc::fallocate(f.as_raw_fd(), mode, 0, 4096) } == 0;
    std::fs::remove_file(&path).unwrap();
    ok
}

/// Bytes the store's files occupy on disk (allocated blocks, not lengths).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    store_files(dir).iter().map(|p| fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)).sum()
}

/// The page size of the format.
pub const PAGE: usize = 4096;
/// Bytes of a meta slot and of the checksummed record at its start (docs/DESIGN.md §3).
pub const META_SLOT: usize = 4096;
pub const META_RECORD: usize = 256;

/// Options with small segments, so that modest workloads grow across many segment files.
pub fn small_segments() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 512 << 10);
    o
}

/// Runs `f` until it gives something other than `Error::Locked`, for at most a
/// few seconds. A sibling test's child process forked while a store was open
/// holds a copy of its lock until it execs (docs/DESIGN.md §7), so a reopen in a
/// test binary that spawns processes may meet `Locked` for a moment.
pub fn retry_locked<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        match f() {
            Err(Error::Locked { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(2))
            }
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// The environment variable that names a child's role.
pub const ROLE: &str = "EMDS_ROLE";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// An environment variable a child was given.
pub fn arg(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child started without {name}"))
}

/// A command that re-executes this test binary to run only the ignored test
/// `entry` (the child entry point of the test file) in `role`.
pub fn child(entry: &str, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", entry, "--ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    c
}

/// Prints one protocol line to the parent (lines of the test harness itself are ignored).
pub fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "EMDS {line}").unwrap();
    out.flush().unwrap();
}

/// A running child whose protocol lines arrive on a channel.
pub struct Running {
    pub child: Child,
    pub lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `cmd` with its stdout parsed for protocol lines and its stderr kept.
pub fn start(mut cmd: Command) -> Running {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn child");
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(|l| l.ok()) {
            // The first line may follow libtest's "test child ... " on the same line.
            if let Some(at) = line.find("EMDS ")
                && tx.send(line[at + 5..].to_string()).is_err()
            {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Running { child, lines, stderr }
}

/// How a child ended.
pub struct Ended {
    pub status: ExitStatus,
    pub lines: Vec<String>,
    pub stderr: String,
    /// The child printed nothing for the watchdog's time and was killed.
    pub hung: bool,
}

impl Ended {
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let how = match (self.hung, self.status.code(), self.status.signal()) {
            (true, _, _) => "hung (no progress for the watchdog's time) and was killed".to_string(),
            (_, Some(c), _) => format!("exited with code {c}"),
            (_, _, Some(s)) => format!("was killed by signal {s}"),
            _ => format!("ended with {}", self.status),
        };
        let tail: Vec<&str> = self.stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("child {how}; stderr:\n{}", tail.join("\n"))
    }

    pub fn success(&self) -> bool {
        !self.hung && self.status.success()
    }
}

impl Running {
    /// Sends SIGKILL and reaps the child.
    pub fn kill(mut self) -> Ended {
        let _ = self.child.kill();
        self.finish(false)
    }

    /// Waits for the child to end; if it prints no line for `watchdog`, it is
    /// killed and reported as hung.
    pub fn wait(mut self, watchdog: Duration) -> Ended {
        let mut lines = Vec::new();
        let mut last = Instant::now();
        loop {
            while let Ok(l) = self.lines.try_recv() {
                lines.push(l);
                last = Instant::now();
            }
            if let Some(_status) = self.child.try_wait().unwrap() {
                let mut e = self.finish(false);
                lines.append(&mut e.lines);
                e.lines = lines;
                return e;
            }
            if last.elapsed() > watchdog {
                let _ = self.child.kill();
                let mut e = self.finish(true);
                lines.append(&mut e.lines);
                e.lines = lines;
                return e;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(mut self, hung: bool) -> Ended {
        let status = self.child.wait().unwrap();
        let lines: Vec<String> = self.lines.iter().collect();
        let stderr = self.stderr.join().unwrap_or_default();
        Ended { status, lines, stderr, hung }
    }
}

/// Sleeps for `d` (a plain sleep; the kill tests want to land at random instants).
pub fn sleep(d: Duration) {
    std::thread::sleep(d)
}

/// Resident anonymous memory of this process in bytes (`RssAnon` in /proc/self/status).
pub fn rss_anon() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

// ---------------------------------------------------------------------------
// The structures under test, behind one trait

/// One of EmDict, EmList, EmVec with a deterministic random workload and a model.
pub trait Subject {
    /// Short name, used in roles and messages.
    const NAME: &'static str;
    type Handle;
    type Model: Clone + PartialEq + Debug + Default + Send;
    type Op: Debug;

    fn open_with(dir: &Path, opts: &OpenOptions) -> Result<Self::Handle>;
    /// Everything the handle holds, read through the public API and cross-checked
    /// (iteration against `len` and point reads); a message on any disagreement.
    fn read(h: &Self::Handle) -> std::result::Result<Self::Model, String>;
    fn random_op(rng: &mut Rng, model: &Self::Model) -> Self::Op;
    fn apply_model(op: &Self::Op, model: &mut Self::Model);
    fn apply(h: &mut Self::Handle, op: &Self::Op) -> Result<()>;
    fn flush(h: &mut Self::Handle) -> Result<()>;
    fn check(h: &Self::Handle) -> Result<CheckReport>;
    /// Whether the operation grows the store by a large object (a likely segment growth).
    fn is_large(op: &Self::Op) -> bool;
    /// A short description of the first difference between two models.
    fn diff(a: &Self::Model, b: &Self::Model) -> String;

    fn open(dir: &Path) -> Result<Self::Handle> {
        Self::open_with(dir, &small_segments())
    }

    /// The operations up to the next flush: a random count of them, generated
    /// and applied to `model` in order. Deterministic in `rng` and `model`, so a
    /// parent can replay what a child did.
    fn batch(rng: &mut Rng, model: &mut Self::Model) -> Vec<Self::Op> {
        let n = match rng.below(10) {
            0 => 0,
            1..=6 => rng.range(1, 12),
            _ => rng.range(12, 60),
        };
        (0..n)
            .map(|_| {
                let op = Self::random_op(rng, model);
                Self::apply_model(&op, model);
                op
            })
            .collect()
    }
}

fn describe_first_diff<T: PartialEq + Debug>(what: &str, a: &[T], b: &[T]) -> String {
    if a.len() != b.len() {
        return format!("{what}: {} entries against {}", a.len(), b.len());
    }
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => {
            let short = |v: &T| {
                let s = format!("{v:?}");
                if s.len() > 160 { format!("{}... ({} chars)", &s[..160], s.len()) } else { s }
            };
            format!("{what}: first difference at entry {i}: {} against {}", short(&a[i]), short(&b[i]))
        }
        None => format!("{what}: equal"),
    }
}

/// Value sizes: mostly small, some spanning pages, a few large enough to need
/// a segment of their own with [`small_segments`].
pub fn value_len(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0..=649 => rng.below(48) as usize,
        650..=899 => rng.range(48, 3000) as usize,
        900..=984 => rng.range(3000, 40_000) as usize,
        _ => rng.range(40_000, 700_000) as usize,
    }
}

/// The key of number `n`: short, except every 37th, which is long enough to be stored out of line.
pub fn dict_key(n: u64) -> String {
    if n % 37 == 5 { format!("key-{n}-{}", "x".repeat((n as usize * 131) % 6000 + 100)) } else { format!("key-{n}") }
}

/// EmDict<String, Vec<u8>> with inserts, overwrites, removals, updates, extends and rare clears.
pub struct Dict;

#[derive(Debug)]
pub enum DictOp {
    Insert(u64, Vec<u8>),
    Remove(u64),
    Update(u64, Option<Vec<u8>>),
    Extend(Vec<(u64, Vec<u8>)>),
    Clear,
}

pub type DictModel = BTreeMap<String, Vec<u8>>;

/// Reads a whole dict and cross-checks iteration, `len` and `get`.
pub fn read_dict<K, V>(d: &EmDict<K, V>) -> std::result::Result<BTreeMap<K, V>, String>
where
    K: serde::Serialize + serde::de::DeserializeOwned + Ord + Clone + Debug,
    V: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let mut m = BTreeMap::new();
    for item in d.iter() {
        let (k, v) = item.map_err(|e| format!("iter: {e}"))?;
        if m.insert(k.clone(), v).is_some() {
            return Err(format!("iter yields key {k:?} twice"));
        }
    }
    if m.len() != d.len() {
        return Err(format!("iter yields {} entries, len() says {}", m.len(), d.len()));
    }
    // Point reads of a sample agree with iteration.
    for (k, v) in m.iter().step_by(m.len() / 16 + 1) {
        let got = d.get(k).map_err(|e| format!("get {k:?}: {e}"))?;
        if got.as_ref() != Some(v) {
            return Err(format!("get {k:?} disagrees with iter"));
        }
    }
    Ok(m)
}

impl Subject for Dict {
    const NAME: &'static str = "dict";
    type Handle = EmDict<String, Vec<u8>>;
    type Model = DictModel;
    type Op = DictOp;

    fn open_with(dir: &Path, opts: &OpenOptions) -> Result<Self::Handle> {
        EmDict::open_with(dir, opts)
    }

    fn read(h: &Self::Handle) -> std::result::Result<DictModel, String> {
        let m = read_dict(h)?;
        if h.get("absent key").map_err(|e| e.to_string())?.is_some() {
            return Err("an absent key is found".into());
        }
        Ok(m)
    }

    fn random_op(rng: &mut Rng, model: &DictModel) -> DictOp {
        // Keys from a bounded range, so that overwrites and removals hit.
        let keys = 600;
        match rng.below(100) {
            0..=54 => DictOp::Insert(rng.below(keys), rng.value()),
            55..=79 => DictOp::Remove(rng.below(keys)),
            80..=91 => {
                let v = if rng.chance(80) { Some(rng.value()) } else { None };
                DictOp::Update(rng.below(keys), v)
            }
            92..=98 => {
                let n = rng.range(1, 40);
                DictOp::Extend((0..n).map(|_| (rng.below(keys), rng.small(200))).collect())
            }
            _ if model.len() > 300 || rng.chance(20) => DictOp::Clear,
            _ => DictOp::Remove(rng.below(keys)),
        }
    }

    fn apply_model(op: &DictOp, m: &mut DictModel) {
        match op {
            DictOp::Insert(k, v) => {
                m.insert(dict_key(*k), v.clone());
            }
            DictOp::Remove(k) => {
                m.remove(&dict_key(*k));
            }
            DictOp::Update(k, v) => match v {
                Some(v) => {
                    m.insert(dict_key(*k), v.clone());
                }
                None => {
                    m.remove(&dict_key(*k));
                }
            },
            DictOp::Extend(kvs) => {
                for (k, v) in kvs {
                    m.insert(dict_key(*k), v.clone());
                }
            }
            DictOp::Clear => m.clear(),
        }
    }

    fn apply(h: &mut Self::Handle, op: &DictOp) -> Result<()> {
        match op {
            DictOp::Insert(k, v) => h.insert(dict_key(*k), v.clone()).map(drop),
            DictOp::Remove(k) => h.remove(&dict_key(*k)).map(drop),
            DictOp::Update(k, v) => h.update(dict_key(*k), |_| v.clone()).map(drop),
            DictOp::Extend(kvs) => h.extend(kvs.iter().map(|(k, v)| (dict_key(*k), v.clone()))),
            DictOp::Clear => h.clear(),
        }
    }

    fn flush(h: &mut Self::Handle) -> Result<()> {
        h.flush()
    }

    fn check(h: &Self::Handle) -> Result<CheckReport> {
        h.check()
    }

    fn is_large(op: &DictOp) -> bool {
        matches!(op, DictOp::Insert(_, v) | DictOp::Update(_, Some(v)) if v.len() > 40_000)
    }

    fn diff(a: &DictModel, b: &DictModel) -> String {
        let a: Vec<_> = a.iter().collect();
        let b: Vec<_> = b.iter().collect();
        describe_first_diff("dict", &a, &b)
    }
}

/// EmList<Vec<u8>> with pushes, pops, sets, extends, truncations and rare clears.
pub struct List;

#[derive(Debug)]
pub enum ListOp {
    Push(Vec<u8>),
    Pop,
    Set(usize, Vec<u8>),
    Extend(Vec<Vec<u8>>),
    Truncate(usize),
    Clear,
}

/// Reads a whole list and cross-checks iteration, `len` and `get`.
pub fn read_list<T>(l: &EmList<T>) -> std::result::Result<Vec<T>, String>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let mut v = Vec::new();
    for (i, item) in l.iter().enumerate() {
        v.push(item.map_err(|e| format!("iter at {i}: {e}"))?);
        if v.len() > l.len() {
            return Err(format!("iter yields more than len() = {} elements", l.len()));
        }
    }
    if v.len() != l.len() {
        return Err(format!("iter yields {} elements, len() says {}", v.len(), l.len()));
    }
    for i in (0..v.len()).step_by(v.len() / 16 + 1).chain(v.len().checked_sub(1)) {
        let got = l.get(i).map_err(|e| format!("get {i}: {e}"))?;
        if got.as_ref() != Some(&v[i]) {
            return Err(format!("get {i} disagrees with iter"));
        }
    }
    match l.get(v.len()) {
        Ok(None) => Ok(v),
        other => Err(format!("get past the end gives {other:?}")),
    }
}

impl Subject for List {
    const NAME: &'static str = "list";
    type Handle = EmList<Vec<u8>>;
    type Model = Vec<Vec<u8>>;
    type Op = ListOp;

    fn open_with(dir: &Path, opts: &OpenOptions) -> Result<Self::Handle> {
        EmList::open_with(dir, opts)
    }

    fn read(h: &Self::Handle) -> std::result::Result<Self::Model, String> {
        read_list(h)
    }

    fn random_op(rng: &mut Rng, m: &Self::Model) -> ListOp {
        let len = m.len();
        match rng.below(100) {
            _ if len > 3000 => ListOp::Truncate(len / 2),
            0..=49 => ListOp::Push(rng.value()),
            50..=64 => ListOp::Pop,
            65..=84 if len > 0 => ListOp::Set(rng.below(len as u64) as usize, rng.value()),
            85..=94 => {
                let n = rng.range(1, 300);
                ListOp::Extend((0..n).map(|_| rng.small(64)).collect())
            }
            95..=98 => ListOp::Truncate(rng.below(len as u64 + 1) as usize),
            99 if rng.chance(30) => ListOp::Clear,
            _ => ListOp::Push(rng.small(16)),
        }
    }

    fn apply_model(op: &ListOp, m: &mut Self::Model) {
        match op {
            ListOp::Push(v) => m.push(v.clone()),
            ListOp::Pop => {
                m.pop();
            }
            ListOp::Set(i, v) => m[*i] = v.clone(),
            ListOp::Extend(vs) => m.extend(vs.iter().cloned()),
            ListOp::Truncate(n) => m.truncate(*n),
            ListOp::Clear => m.clear(),
        }
    }

    fn apply(h: &mut Self::Handle, op: &ListOp) -> Result<()> {
        match op {
            ListOp::Push(v) => h.push(v.clone()),
            ListOp::Pop => h.pop().map(drop),
            ListOp::Set(i, v) => h.set(*i, v.clone()),
            ListOp::Extend(vs) => h.extend(vs.iter().cloned()),
            ListOp::Truncate(n) => h.truncate(*n),
            ListOp::Clear => h.clear(),
        }
    }

    fn flush(h: &mut Self::Handle) -> Result<()> {
        h.flush()
    }

    fn check(h: &Self::Handle) -> Result<CheckReport> {
        h.check()
    }

    fn is_large(op: &ListOp) -> bool {
        matches!(op, ListOp::Push(v) | ListOp::Set(_, v) if v.len() > 40_000)
    }

    fn diff(a: &Self::Model, b: &Self::Model) -> String {
        describe_first_diff("list", a, b)
    }
}

/// EmVec<u64> with pushes, pops, sets, large slice extends, truncations and rare clears.
pub struct Vector;

#[derive(Debug)]
pub enum VecOp {
    Push(u64),
    Pop,
    Set(usize, u64),
    Extend(u64, usize),
    Truncate(usize),
    Clear,
}

/// The elements of an extend: `n` values derived from `seed`.
pub fn vec_run(seed: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(0x9e37_79b9))).collect()
}

/// Reads a whole vector through `chunks()` and cross-checks `len` and `get`.
pub fn read_vec<T: bytemuck::Pod + PartialEq + Debug>(v: &EmVec<T>) -> std::result::Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(v.len());
    for c in v.chunks() {
        out.extend_from_slice(c);
        if out.len() > v.len() {
            return Err(format!("chunks() cover more than len() = {} elements", v.len()));
        }
    }
    if out.len() != v.len() {
        return Err(format!("chunks() cover {} elements, len() says {}", out.len(), v.len()));
    }
    for i in (0..out.len()).step_by(out.len() / 16 + 1).chain(out.len().checked_sub(1)) {
        let got = vec_get(v, i)?;
        if got.as_ref() != Some(&out[i]) {
            return Err(format!("get {i} disagrees with chunks()"));
        }
    }
    match vec_get(v, out.len())? {
        None => Ok(out),
        Some(x) => Err(format!("get past the end gives {x:?}")),
    }
}

/// `EmVec::get`, whatever its exact return type.
pub fn vec_get<T: bytemuck::Pod>(v: &EmVec<T>, i: usize) -> std::result::Result<Option<T>, String> {
    v.get(i).map_err(|e| format!("get {i}: {e}"))
}

impl Subject for Vector {
    const NAME: &'static str = "vec";
    type Handle = EmVec<u64>;
    type Model = Vec<u64>;
    type Op = VecOp;

    fn open_with(dir: &Path, opts: &OpenOptions) -> Result<Self::Handle> {
        EmVec::open_with(dir, opts)
    }

    fn read(h: &Self::Handle) -> std::result::Result<Self::Model, String> {
        read_vec(h)
    }

    fn random_op(rng: &mut Rng, m: &Self::Model) -> VecOp {
        let len = m.len();
        match rng.below(100) {
            _ if len > 400_000 => VecOp::Truncate(len / 3),
            0..=44 => VecOp::Push(rng.next()),
            45..=54 => VecOp::Pop,
            55..=79 if len > 0 => VecOp::Set(rng.below(len as u64) as usize, rng.next()),
            80..=93 => {
                let n = if rng.chance(15) { rng.range(10_000, 150_000) } else { rng.range(1, 2000) };
                VecOp::Extend(rng.next(), n as usize)
            }
            94..=98 => VecOp::Truncate(rng.below(len as u64 + 1) as usize),
            99 if rng.chance(30) => VecOp::Clear,
            _ => VecOp::Push(rng.next()),
        }
    }

    fn apply_model(op: &VecOp, m: &mut Self::Model) {
        match *op {
            VecOp::Push(x) => m.push(x),
            VecOp::Pop => {
                m.pop();
            }
            VecOp::Set(i, x) => m[i] = x,
            VecOp::Extend(seed, n) => m.extend(vec_run(seed, n)),
            VecOp::Truncate(n) => m.truncate(n),
            VecOp::Clear => m.clear(),
        }
    }

    fn apply(h: &mut Self::Handle, op: &VecOp) -> Result<()> {
        match *op {
            VecOp::Push(x) => h.push(x),
            VecOp::Pop => h.pop().map(drop),
            VecOp::Set(i, x) => h.set(i, x),
            VecOp::Extend(seed, n) => h.extend_from_slice(&vec_run(seed, n)),
            VecOp::Truncate(n) => h.truncate(n),
            VecOp::Clear => h.clear(),
        }
    }

    fn flush(h: &mut Self::Handle) -> Result<()> {
        h.flush()
    }

    fn check(h: &Self::Handle) -> Result<CheckReport> {
        h.check()
    }

    fn is_large(op: &VecOp) -> bool {
        matches!(op, VecOp::Extend(_, n) if *n >= 10_000)
    }

    fn diff(a: &Self::Model, b: &Self::Model) -> String {
        describe_first_diff("vec", a, b)
    }
}

/// Reads `h`, compares it with `model`, runs `check()`: a message on any failure.
pub fn verify<S: Subject>(h: &S::Handle, model: &S::Model) -> std::result::Result<(), String> {
    let got = S::read(h)?;
    if &got != model {
        return Err(format!("{} differs from the model: {}", S::NAME, S::diff(&got, model)));
    }
    S::check(h).map(drop).map_err(|e| format!("check(): {e}"))
}
