//! emds-compare: runs emds and its peers (LMDB through heed, redb, std's
//! HashMap and Vec) on the same data in one run and prints Markdown tables.
//!
//! ```text
//! cargo run --release -- dict --n 10000000
//! cargo run --release -- dict --workload bytes64 --n 2000000 --json bytes64.json
//! cargo run --release -- list --n 10000000
//! cargo run --release -- list --n 100000000 --engines emlist --load-only
//! cargo run --release -- floor --n 100000000
//! ```

mod data;
mod dict;
mod engines;
mod floor;
mod list;
mod report;
mod sys;

use std::path::{Path, PathBuf};

use data::Bytes64;
use report::{Report, Section, print_section};
use sys::Machine;

/// Every fallible function's result.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
usage: emds-compare <dict|list|floor> [options]

  floor: the disk and encoding floors of the list workload (write + fsync of
  its bytes, postcard encoding of its elements), for comparison with list

  --workload u64|bytes64   dict only: u64 -> u64 (default) or 64-byte keys -> 64-byte values
  --n N                    entries (default 10000000; 2000000 for bytes64)
  --engines a,b,...        dict: emds,lmdb,redb,hashmap; list: emds,lmdb,vec (default: all)
  --reps R                 repetitions of the fast phases; the median is reported (default 3)
  --sample S               warm random gets per repetition (default min(N, 2000000))
  --cold-sample C          gets after dropping the page cache (default 100000)
  --seed X                 seed of the data (default 0x5eed; decimal or 0x hex)
  --dir DIR                where the engines' directories go (default: a new one under the temp dir)
  --json FILE              also write the results as JSON
  --keep                   keep the engines' directories
  --load-only              dict: only the two load phases and the disk use after them;
                           list: only the append + durable flush phase, --reps times
";

/// What to run, from the command line.
pub struct Config {
    pub command: String,
    pub workload: String,
    pub n: usize,
    pub engines: Vec<String>,
    pub reps: usize,
    pub sample: usize,
    pub cold_sample: usize,
    pub seed: u64,
    pub dir: PathBuf,
    pub json: Option<PathBuf>,
    pub keep: bool,
    pub load_only: bool,
}

fn main() {
    if let Err(err) = run() {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let cfg = &parse_args(std::env::args().skip(1).collect())?;
    let machine = Machine::detect();
    std::fs::create_dir_all(&cfg.dir)?;
    print_preamble(cfg, &machine);
    let (sections, baselines) = run_workload(cfg)?;
    // A part none of whose engines ran (`--engines emlist`) prints nothing.
    for section in sections.iter().filter(|s| !s.results.is_empty()) {
        print_section(section, baselines);
    }
    if let Some(path) = &cfg.json {
        report(cfg, machine, sections).write_json(path)?;
        eprintln!("wrote {}", path.display());
    }
    if !cfg.keep {
        let _ = std::fs::remove_dir(&cfg.dir); // only if empty
    }
    Ok(())
}

fn report(cfg: &Config, machine: Machine, sections: Vec<Section>) -> Report {
    Report {
        machine,
        args: std::env::args().skip(1).collect(),
        command: cfg.command.clone(),
        workload: cfg.workload.clone(),
        n: cfg.n,
        seed: cfg.seed,
        reps: cfg.reps,
        sample: cfg.sample,
        cold_sample: cfg.cold_sample,
        unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        sections,
    }
}

/// Runs the chosen workload; returns its sections and the engines its rates are compared with.
fn run_workload(cfg: &Config) -> Res<(Vec<Section>, &'static [&'static str])> {
    let title = |what: &str| format!("dict: {} × {what}, seed {:#x}", cfg.n, cfg.seed);
    match (cfg.command.as_str(), cfg.workload.as_str()) {
        ("dict", "u64") => {
            let section = dict::run::<u64, u64>(cfg, title("u64 → u64"))?;
            Ok((vec![section], &["LMDB", "HashMap"]))
        }
        ("dict", "bytes64") => {
            let section = dict::run::<Bytes64, Bytes64>(cfg, title("64 B → 64 B"))?;
            Ok((vec![section], &["LMDB", "HashMap"]))
        }
        ("list", _) => Ok((vec![list::run_pairs(cfg)?, list::run_edges(cfg)?], &["LMDB", "Vec"])),
        ("floor", _) => Ok((vec![floor::run(cfg)?], &[])),
        (command, workload) => Err(format!("unknown workload {command} {workload}\n{USAGE}").into()),
    }
}

