//! Power loss: for `EmDict`, `EmList` and `EmVec`, disk images as a power cut
//! could leave them, built at 4 KiB page granularity from the store's files as
//! of a flush and as of later, unflushed or half-committed work; plus torn
//! (half-written) meta records of a flush in flight; and, for `EmDict`, every
//! write of a flush that compacts (copies and slides of buckets) landed, in
//! full or page by page, under the record of the flush before. Every image must open to
//! exactly the model of the last flush that completed (or of the flush in
//! flight when its whole meta record and data landed), pass `check()`, and
//! accept further writes. `EMDS_IMAGES` sets the images per structure
//! (default 110 for the dict, 100 for the list and the vector).

mod common;

use std::fs;
use std::path::Path;

use common::{Dict, List, META_RECORD, META_SLOT, PAGE, Rng, Subject, TempDir, Vector};

/// Builds in `image` a disk that lost power after the state in `old` was
/// durable while the one in `new` was being written: every page of every file,
/// and each file's length and existence, from either side at random. The meta
/// file is taken from `meta_from` whole.
fn mix_image(old: &Path, new: &Path, image: &Path, meta_from: &Path, rng: &mut Rng) {
    let _ = fs::remove_dir_all(image);
    fs::create_dir_all(image).unwrap();
    for path in common::store_files(new) {
        let name = path.file_name().unwrap();
        if name == "meta" {
            fs::copy(meta_from.join("meta"), image.join("meta")).unwrap();
            continue;
        }
        let new_bytes = fs::read(&path).unwrap();
        let Ok(old_bytes) = fs::read(old.join(name)) else {
            // Created since the flush: absent, empty, cut short or whole.
            let cut = rng.below(new_bytes.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 => {}
                1 => fs::write(image.join(name), b"").unwrap(),
                2 => fs::write(image.join(name), &new_bytes[..cut]).unwrap(),
                _ => fs::write(image.join(name), &new_bytes).unwrap(),
            }
            continue;
        };
        let len = if rng.chance(50) { old_bytes.len() } else { new_bytes.len() };
        let mut out = Vec::with_capacity(len);
        for page in 0..len.div_ceil(PAGE) {
            let range = page * PAGE..((page + 1) * PAGE).min(len);
            let (first, second) = if rng.chance(50) { (&old_bytes, &new_bytes) } else { (&new_bytes, &old_bytes) };
            let side = if first.len() >= range.end { first } else { second };
            out.extend_from_slice(&side[range]);
        }
        fs::write(image.join(name), &out).unwrap();
    }
}

/// Tears the meta record that `new` wrote over `old`'s slot: random byte
/// ranges of the 256-byte record come from either side. Returns whether the
/// result is the new record whole (the commit landed).
fn tear_meta(old: &Path, new: &Path, image: &Path, rng: &mut Rng) -> bool {
    let (a, b) = (fs::read(old.join("meta")).unwrap(), fs::read(new.join("meta")).unwrap());
    assert_eq!((a.len(), b.len()), (2 * META_SLOT, 2 * META_SLOT));
    let slot = (0..2).find(|&s| a[s * META_SLOT..(s + 1) * META_SLOT] != b[s * META_SLOT..(s + 1) * META_SLOT]);
    let slot = slot.expect("a flush writes one meta slot") * META_SLOT;
    let mut out = a.clone();
    let mut at = 0;
    while at < META_RECORD {
        let end = (at + 1 + rng.below(96) as usize).min(META_RECORD);
        if rng.chance(50) {
            out[slot + at..slot + end].copy_from_slice(&b[slot + at..slot + end]);
        }
        at = end;
    }
    fs::write(image.join("meta"), &out).unwrap();
    out == b
}

#[derive(Debug, Default)]
struct Tally {
    images: usize,
    unflushed_mixes: usize,
    torn_meta_old: usize,
    torn_meta_landed: usize,
    reopened_and_written: usize,
}

