//! `bowline apply`, `bowline delete` and `bowline get`: kubectl's verbs against a running
//! control plane's config API (see crates/control/src/api.rs).
//!
//! The control plane is found by `--control ADDR` (or `BOWLINE_CONTROL`), else the running
//! `bowline up` mesh, else `bowline control`'s default HTTP port, 127.0.0.1:15014.

use bowline_mesh::probe::http_request;
use bowline_mesh::state::{state_root, MeshState};
use serde_json::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct Target {
    /// The control plane's HTTP address [default: the running mesh's, else 127.0.0.1:15014].
    #[arg(long, env = "BOWLINE_CONTROL", value_name = "ADDR")]
    control: Option<SocketAddr>,
    /// The `bowline up` mesh to talk to, when several run.
    #[arg(long)]
    mesh: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// Files or directories of Istio / Gateway API / Kubernetes YAML, or `-` for stdin.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR|-"
    )]
    files: Vec<PathBuf>,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Delete the resources these files define (by identity; their specs are not checked).
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// Or one resource: KIND NAME.
    #[arg(value_name = "KIND")]
    kind: Option<String>,
    #[arg(value_name = "NAME")]
    name: Option<String>,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// virtualservice, destinationrule, gateway, httproute, service, ... (kubectl's names:
    /// singular, plural, or `kind.group`); `all` for every kind.
    kind: String,
    name: Option<String>,
    /// Namespace [default: every namespace].
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// `yaml` or `json` for whole resources with status; the default is a table.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    output: Option<String>,
    #[command(flatten)]
    target: Target,
}

impl Target {
    fn addr(&self) -> Result<SocketAddr, String> {
        if let Some(addr) = self.control {
            return Ok(addr);
        }
        let root = state_root();
        let states: Vec<MeshState> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                self.mesh
                    .as_ref()
                    .is_none_or(|m| e.file_name() == m.as_str())
            })
            .filter_map(|e| MeshState::load(&e.path()).ok())
            .filter(|s| bowline_mesh::process::alive(s.pid))
            .collect();
        match &states[..] {
            [one] => one
                .debug_addr
                .parse()
                .map_err(|e| format!("mesh {}: bad debug address: {e}", one.mesh)),
            [] if self.mesh.is_some() => Err(format!(
                "no running mesh named {:?} under {}",
                self.mesh.as_deref().unwrap_or_default(),
                root.display()
            )),
            [] => Ok(SocketAddr::from(([127, 0, 0, 1], 15014))),
            _ => Err("several meshes run; pick one with --mesh or --control".into()),
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Value, String> {
        let addr = self.addr()?;
        let (status, text) = http_request(addr, method, path, body, TIMEOUT)
            .map_err(|e| format!("cannot reach the control plane at {addr}: {e}"))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the control plane at {addr} answered {status}: {e}"))?;
        if status >= 400 {
            return Err(value["error"].as_str().unwrap_or(&text).to_string());
        }
        Ok(value)
    }
}

/// Each input as (name shown in diagnostics, text): files as named, directories walked the
/// way the control plane walks its own (`*.yaml`, `*.yml`, `*.json`), `-` for stdin.
fn inputs(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            out.push((path.clone(), text));
            continue;
        }
        let (files, problems) = bowline_config::list_files(std::slice::from_ref(path));
        if let Some(p) = problems.first() {
            return Err(p.message.clone());
        }
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            out.push((file, text));
        }
    }
    Ok(out)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn apply(args: ApplyArgs) -> ExitCode {
    write_files(&args.files, &args.target, "apply")
}

pub fn delete(args: DeleteArgs) -> ExitCode {
    if !args.files.is_empty() {
        return write_files(&args.files, &args.target, "delete");
    }
    let (Some(kind), Some(name)) = (&args.kind, &args.name) else {
        eprintln!("bowline delete: give -f FILE, or KIND NAME");
        return ExitCode::from(2);
    };
    let path = format!(
        "/apis/config/resources?kind={}&namespace={}&name={}",
        encode(kind),
        encode(&args.namespace),
        encode(name)
    );
    match args.target.call("DELETE", &path, b"") {
        Ok(v) => print_results(&v, "delete"),
        Err(e) => fail("delete", &e),
    }
}