fn print_preamble(cfg: &Config, machine: &Machine) {
    match cfg.command.as_str() {
        "dict" => println!("## emds-compare dict {}\n", cfg.workload),
        command => println!("## emds-compare {command}\n"),
    }
    println!("- machine: {machine}");
    println!("- n = {}, seed = {:#x}, reps = {} (median)", cfg.n, cfg.seed, cfg.reps);
    println!("- random gets per rep = {}", cfg.sample);
    if cfg.command == "dict" {
        println!("- cold gets (after dropping the page cache) = {}", cfg.cold_sample);
    }
    println!("- dir: {}", cfg.dir.display());
    if sys::is_tmpfs(&cfg.dir) {
        println!("- WARNING: the dir is on tmpfs: durability, disk use and cold gets mean nothing there");
    }
    println!();
}

fn parse_args(args: Vec<String>) -> Res<Config> {
    let command = args.first().cloned().ok_or(USAGE)?;
    let mut cfg = Config {
        command: command.clone(),
        workload: if command == "list" || command == "floor" { command.clone() } else { "u64".into() },
        n: 0,
        engines: Vec::new(),
        reps: 3,
        sample: 2_000_000,
        cold_sample: 100_000,
        seed: 0x5eed,
        dir: std::env::temp_dir().join(format!("emds-compare-{}", std::process::id())),
        json: None,
        keep: false,
        load_only: false,
    };
    let mut sample = None;
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--workload" => cfg.workload = value()?.clone(),
            "--n" => cfg.n = parse_count(value()?)?,
            "--engines" => cfg.engines = value()?.split(',').map(str::to_lowercase).collect(),
            "--reps" => cfg.reps = parse_count(value()?)?,
            "--sample" => sample = Some(parse_count(value()?)?),
            "--cold-sample" => cfg.cold_sample = parse_count(value()?)?,
            "--seed" => cfg.seed = parse_u64(value()?)?,
            "--dir" => cfg.dir = value()?.into(),
            "--json" => cfg.json = Some(value()?.into()),
            "--keep" => cfg.keep = true,
            "--load-only" => cfg.load_only = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    apply_defaults(&mut cfg, sample);
    validate(&cfg)?;
    Ok(cfg)
}

/// Rejects what no workload runs, before any work is done.
fn validate(cfg: &Config) -> Res<()> {
    let known: &[&str] = match (cfg.command.as_str(), cfg.workload.as_str()) {
        ("dict", "u64" | "bytes64") => dict::ENGINES,
        ("list", "list") => &["emds", "emlist", "emvec", "lmdb", "vec"],
        ("floor", "floor") => &[],
        (command, workload) => return Err(format!("unknown workload {command} {workload}\n{USAGE}").into()),
    };
    match cfg.engines.iter().find(|e| !known.contains(&e.as_str())) {
        Some(engine) => Err(format!("unknown engine {engine:?}; known: {}", known.join(",")).into()),
        None => Ok(()),
    }
}

fn apply_defaults(cfg: &mut Config, sample: Option<usize>) {
    if cfg.n == 0 {
        cfg.n = if cfg.workload == "bytes64" { 2_000_000 } else { 10_000_000 };
    }
    cfg.sample = sample.unwrap_or(cfg.sample).min(cfg.n);
    cfg.cold_sample = cfg.cold_sample.min(cfg.n - cfg.n / 2); // drawn from the keys left after removal
    if cfg.engines.is_empty() && cfg.command != "floor" {
        let all = if cfg.command == "list" { list::ENGINES } else { dict::ENGINES };
        cfg.engines = all.iter().map(|e| e.to_string()).collect();
    }
}

/// A count, with `_` separators allowed: 10_000_000.
fn parse_count(text: &str) -> Res<usize> {
    Ok(text.replace('_', "").parse()?)
}

fn parse_u64(text: &str) -> Res<u64> {
    Ok(match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => text.parse()?,
    })
}

/// A new, empty directory for one engine under `base`.
pub fn fresh_dir(base: &Path, engine: &str) -> Res<PathBuf> {
    let dir = base.join(engine.to_lowercase());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
