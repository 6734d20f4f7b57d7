//! EmDict's errors: writes to a read-only dict, wrong key or value types, a
//! second writer (`Locked`), a failing `Serialize`, a newer dict format
//! version and a damaged bucket page: each a typed `Err`, never a panic, and
//! never a change to the dict.

use std::path::PathBuf;

use emds::{EmDict, Error};
use serde::{Serialize, Serializer};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emds-errors-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn writes_to_a_read_only_dict_are_refused() {
    let dir = temp_dir("ro");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.extend((0..100).map(|i| (i, i))).unwrap();
    d.close().unwrap();
    let mut d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    assert!(matches!(d.insert(1, 2), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.remove(&1), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.update(1, |_| None), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.clear(), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.retain(|_, _| false), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.extend([(1000, 1)]), Err(Error::ReadOnly { .. })));
    assert!(matches!(d.drain(), Err(Error::ReadOnly { .. })));
    d.flush().unwrap(); // nothing to flush
    assert_eq!(d.get(&1).unwrap(), Some(1));
    assert_eq!(d.len(), 100);
    // Readers share the store; a writer is refused while they hold it.
    let d2: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    assert!(matches!(EmDict::<u64, u64>::open(&dir), Err(Error::Locked { .. })));
    drop((d, d2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = temp_dir("locked");
    let d: EmDict<String, String> = EmDict::open(&dir).unwrap();
    match EmDict::<String, String>::open(&dir) {
        Err(Error::Locked { path }) => assert!(path.starts_with(&dir)),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(EmDict::<String, String>::open_read_only(&dir), Err(Error::Locked { .. })));
    drop(d);
    EmDict::<String, String>::open(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_types_give_a_decode_error_naming_the_entry() {
    let dir = temp_dir("types");
    let mut d: EmDict<String, String> = EmDict::open(&dir).unwrap();
    d.insert("key".into(), "a string value".into()).unwrap();
    d.close().unwrap();
    let d: EmDict<String, u64> = EmDict::open(&dir).unwrap();
    match d.get("key") {
        Err(Error::Decode { what, path, .. }) => {
            assert!(what.starts_with("value of entry 0 in bucket"), "{what}");
            assert_eq!(path, dir);
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    match d.iter().next() {
        Some(Err(Error::Decode { what, .. })) => assert!(what.starts_with("value of entry 0"), "{what}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    drop(d);
    let d: EmDict<u64, String> = EmDict::open(&dir).unwrap();
    match d.keys().next() {
        Some(Err(Error::Decode { what, .. })) => assert!(what.starts_with("key of entry 0"), "{what}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    drop(d);
    // The store is unchanged by the failed reads.
    let d: EmDict<String, String> = EmDict::open(&dir).unwrap();
    assert_eq!(d.get("key").unwrap().as_deref(), Some("a string value"));
    d.check().unwrap();
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_list_is_not_a_dict() {
    let dir = temp_dir("kind");
    let mut list: emds::EmList<u64> = emds::EmList::open(&dir).unwrap();
    list.push(1).unwrap();
    list.close().unwrap();
    match EmDict::<u64, u64>::open(&dir) {
        Err(Error::WrongKind { expected, found, .. }) => {
            assert!(expected.contains("EmDict") && found.contains("EmList"))
        }
        other => panic!("expected WrongKind, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Serializes as a u64, or fails (or panics) when asked to.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
struct Touchy(u64);

impl Serialize for Touchy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            666 => Err(serde::ser::Error::custom("666 refuses to serialize")),
            777 => panic!("777 panics in serialize"),
            n => s.serialize_u64(n),
        }
    }
}

#[test]
fn a_failing_serialize_changes_nothing() {
    let dir = temp_dir("serialize");
    let mut d: EmDict<Touchy, Touchy> = EmDict::open(&dir).unwrap();
    for i in 0..500 {
        d.insert(Touchy(i), Touchy(i)).unwrap();
    }
    d.flush().unwrap();
    assert!(matches!(d.insert(Touchy(666), Touchy(1)), Err(Error::Encode { what: "key", .. })));
    assert!(matches!(d.insert(Touchy(1), Touchy(666)), Err(Error::Encode { what: "value", .. })));
    assert!(matches!(d.update(Touchy(2), |_| Some(Touchy(666))), Err(Error::Encode { .. })));
    assert!(matches!(d.get(&Touchy(666)), Err(Error::Encode { .. })));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.insert(Touchy(3), Touchy(777))));
    assert!(panicked.is_err());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        d.update(Touchy(4), |_| panic!("the closure panics"))
    }));
    assert!(panicked.is_err());
    assert_eq!(d.len(), 500);
    for i in 0..500 {
        assert_eq!(d.get(&Touchy(i)).unwrap(), Some(Touchy(i)));
    }
    d.check().unwrap();
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Byte offset of the dict root inside a meta slot (docs/DESIGN.md §3).
const ROOT: usize = 80;

/// A dict of an older format (1: fixed-width pages before hashed slots) or
/// a newer one (4) is `Incompatible`, with a message naming the versions.
/// (Version 2 opens: a version-3 dict whose buckets are all one page.)
#[test]
fn an_older_or_newer_dict_format_is_incompatible() {
    for version in [1u32, 4] {
        let dir = temp_dir(&format!("version-{version}"));
        let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
        d.insert(1, 1).unwrap();
        d.close().unwrap();
        // Rewrite the dict version in both meta slots, fixing the record checksum.
        let meta = dir.join("meta");
        let mut bytes = std::fs::read(&meta).unwrap();
        for slot in [0, 4096] {
            let rec = &mut bytes[slot..slot + 256];
            if rec[..8] != *b"EMDSMETA" {
                continue;
            }
            rec[ROOT + 8..ROOT + 12].copy_from_slice(&version.to_le_bytes());
            let sum = xxhash_rust::xxh3::xxh3_64(&rec[..248]);
            rec[248..256].copy_from_slice(&sum.to_le_bytes());
        }
        std::fs::write(&meta, &bytes).unwrap();
        match EmDict::<u64, u64>::open(&dir) {
            Err(Error::Incompatible { what, .. }) => {
                assert!(what.contains(&format!("dict format version {version}")), "{what}");
                assert!(what.contains("reads versions 2..=3"), "{what}");
            }
            other => panic!("expected Incompatible, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_damaged_bucket_is_found_by_check_and_reads_do_not_panic() {
    let dir = temp_dir("damage");
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    d.extend((0..5000).map(|i| (i, i))).unwrap();
    d.close().unwrap();
    // Flip bytes all over the first segment, one page at a time, and read.
    let seg = dir.join("seg.000000");
    let original = std::fs::read(&seg).unwrap();
    let mut found_damage = 0;
    for page in 0..original.len() / 4096 {
        let mut bytes = original.clone();
        for off in [9, 10, 12, 30, 2000, 4095] {
            bytes[page * 4096 + off] ^= 0x5a;
        }
        std::fs::write(&seg, &bytes).unwrap();
        let Ok(d) = EmDict::<u64, u64>::open(&dir) else {
            found_damage += 1;
            continue;
        };
        for i in (0..5000).step_by(7) {
            let _ = d.get(&i);
        }
        let _ = d.iter().count();
        if d.check().is_err() {
            found_damage += 1;
        }
        drop(d);
    }
    assert!(found_damage > 0);
    std::fs::write(&seg, &original).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