fn power_loss<S: Subject>(images: usize) {
    let seed = common::seed(&format!("power loss {}", S::NAME));
    let base = TempDir::new(&format!("power-{}", S::NAME));
    let (live, flushed, image) = (base.join("live"), base.join("flushed"), base.join("image"));
    let (before, after) = (base.join("before"), base.join("after"));
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    while tally.images < images {
        let _ = fs::remove_dir_all(&live);
        let mut h = S::open(&live).unwrap();
        let mut model = S::Model::default();
        for _ in 0..rng.range(1, 4) {
            for op in S::batch(&mut rng, &mut model) {
                S::apply(&mut h, &op).unwrap();
            }
            S::flush(&mut h).unwrap();
        }
        let at_flush = model.clone();
        common::copy_dir(&live, &flushed);
        // Work after the flush, growth into new segments included.
        for _ in 0..rng.range(1, 4) {
            for op in S::batch(&mut rng, &mut model) {
                S::apply(&mut h, &op).unwrap();
            }
        }
        let mut in_flight = rng.chance(50);
        if in_flight {
            // What the files hold when the flush starts. The flush adds only
            // pages the flushed state does not reach (allocator state, fresh
            // copies), then the meta record, then (EmList, EmVec) copies shadow
            // blocks back, which only happens once the record is durable: so a
            // torn record goes with a mix of the flushed and these files.
            common::copy_dir(&live, &before);
            S::flush(&mut h).unwrap();
            common::copy_dir(&live, &after);
            // A flush with nothing to commit writes no record: then the state is the old one.
            in_flight = fs::read(flushed.join("meta")).unwrap() != fs::read(after.join("meta")).unwrap();
            if !in_flight {
                assert!(model == at_flush, "{}: a flush of changes wrote no meta record, seed {seed:#x}", S::NAME);
            }
        }
        for _ in 0..rng.range(3, 7) {
            let (expected, what) = if !in_flight {
                mix_image(&flushed, &live, &image, &flushed, &mut rng);
                tally.unflushed_mixes += 1;
                (&at_flush, "unflushed writes mixed in")
            } else if rng.chance(25) {
                // The commit's data was synced, then its meta record landed whole.
                common::copy_dir(&after, &image);
                tally.torn_meta_landed += 1;
                (&model, "the flush in flight landed")
            } else {
                // Data half written, meta record torn.
                mix_image(&flushed, &before, &image, &flushed, &mut rng);
                if tear_meta(&flushed, &after, &image, &mut rng) {
                    // The tear happened to write the whole record: then the data was synced first.
                    common::copy_dir(&after, &image);
                    tally.torn_meta_landed += 1;
                    (&model, "the flush in flight landed")
                } else {
                    tally.torn_meta_old += 1;
                    (&at_flush, "a flush in flight, data mixed, meta record torn")
                }
            };
            let context = format!("{} image {} ({what}), seed {seed:#x}", S::NAME, tally.images);
            // Read-only first: the state as the power cut left it, shadows and all.
            let ro = S::open_with(&image, common::small_segments().read_only(true))
                .unwrap_or_else(|e| panic!("{context}: read-only open: {e}"));
            common::verify::<S>(&ro, expected).unwrap_or_else(|e| panic!("{context}: read-only: {e}"));
            drop(ro);
            let opened = S::open(&image).unwrap_or_else(|e| panic!("{context}: open: {e}"));
            common::verify::<S>(&opened, expected).unwrap_or_else(|e| panic!("{context}: {e}"));
            if rng.chance(35) {
                // The image accepts writes over any leftovers of the lost work, and reopens to them.
                let mut opened = opened;
                let mut m = expected.clone();
                for op in S::batch(&mut rng, &mut m) {
                    S::apply(&mut opened, &op).unwrap_or_else(|e| panic!("{context}: write after reopen: {e}"));
                }
                S::flush(&mut opened).unwrap_or_else(|e| panic!("{context}: flush after reopen: {e}"));
                drop(opened);
                let again = S::open(&image).unwrap();
                common::verify::<S>(&again, &m).unwrap_or_else(|e| panic!("{context}: after writing: {e}"));
                tally.reopened_and_written += 1;
            }
            tally.images += 1;
        }
        drop(h);
    }
    println!("power loss {}: {tally:?}", S::NAME);
}

