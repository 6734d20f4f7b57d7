//! `std::collections::HashMap`: no disk and no serialization, the physical limit.

use std::collections::HashMap;
use std::path::Path;

use super::Engine;
use crate::Res;
use crate::data::{Datum, entry_fold};

pub struct MemMap<K, V> {
    map: HashMap<K, V>,
}

impl<K: Datum, V: Datum> Engine<K, V> for MemMap<K, V> {
    const NAME: &'static str = "HashMap";
    const PERSISTENT: bool = false;

    fn create(_dir: &Path) -> Res<Self> {
        Ok(MemMap { map: HashMap::new() })
    }

    fn load(&mut self, items: &[(K, V)]) -> Res<()> {
        for &(key, value) in items {
            self.map.insert(key, value);
        }
        Ok(())
    }

    /// `HashMap::extend`, which reserves room for the slice's size hint first.
    fn load_bulk(&mut self, items: &[(K, V)]) -> Res<()> {
        self.map.extend(items.iter().copied());
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        Ok(())
    }

    fn count_matching(&self, pairs: &[(K, V)]) -> Res<usize> {
        Ok(pairs.iter().filter(|(k, v)| self.map.get(k) == Some(v)).count())
    }

    fn count_present(&self, keys: &[K]) -> Res<usize> {
        Ok(keys.iter().filter(|k| self.map.contains_key(k)).count())
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let sum = self.map.iter().fold(0u64, |sum, (k, v)| sum.wrapping_add(entry_fold(k, v)));
        Ok((self.map.len(), sum))
    }

    fn remove(&mut self, keys: &[K]) -> Res<usize> {
        Ok(keys.iter().filter(|k| self.map.remove(k).is_some()).count())
    }
}
