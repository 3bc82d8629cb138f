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
    /// The login URL the host stands for: `https://HOST`, as the Salesforce CLI reads it. An
    /// explicit `@http://` (which sf itself cannot read) is taken as plain http only when the
    /// host is this machine (a local test server), as checked by [`crate::url::parse`].
    pub login_url: String,
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
    // One @ only: a second one would make the host depend on which @ a reader splits at.
    let (creds, host) = rest.split_once('@').ok_or_else(|| bad("no @HOST"))?;
    if host.contains('@') {
        return Err(bad("more than one @"));
    }
    let mut parts = creds.splitn(3, ':');
    let (id, secret, refresh) = (parts.next(), parts.next(), parts.next());
    let (Some(id), Some(secret), Some(refresh)) = (id, secret, refresh) else {
        return Err(bad("expected three parts before @"));
    };
    if id.is_empty() || refresh.is_empty() {
        return Err(bad("empty client id or refresh token"));
    }
    let plain_http = host.starts_with("http://");
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(host)
        .trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#']) {
        return Err(bad(
            "the part after @ must be a host, with an optional port",
        ));
    }
    // The text after @ is not echoed: a mangled URL may have a secret there.
    let url = crate::url::parse(&format!("https://{host}"))
        .map_err(|r| r.error("not an SFDX auth URL: the host after @"))?;
    // As sf: a bare host is https, whatever it looks like (a name starting with "localhost" or
    // "127" is not this machine); http only when written out, and only to this machine.
    let login_url = if plain_http && url.is_loopback() {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    };
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
        login_url,
    })
}

/// Format an SFDX auth URL; `host` is `HOST[:PORT]`, as sf writes it (no scheme: sf reads every
/// host as https).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

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
        assert_eq!(p.login_url, "https://acme.my.salesforce.com");
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
    }

    #[test]
    fn hosts_go_through_the_url_check() {
        for (text, login_url) in [
            // A bare host is https, as sf reads it, even on this machine.
            ("force://id:s:rt@127.0.0.1:8080", "https://127.0.0.1:8080"),
            ("force://id:s:rt@localhost:1717/", "https://localhost:1717"),
            (
                "force://id:s:rt@localhost.acme.example",
                "https://localhost.acme.example",
            ),
            // Plain http only when written, and only to this machine.
            (
                "force://id:s:rt@http://127.0.0.1:8080",
                "http://127.0.0.1:8080",
            ),
            (
                "force://id:s:rt@http://localhost:1717/",
                "http://localhost:1717",
            ),
            ("force://id:s:rt@http://[::1]:8080", "http://[::1]:8080"),
            (
                "force://id:s:rt@https://acme.my.salesforce.com/",
                "https://acme.my.salesforce.com",
            ),
            // An explicit http:// to a remote host becomes https, never plain http.
            (
                "force://id:s:rt@http://acme.my.salesforce.com",
                "https://acme.my.salesforce.com",
            ),
            (
                "force://id:s:rt@127.0.0.1.nip.io",
                "https://127.0.0.1.nip.io",
            ),
            (
                "force://id:s:rt@localhost.evil.example",
                "https://localhost.evil.example",
            ),
        ] {
            assert_eq!(parse(text).unwrap().login_url, login_url, "{text}");
        }
        for (text, code) in [
            (
                "force://id:s:rt@localhost:80@evil.example",
                ErrorKind::Usage,
            ),
            (
                "force://id:s:rt@http://localhost:80@evil.example/",
                ErrorKind::Usage,
            ),
            ("force://id:s@x:rt@evil.example", ErrorKind::Usage),
            ("force://id:s:rt@", ErrorKind::Usage),
            ("force://id:s:rt@https://", ErrorKind::Usage),
            ("force://id:s:rt@127.1", ErrorKind::Usage),
            ("force://id:s:rt@2130706433", ErrorKind::Usage),
            ("force://id:s:rt@localhost.", ErrorKind::Usage),
            ("force://id:s:rt@localhost:99999", ErrorKind::Usage),
            ("force://id:s:rt@local%68ost", ErrorKind::Usage),
            ("force://id:s:rt@localhost\\x", ErrorKind::Usage),
            ("force://id:s:rt@localhost/x", ErrorKind::Usage),
            ("force://id:s:rt@localhost?x", ErrorKind::Usage),
            ("force://id:s:rt@localhost#x", ErrorKind::Usage),
            ("force://id:s:rt@[::1", ErrorKind::Usage),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind(), code, "{text}");
        }
        // The refusal never repeats the input, which holds the secret and the refresh token.
        let err = parse("force://id:SECRETVALUE:REFRESHVALUE@localhost.").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("SECRETVALUE") && !message.contains("REFRESHVALUE"));
        assert!(!message.contains("localhost"), "{message}");
    }
}
