//! User code failing mid-operation: a `Serialize` implementation that returns
//! an error, or panics, halfway through encoding a key or value (after a large
//! part has been written) in `insert`, `update`, `push`, `set` and `extend`,
//! and an `update` closure that panics. The call returns `Error::Encode` (or
//! the panic propagates) and the structure is exactly as before the call: its
//! contents, `len()`, `check()`, and what a flush and reopen show.
//! (`EmVec` takes `Pod` elements, which have no user encoding to fail.)
//! The error's text is the `Serialize` implementation's message; a
//! `Deserialize` that refuses what it reads (in `get`, iteration, `remove`)
//! and a value nested past the codec's limit of 512 levels are errors whose
//! text says so too.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{Rng, TempDir};
use emds::{EmDict, EmList, Error};
use serde::ser::{Error as _, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

/// How the next encodings of an [`Item`] on this thread end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fail {
    Never,
    Error,
    Panic,
}

thread_local! {
    /// Which `Item` (by id) fails, and how.
    static FAIL: Cell<(u64, Fail)> = const { Cell::new((0, Fail::Never)) };
}

/// A value whose encoding fails after its (possibly large) payload when told to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
struct Item {
    id: u64,
    payload: Vec<u8>,
    tail: u32,
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Item", 3)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("payload", &self.payload)?;
        match FAIL.with(|f| f.get()) {
            (id, Fail::Error) if id == self.id => return Err(S::Error::custom("this item refuses to be encoded")),
            (id, Fail::Panic) if id == self.id => panic!("this item panics while being encoded"),
            _ => {}
        }
        st.serialize_field("tail", &self.tail)?;
        st.end()
    }
}

fn item(rng: &mut Rng, id: u64) -> Item {
    let len = if rng.chance(10) { rng.range(3000, 100_000) } else { rng.below(100) } as usize;
    Item { id, payload: rng.bytes(len), tail: rng.next() as u32 }
}

/// Runs `op` with item `id` failing in `how`; the operation must fail.
fn failing<T: std::fmt::Debug>(id: u64, how: Fail, op: impl FnOnce() -> emds::Result<T>) {
    quiet_expected_panics();
    FAIL.with(|f| f.set((id, how)));
    let r = catch_unwind(AssertUnwindSafe(op));
    FAIL.with(|f| f.set((0, Fail::Never)));
    match (how, r) {
        // The message of the failing `Serialize` reaches the user.
        (Fail::Error, Ok(Err(e @ Error::Encode { .. })))
            if e.to_string().contains("this item refuses to be encoded") => {}
        (Fail::Panic, Err(_)) => {}
        (how, r) => panic!("a failing encoding ({how:?}) gave {r:?}"),
    }
}

/// Keeps the panics this file provokes out of the test output; others print as usual.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !(msg.contains("panics while being encoded") || msg == "user closure") {
                default(info);
            }
        }));
    });
}

fn assert_dict(d: &EmDict<Item, Item>, model: &BTreeMap<Item, Item>, context: &str) {
    let got = common::read_dict(d).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert!(&got == model, "{context}: the dict differs from before the failed call");
    d.check().unwrap_or_else(|e| panic!("{context}: check(): {e}"));
}

