//! Resolving `sfvault://` references, alone, in environment variables, env files and templates,
//! against an [`EntrySource`]: the vault as the caller holds it (the CLI's session, a map in
//! tests).

use std::collections::BTreeMap;
use std::ffi::OsString;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::handoff::template::{self, Piece};
use crate::handoff::{Env, Reference, dotenv};
use crate::oauth::ValidToken;
use crate::secret::SecretString;
use crate::vault::fields;
use crate::vault::model::Entry;
use crate::vault::name::EntryName;

/// Where hand-offs read entries and tokens.
pub trait EntrySource {
    /// The entry `name` with its secret values (no past values).
    fn entry(&mut self, name: &EntryName) -> Result<Entry>;
    /// A valid access token for `name`: the cached one, or a new one from its flow.
    fn token(&mut self, name: &EntryName) -> Result<ValidToken>;
    /// Record that `fields` of `entry` were handed off. Bookkeeping only: a failure is the
    /// source's to report, it never stops a hand-off.
    fn mark_used(&mut self, name: &EntryName, entry: &Entry, fields: &[&str]);
}

/// A source opened on first use, so that resolving nothing (`run` with no reference) never
/// unlocks the vault.
pub struct Lazy<S, F> {
    open: F,
    source: Option<S>,
}

impl<S: EntrySource, F: FnMut() -> Result<S>> Lazy<S, F> {
    /// A source that `open` makes when it is first needed.
    pub fn new(open: F) -> Self {
        Lazy { open, source: None }
    }

    fn get(&mut self) -> Result<&mut S> {
        if self.source.is_none() {
            self.source = Some((self.open)()?);
        }
        Ok(self.source.as_mut().expect("just set"))
    }
}

impl<S: EntrySource, F: FnMut() -> Result<S>> EntrySource for Lazy<S, F> {
    fn entry(&mut self, name: &EntryName) -> Result<Entry> {
        self.get()?.entry(name)
    }

    fn token(&mut self, name: &EntryName) -> Result<ValidToken> {
        self.get()?.token(name)
    }

    fn mark_used(&mut self, name: &EntryName, entry: &Entry, fields: &[&str]) {
        if let Some(source) = self.source.as_mut() {
            source.mark_used(name, entry, fields);
        }
    }
}

/// Resolves references, fetching each entry once and each token at most once.
pub struct Resolver<S> {
    source: S,
    entries: BTreeMap<EntryName, Entry>,
    tokens: BTreeMap<EntryName, ValidToken>,
    used: BTreeMap<EntryName, Vec<String>>,
}

impl<S: EntrySource> Resolver<S> {
    /// A resolver reading from `source`.
    pub fn new(source: S) -> Self {
        Resolver {
            source,
            entries: BTreeMap::new(),
            tokens: BTreeMap::new(),
            used: BTreeMap::new(),
        }
    }

    /// The value `r` stands for: a field of its entry, or, for the pseudo-fields
    /// `access_token` and `instance_url`, of a valid token.
    pub fn resolve(&mut self, r: &Reference) -> Result<SecretString> {
        if fields::from_valid_token(&r.field) {
            if !self.tokens.contains_key(&r.entry) {
                let t = self.source.token(&r.entry)?;
                self.tokens.insert(r.entry.clone(), t);
            }
            let t = &self.tokens[&r.entry];
            return Ok(if r.field == fields::ACCESS_TOKEN {
                t.access_token.duplicate()
            } else {
                SecretString::new(t.instance_url.clone())
            });
        }
        if !self.entries.contains_key(&r.entry) {
            let e = self.source.entry(&r.entry)?;
            self.entries.insert(r.entry.clone(), e);
        }
        self.used
            .entry(r.entry.clone())
            .or_default()
            .push(r.field.clone());
        self.entries[&r.entry]
            .fields
            .get(&r.field)
            .map(|f| f.value.duplicate())
            .ok_or_else(|| {
                Error::no_field(
                    &r.entry,
                    &r.field,
                    format!("{r}: {} has no field {}", r.entry, r.field),
                )
            })
    }

