//! What the benchmark asks of the operating system: disk usage, dropping a
//! directory's files from the page cache, and a description of the machine.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Every regular file under `dir`, recursively.
pub fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.extend(files(&entry.path())?);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Disk usage of a directory's files.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DiskUsage {
    /// Bytes allocated on disk (st_blocks * 512): what a sparse file really costs.
    pub allocated: u64,
    /// Sum of the files' lengths, for reference only.
    pub apparent: u64,
}

pub fn disk_usage(dir: &Path) -> io::Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    for path in files(dir)? {
        let meta = std::fs::metadata(&path)?;
        usage.allocated += meta.blocks() * 512;
        usage.apparent += meta.len();
    }
    Ok(usage)
}

/// Writes every file under `dir` back and asks the kernel to drop its pages
/// from the page cache; returns the fraction of their pages still resident.
///
/// The kernel does not drop pages that a process has mapped, so the engine
/// must be closed (its maps gone) before this is called.
pub fn drop_page_cache(dir: &Path) -> io::Result<f64> {
    for path in files(dir)? {
        let file = File::open(&path)?;
        file.sync_all()?;
        // SAFETY: a valid open descriptor; fadvise only gives the kernel advice.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    resident_fraction(dir)
}

/// The fraction of the pages of the files under `dir` that are in the page cache.
pub fn resident_fraction(dir: &Path) -> io::Result<f64> {
    let (mut resident, mut total) = (0u64, 0u64);
    for path in files(dir)? {
        let (r, t) = resident_pages(&File::open(&path)?)?;
        resident += r;
        total += t;
    }
    Ok(if total == 0 { 0.0 } else { resident as f64 / total as f64 })
}

/// (resident pages, pages) of one file, by mapping it and asking mincore.
fn resident_pages(file: &File) -> io::Result<(u64, u64)> {
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok((0, 0));
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: a fresh read-only shared mapping of an open file, unmapped below;
    // mincore only reads the page tables, it does not fault pages in.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0);
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        libc::munmap(addr, len);
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let resident = vec.iter().filter(|&&b| b & 1 == 1).count() as u64;
    Ok((resident, pages as u64))
}

/// The machine a run was made on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// The 1, 5 and 15 minute load averages when the run started: how busy
    /// the machine was (other jobs make every figure noisy).
    pub load_average: [f64; 3],
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: field(&meminfo, "MemTotal")
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            load_average: load_average(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}, {} cores, {:.1} GiB RAM, Linux {}", self.cpu, self.cores, self.memory_gib, self.kernel)?;
        let [a, b, c] = self.load_average;
        write!(f, ", load average {a:.2} {b:.2} {c:.2}")
    }
}

/// The load averages of /proc/loadavg (zeros where it cannot be read).
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, word) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = word.parse().unwrap_or(0.0);
    }
    out
}

/// The value of the first `name: value` line of a /proc file.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_string())
}

/// Whether `dir` is on tmpfs, where fsync, disk use and the page cache mean nothing.
pub fn is_tmpfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path and a zeroed statfs for the kernel to fill.
    unsafe {
        let mut stat: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut stat) == 0 && stat.f_type == libc::TMPFS_MAGIC
    }
}

/// User plus system CPU seconds this process has used: unlike the wall
/// clock, not inflated by other jobs waiting for the same cores.
pub fn cpu_secs() -> f64 {
    // SAFETY: a zeroed rusage for the kernel to fill.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
