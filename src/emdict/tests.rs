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

/// Uniform entries (u64 keys and values) end up in fixed-width pages, and
/// entries of very different sizes in variable-width ones; both read back.
#[test]
fn page_formats_follow_the_entries() {
    let count_fixed = |raw: &super::raw::RawDict| {
        let mut pages: Vec<u64> = raw.dir.entries.clone();
        pages.dedup();
        let fixed = pages.iter().filter(|&&p| raw.bucket(p).unwrap().width().is_some()).count();
        (fixed, pages.len())
    };
    let dir = temp_dir("formats");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.extend((0..20_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i))).unwrap();
    let (fixed, pages) = count_fixed(raw_mut(&mut d));
    assert!(pages > 10 && fixed * 10 >= pages * 9, "{fixed} of {pages} pages fixed-width");
    // A wider value forces its page to be rewritten wider (or variable).
    d.insert(5u64.wrapping_mul(0x9E37_79B9_7F4A_7C15), u64::MAX).unwrap();
    d.check().unwrap();
    drop(d);
    let dir2 = temp_dir("formats-var");
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir2).unwrap();
    d.extend((0..3000u64).map(|i| (i, vec![7; (i % 97) as usize]))).unwrap();
    let (fixed, pages) = count_fixed(raw_mut(&mut d));
    assert!(pages > 10 && fixed * 10 <= pages, "{fixed} of {pages} pages fixed-width");
    for i in 0..3000u64 {
        assert_eq!(d.get(&i).unwrap().map(|v| v.len()), Some((i % 97) as usize));
    }
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}
