//! A region with an in-memory tail: appends collect in a buffer and reach the
//! store in large batches, so that pushing an element costs a few copies in
//! memory rather than a trip through the store per region. Reads see the
//! buffer; every other write moves it into the store first.

use std::borrow::Cow;

use super::region::Region;
use crate::alloc::Store;
use crate::error::{Error, Result};

/// Bytes the buffer collects before it is moved into the store.
const SPILL: usize = 256 << 10;

/// A [`Region`] followed by units not yet written to the store.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) region: Region,
    pend: Vec<u8>,
    unit: u64,
    /// `unit` is `1 << shift`.
    shift: u32,
    /// Appends stay in the buffer however large it grows: an operation that
    /// must not fail half-way for lack of space (see `EmList::rewrite_tail`).
    held: bool,
}

impl Buffered {
    /// `unit` must be a power of two.
    pub(crate) fn new(region: Region, unit: u64) -> Self {
        debug_assert!(unit.is_power_of_two());
        Buffered { region, pend: Vec::new(), unit, shift: unit.trailing_zeros(), held: false }
    }

    #[inline]
    pub(crate) fn len(&self) -> u64 {
        self.region.len() + ((self.pend.len() as u64) >> self.shift)
    }

    /// The bytes from unit `i < len` to the end of its contiguous run.
    #[inline]
    pub(crate) fn run<'a>(&'a self, store: &'a Store, i: u64) -> Result<&'a [u8]> {
        let held = self.region.len();
        if i < held {
            return self.region.run(store, i);
        }
        // Positions come from stored offsets and lengths: damaged ones are an error, not a panic.
        if i >= self.len() {
            return Err(self.out_of_range(store, i, 1));
        }
        Ok(&self.pend[((i - held) * self.unit) as usize..])
    }

    #[cold]
    #[inline(never)]
    fn out_of_range(&self, store: &Store, i: u64, n: u64) -> Error {
        let what = format!("units {i}..+{n} of a region of {} units of {} bytes", self.len(), self.unit);
        Error::corrupted(store.dir(), format!("reference to {what} lies outside it"))
    }

    /// Unit `i < len`.
    #[inline]
    pub(crate) fn unit_at<'a>(&'a self, store: &'a Store, i: u64) -> Result<&'a [u8]> {
        Ok(&self.run(store, i)?[..self.unit as usize])
    }

    /// The `n` units from `i` (`i + n <= len`), borrowed where contiguous.
    pub(crate) fn bytes<'a>(&'a self, store: &'a Store, i: u64, n: u64) -> Result<Cow<'a, [u8]>> {
        let held = self.region.len();
        if i.checked_add(n).is_none_or(|end| end > self.len()) {
            return Err(self.out_of_range(store, i, n));
        }
        if i + n <= held {
            return self.region.bytes(store, i, n);
        }
        let u = self.unit as usize;
        if i >= held {
            let at = (i - held) as usize * u;
            return Ok(Cow::Borrowed(&self.pend[at..at + n as usize * u]));
        }
        let mut v = self.region.bytes(store, i, held - i)?.into_owned();
        v.extend_from_slice(&self.pend[..(i + n - held) as usize * u]);
        Ok(Cow::Owned(v))
    }

    /// Appends units; on error (the buffer could not be moved to the store)
    /// nothing changed.
    #[inline]
    pub(crate) fn append(&mut self, store: &mut Store, bytes: &[u8]) -> Result<()> {
        if self.pend.len() + bytes.len() > SPILL && !self.pend.is_empty() && !self.held {
            self.spill(store)?;
        }
        self.pend.extend_from_slice(bytes);
        Ok(())
    }

    /// Makes room for a small append: moves the buffer into the store if it
    /// is full. On error nothing changed.
    #[inline]
    pub(crate) fn room(&mut self, store: &mut Store) -> Result<()> {
        if self.pend.len() >= SPILL { self.spill(store) } else { Ok(()) }
    }

    /// Whether the buffer is full: [`room`](Self::room) would move it into the store.
    #[inline(always)]
    pub(crate) fn is_full(&self) -> bool {
        self.pend.len() >= SPILL
    }

    /// Holds appends in the buffer (`true`), or lets [`append`](Self::append)
    /// spill a full buffer again (`false`).
    pub(crate) fn hold(&mut self, on: bool) {
        self.held = on;
    }

    /// The buffer, to append to in place (after [`room`](Self::room)).
    #[inline]
    pub(crate) fn pend_mut(&mut self) -> &mut Vec<u8> {
        &mut self.pend
    }

    /// Moves the buffer into the store. On error nothing changed.
    pub(crate) fn spill(&mut self, store: &mut Store) -> Result<()> {
        if self.pend.is_empty() {
            return Ok(());
        }
        let n = (self.pend.len() as u64) >> self.shift;
        self.region.append(store, &self.pend, n)?;
        self.pend.clear();
        Ok(())
    }

    /// Overwrites units from `i`; on error nothing changed.
    pub(crate) fn write(&mut self, store: &mut Store, i: u64, bytes: &[u8]) -> Result<()> {
        self.spill(store)?;
        self.region.write(store, i, bytes)
    }

    pub(crate) fn make_writable(&mut self, store: &mut Store, i: u64, n: u64) -> Result<()> {
        self.spill(store)?;
        self.region.make_writable(store, i, n)
    }

    pub(crate) fn truncate(&mut self, store: &mut Store, n: u64) -> Result<()> {
        self.set_len(n.max(self.region.len()).min(self.len()));
        self.region.truncate(store, n)
    }

    /// Sets the length to `n`: drops buffered units past `n`, or sets the
    /// region's length (see [`Region::set_len`]) when `n` lies inside it.
    pub(crate) fn set_len(&mut self, n: u64) {
        let held = self.region.len();
        if n >= held {
            self.pend.truncate(((n - held) * self.unit) as usize);
        } else {
            self.pend.clear();
            self.region.set_len(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_units_of_the_buffer() {
        let mut b = Buffered::new(Region::new(8), 8);
        b.pend_mut().extend_from_slice(&[1; 24]);
        assert_eq!(b.len(), 3);
        b.set_len(1);
        assert_eq!(b.len(), 1);
        assert_eq!(b.pend.len(), 8);
        b.set_len(0);
        assert!(b.pend.is_empty());
    }
}
