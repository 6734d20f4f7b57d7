//! EmDict against `std::collections::HashMap`: random operation sequences
//! (insert, extend, reserve, get, remove, update, clear, flush, close and reopen) with `u64`,
//! `String`, `Vec<u8>` and struct keys, empty and large values, ending with
//! `check()`. Every sequence prints its seed; rerun one with `EMDS_SEED=<seed>`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::path::{Path, PathBuf};

use emds::{EmDict, OpenOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emds-model-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("EMDS_SEED") {
        Ok(s) => vec![s.parse().expect("EMDS_SEED is a u64")],
        Err(_) => default.to_vec(),
    }
}

/// Small segments so that sequences cross segment boundaries.
fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.segment_sizes(64 << 10, 1 << 20).durable(false);
    o
}

fn open<K, V>(dir: &Path) -> EmDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    EmDict::open_with(dir, &options()).unwrap()
}

fn compare<K, V>(d: &EmDict<K, V>, model: &HashMap<K, V>, seed: u64)
where
    K: Serialize + DeserializeOwned + Eq + Hash + Debug + Clone,
    V: Serialize + DeserializeOwned + PartialEq + Debug,
{
    assert_eq!(d.len(), model.len(), "seed {seed}: len");
    let mut seen = 0;
    for entry in d.iter() {
        let (k, v) = entry.unwrap();
        assert_eq!(model.get(&k), Some(&v), "seed {seed}: iterated entry {k:?}");
        seen += 1;
    }
    assert_eq!(seen, model.len(), "seed {seed}: iteration count");
    d.check().unwrap_or_else(|e| panic!("seed {seed}: check: {e}"));
}

