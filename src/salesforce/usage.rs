//! Who holds OAuth tokens in an org: External Client Apps' usage resources (users, paged; their
//! tokens; revocation) and classic connected apps' `OauthToken` rows (SOQL, whose answers stop
//! at 2,500 rows: counted first, and split by user when there are more).
//!
//! Everything is bounded: page size, number of pages, rows, and (by the HTTP client) bodies and
//! time. Paths are built from checked ids, never taken from an answer.

use serde_json::Value;

use super::{Admin, check_id, clean};
use crate::error::{Error, Result};
use crate::oauth::http::Method;
use crate::secret::SecretString;

/// Users asked for per page of an app's usage.
pub const PAGE_SIZE: usize = 200;
/// Most pages of users read for one app (so at most 200,000 users).
pub const MAX_PAGES: usize = 1000;
/// Where an `OauthToken` query stops returning rows.
pub const OAUTH_TOKEN_CAP: u64 = 2500;
/// Most users listed (User query) and most rows kept, for memory's sake.
pub const MAX_ROWS: usize = 1_000_000;
/// Most answers of one SOQL query followed by `nextRecordsUrl` (2,000 rows each).
pub const MAX_QUERY_PAGES: usize = 600;
/// Most users queried one by one past the `OauthToken` cap (one request each).
pub const MAX_USER_QUERIES: usize = 20_000;
/// Most tokens one user holds of one app that are read.
pub const MAX_TOKENS_PER_USER: usize = 10_000;

/// A user that holds tokens of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUser {
    /// The user id (`005…`).
    pub id: String,
    /// The username.
    pub username: String,
}

/// One token of an External Client App, as the usage resources report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageToken {
    /// The app's id.
    pub app_id: String,
    /// The app's developer name.
    pub app_name: String,
    /// The user id.
    pub user_id: String,
    /// The username.
    pub username: String,
    /// When the user first connected, as Salesforce says.
    pub initial_connection_at: Option<String>,
    /// When the token was last used, as Salesforce says (none: never).
    pub last_used_at: Option<String>,
    /// How many times it was used.
    pub use_count: u64,
    /// `JWT` or `Opaque`.
    pub format: String,
    /// The token's id (the last part of its revocation URL), if Salesforce gave a usable one.
    pub token_id: Option<String>,
}

/// One `OauthToken` row of a classic connected app.
#[derive(Debug)]
pub struct OauthTokenRow {
    /// The app's label.
    pub app_name: String,
    /// The user id.
    pub user_id: String,
    /// When it was created, as Salesforce says.
    pub created_at: Option<String>,
    /// When it was last used (none: never).
    pub last_used_at: Option<String>,
    /// How many times it was used.
    pub use_count: u64,
    /// What revokes it (`POST /services/oauth2/revoke token=…`): it cannot be used to log in,
    /// but it can end someone's session, so it is kept out of logs.
    pub delete_token: SecretString,
}

fn unusable(call: &str, why: &str) -> Error {
    Error::network(format!("Salesforce's answer to {call} is unusable: {why}"))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(|s| clean(s, 200))
}

