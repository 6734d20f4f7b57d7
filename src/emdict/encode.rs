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
        match postcard::serialize_with_flavor(v, Stack { buf: &mut e.stack, len: 0 }) {
            Ok(len) => {
                e.len = len;
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

/// A postcard flavor writing into a fixed stack buffer. Postcard writes an
/// integer's varint into a buffer of its own byte by byte and then hands it
/// over as a slice; `Slice` copies it with `memcpy`, whose word-sized reads
/// of bytes just written stall on store forwarding (the stall dominated the
/// encoding of a `u64`). This flavor reads such short runs byte by byte.
struct Stack<'a> {
    buf: &'a mut [u8; STACK],
    len: usize,
}

impl postcard::ser_flavors::Flavor for Stack<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        let slot = self.buf.get_mut(self.len).ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let (at, n) = (self.len, data.len());
        if n <= 16 && at + 16 <= STACK {
            // Gather the bytes into a word (byte loads: forwarded from the
            // byte stores that wrote them), then store the word; bytes past
            // `n` are overwritten later or lie past the encoding's end.
            let mut word = 0u128;
            for (i, &b) in data.iter().enumerate() {
                word |= u128::from(b) << (8 * i);
            }
            self.buf[at..at + 16].copy_from_slice(&word.to_le_bytes());
        } else {
            let out = self.buf.get_mut(at..at + n).ok_or(postcard::Error::SerializeBufferFull)?;
            out.copy_from_slice(data);
        }
        self.len += n;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack flavor yields exactly postcard's bytes, for every run length
    /// up to past the stack buffer (which falls back to the heap).
    #[test]
    fn encodes_as_postcard_does() {
        for n in 0..100usize {
            let v: Vec<u8> = (0..n as u8).collect();
            let s: String = "é".repeat(n);
            let t = (n as u64 * 0x0123_4567_89ab, v.clone(), s.clone(), -(n as i64), Some(n as f64));
            assert_eq!(Encoded::new("v", &v).unwrap().bytes(), postcard::to_allocvec(&v).unwrap());
            assert_eq!(Encoded::new("s", &s).unwrap().bytes(), postcard::to_allocvec(&s).unwrap());
            assert_eq!(Encoded::new("t", &t).unwrap().bytes(), postcard::to_allocvec(&t).unwrap());
        }
        for x in [0u64, 1, 127, 128, 1 << 35, u64::MAX] {
            assert_eq!(Encoded::new("x", &x).unwrap().bytes(), postcard::to_allocvec(&x).unwrap());
        }
    }
}
