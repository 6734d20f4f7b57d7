//! Iterators over an `EmDict`: every entry once, in the order of the
//! directory (hash order), bucket by bucket.

use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

use super::bucket::{Bucket, Cursor, PAGE, Stored};
use super::directory::{base, pages_in};
use super::encode::decode;
use super::raw::RawDict;
use crate::codec;

/// Walks the entries of a `RawDict` as stored bytes.
pub(crate) struct RawIter<'a> {
    raw: &'a RawDict,
    next_idx: usize,
    page: Option<(Bucket<'a>, u64)>,
    /// The current bucket: its first page, its pages, and which of them
    /// holds the current chain.
    bucket: (u64, usize, usize),
    cursor: Cursor,
    hops: u64,
    remaining: u64,
}

/// One stored entry and where it is.
pub(crate) struct RawEntry<'a> {
    pub stored: Stored<'a>,
    pub page: u64,
    pub i: usize,
}

impl<'a> RawIter<'a> {
    pub(crate) fn new(raw: &'a RawDict) -> Self {
        RawIter {
            raw,
            next_idx: 0,
            page: None,
            bucket: (0, 0, 0),
            cursor: Cursor::START,
            hops: 0,
            remaining: raw.len(),
        }
    }

    fn fail(&mut self, e: Error) -> Option<Result<RawEntry<'a>>> {
        self.next_idx = usize::MAX;
        self.page = None;
        self.remaining = 0;
        Some(Err(e))
    }

    fn corrupt(&mut self, addr: u64, what: String) -> Option<Result<RawEntry<'a>>> {
        let e = Error::corrupted(self.raw.store.dir(), format!("bucket at {addr:#x}: {what}"));
        self.fail(e)
    }

    fn load(&mut self, addr: u64) -> Result<()> {
        self.page = Some((self.raw.bucket(addr)?, addr));
        self.cursor = Cursor::START;
        Ok(())
    }

    /// The next entry of the current page, if any.
    #[inline]
    fn in_page(&mut self) -> Option<Result<RawEntry<'a>>> {
        let (b, addr) = self.page?;
        match b.next_entry(&mut self.cursor)? {
            Ok(e) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(Ok(RawEntry { stored: e.stored, page: addr, i: e.i }))
            }
            Err(w) => self.corrupt(addr, w),
        }
    }
}

impl<'a> Iterator for RawIter<'a> {
    type Item = Result<RawEntry<'a>>;

    /// The next entry of the current page, inline; moving to the next page
    /// is [`next_page`](RawIter::next_page)'s.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self.in_page() {
            Some(r) => Some(r),
            None => self.next_page(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining as usize;
        (n, Some(n))
    }
}

