//! Crash consistency of the commit protocol: a child process killed with
//! SIGKILL at random moments, and power-loss images that mix each page of the
//! files as of a flush with the pages written after it. Every reopen must show
//! exactly the state of one completed flush.
//!
//! The workload is self-describing: at each flush it writes a catalog of its
//! live objects (address, length, content seed) and names the catalog and the
//! flush number in the root, so a reopened store can be verified on its own.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tests::{Rng, SPAWN, no_spawn, temp_dir};
use super::*;

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 512 << 10);
    o
}

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed);
    (0..len).map(|_| r.next() as u8).collect()
}

/// A random allocate/free/rewrite workload that records itself at every flush.
struct Workload {
    store: Store,
    rng: Rng,
    live: Vec<(u64, usize, u64)>,
    catalog: Option<(u64, usize)>,
    flushes: u64,
}

fn root_u64(root: &[u8; ROOT_SIZE], i: usize) -> u64 {
    u64::from_le_bytes(root[i * 8..i * 8 + 8].try_into().unwrap())
}

/// What a flush wrote: (flush number, catalog extent, live objects as (address, length, tag)).
type Catalog = (u64, Option<(u64, usize)>, Vec<(u64, usize, u64)>);

/// Reads the catalog a flush wrote.
fn read_catalog(store: &Store) -> Result<Catalog, String> {
    let root = store.root();
    let flushes = root_u64(root, 0);
    if flushes == 0 {
        return Ok((0, None, Vec::new()));
    }
    let (at, len) = (root_u64(root, 1), root_u64(root, 2) as usize);
    let bytes = store.read(at, len).map_err(|e| e.to_string())?;
    let live = bytes
        .chunks_exact(24)
        .map(|c| {
            let f = |i: usize| u64::from_le_bytes(c[i * 8..i * 8 + 8].try_into().unwrap());
            (f(0), f(1) as usize, f(2))
        })
        .collect();
    Ok((flushes, Some((at, len)), live))
}

/// Verifies a reopened store: every object holds its content and nothing leaks.
/// Returns the flush number the store is at.
fn verify(store: &Store) -> Result<u64, String> {
    let (flushes, catalog, live) = read_catalog(store)?;
    let mut objects: Vec<(u64, u64)> = live.iter().map(|&(a, len, _)| (a, len as u64)).collect();
    for &(a, len, seed) in &live {
        let got = store.read(a, len).map_err(|e| e.to_string())?;
        if got != content(seed, len) {
            return Err(format!("flush {flushes}: object at {a:#x} ({len} bytes) holds other bytes"));
        }
    }
    objects.extend(catalog.map(|(a, len)| (a, len as u64)));
    store.check(&objects).map_err(|e| format!("flush {flushes}: {e}"))?;
    Ok(flushes)
}

impl Workload {
    fn open(dir: &Path, seed: u64) -> Workload {
        let store = Store::open(dir, &options(), Kind::Raw, 0, 0).expect("open");
        let (flushes, catalog, live) = read_catalog(&store).expect("catalog");
        Workload { store, rng: Rng(seed), live, catalog, flushes }
    }

    fn step(&mut self) {
        let r = self.rng.below(100);
        if r < 50 || self.live.is_empty() {
            let len = match self.rng.below(20) {
                0 => 4097 + self.rng.below(200_000) as usize,
                _ => 1 + self.rng.below(3000) as usize,
            };
            let a = self.store.alloc(len).unwrap();
            let seed = self.rng.next();
            self.store.write(a, len).unwrap().copy_from_slice(&content(seed, len));
            self.live.push((a, len, seed));
        } else if r < 80 {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let (a, len, _) = self.live.swap_remove(i);
            self.store.free(a, len).unwrap();
        } else {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let (a, len, _) = self.live[i];
            let seed = self.rng.next();
            let target = if self.store.is_writable(a, len) {
                a
            } else {
                let b = self.store.alloc(len).unwrap();
                self.store.free(a, len).unwrap();
                b
            };
            self.store.write(target, len).unwrap().copy_from_slice(&content(seed, len));
            self.live[i] = (target, len, seed);
        }
    }

