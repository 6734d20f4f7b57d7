//! Unit tests that need the dict's internals: forced hash collisions.

use std::collections::HashMap;

use super::EmDict;
use super::dict::raw_mut;
use crate::OpenOptions;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("emds-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

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
    // The one directory page is copied (allocation 0), then the index (allocation 1) fails.
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
