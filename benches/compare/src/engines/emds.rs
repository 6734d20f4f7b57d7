//! emds: `EmDict` for the dict workload; `EmList` and `EmVec` for the list
//! workload (see `crate::list`). Every bulk operation ends in `flush`, which is durable.

use std::path::{Path, PathBuf};

use emds::{EmDict, EmList, EmVec};

use super::{Engine, closed};
use crate::Res;
use crate::data::{Datum, Edge, Elem, Pair, entry_fold, fold_all};
use crate::list::Seq;

pub struct Emds<K, V> {
    path: PathBuf,
    dict: Option<EmDict<K, V>>,
}

impl<K: Datum, V: Datum> Emds<K, V> {
    fn dict(&self) -> Res<&EmDict<K, V>> {
        self.dict.as_ref().ok_or_else(closed)
    }

    fn dict_mut(&mut self) -> Res<&mut EmDict<K, V>> {
        self.dict.as_mut().ok_or_else(closed)
    }
}

impl<K: Datum, V: Datum> Engine<K, V> for Emds<K, V> {
    const NAME: &'static str = "emds";

    fn create(dir: &Path) -> Res<Self> {
        let path = dir.join("emdict");
        Ok(Emds { dict: Some(EmDict::open(&path)?), path })
    }

    fn load(&mut self, items: &[(K, V)]) -> Res<()> {
        let dict = self.dict_mut()?;
        for &(key, value) in items {
            dict.insert(key, value)?;
        }
        dict.flush()?;
        Ok(())
    }

    /// `EmDict::extend`, which batches the pairs by bucket and reserves
    /// room for all of them (the slice's size hint).
    fn load_bulk(&mut self, items: &[(K, V)]) -> Res<()> {
        let dict = self.dict_mut()?;
        dict.extend(items.iter().copied())?;
        dict.flush()?;
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        if let Some(dict) = self.dict.take() {
            dict.close()?;
        }
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        self.dict = Some(EmDict::open(&self.path)?);
        Ok(())
    }

    fn count_matching(&self, pairs: &[(K, V)]) -> Res<usize> {
        let dict = self.dict()?;
        let mut found = 0;
        for (key, value) in pairs {
            found += usize::from(dict.get(key)?.as_ref() == Some(value));
        }
        Ok(found)
    }

    fn count_present(&self, keys: &[K]) -> Res<usize> {
        let dict = self.dict()?;
        let mut found = 0;
        for key in keys {
            found += usize::from(dict.contains_key(key)?);
        }
        Ok(found)
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let (mut count, mut sum) = (0, 0u64);
        for entry in self.dict()?.iter() {
            let (key, value) = entry?;
            sum = sum.wrapping_add(entry_fold(&key, &value));
            count += 1;
        }
        Ok((count, sum))
    }

    fn remove(&mut self, keys: &[K]) -> Res<usize> {
        let dict = self.dict_mut()?;
        let mut removed = 0;
        for key in keys {
            removed += usize::from(dict.remove(key)?.is_some());
        }
        dict.flush()?;
        Ok(removed)
    }
}

/// `EmList<(u64, u64)>`: elements pushed one by one, then a durable flush.
pub struct EmListSeq(EmList<Pair>);

impl Seq<Pair> for EmListSeq {
    const NAME: &'static str = "EmList";

    fn create(dir: &Path) -> Res<Self> {
        Ok(EmListSeq(EmList::open(dir.join("emlist"))?))
    }

    fn load(&mut self, items: &[Pair]) -> Res<()> {
        for &item in items {
            self.0.push(item)?;
        }
        self.0.flush()?;
        Ok(())
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let (mut count, mut sum) = (0, 0u64);
        for item in self.0.iter() {
            sum = sum.wrapping_add(item?.fold());
            count += 1;
        }
        Ok((count, sum))
    }

    fn count_matching(&self, indices: &[usize], items: &[Pair]) -> Res<usize> {
        let mut found = 0;
        for &i in indices {
            found += usize::from(self.0.get(i)?.as_ref() == Some(&items[i]));
        }
        Ok(found)
    }
}

/// `EmVec<[u32; 2]>`: one `extend_from_slice`, then a durable flush; scanned by chunks.
pub struct EmVecSeq(EmVec<Edge>);

impl Seq<Edge> for EmVecSeq {
    const NAME: &'static str = "EmVec";

    fn create(dir: &Path) -> Res<Self> {
        Ok(EmVecSeq(EmVec::open(dir.join("emvec"))?))
    }

    fn load(&mut self, items: &[Edge]) -> Res<()> {
        self.0.extend_from_slice(items)?;
        self.0.flush()?;
        Ok(())
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let (count, sum) = self
            .0
            .chunks()
            .fold((0, 0u64), |(count, sum), chunk| (count + chunk.len(), sum.wrapping_add(fold_all(chunk))));
        Ok((count, sum))
    }

    fn count_matching(&self, indices: &[usize], items: &[Edge]) -> Res<usize> {
        let mut found = 0;
        for &i in indices {
            found += usize::from(self.0.get(i)?.as_ref() == Some(&items[i]));
        }
        Ok(found)
    }
}
