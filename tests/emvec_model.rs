//! EmVec against a `Vec` model: random pushes, extends, sets, pops,
//! truncations, inserts, removes, flushes, closes and reopens, for element
//! sizes from zero bytes to five kilobytes; every step compares contents, and
//! every flush and the end run `check()` (no leaked or overlapping space).

use bytemuck::{Pod, Zeroable};
use emds::{EmVec, Error, OpenOptions};

mod common;
use common::Rng;

trait Elem: Pod + PartialEq + std::fmt::Debug {
    fn make(r: &mut Rng) -> Self;
}

impl Elem for u8 {
    fn make(r: &mut Rng) -> Self {
        r.next() as u8
    }
}
impl Elem for u64 {
    fn make(r: &mut Rng) -> Self {
        r.next()
    }
}
impl Elem for [u32; 3] {
    fn make(r: &mut Rng) -> Self {
        [r.next() as u32, r.next() as u32, r.next() as u32]
    }
}
impl Elem for () {
    fn make(_: &mut Rng) -> Self {}
}

/// 5128 bytes: a block (the unit of copy-on-write) is 641 pages.
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Debug)]
#[repr(C)]
struct Big {
    a: [u8; 4096],
    b: [u8; 1024],
    c: u64,
}

impl Elem for Big {
    fn make(r: &mut Rng) -> Self {
        let mut v = Big::zeroed();
        let x = r.next();
        v.a[x as usize % 4096] = x as u8;
        v.b[(x >> 16) as usize % 1024] = (x >> 8) as u8;
        v.c = x;
        v
    }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("emds-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 8 << 20).durable(false);
    o
}

fn same<T: Elem>(v: &EmVec<T>, model: &[T], step: usize, seed: u64) {
    assert_eq!(v.len(), model.len(), "seed {seed:#x} step {step}: length");
    let mut at = 0;
    for c in v.chunks() {
        assert_eq!(c, &model[at..at + c.len()], "seed {seed:#x} step {step}: chunk at {at}");
        at += c.len();
    }
    assert_eq!(at, model.len(), "seed {seed:#x} step {step}: chunks cover");
    let back: Vec<T> = v.iter().rev().collect();
    assert!(back.iter().rev().eq(model.iter()), "seed {seed:#x} step {step}: reverse iteration");
}

fn run<T: Elem>(name: &str, steps: usize, scale: usize) {
    let seed = common::seed(name);
    let path = dir(name);
    let mut r = Rng(seed);
    let mut v: EmVec<T> = EmVec::open_with(&path, &opts()).unwrap();
    let mut model: Vec<T> = Vec::new();
    let mut flushed: Vec<T> = Vec::new();
    for step in 0..steps {
        match r.index(100) {
            0..30 => {
                let x = T::make(&mut r);
                v.push(x).unwrap();
                model.push(x);
            }
            30..40 => {
                let n = r.index(scale * 4);
                let xs: Vec<T> = (0..n).map(|_| T::make(&mut r)).collect();
                v.extend_from_slice(&xs).unwrap();
                model.extend_from_slice(&xs);
            }
            40..55 if !model.is_empty() => {
                let i = r.index(model.len());
                let x = T::make(&mut r);
                v.set(i, x).unwrap();
                model[i] = x;
            }
            55..62 => assert_eq!(v.pop().unwrap(), model.pop(), "seed {seed:#x} step {step}: pop"),
            62..65 => {
                let n = r.index(model.len() + 2);
                v.truncate(n).unwrap();
                model.truncate(n);
            }
            65..68 => {
                let i = r.index(model.len() + 1);
                let x = T::make(&mut r);
                v.insert(i, x).unwrap();
                model.insert(i, x);
            }
            68..71 if !model.is_empty() => {
                let i = r.index(model.len());
                assert_eq!(v.remove(i).unwrap(), model.remove(i));
            }
            71..74 if !model.is_empty() => {
                let i = r.index(model.len());
                assert_eq!(v.swap_remove(i).unwrap(), model.swap_remove(i));
            }
            74..82 => {
                v.flush().unwrap();
                flushed = model.clone();
                v.check().unwrap();
            }
            82..86 => {
                v.close().unwrap();
                flushed = model.clone();
                v = EmVec::open_with(&path, &opts()).unwrap();
                v.check().unwrap();
            }
            86..88 => {
                // Dropping without a flush loses nothing either (Drop flushes).
                drop(v);
                flushed = model.clone();
                v = EmVec::open_with(&path, &opts()).unwrap();
            }
            90..93 => {
                // Everything written since the flush is in the files now, yet
                // the copy opens to exactly the flushed state.
                let copy = snapshot(&path, step);
                let c: EmVec<T> = EmVec::open_read_only(&copy).unwrap();
                same(&c, &flushed, step, seed);
                c.check().unwrap();
                drop(c);
                std::fs::remove_dir_all(&copy).unwrap();
            }
            88..90 => {
                // A read-only look at what was flushed, in between.
                v.flush().unwrap();
                flushed = model.clone();
                drop(v);
                let ro: EmVec<T> = EmVec::open_read_only(&path).unwrap();
                same(&ro, &flushed, step, seed);
                ro.check().unwrap();
                drop(ro);
                v = EmVec::open_with(&path, &opts()).unwrap();
            }
            _ => {
                let i = r.index(model.len() + 2);
                assert_eq!(v.get(i).unwrap(), model.get(i).copied(), "seed {seed:#x} step {step}: get {i}");
                let a = r.index(model.len() + 1);
                let b = a + r.index(model.len() + 1 - a + 1);
                let got = v.get_range(a..b).unwrap().map(|c| c.into_owned());
                assert_eq!(got.as_deref(), model.get(a..b), "seed {seed:#x} step {step}: range {a}..{b}");
            }
        }
        if step % 16 == 0 {
            same(&v, &model, step, seed);
        }
        assert!(matches!(v.set(model.len(), T::make(&mut r)), Err(Error::IndexOutOfBounds { .. })));
    }
    same(&v, &model, steps, seed);
    v.check().unwrap();
    v.close().unwrap();
    let v: EmVec<T> = EmVec::open_read_only(&path).unwrap();
    same(&v, &model, steps, seed);
    v.check().unwrap();
    drop(v);
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
fn bytes_against_a_vec() {
    run::<u8>("emvec-u8", 6000, 5000);
}

#[test]
fn words_against_a_vec() {
    run::<u64>("emvec-u64", 6000, 2000);
}

#[test]
fn twelve_byte_elements_against_a_vec() {
    run::<[u32; 3]>("emvec-u32x3", 6000, 2000);
}

#[test]
fn zero_sized_elements_against_a_vec() {
    run::<()>("emvec-zst", 4000, 1000);
}

#[test]
fn five_kilobyte_elements_against_a_vec() {
    run::<Big>("emvec-big", 1000, 8);
}

#[test]
fn a_u32_vec_is_not_a_u64_vec() {
    let path = dir("emvec-kind");
    let mut v: EmVec<u32> = EmVec::open(&path).unwrap();
    v.push(1).unwrap();
    v.close().unwrap();
    assert!(matches!(EmVec::<u64>::open(&path), Err(Error::WrongKind { .. })));
    assert!(matches!(EmVec::<[u8; 4]>::open(&path), Err(Error::WrongKind { .. })));
    assert!(matches!(emds::EmList::<u32>::open(&path), Err(Error::WrongKind { .. })));
    assert_eq!(EmVec::<u32>::open(&path).unwrap().to_vec().unwrap(), vec![1]);
    std::fs::remove_dir_all(&path).unwrap();
}
