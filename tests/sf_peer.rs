//! The peer test (issue 14): Salesforce's own, unmodified `sf` CLI, run against the strict fake
//! Salesforce of tests/support (a real HTTP server on 127.0.0.1), through sfvault's hand-offs.
//!
//! It runs only when `SFVAULT_SF` names the sf wrapper that tests/peer/install-sf.sh prints:
//!
//! ```sh
//! SFVAULT_SF=$(tests/peer/install-sf.sh) cargo test --test sf_peer
//! ```
//!
//! Without it each test says loudly on stderr that it was skipped, and passes (CI always sets it:
//! .ci/run). A `SFVAULT_SF` that is set but does not run fails every test.
//!
//! Every test has its own world (tests/support: a temp HOME, TMPDIR and vault); sf runs with
//! that HOME and XDG directories inside it, in an empty working directory (no sfdx project),
//! with telemetry, update checks and release notes off, so it never reaches the internet, and
//! with `SF_USE_GENERIC_UNIX_KEYCHAIN=true` so it never touches a desktop keyring. At the end
//! every file of the world is scanned for the secrets: the consumer secret, a line of the entry's
//! private key, and every access and refresh token the fake issued.
//!
//! Every scenario passes:
//!
//! | scenario | test |
//! |---|---|
//! | a. `exec` → `sf org display`, `data query`, `limits api display`, classic token | passes |
//! | b. the same with JWT-based access tokens (`eyJ…`): `exec` writes an auth file in a throwaway sf home, removed when the command ends | passes |
//! | c. a cached token Salesforce killed (dead in sf within the 5-minute check interval, renewed with checks on); `exec --refresh` | passes |
//! | d. `eval "$(sfvault export --format env)"; sf org display` | passes |
//! | e. SFDX auth URL: export → `sf org login sfdx-url` → `sf org auth show-sfdx-auth-url` → import; then `import --from-sf --logout` from the store sf wrote | passes |
//! | f. JWT audience fallbacks | covered by tests/oauth.rs (`jwt_audiences_fall_back_as_sf_does_and_the_error_names_them`) |
//! | g. `exec --dev-hub ORG2/APP2` → `SF_TARGET_DEV_HUB`, the hub as an auth file in the throwaway home | passes |
//!
//! Besides those, tests named `sf_…` run sf alone (no sfvault) and pin down what sf 2.150.6
//! accepts, which is what sfvault's hand-offs must produce: only an opaque token
//! (`00D…!…`) works as `SF_TARGET_ORG`; a JWT-based one needs an auth file, which sf reads
//! unencrypted; a token in `SF_TARGET_DEV_HUB` is sent to `SF_ORG_INSTANCE_URL`, the target
//! org's instance, so a Dev Hub elsewhere needs an auth file too; an SFDX URL's host never has a
//! scheme for sf (it reads `https://HOST`, so `@http://…` goes nowhere).
//!
//! Scenario e writes sf's auth file by design (`sf org login` is asked to): sf encrypts the
//! secrets in it with the key it keeps beside it (`~/.sfdx/key.json`), so the scan there checks
//! that no secret is in any file in plain text, not that no file can yield it; once
//! `import --from-sf --logout` has had sf log out, no auth file is left.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use support::fake_sf::{
    ACCOUNTS, API_VERSION, AppConfig, FakeSalesforce, ORG_ID, SeenRequest, add_app,
};
use support::*;

const KEY: &str = "3MVG9peerConsumerKey";
const USERNAME: &str = "ci@acme.example.com";
/// Longest an sf command may take (it needs 1–3 s; the first run of a cold cache more).
const SF_TIMEOUT: Duration = Duration::from_secs(240);

/// The environment every sf child gets, besides HOME, TMPDIR and the XDG directories: nothing
/// that would reach the internet (telemetry, update checks, release notes) and no desktop
/// keyring.
const SF_QUIET: [(&str, &str); 14] = [
    ("SF_DISABLE_TELEMETRY", "true"),
    ("SFDX_DISABLE_TELEMETRY", "true"),
    ("SF_AUTOUPDATE_DISABLE", "true"),
    ("SFDX_AUTOUPDATE_DISABLE", "true"),
    ("SF_DISABLE_AUTOUPDATE", "true"),
    ("SFDX_DISABLE_AUTOUPDATE", "true"),
    ("SF_SKIP_NEW_VERSION_CHECK", "true"),
    ("SF_HIDE_RELEASE_NOTES", "true"),
    ("SF_HIDE_RELEASE_NOTES_FOOTER", "true"),
    ("SF_DISABLE_DNS_CHECK", "true"),
    ("SF_USE_GENERIC_UNIX_KEYCHAIN", "true"),
    ("SF_USE_PROGRESS_BAR", "false"),
    ("NO_COLOR", "1"),
    ("FORCE_COLOR", "0"),
];

/// The sf wrapper named by `SFVAULT_SF`, or None, said loudly, when it is not set.
fn sf_or_skip(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SFVAULT_SF") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            let runs =
                fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            assert!(
                runs,
                "SFVAULT_SF={} is not an executable file: run tests/peer/install-sf.sh, which prints the path",
                p.display()
            );
            Some(p)
        }
        _ => {
            // Straight to the process's stderr: the test harness captures eprintln! of passing
            // tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED sf_peer::{test}: SFVAULT_SF is not set, so Salesforce's sf CLI did not run.\n\
                 *** To run it: SFVAULT_SF=$(tests/peer/install-sf.sh) cargo test --test sf_peer"
            );
            None
        }
    }
}

