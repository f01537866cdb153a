//! The JSON body the echo server answers with: who answered and what it received.

use http::request::Parts;
use serde_json::{json, Map, Value};

/// Who is answering; fixed for the life of the server.
#[derive(Debug, Clone)]
pub struct Identity {
    pub service: String,
    pub version: String,
    pub instance: String,
}

/// Describes a request as `{"service","version","instance","method","path","host","headers"}`.
/// `path` includes the query. `host` is the URI authority when the request carried one
/// (HTTP/2 `:authority`, HTTP/1.1 absolute-form) and the `Host` header otherwise, so both
/// protocols read the same. Repeated headers are joined with `", "`; values that are not
/// UTF-8 are shown lossily.
pub fn describe(parts: &Parts, identity: &Identity) -> Value {
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| parts.headers.get(http::header::HOST).map(lossy))
        .unwrap_or_default();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let joined: Vec<String> = parts.headers.get_all(name).iter().map(lossy).collect();
        headers.insert(name.as_str().to_owned(), Value::String(joined.join(", ")));
    }
    json!({
        "service": identity.service,
        "version": identity.version,
        "instance": identity.instance,
        "method": parts.method.as_str(),
        "path": path,
        "host": host,
        "headers": headers,
    })
}

fn lossy(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            service: "reviews".into(),
            version: "v2".into(),
            instance: "i-1".into(),
        }
    }

    #[test]
    fn origin_form_uses_host_header_and_keeps_query() {
        let (parts, ()) = http::Request::get("/a/b?x=1&y=2")
            .header("host", "reviews:9080")
            .header("x-b3", "1")
            .header("x-b3", "2")
            .body(())
            .unwrap()
            .into_parts();
        let v = describe(&parts, &identity());
        assert_eq!(v["path"], "/a/b?x=1&y=2");
        assert_eq!(v["host"], "reviews:9080");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["headers"]["x-b3"], "1, 2");
        assert_eq!(v["service"], "reviews");
        assert_eq!(v["version"], "v2");
        assert_eq!(v["instance"], "i-1");
    }

    #[test]
    fn absolute_form_uses_authority() {
        let (parts, ()) = http::Request::post("http://ratings.default:9080/r")
            .body(())
            .unwrap()
            .into_parts();
        let v = describe(&parts, &identity());
        assert_eq!(v["host"], "ratings.default:9080");
        assert_eq!(v["path"], "/r");
        assert_eq!(v["method"], "POST");
    }
}
