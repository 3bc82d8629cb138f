//! A fake Salesforce: a real HTTP server on 127.0.0.1 that implements the OAuth endpoints as
//! Salesforce documents them (docs/OAUTH.md), strictly, so that it tests our client:
//! token (JWT bearer, client credentials, refresh token, password, authorization code + PKCE),
//! authorize, revoke, introspect and userinfo. It can be told to fail in each documented way.
//!
//! It also answers what Salesforce's own `sf` CLI asks of an org (tests/sf_peer.rs runs the real
//! `sf` against it): the public versions list `/services/data`, and, with a live access token
//! only, `/services/data/vXX.X` (resources), `…/query?q=SOQL` (a few fixed records: Account,
//! Organization, User, ScratchOrgInfo on a Dev Hub; `&columns=true` for column metadata),
//! `…/tooling/query` (Package2 on a Dev Hub), `…/limits`, `…/sobjects/User/ID`, the identity URL
//! `/id/ORG_ID/USER_ID` and userinfo. A token that is unknown, revoked or expired
//! ([`FakeSalesforce::expire`]) gets what Salesforce answers: HTTP 401
//! `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`.
//!
//! Access tokens have Salesforce's classic shape, `00D…(15)!AQ…` (letters, digits and dots), or,
//! after [`FakeSalesforce::issue_jwt_access_tokens`], the shape of its JWT-based access tokens:
//! `eyJ…` header, claims and signature, base64url. Every request is recorded
//! ([`FakeSalesforce::requests`]) with its User-Agent, so a test can tell sfvault's calls from
//! sf's. [`FakeSalesforce::start_tls`] puts the same fake behind https with its own CA, for
//! clients that only speak https to it (sf reads an SFDX auth URL's host as `https://HOST`).
//!
//! fake_eca.rs (a child module) adds External Client Apps and extra connected apps, the admin
//! REST resources that rotate an ECA's consumer key and secret, the Metadata SOAP API's
//! read/update of JWT certificates, who holds OAuth tokens (the ECAs' usage resources, SOQL on
//! OauthToken, the paged User list, revocation by DeleteToken), an injectable clock, and fault
//! injection on every step ([`FakeSalesforce::fault`]: drop, 500, or hold a request before or
//! after applying it).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tiny_http::{Header, Response, Server};

use super::TestVault;

#[path = "fake_eca.rs"]
mod eca;
// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use eca::{
    ADMIN_APP_LABEL, AuditDataSet, ClassicApp, EcaConfig, EcaIds, Fault, OAUTH_TOKEN_CAP,
    OTHER_USER_ID, OTHER_USERNAME, OauthTokenRow, QUERY_BATCH, Quirks, StagedView, Step, TokenApp,
    USAGE_PAGE_SIZE, USAGE_PAGE_SIZE_MAX, UsageToken,
};

pub const ORG_ID: &str = "00D5g000000XXXXEAA";
pub const USER_ID: &str = "0055g00000YYYYYAAA";
/// The records `SELECT Id, Name FROM Account` answers, in this order.
pub const ACCOUNTS: [(&str, &str); 2] = [
    ("0015g00000ACME1AAA", "Acme Corporation"),
    ("0015g00000ACME2AAA", "Global Media"),
];
/// The newest API version the fake serves (`/services/data` lists 31.0 up to it).
pub const API_VERSION: &str = "65.0";
const OLDEST_API: u32 = 31;
const NEWEST_API: u32 = 65;
/// What Salesforce answers a request whose token is unknown, revoked or expired (HTTP 401).
pub const INVALID_SESSION: &str =
    r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;

/// What the org knows about the connected app and its user.
#[derive(Clone, Default)]
pub struct AppConfig {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub username: String,
    /// Password with the security token appended, as Salesforce expects it.
    pub password_and_token: String,
    /// The certificate uploaded to the connected app (PEM), for JWT.
    pub certificate_pem: Option<String>,
}

/// One decoded JWT assertion, as received.
#[derive(Clone, Debug)]
pub struct SeenJwt {
    pub header: String,
    pub claims: Value,
}

/// One request, as received, and the status it got.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub user_agent: String,
    /// The token of an `Authorization: Bearer` header.
    pub bearer: Option<String>,
    pub status: u16,
}

impl SeenRequest {
    /// Whether sfvault made it (its User-Agent is `sfvault/VERSION`).
    pub fn by_sfvault(&self) -> bool {
        self.user_agent.starts_with("sfvault/")
    }
}

#[derive(Default)]
struct State {
    app: AppConfig,
    access_tokens: Vec<String>,
    /// refresh token → access tokens issued from it
    refresh_tokens: HashMap<String, Vec<String>>,
    /// code → (challenge, redirect_uri, client_id, scope)
    codes: HashMap<String, (String, String, String, String)>,
    fail_next: Option<(u16, String, String)>,
    counts: HashMap<String, usize>,
    jwts: Vec<SeenJwt>,
    revoked: Vec<String>,
    serial: u64,
    /// The JWT audience the org accepts (default: its own URL, the login URL).
    audience: Option<String>,
    /// Issue JWT-shaped access tokens (`eyJ…`) instead of classic ones.
    jwt_access_tokens: bool,
    /// The org is a Dev Hub: ScratchOrgInfo and Package2 can be queried.
    dev_hub: bool,
    /// Access tokens that were live and were then expired at the server.
    expired: Vec<String>,
    /// Every request, in order.
    requests: Vec<SeenRequest>,
    /// Every access and refresh token ever issued, live or not.
    issued: Vec<String>,
    /// The URL clients reach this org at, when not the plain one (the https front).
    public_url: Option<String>,
    /// External Client Apps, extra connected apps, the admin APIs' settings, the clock and
    /// fault injection (fake_eca.rs).
    eca: eca::Org,
}