#[test]
fn failing_keys_values_and_closures_leave_a_dict_as_it_was() {
    let seed = common::seed("user failures dict");
    let mut rng = Rng(seed);
    let dir = TempDir::new("user-dict");
    let mut d: EmDict<Item, Item> = EmDict::open_with(dir.path(), &common::small_segments()).unwrap();
    let mut model = BTreeMap::new();
    let mut next_id = 1u64;
    let mut fresh = |rng: &mut Rng| {
        next_id += 1;
        item(rng, next_id)
    };
    for round in 0..120 {
        let context = format!("round {round}, seed {seed:#x}");
        // Some successful work, flushed now and then.
        for _ in 0..rng.range(1, 6) {
            let (k, v) = (fresh(&mut rng), fresh(&mut rng));
            d.insert(k.clone(), v.clone()).unwrap();
            model.insert(k, v);
        }
        if rng.chance(30) {
            d.flush().unwrap();
        }
        let how = if rng.chance(50) { Fail::Error } else { Fail::Panic };
        let existing = model.keys().nth(rng.below(model.len() as u64) as usize).unwrap().clone();
        let (k, v) = (fresh(&mut rng), fresh(&mut rng));
        match rng.below(6) {
            0 => failing(v.id, how, || d.insert(k.clone(), v.clone())),
            1 => failing(v.id, how, || d.insert(existing.clone(), v.clone())),
            2 => failing(k.id, how, || d.insert(k.clone(), v.clone())),
            3 => failing(v.id, how, || d.update(existing.clone(), |_| Some(v.clone()))),
            4 => failing(v.id, Fail::Panic, || {
                d.update(existing.clone(), |_| -> Option<Item> { panic!("user closure") })
            }),
            _ => failing(k.id, how, || d.update(k.clone(), |_| Some(v.clone()))),
        }
        assert_dict(&d, &model, &context);
    }
    // Extend: the entries before the failing one may be in, the rest may not.
    let items: Vec<(Item, Item)> = (0..10).map(|_| (fresh(&mut rng), fresh(&mut rng))).collect();
    failing(items[6].1.id, Fail::Error, || d.extend(items.clone()));
    let got = common::read_dict(&d).unwrap();
    let prefix = (0..=6).find(|&n| {
        let mut m = model.clone();
        m.extend(items[..n].iter().cloned());
        m == got
    });
    assert!(prefix.is_some(), "after a failing extend the dict is not the old one plus a prefix of the items");
    model = got;
    d.close().unwrap();
    let d: EmDict<Item, Item> = EmDict::open(dir.path()).unwrap();
    assert_dict(&d, &model, "after reopen");
}

#[test]
fn failing_elements_leave_a_list_as_it_was() {
    let seed = common::seed("user failures list");
    let mut rng = Rng(seed);
    let dir = TempDir::new("user-list");
    let mut l: EmList<Item> = EmList::open_with(dir.path(), &common::small_segments()).unwrap();
    let mut model: Vec<Item> = Vec::new();
    let mut next_id = 1u64;
    for round in 0..150 {
        let context = format!("round {round}, seed {seed:#x}");
        for _ in 0..rng.range(1, 6) {
            next_id += 1;
            let v = item(&mut rng, next_id);
            l.push(v.clone()).unwrap();
            model.push(v);
        }
        if rng.chance(30) {
            l.flush().unwrap();
        }
        next_id += 1;
        let v = item(&mut rng, next_id);
        let how = if rng.chance(50) { Fail::Error } else { Fail::Panic };
        let at = rng.below(model.len() as u64) as usize;
        match rng.below(2) {
            0 => failing(v.id, how, || l.push(v.clone())),
            _ => failing(v.id, how, || l.set(at, v.clone())),
        }
        let got = common::read_list(&l).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(got == model, "{context}: the list differs from before the failed call");
        l.check().unwrap_or_else(|e| panic!("{context}: check(): {e}"));
    }
    let items: Vec<Item> = (0..10).map(|i| item(&mut rng, 1_000_000 + i)).collect();
    failing(items[4].id, Fail::Error, || l.extend(items.clone()));
    let got = common::read_list(&l).unwrap();
    assert!(
        (0..=4).any(|n| got.len() == model.len() + n
            && got[..model.len()] == model[..]
            && got[model.len()..] == items[..n]),
        "after a failing extend the list is not the old one plus a prefix of the items"
    );
    l.close().unwrap();
    let l: EmList<Item> = EmList::open(dir.path()).unwrap();
    assert!(common::read_list(&l).unwrap() == got, "after reopen");
    l.check().unwrap();
}

/// A number that refuses to be odd, on the way in and on the way out.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Even(u64);

