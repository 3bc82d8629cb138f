//! The fake Salesforce's answers to "who really has access" (tests/support/fake_eca.rs), proved
//! with raw HTTP, as /work/shared/SALESFORCE-ROTATION.md ("Who really has access") says them:
//! the ECAs' OAuth usage resources (users paged with a `nextPageUrl` even on the last page,
//! tokens per user, three ways to revoke) and SOQL on OauthToken (rows stop at 2,500 with
//! `done: true`; revoke by DeleteToken), the User list paged by `nextRecordsUrl`, the admin's
//! own session among the tokens, the audit data set, and faults on the new steps.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_sf::{
    ADMIN_APP_LABEL, AppConfig, AuditDataSet, ClassicApp, EcaConfig, FakeSalesforce, Fault,
    OAUTH_TOKEN_CAP, OTHER_USER_ID, OTHER_USERNAME, Step, USER_ID,
};

const V: &str = "65.0";
const ADMIN_KEY: &str = "3MVG9ADMIN.app.for.the.admin.apis";
const ADMIN_SECRET: &str = "ADMIN0SECRET0FOR0TESTS";
const ADMIN_USER: &str = "admin@acme.example";
const ECA_USER: &str = "integration@acme.example";
const UNKNOWN_APP: &str = "0x0000000000000000";

fn admin_app() -> AppConfig {
    AppConfig {
        consumer_key: ADMIN_KEY.into(),
        consumer_secret: ADMIN_SECRET.into(),
        username: ADMIN_USER.into(),
        password_and_token: String::new(),
        certificate_pem: None,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// One request: `Ok((status, body))`, or the transport error.
fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), ureq::Error> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = match body {
        Some(b) => agent().run(req.body(b).unwrap())?,
        None => agent().run(req.body(()).unwrap())?,
    };
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string()?))
}

fn json_of(status: u16, body: &str) -> (u16, Value) {
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    };
    (status, v)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form_post(sf: &FakeSalesforce, path: &str, form: &str) -> Result<(u16, Value), ureq::Error> {
    let url = format!("{}{path}", sf.url);
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    let (s, b) = raw("POST", &url, &ct, Some(form))?;
    Ok(json_of(s, &b))
}

/// A client-credentials token request; the access token.
fn cc_token(sf: &FakeSalesforce, key: &str, secret: &str) -> String {
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        enc(key),
        enc(secret)
    );
    let (s, v) = form_post(sf, "/services/oauth2/token", &form).unwrap();
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// `POST /services/oauth2/revoke` with `token`.
fn revoke(sf: &FakeSalesforce, token: &str) -> (u16, Value) {
    form_post(
        sf,
        "/services/oauth2/revoke",
        &format!("token={}", enc(token)),
    )
    .unwrap()
}

fn error_code(v: &Value) -> &str {
    v[0]["errorCode"]
        .as_str()
        .unwrap_or_else(|| panic!("no error array: {v}"))
}

/// An org with the admin app, and an admin token got through the token endpoint.
struct Org {
    sf: FakeSalesforce,
    token: String,
}

fn org() -> Org {
    let sf = FakeSalesforce::start(admin_app());
    let token = cc_token(&sf, ADMIN_KEY, ADMIN_SECRET);
    Org { sf, token }
}

/// [`org`] with the audit data set loaded.
fn audit_org() -> (Org, AuditDataSet) {
    let o = org();
    let ds = o.sf.load_audit_data_set();
    (o, ds)
}

impl Org {
    /// `method` on `path` (below the fake's URL, query included) as `token`, JSON accepted;
    /// `Err` when the connection fails.
    fn try_as(&self, token: &str, method: &str, path: &str) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}{path}", self.sf.url);
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/json"),
        ];
        raw(method, &url, &headers, None)
    }

    fn call_as(&self, token: &str, method: &str, path: &str) -> (u16, Value) {
        let (s, b) = self.try_as(token, method, path).unwrap();
        json_of(s, &b)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call_as(&self.token, "GET", path)
    }

    /// `/services/data/v65.0/apps/oauth/usage[/sub]`
    fn usage_path(sub: &str) -> String {
        let base = format!("/services/data/v{V}/apps/oauth/usage");
        if sub.is_empty() {
            base
        } else {
            format!("{base}/{sub}")
        }
    }

    fn usage(&self, sub: &str) -> (u16, Value) {
        self.get(&Org::usage_path(sub))
    }

    fn delete(&self, path: &str) -> (u16, String) {
        self.try_as(&self.token, "DELETE", path).unwrap()
    }

    fn soql_as(&self, token: &str, q: &str) -> (u16, Value) {
        self.call_as(
            token,
            "GET",
            &format!("/services/data/v{V}/query?q={}", enc(q)),
        )
    }

    fn soql(&self, q: &str) -> (u16, Value) {
        self.soql_as(&self.token, q)
    }

    /// `SELECT COUNT() FROM OauthToken [WHERE UserId = 'user']` as `token`.
    fn count_as(&self, token: &str, user: Option<&str>) -> u64 {
        let mut q = "SELECT COUNT() FROM OauthToken".to_owned();
        if let Some(u) = user {
            q.push_str(&format!(" WHERE UserId = '{u}'"));
        }
        let (s, v) = self.soql_as(token, &q);
        assert_eq!(s, 200, "{v}");
        assert_eq!((&v["done"], &v["records"]), (&json!(true), &json!([])));
        v["totalSize"].as_u64().unwrap()
    }

    /// The rows query, with an optional per-user filter, as `token`: the answer.
    fn rows_as(&self, token: &str, user: Option<&str>) -> Value {
        let mut q =
            "SELECT AppName, UserId, CreatedDate, LastUsedDate, UseCount, DeleteToken FROM OauthToken"
                .to_owned();
        if let Some(u) = user {
            q.push_str(&format!(" WHERE UserId = '{u}'"));
        }
        let (s, v) = self.soql_as(token, &q);
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Whether `token` still opens the REST API.
    fn works(&self, token: &str) -> bool {
        let (s, v) = self.call_as(token, "GET", &format!("/services/data/v{V}/limits"));
        match s {
            200 => true,
            401 => {
                assert_eq!(error_code(&v), "INVALID_SESSION_ID");
                false
            }
            _ => panic!("{s}: {v}"),
        }
    }
}

