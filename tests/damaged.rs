//! Damaged and foreign files: copies of real `EmDict`, `EmList` and `EmVec`
//! stores get bit flips (random, and in pages that hold data), truncations,
//! zeroed pages, swapped, deleted or foreign files, random garbage, appended
//! junk and forged meta records (random root bytes under a valid checksum).
//! Opening (read-only and read-write), reading, iterating, `check()` and a
//! write must each return `Ok` or a typed error: never a panic, an abort, a
//! SIGBUS, a runaway allocation or a hang. The stores are opened in child
//! processes, so a crash is seen as a failure of the case that caused it.
//! `EMDS_DAMAGE` sets the cases per structure (default 150).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Dict, List, META_RECORD, META_SLOT, PAGE, Rng, Subject, TempDir, Vector};
use emds::{EmDict, EmList, EmVec, Error, OpenOptions};

/// Builds a store of `S` with several flushes, removals and large values.
fn build<S: Subject>(dir: &Path, seed: u64) {
    let mut h = S::open(dir).unwrap();
    let mut rng = Rng(seed);
    let mut model = S::Model::default();
    for _ in 0..6 {
        for op in S::batch(&mut rng, &mut model) {
            S::apply(&mut h, &op).unwrap();
        }
        S::flush(&mut h).unwrap();
    }
}

fn forge_checksum(meta: &mut [u8], slot: usize) {
    let at = slot * META_SLOT;
    let sum = xxhash_rust::xxh3::xxh3_64(&meta[at..at + META_RECORD - 8]);
    meta[at + META_RECORD - 8..at + META_RECORD].copy_from_slice(&sum.to_le_bytes());
}

/// The slot holding the newer valid record (by transaction id).
fn current_slot(meta: &[u8]) -> usize {
    let txn = |s: usize| u64::from_le_bytes(meta[s * META_SLOT + 16..s * META_SLOT + 24].try_into().unwrap());
    if txn(0) >= txn(1) { 0 } else { 1 }
}

