//! Rotating credentials at Salesforce, not only in the vault: an External Client App's consumer
//! key and secret through its staged slot ([`consumer`]), and a JWT key with its certificate
//! through the Metadata API ([`certificate`]). docs/ROTATION.md is the user's guide.
//!
//! The vault records every step in the entry's `rotation` field ([`State`]) *before* the step
//! that depends on it, and a new pair is written into the vault before anything is done with it,
//! so a run cut anywhere (a crash, a kill, a dropped connection) loses nothing: `--resume`
//! finishes from what the vault recorded and what Salesforce says, `--abort` undoes. The pair
//! the vault holds as current works at Salesforce at every moment of a consumer rotation.

pub mod certificate;
pub mod consumer;

use crate::error::{Error, Result};
use crate::oauth::http::Http;
use crate::oauth::{self, Credentials, Flow};
use crate::salesforce::Admin;
use crate::secret::SecretString;
use crate::vault::fields::{self, KEY_ROTATION, ROTATION};
use crate::vault::model::Entry;
use crate::vault::name::EntryName;
use crate::vault::{Change, NewField};

/// Where the vault's copy of a rotation stands: what the reader of the vault (sfvault after a
/// crash, or a person with `history`) needs to finish or undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// What is rotated.
    pub kind: Kind,
    /// The last step recorded.
    pub step: Step,
    /// The staged pair's id at Salesforce, once known.
    pub staged_id: Option<String>,
    /// The consumer key the rotation replaces (public).
    pub old_key: Option<String>,
    /// The staged consumer key, once known (public).
    pub new_key: Option<String>,
    /// When the run started (Unix seconds): a pair staged before it is not this run's.
    pub since: Option<i64>,
    /// A short fingerprint of the staged secret ([`fingerprint`]), so the staged secret is
    /// recognised in the vault (current or past) whatever happened to the field since.
    pub new_secret_fp: Option<String>,
}

/// The first 8 hex digits of a secret's SHA-256: enough to recognise a value sfvault stored,
/// far too little to learn anything of a secret Salesforce generated (it lives in the vault's
/// encrypted payload all the same).
pub fn fingerprint(secret: &SecretString) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.expose().as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a rotation replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A consumer key and secret (External Client Apps).
    Consumer,
    /// A JWT private key and its certificate.
    Certificate,
}

impl Kind {
    /// The entry field that records rotations of this kind (one each, so a key rotation does
    /// not erase the record of a consumer pair still valid at Salesforce).
    pub fn field(self) -> &'static str {
        match self {
            Kind::Consumer => ROTATION,
            Kind::Certificate => KEY_ROTATION,
        }
    }
}

/// The steps a rotation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// About to ask Salesforce for a new pair (the vault still holds the old one).
    Staging,
    /// The new pair is staged at Salesforce and current in the vault (both pairs work).
    Staged,
    /// The new pair is Salesforce's primary; the old one is `Rotated`, valid until retired.
    Promoted,
    /// The old pair was deleted at Salesforce.
    Retired,
    /// Being undone: the old pair is current again in the vault, the staged one is being deleted.
    Aborting,
    /// Undone: the old pair is current in the vault and at Salesforce.
    Aborted,
    /// Certificate: the new key is in the vault, the new certificate being deployed.
    Deploying,
    /// Certificate: deployed and proven.
    Deployed,
    /// Certificate: the old certificate was deployed back and the old key is current again.
    RolledBack,
}

impl Step {
    const NAMES: [(Step, &'static str); 9] = [
        (Step::Staging, "staging"),
        (Step::Staged, "staged"),
        (Step::Promoted, "promoted"),
        (Step::Retired, "retired"),
        (Step::Aborting, "aborting"),
        (Step::Aborted, "aborted"),
        (Step::Deploying, "deploying"),
        (Step::Deployed, "deployed"),
        (Step::RolledBack, "rolled-back"),
    ];

    /// The step's name in the `rotation` field.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, n)| n)
    }

    /// Whether a run stopped in the middle: `--resume` or `--abort` has work to do.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Step::Staging | Step::Staged | Step::Aborting | Step::Deploying
        )
    }
}

impl State {
    /// A new state.
    pub fn new(kind: Kind, step: Step) -> State {
        State {
            kind,
            step,
            staged_id: None,
            old_key: None,
            new_key: None,
            since: None,
            new_secret_fp: None,
        }
    }

    /// The same rotation at another step.
    pub fn at(&self, step: Step) -> State {
        State {
            step,
            ..self.clone()
        }
    }

