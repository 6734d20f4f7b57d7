//! How a store is opened, mirroring `std::fs::OpenOptions`.

/// Options for opening a store, in the manner of [`std::fs::OpenOptions`].
///
/// The default opens read-write, creates the store if it is missing, keeps
/// what is there, and makes every flush durable (fsync).
///
/// # Examples
///
/// ```
/// use emds::{EmDict, OpenOptions};
///
/// let dir = std::env::temp_dir().join(format!("emds-doc-options-{}", std::process::id()));
/// let mut d: EmDict<String, u32> =
///     EmDict::open_with(&dir, OpenOptions::new().truncate(true))?;
/// d.insert("one".to_string(), 1)?;
/// d.close()?;
///
/// let d: EmDict<String, u32> = EmDict::open_with(&dir, OpenOptions::new().read_only(true))?;
/// assert_eq!(d.get("one")?, Some(1));
/// # drop(d);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), emds::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub(crate) read_only: bool,
    pub(crate) create: bool,
    pub(crate) truncate: bool,
    pub(crate) durable: bool,
    pub(crate) initial_segment_size: u64,
    pub(crate) max_segment_size: u64,
    /// Free runs in free extents of at least this many bytes are released to
    /// the file system after a commit; 0 never releases.
    pub(crate) release_min: u64,
    /// Ask for transparent huge pages on freshly backed space until it is committed.
    pub(crate) huge_pages: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            read_only: false,
            create: true,
            truncate: false,
            durable: true,
            initial_segment_size: 1 << 20,
            max_segment_size: 1 << 30,
            release_min: 64 << 10,
            huge_pages: false,
        }
    }
}

