//! The allocator against a model: random allocations, frees, in-place writes,
//! copy-on-write rewrites, commits and reopens, checked against an in-memory
//! map of what each object holds, ending with `check()` and no leaked page.

use std::collections::BTreeMap;

use super::*;

pub(crate) use crate::test_util::{Rng, temp_dir};

/// Tests that spawn processes hold this exclusively: a child forked while another
/// test holds a store's lock keeps the lock until it execs, and would make that
/// test's reopen fail with `Locked`. Every other test that reopens holds it shared.
pub(crate) static SPAWN: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub(crate) fn no_spawn() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWN.read().unwrap_or_else(|e| e.into_inner())
}

fn small_segments() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 1 << 20);
    o
}

fn open(dir: &Path) -> Store {
    Store::open(dir, &small_segments(), Kind::Raw, 0, 0).expect("open")
}

/// Small segments, and every free page released after each commit (not only
/// runs of 64 KiB), so that reuse of released space happens all the time.
fn releasing_every_page() -> OpenOptions {
    let mut o = small_segments();
    o.release_threshold(PAGE);
    o
}

fn content(id: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(id);
    (0..len).map(|_| r.next() as u8).collect()
}

/// Object id -> (address, length, content seed).
type Model = BTreeMap<u64, (u64, usize, u64)>;

fn verify(store: &Store, model: &Model) {
    for (id, &(a, len, seed)) in model {
        assert_eq!(store.read(a, len).unwrap(), &content(seed, len)[..], "object {id} at {a:#x}");
    }
    let objects: Vec<(u64, u64)> = model.values().map(|&(a, len, _)| (a, len as u64)).collect();
    store.check(&objects).expect("check");
}

fn random_len(r: &mut Rng) -> usize {
    match r.below(100) {
        0..=69 => 1 + r.below(2048) as usize,
        70..=94 => 2049 + r.below(20_000) as usize,
        _ => 1 + r.below(300_000) as usize,
    }
}

