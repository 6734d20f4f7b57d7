//! The summary of a run, printed for people and written as JSON for the README's tables.

use std::fmt::Write as _;
use std::time::Duration;

use crate::build::BuildReport;
use crate::query::{QueryReport, median_p99};
use crate::store::Meta;

/// One BFS.
#[derive(Clone, Debug)]
pub struct Search {
    /// The root.
    pub root: u32,
    /// Search time.
    pub time: Duration,
    /// Undirected edges in the searched component.
    pub edges: u64,
    /// Vertices reached.
    pub reached: u64,
}

/// BFS over one backend.
#[derive(Clone, Debug, Default)]
pub struct BfsRuns {
    /// The searches, one per root.
    pub runs: Vec<Search>,
}

impl BfsRuns {
    /// Graph500's TEPS: the harmonic mean of edges per second over the roots.
    pub fn teps_hmean(&self) -> f64 {
        let inv: f64 = self.runs.iter().map(|s| s.time.as_secs_f64() / s.edges.max(1) as f64).sum();
        self.runs.len() as f64 / inv
    }

    /// Median search time in seconds.
    pub fn median_time(&self) -> f64 {
        let t: Vec<f64> = self.runs.iter().map(|s| s.time.as_secs_f64()).collect();
        median_p99(&t).0
    }

    /// Total search time in seconds.
    pub fn total_time(&self) -> f64 {
        self.runs.iter().map(|s| s.time.as_secs_f64()).sum()
    }
}

/// Seconds per PageRank iteration: mean and median.
pub fn per_iter(iters: &[Duration]) -> (f64, f64) {
    let t: Vec<f64> = iters.iter().map(Duration::as_secs_f64).collect();
    (t.iter().sum::<f64>() / t.len().max(1) as f64, median_p99(&t).0)
}

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct Run {
    /// One line naming the machine.
    pub machine: String,
    /// The store's directory.
    pub dir: String,
    /// The graph.
    pub meta: Meta,
    /// The build, when this run built the store.
    pub build: Option<BuildReport>,
    /// Sequential write bandwidth of the disk under the store, bytes per second.
    pub disk_write_bw: Option<f64>,
    /// Bytes on disk per store part, and in total.
    pub disk: Vec<(String, u64)>,
    /// Reopening the stores read-only.
    pub reopen: Duration,
    /// One scan of the targets after the reopen (warms the page cache the way a first pass does).
    pub warm_scan: Duration,
    /// Trees validated, and the time the validation took.
    pub validated: usize,
    /// Time spent validating.
    pub validate_time: Duration,
    /// BFS over emds.
    pub bfs_emds: BfsRuns,
    /// PageRank iterations over emds.
    pub pr_emds: Vec<Duration>,
    /// Sum of the emds ranks (1 up to rounding), to show they are the in-memory ones.
    pub pr_sum: f64,
    /// Peak RSS (VmHWM) of the walk from disk, and the largest anonymous RSS seen in it.
    pub walk_peak_rss: u64,
    /// See `walk_peak_rss`.
    pub walk_anon_rss: u64,
    /// BFS over emds, run alternately with `bfs_mem`.
    pub bfs_emds_paired: Option<BfsRuns>,
    /// PageRank over emds, iterations alternating with `pr_mem`.
    pub pr_emds_paired: Option<Vec<Duration>>,
    /// Copying the CSR into `Vec`s.
    pub mem_load: Option<Duration>,
    /// BFS over `Vec`s (alternating with `bfs_emds_paired`).
    pub bfs_mem: Option<BfsRuns>,
    /// PageRank over `Vec`s.
    pub pr_mem: Option<Vec<Duration>>,
    /// Mapped store pages resident at the end of the walk.
    pub walk_file_rss: u64,
    /// Slices the CSR's `EmVec`s handed out (offsets, targets).
    pub csr_pieces: (usize, usize),
    /// Peak RSS with the in-memory copy.
    pub mem_peak_rss: u64,
    /// The neighbour-query benchmark.
    pub queries: Option<QueryReport>,
    /// Wall time of the whole run.
    pub total: Duration,
}