/// A client-credentials world for `test`, or `None` (the test skipped) without sf.
fn client_credentials_world(test: &str) -> Option<World> {
    sf_or_skip(test).map(World::client_credentials)
}

/// One world: a vault with `acme/ci` (consumer key and secret, a private key that is never
/// handed out) on a fake Salesforce, and the sf to run.
struct World {
    tv: TestVault,
    fake: FakeSalesforce,
    app: AppConfig,
    sf: PathBuf,
    /// A line of the entry's private key (a canary: no file may hold it).
    key_line: String,
    /// sf's working directory: empty, so sf finds no sfdx project and writes no local config.
    work: PathBuf,
}

fn app() -> AppConfig {
    AppConfig {
        consumer_key: KEY.into(),
        consumer_secret: canary("peer-secret"),
        username: USERNAME.into(),
        ..AppConfig::default()
    }
}

impl World {
    /// `acme/ci` with `flow` on `fake`.
    fn new(sf: PathBuf, fake: FakeSalesforce, app: AppConfig, flow: &str) -> World {
        let tv = TestVault::new();
        add_app(&tv, "acme/ci", &app, Some(&fake.url), flow);
        let pem = fake_pem(&canary("peer-key"));
        tv.ok_stdin(&["set", "acme/ci", "private_key", "-"], pem.as_bytes());
        let key_line = pem.lines().nth(1).unwrap().to_owned();
        let work = tv.root.path().join("work");
        fs::create_dir(&work).unwrap();
        World {
            tv,
            fake,
            app,
            sf,
            key_line,
            work,
        }
    }

    /// A client-credentials app on a plain-http fake.
    fn client_credentials(sf: PathBuf) -> World {
        let app = app();
        World::new(
            sf,
            FakeSalesforce::start(app.clone()),
            app,
            "client-credentials",
        )
    }

    /// sfvault, with sf's environment added (what `exec` passes on to it).
    fn sfvault(&self) -> Command {
        let mut cmd = self.tv.cmd();
        sf_env(&mut cmd, &self.tv.home);
        cmd.current_dir(&self.work);
        cmd
    }

    /// sf alone, in this world's HOME (or `home`), with a clean environment.
    fn sf_in(&self, home: &Path) -> Command {
        let mut cmd = Command::new(&self.sf);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("TMPDIR", &self.tv.tmp)
            .env("LANG", "C.UTF-8")
            .current_dir(&self.work);
        sf_env(&mut cmd, home);
        cmd
    }

    fn sf(&self) -> Command {
        self.sf_in(&self.tv.home)
    }

    /// `bash -c SCRIPT` with what sfvault would see (and its passphrase source), `$SFVAULT` and
    /// `$SF` naming the two programs, and `env`.
    fn shell(&self, script: &str, env: &[(&str, &Path)]) -> Output {
        let mut bash = Command::new("bash");
        bash.env_clear();
        for (k, v) in self.sfvault().get_envs() {
            if let Some(v) = v {
                bash.env(k, v);
            }
        }
        bash.env("SFVAULT", env!("CARGO_BIN_EXE_sfvault"))
            .env("SF", &self.sf)
            .current_dir(&self.work);
        for (k, v) in env {
            bash.env(k, v);
        }
        run(bash, &["-c", script], None)
    }

    /// `sfvault exec acme/ci [extra…] -- sf ARGS…`.
    fn exec_sf(&self, extra: &[&str], args: &[&str]) -> Output {
        self.exec_sf_env(extra, args, &[])
    }

    /// [`World::exec_sf`] with more in sfvault's environment.
    fn exec_sf_env(&self, extra: &[&str], args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["exec", "acme/ci"];
        all.extend(extra);
        all.push("--");
        all.push(self.sf.to_str().unwrap());
        all.extend(args);
        let mut cmd = self.sfvault();
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, &all, None)
    }

    /// The secrets no file of the world may hold in plain text.
    fn secrets(&self) -> Vec<(String, String)> {
        let mut s = vec![
            (
                "consumer secret".to_owned(),
                self.app.consumer_secret.clone(),
            ),
            ("private key line".to_owned(), self.key_line.clone()),
        ];
        for t in self.fake.issued() {
            s.push((format!("token {}…", &t[..t.len().min(12)]), t));
        }
        s
    }

    /// No file anywhere in the world (HOME with sf's ~/.sf, ~/.sfdx and XDG directories, TMPDIR,
    /// the working directory) holds a secret in plain text.
    fn assert_no_secret_in_files(&self) {
        let secrets = self.secrets();
        assert!(
            secrets.len() > 2,
            "the fake issued no token: nothing was tested"
        );
        for f in files_under(self.tv.root.path()) {
            let bytes = fs::read(&f).unwrap_or_default();
            for (what, value) in &secrets {
                assert!(
                    !contains(&bytes, value.as_bytes()),
                    "{} holds the {what}",
                    f.display()
                );
            }
        }
    }
}

/// sf's environment: HOME's XDG directories and [`SF_QUIET`].
fn sf_env(cmd: &mut Command, home: &Path) {
    cmd.env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"));
    for (k, v) in SF_QUIET {
        cmd.env(k, v);
    }
}

