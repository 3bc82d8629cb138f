//! A JWT key rotated at Salesforce: a new RSA key made in the vault, its certificate deployed
//! to the app with the Metadata API, a JWT login with the new key proven; on failure the old
//! certificate is deployed back and the old key made current again.
//!
//! Salesforce holds one certificate per app: there is no overlap window. Order: read the app's
//! settings (the old certificate, kept in the vault's history) → record "deploying" with the new
//! key and certificate current in the vault (old ones to history) → deploy → prove → record
//! "deployed". A crash anywhere leaves both keys in the vault and the step recorded.

use super::consumer::find_app;
use super::{Kind, Run, State, Step, Stopped, public, record};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::{Flow, keygen};
use crate::salesforce::metadata::{AppKind, Record};
use crate::vault::NewField;
use crate::vault::fields::{APP_ID, APP_NAME};
use crate::vault::model::Entry;

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// "rotated", "rolled-back", "aborted" or "nothing".
    pub action: &'static str,
    /// The step recorded at the end.
    pub step: Option<Step>,
    /// The app's developer name.
    pub app_name: String,
    /// The metadata type that holds the certificate.
    pub metadata_type: &'static str,
    /// The certificate now current in the vault (PEM, public).
    pub certificate: String,
    /// Where things stand.
    pub standing: String,
}

/// A rotation of an entry's JWT key and certificate.
pub struct CertRotation<'a> {
    /// The vault, the admin session, the entry and the clock.
    pub run: Run<'a>,
    /// New key size.
    pub bits: usize,
    /// New certificate validity in days.
    pub days: u32,
}

fn value(entry: &Entry, field: &str) -> Option<String> {
    entry
        .fields
        .get(field)
        .map(|f| f.value.expose().to_owned())
        .filter(|v| !v.is_empty())
}

/// The same PEM, compared without line-ending and surrounding-space differences.
fn same_pem(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    norm(a) == norm(b)
}

