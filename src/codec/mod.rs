//! The crate's one codec: postcard's wire format, byte for byte (stores hold
//! these bytes and `postcard` reads them), written and read without postcard's
//! per-byte plumbing. EmDict encodes keys and values with it and decodes them;
//! EmList encodes elements straight into its append buffer and decodes them.
//! The tests compare every shape and varint boundary with `postcard`.

mod decode;
mod encode;

pub(crate) use decode::{from_bytes, gather};
pub(crate) use encode::{StackBuf, append, to_stack, varint_block};

#[cfg(test)]
mod tests;
