//! Responses that are encoded straight from the shared [`Packed`] resources.
//!
//! prost's `DiscoveryResponse` owns its `Any`s, so every proxy's response would copy every
//! resource first (measured before: ~8 MB per sidecar per full push at 10,000 services, and
//! that copy held in memory until gRPC encoded it). These types hold pointers and write the
//! same bytes as the generated messages (field numbers from
//! envoy/service/discovery/v3/discovery.proto), so clients decode them as the real thing.
//! They are for sending only: decoding skips every field.

use std::sync::Arc;

#[cfg(test)]
use bowline_xds::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{message, skip_field, string, DecodeContext, WireType};
use prost::DecodeError;

use crate::resources::Packed;

/// `DiscoveryResponse` (SotW).
#[derive(Debug, Default, Clone)]
pub(crate) struct SotwResponse {
    pub version_info: String,
    pub resources: Vec<Arc<Packed>>,
    pub type_url: String,
    pub nonce: String,
}

/// `DeltaDiscoveryResponse`.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeltaResponse {
    pub system_version_info: String,
    pub resources: Vec<DeltaResource>,
    pub type_url: String,
    pub removed_resources: Vec<String>,
    pub nonce: String,
}

/// `Resource` of a delta response.
#[derive(Debug, Clone)]
pub(crate) struct DeltaResource {
    pub name: String,
    pub resource: Arc<Packed>,
}

impl prost::Message for SotwResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if !self.version_info.is_empty() {
            string::encode(1, &self.version_info, buf);
        }
        for resource in &self.resources {
            message::encode(2, &resource.any, buf);
        }
        if !self.type_url.is_empty() {
            string::encode(4, &self.type_url, buf);
        }
        if !self.nonce.is_empty() {
            string::encode(5, &self.nonce, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        non_empty(1, &self.version_info)
            + self
                .resources
                .iter()
                .map(|r| message::encoded_len(2, &r.any))
                .sum::<usize>()
            + non_empty(4, &self.type_url)
            + non_empty(5, &self.nonce)
    }

    fn clear(&mut self) {
        *self = SotwResponse::default();
    }
}

impl prost::Message for DeltaResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if !self.system_version_info.is_empty() {
            string::encode(1, &self.system_version_info, buf);
        }
        for resource in &self.resources {
            message::encode(2, resource, buf);
        }
        if !self.type_url.is_empty() {
            string::encode(4, &self.type_url, buf);
        }
        if !self.nonce.is_empty() {
            string::encode(5, &self.nonce, buf);
        }
        string::encode_repeated(6, &self.removed_resources, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        non_empty(1, &self.system_version_info)
            + self
                .resources
                .iter()
                .map(|r| message::encoded_len(2, r))
                .sum::<usize>()
            + non_empty(4, &self.type_url)
            + non_empty(5, &self.nonce)
            + string::encoded_len_repeated(6, &self.removed_resources)
    }

    fn clear(&mut self) {
        *self = DeltaResponse::default();
    }
}

impl prost::Message for DeltaResource {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        string::encode(1, &self.resource.version, buf);
        message::encode(2, &self.resource.any, buf);
        string::encode(3, &self.name, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        string::encoded_len(1, &self.resource.version)
            + message::encoded_len(2, &self.resource.any)
            + string::encoded_len(3, &self.name)
    }

    fn clear(&mut self) {}
}

fn non_empty(tag: u32, value: &String) -> usize {
    if value.is_empty() {
        0
    } else {
        string::encoded_len(tag, value)
    }
}

impl SotwResponse {
    /// The generated message with the same content (tests, logs).
    #[cfg(test)]
    pub(crate) fn to_message(&self) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: self.version_info.clone(),
            resources: self.resources.iter().map(|r| r.any.clone()).collect(),
            type_url: self.type_url.clone(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }
}

impl DeltaResponse {
    #[cfg(test)]
    pub(crate) fn to_message(&self) -> DeltaDiscoveryResponse {
        use bowline_xds::pb::envoy::service::discovery::v3::Resource;
        DeltaDiscoveryResponse {
            system_version_info: self.system_version_info.clone(),
            resources: self
                .resources
                .iter()
                .map(|r| Resource {
                    name: r.name.clone(),
                    version: r.resource.version.clone(),
                    resource: Some(r.resource.any.clone()),
                    ..Default::default()
                })
                .collect(),
            type_url: self.type_url.clone(),
            removed_resources: self.removed_resources.clone(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pb::google::protobuf::Any;
    use prost::Message;

    fn packed(value: &[u8]) -> Arc<Packed> {
        Packed::new(Any {
            type_url: bowline_xds::type_url::CLUSTER.into(),
            value: value.to_vec(),
        })
    }

    #[test]
    fn sotw_bytes_are_the_generated_messages_bytes() {
        let response = SotwResponse {
            version_info: "7".into(),
            resources: vec![packed(b"\x0a\x01a"), packed(b"")],
            type_url: bowline_xds::type_url::CLUSTER.into(),
            nonce: "12".into(),
        };
        let bytes = response.encode_to_vec();
        assert_eq!(bytes.len(), response.encoded_len());
        assert_eq!(bytes, response.to_message().encode_to_vec());
        assert_eq!(
            DiscoveryResponse::decode(bytes.as_slice()).expect("decodes"),
            response.to_message()
        );
    }

    #[test]
    fn delta_bytes_are_the_generated_messages_bytes() {
        let response = DeltaResponse {
            system_version_info: "3".into(),
            resources: vec![DeltaResource {
                name: "a".into(),
                resource: packed(b"\x0a\x01a"),
            }],
            type_url: bowline_xds::type_url::CLUSTER.into(),
            removed_resources: vec!["b".into(), "c".into()],
            nonce: "4".into(),
        };
        let bytes = response.encode_to_vec();
        assert_eq!(bytes.len(), response.encoded_len());
        assert_eq!(
            DeltaDiscoveryResponse::decode(bytes.as_slice()).expect("decodes"),
            response.to_message()
        );
        let empty = DeltaResponse::default();
        assert_eq!(
            empty.encode_to_vec(),
            DeltaDiscoveryResponse::default().encode_to_vec()
        );
    }
}
