//! The codec against postcard: every serde shape and every varint boundary
//! encodes to postcard's bytes (into a `Vec` and into the stack buffer), and
//! decoding accepts, returns and rejects exactly what postcard does, with the
//! same error, on chosen and on random (seeded) inputs.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use super::encode::STACK;
use super::*;
use crate::codec::MAX_DEPTH;
use crate::test_util::{Rng, seed};

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Unit;

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Newtype(u32);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Tuple(i8, String, Option<u16>);

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Fields {
    a: f32,
    b: f64,
    c: Vec<(char, bool)>,
    d: BTreeMap<String, i128>,
    #[serde(with = "serde_bytes_like")]
    e: Vec<u8>,
}

/// `serialize_bytes` / `deserialize_byte_buf`, which no std type reaches through derive.
mod serde_bytes_like {
    use serde::de::{Deserializer, Visitor};

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum Every {
    A,
    B(u64),
    C(i32, i64),
    D { x: u128, y: Unit },
    E(Newtype),
}

/// Borrows from the input, as `&str` and `&[u8]` fields do.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Borrowed<'a> {
    s: &'a str,
    b: &'a [u8],
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

/// Checks that both encoders give postcard's bytes (the `Vec` one after a
/// prefix it must keep; the stack one unless they are more than it holds)
/// and returns them.
fn encodes_as_postcard<T: Serialize + Debug + ?Sized>(value: &T) -> Vec<u8> {
    let want = postcard::to_allocvec(value).expect("postcard encodes it");
    let mut got = vec![0xee];
    append(value, &mut got).expect("encodes");
    assert_eq!(got[0], 0xee, "the prefix is kept");
    assert_eq!(&got[1..], &want[..], "encoding of {value:?}");
    let mut stack = StackBuf::new();
    match to_stack(value, &mut stack) {
        Ok(()) => assert_eq!(stack.bytes(), &want[..], "stack encoding of {value:?}"),
        Err(e) => assert!(e.is_full() && want.len() > STACK, "{value:?}: {e:?}"),
    }
    want
}

/// Checks that decoding `bytes` as a `T` gives what postcard gives: the same
/// value and rest, or the same error.
fn decodes_as_postcard<T: DeserializeOwned + Debug>(bytes: &[u8]) -> Option<T> {
    let ours = from_bytes::<T>(bytes).map_err(|e| e.kind().clone());
    let theirs = postcard::take_from_bytes::<T>(bytes);
    // Debug, not PartialEq: NaN is a value too.
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "decoding {bytes:02x?} as {}", std::any::type_name::<T>());
    ours.ok().map(|(v, _)| v)
}

/// Encodes as postcard does and decodes back to `value`.
fn same<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
    let bytes = encodes_as_postcard(&value);
    let (back, rest) = from_bytes::<T>(&bytes).expect("decodes");
    assert_eq!((&back, rest), (&value, &[][..]));
    decodes_as_postcard::<T>(&bytes);
}

#[test]
fn integers_at_every_varint_boundary_match_postcard() {
    for shift in 0..64 {
        for delta in [-1i64, 0, 1] {
            let x = (1u64 << shift).wrapping_add(delta as u64);
            same(x);
            same(x as i64);
            same((x as i64).wrapping_neg());
            same(x as u32);
            same(x as i32);
            same(x as u16);
            same(x as i16);
            same(x as u8);
            same(x as i8);
            same(x as usize);
            same(x as isize);
            same((x as u128) << 64 | x as u128);
            same((x as i128) << 64 | x as i128);
        }
    }
    for x in [u64::MAX, u64::MAX - 1, 0x7f, 0x80, 0x3fff, 0x4000] {
        same(x);
    }
    same(u128::MAX);
    same(i128::MIN);
    same(i64::MIN);
    same(i32::MIN);
    same(i16::MIN);
}