const MIB: f64 = 1048576.0;
const GIB: f64 = 1073741824.0;

fn si(x: f64) -> String {
    let (v, u) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{v:.2} {u}")
}

impl Run {
    /// emds time over in-memory time for BFS (TEPS in memory over TEPS from emds), from the
    /// alternating runs.
    pub fn bfs_ratio(&self) -> Option<f64> {
        Some(self.bfs_mem.as_ref()?.teps_hmean() / self.bfs_emds_paired.as_ref()?.teps_hmean())
    }

    /// emds time over in-memory time for a PageRank iteration (means of the alternating runs).
    pub fn pr_ratio(&self) -> Option<f64> {
        Some(per_iter(self.pr_emds_paired.as_ref()?).0 / per_iter(self.pr_mem.as_ref()?).0)
    }

    /// The median over roots of emds time over in-memory time (robust to load spikes).
    pub fn bfs_ratio_median(&self) -> Option<f64> {
        let (e, m) = (self.bfs_emds_paired.as_ref()?, self.bfs_mem.as_ref()?);
        let r: Vec<f64> =
            e.runs.iter().zip(&m.runs).map(|(a, b)| a.time.as_secs_f64() / b.time.as_secs_f64()).collect();
        Some(median_p99(&r).0)
    }

    /// The median over iterations of emds time over in-memory time.
    pub fn pr_ratio_median(&self) -> Option<f64> {
        let (e, m) = (self.pr_emds_paired.as_ref()?, self.pr_mem.as_ref()?);
        let r: Vec<f64> = e.iter().zip(m).map(|(a, b)| a.as_secs_f64() / b.as_secs_f64()).collect();
        Some(median_p99(&r).0)
    }

