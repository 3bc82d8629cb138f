//! Review of #17: defects found by an independent review, each shown through the real binary.

mod support;

use sfvault::secret::SecretString;
use sfvault::vault::model::{RemovedEntry, VaultData, now};
use sfvault::vault::{EntryName, KdfParams, Store, VaultKey};
use support::*;

/// A removed copy whose time is later than this machine's clock (the vault was last saved on a
/// machine whose clock was ahead, or the clock was set back): removing the same name again must
/// not write a vault that no longer opens ("copies not oldest first" is refused on decode).
#[test]
fn rm_after_the_clock_went_back_leaves_a_vault_that_opens() {
    let tv = TestVault::empty();
    let mut data = VaultData::default();
    let n = EntryName::parse("acme/ci").unwrap();
    let ahead = now() + 3600;
    data.add_entry(&n, ahead - 60).unwrap();
    let old = data.remove_entry(&n).unwrap();
    data.removed.insert(
        "acme/ci".into(),
        vec![RemovedEntry {
            removed_at: ahead,
            entry: old,
        }],
    );
    let key =
        VaultKey::generate(&SecretString::new(PASSPHRASE.into()), KdfParams::MINIMUM).unwrap();
    Store::new(&tv.vault, std::time::Duration::from_secs(5))
        .create(&data, &key)
        .unwrap();

    tv.ok(&["add", "acme/ci", "--consumer-key", "newest", "--no-secret"]);
    tv.ok(&["rm", "acme/ci", "--yes"]);
    // The vault still opens, and the copy just removed is the one undelete brings back.
    tv.ok(&["list"]);
    tv.ok(&["undelete", "acme/ci"]);
    assert_eq!(tv.get("acme/ci", "consumer_key"), "newest");
}
