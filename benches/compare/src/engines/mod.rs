//! The engines compared: each behind [`Engine`] (dict workload) or
//! [`crate::list::Seq`] (list workload).

use std::path::Path;

use crate::Res;
use crate::data::Datum;

#[cfg(feature = "emds")]
pub mod emds;
pub mod hashmap;
pub mod lmdb;
pub mod redb;

/// A key-value store under test. Every bulk operation ends durably: when it
/// returns, a crash loses nothing (except for in-memory engines).
pub trait Engine<K: Datum, V: Datum>: Sized {
    /// Its column name in the tables.
    const NAME: &'static str;
    /// Whether it keeps its data on disk (reopen, disk use and cold gets apply).
    const PERSISTENT: bool = true;

    /// Creates an empty store in `dir`, an empty directory that is its alone.
    fn create(dir: &Path) -> Res<Self>;
    /// Inserts every pair, one call per pair, and makes them durable.
    fn load(&mut self, items: &[(K, V)]) -> Res<()>;
    /// Inserts every pair through the engine's own bulk path (what its user
    /// would reach for to load many pairs), and makes them durable. The
    /// default is [`Engine::load`], for engines whose natural bulk path it is.
    fn load_bulk(&mut self, items: &[(K, V)]) -> Res<()> {
        self.load(items)
    }
    /// Closes the store, releasing its files and maps.
    fn close(&mut self) -> Res<()>;
    /// Opens again what [`Engine::close`] closed.
    fn open(&mut self) -> Res<()>;
    /// How many of `pairs` are present with exactly their value.
    fn count_matching(&self, pairs: &[(K, V)]) -> Res<usize>;
    /// How many of `keys` are present.
    fn count_present(&self, keys: &[K]) -> Res<usize>;
    /// Visits every entry: (entries, sum of [`crate::data::entry_fold`]).
    fn scan(&self) -> Res<(usize, u64)>;
    /// Removes `keys` and makes that durable; returns how many were present.
    fn remove(&mut self, keys: &[K]) -> Res<usize>;
}

/// The error of using a store that is closed.
pub fn closed() -> Box<dyn std::error::Error> {
    "the store is closed".into()
}
