//! The one URL check. Every URL sfvault stores, imports, receives from Salesforce, listens on or
//! sends a request to goes through [`parse`], which reads it with the parser the HTTP client
//! itself resolves with (ureq hands the text to `http::Uri` and connects to
//! `Authority::host()`), so the host checked is the host connected to.
//!
//! A URL is accepted when it is `https://HOST[:PORT][/PATH]`, or `http://` to this machine
//! (`localhost`, `127.0.0.0/8`, `[::1]`; used by tests and local tools). Everything else is
//! refused, and so is every spelling that two programs could read differently:
//!
//! - a user name or password before `@` (`http://localhost:80@evil.example/` goes to
//!   `evil.example`): refused as unsafe (exit 10), whatever the scheme;
//! - a query or fragment (sfvault appends paths to these URLs; `?` or `#` would swallow them);
//! - white space, control or non-ASCII characters, backslashes, `%` escapes in the host;
//! - a host that is neither a bracketed IPv6 address, nor a dotted-decimal IPv4 address, nor a
//!   name of letters, digits, `-` and `.`; a name with an empty label (`localhost.`, `a..b`); a
//!   name ending in a number (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`), which the
//!   system resolver reads as an IPv4 address in one of its legacy spellings;
//! - an empty, signed or out-of-range port (`http::Uri` would silently fall back to port 80).
//!
//! Refusals never quote the URL: callers name it (see [`check`]) or, for text that may hold a
//! secret (an SFDX auth URL), describe it without its content.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ureq::http::Uri;
use ureq::http::uri::Scheme;

use crate::error::{Error, Result};
use crate::quote::quoted;

/// A URL that passed [`parse`]: https to any host, or http to this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    https: bool,
    host: String,
    port: Option<u16>,
    path: String,
    loopback: bool,
}

impl Url {
    /// True for `https://`, false for `http://` (then [`Url::is_loopback`] is true).
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host exactly as ureq resolves it: as written (case kept), IPv6 addresses in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if the URL has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `HOST` or `HOST:PORT`, as written in the URL.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The path, `/` when the URL has none.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the host is this machine: `localhost` (any case), `127.0.0.0/8` or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }
}

/// Why a URL was refused. It never contains the URL's text, so it may describe text that holds
/// secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    is_unsafe: bool,
    reason: &'static str,
}

impl Refusal {
    fn malformed(reason: &'static str) -> Refusal {
        Refusal {
            is_unsafe: false,
            reason,
        }
    }

    fn unsafe_(reason: &'static str) -> Refusal {
        Refusal {
            is_unsafe: true,
            reason,
        }
    }

    /// True when the URL is well formed but would expose what is sent to it (exit 10); false
    /// when it is malformed (exit 2).
    pub fn is_unsafe(&self) -> bool {
        self.is_unsafe
    }

