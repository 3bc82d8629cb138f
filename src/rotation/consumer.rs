//! An External Client App's consumer key and secret, rotated through its staged slot:
//! find the app → clear a leftover pair → record "staging" → stage → store the new pair (old
//! pair to history) → prove it with a token request → promote → record "promoted"; later,
//! retire (delete the old, `Rotated` pair). The vault's current pair works at Salesforce at
//! every step; [`Rotation::resume`] and [`Rotation::abort`] converge from any recorded step.

use super::{Kind, RotationVault, State, Step, Stopped, public, record};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::http::Http;
use crate::salesforce::Admin;
use crate::salesforce::eca::{AppRef, StagedPair, StagedState};
use crate::secret::SecretString;
use crate::vault::fields::{APP_ID, APP_NAME, CONSUMER_ID};
use crate::vault::model::Entry;
use crate::vault::name::EntryName;
use crate::vault::{Change, NewField};

/// Where the app is at Salesforce.
#[derive(Debug, Clone)]
pub struct Located {
    /// The app's identifier.
    pub app_id: String,
    /// Its developer name (empty if unknown).
    pub app_name: String,
    /// The consumer id.
    pub consumer_id: String,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new pair is primary at Salesforce and current in the vault.
    Rotated,
    /// The old pair was deleted at Salesforce.
    Retired,
    /// The rotation was undone.
    Aborted,
    /// There was nothing to do (already finished, or nothing in progress).
    Nothing,
}

/// The result of a run, for people and for `--json`.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was done.
    pub action: Action,
    /// Where things stand, as a sentence.
    pub standing: String,
    /// The app.
    pub app: Located,
    /// The step recorded at the end.
    pub step: Option<Step>,
    /// The key current in the vault.
    pub current_key: String,
    /// The replaced key, if any.
    pub old_key: Option<String>,
    /// The replaced pair's state at Salesforce ("Rotated", "deleted"), if known.
    pub old_state: Option<String>,
}

/// One rotation run over one entry.
pub struct Rotation<'a> {
    /// The vault.
    pub vault: &'a mut dyn RotationVault,
    /// The admin session.
    pub admin: &'a Admin<'a>,
    /// The client for proofs (token requests with the new pair).
    pub http: &'a Http,
    /// The entry rotated.
    pub name: &'a EntryName,
    /// The admin entry's name and consumer key (it must be another app).
    pub admin_entry: (&'a EntryName, Option<&'a str>),
    /// Progress, one line per step, for stderr.
    pub progress: &'a mut dyn FnMut(&str),
    /// The clock for JWT proofs (Unix seconds).
    pub now: fn() -> i64,
}

