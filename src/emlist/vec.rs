//! `EmVec<T>`: a persistent vector of plain-old-data elements, read with zero
//! copies from the mapping.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;

use bytemuck::Pod;

use super::iter::{Chunks, VecIter};
use super::region::Region;
use super::seq::{Extra, Seq};
use crate::alloc::{CheckReport, Kind, PAGE_SIZE};
use crate::error::{Error, Result};
use crate::options::OpenOptions;

const MAGIC: [u8; 8] = *b"EMDS-VEC";
/// Bytes of elements per batch when extending from an iterator or filling.
const BATCH_BYTES: usize = 1 << 20;
/// Bytes of elements that `push` collects in memory before it moves them
/// into the store in one append (through the file: no page fault per page).
const PEND_BYTES: usize = 256 << 10;

/// A persistent vector of plain-old-data elements (`T: bytemuck::Pod`:
/// integers, floats, arrays and `#[repr(C)]` structs of them), stored in a
/// directory and read with zero copies: [`chunks`](Self::chunks) yields
/// `&[T]` slices straight from the mapping, megabytes long.
///
/// The element size and alignment are recorded in the store: opening an
/// `EmVec<u32>` as an `EmVec<u64>` is [`Error::WrongKind`]. Elements are laid
/// out back to back, so the store adds nothing to them but page rounding.
/// Changes are durable at [`flush`](Self::flush) and [`close`](Self::close);
/// a crash at any instant leaves the state of the last completed flush.
/// Dropping the vector flushes on a best-effort basis (errors are lost: call
/// `close` to see them).
///
/// # Examples
///
/// ```
/// use emds::EmVec;
///
/// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut edges: EmVec<[u32; 2]> = EmVec::open(&dir)?;
/// edges.extend_from_slice(&[[0, 1], [1, 2], [2, 0]])?;
/// edges.push([2, 3])?;
/// assert_eq!(edges.get(3)?, Some([2, 3]));
/// let out_degree_of_2 = edges.chunks().flatten().filter(|e| e[0] == 2).count();
/// assert_eq!(out_degree_of_2, 2);
/// edges.close()?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct EmVec<T: Pod> {
    seq: Seq,
    data: Region,
    /// For zero-sized `T`: `len` elements, which take no memory.
    zst: Vec<T>,
    /// Elements pushed one by one and not yet in the store (never for a
    /// zero-sized `T`): the vector's last `pend.len()` elements. Reads see
    /// them; every other change moves them into the store first.
    pend: Vec<T>,
    closed: bool,
    _t: PhantomData<T>,
}

impl<T: Pod> fmt::Debug for EmVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmVec")
            .field("path", &self.seq.store.dir())
            .field("len", &self.len())
            .field("element_size", &size_of::<T>())
            .field("read_only", &self.seq.store.is_read_only())
            .finish()
    }
}

/// The element range a `RangeBounds` names in a sequence of `len`, if it lies inside.
pub(crate) fn resolve(range: impl RangeBounds<usize>, len: usize) -> Option<Range<usize>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1)?,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    (start <= end && end <= len).then_some(start..end)
}

pub(crate) fn out_of_bounds(index: usize, len: usize) -> Error {
    Error::IndexOutOfBounds { index: index as u64, len: len as u64 }
}

