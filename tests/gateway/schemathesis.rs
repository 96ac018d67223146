//! Schemathesis (PyPI) against `/openapi.json` of a running gateway in front of the real
//! platform: no 5xx for any generated input, and every answer as the document says (status,
//! content type, schema, authentication). The one check left out, positive data acceptance,
//! would demand that every schema-valid body is accepted, but the services' rules (credit
//! code check characters, the industry chain catalog, ...) are stricter than a schema says.

use crate::support::*;
use kechuang_platform::Role;
use std::path::{Path, PathBuf};
use std::process::Command;

const REQUIREMENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/gateway/tools/requirements.txt"
);
/// The venv the test installs schemathesis into (and .ci/run too).
const VENV: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/schemathesis-venv");

fn pinned() -> String {
    std::fs::read_to_string(REQUIREMENTS)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("schemathesis=="))
        .expect("a pinned schemathesis")
        .trim_start_matches("schemathesis==")
        .trim()
        .to_string()
}

fn version_of(st: &Path) -> Option<String> {
    let out = Command::new(st).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().last().map(String::from)
}

/// `st` of the pinned version: `KC_SCHEMATHESIS`, else the venv, installed when missing.
fn schemathesis() -> PathBuf {
    let want = pinned();
    if let Ok(st) = std::env::var("KC_SCHEMATHESIS") {
        return PathBuf::from(st);
    }
    let st = Path::new(VENV).join("bin/st");
    if version_of(&st).as_deref() == Some(want.as_str()) {
        return st;
    }
    let how = format!(
        "schemathesis {want} is needed for this test and could not be installed.\n  \
         Install it with: python3 -m venv {VENV} && {VENV}/bin/pip install -r {REQUIREMENTS}\n  \
         (.ci/run does this), or set KC_SCHEMATHESIS to an `st` of version {want}."
    );
    eprintln!("installing schemathesis {want} into {VENV}");
    let venv = Command::new("python3").args(["-m", "venv", VENV]).status();
    assert!(
        matches!(venv, Ok(s) if s.success()),
        "python3 -m venv failed.\n{how}"
    );
    let pip = Command::new(Path::new(VENV).join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            REQUIREMENTS,
        ])
        .status();
    assert!(
        matches!(pip, Ok(s) if s.success()),
        "pip install failed.\n{how}"
    );
    assert_eq!(version_of(&st).as_deref(), Some(want.as_str()), "{how}");
    st
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let st = schemathesis();
    let stack = Stack::start().await;
    prepare(&stack, 1_000_000).await;
    let id = credit_code("FUYY00001");
    let token = stack.token(Role::Enterprise, "财务·模糊测试", Some(&id));
    let report = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("schemathesis-{}", uuid::Uuid::new_v4().simple()));
    let url = stack.url("/openapi.json");
    let auth = format!("Authorization: Bearer {token}");
    // One worker: with several, hypothesis 6's lambda-source cache raced ("AST constructor
    // recursion depth mismatch", a runtime error inside the tool) in 3 runs of 4 here.
    // st is synchronous: run it off the runtime that serves the gateway.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&st)
            .args(["run", &url, "--header", &auth])
            .args([
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
            ])
            .args([
                "--max-examples",
                "25",
                "--seed",
                "20261124",
                "--workers",
                "1",
            ])
            .args(["--request-timeout", "30", "--report", "junit"])
            .arg("--report-dir")
            .arg(&report)
            .env("NO_COLOR", "1")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("generated,") || l.contains("Tested:"))
        .collect();
    eprintln!("schemathesis: {}", summary.join(" | "));
    assert!(
        output.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Tested: 14"),
        "every operation was exercised:\n{stdout}"
    );
    stack.stop().await;
}
