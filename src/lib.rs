//! # sfvault
//!
//! A local, encrypted vault for Salesforce connected-app credentials (consumer keys and secrets,
//! JWT private keys, usernames, refresh tokens), one entry per `ORG/APP`, unlocked by a
//! passphrase.
//!
//! The library never prints, prompts or exits: it returns [`Error`]s whose
//! [`Error::kind`] the `sfvault` binary turns into its exit status.
//!
//! - [`vault`]: the model, the file format (docs/FORMAT.md), the crypto and the atomic store.
//! - [`secret`]: zeroizing, redacted holders for every secret.
//! - [`unlock`]: non-interactive passphrase sources for scripts.
//! - [`oauth`]: the Salesforce OAuth flows, keygen, and the one HTTP client.
//! - [`pem`]: strict decoding of PEM private keys (checked when stored, used when signing).
//! - [`handoff`]: references, templates, env files, SFDX URLs and in-memory key files; resolving
//!   and the export/import mapping, read through [`handoff::EntrySource`].
//! - [`salesforce`]: Salesforce's admin APIs (External Client App credentials, Metadata API).
//! - [`rotation`]: rotating credentials at Salesforce, step by step, recorded in the vault.
//! - [`access`]: who holds OAuth access to an org, held against the vault (`audit --at-salesforce`).
//! - [`audit`]: stale, unused, missing or weak credentials.
//! - [`quote`]: outside text quoted for error messages (escaped, cut short).
//! - [`url`]: the one URL check (https, or http to this machine; no user info).
//! - [`fs_safety`]: every filesystem rule: trusted directories and files, non-blocking opens, bounded locks.
//! - [`agent`]: the background process that keeps a vault open, and its client.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod agent;
pub mod audit;
pub mod error;
pub mod fs_safety;
pub mod handoff;
pub mod oauth;
pub mod pem;
pub mod quote;
pub mod rotation;
pub mod salesforce;
pub mod secret;
pub mod timefmt;
pub mod unlock;
pub mod url;
pub mod vault;

pub use error::{Error, ErrorKind, Result};
