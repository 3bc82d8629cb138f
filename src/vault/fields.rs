//! Everything sfvault knows about fields, in one table ([`FIELDS`]): which are secret, who
//! writes them (the user, or an OAuth flow's token cache), which flows need them, and which
//! values are acceptable. The OAuth flows themselves are named here too ([`Flow`]), since an
//! entry's `flow` field holds one. Other modules ask this table; they do not list field names.

use crate::error::{Error, Result};
use crate::secret::SecretString;
use crate::vault::name::quoted;

/// The OAuth flows an entry may name in its `flow` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// JWT bearer: a signed assertion, no secret sent.
    Jwt,
    /// Client credentials: consumer key and secret, for a "run as" user.
    ClientCredentials,
    /// A stored refresh token.
    RefreshToken,
    /// Username and password (+ security token); being retired by Salesforce.
    Password,
    /// Web server flow with PKCE, in a browser.
    Web,
}

impl Flow {
    /// Every flow, in the order help texts list them.
    pub const ALL: [Flow; 5] = [
        Flow::Jwt,
        Flow::ClientCredentials,
        Flow::RefreshToken,
        Flow::Password,
        Flow::Web,
    ];

    /// The flow's name as stored in `flow` and typed after `--flow`.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Jwt => "jwt",
            Flow::ClientCredentials => "client-credentials",
            Flow::RefreshToken => "refresh-token",
            Flow::Password => "password",
            Flow::Web => "web",
        }
    }

    /// Parse a `flow` field value.
    pub fn parse(text: &str) -> Result<Flow> {
        Flow::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown flow {}: use one of {}",
                    quoted(text),
                    Flow::names().join(", ")
                ))
            })
    }

    /// The names of all flows.
    pub fn names() -> Vec<&'static str> {
        Flow::ALL.iter().map(|f| f.name()).collect()
    }

    /// The fields this flow cannot work without, in table order.
    pub fn required_fields(self) -> impl Iterator<Item = &'static str> {
        FIELDS
            .iter()
            .filter(move |f| f.required_by.contains(&self))
            .map(|f| f.name)
    }

    /// The fields this flow reads: those it requires and those it sends when present.
    pub fn read_fields(self) -> impl Iterator<Item = &'static str> {
        FIELDS
            .iter()
            .filter(move |f| f.required_by.contains(&self) || f.sent_by.contains(&self))
            .map(|f| f.name)
    }
}

/// Who writes a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The user (`add`, `set`, `rotate`, `import`).
    User,
    /// The OAuth flows only: the token cache. It cannot be set by hand.
    Flow,
}

/// Which values a known field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Anything not empty.
    Any,
    /// No white space (a key, a user name).
    NoSpace,
    /// A URL sfvault may connect to (see [`crate::url`]).
    Url,
    /// One of the [`Flow`] names.
    FlowName,
    /// A duration with a unit (`90m`, `2h`).
    Duration,
    /// A PEM private key sfvault can sign with (unencrypted PKCS#1 or PKCS#8).
    PrivateKey,
    /// A PEM certificate.
    Certificate,
}

/// What sfvault knows about one field.
#[derive(Debug)]
pub struct FieldSpec {
    /// The field's name.
    pub name: &'static str,
    /// Masked in output and never accepted from the command line; may not be made public.
    pub secret: bool,
    /// Who writes it.
    pub writer: Writer,
    /// Flows that cannot work without it.
    pub required_by: &'static [Flow],
    /// Flows that send it when the entry has it.
    pub sent_by: &'static [Flow],
    /// A value computed on demand where it is asked for (`get`, references): a valid access
    /// token and its instance, renewed through the entry's flow when stale.
    pub from_valid_token: bool,
    /// Which values it accepts.
    pub check: Check,
}

const NONE: &[Flow] = &[];
const ALL_BUT_JWT: &[Flow] = &[
    Flow::ClientCredentials,
    Flow::RefreshToken,
    Flow::Password,
    Flow::Web,
];

