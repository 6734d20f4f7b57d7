//! The postcard encoding, written straight into a `Vec<u8>` (EmList's append
//! buffer) or a fixed stack buffer (EmDict's keys and values): the bytes are
//! exactly those of `postcard::to_allocvec`, but a varint costs one fixed
//! 16-byte copy and no call, where postcard's generic flavor copies each
//! varint with a variable-length `memcpy` after a byte-by-byte loop, and pays
//! a `Result` per pushed byte.

use serde::Serialize;
use serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple};
use serde::ser::{SerializeTupleStruct, SerializeTupleVariant};

use super::error::{CodecError, Result};

use super::MAX_DEPTH;

/// Appends the postcard encoding of `value` to `out`. On error `out` may hold
/// part of the encoding after its previous end: the caller truncates it.
#[inline]
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut Out(out, 0))
}

/// Encodes `value` as postcard does after what `buf` holds;
/// `Err(`[`CodecError::FULL`]`)` if it does not fit in [`STACK`] bytes.
#[inline]
pub(crate) fn to_stack<T: Serialize + ?Sized>(value: &T, buf: &mut StackBuf) -> Result<()> {
    value.serialize(&mut Out(buf, 0))
}

/// The bytes a small encoding is built in: enough for a 64-byte key or
/// value with its length (a longer one costs a heap allocation per lookup).
pub(crate) const STACK: usize = 128;

/// A fixed buffer of [`STACK`] bytes (small: encodings are returned and
/// moved by value).
pub(crate) struct StackBuf {
    buf: [u8; STACK],
    len: usize,
}

impl StackBuf {
    /// An empty buffer.
    #[inline]
    pub(crate) fn new() -> StackBuf {
        StackBuf { buf: [0; STACK], len: 0 }
    }

    /// Empties the buffer.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The bytes written.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Where the encoder writes: a growing `Vec` or a bounded [`StackBuf`].
trait Sink {
    fn push(&mut self, b: u8) -> Result<()>;
    fn extend(&mut self, b: &[u8]) -> Result<()>;
    /// Appends the first `n <= 16` bytes of `block`.
    fn block(&mut self, block: [u8; 16], n: usize) -> Result<()>;
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn push(&mut self, b: u8) -> Result<()> {
        Vec::push(self, b);
        Ok(())
    }

    #[inline(always)]
    fn extend(&mut self, b: &[u8]) -> Result<()> {
        self.extend_from_slice(b);
        Ok(())
    }

    /// One fixed 16-byte store (no byte-wise stores that a wide load would
    /// have to wait for), then the `Vec` cut to the bytes wanted.
    #[inline(always)]
    fn block(&mut self, block: [u8; 16], n: usize) -> Result<()> {
        let at = self.len();
        self.extend_from_slice(&block);
        self.truncate(at + n);
        Ok(())
    }
}

impl Sink for StackBuf {
    #[inline(always)]
    fn push(&mut self, b: u8) -> Result<()> {
        if self.len >= STACK {
            return Err(CodecError::FULL);
        }
        self.buf[self.len] = b;
        self.len += 1;
        Ok(())
    }

    #[inline(always)]
    fn extend(&mut self, b: &[u8]) -> Result<()> {
        let end = self.len + b.len();
        if end > STACK {
            return Err(CodecError::FULL);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }

    #[inline(always)]
    fn block(&mut self, block: [u8; 16], n: usize) -> Result<()> {
        match self.buf.get_mut(self.len..).and_then(|b| b.first_chunk_mut::<16>()) {
            Some(dst) => {
                *dst = block;
                self.len += n;
                Ok(())
            }
            // Fewer than 16 bytes left: only the `n` wanted, if they fit.
            None => self.extend(block.get(..n).ok_or(CodecError::FULL)?),
        }
    }
}

/// Appends `x` as a LEB128 varint (postcard's encoding of every unsigned
/// integer wider than a byte, and of lengths and variant indices).
#[inline(always)]
fn varint<S: Sink>(out: &mut S, x: u64) -> Result<()> {
    if x < 0x80 { out.push(x as u8) } else { varint_long(out, x) }
}

/// [`varint`] of `x >= 0x80`: the ten 7-bit groups are spread over the bytes
/// of one register pair with their continuation bits and written as one
/// 16-byte block, of which the value needs the first `n`.
#[inline]
fn varint_long<S: Sink>(out: &mut S, x: u64) -> Result<()> {
    let n = (64 - x.leading_zeros()).div_ceil(7) as usize;
    out.block(spread(x, n).to_le_bytes(), n)
}

/// The LEB128 varint of `x` (any value) as the first `n` bytes of a
/// 16-byte block, and `n`.
#[inline]
pub(crate) fn varint_block(x: u64) -> ([u8; 16], usize) {
    let (bits, n) = varint_bits(x);
    (bits.to_le_bytes(), n)
}

/// The LEB128 varint of `x` as the low `n` bytes of a little-endian
/// `u128` (zero above them), and `n`: for computing on the bytes without
/// storing them.
#[inline]
pub(crate) fn varint_bits(x: u64) -> (u128, usize) {
    let n = (64 - (x | 1).leading_zeros()).div_ceil(7) as usize;
    (spread(x, n), n)
}

/// The `n`-byte varint of `x` in a 16-byte block: the low 56 bits as four
/// 14-bit groups in 16-bit lanes, then each lane's two 7-bit groups in its
/// two bytes; the top 8 bits in the two bytes after them; then the
/// continuation bits.
#[inline(always)]
fn spread(x: u64, n: usize) -> u128 {
    let lo = seven_bit_groups(x);
    let hi = ((x >> 56) & 0x7f) | ((x >> 63) << 8);
    let groups = u128::from(lo) | (u128::from(hi) << 64);
    groups | MORE[n.min(10)]
}

/// The low 56 bits of `x` as eight 7-bit groups, one in each byte's low
/// bits (the first eight bytes of its varint without continuation bits).
#[inline(always)]
pub(crate) fn seven_bit_groups(x: u64) -> u64 {
    let m = 0x3fff;
    let w = (x & m) | ((x & (m << 14)) << 2) | ((x & (m << 28)) << 4) | ((x & (m << 42)) << 6);
    (w & 0x007f_007f_007f_007f) | ((w & 0x3f80_3f80_3f80_3f80) << 1)
}

/// `MORE[n]`: the high bit of each of the first `n - 1` bytes, the
/// continuation bits of an `n`-byte varint (a table: a variable shift of a
/// `u128` costs more than the load).
const MORE: [u128; 11] = {
    let mut t = [0u128; 11];
    let mut n = 2;
    while n <= 10 {
        t[n] = t[n - 1] | (0x80 << (8 * (n - 2)));
        n += 1;
    }
    t
};

/// Appends `x` as a LEB128 varint of up to 19 bytes.
fn varint_u128<S: Sink>(out: &mut S, mut x: u128) -> Result<()> {
    while x >= 0x80 {
        out.push((x as u8) | 0x80)?;
        x >>= 7;
    }
    out.push(x as u8)
}

/// The serializer: postcard's format, into a [`Sink`]; the second field is
/// how deep in nested values the next one is.
struct Out<'a, S>(&'a mut S, u32);

impl<S: Sink> Out<'_, S> {
    /// Enters a nested value: an error past [`MAX_DEPTH`], the depth the
    /// decoder accepts, so that nothing is stored that could not be read.
    #[inline(always)]
    fn enter(&mut self) -> Result<()> {
        if self.1 >= MAX_DEPTH {
            return Err(CodecError::too_deep(postcard::Error::SerdeSerCustom));
        }
        self.1 += 1;
        Ok(())
    }

