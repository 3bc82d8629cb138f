//! The one HTTP client: ureq on rustls with ring, proxies from `HTTPS_PROXY`/`ALL_PROXY`
//! (and `NO_PROXY`), connect and overall timeouts, no redirects for token calls, bodies capped.
//! Plain `http://` is allowed only to loopback hosts (exit 10 otherwise), and goes there
//! directly, never through a proxy (which would carry its secrets in clear off this machine).

use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest response body read.
pub const MAX_BODY: u64 = 1024 * 1024;
/// TCP + TLS connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP response: status and body (zeroized on drop: it may hold tokens).
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body text, at most [`MAX_BODY`] bytes.
    pub body: Zeroizing<String>,
}

/// The client.
pub struct Http {
    /// For https: through the proxy of the environment, if any.
    agent: ureq::Agent,
    /// For plain http to this machine: never through a proxy.
    direct: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    /// A client with sfvault's timeouts and no automatic redirects.
    pub fn new() -> Http {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(root_certs())
            .build();
        let config = || {
            ureq::Agent::config_builder()
                .tls_config(tls.clone())
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_global(Some(REQUEST_TIMEOUT))
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(concat!("sfvault/", env!("CARGO_PKG_VERSION")))
        };
        Http {
            agent: config().build().into(),
            direct: config().proxy(None).build().into(),
        }
    }

    /// The agent for `url` (already checked): plain http (to this machine only) never goes
    /// through a proxy.
    fn agent_for(&self, url: &crate::url::Url) -> &ureq::Agent {
        if url.is_https() {
            &self.agent
        } else {
            &self.direct
        }
    }

    /// POST an `application/x-www-form-urlencoded` body.
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpResponse> {
        let parsed = check_endpoint(url)?;
        let response = self
            .agent_for(&parsed)
            .post(url)
            .header("Accept", "application/json")
            .send_form(form.iter().copied());
        read(url, response)
    }

    /// GET with a bearer token.
    pub fn get_bearer(&self, url: &str, token: &str) -> Result<HttpResponse> {
        let auth = Zeroizing::new(format!("Bearer {token}"));
        self.send(Method::Get, url, &[("Authorization", auth.as_str())], None)
    }
}

/// An HTTP method of the admin APIs (`salesforce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl Http {
    /// Any call: `method` on `url` with `headers` and, if given, a body with its content type.
    /// Header values may hold a token: the caller keeps them in zeroizing strings.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<HttpResponse> {
        // The query (built by the caller from constants and checked ids) is not the endpoint.
        let parsed = check_endpoint(url.split('?').next().unwrap_or(url))?;
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(url);
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Accept"))
        {
            builder = builder.header("Accept", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (content_type, bytes) = body.unwrap_or(("", &[]));
        if body.is_some() {
            builder = builder.header("Content-Type", content_type);
        }
        let request = builder
            .body(bytes)
            .map_err(|e| Error::failed_with(format!("cannot build a request to {url}"), e))?;
        let response = self.agent_for(&parsed).run(request);
        read(url, response)
    }
}

/// Largest `NODE_EXTRA_CA_CERTS` file read.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// The roots TLS trusts: Mozilla's (built in), and with them, when there are any, the
/// platform's store with `SSL_CERT_FILE` / `SSL_CERT_DIR` as OpenSSL reads them, and the PEM
/// file `NODE_EXTRA_CA_CERTS` names, as the Salesforce CLI (Node) reads it. So a corporate proxy
/// that inspects TLS with its own CA works for sfvault wherever it works for the system or `sf`.
/// Unreadable stores or certificates are skipped: they can only take trust away.
pub fn root_certs() -> ureq::tls::RootCerts {
    use ureq::tls::{Certificate, PemItem, RootCerts};
    let mut extra: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = std::env::var_os("NODE_EXTRA_CA_CERTS") {
        let mut pem = Vec::new();
        if let Ok(file) = std::fs::File::open(path) {
            use std::io::Read;
            let _ = file.take(MAX_CA_FILE).read_to_end(&mut pem);
        }
        extra.extend(ureq::tls::parse_pem(&pem).filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    if extra.is_empty() {
        return RootCerts::WebPki;
    }
    let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned());
    RootCerts::from(mozilla.chain(extra))
}

/// https, or http to a loopback host, with no user info; anything else is refused before a
/// connection is made. [`crate::url::parse`] reads the URL with the parser ureq resolves with,
/// so the host checked is the host connected to.
pub fn check_endpoint(url: &str) -> Result<crate::url::Url> {
    crate::url::check("URL", url)
}

fn read(
    url: &str,
    response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpResponse> {
    let mut response = response.map_err(|e| network(url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| network(url, &e))?;
    Ok(HttpResponse {
        status,
        body: Zeroizing::new(body),
    })
}

fn network(url: &str, e: &ureq::Error) -> Error {
    // The URL has no secrets (they travel in bodies and headers), so it may be named.
    let host = url.split('?').next().unwrap_or(url);
    Error::network(format!("cannot reach {host}: {e}"))
}