/// Run with a deadline, feeding `stdin` if given.
fn run(cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.args(args).timeout(SF_TIMEOUT);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes.to_vec());
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("{args:?} did not finish within {SF_TIMEOUT:?}: {e}"))
}

/// sf's `--json` answer, which must be JSON whatever the outcome.
fn sf_json(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: sf's stdout is not JSON ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// sf's `--json` answer of a command that must succeed: exit 0 and `"status": 0`.
fn sf_ok(out: &Output, what: &str) -> Value {
    let v = sf_json(out, what);
    assert!(
        out.status.success() && v["status"] == 0,
        "{what} failed: exit {:?}\n{v:#}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    v["result"].clone()
}

/// sf's requests to `fake` (not sfvault's).
fn sf_requests(fake: &FakeSalesforce) -> Vec<SeenRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| !r.by_sfvault())
        .collect()
}

/// Files of an org's auth in `home`: anything holding sf's `accessToken` or `refreshToken` key.
fn sf_auth_files(home: &Path) -> Vec<PathBuf> {
    files_under(home)
        .into_iter()
        .filter(|f| {
            let bytes = fs::read(f).unwrap_or_default();
            contains(&bytes, b"\"accessToken\"") || contains(&bytes, b"\"refreshToken\"")
        })
        .collect()
}

/// Given a token in its environment, sf 2.150.6 writes three files and no more: its log
/// (`~/.sf/sf-DATE.log`), its (empty) alias list and the key it encrypts auth files with, made
/// because reading any org's state starts its crypto (`~/.sfdx/alias.json`, `~/.sfdx/key.json`).
/// Everything else in HOME must be sfvault's.
fn assert_sf_wrote_only_its_own_state(home: &Path) {
    for f in files_under(home) {
        let rel = f.strip_prefix(home).unwrap().to_string_lossy().into_owned();
        let ok = rel.starts_with(".local/share/sfvault/")
            || rel.starts_with(".local/state/sfvault/")
            || rel == ".sfdx/key.json"
            || rel == ".sfdx/alias.json"
            || rel.starts_with(".sf/sf-") && rel.ends_with(".log") && !rel[4..].contains('/');
        assert!(ok, "sf wrote {rel} (HOME holds {:#?})", files_under(home));
    }
}

