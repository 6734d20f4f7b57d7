//! Packed numbers straight to and from the caller's types, for the types
//! whose postcard encoding is one varint: the unsigned and (zigzagged)
//! signed integers, `bool`, and newtypes of them. [`decode`] turns a packed
//! slot's number into a value: the number came from a canonical varint
//! (`docs/DESIGN.md`, "EmDict pages"), so it yields exactly what postcard
//! would read from those bytes, or declines: then the caller decodes the
//! re-encoded bytes the general way, which also names any error. [`encode`]
//! is the other way: the number whose canonical varint is exactly the bytes
//! the codec would write for a key, so a lookup of such a key skips the
//! serializer and its buffer; it declines every other type.

use std::fmt;

use serde::Serialize;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Impossible};

/// The number of a packed slot, as a serde deserializer.
struct Packed(u64);

/// "Not decoded here": the caller takes the general path. Also what a
/// type's own error becomes here (its `custom` drops the message): the
/// general path runs the type again, on the bytes, and its error keeps the
/// message for the user (`codec::CodecError`).
#[derive(Debug)]
struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a one-varint type")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

impl ser::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

/// `v` decoded as a `T` if `T` reads one varint (see the module's text),
/// exactly as postcard would from `v`'s canonical varint; `None` otherwise.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(v: u64) -> Option<T> {
    T::deserialize(Packed(v)).ok()
}

/// The number whose canonical varint is exactly the codec's encoding of
/// `v`, if that encoding is one varint (see the module's text); `None` for
/// every other value and type (which are then encoded the general way).
#[inline]
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Option<u64> {
    v.serialize(Number(0)).ok()
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl<'de> de::Deserializer<'de> for Packed {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.0 {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(Declined),
        }
    }

    /// postcard writes a `u8` or `i8` as one raw byte: one varint byte is one below 128.
    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        if self.0 < 0x80 { visitor.visit_u8(self.0 as u8) } else { Err(Declined) }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        if self.0 < 0x80 { visitor.visit_i8(self.0 as i8) } else { Err(Declined) }
    }

    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_u16(u16::try_from(self.0).map_err(|_| Declined)?)
    }

    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_u32(u32::try_from(self.0).map_err(|_| Declined)?)
    }

    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_u64(self.0)
    }

    #[inline]
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_u128(u128::from(self.0))
    }

    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let v = u16::try_from(self.0).map_err(|_| Declined)?;
        visitor.visit_i16(unzigzag(u64::from(v)) as i16)
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let v = u32::try_from(self.0).map_err(|_| Declined)?;
        visitor.visit_i32(unzigzag(u64::from(v)) as i32)
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_i64(unzigzag(self.0))
    }

    #[inline]
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_i128(i128::from(unzigzag(self.0)))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The serializer of [`encode`]; the field is how many newtypes deep the
/// value is (the codec limits nesting, so deep ones are left to it).
struct Number(u32);

/// Newtypes deeper than this are declined (the general encoding takes them).
const MAX_NEWTYPES: u32 = 8;

impl ser::Serializer for Number {
    type Ok = u64;
    type Error = Declined;
    type SerializeSeq = Impossible<u64, Declined>;
    type SerializeTuple = Impossible<u64, Declined>;
    type SerializeTupleStruct = Impossible<u64, Declined>;
    type SerializeTupleVariant = Impossible<u64, Declined>;
    type SerializeMap = Impossible<u64, Declined>;
    type SerializeStruct = Impossible<u64, Declined>;
    type SerializeStructVariant = Impossible<u64, Declined>;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<u64, Declined> {
        Ok(u64::from(v))
    }

