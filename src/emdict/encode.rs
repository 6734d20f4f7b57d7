//! Keys and values to bytes and back through the crate's codec (postcard's
//! format), into a stack buffer when small, with the errors naming the entry.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

use crate::codec::{self, StackBuf};

/// The postcard encoding of a value, on the stack when it is small.
pub(crate) struct Encoded {
    stack: StackBuf,
    heap: Vec<u8>,
    /// Whether the encoding is in `heap` (it did not fit on the stack).
    spilled: bool,
}

impl Encoded {
    /// Encodes `v`; `what` names it in the error ("key" or "value").
    #[inline]
    pub(crate) fn new<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Encoded> {
        let mut e = Encoded { stack: StackBuf::new(), heap: Vec::new(), spilled: false };
        match codec::to_stack(v, &mut e.stack) {
            Ok(()) => Ok(e),
            Err(postcard::Error::SerializeBufferFull) => Self::on_heap(what, v),
            Err(source) => Err(Error::Encode { what, source }),
        }
    }

    /// An empty encoding, to be filled by [`set`](Self::set).
    #[inline]
    pub(crate) fn empty() -> Encoded {
        Encoded { stack: StackBuf::new(), heap: Vec::new(), spilled: false }
    }

    /// Encodes `v` in place of what this held, as [`new`](Self::new) does:
    /// for loops that encode many values into the same buffers.
    #[inline]
    pub(crate) fn set<T: Serialize + ?Sized>(&mut self, what: &'static str, v: &T) -> Result<()> {
        self.stack.clear();
        self.spilled = false;
        match codec::to_stack(v, &mut self.stack) {
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
        let mut heap = Vec::new();
        codec::append(v, &mut heap).map_err(|source| Error::Encode { what, source })?;
        Ok(Encoded { stack: StackBuf::new(), heap, spilled: true })
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.spilled { &self.heap } else { self.stack.bytes() }
    }
}

/// Decodes a whole stored key or value; `what` names the entry in the error.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: impl FnOnce() -> String) -> Result<T> {
    match codec::from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(decode_error(path, what(), postcard::Error::DeserializeBadEncoding)),
        Err(source) => Err(decode_error(path, what(), source)),
    }
}

#[cold]
#[inline(never)]
fn decode_error(path: &Path, what: String, source: postcard::Error) -> Error {
    Error::Decode { path: path.to_path_buf(), what, source }
}
