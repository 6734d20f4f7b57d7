//! The postcard encoding, written straight into a `Vec<u8>`: the bytes are
//! exactly those of `postcard::to_allocvec` (the list format stores them), but
//! a varint costs one fixed 16-byte copy and no call, where postcard's generic
//! flavor copies each varint with a variable-length `memcpy` after a
//! byte-by-byte loop. `EmList::push` spends most of its time here.

use serde::Serialize;
use serde::ser::{self, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple};
use serde::ser::{SerializeTupleStruct, SerializeTupleVariant};

use postcard::{Error, Result};

/// Appends the postcard encoding of `value` to `out`. On error `out` may hold
/// part of the encoding after its previous end: the caller truncates it.
#[inline]
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut Out(out))
}

/// Appends `x` as a LEB128 varint (postcard's encoding of every unsigned
/// integer wider than a byte, and of lengths and variant indices).
#[inline(always)]
fn varint(out: &mut Vec<u8>, x: u64) {
    if x < 0x80 {
        out.push(x as u8);
    } else {
        varint_long(out, x);
    }
}

/// [`varint`] of `x >= 0x80`: the ten 7-bit groups are spread over the bytes
/// of one register pair with their continuation bits, stored as one 16-byte
/// block (no byte-wise stores that a wide load would have to wait for), and
/// the block cut to the bytes the value needs.
#[inline]
fn varint_long(out: &mut Vec<u8>, x: u64) {
    let n = (64 - x.leading_zeros()).div_ceil(7);
    // The low 56 bits: four 14-bit groups into 16-bit lanes, then each lane's
    // two 7-bit groups into its two bytes.
    let m = 0x3fff;
    let w = (x & m) | ((x & (m << 14)) << 2) | ((x & (m << 28)) << 4) | ((x & (m << 42)) << 6);
    let lo = (w & 0x007f_007f_007f_007f) | ((w & 0x3f80_3f80_3f80_3f80) << 1);
    let hi = ((x >> 56) & 0x7f) | ((x >> 63) << 8);
    let groups = u128::from(lo) | (u128::from(hi) << 64);
    let at = out.len();
    out.extend_from_slice(&(groups | MORE[n.min(10) as usize]).to_le_bytes());
    out.truncate(at + n as usize);
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
fn varint_u128(out: &mut Vec<u8>, mut x: u128) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The serializer: postcard's format, into a `Vec`.
struct Out<'a>(&'a mut Vec<u8>);

