//! An External Client App's consumer key and secret, rotated through its staged slot:
//! find the app → check the vault's key is the primary → clear a leftover pair → record
//! "staging" → stage → store the new pair (old pair to history, one save) → prove it with a
//! token request → promote → record "promoted"; later, retire (delete the old, `Rotated` pair).
//!
//! The vault's current pair works at Salesforce at every step. Nothing is deleted at Salesforce
//! that is not this rotation's by Salesforce's own answer read just before (never by a recorded
//! id alone): a pair staged by someone else, or the pair the vault holds, is left alone.
//! [`Rotation::resume`] and [`Rotation::abort`] converge from any recorded step.

use super::{Kind, RotationVault, Run, State, Step, Stopped, fingerprint, public, record};
use crate::error::{Error, ErrorKind, Result};
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
    /// The replaced pair's state at Salesforce ("Rotated, …", "deleted"), if known.
    pub old_state: Option<String>,
}

/// A rotation of an entry's consumer pair (the run's parts in [`Run`]).
pub struct Rotation<'a> {
    /// The vault, the admin session, the entry and the clock.
    pub run: Run<'a>,
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
                "the admin's org ({}) knows no External Client App {app_id} ({name}'s app_id): is --admin \
                 an entry of the same org, or was the app deleted? If the field is wrong, set the right one",
                admin.instance_url()
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
    let last: String = key
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{last}")
}

/// Whether `e` leaves it open whether Salesforce did what was asked, or is passing (a 5xx, the
/// network, an expired admin session, a rate limit): never a reason to undo a proven pair.
pub fn unsure(e: &Error) -> bool {
    match e {
        Error::Api { code, .. } => {
            matches!(
                code.as_str(),
                "INVALID_SESSION_ID" | "REQUEST_LIMIT_EXCEEDED"
            )
        }
        Error::OAuth { error, .. } => matches!(
            error.as_str(),
            "rate_limit_exceeded" | "server_error" | "temporarily_unavailable"
        ),
        other => other.kind() == ErrorKind::Network,
    }
}

/// Clock difference tolerated between this machine and Salesforce when telling whether a
/// staged pair was created by this run.
const CLOCK_SKEW_SECS: i64 = 300;

/// How the undo of a rotation ended.
enum Undone {
    /// The old pair is current in the vault and primary at Salesforce; nothing of ours staged.
    RolledBack,
    /// Salesforce had promoted the new pair meanwhile: it is current in the vault again.
    PromotedMeanwhile,
}

/// The values to write to put a past pair back, and whether the secret field must go (it did
/// not exist before that pair was replaced).
struct PastPair {
    fields: Vec<NewField>,
    drop_secret: bool,
}