impl Serialize for Even {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 2 == 1 {
            return Err(S::Error::custom(format!("odd number {} may not be stored", self.0)));
        }
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Even {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Even, D::Error> {
        let n = u64::deserialize(d)?;
        if n % 2 == 1 {
            return Err(serde::de::Error::custom(format!("odd number {n} was read")));
        }
        Ok(Even(n))
    }
}

/// Asserts an error of `kind` ("Encode" or "Decode") whose detail and text hold `text`.
fn says<T: std::fmt::Debug>(r: emds::Result<T>, kind: &str, text: &str) {
    let (found, detail) = match &r {
        Err(Error::Encode { detail, .. }) => ("Encode", detail),
        Err(Error::Decode { detail, .. }) => ("Decode", detail),
        other => panic!("expected {kind} saying {text:?}, got {other:?}"),
    };
    let e = r.as_ref().unwrap_err();
    assert_eq!(found, kind, "{e}");
    assert!(detail.contains(text), "the detail {detail:?} does not say {text:?}");
    assert!(e.to_string().contains(text), "the error {e} does not say {text:?}");
}

/// A value nested `2 * links + 1` levels deep.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Chain(Option<Box<Chain>>);

fn chain(links: usize) -> Chain {
    (0..links).fold(Chain(None), |c, _| Chain(Some(Box::new(c))))
}

#[test]
fn a_dict_reports_what_serialize_and_deserialize_said() {
    let dir = TempDir::new("user-dict-messages");
    let mut d: EmDict<u64, Even> = EmDict::open(dir.path()).unwrap();
    for k in 0..100 {
        d.insert(k, Even(2 * k)).unwrap();
    }
    says(d.insert(7, Even(3)), "Encode", "odd number 3 may not be stored");
    says(d.insert(1000, Even(5)), "Encode", "odd number 5 may not be stored");
    says(d.update(8, |_| Some(Even(9))), "Encode", "odd number 9 may not be stored");
    // Nothing changed, and `len()` is exact.
    assert_eq!(d.len(), 100);
    assert_eq!(d.get(&7).unwrap(), Some(Even(14)));
    assert_eq!(d.get(&1000).unwrap(), None);
    d.check().unwrap();
    d.close().unwrap();
    // Odd values, written as plain numbers (packed ones and others), read as `Even`.
    let mut d: EmDict<u64, u64> = EmDict::open(dir.path()).unwrap();
    d.insert(7, 7).unwrap();
    d.insert(1u64 << 40, (1u64 << 40) + 1).unwrap();
    d.close().unwrap();
    let d: EmDict<u64, Even> = EmDict::open(dir.path()).unwrap();
    says(d.get(&7), "Decode", "odd number 7 was read");
    says(d.get(&(1u64 << 40)), "Decode", &format!("odd number {} was read", (1u64 << 40) + 1));
    assert_eq!(d.get(&8).unwrap(), Some(Even(16)));
    let failures: Vec<String> = d.iter().filter_map(|r| r.err()).map(|e| e.to_string()).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().any(|e| e.contains("odd number 7 was read")), "{failures:?}");
    assert!(d.values().filter_map(|r| r.err()).all(|e| e.to_string().contains("was read")));
    drop(d);
    // A value nested past the codec's limit is refused on the way in, naming the limit.
    let deep = TempDir::new("user-dict-deep");
    let mut d: EmDict<u64, Chain> = EmDict::open(deep.path()).unwrap();
    d.insert(1, chain(200)).unwrap();
    says(d.insert(2, chain(300)), "Encode", "nested more than 512 levels");
    says(d.insert(1, chain(300)), "Encode", "nested more than 512 levels");
    assert_eq!(d.len(), 1);
    assert_eq!(d.get(&1).unwrap(), Some(chain(200)));
}

#[test]
fn a_list_reports_what_serialize_and_deserialize_said() {
    let dir = TempDir::new("user-list-messages");
    let mut l: EmList<Even> = EmList::open(dir.path()).unwrap();
    for i in 0..100 {
        l.push(Even(2 * i)).unwrap();
    }
    says(l.push(Even(3)), "Encode", "odd number 3 may not be stored");
    says(l.set(5, Even(11)), "Encode", "odd number 11 may not be stored");
    says(l.extend([Even(2), Even(13)]), "Encode", "odd number 13 may not be stored");
    assert_eq!(l.len(), 101, "the extend's first element is in");
    assert_eq!(l.get(5).unwrap(), Some(Even(10)));
    l.check().unwrap();
    l.close().unwrap();
    let mut l: EmList<u64> = EmList::open(dir.path()).unwrap();
    l.push(21).unwrap();
    l.close().unwrap();
    let l: EmList<Even> = EmList::open(dir.path()).unwrap();
    says(l.get(101), "Decode", "odd number 21 was read");
    let failures: Vec<Error> = l.iter().filter_map(|r| r.err()).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].to_string().contains("element 101"), "{}", failures[0]);
    drop(l);
    let deep = TempDir::new("user-list-deep");
    let mut l: EmList<Chain> = EmList::open(deep.path()).unwrap();
    says(l.push(chain(300)), "Encode", "nested more than 512 levels");
    assert_eq!(l.len(), 0);
}