/// `application/x-www-form-urlencoded`-style escaping of a SOQL query for `?q=`.
pub fn encode_query(soql: &str) -> String {
    let mut out = String::with_capacity(soql.len() * 3);
    for b in soql.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Admin<'_> {
    fn json(&self, call: &str, path: &str) -> Result<Option<Value>> {
        let r = self.rest(call, Method::Get, path, None, true)?;
        if r.status == 404 {
            return Ok(None);
        }
        serde_json::from_str(&r.body)
            .map(Some)
            .map_err(|_| unusable(call, "not JSON"))
    }

    /// The users holding tokens of app `app_id`, page by page until an empty page (the next
    /// page is announced even on the last one). `None`: no such app.
    pub fn usage_users(&self, app_id: &str) -> Result<Option<Vec<OrgUser>>> {
        check_id("app id", app_id)?;
        let call = "listing an app's users";
        let mut users = Vec::new();
        // Pages are offsets: a user who moves between two reads may be on two pages.
        let mut seen = std::collections::HashSet::new();
        for page in 0..MAX_PAGES {
            let path = format!("apps/oauth/usage/{app_id}/users?page={page}&pageSize={PAGE_SIZE}");
            let Some(v) = self.json(call, &path)? else {
                return Ok(None);
            };
            let list = v
                .get("users")
                .and_then(Value::as_array)
                .ok_or_else(|| unusable(call, "no users list"))?;
            if list.is_empty() {
                return Ok(Some(users));
            }
            if list.len() > PAGE_SIZE {
                return Err(unusable(call, "a page longer than asked for"));
            }
            for u in list {
                let id = text(u, "userIdentifier")
                    .or_else(|| text(u, "userId"))
                    .ok_or_else(|| unusable(call, "a user without userIdentifier"))?;
                check_id("user id", &id)
                    .map_err(|_| unusable(call, "a user id that is not a Salesforce id"))?;
                if seen.insert(id.clone()) {
                    users.push(OrgUser {
                        id,
                        username: text(u, "username").unwrap_or_default(),
                    });
                }
            }
            if users.len() > MAX_ROWS {
                return Err(unusable(call, "too many users"));
            }
        }
        Err(unusable(call, "more pages than sfvault reads"))
    }

    /// The tokens user `user_id` holds for app `app_id`.
    pub fn usage_tokens(&self, app_id: &str, user_id: &str) -> Result<Vec<UsageToken>> {
        check_id("app id", app_id)?;
        check_id("user id", user_id)?;
        let call = "listing a user's tokens";
        let path = format!("apps/oauth/usage/{app_id}/{user_id}/tokens");
        let Some(v) = self.json(call, &path)? else {
            return Ok(Vec::new());
        };
        let list = v
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| unusable(call, "no tokens list"))?;
        let mut out = Vec::new();
        if list.len() > MAX_TOKENS_PER_USER {
            return Err(unusable(
                call,
                "more tokens for one user than sfvault reads",
            ));
        }
        for t in list {
            // A token without a usable revocation URL is still counted; it just cannot be
            // revoked by its id.
            let token_id = text(t, "revocationUrl")
                .and_then(|url| url.rsplit('/').next().map(str::to_owned))
                .filter(|id| check_id("token id", id).is_ok());
            out.push(UsageToken {
                app_id: app_id.to_owned(),
                app_name: text(t, "appDeveloperName").unwrap_or_default(),
                user_id: user_id.to_owned(),
                username: text(t, "username").unwrap_or_default(),
                initial_connection_at: text(t, "initialConnectionAt"),
                last_used_at: text(t, "lastUsedAt"),
                use_count: t.get("useCount").and_then(Value::as_u64).unwrap_or(0),
                format: text(t, "accessTokenFormat").unwrap_or_default(),
                token_id,
            });
        }
        Ok(out)
    }

    /// Revoke one token, all of a user's tokens of an app, or all of an app's tokens
    /// (`user_id`/`token_id` absent). `false`: there was nothing to revoke (404).
    pub fn revoke_usage(
        &self,
        app_id: &str,
        user_id: Option<&str>,
        token_id: Option<&str>,
    ) -> Result<bool> {
        check_id("app id", app_id)?;
        let path = match (user_id, token_id) {
            (Some(u), Some(t)) => {
                check_id("user id", u)?;
                check_id("token id", t)?;
                format!("apps/oauth/usage/{app_id}/{u}/tokens/{t}")
            }
            (Some(u), None) => {
                check_id("user id", u)?;
                format!("apps/oauth/usage/{app_id}/{u}/tokens")
            }
            (None, None) => format!("apps/oauth/usage/{app_id}/tokens"),
            (None, Some(_)) => return Err(Error::Usage("a token is revoked with its user".into())),
        };
        let r = self.rest("revoking tokens", Method::Delete, &path, None, true)?;
        Ok(r.status != 404)
    }

    /// A SOQL query's records, following `nextRecordsUrl` (under this org's query resource):
    /// at most [`MAX_QUERY_PAGES`] answers, never the same locator twice, and an answer that
    /// says "more" must bring rows.
    pub(crate) fn soql(&self, call: &str, soql: &str) -> Result<(Vec<Value>, u64)> {
        let mut path = format!("query?q={}", encode_query(soql));
        let mut records = Vec::new();
        let mut total = 0;
        let mut locators = std::collections::HashSet::new();
        for _ in 0..MAX_QUERY_PAGES {
            let mut v = self
                .json(call, &path)?
                .ok_or_else(|| unusable(call, "no query resource"))?;
            total = v.get("totalSize").and_then(Value::as_u64).unwrap_or(total);
            let before = records.len();
            if let Some(Value::Array(list)) = v.get_mut("records").map(Value::take) {
                records.extend(list);
            }
            let brought = records.len() > before;
            if records.len() > MAX_ROWS {
                return Err(unusable(call, "too many rows"));
            }
            let next = v.get("nextRecordsUrl").and_then(Value::as_str);
            match next {
                Some(url) if v.get("done") == Some(&Value::Bool(false)) => {
                    // Only the query locator is taken from the answer, and checked.
                    let locator = url.rsplit('/').next().unwrap_or_default();
                    if locator.is_empty()
                        || locator.len() > 64
                        || !locator
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        return Err(unusable(call, "a strange nextRecordsUrl"));
                    }
                    if !brought || !locators.insert(locator.to_owned()) {
                        return Err(unusable(call, "a next page that brings nothing new"));
                    }
                    path = format!("query/{locator}");
                }
                _ => return Ok((records, total)),
            }
        }
        Err(unusable(call, "more pages than sfvault reads"))
    }

    /// How many `OauthToken` rows there are (of one user, if given).
    pub fn count_oauth_tokens(&self, user_id: Option<&str>) -> Result<u64> {
        let soql = match user_id {
            Some(u) => {
                check_id("user id", u)?;
                format!("SELECT COUNT() FROM OauthToken WHERE UserId = '{u}'")
            }
            None => "SELECT COUNT() FROM OauthToken".to_owned(),
        };
        Ok(self.soql("counting OAuth tokens", &soql)?.1)
    }

    /// The `OauthToken` rows (of one user, if given), as one query returns them (at most 2,500).
    pub fn oauth_tokens(&self, user_id: Option<&str>) -> Result<Vec<OauthTokenRow>> {
        let mut soql =
            "SELECT AppName, UserId, CreatedDate, LastUsedDate, UseCount, DeleteToken FROM OauthToken"
                .to_owned();
        if let Some(u) = user_id {
            check_id("user id", u)?;
            soql.push_str(&format!(" WHERE UserId = '{u}'"));
        }
        let call = "listing OAuth tokens";
        let (records, _) = self.soql(call, &soql)?;
        let mut out = Vec::with_capacity(records.len());
        for mut r in records {
            let user = text(&r, "UserId").ok_or_else(|| unusable(call, "a row without UserId"))?;
            check_id("user id", &user)?;
            let delete = match r.get_mut("DeleteToken").map(Value::take) {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 4096 => SecretString::new(s),
                _ => return Err(unusable(call, "a row without DeleteToken")),
            };
            out.push(OauthTokenRow {
                app_name: text(&r, "AppName").unwrap_or_default(),
                user_id: user,
                created_at: text(&r, "CreatedDate"),
                last_used_at: text(&r, "LastUsedDate"),
                use_count: r.get("UseCount").and_then(Value::as_u64).unwrap_or(0),
                delete_token: delete,
            });
        }
        Ok(out)
    }

    /// The org's users (id, username).
    pub fn users(&self) -> Result<Vec<OrgUser>> {
        let call = "listing users";
        let (records, _) = self.soql(call, "SELECT Id, Username FROM User")?;
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let id = text(r, "Id").ok_or_else(|| unusable(call, "a user without Id"))?;
            check_id("user id", &id)?;
            out.push(OrgUser {
                id,
                username: text(r, "Username").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Every `OauthToken` row, whatever their number, and how many were counted first: under
    /// the 2,500-row cap one query; past it, user by user (a user whose own rows reach the cap
    /// is an error: rows would be lost). The two numbers differ only if tokens came or went
    /// while they were read.
    pub fn all_oauth_tokens(&self) -> Result<(Vec<OauthTokenRow>, u64)> {
        let total = self.count_oauth_tokens(None)?;
        if total < OAUTH_TOKEN_CAP {
            let rows = self.oauth_tokens(None)?;
            if rows.len() as u64 >= OAUTH_TOKEN_CAP {
                return Err(unusable("listing OAuth tokens", "rows past the cap"));
            }
            return Ok((rows, total));
        }
        let users = self.users()?;
        if users.len() > MAX_USER_QUERIES {
            return Err(Error::failed(format!(
                "the org has {} OAuth tokens and {} users: past {OAUTH_TOKEN_CAP} tokens sfvault reads them \
                 user by user, one request each, and stops at {MAX_USER_QUERIES} users to spare the org's \
                 API allowance; audit connected apps' tokens in Setup (Connected Apps OAuth Usage)",
                total,
                users.len()
            )));
        }
        let mut rows = Vec::with_capacity(total.min(MAX_ROWS as u64) as usize);
        for user in users {
            let got = self.oauth_tokens(Some(&user.id))?;
            if got.len() as u64 >= OAUTH_TOKEN_CAP {
                return Err(Error::failed(format!(
                    "user {} holds {OAUTH_TOKEN_CAP} or more OAuth tokens, more than one query returns: \
                     revoke some in Setup (or audit them there)",
                    user.id
                )));
            }
            rows.extend(got);
            if rows.len() > MAX_ROWS {
                return Err(unusable("listing OAuth tokens", "too many rows"));
            }
        }
        Ok((rows, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_is_escaped_for_the_query_string() {
        assert_eq!(
            encode_query("SELECT COUNT() FROM OauthToken WHERE UserId = '005A'"),
            "SELECT+COUNT%28%29+FROM+OauthToken+WHERE+UserId+%3D+%27005A%27"
        );
    }
}

/// Review tests: a scripted, hostile Salesforce on loopback.
#[cfg(test)]
mod review {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::oauth::http::Http;

    /// Serve `answer(path) -> (status, body)`; after `cap` requests, 500s. Returns the URL and
    /// the request counter.
    fn serve(
        cap: usize,
        answer: impl Fn(&str) -> (u16, String) + Send + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let n = Arc::new(AtomicUsize::new(0));
        let count = n.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                let i = count.fetch_add(1, Ordering::SeqCst);
                let (status, body) = if i >= cap {
                    (500, "[]".to_owned())
                } else {
                    answer(&path)
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, n)
    }

    /// A query locator that never ends, with no rows: `soql` follows it for ever (no page
    /// bound; MAX_ROWS never trips because nothing is added).
    #[test]
    fn a_next_records_url_loop_is_bounded() {
        let (url, n) = serve(3000, |_| {
            (
                200,
                r#"{"totalSize":1,"done":false,"nextRecordsUrl":"/services/data/v65.0/query/01gLOOP-2000","records":[]}"#
                    .to_owned(),
            )
        });
        let http = Http::new();
        let admin = Admin::new(&http, &url, SecretString::new("00D!x".into())).unwrap();
        let r = admin.users();
        assert!(r.is_err());
        let made = n.load(Ordering::SeqCst);
        assert!(
            made < 100,
            "{made} requests before stopping (the fake cut it at 3000)"
        );
    }

    /// Offset paging while users come and go: the same user on two pages. Its tokens are read
    /// twice and counted twice.
    #[test]
    fn a_user_on_two_pages_is_counted_once() {
        let (url, _) = serve(100, |p| {
            let body = if p.contains("users?page=0") {
                r#"{"users":[{"userIdentifier":"005A"},{"userIdentifier":"005B"}]}"#
            } else if p.contains("users?page=1") {
                r#"{"users":[{"userIdentifier":"005B"}]}"#
            } else {
                r#"{"users":[]}"#
            };
            (200, body.to_owned())
        });
        let http = Http::new();
        let admin = Admin::new(&http, &url, SecretString::new("00D!x".into())).unwrap();
        let users = admin.usage_users("0xAPP").unwrap().unwrap();
        let ids: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["005A", "005B"]);
    }

    /// An app the usage list names (it has tokens) but whose credentials resource answers 404
    /// (e.g. a packaged ECA: the credentials resources serve only local ones): `collect`
    /// drops it with its tokens, so no unknown-app and no idle-token can be found for it.
    #[test]
    fn an_app_with_tokens_but_no_credentials_keeps_its_tokens() {
        let (url, _) = serve(100, |p| {
            let (s, b) = if p.ends_with("/apps/oauth/usage") {
                (
                    200,
                    r#"{"apps":[{"identifier":"0xPKG","developerName":"pkg_app"}]}"#,
                )
            } else if p.contains("ExternalClientApplication") {
                (200, r#"{"totalSize":0,"done":true,"records":[]}"#)
            } else if p.contains("apps/oauth/credentials/") {
                (404, r#"[{"errorCode":"NOT_FOUND","message":"x"}]"#)
            } else if p.contains("users?page=0") {
                (200, r#"{"users":[{"userIdentifier":"005A"}]}"#)
            } else if p.contains("users?page=") {
                (200, r#"{"users":[]}"#)
            } else if p.ends_with("/005A/tokens") {
                (
                    200,
                    r#"{"tokens":[{"revocationUrl":"/x/T1","lastUsedAt":"2020-01-01T00:00:00.000Z","useCount":1}]}"#,
                )
            } else if p.contains("query?q=") {
                (200, r#"{"totalSize":0,"done":true,"records":[]}"#)
            } else {
                (404, "[]")
            };
            (s, b.to_owned())
        });
        let http = Http::new();
        let admin = Admin::new(&http, &url, SecretString::new("00D!x".into())).unwrap();
        let org = crate::access::collect(&admin, &[], &mut |_| {}).unwrap();
        let tokens: usize = org.ecas.iter().map(|e| e.tokens.len()).sum();
        assert_eq!(tokens, 1, "the app's token was dropped");
    }
}
