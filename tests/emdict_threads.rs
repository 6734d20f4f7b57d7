//! `EmDict` is `Send` and `Sync`: several threads read one handle at once
//! (readers take `&self`), and a handle moves to another thread to write.

use emds::EmDict;

#[test]
fn threads_share_a_reader_and_move_a_writer() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EmDict<String, Vec<u8>>>();

    let dir = std::env::temp_dir().join(format!("emds-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut d: EmDict<u64, String> = EmDict::open(&dir).unwrap();
    d.extend((0..20_000u64).map(|i| (i, format!("v{i}")))).unwrap();
    // A writer moves to another thread and back.
    let d = std::thread::spawn(move || {
        d.insert(20_000, "moved".into()).unwrap();
        d
    })
    .join()
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let d = &d;
            s.spawn(move || {
                for i in (t..20_000).step_by(4) {
                    assert_eq!(d.get(&i).unwrap(), Some(format!("v{i}")));
                }
                assert_eq!(d.iter().count(), 20_001);
            });
        }
    });
    assert_eq!(d.get(&20_000).unwrap().as_deref(), Some("moved"));
    d.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
