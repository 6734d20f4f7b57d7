//! The storage core: mapped segment files, a page and slab allocator over them,
//! and the crash-consistent commit. Everything above it (`EmDict`, `EmList`,
//! `EmVec`) is a thin layer of page formats over [`Store`](store::Store).

mod meta;
mod os;
mod pages;
mod slab;
mod state;
mod store;

pub(crate) use meta::{Kind, ROOT_SIZE};
pub(crate) use os::{match_byte16, match_tag_empty16, prefetch};
pub(crate) use pages::{MAX_SEGMENT_SIZE, PAGE_SIZE};
pub use store::CheckReport;
pub(crate) use store::Store;
