//! The web-server flow with PKCE (S256): a loopback listener receives the browser's redirect,
//! `state` is checked, and the code is exchanged with the verifier.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};
use crate::oauth::http::Http;
use crate::oauth::{Token, token_call};
use crate::secret::SecretString;
use crate::vault::crypto::random_fill;

/// Where the browser is sent back when the entry names no `callback_url` (the `sf` CLI's).
pub const DEFAULT_CALLBACK: &str = "http://localhost:1717/OauthRedirect";
/// Largest request the listener reads.
const MAX_REQUEST: usize = 16 * 1024;

/// A started web login: listening, with its PKCE verifier and `state`.
pub struct WebLogin {
    listener: TcpListener,
    redirect_uri: String,
    path: String,
    state: String,
    verifier: SecretString,
    challenge: String,
}

/// `n` random bytes, base64url without padding.
fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    random_fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// The loopback host, port and path of a web-flow `callback_url`: it must be
/// `http://localhost:PORT/PATH` or `http://127.0.0.1:PORT/PATH` (host spelled exactly so, port
/// given), since sfvault itself listens there for the redirect. It is read by
/// [`crate::url::parse`] like every other URL, then held to this narrower rule.
pub fn parse_callback_url(callback_url: &str) -> Result<(&'static str, u16, String)> {
    const RULE: &str = "must be http://localhost:PORT/PATH or http://127.0.0.1:PORT/PATH";
    let url = crate::url::check("callback_url", callback_url).map_err(|e| match e {
        Error::Unsafe(m) => Error::Unsafe(format!("{m}; for the web flow it {RULE}")),
        other => Error::Usage(format!("{other}; for the web flow it {RULE}")),
    })?;
    let bad = || {
        Error::Usage(format!(
            "callback_url {} {RULE}, since sfvault listens there for the login redirect",
            crate::vault::name::quoted(callback_url)
        ))
    };
    let host = match url.host() {
        "localhost" => "localhost",
        "127.0.0.1" => "127.0.0.1",
        _ => return Err(bad()),
    };
    match (url.is_https(), url.port()) {
        (false, Some(port)) => Ok((host, port, url.path().to_owned())),
        _ => Err(bad()),
    }
}

impl WebLogin {
    /// Listen on the loopback address of `callback_url` (`http://localhost:PORT/PATH`; port 0
    /// picks a free port, which the connected app must then accept).
    pub fn start(callback_url: &str) -> Result<WebLogin> {
        let (host, port, path) = parse_callback_url(callback_url)?;
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            Error::failed(format!(
                "cannot listen on 127.0.0.1:{port} for the login redirect: {e}"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::failed(e.to_string()))?
            .port();
        let verifier = SecretString::new(random_token(48)); // 64 chars of [A-Za-z0-9-_]
        Ok(WebLogin {
            redirect_uri: format!("http://{host}:{port}{path}"),
            path,
            state: random_token(16),
            challenge: challenge_of(verifier.expose()),
            verifier,
            listener,
        })
    }

    /// The redirect URI to register in the connected app.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The URL to open in a browser.
    pub fn authorize_url(&self, login_url: &str, client_id: &str, scopes: Option<&str>) -> String {
        let mut url = format!(
            "{}/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256",
            login_url.trim_end_matches('/'),
            encode(client_id),
            encode(&self.redirect_uri),
            self.state,
            self.challenge
        );
        if let Some(scopes) = scopes {
            url.push_str(&format!("&scope={}", encode(scopes)));
        }
        url
    }

    /// Wait for the browser's redirect (at most `timeout`); check `state`; return the code.
    /// Meanwhile `notice` is handed what the person logging in should be told (a request that
    /// was ignored); showing it is the caller's part.
    pub fn wait_for_code(
        &self,
        timeout: Duration,
        mut notice: impl FnMut(&str),
    ) -> Result<SecretString> {
        let deadline = Instant::now() + timeout;
        self.listener
            .set_nonblocking(true)
            .map_err(|e| Error::failed(e.to_string()))?;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::failed(format!(
                    "no login arrived at {} within {} s",
                    self.redirect_uri,
                    timeout.as_secs()
                )));
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(result) = self.handle(stream, &mut notice) {
                        return result;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::failed_with("login listener failed", e)),
            }
        }
    }

    /// One request: `None` to keep waiting (another path), else the outcome.
    fn handle(
        &self,
        mut stream: TcpStream,
        notice: &mut dyn FnMut(&str),
    ) -> Option<Result<SecretString>> {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let target = text
            .lines()
            .next()?
            .strip_prefix("GET ")?
            .split(' ')
            .next()?
            .to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != self.path {
            let _ = respond(&mut stream, 404, "Not the sfvault login callback.");
            return None;
        }
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| decode(v))
        };
        // Only a redirect that carries our state counts: anything else (another local process, a
        // web page poking localhost) is answered and ignored, so it can neither forge a login
        // nor abort this one.
        if param("state").as_deref() != Some(self.state.as_str()) {
            let _ = respond(&mut stream, 400, "sfvault: not the redirect of this login.");
            notice("sfvault: ignored a request to the login callback without this login's state");
            return None;
        }
        let clean = |text: String, max: usize| -> String {
            text.chars().filter(|c| !c.is_control()).take(max).collect()
        };
        let outcome = if let Some(error) = param("error") {
            Err(Error::OAuth {
                error: clean(error, 100),
                description: clean(param("error_description").unwrap_or_default(), 300),
                hint: None,
            })
        } else {
            param("code")
                .filter(|c| !c.is_empty() && c.len() < 4096)
                .map(SecretString::new)
                .ok_or_else(|| Error::failed("the login redirect carried no code"))
        };
        let page = if outcome.is_ok() {
            "sfvault: logged in. You can close this window."
        } else {
            "sfvault: the login failed; see the terminal."
        };
        let _ = respond(&mut stream, 200, page);
        Some(outcome)
    }

    /// Exchange the code for tokens, with the verifier.
    pub fn exchange(
        &self,
        http: &Http,
        login_url: &str,
        client_id: &str,
        client_secret: Option<&SecretString>,
        code: &SecretString,
    ) -> Result<Token> {
        let url = format!("{}/services/oauth2/token", login_url.trim_end_matches('/'));
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", self.verifier.expose()),
            ("client_id", client_id),
        ];
        if let Some(secret) = client_secret {
            form.push(("client_secret", secret.expose()));
        }
        token_call(http, &url, &form)
    }
}

