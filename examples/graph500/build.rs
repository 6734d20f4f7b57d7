//! Building the graph on disk: generate the edge list straight into an `EmVec`, count degrees,
//! write the CSR offsets, scatter the neighbour lists window by window, and record the degrees in
//! an `EmDict`. RAM holds per-vertex arrays only (the permutation, the degrees, the offsets) plus
//! one scatter window of `--build-mem` MiB; the edges never are all in memory at once. The CPU
//! time per GiB written is what decides whether the build can keep a disk busy (see `report`).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::db::{EmDict, EmVec};
use crate::kronecker::{FillWait, Kronecker};
use crate::progress::bar;
use crate::store::{BoxError, Meta, PARTS};
use crate::sys;

/// Names this build code in the JSON output, so that runs before and after a change to the build
/// can be told apart (outputs without it are "v1": one edge at a time, direct-placement scatter;
/// "v2": lanes generator, partitioned scatter; "v3": v2 with the degrees through one batched
/// `EmDict::extend`).
pub const METHOD: &str = "v3";

/// Edges generated per batch (8 MiB).
const BATCH: usize = 1 << 20;

/// Degrees put into the `EmDict` between two updates of the progress bar.
const ATTR_PROGRESS: usize = 1 << 16;

/// How many edges ahead the degree count prefetches its counters.
const AHEAD: usize = 16;

/// Neighbour entries the scatter appends to `targets` at a time (at least; 16 MiB).
const APPEND: usize = 1 << 22;

/// Edges the scatter stages at a time (both directions: 2 entries per edge).
const STAGE: usize = 1 << 14;

/// Time and CPU spent in one phase.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Its name.
    pub name: &'static str,
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of all the process's threads.
    pub cpu: Duration,
    /// The main thread's time on a CPU.
    pub main_cpu: Duration,
    /// The main thread's time runnable but waiting for a CPU (others' load).
    pub main_wait: Duration,
    /// The main thread's time waiting for its helper threads (the generator's) to finish.
    pub joining: Duration,
    /// The helper threads' time runnable but waiting for a CPU.
    pub helpers_wait: Duration,
    /// Bytes the process caused to be written to storage during the phase (`/proc/self/io`):
    /// pages written back and dirtied again count each time.
    pub written: u64,
}

impl Phase {
    /// Time the main thread was neither running, nor waiting for a CPU, nor waiting for its
    /// helper threads: blocked on I/O, page faults, writeback throttling and fsync.
    pub fn blocked(&self) -> Duration {
        self.wall.saturating_sub(self.main_cpu + self.main_wait + self.joining)
    }
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The record written to `meta`.
    pub meta: Meta,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Passes over the edge list that the scatter needed.
    pub scatter_passes: usize,
    /// Threads the build ran on (the machine's cores).
    pub cores: usize,
    /// Bytes the process wrote to storage during the build (`/proc/self/io`).
    pub io_written: u64,
    /// Peak resident set of the build (mapped store pages included).
    pub peak_rss: u64,
    /// The largest anonymous resident set seen at the end of a phase.
    pub anon_rss: u64,
}

impl BuildReport {
    /// Total wall-clock time.
    pub fn wall(&self) -> Duration {
        self.phases.iter().map(|p| p.wall).sum()
    }

    /// Total CPU time.
    pub fn cpu(&self) -> Duration {
        self.phases.iter().map(|p| p.cpu).sum()
    }

    /// Total time the main thread waited for a CPU.
    pub fn main_wait(&self) -> Duration {
        self.phases.iter().map(|p| p.main_wait).sum()
    }

    /// Total time the main thread was blocked.
    pub fn blocked(&self) -> Duration {
        self.phases.iter().map(Phase::blocked).sum()
    }

    /// Total time the main thread waited for its helper threads.
    pub fn joining(&self) -> Duration {
        self.phases.iter().map(|p| p.joining).sum()
    }

    /// Total time the helper threads waited for a CPU.
    pub fn helpers_wait(&self) -> Duration {
        self.phases.iter().map(|p| p.helpers_wait).sum()
    }
}

struct Clock {
    phases: Vec<Phase>,
    anon: u64,
    wall: Instant,
    cpu: Duration,
    sched: (Duration, Duration),
    written: u64,
    /// What the phase's helper threads waited for, added up by the phase.
    helpers: FillWait,
}