#[test]
fn every_serde_shape_matches_postcard() {
    same(());
    same(true);
    same(false);
    same(Unit);
    same(Newtype(300));
    same(Tuple(-5, "hé".into(), Some(70_000u32 as u16)));
    same(Tuple(0, String::new(), None));
    let mut d = BTreeMap::new();
    d.insert("k".to_string(), -1i128);
    d.insert("long key ".repeat(30), i128::MAX);
    let c = vec![('a', true), ('\u{10ffff}', false), ('é', true)];
    let f = Fields { a: 1.5, b: -0.0, c, d, e: vec![7; 200] };
    same(f.clone());
    encodes_as_postcard(&Fields { b: f64::NAN, ..f });
    for e in [Every::A, Every::B(u64::MAX), Every::C(-1, i64::MIN), Every::D { x: 1 << 100, y: Unit }] {
        same(e);
    }
    same(Every::E(Newtype(0)));
    same(Vec::<Every>::new());
    same("x".repeat(100_000));
    same("x".repeat(STACK));
    same("x".repeat(STACK - 1));
    same(vec![vec![1u64 << 40; 3]; 200]);
    same((1u8, 2u16, 3u32, 4u64, 5.0f32, 'z', true, Some(Some(()))));
    same((u64::MAX, 0u64));
    same([3u64; 4]);
    same(Some(Some(-3i64)));
    same(None::<String>);
    same(vec![Some((1u8, -1i8)), None]);
    same(1.25f32);
    same(-0.0f64);
    same('z');
    same('\u{10ffff}');
    encodes_as_postcard(&Shown(12345));
    assert_eq!(from_bytes::<String>(&encodes_as_postcard(&Shown(7))).unwrap().0, "n=7");
    // Borrowed fields point into the input.
    let bytes = encodes_as_postcard(&Borrowed { s: "text", b: &[1, 2, 3] });
    let (back, _) = from_bytes::<Borrowed<'_>>(&bytes).unwrap();
    assert_eq!(back, Borrowed { s: "text", b: &[1, 2, 3] });
    assert!(bytes.as_ptr_range().contains(&back.s.as_ptr()));
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
    assert_eq!(append(&Unsized, &mut Vec::new()).unwrap_err().kind(), &want);
    assert_eq!(to_stack(&Unsized, &mut StackBuf::new()).unwrap_err().kind(), &want);
}

/// The stack buffer takes encodings of up to [`STACK`] bytes, whatever
/// their last part is (bytes, or a varint block that reaches past the end).
#[test]
fn the_stack_buffer_is_full_exactly_past_its_size() {
    for n in 0..STACK + 20 {
        for x in [1u64, 1 << 20, u64::MAX] {
            encodes_as_postcard(&("x".repeat(n), x));
            encodes_as_postcard(&(x, "x".repeat(n)));
        }
    }
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
                    let (x, rest) = from_bytes::<u64>(&bytes).unwrap();
                    assert_eq!((x, rest.len()), (v, tail), "{v:#x} + {tail} × {fill:#x}");
                    decodes_as_postcard::<u64>(&bytes);
                    decodes_as_postcard::<u32>(&bytes);
                    decodes_as_postcard::<u16>(&bytes);
                    decodes_as_postcard::<(i16, i32, i64)>(&bytes);
                }
            }
        }
    }
}