fn respond(stream: &mut TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decode `%XX` and `+` (form encoding); invalid escapes are kept as they are.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn percent_coding() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(decode("a%20b%2Fc+d"), "a b/c d");
        assert_eq!(decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn callback_must_be_loopback_http() {
        assert!(WebLogin::start("https://localhost:0/cb").is_err());
        assert!(WebLogin::start("http://example.com:0/cb").is_err());
        for (url, expected) in [
            (
                "http://localhost:1717/OauthRedirect",
                Ok(("localhost", 1717, "/OauthRedirect")),
            ),
            ("http://127.0.0.1:0/cb", Ok(("127.0.0.1", 0, "/cb"))),
            ("http://localhost:1717", Ok(("localhost", 1717, "/"))),
            ("http://localhost/cb", Err(ErrorKind::Usage)),
            ("http://LOCALHOST:1717/cb", Err(ErrorKind::Usage)),
            ("http://127.0.0.2:1717/cb", Err(ErrorKind::Usage)),
            ("http://[::1]:1717/cb", Err(ErrorKind::Usage)),
            ("https://localhost:1717/cb", Err(ErrorKind::Usage)),
            ("http://example.com:1717/cb", Err(ErrorKind::Unsafe)),
            (
                "http://localhost:1717@evil.example:1717/cb",
                Err(ErrorKind::Unsafe),
            ),
            (
                "http://evil.example@localhost:1717/cb",
                Err(ErrorKind::Unsafe),
            ),
            ("http://localhost:1717/cb?x=1", Err(ErrorKind::Usage)),
            ("http://localhost:1717/cb#x", Err(ErrorKind::Usage)),
            ("http://localhost:99999/cb", Err(ErrorKind::Usage)),
            ("http://localhost.:1717/cb", Err(ErrorKind::Usage)),
            (
                "http://localhost\\@evil.example:1717/cb",
                Err(ErrorKind::Usage),
            ),
        ] {
            let parsed = parse_callback_url(url);
            let got = match &parsed {
                Ok((h, p, path)) => Ok((*h, *p, path.as_str())),
                Err(e) => Err(e.kind()),
            };
            assert_eq!(got, expected, "{url}");
        }
        let w = WebLogin::start("http://127.0.0.1:0/cb").unwrap();
        assert!(w.redirect_uri().starts_with("http://127.0.0.1:"));
        assert!(w.verifier.len() >= 43 && w.verifier.len() <= 128);
    }
}
