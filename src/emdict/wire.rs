//! Postcard's wire format, fast, for the types keys and values usually are.
//!
//! A key is encoded at every lookup and a value decoded at every hit, so the
//! per-byte plumbing of `postcard` (a `Result` per pushed or popped byte, a
//! `memcpy` call per varint) is a large share of a `get`. Here the serde data
//! model's integers, booleans, strings, byte strings, options, newtypes and
//! units are written and read straight from a buffer; every other shape
//! (sequences, tuples, structs, maps, enums, floats, chars, 128-bit integers) is
//! handed to postcard's own serializer and deserializer over the same buffer,
//! whose nested fields then take postcard's path. The bytes are postcard's in
//! every case (the tests compare them), so stores are unchanged.

use std::cell::Cell;

use postcard::Error as PcError;
use serde::de::{Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

type PcResult<T> = std::result::Result<T, PcError>;

/// The bytes a small encoding is built in.
pub(crate) const STACK: usize = 64;

/// A fixed buffer that postcard can also write to (for the shapes it handles).
pub(crate) struct StackBuf {
    pub(crate) buf: [u8; STACK],
    pub(crate) len: usize,
}

/// The flavor postcard writes to a [`StackBuf`] through.
struct Out<'b>(&'b mut StackBuf);

impl postcard::ser_flavors::Flavor for Out<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, b: u8) -> PcResult<()> {
        let slot = self.0.buf.get_mut(self.0.len).ok_or(PcError::SerializeBufferFull)?;
        *slot = b;
        self.0.len += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> PcResult<()> {
        let end = self.0.len + data.len();
        self.0.buf.get_mut(self.0.len..end).ok_or(PcError::SerializeBufferFull)?.copy_from_slice(data);
        self.0.len = end;
        Ok(())
    }

    fn finalize(self) -> PcResult<()> {
        Ok(())
    }
}

impl StackBuf {
    /// An empty buffer.
    #[inline]
    pub(crate) fn new() -> StackBuf {
        StackBuf { buf: [0; STACK], len: 0 }
    }

    /// Appends the LEB128 varint of `v`, as postcard writes every unsigned
    /// integer (and, zigzagged, every signed one).
    #[inline]
    fn varint(&mut self, v: u64) -> PcResult<()> {
        // Room for ten bytes is asked even when fewer are written: a buffer
        // nearly full falls back to the heap, which gives the same bytes.
        let out: &mut [u8; 10] =
            self.buf.get_mut(self.len..self.len + 10).ok_or(PcError::SerializeBufferFull)?.try_into().expect("10");
        // Seven bits a byte without a loop: spread the low 56 bits over eight
        // bytes, then set the continuation bit of every byte but the last.
        let mut x = v & ((1 << 56) - 1);
        x = (x & 0x0fff_ffff) | ((x & 0x00ff_ffff_f000_0000) << 4);
        x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x0fff_c000_0fff_c000) << 2);
        x = (x & 0x007f_007f_007f_007f) | ((x & 0x3f80_3f80_3f80_3f80) << 1);
        let n = (64 - (v | 1).leading_zeros() as usize).div_ceil(7);
        let more = if n >= 9 { u64::MAX } else { (1u64 << (8 * (n - 1))) - 1 };
        out[..8].copy_from_slice(&(x | (0x8080_8080_8080_8080 & more)).to_le_bytes());
        out[8] = (v >> 56) as u8 & 0x7f | if n == 10 { 0x80 } else { 0 };
        out[9] = (v >> 63) as u8;
        self.len += n;
        Ok(())
    }
}

/// Encodes `v` as postcard does into `buf`; `Err(SerializeBufferFull)` if it
/// does not fit.
#[inline]
pub(crate) fn to_stack<T: Serialize + ?Sized>(v: &T, buf: &mut StackBuf) -> PcResult<()> {
    let mut ser = postcard::Serializer { output: Out(buf) };
    v.serialize(Fast(&mut ser))
}

