//! The meta record: the root of a committed state. Two slots of the `meta` file
//! alternate; the valid one with the higher transaction id is current.
//! The byte layout is specified in `docs/DESIGN.md` ("Meta record").

use xxhash_rust::xxh3::xxh3_64;

/// Bytes of one slot of the `meta` file; a record occupies the start of its slot.
pub(crate) const SLOT_SIZE: usize = 4096;
/// Bytes of a record, checksum included.
pub(crate) const RECORD_SIZE: usize = CHECKSUM + 8;
/// Bytes of the structure-specific root carried by every record.
pub const ROOT_SIZE: usize = 128;

pub(crate) const MAGIC: [u8; 8] = *b"EMDSMETA";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const PAGE_SIZE: usize = 4096;
/// xxh3-64 over the postcard encoding of a key, seeded with `hash_seed`.
pub(crate) const HASH_XXH3_64: u32 = 1;

// Offsets of the fields, each following the previous one.
const MAGIC_OFF: usize = 0;
const VERSION: usize = MAGIC_OFF + 8;
const PAGE: usize = VERSION + 4;
const TXN: usize = PAGE + 4;
const KIND: usize = TXN + 8;
const HASH_ID: usize = KIND + 4;
const HASH_SEED: usize = HASH_ID + 4;
const TYPE_SIZE: usize = HASH_SEED + 8;
const TYPE_ALIGN: usize = TYPE_SIZE + 4;
const SEG_COUNT: usize = TYPE_ALIGN + 4;
const _RESERVED0: usize = SEG_COUNT + 4;
const STATE_ADDR: usize = _RESERVED0 + 4;
const STATE_LEN: usize = STATE_ADDR + 8;
const STATE_SUM: usize = STATE_LEN + 8;
const ROOT: usize = STATE_SUM + 8;
const _RESERVED1: usize = ROOT + ROOT_SIZE;
const CHECKSUM: usize = _RESERVED1 + 40;

/// What a store holds, recorded so that a list is never opened as a dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// A store with no structure yet (only the allocator is used).
    Raw = 0,
    /// An `EmDict`.
    Dict = 1,
    /// An `EmList`.
    List = 2,
    /// An `EmVec`.
    Vec = 3,
}

impl Kind {
    fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            0 => Kind::Raw,
            1 => Kind::Dict,
            2 => Kind::List,
            3 => Kind::Vec,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Raw => "an empty store",
            Kind::Dict => "an EmDict",
            Kind::List => "an EmList",
            Kind::Vec => "an EmVec",
        }
    }
}

/// The decoded content of a meta record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub txn: u64,
    pub kind: Kind,
    pub hash_seed: u64,
    pub type_size: u32,
    pub type_align: u32,
    pub seg_count: u32,
    pub state_addr: u64,
    pub state_len: u64,
    pub state_sum: u64,
    pub root: [u8; ROOT_SIZE],
}

/// Why a slot was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SlotError {
    /// All zero: never written.
    Empty,
    /// Not an emds meta record at all.
    Foreign,
    /// A version, page size or hash this build does not read.
    Incompatible(String),
    /// The record's checksum does not match: torn or damaged.
    Checksum,
    /// The checksum matches but a field is impossible.
    Invalid(String),
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[MAGIC_OFF..MAGIC_OFF + 8].copy_from_slice(&MAGIC);
        b[VERSION..VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[PAGE..PAGE + 4].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        b[TXN..TXN + 8].copy_from_slice(&self.txn.to_le_bytes());
        b[KIND..KIND + 4].copy_from_slice(&(self.kind as u32).to_le_bytes());
        b[HASH_ID..HASH_ID + 4].copy_from_slice(&HASH_XXH3_64.to_le_bytes());
        b[HASH_SEED..HASH_SEED + 8].copy_from_slice(&self.hash_seed.to_le_bytes());
        b[TYPE_SIZE..TYPE_SIZE + 4].copy_from_slice(&self.type_size.to_le_bytes());
        b[TYPE_ALIGN..TYPE_ALIGN + 4].copy_from_slice(&self.type_align.to_le_bytes());
        b[SEG_COUNT..SEG_COUNT + 4].copy_from_slice(&self.seg_count.to_le_bytes());
        b[STATE_ADDR..STATE_ADDR + 8].copy_from_slice(&self.state_addr.to_le_bytes());
        b[STATE_LEN..STATE_LEN + 8].copy_from_slice(&self.state_len.to_le_bytes());
        b[STATE_SUM..STATE_SUM + 8].copy_from_slice(&self.state_sum.to_le_bytes());
        b[ROOT..ROOT + ROOT_SIZE].copy_from_slice(&self.root);
        let sum = xxh3_64(&b[..CHECKSUM]);
        b[CHECKSUM..CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes one slot, which must be at least `RECORD_SIZE` bytes.
    pub(crate) fn decode(b: &[u8]) -> Result<Meta, SlotError> {
        let b = &b[..RECORD_SIZE];
        if b.iter().all(|&x| x == 0) {
            return Err(SlotError::Empty);
        }
        if b[MAGIC_OFF..MAGIC_OFF + 8] != MAGIC {
            return Err(SlotError::Foreign);
        }
        if xxh3_64(&b[..CHECKSUM]) != u64_at(b, CHECKSUM) {
            return Err(SlotError::Checksum);
        }
        let version = u32_at(b, VERSION);
        if version != FORMAT_VERSION {
            return Err(SlotError::Incompatible(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let page = u32_at(b, PAGE);
        if page as usize != PAGE_SIZE {
            return Err(SlotError::Incompatible(format!("page size {page}, expected {PAGE_SIZE}")));
        }
        let hash_id = u32_at(b, HASH_ID);
        if hash_id != HASH_XXH3_64 {
            return Err(SlotError::Incompatible(format!("unknown hash function id {hash_id}")));
        }
        let kind = u32_at(b, KIND);
        let kind = Kind::from_u32(kind).ok_or_else(|| SlotError::Invalid(format!("unknown structure kind {kind}")))?;
        let mut root = [0u8; ROOT_SIZE];
        root.copy_from_slice(&b[ROOT..ROOT + ROOT_SIZE]);
        Ok(Meta {
            txn: u64_at(b, TXN),
            kind,
            hash_seed: u64_at(b, HASH_SEED),
            type_size: u32_at(b, TYPE_SIZE),
            type_align: u32_at(b, TYPE_ALIGN),
            seg_count: u32_at(b, SEG_COUNT),
            state_addr: u64_at(b, STATE_ADDR),
            state_len: u64_at(b, STATE_LEN),
            state_sum: u64_at(b, STATE_SUM),
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            txn: 7,
            kind: Kind::Dict,
            hash_seed: 0xdead_beef,
            type_size: 8,
            type_align: 8,
            seg_count: 3,
            state_addr: 1 << 40 | 4096,
            state_len: 123,
            state_sum: 99,
            root: [5; ROOT_SIZE],
        }
    }

    #[test]
    fn layout_is_frozen() {
        assert_eq!(RECORD_SIZE, 256);
        const { assert!(RECORD_SIZE <= SLOT_SIZE) };
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Meta::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let good = sample().encode();
        for bit in 0..RECORD_SIZE * 8 {
            let mut b = good;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(Meta::decode(&b).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn empty_and_foreign_slots_are_told_apart() {
        assert_eq!(Meta::decode(&[0u8; RECORD_SIZE]), Err(SlotError::Empty));
        assert_eq!(Meta::decode(&[b'x'; RECORD_SIZE]), Err(SlotError::Foreign));
    }
}