    fn disk_total(&self) -> u64 {
        self.disk.iter().map(|d| d.1).sum()
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let m = &self.meta;
        let mut s = String::new();
        let _ = writeln!(s, "\n== Graph500 over emds: scale {}, edge factor {} ==", m.scale, m.edge_factor);
        let _ = writeln!(s, "machine    {}", self.machine);
        let _ = writeln!(
            s,
            "graph      {} vertices, {} edges ({} self-loops), {} CSR entries",
            m.vertices, m.edges, m.self_loops, m.targets
        );
        let parts: Vec<String> = self.disk.iter().map(|(p, b)| format!("{p} {:.1}", *b as f64 / MIB)).collect();
        let _ = writeln!(
            s,
            "store      {}: {:.1} MiB on disk ({} MiB)",
            self.dir,
            self.disk_total() as f64 / MIB,
            parts.join(", ")
        );
        if let Some(b) = &self.build {
            let (wall, cpu) = (b.wall().as_secs_f64(), b.cpu().as_secs_f64());
            let _ = writeln!(
                s,
                "build      {wall:.2} s wall, {cpu:.2} s CPU ({:.0}% of one core), {:.1} M edges/s, {} scatter pass(es), peak RSS {:.0} MiB (anonymous {:.0} MiB)",
                100.0 * cpu / wall,
                m.edges as f64 / wall / 1e6,
                b.scatter_passes,
                b.peak_rss as f64 / MIB,
                b.anon_rss as f64 / MIB
            );
            let rate = self.disk_total() as f64 / wall;
            let verdict = self.build_bound().unwrap_or("?");
            let bw = self.disk_write_bw.map_or("not measured".into(), |b| format!("{:.0} MiB/s", b / MIB));
            let _ = writeln!(
                s,
                "           store written at {:.0} MiB/s; {:.2} s of CPU per GiB of store against a disk that takes {bw} (dd+fsync){}",
                rate / MIB,
                self.cpu_s_per_gib(),
                self.disk_s_per_gib().map_or(String::new(), |d| format!(", {d:.2} s per GiB"))
            );
            if let Some((cpu_need, disk_need)) = self.build_needs() {
                let _ = writeln!(
                    s,
                    "           on {} cores the build needs {cpu_need:.1} s of CPU and {disk_need:.1} s of disk ({:.0} MiB written): {verdict}; its CPU keeps up with a disk of up to {:.0} MiB/s of store",
                    b.cores,
                    self.disk_bytes_written() as f64 / MIB,
                    self.disk_total() as f64 / MIB / cpu_need.max(1e-9)
                );
            } else {
                let _ = writeln!(s, "           {verdict}");
            }
            let _ = writeln!(
                s,
                "           main thread: {:.2} s waiting for a CPU (shared machine), {:.2} s for its helper threads, {:.2} s blocked (I/O, faults, fsync); helper threads {:.2} s waiting for a CPU",
                b.main_wait().as_secs_f64(),
                b.joining().as_secs_f64(),
                b.blocked().as_secs_f64(),
                b.helpers_wait().as_secs_f64()
            );
            let phases: Vec<String> = b
                .phases
                .iter()
                .map(|p| {
                    format!(
                        "{} {:.2}/{:.2}/{:.2}/{:.2}",
                        p.name,
                        p.wall.as_secs_f64(),
                        p.cpu.as_secs_f64(),
                        p.main_wait.as_secs_f64(),
                        p.blocked().as_secs_f64()
                    )
                })
                .collect();
            let _ = writeln!(s, "           phases (wall/CPU/CPU wait/blocked s): {}", phases.join(", "));
        }
        if self.bfs_emds.runs.is_empty() {
            // --build-only: nothing was walked.
            let _ = writeln!(s, "total      {:.1} s", self.total.as_secs_f64());
            return s;
        }
        let _ = writeln!(
            s,
            "reopen     {:.3} ms; CSR in {} + {} slices; first scan of the targets {:.3} s",
            self.reopen.as_secs_f64() * 1e3,
            self.csr_pieces.0,
            self.csr_pieces.1,
            self.warm_scan.as_secs_f64()
        );
        let e = &self.bfs_emds;
        let _ = writeln!(
            s,
            "BFS        {} roots, {} trees validated ({:.1} s): emds TEPS {} (harmonic mean), median {:.4} s",
            e.runs.len(),
            self.validated,
            self.validate_time.as_secs_f64(),
            si(e.teps_hmean()),
            e.median_time()
        );
        if let (Some(mem), Some(pe)) = (&self.bfs_mem, &self.bfs_emds_paired) {
            let _ = writeln!(
                s,
                "           alternating with in-memory: emds TEPS {}, in-memory TEPS {}: emds/in-memory time {:.2}x (median per root {:.2}x)",
                si(pe.teps_hmean()),
                si(mem.teps_hmean()),
                self.bfs_ratio().unwrap_or(0.0),
                self.bfs_ratio_median().unwrap_or(0.0)
            );
        }
        let (mean, med) = per_iter(&self.pr_emds);
        let _ = writeln!(
            s,
            "PageRank   {} iterations: emds {mean:.4} s/iteration (median {med:.4}), {} edges/s",
            self.pr_emds.len(),
            si(m.targets as f64 / mean)
        );
        if let (Some(pr), Some(pe)) = (&self.pr_mem, &self.pr_emds_paired) {
            let _ = writeln!(
                s,
                "           alternating with in-memory: emds {:.4} s/iteration, in-memory {:.4}: emds/in-memory {:.2}x (median per iteration {:.2}x)",
                per_iter(pe).0,
                per_iter(pr).0,
                self.pr_ratio().unwrap_or(0.0),
                self.pr_ratio_median().unwrap_or(0.0)
            );
        }
        if let Some(q) = &self.queries {
            let (c50, c99) = median_p99(&q.cold_us);
            let (w50, w99) = median_p99(&q.warm_us);
            let (d50, d99) = median_p99(&q.dict_cold_us);
            let _ = writeln!(
                s,
                "queries    {} one-step neighbour lists after dropping the page cache: median {c50:.1} us, p99 {c99:.1} us",
                q.cold_us.len()
            );
            let _ = writeln!(
                s,
                "           warm: median {w50:.2} us, p99 {w99:.2} us; cold EmDict degree lookups: median {d50:.1} us, p99 {d99:.1} us"
            );
        }
        let _ = writeln!(
            s,
            "memory     walk from disk: peak RSS {:.0} MiB, of which at most {:.0} MiB anonymous ({:.0} MiB of mapped store pages at the end)",
            self.walk_peak_rss as f64 / MIB,
            self.walk_anon_rss as f64 / MIB,
            self.walk_file_rss as f64 / MIB
        );
        if self.mem_load.is_some() {
            let _ =
                writeln!(s, "           with the in-memory copy: peak RSS {:.0} MiB", self.mem_peak_rss as f64 / MIB);
        }
        let _ = writeln!(s, "total      {:.1} s", self.total.as_secs_f64());
        s
    }

