//! The typed face of the dict: serde in, serde out, over [`RawDict`].

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::alloc::{CheckReport, Kind, Store};
use crate::error::Result;
use crate::options::OpenOptions;

use super::batch::Batch;
use super::bucket::{Stored, Varint};
use super::encode::{Encoded, decode};
use super::iter::{Drain, Iter, Keys, RawIter, Values, decode_key, decode_value};
use super::packed;
use super::raw::{Found, RawDict, VarintLookup};

/// A persistent hash map from `K` to `V`, stored in a directory on disk and
/// reopened by later runs.
///
/// Keys and values are any serde types; they are stored as their
/// [postcard](https://docs.rs/postcard) encoding, so `get` returns a decoded
/// copy, never a reference. The map is an extendible hash: a directory of
/// buckets kept in memory, one 4 KiB page read per lookup, buckets of one to
/// eight pages that grow a page at a time as they fill and then split, one
/// at a time (never a full rehash); an entry of more than 255 bytes (its
/// key's length, key and value) is stored out of line. Keys and values may
/// be of any size.
///
/// Changes are made durable by [`flush`](EmDict::flush) and
/// [`close`](EmDict::close) (and, on a best-effort basis, by `Drop`): after a
/// crash or power loss, reopening yields exactly the last flushed state.
///
/// One handle may write (an exclusive lock on the directory); any number of
/// read-only handles may read at once, in any process. Readers take `&self`,
/// and `EmDict` is `Send` and `Sync`, so threads can share one handle for reading.
///
/// # Correctness
///
/// Two keys are equal when their postcard encodings are equal, and a key is
/// found by the xxh3-64 hash of its encoding (seeded per store). So:
///
/// - Whatever `PartialEq` says, keys with equal encodings are one key and keys
///   with different encodings are two (for example `0.0` and `-0.0` are two
///   keys, and every `NaN` with the same bits is one).
/// - For the lookups that take `&Q` where `K: Borrow<Q>`, `Q` must serialize
///   to exactly the bytes that `K` does (as `str` does for `String`, `[T]`
///   for `Vec<T>` and `T` for `Box<T>`). A `Q` that serializes otherwise
///   finds nothing; it never finds a wrong entry.
/// - A `Serialize` implementation must be deterministic: the same key must
///   encode the same way every time, in every run.
///
/// # Examples
///
/// ```
/// use emds::EmDict;
///
/// let dir = std::env::temp_dir().join(format!("emds-doc-dict-{}", std::process::id()));
/// let mut ages: EmDict<String, u32> = EmDict::open(&dir)?;
/// ages.insert("ada".to_string(), 36)?;
/// ages.insert("alan".to_string(), 41)?;
/// assert_eq!(ages.get("ada")?, Some(36));
/// ages.close()?;
///
/// let ages: EmDict<String, u32> = EmDict::open_read_only(&dir)?;
/// assert_eq!(ages.len(), 2);
/// # drop(ages);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
pub struct EmDict<K, V> {
    raw: RawDict,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for EmDict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmDict")
            .field("path", &self.raw.store.dir())
            .field("len", &self.raw.len())
            .field("read_only", &self.raw.store.is_read_only())
            .finish()
    }
}

