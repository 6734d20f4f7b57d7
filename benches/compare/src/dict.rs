//! The dict workload: every engine loads the same pairs, then runs the same
//! phases on them.

use std::path::Path;

use crate::data::{Datum, DictData};
use crate::engines::Engine;
use crate::engines::hashmap::MemMap;
use crate::engines::lmdb::Lmdb;
use crate::engines::redb::Redb;
use crate::report::{EngineResult, Section, Unit, disk_metrics, expect, repeated, timed};
use crate::sys;
use crate::{Config, Res, fresh_dir};

/// The engines of the dict workload, in the order they run by default.
pub const ENGINES: &[&str] = &["emds", "lmdb", "redb", "hashmap"];

pub fn run<K: Datum, V: Datum>(cfg: &Config, title: String) -> Res<Section> {
    let start = std::time::Instant::now();
    let data = DictData::<K, V>::generate(cfg.seed, cfg.n, cfg.sample, cfg.cold_sample);
    eprintln!("generated {} pairs in {:.1} s", data.items.len(), start.elapsed().as_secs_f64());
    let mut results = Vec::new();
    for engine in &cfg.engines {
        eprintln!("{title}: {engine}…");
        let result = match engine.as_str() {
            #[cfg(feature = "emds")]
            "emds" => bench::<K, V, crate::engines::emds::Emds<K, V>>(cfg, &data)?,
            #[cfg(not(feature = "emds"))]
            "emds" => {
                eprintln!("  skipped: built without the `emds` feature");
                continue;
            }
            "lmdb" => bench::<K, V, Lmdb>(cfg, &data)?,
            "redb" => bench::<K, V, Redb>(cfg, &data)?,
            "hashmap" => bench::<K, V, MemMap<K, V>>(cfg, &data)?,
            other => return Err(format!("unknown dict engine {other:?}").into()),
        };
        results.push(result);
    }
    Ok(Section { title, results })
}

/// Runs every phase on one engine in a fresh directory of its own.
fn bench<K: Datum, V: Datum, E: Engine<K, V>>(cfg: &Config, data: &DictData<K, V>) -> Res<EngineResult> {
    let mut out = EngineResult::new(E::NAME);
    let n = data.items.len();
    bulk_load::<K, V, E>(cfg, data, &mut out)?;
    let dir = fresh_dir(&cfg.dir, E::NAME)?;
    let mut engine = E::create(&dir)?;

    let ((), secs) = timed(|| engine.load(&data.items))?;
    out.rate("load + durable commit", n, vec![secs]);
    if E::PERSISTENT {
        disk_metrics(&mut out, &dir, "after load", n, K::RAW + V::RAW)?;
    }
    if cfg.load_only {
        return finish(cfg, engine, &dir, out);
    }
    if E::PERSISTENT {
        engine.close()?;
        let ((), secs) = timed(|| engine.open())?;
        out.value("reopen", Unit::Millis, secs * 1e3);
    }
    warm_phases(cfg, data, &mut engine, &mut out)?;
    remove_half(data, &mut engine, &mut out)?;
    if E::PERSISTENT {
        disk_metrics(&mut out, &dir, "after removal", n - data.removed.len(), K::RAW + V::RAW)?;
        cold_gets(data, &dir, &mut engine, &mut out)?;
    }
    finish(cfg, engine, &dir, out)
}

/// Loads every pair through the engine's bulk path into a store of its own,
/// which is then removed: the rate and the disk use after it.
fn bulk_load<K: Datum, V: Datum, E: Engine<K, V>>(
    cfg: &Config,
    data: &DictData<K, V>,
    out: &mut EngineResult,
) -> Res<()> {
    let dir = fresh_dir(&cfg.dir, &format!("{}-bulk", E::NAME))?;
    let mut engine = E::create(&dir)?;
    let n = data.items.len();
    let ((), secs) = timed(|| engine.load_bulk(&data.items))?;
    out.rate("bulk load + durable commit", n, vec![secs]);
    if E::PERSISTENT {
        disk_metrics(out, &dir, "after bulk load", n, K::RAW + V::RAW)?;
    }
    engine.close()?;
    drop(engine);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Closes the engine and removes its directory (unless `--keep`).
fn finish<K: Datum, V: Datum, E: Engine<K, V>>(
    cfg: &Config,
    mut engine: E,
    dir: &Path,
    out: EngineResult,
) -> Res<EngineResult> {
    engine.close()?;
    drop(engine);
    if !cfg.keep {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(out)
}

/// Gets of present and absent keys and a full scan, each repeated, on the
/// whole data set.
fn warm_phases<K: Datum, V: Datum, E: Engine<K, V>>(
    cfg: &Config,
    data: &DictData<K, V>,
    engine: &mut E,
    out: &mut EngineResult,
) -> Res<()> {
    let secs = repeated(cfg.reps, || {
        expect("present gets that match", engine.count_matching(&data.sample)?, data.sample.len())
    })?;
    out.rate("get present", data.sample.len(), secs);

    let secs = repeated(cfg.reps, || expect("absent keys found", engine.count_present(&data.absent)?, 0))?;
    out.rate("get absent", data.absent.len(), secs);

    let want = (data.items.len(), data.fold_from(0));
    let secs = repeated(cfg.reps, || expect("scan (entries, checksum)", engine.scan()?, want))?;
    out.rate("iterate", data.items.len(), secs);
    Ok(())
}

/// Removes the first half of the keys, durably, and checks what remains.
fn remove_half<K: Datum, V: Datum, E: Engine<K, V>>(
    data: &DictData<K, V>,
    engine: &mut E,
    out: &mut EngineResult,
) -> Res<()> {
    let (removed, secs) = timed(|| engine.remove(&data.removed))?;
    expect("keys removed", removed, data.removed.len())?;
    out.rate("remove half + durable commit", data.removed.len(), vec![secs]);
    let half = data.removed.len();
    expect("scan after removal", engine.scan()?, (data.items.len() - half, data.fold_from(half)))
}

/// Random gets of remaining keys after the engine's files left the page cache.
fn cold_gets<K: Datum, V: Datum, E: Engine<K, V>>(
    data: &DictData<K, V>,
    dir: &Path,
    engine: &mut E,
    out: &mut EngineResult,
) -> Res<()> {
    engine.close()?;
    let resident = sys::drop_page_cache(dir)?;
    out.value("resident after cache drop", Unit::Percent, resident * 100.0);
    engine.open()?;
    let (found, secs) = timed(|| engine.count_matching(&data.cold))?;
    expect("cold gets that match", found, data.cold.len())?;
    out.rate("get cold (after cache drop)", data.cold.len(), vec![secs]);
    Ok(())
}