/// The three commands of scenarios a and b, through `exec`; each answer checked.
fn display_query_limits(w: &World) {
    let shown = sf_ok(
        &w.exec_sf(&[], &["org", "display", "--json"]),
        "exec -- sf org display",
    );
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    assert_eq!(shown["instanceUrl"], json!(w.fake.url), "{shown:#}");
    let queried = sf_ok(
        &w.exec_sf(
            &[],
            &[
                "data",
                "query",
                "--query",
                "SELECT Id, Name FROM Account",
                "--json",
            ],
        ),
        "exec -- sf data query",
    );
    assert_eq!(queried["totalSize"], 2, "{queried:#}");
    let names: Vec<&str> = queried["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ACCOUNTS.map(|(_, n)| n), "{queried:#}");
    let limits = sf_ok(
        &w.exec_sf(&[], &["limits", "api", "display", "--json"]),
        "exec -- sf limits api display",
    );
    let daily = limits
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "DailyApiRequests")
        .unwrap_or_else(|| panic!("no DailyApiRequests in {limits:#}"));
    assert_eq!(daily["max"], 15000);
    // sf talked to the org with a live token every time.
    let seen = sf_requests(&w.fake);
    assert!(
        seen.iter().any(|r| r.path.ends_with("/limits")) && seen.iter().all(|r| r.status < 400),
        "{seen:#?}"
    );
}

// --- a. exec with a classic token ---------------------------------------------------------

#[test]
fn a_exec_hands_sf_a_classic_token_and_sf_writes_no_auth_file() {
    let Some(w) =
        client_credentials_world("a_exec_hands_sf_a_classic_token_and_sf_writes_no_auth_file")
    else {
        return;
    };
    display_query_limits(&w);
    let token = sf_requests(&w.fake)
        .iter()
        .find_map(|r| r.bearer.clone())
        .unwrap();
    assert!(token.starts_with(&format!("{}!", &ORG_ID[..15])), "{token}");
    assert!(w.fake.is_live(&token));
    assert_eq!(
        w.fake.count("/services/oauth2/token"),
        1,
        "one token for three commands (the cached one)"
    );
    assert_eq!(sf_auth_files(&w.tv.home), Vec::<PathBuf>::new());
    assert_sf_wrote_only_its_own_state(&w.tv.home);
    w.assert_no_secret_in_files();
}

// --- b. exec with a JWT-based access token ------------------------------------------------

#[test]
fn b_exec_hands_sf_a_jwt_access_token_and_leaves_nothing() {
    let Some(w) = client_credentials_world("b_exec_hands_sf_a_jwt_access_token_and_leaves_nothing")
    else {
        return;
    };
    w.fake.issue_jwt_access_tokens();
    // The user's own sf state, which sfvault must leave alone.
    let own = w.tv.home.join(".sfdx");
    fs::create_dir_all(&own).unwrap();
    let alias = r#"{"orgs":{"mine":"me@elsewhere.example.com"}}"#;
    fs::write(own.join("alias.json"), alias).unwrap();
    display_query_limits(&w);
    let used: Vec<String> = sf_requests(&w.fake)
        .iter()
        .filter_map(|r| r.bearer.clone())
        .collect();
    assert!(
        !used.is_empty() && used.iter().all(|t| t.starts_with("eyJ")),
        "{used:?}"
    );
    assert_eq!(fs::read_to_string(own.join("alias.json")).unwrap(), alias);
    assert_eq!(
        sf_auth_files(w.tv.root.path()),
        Vec::<PathBuf>::new(),
        "an auth file outlived the command"
    );
    w.assert_no_secret_in_files();
}

/// What sf does with a JWT-based access token in `SF_TARGET_ORG`, today: it takes only opaque
/// ones (`00D…!…`) in place of a username (@salesforce/core 9.4.0, `AuthInfo.init`:
/// `matchesOpaqueAccessToken(oauthUsername)`), so a JWT one is looked up as a username with no
/// auth file. Fails when sf learns to take them: then `exec` can hand them over as it does
/// classic ones.
#[test]
fn sf_takes_only_an_opaque_token_as_target_org() {
    let Some(w) = client_credentials_world("sf_takes_only_an_opaque_token_as_target_org") else {
        return;
    };
    w.fake.issue_jwt_access_tokens();
    let jwt = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    assert!(
        jwt.starts_with("eyJ") && jwt.split('.').count() == 3,
        "{jwt}"
    );
    let mut cmd = w.sf();
    cmd.env("SF_TARGET_ORG", &jwt)
        .env("SF_ORG_INSTANCE_URL", &w.fake.url);
    let refused = sf_json(
        &run(cmd, &["org", "display", "--json"], None),
        "sf org display",
    );
    assert_eq!(refused["name"], "NoDefaultEnvError", "{refused:#}");
    let mut cmd = w.sf();
    cmd.env("SF_ORG_INSTANCE_URL", &w.fake.url);
    let refused = sf_json(
        &run(
            cmd,
            &["org", "display", "--target-org", &jwt, "--json"],
            None,
        ),
        "sf org display --target-org",
    );
    assert_eq!(refused["name"], "NamedOrgNotFoundError", "{refused:#}");
    assert!(
        sf_requests(&w.fake).is_empty(),
        "sf sent a request: {:#?}",
        w.fake.requests()
    );
}

/// The way a JWT-based token reaches sf today, by hand: an auth file `~/.sfdx/USERNAME.json`
/// with plain (unencrypted) fields, in a HOME made for the command, and `SF_TARGET_ORG=USERNAME`.
/// sf decrypts only values shaped like its ciphertext (`HEX:32 HEX`), so plain ones pass; it
/// makes its key (`~/.sfdx/key.json`, 0600) on first use, and rewrites the auth file, the token
/// now encrypted, after fetching the API version and the Organization record, unless the file
/// already holds them (`instanceApiVersion` with `instanceApiVersionLastRetrieved` under 24 hours
/// old, `orgEdition` and `namespacePrefix`).
#[test]
fn sf_reads_a_plain_auth_file_from_a_throwaway_home() {
    let Some(w) = client_credentials_world("sf_reads_a_plain_auth_file_from_a_throwaway_home")
    else {
        return;
    };
    w.fake.issue_jwt_access_tokens();
    let jwt = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    // The least sf needs: the token and where the org is.
    let home = w.tv.root.path().join("sf-home");
    let file = home.join(format!(".sfdx/{USERNAME}.json"));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_private(
        &file,
        json!({"accessToken": jwt, "instanceUrl": w.fake.url, "loginUrl": w.fake.url,
               "orgId": ORG_ID, "username": USERNAME})
        .to_string()
        .as_bytes(),
    );
    let sf_here = || {
        let mut cmd = w.sf_in(&home);
        cmd.env("SF_TARGET_ORG", USERNAME);
        cmd
    };
    let shown = sf_ok(
        &run(sf_here(), &["org", "display", "--json"], None),
        "sf org display",
    );
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    assert_eq!(shown["username"], USERNAME);
    assert_eq!(shown["id"], ORG_ID);
    let queried = sf_ok(
        &run(
            sf_here(),
            &[
                "data",
                "query",
                "--query",
                "SELECT Id, Name FROM Account",
                "--json",
            ],
            None,
        ),
        "sf data query",
    );
    assert_eq!(queried["totalSize"], 2);
    sf_ok(
        &run(sf_here(), &["limits", "api", "display", "--json"], None),
        "sf limits api display",
    );
    assert!(
        sf_requests(&w.fake)
            .iter()
            .all(|r| r.status < 400 && r.bearer.as_deref().is_none_or(|t| t == jwt))
    );
    // What sf left: its key, and the auth file rewritten with the token encrypted by that key.
    let key = home.join(".sfdx/key.json");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let rewritten: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let stored = rewritten["accessToken"].as_str().unwrap();
    assert!(stored != jwt && stored.contains(':'), "{rewritten:#}");
    assert_eq!(
        rewritten["orgEdition"], "Developer Edition",
        "{rewritten:#}"
    );
    assert!(rewritten["instanceApiVersion"].is_string(), "{rewritten:#}");

    // With what sf would fetch already in the file, sf leaves the file as it was written.
    let plain = json!({"accessToken": jwt, "instanceUrl": w.fake.url, "loginUrl": w.fake.url,
                       "orgId": ORG_ID, "username": USERNAME,
                       "instanceApiVersion": API_VERSION,
                       "instanceApiVersionLastRetrieved": now_iso(),
                       "orgEdition": "Developer Edition", "namespacePrefix": null})
    .to_string();
    fs::remove_dir_all(&home).unwrap();
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_private(&file, plain.as_bytes());
    let before = w.fake.requests().len();
    let shown = sf_ok(
        &run(sf_here(), &["org", "display", "--json"], None),
        "sf org display, full auth file",
    );
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    assert_eq!(fs::read_to_string(&file).unwrap(), plain, "sf rewrote it");
    let paths: Vec<String> = w.fake.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !paths.iter().any(|p| p == "/services/data"),
        "sf still asked for the versions: {paths:?}"
    );
    fs::remove_dir_all(&home).unwrap();
}

