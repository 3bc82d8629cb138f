//! TLS trust as the platform and the Salesforce CLI have it: behind a TLS-inspecting proxy, the
//! proxy's CA is in the system store, `SSL_CERT_FILE` or `NODE_EXTRA_CA_CERTS`; sfvault must
//! trust it there, and only there. A real TLS server (rustls, ring) with a private CA plays the
//! token endpoint on 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::*;

/// A private CA and a `localhost` server certificate it signed: (CA PEM, server cert DER, key DER).
fn private_ca() -> (String, Vec<u8>, Vec<u8>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.der().to_vec(), key.serialize_der())
}

/// An HTTPS token endpoint on 127.0.0.1 that answers every request with a token; returns its
/// `https://localhost:PORT` URL.
fn serve_tokens(cert: Vec<u8>, key: Vec<u8>) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let base = url.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // A client that refuses the certificate ends here: read fails, next connection.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!(
                r#"{{"access_token":"00D5g000000XXXX!AQtls","instance_url":"{base}","id":"{base}/id/00D5g000000XXXXEAA/0055g00000YYYYYAAA","token_type":"Bearer","issued_at":"1764370000000"}}"#
            );
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    url
}

#[test]
fn a_private_ca_is_trusted_from_ssl_cert_file_or_node_extra_ca_certs_only() {
    let (ca_pem, cert, key) = private_ca();
    let url = serve_tokens(cert, key);
    let tv = TestVault::new();
    tv.ok_stdin(
        &[
            "add",
            "acme/ci",
            "--consumer-key",
            "3MVG9tls",
            "--login-url",
            &url,
            "--flow",
            "client-credentials",
        ],
        b"tls-secret",
    );
    let ca_file = tv.root.path().join("corporate-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let token = |var: Option<&str>| {
        let mut cmd = tv.cmd();
        if let Some(var) = var {
            cmd.env(var, &ca_file);
        }
        run_cmd(cmd, &["token", "acme/ci", "--refresh"], None)
    };
    // Not trusted by default: Mozilla's roots and the system store do not hold it.
    let out = token(None);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach") && err.contains("UnknownIssuer"),
        "{err}"
    );
    // Trusted where OpenSSL-based tools and sf (Node) look for it.
    for var in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        let out = token(Some(var));
        assert_success(&out, &[var]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "00D5g000000XXXX!AQtls\n",
            "{var}"
        );
    }
}
