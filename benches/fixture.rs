//! The vault both benches/vault.rs (criterion) and benches/make_vault.rs (compare.sh's
//! fixture writer) measure: `n` entries with five fields each, like a real one.

use sfvault::secret::SecretString;
use sfvault::vault::EntryName;
use sfvault::vault::model::{TeamState, Timestamp, VaultData};

/// A vault of `n` entries (`org{i/10}/app{i%10}`), every field set at `at`.
pub fn vault_of(n: usize, at: Timestamp) -> VaultData {
    let mut v = VaultData::default();
    for i in 0..n {
        let name = EntryName::parse(&format!("org{}/app{}", i / 10, i % 10)).unwrap();
        v.add_entry(&name, at).unwrap();
        for (field, value, secret) in [
            ("consumer_key", format!("3MVG9{i:0>80}"), false),
            ("consumer_secret", format!("{i:0>64}"), true),
            ("username", format!("ci{i}@example.com"), false),
            ("login_url", "https://test.salesforce.com".to_owned(), false),
            ("flow", "client-credentials".to_owned(), false),
        ] {
            v.set_field(&name, field, SecretString::new(value), secret, at)
                .unwrap();
        }
    }
    v
}

/// A team vault's three versions for a merge: `base` (`vault_of(n)` with a team state), `ours`
/// (the username of the first half of the entries changed) and `theirs` (the consumer secret of
/// the second half changed): every entry touched, no conflict.
#[allow(dead_code)]
pub fn diverged(n: usize, at: Timestamp) -> [VaultData; 3] {
    let mut base = vault_of(n, at);
    base.team = Some(TeamState::new());
    let (mut ours, mut theirs) = (base.clone(), base.clone());
    for i in 0..n {
        let name = EntryName::parse(&format!("org{}/app{}", i / 10, i % 10)).unwrap();
        let (side, field, value, secret) = if i < n / 2 {
            (&mut ours, "username", format!("ours{i}@example.com"), false)
        } else {
            (&mut theirs, "consumer_secret", format!("{i:1>64}"), true)
        };
        side.set_field(&name, field, SecretString::new(value), secret, at + 10)
            .unwrap();
    }
    [base, ours, theirs]
}