impl Clock {
    fn new() -> Self {
        Clock {
            phases: Vec::new(),
            anon: 0,
            wall: Instant::now(),
            cpu: sys::cpu_time(),
            sched: sys::thread_sched(),
            written: sys::io_bytes().1,
            helpers: FillWait::default(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let cpu = sys::cpu_time();
        self.anon = self.anon.max(sys::rss_anon());
        let sched = sys::thread_sched();
        let written = sys::io_bytes().1;
        let p = Phase {
            name,
            wall: self.wall.elapsed(),
            cpu: cpu.saturating_sub(self.cpu),
            main_cpu: sched.0.saturating_sub(self.sched.0),
            main_wait: sched.1.saturating_sub(self.sched.1),
            joining: self.helpers.joining,
            helpers_wait: self.helpers.helpers_cpu_wait,
            written: written.saturating_sub(self.written),
        };
        println!(
            "  {:<10} {:>8.2} s wall {:>8.2} s CPU; main thread {:>8.2} s waiting for a CPU, {:>8.2} s for helper threads, {:>8.2} s blocked; helpers {:>8.2} s waiting for a CPU; {:>7.0} MiB written",
            p.name,
            p.wall.as_secs_f64(),
            p.cpu.as_secs_f64(),
            p.main_wait.as_secs_f64(),
            p.joining.as_secs_f64(),
            p.blocked().as_secs_f64(),
            p.helpers_wait.as_secs_f64(),
            p.written as f64 / (1u64 << 20) as f64
        );
        self.helpers = FillWait::default();
        self.phases.push(p);
        self.wall = Instant::now();
        self.cpu = cpu;
        self.sched = sched;
        self.written = written;
    }
}

/// Builds the graph of `scale`/`edge_factor`/`seed` in `dir`, replacing a graph that was there.
pub fn build(dir: &Path, scale: u32, edge_factor: u32, seed: u64, build_mem_mib: u64) -> Result<BuildReport, BoxError> {
    for part in PARTS {
        let p = dir.join(part);
        if p.exists() {
            fs::remove_dir_all(&p).map_err(|e| format!("cannot remove the old {}: {e}", p.display()))?;
        }
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    sys::reset_peak_rss();
    let io_before = sys::io_bytes().1;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut clock = Clock::new();

    let kron = Kronecker::new(scale, edge_factor, seed);
    let (n, m) = (kron.vertices() as usize, kron.edges());
    let mut edges: EmVec<[u32; 2]> = EmVec::open(dir.join("edges"))?;
    clock.helpers = generate(&kron, &mut edges, threads)?;
    drop(kron);
    clock.lap("generate");

    let (mut degree, self_loops) = count_degrees(&edges, n);
    let offsets = prefix_sums(&degree);
    clock.anon = clock.anon.max(sys::rss_anon());
    let mut off_vec: EmVec<u64> = EmVec::open(dir.join("offsets"))?;
    for part in offsets.chunks(BATCH) {
        off_vec.extend_from_slice(part)?;
    }
    off_vec.close()?;
    clock.lap("offsets");

    let mut targets: EmVec<u32> = EmVec::open(dir.join("targets"))?;
    let passes = scatter(&edges, &offsets, &mut degree, &mut targets, build_mem_mib << 20, &mut clock.anon)?;
    targets.close()?;
    edges.close()?;
    clock.lap("scatter");

    let mut degrees: EmDict<u32, u32> = EmDict::open(dir.join("degrees"))?;
    let pb = bar(n as u64, "degrees");
    // One `extend` over all vertices: the dict inserts in batches grouped by bucket, making room
    // for the rest as its size hint says. (An explicit `reserve(n)` first measured less CPU but
    // twice the dict's size and 12 times the bytes written at scale 24.)
    degrees.extend((0..n).map(|v| {
        if v % ATTR_PROGRESS == 0 {
            pb.set_position(v as u64);
        }
        (v as u32, (offsets[v + 1] - offsets[v]) as u32)
    }))?;
    pb.finish_and_clear();
    degrees.close()?;
    clock.lap("attributes");

    let meta = Meta {
        scale: scale as u64,
        edge_factor: edge_factor as u64,
        seed,
        vertices: n as u64,
        edges: m,
        self_loops,
        targets: offsets[n],
    };
    meta.save(dir)?;
    clock.lap("meta");
    Ok(BuildReport {
        meta,
        phases: clock.phases,
        scatter_passes: passes,
        cores: threads,
        io_written: sys::io_bytes().1.saturating_sub(io_before),
        peak_rss: sys::peak_rss(),
        anon_rss: clock.anon,
    })
}

/// Streams all edges into `edges`, one batch at a time, and flushes. Returns what the main
/// thread and the generator's helper threads waited for.
fn generate(kron: &Kronecker, edges: &mut EmVec<[u32; 2]>, threads: usize) -> Result<FillWait, BoxError> {
    let m = kron.edges();
    let pb = bar(m, "generate");
    let mut buf = vec![[0u32; 2]; BATCH.min(m as usize)];
    let mut first = 0u64;
    let mut wait = FillWait::default();
    while first < m {
        let len = (m - first).min(BATCH as u64) as usize;
        let w = kron.fill(first, &mut buf[..len], threads);
        wait.joining += w.joining;
        wait.helpers_cpu_wait += w.helpers_cpu_wait;
        edges.extend_from_slice(&buf[..len])?;
        first += len as u64;
        pb.set_position(first);
    }
    edges.flush()?;
    pb.finish_and_clear();
    Ok(wait)
}

/// Degrees (self-loops left out) and the number of self-loops, from one scan of the edge list.
fn count_degrees(edges: &EmVec<[u32; 2]>, n: usize) -> (Vec<u32>, u64) {
    let pb = bar(edges.len() as u64, "degrees");
    let mut degree = vec![0u32; n];
    sys::advise_huge(&mut degree);
    let mut loops = 0u64;
    for chunk in edges.chunks() {
        for piece in chunk.chunks(BATCH) {
            for (k, &[u, v]) in piece.iter().enumerate() {
                if let Some(&[a, b]) = piece.get(k + AHEAD) {
                    sys::prefetch(&degree[a as usize]);
                    sys::prefetch(&degree[b as usize]);
                }
                // Branch-free: whether an edge is a self-loop is a coin the predictor can't learn.
                let d = (u != v) as u32;
                loops += 1 - d as u64;
                degree[u as usize] += d;
                degree[v as usize] += d;
            }
            pb.inc(piece.len() as u64);
        }
    }
    pb.finish_and_clear();
    (degree, loops)
}

/// `offsets[v]` = sum of the degrees before `v`; `vertices + 1` entries.
pub fn prefix_sums(degree: &[u32]) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(degree.len() + 1);
    let mut sum = 0u64;
    offsets.push(0);
    for &d in degree {
        sum += d as u64;
        offsets.push(sum);
    }
    offsets
}

/// The vertex windows `[lo, hi)` whose neighbour lists fit `budget` entries (a vertex of a
/// larger degree gets a window of its own).
pub fn windows(offsets: &[u64], budget: u64) -> Vec<(usize, usize)> {
    let n = offsets.len() - 1;
    let mut out = Vec::new();
    let mut lo = 0;
    while lo < n {
        let limit = offsets[lo] + budget.max(1);
        // The first vertex whose list would end past the limit.
        let mut hi = offsets.partition_point(|&o| o <= limit) - 1;
        hi = hi.clamp(lo + 1, n);
        out.push((lo, hi));
        lo = hi;
    }
    out
}

/// Writes the neighbour lists in vertex order, window by window: one scan of the edge list per
/// window of vertices, then one sequential append of the window's lists to `targets`. `cursor`
/// (one entry per vertex) is overwritten. Returns the number of passes.
///
/// Placing each entry straight at its final slot in a window of gigabytes would miss the caches
/// on nearly every entry (the slot and the vertex's cursor are both random). So the scan only
/// partitions: each entry in the window goes, as (vertex, neighbour), to the region of its
/// *bucket* (a range of `2^shift` consecutive vertices; a region is exactly as long as its
/// vertices' lists, known from `offsets`), a few thousand sequential write streams. Then each
/// bucket, small enough for the cache, is placed into its final order and appended. Entries keep
/// the order of the edge list within a vertex's list, as a direct placement would give.
fn scatter(
    edges: &EmVec<[u32; 2]>,
    offsets: &[u64],
    cursor: &mut [u32],
    targets: &mut EmVec<u32>,
    budget_bytes: u64,
    anon: &mut u64,
) -> Result<usize, BoxError> {
    let wins = windows(offsets, budget_bytes / 8);
    let largest = wins.iter().map(|&(lo, hi)| offsets[hi] - offsets[lo]).max().unwrap_or(0);
    let mut pairs = vec![[0u32; 2]; largest as usize];
    sys::advise_huge(&mut pairs);
    let mut stage = vec![[0u32; 2]; 2 * STAGE + 1];
    let mut placed = Vec::new();
    let pb = bar(edges.len() as u64 * wins.len() as u64, "scatter");
    for &(lo, hi) in &wins {
        let base = offsets[lo];
        let shift = bucket_shift(hi - lo);
        let starts: Vec<u64> = (lo..hi).step_by(1 << shift).chain([hi]).map(|v| offsets[v] - base).collect();
        let mut fill: Vec<u64> = starts[..starts.len() - 1].to_vec();
        let (lo32, span) = (lo as u32, (hi - lo) as u32);
        for chunk in edges.chunks() {
            for piece in chunk.chunks(STAGE) {
                let mut k = 0;
                for &[u, v] in piece {
                    let real = u != v;
                    stage[k] = [u, v];
                    k += (real && u.wrapping_sub(lo32) < span) as usize;
                    stage[k] = [v, u];
                    k += (real && v.wrapping_sub(lo32) < span) as usize;
                }
                for &[x, y] in &stage[..k] {
                    let f = &mut fill[((x - lo32) >> shift) as usize];
                    pairs[*f as usize] = [x, y];
                    *f += 1;
                }
                pb.inc(piece.len() as u64);
            }
        }
        *anon = (*anon).max(sys::rss_anon());
        for (b, w) in starts.windows(2).enumerate() {
            let first = lo + (b << shift);
            let last = (first + (1 << shift)).min(hi);
            // Appended in runs of at least APPEND entries: `placed` holds the buckets so far.
            let at = placed.len() as u64;
            let bucket_base = offsets[first];
            for (c, &o) in cursor[first..last].iter_mut().zip(&offsets[first..last]) {
                *c = (o - bucket_base + at) as u32;
            }
            placed.resize(placed.len() + (w[1] - w[0]) as usize, 0u32);
            for &[x, y] in &pairs[w[0] as usize..w[1] as usize] {
                let slot = &mut cursor[x as usize];
                placed[*slot as usize] = y;
                *slot += 1;
            }
            if placed.len() >= APPEND {
                targets.extend_from_slice(&placed)?;
                placed.clear();
            }
        }
        targets.extend_from_slice(&placed)?;
        placed.clear();
    }
    targets.flush()?;
    pb.finish_and_clear();
    Ok(wins.len())
}

/// log2 of the vertices per scatter bucket for a window of `span` vertices: about 4096 buckets,
/// so that the scan's write streams stay in the cache and each bucket's lists fit in it.
fn bucket_shift(span: usize) -> u32 {
    (usize::BITS - span.leading_zeros()).saturating_sub(12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::Graph;
    use crate::csr::tests::csr_of;

    #[test]
    fn scatter_writes_the_lists_in_edge_order_for_any_window() {
        let dir = std::env::temp_dir().join(format!("graph500-scatter-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let kron = Kronecker::new(10, 16, 4);
        let mut list = vec![[0u32; 2]; kron.edges() as usize];
        kron.fill(0, &mut list, 2);
        list.extend([[3, 3], [7, 3], [3, 7]]);
        let want = csr_of(kron.vertices() as usize, &list);
        let mut edges: EmVec<[u32; 2]> = EmVec::open(dir.join("edges")).unwrap();
        edges.extend_from_slice(&list).unwrap();
        let (mut degree, loops) = count_degrees(&edges, want.vertices());
        assert_eq!(loops as usize, list.iter().filter(|e| e[0] == e[1]).count());
        let offsets = prefix_sums(&degree);
        assert_eq!(offsets, want.offsets);
        for (k, budget) in [1u64 << 30, 8 * 1000, 8 * 37, 8].into_iter().enumerate() {
            let mut targets: EmVec<u32> = EmVec::open(dir.join(format!("targets{k}"))).unwrap();
            let mut anon = 0;
            let passes = scatter(&edges, &offsets, &mut degree, &mut targets, budget, &mut anon).unwrap();
            assert_eq!(passes, windows(&offsets, budget / 8).len());
            let got: Vec<u32> = targets.chunks().flatten().copied().collect();
            assert!(got == want.targets, "budget {budget}");
        }
        drop(edges);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn windows_cover_every_vertex_once_within_budget() {
        let degree = [3u32, 0, 5, 1, 1, 9, 0, 2];
        let offsets = prefix_sums(&degree);
        for budget in [1u64, 4, 6, 10, 100] {
            let w = windows(&offsets, budget);
            assert_eq!(w.first().unwrap().0, 0);
            assert_eq!(w.last().unwrap().1, degree.len());
            for pair in w.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
            }
            for &(lo, hi) in &w {
                assert!(hi > lo);
                assert!(hi == lo + 1 || offsets[hi] - offsets[lo] <= budget, "budget {budget}: {lo}..{hi}");
            }
        }
        assert_eq!(windows(&offsets, 100), vec![(0, 8)]);
    }
}
