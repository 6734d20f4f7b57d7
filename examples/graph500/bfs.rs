//! Breadth-first search, direction-optimizing (Beamer, Asanović, Patterson, SC 2012): top-down
//! steps while the frontier is small, bottom-up steps (each unvisited vertex looks for a parent in
//! the frontier) while it is large. The output is Graph500's: a parent for every reached vertex.

use crate::csr::Graph;

/// The parent of an unreached vertex.
pub const NONE: u32 = u32::MAX;

// Beamer's switching thresholds.
const ALPHA: u64 = 15;
const BETA: u64 = 18;

/// Buffers reused across searches.
#[derive(Debug, Default)]
pub struct Work {
    queue: Vec<u32>,
    next: Vec<u32>,
    front: Vec<u64>,
    front_next: Vec<u64>,
}

#[inline]
fn bit(bits: &[u64], v: u32) -> bool {
    bits[(v >> 6) as usize] >> (v & 63) & 1 != 0
}

#[inline]
fn set(bits: &mut [u64], v: u32) {
    bits[(v >> 6) as usize] |= 1 << (v & 63);
}

/// Searches from `root`, writing `parent` (`parent[root] == root`, [`NONE`] where unreached).
/// Returns the number of vertices reached.
pub fn bfs<G: Graph>(g: &G, root: u32, parent: &mut [u32], w: &mut Work) -> u64 {
    let n = g.vertices();
    assert_eq!(parent.len(), n);
    parent.fill(NONE);
    parent[root as usize] = root;
    let words = n.div_ceil(64);
    w.front.resize(words, 0);
    w.front_next.resize(words, 0);
    w.queue.clear();
    w.queue.push(root);
    let mut reached = 1u64;
    let mut unexplored: u64 = (0..n as u32).map(|v| g.degree(v)).sum::<u64>() - g.degree(root);
    let mut bottom_up = false;
    let mut front_count = 1u64;
    loop {
        if !bottom_up {
            let frontier_edges: u64 = w.queue.iter().map(|&v| g.degree(v)).sum();
            if frontier_edges > unexplored / ALPHA {
                w.front.fill(0);
                for &v in &w.queue {
                    set(&mut w.front, v);
                }
                front_count = w.queue.len() as u64;
                bottom_up = true;
            }
        }
        if bottom_up {
            w.front_next.fill(0);
            let mut found = 0u64;
            let (front, next) = (&w.front, &mut w.front_next);
            g.sweep(|v, neighbours| {
                if parent[v as usize] != NONE {
                    return;
                }
                let mut p = NONE;
                if neighbours.any(|u| {
                    let hit = bit(front, u);
                    if hit {
                        p = u;
                    }
                    hit
                }) {
                    parent[v as usize] = p;
                    set(next, v);
                    unexplored -= neighbours.len();
                    found += 1;
                }
            });
            std::mem::swap(&mut w.front, &mut w.front_next);
            reached += found;
            let shrinking = found < front_count;
            front_count = found;
            if found == 0 {
                break;
            }
            if shrinking && found < n as u64 / BETA {
                w.queue.clear();
                for (k, &word) in w.front.iter().enumerate() {
                    let mut m = word;
                    while m != 0 {
                        w.queue.push((k * 64) as u32 + m.trailing_zeros());
                        m &= m - 1;
                    }
                }
                bottom_up = false;
            }
        } else {
            w.next.clear();
            for &u in &w.queue {
                let next = &mut w.next;
                g.for_each_neighbor(u, |v| {
                    if parent[v as usize] == NONE {
                        parent[v as usize] = u;
                        next.push(v);
                    }
                });
            }
            std::mem::swap(&mut w.queue, &mut w.next);
            if w.queue.is_empty() {
                break;
            }
            reached += w.queue.len() as u64;
            unexplored -= w.queue.iter().map(|&v| g.degree(v)).sum::<u64>();
        }
    }
    reached
}

/// The number of undirected edges in the searched component (duplicates counted, self-loops
/// not): half the degree sum of the reached vertices. Graph500 divides this by the search time.
pub fn component_edges<G: Graph>(g: &G, parent: &[u32]) -> u64 {
    let sum: u64 = (0..parent.len() as u32).filter(|&v| parent[v as usize] != NONE).map(|v| g.degree(v)).sum();
    sum / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::csr_of;
    use crate::kronecker::Kronecker;

    /// Plain queue BFS levels, for comparison.
    fn levels(g: &impl Graph, root: u32) -> Vec<u32> {
        let mut lv = vec![NONE; g.vertices()];
        lv[root as usize] = 0;
        let mut q = std::collections::VecDeque::from([root]);
        while let Some(u) = q.pop_front() {
            g.for_each_neighbor(u, |v| {
                if lv[v as usize] == NONE {
                    lv[v as usize] = lv[u as usize] + 1;
                    q.push_back(v);
                }
            });
        }
        lv
    }

    #[test]
    fn parents_are_one_level_up_on_a_kronecker_graph() {
        let k = Kronecker::new(11, 16, 5);
        let mut edges = vec![[0u32; 2]; k.edges() as usize];
        k.fill(0, &mut edges, 1);
        let g = csr_of(k.vertices() as usize, &edges);
        let mut parent = vec![0; g.vertices()];
        let mut w = Work::default();
        for root in [edges[0][0], edges[17][1], edges[999][0]] {
            let reached = bfs(&g, root, &mut parent, &mut w);
            let lv = levels(&g, root);
            assert_eq!(reached, lv.iter().filter(|&&l| l != NONE).count() as u64);
            for v in 0..g.vertices() {
                if v as u32 == root {
                    assert_eq!(parent[v], root);
                } else if lv[v] == NONE {
                    assert_eq!(parent[v], NONE);
                } else {
                    let p = parent[v];
                    assert_eq!(lv[p as usize] + 1, lv[v], "vertex {v}");
                    let mut joined = false;
                    g.for_each_neighbor(v as u32, |u| joined |= u == p);
                    assert!(joined, "vertex {v}: parent {p} is not a neighbour");
                }
            }
        }
    }

    #[test]
    fn isolated_root_reaches_itself() {
        let g = csr_of(4, &[[0, 1], [1, 2]]);
        let mut parent = vec![0; 4];
        assert_eq!(bfs(&g, 3, &mut parent, &mut Work::default()), 1);
        assert_eq!(parent, vec![NONE, NONE, NONE, 3]);
        assert_eq!(bfs(&g, 0, &mut parent, &mut Work::default()), 3);
        assert_eq!(component_edges(&g, &parent), 2);
    }
}
