//! A quick look at EmDict's speed: loads N random `u64 -> u64` pairs with one
//! durable flush, reopens, and times random gets, absent gets, iteration and
//! removal of half. For the full comparison with LMDB, redb and HashMap see
//! `benches/compare`.
//!
//! ```text
//! cargo run --release --example dict_quick -- [N] [ROUNDS OF GETS] [DIR]
//! ```

use std::time::Instant;

use emds::{EmDict, OpenOptions};

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// CPU seconds this process has used (user + system), from /proc; 0 where unavailable.
/// On a shared machine this shows the cost of an operation better than the wall clock.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

struct Timer(Instant, f64);

fn timer() -> Timer {
    Timer(Instant::now(), cpu_seconds())
}

fn rate(what: &str, n: u64, t: Timer) {
    let wall = t.0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - t.1;
    let per_cpu = if cpu > 0.0 { n as f64 / cpu / 1e6 } else { f64::NAN };
    println!(
        "{what:<28} {:>7.2} M/s wall ({wall:.2} s), {per_cpu:>7.2} M/s of CPU time ({cpu:.2} s)",
        n as f64 / wall / 1e6
    );
}

fn main() -> emds::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N is a number"));
    let rounds: u64 = args.next().map_or(1, |a| a.parse().expect("ROUNDS is a number"));
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("emds-dict-quick-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().truncate(true))?;
    let start = timer();
    for i in 0..n {
        d.insert(mix(i), i)?;
    }
    d.flush()?;
    rate("load + durable flush", n, start);
    d.close()?;

    let d: EmDict<u64, u64> = EmDict::open(&dir)?;
    let gets = n.min(2_000_000) * rounds;
    let start = timer();
    let mut found = 0;
    for i in 0..gets {
        let k = mix(mix(i ^ 0xabcd) % n);
        found += usize::from(d.get(&k)?.is_some());
    }
    rate("get present", gets, start);
    assert_eq!(found as u64, gets);
    let start = timer();
    for i in 0..gets {
        assert!(!d.contains_key(&mix(n + i % n))?);
    }
    rate("get absent", gets, start);
    let start = timer();
    for _ in 0..rounds.max(1) {
        let mut sum = 0u64;
        for e in d.iter() {
            sum = sum.wrapping_add(e?.1);
        }
        assert_eq!(sum, (0..n).sum::<u64>());
    }
    rate("iterate", n * rounds.max(1), start);
    drop(d);

    let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    let start = timer();
    for i in (0..n).step_by(2) {
        d.remove(&mix(i))?;
    }
    d.flush()?;
    rate("remove half + durable flush", n / 2, start);
    let report = d.check()?;
    println!("after removal: {} bytes backed, {} free", report.bytes_backed, report.bytes_free);
    d.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
