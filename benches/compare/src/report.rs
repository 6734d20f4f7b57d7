//! Results: what each engine measured, Markdown tables, and the JSON file.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::Res;
use crate::sys::{Machine, disk_usage};

/// What a metric's value is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Operations per second (the median over the repetitions); higher is better.
    OpsPerSec,
    /// Milliseconds.
    Millis,
    /// Mebibytes.
    #[serde(rename = "mib")]
    MiB,
    /// Bytes per entry or element.
    BytesPerEntry,
    /// A multiple of something (for example of the raw data size).
    Times,
    /// A percentage.
    Percent,
}

/// One measured figure of one engine.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    /// A stable identifier for charts: the name in snake case.
    pub key: String,
    /// What the tables call it.
    pub name: String,
    pub unit: Unit,
    pub value: f64,
    /// Operations per repetition, for rates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// Seconds of each repetition, for rates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secs: Vec<f64>,
}

/// Everything one engine measured in one run.
#[derive(Clone, Debug, Serialize)]
pub struct EngineResult {
    pub engine: String,
    pub metrics: Vec<Metric>,
}

impl EngineResult {
    pub fn new(engine: &str) -> Self {
        EngineResult { engine: engine.to_string(), metrics: Vec::new() }
    }

    /// A rate: `ops` operations per repetition, timed `secs` (median taken).
    pub fn rate(&mut self, name: &str, ops: usize, secs: Vec<f64>) {
        let value = ops as f64 / median(&secs);
        let ops = Some(ops as u64);
        self.metrics.push(Metric { key: key(name), name: name.into(), unit: Unit::OpsPerSec, value, ops, secs });
    }

    pub fn value(&mut self, name: &str, unit: Unit, value: f64) {
        let secs = Vec::new();
        self.metrics.push(Metric { key: key(name), name: name.into(), unit, value, ops: None, secs });
    }

    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// `name` in snake case, ASCII only: "× raw 16 B after load" -> "x_raw_16_b_after_load".
fn key(name: &str) -> String {
    let mapped: String = name
        .replace('×', "x")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { ' ' })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join("_")
}

/// The results of one workload: one table.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub title: String,
    pub results: Vec<EngineResult>,
}

/// A whole run, as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// The arguments the run was given.
    pub args: Vec<String>,
    pub command: String,
    pub workload: String,
    pub n: usize,
    pub seed: u64,
    pub reps: usize,
    pub sample: usize,
    pub cold_sample: usize,
    /// Seconds since the Unix epoch when the report was written.
    pub unix_time: u64,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn write_json(&self, path: &std::path::Path) -> Res<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }
}

/// Disk use of `dir` and bytes per entry, as metrics.
pub fn disk_metrics(out: &mut EngineResult, dir: &Path, when: &str, entries: usize, raw: usize) -> Res<()> {
    let usage = disk_usage(dir)?;
    let per_entry = usage.allocated as f64 / entries.max(1) as f64;
    out.value(&format!("disk {when}"), Unit::MiB, usage.allocated as f64 / (1 << 20) as f64);
    out.value(&format!("bytes/entry {when}"), Unit::BytesPerEntry, per_entry);
    out.value(&format!("× raw {raw} B {when}"), Unit::Times, per_entry / raw as f64);
    Ok(())
}

/// A fatal error unless `got` is `want`.
pub fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Res<()> {
    if got == want { Ok(()) } else { Err(format!("wrong result: {what}: got {got:?}, want {want:?}").into()) }
}

/// Runs `f` once and returns its result and the seconds it took.
pub fn timed<T>(f: impl FnOnce() -> Res<T>) -> Res<(T, f64)> {
    let start = Instant::now();
    let out = f()?;
    Ok((out, start.elapsed().as_secs_f64()))
}

/// Runs `f` `reps` times and returns the seconds of each run.
pub fn repeated(reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<Vec<f64>> {
    (0..reps.max(1)).map(|_| timed(&mut f).map(|((), secs)| secs)).collect()
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// Prints a section: the figures, then each rate relative to each baseline
/// engine that took part.
pub fn print_section(section: &Section, baselines: &[&str]) {
    println!("### {}\n", section.title);
    print_table(section);
    for base in baselines {
        let Some(base_result) = section.results.iter().find(|r| r.engine == *base) else {
            continue;
        };
        println!("Rates relative to {base} (higher is better):\n");
        print_rate_table(section, |m| {
            let base = base_result.get(&m.name)?;
            Some(format!("{:.2}×", m.value / base.value))
        });
    }
}

/// A table of every metric (rows) of every engine (columns).
fn print_table(section: &Section) {
    print_header(section, "metric");
    for name in metric_names(section, |_| true) {
        let cells = section.results.iter().map(|r| r.get(&name).map_or("—".into(), format_value));
        println!("| {name} | {} |", cells.collect::<Vec<_>>().join(" | "));
    }
    println!();
}

/// A table of the rates only, each cell made by `cell` ("—" when it gives none).
fn print_rate_table(section: &Section, cell: impl Fn(&Metric) -> Option<String>) {
    print_header(section, "rate");
    for name in metric_names(section, |m| m.unit == Unit::OpsPerSec) {
        let cells = section.results.iter().map(|r| r.get(&name).and_then(&cell).unwrap_or_else(|| "—".into()));
        println!("| {name} | {} |", cells.collect::<Vec<_>>().join(" | "));
    }
    println!();
}

fn print_header(section: &Section, corner: &str) {
    let engines: Vec<&str> = section.results.iter().map(|r| r.engine.as_str()).collect();
    println!("| {corner} | {} |", engines.join(" | "));
    println!("|---|{}", "---:|".repeat(engines.len()));
}

/// The names of the metrics that pass `keep`, in the order first seen.
fn metric_names(section: &Section, keep: impl Fn(&Metric) -> bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for metric in section.results.iter().flat_map(|r| &r.metrics) {
        if keep(metric) && !names.contains(&metric.name) {
            names.push(metric.name.clone());
        }
    }
    names
}

fn format_value(m: &Metric) -> String {
    match m.unit {
        Unit::OpsPerSec => format!("{}/s", si(m.value)),
        Unit::Millis => format!("{:.1} ms", m.value),
        Unit::MiB => format!("{:.1} MiB", m.value),
        Unit::BytesPerEntry => format!("{:.1} B", m.value),
        Unit::Times => format!("{:.2}×", m.value),
        Unit::Percent => format!("{:.1} %", m.value),
    }
}

/// A number with an SI suffix: 1.23 M.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}
