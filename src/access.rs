//! Who really holds access to an org (`audit --at-salesforce`): what Salesforce says of OAuth
//! tokens ([`collect`], through the admin APIs) held against what the vault knows ([`findings`],
//! pure). Finding kinds are stable names for `--json`:
//!
//! | kind | what |
//! |---|---|
//! | `unknown-app` | an app with live tokens that no entry of this org knows |
//! | `idle-token` | a token unused for longer than `--max-idle` (or never used and that old) |
//! | `app-missing` | an entry whose External Client App (by `app_id`) no longer exists |
//! | `app-unused` | an entry whose app holds no token at all |
//! | `app-not-found` | an entry no External Client App has the key of, and no `app_label` names |
//! | `key-drift` | an entry whose consumer key is not the app's current key at Salesforce |
//! | `rotation-due` | an entry's consumer secret or JWT key older than `--max-age`, with the command |
//! | `tokens-unread` | fewer `OauthToken` rows read than counted (tokens came or went, or some users are not visible to the admin) |

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::quote::shell_word;
use crate::rotation::{self, Kind, State};
use crate::salesforce::Admin;
use crate::salesforce::eca::AppRef;
use crate::salesforce::usage::{OauthTokenRow, UsageToken};
use crate::timefmt::{Timestamp, parse_rfc3339};
use crate::vault::fields::{APP_ID, APP_LABEL, APP_NAME};
use crate::vault::model::Entry;
use crate::vault::name::EntryName;

/// An External Client App with its keys and the tokens its users hold.
#[derive(Debug)]
pub struct EcaUsage {
    /// The app.
    pub app: AppRef,
    /// Its consumers' current keys.
    pub keys: Vec<String>,
    /// Every token of every user.
    pub tokens: Vec<UsageToken>,
}

/// What Salesforce says of the org's OAuth access.
#[derive(Debug, Default)]
pub struct OrgAccess {
    /// External Client Apps (with usage, and the others from SOQL).
    pub ecas: Vec<EcaUsage>,
    /// Classic connected apps' tokens.
    pub oauth_tokens: Vec<OauthTokenRow>,
    /// How many `OauthToken` rows were counted before reading them.
    pub counted_oauth_tokens: u64,
    /// Vault `app_id`s Salesforce answered 404 for.
    pub missing_apps: Vec<String>,
}

/// Read the org's OAuth access through `admin`: every External Client App (with usage or not),
/// its consumers' keys, its users page by page and their tokens; every `OauthToken` row. The
/// apps of `entry_app_ids` (the vault's `app_id`s) that no list names are looked up one by one:
/// found, they join the apps; a 404 is recorded as missing.
pub fn collect(
    admin: &Admin<'_>,
    entry_app_ids: &[String],
    progress: &mut dyn FnMut(&str),
) -> Result<OrgAccess> {
    progress("listing External Client Apps");
    let mut apps = admin.usage_apps()?;
    let with_usage: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
    for app in admin.all_apps()? {
        if !apps.iter().any(|a| a.id == app.id) {
            apps.push(app);
        }
    }
    let mut out = OrgAccess::default();
    for app in apps {
        // An app the credentials resources do not serve (a packaged one) keeps its tokens.
        let keys = admin
            .consumers(&app.id)?
            .map(|c| c.into_iter().map(|c| c.key).collect())
            .unwrap_or_default();
        let mut tokens = Vec::new();
        if with_usage.contains(&app.id) {
            progress(&format!("reading the tokens of {}", app.developer_name));
            for user in admin.usage_users(&app.id)?.unwrap_or_default() {
                tokens.extend(admin.usage_tokens(&app.id, &user.id)?);
            }
        }
        out.ecas.push(EcaUsage { app, keys, tokens });
    }
    for id in entry_app_ids {
        if out.ecas.iter().any(|e| e.app.id == *id) || out.missing_apps.contains(id) {
            continue;
        }
        match admin.consumers(id)? {
            Some(c) => out.ecas.push(EcaUsage {
                app: AppRef {
                    id: id.clone(),
                    developer_name: String::new(),
                },
                keys: c.into_iter().map(|c| c.key).collect(),
                tokens: Vec::new(),
            }),
            None => out.missing_apps.push(id.clone()),
        }
    }
    progress("reading connected apps' tokens (OauthToken)");
    let (rows, counted) = admin.all_oauth_tokens()?;
    out.oauth_tokens = rows;
    out.counted_oauth_tokens = counted;
    Ok(out)
}

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable kind (module docs).
    pub kind: &'static str,
    /// The app's name (developer name or label).
    pub app: String,
    /// The External Client App's id, if it is one.
    pub app_id: Option<String>,
    /// The vault entry concerned, if one.
    pub entry: Option<String>,
    /// The user, for token findings.
    pub user_id: Option<String>,
    /// The username, when Salesforce gave it.
    pub username: Option<String>,
    /// When the token was last used (none: never, or not a token finding).
    pub last_used_at: Option<String>,
    /// How many times the token was used.
    pub use_count: Option<u64>,
    /// What `revoke --at-salesforce --token` takes, for External Client App tokens.
    pub token_id: Option<String>,
    /// What is wrong and what to do, for people.
    pub detail: String,
}

