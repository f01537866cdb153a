//! `bowline inject -f FILE`: the sidecar injection the webhook does, offline, like
//! `istioctl kube-inject`: every pod template in the file (Pods, Deployments, StatefulSets,
//! DaemonSets, Jobs, CronJobs, ReplicaSets, lists) gets bowline's sidecar and capture as its
//! annotations ask; other objects pass through. Namespace labels are not read (there is no
//! cluster); a pod that opts out stays as it is. The work is `bowline_inject`'s.

use bowline_inject::{inject_object, Policy, Settings};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The manifest to inject (`-` for stdin): multi-document YAML or JSON.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: PathBuf,
    /// Image registry of the sidecar and init images.
    #[arg(long, default_value = "ghcr.io/bowline-mesh")]
    hub: String,
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Classic sidecars (a container) instead of native ones (an init container with
    /// `restartPolicy: Always`, Kubernetes ≥ 1.29).
    #[arg(long)]
    classic_sidecars: bool,
    /// The control plane's xDS and CA address the sidecar dials.
    #[arg(long, default_value = "bowline.bowline-system.svc:15012")]
    xds_address: String,
}

pub fn run(args: Args) -> ExitCode {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bowline inject: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let (documents, error) = bowline_config::yaml::parse(&text);
    if let Some(e) = error {
        eprintln!("bowline inject: {}: {e}", args.file.display());
        return ExitCode::FAILURE;
    }
    let settings = Settings {
        hub: args.hub,
        tag: args.tag,
        xds_address: args.xds_address,
        native_sidecars: !args.classic_sidecars,
        ..Settings::default()
    };
    let mut out = Vec::new();
    for doc in documents.iter().filter(|d| !d.is_empty()) {
        let (value, _, _) = bowline_config::positions::to_json(&doc.root);
        match inject_object(&value, &settings, &Policy::Offline) {
            Ok(injected) => out.push(crate::yaml_out::to_yaml(&injected)),
            Err(e) => {
                eprintln!(
                    "bowline inject: {}:{}: {e}",
                    args.file.display(),
                    doc.root.pos.line
                );
                return ExitCode::FAILURE;
            }
        }
    }
    print!("{}", out.join("---\n"));
    ExitCode::SUCCESS
}
