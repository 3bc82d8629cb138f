//! Costs of the vault core: the KDF at the default and minimum parameters, and opening
//! (authenticate + decrypt + decode) and sealing vaults of 10 and 1,000 entries once the key is
//! known. Results and their reading are in docs/PERFORMANCE.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sfvault::secret::SecretString;
use sfvault::vault::crypto::derive_kek;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::VaultData;
use sfvault::vault::{EntryName, KdfParams};

/// A vault of `n` entries with five fields each, like a real one.
fn vault_of(n: usize) -> VaultData {
    let mut v = VaultData::default();
    for i in 0..n {
        let name = EntryName::parse(&format!("org{}/app{}", i / 10, i % 10)).unwrap();
        v.add_entry(&name, 1_700_000_000).unwrap();
        for (field, value, secret) in [
            ("consumer_key", format!("3MVG9{i:0>80}"), false),
            ("consumer_secret", format!("{i:0>64}"), true),
            ("username", format!("ci{i}@example.com"), false),
            ("login_url", "https://test.salesforce.com".to_owned(), false),
            ("flow", "client-credentials".to_owned(), false),
        ] {
            v.set_field(
                &name,
                field,
                SecretString::new(value),
                secret,
                1_700_000_000,
            )
            .unwrap();
        }
    }
    v
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
    for n in [10usize, 1_000] {
        let data = vault_of(n);
        let bytes = format::seal(&data, &key).unwrap();
        group.bench_with_input(BenchmarkId::new("open", n), &bytes, |b, bytes| {
            b.iter(|| format::open_with_key(black_box(bytes), &key).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("seal", n), &data, |b, data| {
            b.iter(|| format::seal(black_box(data), &key).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, kdf, open_and_seal);
criterion_main!(benches);