    /// CPU seconds (all threads) per GiB of store built. Mostly independent of the machine's
    /// load: what the build costs, not how long it happened to take.
    pub fn cpu_s_per_gib(&self) -> f64 {
        let cpu = self.build.as_ref().map_or(0.0, |b| b.cpu().as_secs_f64());
        cpu / (self.disk_total().max(1) as f64 / GIB)
    }

    /// Seconds the disk needs per GiB, from the dd-like probe.
    pub fn disk_s_per_gib(&self) -> Option<f64> {
        self.disk_write_bw.map(|bw| GIB / bw)
    }

    /// Bytes the disk had to take: the store, or what the process wrote if that was more
    /// (pages written back and dirtied again are written twice).
    fn disk_bytes_written(&self) -> u64 {
        self.disk_total().max(self.build.as_ref().map_or(0, |b| b.io_written))
    }

    /// Seconds of CPU the build needs on this machine's cores if it has them to itself (its CPU
    /// time over the cores), and seconds of the disk it needs at the probe's bandwidth.
    pub fn build_needs(&self) -> Option<(f64, f64)> {
        let b = self.build.as_ref()?;
        let bw = self.disk_write_bw?;
        Some((b.cpu().as_secs_f64() / b.cores.max(1) as f64, self.disk_bytes_written() as f64 / bw))
    }

