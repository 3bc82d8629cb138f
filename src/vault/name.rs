//! Entry addresses (`ORG/APP`) and field names, validated before they reach the model.

use std::fmt;

use crate::error::{Error, Result};
pub use crate::quote::quoted;

/// Longest ORG or APP part, and longest field name.
const MAX_PART_LEN: usize = 64;

/// A validated `ORG/APP` address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName {
    org: String,
    app: String,
}

impl EntryName {
    /// Parse `ORG/APP`; each part is `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
    pub fn parse(text: &str) -> Result<EntryName> {
        let Some((org, app)) = text.split_once('/') else {
            return Err(Error::Usage(format!(
                "{} is not an entry address: write ORG/APP, e.g. acme-prod/ci",
                quoted(text)
            )));
        };
        for (what, part) in [("ORG", org), ("APP", app)] {
            if !valid_part(part) {
                return Err(Error::Usage(format!(
                    "{} is not a valid entry address: {what} must start with a letter or digit and hold \
                     1 to 64 of A-Z a-z 0-9 . _ -",
                    quoted(text)
                )));
            }
        }
        Ok(EntryName {
            org: org.to_owned(),
            app: app.to_owned(),
        })
    }

    /// The org alias (`acme-prod`).
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The connected app (`ci`).
    pub fn app(&self) -> &str {
        &self.app
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.app)
    }
}

fn valid_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_PART_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Check a field name: `[a-z][a-z0-9_]{0,63}`.
pub fn check_field_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_PART_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} is not a valid field name: use 1 to 64 of a-z 0-9 _, starting with a letter",
            quoted(name)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_contract_examples() {
        for ok in [
            "acme-prod/ci",
            "acme-uat/ci",
            "acme-dev1/integration",
            "a/b",
            "A.b_c-d/9",
        ] {
            let name = EntryName::parse(ok).unwrap();
            assert_eq!(name.to_string(), ok);
        }
    }

    #[test]
    fn rejects_hostile_names() {
        let long = "a".repeat(65);
        for bad in [
            "",
            "acme",
            "/ci",
            "acme/",
            "../x",
            "acme/../x",
            "a/b/c",
            ".a/b",
            "a/-b",
            "a\0/b",
            "a b/c",
            &format!("{long}/x"),
            "é/x",
        ] {
            assert!(EntryName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn field_names() {
        assert!(check_field_name("consumer_key").is_ok());
        for bad in ["", "Key", "1a", "a-b", "a.b", &"a".repeat(65)] {
            assert!(check_field_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
