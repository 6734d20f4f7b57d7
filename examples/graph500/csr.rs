//! The compressed adjacency (CSR) the kernels walk: `offsets[v]..offsets[v + 1]` indexes the
//! neighbours of `v` in `targets`. Two implementations of one [`Graph`] trait: [`MemCsr`] over
//! plain `Vec`s (the physical limit) and [`DiskCsr`] over the zero-copy slices of two emds
//! `EmVec`s. The kernels are generic over the trait, so both run the same machine code shape.

/// An undirected graph in CSR form, as the kernels see it.
pub trait Graph: Sync {
    /// The number of vertices.
    fn vertices(&self) -> usize;
    /// The number of neighbour entries of `v` (self-loops removed, duplicate edges kept).
    fn degree(&self, v: u32) -> u64;
    /// Calls `f` on each neighbour of `v`, in stored order.
    fn for_each_neighbor(&self, v: u32, f: impl FnMut(u32));
    /// Streams the whole adjacency in vertex order: `f(v, neighbours)` for every vertex, once.
    /// Sequential sweeps (PageRank, bottom-up BFS steps) use this: it reads the offsets and the
    /// targets with cursors instead of locating every vertex anew.
    fn sweep(&self, f: impl FnMut(u32, Nbrs<'_>));
}

/// The neighbours of one vertex: one slice, or (rarely) a range straddling slices of an `EmVec`.
#[derive(Clone, Copy, Debug)]
pub enum Nbrs<'a> {
    /// All in one slice.
    One(&'a [u32]),
    /// `lo..hi` of the targets, across a slice boundary.
    Split(&'a Pieces<'a, u32>, u64, u64),
}

impl Nbrs<'_> {
    /// How many neighbour entries.
    #[inline]
    pub fn len(&self) -> u64 {
        match self {
            Nbrs::One(s) => s.len() as u64,
            Nbrs::Split(_, lo, hi) => hi - lo,
        }
    }

    /// Calls `f` on the neighbours in order until it returns true; returns whether it did.
    #[inline]
    pub fn any(&self, mut f: impl FnMut(u32) -> bool) -> bool {
        match self {
            Nbrs::One(s) => s.iter().any(|&w| f(w)),
            Nbrs::Split(p, lo, hi) => p.visit(*lo, *hi, |s| s.iter().any(|&w| f(w))),
        }
    }

    /// Calls `f` on every neighbour, in order.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(u32)) {
        self.any(|w| {
            f(w);
            false
        });
    }
}

/// The CSR in plain vectors.
#[derive(Debug, Default)]
pub struct MemCsr {
    /// `vertices + 1` offsets into `targets`.
    pub offsets: Vec<u64>,
    /// The neighbour lists, one after another.
    pub targets: Vec<u32>,
}