/// Does one kind of damage to the store in `dir`; `other` is a healthy store of
/// another structure and `twin` one of the same structure. Returns what was done.
fn damage(dir: &Path, other: &Path, twin: &Path, rng: &mut Rng) -> String {
    let files = common::store_files(dir);
    let segs: Vec<&PathBuf> = files.iter().filter(|p| !p.ends_with("meta")).collect();
    let pick = |rng: &mut Rng| -> PathBuf {
        if segs.is_empty() || rng.chance(30) {
            dir.join("meta")
        } else {
            segs[rng.below(segs.len() as u64) as usize].clone()
        }
    };
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    match rng.below(15) {
        0 | 1 => {
            let f = pick(rng);
            let mut b = fs::read(&f).unwrap();
            if b.is_empty() {
                return "nothing (empty file)".into();
            }
            let n = rng.range(1, 9);
            for _ in 0..n {
                let at = rng.below(b.len() as u64 * 8);
                b[(at / 8) as usize] ^= 1 << (at % 8);
            }
            fs::write(&f, &b).unwrap();
            format!("{n} random bits of {} flipped", name(&f))
        }
        2..=4 => {
            // Bits in pages that hold something: the structure's own pages, most likely.
            let f = pick(rng);
            let mut b = fs::read(&f).unwrap();
            let used: Vec<usize> =
                (0..b.len() / PAGE).filter(|&p| b[p * PAGE..(p + 1) * PAGE].iter().any(|&x| x != 0)).collect();
            if used.is_empty() {
                return "nothing (no used page)".into();
            }
            let page = used[rng.below(used.len() as u64) as usize];
            let n = rng.range(1, 4);
            for _ in 0..n {
                let at = rng.below(PAGE as u64 * 8) as usize;
                b[page * PAGE + at / 8] ^= 1 << (at % 8);
            }
            fs::write(&f, &b).unwrap();
            format!("{n} bits flipped in used page {page} of {}", name(&f))
        }
        5 => {
            let f = pick(rng);
            let len = fs::metadata(&f).unwrap().len();
            let to = if rng.chance(50) { rng.below(len + 1) } else { rng.below(len / PAGE as u64 + 1) * PAGE as u64 };
            fs::File::options().write(true).open(&f).unwrap().set_len(to).unwrap();
            format!("{} cut from {len} to {to} bytes", name(&f))
        }
        6 => {
            let f = pick(rng);
            let mut b = fs::read(&f).unwrap();
            if b.len() < PAGE {
                return "nothing (file shorter than a page)".into();
            }
            let page = rng.below((b.len() / PAGE) as u64) as usize;
            b[page * PAGE..(page + 1) * PAGE].fill(0);
            fs::write(&f, &b).unwrap();
            format!("page {page} of {} zeroed", name(&f))
        }
        7 => {
            let (a, b) = (pick(rng), pick(rng));
            if a == b {
                return "nothing (a file swapped with itself)".into();
            }
            let tmp = dir.join("swap.tmp");
            fs::rename(&a, &tmp).unwrap();
            fs::rename(&b, &a).unwrap();
            fs::rename(&tmp, &b).unwrap();
            format!("{} and {} swapped", name(&a), name(&b))
        }
        8 => {
            let (from, what) =
                if rng.chance(50) { (twin, "a twin store") } else { (other, "a store of another structure") };
            let theirs = common::store_files(from);
            let f = theirs[rng.below(theirs.len() as u64) as usize].clone();
            let to = if rng.chance(50) { dir.join(f.file_name().unwrap()) } else { pick(rng) };
            fs::copy(&f, &to).unwrap();
            format!("{} replaced by {} of {what}", name(&to), name(&f))
        }
        9 => {
            let f = pick(rng);
            let len = match rng.below(3) {
                0 => rng.below(64),
                1 => 2 * META_SLOT as u64,
                _ => fs::metadata(&f).map_or(0, |m| m.len()),
            };
            fs::write(&f, rng.bytes(len as usize)).unwrap();
            format!("{} replaced by {len} random bytes", name(&f))
        }
        10 => {
            let f = pick(rng);
            let junk = rng.small(3 * PAGE as u64);
            let mut b = fs::read(&f).unwrap();
            b.extend_from_slice(&junk);
            fs::write(&f, &b).unwrap();
            format!("{} random bytes appended to {}", junk.len(), name(&f))
        }
        11 => {
            let f = pick(rng);
            fs::remove_file(&f).unwrap();
            format!("{} deleted", name(&f))
        }
        12 | 13 => {
            // A forged record: random root bytes under a valid checksum, so only
            // the structure's own validation stands between them and a crash.
            let mut m = fs::read(dir.join("meta")).unwrap();
            let slot = current_slot(&m);
            let root = slot * META_SLOT + 80..slot * META_SLOT + 208;
            let what = if rng.chance(50) {
                let n = rng.range(1, 5);
                for _ in 0..n {
                    let at = root.start + rng.below(128) as usize;
                    m[at] = if rng.chance(50) { rng.next() as u8 } else { 0xff };
                }
                format!("{n} bytes of the current root forged")
            } else {
                let r = rng.bytes(128);
                m[root].copy_from_slice(&r);
                "the whole current root forged".into()
            };
            forge_checksum(&mut m, slot);
            fs::write(dir.join("meta"), &m).unwrap();
            format!("{what} (valid checksum)")
        }
        _ => {
            for f in &files {
                let len = fs::metadata(f).unwrap().len().min(1 << 20);
                fs::write(f, rng.bytes(len as usize)).unwrap();
            }
            "every file replaced by random bytes".into()
        }
    }
}

