//! External Client Apps' consumer credentials (Connect REST, `apps/oauth/…`): find an app and
//! its consumer, read its current key, and work its one staged slot: stage a new key and
//! secret, promote it, delete the pair in the slot. Unconfirmed shapes (SALESFORCE facts in
//! docs/ROTATION.md) are read leniently: a staged answer bare or wrapped in
//! `stagedCredentials[]`, an empty slot as 404 or as an empty list.

use serde::Deserialize;
use serde_json::Value;

use super::{Admin, check_id, clean};
use crate::error::{Error, Result};
use crate::oauth::http::Method;
use crate::secret::SecretString;

/// Most apps looked through when finding an app by its consumer key.
pub const MAX_APPS: usize = 500;

/// An External Client App, as listed by the org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    /// Its identifier (`0x…`).
    pub id: String,
    /// Its developer (API) name.
    pub developer_name: String,
}

/// One consumer of an app: its id and current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer id (goes into the credentials URLs).
    pub id: String,
    /// Its current (primary) consumer key.
    pub key: String,
}

/// The state of a staged pair, as Salesforce names it (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagedState {
    /// Staged, not promoted: works beside the primary.
    Active,
    /// The former primary after a promotion: still works until deleted or expired.
    Rotated,
    /// Past its 30 days: works no more.
    Expired,
    /// A state this build does not know (shown as it came).
    Other(String),
}

impl StagedState {
    fn parse(text: &str) -> StagedState {
        match text.to_ascii_lowercase().as_str() {
            "active" => StagedState::Active,
            "rotated" => StagedState::Rotated,
            "expired" => StagedState::Expired,
            _ => StagedState::Other(clean(text, 40)),
        }
    }

    /// The name to show.
    pub fn name(&self) -> &str {
        match self {
            StagedState::Active => "Active",
            StagedState::Rotated => "Rotated",
            StagedState::Expired => "Expired",
            StagedState::Other(s) => s,
        }
    }
}

/// The pair in a consumer's staged slot.
#[derive(Debug)]
pub struct StagedPair {
    /// Its id (for PATCH and DELETE).
    pub id: String,
    /// Its consumer key.
    pub key: String,
    /// Its consumer secret (needed only when a pair is adopted; not required otherwise).
    pub secret: Option<SecretString>,
    /// Its state.
    pub state: StagedState,
    /// Who created it, as Salesforce says.
    pub created_by: String,
    /// When, as Salesforce says.
    pub created_date: String,
    /// When it expires, as Salesforce says.
    pub expiration_date: String,
}

#[derive(Deserialize)]
struct RawStaged {
    id: String,
    key: String,
    #[serde(default)]
    secret: Option<SecretString>,
    state: String,
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
    #[serde(default, rename = "createdDate")]
    created_date: Option<String>,
    #[serde(default, rename = "expirationDate")]
    expiration_date: Option<String>,
}

fn unusable(call: &str, why: &str) -> Error {
    Error::network(format!("Salesforce's answer to {call} is unusable: {why}"))
}

/// A staged answer: the object, or `{"stagedCredentials":[…]}` (or a bare list) with zero or
/// one object. Taken apart by moving, never cloning: the tree holds a secret.
fn parse_staged(call: &str, body: &str) -> Result<Option<StagedPair>> {
    let mut value: Value = serde_json::from_str(body).map_err(|_| unusable(call, "not JSON"))?;
    let list = if value.is_array() {
        Some(value.take())
    } else {
        value.get_mut("stagedCredentials").map(Value::take)
    };
    let object = match list {
        Some(Value::Array(mut items)) if items.len() <= 1 => match items.pop() {
            Some(one) => one,
            None => return Ok(None),
        },
        Some(_) => {
            return Err(unusable(
                call,
                "stagedCredentials is not a list of at most one",
            ));
        }
        None => value,
    };
    let raw: RawStaged =
        serde_json::from_value(object).map_err(|_| unusable(call, "no id, key and state"))?;
    check_id("staged credential id", &raw.id)?;
    check_key(call, &raw.key)?;
    if raw
        .secret
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 512)
    {
        return Err(unusable(call, "an unusable secret"));
    }
    let text = |o: Option<String>| o.map(|s| clean(&s, 80)).unwrap_or_default();
    Ok(Some(StagedPair {
        id: raw.id,
        key: raw.key,
        secret: raw.secret,
        state: StagedState::parse(&raw.state),
        created_by: text(raw.created_by),
        created_date: text(raw.created_date),
        expiration_date: text(raw.expiration_date),
    }))
}

