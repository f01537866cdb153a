//! Generated resources as stable, reviewable text: prost's pretty `Debug`, with every `Any`
//! replaced by its decoded message, maps sorted, proto3 defaults left out and one-item
//! blocks folded onto one line.

use bowline_translate::Generated;
use bowline_xds::pb::envoy::config::cluster::v3::Cluster;
use bowline_xds::pb::envoy::config::core::v3::transport_socket;
use bowline_xds::pb::envoy::config::core::v3::Metadata;
use bowline_xds::pb::envoy::config::listener::v3::listener_filter;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Listener};
use bowline_xds::pb::envoy::config::route::v3::{retry_policy, route, RouteConfiguration};
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager,
};
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use bowline_xds::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use bowline_xds::pb::google::protobuf::{value::Kind, Any, Struct, Value};
use bowline_xds::prost::Name;
use bowline_xds::unpack;
use std::collections::HashMap;
use std::fmt::Debug;

/// Which resources a golden shows, and which of them (by name substring).
#[derive(Clone, Copy)]
pub struct Sections {
    pub clusters: bool,
    pub endpoints: bool,
    pub listeners: bool,
    pub routes: bool,
}

impl Sections {
    pub const ALL: Sections = Sections {
        clusters: true,
        endpoints: true,
        listeners: true,
        routes: true,
    };
    pub const CLUSTERS: Sections = Sections {
        clusters: true,
        endpoints: false,
        listeners: false,
        routes: false,
    };
    pub const ENDPOINTS: Sections = Sections {
        clusters: false,
        endpoints: true,
        listeners: false,
        routes: false,
    };
    pub const LISTENERS: Sections = Sections {
        clusters: false,
        endpoints: false,
        listeners: true,
        routes: false,
    };
    pub const ROUTES: Sections = Sections {
        clusters: false,
        endpoints: false,
        listeners: false,
        routes: true,
    };

    pub const fn plus(self, other: Sections) -> Sections {
        Sections {
            clusters: self.clusters || other.clusters,
            endpoints: self.endpoints || other.endpoints,
            listeners: self.listeners || other.listeners,
            routes: self.routes || other.routes,
        }
    }
}

pub fn render(g: &Generated, sections: Sections, name_filter: &str) -> String {
    let plain = name_filter.split('/').next_back().unwrap_or_default();
    let keep = |name: &str| name.contains(plain);
    let mut out = String::new();
    let mut section = |title: &str, items: Vec<(String, String)>| {
        out.push_str(&format!("######## {title} ({})\n", items.len()));
        for (name, text) in items {
            out.push_str(&format!("==== {name}\n{text}\n"));
        }
    };
    if sections.clusters {
        let items = g
            .clusters
            .iter()
            .filter(|c| keep(&c.name))
            .map(|c| (c.name.clone(), cluster(c)))
            .collect();
        section("clusters", items);
    }
    if sections.endpoints {
        let items = g
            .endpoints
            .iter()
            .filter(|e| keep(&e.cluster_name))
            .map(|e| {
                let mut e = e.clone();
                for ep in e.endpoints.iter_mut().flat_map(|l| &mut l.lb_endpoints) {
                    sort_metadata(&mut ep.metadata);
                }
                (e.cluster_name.clone(), text(&e, &[]))
            })
            .collect();
        section("endpoints", items);
    }
    if sections.listeners {
        let items = g
            .listeners
            .iter()
            .filter(|l| keep(&l.name))
            .map(|l| (l.name.clone(), listener(l)))
            .collect();
        section("listeners", items);
    }
    if sections.routes {
        // Route filters read `<config>/<vhost substring>` (either part may be empty); a bare
        // filter selects virtual hosts by substring in every configuration.
        let (config, vhost) = name_filter.split_once('/').unwrap_or(("", name_filter));
        let items = g
            .routes
            .iter()
            .filter(|r| config.is_empty() || r.name == config)
            .filter_map(|r| {
                let mut r = r.clone();
                r.virtual_hosts.retain(|v| v.name.contains(vhost));
                (!r.virtual_hosts.is_empty() || vhost.is_empty())
                    .then(|| (r.name.clone(), route_config(&r)))
            })
            .collect();
        section("routes", items);
    }
    out
}

