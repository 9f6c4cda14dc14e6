//! Registry errors. Messages name the registry and the HTTP status; they never carry
//! credentials (requests put them in headers only, and URLs never contain userinfo).
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unauthorized: {registry} answered HTTP {status}{}", detail_suffix(.detail))]
    Unauthorized {
        registry: String,
        status: u16,
        detail: String,
    },
    #[error("not found: {what} on {registry} (HTTP {status}{})", detail_suffix(.detail))]
    NotFound {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("rate-limited: {registry} answered HTTP 429{}", retry_suffix(.retry_after))]
    RateLimited {
        registry: String,
        retry_after: Option<String>,
    },
    #[error("tls: cannot establish a trusted connection to {registry}: {message}")]
    Tls { registry: String, message: String },
    #[error("network: cannot reach {registry}: {message}")]
    Network { registry: String, message: String },
    #[error("{registry} answered HTTP {status} for {what}{}", detail_suffix(.detail))]
    Http {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid {what} from {registry}: {message}")]
    Invalid {
        registry: String,
        what: String,
        message: String,
    },
    #[error("no manifest for platform {requested} in {image} (available: {available})")]
    NoMatchingPlatform {
        image: String,
        requested: String,
        available: String,
    },
    #[error("reading layer {digest}: {message}")]
    Layer { digest: String, message: String },
    #[error("{0}")]
    Config(String),
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

fn retry_suffix(r: &Option<String>) -> String {
    match r {
        Some(r) => format!(" (retry after {r})"),
        None => String::new(),
    }
}

impl RegistryError {
    /// The contract's `cause` vocabulary (`image-pull-failing`): unauthorized, not-found, tls,
    /// network, rate-limited, unknown.
    pub fn cause(&self) -> &'static str {
        match self {
            RegistryError::Unauthorized { .. } => "unauthorized",
            RegistryError::NotFound { .. } => "not-found",
            RegistryError::RateLimited { .. } => "rate-limited",
            RegistryError::Tls { .. } => "tls",
            RegistryError::Network { .. } => "network",
            _ => "unknown",
        }
    }

    /// Map a transport error. Walks the source chain to tell TLS failures (bad/unknown
    /// certificate, plain HTTP server) apart from refused connections and timeouts.
    pub(crate) fn from_reqwest(registry: &str, e: &reqwest::Error) -> Self {
        let mut chain = String::new();
        let mut tls = false;
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = src {
            // rustls errors usually arrive wrapped in an io::Error, whose `source()` skips the
            // wrapped error itself, so look inside explicitly.
            let io_inner = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if s.downcast_ref::<rustls::Error>().is_some() || io_inner {
                tls = true;
            }
            let msg = s.to_string();
            let lower = msg.to_ascii_lowercase();
            // rustls' own wording, for when the error type is hidden behind boxed errors.
            const TLS_WORDS: [&str; 7] = [
                "certificate",
                "tls",
                "handshake",
                "corrupt message",
                "received fatal alert",
                "peer is incompatible",
                "peer misbehaved",
            ];
            if TLS_WORDS.iter().any(|w| lower.contains(w)) {
                tls = true;
            }
            if !chain.contains(&msg) {
                if !chain.is_empty() {
                    chain.push_str(": ");
                }
                chain.push_str(&msg);
            }
            src = s.source();
        }
        if tls {
            RegistryError::Tls {
                registry: registry.to_string(),
                message: chain,
            }
        } else {
            RegistryError::Network {
                registry: registry.to_string(),
                message: chain,
            }
        }
    }
}

/// Wrapper whose `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
