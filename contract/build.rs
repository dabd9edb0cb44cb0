//! Captures the git commit for `/system/info` (`version.sha`): `SMILESS_GIT_SHA` from the environment if
//! set (release builds outside a checkout), else `git rev-parse`, else "unknown" — never empty.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SMILESS_GIT_SHA");
    let git_dir = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned());
    if let Some(dir) = &git_dir {
        // Re-run when HEAD moves (a commit, a checkout), not on every build.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    let sha = std::env::var("SMILESS_GIT_SHA")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SMILESS_GIT_SHA={sha}");
}
