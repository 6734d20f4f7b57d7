//! `EmList<T>`: a persistent list of any serde type.
//!
//! Three regions: the data (the elements' postcard encodings, back to back),
//! one length code per element, and the data offset of every group of
//! [`GROUP`] elements. `get(i)` reads one offset, at most `GROUP` codes and the
//! element: O(1), three pages. Layout in `docs/DESIGN.md` ("EmList and EmVec pages").

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::iter::Iter;
use super::region::Region;
use super::seq::{Extra, Seq};
use super::tail::Buffered;
use super::vec::{out_of_bounds, resolve};
use crate::alloc::{CheckReport, Kind};
use crate::codec::{self, CodecError};
use crate::error::{Error, Result};
use crate::options::OpenOptions;

const MAGIC: [u8; 8] = *b"EMDSLIST";
/// Elements per group: one data offset per group.
pub(crate) const GROUP: u64 = 16;
/// Length codes below this are the encoding's length.
const LONG: u8 = 254;
/// Flag word bit: some group's data is not where the previous group's ends.
const RELOCATED: u64 = 1;
/// Data bytes that may be dead (left behind by `set` or `truncate`) before
/// the data is compacted: more than this and more than the live bytes.
const COMPACT_SLACK: u64 = 1 << 20;

/// A persistent list of any serde type, stored in a directory.
///
/// Elements are stored as their postcard encodings, back to back, with one
/// length byte per element and one 8-byte offset per 16 elements: 1.5 bytes of
/// overhead per element (plus 8 bytes for encodings of 254 bytes or more).
/// `get(i)` is O(1) and reads three pages; [`iter`](Self::iter) streams.
/// Changes are durable at [`flush`](Self::flush) and [`close`](Self::close);
/// a crash at any instant leaves the state of the last completed flush.
/// Dropping the list flushes on a best-effort basis (call `close` to see errors).
///
/// # Examples
///
/// ```
/// use emds::EmList;
///
/// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut calls: EmList<(u64, String)> = EmList::open(&dir)?;
/// calls.push((0x401000, "main".into()))?;
/// calls.push((0x401200, "parse_args".into()))?;
/// calls.close()?;
///
/// let calls: EmList<(u64, String)> = EmList::open_read_only(&dir)?;
/// assert_eq!(calls.get(1)?, Some((0x401200, "parse_args".to_string())));
/// assert_eq!(calls.iter().count(), 2);
/// # drop(calls);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct EmList<T: Serialize + DeserializeOwned> {
    seq: Seq,
    data: Buffered,
    codes: Buffered,
    groups: Buffered,
    live_bytes: u64,
    flags: u64,
    /// Data offset and stored bytes of the last group.
    tail_off: u64,
    tail_bytes: u64,
    scratch: Vec<u8>,
    closed: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> fmt::Debug for EmList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmList")
            .field("path", &self.seq.store.dir())
            .field("len", &self.len())
            .field("data_bytes", &self.data.len())
            .field("read_only", &self.seq.store.is_read_only())
            .finish()
    }
}

/// Truncates a buffer back to `len` when dropped: undoes a partial encoding
/// if `Serialize` fails or panics.
struct Guard<'a> {
    v: &'a mut Vec<u8>,
    len: usize,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.v.truncate(self.len);
    }
}

/// Where the sequential reader of an `EmList` stands.
#[derive(Default)]
pub(crate) struct Cursor<'a> {
    /// Whether the fields below describe element `next`.
    valid: bool,
    next: usize,
    /// Data offset of element `next`.
    pos: u64,
    /// Length codes from element `next` on.
    codes: &'a [u8],
    /// A run of the data starting at offset `data_at`.
    data: &'a [u8],
    data_at: u64,
}

fn stored_len(code: u8, body: usize) -> u64 {
    if code == LONG { 8 + body as u64 } else { body as u64 }
}