/// Expansions by placeholder: each `Any` (or map of them) becomes an `Any` whose type URL is
/// a placeholder, and the placeholder's text is spliced in after `Debug`.
type Slots = Vec<(String, String)>;

fn placeholder(slots: &mut Slots, expansion: String) -> Any {
    let key = format!("@@{}@@", slots.len());
    slots.push((key.clone(), expansion));
    Any {
        type_url: key,
        value: Vec::new(),
    }
}

/// A map of `Any`s as one placeholder entry whose expansion lists the entries by key.
fn placeholder_map(slots: &mut Slots, map: &HashMap<String, Any>) -> HashMap<String, Any> {
    if map.is_empty() {
        return HashMap::new();
    }
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let body: Vec<String> = keys
        .iter()
        .map(|k| format!("{k:?}: {}", any(&map[*k])))
        .collect();
    let key = format!("@@MAP{}@@", slots.len());
    slots.push((key.clone(), body.join(",\n")));
    HashMap::from([(
        key.clone(),
        Any {
            type_url: key,
            value: Vec::new(),
        },
    )])
}

/// The decoded text of an `Any` of a type we emit; an unknown type shows its URL.
pub fn any(a: &Any) -> String {
    let name = a.type_url.rsplit('/').next().unwrap_or_default();
    macro_rules! plain {
        ($($t:ty),*) => {$(
            if name == <$t>::full_name() {
                return text(&unpack::<$t>(a).expect("decodes"), &[]);
            }
        )*};
    }
    plain!(
        TcpProxy,
        Router,
        HttpFault,
        Cors,
        CorsPolicy,
        HttpProtocolOptions,
        PreviousHostsPredicate,
        DownstreamTlsContext,
        TlsInspector
    );
    if name == HttpConnectionManager::full_name() {
        return hcm(&unpack(a).expect("decodes"));
    }
    format!("<undecoded {}>", a.type_url)
}

fn cluster(c: &Cluster) -> String {
    let mut slots = Slots::new();
    let mut c = c.clone();
    c.typed_extension_protocol_options =
        placeholder_map(&mut slots, &c.typed_extension_protocol_options);
    text(&c, &slots)
}

fn listener(l: &Listener) -> String {
    let mut slots = Slots::new();
    let mut l = l.clone();
    for chain in l
        .filter_chains
        .iter_mut()
        .chain(l.default_filter_chain.as_mut())
    {
        sort_metadata(&mut chain.metadata);
        for f in &mut chain.filters {
            if let Some(filter::ConfigType::TypedConfig(a)) = &mut f.config_type {
                *a = placeholder(&mut slots, any(a));
            }
        }
        if let Some(ts) = &mut chain.transport_socket {
            if let Some(transport_socket::ConfigType::TypedConfig(a)) = &mut ts.config_type {
                *a = placeholder(&mut slots, any(a));
            }
        }
    }
    for f in &mut l.listener_filters {
        if let Some(listener_filter::ConfigType::TypedConfig(a)) = &mut f.config_type {
            *a = placeholder(&mut slots, any(a));
        }
    }
    text(&l, &slots)
}

/// Metadata structs are hash maps, printed in a random order: each becomes one string of
/// its `key=value` pairs, sorted, so the rendering is stable.
fn sort_metadata(metadata: &mut Option<Metadata>) {
    fn flat(s: &Struct) -> String {
        let mut keys: Vec<&String> = s.fields.keys().collect();
        keys.sort();
        let pairs: Vec<String> = keys
            .iter()
            .map(|k| match &s.fields[*k].kind {
                Some(Kind::StringValue(v)) => format!("{k}={v}"),
                Some(Kind::StructValue(inner)) => format!("{k}={{{}}}", flat(inner)),
                other => format!("{k}={other:?}"),
            })
            .collect();
        pairs.join(" ")
    }
    for s in metadata
        .iter_mut()
        .flat_map(|m| m.filter_metadata.values_mut())
    {
        let sorted = flat(s);
        s.fields = HashMap::from([(
            "sorted".to_string(),
            Value {
                kind: Some(Kind::StringValue(sorted)),
            },
        )]);
    }
}

