//! Bucket page checksums: `check()` verifies every bucket page, and a write
//! that copies a committed page verifies it first, so that damage is never
//! handed a fresh, valid checksum by the next commit. Reads do not verify
//! (docs/DESIGN.md, "What is verified when").

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::EmDict;
use super::dict::raw_mut;
use crate::Error;
use crate::alloc::PAGE_SIZE;
use crate::test_util::temp_dir;

const ENTRIES: u64 = 3000;

/// A flushed dict of `ENTRIES` entries over many buckets, and its bucket pages.
fn build(name: &str) -> (std::path::PathBuf, Vec<u64>) {
    let dir = temp_dir(name);
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir).unwrap();
    for k in 0..ENTRIES {
        d.insert(k, vec![k as u8; (k % 50) as usize]).unwrap();
    }
    // The pages where `close` left them (its compaction may move buckets).
    d.close().unwrap();
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open_read_only(&dir).unwrap();
    let mut pages = raw_mut(&mut d).all_bucket_pages();
    pages.sort_unstable();
    drop(d);
    assert!(pages.len() >= 10, "{} bucket pages", pages.len());
    (dir, pages)
}

/// Flips the last byte of the page at `addr` (entry data, or the free gap
/// of a page: covered by the checksum, not by any structural check).
fn flip_last_byte(dir: &Path, addr: u64) {
    let f =
        std::fs::OpenOptions::new().read(true).write(true).open(dir.join(format!("seg.{:06}", addr >> 40))).unwrap();
    let at = (addr & ((1 << 40) - 1)) + PAGE_SIZE as u64 - 1;
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

fn is_checksum_mismatch_at(r: &crate::Result<impl std::fmt::Debug>, addr: u64) -> bool {
    matches!(r, Err(Error::Corrupted { what, .. }) if what.contains(&format!("{addr:#x}")) && what.contains("checksum mismatch"))
}

/// A removal reads the old value before it copies the page, so when the
/// flipped byte lies in that value the refusal is its `Decode` error (naming
/// the page) rather than the copy's checksum mismatch: either way nothing changes.
fn is_refusal_at(r: &crate::Result<impl std::fmt::Debug>, addr: u64) -> bool {
    is_checksum_mismatch_at(r, addr)
        || matches!(r, Err(Error::Decode { what, .. }) if what.contains(&format!("bucket {addr:#x}")))
}

#[test]
fn check_verifies_the_checksum_of_every_bucket_page() {
    let (dir, pages) = build("bucket-sums-check");
    for &p in &pages {
        flip_last_byte(&dir, p);
        let d: EmDict<u64, Vec<u8>> = EmDict::open_read_only(&dir).unwrap();
        let r = d.check();
        assert!(is_checksum_mismatch_at(&r, p), "page {p:#x} damaged: check gave {r:?}");
        drop(d);
        flip_last_byte(&dir, p);
    }
    let d: EmDict<u64, Vec<u8>> = EmDict::open_read_only(&dir).unwrap();
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: a write copied a damaged committed bucket page without
/// verifying it, and the commit gave the copy a valid checksum, so the
/// damage passed `check()` from then on. Now the write that would copy it is
/// `Corrupted` (naming the page), changes nothing, and `check()` still
/// finds the damage after a flush.
#[test]
fn a_write_does_not_give_a_damaged_bucket_page_a_valid_checksum() {
    let (dir, pages) = build("bucket-sums-cow");
    let p = pages[pages.len() / 2];
    flip_last_byte(&dir, p);
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir).unwrap();
    let mut refused = None;
    for k in 0..ENTRIES {
        let r = d.remove(&k);
        if r.is_err() {
            assert!(is_refusal_at(&r, p), "removing key {k}: {r:?}");
            refused = Some(k);
            break;
        }
        assert!(r.unwrap().is_some(), "key {k} was there");
    }
    let k = refused.expect("a key of the damaged bucket was refused");
    assert_eq!(d.len() as u64, ENTRIES - k, "the refused removal changed nothing");
    assert!(d.contains_key(&k).unwrap(), "the refused key stays");
    let r = d.insert(k, vec![1]);
    assert!(is_refusal_at(&r, p), "an overwrite is refused too: {r:?}");
    d.flush().unwrap();
    let r = d.check();
    assert!(is_checksum_mismatch_at(&r, p), "after the flush, check gave {r:?}");
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: `reserve` (and a large `extend`, which reserves) split
/// committed buckets by reading their entries into new pages without
/// verifying the old page, so the commit gave a damaged page's bytes a
/// valid checksum. Now the split of that bucket is `Corrupted`, and
/// `check()` still finds the damage after a flush.
#[test]
fn a_reservation_does_not_give_a_damaged_bucket_page_a_valid_checksum() {
    let (dir, pages) = build("bucket-sums-reserve");
    let p = pages[pages.len() / 3];
    flip_last_byte(&dir, p);
    let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir).unwrap();
    let r = d.reserve(1_000_000);
    assert!(is_checksum_mismatch_at(&r, p), "reserve gave {r:?}");
    assert_eq!(d.len() as u64, ENTRIES);
    let r = d.extend((ENTRIES..ENTRIES + 200_000).map(|k| (k, vec![1])));
    assert!(is_checksum_mismatch_at(&r, p), "extend gave {r:?}");
    d.flush().unwrap();
    let r = d.check();
    assert!(is_checksum_mismatch_at(&r, p), "after the flush, check gave {r:?}");
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
