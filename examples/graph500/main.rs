//! Graph500 over emds: the main job of the library, end to end.
//!
//! Generates a Graph500 Kronecker graph (`--scale S`: 2^S vertices, 16 * 2^S edges) straight into
//! an emds `EmVec`, builds a CSR on disk from it (two more `EmVec`s) and per-vertex degrees (an
//! `EmDict`), closes everything, reopens it read-only as a later run would (`--reopen DIR` starts
//! there), runs BFS from 64 random roots with Graph500's validation of every tree, and 10 PageRank
//! iterations; then the same kernels over plain in-memory `Vec`s for the ratio, and a cold
//! one-step-neighbour query benchmark. Prints a summary (and `--json FILE`).
//!
//! ```sh
//! cargo run --release --example graph500                          # scale 16, a few seconds
//! cargo run --release --example graph500 -- --scale 22 --dir /data/g22 --json g22.json
//! cargo run --release --example graph500 -- --reopen /data/g22    # walk it again, no rebuild
//! ```

mod args;
mod bfs;
mod build;
mod csr;
mod db;
mod kronecker;
mod pagerank;
mod progress;
mod query;
mod report;
mod store;
mod sys;
mod validate;

use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::args::{Args, USAGE};
use crate::bfs::{Work, bfs, component_edges};
use crate::csr::{DiskCsr, Graph, MemCsr};
use crate::db::EmDict;
use crate::kronecker::SplitMix64;
use crate::pagerank::PageRank;
use crate::progress::bar;
use crate::report::{BfsRuns, Run, Search};
use crate::store::{BoxError, PARTS, Store};

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("graph500: {}\n\n{USAGE}", e.0);
            return ExitCode::from(2);
        }
    };
    match main_job(&args) {
        Ok(run) => {
            print!("{}", run.text());
            if let Some(path) = &args.json {
                if let Err(e) = std::fs::write(path, run.json() + "\n") {
                    eprintln!("graph500: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("json       {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("graph500: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds (unless `--reopen`) and walks the graph; removes a temporary store afterwards.
fn main_job(args: &Args) -> Result<Run, BoxError> {
    let start = Instant::now();
    let (dir, temporary) = match (&args.reopen, &args.dir) {
        (Some(d), _) | (None, Some(d)) => (d.clone(), false),
        (None, None) => (std::env::temp_dir().join(format!("emds-graph500-{}", std::process::id())), !args.keep),
    };
    let result = build_and_walk(args, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    } else if args.keep || args.dir.is_some() {
        println!("store kept in {} (walk it again with --reopen)", dir.display());
    }
    let mut run = result?;
    run.total = start.elapsed();
    Ok(run)
}

fn build_and_walk(args: &Args, dir: &Path) -> Result<Run, BoxError> {
    let mut run = Run { machine: sys::machine(), dir: dir.display().to_string(), ..Default::default() };
    if args.reopen.is_none() {
        println!("building the scale-{} Graph500 graph in {}", args.scale, dir.display());
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if args.disk_probe_mib > 0 {
            run.disk_write_bw = Some(sys::disk_write_bandwidth(dir, args.disk_probe_mib)?);
        }
        let b = build::build(dir, args.scale, args.edge_factor, args.seed, args.build_mem_mib)?;
        run.meta = b.meta;
        run.build = Some(b);
    }
    run.disk = PARTS.iter().map(|p| (p.to_string(), sys::disk_bytes(&dir.join(p)).unwrap_or(0))).collect();
    if !args.build_only {
        walk(args, dir, &mut run)?;
    }
    Ok(run)
}

/// `count` distinct random vertices of nonzero degree, the degrees read from the `EmDict`
/// (Graph500: roots are drawn among vertices with at least one edge other than a self-loop).
fn pick_roots(degrees: &EmDict<u32, u32>, n: u64, count: usize, seed: u64) -> Result<Vec<u32>, BoxError> {
    let mut rng = SplitMix64::stream(seed, 3, 0);
    let mut seen = std::collections::HashSet::new();
    let mut roots = Vec::new();
    for _ in 0..(count as u64 * 64).max(n * 4) {
        if roots.len() == count {
            break;
        }
        let v = rng.below(n) as u32;
        if !seen.insert(v) {
            continue;
        }
        let d = degrees.get(&v)?.ok_or_else(|| format!("vertex {v} has no degree in the EmDict"))?;
        if d > 0 {
            roots.push(v);
        }
    }
    if roots.is_empty() {
        return Err("the graph has no edges to search".into());
    }
    Ok(roots)
}

fn walk(args: &Args, dir: &Path, run: &mut Run) -> Result<(), BoxError> {
    sys::reset_peak_rss();
    let t = Instant::now();
    let store = Store::open(dir)?;
    run.reopen = t.elapsed();
    run.meta = store.meta;
    let n = store.meta.vertices;
    println!(
        "reopened {} read-only: {} vertices, {} edges, {} CSR entries",
        dir.display(),
        n,
        store.meta.edges,
        store.meta.targets
    );
    let g = store.csr();
    run.csr_pieces = (g.offsets.pieces(), g.targets.pieces());

    let t = Instant::now();
    let sum: u64 = store.targets.chunks().map(|c| c.iter().map(|&x| x as u64).sum::<u64>()).sum();
    black_box(sum);
    run.warm_scan = t.elapsed();

    let roots = pick_roots(&store.degrees, n, args.roots, args.seed)?;
    let (runs, hashes) = search_all(&g, &roots, Some((&store, args.validate, &mut *run)))?;
    run.bfs_emds = runs;
    let mut pr = PageRank::new(&g);
    for _ in 0..args.pr_iters {
        run.pr_emds.push(pr.step(&g));
    }
    run.walk_anon_rss = run.walk_anon_rss.max(sys::rss_anon());
    let emds_ranks = pr.ranks().to_vec();
    drop(pr);
    run.pr_sum = emds_ranks.iter().sum();
    println!(
        "PageRank over emds: {} iterations in {:.3} s",
        args.pr_iters,
        run.pr_emds.iter().sum::<Duration>().as_secs_f64()
    );
    run.walk_anon_rss = run.walk_anon_rss.max(sys::rss_anon());
    run.walk_peak_rss = sys::peak_rss();
    run.walk_file_rss = sys::rss_file();

    let mut rng = SplitMix64::stream(args.seed, 5, 0);
    let candidates: Vec<u32> =
        (0..args.queries.max(1) * 4).map(|_| rng.below(n) as u32).filter(|&v| g.degree(v) > 0).collect();

    if !args.no_mem {
        let t = Instant::now();
        let mem = MemCsr {
            offsets: store.offsets.chunks().flatten().copied().collect(),
            targets: store.targets.chunks().flatten().copied().collect(),
        };
        run.mem_load = Some(t.elapsed());
        compare(&g, &mem, &roots, &hashes, &emds_ranks, args.pr_iters, run)?;
        run.mem_peak_rss = sys::peak_rss();
    }
    drop(emds_ranks);
    drop(g);
    drop(store);

    if args.queries > 0 && !candidates.is_empty() {
        let q = query::run(dir, &candidates, n, args.queries, args.seed)?;
        println!("{} cold neighbour queries done", q.cold_us.len());
        run.queries = Some(q);
    }
    Ok(())
}

/// The same kernels over emds and over `Vec`s, run in alternation (root by root, iteration by
/// iteration, the order flipped each time) so that a shared machine's changing load falls on both
/// alike; the ratios come from these runs. Checks that both give the trees and ranks of phase 1.
fn compare(
    g: &DiskCsr<'_>,
    mem: &MemCsr,
    roots: &[u32],
    hashes: &[u64],
    ranks: &[f64],
    iters: usize,
    run: &mut Run,
) -> Result<(), BoxError> {
    let pb = bar(roots.len() as u64, "BFS paired");
    let mut parent = vec![0u32; g.vertices()];
    let (mut we, mut wm) = (Work::default(), Work::default());
    let (mut emds, mut vecs) = (BfsRuns::default(), BfsRuns::default());
    for (i, &root) in roots.iter().enumerate() {
        for side in [i % 2, 1 - i % 2] {
            let t = Instant::now();
            let reached =
                if side == 0 { bfs(g, root, &mut parent, &mut we) } else { bfs(mem, root, &mut parent, &mut wm) };
            let time = t.elapsed();
            if xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(&parent)) != hashes[i] {
                return Err(format!("BFS from {root}: another tree than in the first pass").into());
            }
            let edges = emds_edges(run, i);
            let out = if side == 0 { &mut emds } else { &mut vecs };
            out.runs.push(Search { root, time, edges, reached });
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "BFS paired: emds TEPS {:.3e}, Vec TEPS {:.3e}: emds/Vec time {:.2}x",
        emds.teps_hmean(),
        vecs.teps_hmean(),
        vecs.teps_hmean() / emds.teps_hmean()
    );
    run.bfs_emds_paired = Some(emds);
    run.bfs_mem = Some(vecs);

    let (mut pe, mut pm) = (PageRank::new(g), PageRank::new(mem));
    let (mut te, mut tm) = (Vec::new(), Vec::new());
    for it in 0..iters {
        if it % 2 == 0 {
            te.push(pe.step(g));
            tm.push(pm.step(mem));
        } else {
            tm.push(pm.step(mem));
            te.push(pe.step(g));
        }
    }
    if pe.ranks() != ranks || pm.ranks() != ranks {
        return Err("PageRank over Vec or a second run over emds gave other ranks".into());
    }
    println!(
        "PageRank paired: emds {:.3} s, Vec {:.3} s for {iters} iterations",
        te.iter().sum::<Duration>().as_secs_f64(),
        tm.iter().sum::<Duration>().as_secs_f64()
    );
    run.pr_emds_paired = Some(te);
    run.pr_mem = Some(tm);
    Ok(())
}

fn emds_edges(run: &Run, i: usize) -> u64 {
    run.bfs_emds.runs[i].edges
}

/// BFS from every root, timed; with `check`, validates the first trees against the edge list.
/// Returns the runs and a hash of every parent array (to compare backends).
fn search_all<G: Graph>(
    g: &G,
    roots: &[u32],
    mut check: Option<(&Store, usize, &mut Run)>,
) -> Result<(BfsRuns, Vec<u64>), BoxError> {
    let label = if check.is_some() { "BFS emds" } else { "BFS Vec" };
    let pb = bar(roots.len() as u64, label);
    let mut parent = vec![0u32; g.vertices()];
    let mut work = Work::default();
    let (mut level, mut lp) = (Vec::new(), Vec::new());
    let mut runs = BfsRuns::default();
    let mut hashes = Vec::new();
    for (i, &root) in roots.iter().enumerate() {
        let t = Instant::now();
        let reached = bfs(g, root, &mut parent, &mut work);
        let time = t.elapsed();
        let edges = component_edges(g, &parent);
        hashes.push(xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(&parent)));
        if let Some((store, limit, run)) = check.as_mut() {
            if i < *limit {
                let t = Instant::now();
                let inside = validate::validate(&parent, root, store.edges.chunks(), &mut level, &mut lp, |_| {})
                    .map_err(|e| format!("the BFS tree from root {root} fails validation: {e}"))?;
                if inside != edges {
                    return Err(
                        format!("root {root}: {inside} input edges in the component, the CSR says {edges}").into()
                    );
                }
                run.validated += 1;
                run.validate_time += t.elapsed();
            }
            run.walk_anon_rss = run.walk_anon_rss.max(sys::rss_anon());
        }
        runs.runs.push(Search { root, time, edges, reached });
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "{label}: {} roots in {:.3} s of search, TEPS {:.3e} (harmonic mean)",
        roots.len(),
        runs.total_time(),
        runs.teps_hmean()
    );
    Ok((runs, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole pipeline at a tiny scale: build, walk (validating every tree, comparing with the
    /// in-memory kernels), then a second run that reopens the kept store without rebuilding.
    #[test]
    fn build_walk_and_reopen_at_scale_10() {
        let dir = std::env::temp_dir().join(format!("graph500-pipeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = Args { scale: 10, dir: Some(dir.clone()), queries: 50, disk_probe_mib: 1, ..Args::default() };
        let first = main_job(&args).unwrap();
        assert_eq!(first.meta.edges, 16 << 10);
        assert_eq!(first.validated, 64);
        assert!(first.bfs_ratio().is_some() && first.pr_ratio().is_some());
        assert!((first.pr_sum - 1.0).abs() < 1e-9);
        assert_eq!(first.queries.as_ref().unwrap().cold_us.len(), 50);

        let again = Args { scale: 10, reopen: Some(dir.clone()), no_mem: true, queries: 0, ..Args::default() };
        let second = main_job(&again).unwrap();
        assert!(second.build.is_none());
        assert_eq!(second.meta, first.meta);
        assert!(second.bfs_emds.teps_hmean().is_finite());
        let roots = |r: &Run| r.bfs_emds.runs.iter().map(|s| (s.root, s.edges)).collect::<Vec<_>>();
        assert_eq!(roots(&second), roots(&first));

        std::fs::remove_dir_all(dir.join("meta")).unwrap();
        let err = main_job(&again).err().unwrap().to_string();
        assert!(err.contains("cannot reopen"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
