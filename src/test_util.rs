//! What the crate's unit tests share: a seeded generator whose seed is printed
//! (so a failure replays) and temporary directories. The integration tests
//! have their own in `tests/common`.

use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;

/// A small deterministic generator (splitmix64), so a failing seed replays.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform index in `0..n` (`n > 0`).
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// A fresh random seed, or the one in `EMDS_SEED` (hex with `0x`, or decimal),
/// printed with the test's name so that a failure can be replayed.
pub(crate) fn seed(test: &str) -> u64 {
    let given = std::env::var("EMDS_SEED").ok().and_then(|s| match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    });
    let seed = given.unwrap_or_else(|| RandomState::new().hash_one((std::time::SystemTime::now(), std::process::id())));
    println!("{test}: seed {seed:#x} (replay with EMDS_SEED={seed:#x})");
    seed
}

/// A fresh path under the system's temporary directory, named after the
/// test and the process (nothing is created there).
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emds-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_replays_and_stays_below_its_bound() {
        let (mut a, mut b) = (Rng(42), Rng(42));
        let xs: Vec<u64> = (0..100).map(|_| a.below(7)).collect();
        assert!(xs.iter().all(|&x| x < 7));
        assert_eq!(xs, (0..100).map(|_| b.below(7)).collect::<Vec<_>>());
        assert!(xs.iter().any(|&x| x != xs[0]), "not constant");
    }
}