/// Runs `steps` random operations on an `EmDict<K, V>` and a `HashMap`.
fn run<K, V>(name: &str, seed: u64, steps: usize, key: impl Fn(&mut Rng) -> K, value: impl Fn(&mut Rng) -> V)
where
    K: Serialize + DeserializeOwned + Eq + Hash + Debug + Clone,
    V: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    println!("{name}: seed {seed}");
    let dir = temp_dir(&format!("{name}-{seed}"));
    let mut rng = Rng(seed);
    let mut d: EmDict<K, V> = open(&dir);
    let mut model: HashMap<K, V> = HashMap::new();
    let mut flushed: HashMap<K, V> = HashMap::new();
    for step in 0..steps {
        let k = key(&mut rng);
        match rng.below(1000) {
            0..=439 => {
                let v = value(&mut rng);
                assert_eq!(d.insert(k.clone(), v.clone()).unwrap(), model.insert(k, v), "seed {seed} step {step}");
            }
            440..=449 => {
                // A batch of pairs, keys possibly repeated: the later pair wins.
                let mut pairs = vec![(k, value(&mut rng))];
                let most = if rng.below(10) == 0 { 2000 } else { 20 };
                for _ in 0..rng.below(most) {
                    let k = if rng.below(4) == 0 {
                        pairs[rng.below(pairs.len() as u64) as usize].0.clone()
                    } else {
                        key(&mut rng)
                    };
                    pairs.push((k, value(&mut rng)));
                }
                d.extend(pairs.clone()).unwrap();
                model.extend(pairs);
            }
            450..=649 => assert_eq!(d.get(&k).unwrap().as_ref(), model.get(&k), "seed {seed} step {step}: get"),
            650..=699 => assert_eq!(d.contains_key(&k).unwrap(), model.contains_key(&k), "seed {seed} step {step}"),
            700..=869 => assert_eq!(d.remove(&k).unwrap(), model.remove(&k), "seed {seed} step {step}: remove"),
            870..=929 => {
                let v = value(&mut rng);
                let keep = rng.below(3) != 0;
                let f = |old: Option<V>| if keep { Some(v.clone()) } else { old.and(None) };
                d.update(k.clone(), f).unwrap();
                match f(model.get(&k).cloned()) {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
            930..=939 => {
                let got = d.remove_entry(&k).unwrap();
                assert_eq!(got, model.remove_entry(&k), "seed {seed} step {step}: remove_entry");
            }
            940..=969 => {
                d.flush().unwrap();
                flushed = model.clone();
            }
            970..=989 => {
                d.close().unwrap();
                d = open(&dir);
                flushed = model.clone();
                assert_eq!(d.len(), model.len(), "seed {seed} step {step}: len after reopen");
            }
            990..=994 => {
                // Drop without flushing is a best-effort flush: nothing is lost.
                drop(d);
                d = open(&dir);
                flushed = model.clone();
            }
            995..=997 => {
                compare(&d, &model, seed);
            }
            998 => d.reserve(rng.below(20_000) as usize).unwrap(),
            _ => {
                if rng.below(4) == 0 {
                    d.clear().unwrap();
                    model.clear();
                }
            }
        }
    }
    let _ = flushed;
    compare(&d, &model, seed);
    d.flush().unwrap();
    d.check().unwrap();
    d.close().unwrap();
    let d: EmDict<K, V> = EmDict::open_read_only(&dir).unwrap();
    compare(&d, &model, seed);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A value of a random size: mostly small, sometimes empty, sometimes large
/// enough to go out of line, rarely larger than a page.
fn bytes_value(r: &mut Rng) -> Vec<u8> {
    let len = match r.below(100) {
        0..=9 => 0,
        10..=79 => r.below(40),
        80..=95 => r.below(600),
        _ => r.below(20_000),
    } as usize;
    let b = r.next() as u8;
    (0..len).map(|i| b.wrapping_add(i as u8)).collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Point {
    name: String,
    x: i32,
    tags: Vec<u16>,
}

#[test]
fn u64_keys() {
    for seed in seeds(&[1, 2, 3]) {
        run("u64", seed, 30_000, |r| r.below(3000), |r| r.next());
    }
}

#[test]
fn u64_keys_bytes_values() {
    for seed in seeds(&[11, 12]) {
        run("u64-bytes", seed, 8_000, |r| r.below(800), bytes_value);
    }
}

#[test]
fn string_keys() {
    for seed in seeds(&[21, 22]) {
        run(
            "string",
            seed,
            20_000,
            |r| format!("key-{}", r.below(2500)).repeat(1 + r.below(3) as usize),
            |r| r.below(1 << 40).to_string(),
        );
    }
}

#[test]
fn byte_keys_of_any_size() {
    for seed in seeds(&[31, 32]) {
        // Keys from empty to several KiB (out of line), values empty or unit-sized.
        run(
            "bytes",
            seed,
            8_000,
            |r| {
                let id = r.below(1000);
                let len = if id % 50 == 0 { 3000 + id as usize } else { (id % 40) as usize };
                (0..len).map(|i| (id as usize + i) as u8).collect::<Vec<u8>>()
            },
            |r| if r.below(2) == 0 { Vec::new() } else { vec![r.next() as u8; r.below(8) as usize] },
        );
    }
}

#[test]
fn struct_keys() {
    for seed in seeds(&[41, 42]) {
        run(
            "struct",
            seed,
            10_000,
            |r| {
                let id = r.below(1500);
                Point { name: format!("p{}", id % 97), x: id as i32 - 700, tags: vec![id as u16; (id % 4) as usize] }
            },
            |r| (r.next() as u8, bytes_value(r)),
        );
    }
}

#[test]
fn unit_values_and_tiny_keys() {
    for seed in seeds(&[51]) {
        run("unit", seed, 20_000, |r| r.below(2000) as u16, |_| ());
    }
}

/// Keys and values of 16 MiB, and one of each beside small entries.
#[test]
fn sixteen_mebibyte_keys_and_values() {
    let dir = temp_dir("huge");
    let big =
        |seed: u8| -> Vec<u8> { (0..16usize << 20).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect() };
    let mut d: EmDict<Vec<u8>, Vec<u8>> = EmDict::open(&dir).unwrap();
    d.insert(vec![1], big(1)).unwrap();
    d.insert(big(2), vec![2]).unwrap();
    d.insert(big(3), big(4)).unwrap();
    for i in 0..100u8 {
        d.insert(vec![i, i], vec![i]).unwrap();
    }
    d.close().unwrap();
    let mut d: EmDict<Vec<u8>, Vec<u8>> = EmDict::open(&dir).unwrap();
    assert_eq!(d.get(&vec![1u8]).unwrap(), Some(big(1)));
    assert_eq!(d.get(&big(2)).unwrap(), Some(vec![2]));
    assert_eq!(d.get(&big(3)).unwrap(), Some(big(4)));
    assert_eq!(d.len(), 103);
    d.check().unwrap();
    assert_eq!(d.remove(&big(3)).unwrap(), Some(big(4)));
    assert_eq!(d.insert(vec![1], vec![]).unwrap(), Some(big(1)));
    d.flush().unwrap();
    d.check().unwrap();
    assert_eq!(d.len(), 102);
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
