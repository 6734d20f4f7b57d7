//! What the example asks of the operating system: resident-memory and CPU-time readings, bytes on
//! disk, dropping a store's pages from the page cache, and a dd-like probe of the disk's write
//! bandwidth, huge pages for the build's big arrays. The example's `unsafe` libc calls are here
//! (the only other `unsafe` is the AVX-512 dispatch of the Kronecker generator).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A field of `/proc/self/status` in bytes (the file gives kB), or 0 where unavailable.
fn status_bytes(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Peak resident set (VmHWM) since the start or the last [`reset_peak_rss`]: anonymous memory
/// plus the mapped file pages that were resident.
pub fn peak_rss() -> u64 {
    status_bytes("VmHWM")
}

/// Resident anonymous memory now (heap, the per-vertex arrays), without mapped file pages.
pub fn rss_anon() -> u64 {
    status_bytes("RssAnon")
}

/// Resident mapped file pages now (the store's pages this process touched and still has).
pub fn rss_file() -> u64 {
    status_bytes("RssFile")
}

/// Resets VmHWM to the current resident set (`/proc/self/clear_refs`, Linux 4.0+), so that the
/// peak of one phase can be read. Returns whether the kernel took it.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Asks the kernel to back `v` with transparent huge pages (`madvise(MADV_HUGEPAGE)`, for a
/// `madvise`-mode THP setting): the build's per-vertex arrays and its scatter window are read and
/// written at random, and with 4 KiB pages nearly every access also misses the TLB. Call it
/// before the first write to `v` (a fresh `vec![0; n]` is untouched). Best effort: a kernel that
/// declines leaves the memory as it was.
pub fn advise_huge<T>(v: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let start = v.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(v);
    let first = start.next_multiple_of(4096);
    if end < first + HUGE {
        return;
    }
    // SAFETY: madvise(MADV_HUGEPAGE) changes how the kernel backs the pages of the range, never
    // their contents or their mapping; the page-aligned range first..end lies inside `v`'s
    // allocation, which the `&mut` borrow keeps alive for the call.
    let _ = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
}

/// Hints the CPU to bring `x`'s cache line in (a no-op off x86_64): random accesses whose
/// addresses are known a few iterations ahead overlap their cache misses this way.
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a prefetch never faults,
    // and the address is that of a live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// User and system CPU time of the whole process so far (all threads).
pub fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points to a
    // zero-initialized `rusage` owned by this frame; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: the struct was zero-initialized (a valid `rusage`) and getrusage succeeded.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The calling thread's time on a CPU and time spent runnable but waiting for one
/// (`/proc/thread-self/schedstat`): the second is what a shared machine costs.
pub fn thread_sched() -> (Duration, Duration) {
    let s = fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    (Duration::from_nanos(it.next().unwrap_or(0)), Duration::from_nanos(it.next().unwrap_or(0)))
}

/// Bytes this process caused to be read from and written to storage (`/proc/self/io`).
pub fn io_bytes() -> (u64, u64) {
    let s = fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| s.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or(0);
    (field("read_bytes:"), field("write_bytes:"))
}

/// Visits every regular file under `dir`.
fn files(dir: &Path, f: &mut impl FnMut(&Path, &fs::Metadata) -> io::Result<()>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            files(&entry.path(), f)?;
        } else if meta.is_file() {
            f(&entry.path(), &meta)?;
        }
    }
    Ok(())
}

/// Bytes allocated on disk under `dir` (blocks, as `du` counts them).
pub fn disk_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    files(dir, &mut |_, m| {
        total += m.blocks() * 512;
        Ok(())
    })?;
    Ok(total)
}

/// Writes back and then drops from the page cache every file under `dir` (fsync, then
/// `posix_fadvise(DONTNEED)`), so that the next reads come from the disk. Pages still mapped by
/// an open handle stay resident: close the stores first.
pub fn drop_page_cache(dir: &Path) -> io::Result<()> {
    files(dir, &mut |path, _| {
        let file = File::open(path)?;
        file.sync_all()?;
        advise_dontneed(&file)
    })
}

fn advise_dontneed(file: &File) -> io::Result<()> {
    // SAFETY: posix_fadvise only reads its integer arguments and works on the descriptor, which
    // `file` keeps open for the duration of the call.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
}

/// Measures sequential write bandwidth like `dd bs=1M conv=fsync`: writes `mib` MiB of
/// incompressible data to a file in `dir`, fsyncs it, drops it from the cache and removes it.
/// Returns bytes per second.
pub fn disk_write_bandwidth(dir: &Path, mib: u64) -> io::Result<f64> {
    let path = dir.join("disk-probe.tmp");
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for b in block.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes());
    }
    let start = Instant::now();
    let mut file = File::create(&path)?;
    for _ in 0..mib {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    let _ = advise_dontneed(&file);
    drop(file);
    fs::remove_file(&path)?;
    Ok((mib << 20) as f64 / secs)
}

/// The machine, in one line: CPU model, cores, RAM, kernel.
pub fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {:.1} GiB RAM, Linux {}", mem as f64 / (1u64 << 20) as f64, kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_plausible() {
        assert!(peak_rss() > 0 && rss_anon() > 0);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {}
        assert!(cpu_time() > Duration::ZERO);
        assert!(machine().contains("cores"));
    }

    #[test]
    fn disk_bytes_and_cache_drop() {
        let dir = std::env::temp_dir().join(format!("graph500-sys-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/a"), vec![1u8; 100_000]).unwrap();
        assert!(disk_bytes(&dir).unwrap() >= 100_000);
        drop_page_cache(&dir).unwrap();
        assert!(disk_write_bandwidth(&dir, 2).unwrap() > 0.0);
        assert!(!dir.join("disk-probe.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