impl<T: Serialize + DeserializeOwned> EmList<T> {
    /// Opens the list stored in the directory `path` read-write, creating it if
    /// it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another handle has it open (also in this process:
    /// close the first handle before opening again), [`Error::WrongKind`] if it
    /// holds another structure, [`Error::Corrupted`] or [`Error::Incompatible`]
    /// if its files are damaged or foreign, [`Error::Io`] if the operating
    /// system refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmList, EmVec, Error};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-open-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let list: EmList<String> = EmList::open(&dir)?;
    /// assert!(matches!(EmList::<String>::open(&dir), Err(Error::Locked { .. })));
    /// list.close()?;
    /// assert!(matches!(EmVec::<u8>::open(&dir), Err(Error::WrongKind { .. })));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new())
    }

    /// Opens the list in `path` read-only, under a shared lock: any number of
    /// readers may have it open at once; every write returns [`Error::ReadOnly`].
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open); a missing store is [`Error::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-ro-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// emds::EmList::<u32>::open(&dir)?.push(5)?;
    /// let a = emds::EmList::<u32>::open_read_only(&dir)?;
    /// let b = emds::EmList::<u32>::open_read_only(&dir)?;
    /// assert_eq!((a.get(0)?, b.get(0)?), (Some(5), Some(5)));
    /// # drop((a, b));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::new().read_only(true))
    }

    /// Opens the list in `path` with the given options.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmList, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-with-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l: EmList<u64> = EmList::open_with(&dir, OpenOptions::new().truncate(true))?;
    /// l.push(1)?;
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        let (seq, regions, extra) = Seq::open(path, options, Kind::List, 0, 0, MAGIC, &[1, 1, 8])?;
        let [data, codes, groups] = <[Region; 3]>::try_from(regions).expect("three regions");
        let mut list = EmList {
            seq,
            data: Buffered::new(data, 1),
            codes: Buffered::new(codes, 1),
            groups: Buffered::new(groups, 8),
            live_bytes: extra.words[0],
            flags: extra.words[1],
            tail_off: 0,
            tail_bytes: 0,
            scratch: Vec::new(),
            closed: false,
            _t: PhantomData,
        };
        let n = list.codes.len();
        if extra.len != n || list.groups.len() != n.div_ceil(GROUP) || list.flags & !RELOCATED != 0 {
            let what = format!("list of {} elements with {} codes and {} groups", extra.len, n, list.groups.len());
            return Err(Error::corrupted(path, what));
        }
        if list.live_bytes > list.data.len() {
            let what = format!("{} live bytes in {} bytes of data", list.live_bytes, list.data.len());
            return Err(Error::corrupted(path, what));
        }
        list.load_tail()?;
        Ok(list)
    }

    /// Recomputes where the last group lies.
    fn load_tail(&mut self) -> Result<()> {
        let n = self.codes.len();
        if n == 0 {
            (self.tail_off, self.tail_bytes) = (0, 0);
            return Ok(());
        }
        let g = (n - 1) / GROUP;
        let (off, bytes) = self.span(g * GROUP, n)?;
        (self.tail_off, self.tail_bytes) = (off, bytes);
        Ok(())
    }

    /// The data offset of element `from` (which starts a group) and the stored
    /// bytes of elements `from..to` (within that group).
    fn span(&self, from: u64, to: u64) -> Result<(u64, u64)> {
        let store = &self.seq.store;
        let off = self.group_offset(from / GROUP)?;
        let mut pos = off;
        if to > from {
            let codes = self.codes.bytes(store, from, to - from)?;
            for (k, &c) in codes.iter().enumerate() {
                pos = pos.saturating_add(self.stored_at(c, pos, from + k as u64)?);
            }
        }
        Ok((off, pos - off))
    }

    /// The data offset of group `g`, checked against the data's length (the
    /// groups region is not checksummed: a damaged offset must be an error,
    /// not an overflow or a read outside the data).
    fn group_offset(&self, g: u64) -> Result<u64> {
        let b = self.groups.unit_at(&self.seq.store, g)?;
        let off = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        if off > self.data.len() {
            return Err(self.bad_group(g, off));
        }
        Ok(off)
    }

    #[cold]
    #[inline(never)]
    fn bad_group(&self, g: u64, off: u64) -> Error {
        self.corrupt(format!("group {g} starts at data offset {off}, past the data's {} bytes", self.data.len()))
    }

    fn corrupt(&self, what: String) -> Error {
        Error::corrupted(self.seq.store.dir(), what)
    }

    /// The stored bytes of element `i`, whose code is `code` and data starts at `pos`.
    #[inline]
    fn stored_at(&self, code: u8, pos: u64, i: u64) -> Result<u64> {
        match code {
            c if c < LONG => Ok(c as u64),
            LONG => {
                let n = self.long_len(pos, i)?;
                Ok(8 + n)
            }
            c => Err(self.corrupt(format!("element {i} has length code {c}"))),
        }
    }

    fn long_len(&self, pos: u64, i: u64) -> Result<u64> {
        if pos.saturating_add(8) > self.data.len() {
            return Err(self.corrupt(format!("element {i} lies past the data")));
        }
        let b = self.data.bytes(&self.seq.store, pos, 8)?;
        let n = u64::from_le_bytes(b[..].try_into().expect("8 bytes"));
        if n < LONG as u64 || n > self.data.len() - pos - 8 {
            return Err(self.corrupt(format!("element {i} has a long length of {n} bytes")));
        }
        Ok(n)
    }

    /// The encoding of element `i` (code `code`, stored at `pos`).
    fn body(&self, code: u8, pos: u64, i: u64) -> Result<Cow<'_, [u8]>> {
        let (at, n) = match code {
            c if c < LONG => (pos, c as u64),
            LONG => (pos.saturating_add(8), self.long_len(pos, i)?),
            c => return Err(self.corrupt(format!("element {i} has length code {c}"))),
        };
        if at.saturating_add(n) > self.data.len() {
            return Err(self.corrupt(format!("element {i} lies past the data")));
        }
        self.data.bytes(&self.seq.store, at, n)
    }

    /// Code and data offset of element `i < len`.
    fn locate(&self, i: u64) -> Result<(u8, u64)> {
        let first = i / GROUP * GROUP;
        let mut pos = self.group_offset(i / GROUP)?;
        let codes = self.codes.bytes(&self.seq.store, first, i - first + 1)?;
        let (&code, before) = codes.split_last().expect("at least element i");
        for (k, &c) in before.iter().enumerate() {
            pos = pos.saturating_add(self.stored_at(c, pos, first + k as u64)?);
        }
        Ok((code, pos))
    }

    /// Decodes element `i` from its stored bytes `body` (all of them: bytes
    /// left over mean a store written with another type).
    #[inline]
    fn decode(&self, body: &[u8], i: u64) -> Result<T> {
        codec::from_whole_bytes::<T>(body).map_err(|e| self.decode_error(i, e))
    }

    /// The error for element `i`, which did not decode.
    #[cold]
    #[inline(never)]
    fn decode_error(&self, i: u64, e: CodecError) -> Error {
        Error::decode(self.seq.store.dir(), format!("element {i}"), e)
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-len-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<()>::open(&dir)?;
    /// l.extend(std::iter::repeat_n((), 1000))?;
    /// assert_eq!(l.len(), 1000);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.codes.len() as usize
    }

    /// Whether the list has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-empty-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let l = emds::EmList::<u8>::open(&dir)?;
    /// assert!(l.is_empty());
    /// # drop(l);
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

    /// Encodes `value` into the scratch buffer. The list is untouched if
    /// `Serialize` fails or panics.
    fn encode(&mut self, value: &T) -> Result<Vec<u8>> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        match codec::append(value, &mut buf) {
            Ok(()) => Ok(buf),
            Err(e) => Err(Error::encode("element", e)),
        }
    }

    /// Appends an element.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if `value`'s `Serialize` fails, [`Error::ReadOnly`],
    /// [`Error::Poisoned`], or [`Error::Io`] / [`Error::Full`] when the store
    /// cannot grow. On error (or a panic in `Serialize`) the list is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-push-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<Vec<u8>>::open(&dir)?;
    /// l.push(vec![1, 2, 3])?;
    /// l.push(vec![0; 100_000])?; // any size
    /// assert_eq!(l.get(1)?.map(|v| v.len()), Some(100_000));
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<()> {
        self.start_append()?;
        self.append_one(&value)
    }

    /// Checks that the list may be written and makes its last group end the
    /// data, so that [`append_one`](Self::append_one) may continue it. On
    /// error nothing visible changed.
    #[inline]
    fn start_append(&mut self) -> Result<()> {
        self.seq.store.writable()?;
        let continues = !self.codes.len().is_multiple_of(GROUP);
        if continues && self.tail_off.saturating_add(self.tail_bytes) != self.data.len() {
            self.move_tail_to_end()?;
        }
        Ok(())
    }

    /// Appends an element after [`start_append`](Self::start_append) (or a
    /// previous `append_one`: appending keeps the last group at the end of the
    /// data). The element is encoded straight into the data's buffer. On error
    /// (or a panic in `Serialize`) the list is unchanged.
    #[inline(always)]
    fn append_one(&mut self, value: &T) -> Result<()> {
        if self.data.is_full() || self.codes.is_full() || self.groups.is_full() {
            self.spill_full()?;
        }
        let i = self.codes.len();
        let d0 = self.data.len();
        let pend = self.data.pend_mut();
        let start = pend.len();
        // A failing or panicking `Serialize` leaves the buffer as it was.
        let mut guard = Guard { v: pend, len: start };
        if let Err(e) = codec::append(value, guard.v) {
            return Err(Error::encode("element", e));
        }
        let n = guard.v.len() - start;
        let code = if n < LONG as usize {
            n as u8
        } else {
            guard.v.splice(start..start, (n as u64).to_le_bytes());
            LONG
        };
        guard.len = guard.v.len();
        drop(guard);
        self.codes.pend_mut().push(code);
        if i.is_multiple_of(GROUP) {
            self.groups.pend_mut().extend_from_slice(&d0.to_le_bytes());
            (self.tail_off, self.tail_bytes) = (d0, 0);
        }
        let stored = stored_len(code, n);
        self.tail_bytes += stored;
        self.live_bytes += stored;
        self.seq.changed = true;
        Ok(())
    }

    /// Moves the full append buffers into the store. On error nothing changed.
    #[cold]
    #[inline(never)]
    fn spill_full(&mut self) -> Result<()> {
        let store = &mut self.seq.store;
        self.data.room(store)?;
        self.codes.room(store)?;
        self.groups.room(store)
    }

    /// Appends an encoding. On error the list is unchanged.
    #[inline]
    fn push_encoded(&mut self, body: &[u8]) -> Result<()> {
        self.write_access()?;
        let i = self.codes.len();
        let code = if body.len() < LONG as usize { body.len() as u8 } else { LONG };
        let new_group = i.is_multiple_of(GROUP);
        if !new_group && self.tail_off.saturating_add(self.tail_bytes) != self.data.len() {
            self.move_tail_to_end()?;
        }
        let d0 = self.data.len();
        let store = &mut self.seq.store;
        if new_group {
            self.groups.append(store, &d0.to_le_bytes())?;
        }
        let r = if code == LONG {
            let prefix = (body.len() as u64).to_le_bytes();
            self.data.append(store, &prefix).and_then(|()| self.data.append(store, body))
        } else {
            self.data.append(store, body)
        };
        let r = r.and_then(|()| self.codes.append(store, &[code]));
        if let Err(e) = r {
            self.data.set_len(d0);
            if new_group {
                self.groups.set_len(i / GROUP);
            }
            return Err(e);
        }
        let stored = stored_len(code, body.len());
        if new_group {
            (self.tail_off, self.tail_bytes) = (d0, 0);
        }
        self.tail_bytes += stored;
        self.live_bytes += stored;
        Ok(())
    }

    /// Copies the last group's data to the end of the data, so that appending
    /// continues it. On error nothing visible changed.
    #[cold]
    #[inline(never)]
    fn move_tail_to_end(&mut self) -> Result<()> {
        // The group's offset changes (in a shadow): the next commit must write
        // a table, whether or not the operation that called this completes.
        self.write_access()?;
        let g = (self.codes.len() - 1) / GROUP;
        let bytes = self.data.bytes(&self.seq.store, self.tail_off, self.tail_bytes)?.into_owned();
        let store = &mut self.seq.store;
        self.groups.make_writable(store, g, 1)?;
        let new_off = self.data.len();
        self.data.append(store, &bytes)?;
        self.groups.write(store, g, &new_off.to_le_bytes())?;
        self.tail_off = new_off;
        self.flags |= RELOCATED;
        Ok(())
    }

    /// Appends the elements of an iterator.
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push); the elements appended before an error stay.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-extend-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u32>::open(&dir)?;
    /// l.extend(0..100)?;
    /// assert_eq!(l.len(), 100);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) -> Result<()> {
        let mut items = items.into_iter();
        let Some(first) = items.next() else {
            return Ok(());
        };
        // The checks of `push`, once: appending keeps the list appendable.
        self.start_append()?;
        self.append_one(&first)?;
        for item in items {
            self.append_one(&item)?;
        }
        Ok(())
    }

    /// Resizes to `len` elements: truncates, or appends copies of `value`
    /// (encoded once).
    ///
    /// # Errors
    ///
    /// As for [`push`](Self::push) and [`truncate`](Self::truncate); the
    /// copies appended before an error stay.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-resize-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<Option<u32>>::open(&dir)?;
    /// l.resize(1000, None)?;
    /// assert_eq!(l.get(999)?, Some(None));
    /// l.resize(2, Some(1))?;
    /// assert_eq!(l.to_vec()?, vec![None, None]);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn resize(&mut self, len: usize, value: T) -> Result<()> {
        if len <= self.len() {
            return self.truncate(len);
        }
        self.seq.store.writable()?;
        let body = self.encode(&value)?;
        let mut r = Ok(());
        while r.is_ok() && self.len() < len {
            r = self.push_encoded(&body);
        }
        self.scratch = body;
        r
    }

    /// The element at `index`, decoded, or `None` if `index >= len()`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the index if the stored bytes do not decode as
    /// `T` (for example when the list was written with another type), or
    /// [`Error::Corrupted`] if the store is damaged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-get-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<String>::open(&dir)?;
    /// l.push("x".into())?;
    /// assert_eq!(l.get(0)?, Some("x".to_string()));
    /// assert_eq!(l.get(1)?, None);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        if index >= self.len() {
            return Ok(None);
        }
        let i = index as u64;
        let (code, pos) = self.locate(i)?;
        let body = self.body(code, pos, i)?;
        self.decode(&body, i).map(Some)
    }

    /// The first element, or `None` if the list is empty.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-first-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<i64>::open(&dir)?;
    /// l.extend([-1, -2])?;
    /// assert_eq!(l.first()?, Some(-1));
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn first(&self) -> Result<Option<T>> {
        self.get(0)
    }

    /// The last element, or `None` if the list is empty.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-last-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<i64>::open(&dir)?;
    /// l.extend([-1, -2])?;
    /// assert_eq!(l.last()?, Some(-2));
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn last(&self) -> Result<Option<T>> {
        match self.len() {
            0 => Ok(None),
            n => self.get(n - 1),
        }
    }

    /// The elements in `range`, decoded; `None` if the range does not lie
    /// inside `0..len()`.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-range-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u32>::open(&dir)?;
    /// l.extend(0..10)?;
    /// assert_eq!(l.get_range(2..5)?, Some(vec![2, 3, 4]));
    /// assert_eq!(l.get_range(8..11)?, None);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn get_range(&self, range: impl RangeBounds<usize>) -> Result<Option<Vec<T>>> {
        match self.iter_range(range) {
            Some(it) => it.collect::<Result<Vec<T>>>().map(Some),
            None => Ok(None),
        }
    }

    /// Decodes every element into a `Vec`.
    ///
    /// # Errors
    ///
    /// As for [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-tovec-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<char>::open(&dir)?;
    /// l.extend("hi".chars())?;
    /// assert_eq!(l.to_vec()?, vec!['h', 'i']);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.iter().collect()
    }

    /// An iterator over the elements, decoded: `Item = Result<T>`. It reads
    /// the store sequentially (and advises the kernel to read ahead); it is
    /// double-ended and exact-size.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-iter-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<(u64, u64)>::open(&dir)?;
    /// l.extend((0..1000).map(|i| (i, i * i)))?;
    /// let mut sum = 0;
    /// for pair in l.iter() {
    ///     sum += pair?.1;
    /// }
    /// assert_eq!(sum, (0..1000).map(|i| i * i).sum());
    /// assert_eq!(l.iter().rev().next().transpose()?, Some((999, 998001)));
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        self.iter_range(..).expect("the full range lies inside")
    }

    /// An iterator over the elements of `range`; `None` if the range does not
    /// lie inside `0..len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-iterr-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u8>::open(&dir)?;
    /// l.extend(0..10)?;
    /// let tail: Vec<u8> = l.iter_range(8..).unwrap().collect::<emds::Result<_>>()?;
    /// assert_eq!(tail, vec![8, 9]);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn iter_range(&self, range: impl RangeBounds<usize>) -> Option<Iter<'_, T>> {
        let r = resolve(range, self.len())?;
        Some(Iter::new(self, r))
    }

    /// Advises the kernel that the list will be read in order (or, with `false`, no longer).
    pub(crate) fn advise(&self, sequential: bool) {
        let store = &self.seq.store;
        self.data.region.advise(store, 0..self.data.region.len(), sequential);
        self.codes.region.advise(store, 0..self.codes.region.len(), sequential);
    }

    /// Element `i < len` for an iterator standing at `cursor`.
    #[inline]
    pub(crate) fn next_at<'a>(&'a self, c: &mut Cursor<'a>, i: usize) -> Result<T> {
        let i64 = i as u64;
        if !c.valid || c.next != i || c.codes.is_empty() || (i64.is_multiple_of(GROUP) && self.flags & RELOCATED != 0) {
            let (_, pos) = self.locate(i64)?;
            c.pos = pos;
            c.codes = self.codes.run(&self.seq.store, i64)?;
            c.valid = true;
        }
        let code = c.codes[0];
        let (at, n) = if code < LONG {
            (c.pos, code as u64)
        } else {
            (c.pos.saturating_add(8), self.stored_at(code, c.pos, i64)? - 8)
        };
        let end = at.saturating_add(n);
        let data_end = c.data_at + c.data.len() as u64;
        if at < c.data_at || end > data_end {
            if end > self.data.len() {
                return Err(self.corrupt(format!("element {i} lies past the data")));
            }
            if n > 0 {
                c.data = self.data.run(&self.seq.store, at)?;
                c.data_at = at;
            }
        }
        let v = if at >= c.data_at && end <= c.data_at + c.data.len() as u64 {
            let s = (at - c.data_at) as usize;
            self.decode(&c.data[s..s + n as usize], i64)?
        } else {
            // Split across chunks: copy.
            let body = self.data.bytes(&self.seq.store, at, n)?;
            self.decode(&body, i64)?
        };
        c.pos = end;
        c.codes = &c.codes[1..];
        c.next = i + 1;
        Ok(v)
    }

    /// Replaces the element at `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`, otherwise as for
    /// [`push`](Self::push). On error (or a panic in `Serialize`) the list is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmList, Error};
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-set-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = EmList::<String>::open(&dir)?;
    /// l.extend(["a", "b"].map(String::from))?;
    /// l.set(0, "a much longer string".into())?;
    /// assert_eq!(l.to_vec()?, vec!["a much longer string".to_string(), "b".to_string()]);
    /// assert!(matches!(l.set(5, "x".into()), Err(Error::IndexOutOfBounds { index: 5, len: 2 })));
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn set(&mut self, index: usize, value: T) -> Result<()> {
        if index >= self.len() {
            return Err(out_of_bounds(index, self.len()));
        }
        self.seq.store.writable()?;
        let body = self.encode(&value)?;
        let r = self.set_encoded(index as u64, &body);
        self.scratch = body;
        r?;
        self.maybe_compact()
    }

    /// The stored bytes (prefix and encoding) of the element with code `code` at `pos`.
    fn stored_bytes(code: u8, body: &[u8]) -> Cow<'_, [u8]> {
        if code == LONG {
            let mut v = Vec::with_capacity(8 + body.len());
            v.extend_from_slice(&(body.len() as u64).to_le_bytes());
            v.extend_from_slice(body);
            Cow::Owned(v)
        } else {
            Cow::Borrowed(body)
        }
    }

    /// Replaces element `i < len` by the encoding `body`. On error the list is unchanged.
    fn set_encoded(&mut self, i: u64, body: &[u8]) -> Result<()> {
        self.write_access()?;
        self.spill()?;
        let code = if body.len() < LONG as usize { body.len() as u8 } else { LONG };
        let new = Self::stored_bytes(code, body);
        let (old_code, pos) = self.locate(i)?;
        let old = self.stored_at(old_code, pos, i)?;
        let store = &mut self.seq.store;
        if old == new.len() as u64 && old_code == code {
            return self.data.write(store, pos, &new);
        }
        // Rewrite the element's group with the new element, at the end of the data.
        let g = i / GROUP;
        let first = g * GROUP;
        let (off, bytes) = self.span(first, (first + GROUP).min(self.codes.len()))?;
        let at = (pos - off) as usize;
        let mut group = self.data.bytes(&self.seq.store, off, bytes)?.into_owned();
        group.splice(at..at + old as usize, new.iter().copied());
        let store = &mut self.seq.store;
        self.codes.make_writable(store, i, 1)?;
        self.groups.make_writable(store, g, 1)?;
        let last = g == (self.codes.len() - 1) / GROUP;
        let at_end = last && self.tail_off.saturating_add(self.tail_bytes) == self.data.len();
        let d0 = self.data.len();
        let new_off = if at_end { off } else { d0 };
        if at_end {
            self.data.set_len(off);
        }
        if let Err(e) = self.data.append(store, &group) {
            self.data.set_len(d0);
            return Err(e);
        }
        if new_off != off {
            self.groups.write(store, g, &new_off.to_le_bytes())?;
        }
        self.codes.write(store, i, &[code])?;
        // Saturating: `live_bytes` comes from the table; `check` reports a wrong one.
        self.live_bytes = self.live_bytes.saturating_sub(old) + new.len() as u64;
        if last {
            (self.tail_off, self.tail_bytes) = (new_off, group.len() as u64);
        }
        if !at_end {
            self.flags |= RELOCATED;
        }
        Ok(())
    }

    /// Moves the appended elements still in memory into the store. On error
    /// nothing visible changed (each region is whole with or without its buffer).
    fn spill(&mut self) -> Result<()> {
        let store = &mut self.seq.store;
        self.data.spill(store)?;
        self.codes.spill(store)?;
        self.groups.spill(store)
    }

    /// Rewrites the data without dead bytes when more than half of it (and more
    /// than a megabyte) is dead. Compaction only saves space: if the store
    /// has no room for the copy (a full disk), the list stays as it is, the
    /// operation that called this has succeeded, and a later one tries again.
    fn maybe_compact(&mut self) -> Result<()> {
        let dead = self.data.len().saturating_sub(self.live_bytes);
        if dead <= COMPACT_SLACK || dead <= self.live_bytes {
            return Ok(());
        }
        match self.compact() {
            Err(Error::Full { .. } | Error::Io { .. }) => Ok(()),
            r => r,
        }
    }

    #[cold]
    #[inline(never)]
    fn compact(&mut self) -> Result<()> {
        self.spill()?;
        let mut data = Region::new(1);
        let mut groups = Region::new(8);
        let r = self.copy_live(&mut data, &mut groups);
        let store = &mut self.seq.store;
        let (mut data, mut groups) = (data, groups);
        if let Err(e) = r {
            // `truncate` would keep chunks past a length of 0.
            data.release(store)?;
            groups.release(store)?;
            return Err(e);
        }
        std::mem::swap(&mut self.data.region, &mut data);
        std::mem::swap(&mut self.groups.region, &mut groups);
        data.truncate(store, 0)?;
        groups.truncate(store, 0)?;
        self.flags &= !RELOCATED;
        self.load_tail()
    }

    fn copy_live(&mut self, data: &mut Region, groups: &mut Region) -> Result<()> {
        let n = self.codes.len();
        for g in 0..n.div_ceil(GROUP) {
            let first = g * GROUP;
            let (off, bytes) = self.span(first, (first + GROUP).min(n))?;
            let chunk = self.data.bytes(&self.seq.store, off, bytes)?.into_owned();
            let store = &mut self.seq.store;
            groups.append(store, &data.len().to_le_bytes(), 1)?;
            data.append(store, &chunk, chunk.len() as u64)?;
        }
        Ok(())
    }

    /// Removes and returns the last element, or `None` if the list is empty.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the last element does not decode: it then stays in
    /// the list. [`Error::ReadOnly`] or [`Error::Poisoned`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-pop-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<String>::open(&dir)?;
    /// l.push("only".into())?;
    /// assert_eq!(l.pop()?, Some("only".to_string()));
    /// assert_eq!(l.pop()?, None);
    /// # drop(l);
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

    /// Shortens the list to `len` elements; nothing happens if it is not longer.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`], [`Error::Poisoned`], or [`Error::Corrupted`] if the
    /// lengths of the removed elements cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-trunc-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u32>::open(&dir)?;
    /// l.extend(0..100)?;
    /// l.truncate(3)?;
    /// assert_eq!(l.to_vec()?, vec![0, 1, 2]);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        self.truncate_keeping_dead(len)?;
        self.maybe_compact()
    }

    /// [`truncate`](Self::truncate) without compaction: it only frees, so it
    /// cannot fail for lack of space.
    fn truncate_keeping_dead(&mut self, len: usize) -> Result<()> {
        self.seq.store.writable()?;
        let n = len as u64;
        let old = self.codes.len();
        if n >= old {
            return Ok(());
        }
        // Bytes of the elements removed: those of the groups after the new
        // last one, and of the new last group's elements from n on.
        let mut removed = 0;
        let keep_groups = n.div_ceil(GROUP);
        for g in keep_groups..old.div_ceil(GROUP) {
            let first = g * GROUP;
            removed += self.span(first, (first + GROUP).min(old))?.1;
        }
        let (tail_off, tail_bytes) = if n == 0 {
            (0, 0)
        } else {
            let first = (n - 1) / GROUP * GROUP;
            let (off, kept) = self.span(first, n)?;
            let all = self.span(first, (first + GROUP).min(old))?.1;
            removed += all - kept;
            (off, kept)
        };
        self.write_access()?;
        let store = &mut self.seq.store;
        let data_len = if n == 0 {
            0
        } else if self.flags & RELOCATED == 0 {
            tail_off + tail_bytes
        } else {
            self.data.len()
        };
        self.codes.truncate(store, n)?;
        self.groups.truncate(store, keep_groups)?;
        self.data.truncate(store, data_len)?;
        if n == 0 {
            self.flags &= !RELOCATED;
        }
        self.live_bytes = self.live_bytes.saturating_sub(removed);
        (self.tail_off, self.tail_bytes) = (tail_off, tail_bytes);
        Ok(())
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
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-clear-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u32>::open(&dir)?;
    /// l.extend(0..100)?;
    /// l.clear()?;
    /// assert!(l.is_empty());
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn clear(&mut self) -> Result<()> {
        self.truncate(0)
    }

    /// The code and stored bytes of element `i < len`, copied.
    fn raw(&self, i: u64) -> Result<(u8, Vec<u8>)> {
        let (code, pos) = self.locate(i)?;
        let n = self.stored_at(code, pos, i)?;
        if pos.saturating_add(n) > self.data.len() {
            return Err(self.corrupt(format!("element {i} lies past the data")));
        }
        Ok((code, self.data.bytes(&self.seq.store, pos, n)?.into_owned()))
    }

    /// Removes the element at `index` and returns it, moving the last element
    /// into its place: O(1), does not preserve order.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`, [`Error::Decode`] if
    /// the element does not decode (it then stays), otherwise as for
    /// [`set`](Self::set). On error the list is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-swaprm-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u32>::open(&dir)?;
    /// l.extend([1, 2, 3, 4])?;
    /// assert_eq!(l.swap_remove(0)?, 1);
    /// assert_eq!(l.to_vec()?, vec![4, 2, 3]);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn swap_remove(&mut self, index: usize) -> Result<T> {
        let len = self.len();
        let Some(value) = self.get(index)? else {
            return Err(out_of_bounds(index, len));
        };
        if index + 1 < len {
            let (code, stored) = self.raw(len as u64 - 1)?;
            let body = if code == LONG { &stored[8..] } else { &stored[..] };
            self.set_encoded(index as u64, body)?;
        }
        self.truncate(len - 1)?;
        Ok(value)
    }

    /// Rewrites the elements from `index` on: removes them, then appends
    /// `first` (an encoding, if any) and the removed ones from `skip` on.
    fn rewrite_tail(&mut self, index: usize, first: Option<&[u8]>, skip: usize) -> Result<()> {
        self.write_access()?;
        let len = self.len();
        let mut moved = Vec::with_capacity(len - index);
        for i in index + skip..len {
            let (code, stored) = self.raw(i as u64)?;
            moved.push((code, stored));
        }
        // Everything that needs space happens before the cut: the buffers are
        // moved into the store, and the group the rewrite continues (whose
        // offset moves if its data is copied to the end) is made writable.
        // After the cut the elements go to the in-memory buffers, held
        // without spilling, so that nothing can fail half-way and lose the
        // elements after `index` (which the next flush would then commit).
        self.spill()?;
        if !(index as u64).is_multiple_of(GROUP) {
            self.groups.make_writable(&mut self.seq.store, index as u64 / GROUP, 1)?;
        }
        self.truncate_keeping_dead(index)?;
        self.hold(true);
        let mut r = Ok(());
        for body in first
            .into_iter()
            .chain(moved.iter().map(|(code, stored)| if *code == LONG { &stored[8..] } else { &stored[..] }))
        {
            r = self.push_encoded(body);
            if r.is_err() {
                break;
            }
        }
        self.hold(false);
        r?;
        self.maybe_compact()
    }

    /// Holds appends in the in-memory buffers (`true`) or lets them spill
    /// into the store when full again (`false`).
    fn hold(&mut self, on: bool) {
        self.data.hold(on);
        self.codes.hold(on);
        self.groups.hold(on);
    }

    /// Inserts `value` at `index`, shifting the elements after it: O(len - index).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index > len()`, otherwise as for
    /// [`push`](Self::push). If `Serialize` fails or the store cannot claim the
    /// space, the list is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-insert-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<String>::open(&dir)?;
    /// l.extend(["a", "c"].map(String::from))?;
    /// l.insert(1, "b".into())?;
    /// assert_eq!(l.to_vec()?, ["a", "b", "c"].map(String::from).to_vec());
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn insert(&mut self, index: usize, value: T) -> Result<()> {
        let len = self.len();
        if index > len {
            return Err(out_of_bounds(index, len));
        }
        self.seq.store.writable()?;
        let body = self.encode(&value)?;
        let r = self.rewrite_tail(index, Some(&body), 0);
        self.scratch = body;
        r
    }

    /// Removes and returns the element at `index`, shifting the elements after
    /// it: O(len - index).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfBounds`] if `index >= len()`, [`Error::Decode`] if
    /// the element does not decode (it then stays); otherwise as for
    /// [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-remove-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u8>::open(&dir)?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.remove(1)?, 2);
    /// assert_eq!(l.to_vec()?, vec![1, 3]);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn remove(&mut self, index: usize) -> Result<T> {
        let len = self.len();
        let Some(value) = self.get(index)? else {
            return Err(out_of_bounds(index, len));
        };
        self.seq.store.writable()?;
        self.rewrite_tail(index, None, 1)?;
        Ok(value)
    }

    /// Makes every change durable: after it returns, a crash or power loss at
    /// any instant leaves at least this state. A no-op on a read-only list.
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
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-flush-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u8>::open(&dir)?;
    /// l.push(1)?;
    /// l.flush()?;
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        let extra = Extra { len: self.codes.len(), words: [self.live_bytes, self.flags] };
        self.spill()?;
        self.seq.commit(&mut [&mut self.data.region, &mut self.codes.region, &mut self.groups.region], extra)
    }

    /// Flushes and closes the list, releasing its lock, and reports any error
    /// (which dropping it would not).
    ///
    /// # Errors
    ///
    /// As for [`flush`](Self::flush).
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-close-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<u8>::open(&dir)?;
    /// l.push(1)?;
    /// l.close()?;
    /// assert_eq!(emds::EmList::<u8>::open(&dir)?.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.flush()?;
        if self.seq.changed { self.flush() } else { Ok(()) }
    }

    /// Walks the whole list and store: verifies the checksums of the meta
    /// record, allocator state and table, that every element's length code and
    /// offset is consistent and that it decodes as `T` with no byte left over,
    /// that the byte counts add up, and that every page of the store is either
    /// free or reached exactly once (no leak, no overlap). Returns the sizes found.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] or [`Error::Decode`] naming the first fault found.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-emlist-check-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l = emds::EmList::<String>::open(&dir)?;
    /// l.extend((0..1000).map(|i| i.to_string()))?;
    /// l.flush()?;
    /// let report = l.check()?;
    /// assert!(report.bytes_live > 0);
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        let report = self.seq.check(&[&self.data.region, &self.codes.region, &self.groups.region])?;
        let n = self.codes.len();
        let bad = |w: String| self.corrupt(format!("check: {w}"));
        if self.groups.len() != n.div_ceil(GROUP) {
            return Err(bad(format!("{} groups for {n} elements", self.groups.len())));
        }
        let mut live = 0;
        let mut expect = 0;
        for g in 0..n.div_ceil(GROUP) {
            let first = g * GROUP;
            let (off, bytes) = self.span(first, (first + GROUP).min(n))?;
            if off.saturating_add(bytes) > self.data.len() {
                return Err(bad(format!("group {g} at {off} of {bytes} bytes lies past the data")));
            }
            if self.flags & RELOCATED == 0 && off != expect {
                return Err(bad(format!("group {g} at {off}, expected {expect}")));
            }
            expect = off + bytes;
            live += bytes;
        }
        if live != self.live_bytes {
            return Err(bad(format!("elements hold {live} bytes, the table says {}", self.live_bytes)));
        }
        if self.flags & RELOCATED == 0 && expect != self.data.len() {
            return Err(bad(format!("data holds {} bytes, the elements end at {expect}", self.data.len())));
        }
        if n > 0 && (self.tail_off, self.tail_bytes) != self.span((n - 1) / GROUP * GROUP, n)? {
            return Err(bad("the last group is not where the handle has it".into()));
        }
        for r in self.iter() {
            r?;
        }
        Ok(report)
    }
}

