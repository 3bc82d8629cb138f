//! The Metadata API (SOAP, `/services/Soap/m/65.0`): read an app's OAuth settings and write
//! them back with another certificate. `updateMetadata` replaces the whole component, so the
//! record is sent back as it was read, with only the `certificate` element's text changed.
//!
//! Answers are parsed with quick-xml (bounded depth, elements matched by local name); a SOAP
//! fault or an unsuccessful result becomes [`Error::Api`] with Salesforce's code and message.

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};

use super::{Admin, clean};
use crate::error::{Error, Result};

/// The metadata namespace.
const NS: &str = "http://soap.sforce.com/2006/04/metadata";
/// Deepest element nesting accepted in an answer.
const MAX_DEPTH: usize = 24;

/// Which kind of app holds the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// An External Client App: `ExtlClntAppGlobalOauthSettings.certificate`.
    External,
    /// A classic connected app: `ConnectedApp.oauthConfig.certificate`.
    Connected,
}

impl AppKind {
    /// The metadata type.
    pub fn type_name(self) -> &'static str {
        match self {
            AppKind::External => "ExtlClntAppGlobalOauthSettings",
            AppKind::Connected => "ConnectedApp",
        }
    }

    /// The component's full name for an app of developer name `app_name` (for an External
    /// Client App, its global OAuth settings are named `APP_glbloauth`).
    pub fn full_name(self, app_name: &str) -> String {
        match self {
            AppKind::External => format!("{app_name}_glbloauth"),
            AppKind::Connected => app_name.to_owned(),
        }
    }
}

/// One component as read: its type, its children as XML text, and its certificate.
#[derive(Debug, Clone)]
pub struct Record {
    /// The metadata type.
    pub kind: AppKind,
    /// The full name read.
    pub full_name: String,
    /// The record's children, re-serialised (unprefixed names in the metadata namespace).
    children: String,
    /// The certificate's PEM, if the record has one.
    pub certificate: Option<String>,
}

/// The SOAP envelope around `body_xml`, with the session id in the header.
pub fn envelope(session_id: &str, body_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"{NS}\">\
         <soapenv:Header><SessionHeader><sessionId>{}</sessionId></SessionHeader></soapenv:Header>\
         <soapenv:Body>{body_xml}</soapenv:Body></soapenv:Envelope>",
        escape(session_id)
    )
}

fn unusable(call: &str, why: &str) -> Error {
    Error::network(format!(
        "the Metadata API's answer to {call} is unusable: {why}"
    ))
}

/// What an answer holds that we use.
#[derive(Default)]
struct Parsed {
    fault_code: Option<String>,
    fault_string: Option<String>,
    /// `records` was present and not nil.
    record: Option<String>,
    certificate: Option<String>,
    success: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
}

fn local(start: &BytesStart<'_>) -> String {
    start.local_name().as_ref().to_owned()
}

