#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, missing_docs)]
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

mod alloc;
mod codec;
pub mod emdict;
pub mod emlist;
mod error;
mod options;
#[cfg(test)]
mod test_util;

pub use alloc::CheckReport;
pub use emdict::EmDict;
pub use emlist::{EmList, EmVec};
pub use error::{Error, Result};
pub use options::OpenOptions;
