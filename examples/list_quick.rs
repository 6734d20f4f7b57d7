//! A quick tour of `EmList` and `EmVec`, timed: push pairs into a list and
//! edges into a vector, flush, reopen, scan, and read at random.
//!
//! ```sh
//! cargo run --release --example list_quick -- [elements] [dir]
//! ```

use std::time::Instant;

use emds::{EmList, EmVec, OpenOptions};

fn main() -> emds::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let base = args.next().map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("emds-list-quick-{}", std::process::id()));
    let mut x = 0x5eed_u64;
    let mut next = move || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^ (z >> 31)
    };
    let rate = |what: &str, n: usize, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        println!("{what:<32} {:>10.2} M/s  ({s:.3} s)", n as f64 / s / 1e6);
    };

    // A list of (u64, u64) pairs.
    let pairs: Vec<(u64, u64)> = (0..n).map(|_| (next(), next())).collect();
    let mut list: EmList<(u64, u64)> = EmList::open_with(dir.join("list"), OpenOptions::new().truncate(true))?;
    let t = Instant::now();
    for &p in &pairs {
        list.push(p)?;
    }
    rate("EmList push", n, t);
    let t = Instant::now();
    list.flush()?;
    println!("{:<32} {:>10.3} s", "EmList durable flush", t.elapsed().as_secs_f64());
    list.close()?;
    let list: EmList<(u64, u64)> = EmList::open_read_only(dir.join("list"))?;
    let t = Instant::now();
    let mut sum = 0u64;
    for p in list.iter() {
        let (a, b) = p?;
        sum = sum.wrapping_add(a ^ b);
    }
    rate("EmList scan", n, t);
    assert_eq!(sum, pairs.iter().fold(0u64, |s, &(a, b)| s.wrapping_add(a ^ b)));
    let t = Instant::now();
    for _ in 0..n.min(1_000_000) {
        let i = (next() % n as u64) as usize;
        assert_eq!(list.get(i)?, Some(pairs[i]));
    }
    rate("EmList random get", n.min(1_000_000), t);
    let report = list.check()?;
    println!("{:<32} {:>10.2} B/element", "EmList space", report.bytes_live as f64 / n as f64);
    drop(list);

    // A vector of edges, scanned with zero copies.
    let edges: Vec<[u32; 2]> = (0..n).map(|_| [next() as u32, next() as u32]).collect();
    let mut vec: EmVec<[u32; 2]> = EmVec::open_with(dir.join("vec"), OpenOptions::new().truncate(true))?;
    let t = Instant::now();
    vec.extend_from_slice(&edges)?;
    vec.flush()?;
    rate("EmVec extend + durable flush", n, t);
    let t = Instant::now();
    let mut degree_sum = 0u64;
    for chunk in vec.chunks() {
        degree_sum += chunk.iter().map(|e| u64::from(e[0] & 1)).sum::<u64>();
    }
    rate("EmVec scan (chunks)", n, t);
    assert_eq!(degree_sum, edges.iter().map(|e| u64::from(e[0] & 1)).sum::<u64>());
    let t = Instant::now();
    for _ in 0..n.min(1_000_000) {
        let i = (next() % n as u64) as usize;
        assert_eq!(vec.get(i)?, Some(edges[i]));
    }
    rate("EmVec random get", n.min(1_000_000), t);
    vec.close()?;
    std::fs::remove_dir_all(&dir).map_err(|e| emds::Error::Io { op: "remove", path: dir, source: e })?;
    Ok(())
}