impl<'a> RawIter<'a> {
    /// The next entry, if it is a valid slot of a hashed page (the common
    /// case of small uniform entries): no error to carry. `None` leaves the
    /// entry to [`next`](Iterator::next).
    #[inline(always)]
    pub(crate) fn next_slot(&mut self) -> Option<(Stored<'a>, u64, usize)> {
        let (b, addr) = self.page?;
        if !b.is_hashed() {
            return None;
        }
        let before = self.cursor;
        let i = b.next_occupied(&mut self.cursor)?;
        match b.slot(i) {
            Ok(stored) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some((stored, addr, i))
            }
            Err(_) => {
                // Left to `next`, whose error names the slot.
                self.cursor = before;
                None
            }
        }
    }

    /// Moves to the next page with an entry (the next of the chain, else the
    /// next page of the bucket, else the next bucket of the directory) and
    /// returns that entry.
    #[inline(never)]
    fn next_page(&mut self) -> Option<Result<RawEntry<'a>>> {
        loop {
            if let Some((b, addr)) = self.page {
                let next = match b.next() {
                    Some(next) => {
                        self.hops += 1;
                        if self.hops > self.raw.bucket_pages() {
                            return self.corrupt(addr, "its chain loops".into());
                        }
                        Some(next)
                    }
                    None => {
                        let (first, k, j) = self.bucket;
                        self.bucket.2 += 1;
                        (j + 1 < k).then(|| first + ((j + 1) * PAGE) as u64)
                    }
                };
                match next {
                    Some(next) => {
                        if let Err(e) = self.load(next) {
                            return self.fail(e);
                        }
                        if let Some(r) = self.in_page() {
                            return Some(r);
                        }
                    }
                    None => self.page = None,
                }
                continue;
            }
            let dir = &self.raw.dir;
            let Some(&e) = dir.entries.get(self.next_idx) else {
                self.next_idx = usize::MAX;
                return None;
            };
            let addr = base(e);
            self.bucket = (addr, pages_in(e), 0);
            let b = match self.raw.bucket(addr) {
                Ok(b) => b,
                Err(e) => return self.fail(e),
            };
            if b.depth() > dir.depth {
                return self.corrupt(addr, format!("local depth {} exceeds the directory's", b.depth()));
            }
            let count = 1usize << (dir.depth - b.depth());
            // The bucket's run of directory entries is the one its depth
            // gives: a header that lies about the depth would have the
            // bucket's entries repeated, or the buckets its run hides skipped.
            let (start, run) = (self.next_idx, dir.entries.get(self.next_idx..self.next_idx + count));
            if start & (count - 1) != 0
                || run.is_none_or(|r| r[count - 1] != e)
                || dir.entries.get(start + count) == Some(&e)
            {
                return self.corrupt(addr, format!("local depth {} does not match its directory entries", b.depth()));
            }
            self.next_idx = start + count;
            self.hops = 0;
            self.page = Some((b, addr));
            self.cursor = Cursor::START;
            if let Some(r) = self.in_page() {
                return Some(r);
            }
        }
    }
}

impl<'a> RawIter<'a> {
    pub(crate) fn raw(&self) -> &'a RawDict {
        self.raw
    }
}

fn key_what(e: &RawEntry<'_>) -> String {
    format!("key of entry {} in bucket {:#x}", e.i, e.page)
}

fn value_what(e: &RawEntry<'_>) -> String {
    format!("value of entry {} in bucket {:#x}", e.i, e.page)
}

pub(crate) fn decode_key<K: DeserializeOwned>(raw: &RawDict, e: &RawEntry<'_>) -> Result<K> {
    decode(&raw.key_of(&e.stored)?, raw.store.dir(), || key_what(e))
}

pub(crate) fn decode_value<V: DeserializeOwned>(raw: &RawDict, e: &RawEntry<'_>) -> Result<V> {
    decode(&raw.value_of(&e.stored)?, raw.store.dir(), || value_what(e))
}

/// The key of an entry of a hashed page, decoded; `None` on any failure
/// (the caller then decodes again through [`decode`], which builds the error).
#[inline]
fn fast_key<T: DeserializeOwned>(s: &Stored<'_>) -> Option<T> {
    match *s {
        Stored::Packed { key, .. } => super::packed::decode(key).or_else(|| fast(&s.inline_key()?)),
        _ => fast(&s.inline_key()?),
    }
}

/// [`fast_key`] for the value.
#[inline]
fn fast_value<T: DeserializeOwned>(s: &Stored<'_>) -> Option<T> {
    match *s {
        Stored::Packed { value, .. } => super::packed::decode(value).or_else(|| fast(&s.inline_value()?)),
        _ => fast(&s.inline_value()?),
    }
}

/// Decodes a whole key or value; `None` on any failure (the caller then
/// decodes again through [`decode`], which builds the error).
#[inline]
fn fast<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match codec::from_bytes::<T>(bytes) {
        Ok((v, [])) => Some(v),
        _ => None,
    }
}

