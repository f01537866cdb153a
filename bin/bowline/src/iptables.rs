//! `bowline iptables`: installs transparent-capture rules in the current network namespace,
//! as istio-iptables does in a pod's init container. `bowline up` runs it in each replica's
//! namespace (`ip netns exec <ns> bowline iptables`).

use bowline_mesh::iptables::{remove, CaptureRules, PROXY_UID};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// uid of the proxy: its traffic is not captured.
    #[arg(long, default_value_t = PROXY_UID)]
    proxy_uid: u32,
    /// gid of the proxy: its traffic is not captured.
    #[arg(long, default_value_t = PROXY_UID)]
    proxy_gid: u32,
    /// Port that outbound TCP is redirected to (the sidecar's `virtualOutbound`).
    #[arg(long, default_value_t = 15001)]
    outbound_port: u16,
    /// Port that inbound TCP is redirected to (the sidecar's `virtualInbound`).
    #[arg(long, default_value_t = 15006)]
    inbound_port: u16,
    /// Inbound destination ports left alone, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "15000")]
    exclude_inbound_ports: Vec<u16>,
    /// Print the iptables-restore input instead of applying it.
    #[arg(long)]
    dry_run: bool,
    /// Remove the rules (and chains) instead of installing them.
    #[arg(long, conflicts_with = "dry_run")]
    cleanup: bool,
}

pub fn run(args: Args) -> ExitCode {
    let rules = CaptureRules {
        proxy_uid: args.proxy_uid,
        proxy_gid: args.proxy_gid,
        outbound_port: args.outbound_port,
        inbound_port: args.inbound_port,
        exclude_inbound_ports: args.exclude_inbound_ports,
    };
    if args.dry_run {
        print!("{}", rules.restore_script());
        return ExitCode::SUCCESS;
    }
    let result = if args.cleanup {
        remove()
    } else {
        rules.apply()
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bowline iptables: {e}");
            ExitCode::FAILURE
        }
    }
}
