//! Writes a vault of N entries (five fields each) for the whole-command benchmarks in
//! benches/compare.sh, much faster than N `sfvault add` processes.
//!
//!   cargo run --release --features bench-tools --bin sfvault-bench-fixture -- PATH N [MEMORY_MIB ITERATIONS PARALLELISM]
//!   sfvault-bench-fixture --kdf MEMORY_MIB ITERATIONS PARALLELISM   (one Argon2id derivation, to
//!                                                                  time sfvault's KDF as a process)
//!
//! The passphrase is read from the file named by SFVAULT_PASSPHRASE_FILE.

use std::time::Duration;

use sfvault::secret::SecretString;
use sfvault::vault::{KdfParams, Store, VaultKey};

#[path = "fixture.rs"]
mod fixture;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--kdf") {
        let p = |i: usize| args[i].parse::<u32>().expect("number");
        let params = KdfParams {
            memory_kib: p(1) * 1024,
            iterations: p(2),
            parallelism: p(3),
        };
        let pass = SecretString::new("password".into());
        sfvault::vault::crypto::derive_kek(&pass, &params, b"somesaltsomesalt").expect("kdf");
        return;
    }
    let (path, n) = (&args[0], args[1].parse::<usize>().expect("N"));
    let kdf = match args.get(2..5) {
        Some([m, t, p]) => KdfParams {
            memory_kib: m.parse::<u32>().expect("MiB") * 1024,
            iterations: t.parse().expect("iterations"),
            parallelism: p.parse().expect("parallelism"),
        },
        _ => KdfParams::DEFAULT,
    };
    let pass_file = std::env::var("SFVAULT_PASSPHRASE_FILE").expect("SFVAULT_PASSPHRASE_FILE");
    let pass = std::fs::read_to_string(pass_file).expect("passphrase file");
    let pass = SecretString::new(pass.trim_end_matches('\n').to_owned());
    let v = fixture::vault_of(n, 1_764_000_000);
    let key = VaultKey::generate(&pass, kdf).expect("key");
    Store::new(path, Duration::from_secs(10))
        .create(&v, &key)
        .expect("write vault");
}
