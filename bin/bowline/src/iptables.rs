//! `bowline iptables`: installs transparent-capture rules in the current network namespace,
//! as istio-iptables does in a pod's init container. `bowline up` runs it in each replica's
//! namespace (`ip netns exec <ns> bowline iptables`).
//!
//! The capture flags take istio-iptables' values (Istio's `traffic.sidecar.istio.io/*`
//! annotations): comma-separated lists, `*` for everything where an include list allows
//! it, and an empty value (`--include-inbound-ports ''`) for nothing.

use bowline_mesh::iptables::{
    parse_ip_range_selection, parse_ip_ranges, parse_port_selection, parse_ports, remove,
    CaptureRules, FlagError, ISTIO_EXCLUDED_INBOUND_PORTS, PROXY_UID,
};
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
    /// Inbound destination ports captured: `*` for all, or a comma-separated list (then
    /// --exclude-inbound-ports is not consulted); empty captures no inbound traffic.
    #[arg(long, default_value = "*", value_name = "PORTS")]
    include_inbound_ports: String,
    /// Inbound destination ports left alone when all are captured, comma separated. Giving
    /// the flag replaces the default list (Istio's proxy ports): repeat them to keep them.
    #[arg(long, default_value = ISTIO_EXCLUDED_INBOUND_PORTS, value_name = "PORTS")]
    exclude_inbound_ports: String,
    /// Outbound destinations captured: `*` for all, or comma-separated IPv4 CIDR ranges;
    /// empty captures no outbound traffic by address (--include-outbound-ports still does).
    #[arg(long, default_value = "*", value_name = "CIDRS")]
    include_outbound_ip_ranges: String,
    /// Outbound IPv4 CIDR ranges never captured, comma separated.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "CIDRS"
    )]
    exclude_outbound_ip_ranges: String,
    /// Outbound destination ports captured whatever the address (unless excluded),
    /// comma separated.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "PORTS"
    )]
    include_outbound_ports: String,
    /// Outbound destination ports never captured, comma separated.
    #[arg(
        long,
        default_value = "",
        hide_default_value = true,
        value_name = "PORTS"
    )]
    exclude_outbound_ports: String,
    /// Print the iptables-restore input instead of applying it.
    #[arg(long)]
    dry_run: bool,
    /// Remove the rules (and chains) instead of installing them.
    #[arg(long, conflicts_with = "dry_run")]
    cleanup: bool,
}

impl Args {
    /// The rules the flags ask for; the first flag value that does not parse is the error.
    fn rules(&self) -> Result<CaptureRules, FlagError> {
        Ok(CaptureRules {
            proxy_uid: self.proxy_uid,
            proxy_gid: self.proxy_gid,
            outbound_port: self.outbound_port,
            inbound_port: self.inbound_port,
            include_inbound_ports: parse_port_selection(
                "include-inbound-ports",
                &self.include_inbound_ports,
            )?,
            exclude_inbound_ports: parse_ports(
                "exclude-inbound-ports",
                &self.exclude_inbound_ports,
            )?,
            include_outbound_ip_ranges: parse_ip_range_selection(
                "include-outbound-ip-ranges",
                &self.include_outbound_ip_ranges,
            )?,
            exclude_outbound_ip_ranges: parse_ip_ranges(
                "exclude-outbound-ip-ranges",
                &self.exclude_outbound_ip_ranges,
            )?,
            include_outbound_ports: parse_ports(
                "include-outbound-ports",
                &self.include_outbound_ports,
            )?,
            exclude_outbound_ports: parse_ports(
                "exclude-outbound-ports",
                &self.exclude_outbound_ports,
            )?,
        })
    }
}

pub fn run(args: Args) -> ExitCode {
    if args.cleanup {
        return report(remove());
    }
    let rules = match args.rules() {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("bowline iptables: {e}");
            return ExitCode::from(2);
        }
    };
    if args.dry_run {
        print!("{}", rules.restore_script());
        return ExitCode::SUCCESS;
    }
    report(rules.apply())
}

fn report(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bowline iptables: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_mesh::iptables::Selection;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn rules(argv: &[&str]) -> Result<CaptureRules, FlagError> {
        let cli = Cli::try_parse_from(std::iter::once("iptables").chain(argv.iter().copied()))
            .expect("flags parse");
        cli.args.rules()
    }

    #[test]
    fn defaults_are_everything_but_istios_proxy_ports() {
        assert_eq!(
            rules(&[]).unwrap(),
            CaptureRules {
                exclude_inbound_ports: vec![15000, 15001, 15006, 15020, 15021, 15090],
                ..CaptureRules::default()
            }
        );
    }

    #[test]
    fn bowline_ups_invocation_keeps_its_rules() {
        // `bowline up` passes its admin port alone: the same rules as before the capture
        // flags existed.
        assert_eq!(
            rules(&["--exclude-inbound-ports", "15000"]).unwrap(),
            CaptureRules::default()
        );
    }

    #[test]
    fn every_flag_reaches_its_field() {
        let got = rules(&[
            "--include-inbound-ports=",
            "--exclude-inbound-ports=22",
            "--include-outbound-ip-ranges",
            "10.0.0.0/8,172.16.0.0/12",
            "--exclude-outbound-ip-ranges",
            "10.96.0.0/12",
            "--include-outbound-ports",
            "443",
            "--exclude-outbound-ports",
            "53,3306",
        ])
        .unwrap();
        assert_eq!(
            got,
            CaptureRules {
                include_inbound_ports: Selection::none(),
                exclude_inbound_ports: vec![22],
                include_outbound_ip_ranges: Selection::Only(vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "172.16.0.0/12".parse().unwrap()
                ]),
                exclude_outbound_ip_ranges: vec!["10.96.0.0/12".parse().unwrap()],
                include_outbound_ports: vec![443],
                exclude_outbound_ports: vec![53, 3306],
                ..CaptureRules::default()
            }
        );
    }

    #[test]
    fn a_bad_item_names_its_flag() {
        let err = rules(&["--exclude-outbound-ip-ranges", "10.0.0.0/8,fd00::/8"]).unwrap_err();
        assert_eq!(err.flag, "exclude-outbound-ip-ranges");
        assert_eq!(err.item, "fd00::/8");
        let err = rules(&["--include-outbound-ports", "443,https"]).unwrap_err();
        assert_eq!(
            (err.flag, err.item.as_str()),
            ("include-outbound-ports", "https")
        );
    }
}
