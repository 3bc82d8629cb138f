//! The fake org's External Client Apps (ECAs) and extra classic connected apps, the admin APIs
//! that rotate their credentials, and fault injection, as /work/shared/SALESFORCE-ROTATION.md
//! describes them (a child module of fake_sf.rs: it shares its `State`).
//!
//! - Connect REST under `/services/data/vNN.N/apps/oauth/…`: `usage` (v59.0+), `credentials`
//!   (v60.0+) and the staged-credentials resources (v65.0+): list apps, read the consumer key and
//!   secret, stage a new pair (one slot per consumer), promote it (`{"command":"rotate"}`; the
//!   old primary stays valid as `Rotated`), delete a staged pair. Staged pairs expire 30 days
//!   after they entered the slot, on the fake's own clock ([`FakeSalesforce::advance_days`]).
//! - SOQL `SELECT Id, DeveloperName FROM ExternalClientApplication` (through fake_sf's query).
//! - Metadata SOAP API `POST /services/Soap/m/NN.N`: `readMetadata` and `updateMetadata` of
//!   `ConnectedApp` (extra classic apps) and `ExtlClntAppGlobalOauthSettings` (ECAs, v60.0+),
//!   strict as the real one: an update replaces the whole component, so a record missing a field
//!   is refused and one without a certificate removes it. The deployed certificate is what JWT
//!   logins are verified with, at once.
//! - The token endpoint accepts every app's currently valid pairs (client credentials, JWT
//!   bearer by `iss`, ECA refresh tokens), and records which app each access token came from.
//! - Fault injection per [`Step`]: drop the connection before or after applying the request,
//!   answer 500, or hold the request (before or after applying it) until [`FakeSalesforce::release`].
//! - Who holds OAuth tokens (the document's "Who really has access"):
//!   - the ECAs' usage resources (v59.0+, admin only, as the other `apps/oauth` resources):
//!     `GET usage/{appId}/users?page=&pageSize=` (0-based page, size 1 to 1,000, default 100;
//!     elements `{userIdentifier, username}`; `nextPageUrl` on every page, the last and the
//!     empty ones past it included), `GET usage/{appId}/{userId}/tokens` (`{"tokens":[…]}`), and
//!     `DELETE` of one token (its `revocationUrl`), of one user's tokens or of all the app's:
//!     204 with no body, or 404 NOT_FOUND when there is nothing (left) to revoke. `GET usage`
//!     lists an ECA once it holds a token, or when `listed_in_usage`.
//!   - SOQL on OauthToken (classic connected apps): `SELECT COUNT() FROM OauthToken` and
//!     `SELECT f, … FROM OauthToken` (any of its fields), either with `WHERE UserId = '…'` and
//!     nothing else; at most 2,500 records with `done: true` (the rest silently dropped);
//!     `Id` always null; a caller without the admin permission sees its own rows only. Revoke
//!     with `POST /services/oauth2/revoke` and `token=<DeleteToken>`.
//!   - `SELECT Id, Username FROM User`: every user, 2,000 a batch, `nextRecordsUrl` for more.
//!   - Every access token the fake issues is one of these, for its app's user: an OauthToken
//!     row (the main app as [`ADMIN_APP_LABEL`], extra connected apps by label) or a usage
//!     token of the ECA (client credentials and JWT bearer; not the ECA refresh flow). Revoking
//!     the row or usage token kills the access token.
//!   - [`FakeSalesforce::load_audit_data_set`]: an org as an audit meets it (30 apps, 200 users,
//!     5,000 OauthToken rows, pages of ECA users).
//!
//! Who may call the admin APIs: the main app's user (the admin), while
//! [`FakeSalesforce::set_admin_permission`] is on; any other user (an ECA's or extra app's
//! run-as user with another username) has not the permissions.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Response};

use super::{
    FakeSalesforce, NEWEST_API, OLDEST_API, State, USER_ID, issue, json_response, not_found,
    now_secs, oauth_error, parse_form, salesforce_chars,
};

type Answer = Response<std::io::Cursor<Vec<u8>>>;

/// How long a staged pair (Active or Rotated) lives.
const STAGED_LIFETIME_SECS: i64 = 30 * 86_400;
const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const MD_NS: &str = "http://soap.sforce.com/2006/04/metadata";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The message of Salesforce's UNKNOWN_EXCEPTION (a 500).
const UNKNOWN_EXCEPTION: &str = "An unexpected error occurred. Please include this ErrorId if you contact support: 1234-5678 (-1)";

/// An External Client App of the org.
#[derive(Clone, Debug, Default)]
pub struct EcaConfig {
    pub developer_name: String,
    pub label: String,
    /// The JWT subject and the client-credentials run-as user.
    pub username: String,
    /// The certificate of `ExtlClntAppGlobalOauthSettings` (PEM), for JWT.
    pub certificate_pem: Option<String>,
    /// false: absent from `GET apps/oauth/usage` (the app never issued a token); SOQL lists it.
    pub listed_in_usage: bool,
}

/// What [`FakeSalesforce::add_eca`] made: the app's ids and its first (primary) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcaIds {
    /// `0x` and 16 letters or digits: the usage API's `identifier`.
    pub app_id: String,
    pub consumer_id: String,
    pub key: String,
    pub secret: String,
}

/// The staged slot of an ECA's consumer, as Salesforce would show it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedView {
    pub id: String,
    pub key: String,
    pub secret: String,
    /// `Active`, `Rotated` or `Expired`, computed on the fake's clock.
    pub state: String,
    /// `2026-11-30T14:00:00.000Z`.
    pub expiration_date: String,
}

/// An extra classic connected app (no REST rotation; its certificate is Metadata).
#[derive(Clone, Debug, Default)]
pub struct ClassicApp {
    pub developer_name: String,
    pub label: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub username: String,
    pub certificate_pem: Option<String>,
}

/// Behaviours the documents leave unconfirmed; each way can be tested. All default to false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// `GET apps/oauth/usage` entries carry `label`.
    pub usage_has_label: bool,
    /// Staged-credential objects come wrapped as `{"stagedCredentials":[obj]}` (else bare).
    pub staged_wrapped: bool,
    /// `GET …/staged` with nothing staged is a 404 NOT_FOUND (else `{"stagedCredentials":[]}`).
    pub empty_staged_is_404: bool,
    /// After a rotate, the slot (now the old primary, `Rotated`) has a new id (else the same).
    pub rotated_gets_new_id: bool,
    /// A refresh token can be redeemed only with the key it was issued under and dies when that
    /// pair is deleted (else any valid pair of the app redeems it and it outlives its pair).
    pub refresh_bound_to_pair: bool,
    /// The SOQL `ExternalClientApplication.Id` is not the usage API's app id, and the
    /// credentials resources answer 404 to it (else they are the same id).
    pub soql_id_differs: bool,
}

/// A request kind, for counting and fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `GET …/apps/oauth/usage` (the apps list; and any other GET below it not named here)
    Usage,
    /// `GET …/apps/oauth/usage/{appId}/users[?page=&pageSize=]`
    UsageUsers,
    /// `GET …/apps/oauth/usage/{appId}/{userId}/tokens`
    UsageTokens,
    /// `DELETE …/apps/oauth/usage/{appId}/{userId}/tokens/{tokenId}`, `…/{userId}/tokens` or
    /// `…/{appId}/tokens`
    UsageRevoke,
    /// `GET …/query?q=…` (any SOQL but OauthToken's), and `GET …/query/{locator}` (the next
    /// batch of a paged answer)
    Soql,
    /// `GET …/query?q=…` whose object is OauthToken
    SoqlOauthToken,
    /// `GET …/apps/oauth/credentials/{appId}`
    Credentials,
    /// `GET …/apps/oauth/credentials/{appId}/{consumerId}[?part=…]`
    ConsumerPart,
    StagedGet,
    StagedPost,
    StagedPatch,
    StagedDelete,
    /// `POST /services/oauth2/token`
    Token,
    /// Metadata SOAP `readMetadata`
    MetadataRead,
    /// Metadata SOAP `updateMetadata`
    MetadataUpdate,
    /// `GET /services/oauth2/userinfo`
    Userinfo,
    /// `POST /services/oauth2/revoke` (an access or refresh token, or an OauthToken's
    /// DeleteToken)
    Revoke,
}

/// What an armed fault does to its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Not applied; the connection gets bytes that are not an HTTP response.
    DropBefore,
    /// Applied (state changes as on success); then no valid answer.
    DropAfter,
    /// Not applied; HTTP 500 with Salesforce's body for that kind of endpoint.
    Status500,
    /// As DropBefore, after waiting for [`FakeSalesforce::release`] (or the fake's end).
    HoldBefore,
    /// As DropAfter (applied at once), after waiting for [`FakeSalesforce::release`].
    HoldAfter,
    /// Applied at once; answered normally after [`FakeSalesforce::release`]: a moment to look
    /// at the client's state between two of its steps.
    Pause,
}

