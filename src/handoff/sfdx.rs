//! The SFDX auth URL that `sf org login sfdx-url` reads:
//! `force://CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN@HOST` (the secret may be empty).

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// The parts of an SFDX auth URL.
#[derive(Debug)]
pub struct SfdxUrl {
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret, if any.
    pub client_secret: Option<SecretString>,
    /// Refresh token.
    pub refresh_token: SecretString,
    /// Instance or login host (`acme.my.salesforce.com`), with a port if one was given.
    pub host: String,
}

/// Parse an SFDX auth URL (surrounding white space allowed, at most 8 KiB).
pub fn parse(text: &str) -> Result<SfdxUrl> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "not an SFDX auth URL (force://CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN@HOST): {why}"
        ))
    };
    let text = text.trim();
    if text.len() > 8192 {
        return Err(bad("too long"));
    }
    let rest = text
        .strip_prefix("force://")
        .ok_or_else(|| bad("no force:// prefix"))?;
    let (creds, host) = rest.rsplit_once('@').ok_or_else(|| bad("no @HOST"))?;
    let mut parts = creds.splitn(3, ':');
    let (id, secret, refresh) = (parts.next(), parts.next(), parts.next());
    let (Some(id), Some(secret), Some(refresh)) = (id, secret, refresh) else {
        return Err(bad("expected three parts before @"));
    };
    let host = host
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if id.is_empty() || refresh.is_empty() || !host_ok {
        return Err(bad("empty client id, refresh token or host"));
    }
    if [id, secret, refresh]
        .iter()
        .any(|p| p.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(bad("white space inside"));
    }
    Ok(SfdxUrl {
        client_id: id.to_owned(),
        client_secret: (!secret.is_empty()).then(|| SecretString::new(secret.to_owned())),
        refresh_token: SecretString::new(refresh.to_owned()),
        host: host.to_owned(),
    })
}

/// Format an SFDX auth URL.
pub fn format(
    client_id: &str,
    client_secret: Option<&SecretString>,
    refresh_token: &SecretString,
    host: &str,
) -> SecretString {
    SecretString::new(format!(
        "force://{client_id}:{}:{}@{host}",
        client_secret.map_or("", |s| s.expose()),
        refresh_token.expose()
    ))
}

/// The host part of a URL (`https://acme.my.salesforce.com/x` → `acme.my.salesforce.com`).
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let url = format(
            "3MVG9",
            Some(&SecretString::new("sec".into())),
            &SecretString::new("5Aep:x".into()),
            "acme.my.salesforce.com",
        );
        let p = parse(url.expose()).unwrap();
        assert_eq!(p.client_id, "3MVG9");
        assert_eq!(p.client_secret.unwrap().expose(), "sec");
        assert_eq!(p.refresh_token.expose(), "5Aep:x");
        assert_eq!(p.host, "acme.my.salesforce.com");
        let no_secret = parse("force://id::rt@h.example.com").unwrap();
        assert!(no_secret.client_secret.is_none());
        for bad in [
            "",
            "force://",
            "force://a:b@h",
            "force://a:b:c",
            "http://a:b:c@h",
            "force://a:b:c@h/../x y",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            host_of("https://acme.my.salesforce.com/services"),
            "acme.my.salesforce.com"
        );
    }
}