/// Apps from a list of objects naming them by `id_key` and `name_key`: checked ids, each once,
/// at most [`MAX_APPS`] (more is an error, never a silent cut).
fn app_refs(call: &str, list: &[Value], id_key: &str, name_key: &str) -> Result<Vec<AppRef>> {
    if list.len() > MAX_APPS {
        return Err(unusable(call, "more apps than sfvault reads"));
    }
    let mut out: Vec<AppRef> = Vec::new();
    for a in list {
        let (Some(id), Some(name)) = (
            a.get(id_key).and_then(Value::as_str),
            a.get(name_key).and_then(Value::as_str),
        ) else {
            continue;
        };
        if check_id("app id", id).is_ok() && !out.iter().any(|o| o.id == id) {
            out.push(AppRef {
                id: id.to_owned(),
                developer_name: clean(name, 80),
            });
        }
    }
    Ok(out)
}

fn check_key(call: &str, key: &str) -> Result<()> {
    if (1..=256).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(unusable(call, "the consumer key is not printable ASCII"))
    }
}

impl Admin<'_> {
    fn consumer_path(app_id: &str, consumer_id: &str) -> Result<String> {
        check_id("app id", app_id)?;
        check_id("consumer id", consumer_id)?;
        Ok(format!("apps/oauth/credentials/{app_id}/{consumer_id}"))
    }

    /// The External Client Apps with OAuth usage (`apps/oauth/usage`).
    pub fn usage_apps(&self) -> Result<Vec<AppRef>> {
        let call = "listing the apps with OAuth usage";
        let r = self.rest(call, Method::Get, "apps/oauth/usage", None, false)?;
        let value: Value = serde_json::from_str(&r.body).map_err(|_| unusable(call, "not JSON"))?;
        let apps = value
            .get("apps")
            .and_then(Value::as_array)
            .ok_or_else(|| unusable(call, "no apps list"))?;
        app_refs(call, apps, "identifier", "developerName")
    }

    /// Every External Client App, by SOQL (apps that never issued a token are missing from
    /// [`Admin::usage_apps`]).
    pub fn all_apps(&self) -> Result<Vec<AppRef>> {
        let call = "querying ExternalClientApplication";
        let (records, _) = self.soql(
            call,
            "SELECT Id, DeveloperName FROM ExternalClientApplication",
        )?;
        app_refs(call, &records, "Id", "DeveloperName")
    }

    /// The consumers of app `app_id`; `None` when Salesforce knows no External Client App of
    /// that id (404: a classic connected app, or a deleted app).
    pub fn consumers(&self, app_id: &str) -> Result<Option<Vec<Consumer>>> {
        check_id("app id", app_id)?;
        let call = "reading the app's consumers";
        let path = format!("apps/oauth/credentials/{app_id}");
        let r = self.rest(call, Method::Get, &path, None, true)?;
        if r.status == 404 {
            return Ok(None);
        }
        let value: Value = serde_json::from_str(&r.body).map_err(|_| unusable(call, "not JSON"))?;
        let list = value
            .get("consumers")
            .and_then(Value::as_array)
            .ok_or_else(|| unusable(call, "no consumers list"))?;
        let mut out = Vec::new();
        for c in list.iter().take(100) {
            let (Some(id), Some(key)) = (
                c.get("id").and_then(Value::as_str),
                c.get("key").and_then(Value::as_str),
            ) else {
                return Err(unusable(call, "a consumer without id or key"));
            };
            check_id("consumer id", id)?;
            check_key(call, key)?;
            out.push(Consumer {
                id: id.to_owned(),
                key: key.to_owned(),
            });
        }
        Ok(Some(out))
    }

    /// The consumer's current (primary) key (`?part=key`).
    pub fn current_key(&self, app_id: &str, consumer_id: &str) -> Result<String> {
        let call = "reading the current consumer key";
        let path = format!("{}?part=key", Self::consumer_path(app_id, consumer_id)?);
        let r = self.rest(call, Method::Get, &path, None, false)?;
        let value: Value = serde_json::from_str(&r.body).map_err(|_| unusable(call, "not JSON"))?;
        let key = value
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| unusable(call, "no key"))?;
        check_key(call, key)?;
        Ok(key.to_owned())
    }

    /// What the consumer's staged slot holds, if anything.
    pub fn staged(&self, app_id: &str, consumer_id: &str) -> Result<Option<StagedPair>> {
        let call = "reading the staged slot";
        let path = format!("{}/staged", Self::consumer_path(app_id, consumer_id)?);
        let r = self.rest(call, Method::Get, &path, None, true)?;
        if r.status == 404 {
            return Ok(None);
        }
        parse_staged(call, &r.body)
    }

    /// Stage a new pair (a new key and a new secret) beside the primary.
    pub fn stage(&self, app_id: &str, consumer_id: &str) -> Result<StagedPair> {
        let call = "staging a new consumer key and secret";
        let path = format!("{}/staged", Self::consumer_path(app_id, consumer_id)?);
        // Documented as taking no body; an empty POST has been seen to hang.
        let r = self.rest(call, Method::Post, &path, Some("{}"), false)?;
        parse_staged(call, &r.body)?
            .filter(|p| p.secret.is_some())
            .ok_or_else(|| unusable(call, "no staged pair with its secret"))
    }

    /// Promote the staged pair `staged_id` to primary; the old primary moves into the slot as
    /// `Rotated` and keeps working.
    pub fn promote(&self, app_id: &str, consumer_id: &str, staged_id: &str) -> Result<()> {
        check_id("staged credential id", staged_id)?;
        let call = "promoting the staged pair";
        let path = format!(
            "{}/staged/{staged_id}",
            Self::consumer_path(app_id, consumer_id)?
        );
        self.rest(
            call,
            Method::Patch,
            &path,
            Some(r#"{"command":"rotate"}"#),
            false,
        )?;
        Ok(())
    }

    /// Delete the pair `staged_id` from the slot; `false` when it was already gone (404).
    pub fn delete_staged(&self, app_id: &str, consumer_id: &str, staged_id: &str) -> Result<bool> {
        check_id("staged credential id", staged_id)?;
        let call = "deleting a staged pair";
        let path = format!(
            "{}/staged/{staged_id}",
            Self::consumer_path(app_id, consumer_id)?
        );
        let r = self.rest(call, Method::Delete, &path, None, true)?;
        Ok(r.status != 404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJ: &str = r#"{"id":"0Xs000000000001","key":"3MVG9new","secret":"ABC123","state":"ACTIVE",
        "createdBy":"admin@acme","createdDate":"2026-11-30T14:00:00.000Z","expirationDate":"2026-12-30T14:00:00.000Z"}"#;

    #[test]
    fn staged_answers_bare_or_wrapped_or_empty() {
        let bare = parse_staged("t", OBJ).unwrap().unwrap();
        assert_eq!(bare.state, StagedState::Active);
        assert_eq!(bare.key, "3MVG9new");
        let wrapped = parse_staged("t", &format!(r#"{{"stagedCredentials":[{OBJ}]}}"#))
            .unwrap()
            .unwrap();
        assert_eq!(wrapped.id, "0Xs000000000001");
        assert!(
            parse_staged("t", r#"{"stagedCredentials":[]}"#)
                .unwrap()
                .is_none()
        );
        assert!(parse_staged("t", "[]").unwrap().is_none());
        let no_secret = parse_staged("t", r#"{"id":"a","key":"k","state":"Rotated"}"#)
            .unwrap()
            .unwrap();
        assert!(no_secret.secret.is_none());
        for bad in [
            "nope",
            r#"{"stagedCredentials":{}}"#,
            r#"{"id":"../x","key":"k","secret":"s","state":"Active"}"#,
            r#"{"id":"a","key":"k k","secret":"s","state":"Active"}"#,
            r#"{"id":"a","key":"k","secret":"","state":"Active"}"#,
            r#"[{"id":"a","key":"k","state":"Active"},{"id":"b","key":"k","state":"Active"}]"#,
        ] {
            assert!(parse_staged("t", bad).is_err(), "{bad}");
        }
        assert_eq!(StagedState::parse("rotated"), StagedState::Rotated);
        assert_eq!(StagedState::parse("Odd\u{7}").name(), "Odd");
    }
}