    /// The variables of `vars` (a process environment) whose values are references, resolved;
    /// the others (and any that is not UTF-8) are left out, as the child inherits them.
    pub fn resolve_env(
        &mut self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Env> {
        let mut env = Env::new();
        for (key, value) in vars {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
                continue;
            };
            if let Some(v) = self.resolve_var(key, value)? {
                env.push((key.to_owned(), v));
            }
        }
        Ok(env)
    }

    /// Every variable of an env file, in file order, references resolved; `file` names it in
    /// errors, which give the variable and its line whatever went wrong.
    pub fn resolve_env_file(&mut self, file: &str, text: &str) -> Result<Env> {
        let mut env = Env::new();
        let vars = dotenv::parse_numbered(text).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{file}: {m}")),
            e => e,
        })?;
        for (line, key, value) in vars {
            let label = format!("{key} ({file} line {line})");
            let value = self.resolve_var(&label, value.expose())?.unwrap_or(value);
            env.push((key, value));
        }
        Ok(env)
    }

    /// The value of variable `var` (a name, or a name and where it was set) if `value` is a
    /// reference (`None` if it is not one). Any failure, of any kind, names the variable.
    fn resolve_var(&mut self, var: &str, value: &str) -> Result<Option<SecretString>> {
        if !Reference::looks_like(value) {
            return Ok(None);
        }
        Reference::parse(value)
            .and_then(|r| self.resolve(&r))
            .map(Some)
            .map_err(|e| for_variable(var, e))
    }

    /// The values resolved so far that are secret: fields marked secret, and access tokens
    /// (for masking them in a command's output).
    pub fn secret_values(&self) -> Vec<&SecretString> {
        let fields = self.used.iter().flat_map(|(name, fields)| {
            fields.iter().filter_map(move |f| {
                self.entries
                    .get(name)
                    .and_then(|e| e.fields.get(f))
                    .filter(|f| f.secret)
                    .map(|f| &f.value)
            })
        });
        let tokens = self.tokens.values().map(|t| &t.access_token);
        fields.chain(tokens).collect()
    }

    /// A template with each `{{ sfvault://… }}` placeholder replaced by its value.
    pub fn render(&mut self, text: &str) -> Result<Zeroizing<String>> {
        let pieces = template::parse(text)?;
        // Values first, then one buffer of the final size: growing it as values arrive would
        // leave copies of the earlier ones in freed memory.
        let values = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(_) => Ok(None),
                Piece::Ref(r) => self.resolve(r).map(Some),
            })
            .collect::<Result<Vec<Option<SecretString>>>>()?;
        let size = pieces
            .iter()
            .zip(&values)
            .map(|(piece, value)| match (piece, value) {
                (Piece::Text(t), _) => t.len(),
                (_, value) => value.as_ref().map_or(0, SecretString::len),
            })
            .sum();
        let mut out = Zeroizing::new(String::with_capacity(size));
        for (piece, value) in pieces.iter().zip(&values) {
            match (piece, value) {
                (Piece::Text(t), _) => out.push_str(t),
                (_, value) => out.push_str(value.as_ref().map_or("", |v| v.expose())),
            }
        }
        Ok(out)
    }

    /// Record the use of every field resolved, and give the source back.
    pub fn finish(mut self) -> S {
        for (name, fields) in &self.used {
            if let Some(entry) = self.entries.get(name) {
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                self.source.mark_used(name, entry, &refs);
            }
        }
        self.source
    }
}