    /// The entry's recorded rotation of `kind`, if any (an unreadable record is an error:
    /// sfvault never guesses where a rotation stands).
    pub fn of(name: &EntryName, entry: &Entry, kind: Kind) -> Result<Option<State>> {
        let Some(field) = entry.fields.get(kind.field()) else {
            return Ok(None);
        };
        State::parse(field.value.expose())
            .filter(|s| s.kind == kind)
            .map(Some)
            .ok_or_else(|| {
                Error::failed(format!(
                    "{name}'s {} field is not a rotation record sfvault wrote ({}); \
                 `sfvault history {name} {}` shows its past values",
                    kind.field(),
                    crate::quote::quoted(field.value.expose()),
                    kind.field()
                ))
            })
    }

    /// Parse `kind=… step=… [staged_id=…] [old_key=…]`.
    pub fn parse(text: &str) -> Option<State> {
        let mut kind = None;
        let mut step = None;
        let mut staged_id = None;
        let mut old_key = None;
        let mut new_key = None;
        let mut since = None;
        let mut new_secret_fp = None;
        for part in text.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "kind" => {
                    kind = Some(match v {
                        "consumer" => Kind::Consumer,
                        "certificate" => Kind::Certificate,
                        _ => return None,
                    })
                }
                "step" => step = Some(Step::NAMES.iter().find(|(_, n)| *n == v)?.0),
                "staged_id" => staged_id = Some(v.to_owned()),
                "old_key" => old_key = Some(v.to_owned()),
                "new_key" => new_key = Some(v.to_owned()),
                "since" => since = Some(v.parse().ok()?),
                "fp" => new_secret_fp = Some(v.to_owned()),
                _ => return None,
            }
        }
        Some(State {
            kind: kind?,
            step: step?,
            staged_id,
            old_key,
            new_key,
            since,
            new_secret_fp,
        })
    }

    /// The text stored in the `rotation` field.
    pub fn to_text(&self) -> String {
        let kind = match self.kind {
            Kind::Consumer => "consumer",
            Kind::Certificate => "certificate",
        };
        let mut out = format!("kind={kind} step={}", self.step.name());
        if let Some(id) = &self.staged_id {
            out.push_str(&format!(" staged_id={id}"));
        }
        if let Some(k) = &self.old_key {
            out.push_str(&format!(" old_key={k}"));
        }
        if let Some(k) = &self.new_key {
            out.push_str(&format!(" new_key={k}"));
        }
        if let Some(t) = self.since {
            out.push_str(&format!(" since={t}"));
        }
        if let Some(fp) = &self.new_secret_fp {
            out.push_str(&format!(" fp={fp}"));
        }
        out
    }

    /// The field that records this state.
    pub fn field(&self) -> NewField {
        NewField {
            name: self.kind.field().into(),
            value: SecretString::new(self.to_text()),
            secret: false,
        }
    }
}

/// How long Salesforce keeps a staged or rotated pair: 30 days.
pub const STAGED_LIFETIME_SECS: i64 = 30 * 86_400;

/// What Salesforce holds of a past consumer key or secret after a rotation at Salesforce, for
/// `history`: "Rotated, still valid until retired" or "deleted" for the replaced pair, else
/// nothing. The pair is recognised by the old key's value and by the time it was replaced (the
/// key and the secret were replaced in one change).
pub fn past_state(entry: &Entry, field: &str, replaced_at: i64, now: i64) -> Option<&'static str> {
    if field != "consumer_key" && field != "consumer_secret" {
        return None;
    }
    let record = entry.fields.get(ROTATION)?;
    let state = State::parse(record.value.expose()).filter(|s| s.kind == Kind::Consumer)?;
    let words = match state.step {
        Step::Promoted if now - record.changed_at >= STAGED_LIFETIME_SECS => "Rotated, expired",
        Step::Promoted => "Rotated, valid until retired or 30 days old",
        Step::Retired => "deleted",
        _ => return None,
    };
    let old_key = state.old_key?;
    let key = entry.fields.get("consumer_key")?;
    let old = key
        .history
        .iter()
        .rev()
        .find(|p| p.value.expose() == old_key)?;
    (old.replaced_at == replaced_at).then_some(words)
}

/// The command that rotates `field` of entry `name`: at Salesforce where it can be (an External
/// Client App's pair, a JWT key), else by hand. `eca`: the entry is known to be an External
/// Client App's.
pub fn how_to_rotate(name: &str, field: &str, eca: bool) -> String {
    match field {
        "consumer_secret" if eca => format!(
            "sfvault rotate {name} consumer --at-salesforce --admin ADMIN (External Client App: key and secret, regenerated at Salesforce)"
        ),
        "consumer_secret" => format!(
            "sfvault rotate {name} consumer --at-salesforce --admin ADMIN if it is an External Client App; for a classic connected app regenerate it in Setup, then sfvault rotate {name} consumer_secret"
        ),
        "private_key" => format!(
            "sfvault rotate {name} private_key --at-salesforce --admin ADMIN (new key, certificate deployed)"
        ),
        _ => format!("sfvault rotate {name} {field}"),
    }
}