/// Now, as `2026-11-30T12:00:00Z` (sf takes any date `Date.parse` reads).
fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    sfvault::timefmt::rfc3339(secs)
}

// --- c. a dead token ----------------------------------------------------------------------

#[test]
fn c_exec_renews_a_token_salesforce_killed() {
    let Some(w) = client_credentials_world("c_exec_renews_a_token_salesforce_killed") else {
        return;
    };
    let dead = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    assert!(w.fake.expire(&dead));
    // Within 5 minutes of Salesforce last accepting it (here: of its issue), the cached token is
    // handed over unchecked (README: SFVAULT_TOKEN_CHECK_SECS). sf, which cannot renew a
    // token-only org, then says so in connectedStatus, and still exits 0.
    let shown = sf_ok(
        &w.exec_sf(&[], &["org", "display", "--json"]),
        "exec -- sf org display, the dead token not checked yet",
    );
    assert_eq!(
        shown["connectedStatus"], "Session expired or invalid",
        "{shown:#}"
    );
    assert!(
        !w.fake
            .requests()
            .iter()
            .any(|r| r.by_sfvault() && r.bearer.is_some()),
        "sfvault checked the token within the check interval"
    );
    // Checked every time: the dead token is found dead (a call that needs a token: the public
    // versions list would not tell), and a new one goes to sf.
    let shown = sf_ok(
        &w.exec_sf_env(
            &[],
            &["org", "display", "--json"],
            &[("SFVAULT_TOKEN_CHECK_SECS", "0")],
        ),
        "exec -- sf org display, the token checked",
    );
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    let checks: Vec<SeenRequest> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.by_sfvault() && r.bearer.as_deref() == Some(&dead))
        .collect();
    assert!(
        checks.len() == 1 && checks[0].status == 401,
        "sfvault's checks of the dead token: {checks:#?}"
    );
    assert_eq!(w.fake.count("/services/oauth2/token"), 2);
    let after_check = w
        .fake
        .requests()
        .into_iter()
        .skip_while(|r| !(r.by_sfvault() && r.status == 401))
        .filter(|r| !r.by_sfvault())
        .collect::<Vec<_>>();
    assert!(
        !after_check.is_empty()
            && after_check
                .iter()
                .all(|r| r.status < 400 && r.bearer.as_deref() != Some(&dead)),
        "{after_check:#?}"
    );
    w.assert_no_secret_in_files();
}

#[test]
fn c_exec_refresh_hands_sf_a_new_token() {
    let Some(w) = client_credentials_world("c_exec_refresh_hands_sf_a_new_token") else {
        return;
    };
    let old = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    let shown = sf_ok(
        &w.exec_sf(&["--refresh"], &["org", "display", "--json"]),
        "exec --refresh -- sf org display",
    );
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    assert_eq!(w.fake.count("/services/oauth2/token"), 2);
    let used: Vec<String> = sf_requests(&w.fake)
        .iter()
        .filter_map(|r| r.bearer.clone())
        .collect();
    assert!(
        !used.is_empty() && used.iter().all(|t| *t != old && w.fake.is_live(t)),
        "{used:?}"
    );
    w.assert_no_secret_in_files();
}

// --- d. export --format env, then sf in the same shell ------------------------------------

#[test]
fn d_sf_works_in_the_shell_that_evaluated_export_env() {
    let Some(w) = client_credentials_world("d_sf_works_in_the_shell_that_evaluated_export_env")
    else {
        return;
    };
    let script =
        r#"eval "$("$SFVAULT" export acme/ci --format env)" && exec "$SF" org display --json"#;
    let shown = sf_ok(&w.shell(script, &[]), "eval export env; sf org display");
    assert_eq!(shown["connectedStatus"], "Connected", "{shown:#}");
    assert_eq!(shown["instanceUrl"], json!(w.fake.url));
    assert_eq!(shown["id"], &ORG_ID[..15]);
    assert!(sf_requests(&w.fake).iter().all(|r| r.status < 400));
    assert_eq!(sf_auth_files(&w.tv.home), Vec::<PathBuf>::new());
    assert_sf_wrote_only_its_own_state(&w.tv.home);
    w.assert_no_secret_in_files();
}

// --- e. the SFDX auth URL, through sf and back ----------------------------------------------

