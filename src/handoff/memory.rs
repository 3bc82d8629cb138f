//! Tests only: an [`EntrySource`] held in memory that records what it was asked.

use crate::error::Result;
use crate::handoff::{EntrySource, Env};
use crate::oauth::ValidToken;
use crate::secret::SecretString;
use crate::vault::fields::{is_computed, secret_by_default};
use crate::vault::model::{Entry, VaultData};
use crate::vault::name::EntryName;

/// When every token of a [`Memory`] source was issued.
pub const ISSUED_AT: i64 = 1_764_370_000;

/// Entries in a [`VaultData`], tokens made up from the entry's name.
#[derive(Default)]
pub struct Memory {
    pub data: VaultData,
    /// Every entry read, in order.
    pub reads: Vec<String>,
    /// Every token asked for, in order.
    pub tokens: Vec<String>,
    /// Every use recorded: entry and fields.
    pub marks: Vec<(String, Vec<String>)>,
}

impl Memory {
    /// A source holding `entries`: address and (field, value) pairs.
    pub fn with(entries: &[(&str, &[(&str, &str)])]) -> Memory {
        let mut m = Memory::default();
        for (name, fields) in entries {
            let name = EntryName::parse(name).unwrap();
            m.data.add_entry(&name, 0).unwrap();
            for (field, value) in *fields {
                let value = SecretString::new((*value).to_owned());
                if is_computed(field) {
                    m.data
                        .set_computed(&name, vec![((*field).to_owned(), value)], 0)
                        .unwrap();
                } else {
                    m.data
                        .set_field(&name, field, value, secret_by_default(field), 0)
                        .unwrap();
                }
            }
        }
        m
    }
}

impl EntrySource for Memory {
    fn entry(&mut self, name: &EntryName) -> Result<Entry> {
        self.reads.push(name.to_string());
        Ok(self.data.entry(name)?.clone())
    }

    fn token(&mut self, name: &EntryName) -> Result<ValidToken> {
        self.tokens.push(name.to_string());
        let entry = self.data.entry(name)?;
        Ok(ValidToken {
            access_token: SecretString::new(format!("token-of-{name}")),
            instance_url: format!("https://{}.my.salesforce.com", name.org()),
            issued_at: ISSUED_AT,
            expires_at: ISSUED_AT + 5400,
            username: entry
                .fields
                .get("username")
                .map(|f| f.value.expose().to_owned()),
            org_id: Some("00D000000000001".into()),
        })
    }

    fn mark_used(&mut self, name: &EntryName, _entry: &Entry, fields: &[&str]) {
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self.marks.push((name.to_string(), fields));
    }
}

/// Variables as (name, value) pairs, to compare.
pub fn pairs(env: &Env) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.expose())).collect()
}
