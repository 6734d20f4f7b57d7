//! PageRank by power iteration in pull form, as the MMap paper ran it on the Twitter graph:
//! each iteration streams the whole CSR once, in vertex order. Damping 0.85; the rank of vertices
//! without edges is spread evenly over all vertices, so ranks always sum to 1.

use std::time::{Duration, Instant};

use crate::csr::Graph;

/// The damping factor.
pub const DAMPING: f64 = 0.85;

/// The state of a power iteration: one can be stepped beside another, iteration by iteration.
#[derive(Debug)]
pub struct PageRank {
    degree: Vec<u32>,
    rank: Vec<f64>,
    contrib: Vec<f64>,
}

impl PageRank {
    /// The uniform start vector for `g`.
    pub fn new<G: Graph>(g: &G) -> Self {
        let n = g.vertices();
        PageRank {
            degree: (0..n as u32).map(|v| g.degree(v) as u32).collect(),
            rank: vec![1.0 / n as f64; n],
            contrib: vec![0.0; n],
        }
    }

    /// One iteration over `g` (the graph given to `new`); returns its duration.
    pub fn step<G: Graph>(&mut self, g: &G) -> Duration {
        let start = Instant::now();
        let n = self.rank.len();
        let mut dangling = 0.0;
        for v in 0..n {
            if self.degree[v] == 0 {
                dangling += self.rank[v];
                self.contrib[v] = 0.0;
            } else {
                self.contrib[v] = self.rank[v] / self.degree[v] as f64;
            }
        }
        let base = (1.0 - DAMPING) / n as f64 + DAMPING * dangling / n as f64;
        let (rank, contrib) = (&mut self.rank, &self.contrib);
        g.sweep(|v, neighbours| {
            // One addition at a time, in stored order: the same rounding however the list is stored.
            let mut acc = 0.0;
            neighbours.for_each(|w| acc += contrib[w as usize]);
            rank[v as usize] = base + DAMPING * acc;
        });
        start.elapsed()
    }

    /// The current ranks.
    pub fn ranks(&self) -> &[f64] {
        &self.rank
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::csr_of;

    fn run(g: &impl Graph, iters: usize) -> Vec<f64> {
        let mut pr = PageRank::new(g);
        for _ in 0..iters {
            pr.step(g);
        }
        pr.ranks().to_vec()
    }

    #[test]
    fn ranks_sum_to_one_and_favour_hubs() {
        // A star 0 - {1, 2, 3} plus an isolated vertex 4.
        let g = csr_of(5, &[[0, 1], [0, 2], [0, 3]]);
        let r = run(&g, 30);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(r[0] > r[1] && r[1] > r[4]);
        assert!((r[1] - r[2]).abs() < 1e-15);
    }

    #[test]
    fn a_regular_graph_has_uniform_ranks() {
        let g = csr_of(4, &[[0, 1], [1, 2], [2, 3], [3, 0]]);
        assert!(run(&g, 10).iter().all(|&x| (x - 0.25).abs() < 1e-12));
    }
}
