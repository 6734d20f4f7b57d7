//! Kill -9: child processes run random workloads on `EmDict`, `EmList` and
//! `EmVec` (inserts, overwrites, removals, growth across segments, large
//! values, flushes) and are SIGKILLed at random moments, right after a flush
//! begins, right before a large write that grows the store, within the first
//! 1.5 ms of opening the store (a read-write open of an `EmList`/`EmVec` state
//! with shadows writes), and during start-up. Every reopen must equal the model at the last flush the child
//! completed, or at the one in flight if its meta record landed, pass
//! `check()`, and accept the next child's writes.
//!
//! The parent knows what the child did without being told: the child's
//! workload is a deterministic function of its seed and of the store's
//! contents at open, so the parent replays it on an in-memory model.
//! `EMDS_KILLS` sets the kills per structure (default 110 for the dict, 100 for
//! the list and the vector).

mod common;

use std::time::{Duration, Instant};

use common::{Dict, List, Rng, Subject, TempDir, Vector};

/// Where a kill lands.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// After a random delay: start-up, open, operations, growth or a flush.
    Random(Duration),
    /// Right after the child announces the start of its n-th flush.
    InFlush(u64),
    /// Right after the child announces a large write (growth) in its n-th batch.
    BeforeLarge(u64),
    /// This long after the child announces that it starts to open the store.
    InOpen(Duration),
}

/// The child: opens the store, reads it as its model, then runs batches of
/// operations, each ending in a flush, until it is killed. It says `B n` before
/// flush n, `F n` after it, and `L n` before a large write in batch n.
fn run_child<S: Subject>() {
    let dir = common::arg("EMDS_DIR");
    let seed: u64 = common::arg("EMDS_CHILD_SEED").parse().unwrap();
    common::say("S");
    let mut h = common::retry_locked(|| S::open(dir.as_ref())).expect("child: open");
    let mut model = S::read(&h).expect("child: read at open");
    common::say("O");
    let mut rng = Rng(seed);
    for n in 1.. {
        for op in S::batch(&mut rng, &mut model) {
            if S::is_large(&op) {
                common::say(format!("L {n}"));
            }
            S::apply(&mut h, &op).unwrap_or_else(|e| panic!("child: {op:?}: {e}"));
        }
        common::say(format!("B {n}"));
        S::flush(&mut h).expect("child: flush");
        common::say(format!("F {n}"));
    }
}

#[test]
#[ignore = "the child process of the kill tests; runs only when started by them"]
fn child() {
    match common::role().as_deref() {
        Some("dict") => run_child::<Dict>(),
        Some("list") => run_child::<List>(),
        Some("vec") => run_child::<Vector>(),
        _ => {}
    }
}

fn read_only() -> emds::OpenOptions {
    let mut o = common::small_segments();
    o.read_only(true);
    o
}

/// What the kill rounds of one structure saw.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    at_last_flush: usize,
    in_flight_landed: usize,
    before_first_flush: usize,
    /// Killed before the child had opened and read the store: in start-up or open.
    before_open: usize,
    targeted_flush: usize,
    targeted_growth: usize,
    targeted_open: usize,
}