#[cfg(test)]
impl<T: Serialize + DeserializeOwned> EmList<T> {
    /// The store, for tests that inject failures.
    pub(crate) fn store_mut(&mut self) -> &mut crate::alloc::Store {
        &mut self.seq.store
    }
}

impl<T: Serialize + DeserializeOwned> Drop for EmList<T> {
    fn drop(&mut self) {
        if !self.closed && !self.seq.store.is_read_only() {
            let _ = self.flush();
            if self.seq.changed {
                let _ = self.flush();
            }
        }
    }
}

impl<'a, T: Serialize + DeserializeOwned> IntoIterator for &'a EmList<T> {
    type Item = Result<T>;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(test)]
mod damage_tests {
    use super::*;

    /// Regression: a group offset read from a damaged groups region was used
    /// unchecked; one near `u64::MAX` overflowed the position arithmetic (a
    /// panic), one past the data read outside the region.
    #[test]
    fn a_damaged_group_offset_is_a_corruption_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("emds-unit-damaged-offset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut l: EmList<String> = EmList::open(&dir).unwrap();
        l.extend((0..40).map(|i| format!("element {i}"))).unwrap();
        l.flush().unwrap();
        for bad in [u64::MAX, u64::MAX - 3, 1 << 40, l.data.len() + 1] {
            l.groups.write(&mut l.seq.store, 1, &bad.to_le_bytes()).unwrap();
            for i in 16..32 {
                match l.get(i) {
                    Err(Error::Corrupted { what, .. }) => assert!(what.contains("group 1"), "{what}"),
                    other => panic!("offset {bad:#x}, element {i}: expected Corrupted, got {other:?}"),
                }
            }
            assert!(l.check().is_err(), "offset {bad:#x}: check reports it");
        }
        l.closed = true; // do not commit the damage
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Regression: `live_bytes` from the table (checksummed, so only a buggy
    /// or crafted writer gets it wrong) was trusted in subtractions: one
    /// larger than the data, or smaller than the elements removed, panicked
    /// (overflow) in truncate, set and the compaction test. Now one larger
    /// than the data is refused at open, a smaller one is reported by `check`.
    #[test]
    fn a_wrong_live_byte_count_is_reported_by_check_not_a_panic() {
        for wrong in [0, 5, 100_000, u64::MAX] {
            let dir = std::env::temp_dir().join(format!("emds-unit-live-bytes-{wrong}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut l: EmList<String> = EmList::open(&dir).unwrap();
            l.extend((0..100).map(|i| format!("element {i}"))).unwrap();
            l.live_bytes = wrong;
            l.close().unwrap();
            if wrong > 1000 {
                // More live bytes than data: refused at open.
                assert!(matches!(EmList::<String>::open(&dir), Err(Error::Corrupted { .. })), "live bytes {wrong}");
                std::fs::remove_dir_all(&dir).unwrap();
                continue;
            }
            let mut l: EmList<String> = EmList::open(&dir).unwrap();
            assert!(matches!(l.check(), Err(Error::Corrupted { .. })), "live bytes {wrong}");
            l.set(3, "a longer element than before".into()).unwrap();
            l.truncate(50).unwrap();
            assert_eq!(l.pop().unwrap(), Some("element 49".to_string()));
            assert_eq!(l.len(), 49);
            drop(l);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