macro_rules! dict_iter {
    ($(#[$doc:meta])* $name:ident, $item:ty, |$slot:ident| $fast:expr, |$raw:ident, $e:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name<'a, K, V> {
            pub(crate) inner: RawIter<'a>,
            pub(crate) _types: PhantomData<fn() -> (K, V)>,
        }

        impl<'a, K: DeserializeOwned, V: DeserializeOwned> Iterator for $name<'a, K, V> {
            type Item = Result<$item>;

            #[inline]
            fn next(&mut self) -> Option<Self::Item> {
                if let Some((stored, page, i)) = self.inner.next_slot() {
                    let $slot = stored;
                    let fast_path = || $fast;
                    if let Some(item) = fast_path() {
                        return Some(Ok(item));
                    }
                    // A decoding failure: decode again the slow way, which names the entry.
                    let $raw = self.inner.raw();
                    let $e = RawEntry { stored, page, i };
                    let slow_path = || $body;
                    return Some(slow_path());
                }
                let $raw = self.inner.raw();
                Some(self.inner.next()?.and_then(|$e| $body))
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.inner.size_hint()
            }
        }

        impl<K: DeserializeOwned, V: DeserializeOwned> FusedIterator for $name<'_, K, V> {}

        impl<K, V> fmt::Debug for $name<'_, K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("path", &self.inner.raw().store.dir())
                    .field("remaining", &self.inner.remaining)
                    .finish()
            }
        }
    };
}

dict_iter!(
    /// An iterator over the entries of an [`EmDict`](crate::EmDict), made by
    /// [`EmDict::iter`](crate::EmDict::iter). Each item is decoded from the
    /// store: `Ok((key, value))`, or an error naming the entry that could not be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-iter-type-{}", std::process::id()));
    /// let mut d: EmDict<u32, u32> = EmDict::open(&dir)?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// let it: emds::emdict::Iter<'_, u32, u32> = d.iter();
    /// let mut all = it.collect::<Result<Vec<_>, _>>()?;
    /// all.sort();
    /// assert_eq!(all, [(1, 10), (2, 20)]);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    Iter,
    (K, V),
    |slot| Some((fast_key::<K>(&slot)?, fast_value::<V>(&slot)?)),
    |raw, e| Ok((decode_key(raw, &e)?, decode_value(raw, &e)?))
);

dict_iter!(
    /// An iterator over the keys of an [`EmDict`](crate::EmDict), made by
    /// [`EmDict::keys`](crate::EmDict::keys). Values are not decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-keys-type-{}", std::process::id()));
    /// let mut d: EmDict<u32, u32> = EmDict::open(&dir)?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// let keys: emds::emdict::Keys<'_, u32, u32> = d.keys();
    /// assert_eq!(keys.map(Result::unwrap).sum::<u32>(), 3);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    Keys,
    K,
    |slot| fast_key::<K>(&slot),
    |raw, e| decode_key(raw, &e)
);

dict_iter!(
    /// An iterator over the values of an [`EmDict`](crate::EmDict), made by
    /// [`EmDict::values`](crate::EmDict::values). Keys are not decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-values-type-{}", std::process::id()));
    /// let mut d: EmDict<u32, u32> = EmDict::open(&dir)?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// let values: emds::emdict::Values<'_, u32, u32> = d.values();
    /// assert_eq!(values.map(Result::unwrap).sum::<u32>(), 30);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    Values,
    V,
    |slot| fast_value::<V>(&slot),
    |raw, e| decode_value(raw, &e)
);

/// The entries taken out of an [`EmDict`](crate::EmDict) by
/// [`EmDict::drain`](crate::EmDict::drain), already decoded.
///
/// # Examples
///
/// ```
/// use emds::EmDict;
///
/// let dir = std::env::temp_dir().join(format!("emds-doc-drain-type-{}", std::process::id()));
/// let mut d: EmDict<u32, u32> = EmDict::open(&dir)?;
/// d.extend([(1, 10), (2, 20)])?;
/// let drained: emds::emdict::Drain<u32, u32> = d.drain()?;
/// assert_eq!(drained.len(), 2);
/// assert!(d.is_empty());
/// # drop(d);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct Drain<K, V> {
    pub(crate) inner: std::vec::IntoIter<(K, V)>,
}

impl<K, V> Iterator for Drain<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> DoubleEndedIterator for Drain<K, V> {
    fn next_back(&mut self) -> Option<(K, V)> {
        self.inner.next_back()
    }
}

impl<K, V> ExactSizeIterator for Drain<K, V> {}
impl<K, V> FusedIterator for Drain<K, V> {}

impl<K, V> fmt::Debug for Drain<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").field("remaining", &self.inner.len()).finish()
    }
}