/// The app an access token was issued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenApp {
    /// The main (admin) app of [`super::AppConfig`].
    Main,
    /// An ECA, by app id.
    Eca(String),
    /// An extra classic connected app, by developer name.
    Classic(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pair {
    key: String,
    secret: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotKind {
    Active,
    Rotated,
}

/// The one staged slot of a consumer.
#[derive(Clone, Debug)]
struct Slot {
    id: String,
    pair: Pair,
    kind: SlotKind,
    /// Seconds on the fake's clock.
    created: i64,
    /// Who staged it (a user id), as `createdBy` says.
    created_by: String,
    expires: i64,
}

impl Slot {
    fn state(&self, now: i64) -> &'static str {
        match self.kind {
            _ if now >= self.expires => "Expired",
            SlotKind::Active => "Active",
            SlotKind::Rotated => "Rotated",
        }
    }

    fn valid(&self, now: i64) -> bool {
        now < self.expires
    }
}

struct Eca {
    cfg: EcaConfig,
    app_id: String,
    /// Its `ExternalClientApplication.Id` when quirk `soql_id_differs`.
    other_id: String,
    consumer_id: String,
    primary: Pair,
    slot: Option<Slot>,
    /// ExtlClntAppGlobalOauthSettings fields other than the certificate (in `cfg`).
    callback_url: String,
    is_consumer_secret_optional: bool,
}

impl Eca {
    /// The pairs that work now: the primary, and the staged one unless expired.
    fn valid_pairs(&self, now: i64) -> Vec<&Pair> {
        let mut out = vec![&self.primary];
        if let Some(slot) = self.slot.as_ref().filter(|s| s.valid(now)) {
            out.push(&slot.pair);
        }
        out
    }

    fn settings_name(&self) -> String {
        format!("{}_glbloauth", self.cfg.developer_name)
    }
}

struct Classic {
    app: ClassicApp,
    contact_email: String,
    callback_url: String,
    scopes: Vec<String>,
}

/// The part of the fake's state this module owns.
pub(super) struct Org {
    offset_days: i64,
    ecas: Vec<Eca>,
    classics: Vec<Classic>,
    allows_secret_api: bool,
    admin_permission: bool,
    quirks: Quirks,
    /// (step, which arrival of it, fault)
    armed: Vec<(Step, usize, Fault)>,
    steps: Vec<Step>,
    pub(super) held: Option<Step>,
    release: bool,
    /// access token → the app it was issued to
    pub(super) token_apps: HashMap<String, TokenApp>,
    /// ECA refresh token → (app id, the key it was issued under, dead with its pair)
    refresh: HashMap<String, (String, String, bool)>,
    /// The org's users besides the admin ([`USER_ID`]): (id, username), in creation order.
    users: Vec<(String, String)>,
    /// The ECAs' OAuth tokens (the usage resources), in issue order.
    usage: Vec<UsageTok>,
    /// The connected apps' OauthToken rows, in issue order.
    oauth: Vec<OauthTok>,
    /// AppName → AppMenuItemId.
    menu_items: HashMap<String, String>,
    /// A paged SOQL answer's query id (its locator before `-offset`) → all its records.
    cursors: HashMap<String, Vec<(String, String)>>,
    /// Feeds the opaque ids: token ids, DeleteTokens, query locators.
    audit_serial: u64,
    /// Feeds the ids of the users the fake makes.
    user_serial: u64,
}

impl Default for Org {
    fn default() -> Org {
        Org {
            offset_days: 0,
            ecas: Vec::new(),
            classics: Vec::new(),
            allows_secret_api: true,
            admin_permission: true,
            quirks: Quirks::default(),
            armed: Vec::new(),
            steps: Vec::new(),
            held: None,
            release: false,
            token_apps: HashMap::new(),
            refresh: HashMap::new(),
            users: vec![(OTHER_USER_ID.to_owned(), OTHER_USERNAME.to_owned())],
            usage: Vec::new(),
            oauth: Vec::new(),
            menu_items: HashMap::new(),
            cursors: HashMap::new(),
            audit_serial: 0,
            user_serial: 0,
        }
    }
}

impl Org {
    /// Now, on the fake's clock (seconds).
    fn now(&self) -> i64 {
        now_secs() + self.offset_days * 86_400
    }

    fn eca(&self, app_id: &str) -> Option<&Eca> {
        self.ecas.iter().find(|e| e.app_id == app_id)
    }

    fn eca_mut(&mut self, app_id: &str) -> Option<&mut Eca> {
        self.ecas.iter_mut().find(|e| e.app_id == app_id)
    }

    /// A request of `step` arrives: recorded, and the fault armed for it taken, if any.
    pub(super) fn arrive(&mut self, step: Step) -> Option<Fault> {
        self.steps.push(step);
        let n = self.steps.iter().filter(|s| **s == step).count();
        let i = self
            .armed
            .iter()
            .position(|(s, at, _)| *s == step && *at == n)?;
        Some(self.armed.remove(i).2)
    }
}

/// Another user of the org (who stages or applies pairs in Setup in the tests).
pub const OTHER_USER_ID: &str = "0055g00000ZZZZZAAA";

impl FakeSalesforce {
    /// Add an External Client App with one consumer and its first (primary) key and secret.
    pub fn add_eca(&self, cfg: EcaConfig) -> EcaIds {
        let mut st = self.state.lock().unwrap();
        let app_id = format!("0x{}", alnum(&mut st, b"app", 16));
        let other_id = format!("0x{}", alnum(&mut st, b"soql", 16));
        let consumer_id = format!("0Hc{}", alnum(&mut st, b"consumer", 15));
        let primary = new_pair(&mut st);
        let ids = EcaIds {
            app_id: app_id.clone(),
            consumer_id: consumer_id.clone(),
            key: primary.key.clone(),
            secret: primary.secret.clone(),
        };
        st.eca.ecas.push(Eca {
            cfg,
            app_id,
            other_id,
            consumer_id,
            primary,
            slot: None,
            callback_url: "http://localhost:1717/OauthRedirect".into(),
            is_consumer_secret_optional: false,
        });
        ids
    }

    /// Stage a pair as someone else would (another user, in Setup): an Active pair in the slot
    /// that no vault knows, created by [`OTHER_USER_ID`]. Returns its key. Panics if the slot is
    /// occupied.
    pub fn stage_for_test(&self, app_id: &str) -> String {
        let mut st = self.state.lock().unwrap();
        let now = st.eca.now();
        assert!(
            st.eca.eca(app_id).unwrap().slot.is_none(),
            "the slot is occupied"
        );
        let pair = new_pair(&mut st);
        let id = format!("0Xs{}", alnum(&mut st, b"staged", 15));
        let key = pair.key.clone();
        st.eca.eca_mut(app_id).unwrap().slot = Some(Slot {
            id,
            pair,
            kind: SlotKind::Active,
            created: now,
            created_by: OTHER_USER_ID.to_owned(),
            expires: now + STAGED_LIFETIME_SECS,
        });
        key
    }

    /// Promote the staged pair as Setup's "apply" would (the old primary into the slot as
    /// Rotated, under the same id). Panics if nothing is staged.
    pub fn promote_for_test(&self, app_id: &str) {
        let mut st = self.state.lock().unwrap();
        let now = st.eca.now();
        let eca = st.eca.eca_mut(app_id).unwrap();
        let staged = eca.slot.take().expect("nothing staged");
        let old = std::mem::replace(&mut eca.primary, staged.pair);
        eca.slot = Some(Slot {
            id: staged.id,
            pair: old,
            kind: SlotKind::Rotated,
            created: now,
            created_by: OTHER_USER_ID.to_owned(),
            expires: now + STAGED_LIFETIME_SECS,
        });
    }

    /// The ECA's current primary (key, secret). Panics on an unknown app id.
    pub fn eca_primary(&self, app_id: &str) -> (String, String) {
        let st = self.state.lock().unwrap();
        let p = &st.eca.eca(app_id).expect("no such ECA").primary;
        (p.key.clone(), p.secret.clone())
    }

    /// The ECA's staged slot, if it holds a pair (in any state). Panics on an unknown app id.
    pub fn eca_staged(&self, app_id: &str) -> Option<StagedView> {
        let st = self.state.lock().unwrap();
        let now = st.eca.now();
        let slot = st.eca.eca(app_id).expect("no such ECA").slot.as_ref()?;
        Some(StagedView {
            id: slot.id.clone(),
            key: slot.pair.key.clone(),
            secret: slot.pair.secret.clone(),
            state: slot.state(now).to_owned(),
            expiration_date: iso(slot.expires),
        })
    }

    /// Whether a client-credentials token request with this pair would succeed now (the main
    /// app, an extra connected app, or an ECA's primary or unexpired staged pair).
    pub fn accepts(&self, key: &str, secret: &str) -> bool {
        let st = self.state.lock().unwrap();
        (st.app.consumer_key == key && st.app.consumer_secret == secret)
            || pair_app(&st, key).is_some_and(|(_, pair)| pair.secret == secret)
    }

    /// Move the fake's clock (staged pairs' expiry, the dates it answers) `days` ahead.
    pub fn advance_days(&self, days: i64) {
        self.state.lock().unwrap().eca.offset_days += days;
    }

    /// The certificate (PEM) the ECA's OAuth settings hold now. Panics on an unknown app id.
    pub fn eca_certificate(&self, app_id: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        let eca = st.eca.eca(app_id).expect("no such ECA");
        eca.cfg.certificate_pem.clone()
    }

    /// `ExternalClientAppSettings.enableClientSecretInRestApiAccess` (default on).
    pub fn set_org_allows_secret_api(&self, on: bool) {
        self.state.lock().unwrap().eca.allows_secret_api = on;
    }

    /// The admin user's "External Client App Developer", "View Client Secret" and "Modify
    /// Metadata" permissions (default on).
    pub fn set_admin_permission(&self, on: bool) {
        self.state.lock().unwrap().eca.admin_permission = on;
    }

    pub fn set_quirks(&self, q: Quirks) {
        self.state.lock().unwrap().eca.quirks = q;
    }

    /// Add a classic connected app besides the main one (its Metadata is readable by
    /// developer name; its one pair logs in).
    pub fn add_connected_app(&self, app: ClassicApp) {
        self.state.lock().unwrap().eca.classics.push(Classic {
            app,
            contact_email: "admin@acme.example".into(),
            callback_url: "http://localhost:1717/OauthRedirect".into(),
            scopes: vec!["Api".into(), "RefreshToken".into()],
        });
    }

    /// The certificate an extra connected app holds now. Panics on an unknown name.
    pub fn connected_app_certificate(&self, developer_name: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        let c = st.eca.classics.iter();
        let mut c = c.filter(|c| c.app.developer_name == developer_name);
        c.next()
            .expect("no such connected app")
            .app
            .certificate_pem
            .clone()
    }

    /// A live refresh token of the ECA `app_id`, as if issued under `key` (which must be one of
    /// its currently valid keys).
    pub fn mint_eca_refresh_token(&self, app_id: &str, key: &str) -> String {
        let mut st = self.state.lock().unwrap();
        let now = st.eca.now();
        let eca = st.eca.eca(app_id).expect("no such ECA");
        assert!(
            eca.valid_pairs(now).iter().any(|p| p.key == key),
            "{key} is not a valid key of {app_id}"
        );
        st.serial += 1;
        let r = format!(
            "5Aep861{}{}",
            st.serial,
            salesforce_chars(&st, b"eca-refresh", 80)
        );
        st.refresh_tokens.insert(r.clone(), Vec::new());
        st.issued.push(r.clone());
        st.eca
            .refresh
            .insert(r.clone(), (app_id.to_owned(), key.to_owned(), false));
        r
    }

    /// The app `access_token` was issued to, if this fake issued it.
    pub fn token_app(&self, access_token: &str) -> Option<TokenApp> {
        let st = self.state.lock().unwrap();
        st.eca.token_apps.get(access_token).cloned()
    }

    /// Arm `fault` for the `nth` (1-based) request of `step` from now on.
    pub fn fault(&self, step: Step, nth: usize, fault: Fault) {
        assert!(nth >= 1, "nth counts from 1");
        let mut st = self.state.lock().unwrap();
        let seen = st.eca.steps.iter().filter(|s| **s == step).count();
        st.eca.armed.push((step, seen + nth, fault));
    }

    /// The step of the request being held right now, if any.
    pub fn held(&self) -> Option<Step> {
        self.state.lock().unwrap().eca.held
    }

    /// Let the held request go (it then gets no valid answer). No effect when none is held.
    pub fn release(&self) {
        let mut st = self.state.lock().unwrap();
        if st.eca.held.is_some() {
            st.eca.release = true;
        }
    }

    /// Every classified request so far, in order of arrival.
    pub fn steps(&self) -> Vec<Step> {
        self.state.lock().unwrap().eca.steps.clone()
    }
}

// ----- ids, keys, dates -----

/// `n` letters and digits, unique per call.
fn alnum(st: &mut State, salt: &[u8], n: usize) -> String {
    let mut out = String::new();
    while out.len() < n {
        st.serial += 1;
        let chars = salesforce_chars(st, salt, 2 * n);
        out.extend(chars.chars().filter(char::is_ascii_alphanumeric));
    }
    out.truncate(n);
    out
}

/// A consumer key (85 characters, `3MVG9…`) and secret (64 uppercase hex digits).
fn new_pair(st: &mut State) -> Pair {
    st.serial += 1;
    let key = format!("3MVG9{}", salesforce_chars(st, b"consumer-key", 80));
    st.serial += 1;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        salesforce_chars(st, b"consumer-secret", 64).as_bytes(),
    );
    let secret = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    Pair { key, secret }
}

/// `2026-11-30T14:00:00.000Z`
fn iso(ts: i64) -> String {
    let s = sfvault::timefmt::rfc3339(ts);
    format!("{}.000Z", s.trim_end_matches('Z'))
}

// ----- the token endpoint's other apps -----

/// The app whose currently valid pair has `key` (not the main app).
fn pair_app(st: &State, key: &str) -> Option<(TokenApp, Pair)> {
    let now = st.eca.now();
    for eca in &st.eca.ecas {
        if let Some(p) = eca.valid_pairs(now).into_iter().find(|p| p.key == key) {
            return Some((TokenApp::Eca(eca.app_id.clone()), p.clone()));
        }
    }
    let c = st.eca.classics.iter().find(|c| c.app.consumer_key == key)?;
    let pair = Pair {
        key: c.app.consumer_key.clone(),
        secret: c.app.consumer_secret.clone(),
    };
    Some((TokenApp::Classic(c.app.developer_name.clone()), pair))
}

/// The client-credentials flow for a key that is not the main app's.
pub(super) fn client_credentials(st: &State, id: &str, secret: &str) -> Result<TokenApp, Answer> {
    match pair_app(st, id) {
        None => Err(oauth_error(
            400,
            "invalid_client_id",
            "client identifier invalid",
        )),
        Some((_, pair)) if pair.secret != secret => Err(oauth_error(
            400,
            "invalid_client",
            "invalid client credentials",
        )),
        Some((app, _)) => Ok(app),
    }
}

/// The JWT bearer flow for an `iss` that is not the main app's key: the app, its user and its
/// deployed certificate.
pub(super) fn jwt_app(st: &State, iss: &str) -> Option<(TokenApp, String, Option<String>)> {
    let (app, _) = pair_app(st, iss)?;
    match &app {
        TokenApp::Eca(id) => {
            let eca = st.eca.eca(id)?;
            let (user, cert) = (eca.cfg.username.clone(), eca.cfg.certificate_pem.clone());
            Some((app, user, cert))
        }
        TokenApp::Classic(name) => {
            let c = st
                .eca
                .classics
                .iter()
                .find(|c| &c.app.developer_name == name)?;
            let (user, cert) = (c.app.username.clone(), c.app.certificate_pem.clone());
            Some((app, user, cert))
        }
        TokenApp::Main => None,
    }
}