/// Read an answer; `replace` (when given) is the new certificate text written into the
/// re-serialised record.
fn parse(call: &str, xml: &str, replace: Option<&str>) -> Result<Parsed> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Parsed::default();
    // The text of the innermost element, resolved.
    let mut text = String::new();
    // Depth of `records` while inside it, and the re-serialised children.
    let mut record_depth: Option<usize> = None;
    let mut record = String::new();
    // Depth of the OAuth certificate element while inside it: `oauthConfig/certificate` of a
    // ConnectedApp, or the record's own `certificate` child (ExtlClntAppGlobalOauthSettings);
    // never another `certificate` (a SAML one names a certificate of the org, and stays as read).
    let mut cert_depth: Option<usize> = None;
    let bad = |e: &dyn std::fmt::Display| unusable(call, &format!("not XML ({e})"));
    loop {
        let event = reader.read_event().map_err(|e| bad(&e))?;
        // Inside `records` (its children and text); an End closes a child only below it.
        let in_record = record_depth.is_some_and(|d| path.len() >= d);
        let closing_child = record_depth.is_some_and(|d| path.len() > d);
        let in_cert = cert_depth.is_some_and(|d| path.len() >= d);
        match event {
            Event::Start(e) => {
                let name = local(&e);
                let oauth_cert = in_record
                    && !in_cert
                    && name == "certificate"
                    && (path.last().is_some_and(|p| p == "oauthConfig")
                        || record_depth == Some(path.len()));
                if in_record && !(in_cert && replace.is_some()) {
                    record.push('<');
                    record.push_str(&name);
                    record.push_str(e.attributes_raw());
                    record.push('>');
                    if oauth_cert && let Some(pem) = replace {
                        record.push_str(&escape(pem));
                    }
                }
                if oauth_cert {
                    cert_depth = Some(path.len() + 1);
                }
                if name == "records" && record_depth.is_none() {
                    record_depth = Some(path.len() + 1);
                }
                path.push(name);
                text.clear();
                if path.len() > MAX_DEPTH {
                    return Err(unusable(call, "nested too deep"));
                }
            }
            Event::Empty(e) => {
                let name = local(&e);
                let nil = e
                    .try_get_attribute("xsi:nil")
                    .ok()
                    .flatten()
                    .is_some_and(|a| a.value.as_ref() == "true");
                if name == "records" && record_depth.is_none() && !nil {
                    out.record = Some(String::new());
                }
                if in_record {
                    record.push('<');
                    record.push_str(&name);
                    record.push_str(e.attributes_raw());
                    record.push_str("/>");
                }
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(unusable(call, "unbalanced"));
                };
                let value = || clean(text.trim(), 400);
                match name.as_str() {
                    "faultcode" => out.fault_code = Some(value()),
                    "faultstring" => out.fault_string = Some(value()),
                    "success" => out.success = Some(value()),
                    "statusCode" => out.error_code = Some(value()),
                    "message" => out.error_message = Some(value()),
                    _ => {}
                }
                let closing_cert = cert_depth == Some(path.len() + 1);
                if closing_cert {
                    out.certificate = Some(text.trim().to_owned());
                    cert_depth = None;
                }
                if record_depth == Some(path.len() + 1) && name == "records" {
                    record_depth = None;
                    out.record = Some(std::mem::take(&mut record));
                } else if closing_child && !(in_cert && replace.is_some() && !closing_cert) {
                    record.push_str("</");
                    record.push_str(&name);
                    record.push('>');
                }
                text.clear();
            }
            Event::Text(t) => {
                let raw = t.xml10_content();
                text.push_str(&quick_xml::escape::unescape(&raw).map_err(|e| bad(&e))?);
                if in_record && !(in_cert && replace.is_some()) {
                    record.push_str(&raw);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.as_ref().to_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => resolve_predefined_entity(&name)
                        .ok_or_else(|| unusable(call, "an unknown entity"))?
                        .to_owned(),
                };
                text.push_str(&resolved);
                if in_record && !(in_cert && replace.is_some()) {
                    record.push('&');
                    record.push_str(&name);
                    record.push(';');
                }
            }
            Event::CData(c) => {
                let content = c.as_ref().to_owned();
                if in_record && !(in_cert && replace.is_some()) {
                    record.push_str(&escape(content.as_str()));
                }
                text.push_str(&content);
            }
            Event::DocType(_) => return Err(unusable(call, "a DOCTYPE")),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !path.is_empty() {
        return Err(unusable(call, "cut short"));
    }
    Ok(out)
}

