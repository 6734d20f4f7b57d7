//! What the crate's unit tests share: a seeded generator whose seed is printed
//! (so a failure replays; the same file as the integration tests', in
//! `tests/common/rng.rs`) and temporary directories.

use std::path::PathBuf;

// The generator and `seed` are the integration tests' own file, so that both
// kinds of test replay a seed the same way.
#[path = "../tests/common/rng.rs"]
#[allow(dead_code)]
mod rng;

pub(crate) use rng::{Rng, seed};

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
