//! Salesforce's admin APIs, called with another entry's token (the *admin*): the External
//! Client App credentials resources ([`eca`]) and the Metadata API ([`metadata`]). docs/ROTATION.md
//! tells which calls rotation makes, in which order, and why.
//!
//! Every answer is untrusted: bodies are capped by [`crate::oauth::http`], JSON is parsed into
//! the few fields used, ids taken from answers or fields are checked before they go into a URL,
//! and a refusal becomes [`Error::Api`] with Salesforce's own code and message (exit 7); a 5xx
//! or a broken connection is [`Error::Network`] (exit 8), since it may or may not have happened.

pub mod eca;
pub mod metadata;
pub mod usage;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::oauth::http::{Http, HttpResponse, Method};
use crate::secret::SecretString;

/// The API version of every call: staged credentials need 65.0.
pub const API_VERSION: &str = "65.0";

/// A session with the admin APIs of one org.
pub struct Admin<'h> {
    http: &'h Http,
    instance_url: String,
    token: SecretString,
    /// Requests made so far (for reports and measurements).
    requests: std::cell::Cell<usize>,
}

impl<'h> Admin<'h> {
    /// Calls to `instance_url` (checked: https, or http to this machine) with `token`.
    pub fn new(http: &'h Http, instance_url: &str, token: SecretString) -> Result<Admin<'h>> {
        crate::url::check("instance URL", instance_url)?;
        Ok(Admin {
            http,
            instance_url: instance_url.trim_end_matches('/').to_owned(),
            token,
            requests: std::cell::Cell::new(0),
        })
    }

    /// How many requests this session has made.
    pub fn requests(&self) -> usize {
        self.requests.get()
    }

    /// The org's URL, for messages.
    pub fn instance_url(&self) -> &str {
        &self.instance_url
    }

    /// A Connect REST call under `/services/data/vXX.X/`; `call` names it for errors. Answers
    /// 2xx come back; 404 too when `allow_404` (callers decide what absence means); anything
    /// else is an error.
    fn rest(
        &self,
        call: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
        allow_404: bool,
    ) -> Result<HttpResponse> {
        let url = format!("{}/services/data/v{API_VERSION}/{path}", self.instance_url);
        self.requests.set(self.requests.get() + 1);
        let auth = Zeroizing::new(format!("Bearer {}", self.token.expose()));
        let response = self.http.send(
            method,
            &url,
            &[("Authorization", auth.as_str())],
            body.map(|b| ("application/json", b.as_bytes())),
        )?;
        match response.status {
            200..=299 => Ok(response),
            404 if allow_404 => Ok(response),
            status => Err(rest_error(call, status, &response.body)),
        }
    }

    /// A Metadata API (SOAP) call: `body_xml` goes inside the envelope's Body.
    fn soap(&self, body_xml: &str) -> Result<HttpResponse> {
        let url = format!("{}/services/Soap/m/{API_VERSION}", self.instance_url);
        self.requests.set(self.requests.get() + 1);
        let envelope = Zeroizing::new(metadata::envelope(self.token.expose(), body_xml));
        self.http.send(
            Method::Post,
            &url,
            &[("SOAPAction", "\"\""), ("Accept", "text/xml")],
            Some(("text/xml; charset=UTF-8", envelope.as_bytes())),
        )
    }
}

#[derive(Deserialize)]
struct RestError {
    #[serde(default, rename = "errorCode")]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// Salesforce's words, cleaned for a terminal: no control characters, at most `max` chars.
pub fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A REST error answer: `[{"errorCode","message"}]` (or one such object; or anything else,
/// shown as it came, cut short). 5xx is a server failure (exit 8), the rest a refusal (exit 7).
pub fn rest_error(call: &str, status: u16, body: &str) -> Error {
    let parsed: Option<RestError> = serde_json::from_str::<Vec<RestError>>(body)
        .ok()
        .and_then(|v| v.into_iter().next())
        .or_else(|| serde_json::from_str::<RestError>(body).ok());
    let (code, message) = match parsed {
        Some(e) => (clean(&e.error_code, 100), clean(&e.message, 400)),
        None => (format!("HTTP_{status}"), clean(body, 200)),
    };
    if status >= 500 {
        return Error::network(format!(
            "Salesforce failed while {call} (HTTP {status}: {code}: {message}); it may or may not have been done"
        ));
    }
    Error::Api {
        call: call.to_owned(),
        status,
        message: hint_for(&code, message),
        code,
    }
}

/// Salesforce's message, with what to do for the refusals whose cause is known.
pub(crate) fn hint_for(code: &str, message: String) -> String {
    let h = match code {
        "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" => {
            "the admin entry's user needs the permissions \"External Client App Developer\" and \
             \"View Client Secret\" (and \"Modify Metadata\" for certificates)"
        }
        "FUNCTIONALITY_NOT_ENABLED" => {
            "allow consumer secrets through the REST API: Setup → External Client App Settings \
             (metadata ExternalClientAppSettings.enableClientSecretInRestApiAccess)"
        }
        "INVALID_SESSION_ID" => {
            "the admin entry's token is not accepted: `sfvault token ADMIN --refresh`"
        }
        _ => return message,
    };
    format!("{message} (hint: {h})")
}

/// An id from an answer or a field, before it goes into a URL path: letters and digits only.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "{what} {} is not a Salesforce id (letters and digits)",
            crate::quote::quoted(id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn refusals_keep_salesforces_words_and_5xx_is_network() {
        let e = rest_error(
            "staging",
            403,
            r#"[{"errorCode":"INSUFFICIENT_ACCESS","message":"no\u0007 way"}]"#,
        );
        assert_eq!(e.kind(), ErrorKind::Refused);
        let text = e.to_string();
        assert!(text.contains("INSUFFICIENT_ACCESS: no way"), "{text}");
        assert!(text.contains("View Client Secret"), "{text}");
        let e = rest_error(
            "staging",
            500,
            r#"[{"errorCode":"UNKNOWN_EXCEPTION","message":"x"}]"#,
        );
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(e.to_string().contains("may or may not"));
        let e = rest_error("staging", 400, "<html>");
        assert!(e.to_string().contains("HTTP_400: <html>"));
    }

    #[test]
    fn ids_for_urls_are_plain() {
        assert!(check_id("app id", "0xA5g000000ABCDE").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", &"a".repeat(65)] {
            assert!(check_id("app id", bad).is_err(), "{bad}");
        }
    }
}
