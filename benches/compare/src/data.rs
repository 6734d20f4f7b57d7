//! Deterministic test data: a seeded splitmix64, the key and value types, and
//! the element types of the list workload.

use std::fmt::Debug;
use std::hash::Hash;

use serde::de::{DeserializeOwned, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// splitmix64's increment (odd, so `i * GAMMA` is a bijection on u64).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijection on u64.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The i-th word of the key stream of `seed`: distinct words for distinct `i`,
/// so the keys of a data set are unique by construction.
pub fn key_word(seed: u64, i: u64) -> u64 {
    mix(seed.wrapping_add(i.wrapping_mul(GAMMA)))
}

/// The splitmix64 generator.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift, bias negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A key or value type of the dict workload, with what each engine needs.
pub trait Datum: Copy + Eq + Hash + Debug + Serialize + DeserializeOwned + 'static {
    /// Its size as raw bytes: what a bytes-per-entry figure is compared with.
    const RAW: usize;
    /// Its bytes as LMDB stores them.
    type Raw: AsRef<[u8]>;
    /// Its redb type.
    type Redb: redb::Key + 'static;

    /// Builds one from a word that makes it unique and further random words.
    fn from_words(first: u64, rng: &mut SplitMix64) -> Self;
    /// A word summarising it, for checksums.
    fn fold(&self) -> u64;
    fn to_raw(&self) -> Self::Raw;
    fn from_raw(bytes: &[u8]) -> Self;
    fn to_redb(&self) -> <Self::Redb as redb::Value>::SelfType<'_>;
    fn from_redb(value: <Self::Redb as redb::Value>::SelfType<'_>) -> Self;
}

impl Datum for u64 {
    const RAW: usize = 8;
    type Raw = [u8; 8];
    type Redb = u64;

    fn from_words(first: u64, _rng: &mut SplitMix64) -> Self {
        first
    }
    fn fold(&self) -> u64 {
        *self
    }
    /// Big-endian, so LMDB's byte order is the numeric order.
    fn to_raw(&self) -> [u8; 8] {
        self.to_be_bytes()
    }
    fn from_raw(bytes: &[u8]) -> Self {
        u64::from_be_bytes(bytes.try_into().expect("an 8-byte u64"))
    }
    fn to_redb(&self) -> u64 {
        *self
    }
    fn from_redb(value: u64) -> Self {
        value
    }
}

/// 64 opaque bytes. serde has no impls for arrays longer than 32, so this
/// serializes as a byte string (postcard: a length byte and the 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Bytes64(pub [u8; 64]);

impl Datum for Bytes64 {
    const RAW: usize = 64;
    type Raw = [u8; 64];
    type Redb = &'static [u8; 64];

    fn from_words(first: u64, rng: &mut SplitMix64) -> Self {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&first.to_le_bytes());
        for chunk in bytes[8..].chunks_exact_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        Bytes64(bytes)
    }
    fn fold(&self) -> u64 {
        let word = |i: usize| u64::from_le_bytes(self.0[i..i + 8].try_into().unwrap());
        word(0) ^ word(56)
    }
    fn to_raw(&self) -> [u8; 64] {
        self.0
    }
    fn from_raw(bytes: &[u8]) -> Self {
        Bytes64(bytes.try_into().expect("a 64-byte value"))
    }
    fn to_redb(&self) -> &[u8; 64] {
        &self.0
    }
    fn from_redb(value: &[u8; 64]) -> Self {
        Bytes64(*value)
    }
}

impl Serialize for Bytes64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(Bytes64Visitor)
    }
}

struct Bytes64Visitor;

