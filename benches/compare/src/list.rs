//! The list workload: sequences indexed by position. `EmList<(u64, u64)>`
//! against LMDB with sequential big-endian u64 keys (appended) and an
//! in-memory `Vec`; `EmVec<[u32; 2]>` (a Pod edge type) against a `Vec`.

use std::path::Path;

use crate::data::{Edge, Elem, Pair, SplitMix64, elements, fold_all, mix, sample_indices};
use crate::engines::lmdb::LmdbSeq;
use crate::report::{EngineResult, Metric, Section, Unit, disk_metrics, expect, median, repeated, timed};
use crate::sys::cpu_secs;
use crate::{Config, Res, fresh_dir};

/// A sequence store under test, indexed by position.
pub trait Seq<T: Elem>: Sized {
    /// Its column name in the tables.
    const NAME: &'static str;
    /// Whether it keeps its data on disk.
    const PERSISTENT: bool = true;

    /// Creates an empty store in `dir`, an empty directory that is its alone.
    fn create(dir: &Path) -> Res<Self>;
    /// Appends every element and makes them durable.
    fn load(&mut self, items: &[T]) -> Res<()>;
    /// Visits every element: (elements, sum of [`Elem::fold`]).
    fn scan(&self) -> Res<(usize, u64)>;
    /// How many of the positions `indices` hold the element `items` has there.
    fn count_matching(&self, indices: &[usize], items: &[T]) -> Res<usize>;
}

/// The engines of the list workload, in the order they run by default
/// ("emds" is EmList for the pairs and EmVec for the edges).
pub const ENGINES: &[&str] = &["emds", "lmdb", "vec"];

/// An in-memory `Vec`: the physical limit.
pub struct VecSeq<T>(Vec<T>);

impl<T: Elem> Seq<T> for VecSeq<T> {
    const NAME: &'static str = "Vec";
    const PERSISTENT: bool = false;

    fn create(_dir: &Path) -> Res<Self> {
        Ok(VecSeq(Vec::new()))
    }

    fn load(&mut self, items: &[T]) -> Res<()> {
        for &item in items {
            self.0.push(item);
        }
        Ok(())
    }

    fn scan(&self) -> Res<(usize, u64)> {
        Ok((self.0.len(), fold_all(&self.0)))
    }

    fn count_matching(&self, indices: &[usize], items: &[T]) -> Res<usize> {
        Ok(indices.iter().filter(|&&i| self.0.get(i) == Some(&items[i])).count())
    }
}

/// The pairs part: EmList, LMDB and Vec on the same (u64, u64) elements.
pub fn run_pairs(cfg: &Config) -> Res<Section> {
    let title = format!("list: {} × (u64, u64), seed {:#x}", cfg.n, cfg.seed);
    let items: Vec<Pair> = elements(cfg.seed, cfg.n);
    let mut results = Vec::new();
    for engine in &cfg.engines {
        let result = match engine.as_str() {
            #[cfg(feature = "emds")]
            "emds" | "emlist" => bench::<Pair, crate::engines::emds::EmListSeq>(cfg, &items)?,
            "lmdb" => bench::<Pair, LmdbSeq>(cfg, &items)?,
            "vec" => bench::<Pair, VecSeq<Pair>>(cfg, &items)?,
            _ => continue,
        };
        results.push(result);
    }
    Ok(Section { title, results })
}

/// The edges part: EmVec and Vec on the same [u32; 2] elements.
pub fn run_edges(cfg: &Config) -> Res<Section> {
    let title = format!("vec: {} × [u32; 2], seed {:#x}", cfg.n, cfg.seed);
    let items: Vec<Edge> = elements(mix(cfg.seed), cfg.n);
    let mut results = Vec::new();
    for engine in &cfg.engines {
        let result = match engine.as_str() {
            #[cfg(feature = "emds")]
            "emds" | "emvec" => bench::<Edge, crate::engines::emds::EmVecSeq>(cfg, &items)?,
            "vec" => bench::<Edge, VecSeq<Edge>>(cfg, &items)?,
            _ => continue,
        };
        results.push(result);
    }
    Ok(Section { title, results })
}

/// Runs every phase on one engine in a fresh directory of its own.
fn bench<T: Elem, S: Seq<T>>(cfg: &Config, items: &[T]) -> Res<EngineResult> {
    eprintln!("list: {}…", S::NAME);
    let dir = fresh_dir(&cfg.dir, S::NAME)?;
    let mut out = EngineResult::new(S::NAME);
    let mut store = S::create(&dir)?;
    let n = items.len();

    let cpu = cpu_secs();
    let ((), secs) = timed(|| store.load(items))?;
    let mut load_secs = vec![secs];
    let mut load_cpu = vec![cpu_secs() - cpu];
    if S::PERSISTENT {
        disk_metrics(&mut out, &dir, "after load", n, T::RAW)?;
    }
    if cfg.load_only {
        // The load alone, repeated in fresh directories for a median.
        for _ in 1..cfg.reps {
            drop(store);
            let dir = fresh_dir(&cfg.dir, S::NAME)?;
            store = S::create(&dir)?;
            let cpu = cpu_secs();
            load_secs.push(timed(|| store.load(items))?.1);
            load_cpu.push(cpu_secs() - cpu);
        }
        out.metrics.insert(0, rate_metric("append + durable flush", n, load_secs));
        out.value("append + durable flush: CPU ms", Unit::Millis, median(&load_cpu) * 1e3);
        drop(store);
        if !cfg.keep {
            std::fs::remove_dir_all(&dir)?;
        }
        return Ok(out);
    }
    out.metrics.insert(0, rate_metric("append + durable flush", n, load_secs));
    out.value("append + durable flush: CPU ms", Unit::Millis, median(&load_cpu) * 1e3);
    let want = (n, fold_all(items));
    let secs = repeated(cfg.reps, || expect("scan (elements, checksum)", store.scan()?, want))?;
    out.rate("scan", n, secs);

    let mut rng = SplitMix64::new(mix(cfg.seed ^ 0x1157));
    let indices = sample_indices(&mut rng, 0..n, cfg.sample);
    let secs =
        repeated(cfg.reps, || expect("random gets that match", store.count_matching(&indices, items)?, indices.len()))?;
    out.rate("get random index", indices.len(), secs);

    drop(store);
    if !cfg.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(out)
}

/// A rate metric (as [`EngineResult::rate`] makes), to place first in the table.
fn rate_metric(name: &str, ops: usize, secs: Vec<f64>) -> Metric {
    let mut tmp = EngineResult::new("");
    tmp.rate(name, ops, secs);
    tmp.metrics.remove(0)
}
