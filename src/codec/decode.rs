//! Postcard's bytes back into values: a serde `Deserializer` over a byte
//! slice that reads every shape itself (integers, strings, options, tuples,
//! structs, sequences, maps, enums), with postcard's rules and postcard's
//! errors, so that it accepts and rejects exactly what `postcard::from_bytes`
//! does. A long `u64` varint is read as one word, without a loop.

use postcard::Error;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::MAX_DEPTH;
use super::error::{CodecError, Result};

/// Decodes a `T` from the start of `bytes`; returns it and the bytes after it
/// (as `postcard::take_from_bytes`).
///
/// # Errors
///
/// Postcard's error for bytes that are not a `T`: too few of them
/// (`DeserializeUnexpectedEnd`), a varint too long for its type
/// (`DeserializeBadVarint`), bad UTF-8, a bad bool, option tag or char, or
/// the type's own error (an unknown enum variant is `SerdeDeCustom`), with
/// the type's message and the struct fields and elements it is in.
#[inline]
pub(crate) fn from_bytes<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, &'de [u8])> {
    let mut de = De { rest: bytes, depth: 0 };
    let v = T::deserialize(&mut de)?;
    Ok((v, de.rest))
}

/// Decodes a `T` from the whole of `bytes`: bytes left over after it mean
/// that they are not one `T` ([`left_over`](super::left_over)).
///
/// # Errors
///
/// As [`from_bytes`], and `DeserializeBadEncoding` for bytes left over.
#[inline]
pub(crate) fn from_whole_bytes<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    match from_bytes(bytes)? {
        (v, []) => Ok(v),
        (_, rest) => Err(super::left_over(rest.len())),
    }
}

/// The bytes not decoded yet, and how deep in nested values the next one is.
struct De<'de> {
    rest: &'de [u8],
    depth: u32,
}

impl<'de> De<'de> {
    /// Runs `f` on a value nested in the current one: an error past
    /// [`MAX_DEPTH`], so that bytes cannot make a recursive type recurse
    /// until the stack overflows.
    #[inline(always)]
    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.depth >= MAX_DEPTH {
            return Err(CodecError::too_deep(Error::SerdeDeCustom));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Moves past `n <= rest.len()` bytes.
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.rest = self.rest.get(n..).unwrap_or_default();
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        let (out, rest) = self.rest.split_at_checked(n).ok_or(Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(out)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.rest.split_first().ok_or(Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(b)
    }

    /// An unsigned varint of at most `max` bytes whose value fits `bits` bits.
    #[inline(always)]
    fn varint(&mut self, max: usize, bits: u32) -> Result<u64> {
        // A u64 is read as a word where eight bytes are left (random ones
        // take nine or ten). Narrow integers are at most five bytes: a loop
        // is cheaper for them.
        if max == 10 && self.rest.len() >= 8 {
            return self.varint_word();
        }
        match self.rest.split_first() {
            Some((&b, rest)) if b < 0x80 => {
                self.rest = rest;
                Ok(u64::from(b))
            }
            _ => self.varint_bytes(max, bits),
        }
    }

    /// A `u64` varint with at least eight bytes left: they are read as one
    /// word, where the first byte without its high bit ends the varint.
    /// Anything irregular goes to [`varint_bytes`](Self::varint_bytes), which
    /// gives postcard's error.
    #[inline]
    fn varint_word(&mut self) -> Result<u64> {
        let Some(first) = self.rest.first_chunk::<8>() else {
            return self.varint_bytes(10, 64);
        };
        let w = u64::from_le_bytes(*first);
        let stops = !w & 0x8080_8080_8080_8080;
        let (n, x) = if stops != 0 {
            let n = (stops.trailing_zeros() / 8 + 1) as usize;
            (n, gather(if n == 8 { w } else { w & ((1 << (8 * n)) - 1) }))
        } else {
            // Nine or ten bytes (2^56 or more): the tenth holds one bit.
            match (self.rest.get(8), self.rest.get(9)) {
                (Some(&b8), _) if b8 < 0x80 => (9, gather(w) | u64::from(b8) << 56),
                (Some(&b8), Some(&b9)) if b9 <= 1 => (10, gather(w) | u64::from(b8 & 0x7f) << 56 | u64::from(b9) << 63),
                _ => return self.varint_bytes(10, 64),
            }
        };
        self.skip(n);
        Ok(x)
    }

    /// [`varint`](Self::varint) a byte at a time, exactly as postcard reads
    /// it, with its errors.
    #[inline]
    fn varint_bytes(&mut self, max: usize, bits: u32) -> Result<u64> {
        let mut out = 0u64;
        for i in 0..max {
            let b = *self.rest.get(i).ok_or(Error::DeserializeUnexpectedEnd)?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // The last byte may only hold the bits that are left.
                if i == max - 1 && u32::from(b) >> (bits - 7 * (max as u32 - 1)) != 0 {
                    return Err(Error::DeserializeBadVarint.into());
                }
                self.skip(i + 1);
                return Ok(out);
            }
        }
        Err(Error::DeserializeBadVarint.into())
    }

    /// A varint of up to 19 bytes (128-bit integers), as postcard reads it.
    fn varint_u128(&mut self) -> Result<u128> {
        let mut out = 0u128;
        for i in 0..19 {
            let b = self.byte()?;
            out |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 18 && b > 0x03 {
                    return Err(Error::DeserializeBadVarint.into());
                }
                return Ok(out);
            }
        }
        Err(Error::DeserializeBadVarint.into())
    }

