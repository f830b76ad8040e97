//! The playground page, run by hand: `cargo bench --bench page` (release) or
//! `cargo bench --bench page --profile dev` (the debug build). Prints numbers; asserts nothing.
//!
//! Starts the server binary on `local`, creates 50 text jobs (the language model measures each)
//! and waits for them to end, then:
//! - the server's idle RSS before the page was ever served;
//! - the page's load time in headless chromium (`benches/page_load.py`, Selenium from
//!   `data/browser-venv`): from the navigation's start until the 50-job list is rendered, on a
//!   first load (empty cache) and on 10 reloads (every file revalidated: `304`s);
//! - the server's idle RSS after its files alone were fetched 11 times (no API call), again after
//!   the 11 browser loads (which also read the manifest and the list), and the assets' size.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::{memory_of, server, wait_for_end};

const JOBS: usize = 50;
const RELOADS: usize = 10;

fn browser_python() -> PathBuf {
    std::env::var_os("HUME_ACTION_BROWSER_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/browser-venv/bin/python"))
}

/// The RSS (MB) of `pid` once it has been idle for two seconds.
fn idle_rss(pid: &str) -> f64 {
    std::thread::sleep(Duration::from_secs(2));
    memory_of(pid).0
}

fn main() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, address) = server(data.path(), &[("HUME_ACTION_WORKERS", "2")]);
    let pid = child.id().to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let mut ids = Vec::new();
        for i in 0..JOBS {
            let body = json!({"text": [format!("Order {i} is late again and I am upset about it. Thanks for the help.")],
                              "models": {"language": {"granularity": "utterance"}}});
            let answer: Value =
                client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
            ids.push(answer["job_id"].as_str().expect("a job id").to_owned());
        }
        for id in &ids {
            wait_for_end(&client, &address, id).await;
        }
    });
    let before = idle_rss(&pid);
    // The page's own files alone, as a browser fetches them (no API call): what serving it costs.
    runtime.block_on(async {
        for _ in 0..=RELOADS {
            for path in [
                "/",
                "/playground/assets/app.js",
                "/playground/assets/style.css",
                "/playground/assets/uPlot.iife.min.js",
                "/playground/assets/uPlot.min.css",
            ] {
                client.get(format!("{address}{path}")).send().await.unwrap().bytes().await.unwrap();
            }
        }
    });
    let served = idle_rss(&pid);

    let output = Command::new(browser_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/page_load.py"))
        .args([&address, &JOBS.to_string(), &RELOADS.to_string()])
        .output()
        .expect("the browser venv's python runs (scripts/test.sh makes data/browser-venv)");
    let after = idle_rss(&pid);
    let _ = child.kill();
    let _ = child.wait();
    if !output.status.success() {
        eprintln!("page_load.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
        return;
    }
    let timings: Value = serde_json::from_slice(&output.stdout).expect("page_load.py prints JSON");
    let mut cached: Vec<f64> = timings["cached_ms"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
    cached.sort_by(f64::total_cmp);
    let assets: u64 = ["index.html", "app.js", "style.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"]
        .iter()
        .map(|f| {
            std::fs::metadata(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/playground").join(f))
                .unwrap()
                .len()
        })
        .sum();
    println!("playground page, {JOBS} jobs listed, server at {address}");
    println!("  first load to list rendered:   {:.0} ms", timings["first_ms"].as_f64().unwrap_or(f64::NAN));
    println!(
        "  cached reloads ({RELOADS}):           median {:.0} ms, min {:.0} ms, max {:.0} ms",
        cached[cached.len() / 2],
        cached[0],
        cached[cached.len() - 1]
    );
    println!("  compiled-in assets:             {:.1} KB", assets as f64 / 1024.0);
    println!("  server idle RSS before the page: {before:.1} MB");
    println!("  after its files were served {} times: {served:.1} MB ({:+.1} MB)", RELOADS + 1, served - before);
    println!("  after 11 loads in the browser (the page's API calls too): {after:.1} MB ({:+.1} MB)", after - before);
    println!("  last load's requests [url, bytes transferred, status]: {}", timings["resources_last_load"]);
}
