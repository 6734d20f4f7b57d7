//! The on-disk graph: five emds stores in one directory.
//!
//! | store | type | what |
//! | --- | --- | --- |
//! | `edges` | `EmVec<[u32; 2]>` | the generated edge list, in generation order (validation reads it) |
//! | `offsets` | `EmVec<u64>` | CSR offsets, `vertices + 1` of them |
//! | `targets` | `EmVec<u32>` | CSR neighbour lists, both directions of every non-loop edge |
//! | `degrees` | `EmDict<u32, u32>` | per-vertex attribute: the degree, keyed by vertex id |
//! | `meta` | `EmDict<String, u64>` | scale, edge factor, seed, counts; `complete` is written last |

use std::error::Error;
use std::path::Path;

use crate::csr::{DiskCsr, Pieces};
use crate::db::{EmDict, EmVec};

/// The boxed error of the example.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The names of the stores inside a graph directory.
pub const PARTS: [&str; 5] = ["edges", "offsets", "targets", "degrees", "meta"];

/// The parameters and counts recorded in `meta`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Meta {
    /// log2 of the vertex count.
    pub scale: u64,
    /// Edges per vertex.
    pub edge_factor: u64,
    /// The generator's seed.
    pub seed: u64,
    /// Vertex count.
    pub vertices: u64,
    /// Generated edges, self-loops and duplicates included.
    pub edges: u64,
    /// Self-loops among them (left out of the CSR).
    pub self_loops: u64,
    /// Neighbour entries in the CSR: twice the non-loop edges.
    pub targets: u64,
}

impl Meta {
    const KEYS: [&str; 7] = ["scale", "edge_factor", "seed", "vertices", "edges", "self_loops", "targets"];

    fn values(&self) -> [u64; 7] {
        [self.scale, self.edge_factor, self.seed, self.vertices, self.edges, self.self_loops, self.targets]
    }

    /// Writes the record, then `complete = 1`, and flushes.
    pub fn save(&self, dir: &Path) -> Result<(), BoxError> {
        let mut d: EmDict<String, u64> = EmDict::open(dir.join("meta"))?;
        for (k, v) in Self::KEYS.iter().zip(self.values()) {
            d.insert(k.to_string(), v)?;
        }
        d.flush()?;
        d.insert("complete".to_string(), 1)?;
        d.close()?;
        Ok(())
    }

    /// Reads the record of a complete store.
    pub fn load(dir: &Path) -> Result<Meta, BoxError> {
        let d: EmDict<String, u64> = EmDict::open_read_only(dir.join("meta"))?;
        let get = |k: &str| -> Result<u64, BoxError> {
            d.get(&k.to_string())?.ok_or_else(|| format!("{}: meta has no {k:?}", dir.display()).into())
        };
        if get("complete")? != 1 {
            return Err(format!("{}: the store was not completely built", dir.display()).into());
        }
        let v: Vec<u64> = Self::KEYS.iter().map(|k| get(k)).collect::<Result<_, _>>()?;
        Ok(Meta {
            scale: v[0],
            edge_factor: v[1],
            seed: v[2],
            vertices: v[3],
            edges: v[4],
            self_loops: v[5],
            targets: v[6],
        })
    }
}

/// A built graph, reopened read-only.
pub struct Store {
    /// Its record.
    pub meta: Meta,
    /// The edge list.
    pub edges: EmVec<[u32; 2]>,
    /// CSR offsets.
    pub offsets: EmVec<u64>,
    /// CSR targets.
    pub targets: EmVec<u32>,
    /// Degrees by vertex id.
    pub degrees: EmDict<u32, u32>,
}

impl Store {
    /// Opens the graph in `dir` read-only and checks that its parts agree with `meta`.
    pub fn open(dir: &Path) -> Result<Store, BoxError> {
        let meta = Meta::load(dir).map_err(|e| format!("cannot reopen {}: {e}", dir.display()))?;
        let s = Store {
            meta,
            edges: EmVec::open_read_only(dir.join("edges"))?,
            offsets: EmVec::open_read_only(dir.join("offsets"))?,
            targets: EmVec::open_read_only(dir.join("targets"))?,
            degrees: EmDict::open_read_only(dir.join("degrees"))?,
        };
        let check = |what: &str, got: u64, want: u64| -> Result<(), BoxError> {
            if got == want {
                Ok(())
            } else {
                Err(format!("{}: {what} has {got} elements, meta says {want}", dir.display()).into())
            }
        };
        check("edges", s.edges.len() as u64, meta.edges)?;
        check("offsets", s.offsets.len() as u64, meta.vertices + 1)?;
        check("targets", s.targets.len() as u64, meta.targets)?;
        check("degrees", s.degrees.len() as u64, meta.vertices)?;
        // The kernels index targets by these offsets: prove them in range before handing them out.
        let (mut prev, mut first) = (0u64, true);
        for chunk in s.offsets.chunks() {
            for &o in chunk {
                if (first && o != 0) || o < prev || o > meta.targets {
                    return Err(format!("{}: offsets are damaged (offset {o} after {prev})", dir.display()).into());
                }
                (prev, first) = (o, false);
            }
        }
        check("the last offset", prev, meta.targets)?;
        Ok(s)
    }

    /// The CSR, read in place from the mappings.
    pub fn csr(&self) -> DiskCsr<'_> {
        DiskCsr { offsets: Pieces::new(self.offsets.chunks()), targets: Pieces::new(self.targets.chunks()) }
    }
}
