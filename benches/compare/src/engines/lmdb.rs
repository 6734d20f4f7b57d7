//! LMDB through heed: one write transaction per bulk operation, and a commit
//! is durable (LMDB syncs on commit by default).

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, PutFlags};

use super::{Engine, closed};
use crate::Res;
use crate::data::{Datum, Elem, Pair, entry_fold};
use crate::list::Seq;

/// The most the map may grow to. LMDB fails with MDB_MAP_FULL past it; it is
/// address space, not memory or disk, so it can be far larger than the data.
const MAP_SIZE: usize = 1 << 40;

/// The unnamed database of an LMDB environment, with raw byte keys and values.
pub type RawDb<'e> = Database<'e, Bytes, Bytes>;

/// Opens (creating) the LMDB environment in the directory `path`.
pub fn open_env(path: &Path) -> Res<Env> {
    std::fs::create_dir_all(path)?;
    // SAFETY: heed's contract for `open`: the files are not opened twice in
    // this process (close waits for the environment to be gone before any
    // reopen) and no other process uses them.
    let env = unsafe { EnvOpenOptions::new().map_size(MAP_SIZE).open(path)? };
    Ok(env)
}

/// Closes `env` and waits until LMDB has let go of its files.
pub fn close_env(env: Env) {
    env.prepare_for_closing().wait();
}

/// The unnamed database of `env` (it always exists).
pub fn main_db(env: &Env) -> Res<RawDb<'_>> {
    let rtxn = env.read_txn()?;
    let db = env
        .open_databases_and_commit(rtxn, |opener, rtxn| {
            opener.open_database::<Bytes, Bytes>(rtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();
    db.ok_or_else(|| "LMDB has no unnamed database".into())
}

pub struct Lmdb {
    path: PathBuf,
    env: Option<Env>,
}

impl Lmdb {
    fn env(&self) -> Res<&Env> {
        self.env.as_ref().ok_or_else(closed)
    }
}

impl<K: Datum, V: Datum> Engine<K, V> for Lmdb {
    const NAME: &'static str = "LMDB";

    fn create(dir: &Path) -> Res<Self> {
        let path = dir.join("lmdb");
        Ok(Lmdb { env: Some(open_env(&path)?), path })
    }

    fn load(&mut self, items: &[(K, V)]) -> Res<()> {
        let env = self.env()?;
        let db = main_db(env)?;
        let mut wtxn = env.write_txn()?;
        for (key, value) in items {
            db.put(&mut wtxn, key.to_raw().as_ref(), value.to_raw().as_ref())?;
        }
        wtxn.commit()?;
        Ok(())
    }

    fn close(&mut self) -> Res<()> {
        if let Some(env) = self.env.take() {
            close_env(env);
        }
        Ok(())
    }

    fn open(&mut self) -> Res<()> {
        self.env = Some(open_env(&self.path)?);
        Ok(())
    }

    fn count_matching(&self, pairs: &[(K, V)]) -> Res<usize> {
        let env = self.env()?;
        let db = main_db(env)?;
        let rtxn = env.read_txn()?;
        let mut found = 0;
        for (key, value) in pairs {
            let got = db.get(&rtxn, key.to_raw().as_ref())?;
            found += usize::from(got.is_some_and(|bytes| V::from_raw(bytes) == *value));
        }
        Ok(found)
    }

    fn count_present(&self, keys: &[K]) -> Res<usize> {
        let env = self.env()?;
        let db = main_db(env)?;
        let rtxn = env.read_txn()?;
        let mut found = 0;
        for key in keys {
            found += usize::from(db.get(&rtxn, key.to_raw().as_ref())?.is_some());
        }
        Ok(found)
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let env = self.env()?;
        let db = main_db(env)?;
        let rtxn = env.read_txn()?;
        let (mut count, mut sum) = (0, 0u64);
        for entry in db.iter(&rtxn)? {
            let (key, value) = entry?;
            sum = sum.wrapping_add(entry_fold(&K::from_raw(key), &V::from_raw(value)));
            count += 1;
        }
        Ok((count, sum))
    }

    fn remove(&mut self, keys: &[K]) -> Res<usize> {
        let env = self.env()?;
        let db = main_db(env)?;
        let mut wtxn = env.write_txn()?;
        let mut removed = 0;
        for key in keys {
            removed += usize::from(db.delete(&mut wtxn, key.to_raw().as_ref())?);
        }
        wtxn.commit()?;
        Ok(removed)
    }
}

/// LMDB as a sequence: key = the position as a big-endian u64, so positions
/// sort in order and a load is a pure append (`MDB_APPEND`); value = the
/// pair's 16 bytes.
pub struct LmdbSeq {
    env: Env,
}

fn pair_bytes(&(a, b): &Pair) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes
}

fn bytes_pair(bytes: &[u8]) -> Pair {
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("a 16-byte value"));
    (word(0), word(8))
}

impl Seq<Pair> for LmdbSeq {
    const NAME: &'static str = "LMDB";

    fn create(dir: &Path) -> Res<Self> {
        Ok(LmdbSeq { env: open_env(&dir.join("lmdb"))? })
    }

    fn load(&mut self, items: &[Pair]) -> Res<()> {
        let db = main_db(&self.env)?;
        let mut wtxn = self.env.write_txn()?;
        for (i, pair) in items.iter().enumerate() {
            let key = (i as u64).to_be_bytes();
            db.put_with_flags(&mut wtxn, PutFlags::APPEND, &key, &pair_bytes(pair))?;
        }
        wtxn.commit()?;
        Ok(())
    }

    fn scan(&self) -> Res<(usize, u64)> {
        let db = main_db(&self.env)?;
        let rtxn = self.env.read_txn()?;
        let (mut count, mut sum) = (0, 0u64);
        for entry in db.iter(&rtxn)? {
            let (_, value) = entry?;
            sum = sum.wrapping_add(bytes_pair(value).fold());
            count += 1;
        }
        Ok((count, sum))
    }

    fn count_matching(&self, indices: &[usize], items: &[Pair]) -> Res<usize> {
        let db = main_db(&self.env)?;
        let rtxn = self.env.read_txn()?;
        let mut found = 0;
        for &i in indices {
            let got = db.get(&rtxn, &(i as u64).to_be_bytes())?;
            found += usize::from(got.is_some_and(|bytes| bytes_pair(bytes) == items[i]));
        }
        Ok(found)
    }
}
