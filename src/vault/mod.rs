//! The vault: its model, its on-disk format, its cryptography and its store.

pub mod change;
pub mod crypto;
pub mod field_map;
pub mod fields;
pub mod format;
pub mod merge;
pub mod model;
pub mod name;
pub mod recipients;
pub mod rollback;
pub mod slice;
pub mod slots;
pub mod store;
pub mod team_mark;

pub use change::{Change, ChangeOutcome, NewField};
pub use crypto::KdfParams;
pub use format::VaultKey;
pub use model::{Entry, Field, PastValue, SetOutcome, VaultData};
pub use name::EntryName;
pub use store::Store;