/// The refresh-token flow when the token is an ECA's; None when it is not one.
pub(super) fn refresh(st: &mut State, url: &str, form: &HashMap<String, String>) -> Option<Answer> {
    let r = form.get("refresh_token")?;
    let (app_id, issued_under, dead) = st.eca.refresh.get(r)?.clone();
    let now = st.eca.now();
    let bound = st.eca.quirks.refresh_bound_to_pair;
    let eca = st.eca.eca(&app_id)?;
    let client_id = form.get("client_id").map(String::as_str).unwrap_or("");
    let Some(pair) = eca
        .valid_pairs(now)
        .into_iter()
        .find(|p| p.key == client_id)
        .cloned()
    else {
        return Some(oauth_error(
            400,
            "invalid_client_id",
            "client identifier invalid",
        ));
    };
    if form.get("client_secret").is_some_and(|s| *s != pair.secret) {
        return Some(oauth_error(
            400,
            "invalid_client",
            "invalid client credentials",
        ));
    }
    if dead || (bound && pair.key != issued_under) {
        return Some(oauth_error(
            400,
            "invalid_grant",
            "expired access/refresh token",
        ));
    }
    let body = issue(st, url, Some(r.clone()), false);
    if let Some(access) = body["access_token"].as_str() {
        st.eca
            .token_apps
            .insert(access.to_owned(), TokenApp::Eca(app_id));
    }
    Some(json_response(200, body))
}

/// Whether the caller (the user of `bearer`'s app) has the admin permissions.
fn caller_is_admin(st: &State, bearer: Option<&str>) -> bool {
    let user = match bearer.and_then(|b| st.eca.token_apps.get(b)) {
        Some(TokenApp::Eca(id)) => st.eca.eca(id).map(|e| e.cfg.username.as_str()),
        Some(TokenApp::Classic(name)) => st
            .eca
            .classics
            .iter()
            .find(|c| &c.app.developer_name == name)
            .map(|c| c.app.username.as_str()),
        _ => Some(st.app.username.as_str()),
    };
    st.eca.admin_permission && user == Some(st.app.username.as_str())
}

/// The SOQL rows of ExternalClientApplication: Id, DeveloperName.
pub(super) fn soql_rows(st: &State) -> Vec<Vec<Value>> {
    let differs = st.eca.quirks.soql_id_differs;
    st.eca
        .ecas
        .iter()
        .map(|e| {
            let id = if differs { &e.other_id } else { &e.app_id };
            vec![json!(id), json!(e.cfg.developer_name)]
        })
        .collect()
}

// ----- classification, faults, holding -----

/// One request as the handler received it.
pub(super) struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub content_type: &'a str,
    pub accept: Option<&'a str>,
    pub soap_action: Option<&'a str>,
    pub body: &'a str,
    pub bearer: Option<&'a str>,
}

/// The path below `/services/data/vNN.N/`, and the version, for a REST path.
fn rest_sub(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/services/data/v")?;
    let (version, sub) = rest.split_once('/')?;
    Some((version, sub.strip_suffix('/').unwrap_or(sub)))
}

/// `/services/data/vNN.N/apps/oauth/…`
pub(super) fn is_admin_path(path: &str) -> bool {
    rest_sub(path).is_some_and(|(_, sub)| sub.starts_with("apps/oauth/") || sub == "apps/oauth")
}

/// The kind of a request, for counting and faults (None: not one of the [`Step`]s).
pub(super) fn classify(method: &str, path: &str, query: &str, body: &str) -> Option<Step> {
    match (method, path) {
        ("POST", "/services/oauth2/token") => return Some(Step::Token),
        ("POST", "/services/oauth2/revoke") => return Some(Step::Revoke),
        ("GET", "/services/oauth2/userinfo") => return Some(Step::Userinfo),
        ("POST", p) if p.starts_with("/services/Soap/m/") => {
            let doc = parse_xml(body).ok()?;
            let op = soap_parts(&doc).ok()?.1.elements().next()?;
            return match op.local.as_str() {
                "readMetadata" => Some(Step::MetadataRead),
                "updateMetadata" => Some(Step::MetadataUpdate),
                _ => None,
            };
        }
        _ => {}
    }
    let (_, sub) = rest_sub(path)?;
    let segs: Vec<&str> = sub.split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["query"]) => {
            let q = parse_form(query).and_then(|p| p.get("q").cloned());
            let object = q.as_deref().and_then(soql_object);
            if object.is_some_and(|o| o.eq_ignore_ascii_case("OauthToken")) {
                Some(Step::SoqlOauthToken)
            } else {
                Some(Step::Soql)
            }
        }
        ("GET", ["query", _]) => Some(Step::Soql),
        ("GET", ["apps", "oauth", "usage", _, "users"]) => Some(Step::UsageUsers),
        ("GET", ["apps", "oauth", "usage", _, _, "tokens"]) => Some(Step::UsageTokens),
        ("DELETE", ["apps", "oauth", "usage", _, "tokens"])
        | ("DELETE", ["apps", "oauth", "usage", _, _, "tokens"])
        | ("DELETE", ["apps", "oauth", "usage", _, _, "tokens", _]) => Some(Step::UsageRevoke),
        ("GET", ["apps", "oauth", "usage", ..]) => Some(Step::Usage),
        ("GET", ["apps", "oauth", "credentials", _]) => Some(Step::Credentials),
        ("GET", ["apps", "oauth", "credentials", _, _]) => Some(Step::ConsumerPart),
        ("GET", ["apps", "oauth", "credentials", _, _, "staged"]) => Some(Step::StagedGet),
        ("POST", ["apps", "oauth", "credentials", _, _, "staged"]) => Some(Step::StagedPost),
        ("PATCH", ["apps", "oauth", "credentials", _, _, "staged", _]) => Some(Step::StagedPatch),
        ("DELETE", ["apps", "oauth", "credentials", _, _, "staged", _]) => Some(Step::StagedDelete),
        _ => None,
    }
}

/// Salesforce's 500 for `step`'s kind of endpoint.
pub(super) fn server_error(step: Step) -> Answer {
    match step {
        Step::Token | Step::Revoke => oauth_error(500, "server_error", "internal server error"),
        Step::MetadataRead | Step::MetadataUpdate => {
            soap_fault("sf:UNKNOWN_EXCEPTION", UNKNOWN_EXCEPTION)
        }
        _ => rest_error(500, "UNKNOWN_EXCEPTION", UNKNOWN_EXCEPTION),
    }
}

