//! Removals give an `EmDict`'s pages back: sparse buddy buckets merge
//! (cascading, when their entries fit in half a page together), the
//! directory halves at the commit after a merge once no bucket needs its
//! depth, and a reopen sees the smaller dict. Removing every key one by one
//! leaves one bucket and a one-entry directory; removing 90% leaves at most
//! a third of the bucket pages; removing half merges (almost) nothing
//! (hysteresis: buckets more than a quarter full stay, so later inserts do
//! not split them again), and churn at the merge boundary keeps the count.

mod common;

use std::path::Path;

use common::{Rng, TempDir};
use emds::{EmDict, OpenOptions};

/// `(global_depth, dir_pages, bucket_pages)` of the dict's current root (docs/DESIGN.md §3, "EmDict pages").
fn root(dir: &Path) -> (u32, u64, u64) {
    let meta = std::fs::read(dir.join("meta")).unwrap();
    let txn = |slot: usize| u64::from_le_bytes(meta[slot + 16..slot + 24].try_into().unwrap());
    let slot = if txn(0) >= txn(common::META_SLOT) { 0 } else { common::META_SLOT };
    let r = &meta[slot + 80..slot + 208];
    let word = |at: usize| u64::from_le_bytes(r[at..at + 8].try_into().unwrap());
    (u32::from_le_bytes(r[12..16].try_into().unwrap()), word(32), word(48))
}

fn load(dir: &Path, seed: u64, n: usize) -> (EmDict<u64, u64>, Vec<u64>) {
    let mut rng = Rng(seed);
    let keys: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut d: EmDict<u64, u64> = EmDict::open_with(dir, OpenOptions::new().truncate(true)).unwrap();
    for (i, &k) in keys.iter().enumerate() {
        d.insert(k, i as u64).unwrap();
    }
    d.flush().unwrap();
    (d, keys)
}

/// Removes `keys` with a flush every `every` removals.
fn remove_all(d: &mut EmDict<u64, u64>, keys: &[u64], every: usize) {
    for chunk in keys.chunks(every) {
        for k in chunk {
            assert!(d.remove(k).unwrap().is_some(), "key {k:#x}");
        }
        d.flush().unwrap();
    }
}

#[test]
fn removing_every_key_leaves_one_bucket_and_a_one_entry_directory() {
    let base = TempDir::new("shrink-all");
    let dir = base.join("dict");
    let seed = common::seed("dict shrink all");
    let (mut d, keys) = load(&dir, seed, 200_000);
    let loaded = root(&dir);
    // Buckets of up to eight pages: depth 7 or 8 for 200 k entries (9 with one-page buckets).
    assert!(loaded.0 >= 7 && loaded.2 >= 512, "{loaded:?}");
    remove_all(&mut d, &keys, 10_000);
    let report = d.check().unwrap();
    assert_eq!(root(&dir), (0, 1, 1), "after load {loaded:?}, seed {seed:#x}");
    assert!(report.bytes_live < 4 * common::PAGE as u64, "{report:?}");
    drop(d);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert!(d.is_empty());
    d.check().unwrap();
    for &k in &keys[..1000] {
        d.insert(k, !k).unwrap();
    }
    d.flush().unwrap();
    assert_eq!(d.get(&keys[999]).unwrap(), Some(!keys[999]));
    d.check().unwrap();
}

#[test]
fn removing_ninety_percent_merges_and_halves_but_half_merges_nothing() {
    let base = TempDir::new("shrink-ninety");
    let dir = base.join("dict");
    let seed = common::seed("dict shrink ninety");
    let n = 200_000;
    let (mut d, keys) = load(&dir, seed, n);
    let (depth0, _, pages0) = root(&dir);
    remove_all(&mut d, &keys[..n / 2], 5_000);
    let (depth1, _, pages1) = root(&dir);
    println!("loaded: depth {depth0}, {pages0} bucket pages; half removed: depth {depth1}, {pages1} pages");
    assert!(pages1 * 20 >= pages0 * 19, "buckets at least a quarter full do not merge, seed {seed:#x}");
    remove_all(&mut d, &keys[n / 2..n * 9 / 10], 5_000);
    let (depth2, dir_pages2, pages2) = root(&dir);
    println!("90% removed: depth {depth2} ({dir_pages2} directory pages), {pages2} bucket pages");
    assert!(pages2 * 3 <= pages0, "{pages2} of {pages0} bucket pages left, seed {seed:#x}");
    assert!(depth2 < depth0, "the directory did not halve: depth {depth2}, seed {seed:#x}");
    d.check().unwrap();
    drop(d);
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), n - n * 9 / 10);
    for (i, k) in keys.iter().enumerate() {
        let want = (i >= n * 9 / 10).then_some(i as u64);
        assert_eq!(d.get(k).unwrap(), want, "key {k:#x} (index {i}), seed {seed:#x}");
    }
    d.check().unwrap();
}

#[test]
fn churn_at_the_merge_boundary_keeps_the_page_count_steady() {
    let base = TempDir::new("shrink-churn");
    let dir = base.join("dict");
    let seed = common::seed("dict shrink churn");
    let n = 100_000;
    let (mut d, keys) = load(&dir, seed, n);
    // Down to 20%: buckets merge until pairs would exceed half a page.
    remove_all(&mut d, &keys[..n * 4 / 5], 10_000);
    let (_, _, settled) = root(&dir);
    let mut rng = Rng(seed ^ 1);
    let mut live: Vec<u64> = keys[n * 4 / 5..].to_vec();
    let mut most = settled;
    for _ in 0..20 {
        for _ in 0..2_000 {
            let i = rng.index(live.len());
            assert!(d.remove(&live[i]).unwrap().is_some());
            live[i] = rng.next();
            d.insert(live[i], 1).unwrap();
        }
        d.flush().unwrap();
        most = most.max(root(&dir).2);
    }
    println!("{settled} bucket pages after the removals, at most {most} during the churn");
    assert!(most <= settled + settled / 4, "{most} pages under churn, {settled} before, seed {seed:#x}");
    assert_eq!(d.len(), live.len());
    d.check().unwrap();
}

/// Issue 3: removing half the keys of a bulk-loaded dict (`extend`, elastic
/// buckets planned by the reservation) and flushing does not raise the
/// disk blocks the store holds: no bucket merges or shrinks at half load,
/// and the copies the removal makes replace their old pages, which the
/// commit releases.
#[test]
fn removing_half_of_a_bulk_load_does_not_grow_the_disk() {
    let base = TempDir::new("shrink-half-disk");
    let dir = base.join("dict");
    let seed = common::seed("dict half disk");
    let mut rng = Rng(seed);
    let n = 1_000_000;
    let keys: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    if !common::can_punch(&dir) {
        println!("skipped: the file system cannot release free pages (punch holes)");
        return;
    }
    d.extend(keys.iter().map(|&k| (k, !k))).unwrap();
    d.flush().unwrap();
    let loaded = common::disk_usage(&dir);
    for k in &keys[..keys.len() / 2] {
        assert_eq!(d.remove(k).unwrap(), Some(!k));
    }
    d.flush().unwrap();
    let removed = common::disk_usage(&dir);
    println!("{n} entries: {loaded} bytes after load, {removed} after removing half");
    // Give or take a free run below the release threshold (64 KiB) and the
    // file system's own blocks (ext4's extent tree grows with the holes the
    // release punches): without this a page or three over, a third of runs.
    let noise = 64 << 10;
    assert!(removed <= loaded + noise, "{loaded} bytes after load, {removed} after removing half, seed {seed:#x}");
    d.check().unwrap();
}