/// Find an entry's External Client App and consumer: from its `app_id`/`consumer_id`
/// fields, else by looking for its consumer key among the org's External Client Apps (those
/// with OAuth usage, then all of them by SOQL), and store what was found in the entry.
/// `None` when no External Client App has the key (a classic connected app).
pub fn find_app(
    admin: &Admin<'_>,
    vault: &mut dyn RotationVault,
    name: &EntryName,
    entry: &Entry,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Located>> {
    let field = |f: &str| entry.fields.get(f).map(|v| v.value.expose().to_owned());
    if let (Some(app_id), Some(consumer_id)) = (field(APP_ID), field(CONSUMER_ID)) {
        let consumers = admin.consumers(&app_id)?.ok_or_else(|| {
            Error::failed(format!(
                "Salesforce knows no External Client App {app_id} ({name}'s app_id): was it deleted? \
                 Remove the field (or set the right one) to look the app up again"
            ))
        })?;
        if !consumers.iter().any(|c| c.id == consumer_id) {
            return Err(Error::failed(format!(
                "app {app_id} has no consumer {consumer_id} ({name}'s consumer_id)"
            )));
        }
        return Ok(Some(Located {
            app_id,
            app_name: field(APP_NAME).unwrap_or_default(),
            consumer_id,
        }));
    }
    let Some(key) = field("consumer_key").filter(|k| !k.is_empty()) else {
        return Err(Error::no_field(
            name,
            "consumer_key",
            format!("{name} has no consumer_key: sfvault finds the app by it"),
        ));
    };
    progress(&format!(
        "looking for the External Client App whose consumer key is {}",
        tail(&key)
    ));
    let usage = admin.usage_apps()?;
    let mut found = search(admin, &usage, &key)?;
    if found.is_none() {
        // Apps that never issued a token are not in the usage list.
        let rest: Vec<AppRef> = admin
            .all_apps()?
            .into_iter()
            .filter(|a| !usage.iter().any(|s| s.id == a.id))
            .collect();
        found = search(admin, &rest, &key)?;
    }
    let Some(located) = found else {
        return Ok(None);
    };
    progress(&format!(
        "found app {} ({}), consumer {}",
        located.app_name, located.app_id, located.consumer_id
    ));
    vault.apply(Change::SetComputed {
        entry: name.to_string(),
        computed: Vec::new(),
        fields: vec![
            public(APP_ID, &located.app_id),
            public(APP_NAME, &located.app_name),
            public(CONSUMER_ID, &located.consumer_id),
        ],
    })?;
    Ok(Some(located))
}

fn search(admin: &Admin<'_>, apps: &[AppRef], key: &str) -> Result<Option<Located>> {
    for app in apps {
        if let Some(consumers) = admin.consumers(&app.id)?
            && let Some(c) = consumers.iter().find(|c| c.key == key)
        {
            return Ok(Some(Located {
                app_id: app.id.clone(),
                app_name: app.developer_name.clone(),
                consumer_id: c.id.clone(),
            }));
        }
    }
    Ok(None)
}

/// The last characters of a key, enough to tell keys apart in messages.
pub fn tail(key: &str) -> String {
    let n = key.len();
    format!("…{}", &key[n.saturating_sub(6)..])
}

/// Whether `e` means Salesforce may or may not have done what was asked.
fn unsure(e: &Error) -> bool {
    e.kind() == ErrorKind::Network
}

impl Rotation<'_> {
    fn say(&mut self, line: &str) {
        (self.progress)(line);
    }

    fn entry(&mut self) -> Result<Entry> {
        self.vault.entry(self.name)
    }

    fn key_of(&self, entry: &Entry) -> Result<String> {
        entry
            .fields
            .get("consumer_key")
            .map(|f| f.value.expose().to_owned())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::no_field(
                    self.name,
                    "consumer_key",
                    format!("{} has no consumer_key to rotate", self.name),
                )
            })
    }

    fn record(&mut self, state: &State, fields: Vec<NewField>) -> Result<()> {
        record(self.vault, self.name, state, fields)
    }

    /// Find the app and consumer (see [`find_app`]); a key no External Client App has is an
    /// error that says what to do instead.
    pub fn locate(&mut self, entry: &Entry) -> Result<Located> {
        let name = self.name;
        let org = self.admin.instance_url().to_owned();
        find_app(self.admin, self.vault, name, entry, self.progress)?.ok_or_else(|| {
            Error::failed(format!(
                "no External Client App in the admin's org ({org}) has {name}'s consumer key (is \
                 --admin an entry of the same org?). If it is a classic connected app, Salesforce \
                 has no API to rotate its key and secret: regenerate them in Setup and store the new \
                 secret with `sfvault rotate {name} consumer_secret` (it shows the Setup path)"
            ))
        })
    }

    /// Refuse an admin entry that is the rotated entry or holds one of the app's keys.
    fn check_admin(&self, keys: &[&str]) -> Result<()> {
        let (admin_name, admin_key) = self.admin_entry;
        if admin_name == self.name || admin_key.is_some_and(|k| keys.contains(&k)) {
            return Err(Error::Usage(format!(
                "the admin entry {admin_name} is the app being rotated: its token would be cut off \
                 by the rotation. Use an entry of another connected app with the admin's rights"
            )));
        }
        Ok(())
    }

    fn outcome(&mut self, action: Action, app: &Located, standing: String) -> Result<Outcome> {
        let entry = self.entry()?;
        let state = State::of(self.name, &entry)?;
        let old_state = match state.as_ref().map(|s| s.step) {
            Some(Step::Promoted) => Some("Rotated, still valid until retired".to_owned()),
            Some(Step::Retired) => Some("deleted".to_owned()),
            _ => None,
        };
        Ok(Outcome {
            action,
            standing,
            app: app.clone(),
            step: state.as_ref().map(|s| s.step),
            current_key: self.key_of(&entry)?,
            old_key: state.and_then(|s| s.old_key),
            old_state,
        })
    }

    /// A new rotation.
    pub fn start(&mut self) -> Result<Outcome, Stopped> {
        let entry = self.entry()?;
        if let Some(state) = State::of(self.name, &entry)?
            && state.step.in_progress()
        {
            return Err(Error::Usage(format!(
                "a rotation of {} is in progress (step {}): finish it with `sfvault rotate {} {} --resume --admin …` \
                 or undo it with `--abort`",
                self.name,
                state.step.name(),
                self.name,
                if state.kind == Kind::Consumer { "consumer" } else { "private_key" }
            ))
            .into());
        }
        if self.vault.history_limit()? == 0 {
            return Err(Error::Usage(
                "this vault keeps no past values (history limit 0), so the old pair would be lost: \
                 raise it with `sfvault config history-limit 5` first"
                    .into(),
            )
            .into());
        }
        let key = self.key_of(&entry)?;
        self.check_admin(&[&key])?;
        let app = self.locate(&entry)?;
        let primary = self.admin.current_key(&app.app_id, &app.consumer_id)?;
        if primary != key {
            return Err(Error::failed(format!(
                "{}'s consumer key ({}) is not the app's current key at Salesforce ({}): someone rotated \
                 in Setup, or the vault is stale. Bring the vault up to date first (`sfvault set {} consumer_key`)",
                self.name,
                tail(&key),
                tail(&primary),
                self.name
            ))
            .into());
        }
        let slot = self.admin.staged(&app.app_id, &app.consumer_id)?;
        if let Some(pair) = &slot {
            self.check_admin(&[&key, &pair.key])?;
        }
        self.clear_leftover(&app, slot)?;
        let mut state = State::new(Kind::Consumer, Step::Staging);
        state.old_key = Some(key);
        self.record(&state, Vec::new())?;
        self.stage_and_finish(&app, state)
    }

    /// Delete a leftover `Rotated` or `Expired` pair; refuse an `Active` one sfvault did not stage.
    fn clear_leftover(&mut self, app: &Located, slot: Option<StagedPair>) -> Result<()> {
        let Some(pair) = slot else {
            return Ok(());
        };
        match pair.state {
            StagedState::Rotated | StagedState::Expired => {
                self.say(&format!(
                    "deleting the leftover {} pair in the staged slot (key {}, created {} by {})",
                    pair.state.name(),
                    tail(&pair.key),
                    pair.created_date,
                    pair.created_by
                ));
                self.admin
                    .delete_staged(&app.app_id, &app.consumer_id, &pair.id)?;
                Ok(())
            }
            _ => Err(Error::failed(format!(
                "the app's staged slot holds a pair in state {} (key {}, created {} by {}) that this \
                 rotation did not stage. Promote or delete it in Setup, then run this again",
                pair.state.name(),
                tail(&pair.key),
                pair.created_date,
                pair.created_by
            ))),
        }
    }

    fn standing_staged(&self) -> String {
        format!(
            "The new pair is current in the vault and staged at Salesforce; the old pair (in history) \
             is still primary there. Both work. Finish with `sfvault rotate {0} consumer --resume --admin {1}` \
             or undo with `--abort --admin {1}`.",
            self.name, self.admin_entry.0
        )
    }

    fn stage_and_finish(&mut self, app: &Located, state: State) -> Result<Outcome, Stopped> {
        self.say("staging a new consumer key and secret at Salesforce");
        let pair = match self.admin.stage(&app.app_id, &app.consumer_id) {
            Ok(pair) => pair,
            Err(e) if unsure(&e) => {
                return Err(Stopped::new(
                    e,
                    format!(
                        "The vault still holds the old pair, which works. Salesforce may or may not have \
                         staged a new one: `sfvault rotate {0} consumer --resume --admin {1}` picks it up \
                         (or stages one), `--abort --admin {1}` deletes it.",
                        self.name, self.admin_entry.0
                    ),
                ));
            }
            Err(e) => {
                // Record the end only if the vault still holds this run's record (another run
                // may have started meanwhile; its record is not ours to overwrite).
                let ours = self
                    .entry()
                    .and_then(|entry| State::of(self.name, &entry))
                    .is_ok_and(|now| now.as_ref() == Some(&state));
                if ours {
                    self.record(&state.at(Step::Aborted), Vec::new())
                        .map_err(|w| {
                            Stopped::new(
                                w,
                                "The old pair is current in the vault and at Salesforce.",
                            )
                        })?;
                }
                return Err(Stopped::new(
                    e,
                    "Nothing was staged: the old pair is current in the vault and at Salesforce.",
                ));
            }
        };
        self.adopt(app, state, pair)
    }

    /// Store a staged pair as current (old pair to history, in one change) and carry on.
    fn adopt(&mut self, app: &Located, state: State, pair: StagedPair) -> Result<Outcome, Stopped> {
        let mut staged = state.at(Step::Staged);
        staged.staged_id = Some(pair.id.clone());
        self.say(&format!(
            "storing the new pair (key {}) in the vault; the old pair goes to history",
            tail(&pair.key)
        ));
        let fields = vec![
            public("consumer_key", &pair.key),
            NewField {
                name: "consumer_secret".into(),
                value: pair.secret,
                secret: true,
            },
        ];
        if let Err(e) = self.record(&staged, fields) {
            return Err(Stopped::new(
                e,
                format!(
                    "The vault could not store the staged pair; it still holds the old pair, which works. \
                     `sfvault rotate {0} consumer --resume --admin {1}` stores it, `--abort` deletes it.",
                    self.name, self.admin_entry.0
                ),
            ));
        }
        self.prove_and_promote(app, staged)
    }

    fn prove_and_promote(&mut self, app: &Located, state: State) -> Result<Outcome, Stopped> {
        let staged_id = state.staged_id.clone().unwrap_or_default();
        self.say("proving the new pair: a token request with it");
        let entry = self
            .entry()
            .map_err(|e| Stopped::new(e, self.standing_staged()))?;
        if let Err(e) = super::prove(self.http, self.name, &entry, (self.now)()) {
            if unsure(&e) {
                return Err(Stopped::new(e, self.standing_staged()));
            }
            return self.roll_back(app, &state, e);
        }
        self.say("promoting the new pair to primary at Salesforce");
        match self
            .admin
            .promote(&app.app_id, &app.consumer_id, &staged_id)
        {
            Ok(()) => {}
            Err(e) if unsure(&e) => return Err(Stopped::new(e, self.standing_staged())),
            Err(e) => return self.roll_back(app, &state, e),
        }
        self.finish_promoted(app, &state)
    }

    fn finish_promoted(&mut self, app: &Located, state: &State) -> Result<Outcome, Stopped> {
        self.record(&state.at(Step::Promoted), Vec::new())
            .map_err(|e| Stopped::new(e, self.standing_staged()))?;
        let standing = format!(
            "The new pair is primary at Salesforce and current in the vault. The old pair ({}, in \
             history) is Rotated: still valid until you retire it with `sfvault rotate {} consumer --retire --admin {}` \
             once every user and CI machine has the new one.",
            state.old_key.as_deref().map(tail).unwrap_or_default(),
            self.name,
            self.admin_entry.0
        );
        Ok(self.outcome(Action::Rotated, app, standing)?)
    }

    /// Salesforce refused the new pair (proof or promotion): the old pair back in the vault
    /// first (it is still primary), then the staged pair deleted.
    fn roll_back(
        &mut self,
        app: &Located,
        state: &State,
        cause: Error,
    ) -> Result<Outcome, Stopped> {
        self.say("Salesforce refused: putting the old pair back and deleting the staged one");
        match self.undo(app, state) {
            Ok(_) => Err(Stopped::new(
                cause,
                "Rolled back: the old pair is current in the vault and primary at Salesforce; the \
                 staged pair was deleted.",
            )),
            Err(stopped) => Err(Stopped::new(cause, stopped.standing)),
        }
    }

    /// Put the old pair back as current in the vault (recording "aborting"), then delete the
    /// staged pair, then record "aborted".
    fn undo(&mut self, app: &Located, state: &State) -> Result<(), Stopped> {
        let old_key = state.old_key.clone().unwrap_or_default();
        let entry = self.entry()?;
        if self.key_of(&entry)? != old_key {
            let restored = self.restore_old(&entry, &old_key)?;
            self.record(&state.at(Step::Aborting), restored)?;
        } else if state.step != Step::Aborting {
            self.record(&state.at(Step::Aborting), Vec::new())?;
        }
        if let Some(id) = &state.staged_id {
            self.say("deleting the staged pair at Salesforce");
            if let Err(e) = self.admin.delete_staged(&app.app_id, &app.consumer_id, id) {
                return Err(Stopped::new(
                    e,
                    format!(
                        "The old pair is current in the vault and primary at Salesforce; the staged pair \
                         may still exist there: `sfvault rotate {} consumer --abort --admin {}` deletes it.",
                        self.name, self.admin_entry.0
                    ),
                ));
            }
        }
        self.record(&state.at(Step::Aborted), Vec::new())?;
        Ok(())
    }

    /// The old pair's values from history: the key whose value is `old_key`, and the secret
    /// replaced in the same change.
    fn restore_old(&self, entry: &Entry, old_key: &str) -> Result<Vec<NewField>> {
        let lost = || {
            Error::failed(format!(
                "the old pair ({}) is no longer in {}'s history, so it cannot be put back",
                tail(old_key),
                self.name
            ))
        };
        let key_field = entry.fields.get("consumer_key").ok_or_else(lost)?;
        let past = key_field
            .history
            .iter()
            .rev()
            .find(|p| p.value.expose() == old_key)
            .ok_or_else(lost)?;
        let mut fields = vec![public("consumer_key", old_key)];
        if let Some(secret) = entry.fields.get("consumer_secret")
            && let Some(old) = secret
                .history
                .iter()
                .rev()
                .find(|p| p.replaced_at == past.replaced_at)
        {
            fields.push(NewField {
                name: "consumer_secret".into(),
                value: SecretString::new(old.value.expose().to_owned()),
                secret: true,
            });
        }
        Ok(fields)
    }

    fn recorded(&mut self) -> Result<(Entry, Option<State>), Stopped> {
        let entry = self.entry()?;
        let state = State::of(self.name, &entry)?;
        if let Some(s) = &state
            && s.kind != Kind::Consumer
        {
            return Err(Error::Usage(format!(
                "{}'s recorded rotation is of its private key: use `sfvault rotate {} private_key …`",
                self.name, self.name
            ))
            .into());
        }
        Ok((entry, state))
    }

    fn app_of(&mut self, entry: &Entry) -> Result<Located, Stopped> {
        Ok(self.locate(entry)?)
    }

    /// Finish a rotation from what the vault recorded and what Salesforce says.
    pub fn resume(&mut self) -> Result<Outcome, Stopped> {
        let (entry, state) = self.recorded()?;
        let Some(state) = state.filter(|s| s.step.in_progress()) else {
            return self.nothing(&entry, "no rotation in progress");
        };
        let app = self.app_of(&entry)?;
        let vault_key = self.key_of(&entry)?;
        self.check_admin(&[&vault_key])?;
        match state.step {
            Step::Staging => {
                let slot = self.admin.staged(&app.app_id, &app.consumer_id)?;
                match slot {
                    Some(pair)
                        if pair.state == StagedState::Active
                            && Some(&pair.key) != state.old_key.as_ref() =>
                    {
                        self.say("Salesforce holds the pair staged before the interruption");
                        self.adopt(&app, state, pair)
                    }
                    other => {
                        self.clear_leftover(&app, other)?;
                        self.stage_and_finish(&app, state)
                    }
                }
            }
            Step::Staged => {
                let primary = self.admin.current_key(&app.app_id, &app.consumer_id)?;
                if primary == vault_key {
                    self.say("Salesforce had already promoted the new pair");
                    return self.finish_promoted(&app, &state);
                }
                let slot = self.admin.staged(&app.app_id, &app.consumer_id)?;
                match slot {
                    Some(pair) if pair.state == StagedState::Active && pair.key == vault_key => {
                        self.prove_and_promote(&app, state)
                    }
                    _ => {
                        let gone = Error::failed(format!(
                            "the staged pair ({}) is gone at Salesforce (expired or deleted)",
                            tail(&vault_key)
                        ));
                        self.undo(&app, &state)?;
                        Err(Stopped::new(
                            gone,
                            format!(
                                "The old pair is current again in the vault and primary at Salesforce. \
                                 Start a new rotation with `sfvault rotate {} consumer --at-salesforce --admin {}`.",
                                self.name, self.admin_entry.0
                            ),
                        ))
                    }
                }
            }
            _ => {
                self.undo(&app, &state)?;
                self.outcome(
                    Action::Aborted,
                    &app,
                    "The rotation was being undone and now is: the old pair is current in the vault and primary at Salesforce.".into(),
                )
                .map_err(Stopped::from)
            }
        }
    }

    /// Undo a rotation that has not been promoted.
    pub fn abort(&mut self) -> Result<Outcome, Stopped> {
        let (entry, state) = self.recorded()?;
        let Some(state) = state.filter(|s| s.step.in_progress()) else {
            return self.nothing(&entry, "no rotation in progress, nothing to undo");
        };
        let app = self.app_of(&entry)?;
        let vault_key = self.key_of(&entry)?;
        match state.step {
            Step::Staging => {
                let slot = self.admin.staged(&app.app_id, &app.consumer_id)?;
                let mut undone = state.clone();
                if let Some(pair) = slot
                    && pair.state == StagedState::Active
                    && Some(&pair.key) != state.old_key.as_ref()
                {
                    undone.staged_id = Some(pair.id);
                }
                self.undo(&app, &undone)?;
            }
            Step::Staged => {
                let primary = self.admin.current_key(&app.app_id, &app.consumer_id)?;
                if primary == vault_key {
                    self.say("Salesforce had already promoted the new pair: there is nothing left to undo");
                    return self.finish_promoted(&app, &state);
                }
                self.undo(&app, &state)?;
            }
            _ => self.undo(&app, &state)?,
        }
        Ok(self.outcome(
            Action::Aborted,
            &app,
            "Undone: the old pair is current in the vault and primary at Salesforce; no pair is staged.".into(),
        )?)
    }

    /// Delete the old (`Rotated`) pair at Salesforce after a promotion.
    pub fn retire(&mut self) -> Result<Outcome, Stopped> {
        let (entry, state) = self.recorded()?;
        let step = state.as_ref().map(|s| s.step);
        if step.is_some_and(Step::in_progress) {
            return Err(Error::Usage(format!(
                "the rotation of {} is not finished: run `sfvault rotate {} consumer --resume --admin …` first",
                self.name, self.name
            ))
            .into());
        }
        let Some(state) = state.filter(|s| s.step == Step::Promoted) else {
            return self.nothing(
                &entry,
                if step == Some(Step::Retired) {
                    "the old pair was already retired"
                } else {
                    "no promoted rotation: nothing to retire"
                },
            );
        };
        let app = self.app_of(&entry)?;
        let vault_key = self.key_of(&entry)?;
        self.check_admin(&[&vault_key])?;
        let primary = self.admin.current_key(&app.app_id, &app.consumer_id)?;
        if primary != vault_key {
            return Err(Error::failed(format!(
                "the vault's consumer key ({}) is not the app's primary at Salesforce ({}): not retiring anything",
                tail(&vault_key),
                tail(&primary)
            ))
            .into());
        }
        match self.admin.staged(&app.app_id, &app.consumer_id)? {
            Some(pair) if pair.state == StagedState::Active => {
                return Err(Error::failed(format!(
                    "the staged slot holds an Active pair ({}) that is not the old one: not deleting it",
                    tail(&pair.key)
                ))
                .into());
            }
            Some(pair) => {
                self.say(&format!(
                    "deleting the old pair ({}, {}) at Salesforce",
                    tail(&pair.key),
                    pair.state.name()
                ));
                self.admin
                    .delete_staged(&app.app_id, &app.consumer_id, &pair.id)?;
            }
            None => self.say("the old pair is already gone at Salesforce"),
        }
        self.record(&state.at(Step::Retired), Vec::new())?;
        Ok(self.outcome(
            Action::Retired,
            &app,
            "The old pair is deleted at Salesforce; the new pair is primary there and current in the vault.".into(),
        )?)
    }

    fn nothing(&mut self, entry: &Entry, why: &str) -> Result<Outcome, Stopped> {
        let field = |f: &str| {
            entry
                .fields
                .get(f)
                .map(|v| v.value.expose().to_owned())
                .unwrap_or_default()
        };
        let app = Located {
            app_id: field(APP_ID),
            app_name: field(APP_NAME),
            consumer_id: field(CONSUMER_ID),
        };
        Ok(self.outcome(Action::Nothing, &app, format!("Nothing to do: {why}."))?)
    }
}
