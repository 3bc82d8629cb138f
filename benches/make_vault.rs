//! Writes a vault of N entries (five fields each) for the whole-command benchmarks in
//! benches/compare.sh, much faster than N `sfvault add` processes.
//!
//!   cargo run --release --features bench-tools --bin sfvault-bench-fixture -- PATH N [MEMORY_MIB ITERATIONS PARALLELISM]
//!   sfvault-bench-fixture --kdf MEMORY_MIB ITERATIONS PARALLELISM   (one Argon2id derivation, to
//!                                                                  time sfvault's KDF as a process)
//!
//!   sfvault-bench-fixture --team-identity FILE     (an age X25519 identity file, 0600)
//!   sfvault-bench-fixture --team DIR N RECIPIENT   (a team vault without a passphrase for the
//!                                                  public key RECIPIENT: DIR/team.sfv, and
//!                                                  three diverged versions DIR/base.sfv,
//!                                                  ours.sfv, theirs.sfv for `sfvault merge`)
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
    if args.first().map(String::as_str) == Some("--team-identity") {
        let (secret, public) = sfvault::vault::recipients::generate_x25519();
        let text = format!("# public key: {public}\n{}\n", secret.expose());
        sfvault::vault::store::write_new_file(
            std::path::Path::new(&args[1]),
            text.as_bytes(),
            true,
        )
        .expect("write identity");
        return;
    }
    if args.first().map(String::as_str) == Some("--team") {
        let dir = std::path::Path::new(&args[1]);
        let n = args[2].parse::<usize>().expect("N");
        let recipient = sfvault::vault::recipients::Recipient {
            name: "bench".into(),
            key: args[3].clone(),
        };
        let key = VaultKey::generate_for(vec![recipient]).expect("key");
        let [base, ours, theirs] = fixture::diverged(n, 1_764_000_000);
        for (file, data, generation) in [
            ("team.sfv", &base, 1),
            ("base.sfv", &base, 1),
            ("ours.sfv", &ours, 2),
            ("theirs.sfv", &theirs, 2),
        ] {
            let bytes = sfvault::vault::format::seal(data, &key, generation).expect("seal");
            sfvault::vault::store::write_new_file(&dir.join(file), &bytes, true).expect("write");
        }
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