    /// One step that reports a full disk instead of panicking.
    fn step_checked(&mut self) -> Result<()> {
        let len = 1 + self.rng.below(5000) as usize;
        let a = self.store.alloc(len)?;
        let seed = self.rng.next();
        self.store.write(a, len)?.copy_from_slice(&content(seed, len));
        self.live.push((a, len, seed));
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some((a, len)) = self.catalog.take() {
            self.store.free(a, len)?;
        }
        let len = (self.live.len() * 24).max(1);
        let at = self.store.alloc(len)?;
        let bytes = self.store.write(at, len)?;
        for (i, &(a, l, s)) in self.live.iter().enumerate() {
            for (j, v) in [a, l as u64, s].into_iter().enumerate() {
                bytes[i * 24 + j * 8..i * 24 + j * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        self.catalog = Some((at, len));
        let mut root = [0u8; ROOT_SIZE];
        for (i, v) in [self.flushes + 1, at, len as u64].into_iter().enumerate() {
            root[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.store.commit(&root)?;
        self.flushes += 1;
        Ok(())
    }
}

/// The child of `kill_nine_at_random_moments`: runs the workload on the store
/// named by `EMDS_KILL_DIR` until killed, printing `F n` after flush n lands.
#[test]
#[ignore = "run by kill_nine_at_random_moments in a child process"]
fn kill_child() {
    let Ok(dir) = std::env::var("EMDS_KILL_DIR") else { return };
    let seed: u64 = std::env::var("EMDS_KILL_SEED").unwrap().parse().unwrap();
    let mut w = Workload::open(Path::new(&dir), seed);
    println!("F {}", w.flushes);
    loop {
        for _ in 0..w.rng.below(40) {
            w.step();
        }
        w.flush().unwrap();
        println!("F {}", w.flushes);
    }
}

#[test]
fn kill_nine_at_random_moments() {
    let _guard = SPAWN.write().unwrap_or_else(|e| e.into_inner());
    let seed = random_seed();
    let kills = std::env::var("EMDS_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    println!("kill test: seed {seed:#x}, {kills} kills");
    let dir = temp_dir("kill");
    let mut rng = Rng(seed);
    let mut last_seen = 0u64;
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "alloc::store::crash_tests::kill_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("EMDS_KILL_DIR", &dir)
            .env("EMDS_KILL_SEED", rng.next().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut flushed = None;
            for line in out.lines().map_while(|l| l.ok()) {
                if let Some(n) = line.strip_prefix("F ") {
                    flushed = n.trim().parse::<u64>().ok();
                }
            }
            flushed
        });
        // Early kills land inside open; later ones inside steps, growth and flushes.
        let wait = Duration::from_micros(rng.below(60_000));
        let start = Instant::now();
        while start.elapsed() < wait {
            std::thread::sleep(Duration::from_micros(500));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let completed = reader.join().unwrap().unwrap_or(last_seen);
        let store = Store::open(&dir, &options(), Kind::Raw, 0, 0).expect("reopen after kill");
        let at = verify(&store).unwrap_or_else(|e| panic!("round {round}, seed {seed:#x}: {e}"));
        assert!(
            at == completed || at == completed + 1,
            "round {round}, seed {seed:#x}: store at flush {at}, child had completed flush {completed}"
        );
        last_seen = at;
    }
    assert!(last_seen > 0, "no flush completed in {kills} rounds");
    fs::remove_dir_all(&dir).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Builds an image of a disk that lost power after `flushed` was durable and
/// while `current` was being written: every page of every file, and each file's
/// length and existence, from either side at random.
fn mix_image(flushed: &Path, current: &Path, image: &Path, rng: &mut Rng) {
    let _ = fs::remove_dir_all(image);
    fs::create_dir_all(image).unwrap();
    for e in fs::read_dir(current).unwrap() {
        let name = e.unwrap().file_name();
        let new = fs::read(current.join(&name)).unwrap();
        let old = fs::read(flushed.join(&name)).ok();
        let Some(old) = old else {
            // Created since the flush: absent, empty, cut short or whole.
            match rng.below(4) {
                0 => {}
                1 => fs::write(image.join(&name), b"").unwrap(),
                2 => fs::write(image.join(&name), &new[..rng.below(new.len() as u64 + 1) as usize]).unwrap(),
                _ => fs::write(image.join(&name), &new).unwrap(),
            }
            continue;
        };
        let len = if rng.below(2) == 0 { old.len() } else { new.len() };
        let mut out = Vec::with_capacity(len);
        for page in 0..len.div_ceil(PAGE_SIZE) {
            let range = page * PAGE_SIZE..((page + 1) * PAGE_SIZE).min(len);
            let src = if rng.below(2) == 0 { &old } else { &new };
            let other = if std::ptr::eq(src, &old) { &new } else { &old };
            let side = if src.len() >= range.end { src } else { other };
            out.extend_from_slice(&side[range]);
        }
        fs::write(image.join(&name), &out).unwrap();
    }
}

#[test]
fn power_loss_images_open_to_the_last_flush() {
    let _guard = no_spawn();
    let seed = random_seed();
    let images = std::env::var("EMDS_IMAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    println!("power-loss test: seed {seed:#x}, {images} images");
    let base = temp_dir("power");
    let (live, flushed, image) = (base.join("live"), base.join("flushed"), base.join("image"));
    let mut rng = Rng(seed);
    let mut made = 0;
    while made < images {
        let _ = fs::remove_dir_all(&live);
        let mut w = Workload::open(&live, rng.next());
        for _ in 0..1 + rng.below(4) {
            for _ in 0..rng.below(60) {
                w.step();
            }
            w.flush().unwrap();
        }
        let at = w.flushes;
        copy_dir(&live, &flushed);
        // Unflushed writes after the copy, growth into new segments included.
        for _ in 0..20 + rng.below(200) {
            w.step();
        }
        for _ in 0..6 {
            mix_image(&flushed, &live, &image, &mut rng);
            let store = Store::open(&image, &options(), Kind::Raw, 0, 0).expect("open image");
            let got = verify(&store).unwrap_or_else(|e| panic!("image {made}, seed {seed:#x}: {e}"));
            assert_eq!(got, at, "image {made}, seed {seed:#x}");
            // The image accepts further writes, over any stale files of the lost work.
            drop(store);
            let mut again = Workload::open(&image, rng.next());
            for _ in 0..30 {
                again.step();
            }
            again.flush().unwrap();
            drop(again);
            let store = Store::open(&image, &options(), Kind::Raw, 0, 0).unwrap();
            assert_eq!(verify(&store).unwrap(), at + 1);
            made += 1;
        }
        drop(w);
    }
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn long_workload_with_reopens_stays_consistent() {
    let _guard = no_spawn();
    let seed = std::env::var("EMDS_SEED").ok().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
    let seed = seed.unwrap_or_else(random_seed);
    println!("long workload: seed {seed:#x}");
    let dir = temp_dir("long");
    let mut rng = Rng(seed);
    let mut w = Workload::open(&dir, rng.next());
    for round in 0..400 {
        for _ in 0..rng.below(40) {
            w.step();
        }
        w.flush().unwrap();
        if std::env::var("EMDS_DEBUG").is_ok() {
            verify(&w.store).unwrap_or_else(|e| panic!("in memory, round {round}: {e}"));
        }
        if rng.below(8) == 0 {
            // Unflushed work, then a reopen that must discard it.
            for _ in 0..rng.below(40) {
                w.step();
            }
            let flushes = w.flushes;
            drop(w);
            w = Workload::open(&dir, rng.next());
            assert_eq!(verify(&w.store).unwrap_or_else(|e| panic!("round {round}, seed {seed:#x}: {e}")), flushes);
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// Mounts a small tmpfs for a full-disk test; `None` where this process may not mount.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, bytes: u64) -> Option<SmallDisk> {
        let dir = temp_dir(name);
        fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn full_disk_is_an_error_and_loses_nothing() {
    let _guard = no_spawn();
    let Some(disk) = SmallDisk::mount("full", 4 << 20) else {
        println!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let dir = disk.0.join("store");
    let mut w = Workload::open(&dir, 7);
    // Fill the disk; flush now and then, so some state is durable.
    let err = loop {
        let before = w.live.len();
        let len = 100_000;
        match w.store.alloc(len) {
            Ok(a) => {
                w.store.write(a, len).unwrap().fill(1);
                w.store.free(a, len).unwrap();
            }
            Err(e) => break e,
        }
        for _ in 0..20 {
            w.step_checked().map_err(|e| e.to_string()).ok();
        }
        if w.live.len() > before
            && let Err(e) = w.flush()
        {
            break e;
        }
    };
    println!("full disk gave: {err}");
    assert!(matches!(err, Error::Io { .. } | Error::Full { .. }), "{err}");
    // Reads still work; the last flush is what a reopen shows.
    let at = w.flushes;
    assert!(at > 0);
    for &(a, len, _) in w.live.iter().take(10) {
        w.store.read(a, len).unwrap();
    }
    drop(w);
    let store = Store::open(&dir, &options(), Kind::Raw, 0, 0).unwrap();
    assert_eq!(verify(&store).unwrap(), at);
}

/// One kind of damage done to a copy of a store.
fn damage(dir: &Path, rng: &mut Rng) -> String {
    let mut files: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| !p.ends_with("lock"));
    files.sort();
    let f = files[rng.below(files.len() as u64) as usize].clone();
    let mut bytes = fs::read(&f).unwrap();
    let name = f.file_name().unwrap().to_string_lossy().into_owned();
    let what = match rng.below(7) {
        0 | 1 if !bytes.is_empty() => {
            let at = rng.below(bytes.len() as u64 * 8);
            bytes[(at / 8) as usize] ^= 1 << (at % 8);
            format!("bit {at} of {name} flipped")
        }
        2 => {
            let len = rng.below(bytes.len() as u64 + 1) as usize;
            bytes.truncate(len);
            format!("{name} cut to {len} bytes")
        }
        3 if bytes.len() >= PAGE_SIZE => {
            let page = rng.below((bytes.len() / PAGE_SIZE) as u64) as usize;
            bytes[page * PAGE_SIZE..(page + 1) * PAGE_SIZE].fill(0);
            format!("page {page} of {name} zeroed")
        }
        4 if files.len() > 2 => {
            let other = files[rng.below(files.len() as u64) as usize].clone();
            bytes = fs::read(&other).unwrap();
            format!("{name} replaced by a copy of {}", other.display())
        }
        5 => {
            let len = rng.below(3 * PAGE_SIZE as u64) as usize;
            bytes = (0..len).map(|_| rng.next() as u8).collect();
            format!("{name} replaced by {len} random bytes")
        }
        _ => {
            fs::remove_file(&f).unwrap();
            return format!("{name} deleted");
        }
    };
    fs::write(&f, &bytes).unwrap();
    what
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let _guard = no_spawn();
    let seed = random_seed();
    println!("damage test: seed {seed:#x}");
    let base = temp_dir("damage");
    let (good, bad) = (base.join("good"), base.join("bad"));
    let mut rng = Rng(seed);
    let mut w = Workload::open(&good, 1);
    for _ in 0..5 {
        for _ in 0..80 {
            w.step();
        }
        w.flush().unwrap();
    }
    drop(w);
    let (mut refused, mut opened) = (0, 0);
    for round in 0..300 {
        copy_dir(&good, &bad);
        let what = damage(&bad, &mut rng);
        // Open, verify, check: each may fail with an error, none may panic.
        let result = std::panic::catch_unwind(|| match Store::open(&bad, &options(), Kind::Raw, 0, 0) {
            Err(e) => Err(e.to_string()),
            Ok(store) => verify(&store).map(|_| ()),
        });
        match result {
            Err(_) => panic!("round {round}, seed {seed:#x}: panic after {what}"),
            Ok(Err(_)) => refused += 1,
            Ok(Ok(())) => opened += 1,
        }
    }
    println!("{refused} damaged stores refused, {opened} opened and verified");
    fs::remove_dir_all(&base).unwrap();
}

/// Regression: a read-write open did not make the meta record it read
/// durable. Its writer may have died between the record's `pwrite` and its
/// `fdatasync` (§6.2 step 3), leaving it in the page cache only; the new
/// session then reused space that record freed (here a slab slot; also whole
/// pages, and an `EmList`/`EmVec` chunk's tail past a truncation), the kernel
/// wrote those pages back, and a power loss before the record reached the
/// disk left the previous record, which reaches that space, with it
/// overwritten. A disk image as such a power loss leaves it must open to one
/// of the two records with its objects intact.
#[test]
fn a_read_write_open_makes_the_record_it_read_durable_before_reusing_space() {
    let _guard = no_spawn();
    let dir = temp_dir("open-record-durable");
    let image = temp_dir("open-record-durable-image");
    let opts = options();
    let root_of = |a: u64, len: u64| {
        let mut r = [0u8; ROOT_SIZE];
        r[..8].copy_from_slice(&a.to_le_bytes());
        r[8..16].copy_from_slice(&len.to_le_bytes());
        r
    };
    let mut s = Store::open(&dir, &opts, Kind::Raw, 0, 0).unwrap();
    let keep = s.alloc(100).unwrap();
    s.write(keep, 100).unwrap().fill(0x11);
    let a = s.alloc(100).unwrap();
    s.write(a, 100).unwrap().fill(0xaa);
    s.commit(&root_of(a, 100)).unwrap();
    let record_before = fs::read(dir.join("meta")).unwrap();
    s.free(a, 100).unwrap();
    s.commit(&root_of(0, 0)).unwrap();
    drop(s);
    // As if that last commit's fdatasync never ran: its record is in the page
    // cache only, and the next session opens it.
    let mut s = Store::open(&dir, &opts, Kind::Raw, 0, 0).unwrap();
    let b = s.alloc(100).unwrap();
    assert_eq!(b, a, "the freed slot is reused");
    s.write(b, 100).unwrap().fill(0x55);
    // The power loss: every page written has reached the disk (the kernel
    // writes back at any time), the meta file only if the store synced it.
    fs::create_dir_all(&image).unwrap();
    for f in fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), image.join(f.file_name())).unwrap();
    }
    if s.open_syncs == 0 {
        fs::write(image.join("meta"), &record_before).unwrap();
    }
    drop(s);
    let img = Store::open(&image, &opts, Kind::Raw, 0, 0).unwrap();
    let (at, len) = (root_u64(img.root(), 0), root_u64(img.root(), 1));
    let mut objects = vec![(keep, 100)];
    if len > 0 {
        assert!(img.read(at, len as usize).unwrap().iter().all(|&x| x == 0xaa), "the object of the record");
        objects.push((at, len));
    }
    img.check(&objects).unwrap();
    drop(img);
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&image).unwrap();
}
