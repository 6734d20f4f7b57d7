//! Graph500's validation of a BFS tree (specification 3.0, section 7), checked against the input
//! edge list itself, not against the CSR built from it:
//!
//! 1. the parent pointers form a tree rooted at the root (no cycles, every chain ends there);
//! 2. each tree edge joins vertices whose BFS levels differ by exactly one;
//! 3. every input edge joins vertices whose levels differ by at most one, or two unreached ones;
//! 4. the tree spans the whole connected component of the root (no input edge leaves it);
//! 5. every vertex and its parent are joined by an input edge.

use crate::bfs::NONE;

/// Validates `parent` (from a search from `root`) against the edge list given as in-order
/// slices (`level` and `lp` are scratch space, reused across calls). Returns the number of input edges inside the component (self-loops excluded,
/// duplicates counted), or a message naming the first violation.
pub fn validate<'a>(
    parent: &[u32],
    root: u32,
    edges: impl IntoIterator<Item = &'a [[u32; 2]]>,
    level: &mut Vec<u32>,
    lp: &mut Vec<[u32; 2]>,
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let n = parent.len();
    if root as usize >= n || parent[root as usize] != root {
        return Err(format!("rule 1: the root {root} is not its own parent"));
    }
    levels(parent, root, level)?;
    // Level and parent side by side: one cache miss per endpoint in the edge scan below.
    lp.clear();
    lp.extend(level.iter().zip(parent).map(|(&l, &p)| [l, p]));
    let mut tree_edge_seen = vec![0u64; n.div_ceil(64)];
    let mut inside = 0u64;
    for chunk in edges {
        for &[u, v] in chunk {
            if u as usize >= n || v as usize >= n {
                return Err(format!("edge ({u}, {v}) names a vertex outside 0..{n}"));
            }
            let ([lu, pu], [lv, pv]) = (lp[u as usize], lp[v as usize]);
            match (lu != NONE, lv != NONE) {
                (false, false) => continue,
                (true, true) => {}
                _ => return Err(format!("rule 4: edge ({u}, {v}) leaves the tree: it does not span the component")),
            }
            if lu.abs_diff(lv) > 1 {
                return Err(format!("rule 3: edge ({u}, {v}) joins levels {lu} and {lv}"));
            }
            if u != v {
                inside += 1;
            }
            if pv == u {
                tree_edge_seen[(v >> 6) as usize] |= 1 << (v & 63);
            }
            if pu == v {
                tree_edge_seen[(u >> 6) as usize] |= 1 << (u & 63);
            }
        }
        progress(chunk.len() as u64);
    }
    for v in 0..n {
        if v as u32 != root && parent[v] != NONE && tree_edge_seen[v >> 6] >> (v & 63) & 1 == 0 {
            return Err(format!("rule 5: tree edge ({}, {v}) is not an edge of the graph", parent[v]));
        }
    }
    Ok(inside)
}

/// Fills `level` with each vertex's depth in the tree ([`NONE`] where unreached), checking
/// rules 1 and 2 on the way: every parent chain ends at the root without a cycle, and a vertex is
/// one level below its parent by construction.
fn levels(parent: &[u32], root: u32, level: &mut Vec<u32>) -> Result<(), String> {
    let n = parent.len();
    level.clear();
    level.resize(n, NONE);
    level[root as usize] = 0;
    let mut path = Vec::new();
    for v in 0..n {
        if parent[v] == NONE || level[v] != NONE {
            continue;
        }
        let mut x = v as u32;
        while level[x as usize] == NONE {
            let p = parent[x as usize];
            if p == NONE || p as usize >= n {
                return Err(format!("rule 1: the parent chain of {v} reaches {x}, whose parent {p} is not a vertex"));
            }
            if p == x || path.len() >= n {
                return Err(format!("rule 1: the parent chain of {v} is a cycle"));
            }
            path.push(x);
            x = p;
        }
        let mut l = level[x as usize];
        while let Some(y) = path.pop() {
            l += 1;
            level[y as usize] = l;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfs::{Work, bfs};
    use crate::csr::Graph;
    use crate::csr::tests::csr_of;
    use crate::kronecker::Kronecker;

    fn check(parent: &[u32], root: u32, edges: &[[u32; 2]]) -> Result<u64, String> {
        validate(parent, root, [edges], &mut Vec::new(), &mut Vec::new(), |_| {})
    }

    #[test]
    fn real_trees_pass() {
        let k = Kronecker::new(10, 16, 9);
        let mut edges = vec![[0u32; 2]; k.edges() as usize];
        k.fill(0, &mut edges, 1);
        let g = csr_of(k.vertices() as usize, &edges);
        let mut parent = vec![0; g.vertices()];
        for root in [edges[1][0], edges[2][1]] {
            bfs(&g, root, &mut parent, &mut Work::default());
            let inside = check(&parent, root, &edges).unwrap();
            assert_eq!(inside, crate::bfs::component_edges(&g, &parent));
        }
    }

    #[test]
    fn each_rule_catches_its_fault() {
        // 0 - 1 - 2 - 3, plus 0 - 2 and an isolated 4.
        let edges = [[0, 1], [1, 2], [2, 3], [0, 2]];
        let mut ok = vec![0, 0, 0, 2, NONE];
        assert_eq!(check(&ok, 0, &edges), Ok(4));
        assert!(check(&ok, 1, &edges).unwrap_err().contains("rule 1"));
        ok[4] = 4; // 4 claims to be reached, as its own parent: a cycle
        assert!(check(&ok, 0, &edges).unwrap_err().contains("rule 1"));
        let cycle = vec![0, 2, 1, 2, NONE];
        assert!(check(&cycle, 0, &edges).unwrap_err().contains("rule 1"));
        let too_deep = vec![0, 0, 1, 2, NONE]; // 2 at level 2, but edge 0-2 spans two levels
        assert!(check(&too_deep, 0, &edges).unwrap_err().contains("rule 3"));
        let partial = vec![0, 0, 0, NONE, NONE]; // 3 is in the component but unreached
        assert!(check(&partial, 0, &edges).unwrap_err().contains("rule 4"));
        let fake_edge = vec![0, 0, 0, 1, NONE]; // 1 - 3 is not an edge
        assert!(check(&fake_edge, 0, &edges).unwrap_err().contains("rule 5"));
    }
}