    /// The codec writes a `u8` or `i8` as one raw byte: one varint only below 128.
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<u64, Declined> {
        self.serialize_u8(v as u8)
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<u64, Declined> {
        Ok(zigzag(v.into()))
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<u64, Declined> {
        Ok(zigzag(v.into()))
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<u64, Declined> {
        Ok(zigzag(v))
    }

    /// A zigzagged `i128` is one varint of a `u64` when it is below 2^64.
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<u64, Declined> {
        self.serialize_u128(((v << 1) ^ (v >> 127)) as u128)
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<u64, Declined> {
        if v < 0x80 { Ok(v.into()) } else { Err(Declined) }
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<u64, Declined> {
        Ok(v.into())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<u64, Declined> {
        Ok(v.into())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<u64, Declined> {
        Ok(v)
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<u64, Declined> {
        u64::try_from(v).map_err(|_| Declined)
    }

    fn serialize_f32(self, _: f32) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_f64(self, _: f64) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_char(self, _: char) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_str(self, _: &str) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_none(self) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_unit(self) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<u64, Declined> {
        Err(Declined)
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<u64, Declined> {
        if self.0 >= MAX_NEWTYPES {
            return Err(Declined);
        }
        value.serialize(Number(self.0 + 1))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u64, Declined> {
        Err(Declined)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Declined> {
        Err(Declined)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Declined> {
        Err(Declined)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Declined> {
        Err(Declined)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Declined> {
        Err(Declined)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Declined> {
        Err(Declined)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Declined> {
        Err(Declined)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Declined> {
        Err(Declined)
    }

    fn collect_str<T: ?Sized + fmt::Display>(self, _: &T) -> Result<u64, Declined> {
        Err(Declined)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::codec;
    use crate::emdict::bucket::{Varint, as_packed};

    /// Whatever `decode` yields, postcard yields from the canonical varint's bytes.
    fn agrees<T: DeserializeOwned + PartialEq + fmt::Debug>(v: u64) -> bool {
        let bytes = Varint::new(v).bytes().to_vec();
        let general = postcard::from_bytes::<T>(&bytes).ok();
        match decode::<T>(v) {
            Some(x) => general == Some(x),
            None => true,
        }
    }

    #[derive(Deserialize, Serialize, PartialEq, Debug)]
    struct Id(u32);

    /// `encode(v)` and the number of the codec's bytes for `v` if they are
    /// one canonical varint.
    fn both<T: Serialize + ?Sized>(v: &T) -> (Option<u64>, Option<u64>) {
        let mut bytes = Vec::new();
        codec::append(v, &mut bytes).expect("encodes");
        (encode(v), as_packed(&bytes))
    }

    /// For the integer types and `bool`: `encode` yields the number of the
    /// codec's bytes exactly when they are one varint.
    fn encodes_as_the_codec<T: Serialize + ?Sized>(v: &T) -> Option<u64> {
        let (n, want) = both(v);
        assert_eq!(n, want);
        n
    }

    /// For other types: `encode` declines, or agrees (a one-element tuple,
    /// also one varint, is declined and encoded the general way).
    fn declined_or_same<T: Serialize + ?Sized>(v: &T) {
        let (n, want) = both(v);
        assert!(n.is_none() || n == want, "{n:?} {want:?}");
    }

    #[test]
    fn encodes_as_the_codec_does_or_declines() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut values: Vec<u64> = vec![0, 1, 2, 127, 128, 255, 256, 65535, 65536, u32::MAX as u64, 1 << 32, u64::MAX];
        for bits in 1..=64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            values.push(if bits == 64 { x } else { x & ((1 << bits) - 1) });
        }
        for v in values {
            assert_eq!(encodes_as_the_codec(&v), Some(v));
            encodes_as_the_codec(&(v as u8));
            encodes_as_the_codec(&(v as i8));
            encodes_as_the_codec(&(v as u16));
            encodes_as_the_codec(&(v as i16));
            encodes_as_the_codec(&(v as u32));
            encodes_as_the_codec(&Id(v as u32));
            encodes_as_the_codec(&(v as i32));
            encodes_as_the_codec(&(v as i64));
            encodes_as_the_codec(&(v as usize));
            encodes_as_the_codec(&(v as isize));
            encodes_as_the_codec(&u128::from(v));
            encodes_as_the_codec(&(u128::from(v) << 64));
            encodes_as_the_codec(&i128::from(v as i64));
            encodes_as_the_codec(&(i128::from(v) << 64));
            encodes_as_the_codec(&(v & 1 == 1));
            declined_or_same(&Some(v));
            declined_or_same(&(v as f64));
            declined_or_same(&(v, v));
            declined_or_same(&[v]);
            declined_or_same(&v.to_string());
            declined_or_same(&char::from_u32(v as u32 & 0xffff).unwrap_or('x'));
        }
        assert_eq!(encodes_as_the_codec(&Id(9)), Some(9));
        assert_eq!(encodes_as_the_codec(&-2i64), Some(3));
        assert_eq!(encodes_as_the_codec(&127u8), Some(127));
        assert_eq!(encodes_as_the_codec(&200u8), None, "a u8 of 200 is one raw byte, not a varint");
        assert_eq!(encodes_as_the_codec(&-1i8), None, "an i8 of -1 is the raw byte 0xff");
        assert_eq!(encodes_as_the_codec(&true), Some(1));
    }

    #[test]
    fn deep_newtypes_are_declined() {
        #[derive(Serialize)]
        struct Wrap<T>(T);
        assert_eq!(encode(&Wrap(Wrap(Wrap(5u64)))), Some(5));
        let deep = Wrap(Wrap(Wrap(Wrap(Wrap(Wrap(Wrap(Wrap(Wrap(5u64)))))))));
        assert_eq!(encode(&deep), None, "left to the general encoding");
    }

    #[test]
    fn decodes_as_postcard_does_or_declines() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut values: Vec<u64> = vec![0, 1, 2, 127, 128, 255, 256, 65535, 65536, u32::MAX as u64, 1 << 32, u64::MAX];
        for bits in 1..=64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            values.push(if bits == 64 { x } else { x & ((1 << bits) - 1) });
        }
        for v in values {
            assert!(agrees::<u8>(v) && agrees::<i8>(v) && agrees::<bool>(v), "{v:#x}");
            assert!(agrees::<u16>(v) && agrees::<u32>(v) && agrees::<u64>(v) && agrees::<u128>(v), "{v:#x}");
            assert!(agrees::<i16>(v) && agrees::<i32>(v) && agrees::<i64>(v) && agrees::<i128>(v), "{v:#x}");
            assert!(agrees::<usize>(v) && agrees::<isize>(v) && agrees::<Id>(v), "{v:#x}");
            assert!(agrees::<Option<u64>>(v) && agrees::<String>(v) && agrees::<f32>(v), "{v:#x}");
        }
        assert_eq!(decode::<u64>(7), Some(7));
        assert_eq!(decode::<i64>(3), Some(-2));
        assert_eq!(decode::<Id>(9), Some(Id(9)));
        assert_eq!(decode::<u8>(200), None, "a u8 of 200 is one raw byte, not this varint");
        assert_eq!(decode::<Option<u64>>(0), None, "declined: decoded the general way");
    }
}
