//! Points `wit-spin-sdk` (next to this file) at the `wit/` directory of the spin-sdk crate
//! the workspace locks, so `bindgen!` reads Spin's own WIT files by a literal path without
//! any of them being copied into the repository.
//!
//! The spin-sdk package is found with `cargo metadata`, which also downloads it when only
//! this crate is being built (the component that depends on it is not a dependency here).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The spin-sdk major.minor whose WIT files the host implements.
const SPIN_SDK_VERSION: &str = "5.2.";

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace_root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/spin-host lives two levels below the workspace root")
        .to_path_buf();
    println!(
        "cargo:rerun-if-changed={}",
        workspace_root.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-changed=build.rs");

    let wit = spin_sdk_wit_dir(&manifest_dir);
    assert!(
        wit.join("deps").is_dir(),
        "{} does not look like spin-sdk's WIT directory",
        wit.display()
    );
    link(&wit, &manifest_dir.join("wit-spin-sdk"));
    // bindgen! tracks the WIT files it reads; this covers the link target changing.
    println!("cargo:rerun-if-changed={}", wit.display());
}

fn spin_sdk_wit_dir(manifest_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .expect("running `cargo metadata` to find the spin-sdk package");
    assert!(
        output.status.success(),
        "`cargo metadata` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("`cargo metadata` printed JSON");
    let packages = metadata["packages"]
        .as_array()
        .expect("metadata has packages");
    let sdk = packages
        .iter()
        .find(|p| {
            p["name"] == "spin-sdk"
                && p["version"].as_str().is_some_and(|v| v.starts_with(SPIN_SDK_VERSION))
        })
        .unwrap_or_else(|| {
            panic!("the workspace does not lock a spin-sdk {SPIN_SDK_VERSION}x (see component/Cargo.toml)")
        });
    let manifest_path = PathBuf::from(sdk["manifest_path"].as_str().expect("manifest_path"));
    manifest_path
        .parent()
        .expect("a manifest path has a parent")
        .join("wit")
}

/// Makes `link` a symlink to `target`, replacing whatever link was there.
fn link(target: &Path, link: &Path) {
    if let Ok(current) = std::fs::read_link(link) {
        if current == target {
            return;
        }
        std::fs::remove_file(link).expect("removing the stale wit-spin-sdk link");
    } else if link.exists() {
        panic!(
            "{} exists and is not a symlink; remove it so the build can link spin-sdk's WIT there",
            link.display()
        );
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link).expect("creating the wit-spin-sdk symlink");
    #[cfg(windows)]
    std::os::windows::fs::symlink_dir(target, link).expect("creating the wit-spin-sdk symlink");
}
