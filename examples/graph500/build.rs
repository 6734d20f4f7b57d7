//! Building the graph on disk: generate the edge list straight into an `EmVec`, count degrees,
//! write the CSR offsets, scatter the neighbour lists window by window, and record the degrees in
//! an `EmDict`. RAM holds per-vertex arrays only (the permutation, the degrees, the offsets) plus
//! one scatter window of `--build-mem` MiB; the edges never are all in memory at once.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::db::{EmDict, EmVec};
use crate::kronecker::Kronecker;
use crate::progress::bar;
use crate::store::{BoxError, Meta, PARTS};
use crate::sys;

/// Edges generated per batch (8 MiB).
const BATCH: usize = 1 << 20;

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
}

impl Phase {
    /// Time the main thread was neither running nor waiting for a CPU: blocked, on page faults,
    /// writeback throttling and fsync (or on the generator's helper threads).
    pub fn blocked(&self) -> Duration {
        self.wall.saturating_sub(self.main_cpu + self.main_wait)
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
}

struct Clock {
    phases: Vec<Phase>,
    anon: u64,
    wall: Instant,
    cpu: Duration,
    sched: (Duration, Duration),
}

impl Clock {
    fn new() -> Self {
        Clock { phases: Vec::new(), anon: 0, wall: Instant::now(), cpu: sys::cpu_time(), sched: sys::thread_sched() }
    }

    fn lap(&mut self, name: &'static str) {
        let cpu = sys::cpu_time();
        self.anon = self.anon.max(sys::rss_anon());
        let sched = sys::thread_sched();
        let p = Phase {
            name,
            wall: self.wall.elapsed(),
            cpu: cpu.saturating_sub(self.cpu),
            main_cpu: sched.0.saturating_sub(self.sched.0),
            main_wait: sched.1.saturating_sub(self.sched.1),
        };
        println!(
            "  {:<10} {:>9.2} s wall {:>9.2} s CPU {:>9.2} s waiting for a CPU {:>9.2} s blocked",
            p.name,
            p.wall.as_secs_f64(),
            p.cpu.as_secs_f64(),
            p.main_wait.as_secs_f64(),
            p.blocked().as_secs_f64()
        );
        self.phases.push(p);
        self.wall = Instant::now();
        self.cpu = cpu;
        self.sched = sched;
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
    generate(&kron, &mut edges, threads)?;
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
    for v in 0..n {
        degrees.insert(v as u32, (offsets[v + 1] - offsets[v]) as u32)?;
        if v % 65536 == 0 {
            pb.set_position(v as u64);
        }
    }
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
        io_written: sys::io_bytes().1.saturating_sub(io_before),
        peak_rss: sys::peak_rss(),
        anon_rss: clock.anon,
    })
}

/// Streams all edges into `edges`, one batch at a time, and flushes.
fn generate(kron: &Kronecker, edges: &mut EmVec<[u32; 2]>, threads: usize) -> Result<(), BoxError> {
    let m = kron.edges();
    let pb = bar(m, "generate");
    let mut buf = vec![[0u32; 2]; BATCH.min(m as usize)];
    let mut first = 0u64;
    while first < m {
        let len = (m - first).min(BATCH as u64) as usize;
        kron.fill(first, &mut buf[..len], threads);
        edges.extend_from_slice(&buf[..len])?;
        first += len as u64;
        pb.set_position(first);
    }
    edges.flush()?;
    pb.finish_and_clear();
    Ok(())
}

/// Degrees (self-loops left out) and the number of self-loops, from one scan of the edge list.
fn count_degrees(edges: &EmVec<[u32; 2]>, n: usize) -> (Vec<u32>, u64) {
    let pb = bar(edges.len() as u64, "degrees");
    let mut degree = vec![0u32; n];
    let mut loops = 0u64;
    for chunk in edges.chunks() {
        for piece in chunk.chunks(BATCH) {
            for &[u, v] in piece {
                if u == v {
                    loops += 1;
                } else {
                    degree[u as usize] += 1;
                    degree[v as usize] += 1;
                }
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

/// Writes the neighbour lists in vertex order: for each window of vertices, one scan of the edge
/// list places both directions of every edge with an endpoint in the window into a RAM buffer,
/// which is then appended to `targets` in one sequential write. `fill` is overwritten. Returns
/// the number of passes.
fn scatter(
    edges: &EmVec<[u32; 2]>,
    offsets: &[u64],
    fill: &mut [u32],
    targets: &mut EmVec<u32>,
    budget_bytes: u64,
    anon: &mut u64,
) -> Result<usize, BoxError> {
    let wins = windows(offsets, budget_bytes / 4);
    let largest = wins.iter().map(|&(lo, hi)| offsets[hi] - offsets[lo]).max().unwrap_or(0);
    let mut buf = vec![0u32; largest as usize];
    fill.fill(0);
    let pb = bar(edges.len() as u64 * wins.len() as u64, "scatter");
    for &(lo, hi) in &wins {
        let base = offsets[lo];
        let len = (offsets[hi] - base) as usize;
        let (lo32, hi32) = (lo as u32, hi as u32);
        let mut place = |x: u32, y: u32| {
            let slot = offsets[x as usize] - base + fill[x as usize] as u64;
            buf[slot as usize] = y;
            fill[x as usize] += 1;
        };
        for chunk in edges.chunks() {
            for piece in chunk.chunks(BATCH) {
                for &[u, v] in piece {
                    if u == v {
                        continue;
                    }
                    if (lo32..hi32).contains(&u) {
                        place(u, v);
                    }
                    if (lo32..hi32).contains(&v) {
                        place(v, u);
                    }
                }
                pb.inc(piece.len() as u64);
            }
        }
        *anon = (*anon).max(sys::rss_anon());
        targets.extend_from_slice(&buf[..len])?;
    }
    targets.flush()?;
    pb.finish_and_clear();
    Ok(wins.len())
}

#[cfg(test)]
mod tests {
    use super::*;

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
