//! redb: one write transaction per bulk operation, committed with
//! `Durability::Immediate`.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Engine, closed};
use crate::Res;
use crate::data::{Datum, entry_fold};

/// The one table, typed by the workload's key and value.
fn table<K: Datum, V: Datum>() -> TableDefinition<'static, K::Redb, V::Redb> {
    TableDefinition::new("dict")
}

pub struct Redb {
    path: PathBuf,
    db: Option<Database>,
}

impl Redb {
    fn db(&self) -> Res<&Database> {
        self.db.as_ref().ok_or_else(closed)
    }

    /// Runs `f` on the table in one durable write transaction.
    fn write<K: Datum, V: Datum, T>(&self, f: impl FnOnce(&mut redb::Table<K::Redb, V::Redb>) -> Res<T>) -> Res<T> {
        let mut txn = self.db()?.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let out = f(&mut txn.open_table(table::<K, V>())?)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` on the table in a read transaction.
    fn read<K: Datum, V: Datum, T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<K::Redb, V::Redb>) -> Res<T>) -> Res<T> {
        let txn = self.db()?.begin_read()?;
        f(&txn.open_table(table::<K, V>())?)
    }
}

impl<K: Datum, V: Datum> Engine<K, V> for Redb {
    const NAME: &'static str = "redb";

    fn create(dir: &Path) -> Res<Self> {
        let path = dir.join("db.redb");
        Ok(Redb { db: Some(Database::create(&path)?), path })
    }

    fn load(&mut self, items: &[(K, V)]) -> Res<()> {
        self.write::<K, V, _>(|table| {
            for (key, value) in items {
                table.insert(key.to_redb(), value.to_redb())?;
            }
            Ok(())
        })
    }

    fn close(&mut self) -> Res<()> {
        drop(self.db.take());
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        self.db = Some(Database::open(&self.path)?);
        Ok(())
    }

    fn count_matching(&self, pairs: &[(K, V)]) -> Res<usize> {
        self.read::<K, V, _>(|table| {
            let mut found = 0;
            for (key, value) in pairs {
                let got = table.get(key.to_redb())?;
                found += usize::from(got.is_some_and(|g| V::from_redb(g.value()) == *value));
            }
            Ok(found)
        })
    }

    fn count_present(&self, keys: &[K]) -> Res<usize> {
        self.read::<K, V, _>(|table| {
            let mut found = 0;
            for key in keys {
                found += usize::from(table.get(key.to_redb())?.is_some());
            }
            Ok(found)
        })
    }

    fn scan(&self) -> Res<(usize, u64)> {
        self.read::<K, V, _>(|table| {
            let (mut count, mut sum) = (0, 0u64);
            for entry in table.iter()? {
                let (key, value) = entry?;
                let (key, value) = (K::from_redb(key.value()), V::from_redb(value.value()));
                sum = sum.wrapping_add(entry_fold(&key, &value));
                count += 1;
            }
            Ok((count, sum))
        })
    }

    fn remove(&mut self, keys: &[K]) -> Res<usize> {
        self.write::<K, V, _>(|table| {
            let mut removed = 0;
            for key in keys {
                removed += usize::from(table.remove(key.to_redb())?.is_some());
            }
            Ok(removed)
        })
    }
}
