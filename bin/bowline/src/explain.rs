//! `bowline explain`: what happens to one request, and why — offline, from the mesh
//! directory alone. The source sidecar's route and cluster, the transport (does it originate
//! mutual TLS; does the destination's port accept it), and at each destination workload the
//! JWT and authorization filters' decisions, naming the rule that decided.
//!
//! Nothing is re-implemented: the control plane's own translation generates both sidecars'
//! config, and bowline-proxy's model converts it and decides (route selection and the
//! router's `route::decide`, the very function the proxy acts on; filter-chain selection,
//! `jwt::authenticate`, `Rbac::evaluate`) — the answer is what the proxies would do.

mod decide;

use anyhow::{bail, Context};
use bowline_mesh::plan::{Capture, Instance, Plan, Subnet};
use bowline_mesh::Manifest;
use bowline_registry::watch::Registry;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A mesh manifest or its directory [default: ./bowline.yaml, else examples/bookinfo].
    path: Option<PathBuf>,
    /// The source workload (`productpage-v1`) or replica (`productpage-v1-0`).
    #[arg(long)]
    from: String,
    /// Where the request goes, as the application addresses it: `reviews:9080`, `reviews`.
    #[arg(long)]
    to: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// The request's path (with any query string).
    #[arg(long = "path", default_value = "/")]
    request_path: String,
    /// A request header, `name: value` (repeatable), e.g. `-H 'end-user: jason'` or
    /// `-H 'authorization: Bearer <jwt>'`.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

/// Exit 0 allowed, 1 denied (or refused), 2 when the mesh cannot be read.
pub fn run(args: Args) -> ExitCode {
    match explain(&args) {
        Ok(report) => {
            print!("{}", report.text);
            if report.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bowline explain: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn explain(args: &Args) -> anyhow::Result<decide::Report> {
    let manifest_path = crate::up::manifest_path(args.path.as_deref())?;
    let manifest = Manifest::load(&manifest_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Transparent capture: pod addresses, and the sidecar label that turns on auto mTLS.
    let subnet = Subnet {
        base: Ipv4Addr::new(10, 213, 0, 0),
    };
    let mut port = 20000u16;
    let plan = Plan::new(&manifest, Capture::Transparent { subnet }, &mut || {
        port += 1;
        port
    })?;
    let registry_dir = tempfile::tempdir()?;
    std::fs::write(registry_dir.path().join("mesh.yaml"), plan.registry_yaml())?;
    let registry = Registry::load_dirs(vec![
        manifest.config.clone(),
        registry_dir.path().to_path_buf(),
    ])
    .with_context(|| format!("cannot read {}", manifest.config.display()))?;
    let status = registry.status();
    if !status.rejected.is_empty() {
        let lines: Vec<String> = status
            .rejected
            .values()
            .flatten()
            .map(|d| d.to_string())
            .collect();
        bail!("the mesh's config has errors:\n{}", lines.join("\n"));
    }
    let source = find_instance(&plan, &args.from)?;
    let headers = parse_headers(&args.headers)?;
    let request = decide::Request {
        method: args.method.clone(),
        authority: args.to.clone(),
        path: args.request_path.clone(),
        headers,
    };
    decide::explain(&registry.snapshot(), &plan, source, &request)
}

fn find_instance<'p>(plan: &'p Plan, name: &str) -> anyhow::Result<&'p Instance> {
    plan.instances
        .iter()
        .find(|i| i.name == name || i.workload == name)
        .with_context(|| {
            let known: Vec<&str> = plan.instances.iter().map(|i| i.workload.as_str()).collect();
            format!(
                "no workload {name:?} in the manifest (known: {})",
                known.join(", ")
            )
        })
}

fn parse_headers(raw: &[String]) -> anyhow::Result<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header {h:?}: expected `name: value`"))?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .with_context(|| format!("header name {name:?}"))?,
            http::HeaderValue::from_str(value.trim())
                .with_context(|| format!("header value {value:?}"))?,
        );
    }
    Ok(headers)
}