impl<'a, 'b> ser::Serializer for &'b mut Out<'a> {
    type Ok = ();
    type Error = Error;
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
        self.0.push(u8::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.0.push(v as u8);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 15)) as u16 as u64);
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 31)) as u32 as u64);
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        varint(self.0, ((v << 1) ^ (v >> 63)) as u64);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<()> {
        varint_u128(self.0, ((v << 1) ^ (v >> 127)) as u128);
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.0.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        varint(self.0, v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        varint(self.0, v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        varint(self.0, v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<()> {
        varint_u128(self.0, v);
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
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
        varint(self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.0.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        self.0.push(1);
        value.serialize(self)
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
        varint(self.0, index.into());
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<()> {
        varint(self.0, index.into());
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        varint(self.0, len.ok_or(Error::SerializeSeqLengthUnknown)? as u64);
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
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
        varint(self.0, index.into());
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        varint(self.0, len.ok_or(Error::SerializeSeqLengthUnknown)? as u64);
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
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
        varint(self.0, index.into());
        Ok(self)
    }

    /// As postcard: the length of the text, then the text.
    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result<()> {
        use std::fmt::Write;
        let mut text = String::new();
        write!(text, "{value}").map_err(|_| Error::CollectStrError)?;
        self.serialize_str(&text)
    }
}

/// Compound values: their parts, back to back, with nothing around them.
macro_rules! parts {
    ($($trait:ident :: $method:ident ($($key:ty)?)),* $(,)?) => {$(
        impl $trait for &mut Out<'_> {
            type Ok = ();
            type Error = Error;

            #[inline(always)]
            fn $method<T: ?Sized + Serialize>(&mut self, $(_key: $key,)? value: &T) -> Result<()> {
                value.serialize(&mut **self)
            }

            #[inline]
            fn end(self) -> Result<()> {
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
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl SerializeMap for &mut Out<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Serialize, Serializer};

    use super::*;

    /// Checks that `append` gives postcard's bytes after a prefix it must keep.
    fn same<T: Serialize + std::fmt::Debug>(value: &T) {
        let want = postcard::to_allocvec(value).expect("postcard encodes it");
        let mut got = vec![0xee];
        append(value, &mut got).expect("encodes");
        assert_eq!(got[0], 0xee, "the prefix is kept");
        assert_eq!(&got[1..], &want[..], "encoding of {value:?}");
    }

    #[derive(Serialize, Debug)]
    struct Unit;

    #[derive(Serialize, Debug)]
    struct Newtype(u32);

    #[derive(Serialize, Debug)]
    struct Tuple(i8, String, Option<u16>);

    #[derive(Serialize, Debug)]
    struct Fields {
        a: f32,
        b: f64,
        c: Vec<(char, bool)>,
        d: BTreeMap<String, i128>,
        #[serde(with = "serde_bytes_like")]
        e: Vec<u8>,
    }

    /// `serialize_bytes`, which no std type reaches through derive.
    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[derive(Serialize, Debug)]
    enum Every {
        A,
        B(u64),
        C(i32, i64),
        D { x: u128, y: Unit },
        E(Newtype),
    }

    /// Displays itself in two pieces, through `collect_str`.
    #[derive(Debug)]
    struct Shown(u32);

    impl std::fmt::Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "n=")?;
            write!(f, "{}", self.0)
        }
    }

    impl Serialize for Shown {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    #[test]
    fn integers_at_every_varint_boundary_match_postcard() {
        for shift in 0..64 {
            for delta in [-1i64, 0, 1] {
                let x = (1u64 << shift).wrapping_add(delta as u64);
                same(&x);
                same(&(x as i64));
                same(&(x as u32));
                same(&(x as i32));
                same(&(x as u16));
                same(&(x as i16));
                same(&(x as u8));
                same(&(x as i8));
                same(&(x as usize));
                same(&(x as isize));
                same(&((x as u128) << 64 | x as u128));
                same(&((x as i128) << 64 | x as i128));
            }
        }
        for x in [u64::MAX, u64::MAX - 1, 0x7f, 0x80, 0x3fff, 0x4000] {
            same(&x);
        }
        same(&u128::MAX);
        same(&i128::MIN);
        same(&i64::MIN);
    }

    #[test]
    fn every_serde_shape_matches_postcard() {
        same(&());
        same(&Unit);
        same(&Newtype(300));
        same(&Tuple(-5, "hé".into(), Some(70_000u32 as u16)));
        same(&Tuple(0, String::new(), None));
        let mut d = BTreeMap::new();
        d.insert("k".to_string(), -1i128);
        d.insert("long key ".repeat(30), i128::MAX);
        let c = vec![('a', true), ('\u{10ffff}', false), ('é', true)];
        same(&Fields { a: 1.5, b: f64::NAN, c, d, e: vec![7; 200] });
        for e in [Every::A, Every::B(u64::MAX), Every::C(-1, i64::MIN), Every::D { x: 1 << 100, y: Unit }] {
            same(&e);
        }
        same(&Every::E(Newtype(0)));
        same(&Vec::<Every>::new());
        same(&Shown(12345));
        same(&"x".repeat(100_000));
        same(&vec![vec![1u64 << 40; 3]; 200]);
        same(&(1u8, 2u16, 3u32, 4u64, 5.0f32, 'z', true, Some(Some(()))));
    }

    /// A sequence of unknown length is postcard's error, not a guess.
    #[test]
    fn unknown_lengths_are_refused_like_postcard() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(std::iter::from_fn(|| None::<u8>).filter(|_| true))
            }
        }
        let want = postcard::to_allocvec(&Unsized).unwrap_err();
        assert_eq!(append(&Unsized, &mut Vec::new()).unwrap_err(), want);
    }
}
