//! Space comes back when removals and rewrites are spread over many small
//! flushes, not only after one big one: each flush copies the buckets it
//! changes and frees the old pages between live ones, where no release
//! threshold reaches them. First-fit allocation and compaction move live
//! pages to the front, so the freed space gathers at the end and is
//! released; `close` compacts what the last flush left. Bounds on the
//! allocated bytes (`st_blocks * 512`), never on time. The single-flush case
//! is in `disk_release.rs`.

mod common;

use std::path::Path;

use common::{Rng, TempDir};
use emds::{CheckReport, EmDict, OpenOptions};

fn load(dir: &Path, keys: &[u64]) -> EmDict<u64, u64> {
    let mut d: EmDict<u64, u64> = EmDict::open_with(dir, OpenOptions::new().truncate(true)).unwrap();
    for (i, &k) in keys.iter().enumerate() {
        d.insert(k, i as u64).unwrap();
    }
    d.flush().unwrap();
    d
}

/// The bound for a closed dict of `live` bytes: a quarter more for free runs
/// too short to release, and 1 MiB for the meta file, the allocator state
/// and the 2 MiB blocks around reused pages that reuse reserves (§5.4).
fn at_rest_bound(r: &CheckReport) -> u64 {
    r.bytes_live + r.bytes_live / 4 + (1 << 20)
}

#[test]
fn removing_most_keys_over_many_flushes_gives_the_space_back() {
    let base = TempDir::new("churn-remove");
    if !common::can_punch(base.path()) {
        println!("skipped: the file system under {} cannot punch holes", base.path().display());
        return;
    }
    let dir = base.join("dict");
    let seed = common::seed("dict remove over flushes");
    let mut rng = Rng(seed);
    let n = 300_000;
    let keys: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut d = load(&dir, &keys);
    let loaded = common::disk_usage(&dir);
    for chunk in keys[..n * 9 / 10].chunks(n * 9 / 10 / 100) {
        for k in chunk {
            assert!(d.remove(k).unwrap().is_some());
        }
        d.flush().unwrap();
    }
    let flushed = common::disk_usage(&dir);
    let r = d.check().unwrap();
    d.close().unwrap();
    let closed = common::disk_usage(&dir);
    let live = r.bytes_live;
    println!(
        "{n} entries, 90% removed in 100 flushes: {loaded} bytes after load, {flushed} after, {closed} closed; {r:?}"
    );
    // Without first fit and compaction the freed pages stay between live
    // ones: about as much disk as after the load (1.0x), whatever is removed.
    assert!(flushed <= loaded / 2, "{flushed} bytes after the flushes, {loaded} loaded, seed {seed:#x}");
    assert!(closed <= at_rest_bound(&r), "{closed} bytes closed for {live} live, seed {seed:#x}");
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), n - n * 9 / 10);
    for (i, k) in keys.iter().enumerate().skip(n * 9 / 10) {
        assert_eq!(d.get(k).unwrap(), Some(i as u64), "key {k:#x}, seed {seed:#x}");
    }
    d.check().unwrap();
}

#[test]
fn half_removed_in_twenty_flushes_is_back_to_its_live_size_when_closed() {
    let base = TempDir::new("churn-half");
    if !common::can_punch(base.path()) {
        println!("skipped: the file system under {} cannot punch holes", base.path().display());
        return;
    }
    let dir = base.join("dict");
    let seed = common::seed("dict half over flushes");
    let mut rng = Rng(seed);
    let n = 300_000;
    let keys: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut d = load(&dir, &keys);
    // Each flush changes nearly every bucket: the copies need room beside
    // the pages the last commit still reaches, and the old pages are freed
    // one by one between live ones.
    for chunk in keys[..n / 2].chunks(n / 2 / 20) {
        for k in chunk {
            assert!(d.remove(k).unwrap().is_some());
        }
        d.flush().unwrap();
    }
    let r = d.check().unwrap();
    d.close().unwrap();
    let closed = common::disk_usage(&dir);
    println!("{n} entries, half removed in 20 flushes: {closed} bytes closed; {r:?}");
    assert!(closed <= at_rest_bound(&r), "{closed} bytes closed for {} live, seed {seed:#x}", r.bytes_live);
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), n / 2);
    d.check().unwrap();
}

#[test]
fn steady_churn_does_not_grow_the_file() {
    let base = TempDir::new("churn-steady");
    if !common::can_punch(base.path()) {
        println!("skipped: the file system under {} cannot punch holes", base.path().display());
        return;
    }
    let dir = base.join("dict");
    let seed = common::seed("dict steady churn");
    let mut rng = Rng(seed);
    let n = 200_000;
    let mut live: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut d = load(&dir, &live);
    let mut usage = Vec::new();
    for round in 0..60u64 {
        for _ in 0..4_000 {
            let i = rng.index(n);
            assert!(d.remove(&live[i]).unwrap().is_some());
            live[i] = rng.next();
            d.insert(live[i], round).unwrap();
        }
        d.flush().unwrap();
        usage.push(common::disk_usage(&dir));
    }
    let r = d.check().unwrap();
    let bucket_bytes = r.bytes_live;
    // The first rounds settle (buckets fill towards the equilibrium of
    // extendible hashing, and a flush's copies need room beside the pages
    // the last commit reaches); after that the file does not keep growing.
    let (settled, last) = (usage[19], *usage.iter().skip(20).max().unwrap());
    println!("{n} entries churned: {usage:?} bytes per flush; {bucket_bytes} live");
    assert!(last <= settled + settled / 8, "{last} bytes after {settled} at round 20, seed {seed:#x}");
    assert!(last <= 2 * bucket_bytes + (2 << 20), "{last} bytes for {bucket_bytes} live, seed {seed:#x}");
    d.close().unwrap();
    let closed = common::disk_usage(&dir);
    assert!(closed <= at_rest_bound(&r), "{closed} bytes closed for {bucket_bytes} live, seed {seed:#x}");
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), n);
    for k in live.iter().step_by(97) {
        assert!(d.get(k).unwrap().is_some(), "key {k:#x}, seed {seed:#x}");
    }
    d.check().unwrap();
}
