//! Costs of the vault core: the KDF at the default and minimum parameters, and opening
//! (authenticate + decrypt + decode) and sealing vaults of 10 and 1,000 entries once the key is
//! known. Results and their reading are in docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sfvault::secret::SecretString;
use sfvault::vault::KdfParams;
use sfvault::vault::crypto::derive_kek;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::VaultData;

#[path = "fixture.rs"]
mod fixture;

/// A vault of `n` entries with five fields each, like a real one.
fn vault_of(n: usize) -> VaultData {
    fixture::vault_of(n, 1_700_000_000)
}

fn kdf(c: &mut Criterion) {
    let pass = SecretString::new("a passphrase of several words".into());
    let mut group = c.benchmark_group("kdf");
    group.sample_size(10);
    for (label, params) in [
        ("default-64MiB-t3-p4", KdfParams::DEFAULT),
        ("minimum-19MiB-t2-p1", KdfParams::MINIMUM),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| derive_kek(black_box(&pass), &params, &[1u8; 32]).unwrap())
        });
    }
    group.finish();
}

fn open_and_seal(c: &mut Criterion) {
    let pass = SecretString::new("pw".into());
    let key = VaultKey::generate(&pass, KdfParams::MINIMUM).unwrap();
    let mut group = c.benchmark_group("payload");
    group.sample_size(10);
    for n in [10usize, 1_000, 100_000] {
        let data = vault_of(n);
        let bytes = format::seal(&data, &key, 1).unwrap();
        group.bench_with_input(BenchmarkId::new("open", n), &bytes, |b, bytes| {
            b.iter(|| format::open_with_key(black_box(bytes), &key).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("seal", n), &data, |b, data| {
            b.iter(|| format::seal(black_box(data), &key, 1).unwrap())
        });
    }
    group.finish();
}

/// A team vault's costs: the three-way merge of two diverged 1,000-entry versions (every entry
/// changed on one side), and unwrapping the data key with an X25519 identity (no KDF).
fn merge_and_unwrap(c: &mut Criterion) {
    let mut group = c.benchmark_group("team");
    group.sample_size(20);
    let [base, ours, theirs] = fixture::diverged(1_000, 1_700_000_000);
    group.bench_function("merge-1000-entries", |b| {
        b.iter(|| sfvault::vault::merge::merge(black_box(&base), &ours, &theirs, 1_800_000_000))
    });
    let (secret, public) = sfvault::vault::recipients::generate_x25519();
    let recipient = sfvault::vault::recipients::Recipient {
        name: "bench".into(),
        key: public,
    };
    let key = VaultKey::generate_for(vec![recipient]).unwrap();
    let wrapped = key.slots().recipients.as_ref().unwrap().wrapped.clone();
    let identity =
        sfvault::vault::recipients::load_identity("bench", secret.expose().as_bytes(), |_| None)
            .unwrap();
    group.bench_function("unwrap-x25519", |b| {
        b.iter(|| sfvault::vault::recipients::unwrap(black_box(&wrapped), &identity).unwrap())
    });
    group.finish();
}

fn jwt_signing(c: &mut Criterion) {
    let made = sfvault::oauth::keygen::generate(2048, 30, "bench").unwrap();
    let key = sfvault::oauth::jwt::signing_key(&made.private_key).unwrap();
    c.bench_function("jwt/sign-rs256-2048", |b| {
        b.iter(|| {
            sfvault::oauth::jwt::assertion(
                &key,
                "3MVG9key",
                "u@example.com",
                "https://login.salesforce.com",
                1_764_000_000,
            )
            .unwrap()
        })
    });
}

/// One request to a live agent over its Unix socket, the agent serving in a thread.
fn agent_round_trip(c: &mut Criterion) {
    use sfvault::agent::protocol::{Request, Response};
    use sfvault::agent::{AgentPaths, client::AgentClient, server};
    let dir = std::env::temp_dir().join(format!("sfvault-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let vault_path = dir.join("vault.sfv");
    let pass = SecretString::new("pw".into());
    let key = VaultKey::generate(&pass, KdfParams::MINIMUM).unwrap();
    let store = sfvault::vault::Store::new(&vault_path, std::time::Duration::from_secs(5));
    let open = store.create(&vault_of(1_000), &key).unwrap();
    let paths = AgentPaths::for_vault(&vault_path, &dir).unwrap();
    let (listener, claim) = server::bind(&paths.socket).unwrap();
    let socket = paths.socket.clone();
    let limits = server::Limits {
        idle_timeout: None,
        max_lifetime: None,
    };
    let thread = std::thread::spawn(move || {
        let _claim = claim;
        server::serve(
            open,
            listener,
            &socket,
            limits,
            std::sync::Arc::new(|_: &str| {}),
        )
    });
    let client = AgentClient::connect(&paths).unwrap();
    let request = Request::Field {
        entry: "org42/app7".into(),
        field: "consumer_key".into(),
    };
    c.bench_function("agent/round-trip-field-1000-entries", |b| {
        b.iter(|| match client.call(&request).unwrap() {
            Response::Field(f) => f,
            _ => panic!("unexpected answer"),
        })
    });
    client.lock().unwrap();
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    kdf,
    open_and_seal,
    jwt_signing,
    agent_round_trip,
    merge_and_unwrap
);
criterion_main!(benches);
