//! Unit tests that need the dict's internals: forced hash collisions.

use std::collections::{HashMap, HashSet};

use super::EmDict;
use super::bucket::K_MAX;
use super::dict::raw_mut;
use super::directory::{base, pages_in};
use crate::OpenOptions;
use crate::test_util::{Rng, seed, temp_dir};

/// With the hash masked to `mask`, many keys share a hash (or all of it):
/// buckets split as far as the bits allow, then chain overflow pages.
fn collide(name: &str, mask: u64, n: u64) {
    let dir = temp_dir(name);
    let opts = OpenOptions::new();
    let mut d: EmDict<u64, String> = EmDict::open_with(&dir, &opts).unwrap();
    raw_mut(&mut d).hash_mask = mask;
    let mut model = HashMap::new();
    for i in 0..n {
        let v = format!("value {i}").repeat((i % 7) as usize);
        d.insert(i, v.clone()).unwrap();
        model.insert(i, v);
    }
    d.check().unwrap();
    for i in (0..n).step_by(3) {
        assert_eq!(d.remove(&i).unwrap(), model.remove(&i));
    }
    d.flush().unwrap();
    d.check().unwrap();
    for (k, v) in &model {
        assert_eq!(d.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(d.get(&n).unwrap(), None);
    assert_eq!(d.len(), model.len());
    let mut seen: Vec<u64> = d.keys().map(Result::unwrap).collect();
    seen.sort();
    let mut want: Vec<u64> = model.keys().copied().collect();
    want.sort();
    assert_eq!(seen, want);
    for i in 0..n {
        d.remove(&i).unwrap();
    }
    assert!(d.is_empty());
    d.flush().unwrap();
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_key_has_the_same_hash() {
    collide("same-hash", 0, 3000);
}

#[test]
fn hashes_differ_only_in_low_bits() {
    collide("low-bits", 0xff, 5000);
}

#[test]
fn hashes_share_their_top_bits() {
    collide("top-bits", 0x0000_ffff_ffff_ffff, 20000);
}

/// Integer entries (u64 keys and values) end up in packed pages, other
/// uniform entries in fixed-width ones, and entries of very different sizes
/// in variable-width ones; an entry that does not pack turns its page into
/// another format; all read back.
#[test]
fn page_formats_follow_the_entries() {
    use super::bucket::Format;
    let count = |raw: &super::raw::RawDict, want: fn(Format) -> bool| {
        let pages = raw.all_bucket_pages();
        let hits = pages.iter().filter(|&&p| want(raw.bucket(p).unwrap().format())).count();
        (hits, pages.len())
    };
    let dir = temp_dir("formats");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.extend((0..20_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i))).unwrap();
    let (packed, pages) = count(raw_mut(&mut d), |f| f == Format::Packed);
    assert!(pages > 10 && packed == pages, "{packed} of {pages} pages packed");
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
    // A u128 below 2^64 is one canonical varint of a u64; u128::MAX is not.
    let mut d: EmDict<u64, u128> = EmDict::open(&dir).unwrap();
    let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    d.extend((0..20_000u64).map(|i| (key(i), u128::from(key(i + 1))))).unwrap();
    let (packed, pages) = count(raw_mut(&mut d), |f| f == Format::Packed);
    assert!(pages > 10 && packed == pages, "{packed} of {pages} pages packed");
    d.insert(key(5), u128::MAX).unwrap();
    // The page of key 5 is rewritten in another format; if the wider slots do
    // not fit it, its bucket is rebuilt (more pages, or split) in a format
    // for all its entries. Every other bucket stays packed.
    let (packed_now, pages_now) = count(raw_mut(&mut d), |f| f == Format::Packed);
    assert!(pages_now >= pages && pages_now <= pages + K_MAX, "{pages} pages became {pages_now}");
    let raw = raw_mut(&mut d);
    let e = raw.dir.entries[(raw.hash(&postcard::to_allocvec(&key(5)).unwrap()) >> (64 - raw.dir.depth)) as usize];
    let bucket = base(e)..base(e) + (pages_in(e) * super::bucket::PAGE) as u64;
    let others = raw.all_bucket_pages().into_iter().filter(|p| !bucket.contains(p));
    assert!(others.clone().all(|p| raw.bucket(p).unwrap().format() == Format::Packed));
    assert!(packed_now < pages_now && packed_now >= others.count(), "{packed_now} of {pages_now} packed");
    assert_eq!((d.get(&key(5)).unwrap(), d.get(&key(6)).unwrap()), (Some(u128::MAX), Some(u128::from(key(7)))));
    d.check().unwrap();
    drop(d);
    let dir2 = temp_dir("formats-var");
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir2).unwrap();
    d.extend((0..3000u64).map(|i| (i, vec![7; (i % 97) as usize]))).unwrap();
    let (hashed, pages) = count(raw_mut(&mut d), |f| f != Format::Variable);
    assert!(pages > 10 && hashed * 10 <= pages, "{hashed} of {pages} pages hashed");
    for i in 0..3000u64 {
        assert_eq!(d.get(&i).unwrap().map(|v| v.len()), Some((i % 97) as usize));
    }
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

fn open_faulty(dir: &std::path::Path, mask: u64) -> EmDict<u64, Vec<u8>> {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 1 << 20).durable(false);
    let mut d = EmDict::open_with(dir, &o).unwrap();
    raw_mut(&mut d).hash_mask = mask;
    d
}

fn same(d: &EmDict<u64, Vec<u8>>, model: &HashMap<u64, Vec<u8>>, what: &str) {
    assert_eq!(d.len(), model.len(), "{what}: len");
    for (k, v) in model {
        assert_eq!(d.get(k).unwrap().as_ref(), Some(v), "{what}: key {k}");
    }
    assert_eq!(d.iter().count(), model.len(), "{what}: iteration");
    d.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
}

/// A full disk at any allocation (injected): a failed insert, replace or
/// remove leaves the dict as it was, nothing leaks (`check`), a failed flush
/// can be retried, and reopening shows exactly the last successful flush.
fn fail_allocations(name: &str, mask: u64, sizes: &[usize], steps: usize) {
    let seed = seed(name);
    let dir = temp_dir(&format!("{name}-faults"));
    let mut rng = Rng(seed);
    let mut d = open_faulty(&dir, mask);
    let (mut model, mut flushed) = (HashMap::new(), HashMap::new());
    for step in 0..steps {
        let what = format!("seed {seed:#x} step {step}");
        let k = rng.below(700);
        let v = vec![step as u8; sizes[rng.below(sizes.len() as u64) as usize]];
        if rng.below(3) == 0 {
            raw_mut(&mut d).store.fail_alloc_after = Some(rng.below(4));
        }
        match rng.below(100) {
            0..55 => match d.insert(k, v.clone()) {
                Ok(old) => assert_eq!(old, model.insert(k, v), "{what}: insert"),
                Err(crate::Error::Full { .. }) => same(&d, &model, &format!("{what}: after a failed insert")),
                Err(e) => panic!("{what}: insert: {e}"),
            },
            55..60 => {
                let pairs: Vec<(u64, Vec<u8>)> = (0..1 + rng.below(40))
                    .map(|i| (rng.below(700), vec![i as u8; sizes[rng.below(sizes.len() as u64) as usize]]))
                    .collect();
                match d.extend(pairs.clone()) {
                    Ok(()) => model.extend(pairs),
                    Err(crate::Error::Full { .. }) => {
                        // Some pairs may be in (the pairs of one key in order): each
                        // key has its old value or one of its new ones.
                        for &(k, _) in &pairs {
                            let got = d.get(&k).unwrap();
                            let new = pairs.iter().any(|(pk, pv)| *pk == k && got.as_ref() == Some(pv));
                            assert!(new || got == model.get(&k).cloned(), "{what}: key {k}");
                            match got {
                                Some(v) => model.insert(k, v),
                                None => model.remove(&k),
                            };
                        }
                        same(&d, &model, &format!("{what}: after a failed extend"));
                    }
                    Err(e) => panic!("{what}: extend: {e}"),
                }
            }
            60..93 => match d.remove(&k) {
                Ok(old) => assert_eq!(old, model.remove(&k), "{what}: remove"),
                Err(crate::Error::Full { .. }) => same(&d, &model, &format!("{what}: after a failed remove")),
                Err(e) => panic!("{what}: remove: {e}"),
            },
            93..95 => match d.reserve(rng.below(5000) as usize) {
                Ok(()) => {}
                Err(crate::Error::Full { .. }) => same(&d, &model, &format!("{what}: after a failed reserve")),
                Err(e) => panic!("{what}: reserve: {e}"),
            },
            95..99 => match d.flush() {
                Ok(()) => flushed = model.clone(),
                Err(crate::Error::Full { .. }) => {
                    raw_mut(&mut d).store.fail_alloc_after = None;
                    d.flush().unwrap_or_else(|e| panic!("{what}: flush after a failed one: {e}"));
                    flushed = model.clone();
                }
                Err(e) => panic!("{what}: flush: {e}"),
            },
            _ => {
                raw_mut(&mut d).store.fail_alloc_after = None;
                // Drop without flushing cannot be had (Drop flushes): copy the
                // files as a crash would leave them, and reopen the copy.
                let copy = dir.with_extension("crash");
                let _ = std::fs::remove_dir_all(&copy);
                std::fs::create_dir_all(&copy).unwrap();
                for e in std::fs::read_dir(&dir).unwrap() {
                    let e = e.unwrap();
                    std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
                }
                let c = open_faulty(&copy, mask);
                same(&c, &flushed, &format!("{what}: crash copy"));
                drop(c);
                std::fs::remove_dir_all(&copy).unwrap();
            }
        }
        raw_mut(&mut d).store.fail_alloc_after = None;
        if step % 97 == 0 {
            same(&d, &model, &what);
        }
    }
    d.close().unwrap();
    let d = open_faulty(&dir, mask);
    same(&d, &model, &format!("seed {seed:#x}: reopened"));
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_allocations_change_nothing() {
    fail_allocations("faults", u64::MAX, &[0, 3, 40, 200, 300, 5000], 4000);
}

#[test]
fn failed_allocations_change_nothing_in_fixed_width_pages() {
    fail_allocations("faults-fixed", u64::MAX, &[8, 8, 8, 8, 8, 8, 8, 9, 12], 4000);
}

#[test]
fn failed_allocations_change_nothing_in_chains() {
    fail_allocations("faults-chains", 0xff00_0000_0000_00ff, &[0, 3, 40, 200, 300, 5000], 3000);
}

/// Regression: a flush that failed (full disk) after rewriting the directory
/// pages but before writing the new index left the index unmarked; the retry
/// committed the old index, naming freed directory pages, and a reopen after
/// those pages were reused failed ("directory page 0: checksum mismatch") or
/// lost entries.
#[test]
fn a_flush_failing_at_the_directory_index_rewrites_it_on_retry() {
    let dir = temp_dir("index-retry");
    let mut d = open_faulty(&dir, u64::MAX);
    let mut model = HashMap::new();
    for i in 0..2000u64 {
        d.insert(i, vec![1; 8]).unwrap();
        model.insert(i, vec![1; 8]);
    }
    d.flush().unwrap();
    for i in 2000..4000u64 {
        d.insert(i, vec![2; 8]).unwrap();
        model.insert(i, vec![2; 8]);
    }
    // The one directory page is copied (allocation 0), then the index
    // (allocation 1) fails; compaction, which may allocate before, is spared.
    raw_mut(&mut d).spare_compaction = true;
    raw_mut(&mut d).store.fail_alloc_after = Some(1);
    assert!(matches!(d.flush(), Err(crate::Error::Full { .. })));
    d.close().unwrap();
    let mut d = open_faulty(&dir, u64::MAX);
    same(&d, &model, "reopened after the retry");
    // Reuse the pages the retry freed, then reopen.
    for i in 4000..6000u64 {
        d.insert(i, vec![3; 8]).unwrap();
        model.insert(i, vec![3; 8]);
    }
    d.close().unwrap();
    let d = open_faulty(&dir, u64::MAX);
    same(&d, &model, "reopened");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rewrites the committed root of the dict at `dir` through the store's own
/// commit (so the meta record's checksum is valid), after `edit` changed it.
fn forge_root(dir: &std::path::Path, edit: impl FnOnce(&mut super::directory::Root, &mut crate::alloc::Store)) {
    let opts = OpenOptions::new();
    let mut store = crate::alloc::Store::open(dir, &opts, crate::alloc::Kind::Dict, 0, 0).unwrap();
    let mut root = super::directory::Root::decode(store.root(), &store).unwrap().unwrap();
    edit(&mut root, &mut store);
    store.commit(&root.encode()).unwrap();
}

fn small_dict(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    for i in 0..10 {
        d.insert(i, i).unwrap();
    }
    d.close().unwrap();
    dir
}

fn expect_corrupted(r: crate::Result<EmDict<u64, u64>>, field: &str) {
    match r {
        Err(crate::Error::Corrupted { path, what }) => {
            assert!(what.contains(field), "{what}");
            assert!(!path.as_os_str().is_empty());
        }
        other => panic!("expected Corrupted naming {field}, got {other:?}"),
    }
}

#[test]
fn a_forged_zero_count_is_an_error_not_an_underflow() {
    for field in ["len", "bucket_pages", "objects"] {
        let dir = small_dict(&format!("forged-{field}"));
        forge_root(&dir, |r, _| match field {
            "len" => r.len = 0,
            "bucket_pages" => r.bucket_pages = 0,
            _ => r.objects = u64::MAX,
        });
        // Open rejects what it can; whatever it accepts, removing every key
        // must give values or errors, never an arithmetic panic.
        match EmDict::<u64, u64>::open(&dir) {
            Err(e) => assert!(matches!(e, crate::Error::Corrupted { .. }), "{field}: {e:?}"),
            Ok(mut d) => {
                for i in 0..10 {
                    let _ = d.remove(&i);
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn forged_counts_beyond_the_store_are_rejected_on_open() {
    for field in ["len", "bucket_pages", "objects"] {
        let dir = small_dict(&format!("huge-{field}"));
        forge_root(&dir, |r, _| match field {
            "len" => r.len = u64::MAX,
            "bucket_pages" => r.bucket_pages = u64::MAX,
            _ => r.objects = u64::MAX,
        });
        expect_corrupted(EmDict::open(&dir), field);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A root claiming the deepest directory (2^32 entries, 32 GiB in memory) over
/// a real, checksummed index of zeros: open must fail on the first page it
/// reads, before reserving memory for the entries.
#[test]
fn a_forged_deep_directory_is_rejected_before_any_large_allocation() {
    let dir = small_dict("deep-dir");
    forge_root(&dir, |r, store| {
        r.depth = super::directory::MAX_DEPTH;
        r.dir_pages = super::directory::pages_for_depth(r.depth) as u64;
        let ilen = 16 * r.dir_pages;
        let addr = store.alloc_pages(ilen / 4096).unwrap();
        r.index_addr = addr;
        r.index_sum = xxhash_rust::xxh3::xxh3_64(store.read(addr, ilen as usize).unwrap());
    });
    expect_corrupted(EmDict::open(&dir), "directory page");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `extend` in several batches, with keys repeated inside a batch and across
/// batches, into a dict that already has entries: the later pair wins, the
/// dict reserves buckets for the announced pairs, and everything checks.
#[test]
fn batches_insert_in_order_across_batch_boundaries() {
    use super::batch::Batch;
    let dir = temp_dir("batches");
    let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().durable(false)).unwrap();
    let mut model = HashMap::new();
    for i in 0..500u64 {
        d.insert(i, i).unwrap();
        model.insert(i, i);
    }
    let raw = raw_mut(&mut d);
    let mut batch = Batch::default();
    let mut rng = Rng(7);
    for round in 0..5u64 {
        for _ in 0..20_000 {
            let (k, v) = (rng.below(60_000), rng.next());
            let (kb, vb) = (postcard::to_allocvec(&k).unwrap(), postcard::to_allocvec(&v).unwrap());
            batch.push(raw.hash(&kb), &kb, &vb);
            model.insert(k, v);
        }
        raw.put_batch(&mut batch, (4 - round as usize) * 20_000).unwrap();
        assert_eq!(batch.len(), 0);
    }
    // Announced room for 100,500 entries at once: no bucket was split twice.
    assert!(raw.bucket_pages() >= 512, "{} bucket pages", raw.bucket_pages());
    assert_eq!(d.len(), model.len());
    for (k, v) in &model {
        assert_eq!(d.get(k).unwrap(), Some(*v));
    }
    d.check().unwrap();
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `reserve` on an empty dict makes its buckets at the first insertion,
/// sized for that entry; on a full dict it splits every bucket in one pass;
/// with colliding hashes it leaves chains. The dict checks after each.
#[test]
fn reserve_makes_the_buckets_at_once() {
    for mask in [u64::MAX, 0xffff_0000_0000_0000, 0] {
        let dir = temp_dir(&format!("reserve-{mask:x}"));
        let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().durable(false)).unwrap();
        raw_mut(&mut d).hash_mask = mask;
        d.reserve(50_000).unwrap();
        assert_eq!(raw_mut(&mut d).bucket_pages(), 0, "nothing is made before the size is known");
        d.insert(1, 1).unwrap();
        let made = raw_mut(&mut d).bucket_pages();
        // (1, 1) takes a 4-byte slot and a tag: 713 a page (7/8 of 814 slots);
        // planned at most 95% full (`reserve_plan`), with few pages to spare.
        let per_page = super::bucket::Format::Fixed(4).per_page(0) as u64;
        let need = (50_000 * 20u64).div_ceil(per_page * 19);
        assert!(made >= need && made <= need + need / 3 + 1, "{made} pages for 50,000 pairs");
        for i in 0..3000u64 {
            d.insert(i, i + 1).unwrap();
        }
        d.check().unwrap();
        d.reserve(200_000).unwrap();
        assert!(raw_mut(&mut d).bucket_pages() >= made, "mask {mask:#x}");
        d.check().unwrap();
        for i in 0..3000u64 {
            assert_eq!(d.get(&i).unwrap(), Some(i + 1), "mask {mask:#x}");
        }
        d.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The fast paths for fixed-width pages (`get` without a `Loc`, iteration
/// straight from slots) hand a value that does not decode to the slow path,
/// whose error names the entry.
#[test]
fn fixed_width_fast_paths_name_an_entry_that_does_not_decode() {
    let dir = temp_dir("fastpath-decode");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.extend((0..2000u64).map(|i| (i, i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 2))).unwrap();
    d.close().unwrap();
    let mut d: EmDict<u64, bool> = EmDict::open(&dir).unwrap();
    let raw = raw_mut(&mut d);
    assert!(raw.bucket_pages() > 1, "the data should span several pages");
    let first = raw.bucket(base(raw.dir.entries[0])).unwrap();
    assert_eq!(first.format(), super::bucket::Format::Packed, "u64 -> u64 buckets should be packed");
    match d.get(&7) {
        Err(crate::Error::Decode { what, .. }) => assert!(what.starts_with("value of entry "), "{what}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    for item in [d.iter().next().map(|r| r.map(|_| ())), d.values().next().map(|r| r.map(|_| ()))] {
        match item {
            Some(Err(crate::Error::Decode { what, .. })) => assert!(what.contains(" in bucket 0x"), "{what}"),
            other => panic!("expected Decode, got {other:?}"),
        }
    }
    // Keys still decode through the fast path.
    assert_eq!(d.keys().count(), 2000);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: a `reserve` that failed for space (a full disk) kept the
/// directory it had doubled for its plan, although no bucket used it: up to
/// 2^26 entries (512 MiB of memory, and as many bytes of directory pages
/// written by every later commit) for a hint that did nothing. The directory
/// is now as deep as the buckets that exist need, and no deeper.
#[test]
fn a_failed_reservation_leaves_no_oversized_directory() {
    let dir = temp_dir("reserve-fails");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    // Enough entries for several buckets (of up to eight pages).
    for i in 0..10_000 {
        d.insert(i, i).unwrap();
    }
    d.flush().unwrap();
    let before = raw_mut(&mut d).dir.depth;
    raw_mut(&mut d).store.fail_alloc_after = Some(0);
    assert!(matches!(d.reserve(2_000_000), Err(crate::Error::Full { .. })));
    assert_eq!(raw_mut(&mut d).dir.depth, before, "no bucket was split");
    // Some buckets split before the failure: the directory keeps their depth.
    // (A reservation builds a bucket of several pages with one allocation:
    // each old bucket here splits into a few hundred.)
    raw_mut(&mut d).store.fail_alloc_after = Some(300);
    assert!(matches!(d.reserve(2_000_000), Err(crate::Error::Full { .. })));
    raw_mut(&mut d).store.fail_alloc_after = None;
    let raw = raw_mut(&mut d);
    let deepest = raw.dir.entries.iter().map(|&b| raw.bucket(base(b)).unwrap().depth()).max().unwrap();
    assert!(deepest > before, "some buckets were split: {deepest} {before} {}", raw.bucket_pages());
    assert_eq!(raw.dir.depth, deepest, "the directory is as deep as its deepest bucket");
    d.check().unwrap();
    d.close().unwrap();
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), 10_000);
    assert!((0..10_000).all(|i| d.get(&i).unwrap() == Some(i)));
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `check()` proves every entry of a hashed page reachable by its probe: an
/// entry moved to an empty slot before its home (counts and tags intact) is
/// reported, and so is a wrong tag.
#[test]
fn check_finds_an_entry_its_probe_cannot_reach() {
    use super::bucket::{Bucket, PACKED_WIDTH, PAGE, capacity, home, select};
    let dir = temp_dir("unreachable");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    // Large values too, so that every page is packed: with small ones a page
    // may take the variable-width format instead (the 15% rule), by hash seed.
    let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    d.extend((0..3000u64).map(|i| (key(i), key(i).rotate_left(17) | 1 << 63))).unwrap();
    d.check().unwrap();
    let raw = raw_mut(&mut d);
    // The first page of the first bucket, whose entries' home slots come
    // from their hashes as that page sees them.
    let (addr, k) = (base(raw.dir.entries[0]), pages_in(raw.dir.entries[0]));
    let page = raw.store.read(addr, PAGE).unwrap().to_vec();
    let b = Bucket::new(&page).unwrap();
    let cap = capacity(PACKED_WIDTH);
    let tags = b.tags();
    // An entry at slot i whose home is h, and an empty slot e outside [h, i].
    let (i, e) = (0..cap)
        .filter(|&i| tags[i] != 0)
        .find_map(|i| {
            let key = b.slot(i).unwrap().inline_key().unwrap();
            let h = home(select(raw.hash(&key), k).1, cap);
            let inside = |j: usize| if h <= i { (h..=i).contains(&j) } else { j >= h || j <= i };
            (0..cap).find(|&j| tags[j] == 0 && !inside(j)).map(|e| (i, e))
        })
        .expect("a page at 7/8 load has an empty slot outside some entry's run");
    let mut moved = page.clone();
    moved[24 + e] = moved[24 + i];
    moved[24 + i] = 0;
    let (from, to) = (PAGE - (i + 1) * PACKED_WIDTH, PAGE - (e + 1) * PACKED_WIDTH);
    moved.copy_within(from..from + PACKED_WIDTH, to);
    raw.store.write(addr, PAGE).unwrap().copy_from_slice(&moved);
    let err = d.check().unwrap_err().to_string();
    assert!(err.contains("between it and its home slot"), "{err}");
    let mut retagged = page.clone();
    retagged[24 + i] ^= 0x40;
    raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&retagged);
    let err = d.check().unwrap_err().to_string();
    assert!(err.contains("wrong bucket for its hash"), "{err}");
    raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&page);
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A removal whose bucket would merge with a buddy whose committed page is
/// damaged (here its header no longer parses) succeeds without the merge,
/// as DESIGN "Merging" promises for a buddy that fails its checksum: the
/// entry is gone either way, so an error would report a removal that
/// happened as failed. `check()` reports the damage.
#[test]
fn a_removal_beside_a_damaged_buddy_succeeds_without_merging() {
    use std::os::unix::fs::FileExt;
    let dir = temp_dir("damaged-buddy");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    // Enough entries for buckets of several pages to split twice.
    const N: u64 = 12_000;
    for k in 0..N {
        d.insert(k, k).unwrap();
    }
    // Closed and reopened: where `close` left the pages (its compaction may move them).
    d.close().unwrap();
    let mut d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    let raw = raw_mut(&mut d);
    let depth = raw.dir.depth;
    assert!(depth >= 2, "depth {depth}");
    let index =
        |raw: &super::raw::RawDict, k: u64| (raw.hash(&postcard::to_allocvec(&k).unwrap()) >> (64 - depth)) as usize;
    // A bucket of the global depth whose buddy has it too, and the keys in it.
    let (mine, buddy) = (0..1usize << depth)
        .map(|i| (raw.dir.entries[i], raw.dir.entries[i ^ 1]))
        .find(|&(a, b)| [a, b].iter().all(|&p| raw.bucket(base(p)).unwrap().depth() == depth))
        .expect("two buddies of the global depth");
    let keys: Vec<u64> = (0..N).filter(|&k| raw.dir.entries[index(raw, k)] == mine).collect();
    drop(d);
    // The entry count (bytes 10..12) of the buddy's first page beyond any page.
    let buddy = base(buddy);
    let (seg, off) = ((buddy >> 40) as usize, buddy & ((1 << 40) - 1));
    let file = std::fs::OpenOptions::new().write(true).open(dir.join(format!("seg.{seg:06}"))).unwrap();
    file.write_all_at(&[0xff, 0xff], off + 10).unwrap();
    drop(file);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    for &k in &keys {
        assert_eq!(d.remove(&k).unwrap(), Some(k), "key {k}");
    }
    assert_eq!(d.len() as u64, N - keys.len() as u64);
    assert!(matches!(d.check(), Err(crate::Error::Corrupted { .. })));
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The pages of every bucket (`k`) and their depths, in directory order.
fn shape(raw: &super::raw::RawDict) -> Vec<(usize, u32)> {
    let mut out: Vec<(usize, u32)> = Vec::new();
    let mut last = None;
    for &e in &raw.dir.entries {
        if last != Some(e) {
            out.push((pages_in(e), raw.bucket(base(e)).unwrap().depth()));
            last = Some(e);
        }
    }
    out
}

/// One bucket of `u64 -> u64` entries (packed pages), committed after every
/// insert, grows a page at a time as a page fills, up to `K_MAX` pages, and
/// then splits into two buckets of depth 1 that have room (more than half
/// of their pages' slots free is not asked, but neither is full); `check()`
/// holds at every change of shape, and after a close and reopen every
/// entry reads back. (Within one transaction a bucket that grew grows
/// straight to `K_MAX` pages: the next test.)
#[test]
fn a_bucket_grows_a_page_at_a_time_then_splits() {
    let dir = temp_dir("elastic-grow");
    let seed = seed("elastic grow");
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().durable(false)).unwrap();
    let mut keys = Vec::new();
    let mut shapes = vec![];
    while shape(raw_mut(&mut d)).len() < 2 {
        let k = rng.next() | 1 << 63;
        d.insert(k, !k).unwrap();
        d.flush().unwrap();
        keys.push(k);
        let now = shape(raw_mut(&mut d));
        if shapes.last() != Some(&now) {
            d.check().unwrap_or_else(|e| panic!("seed {seed:#x}, {} keys, {now:?}: {e}", keys.len()));
            shapes.push(now);
        }
    }
    let grew: Vec<usize> = shapes.iter().filter(|s| s.len() == 1).map(|s| s[0].0).collect();
    assert_eq!(grew, (1..=K_MAX).collect::<Vec<_>>(), "seed {seed:#x}: {shapes:?}");
    let split = shapes.last().unwrap();
    assert!(split.iter().all(|&(k, depth)| depth == 1 && k >= 2), "seed {seed:#x}: {shapes:?}");
    // The split buckets hold every entry with room to spare: at most 85% of their slots' maximum load.
    let pages: usize = split.iter().map(|&(k, _)| k).sum();
    assert!(keys.len() <= pages * 210 * 17 / 20 + 2, "seed {seed:#x}: {} keys in {pages} pages", keys.len());
    d.close().unwrap();
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), keys.len());
    assert!(keys.iter().all(|&k| d.get(&k).unwrap() == Some(!k)), "seed {seed:#x}");
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Per bucket holding some of `keys` (`u64` keys in packed pages): its
/// pages, and the fewest pages in which its entries fit, every page within
/// its maximum load.
fn pages_and_fewest(raw: &super::raw::RawDict, keys: &[u64]) -> Vec<(usize, usize)> {
    use super::bucket::{Format, select};
    let mut hashes: HashMap<u64, Vec<u64>> = HashMap::new();
    for &k in keys {
        let h = raw.hash(&postcard::to_allocvec(&k).unwrap());
        let idx = ((h >> 1) >> (63 - raw.dir.depth)) as usize;
        hashes.entry(raw.dir.entries[idx]).or_default().push(h);
    }
    let fit = |hs: &[u64], m: usize| {
        let mut load = [0; K_MAX];
        hs.iter().for_each(|&h| load[select(h, m).0] += 1);
        load.iter().all(|&l| l <= Format::Packed.per_page(0))
    };
    hashes.iter().map(|(&e, hs)| (pages_in(e), (1..=K_MAX).find(|&m| fit(hs, m)).unwrap_or(K_MAX))).collect()
}

/// Within one transaction (a load), a packed bucket that a growth or a
/// split made ("young") grows straight to `K_MAX` pages when a page of it
/// fills, and its halves at a split get `K_MAX` pages each (each growth by
/// a page would rewrite every entry again); the commit then gives every
/// bucket the fewest pages its entries fit. `check()` holds before and
/// after, and every entry reads back after a reopen.
#[test]
fn a_young_bucket_grows_to_the_most_pages_and_the_commit_fits_it() {
    let dir = temp_dir("elastic-young");
    let seed = seed("elastic young");
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    let mut keys = Vec::new();
    let mut shapes = vec![];
    while keys.len() < 30_000 {
        let k = rng.next();
        d.insert(k, !k).unwrap();
        keys.push(k);
        let now = shape(raw_mut(&mut d));
        if shapes.last() != Some(&now) {
            shapes.push(now);
        }
    }
    // The first page (variable width) grows into two packed pages, which
    // grow by one (not young: the general path made them), then to K_MAX.
    let grew: Vec<usize> = shapes.iter().filter(|s| s.len() == 1).map(|s| s[0].0).collect();
    assert_eq!(grew, [1, 2, 3, K_MAX], "seed {seed:#x}");
    let split = shapes.iter().find(|s| s.len() == 2).unwrap();
    assert_eq!(split, &[(K_MAX, 1), (K_MAX, 1)], "seed {seed:#x}");
    d.check().unwrap();
    let before = raw_mut(&mut d).bucket_pages();
    assert!(pages_and_fewest(raw_mut(&mut d), &keys).iter().any(|&(k, fewest)| k > fewest), "seed {seed:#x}");
    d.flush().unwrap();
    let fitted = pages_and_fewest(raw_mut(&mut d), &keys);
    assert!(fitted.iter().all(|&(k, fewest)| k == fewest), "seed {seed:#x}: {fitted:?}");
    assert!(raw_mut(&mut d).bucket_pages() < before, "seed {seed:#x}");
    d.check().unwrap();
    d.close().unwrap();
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert_eq!(d.len(), keys.len());
    assert!(keys.iter().all(|&k| d.get(&k).unwrap() == Some(!k)), "seed {seed:#x}");
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A split in place (half of a bucket written since the last commit is
/// rewritten in the bucket's own pages) never writes what the last commit
/// reaches: a copy of the files taken between flushes, after buckets grew
/// and split, opens to exactly the last flush's entries and passes
/// `check()`; the live dict reads back everything.
#[test]
fn a_split_in_place_never_writes_what_the_last_commit_reaches() {
    let root = temp_dir("split-in-place");
    let (live, image) = (root.join("live"), root.join("image"));
    let seed = seed("split in place");
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, u64> = EmDict::open(&live).unwrap();
    let mut model: HashMap<u64, u64> = HashMap::new();
    let mut flushed = HashMap::new();
    let mut in_place = 0;
    for round in 0..8 {
        for _ in 0..rng.below(8000) + 500 {
            let before: HashSet<u64> = raw_mut(&mut d).dir.entries.iter().copied().collect();
            let k = rng.next();
            d.insert(k, k ^ round).unwrap();
            model.insert(k, k ^ round);
            let after: HashSet<u64> = raw_mut(&mut d).dir.entries.iter().copied().collect();
            // A bucket more, and one of the new ones where the old one was.
            let (gone, new): (Vec<u64>, Vec<u64>) =
                (before.difference(&after).copied().collect(), after.difference(&before).copied().collect());
            let stayed = gone.is_empty() || gone.iter().any(|&g| new.iter().any(|&n| base(n) == base(g)));
            in_place += usize::from(after.len() > before.len() && stayed);
        }
        // A crash now: the files as they are, between commits.
        let _ = std::fs::remove_dir_all(&image);
        std::fs::create_dir_all(&image).unwrap();
        for f in std::fs::read_dir(&live).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), image.join(f.file_name())).unwrap();
        }
        let copy: EmDict<u64, u64> = EmDict::open(&image).unwrap();
        assert_eq!(copy.len(), flushed.len(), "seed {seed:#x}, round {round}");
        for (k, v) in &flushed {
            assert_eq!(copy.get(k).unwrap(), Some(*v), "seed {seed:#x}, round {round}");
        }
        copy.check().unwrap_or_else(|e| panic!("seed {seed:#x}, round {round}: {e}"));
        drop(copy);
        d.flush().unwrap();
        flushed = model.clone();
    }
    assert!(in_place > 10, "seed {seed:#x}: {in_place} splits in place");
    d.check().unwrap();
    assert!(model.iter().all(|(k, v)| d.get(k).unwrap() == Some(*v)), "seed {seed:#x}");
    drop(d);
    std::fs::remove_dir_all(&root).unwrap();
}

/// Removals shrink a bucket a page at a time (or more) once its entries
/// take at most half of fewer pages, down to one page, with `check()` at
/// every change; inserts then grow it again.
#[test]
fn a_bucket_shrinks_as_its_entries_go() {
    let dir = temp_dir("elastic-shrink");
    let seed = seed("elastic shrink");
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    let mut keys = Vec::new();
    while shape(raw_mut(&mut d)).first().map_or(0, |s| s.0) < 5 {
        let k = rng.next();
        d.insert(k, k).unwrap();
        keys.push(k);
    }
    assert_eq!(shape(raw_mut(&mut d)).len(), 1, "seed {seed:#x}");
    let mut sizes = vec![shape(raw_mut(&mut d))[0].0];
    while let Some(k) = keys.pop() {
        assert_eq!(d.remove(&k).unwrap(), Some(k), "seed {seed:#x}");
        let now = shape(raw_mut(&mut d))[0].0;
        if Some(&now) != sizes.last() {
            d.check().unwrap_or_else(|e| panic!("seed {seed:#x}, {} keys, {now} pages: {e}", keys.len()));
            // Hysteresis: a shrunk bucket is at most half full.
            assert!(keys.len() <= now * 210 / 2, "seed {seed:#x}: {} keys in {now} pages", keys.len());
            sizes.push(now);
        }
    }
    assert!(sizes.windows(2).all(|w| w[1] < w[0]) && sizes.last() == Some(&1), "seed {seed:#x}: {sizes:?}");
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A growth or a split that fails for lack of space (a full disk, injected
/// at every allocation in turn) changes nothing: the entry is not inserted,
/// every other entry reads back, `check()` holds; and the insert succeeds
/// once there is space. Values from `value`: byte strings take the general
/// path, integers packed pages (`grow_packed`).
fn failed_growth_changes_nothing<V>(name: &str, value: impl Fn(&mut Rng, u64) -> V)
where
    V: serde::Serialize + serde::de::DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    let dir = temp_dir(&name.replace(' ', "-"));
    let seed = seed(name);
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, V> = EmDict::open(&dir).unwrap();
    let mut model = HashMap::new();
    let (mut failures, mut changes) = (0, 0);
    for _ in 0..6000 {
        let k = rng.next();
        let v = value(&mut rng, k);
        let before = shape(raw_mut(&mut d));
        for fail_after in 0..4 {
            raw_mut(&mut d).store.fail_alloc_after = Some(fail_after);
            let r = d.insert(k, v.clone());
            raw_mut(&mut d).store.fail_alloc_after = None;
            match r {
                Ok(_) => break,
                Err(crate::Error::Full { .. }) => {
                    failures += 1;
                    assert_eq!(shape(raw_mut(&mut d)), before, "seed {seed:#x}: a failed insert changed buckets");
                    assert_eq!(d.len(), model.len(), "seed {seed:#x}");
                    assert_eq!(d.get(&k).unwrap(), None, "seed {seed:#x}");
                    d.check().unwrap_or_else(|e| panic!("seed {seed:#x}: after a failed insert: {e}"));
                }
                Err(e) => panic!("seed {seed:#x}: {e}"),
            }
        }
        if d.get(&k).unwrap().is_none() {
            d.insert(k, v.clone()).unwrap();
        }
        model.insert(k, v);
        changes += usize::from(shape(raw_mut(&mut d)) != before);
        if rng.below(200) == 0 {
            d.flush().unwrap();
        }
    }
    assert!(failures > 20 && changes > 10, "seed {seed:#x}: {failures} failures, {changes} changes of shape");
    assert!(shape(raw_mut(&mut d)).iter().any(|&(k, _)| k > 1), "seed {seed:#x}");
    for (k, v) in &model {
        assert_eq!(d.get(k).unwrap().as_ref(), Some(v), "seed {seed:#x}");
    }
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_growth_or_split_that_fails_for_space_changes_nothing() {
    failed_growth_changes_nothing("elastic full", |rng, k| vec![k as u8; rng.below(12) as usize]);
}

#[test]
fn a_packed_growth_or_split_that_fails_for_space_changes_nothing() {
    failed_growth_changes_nothing("elastic full packed", |_, k| k.rotate_left(9) | 1 << 63);
}

/// Random inserts, removals, flushes, closes and reopens against a
/// `HashMap`, with values of sizes that give every page format: buckets of
/// every size from one page to `K_MAX` occur, grow, split, shrink and
/// merge; `check()` holds after every sequence and the model reads back.
#[test]
fn elastic_buckets_against_a_model() {
    let dir = temp_dir("elastic-model");
    let seed = seed("elastic model");
    let mut rng = Rng(seed);
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir).unwrap();
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut seen = [false; K_MAX + 1];
    for round in 0..40 {
        // Growth with some removals, then mostly removals (merges and shrinks).
        let grow = round < 24 && round % 4 != 3;
        for op in 0..rng.below(6000) {
            if op % 64 == 0 {
                for (k, _) in shape(raw_mut(&mut d)) {
                    seen[k] = true;
                }
            }
            let k = rng.below(20_000);
            if grow || (round < 32 && rng.below(8) == 0) {
                let v = vec![k as u8; [0, 1, 8, 30, 300][rng.below(5) as usize]];
                assert_eq!(d.insert(k, v.clone()).unwrap(), model.insert(k, v), "seed {seed:#x}");
            } else {
                assert_eq!(d.remove(&k).unwrap(), model.remove(&k), "seed {seed:#x}");
            }
        }
        if round >= 32 {
            // Most of what is left goes: buckets shrink to one page.
            let mut keys: Vec<u64> = model.keys().copied().collect();
            keys.sort_unstable();
            for k in keys.into_iter().filter(|_| rng.below(3) != 0) {
                assert_eq!(d.remove(&k).unwrap(), model.remove(&k), "seed {seed:#x}");
            }
        }
        for (k, _) in shape(raw_mut(&mut d)) {
            seen[k] = true;
        }
        match rng.below(3) {
            0 => d.flush().unwrap(),
            1 => {
                d.close().unwrap();
                d = EmDict::open(&dir).unwrap();
            }
            _ => {}
        }
        d.check().unwrap_or_else(|e| panic!("seed {seed:#x}, round {round}: {e}"));
        assert_eq!(d.len(), model.len(), "seed {seed:#x}");
    }
    assert!(seen[1..].iter().all(|&s| s), "seed {seed:#x}: bucket sizes seen {seen:?}");
    for (k, v) in &model {
        assert_eq!(d.get(k).unwrap().as_ref(), Some(v), "seed {seed:#x}");
    }
    let mut n = 0;
    for e in d.iter() {
        let (k, v) = e.unwrap();
        assert_eq!(model.get(&k), Some(&v), "seed {seed:#x}");
        n += 1;
    }
    assert_eq!(n, model.len());
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A dict of format 2 (every bucket one page; built here with buckets held
/// to one page, and its root's version set back to 2) opens, reads and
/// checks; its buckets grow past one page under inserts, and its first
/// commit records version 3.
#[test]
fn a_format_2_dict_opens_reads_and_is_upgraded() {
    use xxhash_rust::xxh3::xxh3_64;
    let dir = temp_dir("format-2");
    let version = |dir: &std::path::Path| {
        let meta = std::fs::read(dir.join("meta")).unwrap();
        let txn = |s: usize| u64::from_le_bytes(meta[s * 4096 + 16..s * 4096 + 24].try_into().unwrap());
        let slot = if txn(0) >= txn(1) { 0 } else { 1 };
        u32::from_le_bytes(meta[slot * 4096 + 88..slot * 4096 + 92].try_into().unwrap())
    };
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    raw_mut(&mut d).max_pages = 1;
    let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for i in 0..20_000 {
        d.insert(key(i), i).unwrap();
    }
    let buckets = shape(raw_mut(&mut d));
    assert!(buckets.len() > 16 && buckets.iter().all(|&(k, _)| k == 1), "{buckets:?}");
    d.close().unwrap();
    // Rewrite the dict version in both meta slots, fixing the record checksum.
    let mut meta = std::fs::read(dir.join("meta")).unwrap();
    for slot in [0, 4096] {
        let rec = &mut meta[slot..slot + 256];
        if rec[..8] == *b"EMDSMETA" {
            rec[88..92].copy_from_slice(&2u32.to_le_bytes());
            let sum = xxh3_64(&rec[..248]);
            rec[248..256].copy_from_slice(&sum.to_le_bytes());
        }
    }
    std::fs::write(dir.join("meta"), &meta).unwrap();
    assert_eq!(version(&dir), 2);
    let d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    assert!((0..20_000).all(|i| d.get(&key(i)).unwrap() == Some(i)));
    assert_eq!(d.iter().count(), 20_000);
    d.check().unwrap();
    drop(d);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.check().unwrap();
    for i in 20_000..60_000 {
        d.insert(key(i), i).unwrap();
    }
    assert!(shape(raw_mut(&mut d)).iter().any(|&(k, _)| k > 1));
    d.close().unwrap();
    assert_eq!(version(&dir), 3);
    let d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    assert!((0..60_000).all(|i| d.get(&key(i)).unwrap() == Some(i)));
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The integer-key lookup (`get` and `contains_key` of a key that is one
/// varint) reads a packed page with the checks its one-compare header test
/// leaves out: a damaged packed page gives values, `None` or `Corrupted`,
/// never a panic, whatever bytes of its header, tags and slots are
/// overwritten; a header that fails the test takes the general lookup,
/// which names the damage.
#[test]
fn integer_lookups_in_damaged_packed_pages_give_errors_not_panics() {
    use super::bucket::{Bucket, PAGE};
    let mut rng = Rng(seed("integer_lookups_in_damaged_packed_pages"));
    let dir = temp_dir("damaged-packed");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    // Large values, so that every page is packed (see the test above).
    let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    d.extend((0..3000u64).map(|i| (key(i), key(i).rotate_left(17) | 1 << 63))).unwrap();
    let addr = base(raw_mut(&mut d).dir.entries[0]);
    let page: [u8; PAGE] = raw_mut(&mut d).store.read(addr, PAGE).unwrap().try_into().unwrap();
    assert!(Bucket::lone_packed(&page).is_some(), "a packed page to damage");
    let lookups = |d: &EmDict<u64, u64>| {
        for i in 0..3100u64 {
            match d.get(&key(i)) {
                Ok(_) | Err(crate::Error::Corrupted { .. }) => {}
                Err(e) => panic!("key {i}: {e}"),
            }
            let _ = d.contains_key(&key(i));
        }
    };
    for _ in 0..300 {
        let mut bad = page;
        for _ in 0..1 + rng.below(8) {
            // Mostly the header and tags, where the lookup's decisions are.
            let at = if rng.below(2) == 0 { 8 + rng.below(16 + 240) } else { 8 + rng.below(PAGE as u64 - 8) };
            bad[at as usize] = rng.next() as u8;
        }
        raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&bad);
        lookups(&d);
    }
    // Every tag set and no empty slot: the probe still ends.
    let mut full = page;
    full[24..24 + 239].fill(0x5a);
    raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&full);
    lookups(&d);
    // A count past the capacity fails the header test; the general lookup reports it.
    let mut over = page;
    over[10..12].copy_from_slice(&239u16.to_le_bytes());
    over[12..14].copy_from_slice(&(239u16 * 16).to_le_bytes());
    raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&over);
    let in_page = (0..3000u64).find(|&i| d.get(&key(i)).is_err()).expect("a key of the damaged page");
    let err = d.get(&key(in_page)).unwrap_err().to_string();
    assert!(err.contains("hashed bucket header claims 239 slots"), "{err}");
    raw_mut(&mut d).store.write(addr, PAGE).unwrap().copy_from_slice(&page);
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A bucket page whose header claims one level more depth than the
/// directory gives it (forged, under a valid checksum) spans half of its
/// directory range. Its copy-on-write then named the copy from that half
/// only and freed the old pages while the other half still named them: a
/// flush made them free, new buckets took them, and a write through the
/// other half went in place into another bucket's page (or a merge with
/// the "buddy", the bucket itself, rewrote every entry twice). A bucket
/// whose depth does not match its directory range is `Corrupted`: writes
/// to it fail, every other bucket's entries stay intact through inserts,
/// flushes and removals, and iteration (which yielded the bucket's
/// entries twice) and `check()` report the damage.
#[test]
fn a_bucket_whose_header_claims_a_deeper_depth_is_corrupted_not_half_copied() {
    use super::bucket::PAGE;
    use std::os::unix::fs::FileExt;
    let dir = temp_dir("self-buddy");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    let mut n = 0u64;
    let find = |raw: &super::raw::RawDict| {
        let depth = raw.dir.depth;
        raw.dir.entries.iter().copied().find(|&e| (1..depth).contains(&raw.bucket(base(e)).unwrap().depth()))
    };
    while find(raw_mut(&mut d)).is_none() {
        assert!(n < 200_000, "no bucket shallower than the directory");
        for k in n..n + 4000 {
            d.insert(k, k).unwrap();
        }
        n += 4000;
    }
    d.close().unwrap();
    let mut d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    let raw = raw_mut(&mut d);
    let victim = find(raw).expect("close keeps the depths");
    let index = |raw: &super::raw::RawDict, k: u64| {
        (raw.hash(&postcard::to_allocvec(&k).unwrap()) >> (64 - raw.dir.depth)) as usize
    };
    let (mine, others): (Vec<u64>, Vec<u64>) = (0..n).partition(|&k| raw.dir.entries[index(raw, k)] == victim);
    let depth = raw.bucket(base(victim)).unwrap().depth();
    drop(d);
    // The depth byte of the bucket's first page, and the page's checksum as a forger would.
    let addr = base(victim);
    let (seg, off) = ((addr >> 40) as usize, addr & ((1 << 40) - 1));
    let file = std::fs::OpenOptions::new().read(true).write(true).open(dir.join(format!("seg.{seg:06}"))).unwrap();
    let mut page = vec![0u8; PAGE];
    file.read_exact_at(&mut page, off).unwrap();
    page[8] = depth as u8 + 1;
    let sum = xxhash_rust::xxh3::xxh3_64(&page[8..]);
    page[..8].copy_from_slice(&sum.to_le_bytes());
    file.write_all_at(&page, off).unwrap();
    drop(file);
    // Iteration reports the damage rather than yielding the bucket's entries twice.
    let d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    let read: Vec<_> = d.iter().collect();
    assert!(read.len() < n as usize, "{} entries read of {n}", read.len());
    assert!(matches!(read.last(), Some(Err(crate::Error::Corrupted { .. }))), "{:?}", read.last());
    drop(d);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    let removed = |r: crate::Result<Option<u64>>, k: u64| match r {
        Ok(v) => assert!(v.is_none() || v == Some(k), "key {k}: {v:?}"),
        Err(crate::Error::Corrupted { .. }) => {}
        Err(e) => panic!("key {k}: {e}"),
    };
    removed(d.remove(&mine[0]), mine[0]);
    let _ = d.flush();
    for k in n..n + 20_000 {
        let _ = d.insert(k, k);
    }
    for &k in &mine[1..] {
        removed(d.remove(&k), k);
    }
    for &k in &mine {
        let _ = d.insert(k, k);
    }
    let _ = d.flush();
    for &k in &others {
        assert_eq!(d.get(&k).unwrap(), Some(k), "key {k} of another bucket");
    }
    assert!(matches!(d.check(), Err(crate::Error::Corrupted { .. })));
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The integer-key lookup (`get`, `contains_key`) agrees with the entries
/// the general path stored, for every key type whose encoding is one
/// varint (signed keys zigzagged, `i8`/`u8` raw bytes below 128 only,
/// `bool`, `u128`/`i128` beyond 64 bits declined, newtypes), in buckets of
/// one and of several pages, present and absent keys alike.
#[test]
fn integer_keys_of_every_type_agree_with_the_general_path() {
    use serde::{Serialize, de::DeserializeOwned};
    use std::fmt::Debug;
    use std::hash::Hash;
    #[derive(Serialize, serde::Deserialize, PartialEq, Eq, Hash, Clone, Copy, Debug)]
    struct Id(i32);
    fn run<K>(name: &str, keys: Vec<K>, absent: Vec<K>)
    where
        K: Serialize + DeserializeOwned + Eq + Hash + Clone + Debug,
    {
        let dir = temp_dir(name);
        let mut d: EmDict<K, i64> = EmDict::open(&dir).unwrap();
        let mut model = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let v = (i as i64).wrapping_mul(-7_919);
            d.insert(k.clone(), v).unwrap();
            model.insert(k.clone(), v);
        }
        for _ in 0..2 {
            for (k, v) in &model {
                assert_eq!(d.get(k).unwrap(), Some(*v), "{name}: {k:?}");
                assert!(d.contains_key(k).unwrap(), "{name}: {k:?}");
            }
            for k in absent.iter().filter(|k| !model.contains_key(k)) {
                assert_eq!(d.get(k).unwrap(), None, "{name}: {k:?}");
                assert!(!d.contains_key(k).unwrap(), "{name}: {k:?}");
            }
            d.close().unwrap();
            d = EmDict::open(&dir).unwrap();
        }
        d.check().unwrap();
        drop(d);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let wide = |i: i64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15u64 as i64);
    run("int-i64", (-3000..3000).map(wide).collect(), (3000..3500).map(wide).collect());
    run("int-i8", (-128..=127i8).step_by(2).collect(), (-127..=127i8).step_by(2).collect());
    run("int-u8", (0..=255u8).step_by(2).collect(), (1..=255u8).step_by(2).collect());
    run("int-bool", vec![true], vec![false]);
    let big = |i: u128| (i << 60) ^ i;
    run("int-u128", (0..3000).map(big).collect(), (3000..3300).map(big).collect());
    run("int-i128", (-1500..1500).map(|i: i128| i << 62).collect(), (1500..1700).map(|i: i128| -(i << 62)).collect());
    run("int-newtype", (-2000..2000).map(|i| Id(i * 1001)).collect(), (0..300).map(|i| Id(i * 1001 + 1)).collect());
}

/// Out-of-line keys and values in buckets of every size: `String` keys
/// (every 23rd long enough to go out of line) and byte values from empty to
/// more than two pages, inserted, overwritten (inline and out of line in
/// turn), removed down to a tenth of the keys (shrinks and merge cascades)
/// and cleared, with flushes after random numbers of operations, an
/// injected full disk now and then (at an allocation, or at the reservation
/// of released space: the failed change leaves its key as it was, a failed
/// flush is retried), and closes and reopens; after every round `check()` (an object
/// freed twice or never, a page leaked, fails it) and a full comparison
/// with a `HashMap`.
#[test]
fn out_of_line_entries_in_elastic_buckets_against_a_model() {
    let dir = temp_dir("elastic-objects");
    let seed = seed("elastic objects");
    let mut rng = Rng(seed);
    let mut opts = OpenOptions::new();
    opts.segment_sizes(64 << 10, 1 << 20).durable(false);
    let open = |dir: &std::path::Path| -> EmDict<String, Vec<u8>> { EmDict::open_with(dir, &opts).unwrap() };
    let key = |rng: &mut Rng| {
        let id = rng.below(6000);
        if id.is_multiple_of(23) {
            format!("{id}:{}", "k".repeat(250 + (id as usize * 7) % 3000))
        } else {
            format!("key {id}")
        }
    };
    let value = |rng: &mut Rng| {
        let len = match rng.below(20) {
            0..4 => 0,
            4..12 => rng.below(24),
            12..16 => rng.below(400),
            16..19 => rng.range(400, 4000),
            _ => rng.range(4096, 10_000),
        };
        rng.bytes(len as usize)
    };
    let compare = |d: &EmDict<String, Vec<u8>>, model: &HashMap<String, Vec<u8>>, what: &str| {
        assert_eq!(d.len(), model.len(), "{what}: len");
        let mut n = 0;
        for e in d.iter() {
            let (k, v) = e.unwrap_or_else(|e| panic!("{what}: iteration: {e}"));
            assert!(model.get(&k) == Some(&v), "{what}: iterated key {k:.40}");
            n += 1;
        }
        assert_eq!(n, model.len(), "{what}: entries iterated");
        for (k, v) in model {
            assert!(d.get(k).unwrap().as_ref() == Some(v), "{what}: get {k:.40}");
        }
        d.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
    };
    // A flush, now and then with a full disk at its first reservation of
    // released space (compaction swallows it; elsewhere the flush fails
    // and its retry succeeds).
    let flush = |d: &mut EmDict<String, Vec<u8>>, rng: &mut Rng, what: &str| {
        raw_mut(d).store.fail_next_reserve = rng.below(3) == 0;
        match d.flush() {
            Ok(()) => {}
            Err(crate::Error::Io { .. }) => {
                d.flush().unwrap_or_else(|e| panic!("{what}: flush after a failed one: {e}"))
            }
            Err(e) => panic!("{what}: flush: {e}"),
        }
        raw_mut(d).store.fail_next_reserve = false;
    };
    let mut d = open(&dir);
    let mut model: HashMap<String, Vec<u8>> = HashMap::new();
    let mut seen = [false; K_MAX + 1];
    let (mut failures, mut objects) = (0, 0);
    for round in 0..36 {
        let what = format!("seed {seed:#x} round {round}");
        // Growth with overwrites and some removals; then rounds that remove most keys.
        let shrink = round % 6 >= 4;
        for op in 0..rng.below(4000) {
            if op % 64 == 0 {
                for (k, _) in shape(raw_mut(&mut d)) {
                    seen[k] = true;
                }
            }
            let k = key(&mut rng);
            let remove = if shrink { rng.below(10) != 0 } else { rng.below(4) == 0 };
            let v = value(&mut rng);
            match rng.below(50) {
                0 | 1 => raw_mut(&mut d).store.fail_alloc_after = Some(rng.below(4)),
                // Released space that must be reserved again (§5.4) finds the disk full.
                2 => raw_mut(&mut d).store.fail_next_reserve = true,
                _ => {}
            }
            let r = if remove {
                d.remove(&k).map(|old| assert_eq!(old, model.remove(&k), "{what}: remove"))
            } else {
                objects += usize::from(v.len() > 250 || k.len() > 250);
                d.insert(k.clone(), v.clone()).map(|old| assert_eq!(old, model.insert(k.clone(), v), "{what}: insert"))
            };
            raw_mut(&mut d).store.fail_alloc_after = None;
            raw_mut(&mut d).store.fail_next_reserve = false;
            match r {
                Ok(()) => {}
                Err(crate::Error::Full { .. } | crate::Error::Io { .. }) => {
                    failures += 1;
                    assert!(d.get(&k).unwrap() == model.get(&k).cloned(), "{what}: {k:.40} after a failed change");
                }
                Err(e) => panic!("{what}: {e}"),
            }
            if rng.below(500) == 0 {
                flush(&mut d, &mut rng, &what);
            }
        }
        if shrink {
            let mut keys: Vec<String> = model.keys().cloned().collect();
            keys.sort_unstable();
            for k in keys.into_iter().filter(|_| rng.below(10) != 0) {
                assert_eq!(d.remove(&k).unwrap(), model.remove(&k), "{what}: remove");
            }
        }
        if rng.below(15) == 0 {
            d.clear().unwrap();
            model.clear();
        }
        for (k, _) in shape(raw_mut(&mut d)) {
            seen[k] = true;
        }
        match rng.below(3) {
            0 => flush(&mut d, &mut rng, &what),
            1 => {
                d.close().unwrap();
                d = open(&dir);
            }
            _ => {}
        }
        compare(&d, &model, &what);
    }
    println!("{failures} injected failures, {objects} out-of-line inserts, bucket sizes seen {seen:?}");
    assert!(seen[1] && seen[K_MAX], "seed {seed:#x}: bucket sizes seen {seen:?}");
    assert!(failures > 20 && objects > 1000, "seed {seed:#x}: {failures} failures, {objects} objects");
    d.close().unwrap();
    let d = open(&dir);
    compare(&d, &model, &format!("seed {seed:#x}: reopened at the end"));
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}
