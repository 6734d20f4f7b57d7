//! TEMPORARY stand-in for emds::EmVec until it lands on main (same contract API).
#![allow(dead_code)]

pub use emds::EmDict;

use std::path::{Path, PathBuf};

/// Printed by the example while the stand-in is in use, so no number is mistaken for emds's.
pub const STAND_IN: Option<&str> = Some(
    "NOTE: EmVec is not on main yet; this build runs its CSR on an in-memory stand-in (examples/graph500/db.rs); the EmDict is real",
);

pub type Result<T> = std::result::Result<T, std::io::Error>;

pub struct EmVec<T> {
    path: PathBuf,
    data: Vec<T>,
}

impl<T: bytemuck::Pod> EmVec<T> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let data = match std::fs::read(path.join("data")) {
            Ok(b) => b.chunks_exact(std::mem::size_of::<T>()).map(bytemuck::pod_read_unaligned).collect(),
            Err(_) => Vec::new(),
        };
        Ok(EmVec { path, data })
    }
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open(path)
    }
    pub fn extend_from_slice(&mut self, s: &[T]) -> Result<()> {
        self.data.extend_from_slice(s);
        Ok(())
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn get(&self, i: usize) -> Result<Option<T>> {
        Ok(self.data.get(i).copied())
    }
    pub fn get_range(&self, r: std::ops::Range<usize>) -> Result<Option<std::borrow::Cow<'_, [T]>>> {
        Ok(self.data.get(r).map(std::borrow::Cow::Borrowed))
    }
    pub fn chunks(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.data.chunks(1 << 20)
    }
    pub fn flush(&mut self) -> Result<()> {
        std::fs::write(self.path.join("data"), bytemuck::cast_slice::<T, u8>(&self.data))
    }
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }
}
