//! The HTTP stack under the kube `Client`: kube's own (base URI, TLS, credentials, extra
//! headers such as impersonation, connect/read/write timeouts), built here for one setting kube
//! does not expose: how much is read from a connection at a time.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use tower::ServiceBuilder;

/// Bytes read from a connection at a time. hyper's default starts at 8 KiB and doubles up to
/// about 400 KiB, growing its buffer as it goes; with the pieces of a page still held, each
/// growth is a fresh allocation. A 2.5 MB page of 500 pods then costs copies and page faults.
/// A fixed read size keeps one buffer per connection, reused read after read: about 1 ms less
/// at 1,000 pods (a sixth fewer page faults) and no change at 10,000 (docs/PERFORMANCE.md,
/// seventh round; 128 KiB was slower at 10,000).
pub const READ_SIZE: usize = 256 * 1024;

/// A client for `config`, as `kube::Client::try_from` builds it but with [`READ_SIZE`] reads.
pub fn client(config: kube::Config) -> kube::Result<kube::Client> {
    // Proxies need kube features this build leaves out (`Cluster::connect` refuses them
    // first); kube's builder says so too.
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
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
        .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
}