/// The running fake.
pub struct FakeSalesforce {
    /// `http://127.0.0.1:PORT`: the login URL and the instance URL (`https://…` from
    /// [`FakeSalesforce::start_tls`]).
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The https front, if any, and the PEM of the CA that signed its certificate.
    tls: Option<(JoinHandle<()>, String)>,
}

impl FakeSalesforce {
    pub fn start(app: AppConfig) -> FakeSalesforce {
        let server = Server::http("127.0.0.1:0").expect("bind fake Salesforce");
        let port = server.server_addr().to_ip().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            app,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop, url) = (state.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                        handle(&state, &url, &stop, request);
                    }
                }
            })
        };
        FakeSalesforce {
            url,
            state,
            stop,
            thread: Some(thread),
            tls: None,
        }
    }

    /// The same fake behind https: `url` is `https://127.0.0.1:PORT`, with a certificate for
    /// 127.0.0.1 signed by a CA made for this fake alone ([`FakeSalesforce::ca_pem`]; give it to
    /// node as `NODE_EXTRA_CA_CERTS`). Tokens name that URL as their instance URL.
    pub fn start_tls(app: AppConfig) -> FakeSalesforce {
        let mut fake = FakeSalesforce::start(app);
        let upstream: SocketAddr = fake.url.trim_start_matches("http://").parse().unwrap();
        let (config, ca_pem) = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the https front");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        fake.url = format!("https://127.0.0.1:{port}");
        fake.state.lock().unwrap().public_url = Some(fake.url.clone());
        let stop = fake.stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (config, stop) = (config.clone(), stop.clone());
                        std::thread::spawn(move || tls_pump(tcp, config, upstream, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        fake.tls = Some((thread, ca_pem));
        fake
    }

    /// The PEM certificate of the CA behind [`FakeSalesforce::start_tls`]'s https.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// From now on, issue JWT-based access tokens (`eyJ…`, three base64url parts), as an org
    /// whose connected app has "Issue JSON Web Token (JWT)-based access tokens" on.
    pub fn issue_jwt_access_tokens(&self) {
        self.state.lock().unwrap().jwt_access_tokens = true;
    }

    /// Make the org a Dev Hub (ScratchOrgInfo and the tooling API's Package2 answer).
    pub fn make_dev_hub(&self) {
        self.state.lock().unwrap().dev_hub = true;
    }

    /// Kill a live access token at the server, as a session timeout, "revoke all sessions" or
    /// an admin would: from now on it gets HTTP 401 INVALID_SESSION_ID. False if it was not live.
    pub fn expire(&self, token: &str) -> bool {
        let mut st = self.state.lock().unwrap();
        let Some(i) = st.access_tokens.iter().position(|t| t == token) else {
            return false;
        };
        let t = st.access_tokens.remove(i);
        st.expired.push(t);
        true
    }

    /// Access tokens killed by [`FakeSalesforce::expire`] so far.
    pub fn expired(&self) -> Vec<String> {
        self.state.lock().unwrap().expired.clone()
    }

    /// A live refresh token for the app's user, as if they had approved the app in a browser
    /// earlier (the web flow with the `refresh_token` scope); no access token comes with it.
    pub fn mint_refresh_token(&self) -> String {
        let mut st = self.state.lock().unwrap();
        st.serial += 1;
        let r = format!(
            "5Aep861{}{}",
            st.serial,
            salesforce_chars(&st, b"refresh", 80)
        );
        st.refresh_tokens.insert(r.clone(), Vec::new());
        st.issued.push(r.clone());
        r
    }

    /// Every access and refresh token this fake ever issued, live or not (for leak scans).
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The next token request fails with this status, `error` and `error_description`.
    pub fn fail_next(&self, status: u16, error: &str, description: &str) {
        self.state.lock().unwrap().fail_next = Some((status, error.into(), description.into()));
    }

    /// Accept only `aud` = `audience` in JWT assertions (as an org behind another login host).
    pub fn accept_audience(&self, audience: &str) {
        self.state.lock().unwrap().audience = Some(audience.to_owned());
    }

    /// Upload a certificate to the connected app.
    pub fn set_certificate(&self, pem: &str) {
        self.state.lock().unwrap().app.certificate_pem = Some(pem.to_owned());
    }

    /// How many requests reached `path` (e.g. "/services/oauth2/token").
    pub fn count(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counts
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Every JWT assertion received, decoded.
    pub fn jwts(&self) -> Vec<SeenJwt> {
        self.state.lock().unwrap().jwts.clone()
    }

    /// Tokens revoked so far.
    pub fn revoked(&self) -> Vec<String> {
        self.state.lock().unwrap().revoked.clone()
    }

    /// Whether `token` is a live access token.
    pub fn is_live(&self, token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .access_tokens
            .iter()
            .any(|t| t == token)
    }
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((t, _)) = self.tls.take() {
            let _ = t.join();
        }
    }
}

/// A CA made for one fake, a certificate for 127.0.0.1 signed by it, and the rustls server
/// configuration presenting that certificate; the CA's PEM for the client's trust store.
fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sfvault test CA (fake Salesforce)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .unwrap();
    (Arc::new(config), ca_cert.pem())
}