impl<T: Pod> EmVec<T> {
    /// Opens the vector stored in the directory `path` read-write, creating it
    /// if it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another handle has it open, [`Error::WrongKind`] if
    /// it holds another structure or another element size or alignment,
    /// [`Error::Corrupted`] or [`Error::Incompatible`] if its files are damaged
    /// or foreign, [`Error::Io`] if the operating system refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, Error};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-open-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v: EmVec<u32> = EmVec::open(&dir)?;
    /// v.push(7)?;
    /// v.close()?;
    /// // The element type is recorded: u64 is not u32.
    /// assert!(matches!(EmVec::<u64>::open(&dir), Err(Error::WrongKind { .. })));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new())
    }

    /// Opens the vector in `path` read-only, under a shared lock: any number of
    /// readers may have it open at once, and every write returns [`Error::ReadOnly`].
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open); a missing store is [`Error::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, Error};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-ro-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// EmVec::<f64>::open(&dir)?.extend_from_slice(&[0.5, 1.5])?;
    /// let v: EmVec<f64> = EmVec::open_read_only(&dir)?;
    /// assert_eq!(v.to_vec()?, vec![0.5, 1.5]);
    /// let mut v = v;
    /// assert!(matches!(v.push(2.5), Err(Error::ReadOnly { .. })));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::new().read_only(true))
    }

    /// Opens the vector in `path` with the given options.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open). An element type aligned to more than
    /// 4096 bytes is [`Error::Incompatible`].
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-with-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v: EmVec<u8> = EmVec::open_with(&dir, OpenOptions::new().truncate(true).durable(false))?;
    /// v.extend_from_slice(b"scratch")?;
    /// assert_eq!(v.len(), 7);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        if align_of::<T>() > PAGE_SIZE {
            let what = format!("element alignment {} exceeds the page size", align_of::<T>());
            return Err(Error::incompatible(path, what));
        }
        let (size, align) = (size_of::<T>() as u32, align_of::<T>() as u32);
        let (seq, mut regions, extra) = Seq::open(path, options, Kind::Vec, size, align, MAGIC, &[size as u64])?;
        let data = regions.pop().expect("one region");
        if extra.len != data.len() || extra.words != [0, 0] {
            let what = format!("root length {} differs from the table's {}", extra.len, data.len());
            return Err(Error::corrupted(path, what));
        }
        // A vector of zero-sized elements takes no memory: made in O(1)
        // (`vec![x; n]` would clone `n` times), its length bounded by the table.
        let zst = if size == 0 { bytemuck::zeroed_vec(data.len() as usize) } else { Vec::new() };
        Ok(EmVec { seq, data, zst, pend: Vec::new(), closed: false, _t: PhantomData })
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-len-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u16>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2, 3])?;
    /// assert_eq!(v.len(), 3);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() as usize + self.pend.len()
    }

    /// Whether the vector has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-empty-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let v = emds::EmVec::<u16>::open(&dir)?;
    /// assert!(v.is_empty());
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write_access(&mut self) -> Result<()> {
        self.seq.store.writable()?;
        self.seq.changed = true;
        Ok(())
    }

    /// Appends an element. Elements pushed one by one are collected in memory
    /// (up to 256 KiB) and reach the store in one write; reads see them at
    /// once, and [`flush`](Self::flush) or any other change writes them first.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`], [`Error::Poisoned`], or [`Error::Io`] /
    /// [`Error::Full`] when the store cannot grow; the vector is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-push-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<[u32; 2]>::open(&dir)?;
    /// v.push([1, 2])?;
    /// assert_eq!(v.last()?, Some([1, 2]));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<()> {
        self.write_access()?;
        if size_of::<T>() == 0 {
            self.data.append(&mut self.seq.store, &[], 1)?;
            self.zst.push(value);
            return Ok(());
        }
        if self.pend.len() >= (PEND_BYTES / size_of::<T>()).max(1) {
            self.spill()?;
        }
        self.pend.push(value);
        Ok(())
    }

    /// Moves the elements pushed one by one into the store, in one append. On
    /// error nothing changed.
    #[cold]
    #[inline(never)]
    fn spill(&mut self) -> Result<()> {
        if self.pend.is_empty() {
            return Ok(());
        }
        self.data.append(&mut self.seq.store, bytemuck::cast_slice(&self.pend), self.pend.len() as u64)?;
        self.pend.clear();
        Ok(())
    }

    /// Appends every element of `values`, in one step: on error the vector is unchanged.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-extend-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u64>::open(&dir)?;
    /// v.extend_from_slice(&(0..1000).collect::<Vec<u64>>())?;
    /// assert_eq!(v.get(999)?, Some(999));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn extend_from_slice(&mut self, values: &[T]) -> Result<()> {
        self.write_access()?;
        self.spill()?;
        self.data.append(&mut self.seq.store, bytemuck::cast_slice(values), values.len() as u64)?;
        if size_of::<T>() == 0 {
            self.zst.extend_from_slice(values);
        }
        Ok(())
    }

    /// Appends the elements of an iterator, in batches of about a megabyte.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push). The batches appended before an error stay.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-extiter-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend((0..10).map(|i| i * i))?;
    /// assert_eq!(v.get(9)?, Some(81));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) -> Result<()> {
        let per = (BATCH_BYTES / size_of::<T>().max(1)).max(1);
        let mut buf = Vec::with_capacity(per.min(4096));
        for v in values {
            buf.push(v);
            if buf.len() == per {
                self.extend_from_slice(&buf)?;
                buf.clear();
            }
        }
        self.extend_from_slice(&buf)
    }

    /// Resizes to `len` elements: truncates, or appends copies of `value`.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-resize-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut shadow = emds::EmVec::<u8>::open(&dir)?;
    /// shadow.resize(1 << 20, 0xff)?;
    /// assert_eq!(shadow.get(12345)?, Some(0xff));
    /// shadow.resize(10, 0)?;
    /// assert_eq!(shadow.len(), 10);
    /// # drop(shadow);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn resize(&mut self, len: usize, value: T) -> Result<()> {
        if len <= self.len() {
            return self.truncate(len);
        }
        if size_of::<T>() == 0 {
            // One step, in O(1): every zero-sized value is the same.
            return self.extend_from_slice(&bytemuck::zeroed_vec::<T>(len - self.len()));
        }
        let per = (BATCH_BYTES / size_of::<T>()).max(1);
        let buf = vec![value; per.min(len - self.len())];
        while self.len() < len {
            let n = buf.len().min(len - self.len());
            self.extend_from_slice(&buf[..n])?;
        }
        Ok(())
    }

    /// The element at `index`, or `None` if `index >= len()`.
    ///
    /// # Errors
    ///
    /// None in practice: the store's references are validated when it is
    /// opened; a damaged reference would be [`Error::Corrupted`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-get-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<i32>::open(&dir)?;
    /// v.push(-1)?;
    /// assert_eq!(v.get(0)?, Some(-1));
    /// assert_eq!(v.get(1)?, None);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        if index >= self.len() {
            return Ok(None);
        }
        if size_of::<T>() == 0 {
            return Ok(Some(T::zeroed()));
        }
        let held = self.data.len() as usize;
        if index >= held {
            return Ok(Some(self.pend[index - held]));
        }
        let bytes = self.data.unit_at(&self.seq.store, index as u64)?;
        Ok(Some(bytemuck::pod_read_unaligned(bytes)))
    }

    /// The first element, or `None` if the vector is empty.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-first-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u8>::open(&dir)?;
    /// assert_eq!(v.first()?, None);
    /// v.extend_from_slice(&[4, 5])?;
    /// assert_eq!(v.first()?, Some(4));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn first(&self) -> Result<Option<T>> {
        self.get(0)
    }

    /// The last element, or `None` if the vector is empty.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-last-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u8>::open(&dir)?;
    /// v.extend_from_slice(&[4, 5])?;
    /// assert_eq!(v.last()?, Some(5));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn last(&self) -> Result<Option<T>> {
        match self.len() {
            0 => Ok(None),
            n => self.get(n - 1),
        }
    }

    /// The elements in `range`, borrowed from the mapping when they are
    /// contiguous there (they are unless the range crosses a chunk boundary or
    /// a block changed since the last flush), copied otherwise. `None` if the
    /// range does not lie inside `0..len()`.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-range-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend(0..100)?;
    /// assert_eq!(&*v.get_range(10..13)?.unwrap(), &[10, 11, 12]);
    /// assert!(v.get_range(90..101)?.is_none());
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn get_range(&self, range: impl RangeBounds<usize>) -> Result<Option<Cow<'_, [T]>>> {
        let Some(r) = resolve(range, self.len()) else {
            return Ok(None);
        };
        if size_of::<T>() == 0 {
            return Ok(Some(Cow::Borrowed(&self.zst[r])));
        }
        let held = self.data.len() as usize;
        if r.start >= held {
            return Ok(Some(Cow::Borrowed(&self.pend[r.start - held..r.end - held])));
        }
        let stored = r.start..r.end.min(held);
        let mut out = match self.data.bytes(&self.seq.store, stored.start as u64, stored.len() as u64)? {
            Cow::Borrowed(b) => Cow::Borrowed(cast(b)),
            Cow::Owned(v) => Cow::Owned(v.chunks_exact(size_of::<T>()).map(bytemuck::pod_read_unaligned).collect()),
        };
        if r.end > held {
            out.to_mut().extend_from_slice(&self.pend[..r.end - held]);
        }
        Ok(Some(out))
    }

    /// All elements as one slice of the mapping, if they lie in one contiguous
    /// run there (at most one chunk holds elements and no block changed since
    /// the last flush); `None` otherwise: use [`chunks`](Self::chunks).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-slice-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u16>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2, 3])?;
    /// assert_eq!(v.as_slice(), Some(&[1u16, 2, 3][..]));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn as_slice(&self) -> Option<&[T]> {
        if size_of::<T>() == 0 {
            return Some(&self.zst);
        }
        if self.data.len() == 0 {
            return Some(&self.pend);
        }
        if !self.pend.is_empty() || !self.data.is_contiguous() {
            return None;
        }
        self.data.run(&self.seq.store, 0).ok().map(cast)
    }

    /// Copies every element into a `Vec`.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-tovec-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u8>::open(&dir)?;
    /// v.extend_from_slice(b"abc")?;
    /// assert_eq!(v.to_vec()?, b"abc".to_vec());
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(self.len());
        for c in self.chunks() {
            out.extend_from_slice(c);
        }
        Ok(out)
    }

    /// Zero-copy slices of the mapping, in order, covering every element once:
    /// each chunk of the store is one slice (up to 16 MiB), split only around
    /// blocks changed since the last flush. The kernel is advised to read ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-chunks-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u64>::open(&dir)?;
    /// v.extend(0..1_000_000)?;
    /// let sum: u64 = v.chunks().map(|c| c.iter().sum::<u64>()).sum();
    /// assert_eq!(sum, 999_999 * 1_000_000 / 2);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn chunks(&self) -> Chunks<'_, T> {
        self.chunks_range(..).expect("the full range lies inside")
    }

    /// Zero-copy slices covering the elements of `range` in order, as
    /// [`chunks`](Self::chunks); `None` if the range does not lie inside `0..len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-chunksr-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend(0..100)?;
    /// let picked: Vec<u32> = v.chunks_range(95..).unwrap().flatten().copied().collect();
    /// assert_eq!(picked, vec![95, 96, 97, 98, 99]);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn chunks_range(&self, range: impl RangeBounds<usize>) -> Option<Chunks<'_, T>> {
        let r = resolve(range, self.len())?;
        Some(Chunks::new(self, r))
    }

    /// An iterator over the elements by value, double-ended and exact-size.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-iter-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<i8>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2, 3])?;
    /// assert_eq!(v.iter().rev().collect::<Vec<_>>(), vec![3, 2, 1]);
    /// assert_eq!(v.iter().len(), 3);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn iter(&self) -> VecIter<'_, T> {
        VecIter::new(self.chunks())
    }

    /// An iterator over the elements of `range` by value; `None` if the range
    /// does not lie inside `0..len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-iterr-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend(0..10)?;
    /// assert_eq!(v.iter_range(7..).unwrap().collect::<Vec<_>>(), vec![7, 8, 9]);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn iter_range(&self, range: impl RangeBounds<usize>) -> Option<VecIter<'_, T>> {
        self.chunks_range(range).map(VecIter::new)
    }

    /// Advises the kernel that the vector will be read at random
    /// (`MADV_RANDOM` on its whole store): no read-ahead, so a cold random
    /// [`get`](Self::get) or short [`get_range`](Self::get_range) reads only
    /// the pages it needs. A hint with no effect on results; it stays until
    /// [`advise_normal`](Self::advise_normal) or the vector is closed. Scans
    /// with [`chunks`](Self::chunks) or [`iter`](Self::iter) still advise
    /// read-ahead over their range while they run, and `MADV_NORMAL` when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-random-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut degrees = emds::EmVec::<u32>::open(&dir)?;
    /// degrees.extend(0..1_000_000)?;
    /// degrees.advise_random(); // point lookups from here on
    /// assert_eq!(degrees.get(765_432)?, Some(765_432));
    /// degrees.advise_normal(); // back to the kernel's default read-ahead
    /// # drop(degrees);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn advise_random(&self) {
        self.seq.store.advise_sequential(false);
    }

    /// Takes back any read-pattern advice on the vector's elements
    /// (`MADV_NORMAL` on every chunk): undoes [`advise_random`](Self::advise_random),
    /// and the `MADV_SEQUENTIAL` of a [`chunks`](Self::chunks) or
    /// [`iter`](Self::iter) scan whose iterator was leaked rather than dropped
    /// (dropping it already does this for its range). A hint with no effect on results.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-normal-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u64>::open(&dir)?;
    /// v.extend(0..1_000_000)?;
    /// std::mem::forget(v.chunks()); // a scan that never ends: its read-ahead advice stays
    /// v.advise_normal(); // taken back
    /// assert_eq!(v.get(3)?, Some(3));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn advise_normal(&self) {
        self.data.advise_normal(&self.seq.store);
    }

    /// Replaces the element at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`; otherwise as for
    /// [`push`](Self::push). On error the vector is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, Error};
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-set-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = EmVec::<u32>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2])?;
    /// v.set(1, 20)?;
    /// assert_eq!(v.to_vec()?, vec![1, 20]);
    /// assert!(matches!(v.set(2, 0), Err(Error::IndexOutOfBounds { index: 2, len: 2 })));
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn set(&mut self, index: usize, value: T) -> Result<()> {
        if index >= self.len() {
            return Err(out_of_bounds(index, self.len()));
        }
        self.write_access()?;
        self.spill()?;
        self.data.write(&mut self.seq.store, index as u64, bytemuck::bytes_of(&value))
    }

    /// Removes and returns the last element, or `None` if the vector is empty.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] or [`Error::Poisoned`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-pop-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.push(3)?;
    /// assert_eq!(v.pop()?, Some(3));
    /// assert_eq!(v.pop()?, None);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn pop(&mut self) -> Result<Option<T>> {
        self.seq.store.writable()?;
        let Some(last) = self.last()? else {
            return Ok(None);
        };
        self.truncate(self.len() - 1)?;
        Ok(Some(last))
    }

    /// Shortens the vector to `len` elements; nothing happens if it is not longer.
    /// Chunks that hold no element any more are freed.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] or [`Error::Poisoned`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-trunc-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend(0..10)?;
    /// v.truncate(2)?;
    /// assert_eq!(v.to_vec()?, vec![0, 1]);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len() {
            return self.seq.store.writable();
        }
        self.write_access()?;
        // Shortening needs no space, also on a full disk: buffered pushes past
        // `len` are dropped, not moved into the store first.
        let held = self.data.len() as usize;
        if len >= held {
            self.pend.truncate(len - held);
            return Ok(());
        }
        self.pend.clear();
        self.zst.truncate(len);
        self.data.truncate(&mut self.seq.store, len as u64)
    }

    /// Removes every element and frees their space.
    ///
    /// # Errors
    ///
    /// As for [`truncate`](Self::truncate).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-clear-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend(0..10)?;
    /// v.clear()?;
    /// assert!(v.is_empty());
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn clear(&mut self) -> Result<()> {
        self.truncate(0)
    }

    /// Removes the element at `index` and returns it, moving the last element
    /// into its place: O(1), does not preserve order.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`; otherwise as for
    /// [`set`](Self::set). On error the vector is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-swaprm-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u8>::open(&dir)?;
    /// v.extend_from_slice(b"abcd")?;
    /// assert_eq!(v.swap_remove(1)?, b'b');
    /// assert_eq!(v.to_vec()?, b"adc".to_vec());
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn swap_remove(&mut self, index: usize) -> Result<T> {
        let len = self.len();
        let Some(value) = self.get(index)? else {
            return Err(out_of_bounds(index, len));
        };
        let last = self.get(len - 1)?.expect("len > index");
        if index + 1 < len {
            self.set(index, last)?;
        }
        self.truncate(len - 1)?;
        Ok(value)
    }

    /// Inserts `value` at `index`, shifting the elements after it: O(len - index).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index > len()`; otherwise as for
    /// [`push`](Self::push). On error the vector is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-insert-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend_from_slice(&[1, 3])?;
    /// v.insert(1, 2)?;
    /// assert_eq!(v.to_vec()?, vec![1, 2, 3]);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn insert(&mut self, index: usize, value: T) -> Result<()> {
        let len = self.len();
        if index > len {
            return Err(out_of_bounds(index, len));
        }
        if index == len {
            return self.push(value);
        }
        self.write_access()?;
        self.spill()?;
        let mut moved = Vec::with_capacity(len - index + 1);
        moved.push(value);
        moved.extend_from_slice(&self.get_range(index..)?.expect("index < len"));
        let last = moved.pop().expect("at least one element moves");
        let store = &mut self.seq.store;
        // Every step that can fail (space for the shadows, the append) runs
        // before anything visible changes.
        self.data.make_writable(store, index as u64, (len - index) as u64)?;
        self.data.append(store, bytemuck::bytes_of(&last), 1)?;
        self.data.write(store, index as u64, bytemuck::cast_slice(&moved))?;
        if size_of::<T>() == 0 {
            self.zst.push(last);
        }
        Ok(())
    }

    /// Removes and returns the element at `index`, shifting the elements after
    /// it: O(len - index).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`; otherwise as for
    /// [`set`](Self::set). On error the vector is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-remove-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2, 3])?;
    /// assert_eq!(v.remove(0)?, 1);
    /// assert_eq!(v.to_vec()?, vec![2, 3]);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn remove(&mut self, index: usize) -> Result<T> {
        let len = self.len();
        let Some(value) = self.get(index)? else {
            return Err(out_of_bounds(index, len));
        };
        self.write_access()?;
        self.spill()?;
        let moved = self.get_range(index + 1..)?.expect("index < len").into_owned();
        self.data.write(&mut self.seq.store, index as u64, bytemuck::cast_slice(&moved))?;
        self.truncate(len - 1)?;
        Ok(value)
    }

    /// Makes every change durable: after it returns, a crash or power loss at
    /// any instant leaves at least this state. A no-op on a read-only vector.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if writing or syncing fails; a failed sync poisons the
    /// handle ([`Error::Poisoned`] from then on), and reopening shows the last
    /// completed flush.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-flush-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.push(1)?;
    /// v.flush()?; // durable from here on
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        if !self.seq.store.is_read_only() {
            self.spill()?;
        }
        let extra = Extra { len: self.data.len(), words: [0, 0] };
        self.seq.commit(&mut [&mut self.data], extra)
    }

    /// Flushes and closes the vector, releasing its lock, and reports any error
    /// (which dropping it would not).
    ///
    /// # Errors
    ///
    /// As for [`flush`](Self::flush).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-close-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u32>::open(&dir)?;
    /// v.push(1)?;
    /// v.close()?;
    /// assert_eq!(emds::EmVec::<u32>::open(&dir)?.to_vec()?, vec![1]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.flush()?;
        // The flush may have folded shadow copies back: record that too.
        if self.seq.changed { self.flush() } else { Ok(()) }
    }

    /// Walks the whole store: verifies the checksums of its meta record,
    /// allocator state and table, the vector's chunk table, and that every
    /// page of the store is either free or reached exactly once (no leak, no
    /// overlap). Returns the sizes found.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] naming the first fault found.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emvec-check-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u64>::open(&dir)?;
    /// v.extend(0..100_000)?;
    /// v.flush()?;
    /// let report = v.check()?;
    /// assert!(report.bytes_live >= 800_000);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        if size_of::<T>() == 0 && self.zst.len() != self.len() {
            return Err(Error::corrupted(self.seq.store.dir(), "check: zero-sized element count"));
        }
        self.seq.check(&[&self.data])
    }

    /// Advises the kernel that `range` will be read in order (or, with `false`, no longer).
    pub(crate) fn advise(&self, range: std::ops::Range<usize>, sequential: bool) {
        self.data.advise(&self.seq.store, range.start as u64..range.end as u64, sequential);
    }

    /// The region and the store, for the iterators.
    /// The elements from `i < len` to the end of their contiguous run: in the
    /// mapping, in the in-memory append buffer, or (zero-sized `T`) in memory.
    pub(crate) fn run_from(&self, i: usize) -> Result<&[T]> {
        let held = self.data.len() as usize;
        if size_of::<T>() == 0 {
            Ok(&self.zst[i..])
        } else if i >= held {
            Ok(&self.pend[i - held..])
        } else {
            self.data.run(&self.seq.store, i as u64).map(cast)
        }
    }

    /// The elements from the start of the contiguous run holding element
    /// `end - 1` up to `end` (`0 < end <= len`): [`run_from`](Self::run_from) from the back.
    pub(crate) fn run_to(&self, end: usize) -> Result<&[T]> {
        let held = self.data.len() as usize;
        if size_of::<T>() == 0 {
            Ok(&self.zst[..end])
        } else if end > held {
            Ok(&self.pend[..end - held])
        } else {
            self.data.run_back(&self.seq.store, end as u64).map(cast)
        }
    }
}

