//! The audit: stale, unused, missing or weak credentials, and a weak vault KDF. Pure: it reads
//! entries and returns findings; the binary prints them and sets the exit code.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::oauth::Credentials;
use crate::rotation;
use crate::vault::KdfParams;
use crate::vault::fields;
use crate::vault::model::{Entry, Timestamp};
use crate::vault::name::EntryName;

/// A secret never used is reported once it is older than this (a new one has had no chance).
pub const UNUSED_GRACE_SECS: i64 = 7 * 86_400;
/// Certificates expiring sooner than this are reported.
pub const CERT_WARNING_SECS: i64 = 30 * 86_400;

/// A pair replaced at Salesforce and still valid there for longer than this is reported.
pub const OLD_PAIR_GRACE_SECS: i64 = 7 * 86_400;

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `ORG/APP`, or `(vault)`.
    pub entry: String,
    /// The field concerned, if one.
    pub field: Option<String>,
    /// A stable kind: `stale`, `never-used`, `missing`, `weak-key`, `certificate-expiring`,
    /// `insecure-login-url`, `no-flow`, `weak-kdf`, `rotation-interrupted`, `old-pair-valid`.
    pub kind: &'static str,
    /// What is wrong and what to do, for people.
    pub detail: String,
}

/// What the audit needs to know about the vault itself.
pub struct VaultFacts {
    /// The KDF parameters in the file header.
    pub kdf: KdfParams,
}

/// Audit `entries` (unmasked where key sizes are to be checked) as of `now`.
pub fn audit(
    entries: &BTreeMap<String, Entry>,
    facts: &VaultFacts,
    max_age_secs: i64,
    now: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let d = KdfParams::DEFAULT;
    if facts.kdf.memory_kib < d.memory_kib || facts.kdf.iterations < d.iterations {
        out.push(Finding {
            entry: "(vault)".into(),
            field: None,
            kind: "weak-kdf",
            detail: format!(
                "Argon2id {} MiB × {} passes is below the default {} MiB × {}; raise it: sfvault passwd --kdf-memory {} --kdf-iterations {}",
                facts.kdf.memory_kib / 1024,
                facts.kdf.iterations,
                d.memory_kib / 1024,
                d.iterations,
                d.memory_kib / 1024,
                d.iterations
            ),
        });
    }
    for (name, entry) in entries {
        audit_entry(name, entry, max_age_secs, now, &mut out);
    }
    out
}

fn audit_entry(name: &str, entry: &Entry, max_age: i64, now: Timestamp, out: &mut Vec<Finding>) {
    let mut push = |field: Option<&str>, kind: &'static str, detail: String| {
        out.push(Finding {
            entry: name.to_owned(),
            field: field.map(str::to_owned),
            kind,
            detail,
        });
    };
    for (field, f) in &entry.fields {
        if !fields::is_user_secret(field) {
            continue;
        }
        let age = now - f.changed_at;
        if age > max_age {
            push(
                Some(field),
                "stale",
                format!(
                    "unchanged for {} days; rotate it: {}",
                    age / 86_400,
                    rotation::how_to_rotate(name, field, entry.fields.contains_key(fields::APP_ID))
                ),
            );
        }
        if f.used_at.is_none() && now - f.set_at > UNUSED_GRACE_SECS {
            push(
                Some(field),
                "never-used",
                format!(
                    "set {} days ago and never used by a flow or hand-off; remove it if nothing needs it",
                    (now - f.set_at) / 86_400
                ),
            );
        }
    }
    for kind in [rotation::Kind::Consumer, rotation::Kind::Certificate] {
        let Ok(Some(state)) =
            EntryName::parse(name).and_then(|n| rotation::State::of(&n, entry, kind))
        else {
            continue;
        };
        let what = match kind {
            rotation::Kind::Consumer => "consumer",
            rotation::Kind::Certificate => "private_key",
        };
        let changed_at = entry.fields.get(kind.field()).map_or(now, |f| f.changed_at);
        if state.step.in_progress() {
            let expiry = if kind == rotation::Kind::Consumer {
                "; a staged pair stops working 30 days after it was staged"
            } else {
                ""
            };
            push(
                Some(kind.field()),
                "rotation-interrupted",
                format!(
                    "a rotation at Salesforce stopped at step {}: finish it with `sfvault rotate {name} {what} --resume --admin ADMIN` or undo it with `--abort`{expiry}",
                    state.step.name()
                ),
            );
        } else if state.step == rotation::Step::Promoted
            && now - changed_at > OLD_PAIR_GRACE_SECS
            && now - changed_at < rotation::STAGED_LIFETIME_SECS
        {
            push(
                Some(kind.field()),
                "old-pair-valid",
                format!(
                    "the pair replaced at Salesforce {} days ago still works there (until retired, or 30 days after the rotation); once every user has the new one: sfvault rotate {name} consumer --retire --admin ADMIN",
                    (now - changed_at) / 86_400
                ),
            );
        }
    }
    let creds = Credentials::new(name, entry);
    match creds.flow() {
        Ok(flow) => {
            for field in flow.required_fields() {
                if !entry.fields.contains_key(field) {
                    push(
                        Some(field),
                        "missing",
                        format!(
                            "the {} flow needs {field}: sfvault set {name} {field}",
                            flow.name()
                        ),
                    );
                }
            }
        }
        Err(_) => push(
            None,
            "no-flow",
            format!("no flow set or inferable: sfvault set {name} flow jwt|client-credentials|…"),
        ),
    }
    if let Some(url) = entry.fields.get("login_url") {
        // A vault written before the URL check was strict may hold a URL it now refuses.
        let problem = match crate::url::parse(url.value.expose()) {
            Ok(u) if u.is_https() => None,
            Ok(_) => Some(
                "the login URL is not https (only loopback http is accepted, for tests)".into(),
            ),
            Err(r) => Some(format!(
                "the login URL {r}; logins will be refused until it is replaced: sfvault set {name} login_url https://…"
            )),
        };
        if let Some(problem) = problem {
            push(Some("login_url"), "insecure-login-url", problem);
        }
    }
    if let Some(key) = entry.fields.get("private_key")
        && !key.value.is_empty()
    {
        match crate::oauth::jwt::signing_key(&key.value) {
            Ok(k) if k.public().modulus_len() * 8 < 2048 => push(
                Some("private_key"),
                "weak-key",
                format!(
                    "{}-bit RSA key; make a new one: sfvault rotate {name} private_key",
                    k.public().modulus_len() * 8
                ),
            ),
            Ok(_) => {}
            Err(_) => push(
                Some("private_key"),
                "weak-key",
                format!(
                    "the key is not a usable RSA key of 2048 bits or more; make a new one: sfvault rotate {name} private_key"
                ),
            ),
        }
    }
    if let Some(cert) = entry.fields.get("certificate") {
        match certificate_not_after(cert.value.expose()) {
            Some(not_after) if not_after - now < CERT_WARNING_SECS => push(
                Some("certificate"),
                "certificate-expiring",
                if not_after <= now {
                    "the certificate has expired; JWT logins will fail: sfvault rotate {name} private_key".replace("{name}", name)
                } else {
                    format!(
                        "the certificate expires in {} days: sfvault rotate {name} private_key, then upload the new certificate",
                        (not_after - now) / 86_400
                    )
                },
            ),
            Some(_) => {}
            None => push(
                Some("certificate"),
                "certificate-expiring",
                "the certificate cannot be read".into(),
            ),
        }
    }
}

/// The `notAfter` of a PEM certificate, as a Unix timestamp.
pub fn certificate_not_after(pem: &str) -> Option<Timestamp> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}