fn write_files(paths: &[PathBuf], target: &Target, verb: &str) -> ExitCode {
    let inputs = match inputs(paths) {
        Ok(inputs) => inputs,
        Err(e) => return fail(verb, &e),
    };
    let mut code = ExitCode::SUCCESS;
    for (file, text) in inputs {
        let path = format!(
            "/apis/config/{verb}?file={}",
            encode(&file.display().to_string())
        );
        match target.call("POST", &path, text.as_bytes()) {
            Ok(v) => {
                if print_results(&v, verb) != ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
            }
            Err(e) => return fail(verb, &e),
        }
    }
    code
}

/// kubectl's lines: `VirtualService default/reviews configured`; diagnostics of refused
/// documents on stderr. Failure when anything was refused, or a deletion found nothing.
fn print_results(v: &Value, verb: &str) -> ExitCode {
    let mut ok = true;
    for r in v["results"].as_array().into_iter().flatten() {
        let outcome = r["outcome"].as_str().unwrap_or("?");
        let what = r["key"].as_str().unwrap_or("(document)");
        for d in r["diagnostics"].as_array().into_iter().flatten() {
            let line = diagnostic_line(d);
            if d["severity"] == "error" {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        match outcome {
            "refused" => {
                ok = false;
                eprintln!("{what} refused");
            }
            "skipped" => {}
            // kubectl's NotFound: nothing of that identity was there to delete.
            "unchanged" if verb == "delete" => {
                ok = false;
                eprintln!("{what} not found");
            }
            other => println!("{what} {other}"),
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn diagnostic_line(d: &Value) -> String {
    format!(
        "{}:{}:{}: {}[{}] {}{}",
        d["file"].as_str().unwrap_or("?"),
        d["line"],
        d["column"],
        d["severity"].as_str().unwrap_or("?"),
        d["code"].as_str().unwrap_or("?"),
        d["field"]
            .as_str()
            .filter(|f| !f.is_empty())
            .map(|f| format!("{f}: "))
            .unwrap_or_default(),
        d["message"].as_str().unwrap_or("?"),
    )
}

pub fn get(args: GetArgs) -> ExitCode {
    let mut path = String::from("/apis/config/resources?");
    if args.kind != "all" {
        path.push_str(&format!("kind={}&", encode(&args.kind)));
    }
    if let Some(ns) = &args.namespace {
        path.push_str(&format!("namespace={}&", encode(ns)));
    }
    if let Some(name) = &args.name {
        path.push_str(&format!("name={}", encode(name)));
    }
    let value = match args.target.call("GET", &path, b"") {
        Ok(v) => v,
        Err(e) => return fail("get", &e),
    };
    let items = value["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        eprintln!("No resources found.");
        return if args.name.is_some() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let single = args.name.is_some() && items.len() == 1;
    match args.output.as_deref() {
        Some("json") => {
            let doc = if single {
                items[0].clone()
            } else {
                serde_json::json!({"items": items})
            };
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Some("yaml") => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    println!("---");
                }
                print!("{}", crate::yaml_out::to_yaml(item));
            }
        }
        None | Some("wide") => table(&items),
        Some(other) => {
            return fail(
                "get",
                &format!("unknown output format {other:?}; use yaml or json"),
            )
        }
    }
    ExitCode::SUCCESS
}

fn table(items: &[Value]) {
    println!(
        "{:<22} {:<14} {:<28} {:<4} {:<9} {:<11} SOURCE",
        "KIND", "NAMESPACE", "NAME", "GEN", "ACCEPTED", "PROGRAMMED"
    );
    for item in items {
        let condition = |t: &str| {
            item["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == t)
                .and_then(|c| c["status"].as_str())
                .unwrap_or("-")
                .to_string()
        };
        let p = &item["status"]["programmed"];
        let programmed = match (p["proxies"].as_u64(), p["of"].as_u64()) {
            (Some(n), Some(m)) => format!("{n}/{m}"),
            _ => "-".into(),
        };
        println!(
            "{:<22} {:<14} {:<28} {:<4} {:<9} {:<11} {}",
            item["kind"].as_str().unwrap_or("?"),
            item["metadata"]["namespace"].as_str().unwrap_or("?"),
            item["metadata"]["name"].as_str().unwrap_or("?"),
            item["metadata"]["generation"].to_string(),
            condition("Accepted"),
            programmed,
            item["metadata"]["annotations"]["bowline.io/source"]
                .as_str()
                .unwrap_or("")
        );
    }
}

fn fail(verb: &str, e: &str) -> ExitCode {
    eprintln!("bowline {verb}: {e}");
    ExitCode::FAILURE
}