/// What a rotation reads and writes in the vault (the CLI's session: the agent or the file).
pub trait RotationVault {
    /// The entry with its secrets and past values.
    fn entry(&mut self, name: &EntryName) -> Result<Entry>;
    /// How many past values each field keeps.
    fn history_limit(&mut self) -> Result<u32>;
    /// Apply and save one change (atomically).
    fn apply(&mut self, change: Change) -> Result<()>;
}

/// What every rotation run works with.
pub struct Run<'a> {
    /// The vault.
    pub vault: &'a mut dyn RotationVault,
    /// The admin session.
    pub admin: &'a Admin<'a>,
    /// The client for proofs (token requests with the new credentials).
    pub http: &'a Http,
    /// The entry rotated.
    pub name: &'a EntryName,
    /// The admin entry's name and consumer key (it must be another app).
    pub admin_entry: (&'a EntryName, Option<&'a str>),
    /// Who the admin is at Salesforce (user id, username), as `createdBy` may name them: a
    /// staged pair created by someone else is never this run's.
    pub admin_identity: &'a [String],
    /// Progress, one line per step, for stderr.
    pub progress: &'a mut dyn FnMut(&str),
    /// The clock (Unix seconds).
    pub now: fn() -> i64,
}

/// A rotation that stopped before its end: the error, and a sentence saying which pair (or
/// key) is current in the vault and at Salesforce and what to run next.
#[derive(Debug)]
pub struct Stopped {
    /// What went wrong.
    pub error: Error,
    /// Where things stand.
    pub standing: String,
}

impl Stopped {
    /// `error`, with where things stand.
    pub fn new(error: Error, standing: impl Into<String>) -> Stopped {
        Stopped {
            error,
            standing: standing.into(),
        }
    }
}

impl Stopped {
    /// An error before the current pair changed anywhere.
    pub fn untouched(error: Error) -> Stopped {
        Stopped::new(
            error,
            "Nothing was rotated: the current pair (or key) is unchanged, in the vault and at Salesforce.",
        )
    }
}

impl From<Error> for Stopped {
    /// An error in the middle of a run: the vault's record says where it stands.
    fn from(error: Error) -> Stopped {
        Stopped::new(
            error,
            "The entry's rotation record (`sfvault get ORG/APP rotation`, or key_rotation) says where \
             the rotation stands; `--resume` finishes it and `--abort` undoes it from there.",
        )
    }
}

/// Record `state` together with `fields` in one change.
fn record(
    vault: &mut dyn RotationVault,
    name: &EntryName,
    state: &State,
    mut fields: Vec<NewField>,
) -> Result<()> {
    fields.push(state.field());
    vault.apply(Change::SetComputed {
        entry: name.to_string(),
        computed: Vec::new(),
        fields,
    })
}

/// A public field's new value.
fn public(name: &str, value: &str) -> NewField {
    NewField {
        name: name.to_owned(),
        value: SecretString::new(value.to_owned()),
        secret: false,
    }
}

/// Prove that `entry`'s credentials work: one token request with `flow`, or with its own flow
/// (a web entry proves with its refresh token if it has one, else with client credentials).
pub fn prove(
    http: &Http,
    name: &EntryName,
    entry: &Entry,
    flow: Option<Flow>,
    now: i64,
) -> Result<()> {
    let creds = Credentials::new(&name.to_string(), entry);
    let flow = match flow {
        Some(f) => f,
        None => match creds.flow()? {
            Flow::Web if entry.fields.contains_key(fields::REFRESH_TOKEN) => Flow::RefreshToken,
            Flow::Web => Flow::ClientCredentials,
            f => f,
        },
    };
    oauth::request_token(http, &creds, flow, now).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_strangers_are_refused() {
        let mut s = State::new(Kind::Consumer, Step::Staged);
        s.staged_id = Some("0Xs1".into());
        s.old_key = Some("3MVG9old".into());
        assert_eq!(
            s.to_text(),
            "kind=consumer step=staged staged_id=0Xs1 old_key=3MVG9old"
        );
        assert_eq!(State::parse(&s.to_text()), Some(s));
        for step in Step::NAMES.map(|(s, _)| s) {
            let s = State::new(Kind::Certificate, step);
            assert_eq!(State::parse(&s.to_text()), Some(s));
        }
        for bad in [
            "",
            "kind=consumer",
            "kind=x step=staged",
            "kind=consumer step=staged evil=1",
        ] {
            assert_eq!(State::parse(bad), None, "{bad}");
        }
    }
}
