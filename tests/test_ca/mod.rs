//! A throwaway test CA: a CA and a server certificate for `127.0.0.1` and `localhost` signed by
//! it, written as PEM files that `losant-emulator --tls-cert/--tls-key` (or
//! `EmulatorConfig::tls`) can serve, with the CA's PEM for clients to trust.
//!
//! Shared by the `e2e` and `emulator` test binaries (`#[path = "../test_ca/mod.rs"] mod
//! test_ca;`), not part of the test kit: it needs rcgen, a dev-dependency. Each binary uses all
//! of it. `scripts/gen-test-ca.sh` makes the same files with openssl for manual runs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// File names written by [`generate_ca_and_server_cert`], the same as the script's; the CA's
/// certificate is `dir/ca.pem`.
pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "server.pem";
pub const KEY_FILE: &str = "server-key.pem";

/// What [`generate_ca_and_server_cert`] made.
#[derive(Debug, Clone)]
pub struct TlsFixture {
    /// The CA certificate (PEM), to trust in clients (e.g. a `caBundleSecretRef` Secret).
    pub ca_pem: String,
    /// The server certificate (PEM) for `127.0.0.1` and `localhost`, signed by the CA.
    pub cert_path: PathBuf,
    /// The server certificate's private key (PEM, PKCS#8).
    pub key_path: PathBuf,
}

/// Makes a fresh CA and a server certificate (SAN `IP:127.0.0.1`, `DNS:localhost`) signed by
/// it, and writes `ca.pem`, `server.pem` and `server-key.pem` into `dir` (which must exist).
/// Every call makes new keys, so two fixtures never trust each other.
pub fn generate_ca_and_server_cert(dir: &Path) -> TlsFixture {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "losant-operator test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "losant-emulator");
    server_params.is_ca = IsCa::ExplicitNoCa;
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");

    let fixture = TlsFixture {
        ca_pem: ca_cert.pem(),
        cert_path: dir.join(CERT_FILE),
        key_path: dir.join(KEY_FILE),
    };
    std::fs::write(dir.join(CA_FILE), &fixture.ca_pem).expect("write CA");
    std::fs::write(&fixture.cert_path, server_cert.pem()).expect("write server certificate");
    std::fs::write(&fixture.key_path, server_key.serialize_pem()).expect("write server key");
    fixture
}
