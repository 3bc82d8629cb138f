//! The admin entry of the commands that work at Salesforce (`rotate --at-salesforce`, `audit
//! --at-salesforce`, `revoke --at-salesforce`): its token, and who it is there.

use sfvault::Result;
use sfvault::secret::SecretString;
use sfvault::vault::name::EntryName;

use super::Context;
use super::session::Session;

/// The admin entry, logged in.
pub struct AdminLogin {
    /// Its address.
    pub name: EntryName,
    /// Its consumer key (its app must not be the one acted on).
    pub key: Option<String>,
    /// Who it is at Salesforce: its user id and username, as far as the vault knows them.
    pub identity: Vec<String>,
    /// The org's instance URL.
    pub instance_url: String,
    /// A valid access token.
    pub token: SecretString,
}

/// Log in as the admin entry `admin` (a cached token, checked, or a new one).
pub fn login(ctx: &Context, session: &mut Session, admin: &str) -> Result<AdminLogin> {
    let name = EntryName::parse(admin)?;
    let token = super::oauth_cmds::valid_token(ctx, session, &name, false)?;
    // Read after the token: a new one stores the user id.
    let fields = session.entry(&name, false)?.fields;
    let value = |f: &str| {
        fields
            .get(f)
            .map(|v| v.value.expose().to_owned())
            .filter(|v| !v.is_empty())
    };
    Ok(AdminLogin {
        key: value("consumer_key"),
        identity: ["user_id", "username"]
            .iter()
            .filter_map(|f| value(f))
            .collect(),
        instance_url: token.instance_url,
        token: token.access_token,
        name,
    })
}