impl Rotation<'_> {
    fn say(&mut self, line: &str) {
        (self.run.progress)(line);
    }

    fn entry(&mut self) -> Result<Entry> {
        self.run.vault.entry(self.run.name)
    }

    fn key_of(&self, entry: &Entry) -> Result<String> {
        entry
            .fields
            .get("consumer_key")
            .map(|f| f.value.expose().to_owned())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::no_field(
                    self.run.name,
                    "consumer_key",
                    format!("{} has no consumer_key to rotate", self.run.name),
                )
            })
    }

    fn record(&mut self, state: &State, fields: Vec<NewField>) -> Result<()> {
        record(self.run.vault, self.run.name, state, fields)
    }

    fn recorded_state(&mut self) -> Result<Option<State>> {
        let entry = self.entry()?;
        State::of(self.run.name, &entry, Kind::Consumer)
    }

    /// Find the app and consumer (see [`find_app`]); a key no External Client App has is an
    /// error that says what to do instead.
    pub fn locate(&mut self, entry: &Entry) -> Result<Located> {
        let name = self.run.name;
        let org = self.run.admin.instance_url().to_owned();
        find_app(self.run.admin, self.run.vault, name, entry, self.run.progress)?.ok_or_else(|| {
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
        let (admin_name, admin_key) = self.run.admin_entry;
        if admin_name == self.run.name || admin_key.is_some_and(|k| keys.contains(&k)) {
            return Err(Error::Usage(format!(
                "the admin entry {admin_name} is the app being rotated: its token would be cut off \
                 by the rotation. Use an entry of another connected app with the admin's rights"
            )));
        }
        Ok(())
    }

    /// Whether the Active pair `pair` in the slot is the one this run staged: created by the
    /// admin (when Salesforce names who) and not before the run started (when it says when).
    fn is_ours(&self, pair: &StagedPair, state: &State) -> bool {
        if pair.state != StagedState::Active || state.old_key.as_deref() == Some(&pair.key) {
            return false;
        }
        if let Some(new_key) = &state.new_key {
            return *new_key == pair.key;
        }
        let by_admin = !pair.created_by.is_empty()
            && self
                .run
                .admin_identity
                .iter()
                .any(|who| who.eq_ignore_ascii_case(&pair.created_by));
        let by_someone_else =
            !pair.created_by.is_empty() && !self.run.admin_identity.is_empty() && !by_admin;
        let after_start = match (
            crate::timefmt::parse_rfc3339(&pair.created_date),
            state.since,
        ) {
            (Some(created), Some(since)) => Some(created >= since - CLOCK_SKEW_SECS),
            _ => None,
        };
        !by_someone_else && after_start.unwrap_or(by_admin) && after_start != Some(false)
    }

    fn outcome(&mut self, action: Action, app: &Located, standing: String) -> Result<Outcome> {
        let entry = self.entry()?;
        let state = State::of(self.run.name, &entry, Kind::Consumer)?;
        let now = (self.run.now)();
        let old_state = match state.as_ref().map(|s| s.step) {
            Some(Step::Promoted) => entry.fields.get(crate::vault::fields::ROTATION).map(|f| {
                if now - f.changed_at >= super::STAGED_LIFETIME_SECS {
                    "Rotated, expired".to_owned()
                } else {
                    "Rotated, valid until retired or 30 days old".to_owned()
                }
            }),
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
        let (app, state) = self.prepare().map_err(Stopped::untouched)?;
        self.stage_and_finish(&app, state)
    }

    /// Everything before the first change of the current pair: checks, the app, a leftover
    /// pair cleared, and the "staging" record.
    fn prepare(&mut self) -> Result<(Located, State)> {
        let entry = self.entry()?;
        let recorded = State::of(self.run.name, &entry, Kind::Consumer)?;
        if let Some(state) = &recorded
            && state.step.in_progress()
        {
            return Err(Error::Usage(format!(
                "a rotation of {0} is in progress (step {1}): finish it with `sfvault rotate {0} consumer \
                 --resume --admin …` or undo it with `--abort`",
                self.run.name,
                state.step.name()
            )));
        }
        if self.run.vault.history_limit()? == 0 {
            return Err(Error::Usage(
                "this vault keeps no past values (history limit 0), so the old pair would be lost: \
                 raise it with `sfvault config history-limit 5` first"
                    .into(),
            ));
        }
        let key = self.key_of(&entry)?;
        self.check_admin(&[&key])?;
        let app = self.locate(&entry)?;
        let primary = self.run.admin.current_key(&app.app_id, &app.consumer_id)?;
        if primary != key {
            return Err(Error::failed(format!(
                "{}'s consumer key ({}) is not the current key of app {} at Salesforce ({}): someone \
                 rotated in Setup, or the vault is stale, or the entry's app_id names another app. \
                 Bring the vault up to date first",
                self.run.name,
                tail(&key),
                app.app_id,
                tail(&primary)
            )));
        }
        let slot = self.run.admin.staged(&app.app_id, &app.consumer_id)?;
        if let Some(pair) = &slot {
            self.check_admin(&[&key, &pair.key])?;
        }
        self.clear_leftover(&app, slot, &key, recorded.as_ref())?;
        let mut state = State::new(Kind::Consumer, Step::Staging);
        state.old_key = Some(key);
        state.since = Some((self.run.now)());
        self.record(&state, Vec::new())?;
        Ok((app, state))
    }

    /// Delete a leftover `Rotated` or `Expired` pair from the slot; refuse an `Active` one, the
    /// vault's own pair, and the pair the last rotation left valid until `--retire`.
    fn clear_leftover(
        &mut self,
        app: &Located,
        slot: Option<StagedPair>,
        vault_key: &str,
        recorded: Option<&State>,
    ) -> Result<()> {
        let Some(pair) = slot else {
            return Ok(());
        };
        let described = format!(
            "key {}, created {} by {}",
            tail(&pair.key),
            pair.created_date,
            pair.created_by
        );
        if pair.key == vault_key {
            return Err(Error::failed(format!(
                "the staged slot holds the vault's own pair ({described}), so it is not the app's primary: \
                 bring the vault up to date first"
            )));
        }
        let kept_for_retire = recorded.is_some_and(|s| {
            s.step == Step::Promoted && s.old_key.as_deref() == Some(pair.key.as_str())
        });
        match pair.state {
            StagedState::Rotated if kept_for_retire => Err(Error::Usage(format!(
                "the pair the last rotation replaced ({described}) is still valid at Salesforce, as \
                 promised until it is retired: once everyone has the current pair, run `sfvault rotate {} \
                 consumer --retire --admin {}`, then rotate again",
                self.run.name, self.run.admin_entry.0
            ))),
            StagedState::Rotated | StagedState::Expired => {
                self.say(&format!(
                    "deleting the leftover {} pair in the staged slot ({described})",
                    pair.state.name()
                ));
                self.run
                    .admin
                    .delete_staged(&app.app_id, &app.consumer_id, &pair.id)?;
                Ok(())
            }
            _ => Err(Error::failed(format!(
                "the app's staged slot holds a pair in state {} ({described}) that this rotation did not \
                 stage. Promote or delete it in Setup, then run this again",
                pair.state.name()
            ))),
        }
    }

    fn standing_staging(&self) -> String {
        format!(
            "The vault still holds the old pair, which works. Salesforce may or may not have staged a new \
             one: `sfvault rotate {0} consumer --resume --admin {1}` picks it up (or stages one), \
             `--abort --admin {1}` deletes it.",
            self.run.name, self.run.admin_entry.0
        )
    }

    fn standing_staged(&self) -> String {
        format!(
            "The new pair is current in the vault and staged at Salesforce; the old pair (in history) is \
             still primary there. Both work, the staged one for 30 days: finish with `sfvault rotate {0} \
             consumer --resume --admin {1}` or undo with `--abort --admin {1}` before then.",
            self.run.name, self.run.admin_entry.0
        )
    }

    fn stage_and_finish(&mut self, app: &Located, state: State) -> Result<Outcome, Stopped> {
        self.say("staging a new consumer key and secret at Salesforce");
        let pair = match self.run.admin.stage(&app.app_id, &app.consumer_id) {
            Ok(pair) => pair,
            Err(e) if unsure(&e) => return Err(Stopped::new(e, self.standing_staging())),
            Err(e) => {
                // Record the end only over this run's own record (another run may have
                // started meanwhile; its record is not ours to overwrite).
                if self
                    .recorded_state()
                    .is_ok_and(|now| now.as_ref() == Some(&state))
                {
                    self.record(&state.at(Step::Aborted), Vec::new())
                        .map_err(|w| Stopped::new(w, self.standing_staging()))?;
                }
                return Err(Stopped::new(
                    e,
                    "Nothing was staged: the old pair is current in the vault and primary at Salesforce.",
                ));
            }
        };
        self.adopt(app, state, pair)
    }

    /// Store a staged pair as current (old pair to history, in one change) and carry on.
    fn adopt(&mut self, app: &Located, state: State, pair: StagedPair) -> Result<Outcome, Stopped> {
        let Some(secret) = pair.secret else {
            return Err(Stopped::new(
                Error::network("Salesforce's staged pair came without its secret"),
                self.standing_staging(),
            ));
        };
        let mut staged = state.at(Step::Staged);
        staged.staged_id = Some(pair.id.clone());
        staged.new_key = Some(pair.key.clone());
        staged.new_secret_fp = Some(super::fingerprint(&secret));
        self.say(&format!(
            "storing the new pair (key {}) in the vault; the old pair goes to history",
            tail(&pair.key)
        ));
        let fields = vec![
            public("consumer_key", &pair.key),
            NewField {
                name: "consumer_secret".into(),
                value: secret,
                secret: true,
            },
        ];
        if let Err(e) = self.record(&staged, fields) {
            return Err(Stopped::new(
                e,
                format!(
                    "The vault could not store the staged pair; it still holds the old pair, which works. \
                     `sfvault rotate {0} consumer --resume --admin {1}` stores it, `--abort` deletes it.",
                    self.run.name, self.run.admin_entry.0
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
        if let Err(e) = super::prove(self.run.http, self.run.name, &entry, None, (self.run.now)()) {
            if unsure(&e) {
                return Err(Stopped::new(e, self.standing_staged()));
            }
            return self.roll_back(app, &state, e);
        }
        self.say("promoting the new pair to primary at Salesforce");
        match self
            .run
            .admin
            .promote(&app.app_id, &app.consumer_id, &staged_id)
        {
            Ok(()) => {}
            Err(e) if unsure(&e) => return Err(Stopped::new(e, self.standing_staged())),
            Err(e) => return self.roll_back(app, &state, e),
        }
        self.finish_promoted(app, &state)
    }

    fn standing_promoted(&self, state: &State) -> String {
        format!(
            "The new pair is primary at Salesforce and current in the vault. The old pair ({}, in \
             history) is Rotated: still valid (for 30 days at most) until you retire it with `sfvault \
             rotate {} consumer --retire --admin {}` once every user and CI machine has the new one.",
            state.old_key.as_deref().map(tail).unwrap_or_default(),
            self.run.name,
            self.run.admin_entry.0
        )
    }

    fn finish_promoted(&mut self, app: &Located, state: &State) -> Result<Outcome, Stopped> {
        self.record(&state.at(Step::Promoted), Vec::new())
            .map_err(|e| Stopped::new(e, self.standing_staged()))?;
        let standing = self.standing_promoted(state);
        Ok(self.outcome(Action::Rotated, app, standing)?)
    }

    /// Salesforce refused the new pair (proof or promotion): undo, and say so with its words.
    fn roll_back(
        &mut self,
        app: &Located,
        state: &State,
        cause: Error,
    ) -> Result<Outcome, Stopped> {
        self.say("Salesforce refused: putting the old pair back and deleting the staged one");
        match self.undo(app, state) {
            Ok(Undone::RolledBack) => Err(Stopped::new(
                cause,
                "Rolled back: the old pair is current in the vault and primary at Salesforce; the \
                 staged pair was deleted.",
            )),
            Ok(Undone::PromotedMeanwhile) => {
                Err(Stopped::new(cause, self.standing_promoted(state)))
            }
            Err(failed) => Err(Stopped::new(
                cause,
                format!(
                    "Putting things back failed too ({}). {}",
                    failed.error, failed.standing
                ),
            )),
        }
    }

    /// Undo from what Salesforce says now: if it promoted the new pair meanwhile, make that pair
    /// current again; otherwise put the old pair back in the vault first (it is the primary),
    /// then delete the staged pair if, and only if, the slot holds this rotation's new pair.
    fn undo(&mut self, app: &Located, state: &State) -> Result<Undone, Stopped> {
        let name = self.run.name;
        let again = || {
            format!(
                "The rotation record is unchanged: `sfvault rotate {name} consumer --abort --admin …` \
                 takes it up again."
            )
        };
        let old_key = state.old_key.clone().unwrap_or_default();
        let primary = self
            .run
            .admin
            .current_key(&app.app_id, &app.consumer_id)
            .map_err(|e| Stopped::new(e, again()))?;
        let entry = self.entry().map_err(|e| Stopped::new(e, again()))?;
        let vault_key = self.key_of(&entry).map_err(|e| Stopped::new(e, again()))?;
        if state.new_key.as_deref() == Some(primary.as_str()) {
            self.say("Salesforce had already promoted the new pair");
            let restored = if vault_key == primary {
                None
            } else {
                Some(
                    self.past_pair(&entry, &primary, state)
                        .map_err(|e| Stopped::new(e, again()))?,
                )
            };
            self.put(state.at(Step::Promoted), restored)
                .map_err(|e| Stopped::new(e, again()))?;
            return Ok(Undone::PromotedMeanwhile);
        }
        if primary != old_key {
            return Err(Stopped::new(
                Error::failed(format!(
                    "the app's primary key at Salesforce ({}) is neither the pair this rotation replaced \
                     ({}) nor the one it staged: someone rotated in Setup meanwhile",
                    tail(&primary),
                    tail(&old_key)
                )),
                format!(
                    "Nothing was deleted. The vault holds {}; get the app's current pair from Setup, \
                     store it with `sfvault set`, then `--abort` again.",
                    tail(&vault_key)
                ),
            ));
        }
        if vault_key != old_key {
            let restored = self
                .past_pair(&entry, &old_key, state)
                .map_err(|e| Stopped::new(e, again()))?;
            self.put(state.at(Step::Aborting), Some(restored))
                .map_err(|e| Stopped::new(e, again()))?;
        } else if state.step != Step::Aborting {
            self.record(&state.at(Step::Aborting), Vec::new())
                .map_err(|e| Stopped::new(e, again()))?;
        }
        let standing_aborting = format!(
            "The old pair is current in the vault and primary at Salesforce; the staged pair may still \
             exist there: `sfvault rotate {name} consumer --abort --admin {}` deletes it.",
            self.run.admin_entry.0
        );
        let slot = self
            .run
            .admin
            .staged(&app.app_id, &app.consumer_id)
            .map_err(|e| Stopped::new(e, standing_aborting.clone()))?;
        match slot {
            Some(pair)
                if state.new_key.as_deref() == Some(pair.key.as_str())
                    && pair.key != old_key
                    && pair.state != StagedState::Rotated =>
            {
                self.say("deleting the staged pair at Salesforce");
                self.run.admin
                    .delete_staged(&app.app_id, &app.consumer_id, &pair.id)
                    .map_err(|e| Stopped::new(e, standing_aborting.clone()))?;
            }
            Some(pair) if pair.state == StagedState::Active => self.say(&format!(
                "leaving alone the Active pair in the slot (key {}, created {} by {}): this rotation did \
                 not stage it",
                tail(&pair.key),
                pair.created_date,
                pair.created_by
            )),
            _ => {}
        }
        self.record(&state.at(Step::Aborted), Vec::new())
            .map_err(|e| Stopped::new(e, standing_aborting))?;
        Ok(Undone::RolledBack)
    }

    /// Record `state`, putting a past pair back as current in the same save.
    fn put(&mut self, state: State, pair: Option<PastPair>) -> Result<()> {
        let (fields, drop_secret) = pair.map_or((Vec::new(), false), |p| (p.fields, p.drop_secret));
        self.record(&state, fields)?;
        if drop_secret {
            self.run.vault.apply(Change::RemoveFields {
                entry: self.run.name.to_string(),
                fields: vec!["consumer_secret".into()],
            })?;
        }
        Ok(())
    }

    /// The pair whose key is `key`, from history: the key's past value and the secret replaced
    /// in the same save (or none, if the entry had no secret then). The staged secret is
    /// recognised by its fingerprint (`state.new_secret_fp`): putting the old pair back needs the
    /// staged secret still current (else the secret was changed since, and the old one cannot be
    /// told apart for sure); putting the new pair back takes the past value with that
    /// fingerprint. Anything else is an error: a key is never put back without its own secret.
    fn past_pair(&self, entry: &Entry, key: &str, state: &State) -> Result<PastPair> {
        let lost = |why: &str| {
            Error::failed(format!(
                "the pair {} is no longer whole in {}'s history ({why}), so it cannot be put back; \
                 `sfvault history {}` shows what is there",
                tail(key),
                self.run.name,
                self.run.name
            ))
        };
        let key_field = entry
            .fields
            .get("consumer_key")
            .ok_or_else(|| lost("no key"))?;
        let past = key_field
            .history
            .iter()
            .rev()
            .find(|p| p.value.expose() == key)
            .ok_or_else(|| lost("its key is not among the past values"))?;
        let mut fields = vec![public("consumer_key", key)];
        let secret = entry.fields.get("consumer_secret");
        let staged_fp = state.new_secret_fp.as_deref();
        let restoring_new = state.new_key.as_deref() == Some(key);
        let old_secret = match secret {
            None => None,
            Some(s) if restoring_new => s
                .history
                .iter()
                .rev()
                .find(|p| Some(fingerprint(&p.value).as_str()) == staged_fp),
            Some(s) => {
                if staged_fp.is_some_and(|fp| fingerprint(&s.value) != fp) {
                    return Err(lost("its secret was changed since the new pair was stored"));
                }
                s.history
                    .last()
                    .filter(|p| p.replaced_at == past.replaced_at)
            }
        };
        match (secret, old_secret) {
            (_, Some(old)) => {
                fields.push(NewField {
                    name: "consumer_secret".into(),
                    value: SecretString::new(old.value.expose().to_owned()),
                    secret: true,
                });
                Ok(PastPair {
                    fields,
                    drop_secret: false,
                })
            }
            // The secret field was created when the pair was replaced: the pair had none.
            (Some(s), None)
                if !restoring_new && s.changed_at == past.replaced_at && s.history.is_empty() =>
            {
                Ok(PastPair {
                    fields,
                    drop_secret: true,
                })
            }
            (None, None) if !restoring_new => Ok(PastPair {
                fields,
                drop_secret: false,
            }),
            _ => Err(lost("its secret was changed or trimmed from history since")),
        }
    }

    fn recorded(&mut self) -> Result<(Entry, Option<State>), Stopped> {
        let entry = self.entry()?;
        let state = State::of(self.run.name, &entry, Kind::Consumer)?;
        Ok((entry, state))
    }

    fn someone_rotated(&self, primary: &str, old_key: &str) -> Stopped {
        Stopped::new(
            Error::failed(format!(
                "the app's primary key at Salesforce ({}) is no longer the pair this rotation started \
                 from ({}): someone rotated in Setup meanwhile",
                tail(primary),
                tail(old_key)
            )),
            "Nothing was deleted or staged. Get the app's current pair from Setup, store it with \
             `sfvault set`, then `--abort` to close this rotation.",
        )
    }

    /// Finish a rotation from what the vault recorded and what Salesforce says.
    pub fn resume(&mut self) -> Result<Outcome, Stopped> {
        let (entry, state) = self.recorded()?;
        let Some(state) = state.filter(|s| s.step.in_progress()) else {
            return self.nothing(&entry, "no rotation in progress");
        };
        let app = self.locate(&entry)?;
        let vault_key = self.key_of(&entry)?;
        self.check_admin(&[&vault_key])?;
        let old_key = state.old_key.clone().unwrap_or_default();
        let primary = self.run.admin.current_key(&app.app_id, &app.consumer_id)?;
        match state.step {
            Step::Staging => {
                if primary != old_key {
                    return Err(self.someone_rotated(&primary, &old_key));
                }
                match self.run.admin.staged(&app.app_id, &app.consumer_id)? {
                    Some(pair) if self.is_ours(&pair, &state) => {
                        self.say("Salesforce holds the pair this rotation staged before it was interrupted");
                        self.adopt(&app, state, pair)
                    }
                    Some(pair) if pair.state == StagedState::Active => Err(Stopped::new(
                        Error::failed(format!(
                            "the staged slot holds an Active pair (key {}, created {} by {}) that this \
                             rotation did not stage",
                            tail(&pair.key),
                            pair.created_date,
                            pair.created_by
                        )),
                        format!(
                            "Nothing was deleted; the vault holds the old pair, which works. Promote or delete \
                             that pair in Setup, or end this rotation with `sfvault rotate {} consumer --abort \
                             --admin {}` (it leaves that pair alone).",
                            self.run.name, self.run.admin_entry.0
                        ),
                    )),
                    other => {
                        self.clear_leftover(&app, other, &vault_key, None)
                            .map_err(|e| Stopped::new(e, self.standing_staging()))?;
                        self.stage_and_finish(&app, state)
                    }
                }
            }
            Step::Staged => {
                if state.new_key.as_deref() == Some(primary.as_str()) {
                    self.say("Salesforce had already promoted the new pair");
                    let restored = if vault_key == primary {
                        None
                    } else {
                        Some(self.past_pair(&entry, &primary, &state)?)
                    };
                    self.put(state.at(Step::Staged), restored)?;
                    return self.finish_promoted(&app, &state);
                }
                if primary != old_key {
                    return Err(self.someone_rotated(&primary, &old_key));
                }
                match self.run.admin.staged(&app.app_id, &app.consumer_id)? {
                    Some(pair)
                        if pair.state == StagedState::Active
                            && state.new_key.as_deref() == Some(pair.key.as_str())
                            && pair.key == vault_key =>
                    {
                        self.prove_and_promote(&app, state)
                    }
                    _ => {
                        let gone = Error::failed(format!(
                            "the staged pair ({}) is gone at Salesforce (expired or deleted)",
                            tail(state.new_key.as_deref().unwrap_or(&vault_key))
                        ));
                        self.undo(&app, &state)?;
                        Err(Stopped::new(
                            gone,
                            format!(
                                "The old pair is current again in the vault and primary at Salesforce. \
                                 Start a new rotation with `sfvault rotate {} consumer --at-salesforce --admin {}`.",
                                self.run.name, self.run.admin_entry.0
                            ),
                        ))
                    }
                }
            }
            _ => match self.undo(&app, &state)? {
                Undone::RolledBack => Ok(self.outcome(
                    Action::Aborted,
                    &app,
                    "The rotation was being undone and now is: the old pair is current in the vault and \
                     primary at Salesforce."
                        .into(),
                )?),
                Undone::PromotedMeanwhile => {
                    let standing = self.standing_promoted(&state);
                    Ok(self.outcome(Action::Rotated, &app, standing)?)
                }
            },
        }
    }

    /// Undo a rotation that has not been promoted.
    pub fn abort(&mut self) -> Result<Outcome, Stopped> {
        let (entry, state) = self.recorded()?;
        let Some(mut state) = state.filter(|s| s.step.in_progress()) else {
            return self.nothing(&entry, "no rotation in progress, nothing to undo");
        };
        let app = self.locate(&entry)?;
        if state.step == Step::Staging {
            // Whether a pair was staged before the interruption: only one this run created is
            // deleted; the slot is read again, and the primary checked, by the undo.
            if let Some(pair) = self.run.admin.staged(&app.app_id, &app.consumer_id)?
                && self.is_ours(&pair, &state)
            {
                state.new_key = Some(pair.key.clone());
                state.staged_id = Some(pair.id);
            }
        }
        match self.undo(&app, &state)? {
            Undone::RolledBack => Ok(self.outcome(
                Action::Aborted,
                &app,
                "Undone: the old pair is current in the vault and primary at Salesforce; nothing this \
                 rotation staged is left."
                    .into(),
            )?),
            Undone::PromotedMeanwhile => {
                let standing = format!(
                    "Salesforce had already promoted the new pair, so there was nothing left to undo. {}",
                    self.standing_promoted(&state)
                );
                Ok(self.outcome(Action::Rotated, &app, standing)?)
            }
        }
    }

    /// Delete the old (`Rotated`) pair at Salesforce after a promotion.
    pub fn retire(&mut self) -> Result<Outcome, Stopped> {
        self.retire_steps().map_err(|e| {
            Stopped::new(
                e,
                "Nothing was retired: the pair the last rotation replaced is as it was at Salesforce \
                 (valid until retired, or 30 days after the rotation).",
            )
        })
    }

    fn retire_steps(&mut self) -> Result<Outcome> {
        let entry = self.entry()?;
        let state = State::of(self.run.name, &entry, Kind::Consumer)?;
        let step = state.as_ref().map(|s| s.step);
        if step.is_some_and(Step::in_progress) {
            return Err(Error::Usage(format!(
                "the rotation of {} is not finished: run `sfvault rotate {} consumer --resume --admin …` first",
                self.run.name, self.run.name
            )));
        }
        let Some(state) = state.filter(|s| s.step == Step::Promoted) else {
            return self.nothing_plain(
                &entry,
                if step == Some(Step::Retired) {
                    "the old pair was already retired"
                } else {
                    "no promoted rotation: nothing to retire"
                },
            );
        };
        let app = self.locate(&entry)?;
        let vault_key = self.key_of(&entry)?;
        self.check_admin(&[&vault_key])?;
        let primary = self.run.admin.current_key(&app.app_id, &app.consumer_id)?;
        if primary != vault_key {
            return Err(Error::failed(format!(
                "the vault's consumer key ({}) is not the app's primary at Salesforce ({}): not retiring anything",
                tail(&vault_key),
                tail(&primary)
            )));
        }
        let old_key = state.old_key.clone().unwrap_or_default();
        match self.run.admin.staged(&app.app_id, &app.consumer_id)? {
            Some(pair) if pair.key == old_key && pair.key != vault_key => {
                self.say(&format!(
                    "deleting the old pair ({}, {}) at Salesforce",
                    tail(&pair.key),
                    pair.state.name()
                ));
                self.run.admin
                    .delete_staged(&app.app_id, &app.consumer_id, &pair.id)?;
            }
            Some(pair) => self.say(&format!(
                "the old pair is already gone at Salesforce; the slot holds another pair ({}, {}), left alone",
                tail(&pair.key),
                pair.state.name()
            )),
            None => self.say("the old pair is already gone at Salesforce"),
        }
        self.record(&state.at(Step::Retired), Vec::new())?;
        self.outcome(
            Action::Retired,
            &app,
            "The old pair is deleted at Salesforce; the new pair is primary there and current in the vault.".into(),
        )
    }

    fn nothing(&mut self, entry: &Entry, why: &str) -> Result<Outcome, Stopped> {
        Ok(self.nothing_plain(entry, why)?)
    }

    fn nothing_plain(&mut self, entry: &Entry, why: &str) -> Result<Outcome> {
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
        self.outcome(Action::Nothing, &app, format!("Nothing to do: {why}."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(tail("3MVG9é12345"), "…é12345");
        assert_eq!(tail("ab"), "…ab");
    }
}
