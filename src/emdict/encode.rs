//! Keys and values to bytes and back: postcard, into a stack buffer when small.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

use super::wire::{self, STACK, StackBuf};

/// The postcard encoding of a value, on the stack when it is small.
pub(crate) struct Encoded {
    stack: StackBuf,
    heap: Vec<u8>,
}

impl Encoded {
    /// Encodes `v`; `what` names it in the error ("key" or "value").
    #[inline]
    pub(crate) fn new<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Encoded> {
        let mut e = Encoded { stack: StackBuf::new(), heap: Vec::new() };
        match wire::to_stack(v, &mut e.stack) {
            Ok(()) => Ok(e),
            Err(postcard::Error::SerializeBufferFull) => Self::on_heap(what, v),
            Err(source) => Err(Error::Encode { what, source }),
        }
    }

    /// An empty encoding, to be filled by [`set`](Self::set).
    #[inline]
    pub(crate) fn empty() -> Encoded {
        Encoded { stack: StackBuf::new(), heap: Vec::new() }
    }

    /// Encodes `v` in place of what this held, as [`new`](Self::new) does:
    /// for loops that encode many values into the same buffers.
    #[inline]
    pub(crate) fn set<T: Serialize + ?Sized>(&mut self, what: &'static str, v: &T) -> Result<()> {
        self.stack.len = 0;
        match wire::to_stack(v, &mut self.stack) {
            Ok(()) => Ok(()),
            Err(postcard::Error::SerializeBufferFull) => {
                *self = Self::on_heap(what, v)?;
                Ok(())
            }
            Err(source) => Err(Error::Encode { what, source }),
        }
    }

    #[cold]
    #[inline(never)]
    fn on_heap<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Encoded> {
        let heap = postcard::to_allocvec(v).map_err(|source| Error::Encode { what, source })?;
        Ok(Encoded { stack: StackBuf { buf: [0; STACK], len: usize::MAX }, heap })
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.stack.len == usize::MAX { &self.heap } else { &self.stack.buf[..self.stack.len] }
    }
}

/// Decodes a whole stored key or value; `what` names the entry in the error.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: impl FnOnce() -> String) -> Result<T> {
    match wire::from_bytes::<T>(bytes) {
        Ok((v, true)) => Ok(v),
        Ok(_) => Err(decode_error(path, what(), postcard::Error::DeserializeBadEncoding)),
        Err(source) => Err(decode_error(path, what(), source)),
    }
}

#[cold]
#[inline(never)]
fn decode_error(path: &Path, what: String, source: postcard::Error) -> Error {
    Error::Decode { path: path.to_path_buf(), what, source }
}
