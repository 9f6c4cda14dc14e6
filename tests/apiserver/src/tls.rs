//! TLS: a self-signed CA and serving certificate for 127.0.0.1/localhost, test CAs that issue
//! client certificates, and client-certificate authentication like kube-apiserver's
//! `--client-ca-file`.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::rbac::UserInfo;

/// A certificate authority made at run time, for tests: it signs the fake server's serving
/// certificate and, given to [`crate::Options::client_ca`], the client certificates the server
/// accepts. Its private key never leaves the process.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A client certificate and its private key, both PEM (the key PKCS#8), as a kubeconfig's
/// `client-certificate`/`client-key` files hold them.
#[derive(Clone)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl CertificateAuthority {
    pub fn new(common_name: &str) -> CertificateAuthority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        CertificateAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM (what `--client-ca-file` or `certificate-authority` holds).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A client certificate for `user` (the subject's CN) in `groups` (its O values), the way
    /// kube-apiserver reads them. At most two groups: rcgen keeps one value per attribute type,
    /// so a second O is written as a custom attribute with the same OID (2.5.4.10).
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> ClientCertificate {
        assert!(
            groups.len() <= 2,
            "CertificateAuthority::issue_client: at most two groups"
        );
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let dn = &mut params.distinguished_name;
        dn.push(DnType::CommonName, user);
        if let Some(g) = groups.first() {
            dn.push(DnType::OrganizationName, *g);
        }
        if let Some(g) = groups.get(1) {
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *g);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A serving certificate for 127.0.0.1, localhost and the in-cluster names, with its key.
    fn issue_server(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

pub struct TlsMaterial {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
    /// Checks client certificates against the client CA, when one was given.
    pub client_auth: Option<ClientCertAuth>,
}

/// Serving TLS with a fresh CA; with `client_ca_pem`, client certificates are requested too.
/// Panics when `client_ca_pem` holds no certificate.
pub fn generate(client_ca_pem: Option<&str>) -> TlsMaterial {
    let ca = CertificateAuthority::new("fake-apiserver-ca");
    let (cert, key) = ca.issue_server();
    let chain = vec![cert, ca.cert_der.clone()];
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let client_auth = client_ca_pem.map(|pem| ClientCertAuth::new(pem, provider));
    let builder = match &client_auth {
        Some(auth) => builder.with_client_cert_verifier(Arc::new(RequestClientCert {
            ca: auth.verifier.clone(),
        })),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsMaterial {
        ca_pem: ca.cert_pem,
        config: Arc::new(config),
        client_auth,
    }
}

/// kube-apiserver's x509 authenticator: a client certificate that chains to the client CA (and
/// allows client authentication) authenticates as user = subject CN, groups = subject O values.
#[derive(Clone)]
pub struct ClientCertAuth {
    verifier: Arc<dyn ClientCertVerifier>,
}

/// What a connection's client certificate says about its requests.
#[derive(Debug, Clone)]
pub enum CertIdentity {
    /// Verified: the requests are this user unless a bearer token says otherwise.
    Verified(UserInfo),
    /// Presented but not verifiable (another CA, expired, no CN): like kube-apiserver, requests
    /// get 401 unless a bearer token authenticates them.
    Rejected,
}

impl ClientCertAuth {
    fn new(ca_pem: &str, provider: Arc<rustls::crypto::CryptoProvider>) -> ClientCertAuth {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.expect("client CA PEM"))
                .expect("client CA certificate");
        }
        assert!(!roots.is_empty(), "client CA PEM holds no certificate");
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .expect("client certificate verifier");
        ClientCertAuth { verifier }
    }

    /// The identity in a connection's client certificate chain (`None` when none was sent).
    pub fn identify(&self, chain: Option<&[CertificateDer<'_>]>) -> Option<CertIdentity> {
        let (end_entity, intermediates) = chain?.split_first()?;
        let verified = self
            .verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .is_ok();
        let identity = verified
            .then(|| subject_identity(end_entity))
            .flatten()
            .map_or(CertIdentity::Rejected, CertIdentity::Verified);
        Some(identity)
    }
}

/// CN → user, every O → a group, plus `system:authenticated`; `None` without a CN (the real
/// authenticator then does not authenticate the request either).
fn subject_identity(cert: &CertificateDer<'_>) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name: name.to_string(),
        groups,
    })
}

/// Go's `tls.RequestClientCert`, which kube-apiserver uses when it has a client CA: the server
/// asks for a certificate (hinting the CA) and checks that the client holds its key, but does not
/// fail the handshake over the chain; the authenticator judges the chain per request
/// ([`ClientCertAuth::identify`]), so a certificate from another CA gets 401, not a TLS alert.
#[derive(Debug)]
struct RequestClientCert {
    ca: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.ca.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ca.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ca.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.ca.supported_verify_schemes()
    }
}
