//! The dict's hash (`docs/DESIGN.md`, "EmDict pages"): xxh3-64 of a key's
//! encoding, seeded with the store's `hash_seed`. [`KeyHash::of_varint`]
//! gives the same number for a key whose encoding is one varint, computed
//! from the varint as a number, without storing its bytes and reading them
//! back (a read of bytes just stored in two halves waits for them to reach
//! the cache) and without the dispatch on the length of a byte slice.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::codec::{seven_bit_groups, varint_bits};

/// Words of xxh3's default secret, as its short-input paths combine them:
/// bytes 0..4 ^ 4..8 (inputs of 1 to 3 bytes), 8..16 ^ 16..24 (4 to 8),
/// 24..32 ^ 32..40 and 40..48 ^ 48..56 (9 to 16).
const SECRET_1TO3: u64 = 0x8727_5a9b;
const SECRET_4TO8: u64 = 0xc73a_b174_c5ec_d5a2;
const SECRET_9TO16_LO: u64 = 0x6782_737b_ea42_39b9;
const SECRET_9TO16_HI: u64 = 0xaf56_bc3b_0996_523a;

/// xxh3's `avalanche` (used by its inputs of 9 to 16 bytes).
#[inline(always)]
fn avalanche(mut v: u64) -> u64 {
    v ^= v >> 37;
    v = v.wrapping_mul(0x1656_6791_9e37_79f9);
    v ^ (v >> 32)
}

/// xxh64's avalanche (used by xxh3's inputs of 1 to 3 bytes).
#[inline(always)]
fn avalanche64(mut v: u64) -> u64 {
    v ^= v >> 33;
    v = v.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    v ^= v >> 29;
    v = v.wrapping_mul(0x1656_67b1_9e37_79f9);
    v ^ (v >> 32)
}

/// xxh3's `strong_avalanche` (used by its inputs of 4 to 8 bytes).
#[inline(always)]
fn strong_avalanche(mut v: u64, len: u64) -> u64 {
    v ^= v.rotate_left(49) ^ v.rotate_left(24);
    v = v.wrapping_mul(0x9fb2_1c65_1e98_df25);
    v ^= (v >> 35).wrapping_add(len);
    v = v.wrapping_mul(0x9fb2_1c65_1e98_df25);
    v ^ (v >> 28)
}

/// The dict's hash for one seed, with the seed's short-input constants
/// worked out once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHash {
    seed: u64,
    flip_1to3: u64,
    flip_4to8: u64,
    flip_lo: u64,
    flip_hi: u64,
}

impl KeyHash {
    pub(crate) fn new(seed: u64) -> KeyHash {
        let seed_4to8 = seed ^ u64::from((seed as u32).swap_bytes()) << 32;
        KeyHash {
            seed,
            flip_1to3: SECRET_1TO3.wrapping_add(seed),
            flip_4to8: SECRET_4TO8.wrapping_sub(seed_4to8),
            flip_lo: SECRET_9TO16_LO.wrapping_add(seed),
            flip_hi: SECRET_9TO16_HI.wrapping_sub(seed),
        }
    }

    /// The hash of the bytes `key`.
    #[inline]
    pub(crate) fn of(&self, key: &[u8]) -> u64 {
        xxh3_64_with_seed(key, self.seed)
    }

    /// The hash of the canonical varint of `k`: `of(varint(k))`.
    #[inline(always)]
    pub(crate) fn of_varint(&self, k: u64) -> u64 {
        let top = k >> 56;
        if top == 0 {
            let (bits, n) = varint_bits(k);
            return self.of_short(bits, n);
        }
        // Nine or ten bytes (as a random u64 has): the first eight carry
        // bits 0..56 and all continue; the ninth is the top byte (whose
        // high bit, bit 63 of `k`, says whether a tenth byte, 1, follows).
        let first = seven_bit_groups(k) | 0x8080_8080_8080_8080;
        let (last, len) =
            if k >> 63 == 0 { (first >> 8 | top << 56, 9) } else { (first >> 16 | top << 48 | 1 << 56, 10) };
        self.of_9to16(first, last, len)
    }

    /// The hash of `len` (9..=16) bytes whose first eight are `first` and
    /// last eight `last` (little-endian words).
    #[inline(always)]
    fn of_9to16(&self, first: u64, last: u64, len: u64) -> u64 {
        let lo = first ^ self.flip_lo;
        let hi = last ^ self.flip_hi;
        let product = u128::from(lo) * u128::from(hi);
        let fold = product as u64 ^ (product >> 64) as u64;
        avalanche(len.wrapping_add(lo.swap_bytes()).wrapping_add(hi).wrapping_add(fold))
    }

    /// The hash of the `n` bytes (1..=16) of the little-endian `bits`
    /// (zero above them), as xxh3-64's paths for short inputs compute it.
    #[inline(always)]
    fn of_short(&self, bits: u128, n: usize) -> u64 {
        debug_assert!((1..=16).contains(&n));
        let len = n as u64;
        if n > 8 {
            self.of_9to16(bits as u64, (bits >> (8 * (n - 8))) as u64, len)
        } else if n >= 4 {
            let w = bits as u64;
            let first = w & 0xffff_ffff;
            let last = (w >> (8 * (n - 4))) & 0xffff_ffff;
            strong_avalanche(last.wrapping_add(first << 32) ^ self.flip_4to8, len)
        } else {
            let byte = |i: usize| (bits >> (8 * i)) as u64 & 0xff;
            let combo = byte(0) << 16 | byte(n >> 1) << 24 | byte(n - 1) | len << 8;
            avalanche64(combo ^ self.flip_1to3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emdict::bucket::Varint;

    #[test]
    fn short_hashes_are_xxh3() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in [0, 1, u64::MAX, 0x1234_5678_9abc_def0, next(), next()] {
            let h = KeyHash::new(seed);
            for n in 1..=16 {
                for _ in 0..200 {
                    let bits = (u128::from(next()) | u128::from(next()) << 64) & (u128::MAX >> (128 - 8 * n));
                    let bytes = &bits.to_le_bytes()[..n];
                    assert_eq!(h.of_short(bits, n), xxh3_64_with_seed(bytes, seed), "seed {seed:#x} {bytes:x?}");
                }
            }
            for bits in 0..64 {
                let (a, b) = (next(), next());
                for k in [1u64 << bits, (1 << bits) - 1, a >> bits, b | 1 << 63, (b >> 1) | 1 << 56] {
                    assert_eq!(h.of_varint(k), h.of(Varint::new(k).bytes()), "seed {seed:#x} key {k:#x}");
                }
            }
        }
    }
}
