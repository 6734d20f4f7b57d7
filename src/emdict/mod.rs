//! `EmDict<K, V>`: a persistent extendible hash (Fagin et al., 1979) over the
//! storage core, and its iterators. The page formats are specified in
//! `docs/DESIGN.md` ("EmDict pages").
//!
//! # Examples
//!
//! ```
//! use emds::emdict::EmDict;
//!
//! let dir = std::env::temp_dir().join(format!("emds-doc-module-{}", std::process::id()));
//! let mut d: EmDict<String, Vec<u32>> = EmDict::open(&dir)?;
//! d.insert("primes".into(), vec![2, 3, 5, 7])?;
//! d.update("primes".into(), |v| v.map(|mut v| { v.push(11); v }))?;
//! assert_eq!(d.get("primes")?.map(|v| v.len()), Some(5));
//! d.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), emds::Error>(())
//! ```

mod batch;
mod bucket;
mod dict;
mod directory;
mod encode;
mod hash;
mod iter;
mod packed;
mod raw;

pub use dict::EmDict;
pub use iter::{Drain, Iter, Keys, Values};

#[cfg(test)]
mod checksum_tests;
#[cfg(test)]
mod tests;
