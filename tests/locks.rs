//! Locks: a second writer on a store, in the same process or in another one,
//! gets `Error::Locked` at once (never waits), and so does a reader while a
//! writer holds the store; any number of read-only opens in any number of
//! processes work at the same time, and a writer is refused while they do.
//! Every structure (`EmDict`, `EmList`, `EmVec`) is covered.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::mpsc::channel;
use std::time::Duration;

use common::TempDir;
use emds::{EmDict, EmList, EmVec, Error, OpenOptions};

/// The tests of this file run one at a time: a child spawned by one test would
/// hold a copy of another test's lock until it execs (docs/DESIGN.md §7).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens the store at `dir` as `kind`, read-write or read-only, and reads a little.
fn open_as(kind: &str, dir: &Path, read_only: bool) -> emds::Result<Box<dyn std::any::Any>> {
    let o = OpenOptions::new().read_only(read_only).clone();
    Ok(match kind {
        "dict" => {
            let d = EmDict::<u64, String>::open_with(dir, &o)?;
            assert_eq!(d.get(&7)?, Some("seven".to_string()));
            Box::new(d)
        }
        "list" => {
            let l = EmList::<String>::open_with(dir, &o)?;
            assert_eq!(l.get(0)?, Some("zero".to_string()));
            Box::new(l)
        }
        _ => {
            let v = EmVec::<u64>::open_with(dir, &o)?;
            assert_eq!(v.len(), 3);
            Box::new(v)
        }
    })
}

fn create(kind: &str, dir: &Path) {
    match kind {
        "dict" => {
            let mut d = EmDict::<u64, String>::open(dir).unwrap();
            d.insert(7, "seven".into()).unwrap();
            d.close().unwrap();
        }
        "list" => {
            let mut l = EmList::<String>::open(dir).unwrap();
            l.push("zero".into()).unwrap();
            l.close().unwrap();
        }
        _ => {
            let mut v = EmVec::<u64>::open(dir).unwrap();
            v.extend_from_slice(&[1, 2, 3]).unwrap();
            v.close().unwrap();
        }
    }
}

fn locked<T>(r: emds::Result<T>, dir: &Path, what: &str) {
    match r {
        Err(Error::Locked { path }) => assert!(path.starts_with(dir), "{what}: Locked names {path:?}"),
        Err(e) => panic!("{what}: expected Locked, got {e}"),
        Ok(_) => panic!("{what}: expected Locked, got a handle"),
    }
}

const KINDS: [&str; 3] = ["dict", "list", "vec"];

#[test]
fn second_writer_in_the_same_process_is_locked() {
    let _s = serial();
    let base = TempDir::new("locks-same");
    for kind in KINDS {
        let dir = base.join(kind);
        create(kind, &dir);
        let w = open_as(kind, &dir, false).unwrap();
        locked(open_as(kind, &dir, false), &dir, &format!("{kind}: second writer"));
        locked(open_as(kind, &dir, true), &dir, &format!("{kind}: reader beside a writer"));
        drop(w);
        let r1 = open_as(kind, &dir, true).unwrap();
        let r2 = open_as(kind, &dir, true).unwrap();
        locked(open_as(kind, &dir, false), &dir, &format!("{kind}: writer beside readers"));
        drop((r1, r2));
        drop(open_as(kind, &dir, false).unwrap());
    }
}

#[test]
fn writes_on_a_read_only_handle_are_refused() {
    let _s = serial();
    let dir = TempDir::new("locks-ro");
    create("dict", &dir.join("d"));
    create("list", &dir.join("l"));
    create("vec", &dir.join("v"));
    let mut d = EmDict::<u64, String>::open_read_only(dir.join("d")).unwrap();
    assert!(matches!(d.insert(1, "x".into()), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.remove(&7), Err(Error::ReadOnly { .. })));
    assert_eq!(d.get(&7).unwrap(), Some("seven".to_string()));
    let mut l = EmList::<String>::open_read_only(dir.join("l")).unwrap();
    assert!(matches!(l.push("x".into()), Err(Error::ReadOnly { .. })));
    assert!(matches!(l.pop(), Err(Error::ReadOnly { .. })));
    let mut v = EmVec::<u64>::open_read_only(dir.join("v")).unwrap();
    assert!(matches!(v.push(4), Err(Error::ReadOnly { .. })));
    assert!(matches!(v.truncate(0), Err(Error::ReadOnly { .. })));
    assert_eq!(v.len(), 3);
    // A read-only open of a store that does not exist creates nothing.
    let missing = dir.join("missing");
    assert!(EmDict::<u64, u64>::open_read_only(&missing).is_err());
    assert!(!missing.join("meta").exists());
}

