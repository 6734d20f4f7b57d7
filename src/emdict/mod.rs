//! `EmDict<K, V>`: a persistent extendible hash (Fagin et al., 1979) over the
//! storage core. The page formats are specified in `docs/DESIGN.md`
//! ("EmDict pages").

mod bucket;
mod dict;
mod directory;
mod encode;
mod iter;
mod raw;

pub use dict::EmDict;
pub use iter::{Drain, Iter, Keys, Values};

#[cfg(test)]
mod tests;
