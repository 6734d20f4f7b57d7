//! Operating-system calls: mapping segment files, preallocating space, and
//! advising the kernel; and one SIMD byte compare for the dict's lookups.
//! This is the only module of emds with `unsafe` code.
//!
//! # The mapping contract
//!
//! A file mapping is only sound while no one truncates or rewrites the file
//! behind the program's back. emds keeps that promise for its own handles: a
//! store is opened under an advisory lock (`lock` in the store's directory),
//! exclusive for a writer and shared for readers, segment files are never
//! shrunk while open, and every byte range is checked against the length the
//! file had when it was mapped before a slice of it is handed out. A process
//! that ignores the lock and truncates or overwrites segment files while a
//! handle is open is outside the contract, as it is for LMDB, memmap2 and every
//! other mmap-based store; `docs/DESIGN.md` ("The mmap contract") says why emds
//! makes `open` safe regardless.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use memmap2::{Advice, Mmap, MmapMut, MmapOptions};

/// A mapping of a whole segment file, writable or read-only.
#[derive(Debug)]
pub(crate) enum Mapping {
    Write(MmapMut),
    Read(Mmap),
}

impl Mapping {
    /// Maps the first `len` bytes of `file`, which must be at least `len` long.
    pub(crate) fn new(file: &File, len: usize, writable: bool) -> io::Result<Self> {
        if file.metadata()?.len() < len as u64 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than mapping"));
        }
        let mut options = MmapOptions::new();
        options.len(len);
        if writable {
            // SAFETY: memmap2 requires that the file is not modified or truncated by
            // others while mapped. The store holds the directory's exclusive lock for
            // a writable mapping, never shrinks a segment while it is open, and the
            // length was checked above, so every mapped page is backed by the file.
            let map = unsafe { options.map_mut(file)? };
            Ok(Mapping::Write(map))
        } else {
            // SAFETY: as above; a read-only mapping is made under the shared lock,
            // which excludes every emds writer for as long as the mapping lives.
            let map = unsafe { options.map(file)? };
            Ok(Mapping::Read(map))
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Mapping::Write(m) => m,
            Mapping::Read(m) => m,
        }
    }

    /// The writable bytes, or `None` for a read-only mapping.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match self {
            Mapping::Write(m) => Some(m),
            Mapping::Read(_) => None,
        }
    }

    /// Writes the mapping's dirty pages in `offset..offset + len` to the file and waits.
    pub(crate) fn sync_range(&self, offset: usize, len: usize) -> io::Result<()> {
        match self {
            Mapping::Write(m) => m.flush_range(offset, len),
            Mapping::Read(_) => Ok(()),
        }
    }

    /// Tells the kernel how `offset..offset + len` of the mapping will be read.
    pub(crate) fn advise_range(&self, advice: Advice, offset: usize, len: usize) {
        // A hint, as for `advise`.
        let _ = match self {
            Mapping::Write(m) => m.advise_range(advice, offset, len),
            Mapping::Read(m) => m.advise_range(advice, offset, len),
        };
    }

    /// Asks for (`true`) or refuses (`false`) transparent huge pages for
    /// `offset..offset + len` of the mapping; both 2 MiB aligned.
    pub(crate) fn advise_huge(&self, offset: usize, len: usize, huge: bool) {
        #[cfg(target_os = "linux")]
        {
            // A hint, as for `advise`: a kernel without THP for files ignores it.
            let advice = if huge { Advice::HugePage } else { Advice::NoHugePage };
            self.advise_range(advice, offset, len);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len, huge);
    }

    /// Tells the kernel how the mapping will be read.
    #[allow(dead_code, reason = "kept for structures that scan in address order")]
    pub(crate) fn advise(&self, advice: Advice) {
        // Advice is a hint; a kernel that refuses it changes nothing we rely on.
        let _ = match self {
            Mapping::Write(m) => m.advise(advice),
            Mapping::Read(m) => m.advise(advice),
        };
    }
}

/// Reserves disk blocks for `offset..offset + len` of `file`, growing it if needed,
/// so that later writes through a mapping cannot fail for lack of space (which
/// would raise SIGBUS). A full disk is reported here, as an error.
pub(crate) fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let n = libc::off_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: posix_fallocate only reads its integer arguments and works on the
    // descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, n) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate support: fall back to extending the file,
        // which at least makes the pages readable. Space is then not guaranteed.
        libc::EOPNOTSUPP | libc::ENOSYS => {
            if file.metadata()?.len() < offset + len {
                file.set_len(offset + len)?;
            }
            Ok(())
        }
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Returns the disk blocks of `offset..offset + len` of `file` to the file
/// system (`fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`): the range
/// reads as zeros afterwards and the file keeps its length. A write to it
/// would allocate blocks again, and fail with SIGBUS through a mapping on a
/// full disk, so the store [`reserve`]s a released range before reusing it.
/// File systems without hole punching return `EOPNOTSUPP`.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let n = libc::off_t::try_from(len).map_err(io::Error::other)?;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate only reads its integer arguments and works on the
    // descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, off, n) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Reserves disk blocks again for `offset..offset + len` of `file`, which lies
/// inside the file (`fallocate(FALLOC_FL_KEEP_SIZE)`): blocks already there
/// stay as they are, holes get blocks that read as zeros. A full disk is an
/// error here, and never a SIGBUS at a later write through the mapping. On a
/// file system without `fallocate` this does nothing: it cannot punch holes
/// either, so the range was never released.
pub(crate) fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let n = libc::off_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: fallocate only reads its integer arguments and works on the
    // descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, n) };
    if rc == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) => Ok(()),
        e => Err(e),
    }
}