#[test]
fn power_loss_dict() {
    power_loss::<Dict>(common::count("EMDS_IMAGES", 110));
}

#[test]
fn power_loss_list() {
    power_loss::<List>(common::count("EMDS_IMAGES", 100));
}

#[test]
fn power_loss_vec() {
    power_loss::<Vector>(common::count("EMDS_IMAGES", 100));
}

/// Regression: `EmList::set` that rewrote the last group shorter lowered the
/// data's length without dropping the shadows of the blocks past its new end,
/// and the flush recorded them. A crash right after that flush left a store
/// that refused to open ("shadow of block 2 ... is invalid"): flushed data lost.
#[test]
fn emlist_shorter_set_at_the_end_leaves_no_shadow_past_the_data() {
    let base = TempDir::new("shadow-past-end");
    let dir = base.join("store");
    let mut l: emds::EmList<Vec<u8>> = emds::EmList::open(&dir).unwrap();
    for i in 0..3u8 {
        l.push(vec![i; 3000]).unwrap();
    }
    l.flush().unwrap();
    l.set(2, vec![9; 3000]).unwrap(); // a shadow of the committed block 2
    l.set(2, vec![5; 10]).unwrap(); // the data now ends in block 1
    l.check().unwrap();
    l.flush().unwrap();
    // The files as a kill -9 right after the flush leaves them.
    common::copy_dir(&dir, &base.join("crashed"));
    let again: emds::EmList<Vec<u8>> = emds::EmList::open(base.join("crashed")).unwrap();
    assert_eq!(again.get(2).unwrap(), Some(vec![5; 10]));
    assert_eq!(again.get(1).unwrap(), Some(vec![1; 3000]));
    again.check().unwrap();
    drop(l);
}

/// Elastic buckets (docs/DESIGN.md "EmDict pages"): a power cut while
/// buckets grow from one page to several, split and shrink (the work after
/// the last flush, and a flush in flight with its meta record torn) leaves
/// the last flushed dict, which opens, checks, reads back and takes writes.
#[test]
fn power_loss_while_dict_buckets_grow_and_split() {
    use emds::EmDict;
    use std::collections::BTreeMap;
    let seed = common::seed("power loss growth");
    let base = TempDir::new("power-growth");
    let (live, flushed, image, after) =
        (base.join("live"), base.join("flushed"), base.join("image"), base.join("after"));
    let mut rng = Rng(seed);
    for round in 0..12 {
        let _ = fs::remove_dir_all(&live);
        let mut d: EmDict<u64, u64> = EmDict::open_with(&live, &common::small_segments()).unwrap();
        let mut model = BTreeMap::new();
        // A few one-page buckets (fewer than a page's entries each), flushed.
        for _ in 0..rng.range(50, 600) {
            let k = rng.next();
            d.insert(k, !k).unwrap();
            model.insert(k, !k);
        }
        d.flush().unwrap();
        let at_flush = model.clone();
        common::copy_dir(&live, &flushed);
        // Growth past one page, splits, and some removals that shrink buckets.
        for _ in 0..rng.range(200, 3000) {
            let k = rng.next();
            d.insert(k, k).unwrap();
            model.insert(k, k);
        }
        for k in at_flush.keys().filter(|_| rng.chance(30)) {
            d.remove(k).unwrap();
            model.remove(k);
        }
        let in_flight = rng.chance(50);
        let before = base.join("before");
        common::copy_dir(&live, &before);
        if in_flight {
            d.flush().unwrap();
            common::copy_dir(&live, &after);
        }
        drop(d);
        for _ in 0..4 {
            mix_image(&flushed, &before, &image, &flushed, &mut rng);
            let mut expected = &at_flush;
            if in_flight && tear_meta(&flushed, &after, &image, &mut rng) {
                // The whole new record landed: then the data was synced first.
                common::copy_dir(&after, &image);
                expected = &model;
            }
            let context = format!("round {round}, in flight {in_flight}, seed {seed:#x}");
            let mut d: EmDict<u64, u64> =
                EmDict::open_with(&image, &common::small_segments()).unwrap_or_else(|e| panic!("{context}: open: {e}"));
            let got = common::read_dict(&d).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(&got == expected, "{context}: {} entries, expected {}", got.len(), expected.len());
            d.check().unwrap_or_else(|e| panic!("{context}: check: {e}"));
            for _ in 0..500 {
                let k = rng.next();
                d.insert(k, 1).unwrap_or_else(|e| panic!("{context}: insert: {e}"));
            }
            d.flush().unwrap();
            d.check().unwrap_or_else(|e| panic!("{context}: check after writes: {e}"));
        }
    }
}

