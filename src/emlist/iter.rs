//! The iterators of `EmVec` and `EmList`.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;

use bytemuck::Pod;
use serde::de::DeserializeOwned;

use super::list::{Cursor, EmList};
use super::vec::EmVec;
use crate::error::Result;

/// Zero-copy slices of an [`EmVec`], in order, covering a range of elements
/// once. Made by [`EmVec::chunks`] and [`EmVec::chunks_range`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("emds-doc-chunks-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut v = emds::EmVec::<u32>::open(&dir)?;
/// v.extend(0..10)?;
/// let mut chunks: emds::emlist::Chunks<'_, u32> = v.chunks();
/// assert_eq!(chunks.next(), Some(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9][..]));
/// assert_eq!(chunks.next(), None);
/// # drop(chunks);
/// # drop(v);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct Chunks<'a, T: Pod> {
    vec: &'a EmVec<T>,
    range: Range<usize>,
    /// The range advised for sequential reading, reset when dropped.
    advised: Option<Range<usize>>,
}

/// Scans of at least this many bytes advise the kernel to read ahead.
const ADVISE_BYTES: usize = 4 << 20;

impl<'a, T: Pod> Chunks<'a, T> {
    pub(crate) fn new(vec: &'a EmVec<T>, range: Range<usize>) -> Self {
        let advised = (range.len().saturating_mul(size_of::<T>()) >= ADVISE_BYTES).then(|| range.clone());
        if let Some(r) = &advised {
            vec.advise(r.clone(), true);
        }
        Chunks { vec, range, advised }
    }

    /// The elements not yet yielded, from both ends.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-chunks-rem-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut v = emds::EmVec::<u8>::open(&dir)?;
    /// v.extend_from_slice(&[1, 2, 3])?;
    /// let mut chunks = v.chunks();
    /// assert_eq!(chunks.remaining(), 3);
    /// chunks.next();
    /// assert_eq!(chunks.remaining(), 0);
    /// # drop(chunks);
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn remaining(&self) -> usize {
        self.range.len()
    }
}

impl<T: Pod> fmt::Debug for Chunks<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunks").field("range", &self.range).finish()
    }
}

impl<'a, T: Pod> Iterator for Chunks<'a, T> {
    type Item = &'a [T];

    #[inline]
    fn next(&mut self) -> Option<&'a [T]> {
        if self.range.is_empty() {
            return None;
        }
        // The region's references were validated at open: a read cannot fail.
        let Ok(slice) = self.vec.run_from(self.range.start) else {
            self.range.start = self.range.end;
            return None;
        };
        let take = slice.len().min(self.range.len());
        self.range.start += take;
        Some(&slice[..take])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(!self.range.is_empty()), Some(self.range.len()))
    }
}

impl<'a, T: Pod> DoubleEndedIterator for Chunks<'a, T> {
    fn next_back(&mut self) -> Option<&'a [T]> {
        if self.range.is_empty() {
            return None;
        }
        let Ok(slice) = self.vec.run_to(self.range.end) else {
            self.range.end = self.range.start;
            return None;
        };
        let take = slice.len().min(self.range.len());
        self.range.end -= take;
        Some(&slice[slice.len() - take..])
    }
}

impl<T: Pod> FusedIterator for Chunks<'_, T> {}

impl<T: Pod> Drop for Chunks<'_, T> {
    fn drop(&mut self) {
        if let Some(r) = self.advised.take() {
            self.vec.advise(r, false);
        }
    }
}

/// The elements of an [`EmVec`] by value, double-ended and exact-size. Made
/// by [`EmVec::iter`] and [`EmVec::iter_range`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("emds-doc-veciter-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut v = emds::EmVec::<u32>::open(&dir)?;
/// v.extend(0..10)?;
/// let mut it: emds::emlist::VecIter<'_, u32> = v.iter();
/// assert_eq!(it.next(), Some(0));
/// assert_eq!(it.next_back(), Some(9));
/// assert_eq!(it.len(), 8);
/// assert_eq!(it.nth(5), Some(6));
/// # drop(it);
/// # drop(v);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct VecIter<'a, T: Pod> {
    chunks: Chunks<'a, T>,
    front: &'a [T],
    back: &'a [T],
}

impl<'a, T: Pod> VecIter<'a, T> {
    pub(crate) fn new(chunks: Chunks<'a, T>) -> Self {
        VecIter { chunks, front: &[], back: &[] }
    }
}