/// `e` told as the failure of variable `var`: its message prefixed by `var` and followed by
/// "the command was not run", its kind (and so the exit code) kept.
fn for_variable(var: &str, e: Error) -> Error {
    let say = |m: &str| format!("{var}: {m}; the command was not run");
    match e {
        Error::Usage(m) => Error::Usage(say(&m)),
        Error::Unsafe(m) => Error::Unsafe(say(&m)),
        Error::NotFound { missing, message } => Error::NotFound {
            missing,
            message: say(&message),
        },
        e @ Error::Locked { .. } => Error::locked(say(&e.to_string())),
        e @ Error::Network { .. } => Error::network(say(&e.to_string())),
        e @ (Error::Failed { .. } | Error::Io { .. } | Error::AgentGone { .. }) => {
            Error::failed(say(&e.to_string()))
        }
        // The variants whose text is built from fields: the only one that carries any kind
        // with a whole message is the agent's.
        e => Error::Remote {
            kind: e.kind(),
            message: say(&e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::error::Missing;
    use crate::handoff::memory::{Memory, pairs};

    fn acme() -> Memory {
        Memory::with(&[(
            "acme/ci",
            &[
                ("consumer_key", "3MVG9key"),
                ("consumer_secret", "s3cret"),
                ("username", "ci@acme.example"),
            ],
        )])
    }

    fn r(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    #[test]
    fn fields_and_tokens_are_read_once_and_uses_recorded() {
        let mut resolver = Resolver::new(acme());
        for (field, value) in [
            ("consumer_key", "3MVG9key"),
            ("consumer_secret", "s3cret"),
            ("access_token", "token-of-acme/ci"),
            ("instance_url", "https://acme.my.salesforce.com"),
            ("consumer_key", "3MVG9key"),
        ] {
            let got = resolver.resolve(&r(&format!("sfvault://acme/ci/{field}")));
            assert_eq!(got.unwrap().expose(), value, "{field}");
        }
        let source = resolver.finish();
        assert_eq!(source.reads, ["acme/ci"]);
        assert_eq!(source.tokens, ["acme/ci"]);
        // The token's pseudo-fields are the flow's to record, not the resolver's.
        assert_eq!(
            source.marks,
            [(
                "acme/ci".to_owned(),
                ["consumer_key", "consumer_secret", "consumer_key"]
                    .map(String::from)
                    .to_vec()
            )]
        );
    }

    #[test]
    fn a_missing_entry_and_a_missing_field_are_not_found_errors() {
        let mut resolver = Resolver::new(acme());
        let e = resolver
            .resolve(&r("sfvault://acme/other/consumer_key"))
            .unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { message: m, missing: Missing::Entry { entry } }
                if m.starts_with("no entry acme/other") && entry == "acme/other"),
            "{e:?}"
        );
        let e = resolver
            .resolve(&r("sfvault://acme/ci/password"))
            .unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { message: m, missing: Missing::Field { field, .. } }
                if m == "sfvault://acme/ci/password: acme/ci has no field password" && field == "password"),
            "{e:?}"
        );
        let e = resolver
            .resolve(&r("sfvault://acme/other/access_token"))
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn environment_and_env_files_resolve_references_and_name_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let var = |k: &str, v: &str| (OsString::from(k), OsString::from(v));
        let mut resolver = Resolver::new(acme());
        let env = resolver
            .resolve_env([
                var("PATH", "/usr/bin"),
                var("SF_KEY", " sfvault://acme/ci/consumer_key "),
                (
                    OsString::from("RAW"),
                    OsString::from_vec(b"sfvault://acme/ci/\xff".to_vec()),
                ),
                var("SF_USER", "sfvault://acme/ci/username"),
            ])
            .unwrap();
        assert_eq!(
            pairs(&env),
            [("SF_KEY", "3MVG9key"), ("SF_USER", "ci@acme.example")]
        );
        let e = resolver
            .resolve_env([var("SF_PW", "sfvault://acme/ci/password")])
            .unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { message: m, .. } if m.starts_with("SF_PW: sfvault://acme/ci/password: ")
                && m.ends_with("; the command was not run")),
            "{e:?}"
        );
        let e = resolver
            .resolve_env([var("SF_BAD", "sfvault://acme/ci/Bad")])
            .unwrap_err();
        assert!(
            matches!(&e, Error::Usage(m) if m.starts_with("SF_BAD: ") && m.contains("sfvault://ORG/APP/FIELD")),
            "{e:?}"
        );
        // Whatever the kind of failure, the variable is named and the kind kept.
        let failing = || -> Result<Memory> { Err(Error::locked("no passphrase")) };
        let mut locked = Resolver::new(Lazy::new(failing));
        let e = locked
            .resolve_env([var("SF_LOCKED", "sfvault://acme/ci/username")])
            .unwrap_err();
        assert!(
            matches!(&e, Error::Locked { message: m, .. } if m == "SF_LOCKED: no passphrase; the command was not run"),
            "{e:?}"
        );
        let e = locked
            .resolve_env_file("f.env", "# x\nA=sfvault://acme/ci/username\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("A (f.env line 2): "), "{e}");
        let refused = for_variable(
            "V",
            Error::OAuth {
                error: "invalid_grant".into(),
                description: "expired".into(),
                hint: None,
            },
        );
        assert_eq!(refused.kind(), crate::ErrorKind::Refused);
        assert!(
            refused
                .to_string()
                .starts_with("V: Salesforce refused: invalid_grant")
        );

        // An env file's variables are all kept, in file order, references resolved.
        let env = resolver
            .resolve_env_file(
                ".env",
                "B=plain\nexport A='sfvault://acme/ci/username'\n# c\nC=\"x y\"\n",
            )
            .unwrap();
        assert_eq!(
            pairs(&env),
            [("B", "plain"), ("A", "ci@acme.example"), ("C", "x y")]
        );
        let e = resolver
            .resolve_env_file(".env", "\nK=sfvault://acme/gone/username\n")
            .unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { message: m, .. } if m.starts_with("K (.env line 2): ")),
            "{e:?}"
        );
    }

    #[test]
    fn templates_replace_placeholders_and_pass_the_rest_through() {
        let mut resolver = Resolver::new(acme());
        let out = resolver
            .render("user={{ sfvault://acme/ci/username }}\nhelm={{ .Values.x }}\ntoken={{sfvault://acme/ci/access_token}}")
            .unwrap();
        assert_eq!(
            out.as_str(),
            "user=ci@acme.example\nhelm={{ .Values.x }}\ntoken=token-of-acme/ci"
        );
        assert!(resolver.render("{{ sfvault://acme/ci/Bad }}").is_err());
        let e = resolver
            .render("{{ sfvault://acme/ci/password }}")
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn a_lazy_source_opens_only_when_a_reference_needs_it() {
        let opened = Cell::new(0);
        let open = || {
            opened.set(opened.get() + 1);
            Ok(acme())
        };
        let mut resolver = Resolver::new(Lazy::new(open));
        assert_eq!(
            resolver.render("no placeholder").unwrap().as_str(),
            "no placeholder"
        );
        let env = resolver
            .resolve_env([(OsString::from("HOME"), OsString::from("/home/x"))])
            .unwrap();
        assert!(env.is_empty());
        resolver.finish();
        assert_eq!(opened.get(), 0);

        let mut resolver = Resolver::new(Lazy::new(open));
        resolver.render("{{ sfvault://acme/ci/username }}").unwrap();
        resolver
            .render("{{ sfvault://acme/ci/access_token }}")
            .unwrap();
        resolver.finish();
        assert_eq!(opened.get(), 1);

        let failing = || -> Result<Memory> { Err(Error::locked("no passphrase")) };
        let mut resolver = Resolver::new(Lazy::new(failing));
        assert!(resolver.render("plain").is_ok());
        let e = resolver
            .render("{{ sfvault://acme/ci/username }}")
            .unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e:?}");
    }
}
