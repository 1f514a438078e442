//! Running the `fmn` command against one test's resources.

use std::process::{Command, Output};

use crate::{repo_root, TestEnv};

/// Runs the `fmn` binary at `binary` (a test of fmn-cli has it as `env!("CARGO_BIN_EXE_fmn")`)
/// with `args`, on `env`'s resources.
pub fn fmn(binary: &str, env: &TestEnv, args: &[&str]) -> Output {
    fmn_with(binary, env, args, &[])
}

/// [`fmn`] with more variables set.
pub fn fmn_with(binary: &str, env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .env("FMN_RESOURCE_PREFIX", env.clients.names.prefix())
        .envs(vars.iter().copied())
        .current_dir(repo_root())
        .output()
        .expect("running fmn")
}

/// The standard output of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "fmn failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a run failed and said `text` on standard error.
pub fn fails_with(out: &Output, text: &str) {
    assert!(!out.status.success(), "fmn should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(text), "stderr: {stderr}");
}