#[test]
fn e_sfdx_url_round_trips_through_sf_login_and_back() {
    let Some(sf) = sf_or_skip("e_sfdx_url_round_trips_through_sf_login_and_back") else {
        return;
    };
    // sf reads the URL's host as https://HOST (it has no way to say http), so this org is the
    // fake behind https, its CA given to node.
    let app = app();
    let fake = FakeSalesforce::start_tls(app.clone());
    let w = World::new(sf, fake, app, "web");
    let refresh = w.fake.mint_refresh_token();
    w.tv.ok_stdin(
        &["set", "acme/ci", "refresh_token", "-"],
        refresh.as_bytes(),
    );
    let ca = w.tv.root.path().join("fake-ca.pem");
    fs::write(&ca, w.fake.ca_pem().unwrap()).unwrap();
    let exported = w.tv.ok(&["export", "acme/ci", "--format", "sfdx-url"]);
    let port = w.fake.url.rsplit(':').next().unwrap();
    assert_eq!(
        exported,
        format!(
            "force://{KEY}:{}:{refresh}@127.0.0.1:{port}\n",
            w.app.consumer_secret
        )
    );
    let sf_tls = || {
        let mut cmd = w.sf();
        cmd.env("NODE_EXTRA_CA_CERTS", &ca);
        cmd
    };
    let node_ca = [("NODE_EXTRA_CA_CERTS", ca.as_path())];
    // The README's recipe, `sfvault export … | sf org login sfdx-url --sfdx-url-stdin`. sf
    // (oclif's readStdin) takes stdin only if it reaches its end within 10 ms of sf reading its
    // flags, so the URL must be in the pipe, whole, by then: here it is made first.
    let login = sf_ok(
        &w.shell(
            r#"url=$("$SFVAULT" export acme/ci --format sfdx-url) &&
               printf '%s\n' "$url" |
               "$SF" org login sfdx-url --alias peer --sfdx-url-stdin --json"#,
            &node_ca,
        ),
        "sfvault export | sf org login sfdx-url --sfdx-url-stdin",
    );
    assert_eq!(login["username"], USERNAME, "{login:#}");
    assert_eq!(login["orgId"], ORG_ID, "{login:#}");
    assert_eq!(login["instanceUrl"], json!(w.fake.url), "{login:#}");
    // A URL that comes later (a passphrase prompt, a slow unlock) is not read at all: here it
    // comes once sf is done.
    let late = sf_json(
        &w.shell(
            r#"p="$TMPDIR/late-writer.pid"
               { sleep 600 & echo $! >"$p"; wait; "$SFVAULT" export acme/ci --format sfdx-url; } |
               { "$SF" org login sfdx-url --sfdx-url-stdin --json
                 while [ ! -s "$p" ]; do sleep 0.05; done; kill "$(cat "$p")"; }"#,
            &node_ca,
        ),
        "a late URL on --sfdx-url-stdin",
    );
    assert_eq!(
        late["message"], "Flag --sfdx-url-stdin expects a value",
        "{late:#}"
    );
    // …while --sfdx-url-file /dev/stdin waits for it: the pipe that always works.
    let again = sf_ok(
        &w.shell(
            r#"{ sleep 1; "$SFVAULT" export acme/ci --format sfdx-url; } |
               "$SF" org login sfdx-url --sfdx-url-file /dev/stdin --alias peer --json"#,
            &node_ca,
        ),
        "sfvault export | sf org login sfdx-url --sfdx-url-file /dev/stdin",
    );
    assert_eq!(again, login);
    // sf logged in with the refresh token (and found the user), nothing else.
    let token_calls: Vec<SeenRequest> = sf_requests(&w.fake)
        .into_iter()
        .filter(|r| r.path == "/services/oauth2/token")
        .collect();
    assert_eq!(token_calls.len(), 2, "{token_calls:#?}");
    assert!(token_calls.iter().all(|r| r.status == 200));
    let shown = sf_ok(
        &run(
            sf_tls(),
            &[
                "org",
                "auth",
                "show-sfdx-auth-url",
                "--target-org",
                USERNAME,
                "--json",
            ],
            None,
        ),
        "sf org auth show-sfdx-auth-url",
    );
    let url = shown["sfdxAuthUrl"].as_str().unwrap();
    assert_eq!(url, exported.trim(), "{shown:#}");
    w.tv.ok_stdin(
        &["import", "acme/copy", "--format", "sfdx-url"],
        url.as_bytes(),
    );
    for field in [
        "consumer_key",
        "consumer_secret",
        "refresh_token",
        "login_url",
    ] {
        assert_eq!(
            w.tv.get("acme/copy", field),
            w.tv.get("acme/ci", field),
            "{field}"
        );
    }
    // sf keeps the login it was asked to make, its secrets encrypted (by design: see the top).
    let auth = sf_auth_files(&w.tv.home);
    assert_eq!(
        auth,
        [w.tv.home.join(format!(".sfdx/{USERNAME}.json"))],
        "sf's auth files"
    );
    w.assert_no_secret_in_files();

    // And back from sf's own store, as the real sf wrote it (its key, made by sf, in
    // ~/.sfdx/key.json): `import --from-sf` decrypts the login, proves it with a token of its
    // own (over https: sfvault trusts NODE_EXTRA_CA_CERTS as sf does), and has sf log out.
    let mut cmd = w.sfvault();
    let path = std::env::join_paths(std::iter::once(w.sf.parent().unwrap().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    cmd.env("NODE_EXTRA_CA_CERTS", &ca).env("PATH", path);
    let out = run(
        cmd,
        &["--json", "import", "--from-sf", "peer", "--logout"],
        None,
    );
    assert_success(&out, &["import --from-sf peer --logout"]);
    let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        imported,
        json!([{"username": USERNAME, "entry": "peer/sf", "proven": true, "logged_out": true,
                "problem": null}])
    );
    for field in ["consumer_key", "consumer_secret", "refresh_token"] {
        assert_eq!(
            w.tv.get("peer/sf", field),
            w.tv.get("acme/ci", field),
            "{field}"
        );
    }
    let proof = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.by_sfvault() && r.path == "/services/oauth2/token")
        .collect::<Vec<_>>();
    assert!(
        proof.len() == 1 && proof[0].status == 200,
        "sfvault's proof: {proof:#?}"
    );
    assert_eq!(sf_auth_files(&w.tv.home), Vec::<PathBuf>::new());
    w.assert_no_secret_in_files();
}

