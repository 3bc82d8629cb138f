//! The golden contents of the format's test vectors (tests/vectors, docs/FORMAT.md section 5),
//! shared by the tests of each format version.

use serde_json::{Value, json};
use sfvault::secret::SecretString;
use sfvault::vault::EntryName;
use sfvault::vault::model::{Entry, Timestamp, VaultData};

pub const GOLDEN_PASSPHRASE: &str = "correct horse battery staple";

/// The golden contents: two entries, secret and public fields, a history, a `used_at`.
pub fn golden_data() -> VaultData {
    let mut v = VaultData::default();
    let s = |t: &str| SecretString::new(t.to_owned());
    let prod = EntryName::parse("acme-prod/ci").unwrap();
    let uat = EntryName::parse("acme-uat/backup").unwrap();
    let t0: Timestamp = 1_764_370_000;
    v.add_entry(&prod, t0).unwrap();
    v.set_field(
        &prod,
        "consumer_key",
        s("3MVG9golden.consumer.key"),
        false,
        t0,
    )
    .unwrap();
    v.set_field(&prod, "username", s("ci@acme.example.com"), false, t0)
        .unwrap();
    v.set_field(&prod, "flow", s("jwt"), false, t0).unwrap();
    v.set_field(
        &prod,
        "private_key",
        s("-----BEGIN PRIVATE KEY-----\nR09MREVOLUtFWS1OT1QtQS1SRUFMLUtFWQ==\n-----END PRIVATE KEY-----"),
        true,
        t0 + 1,
    )
    .unwrap();
    for (i, secret) in ["first-secret", "second-secret", "third-secret ünïcødé"]
        .iter()
        .enumerate()
    {
        v.set_field(
            &prod,
            "consumer_secret",
            s(secret),
            true,
            t0 + 10 * i as i64,
        )
        .unwrap();
    }
    v.entries
        .get_mut("acme-prod/ci")
        .unwrap()
        .fields
        .get_mut("consumer_key")
        .unwrap()
        .used_at = Some(t0 + 100);
    v.add_entry(&uat, t0 + 200).unwrap();
    v.set_field(
        &uat,
        "login_url",
        s("https://test.salesforce.com"),
        false,
        t0 + 200,
    )
    .unwrap();
    v.set_field(&uat, "notes", s("public note"), false, t0 + 201)
        .unwrap();
    v.set_field(&uat, "my_token", s("user-defined secret"), true, t0 + 202)
        .unwrap();
    v
}

/// The version 3 golden contents: those of [`golden_data`], a retention of ten years (so the
/// removed copies outlive the tests that open the file) and two removed copies of one entry, one
/// with a history.
pub fn golden_data_v3() -> VaultData {
    let mut v = golden_data();
    let s = |t: &str| SecretString::new(t.to_owned());
    let t0: Timestamp = 1_764_370_000;
    v.set_removed_days(3650, t0).unwrap();
    let old = EntryName::parse("acme-dev/old").unwrap();
    v.add_entry(&old, t0 + 300).unwrap();
    v.set_field(
        &old,
        "consumer_key",
        s("3MVG9removed.first"),
        false,
        t0 + 300,
    )
    .unwrap();
    v.discard_entry(&old, t0 + 301).unwrap();
    v.add_entry(&old, t0 + 400).unwrap();
    v.set_field(&old, "flow", s("client-credentials"), false, t0 + 400)
        .unwrap();
    for (i, secret) in ["removed-secret-1", "removed-secret-2"].iter().enumerate() {
        v.set_field(
            &old,
            "consumer_secret",
            s(secret),
            true,
            t0 + 401 + i as i64,
        )
        .unwrap();
    }
    v.discard_entry(&old, t0 + 500).unwrap();
    v
}

/// One entry as JSON: its creation time and every field with its history.
pub fn entry_json(e: &Entry) -> Value {
    let mut fields = serde_json::Map::new();
    for (fname, f) in &e.fields {
        let history: Vec<Value> = f
            .history
            .iter()
            .map(|p| json!({"value": p.value.expose(), "changed_at": p.changed_at, "replaced_at": p.replaced_at}))
            .collect();
        fields.insert(
            fname.clone(),
            json!({"value": f.value.expose(), "secret": f.secret, "set_at": f.set_at,
                   "changed_at": f.changed_at, "used_at": f.used_at, "history": history}),
        );
    }
    json!({"created_at": e.created_at, "fields": fields})
}

/// The golden contents as JSON in the shape of `v3-golden.json`: with `removed_days` and the
/// removed copies.
pub fn data_json_v3(v: &VaultData) -> Value {
    let mut out = data_json(v);
    let removed: serde_json::Map<String, Value> = v
        .removed
        .iter()
        .map(|(name, copies)| {
            let copies: Vec<Value> = copies
                .iter()
                .map(|r| json!({"removed_at": r.removed_at, "entry": entry_json(&r.entry)}))
                .collect();
            (name.clone(), Value::Array(copies))
        })
        .collect();
    out["removed_days"] = json!(v.settings.removed_days);
    out["removed"] = Value::Object(removed);
    out
}

/// The golden contents as JSON in the shape of `v1-golden.json` and `v2-golden.json` (entries
/// and history limit: all those versions hold).
pub fn data_json(v: &VaultData) -> Value {
    let mut entries = serde_json::Map::new();
    for (name, e) in &v.entries {
        let mut fields = serde_json::Map::new();
        for (fname, f) in &e.fields {
            let history: Vec<Value> = f
                .history
                .iter()
                .map(|p| json!({"value": p.value.expose(), "changed_at": p.changed_at, "replaced_at": p.replaced_at}))
                .collect();
            fields.insert(
                fname.clone(),
                json!({"value": f.value.expose(), "secret": f.secret, "set_at": f.set_at,
                       "changed_at": f.changed_at, "used_at": f.used_at, "history": history}),
            );
        }
        entries.insert(
            name.clone(),
            json!({"created_at": e.created_at, "fields": fields}),
        );
    }
    json!({"history_limit": v.settings.history_limit, "entries": entries})
}
