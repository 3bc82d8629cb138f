//! `sfvault://ORG/APP/FIELD`: one value anywhere a reference is accepted.

use std::fmt;

use crate::error::{Error, Result};
use crate::vault::name::{EntryName, check_field_name, quoted};

/// The scheme prefix.
pub const PREFIX: &str = "sfvault://";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The entry.
    pub entry: EntryName,
    /// The field (or the pseudo-fields `access_token`, `instance_url`).
    pub field: String,
}

impl Reference {
    /// Parse `sfvault://ORG/APP/FIELD` (surrounding white space allowed).
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = || {
            Error::Usage(format!(
                "{} is not a reference: one looks like sfvault://ORG/APP/FIELD, e.g. \
                 sfvault://acme-prod/ci/consumer_key",
                quoted(text)
            ))
        };
        let rest = text.trim().strip_prefix(PREFIX).ok_or_else(bad)?;
        let (entry, field) = rest.rsplit_once('/').ok_or_else(bad)?;
        let entry = EntryName::parse(entry).map_err(|_| bad())?;
        check_field_name(field).map_err(|_| bad())?;
        Ok(Reference {
            entry,
            field: field.to_owned(),
        })
    }

    /// Whether `text` is meant as a reference (starts with the scheme).
    pub fn looks_like(text: &str) -> bool {
        text.trim_start().starts_with(PREFIX)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.entry, self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let r = Reference::parse(" sfvault://acme-prod/ci/consumer_key ").unwrap();
        assert_eq!(r.entry.to_string(), "acme-prod/ci");
        assert_eq!(r.field, "consumer_key");
        assert_eq!(r.to_string(), "sfvault://acme-prod/ci/consumer_key");
        for bad in [
            "sfvault://acme/ci",
            "sfvault://acme/ci/",
            "sfvault://a/b/C",
            "http://a/b/c",
            "sfvault://../b/c",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
