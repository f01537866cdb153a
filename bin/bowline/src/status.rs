//! `bowline status`: what a running `bowline up` mesh is doing — each workload replica, its
//! process and its sidecar's sync state (from the control plane's `/debug/syncz`), and the
//! gateway's addresses.

use bowline_mesh::probe::http_get;
use bowline_mesh::process::alive;
use bowline_mesh::state::{state_root, MeshState};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The mesh's name [default: the only running mesh].
    #[arg(long)]
    mesh: Option<String>,
    /// Print the state and sync documents as JSON.
    #[arg(long)]
    json: bool,
    /// A control plane's HTTP address (`bowline control`, no mesh of `bowline up`): report
    /// only its config — refused resources, and resources not programmed on every proxy.
    #[arg(
        long,
        env = "BOWLINE_CONTROL",
        value_name = "ADDR",
        conflicts_with = "mesh"
    )]
    control: Option<std::net::SocketAddr>,
}

/// Exit 0 when the mesh runs, every sidecar is synced, nothing in the config is refused
/// and every resource is programmed on every proxy; 1 when something is behind, down or
/// refused; 2 when no mesh is found.
pub fn run(args: Args) -> ExitCode {
    if let Some(addr) = args.control {
        let config = http_get(addr, "/apis/config/status", Duration::from_secs(5))
            .ok()
            .and_then(|(status, body)| (status == 200).then_some(body))
            .and_then(|body| serde_json::from_str::<Value>(&body).ok());
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&config).unwrap_or_default()
            );
        }
        return if report_config(config.as_ref(), !args.json) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let root = state_root();
    let dir = match &args.mesh {
        Some(name) => root.join(name),
        None => {
            let running: Vec<_> = std::fs::read_dir(&root)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| MeshState::load(p).is_ok())
                .collect();
            match &running[..] {
                [one] => one.clone(),
                [] => {
                    eprintln!(
                        "bowline status: no mesh is running (no state under {})",
                        root.display()
                    );
                    return ExitCode::from(2);
                }
                _ => {
                    eprintln!("bowline status: several meshes run; pick one with --mesh");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let state = match MeshState::load(&dir) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("bowline status: no running mesh at {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let syncz = state
        .debug_addr
        .parse()
        .ok()
        .and_then(|addr| http_get(addr, "/debug/syncz", Duration::from_secs(2)).ok())
        .and_then(|(status, body)| (status == 200).then_some(body))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok());
    if args.json {
        let doc = serde_json::json!({"state": state, "syncz": syncz});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    let config = state
        .debug_addr
        .parse()
        .ok()
        .and_then(|addr| http_get(addr, "/apis/config/status", Duration::from_secs(5)).ok())
        .and_then(|(status, body)| (status == 200).then_some(body))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok());
    if args.json {
        if let Some(config) = &config {
            println!(
                "{}",
                serde_json::to_string_pretty(config).unwrap_or_default()
            );
        }
    }
    let healthy = report(&state, syncz.as_ref(), !args.json);
    let config_ok = report_config(config.as_ref(), !args.json);
    if healthy && config_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the table (when `print`); true when every process runs and every proxy has
/// ACKed the current generation.
/// `; <SPIFFE id>, certificate expires in <time>` from the sidecar's `/certs` (empty when
/// it has no workload certificate or does not answer).
fn identity(admin: &str) -> String {
    let Some(addr) = admin.parse().ok() else {
        return String::new();
    };
    let Some(certs) = http_get(addr, "/certs", Duration::from_secs(2))
        .ok()
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
    else {
        return String::new();
    };
    let leaf = &certs["certificates"][0]["cert_chain"][0];
    match (
        leaf["subject_alt_names"][0]["uri"].as_str(),
        leaf["seconds_until_expiration"].as_u64(),
    ) {
        (Some(uri), Some(left)) => {
            format!("; {uri}, certificate expires in {}", human(left))
        }
        _ => String::new(),
    }
}

fn human(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The config store's side: every refused resource (with its first error) and every
/// resource some expected proxy has not programmed yet. True when there is none.
fn report_config(config: Option<&Value>, print: bool) -> bool {
    let Some(config) = config else {
        if print {
            println!("config: the control plane's config API did not answer");
        }
        return false;
    };
    let list = |key: &str| config[key].as_array().cloned().unwrap_or_default();
    let (refused, pending) = (list("refused"), list("not_programmed"));
    let files: Vec<(String, Value)> = config["files"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if print {
        println!(
            "config: generation {}, {} resources, {} refused, {} not programmed everywhere",
            config["generation"],
            config["resources"],
            refused.len(),
            pending.len()
        );
        for r in &refused {
            let serving = if r["serving"] == true {
                "its last good version serves"
            } else {
                "nothing of it serves"
            };
            println!(
                "  REFUSED {} ({serving})",
                r["resource"].as_str().unwrap_or("?")
            );
            for d in r["diagnostics"].as_array().into_iter().flatten() {
                println!("    {}", d.as_str().unwrap_or("?"));
            }
        }
        for p in &pending {
            let ids: Vec<&str> = p["pending"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "  PENDING {} generation {}: programmed on {} of {} proxies; not on {}",
                p["resource"].as_str().unwrap_or("?"),
                p["generation"],
                p["programmed"],
                p["of"],
                ids.join(", ")
            );
        }
        for (file, diags) in &files {
            println!("  FILE {file}");
            for d in diags.as_array().into_iter().flatten() {
                println!("    {}", d.as_str().unwrap_or("?"));
            }
        }
    }
    refused.is_empty() && pending.is_empty() && files.is_empty()
}

fn report(state: &MeshState, syncz: Option<&Value>, print: bool) -> bool {
    let generation = syncz.and_then(|s| s["generation"].as_u64());
    let sync_of = |node_id: &str| -> String {
        let Some(s) = syncz else {
            return "control plane unreachable".into();
        };
        let proxy = s["proxies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["node_id"] == node_id);
        match proxy {
            None => "not connected".into(),
            Some(p) => match (p["applied_generation"].as_u64(), generation) {
                (Some(a), Some(g)) if a == g => format!(
                    "SYNCED (generation {g}, {})",
                    p["protocol"].as_str().unwrap_or("?")
                ),
                (a, g) => {
                    let nack = p["types"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .find_map(|(t, v)| {
                            v["last_nack"]["message"]
                                .as_str()
                                .map(|m| format!("; {t} NACK: {m}"))
                        })
                        .unwrap_or_default();
                    format!("STALE (applied {a:?} of {g:?}{nack})")
                }
            },
        }
    };
    let mut healthy = syncz.is_some();
    let mut lines = vec![format!(
        "mesh {:?}: {} capture, up pid {}{}; control plane xds {} debug http://{}; config {}",
        state.mesh,
        state.capture,
        state.pid,
        if alive(state.pid) {
            ""
        } else {
            " (NOT RUNNING)"
        },
        state.xds_addr,
        state.debug_addr,
        state.config_dir.display()
    )];
    lines.push(format!(
        "  {:<22} {:<12} {:<12} {:<8} SIDECAR",
        "WORKLOAD", "NAMESPACE", "IP", "PROCESS"
    ));
    for w in &state.workloads {
        let up = alive(w.pid) && alive(w.sidecar_pid);
        let sync = sync_of(&w.node_id);
        healthy &= up && sync.starts_with("SYNCED");
        lines.push(format!(
            "  {:<22} {:<12} {:<12} {:<8} {sync}{}",
            w.name,
            w.namespace,
            w.ip,
            if up { "running" } else { "DOWN" },
            identity(&w.sidecar_admin)
        ));
    }
    for (name, g) in state.gateways() {
        let sync = sync_of(&g.node_id);
        healthy &= alive(g.pid) && sync.starts_with("SYNCED");
        let listeners: Vec<String> = g
            .listeners
            .iter()
            .map(|(p, a)| format!("{p}->{a}"))
            .collect();
        lines.push(format!(
            "  {name} {}: {} ({}); {sync}",
            g.node_id,
            listeners.join(", "),
            if alive(g.pid) { "running" } else { "DOWN" }
        ));
        if let Some(url) = &g.url {
            lines.push(format!("  entry: {url}"));
        }
    }
    if print {
        println!("{}", lines.join("\n"));
    }
    healthy
}