#[test]
fn bad_bytes_are_the_errors_postcard_gives() {
    use postcard::Error::*;
    fn err<T: DeserializeOwned + Debug>(bytes: &[u8], want: postcard::Error) {
        assert!(decodes_as_postcard::<T>(bytes).is_none());
        assert_eq!(from_bytes::<T>(bytes).unwrap_err().kind(), &want, "{bytes:02x?}");
    }
    // Varints: too long, too large a last byte, cut short.
    err::<u64>(&[0xff; 11], DeserializeBadVarint);
    err::<u64>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], DeserializeBadVarint);
    err::<u32>(&[0xff, 0xff, 0xff, 0xff, 0x10], DeserializeBadVarint);
    err::<u32>(&[0xff, 0xff, 0xff, 0xff, 0x80, 0x00], DeserializeBadVarint);
    err::<u16>(&[0xff, 0xff, 0x04], DeserializeBadVarint);
    err::<i16>(&[0x80, 0x80, 0x80, 0x00], DeserializeBadVarint);
    err::<u128>(&[0xff; 20], DeserializeBadVarint);
    err::<u64>(&[0x80], DeserializeUnexpectedEnd);
    err::<u64>(&[], DeserializeUnexpectedEnd);
    err::<(u64, u64)>(&[1], DeserializeUnexpectedEnd);
    err::<u128>(&[0x80; 5], DeserializeUnexpectedEnd);
    // Truncated strings, sequences, floats; bad UTF-8, bool, option, char.
    err::<String>(&[5, b'a'], DeserializeUnexpectedEnd);
    err::<Vec<u32>>(&[3, 1, 2], DeserializeUnexpectedEnd);
    err::<Vec<u8>>(&[0xff, 0xff, 0xff, 0xff, 0x0f], DeserializeUnexpectedEnd);
    err::<f64>(&[0; 7], DeserializeUnexpectedEnd);
    err::<f32>(&[0; 3], DeserializeUnexpectedEnd);
    err::<String>(&[2, 0xc3, 0x28], DeserializeBadUtf8);
    err::<bool>(&[2], DeserializeBadBool);
    err::<Option<u8>>(&[2, 0], DeserializeBadOption);
    err::<char>(&[5, b'a', b'b', b'c', b'd', b'e'], DeserializeBadChar);
    err::<char>(&[0], DeserializeBadChar);
    err::<char>(&[1, 0xff], DeserializeBadChar);
    // An enum variant that does not exist is the type's own error.
    err::<Every>(&[5], SerdeDeCustom);
    err::<Every>(&[0xff, 0xff, 0xff, 0xff, 0x1f], DeserializeBadVarint);
    // What postcard will not do without a self-describing format.
    err::<serde::de::IgnoredAny>(&[0], WontImplement);
    // Trailing bytes are left over, not consumed.
    assert_eq!(from_bytes::<u8>(&[1, 2]).unwrap(), (1, &[2][..]));
    assert_eq!(from_bytes::<(u64, u64)>(&[1, 2, 3, 4]).unwrap(), ((1, 2), &[3, 4][..]));
    // A char is the first character of its bytes, as in postcard.
    assert_eq!(decodes_as_postcard::<char>(&[2, b'a', b'b']), Some('a'));
}

/// A random value of a type that nests most shapes.
type Nested = Vec<(u64, i32, Option<String>, Every, Tuple, [u16; 2], BTreeMap<u8, Vec<bool>>)>;

fn random_nested(rng: &mut Rng) -> Nested {
    let int = |rng: &mut Rng| rng.next() >> rng.below(64);
    (0..rng.below(6))
        .map(|_| {
            let text = (rng.below(3) > 0).then(|| "é".repeat(rng.index(5)) + &"z".repeat(rng.index(80)));
            let every = match rng.below(5) {
                0 => Every::A,
                1 => Every::B(int(rng)),
                2 => Every::C(int(rng) as i32, int(rng) as i64),
                3 => Every::D { x: u128::from(int(rng)) << rng.below(64), y: Unit },
                _ => Every::E(Newtype(int(rng) as u32)),
            };
            let tuple = Tuple(int(rng) as i8, "t".repeat(rng.index(3)), (rng.below(2) == 0).then(|| int(rng) as u16));
            let map = (0..rng.below(4)).map(|_| (int(rng) as u8, vec![rng.below(2) == 0; rng.index(4)])).collect();
            (int(rng), int(rng) as i32, text, every, tuple, [int(rng) as u16, int(rng) as u16], map)
        })
        .collect()
}

