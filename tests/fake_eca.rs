//! The fake Salesforce's External Client Apps, admin REST and Metadata SOAP APIs and fault
//! injection (tests/support/fake_eca.rs), proved with raw HTTP: what sfvault's rotation will be
//! tested against must itself behave as /work/shared/SALESFORCE-ROTATION.md says.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sfvault::oauth::keygen::KeyAndCertificate;
use support::fake_sf::{
    AppConfig, ClassicApp, EcaConfig, EcaIds, FakeSalesforce, Fault, Quirks, Step, TokenApp,
};

const V: &str = "65.0";
const ADMIN_KEY: &str = "3MVG9ADMIN.app.for.the.admin.apis";
const ADMIN_SECRET: &str = "ADMIN0SECRET0FOR0TESTS";
const ADMIN_USER: &str = "admin@acme.example";
const ECA_USER: &str = "integration@acme.example";

fn admin_app() -> AppConfig {
    AppConfig {
        consumer_key: ADMIN_KEY.into(),
        consumer_secret: ADMIN_SECRET.into(),
        username: ADMIN_USER.into(),
        password_and_token: String::new(),
        certificate_pem: None,
    }
}

fn eca(name: &str, username: &str, listed: bool, certificate: Option<&str>) -> EcaConfig {
    EcaConfig {
        developer_name: name.into(),
        label: name.replace('_', " "),
        username: username.into(),
        certificate_pem: certificate.map(str::to_owned),
        listed_in_usage: listed,
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

/// A client-credentials token request.
fn cc(sf: &FakeSalesforce, key: &str, secret: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        enc(key),
        enc(secret)
    );
    token_form(sf, &form)
}

fn token_form(sf: &FakeSalesforce, form: &str) -> (u16, Value) {
    let url = format!("{}/services/oauth2/token", sf.url);
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    let (s, b) = raw("POST", &url, &ct, Some(form)).unwrap();
    json_of(s, &b)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn access_token(answer: &(u16, Value)) -> String {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1["access_token"].as_str().unwrap().to_owned()
}

/// An org with the admin app and one ECA, and an admin token.
struct Org {
    sf: FakeSalesforce,
    app: EcaIds,
    token: String,
}

fn org() -> Org {
    let sf = FakeSalesforce::start(admin_app());
    let app = sf.add_eca(eca("Billing_Sync", ECA_USER, true, None));
    let token = access_token(&cc(&sf, ADMIN_KEY, ADMIN_SECRET));
    Org { sf, app, token }
}

impl Org {
    fn consumer(&self) -> String {
        format!("credentials/{}/{}", self.app.app_id, self.app.consumer_id)
    }

    /// A call to `/services/data/v{version}/apps/oauth/{sub}` with the admin token, JSON in
    /// and out.
    fn call_v(&self, version: &str, method: &str, sub: &str, body: Option<&str>) -> (u16, Value) {
        self.call_as(&self.token, version, method, sub, body)
    }

    fn call_as(
        &self,
        token: &str,
        version: &str,
        method: &str,
        sub: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}/services/data/v{version}/apps/oauth/{sub}", self.sf.url);
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Accept", "application/json"),
        ];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let (s, b) = raw(method, &url, &headers, body).unwrap();
        json_of(s, &b)
    }

    fn call(&self, method: &str, sub: &str, body: Option<&str>) -> (u16, Value) {
        self.call_v(V, method, sub, body)
    }

    fn get(&self, sub: &str) -> (u16, Value) {
        self.call("GET", sub, None)
    }

    fn stage(&self) -> Value {
        let (s, v) = self.call("POST", &format!("{}/staged", self.consumer()), Some("{}"));
        assert_eq!(s, 201, "{v}");
        v
    }

    fn rotate(&self, staged_id: &str) -> (u16, Value) {
        let sub = format!("{}/staged/{staged_id}", self.consumer());
        self.call("PATCH", &sub, Some(r#"{"command":"rotate"}"#))
    }

    fn delete(&self, staged_id: &str) -> (u16, Value) {
        self.call(
            "DELETE",
            &format!("{}/staged/{staged_id}", self.consumer()),
            None,
        )
    }

    fn soap(&self, version: &str, op: &str) -> (u16, String) {
        soap_as(&self.sf, &self.token, version, op)
    }
}

fn error_code(v: &Value) -> &str {
    v[0]["errorCode"]
        .as_str()
        .unwrap_or_else(|| panic!("no error array: {v}"))
}

fn envelope(session: &str, op: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Header><SessionHeader><sessionId>{session}</sessionId></SessionHeader></soapenv:Header><soapenv:Body>{op}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn soap_raw(
    sf: &FakeSalesforce,
    version: &str,
    headers: &[(&str, &str)],
    xml: &str,
) -> (u16, String) {
    let url = format!("{}/services/Soap/m/{version}", sf.url);
    raw("POST", &url, headers, Some(xml)).unwrap()
}

const SOAP_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "text/xml; charset=UTF-8"),
    ("SOAPAction", "\"\""),
];

fn soap_as(sf: &FakeSalesforce, token: &str, version: &str, op: &str) -> (u16, String) {
    soap_raw(sf, version, &SOAP_HEADERS, &envelope(token, op))
}

fn read_op(ty: &str, name: &str) -> String {
    format!("<readMetadata><type>{ty}</type><fullNames>{name}</fullNames></readMetadata>")
}

fn update_op(ty: &str, record: &str) -> String {
    format!(r#"<updateMetadata><metadata xsi:type="{ty}">{record}</metadata></updateMetadata>"#)
}

/// The inside of the first `<records xsi:type="T">…</records>` of a read answer.
fn record_of(answer: &str, ty: &str) -> String {
    let open = format!(r#"<records xsi:type="{ty}">"#);
    let start = answer
        .find(&open)
        .unwrap_or_else(|| panic!("no record: {answer}"))
        + open.len();
    let end = start + answer[start..].find("</records>").unwrap();
    answer[start..end].to_owned()
}

/// `record` with its `<certificate>` replaced by `pem` (added before `before` if absent), or
/// removed when `pem` is None.
fn with_certificate(record: &str, pem: Option<&str>, before: &str) -> String {
    let element = pem
        .map(|p| {
            format!(
                "<certificate>{}</certificate>",
                p.replace('&', "&amp;").replace('<', "&lt;")
            )
        })
        .unwrap_or_default();
    match record.find("<certificate>") {
        Some(start) => {
            let end = record.find("</certificate>").unwrap() + "</certificate>".len();
            format!("{}{element}{}", &record[..start], &record[end..])
        }
        None => record.replacen(before, &format!("{element}{before}"), 1),
    }
}

fn keys() -> &'static [KeyAndCertificate; 2] {
    static KEYS: OnceLock<[KeyAndCertificate; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let k = |cn| sfvault::oauth::keygen::generate(2048, 30, cn).unwrap();
        [k("fake-eca A"), k("fake-eca B")]
    })
}

fn jwt(sf: &FakeSalesforce, key: &KeyAndCertificate, iss: &str, sub: &str) -> (u16, Value) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signer = sfvault::oauth::jwt::signing_key(&key.private_key).unwrap();
    let assertion = sfvault::oauth::jwt::assertion(&signer, iss, sub, &sf.url, now).unwrap();
    token_form(
        sf,
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            assertion.expose()
        ),
    )
}

fn refresh(sf: &FakeSalesforce, token: &str, key: &str, secret: &str) -> (u16, Value) {
    token_form(
        sf,
        &format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
            enc(token),
            enc(key),
            enc(secret)
        ),
    )
}

