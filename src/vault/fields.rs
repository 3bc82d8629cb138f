//! What sfvault knows about field names: which are secret, which are computed, and which values
//! are acceptable for the known ones.

use crate::error::{Error, Result};
use crate::secret::SecretString;
use crate::vault::name::quoted;

/// Known fields whose values are not secret (shown by `show`, accepted in argv).
pub const PUBLIC_FIELDS: &[&str] = &[
    "consumer_key",
    "username",
    "login_url",
    "flow",
    "scopes",
    "callback_url",
    "token_lifetime",
    "certificate",
    "instance_url",
    "org_id",
    "user_id",
    "token_issued_at",
];

/// Known fields whose values are secret (masked, never from argv).
pub const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "consumer_secret",
    "private_key",
    "password",
    "security_token",
    "refresh_token",
];

/// The token cache, written by the OAuth flows only: they cannot be set by hand. `access_token`
/// and `instance_url` are also the pseudo-fields "a valid token" of references.
pub const COMPUTED_FIELDS: &[&str] = &[
    "access_token",
    "instance_url",
    "org_id",
    "user_id",
    "token_issued_at",
];

/// The OAuth flows an entry may name in its `flow` field.
pub const FLOWS: &[&str] = &[
    "jwt",
    "client-credentials",
    "refresh-token",
    "password",
    "web",
];

/// The login URL used when an entry has none.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// Whether a field is secret when nothing says otherwise: known public fields are not, every
/// other field (known secret or user-defined) is.
pub fn secret_by_default(field: &str) -> bool {
    !PUBLIC_FIELDS.contains(&field)
}

/// Whether `field` may be marked public: known secret fields may not.
pub fn may_be_public(field: &str) -> bool {
    !SECRET_FIELDS.contains(&field)
}

/// Refuse computed pseudo-fields and check the value of a known field.
pub fn check_value(field: &str, value: &SecretString) -> Result<()> {
    if COMPUTED_FIELDS.contains(&field) {
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
    match field {
        "flow" if !FLOWS.contains(&text) => Err(Error::Usage(format!(
            "unknown flow {}: use one of {}",
            quoted(text),
            FLOWS.join(", ")
        ))),
        // callback_url may be any URL the connected app lists (an import brings the app's own
        // https one); the web flow's stricter loopback rule applies at `login --flow web`.
        "login_url" | "callback_url" | "instance_url" => crate::url::check(field, text).map(drop),
        "token_lifetime" => crate::timefmt::parse_duration(text)
            .map(drop)
            .map_err(Error::Usage),
        "private_key" if !looks_like_private_key_pem(text) => Err(Error::Usage(
            "private_key must be a PEM private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)"
                .into(),
        )),
        // The same strict decoding the JWT flow does, so a key that cannot sign (encrypted,
        // broken base64, mismatched labels) is refused when stored, not at the first login.
        "private_key" => crate::pem::decode_private_key(text).map(drop),
        "certificate" if !text.trim_start().starts_with("-----BEGIN CERTIFICATE-----") => Err(
            Error::Usage("certificate must be a PEM certificate (-----BEGIN CERTIFICATE-----)".into()),
        ),
        "consumer_key" | "username" if text.chars().any(char::is_whitespace) => Err(Error::Usage(
            format!("{field} must not contain white space"),
        )),
        _ => Ok(()),
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

    fn s(v: &str) -> SecretString {
        SecretString::new(v.into())
    }

    #[test]
    fn login_urls() {
        assert!(check_value("login_url", &s("https://test.salesforce.com")).is_ok());
        assert!(check_value("login_url", &s("http://127.0.0.1:8080")).is_ok());
        assert!(check_value("login_url", &s("http://[::1]:80/x")).is_ok());
        let err = check_value("login_url", &s("http://login.salesforce.com")).unwrap_err();
        assert_eq!(err.exit_code(), 10);
        // The host is the one after @ (crate::url has the full table of spellings).
        for (url, code) in [
            ("http://localhost:80@evil.example/", 10),
            ("http://[::1]@evil.example/", 10),
            ("http://2130706433/", 2),
        ] {
            for field in ["login_url", "callback_url"] {
                let err = check_value(field, &s(url)).unwrap_err();
                assert_eq!(err.exit_code(), code, "{field} {url}");
            }
        }
        assert_eq!(
            check_value("login_url", &s("ftp://x"))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            check_value("login_url", &s("https://"))
                .unwrap_err()
                .exit_code(),
            2
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
            assert_eq!(err.exit_code(), 2, "{unusable}");
        }
        assert!(check_value("callback_url", &s("http://localhost:1717/OauthRedirect")).is_ok());
        assert!(check_value("callback_url", &s("https://acme.my.salesforce.com/cb")).is_ok());
        assert_eq!(
            check_value("callback_url", &s("x"))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(check_value("access_token", &s("x")).is_err());
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
