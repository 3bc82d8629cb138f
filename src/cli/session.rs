//! Where a command's reads and writes go: the running agent for this vault, or the vault opened
//! in this process. Commands are written once against [`Session`]. If the agent stops between
//! the moment it was found and a request (its timeout, `lock`, a re-key), the session carries on
//! by opening the vault here, as if no agent had been running.

use std::collections::BTreeMap;

use sfvault::agent::client::AgentClient;
use sfvault::agent::protocol::{Request, Response};
use sfvault::handoff::EntrySource;
use sfvault::oauth::ValidToken;
use sfvault::vault::model::{self, Entry, Field, RemovedEntry};
use sfvault::vault::name::EntryName;
use sfvault::vault::store::OpenVault;
use sfvault::vault::{Change, ChangeOutcome};
use sfvault::{Error, ErrorKind, Result};

use super::Context;

/// An unlocked vault, wherever it is held.
pub struct Session<'c> {
    ctx: &'c Context,
    agent: Option<AgentClient>,
    local: Option<Box<OpenVault>>,
}

fn unexpected(what: &str) -> Error {
    Error::failed(format!(
        "the agent answered {what} with something else; is it another version?"
    ))
}

impl<'c> Session<'c> {
    /// Through the agent of the vault if one answers, else opened here.
    pub fn new(ctx: &'c Context) -> Result<Session<'c>> {
        let agent = ctx.agent();
        let local = match agent {
            Some(_) => None,
            None => Some(Box::new(ctx.open()?)),
        };
        Ok(Session { ctx, agent, local })
    }

    /// The vault opened here (only once there is no agent).
    fn local(&mut self) -> &mut OpenVault {
        self.local
            .as_mut()
            .expect("a session without an agent holds the vault")
    }

    /// Ask the agent, if there is one. `Ok(None)` means: there is none (any more), use the
    /// local vault. Only failures that prove the request was not carried out (no connection,
    /// or the agent said it is locking) fall back; anything else is the command's error.
    fn ask(&mut self, request: &Request) -> Result<Option<Response>> {
        let Some(agent) = &self.agent else {
            return Ok(None);
        };
        match agent.call(request) {
            Ok(response) => Ok(Some(response)),
            Err(e) if matches!(e.kind(), ErrorKind::AgentGone | ErrorKind::Locked) => {
                self.agent = None;
                self.local = Some(Box::new(self.ctx.open()?));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One field with its current value (no history values).
    pub fn field(&mut self, name: &EntryName, field: &str) -> Result<Field> {
        let request = Request::Field {
            entry: name.to_string(),
            field: field.to_owned(),
        };
        match self.ask(&request)? {
            Some(Response::Field(f)) => Ok(f),
            Some(_) => Err(unexpected("a field request")),
            None => self.local().data.field(name, field).cloned(),
        }
    }

    /// One entry; secret values are empty unless `reveal`, past values are empty.
    pub fn entry(&mut self, name: &EntryName, reveal: bool) -> Result<Entry> {
        self.entry_view(name, reveal, false)
    }

    /// One entry with its past values; secret ones (current and past) empty unless `reveal`.
    pub fn entry_with_history(&mut self, name: &EntryName, reveal: bool) -> Result<Entry> {
        self.entry_view(name, reveal, true)
    }

    fn entry_view(&mut self, name: &EntryName, reveal: bool, history: bool) -> Result<Entry> {
        let request = Request::Entry {
            entry: name.to_string(),
            reveal,
            history,
        };
        match self.ask(&request)? {
            Some(Response::Entry(e)) => Ok(e),
            Some(_) => Err(unexpected("an entry request")),
            None => Ok(self.local().data.entry(name)?.view(reveal, history)),
        }
    }

    /// Every entry, secret values empty.
    pub fn entries(&mut self) -> Result<BTreeMap<String, Entry>> {
        match self.ask(&Request::List)? {
            Some(Response::Entries(map)) => Ok(map),
            Some(_) => Err(unexpected("a list request")),
            None => Ok(self
                .local()
                .data
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.masked()))
                .collect()),
        }
    }

    /// How many days removed entries are kept, and the removed copies still kept (secret
    /// values masked, oldest first under each address).
    pub fn removed(&mut self) -> Result<(u32, BTreeMap<String, Vec<RemovedEntry>>)> {
        match self.ask(&Request::Removed)? {
            Some(Response::Removed {
                removed_days,
                removed,
            }) => Ok((removed_days, removed)),
            Some(_) => Err(unexpected("a request for removed entries")),
            None => {
                let data = &self.local().data;
                Ok((data.settings.removed_days, data.removed_view(model::now())))
            }
        }
    }

    /// The vault's history limit.
    pub fn history_limit(&mut self) -> Result<u32> {
        match self.ask(&Request::Status)? {
            Some(Response::Status(st)) => Ok(st.history_limit),
            Some(_) => Err(unexpected("a status request")),
            None => Ok(self.local().data.settings.history_limit),
        }
    }

    /// Apply a change and save it.
    pub fn apply(&mut self, change: Change) -> Result<ChangeOutcome> {
        // Moved into the request, and taken back from it if there is no agent: never copied.
        let request = Request::Apply(change);
        match self.ask(&request)? {
            Some(Response::Applied(outcome)) => Ok(outcome),
            Some(_) => Err(unexpected("a change")),
            None => {
                let Request::Apply(change) = request else {
                    unreachable!("built just above")
                };
                let now = model::now();
                self.local().update(|data| change.apply(data, now))
            }
        }
    }

    /// Record that `fields` of `entry` were used, at most once an hour per field (so scripts
    /// that hand off constantly do not rewrite the vault each time). Failure only warns: the
    /// hand-off itself matters more than its bookkeeping.
    pub fn mark_used(&mut self, name: &EntryName, entry: &Entry, fields: &[&str]) {
        let now = model::now();
        let stale: Vec<String> = fields
            .iter()
            .filter(|f| {
                entry
                    .fields
                    .get(f)
                    .is_some_and(|v| v.used_at.is_none_or(|t| now - t >= 3600))
            })
            .map(|f| (*f).to_owned())
            .collect();
        if stale.is_empty() {
            return;
        }
        let change = Change::MarkUsed {
            entry: name.to_string(),
            fields: stale,
        };
        if let Err(e) = self.apply(change) {
            super::output::stderr_line(&format!(
                "sfvault: warning: could not record the use of {name}: {e}"
            ));
        }
    }
}

/// Hand-offs (`exec`, `run`, `inject`, `export`) read through the session: entries with their
/// secrets, and tokens refreshed and stored as `token` does.
impl EntrySource for Session<'_> {
    fn entry(&mut self, name: &EntryName) -> Result<Entry> {
        Session::entry(self, name, true)
    }

    fn token(&mut self, name: &EntryName) -> Result<ValidToken> {
        super::oauth_cmds::valid_token(self.ctx, self, name, false)
    }

    fn mark_used(&mut self, name: &EntryName, entry: &Entry, fields: &[&str]) {
        Session::mark_used(self, name, entry, fields);
    }
}
