//! The seeded generator of every test, unit and integration: splitmix64
//! and a seed that is printed (or taken from `EMDS_SEED`) so that a failure
//! replays. One file, included by `tests/common` and by `src/test_util.rs`
//! (through `#[path]`).

use std::hash::{BuildHasher, RandomState};

/// A small deterministic generator (splitmix64), so a failing seed replays.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform index in `0..n`, or 0 when `n == 0` (for picking into a model).
    pub fn index(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.below(n as u64) as usize }
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Fewer than `max` random bytes.
    pub fn small(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// A fresh random seed, or the one in `EMDS_SEED` (hex with `0x`, or decimal),
/// printed with the test's name so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let given = std::env::var("EMDS_SEED").ok().and_then(|s| match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    });
    let seed = given.unwrap_or_else(|| RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id())));
    println!("{test}: seed {seed:#x} (replay with EMDS_SEED={seed:#x})");
    seed
}