/// A SOAP fault or an unsuccessful result as [`Error::Api`].
fn refusal(call: &str, status: u16, p: &Parsed) -> Option<Error> {
    if let Some(code) = &p.fault_code {
        let code = code.rsplit(':').next().unwrap_or(code).to_owned();
        let message = p.fault_string.clone().unwrap_or_default();
        if code == "UNKNOWN_EXCEPTION" || status >= 502 {
            return Some(Error::network(format!(
                "the Metadata API failed while {call} ({code}: {message}); it may or may not have been done"
            )));
        }
        return Some(Error::Api {
            call: call.to_owned(),
            status,
            message: super::hint_for(&code, message),
            code,
        });
    }
    if p.success.as_deref() == Some("false") {
        return Some(Error::Api {
            call: call.to_owned(),
            status,
            code: p.error_code.clone().unwrap_or_else(|| "FAILED".into()),
            message: p.error_message.clone().unwrap_or_default(),
        });
    }
    None
}

impl Record {
    /// The record with `pem` as its certificate, as `updateMetadata`'s `metadata` element.
    fn with_certificate(&self, pem: &str) -> Result<String> {
        let call = "preparing the update";
        let parsed = parse(
            call,
            &format!(
                "<records xmlns=\"{NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">{}</records>",
                self.children
            ),
            Some(pem),
        )?;
        let children = parsed
            .record
            .ok_or_else(|| unusable(call, "the record vanished"))?;
        Ok(format!(
            "<metadata xsi:type=\"{}\">{children}</metadata>",
            self.kind.type_name()
        ))
    }
}