/// Random values round-trip and encode as postcard; the same bytes cut
/// short, with bytes changed or with bytes added decode as in postcard
/// (to the same value or to the same error).
#[test]
fn random_values_and_damaged_bytes_agree_with_postcard() {
    let mut rng = Rng(seed("random_values_and_damaged_bytes_agree_with_postcard"));
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..3000 {
        let v = random_nested(&mut rng);
        let bytes = encodes_as_postcard(&v);
        assert_eq!(from_bytes::<Nested>(&bytes).unwrap(), (v.clone(), &[][..]));
        for _ in 0..4 {
            let mut bad = bytes.clone();
            match rng.below(3) {
                0 => bad.truncate(rng.index(bad.len() + 1)),
                1 if !bad.is_empty() => {
                    let at = rng.index(bad.len());
                    bad[at] = rng.next() as u8;
                }
                _ => bad.extend((0..rng.below(4)).map(|_| rng.next() as u8)),
            }
            match decodes_as_postcard::<Nested>(&bad) {
                Some(_) => decoded += 1,
                None => refused += 1,
            }
            decodes_as_postcard::<(u64, u64)>(&bad);
            decodes_as_postcard::<Vec<(String, Option<i64>)>>(&bad);
        }
    }
    // Both outcomes were compared, many times.
    assert!(decoded > 1000 && refused > 1000, "{decoded} decoded, {refused} refused");
}

/// A recursive type: each link is two levels (the newtype and the option).
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Chain(Option<Box<Chain>>);

/// A recursive enum: each link is one level; the end is a unit variant.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Links {
    End,
    Next(Box<Links>),
}

fn chain(links: usize) -> Chain {
    (0..links).fold(Chain(None), |c, _| Chain(Some(Box::new(c))))
}

fn links(n: usize) -> Links {
    (0..n).fold(Links::End, |l, _| Links::Next(Box::new(l)))
}

/// Values nest up to `MAX_DEPTH` levels, as postcard's bytes; one level more
/// is an error to the encoder and to the decoder alike (postcard would go on
/// recursing), so nothing is stored that cannot be read back.
#[test]
fn nesting_is_limited_the_same_way_both_ways() {
    let deepest = MAX_DEPTH as usize / 2 - 1;
    // `deepest` links and the last `Chain(None)`: 2 * deepest + 1 levels.
    same(chain(deepest));
    let too_deep = chain(deepest + 1);
    let bytes = postcard::to_allocvec(&too_deep).unwrap();
    let custom = (&postcard::Error::SerdeSerCustom, &postcard::Error::SerdeDeCustom);
    let says_the_limit = |e: CodecError| {
        assert!(e.to_string().starts_with("values nested more than 512 levels deep"), "{e}");
        e
    };
    assert_eq!(says_the_limit(append(&too_deep, &mut Vec::new()).unwrap_err()).kind(), custom.0);
    assert_eq!(says_the_limit(from_bytes::<Chain>(&bytes).unwrap_err()).kind(), custom.1);
    // Enums count one level each, a unit variant too.
    same(links(MAX_DEPTH as usize - 1));
    let bytes = postcard::to_allocvec(&links(MAX_DEPTH as usize)).unwrap();
    assert_eq!(says_the_limit(append(&links(MAX_DEPTH as usize), &mut Vec::new()).unwrap_err()).kind(), custom.0);
    assert_eq!(says_the_limit(from_bytes::<Links>(&bytes).unwrap_err()).kind(), custom.1);
    // The encoder's depth comes back down: siblings do not add up.
    same(vec![chain(deepest - 1), chain(deepest - 1), chain(deepest - 1)]);
}

/// A megabyte of "some" tags (damaged bytes, or bytes written for another
/// type) read as a recursive type is an error, not a stack overflow, even on
/// a thread with a small stack.
#[test]
fn deep_garbage_is_an_error_not_a_stack_overflow() {
    let garbage = vec![1u8; 1 << 20];
    let worker = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || (from_bytes::<Chain>(&garbage).map(drop), from_bytes::<Links>(&garbage).map(drop)));
    let (a, b) = worker.unwrap().join().expect("no overflow");
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert_eq!((a.kind(), b.kind()), (&postcard::Error::SerdeDeCustom, &postcard::Error::SerdeDeCustom));
}

