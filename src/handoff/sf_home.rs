//! A throwaway home for the Salesforce CLI, for what its environment variables cannot carry:
//! sf 2.150.6 takes only classic `00D…!…` tokens as `SF_TARGET_ORG`, and sends a token given as
//! `SF_TARGET_DEV_HUB` to the target org's instance. With `HOME` pointing here, sf finds each org
//! as an auth file `.sfdx/USERNAME.json` holding the token and where the org is (sf accepts
//! plain values: it decrypts only what looks like its own ciphertext).
//!
//! The directory is private (0700, files 0600), lives under the agent's runtime directory (a
//! tmpfs under `XDG_RUNTIME_DIR` on most systems: memory, not disk), and is removed when the
//! [`SfHome`] is dropped, after the command ended. A home left by a killed sfvault is removed by
//! the next one ([`sweep`]). The user's own `~/.sfdx` is never written.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// One org for sf: what its auth file holds.
pub struct SfOrg<'a> {
    /// The name sf knows it by (the file's name and `SF_TARGET_ORG`/`SF_TARGET_DEV_HUB`).
    pub username: &'a str,
    /// The access token.
    pub access_token: &'a SecretString,
    /// Where the org is.
    pub instance_url: &'a str,
    /// Where it logs in.
    pub login_url: &'a str,
    /// Its id, when known (`sf org display` shows it).
    pub org_id: Option<&'a str>,
    /// A Dev Hub (sf then skips asking the org whether it is one).
    pub is_dev_hub: bool,
}

/// Whether sf takes `token` itself as a target org: `00D` + 12 to 15 word characters, `!`, then
/// word characters and dots (`matchesOpaqueAccessToken` in @salesforce/core).
pub fn is_classic_token(token: &str) -> bool {
    let Some((id, rest)) = token.split_once('!') else {
        return false;
    };
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    id.starts_with("00D")
        && (15..=18).contains(&id.len())
        && id.chars().all(word)
        && rest.chars().all(|c| word(c) || c == '.')
}

/// A throwaway sf home; removed when dropped.
pub struct SfHome {
    dir: PathBuf,
}

const PREFIX: &str = "sf-home-";

impl SfHome {
    /// A new home under `parent` (created 0700 if needed) holding an auth file per org.
    pub fn create(parent: &Path, orgs: &[SfOrg<'_>]) -> Result<SfHome> {
        crate::fs_safety::ensure_private_dir(parent)?;
        sweep(parent);
        let mut random = [0u8; 8];
        crate::vault::crypto::random_fill(&mut random);
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = parent.join(format!("{PREFIX}{}-{suffix}", std::process::id()));
        let home = SfHome { dir };
        let sfdx = home.dir.join(".sfdx");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&sfdx)
            .map_err(|e| Error::io("cannot create", &sfdx, e))?;
        for org in orgs {
            home.write_auth_file(&sfdx, org)?;
        }
        Ok(home)
    }

    /// The directory to give the command as `HOME`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn write_auth_file(&self, sfdx: &Path, org: &SfOrg<'_>) -> Result<()> {
        if org.username.is_empty() || org.username.contains(['/', '\0']) || org.username == ".." {
            return Err(Error::Usage(format!(
                "{} cannot name an sf auth file",
                crate::quote::quoted(org.username)
            )));
        }
        let mut obj = Map::new();
        obj.insert(
            "accessToken".into(),
            Value::String(org.access_token.expose().to_owned()),
        );
        obj.insert("instanceUrl".into(), json!(org.instance_url));
        obj.insert("loginUrl".into(), json!(org.login_url));
        obj.insert("username".into(), json!(org.username));
        if let Some(id) = org.org_id {
            obj.insert("orgId".into(), json!(id));
        }
        if org.is_dev_hub {
            obj.insert("isDevHub".into(), json!(true));
        }
        let text = super::json::into_text(Value::Object(obj))?;
        let path = sfdx.join(format!("{}.json", org.username));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("cannot create", &path, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io("cannot write", &path, e))
    }
}

impl Drop for SfHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove the homes of sfvault processes that no longer run (killed before they could).
pub fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_tokens_as_sf_tells_them() {
        assert!(is_classic_token("00D5g000000XXXX!AQ0.abc_9"));
        assert!(is_classic_token("00D5g000000XXXXEAA!AQ"));
        assert!(!is_classic_token("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
        assert!(!is_classic_token("00D5g!AQ"));
        assert!(!is_classic_token("00D5g000000XXXX!AQ-x"));
        assert!(!is_classic_token("0055g000000XXXX!AQ"));
    }

    #[test]
    fn a_home_holds_one_private_file_per_org_and_goes_away() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let run = parent.path().join("run");
        let token = SecretString::new("eyJ.token.sig".into());
        let org = SfOrg {
            username: "ci@acme.example",
            access_token: &token,
            instance_url: "https://acme.my.salesforce.com",
            login_url: "https://login.salesforce.com",
            org_id: Some("00D5g000000XXXXEAA"),
            is_dev_hub: false,
        };
        let home = SfHome::create(&run, &[org]).unwrap();
        let file = home.path().join(".sfdx/ci@acme.example.json");
        let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["accessToken"], "eyJ.token.sig");
        assert_eq!(v["orgId"], "00D5g000000XXXXEAA");
        assert!(v.get("isDevHub").is_none());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(home.path()), 0o700);
        let dir = home.path().to_path_buf();
        drop(home);
        assert!(!dir.exists());
        // A home whose process is gone is swept; a live one's is kept.
        let stale = run.join(format!("{PREFIX}{}-00", i32::MAX));
        let live = run.join(format!("{PREFIX}{}-00", std::process::id()));
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        sweep(&run);
        assert!(!stale.exists() && live.exists());
        let bad = SfOrg {
            username: "../x",
            access_token: &token,
            instance_url: "https://a.example",
            login_url: "https://a.example",
            org_id: None,
            is_dev_hub: false,
        };
        assert!(SfHome::create(&run, &[bad]).is_err());
    }
}