impl Finding {
    fn new(kind: &'static str, app: &str, detail: String) -> Finding {
        Finding {
            kind,
            app: app.to_owned(),
            app_id: None,
            entry: None,
            user_id: None,
            username: None,
            last_used_at: None,
            use_count: None,
            token_id: None,
            detail,
        }
    }
}

/// What the findings are checked against.
pub struct Limits {
    /// A token unused for longer than this is idle (seconds).
    pub max_idle_secs: i64,
    /// A consumer secret older than this is due for rotation (seconds).
    pub max_age_secs: i64,
    /// The admin entry's name, for the commands findings suggest.
    pub admin: String,
}

fn field<'e>(entry: &'e Entry, name: &str) -> Option<&'e str> {
    entry
        .fields
        .get(name)
        .map(|f| f.value.expose())
        .filter(|v| !v.is_empty())
}

/// Whether a token last used at `last_used` (or, never used or at an unreadable date, issued at
/// `created`) is idle; and the words for how long.
fn idle(
    last_used: Option<&str>,
    created: Option<&str>,
    now: Timestamp,
    max_idle: i64,
) -> Option<String> {
    let used = last_used.and_then(parse_rfc3339);
    let (at, words) = match used {
        Some(t) => (t, "has not used this token for"),
        None => (
            created.and_then(parse_rfc3339)?,
            "has never used this token, issued",
        ),
    };
    (now - at > max_idle).then(|| {
        let days = (now - at) / 86_400;
        if used.is_some() {
            format!("{words} {days} days")
        } else {
            format!("{words} {days} days ago,")
        }
    })
}

