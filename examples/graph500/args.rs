//! Command-line options, parsed by hand to keep the example free of a parser dependency.

use std::path::PathBuf;

/// What one run does.
#[derive(Clone, Debug)]
pub struct Args {
    /// log2 of the number of vertices.
    pub scale: u32,
    /// Edges per vertex in the generated edge list.
    pub edge_factor: u32,
    /// Seed of the generator, of the root choice and of the query sample.
    pub seed: u64,
    /// Where the store is built; `None` means a fresh directory under the temp dir.
    pub dir: Option<PathBuf>,
    /// Reopen an existing store instead of generating one.
    pub reopen: Option<PathBuf>,
    /// Keep the store after the run (always true for `--dir` and `--reopen`).
    pub keep: bool,
    /// Number of BFS roots.
    pub roots: usize,
    /// Number of BFS trees to validate (the first ones); Graph500 validates all.
    pub validate: usize,
    /// PageRank iterations.
    pub pr_iters: usize,
    /// Skip the in-memory comparison (for scales whose graph does not fit twice in RAM).
    pub no_mem: bool,
    /// One-step-neighbour queries after dropping the page cache.
    pub queries: usize,
    /// RAM for the CSR scatter window (8 bytes per neighbour entry), in MiB; more MiB = fewer
    /// passes over the edge list.
    pub build_mem_mib: u64,
    /// Bytes written by the disk-bandwidth probe, in MiB (0 skips it).
    pub disk_probe_mib: u64,
    /// Only build the store (then close it); the walk can follow with `--reopen`.
    pub build_only: bool,
    /// Write the summary as JSON to this file.
    pub json: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            scale: 16,
            edge_factor: 16,
            seed: 1,
            dir: None,
            reopen: None,
            keep: false,
            roots: 64,
            validate: usize::MAX,
            pr_iters: 10,
            no_mem: false,
            queries: 2000,
            build_mem_mib: 2048,
            disk_probe_mib: 256,
            build_only: false,
            json: None,
        }
    }
}

pub const USAGE: &str = "\
graph500: build a Graph500 Kronecker graph on disk with emds, reopen it, run BFS and PageRank from disk

USAGE: cargo run --release --example graph500 -- [OPTIONS]

OPTIONS:
  --scale S           log2 of the vertex count (default 16; CI runs 14; Graph500 \"toy\" is 26)
  --edge-factor K     edges per vertex (default 16)
  --seed N            seed of the generator, the roots and the query sample (default 1)
  --dir DIR           build the store in DIR and keep it (default: a temp dir, removed at the end)
  --reopen DIR        skip generation; reopen the store in DIR (built by an earlier --dir run)
  --keep              keep the temp-dir store and print where it is
  --roots N           BFS roots (default 64, as Graph500)
  --validate N        validate the first N BFS trees (default: all)
  --pr-iters N        PageRank iterations (default 10)
  --no-mem            skip the in-memory comparison (big scales)
  --queries N         cold one-step-neighbour queries (default 2000; 0 skips)
  --build-mem MIB     RAM for the CSR scatter window, 8 bytes per entry (default 2048)
  --disk-probe MIB    size of the dd-like disk write probe (default 256; 0 skips)
  --build-only        build the store and stop
  --json FILE         also write the summary as JSON to FILE
  -h, --help          this text
";

/// An error in the command line, with the message to print.
#[derive(Debug)]
pub struct ArgError(pub String);

impl Args {
    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, ArgError> {
        let mut a = Args::default();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| ArgError(format!("{name} needs a value")));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--scale" => a.scale = number(&flag, &value(&flag)?)?,
                "--edge-factor" => a.edge_factor = number(&flag, &value(&flag)?)?,
                "--seed" => a.seed = number(&flag, &value(&flag)?)?,
                "--dir" => a.dir = Some(PathBuf::from(value(&flag)?)),
                "--reopen" => a.reopen = Some(PathBuf::from(value(&flag)?)),
                "--keep" => a.keep = true,
                "--roots" => a.roots = number(&flag, &value(&flag)?)?,
                "--validate" => a.validate = number(&flag, &value(&flag)?)?,
                "--pr-iters" => a.pr_iters = number(&flag, &value(&flag)?)?,
                "--no-mem" => a.no_mem = true,
                "--queries" => a.queries = number(&flag, &value(&flag)?)?,
                "--build-mem" => a.build_mem_mib = number(&flag, &value(&flag)?)?,
                "--disk-probe" => a.disk_probe_mib = number(&flag, &value(&flag)?)?,
                "--build-only" => a.build_only = true,
                "--json" => a.json = Some(PathBuf::from(value(&flag)?)),
                other => return Err(ArgError(format!("unknown option {other:?} (try --help)"))),
            }
        }
        a.check()?;
        Ok(Some(a))
    }

    fn check(&self) -> Result<(), ArgError> {
        if !(1..=31).contains(&self.scale) {
            return Err(ArgError(format!("--scale {} is out of range 1..=31 (vertex ids are u32)", self.scale)));
        }
        if self.edge_factor == 0 || (self.edge_factor as u64) << self.scale > 1 << 40 {
            return Err(ArgError(format!("--edge-factor {} is out of range", self.edge_factor)));
        }
        if self.roots == 0 {
            return Err(ArgError("--roots must be at least 1".into()));
        }
        if self.build_mem_mib == 0 {
            return Err(ArgError("--build-mem must be at least 1 MiB".into()));
        }
        if self.dir.is_some() && self.reopen.is_some() {
            return Err(ArgError("--dir and --reopen exclude each other: --reopen DIR names the store".into()));
        }
        if self.build_only && self.reopen.is_some() {
            return Err(ArgError("--build-only with --reopen does nothing".into()));
        }
        Ok(())
    }
}

fn number<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, ArgError> {
    s.parse().map_err(|_| ArgError(format!("{flag} expects a number, got {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Args>, ArgError> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse("").unwrap().unwrap();
        assert_eq!((a.scale, a.roots, a.pr_iters), (16, 64, 10));
        let a = parse("--scale 14 --no-mem --roots 8 --json out.json").unwrap().unwrap();
        assert_eq!((a.scale, a.roots, a.no_mem), (14, 8, true));
        assert_eq!(a.json.unwrap(), PathBuf::from("out.json"));
        assert!(parse("--help").unwrap().is_none());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse("--scale").is_err());
        assert!(parse("--scale x").is_err());
        assert!(parse("--scale 40").is_err());
        assert!(parse("--bogus").is_err());
        assert!(parse("--dir a --reopen b").is_err());
    }
}