impl CertRotation<'_> {
    fn say(&mut self, line: &str) {
        (self.run.progress)(line);
    }

    fn record(&mut self, state: &State, fields: Vec<NewField>) -> Result<()> {
        record(self.run.vault, self.run.name, state, fields)
    }

    /// The app's kind and developer name: an External Client App found by the consumer key,
    /// else a connected app named by the entry's `app_name`.
    fn app(&mut self, entry: &Entry) -> Result<(AppKind, String)> {
        let name = self.run.name;
        // A connected app named by hand: no need for the External Client App credentials API
        // (which needs more rights, and an org setting).
        if let (Some(app_name), None) = (value(entry, APP_NAME), value(entry, APP_ID)) {
            return Ok((AppKind::Connected, app_name));
        }
        if let Some(found) = find_app(
            self.run.admin,
            self.run.vault,
            name,
            entry,
            self.run.progress,
        )? {
            if found.app_name.is_empty() {
                return Err(Error::failed(format!(
                    "Salesforce did not name app {}: set its developer name with `sfvault set {name} app_name NAME`",
                    found.app_id
                )));
            }
            return Ok((AppKind::External, found.app_name));
        }
        let app_name = value(entry, APP_NAME).ok_or_else(|| {
            Error::no_field(
                name,
                APP_NAME,
                format!(
                    "{name}'s key is not an External Client App's, so it is a classic connected app: name it \
                     with `sfvault set {name} app_name API_NAME` (Setup → App Manager → the app → API Name)"
                ),
            )
        })?;
        Ok((AppKind::Connected, app_name))
    }

    fn read(&mut self, kind: AppKind, app_name: &str) -> Result<Record> {
        self.say(&format!(
            "reading {} {} (Metadata API)",
            kind.type_name(),
            kind.full_name(app_name)
        ));
        let record = self
            .run
            .admin
            .read_oauth_settings(kind, app_name)?
            .ok_or_else(|| {
                Error::failed(format!(
                    "Salesforce has no {} named {}: check {}'s app_name",
                    kind.type_name(),
                    kind.full_name(app_name),
                    self.run.name
                ))
            })?;
        if record.certificate.is_none() {
            return Err(Error::failed(format!(
                "{} has no certificate: the JWT bearer flow is not enabled for this app",
                record.full_name
            )));
        }
        Ok(record)
    }

    fn outcome(
        &mut self,
        action: &'static str,
        app: (AppKind, String),
        standing: String,
    ) -> Result<Outcome> {
        let entry = self.run.vault.entry(self.run.name)?;
        Ok(Outcome {
            action,
            step: State::of(self.run.name, &entry, Kind::Certificate)?.map(|s| s.step),
            app_name: app.1,
            metadata_type: app.0.type_name(),
            certificate: value(&entry, "certificate").unwrap_or_default(),
            standing,
        })
    }

    fn check_start(&mut self, entry: &Entry) -> Result<()> {
        for kind in [Kind::Consumer, Kind::Certificate] {
            if let Some(state) = State::of(self.run.name, entry, kind)?
                && state.step.in_progress()
            {
                return Err(Error::Usage(format!(
                    "a rotation of {0} is in progress (step {1}): finish it with `sfvault rotate {0} {2} \
                     --resume --admin …` or undo it with `--abort`",
                    self.run.name,
                    state.step.name(),
                    if kind == Kind::Consumer {
                        "consumer"
                    } else {
                        "private_key"
                    }
                )));
            }
        }
        if self.run.vault.history_limit()? == 0 {
            return Err(Error::Usage(
                "this vault keeps no past values (history limit 0), so the old key would be lost: raise it \
                 with `sfvault config history-limit 5` first"
                    .into(),
            ));
        }
        for field in ["private_key", "username", "consumer_key"] {
            if value(entry, field).is_none() {
                return Err(Error::no_field(
                    self.run.name,
                    field,
                    format!("{} has no {field}: it is not a JWT entry", self.run.name),
                ));
            }
        }
        let (admin_name, admin_key) = self.run.admin_entry;
        if admin_name == self.run.name || admin_key == value(entry, "consumer_key").as_deref() {
            return Err(Error::Usage(format!(
                "the admin entry {admin_name} is the app being rotated: use an entry of another connected app"
            )));
        }
        Ok(())
    }

    /// A new rotation.
    pub fn start(&mut self) -> Result<Outcome, Stopped> {
        let entry = self.run.vault.entry(self.run.name)?;
        self.check_start(&entry)?;
        let app = self.app(&entry)?;
        let record = self.read(app.0, &app.1)?;
        let deployed = record.certificate.clone().unwrap_or_default();
        // The deployed certificate is what a rollback puts back: it must be in the vault.
        if value(&entry, "certificate").is_none_or(|c| !same_pem(&c, &deployed)) {
            self.say("keeping the certificate Salesforce has now in the vault, for a rollback");
            self.run.vault.apply(crate::vault::Change::SetComputed {
                entry: self.run.name.to_string(),
                computed: Vec::new(),
                fields: vec![public("certificate", deployed.trim())],
            })?;
        }
        self.say(&format!(
            "making a new {}-bit RSA key in the vault",
            self.bits
        ));
        let made = keygen::generate(self.bits, self.days, &format!("sfvault {}", self.run.name))?;
        let state = State::new(Kind::Certificate, Step::Deploying);
        self.record(
            &state,
            vec![
                NewField {
                    name: "private_key".into(),
                    value: made.private_key,
                    secret: true,
                },
                public("certificate", made.certificate.trim()),
            ],
        )?;
        self.deploy_and_prove(app, &record, &state)
    }

    fn standing_deploying(&self) -> String {
        format!(
            "The new key is current in the vault (the old one in history). Salesforce may hold either \
             certificate: `sfvault rotate {0} private_key --resume --admin {1}` finishes, `--abort --admin {1}` \
             puts the old certificate and key back.",
            self.run.name, self.run.admin_entry.0
        )
    }

    fn deploy_and_prove(
        &mut self,
        app: (AppKind, String),
        record: &Record,
        state: &State,
    ) -> Result<Outcome, Stopped> {
        let entry = self.run.vault.entry(self.run.name)?;
        let new_cert = value(&entry, "certificate").unwrap_or_default();
        if !record
            .certificate
            .as_deref()
            .is_some_and(|c| same_pem(c, &new_cert))
        {
            self.say("deploying the new certificate to the app (Metadata API)");
            if let Err(e) = self.run.admin.deploy_certificate(record, &new_cert) {
                if e.kind() == ErrorKind::Network {
                    return Err(Stopped::new(e, self.standing_deploying()));
                }
                // Refused: nothing changed at Salesforce; the old key back in the vault.
                self.restore_old_key(state)?;
                return Err(Stopped::new(
                    e,
                    "Salesforce kept the old certificate; the old key is current again in the vault.",
                ));
            }
        }
        self.say("proving the new key: a JWT login with it");
        // Always a JWT login, whatever flow the entry names: that is what the certificate is for.
        match super::prove(
            self.run.http,
            self.run.name,
            &entry,
            Some(Flow::Jwt),
            (self.run.now)(),
        ) {
            Ok(()) => {
                self.record(&state.at(Step::Deployed), Vec::new())?;
                let standing = "The new certificate is deployed and the new key logs in; the old key is in \
                                the vault's history. Every other holder of the old key must now use the new one."
                    .to_owned();
                Ok(self.outcome("rotated", app, standing)?)
            }
            Err(e) if e.kind() == ErrorKind::Network => {
                Err(Stopped::new(e, self.standing_deploying()))
            }
            Err(e) => {
                self.say("the new key was refused: deploying the old certificate back");
                match self.roll_back(&app, record, state) {
                    Ok(()) => Err(Stopped::new(
                        e,
                        "Rolled back: the old certificate is deployed again and the old key is current in the vault.",
                    )),
                    Err(failed) => Err(Stopped::new(
                        e,
                        format!(
                            "Putting the old certificate back failed too ({}). {}",
                            failed.error, failed.standing
                        ),
                    )),
                }
            }
        }
    }

    /// Deploy the old certificate (from the vault's history) back, then make the old key current.
    fn roll_back(
        &mut self,
        app: &(AppKind, String),
        record: &Record,
        state: &State,
    ) -> Result<(), Stopped> {
        let entry = self.run.vault.entry(self.run.name)?;
        let old_cert = entry
            .fields
            .get("certificate")
            .and_then(|f| f.history.last())
            .map(|p| p.value.expose().to_owned())
            .ok_or_else(|| {
                Stopped::from(Error::failed(
                    "the old certificate is not in the vault's history",
                ))
            })?;
        if let Err(e) = self.run.admin.deploy_certificate(record, &old_cert) {
            return Err(Stopped::new(
                e,
                format!(
                    "The new certificate may still be deployed and the new key is current in the vault: \
                     `sfvault rotate {0} private_key --abort --admin {1}` puts the old ones back ({2}).",
                    self.run.name, self.run.admin_entry.0, app.1
                ),
            ));
        }
        self.restore_old_key(state)?;
        Ok(())
    }

    /// The old key and certificate current again in the vault (one change), step "rolled-back".
    /// Both come from the save that replaced them together; anything else is refused.
    fn restore_old_key(&mut self, state: &State) -> Result<(), Stopped> {
        let entry = self.run.vault.entry(self.run.name)?;
        let last = |field: &str| entry.fields.get(field).and_then(|f| f.history.last());
        let (Some(key), Some(cert)) = (last("private_key"), last("certificate")) else {
            return Err(Error::failed("the old key is no longer in the vault's history").into());
        };
        if key.replaced_at != cert.replaced_at {
            return Err(Error::failed(format!(
                "{}'s last past key and certificate were not replaced together (one was changed since \
                 the rotation began), so sfvault will not guess which is the old pair: `sfvault history {}` \
                 shows them; restore them with `sfvault set … --restore N`",
                self.run.name, self.run.name
            ))
            .into());
        }
        let (key, cert) = (
            key.value.expose().to_owned(),
            cert.value.expose().to_owned(),
        );
        self.record(
            &state.at(Step::RolledBack),
            vec![
                NewField {
                    name: "private_key".into(),
                    value: crate::secret::SecretString::new(key),
                    secret: true,
                },
                public("certificate", &cert),
            ],
        )?;
        Ok(())
    }

    fn in_progress(&mut self) -> Result<Option<(Entry, State)>, Stopped> {
        let entry = self.run.vault.entry(self.run.name)?;
        match State::of(self.run.name, &entry, Kind::Certificate)? {
            Some(s) if s.step == Step::Deploying => Ok(Some((entry, s))),
            _ => Ok(None),
        }
    }

    fn nothing(&mut self, why: &str) -> Result<Outcome, Stopped> {
        Ok(Outcome {
            action: "nothing",
            step: None,
            app_name: String::new(),
            metadata_type: "",
            certificate: String::new(),
            standing: format!("Nothing to do: {why}."),
        })
    }

    /// Finish an interrupted rotation: deploy the new certificate if Salesforce lacks it, prove.
    pub fn resume(&mut self) -> Result<Outcome, Stopped> {
        let Some((entry, state)) = self.in_progress()? else {
            return self.nothing("no certificate rotation in progress");
        };
        let app = self.app(&entry)?;
        let record = self.read(app.0, &app.1)?;
        self.deploy_and_prove(app, &record, &state)
    }

    /// Undo an interrupted rotation: the old certificate deployed back, the old key current.
    pub fn abort(&mut self) -> Result<Outcome, Stopped> {
        let Some((entry, state)) = self.in_progress()? else {
            return self.nothing("no certificate rotation in progress, nothing to undo");
        };
        let app = self.app(&entry)?;
        let record = self.read(app.0, &app.1)?;
        let old_cert = entry
            .fields
            .get("certificate")
            .and_then(|f| f.history.last())
            .map(|p| p.value.expose().to_owned())
            .unwrap_or_default();
        if record
            .certificate
            .as_deref()
            .is_some_and(|c| same_pem(c, &old_cert))
        {
            self.restore_old_key(&state)?;
        } else {
            self.say("deploying the old certificate back");
            self.roll_back(&app, &record, &state)?;
        }
        Ok(self.outcome(
            "aborted",
            app,
            "Undone: the old certificate is deployed and the old key is current in the vault."
                .into(),
        )?)
    }
}
