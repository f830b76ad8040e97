//! Hume's own v0 Python SDK (`hume==0.13.13`, from PyPI) against the local engine.
//!
//! `scripts/test.sh` installs the SDK into `data/sdk-venv`; `HUME_ACTION_SDK_PYTHON` may name
//! another interpreter that has it.

use std::path::PathBuf;

use crate::helpers::spawn_local_app;

fn sdk_python() -> PathBuf {
    std::env::var_os("HUME_ACTION_SDK_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sdk-venv/bin/python"))
}

#[tokio::test]
async fn the_official_v0_python_sdk_starts_jobs_and_reads_them_unchanged() {
    let python = sdk_python();
    assert!(python.exists(), "{} is missing: run scripts/test.sh, which installs Hume's v0 SDK", python.display());
    let app = spawn_local_app(|_| {}).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/v0_roundtrip.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("HUME_ACTION_URL", &app.address)
        .env("HUME_API_KEY", "test-key")
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "SDK round trip failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