/// How sf 2.150.6 writes and reads an SFDX auth URL's host: `new URL(instanceUrl).host`, never
/// a scheme (`AuthInfo.getSfdxAuthUrl`), and `https://` + `[a-zA-Z0-9:._-]+` after `@`
/// (`AuthInfo.parseSfdxAuthUrl`). So `@http://127.0.0.1:PORT` is read as `https://http:` and
/// goes nowhere, and a login on an http instance comes out as `@127.0.0.1:PORT`: sf has no way
/// to say http in an SFDX URL.
#[test]
fn sf_writes_and_reads_an_sfdx_url_host_without_a_scheme() {
    let Some(w) = client_credentials_world("sf_writes_and_reads_an_sfdx_url_host_without_a_scheme")
    else {
        return;
    };
    let refresh = w.fake.mint_refresh_token();
    let hostport = w.fake.url.trim_start_matches("http://");
    let with_scheme = format!(
        "force://{KEY}:{}:{refresh}@http://{hostport}\n",
        w.app.consumer_secret
    );
    let refused = sf_json(
        &run(
            w.sf(),
            &[
                "org",
                "login",
                "sfdx-url",
                "--sfdx-url-file",
                "/dev/stdin",
                "--json",
            ],
            Some(with_scheme.as_bytes()),
        ),
        "sf org login sfdx-url @http://",
    );
    assert_ne!(refused["status"], 0, "{refused:#}");
    assert!(
        w.fake.requests().is_empty(),
        "the http server was reached: {:#?}",
        w.fake.requests()
    );
    // A login on the http instance, written as sf writes one (plain fields, read as they are).
    let file = w.tv.home.join(format!(".sfdx/{USERNAME}.json"));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_private(
        &file,
        json!({"accessToken": "00D5g000000XXXX!AQnone", "refreshToken": refresh,
               "clientId": KEY, "clientSecret": w.app.consumer_secret,
               "instanceUrl": w.fake.url, "loginUrl": w.fake.url, "orgId": ORG_ID,
               "username": USERNAME})
        .to_string()
        .as_bytes(),
    );
    let shown = sf_ok(
        &run(
            w.sf(),
            &[
                "org",
                "auth",
                "show-sfdx-auth-url",
                "--target-org",
                USERNAME,
                "--json",
            ],
            None,
        ),
        "sf org auth show-sfdx-auth-url, http instance",
    );
    assert_eq!(
        shown["sfdxAuthUrl"],
        format!(
            "force://{KEY}:{}:{refresh}@{hostport}",
            w.app.consumer_secret
        ),
        "{shown:#}"
    );
    fs::remove_file(&file).unwrap();
}

// --- g. a Dev Hub beside the target org --------------------------------------------------------

/// A second org, a Dev Hub, as `acme/hub` in `w`'s vault, on its own fake.
fn add_dev_hub(w: &World) -> (FakeSalesforce, AppConfig) {
    let hub_app = AppConfig {
        consumer_key: "3MVG9peerHubKey".into(),
        consumer_secret: canary("peer-hub-secret"),
        username: "hub@acme.example.com".into(),
        ..AppConfig::default()
    };
    let hub = FakeSalesforce::start(hub_app.clone());
    hub.make_dev_hub();
    add_app(
        &w.tv,
        "acme/hub",
        &hub_app,
        Some(&hub.url),
        "client-credentials",
    );
    (hub, hub_app)
}

#[test]
fn g_exec_dev_hub_hands_sf_a_dev_hub() {
    let Some(w) = client_credentials_world("g_exec_dev_hub_hands_sf_a_dev_hub") else {
        return;
    };
    let (hub, hub_app) = add_dev_hub(&w);
    let listed = sf_ok(
        &w.exec_sf(&["--dev-hub", "acme/hub"], &["package", "list", "--json"]),
        "exec --dev-hub -- sf package list",
    );
    assert_eq!(listed, json!([]));
    let at_hub = sf_requests(&hub);
    assert!(
        at_hub
            .iter()
            .any(|r| r.path.ends_with("/tooling/query") && r.status == 200),
        "the hub was not asked for its packages: {at_hub:#?}"
    );
    assert!(at_hub.iter().all(|r| r.status < 400), "{at_hub:#?}");
    assert!(sf_requests(&w.fake).iter().all(|r| r.status < 400));
    // The target org is still the one sf works on.
    let shown = sf_ok(
        &w.exec_sf(&["--dev-hub", "acme/hub"], &["org", "display", "--json"]),
        "exec --dev-hub -- sf org display",
    );
    assert_eq!(shown["instanceUrl"], json!(w.fake.url));
    assert_eq!(shown["connectedStatus"], "Connected");
    assert_eq!(sf_auth_files(w.tv.root.path()), Vec::<PathBuf>::new());
    w.assert_no_secret_in_files();
    let leaked = hub.issued();
    for f in files_under(w.tv.root.path()) {
        let bytes = fs::read(&f).unwrap_or_default();
        assert!(!contains(&bytes, hub_app.consumer_secret.as_bytes()));
        assert!(leaked.iter().all(|t| !contains(&bytes, t.as_bytes())));
    }
}

