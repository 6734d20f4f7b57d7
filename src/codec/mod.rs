//! The crate's one codec: postcard's wire format, byte for byte (stores hold
//! these bytes and `postcard` reads them), written and read without postcard's
//! per-byte plumbing. EmDict encodes keys and values with it and decodes them;
//! EmList encodes elements straight into its append buffer and decodes them.
//! The tests compare every shape and varint boundary with `postcard`.
//!
//! One deliberate difference: values nested deeper than [`MAX_DEPTH`] (an
//! option, newtype, tuple, struct, sequence, map or enum inside another, and
//! so on) are an error both ways, where postcard recurses until the stack
//! overflows; so bytes, damaged or not, cannot abort the process through a
//! recursive type, and nothing is stored that could not be read back.
//!
//! Its error ([`CodecError`]) is postcard's error of the same kind plus what
//! postcard's drops: the message of the value's `Serialize` or `Deserialize`
//! and the struct field or element it happened in.

mod decode;
mod encode;
mod error;

/// How deeply values may nest (each option, newtype, tuple, struct, sequence,
/// map and enum is one level).
pub(crate) const MAX_DEPTH: u32 = 512;

pub(crate) use decode::{from_bytes, from_whole_bytes, gather};
pub(crate) use encode::{StackBuf, append, seven_bit_groups, to_stack, varint_bits, varint_block};
pub(crate) use error::{CodecError, left_over};

#[cfg(test)]
mod tests;
