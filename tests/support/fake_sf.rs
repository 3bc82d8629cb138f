//! A fake Salesforce: a real HTTP server on 127.0.0.1 that implements the OAuth endpoints as
//! Salesforce documents them (docs/OAUTH.md), strictly, so that it tests our client:
//! token (JWT bearer, client credentials, refresh token, password, authorization code + PKCE),
//! authorize, revoke, introspect and userinfo. It can be told to fail in each documented way.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tiny_http::{Header, Response, Server};

use super::TestVault;

pub const ORG_ID: &str = "00D5g000000XXXXEAA";
pub const USER_ID: &str = "0055g00000YYYYYAAA";

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
}

/// The running fake.
pub struct FakeSalesforce {
    /// `http://127.0.0.1:PORT`: the login URL and the instance URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
                        handle(&state, &url, request);
                    }
                }
            })
        };
        FakeSalesforce {
            url,
            state,
            stop,
            thread: Some(thread),
        }
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

fn handle(state: &Mutex<State>, url: &str, mut request: tiny_http::Request) {
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
    let mut body = String::new();
    let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
    let mut st = state.lock().unwrap();
    *st.counts.entry(path.clone()).or_default() += 1;
    let response = match (method.as_str(), path.as_str()) {
        ("POST", "/services/oauth2/token") => {
            if !content_type.starts_with("application/x-www-form-urlencoded") {
                oauth_error(400, "invalid_request", "expected a form-encoded body")
            } else {
                match parse_form(&body) {
                    None => oauth_error(400, "invalid_request", "malformed form"),
                    Some(form) => token(&mut st, url, &form, authorization.as_deref()),
                }
            }
        }
        ("GET", "/services/oauth2/authorize") => authorize(&mut st, &query),
        ("POST", "/services/oauth2/revoke") => match parse_form(&body) {
            Some(form) => revoke(&mut st, form.get("token").map(String::as_str).unwrap_or("")),
            None => oauth_error(400, "invalid_request", "malformed form"),
        },
        ("POST", "/services/oauth2/introspect") => match parse_form(&body) {
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
        ("GET", "/services/oauth2/userinfo") => {
            let token = authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "));
            match token {
                Some(t) if st.access_tokens.iter().any(|x| x == t) => json_response(
                    200,
                    json!({"user_id": USER_ID, "organization_id": ORG_ID,
                           "preferred_username": st.app.username}),
                ),
                _ => json_response(
                    401,
                    json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
                ),
            }
        }
        _ => json_response(
            404,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ),
    };
    drop(st);
    let _ = request.respond(response);
}

fn issue(st: &mut State, url: &str, refresh: Option<String>, with_refresh: bool) -> Value {
    st.serial += 1;
    let mut rnd = [0u8; 24];
    for (i, b) in rnd.iter_mut().enumerate() {
        *b = (st.serial as u8)
            .wrapping_mul(31)
            .wrapping_add(i as u8)
            .wrapping_add(now_secs() as u8);
    }
    let access = format!(
        "00D5g000000XXXX!AQ{}{}",
        st.serial,
        URL_SAFE_NO_PAD.encode(rnd)
    );
    st.access_tokens.push(access.clone());
    let mut body = json!({
        "access_token": access,
        "instance_url": url,
        "id": format!("{url}/id/{ORG_ID}/{USER_ID}"),
        "token_type": "Bearer",
        "issued_at": (now_secs() * 1000).to_string(),
        "signature": STANDARD.encode(rnd),
        "scope": "api",
    });
    match refresh {
        Some(parent) => {
            st.refresh_tokens.entry(parent).or_default().push(access);
        }
        None if with_refresh => {
            let r = format!("5Aep861{}{}", st.serial, URL_SAFE_NO_PAD.encode(&rnd[..12]));
            st.refresh_tokens.insert(r.clone(), vec![access]);
            body["refresh_token"] = json!(r);
            body["scope"] = json!("api refresh_token");
        }
        None => {}
    }
    body
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
                Ok(()) => json_response(200, issue(st, url, None, false)),
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
                oauth_error(400, "invalid_client_id", "client identifier invalid")
            } else if secret != app.consumer_secret {
                oauth_error(400, "invalid_client", "invalid client credentials")
            } else {
                json_response(200, issue(st, url, None, false))
            }
        }
        Some("refresh_token") => {
            let r = get("refresh_token").unwrap_or("");
            if get("client_id") != Some(app.consumer_key.as_str()) {
                oauth_error(400, "invalid_client_id", "client identifier invalid")
            } else if get("client_secret").is_some_and(|s| s != app.consumer_secret) {
                oauth_error(400, "invalid_client", "invalid client credentials")
            } else if !st.refresh_tokens.contains_key(r) {
                oauth_error(400, "invalid_grant", "expired access/refresh token")
            } else {
                json_response(200, issue(st, url, Some(r.to_owned()), false))
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
                json_response(200, issue(st, url, None, false))
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
                json_response(200, issue(st, url, None, with_refresh))
            }
        }
        _ => oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    }
}

fn check_jwt(st: &mut State, url: &str, assertion: &str) -> Result<(), String> {
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
    if obj.get("iss") != Some(&json!(st.app.consumer_key)) {
        return Err("invalid client identifier".into()); // Salesforce: "client identifier invalid"
    }
    if obj.get("sub") != Some(&json!(st.app.username)) {
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
    let pem = st
        .app
        .certificate_pem
        .clone()
        .ok_or("invalid assertion: no certificate uploaded")?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| "bad certificate")?;
    let cert = pem.parse_x509().map_err(|_| "bad certificate")?;
    let key = cert.public_key().subject_public_key.data.to_vec();
    let message = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(message.as_bytes(), &signature)
        .map_err(|_| "invalid signature".to_owned())
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
    } else {
        return oauth_error(400, "invalid_token", "invalid token");
    }
    st.revoked.push(token.to_owned());
    json_response(200, json!({}))
}
