//! Records the commit and build the binary is made from, for `/__version__`.

/// The trimmed output of `git <args>`, if git answers.
fn git(args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TOOLTOOL_COMMIT={commit}");
    // Where the source lives: TOOLTOOL_SOURCE, else the git remote.
    let source = std::env::var("TOOLTOOL_SOURCE")
        .ok()
        .or_else(|| git(&["config", "--get", "remote.origin.url"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TOOLTOOL_SOURCE={source}");
    println!("cargo:rerun-if-env-changed=TOOLTOOL_SOURCE");
    // A CI system names its build here (e.g. a build URL); `local` otherwise.
    let build = std::env::var("TOOLTOOL_BUILD").unwrap_or_else(|_| "local".to_owned());
    println!("cargo:rustc-env=TOOLTOOL_BUILD={build}");
    println!("cargo:rerun-if-env-changed=TOOLTOOL_BUILD");
    // Rebuild when HEAD moves (a commit or a checkout).
    for path in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