/// Views bytes of the mapping as elements: the bytes are whole elements at an
/// address aligned to a page plus a multiple of the element size.
#[inline]
pub(crate) fn cast<T: Pod>(bytes: &[u8]) -> &[T] {
    if bytes.is_empty() {
        return &[];
    }
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => s,
        Err(e) => unreachable!("element bytes are whole and aligned: {e:?}"),
    }
}

#[cfg(test)]
impl<T: Pod> EmVec<T> {
    /// The store, for tests that inject failures.
    pub(crate) fn store_mut(&mut self) -> &mut crate::alloc::Store {
        &mut self.seq.store
    }
}

impl<T: Pod> Drop for EmVec<T> {
    fn drop(&mut self) {
        if !self.closed && !self.seq.store.is_read_only() {
            let _ = self.flush();
            if self.seq.changed {
                let _ = self.flush();
            }
        }
    }
}

impl<'a, T: Pod> IntoIterator for &'a EmVec<T> {
    type Item = T;
    type IntoIter = VecIter<'a, T>;

    fn into_iter(self) -> VecIter<'a, T> {
        self.iter()
    }
}

#[cfg(test)]
mod append_buffer_tests {
    use super::*;

    /// Elements pushed one by one wait in memory before reaching the store:
    /// every read sees them, across the boundary with the stored ones, and
    /// every other change, a flush and a reopen find them in order.
    #[test]
    fn pushed_elements_are_read_through_the_buffer_and_reach_the_store() {
        let dir = std::env::temp_dir().join(format!("emds-unit-vec-pend-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut v = EmVec::<[u32; 3]>::open(&dir).unwrap();
        let mut model = Vec::new();
        let per = PEND_BYTES / size_of::<[u32; 3]>();
        for i in 0..(2 * per + 77) as u32 {
            v.push([i, !i, i * 3]).unwrap();
            model.push([i, !i, i * 3]);
        }
        assert!(!v.pend.is_empty() && v.data.len() > 0, "some elements stored, some buffered");
        let held = v.data.len() as usize;
        assert_eq!(v.len(), model.len());
        assert_eq!(v.get(held - 1).unwrap(), Some(model[held - 1]));
        assert_eq!(v.get(held).unwrap(), Some(model[held]));
        assert_eq!(v.last().unwrap(), model.last().copied());
        assert_eq!(v.get(model.len()).unwrap(), None);
        assert_eq!(&*v.get_range(held - 5..held + 5).unwrap().unwrap(), &model[held - 5..held + 5]);
        assert_eq!(&*v.get_range(held + 1..held + 3).unwrap().unwrap(), &model[held + 1..held + 3]);
        assert_eq!(v.as_slice(), None, "stored and buffered elements are not one slice");
        assert_eq!(v.to_vec().unwrap(), model);
        assert!(v.iter().rev().eq(model.iter().rev().copied()));
        let back: Vec<[u32; 3]> = v.chunks().rev().flat_map(|c| c.iter().rev().copied()).collect();
        assert!(back.into_iter().eq(model.iter().rev().copied()));
        // A change other than a push moves the buffer into the store first.
        v.set(held + 2, [9, 9, 9]).unwrap();
        model[held + 2] = [9, 9, 9];
        assert!(v.pend.is_empty());
        v.push([1, 2, 3]).unwrap();
        model.push([1, 2, 3]);
        assert_eq!(v.pop().unwrap(), model.pop());
        v.push([4, 5, 6]).unwrap();
        model.push([4, 5, 6]);
        v.insert(3, [7, 7, 7]).unwrap();
        model.insert(3, [7, 7, 7]);
        v.push([8, 8, 8]).unwrap();
        model.push([8, 8, 8]);
        v.close().unwrap();
        let v = EmVec::<[u32; 3]>::open_read_only(&dir).unwrap();
        assert_eq!(v.to_vec().unwrap(), model);
        v.check().unwrap();
        drop(v);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Pushes into an empty vector stay one slice until the first spill.
    #[test]
    fn a_vector_of_buffered_pushes_is_one_slice() {
        let dir = std::env::temp_dir().join(format!("emds-unit-vec-pend-slice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut v = EmVec::<u64>::open(&dir).unwrap();
        v.push(1).unwrap();
        v.push(2).unwrap();
        assert_eq!(v.as_slice(), Some(&[1u64, 2][..]));
        v.flush().unwrap();
        assert_eq!(v.as_slice(), Some(&[1u64, 2][..]));
        drop(v);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