const fn user(name: &'static str, secret: bool, check: Check) -> FieldSpec {
    FieldSpec {
        name,
        secret,
        writer: Writer::User,
        required_by: NONE,
        sent_by: NONE,
        from_valid_token: false,
        check,
    }
}

const fn computed(name: &'static str, secret: bool, check: Check) -> FieldSpec {
    FieldSpec {
        writer: Writer::Flow,
        ..user(name, secret, check)
    }
}

/// The name of the cached access token, written by the flows.
pub const ACCESS_TOKEN: &str = "access_token";
/// The name of the cached token's instance URL.
pub const INSTANCE_URL: &str = "instance_url";
/// When Salesforce last accepted the cached access token (Unix seconds).
pub const TOKEN_CHECKED_AT: &str = "token_checked_at";
/// The name of the refresh token field.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The External Client App's identifier (`0x…`), found and stored by `rotate --at-salesforce`.
pub const APP_ID: &str = "app_id";
/// The app's developer (API) name: the Metadata API names its components after it.
pub const APP_NAME: &str = "app_name";
/// A classic connected app's name as Salesforce shows it (`OauthToken.AppName`), for
/// `audit --at-salesforce` to know its tokens.
pub const APP_LABEL: &str = "app_label";
/// The app's consumer id (its credentials resources are under it).
pub const CONSUMER_ID: &str = "consumer_id";
/// Where a rotation at Salesforce of the consumer pair stands (`rotation::State`); its history
/// is the steps taken.
pub const ROTATION: &str = "rotation";
/// The same for the JWT key and its certificate.
pub const KEY_ROTATION: &str = "key_rotation";

/// Every field sfvault knows. Fields not listed here are the user's own: secret unless
/// marked public, any non-empty value.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        required_by: &Flow::ALL,
        ..user("consumer_key", false, Check::NoSpace)
    },
    FieldSpec {
        required_by: &[Flow::ClientCredentials, Flow::Password],
        sent_by: ALL_BUT_JWT,
        ..user("consumer_secret", true, Check::Any)
    },
    FieldSpec {
        required_by: &[Flow::Jwt, Flow::Password],
        ..user("username", false, Check::NoSpace)
    },
    FieldSpec {
        required_by: &[Flow::Jwt],
        ..user("private_key", true, Check::PrivateKey)
    },
    FieldSpec {
        required_by: &[Flow::Password],
        ..user("password", true, Check::Any)
    },
    FieldSpec {
        sent_by: &[Flow::Password],
        ..user("security_token", true, Check::Any)
    },
    FieldSpec {
        required_by: &[Flow::RefreshToken],
        ..user(REFRESH_TOKEN, true, Check::Any)
    },
    user("login_url", false, Check::Url),
    user("audience", false, Check::Url),
    user("flow", false, Check::FlowName),
    user("scopes", false, Check::Any),
    user("callback_url", false, Check::Url),
    user("token_lifetime", false, Check::Duration),
    user("certificate", false, Check::Certificate),
    user(APP_ID, false, Check::NoSpace),
    user(APP_NAME, false, Check::NoSpace),
    user(CONSUMER_ID, false, Check::NoSpace),
    user(APP_LABEL, false, Check::Any),
    user(ROTATION, false, Check::Any),
    user(KEY_ROTATION, false, Check::Any),
    FieldSpec {
        from_valid_token: true,
        ..computed(ACCESS_TOKEN, true, Check::Any)
    },
    FieldSpec {
        from_valid_token: true,
        ..computed(INSTANCE_URL, false, Check::Url)
    },
    computed("org_id", false, Check::Any),
    computed("user_id", false, Check::Any),
    computed("token_issued_at", false, Check::Any),
    computed(TOKEN_CHECKED_AT, false, Check::Any),
];

/// The login URL used when an entry has none.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// What the table says of `field`, if it is a known one.
pub fn spec(field: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name == field)
}