/// Every page of the app's users from `first` (a path), following `nextPageUrl` until an empty
/// page: the pages' sizes (the empty one last) and the users in order.
fn all_pages(o: &Org, first: &str) -> (Vec<usize>, Vec<Value>) {
    let (mut sizes, mut users) = (Vec::new(), Vec::new());
    let mut next = first.to_owned();
    loop {
        let (s, v) = o.get(&next);
        assert_eq!(s, 200, "{next}: {v}");
        let page = v["users"].as_array().unwrap().clone();
        sizes.push(page.len());
        // Present on every page, the last and the empty one included.
        next = v["nextPageUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no nextPageUrl: {v}"))
            .to_owned();
        if page.is_empty() {
            return (sizes, users);
        }
        users.extend(page);
        assert!(sizes.len() < 50, "no end");
    }
}

// ----- the usage resources -----

#[test]
fn usage_users_are_paged_with_a_next_page_url_even_on_the_last_page() {
    let (o, ds) = audit_org();
    let big = &ds.eca_ids[0].app_id;

    // The apps list: every ECA that has issued a token, and the one told to be listed.
    let (s, v) = o.usage("");
    assert_eq!(s, 200, "{v}");
    let listed: Vec<&str> = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["identifier"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ds.eca_ids[..9].iter().map(|e| e.app_id.as_str()).collect();
    assert_eq!(listed, expected, "[9] has no token and is not listed");

    // Default page size 100: 202 users are pages 0, 1, 2 (2 users), then an empty page 3.
    let (s, v) = o.usage(&format!("{big}/users"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["users"].as_array().unwrap().len(), 100);
    assert_eq!(
        v["nextPageUrl"],
        json!(format!(
            "/services/data/v{V}/apps/oauth/usage/{big}/users?page=1&pageSize=100"
        ))
    );
    let (sizes, users) = all_pages(&o, &Org::usage_path(&format!("{big}/users")));
    assert_eq!(sizes, [100, 100, 2, 0]);
    let (s, last) = o.usage(&format!("{big}/users?page=2"));
    assert_eq!(s, 200);
    assert_eq!(last["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        last["nextPageUrl"],
        json!(format!(
            "/services/data/v{V}/apps/oauth/usage/{big}/users?page=3&pageSize=100"
        )),
        "the documented quirk: a next page is announced after the last one"
    );
    let (_, past) = o.usage(&format!("{big}/users?page=7&pageSize=100"));
    assert_eq!(past["users"], json!([]));
    assert!(
        past["nextPageUrl"]
            .as_str()
            .unwrap()
            .ends_with("page=8&pageSize=100")
    );
    // Each user once, with exactly these fields; the data set's users, the admin, the other.
    let ids: Vec<&str> = users
        .iter()
        .map(|u| {
            let keys: BTreeSet<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["userIdentifier", "username"]), "{u}");
            u["userIdentifier"].as_str().unwrap()
        })
        .collect();
    let mut expected: Vec<&str> = ds.users.iter().map(|(id, _)| id.as_str()).collect();
    expected.extend([USER_ID, OTHER_USER_ID]);
    assert_eq!(ids, expected, "a stable order: who got a token first");
    assert!(users.iter().any(|u| u["username"] == OTHER_USERNAME));
    assert!(users.iter().any(|u| u["username"] == ADMIN_USER));
    // The same order every time, and at other page sizes.
    assert_eq!(
        all_pages(&o, &Org::usage_path(&format!("{big}/users"))).1,
        users
    );
    let (sizes, again) = all_pages(&o, &Org::usage_path(&format!("{big}/users?pageSize=50")));
    assert_eq!((sizes, again), (vec![50, 50, 50, 50, 2, 0], users.clone()));
    let (sizes, again) = all_pages(&o, &Org::usage_path(&format!("{big}/users?pageSize=1000")));
    assert_eq!((sizes, again), (vec![202, 0], users.clone()));
    let (_, v) = o.usage(&format!("{big}/users?pageSize=1&page=201"));
    assert_eq!(v["users"][0]["userIdentifier"], OTHER_USER_ID);

    // Exactly one full page: the next one is empty (a short page is no sign of the end).
    let hundred = &ds.eca_ids[1].app_id;
    let path = Org::usage_path(&format!("{hundred}/users"));
    assert_eq!(all_pages(&o, &path).0, [100, 0]);
    // An ECA that holds no token: an empty first page; an unknown app: 404.
    let (s, v) = o.usage(&format!("{}/users", ds.eca_ids[9].app_id));
    assert_eq!((s, &v["users"]), (200, &json!([])));
    assert!(
        v["nextPageUrl"]
            .as_str()
            .unwrap()
            .ends_with("page=1&pageSize=100")
    );
    let (s, v) = o.usage(&format!("{UNKNOWN_APP}/users"));
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));

    // pageSize from 1 to 1,000; page and pageSize non-negative integers.
    for bad in [
        "pageSize=1001",
        "pageSize=0",
        "pageSize=abc",
        "pageSize=",
        "page=-1",
        "page=x",
        "page=1.5",
        "pageSize=100000000000000000000000",
    ] {
        let (s, v) = o.usage(&format!("{big}/users?{bad}"));
        assert_eq!((s, error_code(&v)), (400, "INVALID_INPUT"), "{bad}: {v}");
    }
    let (s, v) = o.usage(&format!(
        "{big}/users?page=18446744073709551615&pageSize=1000"
    ));
    assert_eq!(
        (s, &v["users"]),
        (200, &json!([])),
        "a huge page is only past the end"
    );

    // The same conventions as the other apps/oauth resources.
    let path = Org::usage_path(&format!("{big}/users"));
    let (s, v) = o.call_as(&o.token, "POST", &path);
    assert_eq!((s, error_code(&v)), (405, "METHOD_NOT_ALLOWED"));
    let old = format!("/services/data/v58.0/apps/oauth/usage/{big}/users");
    assert_eq!(o.get(&old).0, 404, "usage needs v59.0");
    assert_eq!(
        o.get(&format!(
            "/services/data/v59.0/apps/oauth/usage/{big}/users"
        ))
        .0,
        200
    );
    let (s, v) = o.call_as("00Dnot!a.live.token", "GET", &path);
    assert_eq!((s, error_code(&v)), (401, "INVALID_SESSION_ID"));
    let url = format!("{}{path}", o.sf.url);
    let auth = format!("Bearer {}", o.token);
    let (s, b) = raw("GET", &url, &[("Authorization", &auth)], None).unwrap();
    assert_eq!(
        (s, error_code(&json_of(s, &b).1).to_owned()),
        (406, "NOT_ACCEPTABLE".to_owned())
    );
    o.sf.set_admin_permission(false);
    let (s, v) = o.get(&path);
    assert_eq!((s, error_code(&v)), (403, "INSUFFICIENT_ACCESS"));
}

