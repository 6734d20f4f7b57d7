//! An `EmVec<u8>` of 5 GiB: offsets and lengths past 4 GiB (and past the
//! 1 GiB segment size) survive extend, flush, reopen, set, truncate and push;
//! sampled positions and a checksum of every byte read back through `chunks()`.

use emds::{EmVec, OpenOptions};
use xxhash_rust::xxh3::Xxh3;

const GIB: usize = 1 << 30;
const LEN: usize = 5 * GIB + 12_345;
const BLOCK: usize = 64 << 20;

/// The byte at position `p`: bytes of a hash of the 8-byte word holding it,
/// so that a byte read from the wrong place (say 4 GiB lower) differs.
fn word(w: u64) -> u64 {
    let mut z = w.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn byte(p: usize) -> u8 {
    word((p / 8) as u64).to_le_bytes()[p % 8]
}

/// Fills `buf` with the bytes from position `at` (a multiple of 8).
fn fill(buf: &mut [u8], at: usize) {
    for (k, w) in buf.chunks_mut(8).enumerate() {
        let b = word((at / 8 + k) as u64).to_le_bytes();
        w.copy_from_slice(&b[..w.len()]);
    }
}

#[test]
fn five_gibibytes_of_bytes() {
    let path = std::env::temp_dir().join(format!("emds-test-emvec-5g-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let mut opts = OpenOptions::new();
    // Durability is not what this test is about: skip the 5 GiB fsync.
    opts.durable(false);
    let mut v: EmVec<u8> = EmVec::open_with(&path, &opts).unwrap();
    let mut buf = vec![0u8; BLOCK];
    let mut want = Xxh3::new();
    let mut at = 0;
    while at < LEN {
        let n = BLOCK.min(LEN - at);
        fill(&mut buf[..n], at);
        want.update(&buf[..n]);
        v.extend_from_slice(&buf[..n]).unwrap();
        at += n;
    }
    drop(buf);
    let want = want.digest();
    v.close().unwrap();

    let mut v: EmVec<u8> = EmVec::open_with(&path, &opts).unwrap();
    assert_eq!(v.len(), LEN);
    let mut got = Xxh3::new();
    let mut total = 0;
    for c in v.chunks() {
        got.update(c);
        total += c.len();
    }
    assert_eq!((total, got.digest()), (LEN, want), "checksum of every byte");
    let four = 4 * GIB;
    let mut samples = vec![0, 1, four - 1, four, four + 1, LEN - 1, GIB, 2 * GIB + 7];
    samples.extend((0..1000u64).map(|k| (word(k ^ 0xabc) % LEN as u64) as usize));
    for &p in &samples {
        assert_eq!(v.get(p).unwrap(), Some(byte(p)), "byte {p}");
    }
    assert_eq!(v.get(LEN).unwrap(), None);
    let range = v.get_range(four - 3..four + 3).unwrap().unwrap();
    assert_eq!(&*range, &(four - 3..four + 3).map(byte).collect::<Vec<_>>()[..]);

    // Changes past 4 GiB, then a reopen.
    v.set(four + 5, !byte(four + 5)).unwrap();
    v.truncate(four + 100).unwrap();
    v.push(0xaa).unwrap();
    v.flush().unwrap();
    v.check().unwrap();
    drop(v);
    let v: EmVec<u8> = EmVec::open_read_only(&path).unwrap();
    assert_eq!(v.len(), four + 101);
    assert_eq!(v.get(four + 5).unwrap(), Some(!byte(four + 5)));
    assert_eq!(v.get(four + 4).unwrap(), Some(byte(four + 4)));
    assert_eq!(v.get(four + 99).unwrap(), Some(byte(four + 99)));
    assert_eq!(v.last().unwrap(), Some(0xaa));
    let report = v.check().unwrap();
    assert!(report.bytes_live >= (four + 101) as u64);
    drop(v);
    std::fs::remove_dir_all(&path).unwrap();
}