/// One https connection: TLS with the client, plain HTTP to the fake, bytes both ways, until
/// either side closes (or the fake stops). One thread, short read timeouts on both sockets.
fn tls_pump(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: SocketAddr,
    stop: &AtomicBool,
) {
    let Ok(mut tls) = rustls::ServerConnection::new(config) else {
        return;
    };
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let tick = Some(Duration::from_millis(5));
    if tcp.set_nonblocking(false).is_err()
        || tcp.set_read_timeout(tick).is_err()
        || up.set_read_timeout(tick).is_err()
    {
        return;
    }
    let idle = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let mut buf = vec![0u8; 1 << 16];
    let mut upstream_open = true;
    while !stop.load(Ordering::Relaxed) {
        match tls.read_tls(&mut tcp) {
            Ok(0) => return,
            Ok(_) => {
                if tls.process_new_packets().is_err() {
                    let _ = tls.write_tls(&mut tcp);
                    return;
                }
                loop {
                    match tls.reader().read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if up.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => return,
                    }
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        if upstream_open {
            match up.read(&mut buf) {
                Ok(0) => {
                    upstream_open = false;
                    tls.send_close_notify();
                }
                Ok(n) => {
                    if tls.writer().write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if idle(&e) => {}
                Err(_) => return,
            }
        }
        while tls.wants_write() {
            if tls.write_tls(&mut tcp).is_err() {
                return;
            }
        }
        if !upstream_open {
            return;
        }
    }
}

/// A new test vault whose entry `acme/ci` is `app`'s connected app, with `flow`, on a fake
/// Salesforce started for it (the entry's login URL). The app comes back for the checks.
pub fn vault_with_app(app: AppConfig, flow: &str) -> (TestVault, FakeSalesforce, AppConfig) {
    let sf = FakeSalesforce::start(app.clone());
    let tv = TestVault::new();
    add_app(&tv, "acme/ci", &app, Some(&sf.url), flow);
    (tv, sf, app)
}

/// `sfvault add ENTRY` for `app`'s connected app: its consumer key, its username unless empty,
/// `login_url` if given, and `flow`; the consumer secret goes in on stdin.
pub fn add_app(tv: &TestVault, entry: &str, app: &AppConfig, login_url: Option<&str>, flow: &str) {
    let mut args = vec!["add", entry, "--consumer-key", &app.consumer_key];
    if !app.username.is_empty() {
        args.extend(["--username", &app.username]);
    }
    if let Some(url) = login_url {
        args.extend(["--login-url", url]);
    }
    args.extend(["--flow", flow]);
    tv.ok_stdin(&args, app.consumer_secret.as_bytes());
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn json_response(status: u16, body: Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(Header::from_bytes("Content-Type", "application/json;charset=UTF-8").unwrap())
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// `application/x-www-form-urlencoded` → map (duplicate keys are an error: None).
fn parse_form(body: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        if out.insert(url_decode(k)?, url_decode(v)?).is_some() {
            return None;
        }
    }
    Some(out)
}

fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// One request: classified ([`Step`]), given the fault armed for it if any, answered.
fn handle(state: &Mutex<State>, url: &str, stop: &AtomicBool, mut request: tiny_http::Request) {
    let full = request.url().to_owned();
    let (path, query) = full.split_once('?').unwrap_or((&full, ""));
    let path = path.to_owned();
    let query = query.to_owned();
    let method = request.method().as_str().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let content_type = header("Content-Type").unwrap_or_default();
    let authorization = header("Authorization");
    let user_agent = header("User-Agent").unwrap_or_default();
    let accept = header("Accept");
    let soap_action = header("SOAPAction");
    let mut body = String::new();
    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
    let step = eca::classify(&method, &path, &query, &body);
    let mut st = state.lock().unwrap();
    // The URL clients reach this org at: the instance URL of its tokens, the JWT audience.
    let url = st.public_url.clone().unwrap_or_else(|| url.to_owned());
    let url = url.as_str();
    *st.counts.entry(path.clone()).or_default() += 1;
    let bearer = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    let live = bearer
        .as_deref()
        .is_some_and(|t| st.access_tokens.iter().any(|x| x == t));
    let fault = step.and_then(|s| st.eca.arrive(s));
    let req = eca::Req {
        method: &method,
        path: &path,
        query: &query,
        content_type: &content_type,
        accept: accept.as_deref(),
        soap_action: soap_action.as_deref(),
        body: &body,
        bearer: bearer.as_deref(),
    };
    let response = match (fault, step) {
        (Some(Fault::DropBefore | Fault::HoldBefore), _) => None,
        (Some(Fault::Status500), Some(step)) => Some(eca::server_error(step)),
        _ => Some(route(&mut st, url, &req, authorization.as_deref(), live)),
    };
    let answered = !matches!(
        fault,
        Some(Fault::DropBefore | Fault::DropAfter | Fault::HoldBefore | Fault::HoldAfter)
    );
    let status = match &response {
        Some(r) if answered => r.status_code().0,
        _ => 0,
    };
    st.requests.push(SeenRequest {
        method,
        path,
        query,
        user_agent,
        bearer,
        status,
    });
    let hold = matches!(
        fault,
        Some(Fault::HoldBefore | Fault::HoldAfter | Fault::Pause)
    );
    if hold {
        st.eca.held = step;
    }
    drop(st);
    if hold {
        eca::wait_for_release(state, stop);
    }
    match response {
        Some(response) if answered => {
            respond_in_one_write(request, response);
        }
        _ => eca::no_valid_answer(request),
    }
}

/// Send `response` as one write of status line, headers and body. tiny_http writes the headers
/// and a body over 1 KB separately, and, its sockets having Nagle's algorithm on, the second
/// write then waits for the client's delayed ACK: 40 ms per answer over 1 KB, which real
/// Salesforce does not cost and which would hide the client's own time in measurements.
fn respond_in_one_write(request: tiny_http::Request, response: Response<std::io::Cursor<Vec<u8>>>) {
    let status = response.status_code();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.0,
        status.default_reason_phrase()
    );
    for h in response.headers() {
        let field = h.field.as_str().as_str();
        if !field.eq_ignore_ascii_case("Content-Length")
            && !field.eq_ignore_ascii_case("Transfer-Encoding")
        {
            head.push_str(&format!("{}: {}\r\n", field, h.value.as_str()));
        }
    }
    let mut body = Vec::new();
    let _ = response.into_reader().read_to_end(&mut body);
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    let mut writer = request.into_writer();
    let _ = writer.write_all(&bytes);
    let _ = writer.flush();
}

/// The answer to one request (no fault, or a fault that lets it through).
fn route(
    st: &mut State,
    url: &str,
    req: &eca::Req<'_>,
    authorization: Option<&str>,
    live: bool,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let (method, path, query, body) = (req.method, req.path, req.query, req.body);
    match (method, path) {
        ("POST", "/services/oauth2/token") => {
            if !req
                .content_type
                .starts_with("application/x-www-form-urlencoded")
            {
                oauth_error(400, "invalid_request", "expected a form-encoded body")
            } else {
                match parse_form(body) {
                    None => oauth_error(400, "invalid_request", "malformed form"),
                    Some(form) => token(st, url, &form, authorization),
                }
            }
        }
        ("GET", "/services/oauth2/authorize") => authorize(st, query),
        ("POST", "/services/oauth2/revoke") => match parse_form(body) {
            Some(form) => revoke(st, form.get("token").map(String::as_str).unwrap_or("")),
            None => oauth_error(400, "invalid_request", "malformed form"),
        },
        ("POST", "/services/oauth2/introspect") => match parse_form(body) {
            Some(form) => {
                let app = &st.app;
                if form.get("client_id") != Some(&app.consumer_key)
                    || form.get("client_secret") != Some(&app.consumer_secret)
                {
                    oauth_error(401, "invalid_client", "invalid client credentials")
                } else {
                    let t = form.get("token").cloned().unwrap_or_default();
                    let active =
                        st.access_tokens.contains(&t) || st.refresh_tokens.contains_key(&t);
                    json_response(
                        200,
                        json!({"active": active, "client_id": st.app.consumer_key,
                        "username": st.app.username, "sub": USER_ID, "token_type": "access_token",
                        "scope": "api", "exp": now_secs() + 7200, "iat": now_secs(), "nbf": now_secs()}),
                    )
                }
            }
            None => oauth_error(400, "invalid_request", "malformed form"),
        },
        // The versions list is public at Salesforce (its REST guide fetches it with no token), so
        // it answers whatever the token: it proves nothing about one.
        ("GET", "/services/data" | "/services/data/") => json_response(200, versions()),
        // The Metadata API checks the session it finds in the SOAP header itself.
        ("POST", p) if p.starts_with("/services/Soap/m/") => eca::soap(st, req),
        (_, p) if !live && is_api(p) => invalid_session(),
        ("GET", "/services/oauth2/userinfo") => json_response(
            200,
            json!({"sub": format!("{url}/id/{ORG_ID}/{USER_ID}"), "user_id": USER_ID,
                   "organization_id": ORG_ID, "preferred_username": st.app.username,
                   "nickname": "ci", "name": "CI User", "email": "ci@acme.example.com",
                   "email_verified": true, "active": true, "user_type": "STANDARD",
                   "language": "en_US", "locale": "en_US", "utcOffset": 0,
                   "is_app_installed": true}),
        ),
        ("GET", p) if p == format!("/id/{ORG_ID}/{USER_ID}") => json_response(
            200,
            json!({"id": format!("{url}{p}"), "asserted_user": true, "user_id": USER_ID,
                   "organization_id": ORG_ID, "username": st.app.username, "nick_name": "ci",
                   "display_name": "CI User", "email": "ci@acme.example.com", "active": true,
                   "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
                   "utcOffset": 0, "is_app_installed": true,
                   "urls": {"rest": format!("{url}/services/data/v{{version}}/"),
                            "query": format!("{url}/services/data/v{{version}}/query/"),
                            "limits": format!("{url}/services/data/v{{version}}/limits/")}}),
        ),
        (_, p) if eca::is_admin_path(p) => eca::rest(st, req),
        ("GET", p) if eca::is_audit_query(p, query) => eca::audit_query(st, req),
        ("GET", p) if p.starts_with("/services/data/v") => rest(st, url, p, query),
        (_, p) if p.starts_with("/services/data/v") => json_response(
            405,
            json!([{"errorCode": "METHOD_NOT_ALLOWED",
                    "message": format!("HTTP Method '{method}' not allowed. Allowed are GET,HEAD")}]),
        ),
        _ => not_found(),
    }
}

/// Paths that need a live access token.
fn is_api(path: &str) -> bool {
    path.starts_with("/services/data/v")
        || path.starts_with("/id/")
        || path == "/services/oauth2/userinfo"
}

fn invalid_session() -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(INVALID_SESSION)
        .with_status_code(401)
        .with_header(Header::from_bytes("Content-Type", "application/json;charset=UTF-8").unwrap())
        .with_header(Header::from_bytes("WWW-Authenticate", "Token").unwrap())
}

fn not_found() -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(
        404,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
    )
}

/// `/services/data`: every version from 31.0 to the newest, oldest first, with release names.
fn versions() -> Value {
    let list: Vec<Value> = (OLDEST_API..=NEWEST_API)
        .map(|v| {
            // 65.0 is Winter '26, 64.0 Summer '25, 63.0 Spring '25, 62.0 Winter '25, …
            let back = NEWEST_API - v;
            let (season, year) = match back % 3 {
                0 => ("Winter", 26 - back / 3),
                1 => ("Summer", 25 - back / 3),
                _ => ("Spring", 25 - back / 3),
            };
            json!({"label": format!("{season} '{year:02}"), "url": format!("/services/data/v{v}.0"),
                   "version": format!("{v}.0")})
        })
        .collect();
    Value::Array(list)
}

/// `GET /services/data/vXX.X[/…]` with a live token.
fn rest(st: &State, url: &str, path: &str, query: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let rest = &path["/services/data/v".len()..];
    let (version, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let supported = version
        .strip_suffix(".0")
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| (OLDEST_API..=NEWEST_API).contains(&m) && version == format!("{m}.0"));
    if !supported {
        return not_found();
    }
    let base = format!("/services/data/v{version}");
    match sub.trim_end_matches('/') {
        "" => json_response(
            200,
            json!({"tooling": format!("{base}/tooling"), "query": format!("{base}/query"),
                   "sobjects": format!("{base}/sobjects"), "limits": format!("{base}/limits"),
                   "identity": format!("{url}/id/{ORG_ID}/{USER_ID}"),
                   "search": format!("{base}/search"), "recent": format!("{base}/recent")}),
        ),
        "limits" => json_response(
            200,
            json!({
                "DailyApiRequests": {"Max": 15000, "Remaining": 14998},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 5, "Remaining": 5},
                "FileStorageMB": {"Max": 20, "Remaining": 20},
                "SingleEmail": {"Max": 15, "Remaining": 15}
            }),
        ),
        "query" => query_answer(st, &base, query, false),
        "tooling/query" => query_answer(st, &base, query, true),
        s if s == format!("sobjects/User/{USER_ID}") => json_response(
            200,
            json!({"attributes": {"type": "User", "url": format!("{base}/sobjects/User/{USER_ID}")},
                   "Id": USER_ID, "Username": st.app.username, "Name": "CI User",
                   "Email": "ci@acme.example.com", "IsActive": true}),
        ),
        _ => not_found(),
    }
}

