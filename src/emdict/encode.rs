//! Keys and values to bytes and back: postcard, into a stack buffer when small.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

const STACK: usize = 64;

/// The postcard encoding of a value, on the stack when it is small.
pub(crate) struct Encoded {
    stack: [u8; STACK],
    len: usize,
    heap: Vec<u8>,
}

impl Encoded {
    /// Encodes `v`; `what` names it in the error ("key" or "value").
    #[inline]
    pub(crate) fn new<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Encoded> {
        let mut e = Encoded { stack: [0; STACK], len: 0, heap: Vec::new() };
        match postcard::to_slice(v, &mut e.stack) {
            Ok(bytes) => {
                e.len = bytes.len();
                Ok(e)
            }
            Err(postcard::Error::SerializeBufferFull) => Self::on_heap(what, v, e),
            Err(source) => Err(Error::Encode { what, source }),
        }
    }

    #[cold]
    #[inline(never)]
    fn on_heap<T: Serialize + ?Sized>(what: &'static str, v: &T, mut e: Encoded) -> Result<Encoded> {
        e.heap = postcard::to_allocvec(v).map_err(|source| Error::Encode { what, source })?;
        e.len = usize::MAX;
        Ok(e)
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == usize::MAX { &self.heap } else { &self.stack[..self.len] }
    }
}

/// Decodes a whole stored key or value; `what` names the entry in the error.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path, what: impl FnOnce() -> String) -> Result<T> {
    match postcard::take_from_bytes::<T>(bytes) {
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
