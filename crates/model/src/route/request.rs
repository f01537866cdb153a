//! What routing looks at in a request.

use http::HeaderMap;

/// The request as routing sees it, after the connection manager's path normalisation.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// `host[:port]`: the `:authority` pseudo-header (HTTP/2) or `Host` (HTTP/1.1), as sent.
    pub authority: &'a str,
    /// The path with its query string (`/a/b?x=1`).
    pub path: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    /// The path without its query string.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    /// The query string without `?` (`None` when there is none).
    pub fn query(&self) -> Option<&'a str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// A header's value for matching: pseudo-headers from the request line, others from the
    /// header map with several values joined by `,` (Envoy's rule). `None` when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        match name {
            ":method" => return Some(self.method.to_string()),
            ":authority" | "host" => return Some(self.authority.to_string()),
            ":path" => return Some(self.path.to_string()),
            ":scheme" => return Some(self.scheme.to_string()),
            _ => {}
        }
        let mut values = self.headers.get_all(name).iter().peekable();
        values.peek()?;
        let joined: Vec<String> = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        Some(joined.join(","))
    }
}
