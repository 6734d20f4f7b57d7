//! The lookup path of `EmDict` alone, for profiling: builds a dict of N
//! random pairs once (kept in DIR), then runs only gets over it, as
//! `benches/compare` does (`get(key)?.as_ref() == Some(value)` over random
//! present keys, then `contains_key` over absent keys), for its two
//! workloads: `u64 -> u64`, or 64-byte keys to 64-byte values (byte strings,
//! as the benchmark's `Bytes64`). The loops are their own functions, so
//! `valgrind --tool=callgrind --toggle-collect=<loop>` counts the
//! instructions of the gets alone.
//!
//! ```text
//! cargo run --release --example dict_get -- [u64|bytes64] N GETS DIR
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*present_loop*' \
//!     target/release/examples/dict_get u64 N GETS DIR
//! ```

use std::fmt;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use emds::{EmDict, OpenOptions};
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

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

/// A key or value made from one number.
trait Datum: Serialize + DeserializeOwned + PartialEq {
    fn from(x: u64) -> Self;
}

impl Datum for u64 {
    fn from(x: u64) -> u64 {
        x
    }
}

/// 64 bytes, serialized as a byte string (a length byte and the bytes).
#[derive(PartialEq)]
struct Bytes64([u8; 64]);

impl Datum for Bytes64 {
    fn from(x: u64) -> Bytes64 {
        let mut b = [0u8; 64];
        for (i, chunk) in b.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&mix(x ^ i as u64).to_le_bytes());
        }
        Bytes64(b)
    }
}

impl Serialize for Bytes64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes64, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Bytes64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("64 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes64, E> {
                v.try_into().map(Bytes64).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

#[inline(never)]
fn present_loop<K: Datum, V: Datum>(d: &EmDict<K, V>, pairs: &[(K, V)]) -> emds::Result<usize> {
    let mut found = 0;
    for (key, value) in pairs {
        found += usize::from(d.get(key)?.as_ref() == Some(value));
    }
    Ok(found)
}

#[inline(never)]
fn absent_loop<K: Datum, V: Datum>(d: &EmDict<K, V>, keys: &[K]) -> emds::Result<usize> {
    let mut found = 0;
    for key in keys {
        found += usize::from(d.contains_key(key)?);
    }
    Ok(found)
}

fn run<K: Datum, V: Datum>(n: u64, gets: u64, dir: &Path) -> emds::Result<()> {
    let key = |i: u64| K::from(mix(i));
    let value = |i: u64| V::from(mix(i).wrapping_mul(31) >> 3);
    let fresh = EmDict::<K, V>::open_read_only(dir).map_or(true, |d| d.len() as u64 != n);
    if fresh {
        let mut d: EmDict<K, V> = EmDict::open_with(dir, OpenOptions::new().truncate(true).durable(false))?;
        d.extend((0..n).map(|i| (key(i), value(i))))?;
        d.close()?;
    }
    let d: EmDict<K, V> = EmDict::open_read_only(dir)?;
    let pairs: Vec<(K, V)> = (0..gets).map(|i| mix(i ^ 0xabcd) % n).map(|i| (key(i), value(i))).collect();
    let absent: Vec<K> = (0..gets).map(|i| key(n + i % n)).collect();
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

fn main() -> emds::Result<()> {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "u64".into());
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N is a number"));
    let gets: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("GETS is a number"));
    let dir = args
        .next()
        .map_or_else(|| std::env::temp_dir().join(format!("emds-dict-get-{workload}-{n}")), std::path::PathBuf::from);
    match workload.as_str() {
        "u64" => run::<u64, u64>(n, gets, &dir),
        "bytes64" => run::<Bytes64, Bytes64>(n, gets, &dir),
        other => panic!("unknown workload {other:?}: u64 or bytes64"),
    }
}
