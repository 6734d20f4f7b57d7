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
    /// The encoding when it did not fit on the stack (then it is longer than
    /// the stack buffer, so never empty); empty otherwise.
    heap: Vec<u8>,
}

impl Encoded {
    /// Encodes `v`; `what` names it in the error ("key" or "value").
    #[inline]
    pub(crate) fn new<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Encoded> {
        let mut e = Encoded::empty();
        e.set(what, v)?;
        Ok(e)
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
        self.stack.clear();
        self.heap.clear();
        match codec::to_stack(v, &mut self.stack) {
            Ok(()) => Ok(()),
            Err(e) if e.is_full() => self.on_heap(what, v),
            Err(e) => Err(Error::encode(what, e)),
        }
    }

    #[cold]
    #[inline(never)]
    fn on_heap<T: Serialize + ?Sized>(&mut self, what: &'static str, v: &T) -> Result<()> {
        codec::append(v, &mut self.heap).map_err(|e| {
            self.heap.clear();
            Error::encode(what, e)
        })
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.heap.is_empty() { self.stack.bytes() } else { &self.heap }
    }
}

/// Decodes a whole stored key or value; `what` names the entry in the error.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: impl FnOnce() -> String) -> Result<T> {
    codec::from_whole_bytes::<T>(bytes).map_err(|e| Error::decode(path, what(), e))
}