/// The fields of a usage token, exactly.
const TOKEN_FIELDS: [&str; 9] = [
    "accessTokenFormat",
    "appDeveloperName",
    "appIdentifier",
    "initialConnectionAt",
    "lastUsedAt",
    "revocationUrl",
    "useCount",
    "userIdentifier",
    "username",
];

fn is_iso_millis_z(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && s.ends_with(".000Z")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

#[test]
fn tokens_per_user() {
    let (o, ds) = audit_org();
    let app = &ds.eca_ids[0];
    let (user, username) = &ds.users[0]; // holds two tokens of that app
    let (s, v) = o.usage(&format!("{}/{user}/tokens", app.app_id));
    assert_eq!(s, 200, "{v}");
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let live = o.sf.usage_tokens();
    for t in tokens {
        let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(TOKEN_FIELDS), "{t}");
        assert_eq!(t["appDeveloperName"], ds.eca_names[0].as_str());
        assert_eq!(t["appIdentifier"], app.app_id.as_str());
        assert_eq!(t["userIdentifier"], user.as_str());
        assert_eq!(t["username"], username.as_str());
        assert!(
            is_iso_millis_z(t["initialConnectionAt"].as_str().unwrap()),
            "{t}"
        );
        assert!(t["lastUsedAt"].is_null() || is_iso_millis_z(t["lastUsedAt"].as_str().unwrap()));
        assert!(t["useCount"].is_u64());
        assert!(["JWT", "Opaque"].contains(&t["accessTokenFormat"].as_str().unwrap()));
        let url = t["revocationUrl"].as_str().unwrap();
        let prefix = format!(
            "/services/data/v{V}/apps/oauth/usage/{}/{user}/tokens/",
            app.app_id
        );
        let id = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{url}"
        );
        let known = live
            .iter()
            .find(|l| l.token_id == id)
            .expect("a live token");
        assert_eq!(t["useCount"], json!(known.use_count));
        assert_eq!(
            t["lastUsedAt"].is_null(),
            known.last_used_days_ago.is_none()
        );
    }
    // A user of the org without a token of that app: none; not a user of the org: 404.
    let (s, v) = o.usage(&format!("{}/{user}/tokens", ds.eca_ids[9].app_id));
    assert_eq!((s, v), (200, json!({"tokens": []})));
    let (s, v) = o.usage(&format!("{}/005000000000000AAA/tokens", app.app_id));
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    let (s, v) = o.usage(&format!("{UNKNOWN_APP}/{user}/tokens"));
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));

    // Tokens added by hand; their dates follow the fake's clock.
    let quiet = &ds.eca_ids[8].app_id;
    let never =
        o.sf.add_usage_token(quiet, "0055g0000NEW001AAA", "new@acme.example", None, 0);
    let old = o.sf.add_usage_token(
        quiet,
        "0055g0000NEW001AAA",
        "new@acme.example",
        Some(100),
        42,
    );
    let (_, v) = o.usage(&format!("{quiet}/0055g0000NEW001AAA/tokens"));
    let t = &v["tokens"];
    assert_eq!(
        (&t[0]["lastUsedAt"], &t[0]["useCount"]),
        (&Value::Null, &json!(0))
    );
    assert!(t[0]["revocationUrl"].as_str().unwrap().ends_with(&never));
    assert_eq!(t[1]["useCount"], 42);
    assert!(t[1]["revocationUrl"].as_str().unwrap().ends_with(&old));
    let days = |iso: &Value| {
        let s = iso.as_str().unwrap();
        let (y, m, d): (i64, i64, i64) = (
            s[..4].parse().unwrap(),
            s[5..7].parse().unwrap(),
            s[8..10].parse().unwrap(),
        );
        // days from civil (Howard Hinnant)
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    };
    assert_eq!(
        days(&t[1]["lastUsedAt"]) - days(&t[1]["initialConnectionAt"]),
        30
    );
    let ages = |sf: &FakeSalesforce| -> Vec<Option<i64>> {
        let mut t = sf.usage_tokens();
        t.retain(|t| t.user_id == "0055g0000NEW001AAA");
        t.iter().map(|t| t.last_used_days_ago).collect()
    };
    assert_eq!(ages(&o.sf), [None, Some(100)]);
    o.sf.advance_days(10);
    assert_eq!(ages(&o.sf), [None, Some(110)]);
    // The new user is a user of the org now, and holds tokens of [8] only.
    assert!(
        o.sf.users()
            .contains(&("0055g0000NEW001AAA".into(), "new@acme.example".into()))
    );
    let (_, v) = o.usage(&format!("{quiet}/users"));
    assert_eq!(v["users"][0]["userIdentifier"], "0055g0000NEW001AAA");
}

