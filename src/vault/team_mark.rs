//! Team marks: what this machine knows of the team vault at a path, so a file someone with push
//! access (but no key) put in its place is refused.
//!
//! A team vault (format version 4) carries a random `vault_id` that only those who can open it
//! know, and links from its earlier data keys (docs/FORMAT.md, section 3). This machine keeps,
//! per vault path, the id and the fingerprint (`key_id`) of the data key it last saw, beside the
//! rollback marks (`$XDG_STATE_HOME/sfvault/seen/`):
//!
//! ```text
//! magic "SFVTEAM1"(8) vault_id(16) key_id(32) SHA-256 of the 56 bytes before(32)
//! ```
//!
//! On every open of a team vault: another `vault_id` means another vault was put in its place
//! (encrypted to the members' public keys, which anyone can do); another data key is accepted
//! only if the file carries the link of the key this machine knew (only its holders could
//! compute it), which refuses a file made by a removed member with the old key they still hold.
//! The first sight of a path is trusted (as ssh trusts a new host key): a machine that never
//! saw the vault cannot tell. `restore` adopts a file deliberately. The checksum catches damage;
//! like the rollback marks, these files are as safe as the user's own state directory.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use ring::digest::{SHA256, digest};

use crate::error::{Error, Result};
use crate::fs_safety;
use crate::secret::SecretKey;
use crate::vault::crypto::{key_id, key_link};
use crate::vault::model::TeamState;
use crate::vault::rollback::{Marks, absolute};
use crate::vault::store;

const MAGIC: [u8; 8] = *b"SFVTEAM1";
const MARK_LEN: usize = 8 + 16 + 32 + 32;
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What this machine knows of the team vault at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamMark {
    /// The vault's identity.
    pub vault_id: [u8; 16],
    /// SHA-256 of the link of the data key last seen.
    pub key_id: [u8; 32],
}

/// Why a team vault was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another vault (another `vault_id`) is at this path.
    Replaced,
    /// The data key changed, and the file does not carry the link of the key known here.
    UnlinkedKey,
}

impl TeamMark {
    /// The mark of a file opened with `data_key` holding `team`.
    pub fn of(team: &TeamState, data_key: &SecretKey) -> TeamMark {
        TeamMark {
            vault_id: team.vault_id,
            key_id: key_id(&key_link(data_key)),
        }
    }
}

/// Whether a file whose mark would be `seen` (holding `team`) may replace what `known` says
/// this machine knew: `Ok(true)` when the mark should be updated.
pub fn judge(known: Option<TeamMark>, seen: TeamMark, team: &TeamState) -> Result<bool, Refusal> {
    let Some(known) = known else {
        return Ok(true);
    };
    if known.vault_id != seen.vault_id {
        return Err(Refusal::Replaced);
    }
    if known.key_id == seen.key_id {
        return Ok(false);
    }
    if team.key_links.iter().any(|l| key_id(l) == known.key_id) {
        return Ok(true);
    }
    Err(Refusal::UnlinkedKey)
}

impl Marks {
    fn team_file(&self) -> PathBuf {
        let mut input = b"sfvault team mark\0".to_vec();
        input.extend_from_slice(absolute(self.vault()).as_os_str().as_encoded_bytes());
        let name: String = digest(&SHA256, &input).as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir().join(format!("{name}.team"))
    }

    /// This machine's team mark for the vault: `None` if it never saw a team vault there; an
    /// error when the file is damaged (refused, never read as "never seen").
    pub fn load_team(&self) -> Result<Option<TeamMark>> {
        let path = self.team_file();
        let file = match fs_safety::open_nonblocking(&path, true) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read the team mark", &path, e)),
        };
        let mut bytes = Vec::with_capacity(MARK_LEN);
        file.take(MARK_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the team mark", &path, e))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() != MARK_LEN
            || bytes[..8] != MAGIC
            || digest(&SHA256, &bytes[..56]).as_ref() != &bytes[56..]
        {
            return Err(Error::corrupt(
                &path,
                format!(
                    "this team mark of {} is damaged. If you trust the vault file as it is, \
                     delete the mark and run the command again",
                    absolute(self.vault()).display()
                ),
            ));
        }
        let mut mark = TeamMark {
            vault_id: [0; 16],
            key_id: [0; 32],
        };
        mark.vault_id.copy_from_slice(&bytes[8..24]);
        mark.key_id.copy_from_slice(&bytes[24..56]);
        Ok(Some(mark))
    }

    /// Record `mark` (atomically, under the marks' lock).
    pub fn store_team(&self, mark: TeamMark) -> Result<()> {
        let _lock = self.lock(LOCK_WAIT)?;
        let mut bytes = Vec::with_capacity(MARK_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&mark.vault_id);
        bytes.extend_from_slice(&mark.key_id);
        let sum = digest(&SHA256, &bytes);
        bytes.extend_from_slice(sum.as_ref());
        store::write_new_file(&self.team_file(), &bytes, true)
    }

    /// Forget the team mark (`restore` adopting another vault deliberately).
    pub fn forget_team(&self) -> Result<()> {
        match fs::remove_file(self.team_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("cannot remove", &self.team_file(), e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_identity_and_key_changes() {
        let k1 = SecretKey::from_slice(&[1; 32]);
        let k2 = SecretKey::from_slice(&[2; 32]);
        let mut team = TeamState {
            vault_id: [7; 16],
            ..TeamState::new()
        };
        let m1 = TeamMark::of(&team, &k1);
        assert_eq!(judge(None, m1, &team), Ok(true));
        assert_eq!(judge(Some(m1), m1, &team), Ok(false));
        // A new key without the old key's link: refused; with it: accepted.
        let m2 = TeamMark::of(&team, &k2);
        assert_eq!(judge(Some(m1), m2, &team), Err(Refusal::UnlinkedKey));
        team.push_link(key_link(&k1));
        assert_eq!(judge(Some(m1), m2, &team), Ok(true));
        // Another vault id: refused whatever the key.
        let other = TeamState {
            vault_id: [8; 16],
            key_links: team.key_links.clone(),
            ..TeamState::new()
        };
        assert_eq!(
            judge(Some(m1), TeamMark::of(&other, &k1), &other),
            Err(Refusal::Replaced)
        );
    }

    #[test]
    fn marks_round_trip_and_damage_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let marks = Marks::new(root.path().join("seen"), &root.path().join("v.sfv"));
        assert_eq!(marks.load_team().unwrap(), None);
        let mark = TeamMark {
            vault_id: [1; 16],
            key_id: [2; 32],
        };
        marks.store_team(mark).unwrap();
        assert_eq!(marks.load_team().unwrap(), Some(mark));
        let mut bytes = fs::read(marks.team_file()).unwrap();
        bytes[9] ^= 1;
        fs::write(marks.team_file(), &bytes).unwrap();
        assert!(marks.load_team().is_err());
        marks.forget_team().unwrap();
        assert_eq!(marks.load_team().unwrap(), None);
    }
}