fn hcm(h: &HttpConnectionManager) -> String {
    let mut slots = Slots::new();
    let mut h = h.clone();
    for f in &mut h.http_filters {
        if let Some(http_filter::ConfigType::TypedConfig(a)) = &mut f.config_type {
            *a = placeholder(&mut slots, any(a));
        }
    }
    if let Some(RouteSpecifier::RouteConfig(rc)) = &mut h.route_specifier {
        prepare_routes(rc, &mut slots);
    }
    text(&h, &slots)
}

fn route_config(r: &RouteConfiguration) -> String {
    let mut slots = Slots::new();
    let mut r = r.clone();
    prepare_routes(&mut r, &mut slots);
    text(&r, &slots)
}

fn prepare_routes(r: &mut RouteConfiguration, slots: &mut Slots) {
    for vh in &mut r.virtual_hosts {
        for rt in &mut vh.routes {
            rt.typed_per_filter_config = placeholder_map(slots, &rt.typed_per_filter_config);
            if let Some(route::Action::Route(a)) = &mut rt.action {
                for p in a
                    .retry_policy
                    .iter_mut()
                    .flat_map(|p| p.retry_host_predicate.iter_mut())
                {
                    if let Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(x)) =
                        &mut p.config_type
                    {
                        *x = placeholder(slots, any(x));
                    }
                }
            }
        }
    }
}

