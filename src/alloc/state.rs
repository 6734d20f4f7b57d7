//! The committed allocator state: segment sizes, free extents and slab pages,
//! written at every commit to freshly allocated pages and named by the meta
//! record with its length and checksum. Layout in `docs/DESIGN.md` ("Allocator state").

use super::slab::{CLASSES, words};

pub(crate) const MAGIC: [u8; 8] = *b"EMDSFREE";
pub(crate) const VERSION: u32 = 1;
const HEADER: usize = 32;

/// One segment as recorded: its mapped size and how much of it is backed by disk blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegInfo {
    pub size: u64,
    pub backed: u64,
}

/// The decoded allocator state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub segs: Vec<SegInfo>,
    pub free: Vec<(u64, u64)>,
    pub slabs: Vec<(u64, usize, [u64; 4])>,
}

/// The encoded length of a state with these counts.
pub(crate) fn encoded_len(segs: usize, extents: usize, slabs: impl Iterator<Item = usize>) -> usize {
    HEADER + segs * 16 + extents * 16 + slabs.map(|class| 16 + 8 * words(class)).sum::<usize>()
}

/// Encodes a state from its parts: the free extents may come from several
/// lists and need not be merged.
pub(crate) fn encode<'a>(
    segs: &[SegInfo],
    free: impl Iterator<Item = (u64, u64)>,
    slabs: impl Iterator<Item = (u64, usize, &'a [u64; 4])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + segs.len() * 16);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(segs.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 16]); // counts, filled in below
    for s in segs {
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.backed.to_le_bytes());
    }
    let mut extents = 0u64;
    for (start, n) in free {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        extents += 1;
    }
    let mut pages = 0u64;
    for (page, class, used) in slabs {
        out.extend_from_slice(&page.to_le_bytes());
        out.extend_from_slice(&(class as u64).to_le_bytes());
        for w in &used[..words(class)] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        pages += 1;
    }
    out[16..24].copy_from_slice(&extents.to_le_bytes());
    out[24..32].copy_from_slice(&pages.to_le_bytes());
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u64(&mut self) -> Result<u64, String> {
        let v = self.b.get(self.at..self.at + 8).ok_or("allocator state is truncated")?;
        self.at += 8;
        Ok(u64::from_le_bytes(v.try_into().expect("8 bytes")))
    }
}

/// Decodes a state blob whose checksum has been verified.
pub(crate) fn decode(b: &[u8]) -> Result<State, String> {
    if b.len() < HEADER || b[..8] != MAGIC {
        return Err("allocator state has no valid header".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("allocator state version {version}, expected {VERSION}"));
    }
    let nseg = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize;
    let mut r = Reader { b, at: 16 };
    let (next, nslab) = (r.u64()?, r.u64()?);
    let min_len = (nseg as u64).saturating_add(next).saturating_mul(16).saturating_add(nslab.saturating_mul(24));
    if min_len > b.len() as u64 {
        return Err("allocator state counts exceed its length".into());
    }
    let mut st = State::default();
    for _ in 0..nseg {
        st.segs.push(SegInfo { size: r.u64()?, backed: r.u64()? });
    }
    for _ in 0..next {
        st.free.push((r.u64()?, r.u64()?));
    }
    for _ in 0..nslab {
        let page = r.u64()?;
        let class = r.u64()? as usize;
        if class >= CLASSES.len() {
            return Err(format!("slab page {page:#x} has unknown class {class}"));
        }
        let mut used = [0u64; 4];
        for w in used.iter_mut().take(words(class)) {
            *w = r.u64()?;
        }
        st.slabs.push((page, class, used));
    }
    if b[r.at..].iter().any(|&x| x != 0) {
        return Err("allocator state has non-zero bytes after its end".into());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_length() {
        let segs = [SegInfo { size: 1 << 20, backed: 65536 }];
        let free = [(4096u64, 3u64), (1 << 40, 1)];
        let used = [[1u64, 0, 0, 0], [u64::MAX, 7, 0, 0]];
        let slabs = [(0u64, 13usize, &used[0]), (8192, 0, &used[1])];
        let b = encode(&segs, free.iter().copied(), slabs.iter().copied());
        assert_eq!(b.len(), encoded_len(1, 2, [13, 0].into_iter()));
        let st = decode(&b).unwrap();
        assert_eq!(st.segs, segs);
        assert_eq!(st.free, free);
        assert_eq!(st.slabs, vec![(0, 13, used[0]), (8192, 0, used[1])]);
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let segs = [SegInfo { size: 1 << 20, backed: 65536 }];
        let b = encode(&segs, [(4096, 1)].into_iter(), std::iter::empty());
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = b.clone();
        padded.resize(4096, 0);
        assert!(decode(&padded).is_ok());
        padded[4000] = 1;
        assert!(decode(&padded).is_err());
        let mut huge = b.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}
