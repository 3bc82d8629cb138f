//! Where a command's reads and writes go: the running agent for this vault, or the vault opened
//! in this process. Commands are written once against [`Session`].

use std::collections::BTreeMap;

use sfvault::agent::client::AgentClient;
use sfvault::agent::protocol::{Request, Response};
use sfvault::vault::model::{self, Entry, Field};
use sfvault::vault::name::EntryName;
use sfvault::vault::store::OpenVault;
use sfvault::vault::{Change, ChangeOutcome};
use sfvault::{Error, Result};

/// An unlocked vault, wherever it is held.
pub enum Session {
    /// A running agent holds it.
    Agent(AgentClient),
    /// This process opened it.
    Local(Box<OpenVault>),
}

fn unexpected(what: &str) -> Error {
    Error::Other(format!(
        "the agent answered {what} with something else; is it another version?"
    ))
}

impl Session {
    /// One field with its current value (no history values).
    pub fn field(&self, name: &EntryName, field: &str) -> Result<Field> {
        match self {
            Session::Agent(agent) => match agent.call(&Request::Field {
                entry: name.to_string(),
                field: field.to_owned(),
            })? {
                Response::Field(f) => Ok(f),
                _ => Err(unexpected("a field request")),
            },
            Session::Local(vault) => vault.data.field(name, field).cloned(),
        }
    }

    /// One entry; secret values are empty unless `reveal`.
    pub fn entry(&self, name: &EntryName, reveal: bool) -> Result<Entry> {
        match self {
            Session::Agent(agent) => match agent.call(&Request::Entry {
                entry: name.to_string(),
                reveal,
            })? {
                Response::Entry(e) => Ok(e),
                _ => Err(unexpected("an entry request")),
            },
            Session::Local(vault) => {
                let e = vault.data.entry(name)?;
                Ok(if reveal { e.clone() } else { e.masked() })
            }
        }
    }

    /// Every entry, secret values empty.
    pub fn entries(&self) -> Result<BTreeMap<String, Entry>> {
        match self {
            Session::Agent(agent) => match agent.call(&Request::List)? {
                Response::Entries(map) => Ok(map),
                _ => Err(unexpected("a list request")),
            },
            Session::Local(vault) => Ok(vault
                .data
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.masked()))
                .collect()),
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
                    .get(**f)
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
            eprintln!("sfvault: warning: could not record the use of {name}: {e}");
        }
    }

    /// The vault's history limit.
    pub fn history_limit(&self) -> Result<u32> {
        match self {
            Session::Agent(agent) => match agent.call(&Request::Status)? {
                Response::Status(st) => Ok(st.history_limit),
                _ => Err(unexpected("a status request")),
            },
            Session::Local(vault) => Ok(vault.data.settings.history_limit),
        }
    }

    /// Apply a change and save it.
    pub fn apply(&mut self, change: Change) -> Result<ChangeOutcome> {
        match self {
            Session::Agent(agent) => match agent.call(&Request::Apply(change))? {
                Response::Applied(outcome) => Ok(outcome),
                _ => Err(unexpected("a change")),
            },
            Session::Local(vault) => {
                let now = model::now();
                vault.update(|data| change.apply(data, now))
            }
        }
    }
}
