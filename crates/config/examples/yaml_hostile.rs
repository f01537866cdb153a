//! Times the YAML reader on hostile input (or any file), for measuring by hand; peak memory
//! comes from `/usr/bin/time -v`:
//!
//! ```text
//! cargo build --release -p bowline-config --example yaml_hostile
//! /usr/bin/time -v target/release/examples/yaml_hostile alias-bomb
//! ```
//!
//! The first argument is a file, or one of the generated inputs:
//! - `alias-bomb` (1 MB): an anchored list of five 200 KB strings, then nine levels of ten
//!   aliases to the level before;
//! - `wide-bomb` (1 MB): one anchored 60 KB string aliased 235,000 times;
//! - `merge-keys` (336 KB): a VirtualService whose labels merge 16,000 keys (`<<: *base`);
//! - `long-key` (400 KB): one 100 KB explicit key (`? kkk…`) over a 100,000-item list, no
//!   aliases: every item's field path starts with the key;
//! - `deep-keys` (490 KB): 190 nested mappings with 1,000-character keys over a
//!   100,000-item list: every item's field path is 190 KB long;
//! - `long-key-dups` (700 KB): one 100 KB explicit key over a mapping with 100,000 duplicate
//!   keys: each duplicate is reported with its field path.
//!
//! The second is `parse` (the default: the YAML reader only) or `load` (the whole loading
//! path the control plane runs: reader, JSON conversion, typed resources, validation).

use std::time::Instant;

fn alias_bomb() -> String {
    let long = "x".repeat(200_000);
    let mut text = format!("l0: &l0 [{}]\n", vec![long; 5].join(", "));
    for level in 1..10 {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
    }
    text
}

fn wide_bomb() -> String {
    format!(
        "s: &s {}\nl: [{}]\n",
        "y".repeat(60_000),
        vec!["*s"; 235_000].join(", ")
    )
}

fn merge_keys() -> String {
    let mut text = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: x\n  annotations: &base\n",
    );
    for i in 0..16_000 {
        text.push_str(&format!("    k-{i:05}: v-{i:05}\n"));
    }
    text.push_str("  labels:\n    <<: *base\nspec:\n  hosts: [x]\n  http:\n  - route:\n    - destination: {host: x}\n");
    text
}

fn long_key() -> String {
    format!(
        "? {}\n: [{}]\n",
        "k".repeat(100_000),
        vec!["1"; 100_000].join(", ")
    )
}

fn deep_keys() -> String {
    let depth = 190;
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!("{{{}{level:03}: ", "k".repeat(997)));
    }
    text.push_str(&format!("[{}]", vec!["1"; 100_000].join(", ")));
    text.push_str(&"}".repeat(depth));
    text.push('\n');
    text
}

fn long_key_dups() -> String {
    format!(
        "? {}\n: {{{}}}\n",
        "k".repeat(100_000),
        vec!["a: 1"; 100_000].join(", ")
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let input = args
        .next()
        .expect("usage: yaml_hostile alias-bomb|wide-bomb|merge-keys|long-key|deep-keys|long-key-dups|FILE [parse|load]");
    let mode = args.next().unwrap_or_else(|| "parse".into());
    let text = match input.as_str() {
        "alias-bomb" => alias_bomb(),
        "wide-bomb" => wide_bomb(),
        "merge-keys" => merge_keys(),
        "long-key" => long_key(),
        "deep-keys" => deep_keys(),
        "long-key-dups" => long_key_dups(),
        path => std::fs::read_to_string(path).expect("a readable UTF-8 file"),
    };
    let start = Instant::now();
    match mode.as_str() {
        "parse" => {
            let (docs, err) = bowline_config::yaml::parse(&text);
            let elapsed = start.elapsed();
            println!(
                "{input}: {} bytes, {} document(s) in {elapsed:.3?}",
                text.len(),
                docs.len()
            );
            if let Some(e) = err {
                println!("  {}:{}: {}", e.pos.line, e.pos.column, e.message);
            }
        }
        "load" => {
            let loaded = bowline_config::load_str(std::path::Path::new(&input), &text);
            let elapsed = start.elapsed();
            println!(
                "{input}: {} bytes, {} resource(s), {} diagnostic(s) in {elapsed:.3?}",
                text.len(),
                loaded.config.resources.len(),
                loaded.diagnostics.len()
            );
            for d in loaded.diagnostics.iter().take(3) {
                println!("  {}:{}: {}", d.line, d.column, d.message);
            }
        }
        other => panic!("unknown mode {other}: use parse or load"),
    }
}