#[test]
fn stage_promote_retire_cycle() {
    let o = org();
    let (k1, s1) = (o.app.key.clone(), o.app.secret.clone());
    assert_eq!(o.sf.eca_primary(&o.app.app_id), (k1.clone(), s1.clone()));
    assert!(k1.len() == 85 && k1.starts_with("3MVG9"), "{k1}");
    assert!(
        s1.len() == 64
            && s1
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
    );
    assert!(o.app.app_id.starts_with("0x") && o.app.app_id.len() == 18);

    // Find the app and its consumer; read the pair.
    let (s, v) = o.get("usage");
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"apps": [{"identifier": o.app.app_id, "developerName": "Billing_Sync"}]})
    );
    let (s, v) = o.get(&format!("credentials/{}", o.app.app_id));
    assert_eq!(s, 200);
    let c = &v["consumers"][0];
    assert_eq!(
        (c["id"].as_str(), c["key"].as_str()),
        (Some(o.app.consumer_id.as_str()), Some(k1.as_str()))
    );
    let consumer_url = format!("/services/data/v{V}/apps/oauth/{}", o.consumer());
    assert_eq!(c["url"], json!(consumer_url));
    assert_eq!(
        c["stagedCredentialsUrl"],
        json!(format!("{consumer_url}/staged"))
    );
    assert_eq!(v["consumers"].as_array().unwrap().len(), 1);
    for (part, want) in [
        ("key", json!({"id": o.app.consumer_id, "key": k1})),
        ("secret", json!({"id": o.app.consumer_id, "secret": s1})),
        (
            "keyandsecret",
            json!({"id": o.app.consumer_id, "key": k1, "secret": s1}),
        ),
    ] {
        assert_eq!(o.get(&format!("{}?part={part}", o.consumer())), (200, want));
    }
    // Nothing staged yet.
    assert_eq!(
        o.get(&format!("{}/staged", o.consumer())),
        (200, json!({"stagedCredentials": []}))
    );
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);

    // Stage: a new key AND a new secret, Active, 30 days.
    let staged = o.stage();
    let (k2, s2) = (
        staged["key"].as_str().unwrap().to_owned(),
        staged["secret"].as_str().unwrap().to_owned(),
    );
    let id = staged["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("0Xs") && id.len() == 18, "{id}");
    assert!(k2 != k1 && s2 != s1 && k2.len() == 85 && s2.len() == 64);
    assert_eq!(staged["state"], "Active");
    assert_eq!(staged["url"], json!(format!("{consumer_url}/staged/{id}")));
    assert_eq!(
        staged["stagedCredentialsUrl"],
        json!(format!("{consumer_url}/staged"))
    );
    assert_eq!(staged["createdBy"], json!(support::fake_sf::USER_ID));
    let created = staged["createdDate"].as_str().unwrap();
    let expires = staged["expirationDate"].as_str().unwrap();
    assert!(
        created.ends_with(".000Z") && created.len() == 24,
        "{created}"
    );
    assert_eq!(days_between(created, expires), 30);
    assert_eq!(created[10..], expires[10..], "30 days to the second");
    let view = o.sf.eca_staged(&o.app.app_id).unwrap();
    assert_eq!(
        (view.id.as_str(), view.key.as_str(), view.state.as_str()),
        (id.as_str(), k2.as_str(), "Active")
    );
    assert_eq!(view.expiration_date, expires);
    assert_eq!(
        o.get(&format!("{}/staged", o.consumer())),
        (200, staged.clone())
    );
    // Both pairs work; mixing them does not.
    assert!(o.sf.accepts(&k1, &s1) && o.sf.accepts(&k2, &s2));
    assert!(!o.sf.accepts(&k2, &s1) && !o.sf.accepts(&k1, &s2));
    let t = access_token(&cc(&o.sf, &k2, &s2));
    assert_eq!(
        o.sf.token_app(&t),
        Some(TokenApp::Eca(o.app.app_id.clone()))
    );
    assert_eq!(cc(&o.sf, &k2, &s1).1["error"], "invalid_client");
    // One slot: a second POST is refused while it is occupied.
    let (s, v) = o.call("POST", &format!("{}/staged", o.consumer()), Some("{}"));
    assert_eq!((s, error_code(&v)), (400, "INVALID_OPERATION"));
    assert!(v[0]["message"].as_str().unwrap().contains("already exists"));

    // Promote: the new pair is primary; the old one is Rotated in the slot, and still works.
    let (s, rotated) = o.rotate(&id);
    assert_eq!(s, 200, "{rotated}");
    assert_eq!(rotated["state"], "Rotated");
    assert_eq!(
        (rotated["key"].as_str(), rotated["secret"].as_str()),
        (Some(k1.as_str()), Some(s1.as_str()))
    );
    assert_eq!(rotated["id"], json!(id), "same id without the quirk");
    assert_eq!(o.sf.eca_primary(&o.app.app_id), (k2.clone(), s2.clone()));
    assert_eq!(
        o.get(&format!("{}?part=key", o.consumer())).1["key"],
        json!(k2)
    );
    assert_eq!(
        o.get(&format!("credentials/{}", o.app.app_id)).1["consumers"][0]["key"],
        json!(k2)
    );
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Rotated");
    assert!(o.sf.accepts(&k1, &s1) && o.sf.accepts(&k2, &s2));
    access_token(&cc(&o.sf, &k1, &s1));
    // Only an Active pair can be promoted.
    let (s, v) = o.rotate(&id);
    assert_eq!((s, error_code(&v)), (400, "INVALID_OPERATION"));
    // Still one slot.
    let (s, v) = o.call("POST", &format!("{}/staged", o.consumer()), Some("{}"));
    assert_eq!((s, error_code(&v)), (400, "INVALID_OPERATION"));

    // Retire: the old pair stops working at once; a second DELETE is a 404.
    let (s, v) = o.delete(&id);
    assert_eq!((s, v), (204, Value::Null));
    assert!(!o.sf.accepts(&k1, &s1) && o.sf.accepts(&k2, &s2));
    assert_eq!(cc(&o.sf, &k1, &s1).1["error"], "invalid_client_id");
    let (s, v) = o.delete(&id);
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);
    assert_eq!(
        o.get(&format!("{}/staged", o.consumer())),
        (200, json!({"stagedCredentials": []}))
    );
    // The slot is free again.
    let again = o.stage();
    assert_ne!(again["id"], json!(id));
    // An aborted rotation: delete the Active pair; it stops working, the primary stays.
    let (k3, s3) = (
        again["key"].as_str().unwrap(),
        again["secret"].as_str().unwrap(),
    );
    assert!(o.sf.accepts(k3, s3));
    assert_eq!(o.delete(again["id"].as_str().unwrap()).0, 204);
    assert!(!o.sf.accepts(k3, s3) && o.sf.accepts(&k2, &s2));
}

/// Days from one ISO date to another (`YYYY-MM-DDTHH:MM:SS.000Z`), by calendar date.
fn days_between(a: &str, b: &str) -> i64 {
    let day = |s: &str| {
        let (y, m, d) = (&s[0..4], &s[5..7], &s[8..10]);
        let (y, m, d): (i64, i64, i64) =
            (y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap());
        // days from civil (Howard Hinnant)
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy
    };
    day(b) - day(a)
}

#[test]
fn staged_pairs_expire_after_30_days() {
    let o = org();
    let staged = o.stage();
    let (k2, s2) = (
        staged["key"].as_str().unwrap(),
        staged["secret"].as_str().unwrap(),
    );
    let id = staged["id"].as_str().unwrap();
    o.sf.advance_days(29);
    assert!(o.sf.accepts(k2, s2));
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    o.sf.advance_days(2);
    // Expired: it stops working, still occupies the slot, cannot be promoted, can be deleted.
    assert!(!o.sf.accepts(k2, s2));
    assert_eq!(cc(&o.sf, k2, s2).1["error"], "invalid_client_id");
    assert!(o.sf.accepts(&o.app.key, &o.app.secret));
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Expired");
    assert_eq!(
        o.get(&format!("{}/staged", o.consumer())).1["state"],
        "Expired"
    );
    let (s, v) = o.call("POST", &format!("{}/staged", o.consumer()), Some("{}"));
    assert_eq!((s, error_code(&v)), (400, "INVALID_OPERATION"));
    let (s, v) = o.rotate(id);
    assert_eq!((s, error_code(&v)), (400, "INVALID_OPERATION"));
    assert_eq!(o.delete(id).0, 204);

    // The clock moves the dates it answers; a Rotated pair expires too.
    let staged = o.stage();
    let created = staged["createdDate"].as_str().unwrap();
    let now = sfvault::timefmt::rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let days = days_between(&format!("{}.000Z", now.trim_end_matches('Z')), created);
    assert!((30..=32).contains(&days), "{created} vs {now}");
    let (s, rotated) = o.rotate(staged["id"].as_str().unwrap());
    assert_eq!(s, 200);
    let (k1, s1) = (
        rotated["key"].as_str().unwrap(),
        rotated["secret"].as_str().unwrap(),
    );
    assert_eq!(k1, o.app.key);
    o.sf.advance_days(30);
    assert!(!o.sf.accepts(k1, s1));
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Expired");
    let (new_k, new_s) = o.sf.eca_primary(&o.app.app_id);
    assert!(o.sf.accepts(&new_k, &new_s), "the primary never expires");
}