/// Hold the org's access against the vault's `entries` of this org (masked entries are enough:
/// only public fields and dates are read).
pub fn findings(
    org: &OrgAccess,
    entries: &BTreeMap<String, Entry>,
    limits: &Limits,
    now: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let days = |secs: i64| secs / 86_400;
    // Which entry knows which app.
    let eca_of = |entry: &Entry| -> Option<&EcaUsage> {
        let by_id = field(entry, APP_ID).and_then(|id| org.ecas.iter().find(|e| e.app.id == id));
        by_id.or_else(|| {
            let key = field(entry, "consumer_key")?;
            org.ecas.iter().find(|e| e.keys.iter().any(|k| k == key))
        })
    };
    // Labels are matched exactly: a look-alike name (another case, a Kelvin sign for a K) is
    // another app. Labels are not unique at Salesforce: a match is only as good as the label.
    fn label_of(entry: &Entry) -> Option<&str> {
        field(entry, APP_LABEL).or_else(|| field(entry, APP_NAME))
    }
    for eca in &org.ecas {
        let known = entries
            .values()
            .any(|e| eca_of(e).is_some_and(|x| x.app.id == eca.app.id));
        if !known && !eca.tokens.is_empty() {
            let users: std::collections::BTreeSet<&str> =
                eca.tokens.iter().map(|t| t.user_id.as_str()).collect();
            let mut f = Finding::new(
                "unknown-app",
                &eca.app.developer_name,
                format!(
                    "{} live token(s) of {} user(s), and no vault entry knows this External Client App: \
                     add it (`sfvault add ORG/APP --consumer-key …`) if it is yours, else revoke its \
                     tokens: sfvault revoke --at-salesforce {} --app {}",
                    eca.tokens.len(),
                    users.len(),
                    limits.admin,
                    eca.app.id
                ),
            );
            f.app_id = Some(eca.app.id.clone());
            out.push(f);
        }
        for t in &eca.tokens {
            if let Some(how_long) = idle(
                t.last_used_at.as_deref(),
                t.initial_connection_at.as_deref(),
                now,
                limits.max_idle_secs,
            ) {
                let token_id = t
                    .token_id
                    .as_ref()
                    .map(|id| format!("{}/{}/{}", t.app_id, t.user_id, id));
                let how_to = match &token_id {
                    Some(id) => format!(
                        "revoke it with sfvault revoke --at-salesforce {} --token {id}",
                        limits.admin
                    ),
                    None => format!(
                        "revoke the user's tokens of the app with sfvault revoke --at-salesforce {} --app {} --user {}",
                        limits.admin, t.app_id, t.user_id
                    ),
                };
                let who = if t.username.is_empty() {
                    &t.user_id
                } else {
                    &t.username
                };
                let mut f = Finding::new(
                    "idle-token",
                    &eca.app.developer_name,
                    format!("{who} {how_long} (used {} times): {how_to}", t.use_count),
                );
                f.app_id = Some(t.app_id.clone());
                f.user_id = Some(t.user_id.clone());
                f.username = Some(t.username.clone()).filter(|u| !u.is_empty());
                f.last_used_at = t.last_used_at.clone();
                f.use_count = Some(t.use_count);
                f.token_id = token_id;
                out.push(f);
            }
        }
    }
    // Classic connected apps, by label.
    let mut by_label: BTreeMap<&str, Vec<&OauthTokenRow>> = BTreeMap::new();
    for row in &org.oauth_tokens {
        by_label.entry(row.app_name.as_str()).or_default().push(row);
    }
    for (label, rows) in &by_label {
        let known = entries.values().any(|e| label_of(e) == Some(*label));
        if !known {
            let users: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r.user_id.as_str()).collect();
            out.push(Finding::new(
                "unknown-app",
                label,
                format!(
                    "{} live token(s) of {} user(s) of this connected app, and no vault entry names it: \
                     if it is yours, `sfvault set ORG/APP app_label {}` on its entry; else revoke its \
                     tokens: sfvault revoke --at-salesforce {} --app {}",
                    rows.len(),
                    users.len(),
                    shell_word(label),
                    limits.admin,
                    shell_word(label)
                ),
            ));
        }
        for r in rows {
            if let Some(how_long) = idle(
                r.last_used_at.as_deref(),
                r.created_at.as_deref(),
                now,
                limits.max_idle_secs,
            ) {
                let mut f = Finding::new(
                    "idle-token",
                    label,
                    format!(
                        "user {} {how_long} (used {} times): revoke the user's tokens of the app with \
                         sfvault revoke --at-salesforce {} --app {} --user {}",
                        r.user_id,
                        r.use_count,
                        limits.admin,
                        shell_word(label),
                        r.user_id
                    ),
                );
                f.user_id = Some(r.user_id.clone());
                f.last_used_at = r.last_used_at.clone();
                f.use_count = Some(r.use_count);
                out.push(f);
            }
        }
    }
    if org.counted_oauth_tokens > org.oauth_tokens.len() as u64 {
        out.push(Finding::new(
            "tokens-unread",
            "",
            format!(
                "{} OauthToken rows were counted and {} read: tokens came or went meanwhile (run the \
                 audit again), or the admin cannot see every user (it needs \"View All Users\")",
                org.counted_oauth_tokens,
                org.oauth_tokens.len()
            ),
        ));
    }
    // The vault's side.
    for (name, entry) in entries {
        let Ok(parsed) = EntryName::parse(name) else {
            continue;
        };
        let rotating = State::of(&parsed, entry, Kind::Consumer)
            .ok()
            .flatten()
            .is_some_and(|s| s.step.in_progress());
        let eca = eca_of(entry);
        let label = label_of(entry);
        let app_name = field(entry, APP_NAME).unwrap_or("").to_owned();
        match (eca, field(entry, APP_ID), label) {
            (Some(eca), _, _) => {
                let key = field(entry, "consumer_key").unwrap_or("");
                if !rotating && !eca.keys.iter().any(|k| k == key) {
                    let mut f = Finding::new(
                        "key-drift",
                        &eca.app.developer_name,
                        format!(
                            "{name}'s consumer key ({}) is not the app's current key at Salesforce: someone \
                             rotated in Setup; get the new key and secret into the vault (`sfvault set {name} \
                             consumer_key …`, then consumer_secret)",
                            rotation::consumer::tail(key)
                        ),
                    );
                    f.app_id = Some(eca.app.id.clone());
                    f.entry = Some(name.clone());
                    out.push(f);
                }
                if eca.tokens.is_empty() {
                    let mut f = Finding::new(
                        "app-unused",
                        &eca.app.developer_name,
                        format!(
                            "no user holds a token of {name}'s app: if nothing uses it any more, remove the entry and the app"
                        ),
                    );
                    f.app_id = Some(eca.app.id.clone());
                    f.entry = Some(name.clone());
                    out.push(f);
                }
            }
            (None, Some(app_id), _) if org.missing_apps.iter().any(|m| m == app_id) => {
                let mut f = Finding::new(
                    "app-missing",
                    &app_name,
                    format!(
                        "{name}'s External Client App {app_id} does not exist in this org any more: remove \
                         the entry (`sfvault rm {name}`) if the app is gone for good"
                    ),
                );
                f.app_id = Some(app_id.to_owned());
                f.entry = Some(name.clone());
                out.push(f);
            }
            // An app_id neither listed nor looked up: nothing can be said of it.
            (None, Some(_), _) => {}
            (None, None, Some(label)) => {
                if !by_label.contains_key(label) {
                    let mut f = Finding::new(
                        "app-unused",
                        field(entry, APP_LABEL).unwrap_or(&app_name),
                        format!(
                            "no user holds a token of the connected app {name} names: if nothing uses it any \
                             more, remove the entry and the app (or fix its app_label)"
                        ),
                    );
                    f.entry = Some(name.clone());
                    out.push(f);
                }
            }
            (None, None, None) => {
                let mut f = Finding::new(
                    "app-not-found",
                    "",
                    format!(
                        "no External Client App of this org has {name}'s consumer key: if it is a classic \
                         connected app, name it with `sfvault set {name} app_label 'Its Name'` so its tokens \
                         are audited; if it belongs to another org, audit that org with its own admin entry"
                    ),
                );
                f.entry = Some(name.clone());
                out.push(f);
            }
        }
        for secret_field in ["consumer_secret", "private_key"] {
            let Some(secret) = entry.fields.get(secret_field) else {
                continue;
            };
            if now - secret.changed_at <= limits.max_age_secs {
                continue;
            }
            let what = if secret_field == "private_key" {
                "JWT key"
            } else {
                "consumer secret"
            };
            let mut f = Finding::new(
                "rotation-due",
                eca.map_or(app_name.as_str(), |e| e.app.developer_name.as_str()),
                format!(
                    "{name}'s {what} is {} days old: {}",
                    days(now - secret.changed_at),
                    rotation::how_to_rotate(name, secret_field, eca.is_some())
                        .replace("--admin ADMIN", &format!("--admin {}", limits.admin))
                ),
            );
            f.app_id = eca.map(|e| e.app.id.clone());
            f.entry = Some(name.clone());
            out.push(f);
        }
    }
    out.sort_by(|a, b| {
        (&a.app, a.kind, &a.entry, &a.user_id).cmp(&(&b.app, b.kind, &b.entry, &b.user_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use crate::vault::model::VaultData;

    const NOW: Timestamp = 1_796_047_200; // 2026-11-30T14:00:00Z
    const DAY: i64 = 86_400;

    fn token(app: &str, user: &str, last_used_days: Option<i64>) -> UsageToken {
        UsageToken {
            app_id: app.into(),
            app_name: "ci_app".into(),
            user_id: user.into(),
            username: format!("{user}@acme"),
            initial_connection_at: Some(crate::timefmt::rfc3339(NOW - 400 * DAY)),
            last_used_at: last_used_days.map(|d| crate::timefmt::rfc3339(NOW - d * DAY)),
            use_count: 3,
            format: "Opaque".into(),
            token_id: Some(format!("t{user}")),
        }
    }

    fn row(label: &str, user: &str, last_used_days: Option<i64>) -> OauthTokenRow {
        OauthTokenRow {
            app_name: label.into(),
            user_id: user.into(),
            created_at: Some(crate::timefmt::rfc3339(NOW - 10 * DAY)),
            last_used_at: last_used_days.map(|d| crate::timefmt::rfc3339(NOW - d * DAY)),
            use_count: 1,
            delete_token: SecretString::new("dt".into()),
        }
    }

    fn entries(list: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, Entry> {
        let mut data = VaultData::default();
        for (name, fields) in list {
            let n = EntryName::parse(name).unwrap();
            data.add_entry(&n, NOW).unwrap();
            for (f, v) in *fields {
                let secret = *f == "consumer_secret";
                data.set_field(&n, f, SecretString::new((*v).into()), secret, NOW - DAY)
                    .unwrap();
            }
        }
        data.entries
    }

    fn limits() -> Limits {
        Limits {
            max_idle_secs: 90 * DAY,
            max_age_secs: 90 * DAY,
            admin: "acme/admin".into(),
        }
    }

    fn kinds(found: &[Finding]) -> Vec<(&'static str, String)> {
        found
            .iter()
            .map(|f| (f.kind, f.entry.clone().unwrap_or_else(|| f.app.clone())))
            .collect()
    }

    #[test]
    fn a_clean_org_has_no_findings() {
        let org = OrgAccess {
            ecas: vec![EcaUsage {
                app: AppRef {
                    id: "0xA".into(),
                    developer_name: "ci_app".into(),
                },
                keys: vec!["K1".into()],
                tokens: vec![token("0xA", "005U1", Some(1))],
            }],
            oauth_tokens: vec![row("Admin Tools", "005AD", Some(0))],
            counted_oauth_tokens: 1,
            missing_apps: Vec::new(),
        };
        let e = entries(&[
            (
                "acme/ci",
                &[("consumer_key", "K1"), ("consumer_secret", "S")],
            ),
            (
                "acme/admin",
                &[("consumer_key", "KA"), ("app_label", "Admin Tools")],
            ),
        ]);
        assert_eq!(findings(&org, &e, &limits(), NOW), Vec::new());
    }

    #[test]
    fn each_kind_is_found() {
        let org = OrgAccess {
            ecas: vec![
                EcaUsage {
                    app: AppRef {
                        id: "0xA".into(),
                        developer_name: "ci_app".into(),
                    },
                    keys: vec!["K1-NEW".into()],
                    tokens: vec![
                        token("0xA", "005U1", Some(1)),
                        token("0xA", "005U2", Some(200)),
                        token("0xA", "005U3", None),
                    ],
                },
                EcaUsage {
                    app: AppRef {
                        id: "0xB".into(),
                        developer_name: "quiet".into(),
                    },
                    keys: vec!["K2".into()],
                    tokens: vec![],
                },
                EcaUsage {
                    app: AppRef {
                        id: "0xC".into(),
                        developer_name: "stranger".into(),
                    },
                    keys: vec!["K3".into()],
                    tokens: vec![token("0xC", "005U9", Some(2))],
                },
            ],
            oauth_tokens: vec![
                row("Legacy", "005U4", Some(100)),
                row("Known", "005U5", Some(1)),
            ],
            counted_oauth_tokens: 2,
            missing_apps: vec!["0xDEAD".into()],
        };
        let e = entries(&[
            (
                "acme/ci",
                &[
                    ("consumer_key", "K1-OLD"),
                    ("app_id", "0xA"),
                    ("consumer_secret", "S"),
                ],
            ),
            ("acme/quiet", &[("consumer_key", "K2")]),
            ("acme/gone", &[("consumer_key", "KG"), ("app_id", "0xDEAD")]),
            ("acme/mystery", &[("consumer_key", "KM")]),
            (
                "acme/known",
                &[("consumer_key", "KK"), ("app_label", "Known")],
            ),
            (
                "acme/kelvin",
                &[("consumer_key", "KL"), ("app_label", "legacy")],
            ),
            (
                "acme/unused",
                &[("consumer_key", "KU"), ("app_label", "Nobody")],
            ),
        ]);
        let mut limits = limits();
        limits.max_age_secs = 0; // every secret is due
        let found = findings(&org, &e, &limits, NOW);
        let k = kinds(&found);
        for expected in [
            ("key-drift", "acme/ci"),
            ("idle-token", "ci_app"),
            ("app-unused", "acme/quiet"),
            ("app-missing", "acme/gone"),
            ("app-not-found", "acme/mystery"),
            ("app-unused", "acme/unused"),
            ("unknown-app", "stranger"),
            ("unknown-app", "Legacy"),
            ("idle-token", "Legacy"),
            ("rotation-due", "acme/ci"),
        ] {
            assert!(
                k.contains(&(expected.0, expected.1.to_owned())),
                "{expected:?} missing from {k:?}"
            );
        }
        // Two idle ECA tokens (200 days; never used, connected 400 days ago), one idle row.
        assert_eq!(
            found.iter().filter(|f| f.kind == "idle-token").count(),
            3,
            "{k:?}"
        );
        let idle = found
            .iter()
            .find(|f| f.kind == "idle-token" && f.user_id.as_deref() == Some("005U2"))
            .unwrap();
        assert_eq!(idle.token_id.as_deref(), Some("0xA/005U2/t005U2"));
        assert!(idle.detail.contains("for 200 days"), "{}", idle.detail);
        // Known apps are not unknown; the rotation command names the admin.
        assert!(!k.contains(&("unknown-app", "ci_app".to_owned())));
        assert!(!k.contains(&("unknown-app", "Known".to_owned())));
        // Labels are exact: "legacy" does not make "Legacy" known (and is itself unused).
        assert!(
            k.contains(&("app-unused", "acme/kelvin".to_owned())),
            "{k:?}"
        );
        // Labels are exact: "legacy" does not make "Legacy" known (and is itself unused).
        assert!(
            k.contains(&("app-unused", "acme/kelvin".to_owned())),
            "{k:?}"
        );
        let due = found.iter().find(|f| f.kind == "rotation-due").unwrap();
        assert!(
            due.detail.contains("--at-salesforce --admin acme/admin"),
            "{}",
            due.detail
        );
    }
}
