//! OAuth flows against a fake Salesforce on 127.0.0.1, driven through the real binary.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};
use support::fake_sf::{AppConfig, FakeSalesforce, ORG_ID, add_app, vault_with_app};
use support::*;

const KEY: &str = "3MVG9fakeConsumerKey";

fn app() -> AppConfig {
    AppConfig {
        consumer_key: KEY.into(),
        consumer_secret: canary("consumer-secret"),
        username: "ci@acme.example.com".into(),
        password_and_token: format!("{}{}", canary("pw"), "SECTOKEN123"),
        certificate_pem: None,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A vault with entry `acme/ci` pointing at the fake, with the given flow.
fn setup(flow: &str) -> (TestVault, FakeSalesforce, AppConfig) {
    vault_with_app(app(), flow)
}

fn token_json(tv: &TestVault, extra: &[&str]) -> Value {
    let mut args = vec!["token", "acme/ci", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&tv.ok(&args)).expect("token --json parses")
}

#[test]
fn jwt_flow_with_a_keygen_key_signs_exactly_as_documented() {
    let (tv, sf, app) = setup("jwt");
    let cert = tv.ok(&["keygen", "acme/ci"]);
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    assert!(
        !cert.contains("PRIVATE KEY"),
        "keygen printed the private key"
    );
    sf.set_certificate(&cert);
    let t = token_json(&tv, &[]);
    assert!(sf.is_live(t["access_token"].as_str().unwrap()));
    assert_eq!(t["instance_url"], sf.url.as_str());
    assert_eq!(t["org_id"], ORG_ID);
    assert_eq!(t["username"], app.username.as_str());
    for k in ["issued_at", "expires_at"] {
        assert!(t[k].as_str().unwrap().ends_with('Z'), "{k}");
    }
    let jwts = sf.jwts();
    assert_eq!(jwts.len(), 1);
    assert_eq!(jwts[0].header, r#"{"alg":"RS256"}"#);
    let claims = jwts[0].claims.as_object().unwrap();
    let keys: BTreeSet<&str> = claims.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["aud", "exp", "iss", "sub"]));
    assert_eq!(claims["iss"], KEY);
    assert_eq!(claims["sub"], app.username.as_str());
    assert_eq!(claims["aud"], sf.url.as_str());
    let exp = claims["exp"]
        .as_i64()
        .expect("exp is an integer number of seconds");
    assert!(
        (now() + 170..=now() + 181).contains(&exp),
        "exp {exp} is not ~3 minutes ahead"
    );
    // The certificate is kept (public) for audits; the key stays secret.
    let show: Value = serde_json::from_str(&tv.ok(&["show", "acme/ci", "--json"])).unwrap();
    assert_eq!(show["fields"]["certificate"]["secret"], false);
    assert!(show["fields"]["private_key"].get("value").is_none());
    assert!(show["fields"]["access_token"].get("value").is_none());
}

#[test]
fn jwt_audiences_fall_back_as_sf_does_and_the_error_names_them() {
    let (tv, sf, _) = setup("jwt");
    sf.set_certificate(&tv.ok(&["keygen", "acme/ci"]));
    // The org wants login.salesforce.com: the login URL and test.salesforce.com are refused
    // first, every assertion going to the login URL's host only.
    sf.accept_audience("https://login.salesforce.com");
    let t = token_json(&tv, &[]);
    assert!(sf.is_live(t["access_token"].as_str().unwrap()));
    let auds: Vec<Value> = sf.jwts().iter().map(|j| j.claims["aud"].clone()).collect();
    assert_eq!(
        auds,
        [
            json!(sf.url),
            json!("https://test.salesforce.com"),
            json!("https://login.salesforce.com")
        ]
    );
    // An audience the entry names is the only one tried; the error says which.
    tv.ok(&[
        "set",
        "acme/ci",
        "audience",
        "https://acme.my.salesforce.com",
    ]);
    let out = tv.run(&["token", "acme/ci", "--refresh"], None);
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audience is invalid (aud tried: https://acme.my.salesforce.com)"),
        "{err}"
    );
    assert_eq!(sf.jwts().len(), 4);
    tv.ok(&["set", "acme/ci", "audience", "https://login.salesforce.com"]);
    token_json(&tv, &["--refresh"]);
    assert_eq!(sf.jwts().len(), 5);
}

#[test]
fn jwt_flow_accepts_a_pkcs1_key_file() {
    let (tv, sf, _) = setup("jwt");
    let cert = tv.ok(&["keygen", "acme/ci"]);
    sf.set_certificate(&cert);
    // Re-encode the generated PKCS#8 key as PKCS#1 (what `openssl genrsa` writes).
    let pkcs8 = tv.get("acme/ci", "private_key");
    let body: String = pkcs8.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
    let pkcs1 = key.to_pkcs1_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs1.as_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let file = tv.root.path().join("server.key");
    write_private(&file, pem.as_bytes());
    tv.ok(&["rm", "acme/ci", "--yes"]);
    tv.ok(&[
        "add",
        "acme/ci",
        "--consumer-key",
        KEY,
        "--username",
        "ci@acme.example.com",
        "--login-url",
        &sf.url,
        "--flow",
        "jwt",
        "--no-secret",
        "--private-key-file",
        file.to_str().unwrap(),
    ]);
    tv.ok(&["login", "acme/ci"]);
    assert_eq!(sf.count("/services/oauth2/token"), 1);
    // A key given on stdin as /dev/stdin: no advice to shred /dev/stdin.
    let out = tv.run(
        &[
            "add",
            "acme/piped",
            "--consumer-key",
            KEY,
            "--no-secret",
            "--private-key-file",
            "/dev/stdin",
        ],
        Some(&fs::read(&file).unwrap()),
    );
    assert_code(&out, 0, &["add --private-key-file /dev/stdin"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("shred"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An encrypted key cannot sign: refused when stored (with the way out), not at login.
    let encrypted = tv.root.path().join("enc.key");
    write_private(
        &encrypted,
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let args = [
        "add",
        "acme/enc",
        "--consumer-key",
        KEY,
        "--no-secret",
        "--private-key-file",
        encrypted.to_str().unwrap(),
    ];
    let err = tv.fails(&args, 2);
    assert!(err.contains("openssl pkey"), "{err}");
    // The way out never writes the key in clear to a file: a pipe into the vault.
    assert!(err.contains("| sfvault set ORG/APP private_key -"), "{err}");
    assert!(!err.contains("-out"), "{err}");
    tv.fails(&["show", "acme/enc"], 3);
    let out = tv.run(
        &["set", "acme/ci", "private_key", "-"],
        Some(&fs::read(&encrypted).unwrap()),
    );
    assert_code(&out, 2, &["set an encrypted key"]);
    assert_eq!(tv.get("acme/ci", "private_key"), pem.trim_end());
}

#[test]
fn client_credentials_and_password_flows() {
    let (tv, sf, app) = setup("client-credentials");
    let t = token_json(&tv, &[]);
    assert!(sf.is_live(t["access_token"].as_str().unwrap()));

    let (tv, sf, app2) = {
        let _ = app;
        setup("password")
    };
    let pw = app2
        .password_and_token
        .strip_suffix("SECTOKEN123")
        .unwrap()
        .to_owned();
    tv.ok_stdin(&["set", "acme/ci", "password", "-"], pw.as_bytes());
    tv.ok_stdin(&["set", "acme/ci", "security_token", "-"], b"SECTOKEN123");
    let out = tv.run(&["login", "acme/ci"], None);
    assert_success(&out, &["login password"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retiring"),
        "no deprecation warning"
    );
    assert_eq!(sf.count("/services/oauth2/token"), 1);
}

#[test]
fn a_fresh_token_is_reused_and_a_stale_one_renewed() {
    let (tv, sf, _) = setup("client-credentials");
    let first = token_json(&tv, &[]);
    let second = token_json(&tv, &[]);
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(
        sf.count("/services/oauth2/token"),
        1,
        "two requests within the lifetime"
    );
    // `get access_token` is the same pseudo-field.
    assert_eq!(
        tv.get("acme/ci", "access_token"),
        first["access_token"].as_str().unwrap()
    );
    assert_eq!(sf.count("/services/oauth2/token"), 1);
    tv.ok(&["set", "acme/ci", "token_lifetime", "2s"]);
    std::thread::sleep(Duration::from_millis(2200));
    let third = token_json(&tv, &[]);
    assert_ne!(third["access_token"], first["access_token"]);
    assert_eq!(sf.count("/services/oauth2/token"), 2);
    token_json(&tv, &["--refresh"]);
    assert_eq!(sf.count("/services/oauth2/token"), 3);
}

/// Start `login --flow web`, act as the browser, return (output, stderr text).
fn browser_login(
    tv: &TestVault,
    args: &[&str],
    browser: impl FnOnce(&str),
) -> (std::process::ExitStatus, String) {
    let mut cmd = tv.cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("/services/oauth2/authorize?") {
            break;
        }
        line.clear();
    }
    browser(line.trim());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    (child.wait().unwrap(), seen)
}

#[test]
fn web_flow_with_pkce_then_refresh_token_flow() {
    let (tv, sf, _) = setup("web");
    tv.ok(&[
        "set",
        "acme/ci",
        "callback_url",
        "http://127.0.0.1:0/OauthRedirect",
    ]);
    tv.ok(&["set", "acme/ci", "scopes", "api refresh_token"]);
    let (status, stderr) = browser_login(&tv, &["login", "acme/ci", "--no-browser"], |url| {
        // The browser: follow the authorize redirect to the loopback listener.
        let mut page = ureq::get(url).call().expect("browser step");
        let text = page.body_mut().read_to_string().unwrap();
        assert!(text.contains("logged in"), "{text}");
    });
    assert!(status.success(), "{stderr}");
    assert_eq!(sf.count("/services/oauth2/authorize"), 1);
    let show: Value = serde_json::from_str(&tv.ok(&["show", "acme/ci", "--json"])).unwrap();
    assert_eq!(show["fields"]["refresh_token"]["secret"], true);
    // A web entry renews with its refresh token, without a browser.
    let before = sf.count("/services/oauth2/token");
    let t = token_json(&tv, &["--refresh"]);
    assert!(sf.is_live(t["access_token"].as_str().unwrap()));
    assert_eq!(sf.count("/services/oauth2/token"), before + 1);
    // And the refresh-token flow proper.
    tv.ok(&["set", "acme/ci", "flow", "refresh-token"]);
    token_json(&tv, &["--refresh"]);
}

#[test]
fn web_flow_ignores_redirects_without_its_state() {
    let (tv, sf, _) = setup("web");
    tv.ok(&[
        "set",
        "acme/ci",
        "callback_url",
        "http://127.0.0.1:0/OauthRedirect",
    ]);
    let args = ["login", "acme/ci", "--no-browser", "--timeout", "2s"];
    let (status, stderr) = browser_login(&tv, &args, |url| {
        let redirect = url
            .split("redirect_uri=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let redirect = redirect.replace("%3A", ":").replace("%2F", "/");
        // A forged code, and a forged error with terminal escapes: both answered 400 and ignored.
        for forged in [
            "code=forged&state=not-the-state",
            "error=x%1b%5b2J&error_description=%1b%5d0%3Bpwned%07",
        ] {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let r = agent.get(&format!("{redirect}?{forged}")).call().unwrap();
            assert_eq!(r.status().as_u16(), 400);
        }
    });
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ignored a request") && stderr.contains("no login arrived"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes reached the terminal"
    );
    assert_eq!(
        sf.count("/services/oauth2/token"),
        0,
        "a forged code was exchanged"
    );
    let show: Value = serde_json::from_str(&tv.ok(&["show", "acme/ci", "--json"])).unwrap();
    assert!(show["fields"].get("access_token").is_none());
}

#[test]
fn revoke_calls_the_endpoint_and_forgets_the_tokens() {
    let (tv, sf, _) = setup("client-credentials");
    let t = token_json(&tv, &[]);
    let access = t["access_token"].as_str().unwrap().to_owned();
    tv.ok(&["revoke", "acme/ci"]);
    assert_eq!(sf.count("/services/oauth2/revoke"), 1);
    assert_eq!(sf.revoked(), vec![access.clone()]);
    assert!(!sf.is_live(&access));
    let show: Value = serde_json::from_str(&tv.ok(&["show", "acme/ci", "--json"])).unwrap();
    for f in ["access_token", "instance_url", "org_id", "refresh_token"] {
        assert!(show["fields"].get(f).is_none(), "{f} still stored");
    }
    let raw = fs::read(&tv.vault).unwrap();
    assert!(!contains(&raw, access.as_bytes()));
    // Nothing left: a second revoke is a no-op.
    tv.ok(&["revoke", "acme/ci"]);
    assert_eq!(sf.count("/services/oauth2/revoke"), 1);
}

#[test]
fn salesforce_errors_exit_7_with_hints_network_8_http_10() {
    let (tv, sf, _) = setup("client-credentials");
    let cases = [
        (
            "invalid_grant",
            "user hasn't approved this consumer",
            "pre-authorise",
        ),
        (
            "invalid_grant",
            "audience is invalid",
            "test.salesforce.com",
        ),
        (
            "invalid_grant",
            "expired access/refresh token",
            "log in again",
        ),
        ("invalid_grant", "authentication failure", "security token"),
        (
            "invalid_client_id",
            "client identifier invalid",
            "consumer key",
        ),
        (
            "invalid_client_credentials",
            "client secret invalid",
            "consumer_secret",
        ),
        (
            "invalid_client",
            "invalid client credentials",
            "consumer_secret",
        ),
        (
            "unsupported_grant_type",
            "grant type not supported",
            "not enabled",
        ),
        ("inactive_user", "user is inactive", "inactive"),
        ("inactive_org", "organization is locked", "inactive"),
        ("rate_limit_exceeded", "rate limit exceeded", "wait"),
    ];
    for (error, description, hint) in cases {
        sf.fail_next(400, error, description);
        let err = tv.fails(&["token", "acme/ci", "--refresh"], 7);
        assert!(
            err.contains(error) && err.contains(description),
            "{error}: {err}"
        );
        assert!(err.contains(hint), "{error}: no hint «{hint}» in {err}");
    }
    sf.fail_next(503, "server_error", "down");
    tv.fails(&["token", "acme/ci", "--refresh"], 8);
    // A dead port.
    tv.ok(&["set", "acme/ci", "login_url", "http://127.0.0.1:1"]);
    let err = tv.fails(&["token", "acme/ci", "--refresh"], 8);
    assert!(err.contains("cannot reach"), "{err}");
    // Plain http to a real host is refused before anything is sent.
    tv.fails(
        &["set", "acme/ci", "login_url", "http://login.salesforce.com"],
        10,
    );
    // The strict fake refuses a JWT whose audience is wrong, and we say why.
    let (tv, sf, _) = setup("jwt");
    let cert = tv.ok(&["keygen", "acme/ci"]);
    sf.set_certificate(&cert);
    tv.ok(&[
        "set",
        "acme/ci",
        "login_url",
        &format!("{}/", sf.url.replace("127.0.0.1", "localhost")),
    ]);
    let err = tv.fails(&["token", "acme/ci"], 7);
    assert!(
        err.contains("audience is invalid") && err.contains("test.salesforce.com"),
        "{err}"
    );
}

#[test]
fn tokens_through_the_agent() {
    let (tv, sf, _) = setup("client-credentials");
    tv.ok(&["unlock"]);
    let out = run_cmd(tv.bare_cmd(), &["token", "acme/ci"], None);
    assert_success(&out, &["token via agent"]);
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(sf.is_live(token.trim()));
    // Cached through the agent too.
    let again = run_cmd(tv.bare_cmd(), &["token", "acme/ci"], None);
    assert_eq!(again.stdout, token.as_bytes());
    assert_eq!(sf.count("/services/oauth2/token"), 1);
}

#[test]
fn no_token_secret_or_key_leaks_to_files_argv_or_stderr() {
    let (tv, sf, app) = setup("web");
    // A fake browser opener that records its argv.
    let bin = tv.root.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let argv_log = tv.root.path().join("xdg-open.argv");
    let opener = bin.join("xdg-open");
    fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            argv_log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    tv.ok(&[
        "set",
        "acme/ci",
        "callback_url",
        "http://127.0.0.1:0/OauthRedirect",
    ]);
    tv.ok(&["set", "acme/ci", "scopes", "api refresh_token"]);
    let cert = tv.ok(&["keygen", "acme/ci"]);
    sf.set_certificate(&cert);
    let mut stderr_all = String::new();
    // Web login with a "display", so sfvault starts the opener.
    let mut cmd = tv.cmd();
    cmd.env("DISPLAY", ":99")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .args(["login", "acme/ci"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && !line.contains("authorize?") {
        stderr_all.push_str(&line);
        line.clear();
    }
    stderr_all.push_str(&line);
    ureq::get(line.trim()).call().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    stderr_all.push_str(&rest);
    assert!(child.wait().unwrap().success(), "{stderr_all}");
    for flow in ["jwt", "client-credentials", "refresh-token"] {
        tv.ok(&["set", "acme/ci", "flow", flow]);
        let out = tv.run(&["token", "acme/ci", "--refresh"], None);
        assert_success(&out, &["token", flow]);
        stderr_all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let entry: Value =
        serde_json::from_str(&tv.ok(&["show", "acme/ci", "--json", "--reveal"])).unwrap();
    let secret = |f: &str| entry["fields"][f]["value"].as_str().unwrap().to_owned();
    let access = secret("access_token");
    let refresh = secret("refresh_token");
    let key_line = secret("private_key").lines().nth(1).unwrap().to_owned();
    let needles = [
        access.as_str(),
        refresh.as_str(),
        key_line.as_str(),
        app.consumer_secret.as_str(),
    ];
    let out = tv.run(&["revoke", "acme/ci"], None);
    stderr_all.push_str(&String::from_utf8_lossy(&out.stderr));
    let opened = fs::read_to_string(&argv_log).expect("the browser opener ran");
    assert!(opened.contains("/services/oauth2/authorize?"), "{opened}");
    for needle in needles {
        assert!(!stderr_all.contains(needle), "stderr leaked a secret");
        assert!(
            !opened.contains(needle),
            "a started process's argv held a secret"
        );
        for f in files_under(tv.root.path()) {
            if f.starts_with(tv.vault.parent().unwrap())
                && f.extension().is_some_and(|e| e == "sfv" || e == "bak")
            {
                continue; // the vault itself, encrypted
            }
            let bytes = fs::read(&f).unwrap();
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds a secret",
                f.display()
            );
        }
    }
}

/// A TCP listener standing in for a remote host: it records every connection it receives and
/// what was sent on it, then answers 500 and closes.
struct OtherHost {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl OtherHost {
    /// Listen on 127.0.0.2 (another address than the fake's, like a remote host), or on
    /// 127.0.0.1 where the system has no 127.0.0.2.
    fn start() -> OtherHost {
        let listener = TcpListener::bind("127.0.0.2:0")
            .or_else(|_| TcpListener::bind("127.0.0.1:0"))
            .expect("bind the other host");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_millis(500)))
                            .unwrap();
                        let mut bytes = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while let Ok(n @ 1..) = stream.read(&mut chunk) {
                            bytes.extend_from_slice(&chunk[..n]);
                        }
                        seen2.lock().unwrap().push(bytes);
                        let _ = stream.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        OtherHost { addr, seen, stop }
    }

    /// Fail when anything connected, saying whether `secret` went over the wire in clear.
    fn assert_untouched(&self, what: &str, secret: &str) {
        let seen = self.seen.lock().unwrap();
        let leaked = seen.iter().any(|bytes| contains(bytes, secret.as_bytes()));
        assert!(
            seen.is_empty(),
            "{what}: {} connection(s) reached {}{}",
            seen.len(),
            self.addr,
            if leaked {
                ", carrying the consumer secret in plain http"
            } else {
                ""
            }
        );
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// URLs that read as loopback to a naive splitter, but whose host is the one after the @.
fn urls_with_user_info(other: &OtherHost) -> [String; 4] {
    [
        format!("http://localhost:80@{}/", other.addr),
        format!("http://[::1]@{}/", other.addr),
        format!("http://127.0.0.1@{}", other.addr),
        format!("HTTP://LOCALHOST:1@{}/", other.addr),
    ]
}

#[test]
fn login_never_sends_to_the_host_after_an_at_even_from_an_old_vault() {
    use sfvault::secret::SecretString;
    use sfvault::vault::model::VaultData;
    use sfvault::vault::{EntryName, KdfParams, Store, VaultKey};

    let other = OtherHost::start();
    let secret = canary("consumer-secret");
    for url in urls_with_user_info(&other) {
        // A vault that already holds such a URL (written by the library, as a version that
        // accepted it would have): login refuses before connecting.
        let tv = TestVault::empty();
        let mut data = VaultData::default();
        let name = EntryName::parse("acme/ci").unwrap();
        data.add_entry(&name, now()).unwrap();
        for (field, value) in [
            ("consumer_key", KEY),
            ("consumer_secret", secret.as_str()),
            ("flow", "client-credentials"),
            ("login_url", "https://login.salesforce.com"),
        ] {
            let is_secret = sfvault::vault::fields::secret_by_default(field);
            data.set_field(
                &name,
                field,
                SecretString::new(value.into()),
                is_secret,
                now(),
            )
            .unwrap();
        }
        // set_field checks values; write past it, as an old version's check would have let it.
        let entry = data.entries.get_mut("acme/ci").unwrap();
        entry.fields.get_mut("login_url").unwrap().value = SecretString::new(url.clone());
        let key =
            VaultKey::generate(&SecretString::new(PASSPHRASE.into()), KdfParams::MINIMUM).unwrap();
        Store::new(&tv.vault, Duration::from_secs(5))
            .create(&data, &key)
            .unwrap();
        let out = tv.run(&["login", "acme/ci"], None);
        other.assert_untouched(&format!("login with login_url {url}"), &secret);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_code(&out, 10, &["login", &url]);
        assert!(stderr.contains("before @"), "{stderr}");
        assert!(!stderr.contains(&secret), "{stderr}");
        // The audit names it.
        let out = tv.run(&["audit", "--json"], None);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("insecure-login-url"),
            "audit missed {url}"
        );
    }
}

#[test]
fn urls_with_user_info_are_refused_when_stored() {
    let other = OtherHost::start();
    let secret = canary("consumer-secret");
    let tv = TestVault::new();
    let app = AppConfig {
        consumer_key: KEY.into(),
        consumer_secret: secret.clone(),
        ..AppConfig::default()
    };
    add_app(&tv, "acme/ci", &app, None, "client-credentials");
    for url in urls_with_user_info(&other) {
        let add = [
            "add",
            "acme/other",
            "--consumer-key",
            KEY,
            "--login-url",
            &url,
            "--flow",
            "client-credentials",
        ];
        let out = tv.run(&add, Some(secret.as_bytes()));
        assert_code(&out, 10, &add);
        for field in ["login_url", "callback_url"] {
            tv.fails(&["set", "acme/ci", field, &url], 10);
        }
        let dotenv = format!("SF_CLIENT_ID={KEY}\nSF_LOGIN_URL={url}\n");
        let json = format!(r#"{{"consumer_key":"{KEY}","login_url":"{url}"}}"#);
        for (format, input) in [("dotenv", dotenv), ("json", json)] {
            let args = ["import", "acme/imported", "--format", format];
            let out = tv.run(&args, Some(input.as_bytes()));
            assert_code(&out, 10, &args);
        }
    }
    // Nothing stored: callback_url is missing, login_url is the default the flows use.
    tv.fails(&["get", "acme/ci", "callback_url"], 3);
    assert_eq!(
        tv.get("acme/ci", "login_url"),
        "https://login.salesforce.com"
    );
    let list = tv.ok(&["list"]);
    assert!(
        !list.contains("acme/other") && !list.contains("acme/imported"),
        "{list}"
    );
    other.assert_untouched("storing URLs", &secret);
}

#[test]
fn plain_http_to_this_machine_never_goes_through_a_proxy() {
    // A proxy in the environment would receive plain-http requests (consumer secret included)
    // in clear, off this machine: loopback http must go direct.
    let proxy = OtherHost::start();
    let (tv, sf, _) = setup("client-credentials");
    let secret = tv.ok(&["get", "-n", "acme/ci", "consumer_secret"]);
    let mut cmd = tv.cmd();
    for var in ["ALL_PROXY", "HTTP_PROXY", "http_proxy", "all_proxy"] {
        cmd.env(var, format!("http://{}", proxy.addr));
    }
    let out = run_cmd(cmd, &["login", "acme/ci"], None);
    assert_success(&out, &["login with a proxy in the environment"]);
    proxy.assert_untouched("login to loopback http with a proxy set", &secret);
    assert_eq!(sf.count("/services/oauth2/token"), 1);
}
