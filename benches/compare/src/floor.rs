//! The floors of the list workload on this machine: how long the disk takes
//! to make the bytes an `EmList<(u64, u64)>` of `n` elements writes durable,
//! and how long the CPU takes to postcard-encode the elements. A store cannot
//! beat the disk floor; the encode floor is the CPU part no serde store avoids.
//!
//! ```text
//! cargo run --release -- floor --n 100000000
//! ```

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use crate::data::{Pair, elements};
use crate::report::{EngineResult, Section, Unit, median};
use crate::sys::cpu_secs;
use crate::{Config, Res, fresh_dir};

/// Bytes per `pwrite` in the write loops.
const BLOCK: usize = 1 << 20;
/// Bytes between two `sync_file_range` calls in the overlapped loops.
const WRITEBACK: usize = 8 << 20;

/// Runs every floor `cfg.reps` times; the median of each is reported.
pub fn run(cfg: &Config) -> Res<Section> {
    let items: Vec<Pair> = elements(cfg.seed, cfg.n);
    let dir = fresh_dir(&cfg.dir, "floor")?;
    let mut out = EngineResult::new("floor");
    let n = items.len();

    // The output is allocated and touched before the clock starts: the floor
    // is the encoding, not the page faults of a fresh 2 GB buffer.
    // Not zeros: `vec![0; n]` maps untouched pages, faulted in by the first encode.
    let mut encoded = vec![0xffu8; n * MAX_PAIR];
    let mut used = 0;
    let (mut secs, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..cfg.reps {
        let (t, c) = (Instant::now(), cpu_secs());
        used = encode_all(&items, &mut encoded)?;
        secs.push(t.elapsed().as_secs_f64());
        cpus.push(cpu_secs() - c);
    }
    drop(encoded);
    out.rate("postcard encode into one buffer", n, secs);
    out.value("postcard encode: CPU ms", Unit::Millis, median(&cpus) * 1e3);
    // What an EmList writes: the encodings, a length code each, an offset per 16.
    let total = used + n + n.div_ceil(16) * 8;
    eprintln!("floor: {used} encoded bytes, {total} bytes as an EmList");
    let buf = vec![0x5au8; BLOCK];

    let path = dir.join("floor.bin");
    let phases: [(&str, &dyn Fn() -> Res<()>); 3] = [
        ("pwrite 1 MiB blocks + fsync", &|| write_file(&path, &buf, total, false)),
        ("pwrite + sync_file_range/8 MiB + fsync", &|| write_file(&path, &buf, total, true)),
        ("encode + pwrite + sync_file_range + fsync", &|| encode_and_write(&path, &items)),
    ];
    for (name, phase) in phases {
        let (mut secs, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..cfg.reps {
            let _ = std::fs::remove_file(&path);
            sync_all_files();
            let (t, c) = (Instant::now(), cpu_secs());
            phase()?;
            secs.push(t.elapsed().as_secs_f64());
            cpus.push(cpu_secs() - c);
        }
        out.rate(name, n, secs);
        out.value(&format!("{name}: CPU ms"), Unit::Millis, median(&cpus) * 1e3);
    }
    let _ = std::fs::remove_file(&path);
    if !cfg.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(Section { title: format!("floor: {n} × (u64, u64), {total} bytes"), results: vec![out] })
}

/// The longest postcard encoding of a pair: two 10-byte varints.
const MAX_PAIR: usize = 20;

/// Writes the postcard encodings of every element to `out`, back to back,
/// with postcard's fastest output (a slice); returns the bytes written.
fn encode_all(items: &[Pair], out: &mut [u8]) -> Res<usize> {
    let mut at = 0;
    for item in items {
        at += postcard::to_slice(item, &mut out[at..])?.len();
    }
    Ok(at)
}

/// Writes `total` bytes of `buf` repeated to a new file at `path`, then fsyncs it;
/// with `overlap`, starts the writeback of every 8 MiB as soon as it is written.
fn write_file(path: &Path, buf: &[u8], total: usize, overlap: bool) -> Res<()> {
    let file = File::create(path)?;
    let mut at = 0;
    while at < total {
        let take = buf.len().min(total - at);
        file.write_all_at(&buf[..take], at as u64)?;
        at += take;
        if overlap && at % WRITEBACK == 0 {
            start_writeback(&file, at - WRITEBACK, WRITEBACK);
        }
    }
    file.sync_all()?;
    Ok(())
}

/// Encodes the elements into an 8 MiB buffer, writes each full buffer and
/// starts its writeback, then fsyncs: one thread doing an EmList's work
/// without its bookkeeping.
fn encode_and_write(path: &Path, items: &[Pair]) -> Res<()> {
    let mut file = File::create(path)?;
    let mut buf = vec![0u8; WRITEBACK + MAX_PAIR];
    let (mut at, mut used) = (0, 0);
    for item in items {
        used += postcard::to_slice(item, &mut buf[used..])?.len();
        if used >= WRITEBACK {
            file.write_all(&buf[..used])?;
            start_writeback(&file, at, used);
            at += used;
            used = 0;
        }
    }
    file.write_all(&buf[..used])?;
    file.sync_all()?;
    Ok(())
}

fn start_writeback(file: &File, at: usize, len: usize) {
    // SAFETY: a valid open descriptor; sync_file_range only starts writeback.
    unsafe { libc::sync_file_range(file.as_raw_fd(), at as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Writes back every dirty page of the machine, so that one phase's leftovers
/// do not slow the next.
fn sync_all_files() {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
}
