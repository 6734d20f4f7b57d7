//! The Graph500 Kronecker generator (specification 3.0, section 3; reference
//! `kronecker_generator.m`): initiator A=0.57, B=0.19, C=0.19 (D=0.05), edge factor 16, a random
//! permutation of the vertex labels, seeded.
//!
//! Every edge is drawn from its own counter-based random stream (SplitMix64 seeded by the seed and
//! the edge's index), so edges can be generated in any order, by any number of threads, in
//! batches that never hold the whole list in memory, and the graph for a given seed is always the
//! same. The reference also shuffles the edge order; our edges are independent and identically
//! distributed, so their order is already a uniformly random one and the shuffle is omitted.

use std::time::{Duration, Instant};

use crate::sys;

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
        let mut perm = vec![0u32; n];
        sys::advise_huge(&mut perm);
        for (i, p) in perm.iter_mut().enumerate() {
            *p = i as u32;
        }
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

    /// Edge number `index`, its endpoints already permuted (the definition `fill` must match).
    #[cfg(test)]
    #[inline]
    pub fn edge(&self, index: u64) -> [u32; 2] {
        let [i, j] = self.draw(index);
        [self.perm[i as usize], self.perm[j as usize]]
    }

    /// Fills `out` with edges `first..first + out.len()`, on up to `threads` threads (the
    /// calling thread takes one share). Returns the time the calling thread spent waiting for the
    /// others to finish theirs, and the time the others spent runnable but waiting for a CPU.
    pub fn fill(&self, first: u64, out: &mut [[u32; 2]], threads: usize) -> FillWait {
        let threads = threads.max(1);
        if threads == 1 || out.len() < 1 << 14 {
            self.fill_here(first, out);
            return FillWait::default();
        }
        let per = out.len().div_ceil(threads);
        let mut wait = FillWait::default();
        std::thread::scope(|s| {
            let mut parts = out.chunks_mut(per);
            let mine = parts.next().unwrap_or_default();
            let helpers: Vec<_> = parts
                .enumerate()
                .map(|(t, part)| {
                    let start = first + ((t + 1) * per) as u64;
                    s.spawn(move || {
                        let before = sys::thread_sched().1;
                        self.fill_here(start, part);
                        sys::thread_sched().1.saturating_sub(before)
                    })
                })
                .collect();
            self.fill_here(first, mine);
            let joined = Instant::now();
            for h in helpers {
                wait.helpers_cpu_wait += h.join().unwrap_or_default();
            }
            wait.joining = joined.elapsed();
        });
        wait
    }

    /// Fills `out` on the calling thread: the draws of [`LANES`] edges at a time, level by level
    /// (independent lanes the compiler vectorizes), then the permutation in a second, separate
    /// pass so that its random reads of `perm` overlap one another instead of waiting behind the
    /// draws of each edge. The same edges as [`edge`](Kronecker::edge), bit for bit.
    fn fill_here(&self, first: u64, out: &mut [[u32; 2]]) {
        let mut blocks = out.chunks_exact_mut(LANES);
        let mut index = first;
        let wide = wide_lanes();
        for block in &mut blocks {
            let block: &mut [[u32; 2]; LANES] = block.try_into().expect("chunks_exact");
            if wide {
                // SAFETY: `wide_lanes()` returned true, so the CPU supports the target features
                // that `draw_lanes_avx512` is compiled for (its only safety condition).
                unsafe { self.draw_lanes_avx512(index, block) };
            } else {
                self.draw_lanes(index, block);
            }
            index += LANES as u64;
        }
        for e in blocks.into_remainder() {
            *e = self.draw(index);
            index += 1;
        }
        let perm = &self.perm[..];
        for e in out.iter_mut() {
            *e = [perm[e[0] as usize], perm[e[1] as usize]];
        }
    }

    /// The unpermuted endpoints of edge `index`: one 64-bit draw per level, its high half
    /// choosing the bit of `i`, its low half the bit of `j` given that of `i`.
    #[inline]
    fn draw(&self, index: u64) -> [u32; 2] {
        let mut rng = SplitMix64::stream(self.seed, EDGE_FAMILY, index);
        let (mut i, mut j) = (0u32, 0u32);
        for bit in 0..self.scale {
            let (ii, jj) = self.level(rng.next_u64());
            i |= ii << bit;
            j |= jj << bit;
        }
        [i, j]
    }

    /// The bits of `i` and `j` one level's draw `r` chooses.
    #[inline(always)]
    fn level(&self, r: u64) -> (u32, u32) {
        let ii = (r >> 32) >= self.t_ab;
        let threshold = if ii { self.t_c_norm } else { self.t_a_norm };
        let jj = (r & 0xFFFF_FFFF) >= threshold;
        (ii as u32, jj as u32)
    }

    /// [`draw`](Kronecker::draw) for the `LANES` edges from `first`, level by level.
    #[inline(always)]
    fn draw_lanes(&self, first: u64, out: &mut [[u32; 2]; LANES]) {
        let mut state = [0u64; LANES];
        for (l, s) in state.iter_mut().enumerate() {
            *s = SplitMix64::stream(self.seed, EDGE_FAMILY, first + l as u64).0;
        }
        let (mut i, mut j) = ([0u32; LANES], [0u32; LANES]);
        for bit in 0..self.scale {
            for l in 0..LANES {
                let mut rng = SplitMix64(state[l]);
                let (ii, jj) = self.level(rng.next_u64());
                state[l] = rng.0;
                i[l] |= ii << bit;
                j[l] |= jj << bit;
            }
        }
        for l in 0..LANES {
            out[l] = [i[l], j[l]];
        }
    }

    /// [`draw_lanes`](Kronecker::draw_lanes) compiled for AVX-512 (64-bit lane multiplies): about
    /// twice as fast where the CPU has it.
    ///
    /// # Safety
    ///
    /// 1. The CPU supports AVX-512 F, DQ, VL and BW ([`wide_lanes`] says so).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
    unsafe fn draw_lanes_avx512(&self, first: u64, out: &mut [[u32; 2]; LANES]) {
        self.draw_lanes(first, out)
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn draw_lanes_avx512(&self, first: u64, out: &mut [[u32; 2]; LANES]) {
        self.draw_lanes(first, out)
    }
}

