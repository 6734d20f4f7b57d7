//! PageRank by power iteration in pull form, as the MMap paper ran it on the Twitter graph:
//! each iteration streams the whole CSR once, in vertex order. Damping 0.85; the rank of vertices
//! without edges is spread evenly over all vertices, so ranks always sum to 1.

use std::time::{Duration, Instant};

use crate::csr::Graph;

/// The damping factor.
pub const DAMPING: f64 = 0.85;

/// Runs `iters` iterations from the uniform vector; calls `each` with every iteration's number
/// and duration. Returns the ranks.
pub fn pagerank<G: Graph>(g: &G, iters: usize, mut each: impl FnMut(usize, Duration)) -> Vec<f64> {
    let n = g.vertices();
    let degree: Vec<u64> = (0..n as u32).map(|v| g.degree(v)).collect();
    let mut rank = vec![1.0 / n as f64; n];
    let mut contrib = vec![0.0f64; n];
    let mut sum = vec![0.0f64; n];
    for it in 0..iters {
        let start = Instant::now();
        let mut dangling = 0.0;
        for v in 0..n {
            if degree[v] == 0 {
                dangling += rank[v];
                contrib[v] = 0.0;
            } else {
                contrib[v] = rank[v] / degree[v] as f64;
            }
        }
        let base = (1.0 - DAMPING) / n as f64 + DAMPING * dangling / n as f64;
        sum.fill(0.0);
        g.scan(|v, piece| {
            // One addition at a time, in stored order: the same rounding however the list is split.
            let mut acc = sum[v as usize];
            for &w in piece {
                acc += contrib[w as usize];
            }
            sum[v as usize] = acc;
        });
        for (r, s) in rank.iter_mut().zip(&sum) {
            *r = base + DAMPING * s;
        }
        each(it, start.elapsed());
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::csr_of;

    #[test]
    fn ranks_sum_to_one_and_favour_hubs() {
        // A star 0 - {1, 2, 3} plus an isolated vertex 4.
        let g = csr_of(5, &[[0, 1], [0, 2], [0, 3]]);
        let mut calls = 0;
        let r = pagerank(&g, 30, |_, _| calls += 1);
        assert_eq!(calls, 30);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(r[0] > r[1] && r[1] > r[4]);
        assert!((r[1] - r[2]).abs() < 1e-15);
    }

    #[test]
    fn a_regular_graph_has_uniform_ranks() {
        let g = csr_of(4, &[[0, 1], [1, 2], [2, 3], [3, 0]]);
        let r = pagerank(&g, 10, |_, _| {});
        assert!(r.iter().all(|&x| (x - 0.25).abs() < 1e-12));
    }
}