#[test]
fn the_three_revocations_and_their_404s() {
    let (o, ds) = audit_org();
    let app = &ds.eca_ids[0].app_id;
    let (a, _) = &ds.users[0]; // two tokens
    let (b, _) = &ds.users[1]; // one token
    let tokens_of = |user: &str| -> Vec<Value> {
        let (s, v) = o.usage(&format!("{app}/{user}/tokens"));
        assert_eq!(s, 200, "{v}");
        v["tokens"].as_array().unwrap().clone()
    };
    let users_of = |app: &str| -> usize {
        let (_, v) = o.usage(&format!("{app}/users?pageSize=1000"));
        v["users"].as_array().unwrap().len()
    };
    let before = o.sf.usage_tokens().len();

    // One token, by its revocation URL: 204 with an empty body; then 404.
    let first = tokens_of(a);
    let url = first[0]["revocationUrl"].as_str().unwrap().to_owned();
    assert_eq!(o.delete(&url), (204, String::new()));
    assert_eq!(tokens_of(a), first[1..].to_vec());
    assert_eq!(o.sf.usage_tokens().len(), before - 1);
    let (s, body) = o.delete(&url);
    assert_eq!((s, error_code(&json_of(s, &body).1)), (404, "NOT_FOUND"));
    // A live token named under another user or another app: 404, and it stays.
    let other = tokens_of(b)[0]["revocationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = other.rsplit('/').next().unwrap();
    for wrong in [
        Org::usage_path(&format!("{app}/{a}/tokens/{id}")),
        Org::usage_path(&format!("{}/{b}/tokens/{id}", ds.eca_ids[1].app_id)),
        Org::usage_path(&format!("{UNKNOWN_APP}/{b}/tokens/{id}")),
    ] {
        assert_eq!(o.delete(&wrong).0, 404, "{wrong}");
    }
    assert_eq!(tokens_of(b).len(), 1);

    // One user's tokens of the app.
    assert_eq!(users_of(app), 202);
    let path = Org::usage_path(&format!("{app}/{a}/tokens"));
    assert_eq!(o.delete(&path), (204, String::new()));
    assert_eq!(tokens_of(a), Vec::<Value>::new());
    assert_eq!(
        users_of(app),
        201,
        "a user with no token is no longer listed"
    );
    assert_eq!(o.delete(&path).0, 404, "nothing left to revoke");
    let never = Org::usage_path(&format!("{}/{a}/tokens", ds.eca_ids[9].app_id));
    assert_eq!(o.delete(&never).0, 404);
    // The same user's tokens of other apps stay.
    let (_, v) = o.usage(&format!("{}/users?pageSize=1000", ds.eca_ids[1].app_id));
    assert_eq!(v["users"].as_array().unwrap().len(), 100);

    // Every token of the app.
    let others = o.sf.usage_tokens().len()
        - o.sf
            .usage_tokens()
            .iter()
            .filter(|t| &t.app_id == app)
            .count();
    let path = Org::usage_path(&format!("{app}/tokens"));
    assert_eq!(o.delete(&path), (204, String::new()));
    assert_eq!(users_of(app), 0);
    assert_eq!(o.sf.usage_tokens().len(), others);
    assert_eq!(o.delete(&path).0, 404, "nothing left to revoke");
    assert_eq!(
        o.delete(&Org::usage_path(&format!("{UNKNOWN_APP}/tokens")))
            .0,
        404
    );
    // With no token left and not told to be listed, the app leaves the apps list.
    let (_, v) = o.usage("");
    assert!(
        !v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["identifier"] == app.as_str())
    );

    // Methods: GET of an app's tokens, DELETE of its users: 405.
    let (s, v) = o.get(&path);
    assert_eq!((s, error_code(&v)), (405, "METHOD_NOT_ALLOWED"));
    let users = Org::usage_path(&format!("{app}/users"));
    let (s, body) = o.delete(&users);
    assert_eq!(
        (s, error_code(&json_of(s, &body).1)),
        (405, "METHOD_NOT_ALLOWED")
    );
}

#[test]
fn a_revoked_usage_token_kills_its_access_token() {
    let o = org();
    let eca = o.sf.add_eca(EcaConfig {
        developer_name: "Billing_Sync".into(),
        label: "Billing Sync".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
        listed_in_usage: false,
    });
    let (_, v) = o.usage("");
    assert_eq!(v["apps"], json!([]), "no token yet, not listed");
    let issue = || cc_token(&o.sf, &eca.key, &eca.secret);

    // Each access token issued to the ECA shows as a usage token of its run-as user.
    let one = issue();
    let user =
        o.sf.users()
            .into_iter()
            .find(|(_, u)| u == ECA_USER)
            .expect("the run-as user is a user of the org")
            .0;
    let (_, v) = o.usage("");
    assert_eq!(v["apps"][0]["identifier"], eca.app_id.as_str());
    let (_, v) = o.usage(&format!("{}/users", eca.app_id));
    assert_eq!(
        v["users"],
        json!([{"userIdentifier": user, "username": ECA_USER}])
    );
    let (_, v) = o.usage(&format!("{}/{user}/tokens", eca.app_id));
    let t = &v["tokens"][0];
    assert_eq!(
        (&t["useCount"], &t["accessTokenFormat"]),
        (&json!(1), &json!("Opaque"))
    );
    assert!(is_iso_millis_z(t["lastUsedAt"].as_str().unwrap()));
    let live = o.sf.usage_tokens();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].user_id.as_str(), live[0].last_used_days_ago),
        (user.as_str(), Some(0))
    );

    // One token: only its access token dies.
    let two = issue();
    assert!(o.works(&one) && o.works(&two));
    let url = t["revocationUrl"].as_str().unwrap();
    assert_eq!(o.delete(url), (204, String::new()));
    assert!(
        !o.works(&one),
        "revoked at Salesforce: 401 INVALID_SESSION_ID"
    );
    assert!(o.works(&two));
    assert!(
        o.works(&o.token),
        "the admin's own session is not the app's"
    );

    // A user's tokens, then the whole app's.
    let three = issue();
    assert_eq!(
        o.delete(&Org::usage_path(&format!("{}/{user}/tokens", eca.app_id)))
            .0,
        204
    );
    assert!(!o.works(&two) && !o.works(&three));
    let four = issue();
    o.sf.issue_jwt_access_tokens();
    let five = issue();
    let formats: Vec<&str> = o.sf.usage_tokens().iter().map(|t| t.format).collect();
    assert_eq!(formats, ["Opaque", "JWT"]);
    assert_eq!(
        o.delete(&Org::usage_path(&format!("{}/tokens", eca.app_id)))
            .0,
        204
    );
    assert!(!o.works(&four) && !o.works(&five));
    assert!(o.works(&o.token));
    assert!(o.sf.usage_tokens().is_empty());
}

