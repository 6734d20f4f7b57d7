//! The Graph500 Kronecker generator (specification 3.0, section 3; reference
//! `kronecker_generator.m`): initiator A=0.57, B=0.19, C=0.19 (D=0.05), edge factor 16, a random
//! permutation of the vertex labels, seeded.
//!
//! Every edge is drawn from its own counter-based random stream (SplitMix64 seeded by the seed and
//! the edge's index), so edges can be generated in any order, by any number of threads, in
//! batches that never hold the whole list in memory, and the graph for a given seed is always the
//! same. The reference also shuffles the edge order; our edges are independent and identically
//! distributed, so their order is already a uniformly random one and the shuffle is omitted.

/// Graph500's initiator probabilities.
pub const A: f64 = 0.57;
/// See [`A`].
pub const B: f64 = 0.19;
/// See [`A`].
pub const C: f64 = 0.19;

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, well-mixed generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (n > 0), by Lemire's multiply-shift (bias below 2^-32 for n < 2^32).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A stream for item `index` of the family `seed`: independent of the streams of other items.
    pub fn stream(seed: u64, family: u64, index: u64) -> Self {
        let mut s = SplitMix64(seed ^ family.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let base = s.next_u64();
        let mut t = SplitMix64(base ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        t.next_u64();
        t
    }
}

/// A seeded Graph500 graph: its vertex permutation and a way to draw any range of its edges.
#[derive(Debug)]
pub struct Kronecker {
    scale: u32,
    edge_factor: u32,
    seed: u64,
    perm: Vec<u32>,
    // Thresholds on 32-bit uniforms: P(bit of i) = 1 - (A+B); P(bit of j | bit of i).
    t_ab: u64,
    t_c_norm: u64,
    t_a_norm: u64,
}

const EDGE_FAMILY: u64 = 1;
const PERM_FAMILY: u64 = 2;

impl Kronecker {
    /// The generator for `2^scale` vertices and `edge_factor * 2^scale` edges. Holds the vertex
    /// permutation (4 bytes per vertex) and nothing per edge.
    pub fn new(scale: u32, edge_factor: u32, seed: u64) -> Self {
        assert!((1..=31).contains(&scale), "scale {scale} out of 1..=31");
        let n = 1usize << scale;
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let mut rng = SplitMix64::stream(seed, PERM_FAMILY, 0);
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            perm.swap(i, j);
        }
        let t = |p: f64| (p * 4294967296.0) as u64;
        Kronecker {
            scale,
            edge_factor,
            seed,
            perm,
            t_ab: t(A + B),
            t_c_norm: t(C / (1.0 - (A + B))),
            t_a_norm: t(A / (A + B)),
        }
    }

    /// The number of vertices, 2^scale.
    pub fn vertices(&self) -> u64 {
        1 << self.scale
    }

    /// The number of edges, edge factor times the number of vertices.
    pub fn edges(&self) -> u64 {
        (self.edge_factor as u64) << self.scale
    }

    /// Edge number `index`, its endpoints already permuted.
    #[inline]
    pub fn edge(&self, index: u64) -> [u32; 2] {
        let mut rng = SplitMix64::stream(self.seed, EDGE_FAMILY, index);
        let (mut i, mut j) = (0u32, 0u32);
        for bit in 0..self.scale {
            let r = rng.next_u64();
            let ii = (r >> 32) >= self.t_ab;
            let threshold = if ii { self.t_c_norm } else { self.t_a_norm };
            let jj = (r & 0xFFFF_FFFF) >= threshold;
            i |= (ii as u32) << bit;
            j |= (jj as u32) << bit;
        }
        [self.perm[i as usize], self.perm[j as usize]]
    }

    /// Fills `out` with edges `first..first + out.len()`, on up to `threads` threads.
    pub fn fill(&self, first: u64, out: &mut [[u32; 2]], threads: usize) {
        let threads = threads.max(1);
        if threads == 1 || out.len() < 1 << 14 {
            for (k, e) in out.iter_mut().enumerate() {
                *e = self.edge(first + k as u64);
            }
            return;
        }
        let per = out.len().div_ceil(threads);
        std::thread::scope(|s| {
            for (t, part) in out.chunks_mut(per).enumerate() {
                let start = first + (t * per) as u64;
                s.spawn(move || self.fill(start, part, 1));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_thread_independent() {
        let g = Kronecker::new(10, 16, 7);
        let mut a = vec![[0u32; 2]; 1 << 15];
        let mut b = a.clone();
        g.fill(100, &mut a, 1);
        g.fill(100, &mut b, 3);
        assert_eq!(a, b);
        assert_eq!(a[5], g.edge(105));
        assert!(a.iter().flatten().all(|&v| (v as u64) < g.vertices()));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let g = Kronecker::new(12, 16, 3);
        let mut p = g.perm.clone();
        p.sort_unstable();
        assert!(p.iter().enumerate().all(|(i, &v)| i as u32 == v));
    }

    #[test]
    fn quadrant_frequencies_follow_the_initiator() {
        // The top bit of (i, j) before permutation falls in quadrant a/b/c/d with probability A/B/C/D.
        let g = Kronecker::new(1, 1, 11);
        let mut counts = [0u64; 4];
        let n = 200_000u64;
        let inv: Vec<u32> = {
            let mut inv = vec![0; 2];
            for (k, &p) in g.perm.iter().enumerate() {
                inv[p as usize] = k as u32;
            }
            inv
        };
        for k in 0..n {
            let [u, v] = g.edge(k);
            counts[(inv[u as usize] * 2 + inv[v as usize]) as usize] += 1;
        }
        let expect = [A, B, C, 1.0 - A - B - C];
        for q in 0..4 {
            let f = counts[q] as f64 / n as f64;
            assert!((f - expect[q]).abs() < 0.01, "quadrant {q}: {f} vs {}", expect[q]);
        }
    }
}
