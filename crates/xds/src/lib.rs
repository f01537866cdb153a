//! Envoy xDS v3 as bowline speaks it.
//!
//! Everything that touches protobuf types goes through this crate: the control plane builds
//! them, the proxy converts them once at its edge. It re-exports `envoy-types` (pre-generated
//! protos with tonic stubs, so no `protoc` is needed) and adds the two things every user of
//! `Any` needs: the type URLs we serve, and an [`unpack`] that checks the type URL before
//! decoding (prost would happily decode the wrong message and drop what it did not know).

pub mod build;
pub mod client;

pub use envoy_types;
pub use envoy_types::pb;
pub use prost;

use pb::google::protobuf::Any;
use prost::{Message, Name};

/// Type URLs of the resources bowline serves, in make-before-break push order.
pub mod type_url {
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// Push order that never leaves a proxy pointing at something it does not have yet:
    /// clusters before the endpoints that fill them, listeners before the routes they name.
    pub const PUSH_ORDER: [&str; 5] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET];

    /// Short name for logs and debug pages: `CDS`, `EDS`, `LDS`, `RDS`, `SDS`.
    pub fn short(type_url: &str) -> &'static str {
        match type_url {
            CLUSTER => "CDS",
            ENDPOINT => "EDS",
            LISTENER => "LDS",
            ROUTE => "RDS",
            SECRET => "SDS",
            _ => "UNKNOWN",
        }
    }

    /// Types that Envoy subscribes to as a wildcard: omitting a resource deletes it.
    pub fn is_wildcard(type_url: &str) -> bool {
        matches!(type_url, CLUSTER | LISTENER)
    }
}

/// Packs a message into an `Any` with its canonical type URL.
pub fn pack<T: Name + Message>(msg: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: msg.encode_to_vec(),
    }
}

/// Why an `Any` could not be turned into the message the caller expected.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("expected a {expected} but got type URL {got:?}")]
    WrongType { expected: String, got: String },
    #[error("malformed {type_url}: {source}")]
    Decode {
        type_url: String,
        #[source]
        source: prost::DecodeError,
    },
}

/// Decodes an `Any` into `T`, refusing one whose type URL names another message.
pub fn unpack<T: Name + Message + Default>(any: &Any) -> Result<T, UnpackError> {
    let expected = T::type_url();
    // Only the part after the last '/' is significant (the prefix is arbitrary).
    let name_of = |url: &str| url.rsplit('/').next().unwrap_or_default().to_string();
    if name_of(&any.type_url) != name_of(&expected) {
        return Err(UnpackError::WrongType {
            expected,
            got: any.type_url.clone(),
        });
    }
    T::decode(any.value.as_slice()).map_err(|source| UnpackError::Decode {
        type_url: any.type_url.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::envoy::config::cluster::v3::Cluster;
    use pb::envoy::config::listener::v3::Listener;

    #[test]
    fn pack_then_unpack_round_trips_and_uses_the_served_type_url() {
        let cluster = Cluster {
            name: "outbound|9080||reviews.default.svc.cluster.local".into(),
            ..Default::default()
        };
        let any = pack(&cluster);
        assert_eq!(any.type_url, type_url::CLUSTER);
        let back: Cluster = unpack(&any).unwrap();
        assert_eq!(back, cluster);
    }

    #[test]
    fn unpack_refuses_another_type() {
        let any = pack(&Cluster::default());
        let err = unpack::<Listener>(&any).unwrap_err();
        assert!(matches!(err, UnpackError::WrongType { .. }), "{err}");
    }

    #[test]
    fn every_served_type_url_names_a_real_message() {
        use pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
        use pb::envoy::config::route::v3::RouteConfiguration;
        use pb::envoy::extensions::transport_sockets::tls::v3::Secret;
        assert_eq!(ClusterLoadAssignment::type_url(), type_url::ENDPOINT);
        assert_eq!(Listener::type_url(), type_url::LISTENER);
        assert_eq!(RouteConfiguration::type_url(), type_url::ROUTE);
        assert_eq!(Secret::type_url(), type_url::SECRET);
    }
}