// ----- OauthToken and the User list -----

#[test]
fn oauth_token_count_the_2500_cap_and_per_user_rows() {
    let (o, ds) = audit_org();
    // 5,000 rows of the data set, and the admin's own session (its token above).
    let total = o.count_as(&o.token, None);
    assert_eq!(total, 5_001);
    assert_eq!(total as usize, o.sf.oauth_tokens().len());

    // All rows: silently cut at 2,500, with done: true and no next batch.
    let v = o.rows_as(&o.token, None);
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), OAUTH_TOKEN_CAP);
    assert_eq!((&v["totalSize"], &v["done"]), (&json!(2_500), &json!(true)));
    assert!(v.get("nextRecordsUrl").is_none());
    let r = &records[0];
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "attributes",
        "Id",
        "AppName",
        "UserId",
        "CreatedDate",
        "LastUsedDate",
        "UseCount",
        "DeleteToken",
    ];
    expected.sort_unstable();
    let mut keys = keys.clone();
    keys.sort_unstable();
    assert_eq!(keys, expected, "{r}");
    assert_eq!(r["attributes"], json!({"type": "OauthToken"}));
    assert_eq!(r["Id"], Value::Null);
    let created = r["CreatedDate"].as_str().unwrap();
    assert!(
        created.ends_with(".000+0000") && created.len() == 28,
        "{created}"
    );
    assert!(records.iter().any(|r| r["LastUsedDate"].is_null()));
    assert!(records.iter().all(|r| r["UseCount"].is_u64()));

    // Split by user: each user's rows are complete (none holds 2,500), and add up to all.
    let live = o.sf.oauth_tokens();
    let mut by_user: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for row in &live {
        by_user
            .entry(&row.user_id)
            .or_default()
            .insert(&row.delete_token);
    }
    let mut sum = 0;
    let mut heavy = 0;
    let mut users: Vec<&str> = ds.users.iter().map(|(id, _)| id.as_str()).collect();
    users.extend([USER_ID, OTHER_USER_ID]);
    for user in users {
        let n = o.count_as(&o.token, Some(user));
        let v = o.rows_as(&o.token, Some(user));
        let got: BTreeSet<&str> = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["UserId"], user);
                r["DeleteToken"].as_str().unwrap()
            })
            .collect();
        assert_eq!(v["totalSize"], json!(n));
        assert_eq!(
            got,
            by_user.get(user).cloned().unwrap_or_default(),
            "{user}"
        );
        sum += n;
        heavy += usize::from(n > 25);
    }
    assert_eq!(sum, total);
    assert!(heavy >= 10, "some users hold more than 25 tokens: {heavy}");

    // Written other ways: case, spaces, `=` without spaces, a 15-character id, fields in
    // another order, AppMenuItemId.
    let user = &ds.users[0].0;
    let n = o.count_as(&o.token, Some(user));
    let (s, v) = o.soql(&format!(
        "select   count()\n from oauthtoken  where userid='{}'",
        &user[..15]
    ));
    assert_eq!((s, &v["totalSize"]), (200, &json!(n)), "{v}");
    let (s, v) = o.soql(&format!(
        "SELECT UseCount,AppMenuItemId , AppName FROM OauthToken WHERE UserId = '{user}'"
    ));
    assert_eq!(s, 200, "{v}");
    let r = &v["records"][0];
    assert!(r["AppMenuItemId"].as_str().unwrap().starts_with("0Pp"));
    assert!(r.get("DeleteToken").is_none() && r["Id"].is_null());

    // Refused: what the fake does not answer, or Salesforce would not.
    for (q, code) in [
        (
            "SELECT AppName FROM OauthToken WHERE AppName = 'Workbench'",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT AppName FROM OauthToken ORDER BY UserId",
            "MALFORMED_QUERY",
        ),
        ("SELECT AppName FROM OauthToken LIMIT 10", "MALFORMED_QUERY"),
        ("SELECT AppName, FROM OauthToken", "MALFORMED_QUERY"),
        ("SELECT AppName AppName FROM OauthToken", "MALFORMED_QUERY"),
        ("SELECT AppName, AppName FROM OauthToken", "MALFORMED_QUERY"),
        ("SELECT COUNT(), AppName FROM OauthToken", "INVALID_FIELD"),
        ("SELECT Name FROM OauthToken", "INVALID_FIELD"),
        (
            "SELECT COUNT() FROM OauthToken WHERE UserId = 'nobody'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        (
            "SELECT COUNT() FROM OauthToken WHERE UserId = 0055g0000000001AAA",
            "MALFORMED_QUERY",
        ),
    ] {
        let (s, v) = o.soql(q);
        assert_eq!((s, error_code(&v)), (400, code), "{q}: {v}");
    }
}