impl Graph for MemCsr {
    fn vertices(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    #[inline]
    fn degree(&self, v: u32) -> u64 {
        self.offsets[v as usize + 1] - self.offsets[v as usize]
    }

    #[inline]
    fn for_each_neighbor(&self, v: u32, mut f: impl FnMut(u32)) {
        let (lo, hi) = (self.offsets[v as usize] as usize, self.offsets[v as usize + 1] as usize);
        for &w in &self.targets[lo..hi] {
            f(w);
        }
    }

    fn sweep(&self, mut f: impl FnMut(u32, Nbrs<'_>)) {
        for (v, w) in self.offsets.windows(2).enumerate() {
            f(v as u32, Nbrs::One(&self.targets[w[0] as usize..w[1] as usize]));
        }
    }
}

/// A long sequence seen as the in-order slices an `EmVec` hands out through `chunks()`, indexed
/// without copying an element: by a shift when the slices have one power-of-two length, by a
/// table of granules when every slice boundary falls on a multiple of a power of two of at least
/// 1024 elements (segments of doubling sizes, say), by binary search otherwise.
#[derive(Debug)]
pub struct Pieces<'a, T> {
    pub(crate) slices: Vec<&'a [T]>,
    starts: Vec<u64>,
    /// Each slice beside its first index: one cache line per lookup.
    pub(crate) parts: Vec<(&'a [T], u64)>,
    how: Locate,
    len: u64,
}

#[derive(Debug)]
enum Locate {
    One,
    Shift(u32),
    Table(u32, Vec<u32>),
    Search,
}

impl<'a, T: Copy> Pieces<'a, T> {
    /// Collects the chunks (empty ones are skipped).
    pub fn new(chunks: impl IntoIterator<Item = &'a [T]>) -> Self {
        let slices: Vec<&[T]> = chunks.into_iter().filter(|s| !s.is_empty()).collect();
        let mut starts = Vec::with_capacity(slices.len());
        let mut len = 0u64;
        for s in &slices {
            starts.push(len);
            len += s.len() as u64;
        }
        let how = Self::plan(&slices, &starts, len);
        let parts = slices.iter().copied().zip(starts.iter().copied()).collect();
        Pieces { slices, starts, parts, how, len }
    }

    fn plan(slices: &[&[T]], starts: &[u64], len: u64) -> Locate {
        if slices.len() <= 1 {
            return Locate::One;
        }
        let first = slices[0].len();
        if first.is_power_of_two()
            && slices[..slices.len() - 1].iter().all(|s| s.len() == first)
            && slices[slices.len() - 1].len() <= first
        {
            return Locate::Shift(first.trailing_zeros());
        }
        // The largest power of two dividing every inner boundary.
        let g = starts[1..].iter().map(|s| s.trailing_zeros()).min().unwrap_or(0);
        if g >= 10 {
            let granules = len.div_ceil(1 << g);
            let mut table = Vec::with_capacity(granules as usize);
            let mut c = 0usize;
            for j in 0..granules {
                while c + 1 < starts.len() && starts[c + 1] <= j << g {
                    c += 1;
                }
                table.push(c as u32);
            }
            return Locate::Table(g, table);
        }
        Locate::Search
    }

    /// The number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// How many slices the sequence is made of.
    pub fn pieces(&self) -> usize {
        self.slices.len()
    }

    /// The slice holding element `i` and `i`'s index in it.
    #[inline]
    fn locate(&self, i: u64) -> (&'a [T], usize) {
        let c = match &self.how {
            Locate::One => return (self.slices[0], i as usize),
            Locate::Shift(s) => return (self.slices[(i >> s) as usize], (i & ((1 << s) - 1)) as usize),
            Locate::Table(g, t) => t[(i >> g) as usize] as usize,
            Locate::Search => self.starts.partition_point(|&s| s <= i) - 1,
        };
        let (s, start) = self.parts[c];
        (s, (i - start) as usize)
    }

    /// Element `i` (panics past the end, like slice indexing).
    #[inline]
    pub fn get(&self, i: u64) -> T {
        let (s, k) = self.locate(i);
        s[k]
    }

    /// Elements `i` and `i + 1`.
    #[inline]
    pub fn pair(&self, i: u64) -> (T, T) {
        let (s, k) = self.locate(i);
        match s.get(k + 1) {
            Some(&next) => (s[k], next),
            None => (s[k], self.get(i + 1)),
        }
    }

    /// Visits `lo..hi` as in-order sub-slices until `f` returns true; returns whether it did.
    #[inline]
    pub fn visit(&self, lo: u64, hi: u64, mut f: impl FnMut(&'a [T]) -> bool) -> bool {
        if lo >= hi {
            return false;
        }
        let (s, k) = self.locate(lo);
        let mut left = (hi - lo) as usize;
        if let Some(all) = s.get(k..k + left) {
            return f(all);
        }
        if f(&s[k..]) {
            return true;
        }
        left -= s.len() - k;
        let mut at = lo + (s.len() - k) as u64;
        loop {
            let (s, _) = self.locate(at);
            let take = left.min(s.len());
            if f(&s[..take]) {
                return true;
            }
            left -= take;
            if left == 0 {
                return false;
            }
            at += take as u64;
        }
    }
}

/// The CSR read in place from the mappings of two `EmVec`s.
#[derive(Debug)]
pub struct DiskCsr<'a> {
    /// `vertices + 1` offsets.
    pub offsets: Pieces<'a, u64>,
    /// Neighbour lists.
    pub targets: Pieces<'a, u32>,
}

impl Graph for DiskCsr<'_> {
    fn vertices(&self) -> usize {
        self.offsets.len().saturating_sub(1) as usize
    }

    #[inline]
    fn degree(&self, v: u32) -> u64 {
        let (lo, hi) = self.offsets.pair(v as u64);
        hi - lo
    }

    #[inline]
    fn for_each_neighbor(&self, v: u32, mut f: impl FnMut(u32)) {
        let (lo, hi) = self.offsets.pair(v as u64);
        self.targets.visit(lo, hi, |s| {
            for &w in s {
                f(w);
            }
            false
        });
    }

    #[inline]
    fn sweep(&self, mut f: impl FnMut(u32, Nbrs<'_>)) {
        let parts = &self.targets.parts;
        // The targets slice under the cursor: parts[c], covering start..end.
        let mut c = 0usize;
        let (mut s, mut start): (&[u32], u64) = parts.first().copied().unwrap_or((&[], 0));
        let mut end = start + s.len() as u64;
        let mut prev = None;
        let mut v = 0u32;
        for piece in &self.offsets.slices {
            for &hi in *piece {
                if let Some(lo) = prev {
                    while end <= lo && c + 1 < parts.len() {
                        c += 1;
                        (s, start) = parts[c];
                        end = start + s.len() as u64;
                    }
                    // One call site, so that the kernel's closure is inlined here.
                    // After the loop above, start <= lo <= end (lo == end only for empty lists at the end).
                    let neighbours = if hi <= end {
                        Nbrs::One(&s[(lo - start) as usize..(hi - start) as usize])
                    } else {
                        Nbrs::Split(&self.targets, lo, hi)
                    };
                    f(v, neighbours);
                    v += 1;
                }
                prev = Some(hi);
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A CSR from an undirected edge list (self-loops dropped), built the simple way, for tests.
    pub fn csr_of(n: usize, edges: &[[u32; 2]]) -> MemCsr {
        let mut adj = vec![Vec::new(); n];
        for &[u, v] in edges {
            if u != v {
                adj[u as usize].push(v);
                adj[v as usize].push(u);
            }
        }
        let mut offsets = vec![0u64];
        let mut targets = Vec::new();
        for a in adj {
            targets.extend(a);
            offsets.push(targets.len() as u64);
        }
        MemCsr { offsets, targets }
    }

    #[test]
    fn pieces_index_across_chunk_shapes() {
        let data: Vec<u32> = (0..5000).collect();
        for split in [
            vec![5000],
            vec![1024, 1024, 1024, 1928],
            vec![1024, 2048, 1024, 904],
            vec![7, 0, 500, 4493],
            vec![1; 5000],
        ] {
            let mut rest = &data[..];
            let mut chunks = Vec::new();
            for n in split {
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            let p = Pieces::new(chunks);
            assert_eq!(p.len(), 5000);
            for i in [0u64, 1, 6, 7, 255, 256, 511, 1023, 1024, 1025, 3071, 3072, 4095, 4096, 4999] {
                assert_eq!(p.get(i), i as u32);
                if i < 4999 {
                    assert_eq!(p.pair(i), (i as u32, i as u32 + 1));
                }
            }
            for (lo, hi) in [(5, 700), (1000, 3100), (0, 5000), (4090, 4100)] {
                let mut seen = Vec::new();
                p.visit(lo, hi, |s| {
                    seen.extend_from_slice(s);
                    false
                });
                assert_eq!(seen, data[lo as usize..hi as usize]);
            }
            let mut seen = Vec::new();
            p.visit(5, 700, |s| {
                seen.extend_from_slice(s);
                false
            });
            assert_eq!(seen, data[5..700]);
            assert!(!p.visit(3, 3, |_| true));
        }
    }

    #[test]
    fn disk_view_agrees_with_vectors() {
        let g = csr_of(6, &[[0, 1], [1, 2], [2, 2], [2, 0], [5, 4], [0, 1]]);
        let (o1, o2) = g.offsets.split_at(3);
        let (t1, t2) = g.targets.split_at(5);
        let d = DiskCsr { offsets: Pieces::new([o1, o2]), targets: Pieces::new([t1, t2]) };
        assert_eq!(d.vertices(), 6);
        for v in 0..6 {
            assert_eq!(d.degree(v), g.degree(v));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            d.for_each_neighbor(v, |w| a.push(w));
            g.for_each_neighbor(v, |w| b.push(w));
            assert_eq!(a, b);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        d.sweep(|v, s| s.for_each(|w| a.push((v, w))));
        g.sweep(|v, s| s.for_each(|w| b.push((v, w))));
        assert_eq!(a, b);
        let mut count = 0;
        d.sweep(|v, s| {
            assert_eq!(s.len(), g.degree(v));
            count += 1;
        });
        assert_eq!(count, 6);
        let mut around_3 = 0;
        d.for_each_neighbor(3, |_| around_3 += 1);
        assert_eq!(around_3, 0);
    }
}
