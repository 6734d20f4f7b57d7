//! EmDict at scale: ten million `u64 -> u64` entries inserted, flushed,
//! closed, reopened read-only and every one read back, plus iteration and
//! `check()`; then half removed, which must not grow the store.

use emds::EmDict;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn ten_million_entries_round_trip() {
    const N: u64 = 10_000_000;
    let dir = std::env::temp_dir().join(format!("emds-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    for i in 0..N {
        d.insert(mix(i), i).unwrap();
    }
    assert_eq!(d.len(), N as usize);
    d.close().unwrap();

    let d: EmDict<u64, u64> = EmDict::open_read_only(&dir).unwrap();
    assert_eq!(d.len(), N as usize);
    for i in 0..N {
        assert_eq!(d.get(&mix(i)).unwrap(), Some(i), "key {i}");
    }
    assert_eq!(d.get(&mix(N)).unwrap(), None);
    let (mut count, mut sum) = (0u64, 0u64);
    for entry in d.iter() {
        let (k, v) = entry.unwrap();
        assert_eq!(k, mix(v));
        count += 1;
        sum = sum.wrapping_add(v);
    }
    assert_eq!((count, sum), (N, N * (N - 1) / 2));
    let report = d.check().unwrap();
    drop(d);

    let mut d: EmDict<u64, u64> = EmDict::open(&dir).unwrap();
    for i in (0..N).step_by(2) {
        assert_eq!(d.remove(&mix(i)).unwrap(), Some(i));
    }
    d.flush().unwrap();
    assert_eq!(d.len(), (N / 2) as usize);
    let after = d.check().unwrap();
    println!("after load: {report:?}\nafter removing half: {after:?}");
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