/// Edges drawn side by side in [`Kronecker::fill`].
const LANES: usize = 8;

/// Whether this CPU runs the AVX-512 version of the lanes.
fn wide_lanes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What a multi-threaded [`Kronecker::fill`] waited for.
#[derive(Clone, Copy, Debug, Default)]
pub struct FillWait {
    /// The calling thread, for its helpers to finish after its own share.
    pub joining: Duration,
    /// The helpers, runnable but without a CPU.
    pub helpers_cpu_wait: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_thread_independent() {
        let g = Kronecker::new(10, 16, 7);
        let mut a = vec![[0u32; 2]; (1 << 15) + 5];
        let mut b = a.clone();
        g.fill(100, &mut a, 1);
        g.fill(100, &mut b, 3);
        assert_eq!(a, b);
        for (k, e) in a.iter().enumerate() {
            assert_eq!(*e, g.edge(100 + k as u64), "edge {}", 100 + k);
        }
        assert!(a.iter().flatten().all(|&v| (v as u64) < g.vertices()));
    }

    #[test]
    fn lanes_agree_with_one_edge_at_a_time() {
        let g = Kronecker::new(13, 16, 5);
        for first in [0u64, 3, 8, 1001] {
            let mut lanes = [[0u32; 2]; LANES];
            g.draw_lanes(first, &mut lanes);
            if wide_lanes() {
                let mut wide = [[0u32; 2]; LANES];
                // SAFETY: wide_lanes() said the CPU has the features.
                unsafe { g.draw_lanes_avx512(first, &mut wide) };
                assert_eq!(wide, lanes);
            }
            for (l, e) in lanes.iter().enumerate() {
                assert_eq!(*e, g.draw(first + l as u64));
            }
        }
    }

    #[test]
    fn same_graph_as_published_runs() {
        // The graphs in docs/bench were generated with seed 1; a faster generator must draw the
        // same edges. FNV-1a over the endpoints of edges 12345..112348 at scale 20, and the first
        // and last of them, as the generator of those runs gave them.
        let g = Kronecker::new(20, 16, 1);
        let mut out = vec![[0u32; 2]; 100_003];
        g.fill(12_345, &mut out, 2);
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for x in out.iter().flatten() {
            h = (h ^ *x as u64).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!((out[0], out[100_002]), ([884_018, 354_631], [904_241, 549_090]));
        assert_eq!(h, 0xb807_967e_3070_88d6);
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
