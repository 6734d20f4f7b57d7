//! The lookup path of `EmDict<u64, u64>` alone, for profiling: builds a dict
//! of N random pairs once (kept in DIR), then runs only gets over it, as
//! `benches/compare` does (`get(key)?.as_ref() == Some(value)` over random
//! present keys, then `contains_key` over absent keys). The loops are their
//! own functions, so `valgrind --tool=callgrind --toggle-collect=<loop>`
//! counts the instructions of the gets alone.
//!
//! ```text
//! cargo run --release --example dict_get -- N GETS DIR
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*present_loop*' \
//!     target/release/examples/dict_get N GETS DIR
//! ```

use std::hint::black_box;
use std::time::Instant;

use emds::{EmDict, OpenOptions};

/// This thread's CPU time in seconds (from /proc, in nanoseconds; 0 where
/// unavailable): on a shared machine it shows the cost of the gets better
/// than the wall clock, which counts time spent waiting for a core.
fn cpu_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).unwrap_or(0.0) * 1e-9
}

/// Prints the rate of `n` gets that took `wall` seconds and `cpu` seconds of CPU time.
fn report(what: &str, n: u64, wall: f64, cpu: f64, note: String) {
    let rate = |s: f64| n as f64 / s / 1e6;
    println!(
        "{what} {:>6.2} M/s wall {:>6.2} M/s cpu ({:.1} ns/get of cpu){note}",
        rate(wall),
        rate(cpu),
        cpu * 1e9 / n as f64
    );
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline(never)]
fn present_loop(d: &EmDict<u64, u64>, pairs: &[(u64, u64)]) -> emds::Result<usize> {
    let mut found = 0;
    for (key, value) in pairs {
        found += usize::from(d.get(key)?.as_ref() == Some(value));
    }
    Ok(found)
}

#[inline(never)]
fn absent_loop(d: &EmDict<u64, u64>, keys: &[u64]) -> emds::Result<usize> {
    let mut found = 0;
    for key in keys {
        found += usize::from(d.contains_key(key)?);
    }
    Ok(found)
}

fn main() -> emds::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N is a number"));
    let gets: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("GETS is a number"));
    let dir =
        args.next().map_or_else(|| std::env::temp_dir().join(format!("emds-dict-get-{n}")), std::path::PathBuf::from);
    let value = |k: u64| k.wrapping_mul(31) >> 3;
    let fresh = EmDict::<u64, u64>::open_read_only(&dir).map_or(true, |d| d.len() as u64 != n);
    if fresh {
        let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().truncate(true).durable(false))?;
        d.extend((0..n).map(|i| (mix(i), value(mix(i)))))?;
        d.close()?;
    }
    let d: EmDict<u64, u64> = EmDict::open_read_only(&dir)?;
    let pairs: Vec<(u64, u64)> = (0..gets).map(|i| mix(mix(i ^ 0xabcd) % n)).map(|k| (k, value(k))).collect();
    let absent: Vec<u64> = (0..gets).map(|i| mix(n + i % n)).collect();
    let (t, c) = (Instant::now(), cpu_time());
    let found = black_box(present_loop(&d, &pairs)?);
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_time() - c);
    let note = if found as u64 == gets { String::new() } else { format!(" FOUND ONLY {found}") };
    report("get present", gets, secs, cpu, note);
    let (t, c) = (Instant::now(), cpu_time());
    let found = black_box(absent_loop(&d, &absent)?);
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_time() - c);
    let note = if found == 0 { String::new() } else { format!(" FOUND {found}") };
    report("get absent ", gets, secs, cpu, note);
    Ok(())
}