fn kill_rounds<S: Subject>(kills: usize) {
    let seed = common::seed(&format!("kill {}", S::NAME));
    let dir = TempDir::new(&format!("kill-{}", S::NAME));
    let mut rng = Rng(seed);
    let mut model = S::Model::default();
    let mut tally = Tally::default();
    for round in 0..kills {
        let child_seed = rng.next();
        let moment = match rng.below(20) {
            0..=8 => Moment::Random(Duration::from_micros(match rng.below(4) {
                0 => rng.below(15_000),
                _ => rng.range(15_000, 120_000),
            })),
            9..=14 => Moment::InFlush(rng.range(1, 4)),
            15..=17 => Moment::BeforeLarge(rng.range(1, 6)),
            _ => Moment::InOpen(Duration::from_micros(rng.below(1500))),
        };
        let context = format!("{} round {round}, seed {seed:#x}, child seed {child_seed}, {moment:?}", S::NAME);
        let mut cmd = common::child("child", S::NAME);
        cmd.env("EMDS_DIR", dir.path()).env("EMDS_CHILD_SEED", child_seed.to_string());
        let running = common::start(cmd);
        let mut completed = 0u64;
        let mut opened = false;
        let deadline = match moment {
            Moment::Random(d) => Instant::now() + d,
            // A child that never reaches the announced point is killed anyway.
            _ => Instant::now() + Duration::from_millis(400),
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let Ok(line) = running.lines.recv_timeout(deadline - now) else { break };
            let (tag, n) = line.split_once(' ').map_or((line.as_str(), 0), |(t, n)| (t, n.parse().unwrap_or(0)));
            match (tag, moment) {
                ("O", _) => opened = true,
                ("F", _) => completed = n,
                ("B", Moment::InFlush(k)) if n == k => {
                    tally.targeted_flush += 1;
                    break;
                }
                ("L", Moment::BeforeLarge(k)) if n >= k => {
                    tally.targeted_growth += 1;
                    break;
                }
                ("S", Moment::InOpen(d)) => {
                    common::sleep(d);
                    tally.targeted_open += 1;
                    break;
                }
                _ => {}
            }
        }
        let ended = running.kill();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(ended.status.signal(), Some(9), "{context}: the child ended on its own: {}", ended.describe());
        // Flushes the child completed before the kill; lines still in the pipe count too.
        for line in &ended.lines {
            if let Some(n) = line.strip_prefix("F ") {
                completed = n.parse().unwrap();
            }
        }
        // Replay the child's workload on the model: the states at flush `completed` and the next.
        let mut replay = model.clone();
        let mut r = Rng(child_seed);
        for _ in 0..completed {
            S::batch(&mut r, &mut replay);
        }
        let mut next = replay.clone();
        S::batch(&mut r, &mut next);

        // First read-only, as the crash left it (an EmList/EmVec state may read
        // through shadow blocks), then read-write (which folds them back).
        let seen = match common::retry_locked(|| S::open_with(dir.path(), &read_only())) {
            Ok(ro) => {
                let seen = S::read(&ro).unwrap_or_else(|e| panic!("{context}: read-only read after reopen: {e}"));
                S::check(&ro).unwrap_or_else(|e| panic!("{context}: read-only check() after reopen: {e}"));
                Some(seen)
            }
            // Killed before the store was first created: a read-only open finds none.
            Err(emds::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && replay == S::Model::default() =>
            {
                None
            }
            Err(e) => panic!("{context}: read-only reopen: {e}"),
        };
        let h = common::retry_locked(|| S::open(dir.path())).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        let got = S::read(&h).unwrap_or_else(|e| panic!("{context}: read after reopen: {e}"));
        if let Some(seen) = seen {
            assert!(got == seen, "{context}: read-only and read-write opens disagree: {}", S::diff(&got, &seen));
        }
        if got == replay {
            tally.at_last_flush += 1;
        } else if got == next {
            tally.in_flight_landed += 1;
        } else {
            panic!(
                "{context}: after the kill the store matches neither flush {completed} ({}) nor flush {} ({})",
                S::diff(&got, &replay),
                completed + 1,
                S::diff(&got, &next)
            );
        }
        if completed == 0 {
            tally.before_first_flush += 1;
        }
        if !opened && !ended.lines.iter().any(|l| l == "O") {
            tally.before_open += 1;
        }
        S::check(&h).unwrap_or_else(|e| panic!("{context}: check() after reopen: {e}"));
        drop(h);
        model = got;
        tally.kills += 1;
    }
    // The last state accepts writes and a flush, and reopens to them.
    let mut h = common::retry_locked(|| S::open(dir.path())).unwrap();
    let mut r = Rng(seed ^ 1);
    for op in S::batch(&mut r, &mut model) {
        S::apply(&mut h, &op).unwrap();
    }
    S::flush(&mut h).unwrap();
    drop(h);
    let h = common::retry_locked(|| S::open(dir.path())).unwrap();
    common::verify::<S>(&h, &model).unwrap_or_else(|e| panic!("{} after the last round, seed {seed:#x}: {e}", S::NAME));
    println!("kill {}: {tally:?}", S::NAME);
    assert_eq!(tally.kills, kills);
}

#[test]
fn kill_nine_dict() {
    kill_rounds::<Dict>(common::count("EMDS_KILLS", 110));
}

#[test]
fn kill_nine_list() {
    kill_rounds::<List>(common::count("EMDS_KILLS", 100));
}

#[test]
fn kill_nine_vec() {
    kill_rounds::<Vector>(common::count("EMDS_KILLS", 100));
}