/// Fails to encode, with a message.
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused: not today"))
    }
}

#[derive(Serialize)]
struct Inner {
    ok: u8,
    bad: Refuses,
}

#[derive(Serialize)]
struct Outer {
    items: Vec<Inner>,
}

/// Read from bytes that do not hold it.
#[derive(Deserialize, Debug)]
#[allow(dead_code)] // only ever fails to decode
struct Levels {
    name: String,
    levels: Vec<(u8, Every)>,
}

/// A recursive struct, for long paths.
#[derive(Deserialize, Debug)]
#[allow(dead_code)] // only ever fails to decode
struct Node {
    next: Vec<Node>,
    v: bool,
}

/// Postcard's error drops a type's message; the codec's keeps it (the kind
/// stays postcard's), and says which struct fields and elements it is in.
#[test]
fn errors_keep_the_message_and_say_where() {
    let e = append(&Refuses, &mut Vec::new()).unwrap_err();
    assert_eq!((e.kind(), e.to_string().as_str()), (&postcard::Error::SerdeSerCustom, "refused: not today"));
    // The encoder names struct fields (not elements: it does not count them).
    let outer = Outer { items: vec![Inner { ok: 1, bad: Refuses }] };
    let e = to_stack(&outer, &mut StackBuf::new()).unwrap_err();
    assert_eq!(e.to_string(), "refused: not today (at `items.bad`)");
    // The decoder: a derived type's message, its fields and elements.
    let bytes = postcard::to_allocvec(&(String::from("n"), vec![(1u8, 0u32), (2, 9)])).unwrap();
    let e = from_bytes::<Levels>(&bytes).unwrap_err();
    assert_eq!(e.kind(), &postcard::Error::SerdeDeCustom);
    assert_eq!(e.to_string(), "invalid value: integer `9`, expected variant index 0 <= i < 5 (at `levels[1][1]`)");
    // Postcard's own errors keep postcard's text, and say where.
    let e = from_bytes::<Levels>(&[1, b'n', 3, 1, 0]).unwrap_err();
    assert_eq!(e.to_string(), "Hit the end of buffer, expected more data (at `levels[1][0]`)");
    let e = from_bytes::<u64>(&[]).unwrap_err();
    assert_eq!(e.to_string(), postcard::Error::DeserializeUnexpectedEnd.to_string());
    // A long path shows its two ends.
    let mut bytes = vec![1u8; 20];
    bytes.extend([0, 2]);
    let e = from_bytes::<Node>(&bytes).unwrap_err();
    assert_eq!(e.to_string(), "Found a bool that wasn't 0 or 1 (at `next[0].next[0].next[0]…[0].next[0].next[0].v`)");
    // Left-over bytes say how many.
    assert!(left_over(3).to_string().starts_with("3 bytes left over"));
    let e = from_whole_bytes::<u8>(&[1, 2]).unwrap_err();
    assert_eq!(e.kind(), &postcard::Error::DeserializeBadEncoding);
    assert!(e.to_string().starts_with("1 byte left over after the value"), "{e}");
    assert_eq!(from_whole_bytes::<(u8, u8)>(&[1, 2]).unwrap(), (1, 2));
}

/// A full stack buffer is how a long key goes to the heap, not a failure:
/// it stays postcard's plain error (nothing allocated), inside fields too.
#[test]
fn a_full_stack_buffer_stays_plain() {
    #[derive(Serialize)]
    struct Big {
        payload: String,
    }
    let e = to_stack(&Big { payload: "x".repeat(STACK) }, &mut StackBuf::new()).unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.to_string(), postcard::Error::SerializeBufferFull.to_string());
}