/// Random inserts, overwrites and removals (`remove` of about `removals`
/// percent) of keys from `key`, applied to `d` and `model`.
fn dict_churn<K, V>(
    d: &mut emds::EmDict<K, V>,
    model: &mut std::collections::BTreeMap<K, V>,
    rng: &mut Rng,
    ops: u64,
    removals: u64,
    key: &impl Fn(&mut Rng) -> K,
    value: &impl Fn(&mut Rng) -> V,
) where
    K: serde::Serialize + serde::de::DeserializeOwned + Ord + Clone,
    V: serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    for _ in 0..ops {
        let k = key(rng);
        if rng.chance(removals) {
            d.remove(&k).unwrap();
            model.remove(&k);
        } else {
            let v = value(rng);
            d.insert(k.clone(), v.clone()).unwrap();
            model.insert(k, v);
        }
    }
}

/// The writes of a flush itself (compaction's copies of committed buckets
/// into the free pages below them, the slides of this transaction's
/// buckets over the free runs below them, the directory, the allocator
/// state, the checksums) touch no page that the last committed state
/// reaches (docs/DESIGN.md §6.1, §5.4 Compaction): a power cut before the
/// flush's meta record lands, with all of those writes on disk or any mix
/// of them page by page, leaves the last flushed dict, which opens
/// read-only and read-write, reads back, checks and takes writes. Release
/// is off (`release_threshold(0)`), so the files after the flush are what
/// the disk can hold just before its meta record is written (a release
/// punches holes only once the record is durable, when the record before
/// can no longer be picked). Transactions of at most `ops` operations, about
/// `removals` percent of them removals in some (buckets shrink and merge)
/// and a third of that in others (buckets grow, split and are copied).
fn flush_writes_reach_nothing_committed<K, V>(
    name: &str,
    (ops, removals): (u64, u64),
    key: impl Fn(&mut Rng) -> K,
    value: impl Fn(&mut Rng) -> V,
) where
    K: serde::Serialize + serde::de::DeserializeOwned + Ord + Clone + std::fmt::Debug,
    V: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Clone + std::fmt::Debug,
{
    use emds::EmDict;
    use std::collections::BTreeMap;
    let seed = common::seed(name);
    let base = TempDir::new(&name.replace(' ', "-"));
    let (live, flushed, after, image) =
        (base.join("live"), base.join("flushed"), base.join("after"), base.join("image"));
    let mut opts = common::small_segments();
    opts.release_threshold(0).durable(false);
    let mut rng = Rng(seed);
    for round in 0..8 {
        let _ = fs::remove_dir_all(&live);
        let mut d: EmDict<K, V> = EmDict::open_with(&live, &opts).unwrap();
        let mut model = BTreeMap::new();
        // Flushed transactions of growth and of removals: each frees the
        // pages its copies replaced, between and below live buckets.
        for t in 0..rng.range(2, 6) {
            let removing = if t % 2 == 1 { removals } else { removals / 3 };
            let n = rng.range(ops / 4, ops);
            dict_churn(&mut d, &mut model, &mut rng, n, removing, &key, &value);
            d.flush().unwrap();
        }
        let at_flush = model.clone();
        common::copy_dir(&live, &flushed);
        let removing = if rng.chance(50) { removals } else { removals / 3 };
        let n = rng.range(ops / 8, ops / 2);
        dict_churn(&mut d, &mut model, &mut rng, n, removing, &key, &value);
        d.flush().unwrap();
        common::copy_dir(&live, &after);
        drop(d);
        for i in 0..5 {
            if i == 0 {
                // Every write of the flush landed, its meta record did not.
                common::copy_dir(&after, &image);
                fs::copy(flushed.join("meta"), image.join("meta")).unwrap();
            } else {
                mix_image(&flushed, &after, &image, &flushed, &mut rng);
            }
            let context = format!("{name}: round {round} image {i}, seed {seed:#x}");
            let ro: EmDict<K, V> = EmDict::open_with(&image, common::small_segments().read_only(true))
                .unwrap_or_else(|e| panic!("{context}: read-only open: {e}"));
            let got = common::read_dict(&ro).unwrap_or_else(|e| panic!("{context}: read-only: {e}"));
            assert!(got == at_flush, "{context}: read-only: {} entries, {} flushed", got.len(), at_flush.len());
            ro.check().unwrap_or_else(|e| panic!("{context}: read-only check: {e}"));
            drop(ro);
            let mut d: EmDict<K, V> =
                EmDict::open_with(&image, &opts).unwrap_or_else(|e| panic!("{context}: open: {e}"));
            let got = common::read_dict(&d).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(got == at_flush, "{context}: {} entries, {} flushed", got.len(), at_flush.len());
            d.check().unwrap_or_else(|e| panic!("{context}: check: {e}"));
            let mut m = at_flush.clone();
            dict_churn(&mut d, &mut m, &mut rng, ops / 8, removals, &key, &value);
            d.flush().unwrap_or_else(|e| panic!("{context}: flush after reopen: {e}"));
            d.check().unwrap_or_else(|e| panic!("{context}: check after writes: {e}"));
            drop(d);
            let d: EmDict<K, V> = EmDict::open_with(&image, &opts).unwrap();
            let got = common::read_dict(&d).unwrap_or_else(|e| panic!("{context}: after writes: {e}"));
            assert!(got == m, "{context}: after writes: {} entries, {} written", got.len(), m.len());
        }
        // The record landed too: the new state.
        let d: EmDict<K, V> = EmDict::open_with(&after, &opts).unwrap();
        let got = common::read_dict(&d).unwrap_or_else(|e| panic!("{name}: round {round}, landed: {e}"));
        assert!(got == model, "{name}: round {round}, the landed flush, seed {seed:#x}");
        d.check().unwrap();
    }
}

#[test]
fn power_loss_before_the_record_of_a_compacting_flush_integers() {
    flush_writes_reach_nothing_committed("flush writes packed", (6000, 60), |r| r.below(30_000), |r| r.next());
}

#[test]
fn power_loss_before_the_record_of_a_compacting_flush_objects() {
    // Keys, every 37th out of line; values empty to over two pages.
    let value = |r: &mut Rng| {
        let len = match r.below(10) {
            0..=1 => 0,
            2..=6 => r.below(40),
            7..=8 => r.range(200, 3000),
            _ => r.range(4096, 9000),
        };
        r.bytes(len as usize)
    };
    flush_writes_reach_nothing_committed(
        "flush writes objects",
        (2000, 60),
        |r| common::dict_key(r.below(5000)),
        value,
    );
}