impl OpenOptions {
    /// The default options: read-write, create, no truncation, durable flushes.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmList, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-new-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// // The same as `EmList::open`.
    /// let mut l: EmList<String> = EmList::open_with(&dir, &OpenOptions::new())?;
    /// l.push("first".into())?;
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens under a shared lock, so that any number of readers in any number of
    /// processes can open the store at once; every write returns
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). Implies no `create` and no `truncate`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, Error, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-ro-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// EmVec::<u32>::open(&dir)?.close()?;
    /// let reader = OpenOptions::new().read_only(true).clone();
    /// let mut a: EmVec<u32> = EmVec::open_with(&dir, &reader)?;
    /// let b: EmVec<u32> = EmVec::open_with(&dir, &reader)?; // readers share the store
    /// assert!(matches!(a.push(1), Err(Error::ReadOnly { .. })));
    /// # drop((a, b));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.read_only = read_only;
        self
    }

    /// Creates the store (and its directory) if it does not exist. On by
    /// default; with `false`, opening a missing store is
    /// [`Error::Io`](crate::Error::Io) (not found).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, Error, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-create-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let existing = OpenOptions::new().create(false).clone();
    /// let missing = EmDict::<u64, u64>::open_with(&dir, &existing);
    /// assert!(matches!(missing, Err(Error::Io { .. })));
    /// EmDict::<u64, u64>::open(&dir)?.close()?;
    /// let d: EmDict<u64, u64> = EmDict::open_with(&dir, &existing)?;
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Empties an existing store on open, after its lock is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmList, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-truncate-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut l: EmList<u8> = EmList::open(&dir)?;
    /// l.extend([1, 2, 3])?;
    /// l.close()?;
    /// let l: EmList<u8> = EmList::open_with(&dir, OpenOptions::new().truncate(true))?;
    /// assert!(l.is_empty());
    /// # drop(l);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Whether a flush waits for the disk (fsync). On by default.
    ///
    /// With `false`, a flush still commits atomically, so a crash of the
    /// process never leaves a damaged store, but a power loss or kernel crash
    /// may lose the flushes made since the kernel last wrote back the pages,
    /// or leave a store that no longer opens (`Error::Corrupted`): the kernel
    /// writes pages back in any order, and space freed by a flush is reused
    /// at once (what LMDB calls `MDB_NOSYNC`).
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-durable-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// // A scratch index, rebuilt from its source after a power loss.
    /// let mut d: EmDict<u64, u64> = EmDict::open_with(&dir, OpenOptions::new().durable(false))?;
    /// d.insert(1, 1)?;
    /// d.flush()?; // atomic, without waiting for the disk
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn durable(&mut self, durable: bool) -> &mut Self {
        self.durable = durable;
        self
    }

    /// After each commit, free space in free extents of at least `bytes` is
    /// returned to the file system (`fallocate(FALLOC_FL_PUNCH_HOLE)`), so the
    /// store's disk usage shrinks when data is removed; the space is reserved
    /// again before it is reused, so a full disk stays an error and never a
    /// SIGBUS. Default 64 KiB; 0 never releases. Smaller thresholds release
    /// more of a fragmented store at the cost of one system call per free run
    /// (milliseconds each on some file systems, such as ext4 mounted with
    /// `discard`). File systems that cannot punch holes are detected and left
    /// alone. See `docs/DESIGN.md`, "Releasing free space".
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, OpenOptions};
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-release-{}", std::process::id()));
    /// // Release every free page, however fragmented the free space is.
    /// let mut d: EmDict<u64, u64> =
    ///     EmDict::open_with(&dir, OpenOptions::new().truncate(true).release_threshold(4096))?;
    /// d.insert(1, 2)?;
    /// d.flush()?;
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn release_threshold(&mut self, bytes: u64) -> &mut Self {
        self.release_min = bytes;
        self
    }

    /// Whether freshly backed space is mapped with transparent huge pages
    /// (`madvise(MADV_HUGEPAGE)`) until the commit that first makes it
    /// durable. Off by default; Linux only, a hint the kernel may ignore.
    ///
    /// Space the store grows into holds no data yet, so the kernel can fill it
    /// with 2 MiB page-cache folios without reading anything. Those folios
    /// stay 2 MiB for as long as they are cached, also in later mappings and
    /// later processes, so lookups in a store built this way take one TLB
    /// entry per 2 MiB instead of per 4 KiB (of a 10 M-entry dict's 271 MiB,
    /// 218 MiB were mapped so with it, 138 MiB without). After the
    /// commit the advice is withdrawn (`MADV_NOHUGEPAGE`): data read back from
    /// disk later comes in 4 KiB pages, so a random lookup in a store larger
    /// than memory never reads 2 MiB. It is off by default because a huge
    /// folio needs 2 MiB of contiguous memory: where memory is fragmented and
    /// the kernel compacts on demand (`transparent_hugepage/defrag` set to
    /// `madvise`, the usual default), a fault may wait for compaction, and no
    /// benefit to lookups was shown on the development VM (its ext4 already
    /// caches much of a store in large folios). See `docs/DESIGN.md` §8.1.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmDict, OpenOptions};
    ///
    /// let dir = std::env::temp_dir().join(format!("emds-doc-huge-{}", std::process::id()));
    /// let mut d: EmDict<u64, u64> =
    ///     EmDict::open_with(&dir, OpenOptions::new().truncate(true).huge_pages(true))?;
    /// d.insert(1, 2)?;
    /// d.flush()?;
    /// # drop(d);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn huge_pages(&mut self, on: bool) -> &mut Self {
        self.huge_pages = on;
        self
    }

    /// The sizes of segment files: the first is `initial` bytes, each further
    /// one twice the previous, up to `max` (both rounded up to 4 KiB pages,
    /// and kept between one page and 1 TiB less a page, the largest segment
    /// the format addresses). Segments reserve address space; disk blocks
    /// are claimed in smaller steps as data arrives. Defaults: 1 MiB and
    /// 1 GiB. Applies to segments created from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// use emds::{EmVec, OpenOptions};
    ///
    /// # let dir = std::env::temp_dir().join(format!("emds-doc-options-segments-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// // A store expected to be large: fewer, larger segment files.
    /// let big = OpenOptions::new().segment_sizes(8 << 20, 16 << 30).clone();
    /// let mut v: EmVec<u64> = EmVec::open_with(&dir, &big)?;
    /// v.extend(0..1000)?;
    /// # drop(v);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), emds::Error>(())
    /// ```
    pub fn segment_sizes(&mut self, initial: u64, max: u64) -> &mut Self {
        let page = crate::alloc::PAGE_SIZE as u64;
        let round = |n: u64| n.clamp(page, crate::alloc::MAX_SEGMENT_SIZE).next_multiple_of(page);
        self.initial_segment_size = round(initial);
        self.max_segment_size = round(max).max(self.initial_segment_size);
        self
    }
}
