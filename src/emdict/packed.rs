//! Decoding a packed slot's number straight into the caller's type, for the
//! types whose postcard encoding is one varint: the unsigned and (zigzagged)
//! signed integers, `bool`, and newtypes of them. The number came from a
//! canonical varint (`docs/DESIGN.md`, "EmDict pages"), so each method
//! yields exactly what postcard would read from those bytes, or declines:
//! then the caller decodes the re-encoded bytes the general way, which also
//! names any error.

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};

/// The number of a packed slot, as a serde deserializer.
struct Packed(u64);

/// "Not decoded here": the caller takes the general path.
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

/// `v` decoded as a `T` if `T` reads one varint (see the module's text),
/// exactly as postcard would from `v`'s canonical varint; `None` otherwise.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(v: u64) -> Option<T> {
    T::deserialize(Packed(v)).ok()
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::emdict::bucket::Varint;

    /// Whatever `decode` yields, postcard yields from the canonical varint's bytes.
    fn agrees<T: DeserializeOwned + PartialEq + fmt::Debug>(v: u64) -> bool {
        let bytes = Varint::new(v).bytes().to_vec();
        let general = postcard::from_bytes::<T>(&bytes).ok();
        match decode::<T>(v) {
            Some(x) => general == Some(x),
            None => true,
        }
    }

    #[derive(Deserialize, PartialEq, Debug)]
    struct Id(u32);

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