#[test]
fn the_user_list_pages_with_next_records_url() {
    let (o, ds) = audit_org();
    let q = "SELECT Id, Username FROM User";
    // 202 users: one batch.
    let (s, v) = o.soql(q);
    assert_eq!(s, 200, "{v}");
    assert_eq!((&v["totalSize"], &v["done"]), (&json!(202), &json!(true)));
    assert!(v.get("nextRecordsUrl").is_none());
    assert_eq!(v["records"][0]["Id"], USER_ID);
    assert_eq!(v["records"][0]["Username"], ADMIN_USER);
    assert_eq!(
        v["records"][0]["attributes"],
        json!({"type": "User", "url": format!("/services/data/v{V}/sobjects/User/{USER_ID}")})
    );
    assert_eq!(v["records"][1]["Id"], OTHER_USER_ID);
    assert_eq!(v["records"][2]["Id"], ds.users[0].0.as_str());

    // 2,202 users: 2,000, then the rest through nextRecordsUrl.
    let more = o.sf.add_users(2_000);
    assert_eq!(more.len(), 2_000);
    let (s, v) = o.soql("select id,username from user");
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["totalSize"], &v["done"]),
        (&json!(2_202), &json!(false))
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 2_000);
    let next = v["nextRecordsUrl"].as_str().unwrap().to_owned();
    let locator = next
        .strip_prefix(&format!("/services/data/v{V}/query/01g"))
        .unwrap_or_else(|| panic!("{next}"));
    assert!(locator.ends_with("-2000"), "{next}");
    let mut ids: Vec<String> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    let (s, v) = o.get(&next);
    assert_eq!(s, 200, "{v}");
    assert_eq!((&v["totalSize"], &v["done"]), (&json!(2_202), &json!(true)));
    assert!(v.get("nextRecordsUrl").is_none());
    ids.extend(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned()),
    );
    let all: Vec<String> = o.sf.users().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, all);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2_202);
    assert!(ids.contains(&more[1_999].0));
    // The batch again, and locators that were never given out.
    assert_eq!(o.get(&next).0, 200);
    let base = format!("/services/data/v{V}/query");
    for bad in [
        "01gNOSUCHQUERY0000-2000",
        "nothing",
        &format!("01g{locator}").replace("-2000", "-5000"),
    ] {
        let (s, v) = o.get(&format!("{base}/{bad}"));
        assert_eq!((s, error_code(&v)), (400, "INVALID_QUERY_LOCATOR"), "{bad}");
    }
    let (s, v) = o.call_as("00Dnot!a.live.token", "GET", &next);
    assert_eq!((s, error_code(&v)), (401, "INVALID_SESSION_ID"));

    // Other User queries are fake_sf's, as before: the admin alone.
    let (s, v) = o.soql(&format!(
        "SELECT Id, Username, Name FROM User WHERE Id = '{USER_ID}'"
    ));
    assert_eq!((s, &v["totalSize"]), (200, &json!(1)), "{v}");
}

#[test]
fn a_user_without_customize_application_sees_only_its_own_rows() {
    let (o, _) = audit_org();
    let eca = o.sf.add_eca(EcaConfig {
        developer_name: "Billing_Sync".into(),
        label: "Billing Sync".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
        listed_in_usage: true,
    });
    let theirs = cc_token(&o.sf, &eca.key, &eca.secret);
    let user =
        o.sf.users()
            .into_iter()
            .find(|(_, u)| u == ECA_USER)
            .unwrap()
            .0;
    let d1 = o.sf.add_oauth_token("Workbench", &user, Some(3), 7);
    let d2 = o.sf.add_oauth_token("Data Loader", &user, None, 0);

    // The ECA's user: its own two rows, whatever it asks.
    assert_eq!(o.count_as(&theirs, None), 2);
    let v = o.rows_as(&theirs, None);
    let got: BTreeSet<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["UserId"], user.as_str());
            r["DeleteToken"].as_str().unwrap()
        })
        .collect();
    assert_eq!(got, BTreeSet::from([d1.as_str(), d2.as_str()]));
    assert_eq!(o.count_as(&theirs, Some(USER_ID)), 0);
    assert_eq!(o.count_as(&theirs, Some(&user)), 2);
    // …and no usage resources at all.
    let (s, v) = o.call_as(
        &theirs,
        "GET",
        &Org::usage_path(&format!("{}/users", eca.app_id)),
    );
    assert_eq!((s, error_code(&v)), (403, "INSUFFICIENT_ACCESS"));

    // The admin sees everyone: 5,000, the two, its own session.
    assert_eq!(o.count_as(&o.token, None), 5_003);
    assert_eq!(o.count_as(&o.token, Some(&user)), 2);
    // Without the permission, the admin too sees only its own rows.
    o.sf.set_admin_permission(false);
    assert_eq!(o.count_as(&o.token, None), 1);
    let v = o.rows_as(&o.token, None);
    assert_eq!(v["records"][0]["AppName"], ADMIN_APP_LABEL);
    assert_eq!(v["records"][0]["UserId"], USER_ID);
}

