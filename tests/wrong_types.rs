//! Wrong types: a store written with one key, value or element type and opened
//! with another gives a typed error, `Decode` naming the entry or `WrongKind`,
//! wherever the stored encoding cannot be a value of the requested type (a
//! `u64` key read as a `String`, a `String` element read as a `u64` with bytes
//! left over, invalid UTF-8). Never a panic and never a garbage value. A store
//! of one structure opened as another, or an `EmVec` opened with another
//! element size or alignment, is `WrongKind`. The store itself is untouched.
//! The error says what is wrong: a struct read as one of another shape names
//! the field and what the type found there, bytes left over say how many.

mod common;

use std::path::Path;

use common::TempDir;
use emds::{EmDict, EmList, EmVec, Error, OpenOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn read_only() -> OpenOptions {
    OpenOptions::new().read_only(true).clone()
}

/// Asserts a decode error that names what it failed on.
fn assert_decode<T: std::fmt::Debug>(r: emds::Result<T>, context: &str) {
    match r {
        Err(Error::Decode { what, detail, .. }) => {
            assert!(what.chars().any(|c| c.is_ascii_digit()), "{context}: the decode error names no entry: {what:?}");
            assert!(!detail.is_empty(), "{context}: the decode error of {what} does not say what is wrong");
        }
        Err(Error::WrongKind { .. }) => {}
        other => panic!("{context}: expected a decode error, got {other:?}"),
    }
}

/// Every item of the iterator is an error (a typed one); none is a value.
fn assert_all_fail<T: std::fmt::Debug>(it: impl Iterator<Item = emds::Result<T>>, context: &str) {
    let mut n = 0;
    for item in it.take(10_000) {
        assert_decode(item, context);
        n += 1;
    }
    assert!(n > 0, "{context}: the iterator yielded nothing");
}

/// Opens `dir` as `EmDict<K2, V2>` read-only; the store was written with other types.
fn open_dict_as<K2, V2>(dir: &Path) -> Option<EmDict<K2, V2>>
where
    K2: Serialize + DeserializeOwned,
    V2: Serialize + DeserializeOwned,
{
    match EmDict::<K2, V2>::open_with(dir, &read_only()) {
        Ok(d) => Some(d),
        Err(Error::WrongKind { .. }) => None,
        Err(e) => panic!("opening with other types: expected Ok or WrongKind, got {e}"),
    }
}

#[test]
fn dict_of_u64_to_string_opened_as_string_to_bytes() {
    let dir = TempDir::new("wrong-dict");
    let mut d: EmDict<u64, String> = EmDict::open(dir.path()).unwrap();
    // Keys from 1: a one-byte varint k >= 1 read as a String needs k more bytes than there are.
    for k in 1..=400u64 {
        d.insert(k * 7, format!("value {k}")).unwrap();
    }
    d.close().unwrap();
    if let Some(wrong) = open_dict_as::<String, Vec<u8>>(dir.path()) {
        assert_all_fail(wrong.iter(), "iter of EmDict<u64,String> as EmDict<String,Vec<u8>>");
        assert_all_fail(wrong.keys(), "keys of EmDict<u64,String> as EmDict<String,Vec<u8>>");
        // Looking up a key of the wrong type finds nothing (encodings differ) or fails typed.
        match wrong.get("key") {
            Ok(None) | Err(Error::Decode { .. }) => {}
            other => panic!("get of a String key: {other:?}"),
        }
        drop(wrong);
    }
    // The store is intact for its real types.
    let d: EmDict<u64, String> = EmDict::open(dir.path()).unwrap();
    assert_eq!(d.len(), 400);
    assert_eq!(d.get(&70).unwrap(), Some("value 10".to_string()));
    d.check().unwrap();
}

#[test]
fn dict_values_of_another_type_fail_on_get() {
    let dir = TempDir::new("wrong-dict-values");
    let mut d: EmDict<u64, u64> = EmDict::open(dir.path()).unwrap();
    // Values >= 1000 are two-byte varints whose first byte, read as a string length, is >= 128.
    for k in 0..300u64 {
        d.insert(k, 1000 + k).unwrap();
    }
    d.close().unwrap();
    if let Some(wrong) = open_dict_as::<u64, String>(dir.path()) {
        for k in [0u64, 1, 150, 299] {
            assert_decode(wrong.get(&k), &format!("get {k} of EmDict<u64,u64> as EmDict<u64,String>"));
        }
        assert_all_fail(wrong.iter(), "iter of EmDict<u64,u64> as EmDict<u64,String>");
    }
    let d: EmDict<u64, u64> = EmDict::open(dir.path()).unwrap();
    assert_eq!(d.get(&7).unwrap(), Some(1007));
    d.check().unwrap();
}

/// Opens `dir` as `EmList<T2>` read-only; the store was written with another element type.
fn open_list_as<T2: Serialize + DeserializeOwned>(dir: &Path) -> Option<EmList<T2>> {
    match EmList::<T2>::open_with(dir, &read_only()) {
        Ok(l) => Some(l),
        Err(Error::WrongKind { .. }) => None,
        Err(e) => panic!("opening with another element type: expected Ok or WrongKind, got {e}"),
    }
}

#[test]
fn list_of_strings_opened_as_u64_leaves_bytes_over() {
    let dir = TempDir::new("wrong-list-strings");
    let mut l: EmList<String> = EmList::open(dir.path()).unwrap();
    // "abc" is [3, a, b, c]: a u64 decoder takes 3 and leaves three bytes, so it is not a u64.
    for i in 0..200 {
        l.push(format!("element {i}")).unwrap();
    }
    l.close().unwrap();
    if let Some(wrong) = open_list_as::<u64>(dir.path()) {
        for i in [0usize, 1, 100, 199] {
            assert_decode(wrong.get(i), &format!("get {i} of EmList<String> as EmList<u64>"));
        }
        assert_all_fail(wrong.iter(), "iter of EmList<String> as EmList<u64>");
    }
    let l: EmList<String> = EmList::open(dir.path()).unwrap();
    assert_eq!(l.get(5).unwrap(), Some("element 5".to_string()));
    l.check().unwrap();
}

#[test]
fn list_of_u64_opened_as_narrower_types() {
    let dir = TempDir::new("wrong-list-ints");
    let mut l: EmList<u64> = EmList::open(dir.path()).unwrap();
    // Three-byte varints above u16::MAX: no u16, no u8, no (u8, u8) fits three bytes exactly.
    for i in 0..200u64 {
        l.push(100_000 + i).unwrap();
    }
    l.close().unwrap();
    if let Some(wrong) = open_list_as::<u16>(dir.path()) {
        assert_all_fail(wrong.iter(), "EmList<u64> as EmList<u16>");
    }
    if let Some(wrong) = open_list_as::<u8>(dir.path()) {
        assert_all_fail(wrong.iter(), "EmList<u64> as EmList<u8>");
    }
    if let Some(wrong) = open_list_as::<(u8, u8)>(dir.path()) {
        assert_all_fail(wrong.iter(), "EmList<u64> as EmList<(u8, u8)>");
        assert_decode(wrong.get(3), "get 3 of EmList<u64> as EmList<(u8, u8)>");
    }
    let l: EmList<u64> = EmList::open(dir.path()).unwrap();
    assert_eq!(l.get(3).unwrap(), Some(100_003));
    l.check().unwrap();
}

#[test]
fn list_of_bytes_that_are_not_utf8_opened_as_strings() {
    let dir = TempDir::new("wrong-list-utf8");
    let mut l: EmList<Vec<u8>> = EmList::open(dir.path()).unwrap();
    for i in 0..100u8 {
        l.push(vec![0xff, 0xfe, i]).unwrap();
    }
    l.close().unwrap();
    if let Some(wrong) = open_list_as::<String>(dir.path()) {
        assert_all_fail(wrong.iter(), "EmList<Vec<u8>> of invalid UTF-8 as EmList<String>");
    }
}

#[test]
fn vec_with_another_element_size_or_alignment_is_wrong_kind() {
    let dir = TempDir::new("wrong-vec");
    let mut v: EmVec<u32> = EmVec::open(dir.path()).unwrap();
    v.extend_from_slice(&[1, 2, 3]).unwrap();
    v.close().unwrap();
    for r in [
        EmVec::<u64>::open(dir.path()).map(drop),
        EmVec::<u16>::open(dir.path()).map(drop),
        EmVec::<[u8; 4]>::open(dir.path()).map(drop),
        EmVec::<u64>::open_with(dir.path(), &read_only()).map(drop),
    ] {
        assert!(matches!(r, Err(Error::WrongKind { .. })), "{r:?}");
    }
    let v: EmVec<u32> = EmVec::open(dir.path()).unwrap();
    assert_eq!(v.len(), 3);
    v.check().unwrap();
}

#[test]
fn a_store_opened_as_another_structure_is_wrong_kind() {
    let dir = TempDir::new("wrong-kind");
    let (d, l, v) = (dir.join("dict"), dir.join("list"), dir.join("vec"));
    let mut dict: EmDict<u64, u64> = EmDict::open(&d).unwrap();
    dict.insert(1, 2).unwrap();
    dict.close().unwrap();
    let mut list: EmList<u64> = EmList::open(&l).unwrap();
    list.push(1).unwrap();
    list.close().unwrap();
    let mut vec: EmVec<u64> = EmVec::open(&v).unwrap();
    vec.push(1).unwrap();
    vec.close().unwrap();
    let wrong = |r: emds::Result<()>, what: &str| {
        assert!(matches!(r, Err(Error::WrongKind { .. })), "{what}: {r:?}");
    };
    for ro in [false, true] {
        let o = OpenOptions::new().read_only(ro).clone();
        wrong(EmList::<u64>::open_with(&d, &o).map(drop), "dict as list");
        wrong(EmVec::<u64>::open_with(&d, &o).map(drop), "dict as vec");
        wrong(EmDict::<u64, u64>::open_with(&l, &o).map(drop), "list as dict");
        wrong(EmVec::<u64>::open_with(&l, &o).map(drop), "list as vec");
        wrong(EmDict::<u64, u64>::open_with(&v, &o).map(drop), "vec as dict");
        wrong(EmList::<u64>::open_with(&v, &o).map(drop), "vec as list");
    }
    // Nothing was changed by the refused opens.
    assert_eq!(EmDict::<u64, u64>::open(&d).unwrap().get(&1).unwrap(), Some(2));
    assert_eq!(EmList::<u64>::open(&l).unwrap().get(0).unwrap(), Some(1));
    assert_eq!(EmVec::<u64>::open(&v).unwrap().len(), 1);
}

/// Regression: EmList reported an element with bytes left over after decoding
/// as `Error::Corrupted` (a damaged file) instead of `Error::Decode` naming the
/// element, unlike EmDict; a store written with another type is not damaged.
#[test]
fn emlist_leftover_bytes_are_a_decode_error_not_corruption() {
    let dir = TempDir::new("wrong-list-leftover");
    let mut l: EmList<(u32, u32)> = EmList::open(dir.path()).unwrap();
    l.push((1, 2)).unwrap();
    l.close().unwrap();
    let wrong: EmList<u32> = EmList::open_read_only(dir.path()).unwrap();
    match wrong.get(0) {
        Err(Error::Decode { what, detail, .. }) => {
            assert!(what.contains("element 0"), "{what}");
            assert!(detail.starts_with("1 byte left over after the value"), "{detail}");
        }
        other => panic!("expected Decode naming element 0, got {other:?}"),
    }
    drop(wrong);
    let l: EmList<(u32, u32)> = EmList::open(dir.path()).unwrap();
    assert_eq!(l.get(0).unwrap(), Some((1, 2)));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Before {
    name: String,
    mode: u8,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Mode {
    Read,
    Write,
}

/// `Before` with `mode` an enum of two variants: bytes of `Before` with mode
/// 0 or 1 read as an `After`, others do not.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct After {
    name: String,
    mode: Mode,
    tags: Vec<String>,
}

fn before(i: u8) -> Before {
    Before { name: format!("n{i}"), mode: i % 4, tags: vec!["t".into()] }
}

/// A store written with one struct and read as a struct of another shape:
/// the error names the field and says what the type found there.
#[test]
fn a_struct_of_another_shape_names_the_field_and_the_problem() {
    let dir = TempDir::new("wrong-struct-dict");
    let mut d: EmDict<String, Before> = EmDict::open(dir.path()).unwrap();
    for i in 0..50u8 {
        d.insert(format!("k{i}"), before(i)).unwrap();
    }
    d.close().unwrap();
    let wrong = open_dict_as::<String, After>(dir.path()).expect("serde types are not recorded");
    assert_eq!(wrong.get("k1").unwrap().map(|a| a.mode), Some(Mode::Write));
    match wrong.get("k2") {
        Err(Error::Decode { what, detail, .. }) => {
            assert!(what.starts_with("value of entry "), "{what}");
            assert_eq!(detail, "invalid value: integer `2`, expected variant index 0 <= i < 2 (at `mode`)");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    let errors: Vec<String> = wrong.iter().filter_map(|r| r.err()).map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 24, "{errors:?}");
    assert!(errors.iter().all(|e| e.contains("expected variant index 0 <= i < 2 (at `mode`)")), "{errors:?}");
    drop(wrong);

    let dir = TempDir::new("wrong-struct-list");
    let mut l: EmList<(u32, Before)> = EmList::open(dir.path()).unwrap();
    for i in 0..8u8 {
        l.push((i.into(), before(i))).unwrap();
    }
    l.close().unwrap();
    let wrong = open_list_as::<(u32, After)>(dir.path()).expect("serde types are not recorded");
    match wrong.get(3) {
        Err(Error::Decode { what, detail, .. }) => {
            assert_eq!(what, "element 3");
            assert_eq!(detail, "invalid value: integer `3`, expected variant index 0 <= i < 2 (at `[1].mode`)");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_eq!(wrong.iter().filter(|r| r.is_err()).count(), 4);
}
