//! The HTTP stack the cluster's requests go through: kube's own (base URI, TLS, credentials,
//! extra headers such as impersonation, connect/read/write timeouts), built here for settings
//! kube does not expose: how much is read from a connection at a time, how much the kernel may
//! queue for us on a connection to this machine, and no `Buffer` task in front of it.

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::{Body, ConfigExt};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read from a connection at a time. hyper's default starts at 8 KiB and doubles up to
/// about 400 KiB, growing its buffer as it goes; with the pieces of a page still held, each
/// growth is a fresh allocation. A 2.5 MB page of 500 pods then costs copies and page faults.
/// A fixed read size keeps one buffer per connection, reused read after read: about 1 ms less
/// at 1,000 pods (a sixth fewer page faults) and no change at 10,000 (docs/PERFORMANCE.md,
/// seventh round; 128 KiB was slower at 10,000).
pub const READ_SIZE: usize = 256 * 1024;

/// Receive buffer asked of the kernel for connections to an API server on this machine (kind
/// and `kubectl proxy` listen on 127.0.0.1, k3d's kubeconfigs name 0.0.0.0). With the kernel's default buffer, the server
/// can only send as much as our reads have freed, and on loopback its sending then runs on our
/// thread, inside each read that opens the window again: at 1,000 pods, a fifth of the audit's
/// CPU time (docs/PERFORMANCE.md, eighth round). With room for a whole page, it sends on its own
/// time. Setting it switches off the kernel's receive-window autotuning, so remote servers keep
/// the default: across a network the window must grow with the bandwidth and latency, and
/// `net.core.rmem_max` (208 KiB on many machines) would cap it. On loopback, latency is nil and
/// any window is enough; the kernel caps the request at `net.core.rmem_max`.
pub const LOOPBACK_RECV_BUFFER: usize = 4 << 20;

/// The receive buffer to ask for on connections to `server`: [`LOOPBACK_RECV_BUFFER`] when it
/// is this machine (a loopback address, `localhost`, or 0.0.0.0 / `::`, which k3d writes into
/// kubeconfigs and which connects to this machine), else the kernel's default.
pub fn recv_buffer_for(server: &http::Uri) -> Option<usize> {
    let host = server.host()?;
    let ip_literal = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || ip_literal
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    loopback.then_some(LOOPBACK_RECV_BUFFER)
}

/// The API server's HTTP client. A `kube::Client` puts its service behind a `Buffer`: each
/// request is handed to the buffer's task, which hands the response future back, one more
/// turn of the runtime's queue per request, taken behind a page being decoded. Cloning the
/// service itself (hyper's pool is shared) skips both.
#[derive(Clone)]
pub struct Transport(BoxCloneSyncService<Request<Body>, Response<Incoming>, BoxError>);

impl Transport {
    /// Sends `request` (a path; the base URI and credentials are added here). Errors as
    /// `kube::Client::send` words them.
    pub async fn send(&self, request: Request<Body>) -> kube::Result<Response<Incoming>> {
        self.0.clone().oneshot(request).await.map_err(|err| {
            err.downcast::<kube::Error>()
                .map(|e| *e)
                .or_else(|err| {
                    err.downcast::<hyper::Error>()
                        .map(|e| kube::Error::HyperError(*e))
                })
                .unwrap_or_else(kube::Error::Service)
        })
    }
}

/// A client for `config`, as `kube::Client::try_from` builds its stack but with [`READ_SIZE`]
/// reads and no `Buffer`. Proxies are not supported (this build leaves out kube's proxy
/// features): `Cluster::connect` refuses a `proxy-url` before it gets here.
pub fn client(config: kube::Config) -> kube::Result<Transport> {
    debug_assert!(config.proxy_url.is_none(), "proxies are refused before");
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_recv_buffer_size(recv_buffer_for(&config.cluster_url));
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http1_read_buf_exact_size(READ_SIZE)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        // The refreshing-token layer's errors are boxed; the inner ones must be too.
        .map_err(BoxError::from)
        .service(http_client);
    Ok(Transport(BoxCloneSyncService::new(service)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(server: &str) -> Option<usize> {
        recv_buffer_for(&server.parse().unwrap())
    }

    #[test]
    fn only_servers_on_this_machine_get_a_fixed_receive_buffer() {
        for local in [
            "https://127.0.0.1:6443",
            "http://127.0.0.1:8001",
            "https://127.1.2.3",
            "https://localhost:6443",
            "https://LOCALHOST",
            "https://[::1]:6443",
            "https://0.0.0.0:6550",
            "https://[::]:6550",
        ] {
            assert_eq!(buffer(local), Some(LOOPBACK_RECV_BUFFER), "{local}");
        }
        for remote in [
            "https://10.0.0.1:6443",
            "https://[2001:db8::1]:443",
            "https://kube.example.com",
            "https://localhost.example.com",
            "https://128.0.0.1",
            "https://[::2]",
        ] {
            assert_eq!(buffer(remote), None, "{remote}");
        }
    }
}