    #[inline]
    fn u16(&mut self) -> Result<u16> {
        Ok(self.varint(3, 16)? as u16)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        Ok(self.varint(5, 32)? as u32)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64> {
        self.varint(10, 64)
    }

    /// A length (postcard's `usize` varint, 64 bits here).
    #[inline]
    fn len(&mut self) -> Result<usize> {
        Ok(self.u64()? as usize)
    }

    /// A length and that many bytes.
    #[inline]
    fn bytes_field(&mut self) -> Result<&'de [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    /// A length, that many bytes, as UTF-8.
    #[inline]
    fn str_field(&mut self) -> Result<&'de str> {
        std::str::from_utf8(self.bytes_field()?).map_err(|_| Error::DeserializeBadUtf8.into())
    }
}

/// The seven-bit groups of eight varint bytes, gathered into 56 bits: pairs,
/// then quads, then all eight.
#[inline]
pub(crate) fn gather(w: u64) -> u64 {
    let mut x = w & 0x7f7f_7f7f_7f7f_7f7f;
    x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The elements of a sequence, tuple or struct: `len` values back to back.
/// An element's error is marked with how many elements follow it; the
/// caller, which knows the length or the field names, turns that into the
/// element's index or name ([`CodecError::resolve`]), so the loop over the
/// elements does not count up for errors' sake.
struct Seq<'a, 'de> {
    de: &'a mut De<'de>,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = CodecError;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        match seed.deserialize(&mut *self.de) {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(e.before_end(self.len)),
        }
    }

    /// As postcard: no hint when the length is more than the bytes left, so
    /// a bad length cannot make a collection reserve memory for it.
    #[inline]
    fn size_hint(&self) -> Option<usize> {
        (self.len <= self.de.rest.len()).then_some(self.len)
    }
}

/// The entries of a map: `len` keys, each followed by its value.
struct Map<'a, 'de> {
    de: &'a mut De<'de>,
    len: usize,
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de> {
    type Error = CodecError;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

impl<'de> de::EnumAccess<'de> for &mut De<'de> {
    type Error = CodecError;
    type Variant = Self;

    /// The variant is its index, a `u32` varint.
    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index = self.u32()?;
        let v = seed.deserialize(IntoDeserializer::<'de, CodecError>::into_deserializer(index))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut De<'de> {
    type Error = CodecError;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Seq { de: self, len }).map_err(|e| e.resolve(len, &[]))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Seq { de: self, len: fields.len() }).map_err(|e| e.resolve(fields.len(), fields))
    }
}

impl<'de> de::Deserializer<'de> for &mut De<'de> {
    type Error = CodecError;

    fn is_human_readable(&self) -> bool {
        false
    }

    /// Postcard is not self-describing.
    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement.into())
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(Error::DeserializeBadBool.into()),
        }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.byte()? as i8)
    }

    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i16(unzigzag(self.u16()?.into()) as i16)
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i32(unzigzag(self.u32()?.into()) as i32)
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(unzigzag(self.u64()?))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let v = self.varint_u128()?;
        visitor.visit_i128(((v >> 1) as i128) ^ -((v & 1) as i128))
    }

    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.byte()?)
    }

    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u16(self.u16()?)
    }

    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.u32()?)
    }

    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.u64()?)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u128(self.varint_u128()?)
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let b = self.take(4)?.try_into().map_err(|_| Error::DeserializeUnexpectedEnd)?;
        visitor.visit_f32(f32::from_le_bytes(b))
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let b = self.take(8)?;
        visitor.visit_f64(f64::from_le_bytes(b.try_into().map_err(|_| Error::DeserializeUnexpectedEnd)?))
    }

    /// As postcard: up to four bytes of UTF-8, of which the first character
    /// is the value.
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.len()?;
        if n > 4 {
            return Err(Error::DeserializeBadChar.into());
        }
        let text = std::str::from_utf8(self.take(n)?).map_err(|_| Error::DeserializeBadChar)?;
        visitor.visit_char(text.chars().next().ok_or(Error::DeserializeBadChar)?)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.str_field()?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_str(self.str_field()?)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_bytes(self.bytes_field()?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_bytes(self.bytes_field()?)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => self.nested(|de| visitor.visit_some(de)),
            _ => Err(Error::DeserializeBadOption.into()),
        }
    }

    /// Units are not encoded.
    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        self.nested(|de| visitor.visit_newtype_struct(de))
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_seq(Seq { de, len })).map_err(|e| e.resolve(len, &[]))
    }

    /// Tuples, tuple structs and structs are their fields back to back.
    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(Seq { de, len })).map_err(|e| e.resolve(len, &[]))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(Seq { de, len })).map_err(|e| e.resolve(len, &[]))
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_map(Map { de, len }))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(Seq { de, len: fields.len() })).map_err(|e| e.resolve(fields.len(), fields))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_enum(de))
    }

    /// Postcard writes no identifiers.
    fn deserialize_identifier<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement.into())
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error::WontImplement.into())
    }
}