/// Wait, without the state lock, until the test releases the held request or the fake stops.
pub(super) fn wait_for_release(state: &Mutex<State>, stop: &AtomicBool) {
    loop {
        {
            let mut st = state.lock().unwrap();
            if st.eca.release || stop.load(Ordering::Relaxed) {
                st.eca.release = false;
                st.eca.held = None;
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes that are not an HTTP response, so that the client fails at once (tiny_http would send
/// a 500 for a request dropped unanswered).
pub(super) fn no_valid_answer(request: tiny_http::Request) {
    let mut writer = request.into_writer();
    let _ = writer.write_all(b"\x00garbage\r\n\r\n");
    let _ = writer.flush();
}

// ----- the Connect REST resources -----

fn rest_error(status: u16, code: &str, message: &str) -> Answer {
    json_response(status, json!([{"errorCode": code, "message": message}]))
}

fn empty_answer(status: u16) -> Answer {
    Response::from_data(Vec::new()).with_status_code(status)
}

/// `NN.0` within the versions the fake serves.
fn api_version(version: &str) -> Option<u32> {
    let m = version.strip_suffix(".0")?.parse::<u32>().ok()?;
    ((OLDEST_API..=NEWEST_API).contains(&m) && version == format!("{m}.0")).then_some(m)
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON body that must be an object with exactly these string-valued keys (`{}` for none).
fn json_body(body: &str) -> Result<serde_json::Map<String, Value>, Answer> {
    let parser_error = |m: String| Err(rest_error(400, "JSON_PARSER_ERROR", &m));
    if body.trim().is_empty() {
        return parser_error("No content to map due to end-of-input at [line:1, column:0]".into());
    }
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => {
            parser_error("Cannot deserialize instance of object from a non-object value".into())
        }
        Err(e) => parser_error(format!("Unexpected character: {e}")),
    }
}

/// `…/apps/oauth/…` with a live token.
pub(super) fn rest(st: &mut State, r: &Req<'_>) -> Answer {
    let Some((version, sub)) = rest_sub(r.path) else {
        return not_found();
    };
    let Some(v) = api_version(version) else {
        return not_found();
    };
    let segs: Vec<&str> = sub.split('/').collect();
    let staged = segs.get(5) == Some(&"staged");
    let needs = match segs.get(2) {
        Some(&"usage") => 59,
        Some(&"credentials") if staged => 65,
        Some(&"credentials") => 60,
        _ => return not_found(),
    };
    if v < needs {
        return not_found();
    }
    let allowed = match segs.as_slice() {
        ["apps", "oauth", "usage"] | ["apps", "oauth", "usage", _, "users"] => "GET",
        ["apps", "oauth", "usage", _, "tokens"] => "DELETE",
        ["apps", "oauth", "usage", _, _, "tokens"] => "GET,DELETE",
        ["apps", "oauth", "usage", _, _, "tokens", _] => "DELETE",
        ["apps", "oauth", "credentials", _] | ["apps", "oauth", "credentials", _, _] => "GET",
        ["apps", "oauth", "credentials", _, _, "staged"] => "GET,POST",
        ["apps", "oauth", "credentials", _, _, "staged", _] => "PATCH,DELETE",
        _ => return not_found(),
    };
    if !allowed.split(',').any(|m| m == r.method) {
        return rest_error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!(
                "HTTP Method '{}' not allowed. Allowed are {allowed}",
                r.method
            ),
        );
    }
    if !r
        .accept
        .is_some_and(|a| a.split(',').any(|t| is_json(t.trim())))
    {
        return rest_error(
            406,
            "NOT_ACCEPTABLE",
            "This resource answers application/json only: send Accept: application/json",
        );
    }
    if !r.body.is_empty() && !is_json(r.content_type) {
        return rest_error(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            &format!(
                "Content-Type '{}' is not supported: send application/json",
                r.content_type
            ),
        );
    }
    if !caller_is_admin(st, r.bearer) {
        return rest_error(
            403,
            "INSUFFICIENT_ACCESS",
            "You don't have permission to manage External Client App credentials: you need External Client App Developer and View Client Secret.",
        );
    }
    let base = format!("/services/data/v{version}/apps/oauth/credentials");
    if segs[2] == "usage" {
        return usage(st, r, version, &segs);
    }
    // The part a consumer call asks for, before the toggle (which depends on it).
    let mut part = None;
    if segs.len() == 5 {
        let p = parse_form(r.query).and_then(|q| q.get("part").cloned());
        match p.as_deref() {
            Some(p @ ("key" | "secret" | "keyandsecret")) => part = Some(p.to_owned()),
            _ => {
                return rest_error(
                    400,
                    "INVALID_INPUT",
                    "Specify the part of the credentials to return: part=key, part=secret or part=keyandsecret",
                );
            }
        }
    }
    let secret_call = staged || part.as_deref().is_some_and(|p| p != "key");
    if secret_call && !st.eca.allows_secret_api {
        return rest_error(
            403,
            "FUNCTIONALITY_NOT_ENABLED",
            "This org doesn't allow consumer secret access through the REST API. In External Client App Settings, turn on access to consumer secrets through the REST API.",
        );
    }
    let quirks = st.eca.quirks;
    let now = st.eca.now();
    let app_id = segs[3];
    let Some(eca) = st.eca.eca(app_id) else {
        return not_found();
    };
    if segs.len() == 4 {
        let url = format!("{base}/{app_id}/{}", eca.consumer_id);
        return json_response(
            200,
            json!({"consumers": [{"id": eca.consumer_id, "key": eca.primary.key,
                    "name": eca.cfg.label, "url": url,
                    "stagedCredentialsUrl": format!("{url}/staged")}]}),
        );
    }
    if segs[4] != eca.consumer_id {
        return not_found();
    }
    let consumer_url = format!("{base}/{app_id}/{}", eca.consumer_id);
    let wrap = |obj: Value| {
        if quirks.staged_wrapped {
            json!({"stagedCredentials": [obj]})
        } else {
            obj
        }
    };
    match (r.method, segs.len()) {
        ("GET", 5) => {
            let (id, key, secret) = (&eca.consumer_id, &eca.primary.key, &eca.primary.secret);
            json_response(
                200,
                match part.as_deref() {
                    Some("key") => json!({"id": id, "key": key}),
                    Some("secret") => json!({"id": id, "secret": secret}),
                    _ => json!({"id": id, "key": key, "secret": secret}),
                },
            )
        }
        ("GET", 6) => match &eca.slot {
            Some(slot) => json_response(200, wrap(staged_json(&consumer_url, slot, now))),
            None if quirks.empty_staged_is_404 => not_found(),
            None => json_response(200, json!({"stagedCredentials": []})),
        },
        ("POST", 6) => {
            match json_body(r.body) {
                Ok(map) if map.is_empty() => {}
                Ok(map) => {
                    let field = map.keys().next().cloned().unwrap_or_default();
                    return rest_error(
                        400,
                        "JSON_PARSER_ERROR",
                        &format!("Unrecognized field \"{field}\": this resource takes no input"),
                    );
                }
                Err(answer) => return answer,
            }
            if eca.slot.is_some() {
                return rest_error(
                    400,
                    "INVALID_OPERATION",
                    "Can't create staged credentials: a staged credential already exists for this consumer. Delete it first.",
                );
            }
            let pair = new_pair(st);
            let id = format!("0Xs{}", alnum(st, b"staged", 15));
            let slot = Slot {
                id,
                pair,
                kind: SlotKind::Active,
                created: now,
                created_by: USER_ID.to_owned(),
                expires: now + STAGED_LIFETIME_SECS,
            };
            let body = wrap(staged_json(&consumer_url, &slot, now));
            st.eca.eca_mut(app_id).unwrap().slot = Some(slot);
            json_response(201, body)
        }
        ("PATCH", 7) => {
            let Some(slot) = eca.slot.as_ref().filter(|s| s.id == segs[6]) else {
                return not_found();
            };
            let map = match json_body(r.body) {
                Ok(map) => map,
                Err(answer) => return answer,
            };
            if let Some(field) = map.keys().find(|k| *k != "command") {
                return rest_error(
                    400,
                    "JSON_PARSER_ERROR",
                    &format!("Unrecognized field \"{field}\""),
                );
            }
            if map.get("command") != Some(&json!("rotate")) {
                return rest_error(
                    400,
                    "INVALID_INPUT",
                    "Invalid command: the only command is \"rotate\"",
                );
            }
            if slot.state(now) != "Active" {
                return rest_error(
                    400,
                    "INVALID_OPERATION",
                    &format!(
                        "Can't rotate: the staged credential is {}; only an Active staged credential can be promoted.",
                        slot.state(now)
                    ),
                );
            }
            let id = if quirks.rotated_gets_new_id {
                format!("0Xs{}", alnum(st, b"staged", 15))
            } else {
                slot.id.clone()
            };
            let eca = st.eca.eca_mut(app_id).unwrap();
            let staged = eca.slot.take().unwrap();
            let old = std::mem::replace(&mut eca.primary, staged.pair);
            let slot = Slot {
                id,
                pair: old,
                kind: SlotKind::Rotated,
                created: now,
                created_by: USER_ID.to_owned(),
                expires: now + STAGED_LIFETIME_SECS,
            };
            let body = wrap(staged_json(&consumer_url, &slot, now));
            eca.slot = Some(slot);
            json_response(200, body)
        }
        ("DELETE", 7) => {
            let Some(slot) = eca.slot.as_ref().filter(|s| s.id == segs[6]) else {
                return not_found();
            };
            let key = slot.pair.key.clone();
            st.eca.eca_mut(app_id).unwrap().slot = None;
            // Refresh tokens bound to their pair die with it (for good: revoke no longer
            // knows them; redeeming them is invalid_grant).
            if quirks.refresh_bound_to_pair {
                for (r, (_, k, dead)) in st.eca.refresh.iter_mut() {
                    if *k == key {
                        *dead = true;
                        st.refresh_tokens.remove(r);
                    }
                }
            }
            empty_answer(204)
        }
        _ => not_found(),
    }
}

fn staged_json(consumer_url: &str, slot: &Slot, now: i64) -> Value {
    json!({
        "id": slot.id,
        "key": slot.pair.key,
        "secret": slot.pair.secret,
        "state": slot.state(now),
        "createdBy": slot.created_by,
        "createdDate": iso(slot.created),
        "expirationDate": iso(slot.expires),
        "url": format!("{consumer_url}/staged/{}", slot.id),
        "stagedCredentialsUrl": format!("{consumer_url}/staged"),
    })
}

// ----- who holds OAuth tokens: the ECAs' usage resources and the OauthToken object -----

/// The AppName of the main (admin) app's OauthToken rows: every access token issued to it has
/// one, for [`USER_ID`], whose DeleteToken revokes that access token.
pub const ADMIN_APP_LABEL: &str = "Admin Tools";
/// The username of [`OTHER_USER_ID`].
pub const OTHER_USERNAME: &str = "setup.user@acme.example";
/// A SOQL answer holds at most this many OauthToken records, with `done: true`: the rows
/// beyond it are dropped without a word (count first, and split by UserId).
pub const OAUTH_TOKEN_CAP: usize = 2_500;
/// Records per batch of a paged SOQL answer (`done: false` and `nextRecordsUrl` when more).
pub const QUERY_BATCH: usize = 2_000;
/// `pageSize` of the usage users list: its default and its maximum.
pub const USAGE_PAGE_SIZE: usize = 100;
pub const USAGE_PAGE_SIZE_MAX: usize = 1_000;
/// OauthToken's fields, as SOQL names them.
const OAUTH_TOKEN_FIELDS: [&str; 8] = [
    "Id",
    "AppName",
    "UserId",
    "CreatedDate",
    "LastUsedDate",
    "UseCount",
    "DeleteToken",
    "AppMenuItemId",
];

/// One OAuth token of an External Client App, live now (the usage resources).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageToken {
    /// The last segment of its `revocationUrl`.
    pub token_id: String,
    pub app_id: String,
    pub user_id: String,
    pub username: String,
    /// Whole days before now on the fake's clock; None: never used.
    pub last_used_days_ago: Option<i64>,
    pub use_count: u64,
    /// `JWT` or `Opaque`.
    pub format: &'static str,
}

/// One row of OauthToken (a classic connected app's token), live now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OauthTokenRow {
    /// The connected app's label.
    pub app_name: String,
    pub user_id: String,
    /// Whole days before now on the fake's clock; None: never used.
    pub last_used_days_ago: Option<i64>,
    pub use_count: u64,
    pub delete_token: String,
}

/// What [`FakeSalesforce::load_audit_data_set`] added to the org.
#[derive(Clone, Debug)]
pub struct AuditDataSet {
    /// The ECAs, in this order: [0] used by all 200 users and by [`USER_ID`] and
    /// [`OTHER_USER_ID`] (202 users: pages 0, 1 and 2 of 100, then an empty page 3), [1] by
    /// exactly 100 users (one full page, then an empty one), [2..8] by a few users each, [8]
    /// by none but listed in `GET apps/oauth/usage`, [9] by none and not listed.
    pub eca_ids: Vec<EcaIds>,
    /// Their developer names, in the same order.
    pub eca_names: Vec<String>,
    /// The 20 classic connected apps' labels (OauthToken's AppName).
    pub classic_labels: Vec<String>,
    /// The 200 users it made: (id, username).
    pub users: Vec<(String, String)>,
    /// How many usage tokens it added.
    pub usage_tokens: usize,
    /// How many OauthToken rows it added (5,000).
    pub oauth_tokens: usize,
}

/// One ECA token (the usage resources).
struct UsageTok {
    token_id: String,
    app_id: String,
    user_id: String,
    username: String,
    /// Seconds on the fake's clock.
    initial: i64,
    last_used: Option<i64>,
    use_count: u64,
    format: &'static str,
    /// The access token it stands for, when the fake issued one (revoking kills it).
    access: Option<String>,
}

/// One OauthToken row.
struct OauthTok {
    app_name: String,
    user_id: String,
    created: i64,
    last_used: Option<i64>,
    use_count: u64,
    delete_token: String,
    menu_item: String,
    /// The access token it stands for, when the fake issued one (revoking kills it).
    access: Option<String>,
}

/// SplitMix64's finaliser: a bijection of u64, so distinct inputs give distinct outputs.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `v` as 11 base-62 digits (fixed width, so distinct values give distinct strings).
fn base62(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 11];
    for c in out.iter_mut().rev() {
        *c = DIGITS[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// A step of the data set's linear congruential generator (Knuth's MMIX constants).
fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *x >> 33
}

/// `2026-11-30T14:00:00.000+0000`: a SOQL datetime as the REST API writes it.
fn soql_time(ts: i64) -> String {
    format!("{}+0000", iso(ts).trim_end_matches('Z'))
}

/// (created, last used) for a token last used `days_ago` days before `now` (None: never);
/// created 30 days before its last use.
fn token_times(now: i64, days_ago: Option<i64>) -> (i64, Option<i64>) {
    let last = days_ago.map(|d| now - d * 86_400);
    (last.unwrap_or(now) - 30 * 86_400, last)
}

fn days_before(now: i64, t: Option<i64>) -> Option<i64> {
    t.map(|t| (now - t).div_euclid(86_400))
}

/// A Salesforce id of 15 or 18 letters and digits.
fn is_sf_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether the id literal `given` (15 or 18 characters) names the 18-character `id`.
fn same_id(given: &str, id: &str) -> bool {
    if given.len() == 15 {
        id.get(..15) == Some(given)
    } else {
        given.eq_ignore_ascii_case(id)
    }
}

impl Org {
    /// `len` (≥ 11) letters and digits, never the same twice in this org.
    fn opaque(&mut self, len: usize) -> String {
        self.audit_serial += 1;
        let mut k = splitmix(self.audit_serial);
        let mut out = base62(k);
        while out.len() < len {
            k = splitmix(k);
            out.push_str(&base62(k));
        }
        out.truncate(len);
        out
    }

    fn new_user_id(&mut self) -> String {
        self.user_serial += 1;
        format!("0055g0000{:06}AAA", self.user_serial)
    }

    fn menu_item(&mut self, app_name: &str) -> String {
        let n = self.menu_items.len() + 1;
        self.menu_items
            .entry(app_name.to_owned())
            .or_insert_with(|| format!("0Pp5g0000{n:06}AAA"))
            .clone()
    }

    /// Adds an OauthToken row; its DeleteToken.
    fn push_oauth(
        &mut self,
        app_name: &str,
        user_id: &str,
        times: (i64, Option<i64>),
        use_count: u64,
        access: Option<String>,
    ) -> String {
        let delete_token = self.opaque(32);
        let menu_item = self.menu_item(app_name);
        self.oauth.push(OauthTok {
            app_name: app_name.to_owned(),
            user_id: user_id.to_owned(),
            created: times.0,
            last_used: times.1,
            use_count,
            delete_token: delete_token.clone(),
            menu_item,
            access,
        });
        delete_token
    }

    /// Adds a usage token; its id.
    #[allow(clippy::too_many_arguments)]
    fn push_usage(
        &mut self,
        app_id: &str,
        user_id: &str,
        username: &str,
        times: (i64, Option<i64>),
        use_count: u64,
        format: &'static str,
        access: Option<String>,
    ) -> String {
        let token_id = self.opaque(20);
        self.usage.push(UsageTok {
            token_id: token_id.clone(),
            app_id: app_id.to_owned(),
            user_id: user_id.to_owned(),
            username: username.to_owned(),
            initial: times.0,
            last_used: times.1,
            use_count,
            format,
            access,
        });
        token_id
    }
}

/// The id of the user `username` (the admin is [`USER_ID`]), if the org has one.
fn user_id_of(st: &State, username: &str) -> Option<String> {
    if username == st.app.username {
        return Some(USER_ID.to_owned());
    }
    let mut users = st.eca.users.iter();
    users.find(|(_, u)| u == username).map(|(id, _)| id.clone())
}

/// The id of the user `username`, made if the org has none yet.
fn ensure_user(st: &mut State, username: &str) -> String {
    if let Some(id) = user_id_of(st, username) {
        return id;
    }
    let id = st.eca.new_user_id();
    st.eca.users.push((id.clone(), username.to_owned()));
    id
}

fn is_user(st: &State, id: &str) -> bool {
    id == USER_ID || st.eca.users.iter().any(|(i, _)| i == id)
}

/// Every user of the org, the admin first: (id, username).
fn all_users(st: &State) -> Vec<(String, String)> {
    let mut out = vec![(USER_ID.to_owned(), st.app.username.clone())];
    out.extend(st.eca.users.iter().cloned());
    out
}

/// The user whose session `bearer` is (its app's user).
fn caller_user(st: &State, bearer: Option<&str>) -> Option<String> {
    let username = match bearer.and_then(|b| st.eca.token_apps.get(b)) {
        Some(TokenApp::Eca(id)) => st.eca.eca(id)?.cfg.username.clone(),
        Some(TokenApp::Classic(name)) => {
            let mut c = st.eca.classics.iter();
            c.find(|c| &c.app.developer_name == name)?
                .app
                .username
                .clone()
        }
        _ => st.app.username.clone(),
    };
    user_id_of(st, &username)
}

/// An access token was just issued to `by`: it shows at Salesforce as an OauthToken row (the
/// main app, as [`ADMIN_APP_LABEL`], and the extra connected apps, by label) or as a usage
/// token of the ECA, for the app's user, last used now; revoking that kills the access token.
pub(super) fn record_session(st: &mut State, access: &str, by: &TokenApp) {
    let now = st.eca.now();
    let times = (now, Some(now));
    let access = Some(access.to_owned());
    let (label, username) = match by {
        TokenApp::Main => (ADMIN_APP_LABEL.to_owned(), st.app.username.clone()),
        TokenApp::Classic(name) => {
            let mut c = st.eca.classics.iter();
            let Some(c) = c.find(|c| &c.app.developer_name == name) else {
                return;
            };
            (c.app.label.clone(), c.app.username.clone())
        }
        TokenApp::Eca(id) => {
            let Some(username) = st.eca.eca(id).map(|e| e.cfg.username.clone()) else {
                return;
            };
            let user_id = ensure_user(st, &username);
            let format = if st.jwt_access_tokens {
                "JWT"
            } else {
                "Opaque"
            };
            st.eca
                .push_usage(id, &user_id, &username, times, 1, format, access);
            return;
        }
    };
    let user_id = ensure_user(st, &username);
    st.eca.push_oauth(&label, &user_id, times, 1, access);
}

fn kill_access(st: &mut State, access: Option<String>) {
    if let Some(a) = access {
        st.access_tokens.retain(|t| *t != a);
    }
}

/// `POST /services/oauth2/revoke` with an OauthToken's DeleteToken: the row goes, and the
/// access token it stands for dies. False when no row has it.
pub(super) fn revoke_delete_token(st: &mut State, token: &str) -> bool {
    let Some(i) = st.eca.oauth.iter().position(|r| r.delete_token == token) else {
        return false;
    };
    let row = st.eca.oauth.remove(i);
    kill_access(st, row.access);
    true
}

impl FakeSalesforce {
    /// Give the ECA `app_id` an OAuth token of the user `user_id` (`005…`, 18 characters; a
    /// user the org lacks is added with `username`), last used `last_used_days_ago` days ago
    /// on the fake's clock (None: never). Returns its token id (the last segment of its
    /// `revocationUrl`). Panics on an unknown app id.
    pub fn add_usage_token(
        &self,
        app_id: &str,
        user_id: &str,
        username: &str,
        last_used_days_ago: Option<i64>,
        use_count: u64,
    ) -> String {
        let mut st = self.state.lock().unwrap();
        assert!(st.eca.eca(app_id).is_some(), "no such ECA: {app_id}");
        assert!(is_sf_id(user_id), "not a user id: {user_id}");
        if !is_user(&st, user_id) {
            st.eca.users.push((user_id.to_owned(), username.to_owned()));
        }
        let times = token_times(st.eca.now(), last_used_days_ago);
        st.eca
            .push_usage(app_id, user_id, username, times, use_count, "Opaque", None)
    }

    /// Add an OauthToken row: a token of the connected app labelled `app_name` held by the user
    /// `user_id` (a user the org lacks is added, as `user.<id>@acme.example`). Returns its
    /// DeleteToken.
    pub fn add_oauth_token(
        &self,
        app_name: &str,
        user_id: &str,
        last_used_days_ago: Option<i64>,
        use_count: u64,
    ) -> String {
        let mut st = self.state.lock().unwrap();
        assert!(is_sf_id(user_id), "not a user id: {user_id}");
        if !is_user(&st, user_id) {
            let username = format!("user.{}@acme.example", user_id.to_ascii_lowercase());
            st.eca.users.push((user_id.to_owned(), username));
        }
        let times = token_times(st.eca.now(), last_used_days_ago);
        st.eca.push_oauth(app_name, user_id, times, use_count, None)
    }

    /// Add `n` users to the org (`user.NNNN@acme.example`); their (id, username).
    pub fn add_users(&self, n: usize) -> Vec<(String, String)> {
        let mut st = self.state.lock().unwrap();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = st.eca.new_user_id();
            let username = format!("user.{}@acme.example", &id[9..15]);
            st.eca.users.push((id.clone(), username.clone()));
            out.push((id, username));
        }
        out
    }

    /// Every user of the org, the admin ([`USER_ID`]) first: (id, username).
    pub fn users(&self) -> Vec<(String, String)> {
        all_users(&self.state.lock().unwrap())
    }

    /// The ECAs' OAuth tokens live now, in issue order.
    pub fn usage_tokens(&self) -> Vec<UsageToken> {
        let st = self.state.lock().unwrap();
        let now = st.eca.now();
        let tokens = st.eca.usage.iter();
        tokens
            .map(|t| UsageToken {
                token_id: t.token_id.clone(),
                app_id: t.app_id.clone(),
                user_id: t.user_id.clone(),
                username: t.username.clone(),
                last_used_days_ago: days_before(now, t.last_used),
                use_count: t.use_count,
                format: t.format,
            })
            .collect()
    }

    /// The OauthToken rows live now, in issue order.
    pub fn oauth_tokens(&self) -> Vec<OauthTokenRow> {
        let st = self.state.lock().unwrap();
        let now = st.eca.now();
        let rows = st.eca.oauth.iter();
        rows.map(|r| OauthTokenRow {
            app_name: r.app_name.clone(),
            user_id: r.user_id.clone(),
            last_used_days_ago: days_before(now, r.last_used),
            use_count: r.use_count,
            delete_token: r.delete_token.clone(),
        })
        .collect()
    }

    /// An org as an audit meets it: 30 apps (10 ECAs, 20 classic connected apps), 200 users,
    /// 5,000 OauthToken rows over those users and the classic apps (10 heavy users hold about
    /// 140 each, the others about 19; none more than 2,500), ECA tokens with several pages of
    /// users, last uses from today to over a year ago, some never used. Deterministic (an LCG
    /// with a fixed seed) but for the ids [`FakeSalesforce::add_eca`] draws.
    pub fn load_audit_data_set(&self) -> AuditDataSet {
        const ECAS: [&str; 10] = [
            "Partner_Portal",
            "Mobile_Field_Service",
            "Billing_Sync",
            "Data_Warehouse_ETL",
            "Support_Chatbot",
            "Marketing_Automation",
            "HR_Onboarding",
            "Inventory_Feed",
            "Quote_Generator",
            "Legacy_Bridge",
        ];
        const CLASSICS: [&str; 20] = [
            "Salesforce CLI",
            "Data Loader",
            "Workbench",
            "Tableau CRM",
            "Slack for Salesforce",
            "Outlook Integration",
            "MuleSoft Connector",
            "Jira Cloud",
            "DocuSign",
            "Zapier",
            "HubSpot Sync",
            "Marketing Cloud Connect",
            "Power BI",
            "Gong",
            "Okta Provisioning",
            "Segment",
            "Heroku Connect",
            "Postman",
            "Dataloader.io",
            "Legacy ETL",
        ];
        let mut eca_ids = Vec::new();
        for (i, name) in ECAS.iter().enumerate() {
            eca_ids.push(self.add_eca(EcaConfig {
                developer_name: (*name).to_owned(),
                label: name.replace('_', " "),
                username: format!("{}.integration@acme.example", name.to_ascii_lowercase()),
                certificate_pem: None,
                listed_in_usage: i == 8,
            }));
        }
        for (i, label) in CLASSICS.iter().enumerate() {
            let name: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            self.add_connected_app(ClassicApp {
                developer_name: name,
                label: (*label).to_owned(),
                consumer_key: format!("3MVG9AUDIT{i:02}.consumer.key.of.a.classic.app"),
                consumer_secret: format!("AUDIT{i:02}SECRET"),
                username: format!("classic{i:02}.integration@acme.example"),
                certificate_pem: None,
            });
        }
        let mut st = self.state.lock().unwrap();
        let now = st.eca.now();
        let admin_username = st.app.username.clone();
        let org = &mut st.eca;
        let users: Vec<(String, String)> = (0..200)
            .map(|i| {
                let id = org.new_user_id();
                (id, format!("user{i:03}@acme.example"))
            })
            .collect();
        org.users.extend(users.iter().cloned());
        let mut seed = 0x5EED_A0D1_7000_0001u64;
        let days_ago = |x: &mut u64| match lcg(x) % 20 {
            0 | 1 => None,
            2..=5 => Some(91 + (lcg(x) % 400) as i64),
            6 => Some(31 + (lcg(x) % 60) as i64),
            _ => Some((lcg(x) % 30) as i64),
        };
        // OauthToken: a quarter of the rows go to 10 heavy users, the rest anywhere.
        let total_rows = 5_000;
        org.oauth.reserve(total_rows);
        for _ in 0..total_rows {
            let r = lcg(&mut seed);
            let user = if r.is_multiple_of(4) {
                (lcg(&mut seed) % 10) as usize
            } else {
                (lcg(&mut seed) % 200) as usize
            };
            let app = CLASSICS[(lcg(&mut seed) % 20) as usize];
            let last = days_ago(&mut seed);
            let uses = last.map_or(0, |_| 1 + lcg(&mut seed) % 5_000);
            org.push_oauth(app, &users[user].0, token_times(now, last), uses, None);
        }
        // ECA tokens: [0] every user, the admin and the other user (some twice); [1] exactly
        // 100 users; [2..8] a few users each; [8] and [9] none.
        let mut holders: Vec<Vec<(String, String)>> = vec![Vec::new(); 10];
        holders[0] = users.clone();
        holders[0].push((USER_ID.to_owned(), admin_username));
        holders[0].push((OTHER_USER_ID.to_owned(), OTHER_USERNAME.to_owned()));
        holders[1] = users[50..150].to_vec();
        for h in holders.iter_mut().take(8).skip(2) {
            let n = 1 + (lcg(&mut seed) % 20) as usize;
            let start = (lcg(&mut seed) % 180) as usize;
            *h = users[start..start + n].to_vec();
        }
        let mut usage_tokens = 0;
        for (i, h) in holders.iter().enumerate() {
            for (k, (user_id, username)) in h.iter().enumerate() {
                let copies = if i == 0 && k.is_multiple_of(7) { 2 } else { 1 };
                for _ in 0..copies {
                    let last = days_ago(&mut seed);
                    let uses = last.map_or(0, |_| 1 + lcg(&mut seed) % 800);
                    let format = if lcg(&mut seed).is_multiple_of(3) {
                        "JWT"
                    } else {
                        "Opaque"
                    };
                    let times = token_times(now, last);
                    let app_id = &eca_ids[i].app_id;
                    org.push_usage(app_id, user_id, username, times, uses, format, None);
                    usage_tokens += 1;
                }
            }
        }
        AuditDataSet {
            eca_ids,
            eca_names: ECAS.iter().map(|s| (*s).to_owned()).collect(),
            classic_labels: CLASSICS.iter().map(|s| (*s).to_owned()).collect(),
            users,
            usage_tokens,
            oauth_tokens: total_rows,
        }
    }
}

/// `…/apps/oauth/usage[/…]`, the caller checked (admin, `Accept`, method).
fn usage(st: &mut State, r: &Req<'_>, version: &str, segs: &[&str]) -> Answer {
    let base = format!("/services/data/v{version}/apps/oauth/usage");
    if segs.len() == 3 {
        // An app is listed once it has issued a token (or when told to be).
        let with_label = st.eca.quirks.usage_has_label;
        let has_tokens = |id: &str| st.eca.usage.iter().any(|t| t.app_id == id);
        let apps: Vec<Value> = st
            .eca
            .ecas
            .iter()
            .filter(|e| e.cfg.listed_in_usage || has_tokens(&e.app_id))
            .map(|e| {
                let mut a = json!({"identifier": e.app_id, "developerName": e.cfg.developer_name});
                if with_label {
                    a["label"] = json!(e.cfg.label);
                }
                a
            })
            .collect();
        return json_response(200, json!({"apps": apps}));
    }
    let app_id = segs[3];
    let Some(eca) = st.eca.eca(app_id) else {
        return not_found();
    };
    let developer_name = eca.cfg.developer_name.clone();
    match (r.method, &segs[4..]) {
        ("GET", ["users"]) => {
            let (page, size) = match page_params(r.query) {
                Ok(p) => p,
                Err(answer) => return answer,
            };
            // The users holding a token of the app, in the order they got their first.
            let mut seen = std::collections::HashSet::new();
            let users: Vec<Value> = st
                .eca
                .usage
                .iter()
                .filter(|t| t.app_id == app_id && seen.insert(t.user_id.as_str()))
                .skip(page.saturating_mul(size))
                .take(size)
                .map(|t| json!({"userIdentifier": t.user_id, "username": t.username}))
                .collect();
            // Present even on the last page, and past it (the documented quirk).
            let next = format!(
                "{base}/{app_id}/users?page={}&pageSize={size}",
                page.saturating_add(1)
            );
            json_response(200, json!({"users": users, "nextPageUrl": next}))
        }
        ("GET", [user, "tokens"]) => {
            if !is_user(st, user) {
                return not_found();
            }
            let tokens: Vec<Value> = st
                .eca
                .usage
                .iter()
                .filter(|t| t.app_id == app_id && t.user_id == *user)
                .map(|t| {
                    json!({
                        "appDeveloperName": developer_name,
                        "appIdentifier": t.app_id,
                        "userIdentifier": t.user_id,
                        "username": t.username,
                        "initialConnectionAt": iso(t.initial),
                        "lastUsedAt": t.last_used.map(iso),
                        "useCount": t.use_count,
                        "accessTokenFormat": t.format,
                        "revocationUrl": format!("{base}/{app_id}/{}/tokens/{}", t.user_id, t.token_id),
                    })
                })
                .collect();
            json_response(200, json!({"tokens": tokens}))
        }
        ("DELETE", ["tokens"]) => revoke_usage(st, |t| t.app_id == app_id),
        ("DELETE", [user, "tokens"]) => {
            revoke_usage(st, |t| t.app_id == app_id && t.user_id == *user)
        }
        ("DELETE", [user, "tokens", id]) => revoke_usage(st, |t| {
            t.app_id == app_id && t.user_id == *user && t.token_id == *id
        }),
        _ => not_found(),
    }
}

/// `page` (0-based, default 0) and `pageSize` (1 to 1,000, default 100) of the users list.
fn page_params(query: &str) -> Result<(usize, usize), Answer> {
    let invalid = |m: String| rest_error(400, "INVALID_INPUT", &m);
    let Some(q) = parse_form(query) else {
        return Err(invalid("Malformed query string".into()));
    };
    let number = |name: &str, default: usize| match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            invalid(format!(
                "Invalid value for {name}: '{v}' is not a non-negative integer"
            ))
        }),
    };
    let page = number("page", 0)?;
    let size = number("pageSize", USAGE_PAGE_SIZE)?;
    if !(1..=USAGE_PAGE_SIZE_MAX).contains(&size) {
        return Err(invalid(format!(
            "Invalid value for pageSize: {size}. Specify a value from 1 to {USAGE_PAGE_SIZE_MAX}."
        )));
    }
    Ok((page, size))
}

