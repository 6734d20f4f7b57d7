//! TEMPORARY stand-in for emds::{EmVec, EmDict} until they land on main (same contract API).
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Printed by the example while the stand-in is in use, so no number is mistaken for emds's.
pub const STAND_IN: Option<&str> =
    Some("NOTE: EmVec/EmDict are not on main yet; this build runs on an in-memory stand-in (examples/graph500/db.rs)");

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

pub struct EmDict<K, V> {
    path: PathBuf,
    map: HashMap<K, V>,
}

impl<K: Serialize + DeserializeOwned + Hash + Eq, V: Serialize + DeserializeOwned + Clone> EmDict<K, V> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let map = match std::fs::read(path.join("data")) {
            Ok(b) => postcard::from_bytes::<Vec<(K, V)>>(&b).map_err(std::io::Error::other)?.into_iter().collect(),
            Err(_) => HashMap::new(),
        };
        Ok(EmDict { path, map })
    }
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open(path)
    }
    pub fn insert(&mut self, k: K, v: V) -> Result<Option<V>> {
        Ok(self.map.insert(k, v))
    }
    pub fn get(&self, k: &K) -> Result<Option<V>> {
        Ok(self.map.get(k).cloned())
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn flush(&mut self) -> Result<()> {
        let v: Vec<(&K, &V)> = self.map.iter().collect();
        std::fs::write(self.path.join("data"), postcard::to_stdvec(&v).map_err(std::io::Error::other)?)
    }
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }
}
