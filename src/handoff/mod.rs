//! Giving credentials to other programs without plaintext on disk: environment for `exec`,
//! `sfvault://` references for `run` and `inject`, a sealed memfd for the private key, and the
//! export/import formats.
//!
//! Hand-offs read the vault through [`EntrySource`], which the caller implements (the CLI's
//! session, whether the agent or the vault opened in the process): [`resolve`] for references
//! and templates, [`mapping`] between entries and the `exec`, `export` and `import` forms.

pub mod dotenv;
pub mod json;
pub mod keyfd;
pub mod mapping;
#[cfg(test)]
mod memory;
pub mod reference;
pub mod resolve;
pub mod sf_home;
pub mod sf_state;
pub mod sfdx;
pub mod template;

pub use reference::Reference;
pub use resolve::{EntrySource, Lazy, Resolver};

use crate::secret::SecretString;

/// Environment for a child process: names and secret values, in the order they are set.
pub type Env = Vec<(String, SecretString)>;