    /// What is wrong and what to do, phrased to follow the URL's name (`login_url 'x' …`).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The error for the URL called `subject` in the message: [`Error::Unsafe`] or
    /// [`Error::Usage`].
    pub fn error(&self, subject: &str) -> Error {
        let message = format!("{subject} {}", self.reason);
        if self.is_unsafe {
            Error::Unsafe(message)
        } else {
            Error::Usage(message)
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

const NOT_A_URL: &str = "is not a URL like https://login.salesforce.com";
const BAD_SCHEME: &str =
    "must start with https:// (plain http:// is accepted only to localhost, 127.x.x.x or [::1])";
const PLAIN_HTTP: &str = "uses plain http to a host other than this machine; Salesforce \
     requires https: use https:// (plain http:// is accepted only to localhost, 127.x.x.x or [::1])";
const USERINFO: &str = "has a user name or password before @, which hides the host it really \
     goes to; remove everything between :// and @";
const QUERY: &str =
    "must not have a ?query or #fragment: give the scheme, host, port and path only";
const CHARACTERS: &str =
    "contains white space, control, backslash or non-ASCII characters; type the URL plainly";
const PERCENT: &str = "has a % escape in its host; write the host name plainly";
const NO_HOST: &str = "has no host: use a URL like https://login.salesforce.com";
const BAD_PORT: &str =
    "has a port that is not a number from 0 to 65535; write it in decimal digits after the host";
const BAD_IPV6: &str =
    "has something in [ ] that is not an IPv6 address (zone ids like %25eth0 are not accepted)";
const BAD_HOST_CHARS: &str =
    "has a host with characters other than letters, digits, '-' and '.': use a plain host name";
const EMPTY_LABEL: &str =
    "has a host with an empty part (a leading, trailing or double dot): remove the extra dot";
const LONG_HOST: &str = "has a host name longer than DNS allows (253 characters, 63 per part)";
const NUMERIC_HOST: &str = "has a host that ends in a number but is not a dotted IPv4 address \
     like 127.0.0.1; write the address as four decimal numbers";

/// Parse `text` as ureq would and accept it only when it is https to any host or http to this
/// machine, with none of the ambiguous spellings listed in the module documentation.
pub fn parse(text: &str) -> std::result::Result<Url, Refusal> {
    // Printable ASCII only: `http::Uri` refuses most of the rest, but not everything (its path
    // accepts some bytes above 0x7F), and a URL nobody can read on screen is not worth keeping.
    if text.is_empty() {
        return Err(Refusal::malformed(NOT_A_URL));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) || text.contains('\\') {
        return Err(Refusal::malformed(CHARACTERS));
    }
    let uri: Uri = text.parse().map_err(|_| {
        // `http://@host`, `http://user@` and `%` in a host are refused by `http::Uri` itself;
        // say why.
        let authority = authority_text(text).unwrap_or_default();
        if authority.contains('@') {
            Refusal::unsafe_(USERINFO)
        } else if authority.contains('%') {
            Refusal::malformed(PERCENT)
        } else {
            Refusal::malformed(NOT_A_URL)
        }
    })?;
    let https = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        Some(_) => return Err(Refusal::malformed(BAD_SCHEME)),
        None => return Err(Refusal::malformed(NOT_A_URL)),
    };
    let authority = uri.authority().ok_or(Refusal::malformed(NO_HOST))?.as_str();
    if authority.contains('@') {
        return Err(Refusal::unsafe_(USERINFO));
    }
    if text.contains(['?', '#']) {
        return Err(Refusal::malformed(QUERY));
    }
    // The authority is now `HOST` or `HOST:PORT`, with an IPv6 host in brackets; split it the
    // way `http::uri::Authority::host` does and check we agree.
    let (host, port_text) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(Refusal::malformed(BAD_IPV6))?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (
                host,
                Some(
                    rest.strip_prefix(':')
                        .ok_or(Refusal::malformed(NOT_A_URL))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host != uri.host().unwrap_or_default() {
        return Err(Refusal::malformed(NOT_A_URL));
    }
    let port = match port_text {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| Refusal::malformed(BAD_PORT))?)
        }
        Some(_) => return Err(Refusal::malformed(BAD_PORT)),
    };
    if port != uri.port_u16() {
        return Err(Refusal::malformed(BAD_PORT));
    }
    let loopback = check_host(host)?;
    if !https && !loopback {
        return Err(Refusal::unsafe_(PLAIN_HTTP));
    }
    Ok(Url {
        https,
        host: host.to_owned(),
        port,
        path: uri.path().to_owned(),
        loopback,
    })
}

/// [`parse`], with a refusal naming the URL: `{field} '{url}' …`. The URL is left out of the
/// message when it holds an `@`, since text before an `@` may be a password.
pub fn check(field: &str, url: &str) -> Result<Url> {
    parse(url).map_err(|r| {
        if url.contains('@') {
            r.error(field)
        } else {
            r.error(&format!("{field} {}", quoted(url)))
        }
    })
}

/// The text between `://` and the next `/`, `?` or `#`, for explaining a parse failure.
fn authority_text(text: &str) -> Option<&str> {
    let rest = text.split_once("://")?.1;
    rest.split(['/', '?', '#']).next()
}

/// Check a host as `http::Uri` delimits it (`[v6]`, IPv4, or a name); true when it is this
/// machine.
fn check_host(host: &str) -> std::result::Result<bool, Refusal> {
    if host.is_empty() {
        return Err(Refusal::malformed(NO_HOST));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(Refusal::malformed(BAD_IPV6))?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| Refusal::malformed(BAD_IPV6))?;
        // Only ::1 itself: an IPv4-mapped address (::ffff:127.0.0.1) is a roundabout spelling
        // that nobody needs, so it counts as another host.
        return Ok(ip == Ipv6Addr::LOCALHOST);
    }
    // std parses exactly four decimal parts without leading zeros, as ureq does before it asks
    // the system resolver: what parses here is the address connected to.
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip.is_loopback());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(Refusal::malformed(BAD_HOST_CHARS));
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(Refusal::malformed(EMPTY_LABEL));
    }
    if host.len() > 253 || labels.iter().any(|l| l.len() > 63) {
        return Err(Refusal::malformed(LONG_HOST));
    }
    // The resolver (inet_aton) reads `2130706433`, `0x7f.1` or `0177.0.0.1` as addresses; the
    // URL standard treats any name whose last part is a number the same way.
    let last = labels[labels.len() - 1];
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::malformed(NUMERIC_HOST));
    }
    Ok(host.eq_ignore_ascii_case("localhost"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// What [`parse`] decides.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    enum Outcome {
        /// Accepted; the bool is [`Url::is_loopback`].
        Accept(bool),
        /// Refused as malformed: exit 2.
        Usage,
        /// Refused as unsafe: exit 10.
        Unsafe,
    }
    use Outcome::{Accept, Unsafe, Usage};

    const LOOPBACK: Outcome = Accept(true);
    const REMOTE: Outcome = Accept(false);

    fn outcome(text: &str) -> Outcome {
        match parse(text) {
            Ok(u) => Accept(u.is_loopback()),
            Err(r) if r.is_unsafe() => Unsafe,
            Err(_) => Usage,
        }
    }

    #[test]
    fn tricky_spellings() {
        let table: &[(&str, Outcome)] = &[
            // Plain cases.
            ("https://login.salesforce.com", REMOTE),
            ("https://test.salesforce.com/", REMOTE),
            (
                "https://acme--uat.sandbox.my.salesforce.com:443/services",
                REMOTE,
            ),
            ("https://127.0.0.1:8443/", LOOPBACK),
            ("http://127.0.0.1:8080", LOOPBACK),
            ("http://127.255.255.254/", LOOPBACK),
            ("http://localhost:1717/OauthRedirect", LOOPBACK),
            ("http://login.salesforce.com", Unsafe),
            ("http://10.0.0.1/", Unsafe),
            ("http://0.0.0.0/", Unsafe),
            ("ftp://login.salesforce.com", Usage),
            ("force://login.salesforce.com", Usage),
            ("login.salesforce.com", Usage),
            ("//login.salesforce.com", Usage),
            // Case.
            ("HTTP://LOCALHOST", LOOPBACK),
            ("Http://LocalHost:80/x", LOOPBACK),
            ("hTTps://login.salesforce.com", REMOTE),
            ("HTTP://EVIL.EXAMPLE", Unsafe),
            // Brackets.
            ("http://[::1]:80/", LOOPBACK),
            ("http://[::1]", LOOPBACK),
            ("http://[0:0:0:0:0:0:0:1]/", LOOPBACK),
            ("http://[::1]@evil.example/", Unsafe),
            ("http://[::ffff:127.0.0.1]/", Unsafe),
            ("https://[::ffff:127.0.0.1]/", REMOTE),
            ("http://[::2]/", Unsafe),
            ("https://[2001:db8::1]:443/", REMOTE),
            ("http://[127.0.0.1]/", Usage),
            ("http://[fe80::1%25lo]/", Usage),
            ("http://[::1/", Usage),
            ("http://::1/", Usage),
            ("http://[::1]x/", Usage),
            ("http://[::1]:/", Usage),
            // User info, in every shape.
            ("http://localhost:80@evil.example/", Unsafe),
            ("http://localhost@evil.example", Unsafe),
            ("http://@evil.example", Unsafe),
            ("http://@localhost/", Unsafe),
            ("http://evil.example@localhost/", Unsafe),
            ("http://localhost@", Unsafe),
            ("http://a@b@localhost/", Unsafe),
            ("https://user:pw@login.salesforce.com", Unsafe),
            ("https://user@login.salesforce.com", Unsafe),
            ("https://:@login.salesforce.com", Unsafe),
            ("http://127.0.0.1:8080@127.0.0.2:9/", Unsafe),
            // Percent-encoding in the host.
            ("http://%6c%6f%63%61%6c%68%6f%73%74/", Usage),
            ("http://127.0.0.1%2eevil.example", Usage),
            ("http://localhost%00.evil.example/", Usage),
            ("https://login%2esalesforce.com", Usage),
            // Backslashes.
            ("http://localhost\\@evil.example/", Usage),
            ("http:\\\\localhost", Usage),
            ("http://localhost\\evil.example/", Usage),
            ("https://login.salesforce.com\\", Usage),
            // Numeric hosts other than dotted decimal.
            ("http://2130706433/", Usage),
            ("http://0x7f000001/", Usage),
            ("http://0X7F000001/", Usage),
            ("http://0177.0.0.1/", Usage),
            ("http://0x7f.0.0.1/", Usage),
            ("http://127.1/", Usage),
            ("http://127.0.1/", Usage),
            ("http://127.000.0.1/", Usage),
            ("http://127.0.0.256/", Usage),
            ("https://2130706433/", Usage),
            ("http://1.2.3.0x/", Usage),
            // Trailing and stray dots.
            ("http://localhost./", Usage),
            ("http://127.0.0.1./", Usage),
            ("https://login.salesforce.com./", Usage),
            ("http://.localhost/", Usage),
            ("http://local..host/", Usage),
            // Look-alikes.
            ("http://localhost.evil.example/", Unsafe),
            ("http://127.0.0.1.nip.io/", Unsafe),
            ("http://evil-localhost/", Unsafe),
            ("http://localhost-evil/", Unsafe),
            ("http://localhostx/", Unsafe),
            ("http://xlocalhost/", Unsafe),
            ("http://127.0.0.1x/", Unsafe),
            ("http://loca1host/", Unsafe),
            ("https://localhost.evil.example/", REMOTE),
            // Characters a host name cannot hold.
            ("http://local_host/", Usage),
            ("http://local!host/", Usage),
            ("http://local$host/", Usage),
            ("http://localhost;evil/", Usage),
            ("http://localhost,evil.example/", Usage),
            ("http://local~host/", Usage),
            // White space and control characters, anywhere.
            (" https://login.salesforce.com", Usage),
            ("https://login.salesforce.com ", Usage),
            ("https://login.salesforce.com\n", Usage),
            ("http://localhost /", Usage),
            ("http://local host/", Usage),
            ("http://localhost\t/", Usage),
            ("http://localhost\0/", Usage),
            ("http://localhost/\x7f", Usage),
            ("http://localhost\r\nHost: evil.example/", Usage),
            ("https://login.salesforce.com/pa th", Usage),
            ("https://lögin.salesforce.com/", Usage),
            ("https://login.salesforce.com/ä", Usage),
            ("http://localhost\u{3002}evil.example/", Usage),
            // Missing host.
            ("", Usage),
            ("http://", Usage),
            ("https://", Usage),
            ("http:///", Usage),
            ("http:///evil.example", Usage),
            ("http://:80/", Usage),
            ("http:/localhost/", Usage),
            ("http:localhost", Usage),
            // Ports.
            ("http://localhost:0/", LOOPBACK),
            ("http://localhost:65535/", LOOPBACK),
            ("http://localhost:080/", LOOPBACK),
            ("http://localhost:65536/", Usage),
            ("http://localhost:99999/", Usage),
            ("http://localhost:100000/", Usage),
            ("http://localhost:-1/", Usage),
            ("http://localhost:+80/", Usage),
            ("http://localhost:/", Usage),
            ("http://localhost:80:81/", Usage),
            ("http://localhost:8o/", Usage),
            ("http://localhost:evil.example/", Usage),
            ("https://login.salesforce.com:443443/", Usage),
            // Queries and fragments, with or without an @.
            ("http://localhost/?x=@evil.example", Usage),
            ("http://localhost#@evil.example", Usage),
            ("http://localhost?@evil.example", Usage),
            ("https://login.salesforce.com/?a=b", Usage),
            ("https://login.salesforce.com/#x", Usage),
            ("https://login.salesforce.com?", Usage),
            // An @ in the path is only a path.
            ("http://localhost/@evil.example", LOOPBACK),
            ("https://login.salesforce.com/a@b", REMOTE),
        ];
        let label63 = "a".repeat(63);
        let ok_name = format!("https://{label63}.example/");
        let long_label = format!("https://{label63}a.example/");
        let long_name = format!("https://{}example/", format!("{label63}.").repeat(4));
        let table = [
            table,
            &[
                (ok_name.as_str(), REMOTE),
                (long_label.as_str(), Usage),
                (long_name.as_str(), Usage),
            ],
        ]
        .concat();
        let mut wrong = Vec::new();
        for &(text, expected) in &table {
            let got = outcome(text);
            if got != expected {
                wrong.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_host_checked_is_the_host_ureq_connects_to() {
        // For every accepted URL, the host and port are `http::Uri`'s (what ureq resolves).
        for text in [
            "https://login.salesforce.com",
            "HTTP://LOCALHOST:8080/x",
            "http://[::1]:80/",
            "http://127.0.0.1:1717/OauthRedirect",
            "https://acme.my.salesforce.com:8443/services/oauth2/token",
        ] {
            let url = parse(text).unwrap();
            let uri: Uri = text.parse().unwrap();
            assert_eq!(url.host(), uri.host().unwrap(), "{text}");
            assert_eq!(url.port(), uri.port_u16(), "{text}");
            assert_eq!(url.path(), uri.path(), "{text}");
        }
        let url = parse("http://[::1]:80/a/b").unwrap();
        assert_eq!(url.host_port(), "[::1]:80");
        assert!(!url.is_https());
        assert_eq!(parse("https://h.example").unwrap().path(), "/");
        assert_eq!(parse("https://h.example").unwrap().host_port(), "h.example");
    }

    #[test]
    fn refusals_name_the_url_but_never_a_password() {
        let e = check("login_url", "http://evil.example").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsafe);
        let text = e.to_string();
        assert!(
            text.starts_with("login_url 'http://evil.example' uses plain http"),
            "{text}"
        );
        let e = check("login_url", "https://user:hunter2@login.salesforce.com").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsafe);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("before @"), "{e}");
        let e = check("URL", "https://x.example/\u{1b}[2J").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }
}
