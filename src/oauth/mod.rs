//! Salesforce OAuth flows performed by sfvault itself: the secrets and the private key stay in
//! the vault's process; what comes out is an access token. docs/OAUTH.md describes each flow.
//!
//! - [`http`]: the one HTTP client.
//! - [`jwt`]: the JWT bearer assertion, signed by ring (the key decoded by [`crate::pem`]).
//! - [`web`]: the web-server flow with PKCE and a loopback listener.
//! - [`keygen`]: an RSA key and its self-signed certificate.

pub mod http;
pub mod jwt;
pub mod keygen;
pub mod web;

/// The PEM decoder now lives at [`crate::pem`] (the vault checks keys with it too); this path
/// stays for code written against `oauth::pem`.
pub use crate::pem;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::SecretString;
use crate::timefmt::Timestamp;
pub use crate::vault::fields::Flow;
use crate::vault::fields::{self, DEFAULT_LOGIN_URL};
use crate::vault::model::Entry;
use http::Http;

/// Default time a cached access token is trusted: Salesforce sends no expiry, sessions last 2 h
/// by default, so 90 minutes leaves a margin.
pub const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 90 * 60;

/// What an entry holds for OAuth, read from its fields.
pub struct Credentials<'a> {
    entry: &'a Entry,
    name: String,
}

impl<'a> Credentials<'a> {
    /// The credentials of entry `name` (an unmasked entry).
    pub fn new(name: &str, entry: &'a Entry) -> Credentials<'a> {
        Credentials {
            entry,
            name: name.to_owned(),
        }
    }

    fn value(&self, field: &str) -> Option<&'a SecretString> {
        self.entry.fields.get(field).map(|f| &f.value)
    }

    fn require(&self, field: &str, flow: Flow) -> Result<&'a SecretString> {
        self.value(field).filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::no_field(&self.name, field, format!(
                "{} has no {field}, which the {} flow needs; set it with `sfvault set {} {field}`",
                self.name,
                flow.name(),
                self.name
            ))
        })
    }

    /// The login URL (default `https://login.salesforce.com`), without a trailing slash.
    pub fn login_url(&self) -> String {
        self.value("login_url")
            .map_or(DEFAULT_LOGIN_URL, |v| v.expose())
            .trim_end_matches('/')
            .to_owned()
    }

    /// The JWT audiences to try, in order: the `audience` field alone when set; else the login
    /// URL, `https://test.salesforce.com` and `https://login.salesforce.com`, without repeats.
    pub fn jwt_audiences(&self) -> Vec<String> {
        if let Some(aud) = self.value("audience").filter(|v| !v.is_empty()) {
            return vec![aud.expose().trim_end_matches('/').to_owned()];
        }
        let mut all = vec![self.login_url()];
        for known in ["https://test.salesforce.com", DEFAULT_LOGIN_URL] {
            if !all.iter().any(|a| a == known) {
                all.push(known.to_owned());
            }
        }
        all
    }

    /// The flow to use when none is forced: the entry's `flow`, else inferred from what it holds.
    pub fn flow(&self) -> Result<Flow> {
        if let Some(flow) = self.value("flow") {
            return Flow::parse(flow.expose());
        }
        let has = |f: &str| self.value(f).is_some();
        if has("private_key") && has("username") {
            Ok(Flow::Jwt)
        } else if has(fields::REFRESH_TOKEN) {
            Ok(Flow::RefreshToken)
        } else {
            Err(Error::Usage(format!(
                "{} names no flow; set one: sfvault set {} flow {}",
                self.name,
                self.name,
                Flow::names().join("|")
            )))
        }
    }

    /// How long a cached token is trusted (`token_lifetime`, default 90 minutes).
    pub fn token_lifetime_secs(&self) -> i64 {
        self.value("token_lifetime")
            .and_then(|v| crate::timefmt::parse_duration(v.expose()).ok())
            .map_or(DEFAULT_TOKEN_LIFETIME_SECS, |d| d.as_secs() as i64)
    }
}

/// A token Salesforce issued, as parsed from its answer.
pub struct Token {
    /// The access token.
    pub access_token: SecretString,
    /// Where API calls go.
    pub instance_url: String,
    /// The identity URL (`…/id/ORGID/USERID`).
    pub id: String,
    /// Org id parsed from `id`.
    pub org_id: String,
    /// User id parsed from `id`.
    pub user_id: String,
    /// `issued_at` in milliseconds, as Salesforce sent it.
    pub issued_at_ms: i64,
    /// A refresh token, for flows that return one.
    pub refresh_token: Option<SecretString>,
}