/// Whether a field is secret when nothing says otherwise: known public fields are not, every
/// other field (known secret or user-defined) is.
pub fn secret_by_default(field: &str) -> bool {
    spec(field).is_none_or(|f| f.secret)
}

/// Whether `field` may be marked public: known secret fields may not.
pub fn may_be_public(field: &str) -> bool {
    spec(field).is_none_or(|f| !f.secret)
}

/// Whether `field` is the token cache's, written by the OAuth flows only.
pub fn is_computed(field: &str) -> bool {
    spec(field).is_some_and(|f| f.writer == Writer::Flow)
}

/// The token cache's fields.
pub fn computed_fields() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .filter(|f| f.writer == Writer::Flow)
        .map(|f| f.name)
}

/// Whether `field`, where it is asked for, means "a valid token" rather than a stored value.
pub fn from_valid_token(field: &str) -> bool {
    spec(field).is_some_and(|f| f.from_valid_token)
}

/// Whether `field` is a known secret the user keeps (what `rotate` replaces and `audit` ages).
pub fn is_user_secret(field: &str) -> bool {
    spec(field).is_some_and(|f| f.secret && f.writer == Writer::User)
}

/// The known secrets the user keeps, in table order.
pub fn user_secrets() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .filter(|f| f.secret && f.writer == Writer::User)
        .map(|f| f.name)
}

/// The known fields a user may import or set by hand, in table order.
pub fn user_fields() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .filter(|f| f.writer == Writer::User)
        .map(|f| f.name)
}

/// Refuse computed pseudo-fields and check the value of a known field.
pub fn check_value(field: &str, value: &SecretString) -> Result<()> {
    if is_computed(field) {
        return Err(Error::Usage(format!(
            "{field} is computed by the entry's OAuth flow and cannot be set; run `sfvault login ORG/APP`"
        )));
    }
    check_known_value(field, value)
}

