//! Soak (ignored by default): the random workloads of the kill tests on
//! `EmDict`, `EmList` and `EmVec` for a configurable time, with flushes,
//! closes and reopens, checked against the models at every reopen. Since the
//! workloads are bounded (a fixed key range, lists and vectors trimmed when
//! long), the store's disk usage and the process's anonymous resident memory
//! must level off: after a warm-up quarter they may not keep growing.
//!
//! Run: `EMDS_SOAK_SECS=600 cargo test --release --test soak -- --ignored --nocapture`
//! (default 60 seconds, split between the three structures).

mod common;

use std::time::{Duration, Instant};

use common::{Dict, List, Rng, Subject, TempDir, Vector};

/// Bytes of user data a model holds.
trait Live {
    fn live_bytes(&self) -> u64;
}

impl Live for common::DictModel {
    fn live_bytes(&self) -> u64 {
        self.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }
}

impl Live for Vec<Vec<u8>> {
    fn live_bytes(&self) -> u64 {
        self.iter().map(|v| v.len() as u64).sum()
    }
}

impl Live for Vec<u64> {
    fn live_bytes(&self) -> u64 {
        self.len() as u64 * 8
    }
}

fn soak_one<S: Subject>(secs: u64, seed: u64)
where
    S::Model: Live,
{
    let dir = TempDir::new(&format!("soak-{}", S::NAME));
    let mut rng = Rng(seed);
    let mut h = S::open(dir.path()).unwrap();
    let mut model = S::Model::default();
    let start = Instant::now();
    let total = Duration::from_secs(secs);
    let (mut batches, mut reopens, mut peak_live) = (0u64, 0u64, 0u64);
    let mut warm: Option<(u64, u64)> = None;
    let (mut max_disk, mut max_rss) = (0u64, 0u64);
    while start.elapsed() < total {
        for op in S::batch(&mut rng, &mut model) {
            S::apply(&mut h, &op)
                .unwrap_or_else(|e| panic!("{} batch {batches}, seed {seed:#x}: {op:?}: {e}", S::NAME));
        }
        if rng.chance(80) {
            S::flush(&mut h).unwrap();
        }
        batches += 1;
        peak_live = peak_live.max(model.live_bytes());
        if batches.is_multiple_of(50) {
            // Close (a flush) and reopen; the reopened store equals the model.
            S::flush(&mut h).unwrap();
            drop(h);
            h = S::open(dir.path()).unwrap();
            common::verify::<S>(&h, &model)
                .unwrap_or_else(|e| panic!("{} reopen {reopens}, seed {seed:#x}: {e}", S::NAME));
            reopens += 1;
            let (disk, rss) = (common::disk_usage(dir.path()), common::rss_anon());
            if warm.is_none() && start.elapsed() > total / 4 {
                warm = Some((disk, rss));
            }
            if warm.is_some() {
                max_disk = max_disk.max(disk);
                max_rss = max_rss.max(rss);
            }
        }
    }
    let (warm_disk, warm_rss) = warm.expect("the soak ran too short to warm up: raise EMDS_SOAK_SECS");
    println!(
        "soak {}: {batches} batches, {reopens} reopens; live data peak {} KiB; disk after warm-up {} KiB, max {} KiB; \
         anonymous RSS after warm-up {} KiB, max {} KiB",
        S::NAME,
        peak_live >> 10,
        warm_disk >> 10,
        max_disk >> 10,
        warm_rss >> 10,
        max_rss >> 10
    );
    assert!(
        max_disk <= 2 * warm_disk.max(peak_live) + (16 << 20),
        "{}: the store keeps growing: {max_disk} bytes on disk after {warm_disk} at warm-up (live peak {peak_live})",
        S::NAME
    );
    assert!(
        max_rss <= warm_rss + (256 << 20),
        "{}: resident memory keeps growing: {max_rss} bytes after {warm_rss} at warm-up",
        S::NAME
    );
}

#[test]
#[ignore = "a long soak; run with --ignored and EMDS_SOAK_SECS"]
fn soak_mixed_workload() {
    let secs = common::count("EMDS_SOAK_SECS", 60) as u64;
    let seed = common::seed("soak");
    soak_one::<Dict>(secs / 3, seed);
    soak_one::<List>(secs / 3, seed ^ 1);
    soak_one::<Vector>(secs / 3, seed ^ 2);
}
