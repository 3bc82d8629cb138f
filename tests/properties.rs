//! Property tests: the vault model survives the trip to bytes and back, sealed or not, and the
//! decoders never panic on arbitrary bytes.

use std::sync::OnceLock;

use proptest::prelude::*;
use sfvault::agent::protocol::{self, MAX_REQUEST_LEN, Request};
use sfvault::secret::SecretString;
use sfvault::vault::format::{self, VaultKey};
use sfvault::vault::model::VaultData;
use sfvault::vault::{Change, EntryName, KdfParams};

fn key() -> &'static VaultKey {
    static KEY: OnceLock<VaultKey> = OnceLock::new();
    KEY.get_or_init(|| {
        VaultKey::generate(&SecretString::new("pw".into()), KdfParams::MINIMUM).unwrap()
    })
}

fn part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,12}"
}

fn field_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}".prop_filter("not computed or special", |f| {
        !sfvault::vault::fields::is_computed(f)
            && !matches!(
                f.as_str(),
                "flow"
                    | "login_url"
                    | "callback_url"
                    | "private_key"
                    | "certificate"
                    | "token_lifetime"
                    | "consumer_key"
                    | "username"
            )
    })
}

prop_compose! {
    fn vault()(entries in prop::collection::vec(
        (part(), part(), any::<i64>(), prop::collection::vec((field_name(), "\\PC{1,40}", any::<bool>(), 0i64..4_000_000_000, 0u8..8), 0..6)),
        0..8,
    ), limit in 0u32..=10) -> VaultData {
        let mut v = VaultData::default();
        v.settings.history_limit = limit;
        for (org, app, created, fields) in entries {
            let name = EntryName::parse(&format!("{org}/{app}")).unwrap();
            if v.add_entry(&name, created).is_err() {
                continue;
            }
            for (f, value, public, at, changes) in fields {
                let secret = !public || !sfvault::vault::fields::may_be_public(&f);
                for c in 0..=changes {
                    let _ = v.set_field(&name, &f, SecretString::new(format!("{value}{c}")), secret, at + i64::from(c));
                }
            }
        }
        v
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn payload_round_trips(v in vault()) {
        let bytes = format::encode_payload(&v).unwrap();
        prop_assert_eq!(format::decode_payload(&bytes).unwrap(), v);
    }

    #[test]
    fn sealed_files_round_trip(v in vault()) {
        let file = format::seal(&v, key(), 1).unwrap();
        prop_assert_eq!(format::open_with_key(&file, key()).unwrap(), v);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = format::parse_header(&bytes);
        let _ = format::decode_payload(&bytes);
        let _ = protocol::read_frame::<Request>(&bytes[..], MAX_REQUEST_LEN);
    }

    #[test]
    fn requests_round_trip(org in part(), app in part(), field in field_name(), value in "\\PC{0,64}") {
        let entry = format!("{org}/{app}");
        for req in [
            Request::Field { entry: entry.clone(), field: field.clone() },
            Request::Apply(Change::SetField {
                entry: entry.clone(),
                field: sfvault::vault::NewField { name: field.clone(), value: SecretString::new(value.clone()), secret: true },
            }),
        ] {
            let mut buf = Vec::new();
            protocol::write_frame(&mut buf, &req).unwrap();
            prop_assert_eq!(protocol::read_frame::<Request>(&buf[..], MAX_REQUEST_LEN).unwrap(), req);
        }
    }
}