    /// Whether the build is bounded by the CPU or by the disk: the CPU work spread over the
    /// cores against the bytes at the disk's bandwidth. The run's own wall time is not the
    /// measure, since on a shared machine it mostly shows the others' load; that load is named
    /// when the build's threads waited for a CPU a quarter of the CPU time or more.
    pub fn build_bound(&self) -> Option<&'static str> {
        let b = self.build.as_ref()?;
        if b.wall() < Duration::from_secs(1) {
            return Some("too short to tell what bounds it");
        }
        let Some((cpu_need, disk_need)) = self.build_needs() else {
            return Some("disk not probed");
        };
        let waited = (b.main_wait() + b.helpers_wait()).as_secs_f64();
        Some(if disk_need >= cpu_need {
            "bounded by the disk"
        } else if waited > 0.25 * b.cpu().as_secs_f64() {
            "bounded by the CPU (here shared with other processes)"
        } else {
            "bounded by the CPU"
        })
    }

    /// The summary as a JSON object.
    pub fn json(&self) -> String {
        let m = &self.meta;
        let mut o = Obj::default();
        o.s("machine", &self.machine);
        o.s("dir", &self.dir);
        for (k, v) in [
            ("scale", m.scale),
            ("edge_factor", m.edge_factor),
            ("seed", m.seed),
            ("vertices", m.vertices),
            ("edges", m.edges),
            ("self_loops", m.self_loops),
            ("csr_entries", m.targets),
            ("disk_bytes", self.disk_total()),
        ] {
            o.n(k, v as f64);
        }
        let mut d = Obj::default();
        for (p, b) in &self.disk {
            d.n(p, *b as f64);
        }
        o.raw("disk_bytes_by_part", d.finish());
        if let Some(b) = &self.build {
            let mut bo = Obj::default();
            bo.n("wall_s", b.wall().as_secs_f64());
            bo.n("cpu_s", b.cpu().as_secs_f64());
            bo.n("main_thread_cpu_wait_s", b.main_wait().as_secs_f64());
            bo.n("main_thread_blocked_s", b.blocked().as_secs_f64());
            bo.n("main_thread_joining_s", b.joining().as_secs_f64());
            bo.n("helpers_cpu_wait_s", b.helpers_wait().as_secs_f64());
            bo.n("cores", b.cores as f64);
            bo.s("build_method", crate::build::METHOD);
            bo.n("cpu_s_per_gib", self.cpu_s_per_gib());
            if let Some((cpu_need, disk_need)) = self.build_needs() {
                bo.n("cpu_need_s", cpu_need);
                bo.n("disk_need_s", disk_need);
            }
            bo.n("edges_per_s", m.edges as f64 / b.wall().as_secs_f64());
            bo.n("store_write_bytes_per_s", self.disk_total() as f64 / b.wall().as_secs_f64());
            bo.n("io_written_bytes", b.io_written as f64);
            bo.n("scatter_passes", b.scatter_passes as f64);
            bo.n("peak_rss_bytes", b.peak_rss as f64);
            bo.n("anon_rss_bytes", b.anon_rss as f64);
            if let Some(bw) = self.disk_write_bw {
                bo.n("disk_write_bw_bytes_per_s", bw);
            }
            bo.s("bound", self.build_bound().unwrap_or("?"));
            let mut ph = Obj::default();
            for p in &b.phases {
                ph.raw(
                    p.name,
                    format!(
                        "[{}, {}, {}, {}]",
                        p.wall.as_secs_f64(),
                        p.cpu.as_secs_f64(),
                        p.main_wait.as_secs_f64(),
                        p.blocked().as_secs_f64()
                    ),
                );
            }
            bo.raw("phases_wall_cpu_cpuwait_blocked_s", ph.finish());
            let mut ph = Obj::default();
            for p in &b.phases {
                ph.raw(p.name, format!("[{}, {}]", p.joining.as_secs_f64(), p.helpers_wait.as_secs_f64()));
            }
            bo.raw("phases_joining_helperscpuwait_s", ph.finish());
            let mut ph = Obj::default();
            for p in &b.phases {
                ph.n(p.name, p.written as f64);
            }
            bo.raw("phases_io_written_bytes", ph.finish());
            o.raw("build", bo.finish());
        }
        o.n("reopen_s", self.reopen.as_secs_f64());
        o.n("warm_scan_s", self.warm_scan.as_secs_f64());
        o.n("validated", self.validated as f64);
        o.n("validate_s", self.validate_time.as_secs_f64());
        let bfs = |r: &BfsRuns| {
            let mut b = Obj::default();
            b.n("roots", r.runs.len() as f64);
            b.n("teps_hmean", r.teps_hmean());
            b.n("median_s", r.median_time());
            b.n("total_s", r.total_time());
            let each: Vec<String> = r
                .runs
                .iter()
                .map(|s| format!("[{}, {}, {}, {}]", s.root, s.time.as_secs_f64(), s.edges, s.reached))
                .collect();
            b.raw("root_seconds_edges_reached", format!("[{}]", each.join(", ")));
            b.finish()
        };
        o.raw("bfs_emds", bfs(&self.bfs_emds));
        let pr = |iters: &[Duration]| {
            let mut p = Obj::default();
            let (mean, med) = per_iter(iters);
            p.n("iterations", iters.len() as f64);
            p.n("mean_s_per_iter", mean);
            p.n("median_s_per_iter", med);
            p.finish()
        };
        o.raw("pagerank_emds", pr(&self.pr_emds));
        if let Some(mem) = &self.bfs_mem {
            o.raw("bfs_mem", bfs(mem));
        }
        if let Some(pe) = &self.bfs_emds_paired {
            o.raw("bfs_emds_paired", bfs(pe));
        }
        if let Some(p) = &self.pr_mem {
            o.raw("pagerank_mem", pr(p));
        }
        if let Some(p) = &self.pr_emds_paired {
            o.raw("pagerank_emds_paired", pr(p));
        }
        if let Some(load) = self.mem_load {
            o.n("mem_load_s", load.as_secs_f64());
            o.n("mem_peak_rss_bytes", self.mem_peak_rss as f64);
        }
        if let Some(r) = self.bfs_ratio() {
            o.n("bfs_ratio", r);
        }
        if let Some(r) = self.pr_ratio() {
            o.n("pagerank_ratio", r);
        }
        if let Some(r) = self.bfs_ratio_median() {
            o.n("bfs_ratio_median", r);
        }
        if let Some(r) = self.pr_ratio_median() {
            o.n("pagerank_ratio_median", r);
        }
        o.n("walk_peak_rss_bytes", self.walk_peak_rss as f64);
        o.n("walk_anon_rss_bytes", self.walk_anon_rss as f64);
        o.n("walk_file_rss_bytes", self.walk_file_rss as f64);
        if let Some(q) = &self.queries {
            let mut qo = Obj::default();
            let (c50, c99) = median_p99(&q.cold_us);
            let (w50, w99) = median_p99(&q.warm_us);
            let (d50, d99) = median_p99(&q.dict_cold_us);
            for (k, v) in [
                ("count", q.cold_us.len() as f64),
                ("cold_median_us", c50),
                ("cold_p99_us", c99),
                ("warm_median_us", w50),
                ("warm_p99_us", w99),
                ("dict_cold_median_us", d50),
                ("dict_cold_p99_us", d99),
                ("reopen_us", q.reopen_us),
            ] {
                qo.n(k, v);
            }
            o.raw("neighbour_queries", qo.finish());
        }
        o.n("total_s", self.total.as_secs_f64());
        o.finish()
    }
}