/// Revoke the usage tokens `pick` chooses (their access tokens die): 204, or 404 NOT_FOUND when
/// it chooses none (nothing left to revoke).
fn revoke_usage(st: &mut State, pick: impl Fn(&UsageTok) -> bool) -> Answer {
    let (gone, kept): (Vec<UsageTok>, Vec<UsageTok>) = std::mem::take(&mut st.eca.usage)
        .into_iter()
        .partition(|t| pick(t));
    st.eca.usage = kept;
    if gone.is_empty() {
        return not_found();
    }
    for t in gone {
        kill_access(st, t.access);
    }
    empty_answer(204)
}

// ----- SOQL: OauthToken, and the User list -----

/// A query of the audit tables.
enum AuditQuery {
    /// `SELECT COUNT() FROM OauthToken [WHERE UserId = '…']`
    Count(Option<String>),
    /// `SELECT field, … FROM OauthToken [WHERE UserId = '…']` (canonical field names)
    Rows(Vec<&'static str>, Option<String>),
    /// `SELECT Id, Username FROM User`
    Users,
}

/// SOQL `q` in words: white space normalised, `,` and `=` words of their own.
fn soql_words(q: &str) -> Vec<String> {
    let spaced = q.replace(',', " , ").replace('=', " = ");
    spaced.split_whitespace().map(str::to_owned).collect()
}

/// The object a `SELECT … FROM Object …` query names.
fn soql_object(q: &str) -> Option<String> {
    let words = soql_words(q);
    if !words.first()?.eq_ignore_ascii_case("select") {
        return None;
    }
    let from = words.iter().position(|w| w.eq_ignore_ascii_case("from"))?;
    words.get(from + 1).cloned()
}

/// What `q` asks of OauthToken or the User list (None: a query for fake_sf's generic handler);
/// Err((errorCode, message)) for an OauthToken query the fake refuses.
fn audit_soql(q: &str) -> Option<Result<AuditQuery, (&'static str, String)>> {
    let object = soql_object(q)?;
    let words = soql_words(q);
    let from = words.iter().position(|w| w.eq_ignore_ascii_case("from"))?;
    let (select, rest) = (&words[1..from], &words[from + 2..]);
    let is = |w: &[String], expected: &[&str]| {
        w.len() == expected.len()
            && w.iter()
                .zip(expected)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    if object.eq_ignore_ascii_case("User") {
        return (is(select, &["Id", ",", "Username"]) && rest.is_empty())
            .then_some(Ok(AuditQuery::Users));
    }
    if !object.eq_ignore_ascii_case("OauthToken") {
        return None;
    }
    let malformed = |m: String| Some(Err(("MALFORMED_QUERY", m)));
    let user = match rest {
        [] => None,
        [w, f, eq, literal]
            if is(
                &[w.clone(), f.clone(), eq.clone()],
                &["WHERE", "UserId", "="],
            ) =>
        {
            let Some(id) = literal
                .strip_prefix('\'')
                .and_then(|l| l.strip_suffix('\''))
            else {
                return malformed(format!("unexpected token: '{literal}'"));
            };
            if !is_sf_id(id) {
                return Some(Err((
                    "INVALID_QUERY_FILTER_OPERATOR",
                    format!("invalid ID field: {id}"),
                )));
            }
            Some(id.to_owned())
        }
        _ => {
            return malformed(format!(
                "fake Salesforce: OauthToken queries may end with WHERE UserId = '<id>' only, not '{}'",
                rest.join(" ")
            ));
        }
    };
    if is(select, &["COUNT()"]) {
        return Some(Ok(AuditQuery::Count(user)));
    }
    let mut fields = Vec::new();
    for (i, w) in select.iter().enumerate() {
        if i % 2 == 1 {
            if w != "," {
                return malformed(format!("unexpected token: '{w}'"));
            }
            continue;
        }
        let Some(f) = OAUTH_TOKEN_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(w))
        else {
            return Some(Err((
                "INVALID_FIELD",
                format!(
                    "No such column '{w}' on entity 'OauthToken'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            )));
        };
        if fields.contains(f) {
            return malformed(format!("duplicate field selected: {f}"));
        }
        fields.push(*f);
    }
    if fields.is_empty() || select.len().is_multiple_of(2) {
        return malformed(format!("unexpected token: '{}'", select.join(" ")));
    }
    Some(Ok(AuditQuery::Rows(fields, user)))
}

/// Whether fake_sf's query should leave this request to [`audit_query`]: an OauthToken query,
/// `SELECT Id, Username FROM User`, or the next batch of a paged answer (`query/{locator}`).
pub(super) fn is_audit_query(path: &str, query: &str) -> bool {
    match rest_sub(path) {
        Some((_, "query")) => parse_form(query)
            .and_then(|p| p.get("q").cloned())
            .is_some_and(|q| audit_soql(&q).is_some()),
        Some((_, sub)) => sub.starts_with("query/"),
        None => false,
    }
}

/// `GET …/query?q=…` for OauthToken or the User list, and `GET …/query/{locator}`.
pub(super) fn audit_query(st: &mut State, r: &Req<'_>) -> Answer {
    let Some((version, sub)) = rest_sub(r.path) else {
        return not_found();
    };
    if api_version(version).is_none() {
        return not_found();
    }
    let base = format!("/services/data/v{version}");
    if let Some(locator) = sub.strip_prefix("query/") {
        return next_batch(st, &base, locator);
    }
    let bad = |code: &str, m: &str| rest_error(400, code, m);
    let Some(q) = parse_form(r.query).and_then(|p| p.get("q").cloned()) else {
        return bad("MALFORMED_QUERY", "malformed query string");
    };
    let (fields, user) = match audit_soql(&q) {
        None => return not_found(),
        Some(Err((code, m))) => return bad(code, &m),
        Some(Ok(AuditQuery::Users)) => {
            let users = all_users(st);
            return users_batch(st, &base, None, users, 0);
        }
        Some(Ok(AuditQuery::Count(user))) => (None, user),
        Some(Ok(AuditQuery::Rows(fields, user))) => (Some(fields), user),
    };
    // Without "Customize Application" a user sees only their own tokens.
    let everyone = caller_is_admin(st, r.bearer);
    let me = caller_user(st, r.bearer);
    let rows = st.eca.oauth.iter().filter(|row| {
        (everyone || me.as_deref() == Some(row.user_id.as_str()))
            && user.as_deref().is_none_or(|u| same_id(u, &row.user_id))
    });
    let Some(fields) = fields else {
        let n = rows.count();
        return json_response(200, json!({"totalSize": n, "done": true, "records": []}));
    };
    let records: Vec<Value> = rows
        .take(OAUTH_TOKEN_CAP)
        .map(|row| {
            let mut rec = serde_json::Map::new();
            rec.insert("attributes".into(), json!({"type": "OauthToken"}));
            rec.insert("Id".into(), Value::Null);
            for f in &fields {
                let v = match *f {
                    "AppName" => json!(row.app_name),
                    "UserId" => json!(row.user_id),
                    "CreatedDate" => json!(soql_time(row.created)),
                    "LastUsedDate" => json!(row.last_used.map(soql_time)),
                    "UseCount" => json!(row.use_count),
                    "DeleteToken" => json!(row.delete_token),
                    "AppMenuItemId" => json!(row.menu_item),
                    _ => Value::Null,
                };
                rec.insert((*f).to_owned(), v);
            }
            Value::Object(rec)
        })
        .collect();
    json_response(
        200,
        json!({"totalSize": records.len(), "done": true, "records": records}),
    )
}

/// One batch of the User list from `offset`; a query id is made for the rest when more.
fn users_batch(
    st: &mut State,
    base: &str,
    query_id: Option<String>,
    users: Vec<(String, String)>,
    offset: usize,
) -> Answer {
    let end = (offset + QUERY_BATCH).min(users.len());
    let records: Vec<Value> = users[offset..end]
        .iter()
        .map(|(id, username)| {
            json!({"attributes": {"type": "User", "url": format!("{base}/sobjects/User/{id}")},
                   "Id": id, "Username": username})
        })
        .collect();
    let mut answer =
        json!({"totalSize": users.len(), "done": end == users.len(), "records": records});
    if end < users.len() {
        let id = match query_id {
            Some(id) => id,
            None => {
                let id = format!("01g{}", st.eca.opaque(15));
                st.eca.cursors.insert(id.clone(), users);
                id
            }
        };
        answer["nextRecordsUrl"] = json!(format!("{base}/query/{id}-{end}"));
    }
    json_response(200, answer)
}

/// `GET …/query/{queryId}-{offset}`.
fn next_batch(st: &mut State, base: &str, locator: &str) -> Answer {
    let invalid = || rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    let Some((id, offset)) = locator.rsplit_once('-') else {
        return invalid();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return invalid();
    };
    let Some(users) = st.eca.cursors.get(id).cloned() else {
        return invalid();
    };
    if offset == 0 || offset >= users.len() {
        return invalid();
    }
    users_batch(st, base, Some(id.to_owned()), users, offset)
}

// ----- a small XML reader (untrusted input: no DTD, bounded depth, strict well-formedness) -----

#[derive(Debug)]
pub(super) struct Element {
    ns: String,
    local: String,
    /// (namespace, local name, value)
    attrs: Vec<(String, String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Elem(Element),
    Text(String),
}

impl Element {
    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Elem(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn attr(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n == ns && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    /// The text of a simple-content element (one with child elements has none).
    fn text(&self) -> Result<String, String> {
        let mut out = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Elem(e) => {
                    return Err(format!(
                        "element {} has unexpected child {}",
                        self.local, e.local
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Whether text content other than white space sits between its child elements.
    fn has_mixed_text(&self) -> bool {
        self.children
            .iter()
            .any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()))
    }

    fn nil(&self) -> bool {
        matches!(self.attr(XSI, "nil"), Some("true" | "1"))
    }
}

const MAX_DEPTH: usize = 32;

struct XmlParser<'a> {
    s: &'a str,
    i: usize,
    /// In-scope namespace declarations, innermost last: (prefix, uri), "" = default.
    scopes: Vec<Vec<(String, String)>>,
}

/// Parse one XML document (XML 1.0, namespaces resolved).
pub(super) fn parse_xml(text: &str) -> Result<Element, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(c) = text
        .chars()
        .find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(format!("invalid character U+{:04X}", c as u32));
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut p = XmlParser {
        s: &text,
        i: 0,
        scopes: Vec::new(),
    };
    if p.rest().starts_with("<?xml") {
        let end = p.rest().find("?>").ok_or("unterminated XML declaration")?;
        p.i += end + 2;
    }
    p.misc()?;
    if !p.rest().starts_with('<') {
        return Err("content is not allowed in prolog".into());
    }
    let root = p.element(0)?;
    p.misc()?;
    if p.i != p.s.len() {
        return Err("content is not allowed after the document element".into());
    }
    Ok(root)
}

impl XmlParser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.i += prefix.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, prefix: &str) -> Result<(), String> {
        if self.eat(prefix) {
            Ok(())
        } else {
            Err(format!("expected '{prefix}' at byte {}", self.i))
        }
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.i;
        let n = self.rest().len() - self.rest().trim_start_matches([' ', '\t', '\n']).len();
        self.i += n;
        self.i > start
    }

    /// White space and comments (outside the document element).
    fn misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            if self.rest().starts_with("<!--") {
                self.comment()?;
            } else if self.rest().starts_with("<!") {
                return Err("DOCTYPE is disallowed".into());
            } else if self.rest().starts_with("<?") {
                return Err("processing instructions are not allowed".into());
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        self.expect("<!--")?;
        let end = self.rest().find("-->").ok_or("unterminated comment")?;
        if self.rest()[..end].contains("--") {
            return Err("'--' inside a comment".into());
        }
        self.i += end + 3;
        Ok(())
    }

    fn name(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .unwrap_or(rest.len());
        let name = rest[..len].to_owned();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(format!("invalid name at byte {}", self.i));
        }
        self.i += len;
        Ok(name)
    }

    fn resolve(&self, prefix: &str) -> Result<String, String> {
        if prefix == "xml" {
            return Ok("http://www.w3.org/XML/1998/namespace".into());
        }
        for scope in self.scopes.iter().rev() {
            if let Some((_, uri)) = scope.iter().find(|(p, _)| p == prefix) {
                return Ok(uri.clone());
            }
        }
        if prefix.is_empty() {
            Ok(String::new())
        } else {
            Err(format!("the prefix '{prefix}' is not bound to a namespace"))
        }
    }

    fn element(&mut self, depth: usize) -> Result<Element, String> {
        if depth > MAX_DEPTH {
            return Err("elements nested too deeply".into());
        }
        self.expect("<")?;
        let qname = self.name()?;
        let mut raw: Vec<(String, String)> = Vec::new();
        loop {
            let spaced = self.skip_ws();
            if self.rest().starts_with("/>") || self.rest().starts_with('>') {
                break;
            }
            if !spaced {
                return Err(format!("white space expected at byte {}", self.i));
            }
            let name = self.name()?;
            self.skip_ws();
            self.expect("=")?;
            self.skip_ws();
            let quote = if self.eat("\"") {
                '"'
            } else if self.eat("'") {
                '\''
            } else {
                return Err(format!("quoted value expected at byte {}", self.i));
            };
            let end = self
                .rest()
                .find(quote)
                .ok_or("unterminated attribute value")?;
            let value = &self.rest()[..end];
            if value.contains('<') {
                return Err("'<' in an attribute value".into());
            }
            let value = unescape(value)?;
            self.i += end + 1;
            if raw.iter().any(|(n, _)| *n == name) {
                return Err(format!("attribute {name} given twice"));
            }
            raw.push((name, value));
        }
        let mut scope = Vec::new();
        for (name, value) in &raw {
            if name == "xmlns" {
                scope.push((String::new(), value.clone()));
            } else if let Some(prefix) = name.strip_prefix("xmlns:") {
                if value.is_empty() {
                    return Err(format!("empty namespace for prefix {prefix}"));
                }
                scope.push((prefix.to_owned(), value.clone()));
            }
        }
        self.scopes.push(scope);
        let result = self.element_rest(depth, &qname, raw);
        self.scopes.pop();
        result
    }

    fn element_rest(
        &mut self,
        depth: usize,
        qname: &str,
        raw: Vec<(String, String)>,
    ) -> Result<Element, String> {
        let (prefix, local) = split_qname(qname)?;
        let ns = self.resolve(prefix)?;
        let mut attrs: Vec<(String, String, String)> = Vec::new();
        for (name, value) in raw {
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            let (p, l) = split_qname(&name)?;
            let ans = if p.is_empty() {
                String::new()
            } else {
                self.resolve(p)?
            };
            if attrs.iter().any(|(n, a, _)| *n == ans && a == l) {
                return Err(format!("attribute {name} given twice"));
            }
            attrs.push((ans, l.to_owned(), value));
        }
        let mut element = Element {
            ns,
            local: local.to_owned(),
            attrs,
            children: Vec::new(),
        };
        if self.eat("/>") {
            return Ok(element);
        }
        self.expect(">")?;
        loop {
            if self.eat("</") {
                let end = self.name()?;
                if end != qname {
                    return Err(format!("end tag </{end}> does not match <{qname}>"));
                }
                self.skip_ws();
                self.expect(">")?;
                return Ok(element);
            } else if self.rest().starts_with("<!--") {
                self.comment()?;
            } else if self.eat("<![CDATA[") {
                let end = self
                    .rest()
                    .find("]]>")
                    .ok_or("unterminated CDATA section")?;
                let text = self.rest()[..end].to_owned();
                self.i += end + 3;
                push_text(&mut element, text);
            } else if self.rest().starts_with("<!") || self.rest().starts_with("<?") {
                return Err(format!("markup not allowed here at byte {}", self.i));
            } else if self.rest().starts_with('<') {
                let child = self.element(depth + 1)?;
                element.children.push(Node::Elem(child));
            } else if self.rest().is_empty() {
                return Err(format!("unexpected end of document inside <{qname}>"));
            } else {
                let end = self.rest().find('<').unwrap_or(self.rest().len());
                let raw_text = &self.rest()[..end];
                if raw_text.contains("]]>") {
                    return Err("']]>' in text".into());
                }
                let text = unescape(raw_text)?;
                self.i += end;
                push_text(&mut element, text);
            }
        }
    }
}

fn push_text(element: &mut Element, text: String) {
    if let Some(Node::Text(t)) = element.children.last_mut() {
        t.push_str(&text);
    } else {
        element.children.push(Node::Text(text));
    }
}

fn split_qname(name: &str) -> Result<(&str, &str), String> {
    match name.split_once(':') {
        None => Ok(("", name)),
        Some((p, l)) if !p.is_empty() && !l.is_empty() && !l.contains(':') => Ok((p, l)),
        _ => Err(format!("invalid qualified name {name}")),
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp + 1..];
        let semi = rest
            .find(';')
            .filter(|n| *n <= 10)
            .ok_or("unterminated entity reference")?;
        let entity = &rest[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(format!("undeclared entity &{entity};"));
                };
                code.and_then(char::from_u32)
                    .filter(|c| (*c as u32) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
                    .ok_or_else(|| format!("invalid character reference &{entity};"))?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `&`, `<`, `>`, `"` and `'` as entities.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// ----- the Metadata SOAP API -----

fn soap_answer(status: u16, xml: String) -> Answer {
    Response::from_string(xml)
        .with_status_code(status)
        .with_header(Header::from_bytes("Content-Type", "text/xml;charset=UTF-8").unwrap())
}

/// A SOAP fault (HTTP 500). `code` is `sf:CODE` (the message is then prefixed `CODE: ` as
/// Salesforce does, with an UnexpectedErrorFault detail) or `soapenv:Client`/`VersionMismatch`.
fn soap_fault(code: &str, message: &str) -> Answer {
    let (faultstring, detail) = match code.strip_prefix("sf:") {
        Some(c) => (
            format!("{c}: {message}"),
            format!(
                "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\"><sf:exceptionCode>{c}</sf:exceptionCode><sf:exceptionMessage>{}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>",
                escape(message)
            ),
        ),
        None => (message.to_owned(), String::new()),
    };
    soap_answer(
        500,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\" xmlns:sf=\"{MD_NS}\" xmlns:xsi=\"{XSI}\"><soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring>{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
            escape(&faultstring)
        ),
    )
}

fn soap_ok(inner: &str) -> Answer {
    soap_answer(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\" xmlns=\"{MD_NS}\" xmlns:xsi=\"{XSI}\"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
        ),
    )
}

fn client_fault(message: &str) -> Answer {
    soap_fault("soapenv:Client", message)
}

/// The envelope's Header (if any) and Body, checked: SOAP 1.1, Header then Body, nothing else.
fn soap_parts(doc: &Element) -> Result<(Option<&Element>, &Element), Answer> {
    if doc.local == "Envelope" && doc.ns != SOAP_ENV {
        return Err(soap_fault(
            "soapenv:VersionMismatch",
            "Wrong SOAP envelope namespace: a SOAP 1.1 envelope is expected",
        ));
    }
    if !doc.is(SOAP_ENV, "Envelope") || doc.has_mixed_text() {
        return Err(client_fault("The request is not a SOAP envelope"));
    }
    let parts: Vec<&Element> = doc.elements().collect();
    match parts.as_slice() {
        [h, b] if h.is(SOAP_ENV, "Header") && b.is(SOAP_ENV, "Body") => Ok((Some(h), b)),
        [b] if b.is(SOAP_ENV, "Body") => Ok((None, b)),
        _ => Err(client_fault(
            "The SOAP envelope must hold an optional Header and then a Body",
        )),
    }
}

/// `POST /services/Soap/m/NN.N`.
pub(super) fn soap(st: &mut State, r: &Req<'_>) -> Answer {
    let version = r.path.trim_start_matches("/services/Soap/m/");
    let Some(version) = api_version(version) else {
        return soap_fault(
            "sf:UNSUPPORTED_API_VERSION",
            "Invalid Api version specified on URL",
        );
    };
    let media = r.content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("text/xml") {
        return client_fault(&format!(
            "Content-Type '{}' is not text/xml: the Metadata API speaks SOAP 1.1",
            r.content_type
        ));
    }
    if r.soap_action.is_none() {
        return client_fault("No SOAPAction header!");
    }
    let doc = match parse_xml(r.body) {
        Ok(doc) => doc,
        Err(e) => return client_fault(&format!("Could not parse the request: {e}")),
    };
    let (header, body) = match soap_parts(&doc) {
        Ok(parts) => parts,
        Err(fault) => return fault,
    };
    let session = header
        .and_then(|h| h.elements().find(|e| e.is(MD_NS, "SessionHeader")))
        .and_then(|s| s.elements().find(|e| e.is(MD_NS, "sessionId")))
        .and_then(|e| e.text().ok());
    let live = session
        .as_deref()
        .is_some_and(|t| st.access_tokens.iter().any(|x| x == t));
    if !live {
        return soap_fault(
            "sf:INVALID_SESSION_ID",
            "Invalid Session ID found in SessionHeader: Illegal Session",
        );
    }
    if !caller_is_admin(st, session.as_deref()) {
        return soap_fault(
            "sf:INSUFFICIENT_ACCESS",
            "insufficient access rights on object id: this user lacks Modify Metadata",
        );
    }
    let ops: Vec<&Element> = body.elements().collect();
    let [op] = ops.as_slice() else {
        return client_fault("The SOAP Body must hold exactly one operation");
    };
    match (op.ns.as_str(), op.local.as_str()) {
        (MD_NS, "readMetadata") => read_metadata(st, version, op),
        (MD_NS, "updateMetadata") => update_metadata(st, version, op),
        (ns, local) => client_fault(&format!(
            "No operation available for request {{{ns}}}{local}"
        )),
    }
}

/// The metadata type named `name`, if this API version knows it.
fn metadata_type(name: &str, version: u32) -> Result<&'static str, Answer> {
    match name {
        "ConnectedApp" => Ok("ConnectedApp"),
        "ExtlClntAppGlobalOauthSettings" if version >= 60 => Ok("ExtlClntAppGlobalOauthSettings"),
        _ => Err(soap_fault(
            "sf:INVALID_TYPE",
            &format!("Unknown type name '{name}' specified in this API version"),
        )),
    }
}

fn invalid_at(e: &Element) -> Answer {
    client_fault(&format!(
        "Element {{{}}}{} invalid at this location",
        e.ns, e.local
    ))
}

fn read_metadata(st: &State, version: u32, op: &Element) -> Answer {
    let (mut types, mut names) = (Vec::new(), Vec::new());
    for e in op.elements() {
        let text = match e.text() {
            Ok(t) => t,
            Err(m) => return client_fault(&m),
        };
        match (e.ns.as_str(), e.local.as_str()) {
            (MD_NS, "type") => types.push(text),
            (MD_NS, "fullNames") => names.push(text),
            _ => return invalid_at(e),
        }
    }
    if types.len() != 1 || names.is_empty() || names.len() > 10 {
        return client_fault("readMetadata takes one type and 1 to 10 fullNames");
    }
    let ty = match metadata_type(&types[0], version) {
        Ok(t) => t,
        Err(fault) => return fault,
    };
    let mut records = String::new();
    for name in &names {
        let record = match ty {
            "ConnectedApp" => st
                .eca
                .classics
                .iter()
                .find(|c| &c.app.developer_name == name)
                .map(connected_app_xml),
            _ => st
                .eca
                .ecas
                .iter()
                .find(|e| &e.settings_name() == name)
                .map(eca_settings_xml),
        };
        match record {
            Some(fields) => {
                records.push_str(&format!("<records xsi:type=\"{ty}\">{fields}</records>"));
            }
            None => records.push_str("<records xsi:nil=\"true\"/>"),
        }
    }
    soap_ok(&format!(
        "<readMetadataResponse><result>{records}</result></readMetadataResponse>"
    ))
}

fn certificate_xml(pem: &Option<String>) -> String {
    pem.as_deref()
        .map(|p| format!("<certificate>{}</certificate>", escape(p)))
        .unwrap_or_default()
}

fn connected_app_xml(c: &Classic) -> String {
    let scopes: String = c
        .scopes
        .iter()
        .map(|s| format!("<scopes>{}</scopes>", escape(s)))
        .collect();
    format!(
        "<fullName>{}</fullName><contactEmail>{}</contactEmail><label>{}</label><oauthConfig><callbackUrl>{}</callbackUrl>{}<consumerKey>{}</consumerKey>{scopes}</oauthConfig>",
        escape(&c.app.developer_name),
        escape(&c.contact_email),
        escape(&c.app.label),
        escape(&c.callback_url),
        certificate_xml(&c.app.certificate_pem),
        escape(&c.app.consumer_key),
    )
}

fn eca_settings_xml(e: &Eca) -> String {
    format!(
        "<fullName>{}</fullName><callbackUrl>{}</callbackUrl>{}<externalClientApplication>{}</externalClientApplication><isConsumerSecretOptional>{}</isConsumerSecretOptional><label>{}</label>",
        escape(&e.settings_name()),
        escape(&e.callback_url),
        certificate_xml(&e.cfg.certificate_pem),
        escape(&e.cfg.developer_name),
        e.is_consumer_secret_optional,
        escape(&e.cfg.label),
    )
}

/// The fields of one metadata record, by local name (repeated fields in order). An element
/// with xsi:nil, or empty, is absent, as Salesforce reads a blank field.
type Fields = HashMap<String, Vec<FieldValue>>;

enum FieldValue {
    Text(String),
    Group(Fields),
}

/// A metadata field the fake knows: its name, whether it repeats, and its own fields (none for
/// a simple one).
type FieldSpec = (&'static str, bool, &'static [(&'static str, bool)]);

/// The record's fields, checked against `allowed` (name, repeatable, nested fields).
fn record_fields(e: &Element, allowed: &[FieldSpec]) -> Result<Fields, Answer> {
    if e.has_mixed_text() {
        return Err(client_fault(&format!("unexpected text in {}", e.local)));
    }
    let mut out = Fields::new();
    for child in e.elements() {
        let Some((_, repeatable, nested)) = allowed
            .iter()
            .find(|(n, _, _)| child.ns == MD_NS && *n == child.local)
        else {
            return Err(invalid_at(child));
        };
        let entry = out.entry(child.local.clone()).or_default();
        if !entry.is_empty() && !repeatable {
            return Err(client_fault(&format!("{} given twice", child.local)));
        }
        if child.nil() {
            continue;
        }
        if nested.is_empty() {
            let text = child.text().map_err(|m| client_fault(&m))?;
            if !text.is_empty() {
                entry.push(FieldValue::Text(text));
            }
        } else {
            let inner: Vec<FieldSpec> = nested.iter().map(|(n, r)| (*n, *r, &[][..])).collect();
            entry.push(FieldValue::Group(record_fields(child, &inner)?));
        }
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

fn text_of(fields: &Fields, name: &str) -> Option<String> {
    match fields.get(name)?.first()? {
        FieldValue::Text(t) => Some(t.clone()),
        FieldValue::Group(_) => None,
    }
}

fn texts_of(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .get(name)
        .map(|v| {
            v.iter()
                .filter_map(|f| match f {
                    FieldValue::Text(t) => Some(t.clone()),
                    FieldValue::Group(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn group_of<'a>(fields: &'a Fields, name: &str) -> Option<&'a Fields> {
    match fields.get(name)?.first()? {
        FieldValue::Group(g) => Some(g),
        FieldValue::Text(_) => None,
    }
}

/// One SaveResult error: (statusCode, message, field).
type SaveError = (&'static str, String, Option<String>);

fn missing(field: &str) -> SaveError {
    (
        "REQUIRED_FIELD_MISSING",
        format!("Required field is missing: {field}"),
        Some(field.to_owned()),
    )
}

fn bad_certificate(pem: &str) -> Option<SaveError> {
    let ok = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .ok()
        .filter(|(_, p)| p.label == "CERTIFICATE")
        .is_some_and(|(_, p)| p.parse_x509().is_ok());
    (!ok).then(|| {
        (
            "FIELD_INTEGRITY_EXCEPTION",
            "The certificate isn't a valid X.509 certificate in PEM format".to_owned(),
            Some("certificate".to_owned()),
        )
    })
}

const CONNECTED_APP_FIELDS: &[FieldSpec] = &[
    ("fullName", false, &[]),
    ("contactEmail", false, &[]),
    ("description", false, &[]),
    ("label", false, &[]),
    (
        "oauthConfig",
        false,
        &[
            ("callbackUrl", false),
            ("certificate", false),
            ("consumerKey", false),
            ("scopes", true),
        ],
    ),
];

const ECA_SETTINGS_FIELDS: &[FieldSpec] = &[
    ("fullName", false, &[]),
    ("callbackUrl", false, &[]),
    ("certificate", false, &[]),
    ("externalClientApplication", false, &[]),
    ("isConsumerSecretOptional", false, &[]),
    ("label", false, &[]),
];

/// One record of an update, parsed, to apply once the whole request has been read.
enum Update {
    ConnectedApp(Fields),
    EcaSettings(Fields),
}

fn update_metadata(st: &mut State, version: u32, op: &Element) -> Answer {
    let mut updates = Vec::new();
    for m in op.elements() {
        if !m.is(MD_NS, "metadata") {
            return invalid_at(m);
        }
        let Some(ty) = m.attr(XSI, "type") else {
            return client_fault("metadata needs an xsi:type naming its metadata type");
        };
        let ty = ty.rsplit(':').next().unwrap_or(ty);
        let update = match metadata_type(ty, version) {
            Ok("ConnectedApp") => record_fields(m, CONNECTED_APP_FIELDS).map(Update::ConnectedApp),
            Ok(_) => record_fields(m, ECA_SETTINGS_FIELDS).map(Update::EcaSettings),
            Err(fault) => return fault,
        };
        match update {
            Ok(u) => updates.push(u),
            Err(fault) => return fault,
        }
    }
    if updates.is_empty() || updates.len() > 10 {
        return client_fault("updateMetadata takes 1 to 10 metadata records");
    }
    let mut results = String::new();
    for u in updates {
        let (full_name, outcome) = match u {
            Update::ConnectedApp(f) => (text_of(&f, "fullName"), update_connected_app(st, &f)),
            Update::EcaSettings(f) => (text_of(&f, "fullName"), update_eca_settings(st, &f)),
        };
        let name = escape(full_name.as_deref().unwrap_or(""));
        match outcome {
            Ok(()) => results.push_str(&format!(
                "<result><fullName>{name}</fullName><success>true</success></result>"
            )),
            Err(errors) => {
                results.push_str("<result>");
                for (code, message, field) in errors {
                    let fields = field
                        .map(|f| format!("<fields>{}</fields>", escape(&f)))
                        .unwrap_or_default();
                    results.push_str(&format!(
                        "<errors>{fields}<message>{}</message><statusCode>{code}</statusCode></errors>",
                        escape(&message)
                    ));
                }
                results.push_str(&format!(
                    "<fullName>{name}</fullName><success>false</success></result>"
                ));
            }
        }
    }
    soap_ok(&format!(
        "<updateMetadataResponse>{results}</updateMetadataResponse>"
    ))
}

fn update_connected_app(st: &mut State, f: &Fields) -> Result<(), Vec<SaveError>> {
    let Some(name) = text_of(f, "fullName") else {
        return Err(vec![missing("fullName")]);
    };
    let Some(i) = st
        .eca
        .classics
        .iter()
        .position(|c| c.app.developer_name == name)
    else {
        return Err(vec![(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("In field: fullName - no ConnectedApp named {name} found"),
            Some("fullName".into()),
        )]);
    };
    let mut errors = Vec::new();
    for field in ["contactEmail", "label"] {
        if text_of(f, field).is_none() {
            errors.push(missing(field));
        }
    }
    let empty = Fields::new();
    let oauth = match group_of(f, "oauthConfig") {
        Some(oauth) => {
            for field in ["callbackUrl", "consumerKey", "scopes"] {
                if texts_of(oauth, field).is_empty() {
                    errors.push(missing(&format!("oauthConfig.{field}")));
                }
            }
            oauth
        }
        None => {
            errors.push(missing("oauthConfig"));
            &empty
        }
    };
    let scopes = texts_of(oauth, "scopes");
    let key = text_of(oauth, "consumerKey");
    if key
        .as_ref()
        .is_some_and(|k| *k != st.eca.classics[i].app.consumer_key)
    {
        errors.push((
            "FIELD_INTEGRITY_EXCEPTION",
            "The consumer key of a connected app can't be changed".into(),
            Some("oauthConfig.consumerKey".into()),
        ));
    }
    let certificate = text_of(oauth, "certificate");
    if let Some(e) = certificate.as_deref().and_then(bad_certificate) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let c = &mut st.eca.classics[i];
    c.app.label = text_of(f, "label").unwrap_or_default();
    c.contact_email = text_of(f, "contactEmail").unwrap_or_default();
    c.callback_url = text_of(oauth, "callbackUrl").unwrap_or_default();
    c.scopes = scopes;
    c.app.certificate_pem = certificate;
    Ok(())
}

fn update_eca_settings(st: &mut State, f: &Fields) -> Result<(), Vec<SaveError>> {
    let Some(name) = text_of(f, "fullName") else {
        return Err(vec![missing("fullName")]);
    };
    let Some(i) = st.eca.ecas.iter().position(|e| e.settings_name() == name) else {
        return Err(vec![(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("In field: fullName - no ExtlClntAppGlobalOauthSettings named {name} found"),
            Some("fullName".into()),
        )]);
    };
    let mut errors = Vec::new();
    for field in [
        "callbackUrl",
        "externalClientApplication",
        "isConsumerSecretOptional",
        "label",
    ] {
        if text_of(f, field).is_none() {
            errors.push(missing(field));
        }
    }
    let optional = text_of(f, "isConsumerSecretOptional");
    let optional = match optional.as_deref() {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            return Err(vec![(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("isConsumerSecretOptional: '{other}' is not a boolean"),
                Some("isConsumerSecretOptional".into()),
            )]);
        }
    };
    let app = text_of(f, "externalClientApplication");
    if app
        .as_ref()
        .is_some_and(|a| *a != st.eca.ecas[i].cfg.developer_name)
    {
        errors.push((
            "FIELD_INTEGRITY_EXCEPTION",
            format!(
                "externalClientApplication must be {}",
                st.eca.ecas[i].cfg.developer_name
            ),
            Some("externalClientApplication".into()),
        ));
    }
    let certificate = text_of(f, "certificate");
    if let Some(e) = certificate.as_deref().and_then(bad_certificate) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let e = &mut st.eca.ecas[i];
    e.callback_url = text_of(f, "callbackUrl").unwrap_or_default();
    e.cfg.label = text_of(f, "label").unwrap_or_default();
    e.is_consumer_secret_optional = optional;
    e.cfg.certificate_pem = certificate;
    Ok(())
}