/// How a case ended, from the best to the worst acceptable.
fn outcome(r: Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(Error::Corrupted { .. }) => "Corrupted",
        Err(Error::Incompatible { .. }) => "Incompatible",
        Err(Error::Decode { .. }) => "Decode",
        Err(Error::WrongKind { .. }) => "WrongKind",
        Err(Error::Io { .. }) => "Io",
        Err(Error::Full { .. }) => "Full",
        Err(_) => "other error",
    }
}

/// Consumes an iterator of results up to `cap` items: the first error, or too
/// many items (garbage that never ends), is reported.
fn drain<T>(it: impl Iterator<Item = emds::Result<T>>, cap: u64) -> Result<(), Error> {
    let mut n = 0u64;
    for item in it {
        item?;
        n += 1;
        assert!(n <= cap, "an iterator yielded more than {cap} items from a store of that many bytes");
    }
    Ok(())
}

/// Everything a user might do with a damaged dict, read-only then read-write.
fn exercise_dict(dir: &Path, cap: u64) -> String {
    let read = |d: &EmDict<String, Vec<u8>>| -> Result<(), Error> {
        let _ = d.len();
        let _ = d.is_empty();
        for k in 0..40 {
            d.get(&common::dict_key(k))?;
            d.contains_key(&common::dict_key(k))?;
        }
        drain(d.iter(), cap)?;
        drain(d.keys(), cap)?;
        d.check().map(drop)
    };
    let ro = EmDict::<String, Vec<u8>>::open_with(dir, OpenOptions::new().read_only(true)).and_then(|d| read(&d));
    let rw = EmDict::<String, Vec<u8>>::open_with(dir, &common::small_segments()).and_then(|mut d| {
        let r = read(&d);
        d.insert("after damage".into(), vec![1; 5000])?;
        d.remove(&common::dict_key(3))?;
        d.flush()?;
        r
    });
    format!("{} {}", outcome(ro), outcome(rw))
}

fn exercise_list(dir: &Path, cap: u64) -> String {
    let read = |l: &EmList<Vec<u8>>| -> Result<(), Error> {
        let n = l.len();
        for i in [0, 1, n / 2, n.saturating_sub(1), n, n + 1, usize::MAX] {
            l.get(i)?;
        }
        drain(l.iter(), cap)?;
        l.check().map(drop)
    };
    let ro = EmList::<Vec<u8>>::open_with(dir, OpenOptions::new().read_only(true)).and_then(|l| read(&l));
    let rw = EmList::<Vec<u8>>::open_with(dir, &common::small_segments()).and_then(|mut l| {
        let r = read(&l);
        l.push(vec![2; 3000])?;
        if !l.is_empty() {
            l.set(0, vec![3; 10])?;
        }
        l.pop()?;
        l.flush()?;
        r
    });
    format!("{} {}", outcome(ro), outcome(rw))
}

fn exercise_vec(dir: &Path, cap: u64) -> String {
    let read = |v: &EmVec<u64>| -> Result<(), Error> {
        let n = v.len();
        for i in [0, 1, n / 2, n.saturating_sub(1), n, n + 1, usize::MAX] {
            let _ = common::vec_get(v, i);
        }
        let mut total = 0u64;
        for c in v.chunks() {
            total += c.len() as u64;
            assert!(total <= cap, "chunks() cover more elements than the store has bytes");
            std::hint::black_box(c.iter().fold(0u64, |a, &x| a ^ x));
        }
        v.check().map(drop)
    };
    let ro = EmVec::<u64>::open_with(dir, OpenOptions::new().read_only(true)).and_then(|v| read(&v));
    let rw = EmVec::<u64>::open_with(dir, &common::small_segments()).and_then(|mut v| {
        let r = read(&v);
        v.extend_from_slice(&[7; 3000])?;
        if !v.is_empty() {
            v.set(0, 9)?;
        }
        v.pop()?;
        v.flush()?;
        r
    });
    format!("{} {}", outcome(ro), outcome(rw))
}

