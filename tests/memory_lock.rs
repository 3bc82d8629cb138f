//! Key material stays locked in memory for as long as it lives: creating and dropping other
//! keys (every open and save makes temporary ones) must never unlock a live key's page.
//!
//! One test in its own process (an integration test binary), so no other test's keys move
//! `VmLck` while it watches.

use sfvault::secret::{SecretKey, memory_lock_failed};

/// Locked memory of this process in kB, from /proc/self/status.
fn vm_lck_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmLck line")
}

#[test]
fn dropping_keys_never_unlocks_a_live_key() {
    let before = vm_lck_kb();
    let live = SecretKey::from_slice(&[0x5a; 32]);
    if memory_lock_failed() {
        eprintln!("skipped: mlock is not allowed here (RLIMIT_MEMLOCK); nothing to watch");
        return;
    }
    let locked = vm_lck_kb();
    assert!(
        locked >= before + 4,
        "a live key must lock its page: VmLck {before} kB -> {locked} kB"
    );
    // What an open and a save do: temporary keys made and dropped beside the live one.
    for round in 0..200u8 {
        let temporary = SecretKey::from_slice(&[round; 32]);
        let copy = temporary.clone();
        drop(temporary);
        drop(copy);
        let now = vm_lck_kb();
        assert!(
            now >= locked,
            "round {round}: dropping a temporary key unlocked memory while a key is alive \
             (VmLck {locked} kB -> {now} kB)"
        );
    }
    // Many keys at once (more than one page's worth) and back.
    let many: Vec<SecretKey> = (0..500).map(|_| SecretKey::zeroed()).collect();
    drop(many);
    assert!(vm_lck_kb() >= locked, "VmLck fell after a burst of keys");
    assert_eq!(live.expose(), &[0x5a; 32], "the live key was overwritten");
}
