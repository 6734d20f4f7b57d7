//! Persistent sequences: [`EmList<T>`](EmList) for any serde type and
//! [`EmVec<T>`](EmVec) for plain-old-data, read with zero copies. Both keep
//! their elements in regions of page-aligned chunks with copy-on-write by
//! block; the format is specified in `docs/DESIGN.md` ("EmList and EmVec pages").

mod iter;
mod list;
mod region;
mod seq;
mod tail;
mod vec;

#[cfg(test)]
mod fault_tests;

pub use iter::{Chunks, Iter, VecIter};
pub use list::EmList;
pub use vec::EmVec;