/// A usable access token (cached in the vault or just issued) and what `token --json` and
/// `export` report about it.
pub struct ValidToken {
    /// The access token.
    pub access_token: SecretString,
    /// Where API calls go.
    pub instance_url: String,
    /// The org id, if known.
    pub org_id: Option<String>,
    /// The entry's username, if it holds one.
    pub username: Option<String>,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When sfvault stops trusting it (issued + the entry's token lifetime).
    pub expires_at: Timestamp,
}

impl ValidToken {
    /// The cached token of `entry` (an unmasked entry), if it is younger than `lifetime`
    /// seconds at `now`, with when Salesforce last accepted it (`token_checked_at`), if known.
    pub fn cached(
        entry: &Entry,
        lifetime: i64,
        now: Timestamp,
    ) -> Option<(ValidToken, Option<Timestamp>)> {
        let checked_at = entry
            .fields
            .get(fields::TOKEN_CHECKED_AT)
            .and_then(|f| f.value.expose().parse::<Timestamp>().ok());
        Self::cached_token(entry, lifetime, now).map(|t| (t, checked_at))
    }

    fn cached_token(entry: &Entry, lifetime: i64, now: Timestamp) -> Option<ValidToken> {
        let token = entry.fields.get(fields::ACCESS_TOKEN)?;
        let instance = entry.fields.get(fields::INSTANCE_URL)?;
        let expires_at = token.set_at + lifetime;
        (now < expires_at && !token.value.is_empty()).then(|| ValidToken {
            access_token: token.value.duplicate(),
            instance_url: instance.value.expose().to_owned(),
            issued_at: token.set_at,
            expires_at,
            username: entry
                .fields
                .get("username")
                .map(|f| f.value.expose().to_owned()),
            org_id: entry
                .fields
                .get("org_id")
                .map(|f| f.value.expose().to_owned()),
        })
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: SecretString,
    instance_url: String,
    id: String,
    issued_at: Option<String>,
    refresh_token: Option<SecretString>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Run a non-interactive flow (everything but [`Flow::Web`]) against the token endpoint.
pub fn request_token(http: &Http, creds: &Credentials<'_>, flow: Flow, now: i64) -> Result<Token> {
    let login = creds.login_url();
    let url = format!("{login}/services/oauth2/token");
    let key = || creds.require("consumer_key", flow).map(|v| v.expose());
    let password;
    let mut form: Vec<(&str, &str)> = Vec::new();
    match flow {
        Flow::Jwt => return jwt_token(http, creds, &url, now),
        Flow::ClientCredentials => {
            form.push(("grant_type", "client_credentials"));
            form.push(("client_id", key()?));
            form.push((
                "client_secret",
                creds.require("consumer_secret", flow)?.expose(),
            ));
        }
        Flow::RefreshToken => {
            form.push(("grant_type", "refresh_token"));
            form.push((
                "refresh_token",
                creds.require(fields::REFRESH_TOKEN, flow)?.expose(),
            ));
            form.push(("client_id", key()?));
            if let Some(secret) = creds.value("consumer_secret") {
                form.push(("client_secret", secret.expose()));
            }
        }
        Flow::Password => {
            let mut joined = creds.require("password", flow)?.expose().to_owned();
            if let Some(t) = creds.value("security_token") {
                joined.push_str(t.expose());
            }
            password = SecretString::new(joined);
            form.push(("grant_type", "password"));
            form.push(("client_id", key()?));
            form.push((
                "client_secret",
                creds.require("consumer_secret", flow)?.expose(),
            ));
            form.push(("username", creds.require("username", flow)?.expose()));
            form.push(("password", password.expose()));
        }
        Flow::Web => {
            return Err(Error::Usage(
                "the web flow needs a browser: run `sfvault login ORG/APP --flow web`".into(),
            ));
        }
    }
    token_call(http, &url, &form)
}

/// The JWT bearer flow: the assertion is always sent to the login URL's token endpoint; its
/// `aud` is the entry's `audience` if set, else, as the Salesforce CLI does, the login URL,
/// then `https://test.salesforce.com`, then `https://login.salesforce.com`, the next one tried
/// only when Salesforce answers "audience is invalid". The error names every audience tried.
fn jwt_token(http: &Http, creds: &Credentials<'_>, url: &str, now: i64) -> Result<Token> {
    let flow = Flow::Jwt;
    let signer = jwt::signing_key(creds.require("private_key", flow)?)?;
    let user = creds.require("username", flow)?.expose();
    let key = creds.require("consumer_key", flow)?.expose();
    let audiences = creds.jwt_audiences();
    let mut tried = Vec::new();
    for aud in &audiences {
        let assertion = jwt::assertion(&signer, key, user, aud, now)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.expose()),
        ];
        tried.push(aud.as_str());
        match token_call(http, url, &form) {
            Err(Error::OAuth { description, .. })
                if description
                    .to_ascii_lowercase()
                    .contains("audience is invalid")
                    && tried.len() < audiences.len() => {}
            Err(Error::OAuth {
                error,
                description,
                hint,
            }) if description
                .to_ascii_lowercase()
                .contains("audience is invalid") =>
            {
                return Err(Error::OAuth {
                    error,
                    description: format!("{description} (aud tried: {})", tried.join(", ")),
                    hint,
                });
            }
            other => return other,
        }
    }
    unreachable!("the audience list is never empty")
}

/// How long a token that Salesforce accepted is handed out again without asking.
pub const CHECK_INTERVAL_SECS: i64 = 5 * 60;

/// What Salesforce said of a cached access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// It is live.
    Accepted,
    /// 401: expired, revoked, or the session was ended (`INVALID_SESSION_ID`): get a new one.
    Refused,
    /// No answer either way (another status, e.g. a scope the token lacks; or the network):
    /// the token is handed out as it is, as before any check.
    Unknown,
}