#[test]
fn refusals_of_the_rest_resources() {
    let o = org();
    let staged_sub = format!("{}/staged", o.consumer());
    // No token, a dead token.
    let url = format!("{}/services/data/v{V}/apps/oauth/usage", o.sf.url);
    let (s, b) = raw("GET", &url, &[("Accept", "application/json")], None).unwrap();
    assert_eq!(
        (s, error_code(&json_of(s, &b).1)),
        (401, "INVALID_SESSION_ID")
    );
    let dead = access_token(&cc(&o.sf, ADMIN_KEY, ADMIN_SECRET));
    assert!(o.sf.expire(&dead));
    let (s, v) = o.call_as(&dead, V, "GET", &staged_sub, None);
    assert_eq!((s, error_code(&v)), (401, "INVALID_SESSION_ID"));
    let (s, v) = o.call_as("00Dnot!a.token", V, "POST", &staged_sub, Some("{}"));
    assert_eq!((s, error_code(&v)), (401, "INVALID_SESSION_ID"));

    // Versions: usage 59.0, credentials 60.0, staged 65.0.
    let part = format!("{}?part=key", o.consumer());
    let creds = format!("credentials/{}", o.app.app_id);
    for (version, sub, want) in [
        ("58.0", "usage", 404),
        ("59.0", "usage", 200),
        ("59.0", creds.as_str(), 404),
        ("60.0", creds.as_str(), 200),
        ("59.0", part.as_str(), 404),
        ("60.0", part.as_str(), 200),
        ("64.0", staged_sub.as_str(), 404),
        ("65.0", staged_sub.as_str(), 200),
        ("66.0", "usage", 404),
    ] {
        let (s, v) = o.call_v(version, "GET", sub, None);
        assert_eq!(s, want, "v{version} {sub}: {v}");
        if s == 404 {
            assert_eq!(
                v,
                json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            );
        }
    }
    let (s, v) = o.call_v("64.0", "POST", &staged_sub, Some("{}"));
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);

    // Accept and Content-Type.
    let auth = format!("Bearer {}", o.token);
    let full = |sub: &str| format!("{}/services/data/v{V}/apps/oauth/{sub}", o.sf.url);
    let (s, _) = raw(
        "GET",
        &full("usage"),
        &[("Authorization", &auth), ("Accept", "application/xml")],
        None,
    )
    .unwrap();
    assert_eq!(s, 406);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
        ("Content-Type", "text/plain"),
    ];
    let (s, _) = raw("POST", &full(&staged_sub), &headers, Some("{}")).unwrap();
    assert_eq!(s, 415);
    // The POST body: `{}`, nothing else.
    for body in ["", "   ", "{", "[]", r#"{"name":"x"}"#] {
        let (s, v) = o.call("POST", &staged_sub, Some(body));
        assert_eq!((s, error_code(&v)), (400, "JSON_PARSER_ERROR"), "{body:?}");
    }
    let headers = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
    ];
    let (s, b) = raw("POST", &full(&staged_sub), &headers, None).unwrap();
    assert_eq!(
        (s, error_code(&json_of(s, &b).1)),
        (400, "JSON_PARSER_ERROR"),
        "empty POST"
    );
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);
    let (s, v) = o.call("PUT", &staged_sub, Some("{}"));
    assert_eq!((s, error_code(&v)), (405, "METHOD_NOT_ALLOWED"));

    // part: required, one of three.
    for q in [
        "",
        "?part=",
        "?part=Key",
        "?part=all",
        "?part=key&part=secret",
    ] {
        let (s, v) = o.get(&format!("{}{q}", o.consumer()));
        assert_eq!((s, error_code(&v)), (400, "INVALID_INPUT"), "{q}");
    }
    // Unknown app, consumer, staged id; a classic app is not an ECA.
    o.sf.add_connected_app(ClassicApp {
        developer_name: "Legacy_CI".into(),
        label: "Legacy CI".into(),
        consumer_key: "3MVG9LEGACY".into(),
        consumer_secret: "LEGACYSECRET".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
    });
    for sub in [
        "credentials/0x0000000000000000".to_owned(),
        "credentials/Legacy_CI".to_owned(),
        "credentials/Billing_Sync".to_owned(),
        format!("credentials/{}/0Hc000000000000000?part=key", o.app.app_id),
        format!("credentials/{}/0Hc000000000000000/staged", o.app.app_id),
        "nothing".to_owned(),
        "usage/extra".to_owned(),
    ] {
        let (s, v) = o.get(&sub);
        assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"), "{sub}");
    }
    let (s, v) = o.delete("0Xs000000000000000");
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    let (s, v) = o.rotate("0Xs000000000000000");
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    // PATCH: exactly {"command":"rotate"}.
    let id = o.stage()["id"].as_str().unwrap().to_owned();
    let sub = format!("{staged_sub}/{id}");
    for (body, code) in [
        (r#"{"command":"promote"}"#, "INVALID_INPUT"),
        (r#"{"command":"ROTATE"}"#, "INVALID_INPUT"),
        (r#"{}"#, "INVALID_INPUT"),
        (r#"{"command":"rotate","force":true}"#, "JSON_PARSER_ERROR"),
        ("", "JSON_PARSER_ERROR"),
    ] {
        let (s, v) = o.call("PATCH", &sub, Some(body));
        assert_eq!((s, error_code(&v)), (400, code), "{body}");
    }
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");

    // Without the admin permissions: 403 everywhere, nothing changes.
    o.sf.set_admin_permission(false);
    for (method, sub, body) in [
        ("GET", "usage".to_owned(), None),
        ("GET", creds.clone(), None),
        ("GET", part.clone(), None),
        ("GET", staged_sub.clone(), None),
        ("PATCH", sub.clone(), Some(r#"{"command":"rotate"}"#)),
        ("DELETE", sub.clone(), None),
    ] {
        let (s, v) = o.call(method, &sub, body);
        assert_eq!(
            (s, error_code(&v)),
            (403, "INSUFFICIENT_ACCESS"),
            "{method} {sub}"
        );
    }
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    let (s, v) = o.call("GET", "usage", None);
    assert_eq!(s, 403, "{v}");
    o.sf.set_admin_permission(true);
    // A token of another user (the ECA's run-as user) has not the permissions either.
    let eca_token = access_token(&cc(&o.sf, &o.app.key, &o.app.secret));
    let (s, v) = o.call_as(&eca_token, V, "GET", "usage", None);
    assert_eq!((s, error_code(&v)), (403, "INSUFFICIENT_ACCESS"));

    // The org toggle: secrets (and every staged call) refused, the key alone still readable.
    o.sf.set_org_allows_secret_api(false);
    assert_eq!(o.get(&part).0, 200);
    assert_eq!(o.get(&creds).0, 200);
    assert_eq!(o.get("usage").0, 200);
    for (method, sub, body) in [
        ("GET", format!("{}?part=secret", o.consumer()), None),
        ("GET", format!("{}?part=keyandsecret", o.consumer()), None),
        ("GET", staged_sub.clone(), None),
        ("POST", staged_sub.clone(), Some("{}")),
        ("PATCH", sub.clone(), Some(r#"{"command":"rotate"}"#)),
        ("DELETE", sub.clone(), None),
    ] {
        let (s, v) = o.call(method, &sub, body);
        assert_eq!(
            (s, error_code(&v)),
            (403, "FUNCTIONALITY_NOT_ENABLED"),
            "{method} {sub}"
        );
        assert!(
            v[0]["message"]
                .as_str()
                .unwrap()
                .contains("consumer secret access through the REST API"),
            "{v}"
        );
    }
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    o.sf.set_org_allows_secret_api(true);
    assert_eq!(o.rotate(&id).0, 200);
}

#[test]
fn quirks_each_way() {
    let o = org();
    let hidden = o.sf.add_eca(eca("Never_Used", ECA_USER, false, None));
    let staged_sub = format!("{}/staged", o.consumer());

    // Usage: label only with the quirk; an app that never issued a token is absent.
    let (_, v) = o.get("usage");
    assert_eq!(v["apps"].as_array().unwrap().len(), 1);
    assert!(v["apps"][0].get("label").is_none());
    // SOQL lists every ECA, with the same ids unless the quirk says otherwise.
    let soql = |o: &Org| {
        let url = format!(
            "{}/services/data/v{V}/query?q=SELECT+Id,+DeveloperName+FROM+ExternalClientApplication",
            o.sf.url
        );
        let auth = format!("Bearer {}", o.token);
        let (s, b) = raw(
            "GET",
            &url,
            &[("Authorization", &auth), ("Accept", "application/json")],
            None,
        )
        .unwrap();
        json_of(s, &b)
    };
    let (s, v) = soql(&o);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["totalSize"].as_u64(), v["done"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(v["records"][0]["Id"], json!(o.app.app_id));
    assert_eq!(v["records"][1]["Id"], json!(hidden.app_id));
    assert_eq!(v["records"][1]["DeveloperName"], "Never_Used");
    assert_eq!(
        v["records"][0]["attributes"]["type"],
        "ExternalClientApplication"
    );
    assert_eq!(o.get(&format!("credentials/{}", hidden.app_id)).0, 200);

    // Nothing staged: an empty list, or 404.
    assert_eq!(o.get(&staged_sub), (200, json!({"stagedCredentials": []})));
    o.sf.set_quirks(Quirks {
        usage_has_label: true,
        staged_wrapped: true,
        empty_staged_is_404: true,
        rotated_gets_new_id: true,
        refresh_bound_to_pair: false,
        soql_id_differs: true,
    });
    let (s, v) = o.get(&staged_sub);
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));
    let (_, v) = o.get("usage");
    assert_eq!(v["apps"][0]["label"], "Billing Sync");
    let (_, v) = soql(&o);
    let other = v["records"][0]["Id"].as_str().unwrap().to_owned();
    assert!(other != o.app.app_id && other.starts_with("0x"));
    let (s, v) = o.get(&format!("credentials/{other}"));
    assert_eq!((s, error_code(&v)), (404, "NOT_FOUND"));

    // Wrapped objects, and a new id for the Rotated slot.
    let staged = o.stage();
    let obj = &staged["stagedCredentials"][0];
    assert_eq!(staged["stagedCredentials"].as_array().unwrap().len(), 1);
    assert_eq!(obj["state"], "Active");
    let id = obj["id"].as_str().unwrap();
    assert_eq!(o.get(&staged_sub), (200, staged.clone()));
    let (s, rotated) = o.rotate(id);
    assert_eq!(s, 200);
    let rotated = &rotated["stagedCredentials"][0];
    assert_eq!(rotated["state"], "Rotated");
    let new_id = rotated["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().id, new_id);
    assert_eq!(o.delete(id).0, 404, "the old id is gone");
    assert_eq!(o.delete(new_id).0, 204);

    // And back: bare objects, the same id.
    o.sf.set_quirks(Quirks::default());
    let staged = o.stage();
    assert!(staged.get("stagedCredentials").is_none());
    let id = staged["id"].as_str().unwrap();
    let (_, rotated) = o.rotate(id);
    assert_eq!(rotated["id"], json!(id));
    assert_eq!(rotated["state"], "Rotated");
}

#[test]
fn refresh_tokens_outlive_their_pair_or_not() {
    for bound in [false, true] {
        let o = org();
        o.sf.set_quirks(Quirks {
            refresh_bound_to_pair: bound,
            ..Quirks::default()
        });
        let (k1, s1) = (o.app.key.clone(), o.app.secret.clone());
        let r = o.sf.mint_eca_refresh_token(&o.app.app_id, &k1);
        let (s, v) = refresh(&o.sf, &r, &k1, &s1);
        assert_eq!(s, 200, "{v}");
        let t = access_token(&(s, v));
        assert_eq!(
            o.sf.token_app(&t),
            Some(TokenApp::Eca(o.app.app_id.clone()))
        );
        assert_eq!(
            refresh(&o.sf, &r, &k1, "WRONG").1["error"],
            "invalid_client"
        );
        assert_eq!(
            refresh(&o.sf, &r, ADMIN_KEY, ADMIN_SECRET).1["error"],
            "invalid_client_id"
        );

        let staged = o.stage();
        let (k2, s2) = (
            staged["key"].as_str().unwrap(),
            staged["secret"].as_str().unwrap(),
        );
        let with_new = refresh(&o.sf, &r, k2, s2);
        let id = staged["id"].as_str().unwrap();
        assert_eq!(o.rotate(id).0, 200);
        assert_eq!(
            refresh(&o.sf, &r, &k1, &s1).0,
            200,
            "the Rotated pair still redeems it"
        );
        assert_eq!(o.delete(id).0, 204);
        let after_delete = refresh(&o.sf, &r, k2, s2);
        assert_eq!(refresh(&o.sf, &r, &k1, &s1).1["error"], "invalid_client_id");
        if bound {
            assert_eq!(with_new.1["error"], "invalid_grant", "{:?}", with_new);
            assert_eq!(
                after_delete.1["error"], "invalid_grant",
                "{:?}",
                after_delete
            );
            // Dead for good: not even a revoke knows it.
            let url = format!("{}/services/oauth2/revoke", o.sf.url);
            let ct = [("Content-Type", "application/x-www-form-urlencoded")];
            let (s, _) = raw("POST", &url, &ct, Some(&format!("token={}", enc(&r)))).unwrap();
            assert_eq!(s, 400);
        } else {
            assert_eq!(with_new.0, 200, "{:?}", with_new);
            assert_eq!(after_delete.0, 200, "{:?}", after_delete);
        }
    }
}

#[test]
fn jwt_verifies_against_the_deployed_certificate() {
    let [a, b] = keys();
    let o = org();
    let app =
        o.sf.add_eca(eca("Jwt_App", ECA_USER, true, Some(&a.certificate)));
    // The ECA: its key as iss, its user as sub, its certificate.
    let (s, v) = jwt(&o.sf, a, &app.key, ECA_USER);
    assert_eq!(s, 200, "{v}");
    let t = v["access_token"].as_str().unwrap();
    assert_eq!(o.sf.token_app(t), Some(TokenApp::Eca(app.app_id.clone())));
    let (s, v) = jwt(&o.sf, a, &app.key, ADMIN_USER);
    assert_eq!(
        (s, v["error_description"].as_str()),
        (400, Some("user hasn't approved this consumer"))
    );
    let (_, v) = jwt(&o.sf, b, &app.key, ECA_USER);
    assert_eq!(v["error_description"], "invalid signature");
    let (_, v) = jwt(&o.sf, a, "3MVG9unknown", ECA_USER);
    assert_eq!(v["error_description"], "invalid client identifier");
    // A staged key is a valid iss while it works.
    let stage_url = format!("credentials/{}/{}/staged", app.app_id, app.consumer_id);
    let (s, staged) = o.call("POST", &stage_url, Some("{}"));
    assert_eq!(s, 201);
    let k2 = staged["key"].as_str().unwrap();
    assert_eq!(jwt(&o.sf, a, k2, ECA_USER).0, 200);

    // Deploy certificate B through the Metadata API: A stops at once, B works.
    let name = "Jwt_App_glbloauth";
    let (s, read) = o.soap(V, &read_op("ExtlClntAppGlobalOauthSettings", name));
    assert_eq!(s, 200, "{read}");
    let record = record_of(&read, "ExtlClntAppGlobalOauthSettings");
    let record = with_certificate(&record, Some(&b.certificate), "<externalClientApplication>");
    let (s, answer) = o.soap(V, &update_op("ExtlClntAppGlobalOauthSettings", &record));
    assert_eq!(s, 200, "{answer}");
    assert!(
        answer.contains(&format!(
            "<result><fullName>{name}</fullName><success>true</success></result>"
        )),
        "{answer}"
    );
    assert_eq!(
        o.sf.eca_certificate(&app.app_id).as_deref(),
        Some(b.certificate.as_str())
    );
    assert_eq!(
        jwt(&o.sf, a, &app.key, ECA_USER).1["error_description"],
        "invalid signature"
    );
    assert_eq!(jwt(&o.sf, b, &app.key, ECA_USER).0, 200);
    assert_eq!(jwt(&o.sf, b, k2, ECA_USER).0, 200);

    // An extra classic connected app: the same through ConnectedApp.
    o.sf.add_connected_app(ClassicApp {
        developer_name: "Legacy_CI".into(),
        label: "Legacy CI".into(),
        consumer_key: "3MVG9LEGACY.key".into(),
        consumer_secret: "LEGACYSECRET".into(),
        username: "legacy@acme.example".into(),
        certificate_pem: Some(a.certificate.clone()),
    });
    let (s, v) = jwt(&o.sf, a, "3MVG9LEGACY.key", "legacy@acme.example");
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        o.sf.token_app(v["access_token"].as_str().unwrap()),
        Some(TokenApp::Classic("Legacy_CI".into()))
    );
    assert_eq!(
        jwt(&o.sf, a, "3MVG9LEGACY.key", ECA_USER).1["error_description"],
        "user hasn't approved this consumer"
    );
    let (_, read) = o.soap(V, &read_op("ConnectedApp", "Legacy_CI"));
    let record = with_certificate(
        &record_of(&read, "ConnectedApp"),
        Some(&b.certificate),
        "<consumerKey>",
    );
    let (s, answer) = o.soap(V, &update_op("ConnectedApp", &record));
    assert!(
        s == 200 && answer.contains("<success>true</success>"),
        "{answer}"
    );
    assert_eq!(
        o.sf.connected_app_certificate("Legacy_CI").as_deref(),
        Some(b.certificate.as_str())
    );
    assert_eq!(
        jwt(&o.sf, a, "3MVG9LEGACY.key", "legacy@acme.example").1["error_description"],
        "invalid signature"
    );
    assert_eq!(
        jwt(&o.sf, b, "3MVG9LEGACY.key", "legacy@acme.example").0,
        200
    );
    // Its one pair works for client credentials; the main app's JWT is as before.
    assert!(o.sf.accepts("3MVG9LEGACY.key", "LEGACYSECRET"));
    assert_eq!(cc(&o.sf, "3MVG9LEGACY.key", "LEGACYSECRET").0, 200);
    o.sf.set_certificate(&a.certificate);
    let (s, v) = jwt(&o.sf, a, ADMIN_KEY, ADMIN_USER);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        o.sf.token_app(v["access_token"].as_str().unwrap()),
        Some(TokenApp::Main)
    );
}

#[test]
fn metadata_read_and_update_are_strict() {
    let [a, b] = keys();
    let o = org();
    let app = o.sf.add_eca(eca("Meta_App", ECA_USER, true, None));
    o.sf.add_connected_app(ClassicApp {
        developer_name: "R_D_Sync".into(),
        label: "R&D <Sync>".into(),
        consumer_key: "3MVG9RD.key".into(),
        consumer_secret: "RDSECRET".into(),
        username: ECA_USER.into(),
        certificate_pem: Some(a.certificate.clone()),
    });

    // Reads: both types, escaped, an unknown name is nil.
    let (s, read) = o.soap(V, &read_op("ConnectedApp", "R_D_Sync"));
    assert_eq!(s, 200, "{read}");
    assert!(read.contains(r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#), "{read}");
    let record = record_of(&read, "ConnectedApp");
    let pem = a.certificate.replace('&', "&amp;");
    assert_eq!(
        record,
        format!(
            "<fullName>R_D_Sync</fullName><contactEmail>admin@acme.example</contactEmail><label>R&amp;D &lt;Sync&gt;</label><oauthConfig><callbackUrl>http://localhost:1717/OauthRedirect</callbackUrl><certificate>{pem}</certificate><consumerKey>3MVG9RD.key</consumerKey><scopes>Api</scopes><scopes>RefreshToken</scopes></oauthConfig>"
        )
    );
    let two = "<readMetadata><type>ConnectedApp</type><fullNames>Nope</fullNames><fullNames>R_D_Sync</fullNames></readMetadata>";
    let (_, read2) = o.soap(V, two);
    assert!(read2.contains(r#"<readMetadataResponse><result><records xsi:nil="true"/><records xsi:type="ConnectedApp"><fullName>R_D_Sync</fullName>"#), "{read2}");
    let (s, eread) = o.soap(
        V,
        &read_op("ExtlClntAppGlobalOauthSettings", "Meta_App_glbloauth"),
    );
    assert_eq!(s, 200);
    let erecord = record_of(&eread, "ExtlClntAppGlobalOauthSettings");
    assert_eq!(
        erecord,
        "<fullName>Meta_App_glbloauth</fullName><callbackUrl>http://localhost:1717/OauthRedirect</callbackUrl><externalClientApplication>Meta_App</externalClientApplication><isConsumerSecretOptional>false</isConsumerSecretOptional><label>Meta App</label>"
    );
    let (_, nil) = o.soap(V, &read_op("ExtlClntAppGlobalOauthSettings", "Meta_App"));
    assert!(
        nil.contains(r#"<result><records xsi:nil="true"/></result>"#),
        "{nil}"
    );
    // ExtlClntAppGlobalOauthSettings needs v60.0.
    let (s, fault) = o.soap(
        "59.0",
        &read_op("ExtlClntAppGlobalOauthSettings", "Meta_App_glbloauth"),
    );
    assert_eq!(s, 500);
    assert!(
        fault.contains("<faultcode>sf:INVALID_TYPE</faultcode>"),
        "{fault}"
    );
    assert_eq!(o.soap("59.0", &read_op("ConnectedApp", "R_D_Sync")).0, 200);
    assert_eq!(
        o.soap(
            "60.0",
            &read_op("ExtlClntAppGlobalOauthSettings", "Meta_App_glbloauth")
        )
        .0,
        200
    );

    // Update refusals: nothing changes.
    let refused = |record: &str, ty: &str, code: &str| {
        let (s, answer) = o.soap(V, &update_op(ty, record));
        assert_eq!(s, 200, "{answer}");
        assert!(answer.contains("<success>false</success>"), "{answer}");
        assert!(
            answer.contains(&format!("<statusCode>{code}</statusCode>")),
            "{code}: {answer}"
        );
        assert_eq!(
            o.sf.connected_app_certificate("R_D_Sync").as_deref(),
            Some(a.certificate.as_str())
        );
        assert_eq!(o.sf.eca_certificate(&app.app_id), None);
    };
    let new_cert = with_certificate(&record, Some(&b.certificate), "<consumerKey>");
    let drop_field = |r: &str, open: &str, close: &str| {
        let start = r.find(open).unwrap();
        let end = r.find(close).unwrap() + close.len();
        format!("{}{}", &r[..start], &r[end..])
    };
    for (open, close) in [
        ("<contactEmail>", "</contactEmail>"),
        ("<label>", "</label>"),
        ("<callbackUrl>", "</callbackUrl>"),
        ("<consumerKey>", "</consumerKey>"),
        ("<scopes>", "</scopes><scopes>RefreshToken</scopes>"),
        ("<oauthConfig>", "</oauthConfig>"),
        ("<fullName>", "</fullName>"),
    ] {
        refused(
            &drop_field(&new_cert, open, close),
            "ConnectedApp",
            "REQUIRED_FIELD_MISSING",
        );
    }
    refused(
        &new_cert.replace("<label>R&amp;D &lt;Sync&gt;</label>", "<label/>"),
        "ConnectedApp",
        "REQUIRED_FIELD_MISSING",
    );
    refused(
        &with_certificate(
            &record,
            Some("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n"),
            "",
        ),
        "ConnectedApp",
        "FIELD_INTEGRITY_EXCEPTION",
    );
    refused(
        &with_certificate(&record, Some(a.private_key.expose()), ""),
        "ConnectedApp",
        "FIELD_INTEGRITY_EXCEPTION",
    );
    refused(
        &new_cert.replace("R_D_Sync", "Other_App"),
        "ConnectedApp",
        "INVALID_CROSS_REFERENCE_KEY",
    );
    refused(
        &new_cert.replace("3MVG9RD.key", "3MVG9CHANGED"),
        "ConnectedApp",
        "FIELD_INTEGRITY_EXCEPTION",
    );
    let ecert = with_certificate(
        &erecord,
        Some(&b.certificate),
        "<externalClientApplication>",
    );
    for (open, close) in [
        ("<callbackUrl>", "</callbackUrl>"),
        (
            "<externalClientApplication>",
            "</externalClientApplication>",
        ),
        ("<isConsumerSecretOptional>", "</isConsumerSecretOptional>"),
        ("<label>", "</label>"),
    ] {
        refused(
            &drop_field(&ecert, open, close),
            "ExtlClntAppGlobalOauthSettings",
            "REQUIRED_FIELD_MISSING",
        );
    }
    refused(
        &ecert.replace("Meta_App_glbloauth", "Nope_glbloauth"),
        "ExtlClntAppGlobalOauthSettings",
        "INVALID_CROSS_REFERENCE_KEY",
    );
    refused(
        &with_certificate(&erecord, Some("garbage"), "<externalClientApplication>"),
        "ExtlClntAppGlobalOauthSettings",
        "FIELD_INTEGRITY_EXCEPTION",
    );
    // Faults: structure, type, version.
    let faults = [
        (V, update_op("ConnectedApp", &format!("{new_cert}<unknownField>x</unknownField>"))),
        (V, update_op("ApexClass", &new_cert)),
        (V, format!("<updateMetadata><metadata>{new_cert}</metadata></updateMetadata>")),
        ("59.0", update_op("ExtlClntAppGlobalOauthSettings", &ecert)),
        (V, "<deleteMetadata><type>ConnectedApp</type><fullNames>R_D_Sync</fullNames></deleteMetadata>".to_owned()),
        (V, "<readMetadata><type>ConnectedApp</type></readMetadata>".to_owned()),
    ];
    for (version, op) in &faults {
        let (s, answer) = o.soap(version, op);
        assert_eq!(s, 500, "{op}: {answer}");
        assert!(answer.contains("<soapenv:Fault><faultcode>"), "{answer}");
    }
    assert_eq!(
        o.sf.connected_app_certificate("R_D_Sync").as_deref(),
        Some(a.certificate.as_str())
    );

    // Success: the certificate changes; an update without one removes it (update replaces).
    let (s, answer) = o.soap(V, &update_op("ConnectedApp", &new_cert));
    assert_eq!(s, 200);
    assert!(answer.contains("<updateMetadataResponse><result><fullName>R_D_Sync</fullName><success>true</success></result></updateMetadataResponse>"), "{answer}");
    assert_eq!(
        o.sf.connected_app_certificate("R_D_Sync").as_deref(),
        Some(b.certificate.as_str())
    );
    let (s, answer) = o.soap(V, &update_op("ExtlClntAppGlobalOauthSettings", &ecert));
    assert!(
        s == 200 && answer.contains("<success>true</success>"),
        "{answer}"
    );
    assert_eq!(
        o.sf.eca_certificate(&app.app_id).as_deref(),
        Some(b.certificate.as_str())
    );
    let (_, again) = o.soap(
        V,
        &read_op("ExtlClntAppGlobalOauthSettings", "Meta_App_glbloauth"),
    );
    assert_eq!(record_of(&again, "ExtlClntAppGlobalOauthSettings"), ecert);
    let (_, answer) = o.soap(
        V,
        &update_op(
            "ConnectedApp",
            &record.replace(&format!("<certificate>{pem}</certificate>"), ""),
        ),
    );
    assert!(answer.contains("<success>true</success>"), "{answer}");
    assert_eq!(o.sf.connected_app_certificate("R_D_Sync"), None);
    let (_, read) = o.soap(V, &read_op("ConnectedApp", "R_D_Sync"));
    assert!(!read.contains("<certificate>"), "{read}");

    // Prefixed namespaces (and a prefixed xsi:type), as other SOAP stacks write them.
    let prefixed = format!(
        r#"<?xml version="1.0"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:md="http://soap.sforce.com/2006/04/metadata" xmlns:x="http://www.w3.org/2001/XMLSchema-instance">
  <env:Header><md:SessionHeader><md:sessionId>{}</md:sessionId></md:SessionHeader></env:Header>
  <env:Body>
    <md:updateMetadata><md:metadata x:type="md:ConnectedApp">{}</md:metadata></md:updateMetadata>
  </env:Body>
</env:Envelope>"#,
        o.token,
        new_cert
            .replace("<", "<md:")
            .replace("<md:/", "</md:")
            .replace("&lt;md:", "&lt;")
    );
    let (s, answer) = soap_raw(&o.sf, V, &SOAP_HEADERS, &prefixed);
    assert!(
        s == 200 && answer.contains("<success>true</success>"),
        "{answer}"
    );
    assert_eq!(
        o.sf.connected_app_certificate("R_D_Sync").as_deref(),
        Some(b.certificate.as_str())
    );
}

#[test]
fn metadata_refuses_bad_sessions_and_bad_envelopes() {
    let o = org();
    let op = read_op("ConnectedApp", "X");
    let fault_code = |(s, answer): (u16, String)| {
        assert_eq!(s, 500, "{answer}");
        let start = answer
            .find("<faultcode>")
            .unwrap_or_else(|| panic!("{answer}"))
            + 11;
        let end = answer.find("</faultcode>").unwrap();
        answer[start..end].to_owned()
    };
    let dead = access_token(&cc(&o.sf, ADMIN_KEY, ADMIN_SECRET));
    o.sf.expire(&dead);
    for session in ["", "00Dbogus!token", dead.as_str()] {
        let answer = soap_as(&o.sf, session, V, &op);
        assert!(answer.1.contains("<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session</faultstring>"), "{}", answer.1);
        assert_eq!(fault_code(answer), "sf:INVALID_SESSION_ID");
    }
    let no_header = format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body>{op}</soapenv:Body></soapenv:Envelope>"#
    );
    assert_eq!(
        fault_code(soap_raw(&o.sf, V, &SOAP_HEADERS, &no_header)),
        "sf:INVALID_SESSION_ID"
    );
    o.sf.set_admin_permission(false);
    assert_eq!(fault_code(o.soap(V, &op)), "sf:INSUFFICIENT_ACCESS");
    o.sf.set_admin_permission(true);
    let eca_token = access_token(&cc(&o.sf, &o.app.key, &o.app.secret));
    assert_eq!(
        fault_code(soap_as(&o.sf, &eca_token, V, &op)),
        "sf:INSUFFICIENT_ACCESS"
    );
    assert_eq!(o.soap(V, &op).0, 200);

    let good = envelope(&o.token, &op);
    let client = "soapenv:Client";
    // Headers: SOAPAction present, text/xml.
    assert_eq!(
        fault_code(soap_raw(
            &o.sf,
            V,
            &[("Content-Type", "text/xml; charset=UTF-8")],
            &good
        )),
        client
    );
    assert_eq!(
        fault_code(soap_raw(
            &o.sf,
            V,
            &[("Content-Type", "application/soap+xml"), ("SOAPAction", "")],
            &good
        )),
        client
    );
    assert_eq!(
        fault_code(soap_raw(&o.sf, "abc", &SOAP_HEADERS, &good)),
        "sf:UNSUPPORTED_API_VERSION"
    );
    // Malformed or hostile XML.
    let cases = [
        good.replace("</soapenv:Body>", ""),
        good.replace("<type>", "<Type>"),
        good.replace(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
        ),
        good.replace("ConnectedApp", "&e;"),
        good.replace(
            "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"",
            "",
        ),
        good.replace("<soapenv:Envelope ", "<soapenv:Envelope a=\"1\" a=\"2\" "),
        format!("{good}<trailing/>"),
        good.replace("ConnectedApp", "Connected\u{1}App"),
        format!("{}{op}{}", "<a>".repeat(100), "</a>".repeat(100)),
        String::new(),
        "not xml at all".to_owned(),
    ];
    for xml in &cases {
        assert_eq!(
            fault_code(soap_raw(&o.sf, V, &SOAP_HEADERS, xml)),
            client,
            "{xml}"
        );
    }
    let soap12 = good.replace(
        "http://schemas.xmlsoap.org/soap/envelope/",
        "http://www.w3.org/2003/05/soap-envelope",
    );
    assert_eq!(
        fault_code(soap_raw(&o.sf, V, &SOAP_HEADERS, &soap12)),
        "soapenv:VersionMismatch"
    );
    // Entities, character references, CDATA and comments are XML, and read as such.
    let fancy = good.replace(
        "<fullNames>X</fullNames>",
        "<!-- c --><fullNames><![CDATA[X]]></fullNames><fullNames>&#x58;&#89;</fullNames>",
    );
    let (s, answer) = soap_raw(&o.sf, V, &SOAP_HEADERS, &fancy);
    assert_eq!(s, 200, "{answer}");
    assert_eq!(
        answer.matches(r#"<records xsi:nil="true"/>"#).count(),
        2,
        "{answer}"
    );
}

// ----- fault injection -----

/// The client (ureq) fails at once on a dropped answer: well under 2 s.
fn fails_fast<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> Result<T, ureq::Error>) {
    let started = Instant::now();
    let result = f();
    let took = started.elapsed();
    assert!(result.is_err(), "{what}: {result:?}");
    assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
}

#[test]
fn dropped_answers_fail_at_once_and_are_applied_only_after() {
    let o = org();
    let staged_url = format!(
        "{}/services/data/v{V}/apps/oauth/{}/staged",
        o.sf.url,
        o.consumer()
    );
    let auth = format!("Bearer {}", o.token);
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
    ];
    let post = || raw("POST", &staged_url, &json_headers, Some("{}"));

    // StagedPost: DropBefore is not applied, DropAfter is.
    o.sf.fault(Step::StagedPost, 1, Fault::DropBefore);
    fails_fast("POST, dropped before", post);
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);
    o.sf.fault(Step::StagedPost, 1, Fault::DropAfter);
    fails_fast("POST, dropped after", post);
    let staged = o.sf.eca_staged(&o.app.app_id).expect("applied");
    assert_eq!(staged.state, "Active");
    assert!(o.sf.accepts(&staged.key, &staged.secret));

    // StagedPatch: the same.
    let patch_url = format!("{staged_url}/{}", staged.id);
    let patch = || {
        raw(
            "PATCH",
            &patch_url,
            &json_headers,
            Some(r#"{"command":"rotate"}"#),
        )
    };
    o.sf.fault(Step::StagedPatch, 1, Fault::DropBefore);
    fails_fast("PATCH, dropped before", patch);
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    assert_eq!(o.sf.eca_primary(&o.app.app_id).0, o.app.key);
    o.sf.fault(Step::StagedPatch, 1, Fault::DropAfter);
    fails_fast("PATCH, dropped after", patch);
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Rotated");
    assert_eq!(o.sf.eca_primary(&o.app.app_id).0, staged.key);

    // StagedDelete.
    let delete = || raw("DELETE", &patch_url, &json_headers[..2], None);
    o.sf.fault(Step::StagedDelete, 1, Fault::DropBefore);
    fails_fast("DELETE, dropped before", delete);
    assert!(o.sf.accepts(&o.app.key, &o.app.secret));
    o.sf.fault(Step::StagedDelete, 1, Fault::DropAfter);
    fails_fast("DELETE, dropped after", delete);
    assert!(!o.sf.accepts(&o.app.key, &o.app.secret));
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);

    // Token: a token is issued (and live) only when dropped after.
    let issued = o.sf.issued().len();
    let form =
        format!("grant_type=client_credentials&client_id={ADMIN_KEY}&client_secret={ADMIN_SECRET}");
    let token_url = format!("{}/services/oauth2/token", o.sf.url);
    let ct = [("Content-Type", "application/x-www-form-urlencoded")];
    o.sf.fault(Step::Token, 1, Fault::DropBefore);
    fails_fast("token, dropped before", || {
        raw("POST", &token_url, &ct, Some(&form))
    });
    assert_eq!(o.sf.issued().len(), issued);
    o.sf.fault(Step::Token, 1, Fault::DropAfter);
    fails_fast("token, dropped after", || {
        raw("POST", &token_url, &ct, Some(&form))
    });
    assert_eq!(o.sf.issued().len(), issued + 1);
    assert!(o.sf.is_live(o.sf.issued().last().unwrap()));

    // MetadataUpdate and GETs (Usage, Userinfo) too.
    let [a, _] = keys();
    o.sf.add_connected_app(ClassicApp {
        developer_name: "Legacy".into(),
        label: "Legacy".into(),
        consumer_key: "3MVG9L".into(),
        consumer_secret: "S".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
    });
    let (_, read) = o.soap(V, &read_op("ConnectedApp", "Legacy"));
    let record = with_certificate(
        &record_of(&read, "ConnectedApp"),
        Some(&a.certificate),
        "<consumerKey>",
    );
    let update = envelope(&o.token, &update_op("ConnectedApp", &record));
    let soap_url = format!("{}/services/Soap/m/{V}", o.sf.url);
    o.sf.fault(Step::MetadataUpdate, 1, Fault::DropBefore);
    fails_fast("update, dropped before", || {
        raw("POST", &soap_url, &SOAP_HEADERS, Some(&update))
    });
    assert_eq!(o.sf.connected_app_certificate("Legacy"), None);
    o.sf.fault(Step::MetadataUpdate, 1, Fault::DropAfter);
    fails_fast("update, dropped after", || {
        raw("POST", &soap_url, &SOAP_HEADERS, Some(&update))
    });
    assert_eq!(
        o.sf.connected_app_certificate("Legacy").as_deref(),
        Some(a.certificate.as_str())
    );
    let usage_url = format!("{}/services/data/v{V}/apps/oauth/usage", o.sf.url);
    o.sf.fault(Step::Usage, 1, Fault::DropBefore);
    fails_fast("usage", || raw("GET", &usage_url, &json_headers[..2], None));
    o.sf.fault(Step::Userinfo, 1, Fault::DropAfter);
    fails_fast("userinfo", || {
        raw(
            "GET",
            &format!("{}/services/oauth2/userinfo", o.sf.url),
            &json_headers[..1],
            None,
        )
    });
    // Recorded with status 0 (no answer), once each: no retries behind our back.
    let dropped: Vec<_> =
        o.sf.requests()
            .into_iter()
            .filter(|r| r.status == 0)
            .collect();
    assert_eq!(dropped.len(), 12, "{dropped:?}");
    assert_eq!(o.get("usage").0, 200, "the next request is answered");
}

#[test]
fn status_500_is_not_applied_and_faults_count_from_now() {
    let o = org();
    let staged_sub = format!("{}/staged", o.consumer());
    // REST: Salesforce's UNKNOWN_EXCEPTION array; not applied.
    o.sf.fault(Step::StagedPost, 1, Fault::Status500);
    let (s, v) = o.call("POST", &staged_sub, Some("{}"));
    assert_eq!(
        (s, v),
        (
            500,
            json!([{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred. Please include this ErrorId if you contact support: 1234-5678 (-1)"}])
        )
    );
    assert_eq!(o.sf.eca_staged(&o.app.app_id), None);
    // Token: the OAuth error shape; no token issued.
    let issued = o.sf.issued().len();
    o.sf.fault(Step::Token, 1, Fault::Status500);
    assert_eq!(
        cc(&o.sf, ADMIN_KEY, ADMIN_SECRET),
        (
            500,
            json!({"error": "server_error", "error_description": "internal server error"})
        )
    );
    assert_eq!(o.sf.issued().len(), issued);
    // SOAP: a fault; an update is not applied.
    let [a, _] = keys();
    o.sf.add_connected_app(ClassicApp {
        developer_name: "Legacy".into(),
        label: "Legacy".into(),
        consumer_key: "3MVG9L".into(),
        consumer_secret: "S".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
    });
    o.sf.fault(Step::MetadataRead, 1, Fault::Status500);
    let (s, answer) = o.soap(V, &read_op("ConnectedApp", "Legacy"));
    assert_eq!(s, 500);
    assert!(
        answer.contains("<faultcode>sf:UNKNOWN_EXCEPTION</faultcode>"),
        "{answer}"
    );
    let (_, read) = o.soap(V, &read_op("ConnectedApp", "Legacy"));
    let record = with_certificate(
        &record_of(&read, "ConnectedApp"),
        Some(&a.certificate),
        "<consumerKey>",
    );
    o.sf.fault(Step::MetadataUpdate, 1, Fault::Status500);
    assert_eq!(o.soap(V, &update_op("ConnectedApp", &record)).0, 500);
    assert_eq!(o.sf.connected_app_certificate("Legacy"), None);

    // nth counts requests of that step from the moment it is armed; several may be armed.
    let creds = format!("credentials/{}", o.app.app_id);
    assert_eq!(o.get(&creds).0, 200);
    o.sf.fault(Step::Credentials, 2, Fault::Status500);
    o.sf.fault(Step::Credentials, 4, Fault::Status500);
    o.sf.fault(Step::ConsumerPart, 1, Fault::Status500);
    let statuses: Vec<u16> = (0..5).map(|_| o.get(&creds).0).collect();
    assert_eq!(statuses, [200, 500, 200, 500, 200]);
    assert_eq!(o.get(&format!("{}?part=key", o.consumer())).0, 500);
    assert_eq!(o.get(&format!("{}?part=key", o.consumer())).0, 200);

    // steps(): every classified request, in order.
    let before = o.sf.steps().len();
    o.get("usage");
    o.get(&creds);
    o.get(&format!("{}?part=secret", o.consumer()));
    let id = o.stage()["id"].as_str().unwrap().to_owned();
    o.get(&staged_sub);
    o.rotate(&id);
    o.delete(&id);
    cc(&o.sf, ADMIN_KEY, ADMIN_SECRET);
    o.soap(V, &read_op("ConnectedApp", "Legacy"));
    o.soap(V, &update_op("ConnectedApp", &record));
    let auth = format!("Bearer {}", o.token);
    raw(
        "GET",
        &format!("{}/services/oauth2/userinfo", o.sf.url),
        &[("Authorization", &auth)],
        None,
    )
    .unwrap();
    raw(
        "GET",
        &format!(
            "{}/services/data/v{V}/query?q=SELECT+Id+FROM+Account",
            o.sf.url
        ),
        &[("Authorization", &auth)],
        None,
    )
    .unwrap();
    raw(
        "GET",
        &format!("{}/services/data/v{V}/limits", o.sf.url),
        &[("Authorization", &auth)],
        None,
    )
    .unwrap();
    assert_eq!(
        o.sf.steps()[before..],
        [
            Step::Usage,
            Step::Credentials,
            Step::ConsumerPart,
            Step::StagedPost,
            Step::StagedGet,
            Step::StagedPatch,
            Step::StagedDelete,
            Step::Token,
            Step::MetadataRead,
            Step::MetadataUpdate,
            Step::Userinfo,
            Step::Soql,
        ]
    );
}

/// Wait until the fake holds a request of `step`.
fn wait_held(sf: &FakeSalesforce, step: Step) {
    let started = Instant::now();
    while sf.held() != Some(step) {
        assert!(started.elapsed() < Duration::from_secs(10), "nothing held");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn held_requests_wait_for_release_then_fail() {
    let o = org();
    let staged = o.stage();
    let id = staged["id"].as_str().unwrap().to_owned();
    let (k2, s2) = (
        staged["key"].as_str().unwrap().to_owned(),
        staged["secret"].as_str().unwrap().to_owned(),
    );
    let patch_url = format!(
        "{}/services/data/v{V}/apps/oauth/{}/staged/{id}",
        o.sf.url,
        o.consumer()
    );
    let auth = format!("Bearer {}", o.token);
    let patch = {
        let (url, auth) = (patch_url.clone(), auth.clone());
        move || {
            let headers = [
                ("Authorization", auth.as_str()),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ];
            let started = Instant::now();
            let r = raw("PATCH", &url, &headers, Some(r#"{"command":"rotate"}"#));
            (r, started.elapsed())
        }
    };

    // HoldBefore: nothing applied while held (the test can look around), nor after release.
    o.sf.fault(Step::StagedPatch, 1, Fault::HoldBefore);
    let client = std::thread::spawn(patch.clone());
    wait_held(&o.sf, Step::StagedPatch);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!client.is_finished(), "the client waits");
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    assert!(o.sf.accepts(&k2, &s2) && o.sf.accepts(&o.app.key, &o.app.secret));
    o.sf.release();
    let (result, _) = client.join().unwrap();
    assert!(result.is_err(), "{result:?}");
    assert_eq!(o.sf.held(), None);
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Active");
    assert_eq!(o.sf.eca_primary(&o.app.app_id).0, o.app.key);

    // HoldAfter: applied before the hold.
    o.sf.fault(Step::StagedPatch, 1, Fault::HoldAfter);
    let client = std::thread::spawn(patch.clone());
    wait_held(&o.sf, Step::StagedPatch);
    assert_eq!(o.sf.eca_staged(&o.app.app_id).unwrap().state, "Rotated");
    assert_eq!(o.sf.eca_primary(&o.app.app_id).0, k2);
    assert!(!client.is_finished());
    o.sf.release();
    let (result, took) = client.join().unwrap();
    assert!(result.is_err(), "{result:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    o.sf.release(); // nothing held: no effect on the next one
    assert_eq!(o.get("usage").0, 200);

    // A held Metadata update (after) and a held token request (before), the second ended by
    // the fake's end rather than a release.
    let [a, _] = keys();
    o.sf.add_connected_app(ClassicApp {
        developer_name: "Legacy".into(),
        label: "Legacy".into(),
        consumer_key: "3MVG9L".into(),
        consumer_secret: "S".into(),
        username: ECA_USER.into(),
        certificate_pem: None,
    });
    let (_, read) = o.soap(V, &read_op("ConnectedApp", "Legacy"));
    let record = with_certificate(
        &record_of(&read, "ConnectedApp"),
        Some(&a.certificate),
        "<consumerKey>",
    );
    let update = envelope(&o.token, &update_op("ConnectedApp", &record));
    let soap_url = format!("{}/services/Soap/m/{V}", o.sf.url);
    o.sf.fault(Step::MetadataUpdate, 1, Fault::HoldAfter);
    let client = std::thread::spawn(move || raw("POST", &soap_url, &SOAP_HEADERS, Some(&update)));
    wait_held(&o.sf, Step::MetadataUpdate);
    assert_eq!(
        o.sf.connected_app_certificate("Legacy").as_deref(),
        Some(a.certificate.as_str())
    );
    o.sf.release();
    assert!(client.join().unwrap().is_err());

    o.sf.fault(Step::Token, 1, Fault::HoldBefore);
    let token_url = format!("{}/services/oauth2/token", o.sf.url);
    let client = std::thread::spawn(move || {
        let form = format!(
            "grant_type=client_credentials&client_id={ADMIN_KEY}&client_secret={ADMIN_SECRET}"
        );
        raw(
            "POST",
            &token_url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&form),
        )
    });
    wait_held(&o.sf, Step::Token);
    let issued = o.sf.issued().len();
    let started = Instant::now();
    drop(o);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fake's end ends the hold"
    );
    assert!(client.join().unwrap().is_err());
    assert!(issued > 0);
}
