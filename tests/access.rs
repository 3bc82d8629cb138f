//! Who really holds access to an org: `audit --at-salesforce` and `revoke --at-salesforce`
//! through the real binary, against the fake Salesforce loaded with a realistic data set
//! (30 apps, 5,000 OauthToken rows over 200 users, ECAs with several pages of users).

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::Value;
use support::fake_sf::{ADMIN_APP_LABEL, AuditDataSet, EcaConfig, FakeSalesforce, Quirks, add_app};
use support::rotation_world::{ADMIN, admin_app};
use support::{TestVault, assert_json_error};

/// A vault whose admin entry is logged in, named after its app (so its own session is known).
fn org() -> (TestVault, FakeSalesforce) {
    let sf = FakeSalesforce::start(admin_app());
    let tv = TestVault::new();
    add_app(
        &tv,
        ADMIN,
        &admin_app(),
        Some(&sf.url),
        "client-credentials",
    );
    tv.ok(&["set", ADMIN, "app_label", ADMIN_APP_LABEL]);
    tv.ok(&["token", ADMIN]);
    (tv, sf)
}

fn add(tv: &TestVault, entry: &str, key: &str, fields: &[(&str, &str)]) {
    tv.ok_stdin(
        &[
            "add",
            entry,
            "--consumer-key",
            key,
            "--flow",
            "client-credentials",
        ],
        b"S",
    );
    for (f, v) in fields {
        tv.ok(&["set", entry, f, v]);
    }
}

fn audit(tv: &TestVault, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["--json", "audit", "--at-salesforce", ADMIN];
    args.extend_from_slice(extra);
    let out = tv.run(&args, None);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn findings<'a>(json: &'a Value, kind: &str) -> Vec<&'a Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// The realistic org, and a vault that knows part of it: ECA[0] and [8] (the latter has no
/// token), ECA[1] with a key Salesforce no longer has, the first 10 classic apps by label; an
/// entry for a deleted app and one for an app of no kind sfvault can find.
fn realistic() -> (TestVault, FakeSalesforce, AuditDataSet) {
    let (tv, sf) = org();
    let data = sf.load_audit_data_set();
    let e = &data.eca_ids;
    add(&tv, "acme/ci", &e[0].key, &[]);
    add(&tv, "acme/quiet", &e[8].key, &[]);
    add(
        &tv,
        "acme/drift",
        "3MVG9OLDKEYrotatedinsetup",
        &[("app_id", &e[1].app_id), ("consumer_id", &e[1].consumer_id)],
    );
    add(
        &tv,
        "acme/gone",
        "3MVG9GONE",
        &[("app_id", "0xGONE000000000000")],
    );
    add(&tv, "acme/mystery", "3MVG9MYSTERY", &[]);
    for (i, label) in data.classic_labels.iter().take(10).enumerate() {
        add(
            &tv,
            &format!("acme/classic{i}"),
            &format!("3MVG9C{i}"),
            &[("app_label", label)],
        );
    }
    // Another org's entry is not held against this one.
    add(&tv, "other/ci", "3MVG9OTHER", &[]);
    (tv, sf, data)
}

