//! EmList against a `Vec` model: random pushes, sets (same and other sizes),
//! pops, truncations, inserts, removes, flushes, closes and reopens, for
//! elements from `()` to a megabyte; every flush and the end run `check()`.
//! Also: a failing or panicking `Serialize` leaves the list as it was, and a
//! element that does not decode is an error naming its index, which `pop` keeps.

use emds::{EmList, Error, OpenOptions};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

mod common;
use common::Rng;

trait Elem: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug {
    fn make(r: &mut Rng) -> Self;
}

impl Elem for () {
    fn make(_: &mut Rng) -> Self {}
}
impl Elem for u8 {
    fn make(r: &mut Rng) -> Self {
        r.next() as u8
    }
}
impl Elem for (u64, u64) {
    fn make(r: &mut Rng) -> Self {
        // Small and large varints alike.
        (r.next() >> (r.next() % 64), r.index(1000) as u64)
    }
}
impl Elem for String {
    fn make(r: &mut Rng) -> Self {
        let n = match r.index(10) {
            0 => 250 + r.index(10), // around the long-length threshold
            1 => r.index(5000),
            _ => r.index(40),
        };
        (0..n).map(|i| (b'a' + ((i as u64 + r.0) % 26) as u8) as char).collect()
    }
}
impl Elem for Vec<u8> {
    fn make(r: &mut Rng) -> Self {
        let n = match r.index(40) {
            0 => (1 << 20) + r.index(100), // a megabyte
            1..5 => r.index(20_000),
            _ => r.index(300),
        };
        let x = r.next() as u8;
        (0..n).map(|i| x.wrapping_add(i as u8)).collect()
    }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("emds-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 16 << 20).durable(false);
    o
}

fn same<T: Elem>(l: &EmList<T>, model: &[T], step: usize, seed: u64) {
    assert_eq!(l.len(), model.len(), "seed {seed:#x} step {step}: length");
    for (i, (got, want)) in l.iter().zip(model).enumerate() {
        assert_eq!(&got.unwrap(), want, "seed {seed:#x} step {step}: element {i}");
    }
    let back: Vec<T> = l.iter().rev().map(|r| r.unwrap()).collect();
    assert!(back.iter().rev().eq(model.iter()), "seed {seed:#x} step {step}: reverse iteration");
}

fn run<T: Elem>(name: &str, steps: usize, scale: usize) {
    let seed = common::seed(name);
    let path = dir(name);
    let mut r = Rng(seed);
    let mut l: EmList<T> = EmList::open_with(&path, &opts()).unwrap();
    let mut model: Vec<T> = Vec::new();
    let mut flushed: Vec<T> = Vec::new();
    for step in 0..steps {
        match r.index(100) {
            0..30 => {
                let x = T::make(&mut r);
                l.push(x.clone()).unwrap();
                model.push(x);
            }
            30..36 => {
                let n = r.index(scale);
                let xs: Vec<T> = (0..n).map(|_| T::make(&mut r)).collect();
                l.extend(xs.iter().cloned()).unwrap();
                model.extend(xs);
            }
            36..52 if !model.is_empty() => {
                let i = r.index(model.len());
                // Half the time a value of the same encoded size (rewritten in place).
                let x = if r.index(2) == 0 {
                    model[model.len() - 1 - r.index(model.len())].clone()
                } else {
                    T::make(&mut r)
                };
                l.set(i, x.clone()).unwrap();
                model[i] = x;
            }
            52..59 => assert_eq!(l.pop().unwrap(), model.pop(), "seed {seed:#x} step {step}: pop"),
            59..62 => {
                let n = model.len().saturating_sub(r.index(40));
                l.truncate(n).unwrap();
                model.truncate(n);
            }
            62..64 => {
                let i = model.len().saturating_sub(r.index(50));
                let x = T::make(&mut r);
                l.insert(i, x.clone()).unwrap();
                model.insert(i, x);
            }
            64..66 if !model.is_empty() => {
                let i = model.len() - 1 - r.index(model.len().min(50));
                assert_eq!(l.remove(i).unwrap(), model.remove(i));
            }
            66..69 if !model.is_empty() => {
                let i = r.index(model.len());
                assert_eq!(l.swap_remove(i).unwrap(), model.swap_remove(i));
            }
            69..75 => {
                l.flush().unwrap();
                flushed = model.clone();
                l.check().unwrap();
            }
            75..79 => {
                l.close().unwrap();
                flushed = model.clone();
                l = EmList::open_with(&path, &opts()).unwrap();
                l.check().unwrap();
            }
            79..81 => {
                drop(l);
                flushed = model.clone();
                l = EmList::open_with(&path, &opts()).unwrap();
            }
            81..83 => {
                l.flush().unwrap();
                flushed = model.clone();
                drop(l);
                let ro: EmList<T> = EmList::open_read_only(&path).unwrap();
                same(&ro, &model, step, seed);
                ro.check().unwrap();
                drop(ro);
                l = EmList::open_with(&path, &opts()).unwrap();
            }
            83..85 => l.clear().map(|()| model.clear()).unwrap(),
            85..88 => {
                // Everything written since the flush is in the files now, yet
                // the copy opens to exactly the flushed state.
                let copy = snapshot(&path, step);
                let c: EmList<T> = EmList::open_read_only(&copy).unwrap();
                same(&c, &flushed, step, seed);
                c.check().unwrap();
                drop(c);
                std::fs::remove_dir_all(&copy).unwrap();
            }
            _ => {
                let i = r.index(model.len() + 2);
                assert_eq!(l.get(i).unwrap().as_ref(), model.get(i), "seed {seed:#x} step {step}: get {i}");
                let a = r.index(model.len() + 1);
                let b = a + r.index((model.len() - a).min(100) + 1);
                assert_eq!(l.get_range(a..b).unwrap().as_deref(), model.get(a..b), "seed {seed:#x} step {step}");
            }
        }
        if step % 32 == 0 {
            same(&l, &model, step, seed);
        }
        assert!(matches!(l.set(model.len(), T::make(&mut r)), Err(Error::IndexOutOfBounds { .. })));
    }
    same(&l, &model, steps, seed);
    l.check().unwrap();
    let _ = flushed;
    l.close().unwrap();
    let l: EmList<T> = EmList::open_read_only(&path).unwrap();
    same(&l, &model, steps, seed);
    l.check().unwrap();
    drop(l);
    std::fs::remove_dir_all(&path).unwrap();
}

/// Copies the store's files as they are now, flushed or not, into a new
/// directory: what a crash at this instant would leave (the page cache survives
/// a process crash).
fn snapshot(path: &std::path::Path, n: usize) -> std::path::PathBuf {
    let copy = path.with_extension(format!("snap{n}"));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(path).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    copy
}

#[test]
fn units_against_a_vec() {
    run::<()>("emlist-unit", 12000, 3000);
}

#[test]
fn bytes_against_a_vec() {
    run::<u8>("emlist-u8", 15000, 3000);
}

#[test]
fn pairs_against_a_vec() {
    run::<(u64, u64)>("emlist-pairs", 15000, 2000);
}

#[test]
fn strings_against_a_vec() {
    run::<String>("emlist-strings", 10000, 200);
}

#[test]
fn byte_vectors_up_to_a_megabyte_against_a_vec() {
    run::<Vec<u8>>("emlist-blobs", 2000, 20);
}

/// Serializes as a u32, but fails for `FAIL` and panics for `PANIC`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Flaky(u32);
const FAIL: u32 = 7;
const PANIC: u32 = 8;

impl Serialize for Flaky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            FAIL => Err(serde::ser::Error::custom("refused")),
            PANIC => panic!("Serialize panicked"),
            v => s.serialize_u32(v),
        }
    }
}