#[test]
fn revoke_by_delete_token_removes_the_row_and_the_session_it_stands_for() {
    let (o, ds) = audit_org();
    // The admin's own session is a row of its own app, for the admin.
    let mine: Vec<_> =
        o.sf.oauth_tokens()
            .into_iter()
            .filter(|r| r.app_name == ADMIN_APP_LABEL)
            .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].user_id.as_str(),
            mine[0].last_used_days_ago,
            mine[0].use_count
        ),
        (USER_ID, Some(0), 1)
    );
    let v = o.rows_as(&o.token, Some(USER_ID));
    assert_eq!(v["records"][0]["AppName"], ADMIN_APP_LABEL);
    assert_eq!(
        v["records"][0]["DeleteToken"],
        mine[0].delete_token.as_str()
    );

    // A row of the data set: 200 with the DeleteToken; the row is gone; again: invalid_token.
    let row = o.sf.oauth_tokens()[17].clone();
    assert_eq!(o.count_as(&o.token, None), 5_001);
    assert_eq!(revoke(&o.sf, &row.delete_token).0, 200);
    assert_eq!(o.count_as(&o.token, None), 5_000);
    assert!(!o.sf.oauth_tokens().contains(&row));
    let again = revoke(&o.sf, &row.delete_token);
    assert_eq!((again.0, &again.1["error"]), (400, &json!("invalid_token")));
    let unknown = revoke(&o.sf, "NoSuchDeleteToken0000000000000000");
    assert_eq!(
        (unknown.0, &unknown.1["error"]),
        (400, &json!("invalid_token"))
    );
    assert!(
        o.works(&o.token),
        "revoking another row leaves the admin's session"
    );

    // A second admin session; revoking the first one's row kills the first token only.
    let second = cc_token(&o.sf, ADMIN_KEY, ADMIN_SECRET);
    assert_eq!(o.count_as(&second, Some(USER_ID)), 2);
    assert_eq!(revoke(&o.sf, &mine[0].delete_token).0, 200);
    assert!(
        !o.works(&o.token),
        "the admin's own session died with its row"
    );
    assert!(o.works(&second));
    assert_eq!(o.count_as(&second, Some(USER_ID)), 1);

    // An extra connected app's session is a row under its label, for its user.
    let label = &ds.classic_labels[0];
    let classic = ClassicApp {
        developer_name: "Ops_Console".into(),
        label: "Ops Console".into(),
        consumer_key: "3MVG9OPS.console.key".into(),
        consumer_secret: "OPSSECRET".into(),
        username: "ops@acme.example".into(),
        certificate_pem: None,
    };
    o.sf.add_connected_app(classic.clone());
    let ops = cc_token(&o.sf, &classic.consumer_key, &classic.consumer_secret);
    let row =
        o.sf.oauth_tokens()
            .into_iter()
            .find(|r| r.app_name == "Ops Console")
            .unwrap();
    assert_ne!(&row.app_name, label);
    assert!(
        o.sf.users()
            .contains(&(row.user_id.clone(), "ops@acme.example".into()))
    );
    assert!(o.works(&ops));
    assert_eq!(revoke(&o.sf, &row.delete_token).0, 200);
    assert!(!o.works(&ops));
    // The access token itself is still revoked as before (its row stays: not needed back).
    let third = cc_token(&o.sf, ADMIN_KEY, ADMIN_SECRET);
    assert_eq!(revoke(&o.sf, &third).0, 200);
    assert!(!o.works(&third));
}

// ----- the data set -----

#[test]
fn the_audit_data_set() {
    let sf = FakeSalesforce::start(admin_app());
    let started = Instant::now();
    let ds = sf.load_audit_data_set();
    let took = started.elapsed();
    eprintln!("audit data set built in {took:?}");
    assert!(took < Duration::from_millis(100), "built in {took:?}");

    // 30 apps, 200 users, 5,000 OauthToken rows.
    assert_eq!(
        (
            ds.eca_ids.len(),
            ds.eca_names.len(),
            ds.classic_labels.len()
        ),
        (10, 10, 20)
    );
    assert_eq!(ds.users.len(), 200);
    assert_eq!(
        ds.users.iter().map(|u| &u.0).collect::<HashSet<_>>().len(),
        200
    );
    assert!(
        ds.users
            .iter()
            .all(|(id, _)| id.len() == 18 && id.starts_with("005"))
    );
    assert_eq!(sf.users().len(), 202, "the admin, the other user, 200");
    let rows = sf.oauth_tokens();
    assert_eq!((ds.oauth_tokens, rows.len()), (5_000, 5_000));
    let usage = sf.usage_tokens();
    assert_eq!(ds.usage_tokens, usage.len());
    assert_eq!(
        rows.iter()
            .map(|r| &r.delete_token)
            .collect::<HashSet<_>>()
            .len(),
        5_000
    );

    // Spread over the 200 users and the 20 classic apps; heavy users, none past 2,500.
    let mut per_user: BTreeMap<&str, usize> = BTreeMap::new();
    let mut apps = BTreeSet::new();
    for r in &rows {
        *per_user.entry(&r.user_id).or_default() += 1;
        apps.insert(r.app_name.as_str());
        assert!(ds.users.iter().any(|(id, _)| *id == r.user_id));
    }
    assert_eq!(per_user.len(), 200);
    assert_eq!(apps, ds.classic_labels.iter().map(String::as_str).collect());
    let most = *per_user.values().max().unwrap();
    assert!((26..=OAUTH_TOKEN_CAP).contains(&most), "{most}");
    assert!(per_user.values().filter(|n| **n > 25).count() >= 10);
    // Last uses: some never, some over 90 days ago, most within 30 days.
    let never = rows
        .iter()
        .filter(|r| r.last_used_days_ago.is_none())
        .count();
    let idle = rows
        .iter()
        .filter(|r| r.last_used_days_ago.is_some_and(|d| d > 90))
        .count();
    let recent = rows
        .iter()
        .filter(|r| r.last_used_days_ago.is_some_and(|d| d <= 30))
        .count();
    assert!(
        never > 100 && idle > 500 && recent > 2_500,
        "{never} {idle} {recent}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.last_used_days_ago.is_none())
            .all(|r| r.use_count == 0)
    );

    // ECA tokens: 202 users of [0], 100 of [1], a few of [2..8], none of [8] and [9].
    let users_of = |i: usize| {
        let app = &ds.eca_ids[i].app_id;
        usage
            .iter()
            .filter(|t| &t.app_id == app)
            .map(|t| &t.user_id)
            .collect::<HashSet<_>>()
            .len()
    };
    assert_eq!(
        (users_of(0), users_of(1), users_of(8), users_of(9)),
        (202, 100, 0, 0)
    );
    assert!((2..8).all(|i| (1..=20).contains(&users_of(i))));
    assert!(usage.iter().any(|t| t.format == "JWT") && usage.iter().any(|t| t.format == "Opaque"));
    assert!(usage.iter().any(|t| t.last_used_days_ago.is_none()));
    assert!(
        usage
            .iter()
            .any(|t| t.last_used_days_ago.is_some_and(|d| d > 90))
    );

    // Deterministic: another org gets the same rows.
    let other = FakeSalesforce::start(admin_app());
    let again = other.load_audit_data_set();
    assert_eq!(again.users, ds.users);
    assert_eq!(other.oauth_tokens(), rows);
}