/// An object the fake can query: its name, its fields (canonical names) and its records.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<Value>>);

/// The objects the fake can query.
fn table(st: &State, object: &str, tooling: bool) -> Option<Table> {
    let o = object.to_ascii_lowercase();
    match (tooling, o.as_str()) {
        (false, "account") => Some((
            "Account",
            vec!["Id", "Name"],
            ACCOUNTS
                .iter()
                .map(|(id, name)| vec![json!(id), json!(name)])
                .collect(),
        )),
        (false, "organization") => Some((
            "Organization",
            vec![
                "Id",
                "Name",
                "InstanceName",
                "IsSandbox",
                "TrialExpirationDate",
                "NamespacePrefix",
                "OrganizationType",
            ],
            vec![vec![
                json!(ORG_ID),
                json!("Acme"),
                json!("NA224"),
                json!(false),
                Value::Null,
                Value::Null,
                json!("Developer Edition"),
            ]],
        )),
        (false, "user") => Some((
            "User",
            vec!["Id", "Username", "Name", "Email", "IsActive"],
            vec![vec![
                json!(USER_ID),
                json!(st.app.username),
                json!("CI User"),
                json!("ci@acme.example.com"),
                json!(true),
            ]],
        )),
        // Only a Dev Hub has scratch org infos and packages; this one has none yet.
        (false, "scratchorginfo") if st.dev_hub => Some((
            "ScratchOrgInfo",
            vec![
                "Id",
                "Status",
                "SignupUsername",
                "ScratchOrg",
                "ExpirationDate",
                "LoginUrl",
                "OrgName",
                "Edition",
                "CreatedDate",
                "CreatedBy.Username",
            ],
            Vec::new(),
        )),
        (true, "package2") if st.dev_hub => Some(("Package2", Vec::new(), Vec::new())),
        (false, "externalclientapplication") => Some((
            "ExternalClientApplication",
            vec!["Id", "DeveloperName"],
            eca::soql_rows(st),
        )),
        _ => None,
    }
}