#[test]
fn a_failing_or_panicking_serialize_changes_nothing() {
    let path = dir("emlist-flaky");
    let mut l: EmList<Flaky> = EmList::open(&path).unwrap();
    l.extend((0..40).map(|i| Flaky(i % 5))).unwrap();
    let before = l.to_vec().unwrap();
    assert!(matches!(l.push(Flaky(FAIL)), Err(Error::Encode { .. })));
    assert!(matches!(l.set(3, Flaky(FAIL)), Err(Error::Encode { .. })));
    assert!(matches!(l.insert(3, Flaky(FAIL)), Err(Error::Encode { .. })));
    for op in 0..3 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
            0 => l.push(Flaky(PANIC)),
            1 => l.set(39, Flaky(PANIC)),
            _ => l.insert(0, Flaky(PANIC)),
        }));
        assert!(caught.is_err());
    }
    assert_eq!(l.to_vec().unwrap(), before);
    l.check().unwrap();
    l.push(Flaky(1)).unwrap();
    assert_eq!(l.len(), 41);
    l.close().unwrap();
    std::fs::remove_dir_all(&path).unwrap();
}

#[test]
fn an_element_that_does_not_decode_is_named_and_kept() {
    let path = dir("emlist-decode");
    let mut l: EmList<Vec<u8>> = EmList::open(&path).unwrap();
    l.push(b"fine".to_vec()).unwrap();
    l.push(vec![0xff, 0xfe]).unwrap(); // not UTF-8
    l.close().unwrap();
    let mut s: EmList<String> = EmList::open(&path).unwrap();
    assert_eq!(s.get(0).unwrap().as_deref(), Some("fine"));
    match s.get(1) {
        Err(Error::Decode { what, .. }) => assert!(what.contains("element 1"), "{what}"),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(matches!(s.pop(), Err(Error::Decode { .. })));
    assert_eq!(s.len(), 2, "pop keeps an element it cannot decode");
    let items: Vec<_> = s.iter().collect();
    assert!(items[0].is_ok() && items[1].is_err());
    assert!(matches!(s.check(), Err(Error::Decode { .. })));
    s.truncate(1).unwrap();
    s.check().unwrap();
    s.close().unwrap();
    std::fs::remove_dir_all(&path).unwrap();
}

/// Regression (seed 0x18ecd107fd292ee5 of `byte_vectors_up_to_a_megabyte_against_a_vec`):
/// rewriting the last group at the end of the data with a shorter element
/// left shadows of blocks past the new data length, the commit recorded them,
/// and the table no longer opened ("shadow of block 1 ... is invalid").
#[test]
fn a_shortened_rewrite_leaves_no_shadow_past_the_length() {
    let path = dir("emlist-shadow-past-len");
    let mut l: EmList<Vec<u8>> = EmList::open_with(&path, OpenOptions::new().truncate(true)).unwrap();
    l.push(vec![1; 10]).unwrap();
    l.push(vec![2; 20_000]).unwrap(); // the data spans blocks 0..=4
    l.flush().unwrap();
    l.set(1, vec![3; 30_000]).unwrap(); // rewritten in place over committed blocks: shadows
    l.set(1, vec![4; 5]).unwrap(); // the data shrinks below them
    l.check().unwrap();
    l.flush().unwrap();
    // What a crash now would leave is the flushed state, and it opens.
    let copy = snapshot(&path, 0);
    let c: EmList<Vec<u8>> = EmList::open_read_only(&copy).unwrap();
    assert_eq!(c.get(1).unwrap(), Some(vec![4; 5]));
    c.check().unwrap();
    drop(c);
    std::fs::remove_dir_all(&copy).unwrap();
    l.push(vec![5; 9000]).unwrap();
    l.close().unwrap();
    let l: EmList<Vec<u8>> = EmList::open_read_only(&path).unwrap();
    assert_eq!(l.len(), 3);
    assert_eq!(l.get(0).unwrap(), Some(vec![1; 10]));
    assert_eq!(l.get(1).unwrap(), Some(vec![4; 5]));
    assert_eq!(l.get(2).unwrap(), Some(vec![5; 9000]));
    l.check().unwrap();
    drop(l);
    std::fs::remove_dir_all(&path).unwrap();
}

#[test]
fn sets_that_change_sizes_reuse_space() {
    // Each such set rewrites the element's group at the end of the data; the
    // data is compacted once more than half of it is dead, so the store stays
    // within a small multiple of the live bytes.
    let path = dir("emlist-compact");
    let mut l: EmList<String> = EmList::open_with(&path, &opts()).unwrap();
    let n = 20_000;
    l.extend((0..n).map(|i| format!("{i:08}"))).unwrap();
    l.flush().unwrap();
    let live = l.check().unwrap().bytes_live;
    let mut r = Rng(0xc0ffee);
    let mut model: Vec<String> = (0..n).map(|i| format!("{i:08}")).collect();
    for round in 0..20 {
        for _ in 0..n / 4 {
            let i = r.index(n);
            let s = "x".repeat(1 + r.index(16));
            l.set(i, s.clone()).unwrap();
            model[i] = s;
        }
        l.flush().unwrap();
        let report = l.check().unwrap();
        assert!(report.bytes_live < 8 * live, "round {round}: {} live bytes, started at {live}", report.bytes_live);
    }
    assert_eq!(l.to_vec().unwrap(), model);
    l.close().unwrap();
    std::fs::remove_dir_all(&path).unwrap();
}
