//! Giving credentials to other programs without plaintext on disk: environment for `exec`,
//! `sfvault://` references for `run` and `inject`, a sealed memfd for the private key, and the
//! export/import formats.

pub mod dotenv;
pub mod keyfd;
pub mod reference;
pub mod sfdx;
pub mod template;

pub use reference::Reference;