/// sf takes an opaque token as `SF_TARGET_DEV_HUB` (as it does as `SF_TARGET_ORG`), but sends
/// it to `SF_ORG_INSTANCE_URL`: there is one instance URL for both, so a Dev Hub on another
/// instance than the target org (every real one: My Domains differ) is refused there.
#[test]
fn sf_sends_a_dev_hub_token_to_the_target_orgs_instance() {
    let Some(w) = client_credentials_world("sf_sends_a_dev_hub_token_to_the_target_orgs_instance")
    else {
        return;
    };
    let (hub, _) = add_dev_hub(&w);
    let org_token = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    let hub_token = w.tv.ok(&["token", "acme/hub"]).trim().to_owned();
    let mut cmd = w.sf();
    cmd.env("SF_TARGET_ORG", &org_token)
        .env("SF_ORG_INSTANCE_URL", &w.fake.url)
        .env("SF_TARGET_DEV_HUB", &hub_token);
    let out = run(cmd, &["package", "list", "--json"], None);
    let answer = sf_json(&out, "sf package list");
    assert_ne!(answer["status"], 0, "{answer:#}");
    assert!(
        sf_requests(&hub).is_empty(),
        "the hub's own instance was reached"
    );
    let misdirected = sf_requests(&w.fake);
    assert!(
        misdirected
            .iter()
            .any(|r| r.bearer.as_deref() == Some(&hub_token) && r.status == 401),
        "{misdirected:#?}"
    );
    // On one instance (the same org as target and hub), the token alone is enough.
    w.fake.make_dev_hub();
    let mut cmd = w.sf();
    cmd.env("SF_TARGET_ORG", &org_token)
        .env("SF_ORG_INSTANCE_URL", &w.fake.url)
        .env("SF_TARGET_DEV_HUB", &org_token);
    let listed = sf_ok(
        &run(cmd, &["package", "list", "--json"], None),
        "sf package list, hub = target org",
    );
    assert_eq!(listed, json!([]));
}

/// A Dev Hub on its own instance, by hand: its auth file (plain fields) in a HOME made for the
/// command and `SF_TARGET_DEV_HUB=USERNAME`, beside a target org given as a token in the
/// environment. `sf org list` then shows the hub as the default one.
#[test]
fn sf_finds_a_dev_hub_from_an_auth_file_beside_a_token_target_org() {
    let Some(sf) = sf_or_skip("sf_finds_a_dev_hub_from_an_auth_file_beside_a_token_target_org")
    else {
        return;
    };
    let w = World::client_credentials(sf);
    let (hub, hub_app) = add_dev_hub(&w);
    let org_token = w.tv.ok(&["token", "acme/ci"]).trim().to_owned();
    let hub_token = w.tv.ok(&["token", "acme/hub"]).trim().to_owned();
    let home = w.tv.root.path().join("sf-home");
    let file = home.join(format!(".sfdx/{}.json", hub_app.username));
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    write_private(
        &file,
        json!({"accessToken": hub_token, "instanceUrl": hub.url, "loginUrl": hub.url,
               "orgId": ORG_ID, "username": hub_app.username})
        .to_string()
        .as_bytes(),
    );
    let sf_here = || {
        let mut cmd = w.sf_in(&home);
        cmd.env("SF_TARGET_ORG", &org_token)
            .env("SF_ORG_INSTANCE_URL", &w.fake.url)
            .env("SF_TARGET_DEV_HUB", &hub_app.username);
        cmd
    };
    let listed = sf_ok(
        &run(sf_here(), &["package", "list", "--json"], None),
        "sf package list",
    );
    assert_eq!(listed, json!([]));
    assert!(
        sf_requests(&hub)
            .iter()
            .any(|r| r.path.ends_with("/tooling/query") && r.status == 200)
    );
    assert!(sf_requests(&w.fake).iter().all(|r| r.status < 400));
    let orgs = sf_ok(
        &run(sf_here(), &["org", "list", "--json"], None),
        "sf org list",
    );
    let hubs = orgs["devHubs"].as_array().unwrap();
    assert_eq!(hubs.len(), 1, "{orgs:#}");
    assert_eq!(hubs[0]["username"], json!(hub_app.username));
    assert_eq!(hubs[0]["isDefaultDevHubUsername"], true, "{orgs:#}");
    let shown = sf_ok(
        &run(sf_here(), &["org", "display", "--json"], None),
        "sf org display",
    );
    assert_eq!(shown["instanceUrl"], json!(w.fake.url));
    assert_eq!(shown["connectedStatus"], "Connected");
    fs::remove_dir_all(&home).unwrap();
}