impl<T: Pod> fmt::Debug for VecIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VecIter").field("remaining", &self.len()).finish()
    }
}

impl<T: Pod> Iterator for VecIter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        loop {
            if let Some((first, rest)) = self.front.split_first() {
                self.front = rest;
                return Some(*first);
            }
            match self.chunks.next() {
                Some(c) => self.front = c,
                None => {
                    let (first, rest) = self.back.split_first()?;
                    self.back = rest;
                    return Some(*first);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }

    fn nth(&mut self, mut n: usize) -> Option<T> {
        if n < self.front.len() {
            self.front = &self.front[n..];
            return self.next();
        }
        n -= self.front.len();
        self.front = &[];
        let skip = n.min(self.chunks.range.len());
        self.chunks.range.start += skip;
        n -= skip;
        self.back = self.back.get(n..).unwrap_or(&[]);
        self.next()
    }
}

impl<T: Pod> DoubleEndedIterator for VecIter<'_, T> {
    fn next_back(&mut self) -> Option<T> {
        loop {
            if let Some((last, rest)) = self.back.split_last() {
                self.back = rest;
                return Some(*last);
            }
            match self.chunks.next_back() {
                Some(c) => self.back = c,
                None => {
                    let (last, rest) = self.front.split_last()?;
                    self.front = rest;
                    return Some(*last);
                }
            }
        }
    }
}

impl<T: Pod> ExactSizeIterator for VecIter<'_, T> {
    fn len(&self) -> usize {
        self.front.len() + self.chunks.remaining() + self.back.len()
    }
}

impl<T: Pod> FusedIterator for VecIter<'_, T> {}

/// The elements of an [`EmList`], decoded, in order: `Item = Result<T>`, an
/// element that does not decode is an [`Error::Decode`](crate::Error::Decode)
/// naming its index. Double-ended and exact-size. Made by [`EmList::iter`]
/// and [`EmList::iter_range`].
///
/// # Examples
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("emds-doc-listiter-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut l = emds::EmList::<String>::open(&dir)?;
/// l.extend(["a", "b", "c"].map(String::from))?;
/// let mut it: emds::emlist::Iter<'_, String> = l.iter();
/// assert_eq!(it.next().transpose()?, Some("a".to_string()));
/// assert_eq!(it.next_back().transpose()?, Some("c".to_string()));
/// assert_eq!(it.len(), 1);
/// # drop(it);
/// # drop(l);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct Iter<'a, T: serde::Serialize + DeserializeOwned> {
    list: &'a EmList<T>,
    cursor: Cursor<'a>,
    range: Range<usize>,
    /// Whether the list was advised for sequential reading (reset when dropped).
    advised: bool,
}

impl<'a, T: serde::Serialize + DeserializeOwned> Iter<'a, T> {
    pub(crate) fn new(list: &'a EmList<T>, range: Range<usize>) -> Self {
        let advised = range.len() >= 1 << 18;
        if advised {
            list.advise(true);
        }
        Iter { list, cursor: Cursor::default(), range, advised }
    }
}

impl<T: serde::Serialize + DeserializeOwned> Drop for Iter<'_, T> {
    fn drop(&mut self) {
        if self.advised {
            self.list.advise(false);
        }
    }
}

impl<T: serde::Serialize + DeserializeOwned> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("range", &self.range).finish()
    }
}

impl<T: serde::Serialize + DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = Result<T>;

    #[inline]
    fn next(&mut self) -> Option<Result<T>> {
        if self.range.is_empty() {
            return None;
        }
        let i = self.range.start;
        self.range.start += 1;
        let r = self.list.next_at(&mut self.cursor, i);
        if r.is_err() {
            // A damaged element: the error names it; the iterator goes on after it.
            self.cursor = Cursor::default();
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.range.len(), Some(self.range.len()))
    }

    fn nth(&mut self, n: usize) -> Option<Result<T>> {
        let skip = n.min(self.range.len());
        self.range.start += skip;
        self.cursor = Cursor::default();
        self.next()
    }
}

impl<T: serde::Serialize + DeserializeOwned> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Result<T>> {
        if self.range.is_empty() {
            return None;
        }
        self.range.end -= 1;
        match self.list.get(self.range.end) {
            Ok(Some(v)) => Some(Ok(v)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl<T: serde::Serialize + DeserializeOwned> ExactSizeIterator for Iter<'_, T> {}

impl<T: serde::Serialize + DeserializeOwned> FusedIterator for Iter<'_, T> {}
