//! `EmList` and `EmVec` under injected allocation failures (a full disk at
//! any allocation): an operation that fails changes nothing, nothing leaks
//! (`check`), and a crash copy taken at any time reopens as the last flush.

use std::path::{Path, PathBuf};

use super::{EmList, EmVec};
use crate::test_util::{Rng, seed, temp_dir};
use crate::{Error, OpenOptions};

fn opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 1 << 20).durable(false);
    o
}

/// A copy of the store's files as a crash at this instant would leave them.
fn crash_copy(dir: &Path) -> PathBuf {
    let copy = dir.with_extension("crash");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    copy
}

fn same_list(l: &EmList<Vec<u8>>, model: &[Vec<u8>], what: &str) {
    assert_eq!(l.len(), model.len(), "{what}: length");
    let got: Vec<Vec<u8>> = l.iter().collect::<crate::Result<_>>().unwrap_or_else(|e| panic!("{what}: iter: {e}"));
    assert!(got == model, "{what}: contents differ");
    l.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
}

/// Whether `r` failed as the injected full disk does; any other error fails the test.
fn failed<T>(r: crate::Result<T>, what: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Full { .. }) => None,
        Err(e) => panic!("{what}: {e}"),
    }
}

#[test]
fn a_list_operation_failing_for_space_changes_nothing() {
    let seed = seed("emlist faults");
    let dir = temp_dir("emlist-faults");
    let mut r = Rng(seed);
    let mut l: EmList<Vec<u8>> = EmList::open_with(&dir, &opts()).unwrap();
    let (mut model, mut flushed): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
    for step in 0..3000 {
        let what = format!("seed {seed:#x} step {step}");
        let size = [0, 1, 7, 100, 300, 5000, 70_000][r.index(7)];
        let v = vec![step as u8; size];
        if r.index(3) == 0 {
            l.store_mut().fail_alloc_after = Some(r.index(4) as u64);
        }
        let n = model.len();
        let op = r.index(100);
        let what = format!("{what} (op {op})");
        let ok = match op {
            0..40 => failed(l.push(v.clone()), &what).map(|()| model.push(v)).is_some(),
            40..55 if n > 0 => {
                let i = r.index(n);
                failed(l.set(i, v.clone()), &what).map(|()| model[i] = v).is_some()
            }
            55..62 => failed(l.pop(), &what).map(|p| assert_eq!(p, model.pop(), "{what}: pop")).is_some(),
            62..66 => {
                let k = r.index(n + 1).max(n.saturating_sub(40));
                failed(l.truncate(k), &what).map(|()| model.truncate(k)).is_some()
            }
            66..74 => {
                let i = r.index(n + 1).max(n.saturating_sub(60));
                failed(l.insert(i, v.clone()), &what).map(|()| model.insert(i, v)).is_some()
            }
            74..82 if n > 0 => {
                let i = r.index(n).max(n.saturating_sub(60));
                failed(l.remove(i), &what).map(|x| assert_eq!(x, model.remove(i), "{what}: remove")).is_some()
            }
            82..88 if n > 0 => {
                let i = r.index(n);
                failed(l.swap_remove(i), &what).map(|x| assert_eq!(x, model.swap_remove(i), "{what}: swap")).is_some()
            }
            88..95 => match failed(l.flush(), &what) {
                Some(()) => {
                    flushed = model.clone();
                    true
                }
                None => false,
            },
            _ => {
                l.store_mut().fail_alloc_after = None;
                let copy = crash_copy(&dir);
                let c: EmList<Vec<u8>> = EmList::open_with(&copy, &opts()).unwrap();
                same_list(&c, &flushed, &format!("{what}: crash copy"));
                drop(c);
                std::fs::remove_dir_all(&copy).unwrap();
                true
            }
        };
        l.store_mut().fail_alloc_after = None;
        if !ok || step % 50 == 0 {
            same_list(&l, &model, &format!("{what}{}", if ok { "" } else { ": after a failed operation" }));
        }
    }
    l.close().unwrap();
    let l: EmList<Vec<u8>> = EmList::open_with(&dir, &opts()).unwrap();
    same_list(&l, &model, &format!("seed {seed:#x}: reopened"));
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn same_vec(v: &EmVec<u32>, model: &[u32], what: &str) {
    assert_eq!(v.len(), model.len(), "{what}: length");
    assert!(v.iter().eq(model.iter().copied()), "{what}: contents differ");
    v.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
}

#[test]
fn a_vec_operation_failing_for_space_changes_nothing() {
    let seed = seed("emvec faults");
    let dir = temp_dir("emvec-faults");
    let mut r = Rng(seed);
    let mut v: EmVec<u32> = EmVec::open_with(&dir, &opts()).unwrap();
    let (mut model, mut flushed): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for step in 0..3000 {
        let what = format!("seed {seed:#x} step {step}");
        let x = step as u32;
        if r.index(3) == 0 {
            v.store_mut().fail_alloc_after = Some(r.index(4) as u64);
        }
        let n = model.len();
        let op = r.index(100);
        let what = format!("{what} (op {op})");
        let ok = match op {
            0..30 => {
                let more: Vec<u32> = (0..[1, 10, 1000, 30_000][r.index(4)]).map(|k| x ^ k).collect();
                failed(v.extend_from_slice(&more), &what).map(|()| model.extend_from_slice(&more)).is_some()
            }
            30..50 if n > 0 => {
                let i = r.index(n);
                failed(v.set(i, x), &what).map(|()| model[i] = x).is_some()
            }
            50..56 => failed(v.pop(), &what).map(|p| assert_eq!(p, model.pop(), "{what}: pop")).is_some(),
            56..62 => {
                let k = r.index(n + 1);
                failed(v.truncate(k), &what).map(|()| model.truncate(k)).is_some()
            }
            62..72 => {
                let i = r.index(n + 1).max(n.saturating_sub(5000));
                failed(v.insert(i, x), &what).map(|()| model.insert(i, x)).is_some()
            }
            72..80 if n > 0 => {
                let i = r.index(n).max(n.saturating_sub(5000));
                failed(v.remove(i), &what).map(|y| assert_eq!(y, model.remove(i), "{what}: remove")).is_some()
            }
            80..86 if n > 0 => {
                let i = r.index(n);
                failed(v.swap_remove(i), &what).map(|y| assert_eq!(y, model.swap_remove(i), "{what}: swap")).is_some()
            }
            86..95 => match failed(v.flush(), &what) {
                Some(()) => {
                    flushed = model.clone();
                    true
                }
                None => false,
            },
            _ => {
                v.store_mut().fail_alloc_after = None;
                let copy = crash_copy(&dir);
                let c: EmVec<u32> = EmVec::open_with(&copy, &opts()).unwrap();
                same_vec(&c, &flushed, &format!("{what}: crash copy"));
                drop(c);
                std::fs::remove_dir_all(&copy).unwrap();
                true
            }
        };
        v.store_mut().fail_alloc_after = None;
        if !ok || step % 50 == 0 {
            same_vec(&v, &model, &format!("{what}{}", if ok { "" } else { ": after a failed operation" }));
        }
    }
    v.close().unwrap();
    let v: EmVec<u32> = EmVec::open_with(&dir, &opts()).unwrap();
    same_vec(&v, &model, &format!("seed {seed:#x}: reopened"));
    drop(v);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: `push` moved a relocated last group to the end of the data
/// (shadowing its group offset) before it marked the list changed; when the
/// push then failed for space, the next flush committed the old table and
/// folded the shadow back into the block that table reads: the store no
/// longer opened (its last group lay past the data).
#[test]
fn a_push_failing_after_moving_the_last_group_leaves_the_flushed_state() {
    for k in 0..8 {
        let what = format!("failing allocation {k}");
        let dir = temp_dir(&format!("emlist-move-fail-{k}"));
        let mut l: EmList<Vec<u8>> = EmList::open_with(&dir, &opts()).unwrap();
        let mut model: Vec<Vec<u8>> = (0..31).map(|i| vec![i as u8; 30_000]).collect();
        l.extend(model.iter().cloned()).unwrap();
        // Relocate group 0 to the end of the data: the last group no longer ends it.
        l.set(3, vec![9; 10]).unwrap();
        model[3] = vec![9; 10];
        l.flush().unwrap();
        l.store_mut().fail_alloc_after = Some(k);
        match l.push(vec![7; 5]) {
            Ok(()) => model.push(vec![7; 5]),
            Err(Error::Full { .. }) => {}
            Err(e) => panic!("{what}: {e}"),
        }
        l.store_mut().fail_alloc_after = None;
        same_list(&l, &model, &what);
        l.flush().unwrap();
        let copy = crash_copy(&dir);
        let c: EmList<Vec<u8>> = EmList::open_with(&copy, &opts()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        same_list(&c, &model, &format!("{what}: reopened"));
        drop((c, l));
        std::fs::remove_dir_all(&copy).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What the shift tests need of a list or a vector.
trait Shifting: Sized {
    type Elem: PartialEq + std::fmt::Debug + Clone;
    /// A store flushed with most of the model, the rest appended since
    /// (so that a shift both copies committed blocks and moves fresh ones);
    /// `variant` picks a second shape (see the impls).
    fn build(dir: &Path, variant: bool) -> (Self, Vec<Self::Elem>);
    fn reopen(dir: &Path) -> Self;
    fn contents(&self) -> Vec<Self::Elem>;
    fn verify(&self);
    fn store(&mut self) -> &mut crate::alloc::Store;
    fn flush_now(&mut self);
    /// Inserts a new element at `i` (`remove` false) or removes element `i`,
    /// and on success does the same to `model`.
    fn shift(&mut self, model: &mut Vec<Self::Elem>, i: usize, remove: bool) -> crate::Result<()>;
}

impl Shifting for EmList<Vec<u8>> {
    type Elem = Vec<u8>;
    /// `variant`: the first group was relocated (rewritten at the end of the
    /// data) before the flush, so the shift continues a group that does not
    /// end the data.
    fn build(dir: &Path, variant: bool) -> (Self, Vec<Vec<u8>>) {
        let mut l: EmList<Vec<u8>> = EmList::open_with(dir, &opts()).unwrap();
        let mut model: Vec<Vec<u8>> = (0..3100).map(|i| vec![i as u8; 40 + i % 90]).collect();
        l.extend(model[..3000].iter().cloned()).unwrap();
        if variant {
            model[3] = vec![3; 500];
            l.set(3, model[3].clone()).unwrap();
        }
        l.flush().unwrap();
        l.extend(model[3000..].iter().cloned()).unwrap();
        (l, model)
    }
    fn reopen(dir: &Path) -> Self {
        EmList::open_with(dir, &opts()).unwrap()
    }
    fn contents(&self) -> Vec<Vec<u8>> {
        self.iter().collect::<crate::Result<_>>().unwrap()
    }
    fn verify(&self) {
        self.check().unwrap();
    }
    fn store(&mut self) -> &mut crate::alloc::Store {
        self.store_mut()
    }
    fn flush_now(&mut self) {
        self.flush().unwrap();
    }
    fn shift(&mut self, model: &mut Vec<Vec<u8>>, i: usize, remove: bool) -> crate::Result<()> {
        if remove {
            let x = self.remove(i)?;
            assert_eq!(x, model.remove(i), "removed element");
        } else {
            self.insert(i, vec![0xee; 70])?;
            model.insert(i, vec![0xee; 70]);
        }
        Ok(())
    }
}

impl Shifting for EmVec<u32> {
    type Elem = u32;
    /// `variant`: everything flushed, nothing appended since.
    fn build(dir: &Path, variant: bool) -> (Self, Vec<u32>) {
        let mut v: EmVec<u32> = EmVec::open_with(dir, &opts()).unwrap();
        let model: Vec<u32> = (0..60_000).collect();
        let flushed = if variant { model.len() } else { 50_000 };
        v.extend_from_slice(&model[..flushed]).unwrap();
        v.flush().unwrap();
        v.extend_from_slice(&model[flushed..]).unwrap();
        (v, model)
    }
    fn reopen(dir: &Path) -> Self {
        EmVec::open_with(dir, &opts()).unwrap()
    }
    fn contents(&self) -> Vec<u32> {
        self.to_vec().unwrap()
    }
    fn verify(&self) {
        self.check().unwrap();
    }
    fn store(&mut self) -> &mut crate::alloc::Store {
        self.store_mut()
    }
    fn flush_now(&mut self) {
        self.flush().unwrap();
    }
    fn shift(&mut self, model: &mut Vec<u32>, i: usize, remove: bool) -> crate::Result<()> {
        if remove {
            let x = self.remove(i)?;
            assert_eq!(x, model.remove(i), "removed element");
        } else {
            self.insert(i, 0xeeee)?;
            model.insert(i, 0xeeee);
        }
        Ok(())
    }
}

/// An `insert` or `remove` near the front whose `k`-th allocation fails (a
/// full disk), for every `k` up to the number the operation makes: the open
/// handle holds the list as it was (never shortened or half shifted), passes
/// `check`, and after a flush a reopen holds the same.
fn shift_failing_at_every_allocation<H: Shifting>(name: &str, remove: bool, variant: bool) {
    let mut failures = 0;
    for k in 0..64 {
        let what = format!("{name}: allocation {k} fails");
        let dir = temp_dir(&format!("{name}-{k}"));
        let (mut h, mut model) = H::build(&dir, variant);
        h.store().fail_alloc_after = Some(k);
        let r = h.shift(&mut model, 7, remove);
        let injected = h.store().fail_alloc_after.is_none();
        h.store().fail_alloc_after = None;
        match r {
            Ok(()) if !injected => {
                // The operation made at most k allocations: every one has failed in an earlier round.
                assert!(h.contents() == model, "{what}: contents after success");
                h.verify();
                drop(h);
                std::fs::remove_dir_all(&dir).unwrap();
                assert!(failures > 0, "{name}: the operation allocates nothing");
                println!("{name}: {failures} failing allocations, each left the structure as it was");
                return;
            }
            Ok(()) => panic!("{what}: the operation succeeded through a failed allocation"),
            Err(Error::Full { .. }) => failures += 1,
            Err(e) => panic!("{what}: {e}"),
        }
        assert!(h.contents() == model, "{what}: the open handle differs from the state before the operation");
        h.verify();
        h.flush_now();
        let copy = crash_copy(&dir);
        let c = H::reopen(&copy);
        assert!(c.contents() == model, "{what}: reopened");
        drop((c, h));
        std::fs::remove_dir_all(&copy).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    panic!("{name}: still failing after 64 allocations");
}

/// Regression guard: `insert` and `remove` that fail for space in the middle
/// of shifting must leave the handle consistent (it once could be left with
/// the list cut at the index, which the next flush would have committed).
#[test]
fn emlist_insert_and_remove_failing_midway_leave_the_list_as_it_was() {
    for variant in [false, true] {
        shift_failing_at_every_allocation::<EmList<Vec<u8>>>(&format!("emlist-insert-{variant}"), false, variant);
        shift_failing_at_every_allocation::<EmList<Vec<u8>>>(&format!("emlist-remove-{variant}"), true, variant);
    }
}

/// As above, for `EmVec`.
#[test]
fn emvec_insert_and_remove_failing_midway_leave_the_vec_as_it_was() {
    for variant in [false, true] {
        shift_failing_at_every_allocation::<EmVec<u32>>(&format!("emvec-insert-{variant}"), false, variant);
        shift_failing_at_every_allocation::<EmVec<u32>>(&format!("emvec-remove-{variant}"), true, variant);
    }
}

/// Regression: `EmVec::truncate` (and so `pop` and `clear`) first moved the
/// elements buffered by `push` into the store, which needs space (here a
/// shadow of the committed last block): on a full disk a vector could not
/// even be cleared. Shortening needs no space, as for `EmList`.
#[test]
fn emvec_truncate_pop_and_clear_need_no_space_with_buffered_pushes() {
    let dir = temp_dir("emvec-truncate-full");
    let mut v: EmVec<u64> = EmVec::open_with(&dir, &opts()).unwrap();
    v.extend_from_slice(&[7, 8, 9]).unwrap();
    v.flush().unwrap();
    for i in 0..100 {
        v.push(i).unwrap();
    }
    let full = |v: &mut EmVec<u64>| v.store_mut().fail_alloc_after = Some(0);
    full(&mut v);
    assert_eq!(v.pop().unwrap(), Some(99));
    full(&mut v);
    v.truncate(50).unwrap();
    assert_eq!(v.len(), 50);
    assert_eq!(v.get(49).unwrap(), Some(46));
    full(&mut v);
    v.truncate(2).unwrap();
    assert_eq!(v.to_vec().unwrap(), [7, 8]);
    v.push(1).unwrap();
    full(&mut v);
    v.clear().unwrap();
    assert!(v.is_empty());
    v.store_mut().fail_alloc_after = None;
    v.check().unwrap();
    v.push(5).unwrap();
    v.close().unwrap();
    let v: EmVec<u64> = EmVec::open_with(&dir, &opts()).unwrap();
    assert_eq!(v.to_vec().unwrap(), [5]);
    drop(v);
    std::fs::remove_dir_all(&dir).unwrap();
}
