//! [`ProxyClient`]: many requests through a proxy over one kept-alive connection.

use crate::http_client::{build_request, http1_connect, parse_absolute_url, send, Response};
use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::net::SocketAddr;
use std::time::Duration;

/// An HTTP/1.1 client for an `HTTP_PROXY` that reuses one connection across requests (as an
/// application's pool would) and opens a new one when the proxy has closed it. Requests are
/// absolute-form, like [`crate::proxy_request`]. For load-ish loops of many requests.
pub struct ProxyClient {
    proxy: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    connections_opened: usize,
}

impl ProxyClient {
    /// A client for `proxy`; it connects on the first request.
    pub fn new(proxy: SocketAddr) -> ProxyClient {
        ProxyClient {
            proxy,
            sender: None,
            connections_opened: 0,
        }
    }

    /// How many TCP connections this client has opened so far.
    pub fn connections_opened(&self) -> usize {
        self.connections_opened
    }

    /// Sends one request (empty body) and reads the whole response, bounded by `timeout`.
    /// A request that a reused connection could not even send (the proxy closed it while
    /// idle) is retried once on a new connection; a request that was sent is never retried.
    pub async fn request(
        &mut self,
        method: &str,
        absolute_url: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Response> {
        let uri = parse_absolute_url(absolute_url)?;
        let what = format!("{method} {absolute_url} via proxy {}", self.proxy);
        crate::http_client::bounded(timeout, what, async {
            let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
            match self
                .send_once(build_request(method, uri.clone(), headers)?)
                .await
            {
                Err(e) if reused && unsent(&e) => {
                    self.send_once(build_request(method, uri, headers)?).await
                }
                other => other,
            }
        })
        .await
    }

    async fn send_once(&mut self, request: http::Request<Full<Bytes>>) -> Result<Response> {
        let mut sender = match self.sender.take().filter(|s| !s.is_closed()) {
            Some(sender) => sender,
            None => {
                self.connections_opened += 1;
                http1_connect(self.proxy).await?.0
            }
        };
        let response = send(&mut sender, request).await?;
        // Keep the connection only if it can carry another request.
        if !sender.is_closed() {
            self.sender = Some(sender);
        }
        Ok(response)
    }
}

/// True when the request never left this client, so sending it again cannot duplicate it.
fn unsent(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_canceled() || e.is_closed())
    })
}
