//! `import --from-sf`: an sf store (`~/.sfdx`: key.json, alias.json, USERNAME.json with fields
//! encrypted as @salesforce/core encrypts them, version 2) comes into the vault, each login
//! proven with a token from the vault; nothing half-imported, nothing advised that loses data.

mod support;

use std::fs;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::{Value, json};
use support::fake_sf::{AppConfig, FakeSalesforce};
use support::*;

const SF_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `IV CIPHERTEXT:TAG` in hex, as sf's version 2 crypto writes a field.
fn sf_encrypt(plain: &str, iv: [u8; 12]) -> String {
    let key_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&SF_KEY[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
    let mut buf = plain.as_bytes().to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf)
        .unwrap();
    format!("{}{}:{}", hex(&iv), hex(&buf), hex(tag.as_ref()))
}

/// An sf store in the test's HOME with one JWT login (alias `ci`) whose key file sf names.
fn sf_store(tv: &TestVault, sf: &FakeSalesforce, app: &AppConfig, key_pem: &str) {
    let dir = tv.home.join(".sfdx");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("key.json"),
        json!({"account": "local", "key": SF_KEY, "service": "sfdx"}).to_string(),
    )
    .unwrap();
    fs::write(
        dir.join("alias.json"),
        json!({"orgs": {"ci": app.username}}).to_string(),
    )
    .unwrap();
    let key_file = tv.home.join("server.key");
    fs::write(&key_file, key_pem).unwrap();
    fs::write(
        dir.join(format!("{}.json", app.username)),
        json!({
            "username": app.username,
            "loginUrl": sf.url,
            "instanceUrl": sf.url,
            "clientId": app.consumer_key,
            "privateKey": key_file,
            "clientSecret": sf_encrypt(&app.consumer_secret, [9; 12]),
            "accessToken": sf_encrypt("00D5g000000XXXX!AQold", [7; 12]),
            "orgId": "00D5g000000XXXXEAA",
            "isDevHub": false,
            "instanceApiVersion": "62.0",
        })
        .to_string(),
    )
    .unwrap();
}

#[test]
fn sf_logins_come_in_proven_and_sf_keeps_its_copy_unless_asked() {
    let app = AppConfig {
        consumer_key: "3MVG9fromsf".into(),
        consumer_secret: canary("unused"),
        username: "ci@acme.example.com".into(),
        ..AppConfig::default()
    };
    let sf = FakeSalesforce::start(app.clone());
    let tv = TestVault::new();
    // A key pair made by sfvault in a scratch entry, its certificate uploaded to the app.
    tv.ok_stdin(&["add", "scratch/key", "--consumer-key", "k"], b"s");
    sf.set_certificate(&tv.ok(&["keygen", "scratch/key"]));
    let key_pem = tv.get("scratch/key", "private_key");
    sf_store(&tv, &sf, &app, &key_pem);

    let out = tv.run(&["import", "--from-sf", "--json"], None);
    assert_success(&out, &["import --from-sf"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result,
        json!([{"username": app.username, "entry": "ci/sf", "proven": true,
                "logged_out": false, "problem": null}])
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sf still holds its own copy"), "{err}");
    assert!(!err.contains("shred"), "no deletion advice: {err}");
    // The entry signs its own JWT logins now: the key came in, not its path.
    assert_eq!(tv.get("ci/sf", "flow"), "jwt");
    assert_eq!(tv.get("ci/sf", "consumer_key"), "3MVG9fromsf");
    assert_eq!(tv.get("ci/sf", "private_key"), key_pem);
    assert_eq!(tv.get("ci/sf", "consumer_secret"), app.consumer_secret);
    assert_eq!(sf.jwts().len(), 1);
    // sf's files are untouched.
    assert!(
        tv.home
            .join(".sfdx")
            .join(format!("{}.json", app.username))
            .exists()
    );

    // By name: an unknown one is refused before anything is done.
    tv.fails(&["import", "--from-sf", "nobody@x.example"], 3);
    // A store under another key: refused, naming the field, nothing imported.
    let other = tv.home.join(".sfdx/key.json");
    fs::write(
        &other,
        json!({"account": "local", "key": "ff".repeat(32), "service": "sfdx"}).to_string(),
    )
    .unwrap();
    let err = tv.fails(&["import", "--from-sf", "ci"], 6);
    assert!(err.contains("clientSecret does not decrypt"), "{err}");
}