    /// Encodes `value` one level deeper.
    #[inline(always)]
    fn nested<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.enter()?;
        value.serialize(&mut *self)?;
        self.1 -= 1;
        Ok(())
    }
}

impl<'a, 'b, S: Sink> ser::Serializer for &'b mut Out<'a, S> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.0.push(u8::from(v))
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.0.push(v as u8)
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 15)) as u16 as u64)
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 31)) as u32 as u64)
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 63)) as u64)
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        varint_u128(self.0, ((v << 1) ^ (v >> 127)) as u128)
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.0.push(v)
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        varint(self.0, v.into())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        varint(self.0, v.into())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        varint(self.0, v)
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        varint_u128(self.0, v)
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.0.extend(&v.to_bits().to_le_bytes())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.0.extend(&v.to_bits().to_le_bytes())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        varint(self.0, v.len() as u64)?;
        self.0.extend(v)
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.0.push(0)
    }

    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        self.0.push(1)?;
        self.nested(value)
    }

    #[inline]
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, index: u32, _variant: &'static str) -> Result<()> {
        // Any enum is a level to the decoder, a unit variant too.
        self.enter()?;
        self.1 -= 1;
        varint(self.0, index.into())
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<()> {
        self.nested(value)
    }

    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<()> {
        varint(self.0, index.into())?;
        self.nested(value)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        varint(self.0, len.ok_or(postcard::Error::SerializeSeqLengthUnknown)? as u64)?;
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        varint(self.0, index.into())?;
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        varint(self.0, len.ok_or(postcard::Error::SerializeSeqLengthUnknown)? as u64)?;
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        varint(self.0, index.into())?;
        self.enter()?;
        Ok(self)
    }

    /// As postcard: the length of the text, then the text.
    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result<()> {
        use std::fmt::Write;
        let mut text = String::new();
        write!(text, "{value}").map_err(|_| postcard::Error::CollectStrError)?;
        self.serialize_str(&text)
    }
}

/// Compound values: their parts, back to back, with nothing around them.
macro_rules! parts {
    ($($trait:ident :: $method:ident ($($key:ident: $kty:ty)?)),* $(,)?) => {$(
        impl<S: Sink> $trait for &mut Out<'_, S> {
            type Ok = ();
            type Error = CodecError;

            /// The part; a failure in a struct's field names the field.
            #[inline(always)]
            fn $method<T: ?Sized + Serialize>(&mut self, $($key: $kty,)? value: &T) -> Result<()> {
                let r = value.serialize(&mut **self);
                $(let r = r.map_err(|e| e.in_field($key));)?
                r
            }

            /// Leaves the nested value.
            #[inline]
            fn end(self) -> Result<()> {
                self.1 -= 1;
                Ok(())
            }
        }
    )*};
}

parts!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(key: &'static str),
    SerializeStructVariant::serialize_field(key: &'static str),
);

impl<S: Sink> SerializeMap for &mut Out<'_, S> {
    type Ok = ();
    type Error = CodecError;

    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)
    }

    /// Leaves the nested value.
    #[inline]
    fn end(self) -> Result<()> {
        self.1 -= 1;
        Ok(())
    }
}