/// Ask Salesforce whether `token` still works, with one cheap call: `GET
/// {instance_url}/services/oauth2/userinfo`. Only a 401 means it does not.
pub fn check_token(http: &Http, instance_url: &str, token: &SecretString) -> TokenCheck {
    let url = format!(
        "{}/services/oauth2/userinfo",
        instance_url.trim_end_matches('/')
    );
    match http.get_bearer(&url, token.expose()) {
        Ok(r) if r.status == 200 => TokenCheck::Accepted,
        Ok(r) if r.status == 401 => TokenCheck::Refused,
        _ => TokenCheck::Unknown,
    }
}

/// POST to a token endpoint and parse the answer.
pub fn token_call(http: &Http, url: &str, form: &[(&str, &str)]) -> Result<Token> {
    let response = http.post_form(url, form)?;
    if response.status != 200 {
        return Err(error_from(response.status, &response.body));
    }
    parse_token(&response.body)
}

fn parse_token(body: &str) -> Result<Token> {
    let bad = |why: &str| Error::network(format!("Salesforce's token answer is unusable: {why}"));
    let t: TokenBody = serde_json::from_str(body).map_err(|_| bad("not the expected JSON"))?;
    if t.access_token.is_empty() || t.access_token.len() > 4096 {
        return Err(bad("no access_token"));
    }
    crate::url::parse(&t.instance_url).map_err(|r| bad(&format!("its instance_url {r}")))?;
    let mut parts = t.id.trim_end_matches('/').rsplit('/');
    let (user_id, org_id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let is_id =
        |s: &str| (15..=18).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !is_id(org_id) || !is_id(user_id) {
        return Err(bad("id does not end in /ORGID/USERID"));
    }
    let issued_at_ms = t
        .issued_at
        .as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    Ok(Token {
        org_id: org_id.to_owned(),
        user_id: user_id.to_owned(),
        access_token: t.access_token,
        instance_url: t.instance_url,
        id: t.id,
        issued_at_ms,
        refresh_token: t.refresh_token,
    })
}

/// Turn an error answer into exit 7 with Salesforce's words and a hint (5xx: exit 8).
pub fn error_from(status: u16, body: &str) -> Error {
    if status >= 500 {
        return Error::network(format!(
            "Salesforce answered HTTP {status}; try again later"
        ));
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => {
            let error: String = e
                .error
                .chars()
                .take(100)
                .filter(|c| !c.is_control())
                .collect();
            let description: String = e
                .error_description
                .chars()
                .take(300)
                .filter(|c| !c.is_control())
                .collect();
            Error::OAuth {
                hint: hint(&error, &description),
                error,
                description,
            }
        }
        Err(_) => Error::OAuth {
            error: format!("http_{status}"),
            description: "the answer was not Salesforce's JSON error".into(),
            hint: None,
        },
    }
}

/// What to do about the errors whose cause is known.
fn hint(error: &str, description: &str) -> Option<String> {
    let d = description.to_ascii_lowercase();
    let h = if d.contains("hasn't approved") || d.contains("has not approved") {
        "pre-authorise the user: in Setup → App Manager → (the app) → Manage → Edit Policies, set \
         Permitted Users to 'Admin approved users are pre-authorized' and add the user's profile or \
         permission set"
    } else if d.contains("audience is invalid") {
        "the org expects another aud: name it with `sfvault set ORG/APP audience URL` \
         (https://test.salesforce.com for sandboxes, https://login.salesforce.com for production, \
         or the My Domain URL), or fix login_url"
    } else if d.contains("expired access/refresh token") {
        "the refresh token expired or was revoked: log in again with `sfvault login ORG/APP --flow web`"
    } else if d.contains("authentication failure") {
        "wrong username, password or security token, or the user is locked out"
    } else if d.contains("no client credentials user") {
        "set a 'Run As' user in the connected app's Client Credentials Flow settings"
    } else if error == "invalid_client_id" {
        "this org does not know the consumer key: check consumer_key, and login_url (sandbox or production)"
    } else if error == "invalid_client_credentials" || error == "invalid_client" {
        "the consumer secret is wrong or was regenerated: sfvault set ORG/APP consumer_secret"
    } else if error == "unsupported_grant_type" {
        "this flow is not enabled for the connected app (Setup → App Manager → the app → OAuth settings)"
    } else if error == "inactive_user" {
        "the Salesforce user is inactive"
    } else if error == "inactive_org" {
        "the org is inactive, locked or expired"
    } else if error == "rate_limit_exceeded" {
        "too many logins in a short time: wait a few minutes"
    } else {
        return None;
    };
    Some(h.to_owned())
}

/// Revoke `token` at `{login}/services/oauth2/revoke`. An `invalid_token` answer means it was
/// already dead, which is success too.
pub fn revoke(http: &Http, login_url: &str, token: &SecretString) -> Result<()> {
    let url = format!("{}/services/oauth2/revoke", login_url.trim_end_matches('/'));
    let response = http.post_form(&url, &[("token", token.expose())])?;
    match response.status {
        200 => Ok(()),
        _ => match error_from(response.status, &response.body) {
            Error::OAuth { error, .. } if error == "invalid_token" => Ok(()),
            other => Err(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn token_answers_parse_strictly() {
        let ok = r#"{"access_token":"00D!AQ","instance_url":"https://acme.my.salesforce.com",
            "id":"https://login.salesforce.com/id/00D5g000000XXXXEAA/0055g00000YYYYYAAA",
            "token_type":"Bearer","issued_at":"1764370000000","signature":"x"}"#;
        let t = parse_token(ok).unwrap();
        assert_eq!(t.org_id, "00D5g000000XXXXEAA");
        assert_eq!(t.user_id, "0055g00000YYYYYAAA");
        assert_eq!(t.issued_at_ms, 1_764_370_000_000);
        for bad in [
            "{}",
            "not json",
            r#"{"access_token":"x","instance_url":"http://evil.example","id":"https://l/id/00D5g000000XXXXEAA/0055g00000YYYYYAAA"}"#,
            r#"{"access_token":"x","instance_url":"http://localhost:80@evil.example","id":"https://l/id/00D5g000000XXXXEAA/0055g00000YYYYYAAA"}"#,
            r#"{"access_token":"x","instance_url":"https://user@acme.my.salesforce.com","id":"https://l/id/00D5g000000XXXXEAA/0055g00000YYYYYAAA"}"#,
            r#"{"access_token":"x","instance_url":"https://a.b","id":"https://l/id/x/y"}"#,
        ] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_carry_hints() {
        let e = error_from(
            400,
            r#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.to_string().contains("pre-authorise"));
        let e = error_from(
            400,
            r#"{"error":"invalid_grant","error_description":"audience is invalid"}"#,
        );
        assert!(e.to_string().contains("test.salesforce.com"));
        assert_eq!(error_from(503, "").kind(), ErrorKind::Network);
        assert_eq!(error_from(401, "<html>").kind(), ErrorKind::Refused);
    }
}
