//! A change to the vault as data, so the same edit can be applied locally or sent to the agent.
//! Names arrive as strings and are validated when applied: the agent treats them as untrusted.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::secret::SecretString;
use crate::vault::fields;
use crate::vault::model::{SetOutcome, Timestamp, VaultData};
use crate::vault::name::EntryName;

/// One field value to store.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewField {
    /// Field name.
    pub name: String,
    /// The value.
    pub value: SecretString,
    /// Whether it is masked and refused from argv.
    pub secret: bool,
}

/// An edit of the vault. Not `Clone`: it may carry secrets, and is moved, never copied.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Create an entry with some fields (fails if it exists).
    AddEntry {
        /// `ORG/APP`
        entry: String,
        /// Its first fields.
        fields: Vec<NewField>,
    },
    /// Set one field of an existing entry.
    SetField {
        /// `ORG/APP`
        entry: String,
        /// The field and value.
        field: NewField,
    },
    /// Remove an entry, keeping it among the removed ones for the vault's `removed_days`.
    RemoveEntry {
        /// `ORG/APP`
        entry: String,
    },
    /// Rename an entry.
    RenameEntry {
        /// Current address.
        from: String,
        /// New address.
        to: String,
    },
    /// Store computed fields (the token cache) and, optionally, secret fields a flow returned
    /// (a new refresh token).
    SetComputed {
        /// `ORG/APP`
        entry: String,
        /// Computed fields, written without history.
        computed: Vec<NewField>,
        /// Ordinary fields, written with history.
        fields: Vec<NewField>,
    },
    /// Make past value `index` (1 = most recent) of a field current again.
    RestoreField {
        /// `ORG/APP`
        entry: String,
        /// Field name.
        field: String,
        /// Which past value.
        index: u32,
    },
    /// Record that fields were used by a flow or a hand-off.
    MarkUsed {
        /// `ORG/APP`
        entry: String,
        /// Field names.
        fields: Vec<String>,
    },
    /// Set the vault's history limit.
    SetHistoryLimit(u32),
    /// Forget revoked tokens: the token cache if its access token is among `revoked`, the
    /// refresh token if it is. A token stored meanwhile by another login survives.
    ForgetTokens {
        /// `ORG/APP`
        entry: String,
        /// The tokens that were revoked.
        revoked: Vec<SecretString>,
    },
    /// Remove fields (the token cache after a revoke).
    RemoveFields {
        /// `ORG/APP`
        entry: String,
        /// Field names.
        fields: Vec<String>,
    },
    /// Bring back the most recently removed copy of an entry (format version 3).
    Undelete {
        /// The address it was removed from.
        entry: String,
        /// The address to bring it back as (default: its own).
        target: Option<String>,
    },
    /// Remove an entry and every removed copy of it for good.
    PurgeEntry {
        /// `ORG/APP`
        entry: String,
    },
    /// Set how many days removed entries are kept.
    SetRemovedDays(u32),
    /// Save the vault as it is, as a new version: after a purge, so that the previous version
    /// (kept as `.bak`) no longer holds what was purged.
    Rewrite,
}

/// What applying a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOutcome {
    /// Added, removed or renamed.
    Done,
    /// A field was set.
    Field(SetOutcome),
}

impl Change {
    /// Apply to `data` (all or nothing: on error `data` may be partly changed, so callers apply
    /// to a copy that is only saved on success, as `OpenVault::update` does).
    ///
    /// A slice is read-only: bookkeeping (a use, a token to cache) is not kept, anything else
    /// is refused.
    pub fn apply(self, data: &mut VaultData, now: Timestamp) -> Result<ChangeOutcome> {
        if data.is_slice() {
            return match self {
                Change::MarkUsed { .. } | Change::ForgetTokens { .. } => Ok(ChangeOutcome::Done),
                Change::SetComputed { fields, .. } if fields.is_empty() => Ok(ChangeOutcome::Done),
                _ => Err(crate::vault::slice::read_only()),
            };
        }
        match self {
            Change::AddEntry { entry, fields } => {
                let name = EntryName::parse(&entry)?;
                data.add_entry(&name, now)?;
                for f in fields {
                    data.set_field(&name, &f.name, f.value, f.secret, now)?;
                }
                Ok(ChangeOutcome::Done)
            }
            Change::SetField { entry, field } => {
                let name = EntryName::parse(&entry)?;
                data.set_field(&name, &field.name, field.value, field.secret, now)
                    .map(ChangeOutcome::Field)
            }
            Change::RemoveEntry { entry } => {
                data.discard_entry(&EntryName::parse(&entry)?, now)?;
                Ok(ChangeOutcome::Done)
            }
            Change::Undelete { entry, target } => {
                let target = target.as_deref().map(EntryName::parse).transpose()?;
                data.undelete(&EntryName::parse(&entry)?, target.as_ref(), now)?;
                Ok(ChangeOutcome::Done)
            }
            Change::PurgeEntry { entry } => {
                data.purge_entry(&EntryName::parse(&entry)?)?;
                Ok(ChangeOutcome::Done)
            }
            Change::SetRemovedDays(days) => {
                data.set_removed_days(days, now)?;
                Ok(ChangeOutcome::Done)
            }
            Change::Rewrite => Ok(ChangeOutcome::Done),
            Change::RenameEntry { from, to } => {
                data.rename_entry(&EntryName::parse(&from)?, &EntryName::parse(&to)?)?;
                Ok(ChangeOutcome::Done)
            }
            Change::SetComputed {
                entry,
                computed,
                fields,
            } => {
                let name = EntryName::parse(&entry)?;
                for f in &computed {
                    if !fields::is_computed(&f.name) {
                        return Err(crate::Error::Usage(format!(
                            "{} is not a computed field",
                            f.name
                        )));
                    }
                }
                data.set_computed(
                    &name,
                    computed.into_iter().map(|f| (f.name, f.value)).collect(),
                    now,
                )?;
                for f in fields {
                    data.set_field(&name, &f.name, f.value, f.secret, now)?;
                }
                Ok(ChangeOutcome::Done)
            }
            Change::RestoreField {
                entry,
                field,
                index,
            } => {
                let name = EntryName::parse(&entry)?;
                data.restore_field(&name, &field, index as usize, now)
                    .map(ChangeOutcome::Field)
            }
            Change::MarkUsed { entry, fields } => {
                data.mark_used(&EntryName::parse(&entry)?, &fields, now)?;
                Ok(ChangeOutcome::Done)
            }
            Change::SetHistoryLimit(limit) => {
                data.set_history_limit(limit)?;
                Ok(ChangeOutcome::Done)
            }
            Change::ForgetTokens { entry, revoked } => {
                let name = EntryName::parse(&entry)?;
                let current = |f: &str| data.field(&name, f).ok().map(|x| x.value.duplicate());
                let mut forget: Vec<&str> = Vec::new();
                if current(fields::ACCESS_TOKEN).is_none_or(|t| revoked.contains(&t)) {
                    forget.extend(fields::computed_fields());
                }
                if current(fields::REFRESH_TOKEN).is_some_and(|t| revoked.contains(&t)) {
                    forget.push(fields::REFRESH_TOKEN);
                }
                data.remove_fields(&name, &forget)?;
                Ok(ChangeOutcome::Done)
            }
            Change::RemoveFields { entry, fields } => {
                let name = EntryName::parse(&entry)?;
                let names: Vec<&str> = fields.iter().map(String::as_str).collect();
                data.remove_fields(&name, &names)?;
                Ok(ChangeOutcome::Done)
            }
        }
    }
}