/// `…/query?q=SOQL[&columns=true]` (or the tooling API's): `SELECT f, … FROM Object [rest]`,
/// where the rest (WHERE, ORDER BY, LIMIT) is accepted and not applied.
fn query_answer(
    st: &State,
    base: &str,
    query: &str,
    tooling: bool,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let bad = |code: &str, message: String| {
        json_response(400, json!([{"message": message, "errorCode": code}]))
    };
    let Some(params) = parse_form(query) else {
        return bad("MALFORMED_QUERY", "malformed query string".into());
    };
    let soql = params.get("q").cloned().unwrap_or_default();
    let words: Vec<&str> = soql.split_whitespace().collect();
    let from = words.iter().position(|w| w.eq_ignore_ascii_case("from"));
    let (Some(first), Some(from)) = (words.first(), from) else {
        return bad("MALFORMED_QUERY", format!("unexpected token: '{soql}'"));
    };
    if !first.eq_ignore_ascii_case("select") || from < 2 || from + 1 >= words.len() {
        return bad("MALFORMED_QUERY", format!("unexpected token: '{soql}'"));
    }
    let fields: Vec<String> = words[1..from]
        .join(" ")
        .split(',')
        .map(|f| f.trim().to_owned())
        .collect();
    let object = words[from + 1];
    let Some((name, columns, rows)) = table(st, object, tooling) else {
        return bad(
            "INVALID_TYPE",
            format!(
                "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        );
    };
    // Each selected field by its canonical name, with its column; a field the object lacks is
    // refused (an object the fake knows no fields of takes any: it has no records).
    let mut selected = Vec::new();
    for f in &fields {
        if f.is_empty() {
            return bad("MALFORMED_QUERY", format!("unexpected token: '{soql}'"));
        }
        match columns.iter().position(|c| c.eq_ignore_ascii_case(f)) {
            Some(i) => selected.push((columns[i].to_owned(), Some(i))),
            None if columns.is_empty() => selected.push((f.clone(), None)),
            None => {
                return bad(
                    "INVALID_FIELD",
                    format!(
                        "No such column '{f}' on entity '{name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                );
            }
        }
    }
    if params.get("columns").map(String::as_str) == Some("true") {
        let meta: Vec<Value> = selected
            .iter()
            .map(|(c, _)| {
                json!({"aggregate": false, "apexType": if c == "Id" { "Id" } else { "String" },
                       "booleanType": false, "columnName": c, "custom": false, "displayName": c,
                       "foreignKeyName": null, "insertable": c != "Id", "joinColumns": [],
                       "numberType": false, "textType": c != "Id", "updatable": c != "Id"})
            })
            .collect();
        return json_response(
            200,
            json!({"columnMetadata": meta, "entityName": name, "groupBy": false,
                   "idSelected": selected.iter().any(|(c, _)| c == "Id"), "keyPrefix": null}),
        );
    }
    let records: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut rec = serde_json::Map::new();
            let id = row.first().and_then(Value::as_str).unwrap_or("");
            rec.insert(
                "attributes".into(),
                json!({"type": name, "url": format!("{base}/sobjects/{name}/{id}")}),
            );
            for (c, i) in &selected {
                rec.insert(c.clone(), i.map_or(Value::Null, |i| row[i].clone()));
            }
            Value::Object(rec)
        })
        .collect();
    let mut answer = json!({"totalSize": records.len(), "done": true, "records": records});
    if tooling {
        answer["size"] = json!(answer["totalSize"]);
        answer["queryLocator"] = Value::Null;
        answer["entityTypeName"] = json!(name);
    }
    json_response(200, answer)
}

/// `n` characters from Salesforce's token alphabet (letters, digits, dots), derived from the
/// issue serial, the time and `salt`: unique per token, and no `-`, `_` or `/`, which real
/// tokens do not hold.
fn salesforce_chars(st: &State, salt: &[u8], n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.";
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut out = String::with_capacity(n);
    let mut block = 0u64;
    while out.len() < n {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&st.serial.to_le_bytes());
        ctx.update(&nanos.to_le_bytes());
        ctx.update(&block.to_le_bytes());
        ctx.update(salt);
        for b in ctx.finish().as_ref() {
            if out.len() < n {
                out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
            }
        }
        block += 1;
    }
    out
}

/// A JWT-based access token as Salesforce issues them: base64url header, claims, signature.
fn jwt_access_token(st: &State, url: &str) -> String {
    let now = now_secs();
    let header = json!({"tnk": format!("core/prod/{ORG_ID}"), "ver": "1.0",
                        "kid": format!("CORE_ATJWT.{ORG_ID}.{}", now), "tty": "sfdc-core-token",
                        "typ": "JWT", "alg": "RS256"});
    let claims = json!({"scp": "api", "aud": [url], "sub": format!("uid:{USER_ID}"),
                        "nbf": now - 30, "mty": "oauth", "sfi": salesforce_chars(st, b"sfi", 40),
                        "roles": [], "iss": url, "hsc": false, "exp": now + 7200, "iat": now,
                        "client_id": st.app.consumer_key, "jti": salesforce_chars(st, b"jti", 24)});
    let signature: Vec<u8> = (0..8)
        .flat_map(|i| {
            ring::digest::digest(
                &ring::digest::SHA256,
                format!("{}{i}", salesforce_chars(st, b"sig", 32)).as_bytes(),
            )
            .as_ref()
            .to_vec()
        })
        .collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn issue(st: &mut State, url: &str, refresh: Option<String>, with_refresh: bool) -> Value {
    st.serial += 1;
    let access = if st.jwt_access_tokens {
        jwt_access_token(st, url)
    } else {
        // Classic: the org's 15-character id, `!`, then letters, digits and dots.
        format!(
            "{}!AQ{}.{}",
            &ORG_ID[..15],
            st.serial,
            salesforce_chars(st, b"access", 96)
        )
    };
    st.access_tokens.push(access.clone());
    st.issued.push(access.clone());
    let signature = ring::digest::digest(&ring::digest::SHA256, access.as_bytes());
    let mut body = json!({
        "access_token": access,
        "instance_url": url,
        "id": format!("{url}/id/{ORG_ID}/{USER_ID}"),
        "token_type": "Bearer",
        "issued_at": (now_secs() * 1000).to_string(),
        "signature": STANDARD.encode(signature),
        "scope": "api",
    });
    if st.jwt_access_tokens {
        body["token_format"] = json!("jwt");
    }
    match refresh {
        Some(parent) => {
            st.refresh_tokens.entry(parent).or_default().push(access);
        }
        None if with_refresh => {
            let r = format!(
                "5Aep861{}{}",
                st.serial,
                salesforce_chars(st, b"refresh", 80)
            );
            st.refresh_tokens.insert(r.clone(), vec![access]);
            st.issued.push(r.clone());
            body["refresh_token"] = json!(r);
            body["scope"] = json!("api refresh_token");
        }
        None => {}
    }
    body
}

/// [`issue`], recording which app the access token was issued to, as the answer.
fn issue_for(
    st: &mut State,
    url: &str,
    by: TokenApp,
    refresh: Option<String>,
    with_refresh: bool,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let body = issue(st, url, refresh, with_refresh);
    if let Some(access) = body["access_token"].as_str() {
        // Salesforce shows it as an OauthToken row or an ECA usage token.
        eca::record_session(st, access, &by);
        st.eca.token_apps.insert(access.to_owned(), by);
    }
    json_response(200, body)
}

fn token(
    st: &mut State,
    url: &str,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Response<std::io::Cursor<Vec<u8>>> {
    if let Some((status, error, description)) = st.fail_next.take() {
        return oauth_error(status, &error, &description);
    }
    let app = st.app.clone();
    let get = |k: &str| form.get(k).map(String::as_str);
    match get("grant_type") {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            if form.len() != 2 {
                return oauth_error(
                    400,
                    "invalid_request",
                    "jwt-bearer takes grant_type and assertion only",
                );
            }
            match check_jwt(st, url, get("assertion").unwrap_or("")) {
                Ok(by) => issue_for(st, url, by, None, false),
                Err(description) => oauth_error(400, "invalid_grant", &description),
            }
        }
        Some("client_credentials") => {
            let (id, secret) = match authorization.and_then(|a| a.strip_prefix("Basic ")) {
                Some(b) => {
                    let decoded = String::from_utf8(STANDARD.decode(b).unwrap_or_default())
                        .unwrap_or_default();
                    let (i, s) = decoded.split_once(':').unwrap_or(("", ""));
                    (i.to_owned(), s.to_owned())
                }
                None => (
                    get("client_id").unwrap_or("").to_owned(),
                    get("client_secret").unwrap_or("").to_owned(),
                ),
            };
            if id != app.consumer_key {
                // Another app of the org: an ECA's primary or live staged pair, or an extra
                // connected app's pair.
                match eca::client_credentials(st, &id, &secret) {
                    Ok(by) => issue_for(st, url, by, None, false),
                    Err(response) => response,
                }
            } else if secret != app.consumer_secret {
                oauth_error(400, "invalid_client", "invalid client credentials")
            } else {
                issue_for(st, url, TokenApp::Main, None, false)
            }
        }
        Some("refresh_token") => {
            let r = get("refresh_token").unwrap_or("");
            if let Some(response) = eca::refresh(st, url, form) {
                response
            } else if get("client_id") != Some(app.consumer_key.as_str()) {
                oauth_error(400, "invalid_client_id", "client identifier invalid")
            } else if get("client_secret").is_some_and(|s| s != app.consumer_secret) {
                oauth_error(400, "invalid_client", "invalid client credentials")
            } else if !st.refresh_tokens.contains_key(r) {
                oauth_error(400, "invalid_grant", "expired access/refresh token")
            } else {
                issue_for(st, url, TokenApp::Main, Some(r.to_owned()), false)
            }
        }
        Some("password") => {
            if get("client_id") != Some(app.consumer_key.as_str()) {
                oauth_error(400, "invalid_client_id", "client identifier invalid")
            } else if get("client_secret") != Some(app.consumer_secret.as_str()) {
                oauth_error(400, "invalid_client", "invalid client credentials")
            } else if get("username") != Some(app.username.as_str())
                || get("password") != Some(app.password_and_token.as_str())
            {
                oauth_error(400, "invalid_grant", "authentication failure")
            } else {
                issue_for(st, url, TokenApp::Main, None, false)
            }
        }
        Some("authorization_code") => {
            let code = get("code").unwrap_or("");
            let Some((challenge, redirect, client, scope)) = st.codes.remove(code) else {
                return oauth_error(400, "invalid_grant", "invalid authorization code");
            };
            let verifier = get("code_verifier").unwrap_or("");
            let verifier_ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
                && URL_SAFE_NO_PAD.encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    verifier.as_bytes(),
                )) == challenge;
            if get("client_id") != Some(client.as_str()) {
                oauth_error(400, "invalid_client_id", "client identifier invalid")
            } else if get("redirect_uri") != Some(redirect.as_str()) {
                oauth_error(400, "invalid_grant", "redirect_uri mismatch")
            } else if !verifier_ok {
                oauth_error(400, "invalid_grant", "invalid code verifier")
            } else {
                let with_refresh = scope.split(' ').any(|s| s == "refresh_token");
                issue_for(st, url, TokenApp::Main, None, with_refresh)
            }
        }
        _ => oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    }
}