/// The child: runs the cases `EMDS_FROM..EMDS_TO` under `EMDS_CASES`, saying
/// `S i` before case i and `D i <read-only outcome> <read-write outcome>` after.
fn run_child() {
    let cases = PathBuf::from(common::arg("EMDS_CASES"));
    let from: usize = common::arg("EMDS_FROM").parse().unwrap();
    let to: usize = common::arg("EMDS_TO").parse().unwrap();
    let kind = common::arg("EMDS_KIND");
    for i in from..to {
        let dir = cases.join(i.to_string());
        let cap: u64 =
            common::store_files(&dir).iter().map(|f| fs::metadata(f).map_or(0, |m| m.len())).sum::<u64>() + 64;
        common::say(format!("S {i}"));
        let got = match kind.as_str() {
            "dict" => exercise_dict(&dir, cap),
            "list" => exercise_list(&dir, cap),
            _ => exercise_vec(&dir, cap),
        };
        common::say(format!("D {i} {got}"));
    }
}

#[test]
#[ignore = "the child process of the damage tests; runs only when started by them"]
fn child() {
    if common::role().as_deref() == Some("damaged") {
        run_child();
    }
}

fn damaged<S: Subject, O: Subject>(cases: usize) {
    let seed = common::seed(&format!("damaged {}", S::NAME));
    let base = TempDir::new(&format!("damaged-{}", S::NAME));
    let (good, twin, other) = (base.join("good"), base.join("twin"), base.join("other"));
    build::<S>(&good, seed);
    build::<S>(&twin, seed ^ 0x55);
    build::<O>(&other, seed ^ 0xaa);
    let mut rng = Rng(seed);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let batch = 50;
    for first in (0..cases).step_by(batch) {
        let last = (first + batch).min(cases);
        let dirs = base.join("cases");
        let _ = fs::remove_dir_all(&dirs);
        let mut what = BTreeMap::new();
        for i in first..last {
            let d = dirs.join(i.to_string());
            common::copy_dir(&good, &d);
            what.insert(i, damage(&d, &other, &twin, &mut rng));
        }
        let mut next = first;
        while next < last {
            let mut cmd = common::child("child", "damaged");
            cmd.env("EMDS_CASES", &dirs)
                .env("EMDS_FROM", next.to_string())
                .env("EMDS_TO", last.to_string())
                .env("EMDS_KIND", S::NAME);
            let ended = common::start(cmd).wait(Duration::from_secs(60));
            let mut current = None;
            for line in &ended.lines {
                let mut parts = line.splitn(3, ' ');
                match (parts.next(), parts.next().and_then(|i| i.parse::<usize>().ok()), parts.next()) {
                    (Some("S"), Some(i), _) => current = Some(i),
                    (Some("D"), Some(i), Some(o)) => {
                        *outcomes.entry(o.to_string()).or_default() += 1;
                        current = None;
                        next = i + 1;
                    }
                    _ => {}
                }
            }
            if !ended.success() || current.is_some() {
                let i = current.unwrap_or(next);
                failures.push(format!("case {i} ({}): {}", what[&i], ended.describe()));
                next = i + 1;
            }
        }
    }
    println!("damaged {}: {cases} cases; outcomes (read-only, read-write): {outcomes:?}", S::NAME);
    assert!(
        failures.is_empty(),
        "damaged {}, seed {seed:#x}: {} failures:\n{}",
        S::NAME,
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn damaged_dict_stores_give_errors_not_crashes() {
    damaged::<Dict, List>(common::count("EMDS_DAMAGE", 150));
}

#[test]
fn damaged_list_stores_give_errors_not_crashes() {
    damaged::<List, Vector>(common::count("EMDS_DAMAGE", 150));
}

#[test]
fn damaged_vec_stores_give_errors_not_crashes() {
    damaged::<Vector, Dict>(common::count("EMDS_DAMAGE", 150));
}

/// Garbage in every segment but the one holding the table (whose checksum is in
/// the meta record): the structure opens, and everything it reads from the
/// data is damaged.
fn garbage_around_the_table(dir: &Path, seed: u64) {
    let meta = fs::read(dir.join("meta")).unwrap();
    let slot = current_slot(&meta) * META_SLOT;
    let table_addr = u64::from_le_bytes(meta[slot + 88..slot + 96].try_into().unwrap());
    let table_seg = format!("seg.{:06}", table_addr >> 40);
    let mut rng = Rng(seed);
    for f in common::store_files(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("seg.") && name != table_seg {
            let len = fs::metadata(&f).unwrap().len() as usize;
            fs::write(&f, rng.bytes(len)).unwrap();
        }
    }
}

/// Regression: EmList::push on a list whose data segments hold garbage panicked
/// (a debug assertion in `Region::run`, reached from `move_tail_to_end` with a
/// stored offset past the data) instead of returning an error; so did reads
/// through the in-memory tail of pushed elements (a slice past the buffer in
/// `Buffered::bytes`).
#[test]
fn emlist_push_on_garbage_data_is_an_error_not_a_panic() {
    let dir = TempDir::new("garbage-list");
    for seed in 0..24u64 {
        let store = dir.join(&seed.to_string());
        let mut l: EmList<Vec<u8>> = EmList::open_with(&store, &common::small_segments()).unwrap();
        let mut rng = Rng(seed);
        for i in 0..3000u64 {
            l.push(rng.small(if i % 100 == 0 { 20_000 } else { 300 })).unwrap();
        }
        l.close().unwrap();
        garbage_around_the_table(&store, seed);
        let Ok(mut l) = common::retry_locked(|| EmList::<Vec<u8>>::open_with(&store, &common::small_segments())) else {
            continue;
        };
        let n = l.len();
        let _ = l.get(n.saturating_sub(1));
        let _ = drain(l.iter(), 1 << 30);
        let _ = l.check();
        let _ = l.push(vec![1; 100]);
        // Reads that reach the in-memory tail of pushed elements through damaged offsets.
        for i in [0, n / 2, n.saturating_sub(1), n, n + 1] {
            let _ = l.get(i);
        }
        let _ = drain(l.iter(), 1 << 30);
        let _ = l.push(vec![3; 10]);
        let _ = l.set(n, vec![4; 7]);
        let _ = l.set(0, vec![2; 5000]);
        let _ = l.pop();
        let _ = l.truncate(n / 2);
        let _ = l.flush();
    }
}

/// The same for EmVec: reads, writes and `check()` on garbage data give values or errors.
#[test]
fn emvec_on_garbage_data_gives_values_or_errors() {
    let dir = TempDir::new("garbage-vec");
    for seed in 0..4u64 {
        let store = dir.join(&seed.to_string());
        let mut v: EmVec<u64> = EmVec::open_with(&store, &common::small_segments()).unwrap();
        v.extend_from_slice(&common::vec_run(seed, 300_000)).unwrap();
        v.close().unwrap();
        garbage_around_the_table(&store, seed);
        let Ok(mut v) = common::retry_locked(|| EmVec::<u64>::open_with(&store, &common::small_segments())) else {
            continue;
        };
        let _ = read_all_chunks(&v);
        let _ = v.check();
        let _ = v.push(1);
        let _ = v.set(7, 2);
        let _ = v.truncate(1000);
        let _ = v.flush();
    }
}

fn read_all_chunks(v: &EmVec<u64>) -> u64 {
    v.chunks().map(|c| c.iter().fold(0u64, |a, &x| a ^ x)).fold(0, |a, x| a ^ x)
}

/// The bytes at store address `addr` (segment file `addr >> 40`), read or written.
fn store_bytes(dir: &Path, addr: u64, len: usize, write: Option<&[u8]>) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(format!("seg.{:06}", addr >> 40));
    let f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let at = addr & ((1 << 40) - 1);
    if let Some(bytes) = write {
        f.write_all_at(bytes, at).unwrap();
    }
    let mut out = vec![0; len];
    f.read_exact_at(&mut out, at).unwrap();
    out
}

/// Rewrites entry `i` of the dict's first directory page (a bucket address
/// with its pages - 1 in the low bits, docs/DESIGN.md "EmDict pages") to
/// `forge(entry)`, and every checksum over it as a forger would: the page's
/// in the index, the index's in the root, the meta record's.
fn forge_directory_entry(dir: &Path, i: usize, forge: impl Fn(u64) -> u64) {
    let xxh = xxhash_rust::xxh3::xxh3_64;
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let mut meta = fs::read(dir.join("meta")).unwrap();
    let slot = current_slot(&meta);
    let root = slot * META_SLOT + 80;
    let (index_addr, dir_pages) = (word(&meta, root + 24), word(&meta, root + 32) as usize);
    let mut index = store_bytes(dir, index_addr, 16 * dir_pages, None);
    let page_addr = word(&index, 0);
    let mut page = store_bytes(dir, page_addr, PAGE, None);
    let entry = forge(word(&page, 8 * i));
    page[8 * i..8 * i + 8].copy_from_slice(&entry.to_le_bytes());
    store_bytes(dir, page_addr, PAGE, Some(&page));
    index[8..16].copy_from_slice(&xxh(&page).to_le_bytes());
    store_bytes(dir, index_addr, index.len(), Some(&index));
    meta[root + 40..root + 48].copy_from_slice(&xxh(&index).to_le_bytes());
    forge_checksum(&mut meta, slot);
    fs::write(dir.join("meta"), &meta).unwrap();
}

/// A forged page count in a directory entry (under valid checksums): more
/// pages than a bucket may have (8), or pages outside the store (or past the
/// end of the address space, whose addresses overflowed: a panic in
/// `page_of`), is `Corrupted` at open; a count that is
/// allowed but wrong (a one-page bucket said to have four, the other three
/// pages whatever follows it) gives values or errors on every read and
/// write, never a panic, and `check()` reports it.
#[test]
fn a_forged_bucket_page_count_is_an_error_not_a_panic() {
    let base = TempDir::new("forged-k");
    let (healthy, dir) = (base.join("healthy"), base.join("forged"));
    let mut d: EmDict<u64, u64> = EmDict::open(&healthy).unwrap();
    // One bucket of one page, then more buckets beside it.
    d.extend((0..100u64).map(|k| (k, !k))).unwrap();
    d.close().unwrap();
    let forged = [
        |e: u64| e | 8,
        |e: u64| e | 0xfff,
        |e: u64| e | 3,
        |e: u64| (e & !0xfff) + 0x800,
        // Eight pages at the top of the address space: its pages' addresses overflow.
        |_: u64| !0xff8,
        // Eight pages of which the last lie past the end of the store.
        |e: u64| (e & !0xfff) + (1 << 39) - 0x2000 + 7,
    ];
    for (case, forge) in forged.into_iter().enumerate() {
        let _ = fs::remove_dir_all(&dir);
        common::copy_dir(&healthy, &dir);
        forge_directory_entry(&dir, 0, forge);
        let opened = EmDict::<u64, u64>::open_with(&dir, OpenOptions::new().read_only(true));
        if case != 2 {
            assert!(matches!(opened, Err(Error::Corrupted { .. })), "case {case}: {opened:?}");
            continue;
        }
        let d = opened.unwrap();
        for k in 0..200 {
            let _ = d.get(&k);
        }
        let _ = drain(d.iter(), 1 << 20);
        assert!(matches!(d.check(), Err(Error::Corrupted { .. })), "case {case}: check passed");
        drop(d);
        let mut d = EmDict::<u64, u64>::open(&dir).unwrap();
        for k in 0..300 {
            let _ = d.insert(k, k);
            let _ = d.remove(&(k / 2));
        }
        let _ = d.flush();
        assert!(d.check().is_err(), "case {case}: check passed after writes");
    }
}