/// Check the value of a known field (computed ones included).
pub fn check_known_value(field: &str, value: &SecretString) -> Result<()> {
    let text = value.expose();
    if text.is_empty() {
        return Err(Error::Usage(format!(
            "empty value for {field}: nothing was stored"
        )));
    }
    match spec(field).map_or(Check::Any, |f| f.check) {
        Check::Any => Ok(()),
        Check::FlowName => Flow::parse(text).map(drop),
        // callback_url may be any URL the connected app lists (an import brings the app's own
        // https one); the web flow's stricter loopback rule applies at `login --flow web`.
        Check::Url => crate::url::check(field, text).map(drop),
        Check::Duration => crate::timefmt::parse_duration(text)
            .map(drop)
            .map_err(Error::Usage),
        Check::PrivateKey if !looks_like_private_key_pem(text) => Err(Error::Usage(
            "private_key must be a PEM private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)"
                .into(),
        )),
        // The same strict decoding the JWT flow does, so a key that cannot sign (encrypted,
        // broken base64, mismatched labels) is refused when stored, not at the first login.
        Check::PrivateKey => crate::pem::decode_private_key(text).map(drop),
        Check::Certificate if !text.trim_start().starts_with("-----BEGIN CERTIFICATE-----") => Err(
            Error::Usage("certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into()),
        ),
        Check::Certificate => Ok(()),
        Check::NoSpace if text.chars().any(char::is_whitespace) => Err(Error::Usage(format!(
            "{field} must not contain white space"
        ))),
        Check::NoSpace => Ok(()),
    }
}

/// True when `text` holds a PEM private-key block (PKCS#1 or PKCS#8, possibly encrypted).
pub fn looks_like_private_key_pem(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("-----BEGIN ")
        && trimmed.ends_with("-----")
        && trimmed
            .lines()
            .next()
            .is_some_and(|l| l.ends_with("PRIVATE KEY-----"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn s(v: &str) -> SecretString {
        SecretString::new(v.into())
    }

    #[test]
    fn login_urls() {
        assert!(check_value("login_url", &s("https://test.salesforce.com")).is_ok());
        assert!(check_value("login_url", &s("http://127.0.0.1:8080")).is_ok());
        assert!(check_value("login_url", &s("http://[::1]:80/x")).is_ok());
        let err = check_value("login_url", &s("http://login.salesforce.com")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe);
        // The host is the one after @ (crate::url has the full table of spellings).
        for (url, code) in [
            ("http://localhost:80@evil.example/", ErrorKind::Unsafe),
            ("http://[::1]@evil.example/", ErrorKind::Unsafe),
            ("http://2130706433/", ErrorKind::Usage),
        ] {
            for field in ["login_url", "callback_url"] {
                let err = check_value(field, &s(url)).unwrap_err();
                assert_eq!(err.kind(), code, "{field} {url}");
            }
        }
        assert_eq!(
            check_value("login_url", &s("ftp://x")).unwrap_err().kind(),
            ErrorKind::Usage
        );
        assert_eq!(
            check_value("login_url", &s("https://")).unwrap_err().kind(),
            ErrorKind::Usage
        );
    }

    #[test]
    fn flows_and_keys() {
        assert!(check_value("flow", &s("jwt")).is_ok());
        assert!(check_value("flow", &s("magic")).is_err());
        assert!(check_value("private_key", &s("not a key")).is_err());
        assert!(
            check_value(
                "private_key",
                &s("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
            )
            .is_ok()
        );
        for unusable in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        ] {
            let err = check_value("private_key", &s(unusable)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage, "{unusable}");
        }
        assert!(check_value("callback_url", &s("http://localhost:1717/OauthRedirect")).is_ok());
        assert!(check_value("callback_url", &s("https://acme.my.salesforce.com/cb")).is_ok());
        assert_eq!(
            check_value("callback_url", &s("x")).unwrap_err().kind(),
            ErrorKind::Usage
        );
        assert!(check_value("access_token", &s("x")).is_err());
    }

    #[test]
    fn the_table_answers_what_was_spread_out() {
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a field is listed twice");
        let required = |flow: Flow| flow.required_fields().collect::<Vec<_>>();
        assert_eq!(
            required(Flow::Jwt),
            ["consumer_key", "username", "private_key"]
        );
        assert_eq!(
            required(Flow::ClientCredentials),
            ["consumer_key", "consumer_secret"]
        );
        assert_eq!(
            required(Flow::RefreshToken),
            ["consumer_key", "refresh_token"]
        );
        assert_eq!(
            required(Flow::Password),
            ["consumer_key", "consumer_secret", "username", "password"]
        );
        assert_eq!(required(Flow::Web), ["consumer_key"]);
        assert!(!Flow::Jwt.read_fields().any(|f| f == "consumer_secret"));
        assert!(Flow::Password.read_fields().any(|f| f == "security_token"));
        assert_eq!(
            user_secrets().collect::<Vec<_>>(),
            [
                "consumer_secret",
                "private_key",
                "password",
                "security_token",
                "refresh_token"
            ]
        );
        assert_eq!(
            computed_fields().collect::<Vec<_>>(),
            [
                "access_token",
                "instance_url",
                "org_id",
                "user_id",
                "token_issued_at",
                "token_checked_at"
            ]
        );
        assert!(from_valid_token("access_token") && from_valid_token("instance_url"));
        assert!(!from_valid_token("org_id") && !is_user_secret("access_token"));
        for flow in Flow::ALL {
            assert_eq!(Flow::parse(flow.name()).unwrap(), flow);
        }
        assert_eq!(Flow::parse("magic").unwrap_err().kind(), ErrorKind::Usage);
    }

    #[test]
    fn secrecy_defaults() {
        assert!(!secret_by_default("consumer_key"));
        assert!(secret_by_default("consumer_secret"));
        assert!(secret_by_default("my_custom"));
        assert!(!may_be_public("private_key"));
        assert!(may_be_public("my_custom"));
    }
}