impl<K, V> EmDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Opens the dict stored in directory `path` for reading and writing,
    /// creating it (and the directory) if missing.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`](crate::Error::Locked) if another handle has it open,
    /// [`Error::WrongKind`](crate::Error::WrongKind) if it holds another
    /// structure, `Corrupted` or `Incompatible` for damaged or foreign files,
    /// `Io` for failed system calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-open-{}", std::process::id()));
    /// let mut d: EmDict<u64, String> = EmDict::open(&dir)?;
    /// d.insert(7, "seven".into())?;
    /// d.close()?;
    /// let d: EmDict<u64, String> = EmDict::open(&dir)?;
    /// assert_eq!(d.get(&7)?.as_deref(), Some("seven"));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::new())
    }

    /// Opens the dict in `path` read-only, under a shared lock: any number of
    /// readers may have it open at once. Writes return
    /// [`Error::ReadOnly`](crate::Error::ReadOnly).
    ///
    /// # Errors
    ///
    /// As [`open`](EmDict::open); also `Io` (not found) if there is no store.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, Error};
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-ro-{}", std::process::id()));
    /// EmDict::<u32, u32>::open(&dir)?.close()?;
    /// let mut d: EmDict<u32, u32> = EmDict::open_read_only(&dir)?;
    /// assert!(matches!(d.insert(1, 1), Err(Error::ReadOnly { .. })));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::new().read_only(true))
    }

    /// Opens the dict in `path` with `options`: read-only, create, truncate,
    /// durability and segment sizes.
    ///
    /// # Errors
    ///
    /// As [`open`](EmDict::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, OpenOptions};
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-openwith-{}", std::process::id()));
    /// let mut d: EmDict<u8, u8> = EmDict::open_with(&dir, OpenOptions::new().truncate(true).durable(false))?;
    /// d.insert(1, 2)?;
    /// assert_eq!(d.len(), 1);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let store = Store::open(path.as_ref(), options, Kind::Dict, 0, 0)?;
        Ok(EmDict { raw: RawDict::new(store)?, _types: PhantomData })
    }

    /// Inserts `value` under `key`; returns the value it replaces, if any.
    ///
    /// # Errors
    ///
    /// `ReadOnly`, `Encode` if `key` or `value` fails to serialize (the dict is
    /// then unchanged), `Decode` if the replaced value cannot be decoded as
    /// `V` (the dict is then unchanged), `Io` or `Full` if the disk is full
    /// (the dict is then unchanged too).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-insert-{}", std::process::id()));
    /// let mut d: EmDict<String, u32> = EmDict::open(&dir)?;
    /// assert_eq!(d.insert("a".into(), 1)?, None);
    /// assert_eq!(d.insert("a".into(), 2)?, Some(1));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>> {
        // Integers (each encoded as one varint) into a lone packed page: the load's common case.
        if let (Some(k), Some(v)) = (packed::encode(&key), packed::encode(&value)) {
            self.raw.store.writable()?;
            if self.raw.append_words_if_absent(k, v)? {
                return Ok(None);
            }
        }
        let k = Encoded::new("key", &key)?;
        let v = Encoded::new("value", &value)?;
        self.raw.store.writable()?;
        let (k, v) = (k.bytes(), v.bytes());
        let h = self.raw.hash(k);
        if self.raw.append_if_absent(h, k, v)? {
            return Ok(None);
        }
        match self.raw.find(h, k)? {
            Some(found) => {
                let old = self.decode_value(&found)?;
                let loc = found.loc;
                self.raw.replace(h, loc, k, v)?;
                Ok(Some(old))
            }
            None => {
                self.raw.put_new(h, k, v)?;
                Ok(None)
            }
        }
    }

    fn decode_value(&self, found: &Found<'_>) -> Result<V> {
        let bytes = self.raw.value_of(&found.stored)?;
        let loc = found.loc;
        decode(&bytes, self.raw.store.dir(), || format!("value of entry {} in bucket {:#x}", loc.i, loc.page))
    }

    /// Decodes the value of the entry of key bytes `k` found by
    /// [`RawDict::lookup`]. Only an error looks up where the entry is, to name it.
    #[inline]
    fn decode_stored_value(&self, stored: &Stored<'_>, k: &[u8]) -> Result<V> {
        if let Stored::Packed { value, .. } = *stored
            && let Some(v) = super::packed::decode(value)
        {
            return Ok(v);
        }
        let bytes = self.raw.value_of(stored)?;
        decode(&bytes, self.raw.store.dir(), || match self.raw.find(self.raw.hash(k), k) {
            Ok(Some(found)) => format!("value of entry {} in bucket {:#x}", found.loc.i, found.loc.page),
            _ => "value of the entry looked up".to_string(),
        })
    }

    /// The lookup of `get` and `contains_key` for a key whose encoding is
    /// one varint, of number `k`: its value word in a lone packed page, or
    /// else its entry.
    #[inline]
    fn get_varint(&self, k: u64) -> Result<Option<V>> {
        match self.raw.lookup_varint(k)? {
            VarintLookup::Packed(Some(value)) => match packed::decode(value) {
                Some(v) => Ok(Some(v)),
                None => self.decode_varint_entry(k, &Stored::Packed { key: k, value }).map(Some),
            },
            VarintLookup::Other(Some(stored)) => self.decode_varint_entry(k, &stored).map(Some),
            VarintLookup::Packed(None) | VarintLookup::Other(None) => Ok(None),
        }
    }

    /// The value of the entry `stored` of key number `k`, decoded the general way.
    #[inline(never)]
    fn decode_varint_entry(&self, k: u64, stored: &Stored<'_>) -> Result<V> {
        self.decode_stored_value(stored, Varint::new(k).bytes())
    }

    fn decode_key(&self, found: &Found<'_>) -> Result<K> {
        let bytes = self.raw.key_of(&found.stored)?;
        let loc = found.loc;
        decode(&bytes, self.raw.store.dir(), || format!("key of entry {} in bucket {:#x}", loc.i, loc.page))
    }

    /// A copy of the value stored under `key`.
    ///
    /// # Errors
    ///
    /// `Encode` if `key` fails to serialize, `Decode` if the stored value is
    /// not a `V`, `Corrupted` if the bucket is damaged.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-get-{}", std::process::id()));
    /// let mut d: EmDict<String, Vec<u8>> = EmDict::open(&dir)?;
    /// d.insert("k".to_string(), vec![1, 2, 3])?;
    /// assert_eq!(d.get("k")?, Some(vec![1, 2, 3]));
    /// assert_eq!(d.get("missing")?, None);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        if let Some(k) = packed::encode(key) {
            return self.get_varint(k);
        }
        let k = Encoded::new("key", key)?;
        let k = k.bytes();
        match self.raw.lookup(self.raw.hash(k), k)? {
            Some(stored) => self.decode_stored_value(&stored, k).map(Some),
            None => Ok(None),
        }
    }

    /// Copies of the key and value stored under `key`.
    ///
    /// # Errors
    ///
    /// As [`get`](EmDict::get), and `Decode` if the stored key is not a `K`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-gkv-{}", std::process::id()));
    /// let mut d: EmDict<String, u8> = EmDict::open(&dir)?;
    /// d.insert("x".into(), 9)?;
    /// assert_eq!(d.get_key_value("x")?, Some(("x".to_string(), 9)));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Result<Option<(K, V)>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let k = Encoded::new("key", key)?;
        let k = k.bytes();
        match self.raw.find(self.raw.hash(k), k)? {
            Some(found) => Ok(Some((self.decode_key(&found)?, self.decode_value(&found)?))),
            None => Ok(None),
        }
    }

    /// Whether an entry with `key` exists. Nothing is decoded.
    ///
    /// # Errors
    ///
    /// `Encode` if `key` fails to serialize, `Corrupted` if the bucket is damaged.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-contains-{}", std::process::id()));
    /// let mut d: EmDict<u64, ()> = EmDict::open(&dir)?;
    /// d.insert(5, ())?;
    /// assert!(d.contains_key(&5)?);
    /// assert!(!d.contains_key(&6)?);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        if let Some(k) = packed::encode(key) {
            return Ok(match self.raw.lookup_varint(k)? {
                VarintLookup::Packed(v) => v.is_some(),
                VarintLookup::Other(s) => s.is_some(),
            });
        }
        let k = Encoded::new("key", key)?;
        let k = k.bytes();
        Ok(self.raw.lookup(self.raw.hash(k), k)?.is_some())
    }

    /// Removes the entry with `key`; returns its value.
    ///
    /// # Errors
    ///
    /// `ReadOnly`, `Encode`, `Decode` if the stored value is not a `V` (the
    /// entry is then not removed), `Corrupted`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-remove-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.insert(1, 10)?;
    /// assert_eq!(d.remove(&1)?, Some(10));
    /// assert_eq!(d.remove(&1)?, None);
    /// assert!(d.is_empty());
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn remove<Q>(&mut self, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.remove_with(key, false)?.map(|(_, v)| v))
    }

    /// Removes the entry with `key`; returns its key and value.
    ///
    /// # Errors
    ///
    /// As [`remove`](EmDict::remove), and `Decode` if the stored key is not a `K`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-remove-entry-{}", std::process::id()));
    /// let mut d: EmDict<String, u64> = EmDict::open(&dir)?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.remove_entry("a")?, Some(("a".to_string(), 1)));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Result<Option<(K, V)>>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        Ok(self.remove_with(key, true)?.map(|(k, v)| (k.expect("key decoded"), v)))
    }

    fn remove_with<Q>(&mut self, key: &Q, want_key: bool) -> Result<Option<(Option<K>, V)>>
    where
        Q: Serialize + ?Sized,
    {
        let k = Encoded::new("key", key)?;
        self.raw.store.writable()?;
        let k = k.bytes();
        let h = self.raw.hash(k);
        let Some(found) = self.raw.find(h, k)? else {
            return Ok(None);
        };
        let old_key = if want_key { Some(self.decode_key(&found)?) } else { None };
        let old = self.decode_value(&found)?;
        let loc = found.loc;
        self.raw.remove(h, loc)?;
        Ok(Some((old_key, old)))
    }

    /// Reads, changes and writes back the entry of `key` in one step: `f`
    /// gets the current value (or `None`) and returns the new one (or `None`
    /// to remove the entry). Values are copies, so this is how a stored value
    /// is changed in place.
    ///
    /// # Errors
    ///
    /// As [`insert`](EmDict::insert) and [`remove`](EmDict::remove). If `f`
    /// panics or the new value fails to serialize, the dict is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-update-{}", std::process::id()));
    /// let mut counts: EmDict<String, u64> = EmDict::open(&dir)?;
    /// for word in ["a", "b", "a"] {
    ///     counts.update(word.to_string(), |n| Some(n.unwrap_or(0) + 1))?;
    /// }
    /// assert_eq!(counts.get("a")?, Some(2));
    /// counts.update("b".to_string(), |_| None)?; // removes "b"
    /// assert_eq!(counts.len(), 1);
    /// # drop(counts);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn update<F>(&mut self, key: K, f: F) -> Result<()>
    where
        F: FnOnce(Option<V>) -> Option<V>,
    {
        let k = Encoded::new("key", &key)?;
        self.raw.store.writable()?;
        let k = k.bytes();
        let h = self.raw.hash(k);
        let (old, loc) = match self.raw.find(h, k)? {
            Some(found) => (Some(self.decode_value(&found)?), Some(found.loc)),
            None => (None, None),
        };
        let new = match f(old) {
            Some(v) => Some(Encoded::new("value", &v)?),
            None => None,
        };
        match (loc, new) {
            (Some(loc), Some(v)) => self.raw.replace(h, loc, k, v.bytes()),
            (Some(loc), None) => self.raw.remove(h, loc),
            (None, Some(v)) => self.raw.put_new(h, k, v.bytes()),
            (None, None) => Ok(()),
        }
    }

    /// The value of `key`, inserting `f()` first if there is none.
    ///
    /// # Errors
    ///
    /// As [`get`](EmDict::get) and [`insert`](EmDict::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-goiw-{}", std::process::id()));
    /// let mut d: EmDict<u32, String> = EmDict::open(&dir)?;
    /// assert_eq!(d.get_or_insert_with(1, || "one".into())?, "one");
    /// assert_eq!(d.get_or_insert_with(1, || "uno".into())?, "one");
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn get_or_insert_with<F>(&mut self, key: K, f: F) -> Result<V>
    where
        F: FnOnce() -> V,
    {
        let k = Encoded::new("key", &key)?;
        let k = k.bytes();
        let h = self.raw.hash(k);
        if let Some(found) = self.raw.find(h, k)? {
            return self.decode_value(&found);
        }
        self.raw.store.writable()?;
        let value = f();
        let v = Encoded::new("value", &value)?;
        self.raw.put_new(h, k, v.bytes())?;
        Ok(value)
    }

    /// Inserts every pair of `iter`, later pairs replacing earlier ones.
    ///
    /// This is the fast way to load many pairs: they are encoded in batches
    /// (of up to a million pairs or 64 MiB), and each batch is inserted
    /// bucket by bucket, so a bucket page is visited once per batch rather
    /// than once per pair. Room for the pairs the iterator announces
    /// (`size_hint`) is made at once, as [`reserve`](EmDict::reserve) does.
    ///
    /// # Errors
    ///
    /// As [`insert`](EmDict::insert). If a pair fails to serialize, every
    /// pair before it is inserted and none after it. If inserting fails
    /// (a full disk), the pairs of the batches before stay inserted and so
    /// may some pairs of the failing batch; the dict is consistent either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-extend-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend((0..100).map(|i| (i, i * i)))?;
    /// d.extend([(9, 0), (9, 1)])?; // the later pair wins
    /// assert_eq!(d.len(), 100);
    /// assert_eq!(d.get(&9)?, Some(1));
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn extend<I>(&mut self, iter: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let mut iter = iter.into_iter();
        let mut batch = Batch::default();
        // Two pairs of buffers, used in turn: a pair is hashed and copied one
        // step after it was encoded, when the encoder's byte stores have
        // reached the cache (read at once, the hash's word loads of bytes
        // just stored stall the pipeline).
        let mut bufs = [[Encoded::empty(), Encoded::empty()], [Encoded::empty(), Encoded::empty()]];
        let (mut cur, mut held) = (0, false);
        while let Some((key, value)) = iter.next() {
            let [k, v] = &mut bufs[cur];
            let encoded = k.set("key", &key).and_then(|()| v.set("value", &value));
            if held {
                let [k, v] = &bufs[cur ^ 1];
                batch.push(self.raw.hash(k.bytes()), k.bytes(), v.bytes());
            }
            if let Err(e) = encoded {
                self.raw.put_batch(&mut batch, 0)?;
                return Err(e);
            }
            if batch.is_full() {
                self.raw.put_batch(&mut batch, iter.size_hint().0 + 1)?;
            }
            (cur, held) = (cur ^ 1, true);
        }
        if held {
            let [k, v] = &bufs[cur ^ 1];
            batch.push(self.raw.hash(k.bytes()), k.bytes(), v.bytes());
        }
        self.raw.put_batch(&mut batch, 0)
    }

    /// Prepares for `additional` more entries, as `HashMap::reserve` does:
    /// makes the bucket pages they will need now, so that inserting them
    /// does not split buckets over and over. A hint: the dict grows past it
    /// as needed, and a reservation of no more pages than the dict has does
    /// nothing. The entry size is estimated from the entries already stored;
    /// in an empty dict the pages are made at the next insertion, sized by
    /// its entry. Pre-made buckets are at most 2^26, of up to eight pages
    /// each (2 TiB).
    ///
    /// # Errors
    ///
    /// `ReadOnly`; `Full` or `Io` if the disk has no room for the pages
    /// (the pages reserved before that stay in the store, free for later use).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-reserve-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.reserve(100_000)?;
    /// for i in 0..100_000 {
    ///     d.insert(i, i)?;
    /// }
    /// assert_eq!(d.len(), 100_000);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        self.raw.reserve(additional as u64)
    }

    /// The number of entries: exact, O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-len-{}", std::process::id()));
    /// let mut d: EmDict<u8, u8> = EmDict::open(&dir)?;
    /// d.insert(1, 1)?;
    /// d.insert(1, 2)?;
    /// assert_eq!(d.len(), 1);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len() as usize
    }

    /// Whether the dict has no entries.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-is-empty-{}", std::process::id()));
    /// let d: EmDict<u8, u8> = EmDict::open(&dir)?;
    /// assert!(d.is_empty());
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// An iterator over all entries, decoded, in hash order. Items are
    /// `Result<(K, V)>`: an entry that cannot be decoded yields an error
    /// naming it, and iteration goes on with the next.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-iter-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend((1..=3).map(|i| (i, 10 * i)))?;
    /// let mut pairs = d.iter().collect::<Result<Vec<_>, _>>()?;
    /// pairs.sort();
    /// assert_eq!(pairs, [(1, 10), (2, 20), (3, 30)]);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter { inner: RawIter::new(&self.raw), _types: PhantomData }
    }

    /// An iterator over all keys, decoded (values are not).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-keys-{}", std::process::id()));
    /// let mut d: EmDict<u64, String> = EmDict::open(&dir)?;
    /// d.insert(4, "four".into())?;
    /// assert_eq!(d.keys().collect::<Result<Vec<_>, _>>()?, [4]);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys { inner: RawIter::new(&self.raw), _types: PhantomData }
    }

    /// An iterator over all values, decoded (keys are not).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-values-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend([(1, 5), (2, 6)])?;
    /// let total: u64 = d.values().sum::<Result<u64, _>>()?;
    /// assert_eq!(total, 11);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn values(&self) -> Values<'_, K, V> {
        Values { inner: RawIter::new(&self.raw), _types: PhantomData }
    }

    /// Keeps only the entries for which `keep(&key, &value)` is true.
    ///
    /// # Errors
    ///
    /// `ReadOnly`, `Decode` if an entry cannot be decoded (nothing is removed
    /// then), `Corrupted`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-retain-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend((0..10).map(|i| (i, i)))?;
    /// d.retain(|_, v| v % 2 == 0)?;
    /// assert_eq!(d.len(), 5);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn retain<F>(&mut self, mut keep: F) -> Result<()>
    where
        F: FnMut(&K, &V) -> bool,
    {
        self.raw.store.writable()?;
        let mut doomed: Vec<Vec<u8>> = Vec::new();
        for e in RawIter::new(&self.raw) {
            let e = e?;
            let (k, v) = (decode_key::<K>(&self.raw, &e)?, decode_value::<V>(&self.raw, &e)?);
            if !keep(&k, &v) {
                doomed.push(self.raw.key_of(&e.stored)?.to_vec());
            }
        }
        for k in doomed {
            let h = self.raw.hash(&k);
            if let Some(loc) = self.raw.find(h, &k)?.map(|f| f.loc) {
                self.raw.remove(h, loc)?;
            }
        }
        Ok(())
    }

    /// Removes every entry and returns them, decoded. The entries are read
    /// into memory first; if one cannot be decoded, nothing is removed.
    ///
    /// # Errors
    ///
    /// `ReadOnly`, `Decode`, `Corrupted`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-drain-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend([(1, 1), (2, 4)])?;
    /// let mut all: Vec<_> = d.drain()?.collect();
    /// all.sort();
    /// assert_eq!(all, [(1, 1), (2, 4)]);
    /// assert!(d.is_empty());
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn drain(&mut self) -> Result<Drain<K, V>> {
        self.raw.store.writable()?;
        let all = self.iter().collect::<Result<Vec<_>>>()?;
        self.raw.clear()?;
        Ok(Drain { inner: all.into_iter() })
    }

    /// Removes every entry, freeing their space for reuse.
    ///
    /// # Errors
    ///
    /// `ReadOnly`, `Corrupted`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-clear-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.extend((0..1000).map(|i| (i, i)))?;
    /// d.clear()?;
    /// assert!(d.is_empty());
    /// assert_eq!(d.get(&1)?, None);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn clear(&mut self) -> Result<()> {
        self.raw.clear()
    }

    /// Makes every change so far durable: when this returns, a crash or power
    /// loss cannot lose them. A read-only dict has nothing to flush.
    ///
    /// # Errors
    ///
    /// `Io` if the data cannot be written or synced; after a failed sync the
    /// handle is poisoned ([`Error::Poisoned`](crate::Error::Poisoned)).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-flush-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.insert(1, 1)?;
    /// d.flush()?; // survives a crash from here on
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn flush(&mut self) -> Result<()> {
        self.raw.commit()
    }

    /// Flushes and closes the dict, releasing its lock. If the flush left
    /// free pages between live ones (the old copies of the buckets it
    /// changed), bucket pages are first moved down into them and the dict
    /// is flushed once more, so that a closed dict holds about its live data
    /// on disk (`docs/DESIGN.md` §5.4). Unlike dropping it (which does the
    /// same), this reports errors.
    ///
    /// # Errors
    ///
    /// As [`flush`](EmDict::flush).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-close-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// d.insert(1, 1)?;
    /// d.close()?;
    /// let d: EmDict<u64, u64> = EmDict::open(&dir)?; // the lock is free again
    /// assert_eq!(d.len(), 1);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.raw.close()
    }

    /// The store's directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-path-{}", std::process::id()));
    /// let d: EmDict<u64, u64> = EmDict::open(&dir)?;
    /// assert_eq!(d.path(), dir.as_path());
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.raw.store.dir()
    }

    /// Verifies the whole store: every bucket page's structure and checksum,
    /// that every entry is in the bucket its hash names, the entry count,
    /// every out-of-line object, the directory, the meta record and the
    /// allocator state, and that the space allocated is exactly the space
    /// reached (nothing leaks). Keys and values are not decoded.
    ///
    /// # Errors
    ///
    /// `Corrupted` naming the first fault found.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::EmDict;
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-check-{}", std::process::id()));
    /// let mut d: EmDict<u64, Vec<u8>> = EmDict::open(&dir)?;
    /// d.insert(1, vec![0; 100_000])?; // stored out of line
    /// d.flush()?;
    /// let report = d.check()?;
    /// assert!(report.objects >= 2);
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        self.raw.check()
    }
}

impl<'a, K, V> IntoIterator for &'a EmDict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

#[cfg(test)]
pub(crate) fn raw_mut<K, V>(d: &mut EmDict<K, V>) -> &mut RawDict {
    &mut d.raw
}