// ----- faults on the new steps -----

#[test]
fn faults_on_the_new_steps() {
    let (o, ds) = audit_org();
    let app = &ds.eca_ids[0].app_id;
    let (user, _) = &ds.users[1]; // one token of [0]
    let users_path = Org::usage_path(&format!("{app}/users"));
    let tokens_path = Org::usage_path(&format!("{app}/{user}/tokens"));
    let count_q = "SELECT COUNT() FROM OauthToken";

    // Each request is classified.
    let before = o.sf.steps().len();
    o.usage("");
    o.get(&users_path);
    o.get(&tokens_path);
    o.delete(&Org::usage_path(&format!("{UNKNOWN_APP}/tokens")));
    o.soql(count_q);
    o.soql("SELECT Id, Username FROM User");
    o.soql("SELECT Id, DeveloperName FROM ExternalClientApplication");
    o.get(&format!("/services/data/v{V}/query/01gNOSUCH-2000"));
    revoke(&o.sf, "nothing");
    assert_eq!(
        o.sf.steps()[before..],
        [
            Step::Usage,
            Step::UsageUsers,
            Step::UsageTokens,
            Step::UsageRevoke,
            Step::SoqlOauthToken,
            Step::Soql,
            Step::Soql,
            Step::Soql,
            Step::Revoke,
        ]
    );

    // 500: Salesforce's UNKNOWN_EXCEPTION; the next request is answered.
    for (step, path) in [
        (Step::UsageUsers, &users_path),
        (Step::UsageTokens, &tokens_path),
    ] {
        o.sf.fault(step, 1, Fault::Status500);
        let (s, v) = o.get(path);
        assert_eq!((s, error_code(&v)), (500, "UNKNOWN_EXCEPTION"), "{step:?}");
        assert_eq!(o.get(path).0, 200, "{step:?}");
    }
    // A fault on OauthToken's SOQL leaves other SOQL alone.
    o.sf.fault(Step::SoqlOauthToken, 1, Fault::Status500);
    assert_eq!(o.soql("SELECT Id, Username FROM User").0, 200);
    let (s, v) = o.soql(count_q);
    assert_eq!((s, error_code(&v)), (500, "UNKNOWN_EXCEPTION"));
    assert_eq!(o.count_as(&o.token, None), 5_001);

    // A revocation dropped before it is applied, then after.
    let only = |o: &Org| o.get(&tokens_path).1["tokens"].as_array().unwrap().len();
    assert_eq!(only(&o), 1);
    o.sf.fault(Step::UsageRevoke, 1, Fault::DropBefore);
    assert!(o.try_as(&o.token, "DELETE", &tokens_path).is_err());
    assert_eq!(only(&o), 1, "not applied");
    o.sf.fault(Step::UsageRevoke, 1, Fault::Status500);
    assert_eq!(o.delete(&tokens_path).0, 500);
    assert_eq!(only(&o), 1, "not applied");
    o.sf.fault(Step::UsageRevoke, 1, Fault::DropAfter);
    assert!(o.try_as(&o.token, "DELETE", &tokens_path).is_err());
    assert_eq!(only(&o), 0, "applied, though no answer came");
    assert_eq!(o.delete(&tokens_path).0, 404, "a retry finds nothing left");

    // The same for a DeleteToken.
    let row = o.sf.oauth_tokens()[3].clone();
    o.sf.fault(Step::Revoke, 1, Fault::Status500);
    let (s, v) = revoke(&o.sf, &row.delete_token);
    assert_eq!((s, &v["error"]), (500, &json!("server_error")));
    assert!(o.sf.oauth_tokens().contains(&row));
    o.sf.fault(Step::Revoke, 1, Fault::DropAfter);
    let form = format!("token={}", enc(&row.delete_token));
    assert!(form_post(&o.sf, "/services/oauth2/revoke", &form).is_err());
    assert!(!o.sf.oauth_tokens().contains(&row));
    assert_eq!(
        revoke(&o.sf, &row.delete_token).0,
        400,
        "a retry: invalid_token"
    );

    // Held, then released: the request waits, and then fails.
    o.sf.fault(Step::UsageUsers, 1, Fault::HoldBefore);
    let url = format!("{}{users_path}", o.sf.url);
    let auth = format!("Bearer {}", o.token);
    let waiter = std::thread::spawn(move || {
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/json"),
        ];
        raw("GET", &url, &headers, None).is_err()
    });
    let started = Instant::now();
    while o.sf.held() != Some(Step::UsageUsers) {
        assert!(started.elapsed() < Duration::from_secs(5), "never held");
        std::thread::sleep(Duration::from_millis(5));
    }
    o.sf.release();
    assert!(
        waiter.join().unwrap(),
        "a held request gets no valid answer"
    );
}