fn run_model(seed: u64, steps: usize) {
    let _guard = no_spawn();
    // Odd seeds release every free page after each commit, even ones only runs of 64 KiB.
    let opts = if seed % 2 == 1 { releasing_every_page() } else { small_segments() };
    let open = |dir: &Path| Store::open(dir, &opts, Kind::Raw, 0, 0).expect("open");
    println!("allocator model: seed {seed:#x}, {steps} steps, release_min {}", opts.release_min);
    let dir = temp_dir(&format!("model-{seed:x}"));
    let mut store = open(&dir);
    let mut r = Rng(seed);
    let (mut model, mut committed) = (Model::new(), Model::new());
    let mut next_id = 0u64;
    for step in 0..steps {
        match r.below(100) {
            0..=44 => {
                let len = random_len(&mut r);
                let a = store.alloc(len).unwrap();
                let seed = r.next();
                store.write(a, len).unwrap().copy_from_slice(&content(seed, len));
                model.insert(next_id, (a, len, seed));
                next_id += 1;
            }
            45..=69 if !model.is_empty() => {
                let id = *model.keys().nth(r.below(model.len() as u64) as usize).unwrap();
                let (a, len, _) = model.remove(&id).unwrap();
                store.free(a, len).unwrap();
            }
            70..=89 if !model.is_empty() => {
                // Rewrite: in place if allocated since the commit, else copy-on-write.
                let id = *model.keys().nth(r.below(model.len() as u64) as usize).unwrap();
                let (a, len, _) = model[&id];
                let seed = r.next();
                let target = if store.is_writable(a, len) {
                    a
                } else {
                    let b = store.alloc(len).unwrap();
                    store.free(a, len).unwrap();
                    b
                };
                store.write(target, len).unwrap().copy_from_slice(&content(seed, len));
                model.insert(id, (target, len, seed));
            }
            90..=95 => {
                store.commit(&[step as u8; ROOT_SIZE]).unwrap();
                committed = model.clone();
                verify(&store, &model);
            }
            96..=99 => {
                // Reopen without a commit: everything since the last commit is gone.
                drop(store);
                store = open(&dir);
                model = committed.clone();
                verify(&store, &model);
            }
            _ => {}
        }
    }
    store.commit(&[0; ROOT_SIZE]).unwrap();
    verify(&store, &model);
    drop(store);
    let store = open(&dir);
    verify(&store, &model);
    // Free everything: after a commit, every backed page is free again.
    drop(store);
    let mut store = open(&dir);
    for &(a, len, _) in model.values() {
        store.free(a, len).unwrap();
    }
    store.commit(&[0; ROOT_SIZE]).unwrap();
    let report = store.check(&[]).unwrap();
    let state_pages = store.state_extent.map_or(0, |(_, n)| n);
    assert_eq!(report.bytes_free + state_pages * PAGE, report.bytes_backed, "leaked bytes after freeing all");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn allocator_matches_model() {
    let base = std::env::var("EMDS_SEED").ok().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
    let base = base.unwrap_or_else(random_seed);
    for i in 0..4 {
        run_model(base.wrapping_add(i), 1500);
    }
}

#[test]
fn committed_space_is_not_reused_before_the_commit() {
    let _guard = no_spawn();
    let dir = temp_dir("cow");
    let mut s = open(&dir);
    let a = s.alloc_pages(1).unwrap();
    s.commit(&[1; ROOT_SIZE]).unwrap();
    assert!(!s.is_writable(a, 4096));
    assert!(s.write(a, 1).is_err());
    s.free_pages(a, 1).unwrap();
    let b = s.alloc_pages(1).unwrap();
    assert_ne!(a, b, "a page the committed state reaches was handed out again");
    s.commit(&[2; ROOT_SIZE]).unwrap();
    s.check(&[(b, 4096)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn second_writer_and_reader_are_refused() {
    let _guard = no_spawn();
    let dir = temp_dir("locks");
    let s = open(&dir);
    assert!(matches!(Store::open(&dir, &small_segments(), Kind::Raw, 0, 0), Err(Error::Locked { .. })));
    let ro = small_segments().read_only(true).clone();
    assert!(matches!(Store::open(&dir, &ro, Kind::Raw, 0, 0), Err(Error::Locked { .. })));
    drop(s);
    let r1 = Store::open(&dir, &ro, Kind::Raw, 0, 0).unwrap();
    let r2 = Store::open(&dir, &ro, Kind::Raw, 0, 0).unwrap();
    assert!(matches!(Store::open(&dir, &small_segments(), Kind::Raw, 0, 0), Err(Error::Locked { .. })));
    assert!(matches!(r1.writable(), Err(Error::ReadOnly { .. })));
    drop((r1, r2));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_kind_is_refused() {
    let _guard = no_spawn();
    let dir = temp_dir("kind");
    drop(open(&dir));
    let e = Store::open(&dir, &small_segments(), Kind::Dict, 0, 0).unwrap_err();
    assert!(matches!(e, Error::WrongKind { .. }), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_newest_meta_falls_back_to_the_previous_commit() {
    let _guard = no_spawn();
    let dir = temp_dir("torn");
    let mut s = open(&dir);
    let a = s.alloc(100).unwrap();
    s.write(a, 100).unwrap().fill(7);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    let b = s.alloc(100).unwrap();
    s.write(b, 100).unwrap().fill(8);
    s.commit(&[2; ROOT_SIZE]).unwrap();
    let txn = s.committed.txn;
    drop(s);
    // Tear the newest record: half of it zeroed.
    let f = File::options().write(true).open(dir.join("meta")).unwrap();
    f.write_all_at(&[0u8; 128], (txn % 2) * SLOT_SIZE as u64 + 100).unwrap();
    let s = open(&dir);
    assert_eq!(s.root(), &[1; ROOT_SIZE]);
    s.check(&[(a, 100)]).unwrap();
    drop(s);
    // Both records damaged: a typed error, not a panic.
    f.write_all_at(&[0xffu8; 64], ((txn + 1) % 2) * SLOT_SIZE as u64 + 20).unwrap();
    assert!(matches!(Store::open(&dir, &small_segments(), Kind::Raw, 0, 0), Err(Error::Corrupted { .. })));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_sync_poisons_the_handle_and_loses_nothing_flushed() {
    let _guard = no_spawn();
    let dir = temp_dir("poison");
    let mut s = open(&dir);
    let a = s.alloc(64).unwrap();
    s.write(a, 64).unwrap().fill(1);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    let b = s.alloc(64).unwrap();
    s.write(b, 64).unwrap().fill(2);
    s.fail_next_sync = true;
    assert!(matches!(s.commit(&[2; ROOT_SIZE]), Err(Error::Io { .. })));
    assert!(matches!(s.alloc(8), Err(Error::Poisoned { .. })));
    assert!(matches!(s.write(b, 64), Err(Error::Poisoned { .. })));
    assert!(matches!(s.commit(&[3; ROOT_SIZE]), Err(Error::Poisoned { .. })));
    assert_eq!(s.read(a, 64).unwrap(), &[1; 64][..], "reads go on");
    drop(s);
    let s = open(&dir);
    assert_eq!(s.root(), &[1; ROOT_SIZE]);
    s.check(&[(a, 64)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Bytes of disk the store's segment files hold (`st_blocks * 512`).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let segs =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap()).filter(|e| e.file_name().to_string_lossy().starts_with("seg."));
    segs.map(|e| e.metadata().unwrap().blocks() * 512).sum()
}

/// Whether the file system under `dir` can punch holes (tmpfs and ext4 can).
fn can_punch(dir: &Path) -> bool {
    let path = dir.join("probe");
    let f = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    os::preallocate(&f, 0, 8192).unwrap();
    let ok = os::punch_hole(&f, 0, 4096).is_ok();
    fs::remove_file(&path).unwrap();
    ok
}

/// Bytes of `lo..hi` that may have been released (not reserved since).
fn unreserved_in(s: &Store, lo: u64, hi: u64) -> u64 {
    s.unreserved.overlaps(lo, (hi - lo) / PAGE).iter().map(|&(_, n)| n * PAGE).sum()
}

/// The 2 MiB block of its segment that holds address `a`, up to the backed end.
fn block_around(s: &Store, a: u64) -> (u64, u64) {
    let (seg, off) = split(a);
    let lo = off / HUGE * HUGE;
    (addr(seg, lo), addr(seg, (lo + HUGE).min(s.segs[seg].info.backed)))
}

/// Every free page released after each commit, in segments of 4 MiB (two
/// 2 MiB blocks each).
fn releasing_in_4_mib_segments() -> OpenOptions {
    let mut o = releasing_every_page();
    o.segment_sizes(4 << 20, 4 << 20);
    o
}

#[test]
fn freed_space_is_released_after_the_commit_and_reserved_again_for_reuse() {
    let _guard = no_spawn();
    let dir = temp_dir("release");
    let mut s = open(&dir);
    let big = 2 << 20;
    let a = s.alloc(big).unwrap();
    s.write(a, big).unwrap().copy_from_slice(&content(1, big));
    s.commit(&[1; ROOT_SIZE]).unwrap();
    let loaded = allocated(&dir);
    s.free(a, big).unwrap();
    // Pending: the committed state reaches it, so none of it is released yet
    // (the first commit released only the unused part of its growth).
    assert_eq!(unreserved_in(&s, a, a + big as u64), 0);
    assert_eq!(s.read(a, big).unwrap(), &content(1, big)[..]);
    s.commit(&[2; ROOT_SIZE]).unwrap();
    let report = s.check(&[]).unwrap();
    if !can_punch(&dir) {
        println!("skipped: this file system cannot punch holes");
        assert_eq!(report.bytes_released, 0);
        return;
    }
    assert!(report.bytes_released >= big as u64, "{report:?}");
    // Give or take the allocator state's pages (the first commit released its unused growth).
    let after = allocated(&dir);
    assert!(after + big as u64 <= loaded + 2 * PAGE, "{after} bytes after release, {loaded} before");
    // Reuse: the same pages (first fit), reserved again before they are written.
    let b = s.alloc(big).unwrap();
    assert_eq!(a, b);
    assert!(allocated(&dir) >= loaded, "reused pages are reserved again");
    assert!(s.read(b, big).unwrap().iter().all(|&x| x == 0), "a released page reads as zeros");
    s.write(b, big).unwrap().copy_from_slice(&content(2, big));
    s.commit(&[3; ROOT_SIZE]).unwrap();
    let r = s.check(&[(b, big as u64)]).unwrap();
    assert!(r.bytes_released < big as u64, "the reused pages no longer count as released: {r:?}");
    drop(s);
    let s = open(&dir);
    assert_eq!(s.read(b, big).unwrap(), &content(2, big)[..]);
    s.check(&[(b, big as u64)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reuse_of_released_space_reserves_the_whole_huge_page_around_it() {
    // The kernel may cache a 2 MiB block in one folio, and a write fault on it
    // claims blocks for every hole in the folio: a released page left beside a
    // reused one would make that fault a SIGBUS on a full disk.
    let _guard = no_spawn();
    let dir = temp_dir("release-huge");
    let o = releasing_in_4_mib_segments();
    let mut s = Store::open(&dir, &o, Kind::Raw, 0, 0).unwrap();
    let big = 3 << 20;
    let a = s.alloc(big).unwrap();
    s.write(a, big).unwrap().fill(7);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free(a, big).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    if !can_punch(&dir) {
        println!("skipped: this file system cannot punch holes");
        return;
    }
    let released = s.check(&[]).unwrap().bytes_released;
    assert!(released >= big as u64, "{released} bytes released");
    let before = allocated(&dir);
    // Whichever page the allocator hands out, the whole 2 MiB block around it
    // (up to the backed end) must be reserved again.
    let blocks: Vec<(u64, u64, u64)> = (0..s.segs[0].info.backed.div_ceil(HUGE))
        .map(|k| block_around(&s, addr(0, k * HUGE)))
        .map(|(lo, hi)| (lo, hi, unreserved_in(&s, lo, hi)))
        .collect();
    let b = s.alloc(PAGE as usize).unwrap();
    let &(lo, hi, holes) = blocks.iter().find(|&&(lo, hi, _)| (lo..hi).contains(&b)).expect("a block holds the page");
    assert!(holes >= HUGE / 4, "{holes} bytes released in {lo:#x}..{hi:#x}");
    assert_eq!(unreserved_in(&s, lo, hi), 0, "every page of the block around {b:#x} is reserved again");
    let grown = allocated(&dir) - before;
    assert!(grown >= holes, "{grown} bytes reserved for {holes} bytes of holes in {lo:#x}..{hi:#x}");
    s.write(b, PAGE as usize).unwrap().fill(9);
    s.commit(&[3; ROOT_SIZE]).unwrap();
    // The pages reserved only for the widening are released again.
    let r = s.check(&[(b, PAGE)]).unwrap();
    assert!(r.bytes_released >= released - (HUGE + PAGE), "{r:?}");
    drop(s);
    let s = Store::open(&dir, &o, Kind::Raw, 0, 0).unwrap();
    assert!(s.read(b, PAGE as usize).unwrap().iter().all(|&x| x == 9));
    fs::remove_dir_all(&dir).unwrap();
}

/// A new slot in a committed slab page is a write fault on a page whose
/// neighbours may have been released since it was allocated; in a large
/// folio that fault claims blocks for the holes too (a SIGBUS on a full
/// disk), so the 2 MiB block around the slab page is reserved again first,
/// as for pages taken from the free extents.
#[test]
fn a_slot_in_a_committed_slab_page_reserves_the_released_space_around_it() {
    let _guard = no_spawn();
    let dir = temp_dir("release-slab");
    let o = releasing_in_4_mib_segments();
    let mut s = Store::open(&dir, &o, Kind::Raw, 0, 0).unwrap();
    let small = s.alloc(100).unwrap();
    s.write(small, 100).unwrap().fill(1);
    let big = 1 << 20;
    let a = s.alloc(big).unwrap();
    s.write(a, big).unwrap().fill(7);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free(a, big).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    if !can_punch(&dir) {
        println!("skipped: this file system cannot punch holes");
        return;
    }
    let page = small & !(PAGE - 1);
    let (lo, hi) = block_around(&s, page);
    assert!((lo..hi).contains(&a), "the freed object is in the slab page's block");
    assert!(unreserved_in(&s, lo, hi) >= big as u64, "the freed object was released");
    let b = s.alloc(100).unwrap();
    assert_eq!(b & !(PAGE - 1), page, "the new slot is in the committed slab page");
    assert_eq!(unreserved_in(&s, lo, hi), 0, "every page of the block around the slab page is reserved again");
    s.write(b, 100).unwrap().fill(2);
    s.commit(&[3; ROOT_SIZE]).unwrap();
    s.check(&[(small, 100), (b, 100)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// The same for a write past the committed data of an object the committed
/// state reaches (an `EmList` chunk's tail, `write_unreached`).
#[test]
fn a_write_into_a_committed_tail_reserves_the_released_space_around_it() {
    let _guard = no_spawn();
    let dir = temp_dir("release-tail");
    let o = releasing_in_4_mib_segments();
    let mut s = Store::open(&dir, &o, Kind::Raw, 0, 0).unwrap();
    let chunk = s.alloc(4 * PAGE as usize).unwrap();
    s.write(chunk, PAGE as usize).unwrap().fill(1);
    let big = 1 << 20;
    let a = s.alloc(big).unwrap();
    s.write(a, big).unwrap().fill(7);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free(a, big).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    if !can_punch(&dir) {
        println!("skipped: this file system cannot punch holes");
        return;
    }
    let (lo, hi) = block_around(&s, chunk);
    assert!((lo..hi).contains(&a), "the freed object is in the chunk's block");
    assert!(unreserved_in(&s, lo, hi) >= big as u64, "the freed object was released");
    s.write_unreached(chunk + PAGE, PAGE as usize).unwrap().fill(2);
    assert_eq!(unreserved_in(&s, lo, hi), 0, "every page of the block around the tail is reserved again");
    s.commit(&[3; ROOT_SIZE]).unwrap();
    s.check(&[(chunk, 4 * PAGE)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_reservation_of_released_space_changes_nothing() {
    let _guard = no_spawn();
    let dir = temp_dir("reserve-fail");
    let mut s = Store::open(&dir, &releasing_every_page(), Kind::Raw, 0, 0).unwrap();
    let keep = s.alloc(3000).unwrap();
    s.write(keep, 3000).unwrap().fill(5);
    let a = s.alloc_pages(40).unwrap();
    s.write(a, 4096).unwrap().fill(6);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free_pages(a, 40).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    let before = s.check(&[(keep, 3000)]).unwrap();
    if before.bytes_released == 0 {
        println!("skipped: this file system cannot punch holes");
        return;
    }
    s.fail_next_reserve = true;
    match s.alloc_pages(40) {
        Err(Error::Io { path, source, .. }) => {
            assert!(path.starts_with(&dir) && path.to_string_lossy().contains("seg."), "{path:?}");
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
        }
        other => panic!("expected a full-disk error, got {other:?}"),
    }
    assert_eq!(s.check(&[(keep, 3000)]).unwrap(), before, "a failed reservation changed the allocator");
    let b = s.alloc_pages(40).unwrap();
    s.write(b, 40 * 4096).unwrap().fill(7);
    s.commit(&[3; ROOT_SIZE]).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(s.read(keep, 3000).unwrap(), &[5; 3000][..]);
    assert_eq!(s.read(b, 40 * 4096).unwrap(), &[7; 40 * 4096][..]);
    s.check(&[(keep, 3000), (b, 40 * 4096)]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reopened_store_counts_free_space_as_released_until_reserved() {
    let _guard = no_spawn();
    let dir = temp_dir("reopen-release");
    let mut s = open(&dir);
    let a = s.alloc_pages(64).unwrap();
    s.write(a, 4096).unwrap().fill(1);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free_pages(a, 64).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    drop(s);
    // Which free pages the last session punched is not recorded: all count as released.
    let mut s = open(&dir);
    let r = s.check(&[]).unwrap();
    assert_eq!(r.bytes_released, r.bytes_free);
    let b = s.alloc_pages(64).unwrap();
    s.write(b, 64 * 4096).unwrap().fill(2);
    s.commit(&[3; ROOT_SIZE]).unwrap();
    let r = s.check(&[(b, 64 * 4096)]).unwrap();
    assert!(r.bytes_released < r.bytes_free || r.bytes_free == 0, "{r:?}");
    drop(s);
    let s = open(&dir);
    assert_eq!(s.read(b, 64 * 4096).unwrap(), &[2; 64 * 4096][..]);
    fs::remove_dir_all(&dir).unwrap();
}

/// The commit of a transaction that grew the store releases the unused part
/// of the last growth step (up to 1/16 of the backed bytes, §4), which used
/// to stay backed until `close`; reusing it later reserves it again.
#[test]
fn the_commit_after_growth_releases_the_unused_part_of_the_step() {
    let _guard = no_spawn();
    let dir = temp_dir("release-growth");
    let mut s = Store::open(&dir, &OpenOptions::new(), Kind::Raw, 0, 0).unwrap();
    let mut pages = Vec::new();
    // One page at a time until an allocation makes a step of at least 64 pages.
    loop {
        let backed = s.backed_bytes();
        let a = s.alloc_pages(1).unwrap();
        s.write(a, PAGE as usize).unwrap().fill(pages.len() as u8);
        pages.push(a);
        if s.backed_bytes() - backed >= 64 * PAGE {
            break;
        }
    }
    let objects: Vec<(u64, u64)> = pages.iter().map(|&a| (a, PAGE)).collect();
    let tail = s.free.pages();
    assert!(tail >= 63, "{tail} free pages after the step");
    s.commit(&[1; ROOT_SIZE]).unwrap();
    let r = s.check(&objects).unwrap();
    if !can_punch(&dir) {
        println!("skipped: this file system cannot punch holes");
        return;
    }
    assert_eq!(r.bytes_released, r.bytes_free, "every free page is released: {r:?}");
    assert!(r.bytes_free >= (tail - 2) * PAGE, "the unused step is free: {r:?}");
    // A few blocks more at most: the file system's own (ext4's extent tree).
    let live = r.bytes_backed - r.bytes_free;
    assert!(allocated(&dir) <= live + 8 * PAGE, "{} bytes on disk for {live} bytes in use", allocated(&dir));
    // Reuse: the pages are reserved again, with the 2 MiB block around them.
    let b = s.alloc_pages(1).unwrap();
    let (lo, hi) = block_around(&s, b);
    assert_eq!(unreserved_in(&s, lo, hi), 0, "the block around {b:#x} is reserved again");
    s.write(b, PAGE as usize).unwrap().fill(0xee);
    s.commit(&[2; ROOT_SIZE]).unwrap();
    drop(s);
    let s = Store::open(&dir, &OpenOptions::new(), Kind::Raw, 0, 0).unwrap();
    for (i, &a) in pages.iter().enumerate() {
        assert!(s.read(a, PAGE as usize).unwrap().iter().all(|&x| x == i as u8), "page {i} at {a:#x}");
    }
    assert!(s.read(b, PAGE as usize).unwrap().iter().all(|&x| x == 0xee));
    let mut objects = objects;
    objects.push((b, PAGE));
    s.check(&objects).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Pages freed one by one at a commit are listed in its allocator state as
/// the runs they form, not one extent each: a removal from a dict frees every
/// bucket page on its own, and its state took 16 bytes per page.
#[test]
fn pages_freed_one_by_one_are_listed_as_runs() {
    let _guard = no_spawn();
    let dir = temp_dir("state-runs");
    let mut s = open(&dir);
    let pages: Vec<u64> = (0..2000).map(|_| s.alloc_pages(1).unwrap()).collect();
    for &a in &pages {
        s.write(a, PAGE as usize).unwrap().fill(1);
    }
    s.commit(&[1; ROOT_SIZE]).unwrap();
    // Every other page first, then the rest, in reverse: the order does not matter.
    for &a in pages.iter().step_by(2).chain(pages.iter().skip(1).step_by(2).rev()) {
        s.free_pages(a, 1).unwrap();
    }
    s.commit(&[2; ROOT_SIZE]).unwrap();
    assert_eq!(s.committed.state_len, PAGE, "{} pages of allocator state", s.committed.state_len / PAGE);
    s.check(&[]).unwrap();
    drop(s);
    let s = open(&dir);
    let r = s.check(&[]).unwrap();
    assert_eq!(r.bytes_free + s.committed.state_len, r.bytes_backed, "{r:?}");
    fs::remove_dir_all(&dir).unwrap();
}

/// `slide_down` moves pages of the transaction down over the free run right
/// below them, reserving it again if it was released, and frees as many
/// pages behind them; committed pages never move.
#[test]
fn pages_of_the_transaction_slide_down_over_the_free_run_below_them() {
    let _guard = no_spawn();
    let dir = temp_dir("slide");
    let mut s = Store::open(&dir, &releasing_in_4_mib_segments(), Kind::Raw, 0, 0).unwrap();
    let keep = s.alloc_pages(1).unwrap();
    s.write(keep, PAGE as usize).unwrap().fill(1);
    s.commit(&[1; ROOT_SIZE]).unwrap();
    let hole = s.alloc_pages(20).unwrap();
    let len = 30 * PAGE as usize;
    let b = s.alloc_pages(30).unwrap();
    assert_eq!(b, hole + 20 * PAGE);
    let data = content(7, len);
    s.write(b, len).unwrap().copy_from_slice(&data);
    s.free_pages(hole, 20).unwrap();
    // As if the run had been released: a hole the slide must reserve again.
    let punched = os::punch_hole(&s.segs[0].file, split(hole).1, 20 * PAGE).is_ok();
    if punched {
        s.unreserved.insert(hole, 20);
    }
    assert_eq!(s.slide_down(b, 30).unwrap(), Some(hole));
    assert_eq!(s.read(hole, len).unwrap(), &data[..]);
    let (lo, hi) = block_around(&s, hole);
    assert_eq!(unreserved_in(&s, lo, hi), 0, "the block of the run it took is reserved again");
    assert_eq!(s.slide_down(hole, 30).unwrap(), None, "no free page below");
    s.write(hole, PAGE as usize).unwrap()[0] = 9;
    s.commit(&[2; ROOT_SIZE]).unwrap();
    let objects = [(keep, PAGE), (hole, 30 * PAGE)];
    s.check(&objects).unwrap();
    // Committed pages stay, even with a free page below them.
    s.free_pages(keep, 1).unwrap();
    s.commit(&[3; ROOT_SIZE]).unwrap();
    assert_eq!(s.slide_down(hole, 30).unwrap(), None, "committed pages never move");
    drop(s);
    let s = Store::open(&dir, &releasing_in_4_mib_segments(), Kind::Raw, 0, 0).unwrap();
    let mut want = data;
    want[0] = 9;
    assert_eq!(s.read(hole, len).unwrap(), &want[..]);
    s.check(&objects[1..]).unwrap();
    drop(s);
    // A run longer than the pages: they move to its start, the rest of it
    // stays free (and released), and so do the pages they left.
    let mut s = Store::open(&dir, &releasing_in_4_mib_segments(), Kind::Raw, 0, 0).unwrap();
    let long = s.alloc_pages(100).unwrap();
    let c = s.alloc_pages(30).unwrap();
    assert_eq!(c, long + 100 * PAGE);
    s.write(c, len).unwrap().copy_from_slice(&content(8, len));
    s.free_pages(long, 100).unwrap();
    if punched {
        os::punch_hole(&s.segs[0].file, split(long).1, 100 * PAGE).unwrap();
        s.unreserved.insert(long, 100);
    }
    assert_eq!(s.slide_down(c, 30).unwrap(), Some(long));
    assert_eq!(s.read(long, len).unwrap(), &content(8, len)[..]);
    let after = s.free.extent_of(long + 30 * PAGE);
    assert!(after.is_some_and(|(a, m)| a == long + 30 * PAGE && m >= 100), "{after:?}");
    assert_eq!(unreserved_in(&s, long, long + 30 * PAGE), 0);
    let objects = [(hole, 30 * PAGE), (long, 30 * PAGE)];
    s.check(&objects).unwrap();
    s.commit(&[5; ROOT_SIZE]).unwrap();
    s.check(&objects).unwrap();
    drop(s);
    let s = Store::open(&dir, &releasing_in_4_mib_segments(), Kind::Raw, 0, 0).unwrap();
    assert_eq!(s.read(long, len).unwrap(), &content(8, len)[..]);
    s.check(&objects).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

/// Freeing committed pages that are free already (a damaged or forged
/// record naming freed pages) is `Corrupted` and changes nothing; committed
/// pages freed twice in one transaction fail the commit before anything is
/// written, without poisoning the handle. Before, both went into the next
/// allocator state as overlapping free extents: the commit poisoned the
/// handle after its record was durable, and no open accepted the state, so
/// every flushed object was out of reach.
#[test]
fn freeing_free_space_is_corrupted_and_never_reaches_the_disk() {
    let _guard = no_spawn();
    let dir = temp_dir("double-free");
    let mut s = open(&dir);
    let a = s.alloc_pages(3).unwrap();
    let b = s.alloc_pages(2).unwrap();
    s.commit(&[1; ROOT_SIZE]).unwrap();
    s.free_pages(a, 3).unwrap();
    s.commit(&[2; ROOT_SIZE]).unwrap();
    assert!(matches!(s.free_pages(a + PAGE, 1), Err(Error::Corrupted { .. })));
    s.commit(&[3; ROOT_SIZE]).unwrap();
    s.check(&[(b, 2 * PAGE)]).unwrap();
    s.free_pages(b, 2).unwrap();
    s.free_pages(b + PAGE, 1).unwrap();
    assert!(matches!(s.commit(&[4; ROOT_SIZE]), Err(Error::Corrupted { .. })));
    assert!(s.writable().is_ok(), "not poisoned");
    drop(s);
    let s = open(&dir);
    assert_eq!(s.root(), &[3; ROOT_SIZE]);
    s.check(&[(b, 2 * PAGE)]).unwrap();
    drop(s);
    fs::remove_dir_all(&dir).unwrap();
}