/// Checks an assertion; the app it logs in to (the main app, an ECA or an extra connected app,
/// by `iss`), whose user must be `sub` and whose deployed certificate must verify it.
fn check_jwt(st: &mut State, url: &str, assertion: &str) -> Result<TokenApp, String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return Err("invalid assertion".into());
    }
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "invalid assertion encoding".to_owned())
    };
    let header = String::from_utf8(decode(parts[0])?).map_err(|_| "invalid header")?;
    let claims: Value = serde_json::from_slice(&decode(parts[1])?).map_err(|_| "invalid claims")?;
    let signature = decode(parts[2])?;
    st.jwts.push(SeenJwt {
        header: header.clone(),
        claims: claims.clone(),
    });
    let h: Value = serde_json::from_str(&header).map_err(|_| "invalid header")?;
    if h.get("alg") != Some(&json!("RS256")) {
        return Err("invalid assertion algorithm".into());
    }
    let obj = claims.as_object().ok_or("invalid claims")?;
    let iss = obj.get("iss").and_then(Value::as_str).unwrap_or("");
    let (by, username, certificate) = if iss == st.app.consumer_key {
        (
            TokenApp::Main,
            st.app.username.clone(),
            st.app.certificate_pem.clone(),
        )
    } else {
        // Salesforce: "client identifier invalid"
        eca::jwt_app(st, iss).ok_or("invalid client identifier")?
    };
    if obj.get("sub") != Some(&json!(username)) {
        return Err("user hasn't approved this consumer".into());
    }
    if obj.get("aud") != Some(&json!(st.audience.as_deref().unwrap_or(url))) {
        return Err("audience is invalid".into());
    }
    let exp = obj
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("expiration time is invalid")?;
    let now = now_secs();
    if exp <= now || exp > now + 300 {
        return Err("expired authorization code".into());
    }
    let pem = certificate.ok_or("invalid assertion: no certificate uploaded")?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| "bad certificate")?;
    let cert = pem.parse_x509().map_err(|_| "bad certificate")?;
    let key = cert.public_key().subject_public_key.data.to_vec();
    let message = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(message.as_bytes(), &signature)
        .map_err(|_| "invalid signature".to_owned())?;
    Ok(by)
}