impl<'de> Visitor<'de> for Bytes64Visitor {
    type Value = Bytes64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("64 bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes64, E> {
        let bytes = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
        Ok(Bytes64(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes64, A::Error> {
        let mut bytes = [0u8; 64];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(i, &self))?;
        }
        Ok(Bytes64(bytes))
    }
}

/// The checksum contribution of one entry; entries are summed (wrapping), so
/// the order of a scan does not matter.
pub fn entry_fold<K: Datum, V: Datum>(key: &K, value: &V) -> u64 {
    key.fold().wrapping_mul(31).wrapping_add(value.fold())
}

/// The data of one dict run, all derived from the seed.
pub struct DictData<K, V> {
    /// Every pair, in insertion order.
    pub items: Vec<(K, V)>,
    /// A shuffled sample of present pairs, for warm gets.
    pub sample: Vec<(K, V)>,
    /// Keys that are never inserted.
    pub absent: Vec<K>,
    /// The keys removed: the first half of `items`.
    pub removed: Vec<K>,
    /// A shuffled sample of the pairs that remain after removal, for cold gets.
    pub cold: Vec<(K, V)>,
}

impl<K: Datum, V: Datum> DictData<K, V> {
    pub fn generate(seed: u64, n: usize, sample: usize, cold: usize) -> Self {
        let items = pairs(seed, 0..n as u64);
        let mut rng = SplitMix64::new(mix(seed ^ 0x5A5A_5A5A_5A5A_5A5A));
        let half = n / 2;
        let pick = |rng: &mut SplitMix64, range: std::ops::Range<usize>, count: usize| {
            let picked = sample_indices(rng, range, count);
            picked.into_iter().map(|i| items[i]).collect::<Vec<_>>()
        };
        let sample = pick(&mut rng, 0..n, sample.min(n));
        let cold = pick(&mut rng, half..n, cold.min(n - half));
        let absent_n = sample.len().max(1) as u64;
        let absent = pairs::<K, V>(seed, n as u64..n as u64 + absent_n);
        let removed = items[..half].iter().map(|(k, _)| *k).collect();
        DictData { absent: absent.into_iter().map(|(k, _)| k).collect(), items, sample, removed, cold }
    }

    /// The checksum of a scan over `items[from..]`.
    pub fn fold_from(&self, from: usize) -> u64 {
        self.items[from..].iter().fold(0u64, |sum, (k, v)| sum.wrapping_add(entry_fold(k, v)))
    }
}

/// The pairs with key indices `range` of the data set of `seed`.
fn pairs<K: Datum, V: Datum>(seed: u64, range: std::ops::Range<u64>) -> Vec<(K, V)> {
    let mut rng = SplitMix64::new(mix(seed ^ range.start));
    range
        .map(|i| {
            let key = K::from_words(key_word(seed, i), &mut rng);
            let first = rng.next_u64();
            (key, V::from_words(first, &mut rng))
        })
        .collect()
}

/// `count` distinct indices of `range` in random order (a partial Fisher-Yates shuffle).
pub fn sample_indices(rng: &mut SplitMix64, range: std::ops::Range<usize>, count: usize) -> Vec<usize> {
    let mut all: Vec<usize> = range.collect();
    let count = count.min(all.len());
    for i in 0..count {
        let j = i + rng.below(all.len() - i);
        all.swap(i, j);
    }
    all.truncate(count);
    all
}

/// An element type of the list workload.
pub trait Elem: Copy + PartialEq + Debug + 'static {
    /// Its size as raw bytes.
    const RAW: usize;
    fn generate(rng: &mut SplitMix64) -> Self;
    /// A word summarising it, for checksums.
    fn fold(&self) -> u64;
}

/// The EmList element: a pair of u64.
pub type Pair = (u64, u64);

/// The EmVec element: an edge between two u32 node ids (a Pod type).
pub type Edge = [u32; 2];

impl Elem for Pair {
    const RAW: usize = 16;
    fn generate(rng: &mut SplitMix64) -> Self {
        (rng.next_u64(), rng.next_u64())
    }
    fn fold(&self) -> u64 {
        self.0.wrapping_mul(31).wrapping_add(self.1)
    }
}

impl Elem for Edge {
    const RAW: usize = 8;
    fn generate(rng: &mut SplitMix64) -> Self {
        let word = rng.next_u64();
        [word as u32, (word >> 32) as u32]
    }
    fn fold(&self) -> u64 {
        u64::from(self[0]).wrapping_mul(31).wrapping_add(u64::from(self[1]))
    }
}

/// `n` random elements from `seed`.
pub fn elements<T: Elem>(seed: u64, n: usize) -> Vec<T> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| T::generate(&mut rng)).collect()
}

/// The checksum of a scan over `items`.
pub fn fold_all<T: Elem>(items: &[T]) -> u64 {
    items.iter().fold(0u64, |sum, e| sum.wrapping_add(e.fold()))
}