#[test]
fn each_finding_kind_on_a_realistic_org_and_no_row_lost() {
    let (tv, sf, data) = realistic();
    let before = sf.steps().len();
    let started = Instant::now();
    let (code, json, stderr) = audit(&tv, &["--max-age", "1d"]);
    let elapsed = started.elapsed();
    let mut by_step = std::collections::BTreeMap::new();
    for s in &sf.steps()[before..] {
        *by_step.entry(format!("{s:?}")).or_insert(0) += 1;
    }
    eprintln!("requests by step: {by_step:?}\n{stderr}");
    assert_eq!(code, 1, "{stderr}");
    // Peak memory of the largest child so far: the audit (the other runs are small commands).
    // SAFETY: getrusage only writes the struct it is given.
    let peak_kib = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    eprintln!(
        "audit of {} tokens: {elapsed:?}, {} requests, peak RSS of a child {peak_kib} KiB",
        json["tokens"], json["requests"]
    );
    assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
    // Every token counted once: ECA usage tokens and OauthToken rows (the admin's session too).
    let truth = sf.usage_tokens().len() + sf.oauth_tokens().len();
    assert_eq!(json["tokens"], truth, "{stderr}");
    assert!(
        sf.oauth_tokens().len() > 5_000,
        "the 2,500-row cap was in play"
    );
    assert_eq!(
        json["apps"],
        10 + 20 + 1,
        "10 ECAs, 20 classic apps, the admin's app"
    );
    // unknown-app: ECAs 2..8 (tokens, no entry) and classic apps 10..20; nothing else.
    let unknown: BTreeSet<String> = findings(&json, "unknown-app")
        .iter()
        .map(|f| f["app"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: BTreeSet<String> = data.eca_names[2..8].iter().cloned().collect();
    let with_rows: BTreeSet<String> = sf
        .oauth_tokens()
        .iter()
        .map(|r| r.app_name.clone())
        .collect();
    expected.extend(
        data.classic_labels[10..]
            .iter()
            .filter(|l| with_rows.contains(*l))
            .cloned(),
    );
    assert_eq!(unknown, expected);
    // idle-token: exactly the tokens last used 90 days ago or more (the fake dates them at whole
    // days before the moment it built the set, so by the audit a 90-day one is past the limit;
    // never-used ones are judged by when they were issued, which the data set does not say).
    let used_idle_truth = sf
        .usage_tokens()
        .iter()
        .filter(|t| t.last_used_days_ago.is_some_and(|d| d >= 90))
        .count()
        + sf.oauth_tokens()
            .iter()
            .filter(|r| r.last_used_days_ago.is_some_and(|d| d >= 90))
            .count();
    let idle = findings(&json, "idle-token");
    let used_idle = idle.iter().filter(|f| !f["last_used_at"].is_null()).count();
    assert!(used_idle_truth > 100, "the data set has idle tokens");
    assert_eq!(used_idle, used_idle_truth);
    // The vault's side.
    let of = |kind: &str| -> BTreeSet<String> {
        findings(&json, kind)
            .iter()
            .filter_map(|f| f["entry"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(of("key-drift"), BTreeSet::from(["acme/drift".to_owned()]));
    assert_eq!(of("app-missing"), BTreeSet::from(["acme/gone".to_owned()]));
    assert_eq!(
        of("app-not-found"),
        BTreeSet::from(["acme/mystery".to_owned()])
    );
    assert!(
        of("app-unused").contains("acme/quiet"),
        "{:?}",
        of("app-unused")
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, json, _) = audit(&tv, &["--max-age", "1s"]);
    let due = of_kind_entries(&json, "rotation-due");
    assert!(due.contains("acme/ci"), "{due:?}");
    assert!(!due.iter().any(|e| e.starts_with("other/")), "{due:?}");
    let ci = findings(&json, "rotation-due")
        .into_iter()
        .find(|f| f["entry"] == "acme/ci")
        .unwrap();
    assert!(
        ci["detail"]
            .as_str()
            .unwrap()
            .contains("consumer --at-salesforce --admin acme/admin")
    );
    // The text form groups by app.
    let out = tv.run(&["audit", "--at-salesforce", ADMIN], None);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("== {} (", data.eca_names[1])),
        "{text}"
    );
    assert!(text.contains("key-drift"));
}

fn of_kind_entries(json: &Value, kind: &str) -> BTreeSet<String> {
    findings(json, kind)
        .iter()
        .filter_map(|f| f["entry"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_clean_org_finds_nothing() {
    let (tv, sf) = org();
    let mut eca = support::fake_sf::EcaConfig {
        developer_name: "ci_app".into(),
        label: "CI".into(),
        username: "ci@acme.example".into(),
        certificate_pem: None,
        listed_in_usage: true,
    };
    let ids = sf.add_eca(eca.clone());
    sf.add_usage_token(
        &ids.app_id,
        "0055g00000UUUU1AAA",
        "u1@acme.example",
        Some(3),
        40,
    );
    sf.add_oauth_token("Data Loader", "0055g00000UUUU1AAA", Some(1), 7);
    add(&tv, "acme/ci", &ids.key, &[]);
    add(
        &tv,
        "acme/loader",
        "3MVG9LOADER",
        &[("app_label", "Data Loader")],
    );
    eca.developer_name = "other_app".into();
    let (code, json, stderr) = audit(&tv, &[]);
    assert_eq!(code, 0, "{json}\n{stderr}");
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
    assert!(stderr.contains("nothing found") || json["findings"] == Value::Array(vec![]));
    let out = tv.run(&["audit", "--at-salesforce", ADMIN], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing found"));
}

#[test]
fn revocation_by_token_user_and_app_never_the_admins_own() {
    let (tv, sf, data) = realistic();
    let admin_token = tv.get(ADMIN, "access_token");
    assert!(sf.is_live(&admin_token));
    let (_, json, _) = audit(&tv, &[]);
    // One idle ECA token, by the id audit gave.
    let idle = findings(&json, "idle-token")
        .into_iter()
        .find(|f| !f["token_id"].is_null())
        .expect("an idle ECA token");
    let id = idle["token_id"].as_str().unwrap();
    let token = id.rsplit('/').next().unwrap().to_owned();
    assert!(sf.usage_tokens().iter().any(|t| t.token_id == token));
    let out = tv.run(&["revoke", "--at-salesforce", ADMIN, "--token", id], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no terminal and no --yes: refused"
    );
    assert!(sf.usage_tokens().iter().any(|t| t.token_id == token));
    let out = tv.run(
        &[
            "--json",
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--token",
            id,
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["revoked"], 1);
    assert!(
        !sf.usage_tokens().iter().any(|t| t.token_id == token),
        "the token is gone"
    );
    // Again: Salesforce has nothing to revoke.
    let out = tv.run(
        &["revoke", "--at-salesforce", ADMIN, "--token", id, "--yes"],
        None,
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to revoke"));
    // A user's tokens of an ECA.
    let app = &data.eca_ids[1].app_id;
    let user = sf
        .usage_tokens()
        .iter()
        .find(|t| t.app_id == *app)
        .unwrap()
        .user_id
        .clone();
    let out = tv.run(
        &[
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            app,
            "--user",
            &user,
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !sf.usage_tokens()
            .iter()
            .any(|t| t.app_id == *app && t.user_id == user)
    );
    assert!(
        sf.usage_tokens().iter().any(|t| t.app_id == *app),
        "other users kept theirs"
    );
    // A classic app's tokens of one user, by its name.
    let row = sf
        .oauth_tokens()
        .into_iter()
        .find(|r| r.app_name == data.classic_labels[12])
        .unwrap();
    let before = sf.oauth_tokens().len();
    let of_user = sf
        .oauth_tokens()
        .iter()
        .filter(|r| r.app_name == row.app_name && r.user_id == row.user_id)
        .count();
    let out = tv.run(
        &[
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            &row.app_name,
            "--user",
            &row.user_id,
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sf.oauth_tokens().len(), before - of_user);
    // A whole ECA.
    let app = &data.eca_ids[3].app_id;
    let out = tv.run(
        &["revoke", "--at-salesforce", ADMIN, "--app", app, "--yes"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!sf.usage_tokens().iter().any(|t| t.app_id == *app));
    // Never the admin session's own token.
    let out = tv.run(
        &[
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            ADMIN_APP_LABEL,
            "--yes",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the admin session among them"));
    assert!(
        sf.is_live(&admin_token),
        "the admin's session survived everything"
    );
    assert!(
        sf.oauth_tokens()
            .iter()
            .any(|r| r.app_name == ADMIN_APP_LABEL)
    );
}

/// Not a check: the transcript docs/ACCESS.md shows. `cargo test --test access -- --ignored
/// --nocapture transcript_for_docs`.
#[test]
#[ignore = "prints a transcript for the docs"]
fn transcript_for_docs() {
    let (tv, sf) = org();
    let eca = |name: &str| support::fake_sf::EcaConfig {
        developer_name: name.into(),
        label: name.into(),
        username: format!("{name}@acme.example"),
        certificate_pem: None,
        listed_in_usage: true,
    };
    let ci = sf.add_eca(eca("ci_deploy"));
    let etl = sf.add_eca(eca("nightly_etl"));
    let stray = sf.add_eca(eca("old_hackathon"));
    sf.add_usage_token(
        &ci.app_id,
        "0055g00000UUUU1AAA",
        "build@acme.example",
        Some(0),
        4120,
    );
    sf.add_usage_token(
        &etl.app_id,
        "0055g00000UUUU2AAA",
        "etl@acme.example",
        Some(1),
        380,
    );
    sf.add_usage_token(
        &etl.app_id,
        "0055g00000UUUU3AAA",
        "jane@acme.example",
        Some(212),
        3,
    );
    sf.add_usage_token(
        &stray.app_id,
        "0055g00000UUUU3AAA",
        "jane@acme.example",
        Some(20),
        57,
    );
    sf.add_oauth_token("Data Loader", "0055g00000UUUU4AAA", Some(2), 96);
    sf.add_oauth_token("Workbench", "0055g00000UUUU4AAA", Some(130), 12);
    add(&tv, "acme/ci", &ci.key, &[]);
    add(
        &tv,
        "acme/etl",
        "3MVG9ETLKEYfromlastyear",
        &[("app_id", &etl.app_id), ("consumer_id", &etl.consumer_id)],
    );
    add(
        &tv,
        "acme/loader",
        "3MVG9LOADER",
        &[("app_label", "Data Loader")],
    );
    add(
        &tv,
        "acme/legacy",
        "3MVG9LEGACY",
        &[("app_id", "0xGONE000000000000")],
    );
    let show = |args: &[&str]| {
        let out = tv.run(args, None);
        println!("$ sfvault {}", args.join(" "));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
        println!("(exit {})\n", out.status.code().unwrap_or(-1));
    };
    show(&["audit", "--at-salesforce", ADMIN]);
    show(&[
        "--json",
        "audit",
        "--at-salesforce",
        ADMIN,
        "--max-idle",
        "180d",
    ]);
    show(&[
        "revoke",
        "--at-salesforce",
        ADMIN,
        "--app",
        &stray.app_id,
        "--yes",
    ]);
    show(&[
        "revoke",
        "--at-salesforce",
        ADMIN,
        "--app",
        "Workbench",
        "--user",
        "0055g00000UUUU4AAA",
        "--yes",
    ]);
    show(&[
        "revoke",
        "--at-salesforce",
        ADMIN,
        "--app",
        ADMIN_APP_LABEL,
        "--yes",
    ]);
}

#[test]
fn a_failure_midway_says_so_and_finds_nothing_invented() {
    use support::fake_sf::{Fault, Step};
    let (tv, sf, _) = realistic();
    for (step, fault, code) in [
        (Step::UsageTokens, Fault::Status500, 8),
        (Step::UsageUsers, Fault::DropAfter, 8),
        (Step::SoqlOauthToken, Fault::DropBefore, 8),
    ] {
        sf.fault(step, 3, fault);
        let out = tv.run(&["--json", "audit", "--at-salesforce", ADMIN], None);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{step:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No partial report: only the error object --json asks for.
        assert_json_error(&out, "network");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("127.0.0.1")
                || String::from_utf8_lossy(&out.stderr).contains("Salesforce")
        );
    }
    // Refused: the admin lacks the rights.
    sf.set_admin_permission(false);
    let out = tv.run(&["audit", "--at-salesforce", ADMIN], None);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("INSUFFICIENT_ACCESS"));
}

// ---- found in review ----

const U1: &str = "0055g00000UUUU1AAA";
const U2: &str = "0055g00000UUUU2AAA";
const U3: &str = "0055g00000UUUU3AAA";

fn eca(name: &str, listed: bool) -> EcaConfig {
    EcaConfig {
        developer_name: name.into(),
        label: name.into(),
        username: "ci@acme.example".into(),
        certificate_pem: None,
        listed_in_usage: listed,
    }
}

/// A rogue connected app whose label differs from a known one only by case (or by a Unicode
/// character that lowercases to ASCII: U+212A KELVIN SIGN -> 'k') is taken for the known one:
/// no unknown-app. And `revoke --app 'Data Kit'` revokes its tokens too.
#[test]
fn review_labels_are_not_case_folded_into_known_apps() {
    let (tv, sf) = org();
    sf.add_oauth_token("Data Kit", U1, Some(1), 7);
    sf.add_oauth_token("Data \u{212A}it", U2, Some(1), 7);
    add(&tv, "acme/kit", "3MVG9KIT", &[("app_label", "Data Kit")]);
    let (code, json, stderr) = audit(&tv, &[]);
    let unknown = findings(&json, "unknown-app");
    assert!(
        unknown.iter().any(|f| f["app"] == "Data \u{212A}it"),
        "rogue app hidden as the known one; exit {code}; {json}\n{stderr}"
    );
}

#[test]
fn review_revoke_by_label_revokes_only_that_label() {
    let (tv, sf) = org();
    sf.add_oauth_token("Data Kit", U1, Some(1), 7);
    sf.add_oauth_token("DATA KIT", U2, Some(1), 7);
    let out = tv.run(
        &[
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            "Data Kit",
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sf.oauth_tokens().iter().any(|r| r.app_name == "DATA KIT"),
        "another app's token was revoked: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The label comes from the network and is pasted between single quotes into a suggested
/// shell command: a quote in it breaks the command, or runs one.
#[test]
fn review_suggested_commands_quote_network_labels() {
    let (tv, sf) = org();
    sf.add_oauth_token("x'$(touch /tmp/pwned)'", U1, Some(1), 7);
    let (_, json, _) = audit(&tv, &[]);
    let f = findings(&json, "unknown-app");
    let detail = f[0]["detail"].as_str().unwrap();
    assert!(
        !detail.contains("--app 'x'$(touch /tmp/pwned)''"),
        "a pasted suggestion runs a command: {detail}"
    );
}

/// Revoking a whole ECA (3 users, 3 tokens) reports "revoked: 1 (Salesforce confirmed each)".
#[test]
fn review_revoke_app_reports_what_was_revoked() {
    let (tv, sf) = org();
    let ids = sf.add_eca(eca("ci_app", true));
    for u in [U1, U2, U3] {
        sf.add_usage_token(&ids.app_id, u, "u@acme.example", Some(1), 1);
    }
    let out = tv.run(
        &[
            "--json",
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            &ids.app_id,
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sf.usage_tokens().len(), 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["revoked"], 3, "{r}");
}

/// SALESFORCE-ROTATION.md: unconfirmed whether SOQL's ExternalClientApplication.Id is the
/// usage id (the fake's quirk soql_id_differs). With it, an existing ECA that never issued a
/// token is reported `app-missing` ("does not exist any more: remove the entry").
#[test]
fn review_an_existing_app_is_not_reported_missing_when_soql_ids_differ() {
    let (tv, sf) = org();
    sf.set_quirks(Quirks {
        soql_id_differs: true,
        ..Quirks::default()
    });
    let ids = sf.add_eca(eca("fresh_app", false));
    add(&tv, "acme/fresh", &ids.key, &[("app_id", &ids.app_id)]);
    let (_, json, _) = audit(&tv, &[]);
    let missing = findings(&json, "app-missing");
    assert!(missing.is_empty(), "a live app called missing: {json}");
}

/// The admin entry's app_label is stale (the app was renamed in Setup). Audit calls the
/// admin's own app unknown and suggests `revoke --app 'Admin Tools'`; run as suggested, it
/// ends the admin session (and every other user's).
#[test]
fn review_the_suggested_revoke_never_ends_the_admin_session() {
    let (tv, sf) = org();
    tv.ok(&["set", ADMIN, "app_label", "Admin Tools (old name)"]);
    let admin_token = tv.get(ADMIN, "access_token");
    let (_, json, _) = audit(&tv, &[]);
    let f = findings(&json, "unknown-app");
    let d = f
        .iter()
        .find(|f| f["app"] == ADMIN_APP_LABEL)
        .expect("admin app flagged");
    assert!(
        d["detail"]
            .as_str()
            .unwrap()
            .contains("--app 'Admin Tools'")
    );
    let out = tv.run(
        &[
            "revoke",
            "--at-salesforce",
            ADMIN,
            "--app",
            ADMIN_APP_LABEL,
            "--yes",
        ],
        None,
    );
    eprintln!(
        "exit {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sf.is_live(&admin_token), "the admin session was revoked");
}