fn authorize(st: &mut State, query: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let Some(q) = parse_form(query) else {
        return oauth_error(400, "invalid_request", "malformed query");
    };
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" {
        return oauth_error(
            400,
            "unsupported_response_type",
            "response type not supported",
        );
    }
    if get("client_id") != st.app.consumer_key {
        return oauth_error(400, "invalid_client_id", "client identifier invalid");
    }
    let redirect = get("redirect_uri");
    if !redirect.starts_with("http://localhost:") && !redirect.starts_with("http://127.0.0.1:") {
        return oauth_error(
            400,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    }
    if get("code_challenge_method") != "S256"
        || get("code_challenge").len() != 43
        || get("state").is_empty()
    {
        return oauth_error(
            400,
            "invalid_request",
            "PKCE S256 challenge and state are required",
        );
    }
    st.serial += 1;
    let code = format!("aPrx{}code{}", st.serial, now_secs());
    st.codes.insert(
        code.clone(),
        (
            get("code_challenge"),
            redirect.clone(),
            get("client_id"),
            get("scope"),
        ),
    );
    let location = format!("{redirect}?code={code}&state={}", get("state"));
    Response::from_string("")
        .with_status_code(302)
        .with_header(Header::from_bytes("Location", location.as_bytes()).unwrap())
}

fn revoke(st: &mut State, token: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    if let Some(children) = st.refresh_tokens.remove(token) {
        st.access_tokens.retain(|t| !children.contains(t));
    } else if let Some(i) = st.access_tokens.iter().position(|t| t == token) {
        st.access_tokens.remove(i);
    } else if eca::revoke_delete_token(st, token) {
        // An OauthToken row's DeleteToken: the row is gone, and its access token if any.
    } else {
        return oauth_error(400, "invalid_token", "invalid token");
    }
    st.revoked.push(token.to_owned());
    json_response(200, json!({}))
}