impl Admin<'_> {
    /// Read the OAuth settings of app `app_name`; `None` when there is no such component.
    pub fn read_oauth_settings(&self, kind: AppKind, app_name: &str) -> Result<Option<Record>> {
        super::check_id("app name", &app_name.replace('_', ""))?;
        let call = "reading the app's OAuth settings (Metadata API)";
        let full_name = kind.full_name(app_name);
        let body = format!(
            "<readMetadata><type>{}</type><fullNames>{}</fullNames></readMetadata>",
            kind.type_name(),
            escape(full_name.as_str())
        );
        let response = self.soap(&body)?;
        let parsed = parse(call, &response.body, None)?;
        if let Some(e) = refusal(call, response.status, &parsed) {
            return Err(e);
        }
        if response.status != 200 {
            return Err(super::rest_error(call, response.status, &response.body));
        }
        Ok(parsed.record.map(|children| Record {
            kind,
            full_name,
            children,
            certificate: parsed.certificate,
        }))
    }

    /// Write `record` back with `pem` as its certificate.
    pub fn deploy_certificate(&self, record: &Record, pem: &str) -> Result<()> {
        let call = "deploying the certificate (Metadata API)";
        if record.certificate.is_none() {
            return Err(Error::failed(format!(
                "{} has no certificate: the JWT bearer flow is not enabled for it",
                record.full_name
            )));
        }
        let body = format!(
            "<updateMetadata>{}</updateMetadata>",
            record.with_certificate(pem)?
        );
        let response = self.soap(&body)?;
        let parsed = parse(call, &response.body, None)?;
        if let Some(e) = refusal(call, response.status, &parsed) {
            return Err(e);
        }
        if response.status != 200 || parsed.success.as_deref() != Some("true") {
            return Err(unusable(call, "no successful result"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="http://soap.sforce.com/2006/04/metadata" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><readMetadataResponse><result><records xsi:type="ConnectedApp"><fullName>CI</fullName><contactEmail>a@b.example</contactEmail><label>CI &amp; co</label><oauthConfig><callbackUrl>http://localhost:1717/OauthRedirect</callbackUrl><certificate>-----BEGIN CERTIFICATE-----
OLD
-----END CERTIFICATE-----</certificate><consumerKey>3MVG9</consumerKey><scopes>Api</scopes></oauthConfig></records></result></readMetadataResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn a_record_goes_back_whole_with_only_the_certificate_changed() {
        let p = parse("t", READ, None).unwrap();
        let record = Record {
            kind: AppKind::Connected,
            full_name: "CI".into(),
            children: p.record.unwrap(),
            certificate: p.certificate,
        };
        assert!(record.certificate.as_deref().unwrap().contains("OLD"));
        let out = record.with_certificate("NEW <pem>").unwrap();
        assert_eq!(
            out,
            "<metadata xsi:type=\"ConnectedApp\"><fullName>CI</fullName><contactEmail>a@b.example</contactEmail><label>CI &amp; co</label><oauthConfig><callbackUrl>http://localhost:1717/OauthRedirect</callbackUrl><certificate>NEW &lt;pem&gt;</certificate><consumerKey>3MVG9</consumerKey><scopes>Api</scopes></oauthConfig></metadata>"
        );
    }

    #[test]
    fn only_the_oauth_certificate_is_read_and_replaced() {
        let read = r#"<Envelope xmlns="http://soap.sforce.com/2006/04/metadata"><Body><readMetadataResponse><result><records><fullName>CI</fullName><oauthConfig><certificate>OLDPEM</certificate><consumerKey>3MVG9</consumerKey></oauthConfig><samlConfig><acsUrl>https://sp.example/acs</acsUrl><certificate>MySamlSigningCert</certificate><encryptionType>AES_256</encryptionType></samlConfig></records></result></readMetadataResponse></Body></Envelope>"#;
        let p = parse("t", read, None).unwrap();
        assert_eq!(p.certificate.as_deref(), Some("OLDPEM"));
        let record = Record {
            kind: AppKind::Connected,
            full_name: "CI".into(),
            children: p.record.unwrap(),
            certificate: p.certificate,
        };
        let out = record.with_certificate("NEWPEM").unwrap();
        assert!(
            out.contains("<oauthConfig><certificate>NEWPEM</certificate>"),
            "{out}"
        );
        assert!(
            out.contains("<certificate>MySamlSigningCert</certificate>"),
            "{out}"
        );
        // An External Client App's settings: the record's own certificate child.
        let eca = r#"<E><B><r><result><records><fullName>ci_glbloauth</fullName><certificate>OLD</certificate><label>x</label></records></result></r></B></E>"#;
        let p = parse("t", eca, None).unwrap();
        assert_eq!(p.certificate.as_deref(), Some("OLD"));
        let record = Record {
            kind: AppKind::External,
            full_name: "ci_glbloauth".into(),
            children: p.record.unwrap(),
            certificate: p.certificate,
        };
        assert_eq!(
            record.with_certificate("NEW").unwrap(),
            "<metadata xsi:type=\"ExtlClntAppGlobalOauthSettings\"><fullName>ci_glbloauth</fullName><certificate>NEW</certificate><label>x</label></metadata>"
        );
    }

    #[test]
    fn nil_records_faults_and_failures() {
        let nil = r#"<Envelope><Body><readMetadataResponse><result><records xsi:nil="true"/></result></readMetadataResponse></Body></Envelope>"#;
        assert!(parse("t", nil, None).unwrap().record.is_none());
        let fault = r#"<soapenv:Envelope xmlns:soapenv="x"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Illegal Session</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let e = refusal("t", 500, &parse("t", fault, None).unwrap()).unwrap();
        assert_eq!(e.kind(), crate::ErrorKind::Refused);
        assert!(
            e.to_string()
                .contains("INVALID_SESSION_ID: INVALID_SESSION_ID: Illegal Session")
        );
        let failed = r#"<E><B><updateMetadataResponse><result><errors><message>Certificate: bad</message><statusCode>FIELD_INTEGRITY_EXCEPTION</statusCode></errors><fullName>CI</fullName><success>false</success></result></updateMetadataResponse></B></E>"#;
        let e = refusal("t", 200, &parse("t", failed, None).unwrap()).unwrap();
        assert!(
            e.to_string()
                .contains("FIELD_INTEGRITY_EXCEPTION: Certificate: bad")
        );
        for bad in ["<a><b></a>", "<a>", "<!DOCTYPE x><a/>", "<a>&foo;</a>"] {
            assert!(parse("t", bad, None).is_err(), "{bad}");
        }
        let deep = "<a>".repeat(30) + &"</a>".repeat(30);
        assert!(parse("t", &deep, None).is_err());
    }
}
