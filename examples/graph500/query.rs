//! The one-step-neighbour query benchmark (as the MMap paper's 3.3 ms on YahooWeb): fsync the
//! store and drop it from the page cache, reopen it, then fetch the neighbour lists of random
//! non-isolated vertices, each timed on its own; then the same vertices again (warm), and degree
//! lookups of other random vertices in the `EmDict` (cold, it was not touched since the drop).
//! Queries go through the point-access API a user would call (`get`, `get_range`), not through
//! `chunks()`, which advises the kernel to read ahead for a scan.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use crate::db::{EmDict, EmVec};
use crate::kronecker::SplitMix64;
use crate::store::BoxError;
use crate::sys;

/// Latencies in microseconds.
#[derive(Clone, Debug, Default)]
pub struct QueryReport {
    /// Neighbour lists right after the cache drop.
    pub cold_us: Vec<f64>,
    /// The same lists again.
    pub warm_us: Vec<f64>,
    /// Degree lookups in the `EmDict` after the cache drop.
    pub dict_cold_us: Vec<f64>,
    /// Neighbour entries the cold queries returned.
    pub entries: u64,
    /// Time to reopen the stores after the drop, in microseconds.
    pub reopen_us: f64,
}

/// The median and 99th percentile of `xs`.
pub fn median_p99(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Runs `count` queries of each kind on the graph in `dir`, whose handles must all be closed.
/// `vertices` are the candidates (non-isolated), chosen by the caller while the cache was warm.
pub fn run(dir: &Path, vertices: &[u32], n: u64, count: usize, seed: u64) -> Result<QueryReport, BoxError> {
    let mut rng = SplitMix64::stream(seed, 4, 0);
    let picks: Vec<u32> = (0..count).map(|_| vertices[rng.below(vertices.len() as u64) as usize]).collect();
    let dict_picks: Vec<u32> = (0..count).map(|_| rng.below(n) as u32).collect();
    sys::drop_page_cache(dir)?;

    let start = Instant::now();
    let offsets: EmVec<u64> = EmVec::open_read_only(dir.join("offsets"))?;
    let targets: EmVec<u32> = EmVec::open_read_only(dir.join("targets"))?;
    let degrees: EmDict<u32, u32> = EmDict::open_read_only(dir.join("degrees"))?;
    let mut r = QueryReport { reopen_us: start.elapsed().as_secs_f64() * 1e6, ..Default::default() };

    let once = |v: u32| -> Result<(f64, u64), BoxError> {
        let t = Instant::now();
        let missing = || format!("vertex {v}: offsets end early");
        let lo = offsets.get(v as usize)?.ok_or_else(missing)?;
        let hi = offsets.get(v as usize + 1)?.ok_or_else(missing)?;
        let list = targets.get_range(lo as usize..hi as usize)?.ok_or_else(missing)?;
        black_box(list.iter().fold(0u32, |a, &w| a ^ w));
        Ok((t.elapsed().as_secs_f64() * 1e6, list.len() as u64))
    };
    for &v in &picks {
        let (us, k) = once(v)?;
        r.cold_us.push(us);
        r.entries += k;
    }
    for &v in &picks {
        r.warm_us.push(once(v)?.0);
    }
    for &v in &dict_picks {
        let t = Instant::now();
        let d = degrees.get(&v)?;
        black_box(d);
        r.dict_cold_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::median_p99;

    #[test]
    fn percentiles() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median_p99(&xs), (51.0, 99.0));
        assert_eq!(median_p99(&[]), (0.0, 0.0));
    }
}