/// The child: opens `EMDS_DIR` as `EMDS_KIND` (read-only if `EMDS_RO` is set)
/// and reports `H` (holding) or `E <error kind>`; then waits for its standard
/// input to close, reads again, and reports `R`.
fn run_child() {
    let dir = common::arg("EMDS_DIR");
    let kind = common::arg("EMDS_KIND");
    let read_only = std::env::var("EMDS_RO").is_ok();
    match open_as(&kind, dir.as_ref(), read_only) {
        Ok(h) => {
            common::say("H");
            let mut rest = Vec::new();
            std::io::stdin().read_to_end(&mut rest).unwrap();
            drop(h);
            common::say("R");
        }
        Err(Error::Locked { .. }) => common::say("E Locked"),
        Err(e) => common::say(format!("E {e}")),
    }
}

#[test]
#[ignore = "the child process of the lock tests; runs only when started by them"]
fn child() {
    if common::role().as_deref() == Some("locks") {
        run_child();
    }
}

/// A child holding `dir`, with the handle to let it go.
struct Holder {
    running: common::Running,
    stdin: std::process::ChildStdin,
}

fn spawn_child(kind: &str, dir: &Path, read_only: bool) -> common::Running {
    let mut cmd = common::child("child", "locks");
    cmd.env("EMDS_DIR", dir).env("EMDS_KIND", kind).stdin(Stdio::piped());
    if read_only {
        cmd.env("EMDS_RO", "1");
    }
    common::start(cmd)
}

fn hold(kind: &str, dir: &Path, read_only: bool) -> Holder {
    let mut running = spawn_child(kind, dir, read_only);
    let stdin = running.child.stdin.take().unwrap();
    let first = running.lines.recv_timeout(Duration::from_secs(60)).expect("the child said nothing");
    assert_eq!(first, "H", "{kind}: the child could not open the store");
    Holder { running, stdin }
}

impl Holder {
    fn release(mut self) {
        self.stdin.write_all(b"bye").unwrap();
        drop(self.stdin);
        let ended = self.running.wait(Duration::from_secs(60));
        assert!(ended.success(), "{}", ended.describe());
        assert_eq!(ended.lines, vec!["R".to_string()]);
    }
}

/// Runs `f` on another thread; an open that blocked instead of failing would never return.
fn fails_fast<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60)).expect("an open blocked instead of failing at once")
}

#[test]
fn writer_in_another_process_locks_out_writers_and_readers() {
    let _s = serial();
    let base = TempDir::new("locks-cross");
    for kind in KINDS {
        let dir = base.join(kind);
        create(kind, &dir);
        let holder = hold(kind, &dir, false);
        let d = dir.clone();
        let k = kind.to_string();
        locked(fails_fast(move || open_as(&k, &d, false).map(drop)), &dir, "writer beside another process's writer");
        let (d, k) = (dir.clone(), kind.to_string());
        locked(fails_fast(move || open_as(&k, &d, true).map(drop)), &dir, "reader beside another process's writer");
        holder.release();
        // And the other way round: this process writes, a child is refused.
        let w = open_as(kind, &dir, false).unwrap();
        for read_only in [false, true] {
            let ended = spawn_child(kind, &dir, read_only).wait(Duration::from_secs(60));
            assert!(ended.success(), "{}", ended.describe());
            assert_eq!(ended.lines, vec!["E Locked".to_string()], "{kind}: child beside this process's writer");
        }
        drop(w);
    }
}

#[test]
fn many_readers_across_processes_at_once() {
    let _s = serial();
    let base = TempDir::new("locks-readers");
    for kind in KINDS {
        let dir = base.join(kind);
        create(kind, &dir);
        // Eight processes hold the store read-only at the same time, and so does this one.
        let holders: Vec<Holder> = (0..8).map(|_| hold(kind, &dir, true)).collect();
        let mine = open_as(kind, &dir, true).unwrap();
        let d = dir.clone();
        let k = kind.to_string();
        locked(fails_fast(move || open_as(&k, &d, false).map(drop)), &dir, "writer beside readers in other processes");
        drop(mine);
        let d = dir.clone();
        let k = kind.to_string();
        locked(fails_fast(move || open_as(&k, &d, false).map(drop)), &dir, "writer beside readers in other processes");
        for h in holders {
            h.release();
        }
        // Once they are gone, a writer gets in.
        drop(open_as(kind, &dir, false).unwrap());
    }
}