/// A JSON object under construction.
#[derive(Default)]
struct Obj(Vec<String>);

impl Obj {
    fn raw(&mut self, k: &str, v: String) {
        self.0.push(format!("{}: {v}", quote(k)));
    }
    fn n(&mut self, k: &str, v: f64) {
        let v = if v.is_finite() { format!("{v}") } else { "null".into() };
        self.raw(k, v);
    }
    fn s(&mut self, k: &str, v: &str) {
        self.raw(k, quote(v));
    }
    fn finish(self) -> String {
        format!("{{{}}}", self.0.join(", "))
    }
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teps_is_a_harmonic_mean() {
        let s = |secs: f64, edges| Search { root: 0, time: Duration::from_secs_f64(secs), edges, reached: 1 };
        let r = BfsRuns { runs: vec![s(1.0, 100), s(1.0, 300)] };
        assert!((r.teps_hmean() - 150.0).abs() < 1e-9);
    }

    #[test]
    fn json_quotes_and_nests() {
        let mut o = Obj::default();
        o.s("a\"b", "x\ny");
        o.n("n", 1.5);
        o.n("bad", f64::NAN);
        assert_eq!(o.finish(), r#"{"a\"b": "x\u000ay", "n": 1.5, "bad": null}"#);
        let run = Run { machine: "m".into(), ..Default::default() };
        assert!(run.json().starts_with('{') && run.text().contains("machine"));
    }
}