/// Starts writing back the dirty pages of `offset..offset + len` of `file`
/// without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a later fsync
/// or msync then finds most of them written. Durability still comes only from
/// that later sync; this call is a hint, and its errors are the sync's to report.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let off = libc::off64_t::try_from(offset).map_err(io::Error::other)?;
    let n = libc::off64_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: sync_file_range only reads its integer arguments and works on the
    // descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Asks the kernel to drop the file's pages from the page cache (after they were
/// written back). Used by benchmarks and tests that measure cold reads.
#[allow(dead_code)]
pub(crate) fn drop_page_cache(file: &File) -> io::Result<()> {
    file.sync_all()?;
    // SAFETY: posix_fadvise only reads its integer arguments and works on the
    // descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// One bit per byte of `group` (bit `j` for byte `j`), set where the byte is
/// `b`: the tag match of an `EmDict` lookup, sixteen tags per step.
#[inline]
pub(crate) fn match_byte16(group: &[u8; 16], b: u8) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
        // SAFETY: SSE2 is enabled for this build (the `cfg` above; every
        // x86_64 CPU has it). `_mm_loadu_si128` reads 16 bytes through a
        // pointer that `&[u8; 16]` makes valid for them, with no alignment
        // requirement; the other intrinsics compute on registers only.
        let mask = unsafe {
            let v = _mm_loadu_si128(group.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)))
        };
        mask as u32 & 0xffff
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        group.iter().enumerate().fold(0, |m, (j, &x)| m | u32::from(x == b) << j)
    }
}

/// Two masks over the sixteen bytes of `group` (bit `j` for byte `j`): the
/// bytes equal to `b`, and the zero bytes. The probe of a hashed `EmDict`
/// page: the tags that match and the empty slots that end the probe, from
/// one load.
#[inline]
pub(crate) fn match_tag_empty16(group: &[u8; 16], b: u8) -> (u32, u32) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8, _mm_setzero_si128};
        // SAFETY: as in `match_byte16`: SSE2 is enabled (the `cfg`), the load
        // reads the 16 bytes that `&[u8; 16]` makes valid, unaligned loads are
        // allowed, and the rest computes on registers.
        let (hits, empty) = unsafe {
            let v = _mm_loadu_si128(group.as_ptr().cast());
            (
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))),
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())),
            )
        };
        (hits as u32 & 0xffff, empty as u32 & 0xffff)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        (match_byte16(group, b), match_byte16(group, 0))
    }
}

/// Asks the CPU to start loading the cache line holding `bytes[at]` (a hint:
/// no effect on results; nothing if `at` is out of range or on other
/// architectures). Lets a lookup issue the misses it will take at once.
#[inline]
pub(crate) fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    if let Some(p) = bytes.get(at) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is enabled (the `cfg`); `p` points into `bytes`, and a
        // prefetch neither reads into the program nor faults (it is a hint).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast()) };
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = (bytes, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_byte16_sets_the_bit_of_every_equal_byte() {
        let mut group = [0u8; 16];
        for (j, x) in group.iter_mut().enumerate() {
            *x = (j % 5) as u8 * 60;
        }
        for b in [0u8, 60, 120, 180, 240, 1, 255] {
            let want = (0..16).filter(|&j| group[j] == b).fold(0u32, |m, j| m | 1 << j);
            assert_eq!(match_byte16(&group, b), want, "byte {b}");
        }
        assert_eq!(match_byte16(&[0xff; 16], 0xff), 0xffff);
    }

    #[test]
    fn match_tag_empty16_finds_tags_and_zeros() {
        let group: [u8; 16] = std::array::from_fn(|j| [0u8, 7, 9, 7][j % 4]);
        let (hits, empty) = match_tag_empty16(&group, 7);
        assert_eq!(hits, 0b1010_1010_1010_1010);
        assert_eq!(empty, 0b0001_0001_0001_0001);
        prefetch(&group, 3);
        prefetch(&group, 99); // out of range: nothing
    }

    #[test]
    fn short_file_is_an_error_not_a_mapping() {
        let dir = std::env::temp_dir().join(format!("emds-os-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("short");
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(100).unwrap();
        assert!(Mapping::new(&file, 4096, true).is_err());
        preallocate(&file, 0, 8192).unwrap();
        let map = Mapping::new(&file, 8192, true).unwrap();
        assert_eq!(map.bytes().len(), 8192);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn punched_range_reads_zeros_and_is_reserved_again() {
        let dir = std::env::temp_dir().join(format!("emds-os-punch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        preallocate(&file, 0, 1 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[7u8; 1 << 20], 0).unwrap();
        file.sync_all().unwrap();
        let blocks = |f: &File| std::os::unix::fs::MetadataExt::blocks(&f.metadata().unwrap()) * 512;
        let before = blocks(&file);
        match punch_hole(&file, 64 << 10, 512 << 10) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                println!("skipped: this file system cannot punch holes");
            }
            r => {
                r.unwrap();
                assert!(blocks(&file) <= before - (512 << 10), "the hole holds no blocks");
                let mut buf = vec![1u8; 4096];
                std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 128 << 10).unwrap();
                assert!(buf.iter().all(|&b| b == 0), "a hole reads as zeros");
                reserve(&file, 64 << 10, 512 << 10).unwrap();
                assert!(blocks(&file) >= before, "the range is reserved again");
            }
        }
        assert_eq!(file.metadata().unwrap().len(), 1 << 20, "the length never changes");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