/// A serde serializer writing postcard's bytes, fast for the simple shapes.
struct Fast<'a, 'b>(&'a mut postcard::Serializer<Out<'b>>);

type Pc<'a, 'b> = &'a mut postcard::Serializer<Out<'b>>;

impl<'a, 'b> Serializer for Fast<'a, 'b> {
    type Ok = ();
    type Error = PcError;
    type SerializeSeq = <Pc<'a, 'b> as Serializer>::SerializeSeq;
    type SerializeTuple = <Pc<'a, 'b> as Serializer>::SerializeTuple;
    type SerializeTupleStruct = <Pc<'a, 'b> as Serializer>::SerializeTupleStruct;
    type SerializeTupleVariant = <Pc<'a, 'b> as Serializer>::SerializeTupleVariant;
    type SerializeMap = <Pc<'a, 'b> as Serializer>::SerializeMap;
    type SerializeStruct = <Pc<'a, 'b> as Serializer>::SerializeStruct;
    type SerializeStructVariant = <Pc<'a, 'b> as Serializer>::SerializeStructVariant;

    #[inline]
    fn serialize_bool(self, v: bool) -> PcResult<()> {
        self.serialize_u8(u8::from(v))
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> PcResult<()> {
        self.serialize_u8(v as u8)
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> PcResult<()> {
        self.serialize_i64(i64::from(v))
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> PcResult<()> {
        self.serialize_i64(i64::from(v))
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> PcResult<()> {
        // Zigzag: the same varint whatever the width it came from.
        self.serialize_u64(((v << 1) ^ (v >> 63)) as u64)
    }
    fn serialize_i128(self, v: i128) -> PcResult<()> {
        self.0.serialize_i128(v)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> PcResult<()> {
        postcard::ser_flavors::Flavor::try_push(&mut self.0.output, v)
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> PcResult<()> {
        self.0.output.0.varint(u64::from(v))
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> PcResult<()> {
        self.0.output.0.varint(u64::from(v))
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> PcResult<()> {
        self.0.output.0.varint(v)
    }
    fn serialize_u128(self, v: u128) -> PcResult<()> {
        self.0.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> PcResult<()> {
        self.0.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> PcResult<()> {
        self.0.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> PcResult<()> {
        self.0.serialize_char(v)
    }
    #[inline]
    fn serialize_str(self, v: &str) -> PcResult<()> {
        self.serialize_bytes(v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> PcResult<()> {
        self.0.output.0.varint(v.len() as u64)?;
        postcard::ser_flavors::Flavor::try_extend(&mut self.0.output, v)
    }
    #[inline]
    fn serialize_none(self) -> PcResult<()> {
        self.serialize_u8(0)
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> PcResult<()> {
        postcard::ser_flavors::Flavor::try_push(&mut self.0.output, 1)?;
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> PcResult<()> {
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> PcResult<()> {
        Ok(())
    }
    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, index: u32, _variant: &'static str) -> PcResult<()> {
        self.serialize_u32(index)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> PcResult<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> PcResult<()> {
        self.0.serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> PcResult<Self::SerializeSeq> {
        self.0.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> PcResult<Self::SerializeTuple> {
        self.0.serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> PcResult<Self::SerializeTupleStruct> {
        self.0.serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> PcResult<Self::SerializeTupleVariant> {
        self.0.serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> PcResult<Self::SerializeMap> {
        self.0.serialize_map(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> PcResult<Self::SerializeStruct> {
        self.0.serialize_struct(name, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> PcResult<Self::SerializeStructVariant> {
        self.0.serialize_struct_variant(name, index, variant, len)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> PcResult<()> {
        self.0.collect_str(value)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Bytes being decoded, shared between [`FastDe`] and the postcard
/// deserializer it hands the other shapes to.
pub(crate) struct Cursor<'de> {
    bytes: &'de [u8],
    pos: Cell<usize>,
}

impl<'de> Cursor<'de> {
    #[inline]
    fn take(&self, n: usize) -> PcResult<&'de [u8]> {
        let pos = self.pos.get();
        let out = self.bytes.get(pos..pos.wrapping_add(n)).ok_or(PcError::DeserializeUnexpectedEnd)?;
        self.pos.set(pos + n);
        Ok(out)
    }

    #[inline]
    fn byte(&self) -> PcResult<u8> {
        let pos = self.pos.get();
        let b = *self.bytes.get(pos).ok_or(PcError::DeserializeUnexpectedEnd)?;
        self.pos.set(pos + 1);
        Ok(b)
    }

    /// A varint of at most `max` bytes whose value fits `bits` bits, as postcard reads it.
    #[inline]
    fn varint(&self, max: usize, bits: u32) -> PcResult<u64> {
        let pos = self.pos.get();
        let rest = self.bytes.get(pos..).unwrap_or_default();
        // Up to eight bytes at once: the first byte without its high bit ends it.
        let (w, avail) = match rest.get(..8) {
            Some(first) => (u64::from_le_bytes(first.try_into().expect("8 bytes")), 8),
            None => (short_word(rest), rest.len()),
        };
        let stops = !w & 0x8080_8080_8080_8080 & if avail == 8 { u64::MAX } else { (1 << (8 * avail)) - 1 };
        if max < 10 || (stops == 0 && avail < 8) {
            // Narrow integers are rare as keys; postcard's checks, byte by byte.
            return self.varint_slow(max, bits);
        }
        let (n, x) = if stops != 0 {
            let n = (stops.trailing_zeros() / 8 + 1) as usize;
            (n, gather(if n == 8 { w } else { w & ((1 << (8 * n)) - 1) }))
        } else {
            // Nine or ten bytes (a u64 of 2^56 or more): the tenth holds one bit.
            match (rest.get(8), rest.get(9)) {
                (Some(&b8), _) if b8 < 0x80 => (9, gather(w) | u64::from(b8) << 56),
                (Some(&b8), Some(&b9)) if b9 <= 1 => (10, gather(w) | u64::from(b8 & 0x7f) << 56 | u64::from(b9) << 63),
                _ => return self.varint_slow(max, bits),
            }
        };
        self.pos.set(pos + n);
        Ok(x)
    }

    /// [`varint`](Self::varint) a byte at a time: near the end of the input,
    /// for narrow integers, and for nine- and ten-byte `u64`s.
    #[cold]
    #[inline(never)]
    fn varint_slow(&self, max: usize, bits: u32) -> PcResult<u64> {
        let pos = self.pos.get();
        let rest = self.bytes.get(pos..).unwrap_or_default();
        let mut out = 0u64;
        for (i, &b) in rest.iter().enumerate().take(max) {
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // The last byte may only hold the bits that are left.
                if i == max - 1 && u32::from(b) >> (bits - 7 * (max as u32 - 1)) != 0 {
                    return Err(PcError::DeserializeBadVarint);
                }
                self.pos.set(pos + i + 1);
                return Ok(out);
            }
        }
        Err(if rest.len() < max { PcError::DeserializeUnexpectedEnd } else { PcError::DeserializeBadVarint })
    }

    #[inline]
    fn len(&self) -> PcResult<usize> {
        Ok(self.varint(10, 64)? as usize)
    }

    /// Whether every byte was consumed.
    #[inline]
    pub(crate) fn done(&self) -> bool {
        self.pos.get() == self.bytes.len()
    }
}

/// Postcard's deserializer reads through this flavor, advancing the shared cursor.
struct Shared<'de>(&'de Cursor<'de>);

impl<'de> postcard::de_flavors::Flavor<'de> for Shared<'de> {
    type Remainder = ();
    type Source = ();

    #[inline]
    fn pop(&mut self) -> PcResult<u8> {
        self.0.byte()
    }

    #[inline]
    fn try_take_n(&mut self, ct: usize) -> PcResult<&'de [u8]> {
        self.0.take(ct)
    }

    fn finalize(self) -> PcResult<()> {
        Ok(())
    }
}

/// Decodes a `T` from the start of `bytes`; returns it and whether all of `bytes` was used.
#[inline]
pub(crate) fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> PcResult<(T, bool)> {
    let cursor = Cursor { bytes, pos: Cell::new(0) };
    let v = T::deserialize(FastDe(&cursor))?;
    Ok((v, cursor.done()))
}

/// A serde deserializer for postcard's bytes, fast for the simple shapes.
struct FastDe<'de>(&'de Cursor<'de>);

impl<'de> FastDe<'de> {
    fn postcard(&self) -> postcard::Deserializer<'de, Shared<'de>> {
        postcard::Deserializer::from_flavor(Shared(self.0))
    }
}

/// Hands a deserialize call to postcard.
macro_rules! to_postcard {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> PcResult<V::Value> {
            (&mut self.postcard()).$name($($arg,)* visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for FastDe<'de> {
    type Error = PcError;

    to_postcard! {
        deserialize_any();
        deserialize_i128();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        match self.0.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(PcError::DeserializeBadBool),
        }
    }
    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_i8(self.0.byte()? as i8)
    }
    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_i16(unzigzag(self.0.varint(3, 16)?) as i16)
    }
    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_i32(unzigzag(self.0.varint(5, 32)?) as i32)
    }
    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_i64(unzigzag(self.0.varint(10, 64)?))
    }
    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_u8(self.0.byte()?)
    }
    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_u16(self.0.varint(3, 16)? as u16)
    }
    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_u32(self.0.varint(5, 32)? as u32)
    }
    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_u64(self.0.varint(10, 64)?)
    }
    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        let n = self.0.len()?;
        let s = std::str::from_utf8(self.0.take(n)?).map_err(|_| PcError::DeserializeBadUtf8)?;
        visitor.visit_borrowed_str(s)
    }
    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        self.deserialize_str(visitor)
    }
    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        let n = self.0.len()?;
        visitor.visit_borrowed_bytes(self.0.take(n)?)
    }
    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        self.deserialize_bytes(visitor)
    }
    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        match self.0.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(PcError::DeserializeBadOption),
        }
    }
    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> PcResult<V::Value> {
        visitor.visit_unit()
    }
    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> PcResult<V::Value> {
        visitor.visit_unit()
    }
    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> PcResult<V::Value> {
        visitor.visit_newtype_struct(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The bytes of `b` (fewer than eight) as a little-endian word, zero above
/// them: two overlapping loads instead of a loop or a `memcpy` call.
#[inline]
fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    let at = |i: usize, k: usize| b[i..i + k].iter().rev().fold(0u64, |w, &x| w << 8 | u64::from(x));
    match n {
        4..=7 => at(0, 4) | at(n - 4, 4) << (8 * (n - 4)),
        2..=3 => at(0, 2) | at(n - 2, 2) << (8 * (n - 2)),
        1 => u64::from(b[0]),
        _ => 0,
    }
}

/// The seven-bit groups of eight varint bytes, gathered into 56 bits: pairs,
/// then quads, then all eight.
#[inline]
fn gather(w: u64) -> u64 {
    let mut x = w & 0x7f7f_7f7f_7f7f_7f7f;
    x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Point {
        x: i32,
        name: String,
        tags: Vec<u8>,
        opt: Option<u64>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Shape {
        Unit,
        New(u16),
        Tuple(i8, bool),
        Named { a: f64, c: char },
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Wrap(u64);

    /// Encodes as postcard does and decodes back, on the stack where it fits.
    fn same<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: T) {
        let want = postcard::to_allocvec(&v).unwrap();
        let mut got = StackBuf::new();
        match to_stack(&v, &mut got) {
            Ok(()) => assert_eq!(&got.buf[..got.len], &want[..], "{v:?}"),
            Err(e) => assert!(matches!(e, PcError::SerializeBufferFull) && want.len() > STACK - 10, "{v:?}: {e:?}"),
        }
        let (back, all) = from_bytes::<T>(&want).unwrap();
        assert_eq!((back, all), (v, true));
    }

    #[test]
    fn integers_match_postcard_at_every_width_edge() {
        for shift in 0..64 {
            for d in [-1i128, 0, 1] {
                let u = ((1u128 << shift) as i128 + d).clamp(0, u64::MAX as i128) as u64;
                same(u);
                same(u as u32);
                same(u as u16);
                same(u as u8);
                same(u as i64);
                same((u as i64).wrapping_neg());
                same(u as i32);
                same(u as i16);
                same(u as i8);
                same(u as usize);
                same(u as isize);
            }
        }
        same(u64::MAX);
        same(i64::MIN);
        same(i32::MIN);
        same(i16::MIN);
        same(u128::MAX);
        same(i128::MIN);
    }

    #[test]
    fn varints_decode_whatever_follows_them() {
        // The word-at-a-time decoder reads past a short varint: what follows
        // (here bytes with and without the continuation bit) must not matter.
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) | 0x5555_5555_5555_5555 >> (63 - shift)] {
                let enc = postcard::to_allocvec(&v).unwrap();
                for tail in 0..12 {
                    for fill in [0x00u8, 0x7f, 0x80, 0xff] {
                        let mut bytes = enc.clone();
                        bytes.extend(std::iter::repeat_n(fill, tail));
                        assert_eq!(from_bytes::<u64>(&bytes).unwrap(), (v, tail == 0), "{v:#x} + {tail} × {fill:#x}");
                    }
                }
            }
        }
        // A ten-byte varint whose last byte holds more than one bit is bad, as in postcard.
        let mut bad = vec![0xffu8; 9];
        bad.push(0x02);
        assert!(from_bytes::<u64>(&bad).is_err() && postcard::from_bytes::<u64>(&bad).is_err());
    }

    #[test]
    fn other_shapes_match_postcard() {
        same(true);
        same(false);
        same(());
        same(String::new());
        same("héllo".to_string());
        same("x".repeat(70));
        same(vec![1u8, 2, 3]);
        same(Some(5u32));
        same(None::<String>);
        same(Some(Some(-3i64)));
        same(Wrap(1 << 40));
        same((1u8, -2i16, 3u32, "t".to_string()));
        same(Point { x: -7, name: "p".into(), tags: vec![9; 20], opt: Some(u64::MAX) });
        same(vec![Shape::Unit, Shape::New(300), Shape::Tuple(-1, true), Shape::Named { a: 1.5, c: 'é' }]);
        same(Shape::New(7));
        same(BTreeMap::from([(1u8, "a".to_string()), (2, "b".to_string())]));
        same(1.25f32);
        same(-0.0f64);
        same('z');
        same([3u64; 4]);
    }

    #[test]
    fn bad_bytes_are_errors_as_in_postcard() {
        // An 11-byte varint, a too-large last byte, a short input, a bad bool and bad UTF-8.
        for (bytes, what) in [
            (&[0xff; 11][..], "u64"),
            (&[0xff, 0xff, 0xff, 0xff, 0x10], "u32"),
            (&[0x80], "u64"),
            (&[2], "bool"),
            (&[2, 0xc3, 0x28], "str"),
        ] {
            let ours = match what {
                "u64" => from_bytes::<u64>(bytes).is_err(),
                "u32" => from_bytes::<u32>(bytes).is_err(),
                "bool" => from_bytes::<bool>(bytes).is_err(),
                _ => from_bytes::<String>(bytes).is_err(),
            };
            let theirs = match what {
                "u64" => postcard::from_bytes::<u64>(bytes).is_err(),
                "u32" => postcard::from_bytes::<u32>(bytes).is_err(),
                "bool" => postcard::from_bytes::<bool>(bytes).is_err(),
                _ => postcard::from_bytes::<String>(bytes).is_err(),
            };
            assert!(ours && theirs, "{what} {bytes:?}");
        }
        // Trailing bytes are reported, not consumed.
        assert_eq!(from_bytes::<u8>(&[1, 2]).unwrap(), (1, false));
    }
}