/// Pretty `Debug`, placeholders spliced, defaults pruned, small blocks folded, socket
/// addresses shortened to `SocketAddress("ip:port")`.
fn text<T: Debug>(msg: &T, slots: &[(String, String)]) -> String {
    let raw = format!("{msg:#?}");
    let spliced = splice(&raw, slots);
    let socket = regex::Regex::new(
        r#"Address \{ address: Some\(SocketAddress\(SocketAddress \{ address: "([^"]*)", port_specifier: Some\(PortValue\((\d+)\)\) \}\)\) \}"#,
    )
    .unwrap();
    let folded = fold(&socket.replace_all(&fold(&prune(&spliced)), r#"SocketAddress("$1:$2")"#));
    // Durations read as `Duration(1.5s)`; `Duration(0s)` is an explicit zero.
    let duration =
        regex::Regex::new(r"Duration \{ ?(?:seconds: (\d+))?,? ?(?:nanos: (\d+))? ?\}").unwrap();
    duration
        .replace_all(&folded, |c: &regex::Captures| {
            let secs: u64 = c.get(1).map_or(0, |m| m.as_str().parse().unwrap());
            let nanos: u64 = c.get(2).map_or(0, |m| m.as_str().parse().unwrap());
            let d = std::time::Duration::new(secs, nanos as u32);
            if d.is_zero() {
                "Duration(0s)".to_string()
            } else {
                format!("Duration({d:?})")
            }
        })
        .into_owned()
}

/// Replaces each 4-line placeholder `Any { type_url: "@@k@@", value: [], }` by its text,
/// indented where the `Any` was.
fn splice(raw: &str, slots: &[(String, String)]) -> String {
    let lines: Vec<&str> = raw.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let slot = lines.get(i + 1).and_then(|next| {
            slots
                .iter()
                .find(|(k, _)| next.trim() == format!("type_url: {k:?},"))
        });
        match slot {
            Some((key, expansion)) if lines[i].trim_end().ends_with("Any {") => {
                let open = lines[i];
                let indent: String = open.chars().take_while(|c| *c == ' ').collect();
                let prefix = if key.starts_with("@@MAP") {
                    indent.clone()
                } else {
                    open.trim_end().trim_end_matches("Any {").to_string()
                };
                let close = lines[i + 3];
                let suffix = close.trim_start().trim_start_matches('}');
                let mut exp = expansion.lines();
                out.push(format!("{prefix}{}", exp.next().unwrap_or_default()));
                out.extend(exp.map(|l| format!("{indent}{l}")));
                if let Some(last) = out.last_mut() {
                    last.push_str(suffix);
                }
                i += 4;
            }
            _ => {
                out.push(lines[i].to_string());
                i += 1;
            }
        }
    }
    out.join("\n")
}

/// Drops `field: <proto3 default>,` lines: on the wire those fields are absent anyway. Enum
/// fields at their zero value are dropped only where the zero says nothing to a reader (an
/// `lb_policy: RoundRobin` or `codec_type: Auto` stays). A wrapper's `value` always stays:
/// `BoolValue { value: false }` is not an absent BoolValue.
fn prune(text: &str) -> String {
    const DEFAULTS: [&str; 7] = ["None,", "[],", "{},", "\"\",", "0,", "false,", "0.0,"];
    const QUIET_ENUMS: [&str; 15] = [
        "priority: Default,",
        "internal_redirect_action: PassThroughInternalRedirect,",
        "cluster_not_found_response_code: ServiceUnavailable,",
        "protocol_selection: UseConfiguredProtocol,",
        "protocol: Tcp,",
        "dns_lookup_family: Auto,",
        "health_status: Unknown,",
        "source_type: Any,",
        "server_header_transformation: Overwrite,",
        "forward_client_cert_details: Sanitize,",
        "upstream_connect_mode: Immediate,",
        "proxy_protocol_tlv_merge_policy: AddIfAbsent,",
        "drain_type: Default,",
        "hash_function: XxHash,",
        "headers_with_underscores_action: Allow,",
    ];
    text.lines()
        .filter(|line| {
            let t = line.trim_start();
            if QUIET_ENUMS.contains(&t) {
                return false;
            }
            let Some((field, value)) = t.split_once(": ") else {
                return true;
            };
            let is_field = field != "value"
                && field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#');
            !(is_field && DEFAULTS.contains(&value))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Folds blocks (`X {`, `X(`, `[`) of at most four simple lines onto one line when it stays
/// short, innermost first, until nothing changes: `Some(UInt32Value { value: 5 })` rather
/// than seven lines.
fn fold(text: &str) -> String {
    // Width of the folded content, indentation not counted.
    const MAX_WIDTH: usize = 130;
    let opens = |s: &str| s.trim_end().ends_with(['{', '(', '[']);
    let closes = |s: &str| {
        let t = s.trim_start();
        t.starts_with('}') || t.starts_with(')') || t.starts_with(']')
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    loop {
        let mut changed = false;
        let mut out: Vec<String> = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            let line = &lines[i];
            if opens(line) {
                let mut j = i + 1;
                while j < lines.len() && !closes(&lines[j]) && !opens(&lines[j]) {
                    j += 1;
                }
                if j < lines.len() && closes(&lines[j]) && j - i - 1 <= 8 {
                    let inner: Vec<&str> = lines[i + 1..j]
                        .iter()
                        .map(|l| l.trim().trim_end_matches(','))
                        .collect();
                    let brace = line.trim_end().ends_with('{');
                    let body = inner.join(", ");
                    let folded = match (brace, body.is_empty()) {
                        (_, true) => format!("{}{}", line.trim_end(), lines[j].trim_start()),
                        (true, false) => {
                            format!("{} {body} {}", line.trim_end(), lines[j].trim_start())
                        }
                        (false, false) => {
                            format!("{}{body}{}", line.trim_end(), lines[j].trim_start())
                        }
                    };
                    if folded.trim_start().len() <= MAX_WIDTH {
                        out.push(folded);
                        i = j + 1;
                        changed = true;
                        continue;
                    }
                }
            }
            out.push(line.clone());
            i += 1;
        }
        lines = out;
        if !changed {
            return lines.join("\n");
        }
    }
}
