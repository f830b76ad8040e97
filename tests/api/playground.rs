//! The playground page (`src/http/playground.rs`): served at `/` and `/playground` with its
//! compiled-in assets, a strict Content-Security-Policy and `ETag`s; open when the server has a
//! token while the routes it reads stay closed. Then the page itself in Debian's chromium,
//! headless, driven through chromium-driver by Selenium (`tests/browser/playground.py`) against
//! the real binary on the local backend: jobs started from the page (text, uploads, a public
//! URL), their charts, transcript and faces, hostile names, and the sign-in prompt.
//!
//! `scripts/test.sh` installs chromium and chromium-driver (`scripts/install-system.sh --tests`)
//! and Selenium into `data/browser-venv`; `HUME_ACTION_BROWSER_PYTHON` may name another
//! interpreter that has it. Screenshots go to `HUME_ACTION_SCREENSHOT_DIR`, else
//! `target/playground-screenshots`.

use std::path::{Path, PathBuf};

use hume_action::http::playground::CONTENT_SECURITY_POLICY;
use serde_json::Value;

use crate::helpers::{spawn_batch_app, status_and_json};
use crate::media_files::MEDIA;
use crate::recovery::Server;

/// The files the page loads, from its HTML, with the content type each must have.
fn assets_of(html: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for piece in html.split("\"/playground/assets/").skip(1) {
        let name = piece.split('"').next().unwrap().to_owned();
        let kind = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        out.push((name, kind));
    }
    out
}

#[tokio::test]
async fn the_page_is_served_at_the_root_and_at_playground_with_a_strict_policy() {
    let app = spawn_batch_app(|_| {}).await;
    for path in ["/", "/playground", "/?job=0b5e2c9e-1111-4a4a-9c9c-000000000000"] {
        let response =
            app.client.get(format!("{}{path}", app.address)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        let html = response.text().await.unwrap();
        assert!(html.contains("<h2 id=\"start-title\">Start a job</h2>"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("style=\""), "no inline script or style");
    }
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "connect-src 'self';",
        "frame-ancestors 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(part), "{part}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"), "no unsafe-inline or unsafe-eval");
}

#[tokio::test]
async fn every_asset_the_page_names_is_served_with_its_type_and_revalidates_with_304() {
    let app = spawn_batch_app(|_| {}).await;
    let html = app.get("/").await.text().await.unwrap();
    let assets = assets_of(&html);
    let names: Vec<&str> = assets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["uPlot.min.css", "style.css", "uPlot.iife.min.js", "app.js", "uPlot.LICENSE"]);
    for (name, kind) in &assets {
        let response = app.get(&format!("/playground/assets/{name}")).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], *kind, "{name}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        assert!(!body.is_empty(), "{name}");
        let again = app
            .client
            .get(format!("{}/playground/assets/{name}", app.address))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // The page itself revalidates too, and another version's tag gets the page.
    let first = app.get("/").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let cached = app.client.get(format!("{}/", app.address)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    let stale = app.client.get(format!("{}/", app.address)).header("if-none-match", "\"old\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    // The vendored chart library is the one VENDOR.md records.
    let uplot = app.get("/playground/assets/uPlot.iife.min.js").await.text().await.unwrap();
    assert!(uplot.starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */"));
}

#[tokio::test]
async fn a_json_client_at_the_root_and_an_unknown_asset_get_the_api_s_json_404() {
    let app = spawn_batch_app(|_| {}).await;
    let response =
        app.client.get(format!("{}/", app.address)).header("accept", "application/json").send().await.unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = status_and_json(app.get("/playground/assets/secrets.env").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let response = app.client.post(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn with_a_token_the_page_is_open_and_the_routes_it_reads_are_not() {
    let app = spawn_batch_app(|c| c.token = Some("page-token".parse().unwrap())).await;
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/playground/assets/app.js").await.status(), 200);
    for path in ["/v1/actions", "/v0/batch/jobs"] {
        assert_eq!(app.get(path).await.status(), 401, "{path}");
    }
    let manifest: Value = app
        .client
        .get(format!("{}/v1/actions", app.address))
        .bearer_auth("page-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["actions"][0]["fields"][1]["key"], "models_face", "the page reads its toggles here");
}

// ------------------------------------------------------------------------------ in a browser

fn browser_python() -> PathBuf {
    std::env::var_os("HUME_ACTION_BROWSER_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/browser-venv/bin/python"))
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("HUME_ACTION_SCREENSHOT_DIR")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/playground-screenshots"))
}

/// Runs `tests/browser/playground.py MODE ADDRESS` and checks its `cases` all passed.
async fn run_browser(mode: &str, address: &str, env: &[(&str, String)], cases: usize) {
    let python = browser_python();
    assert!(python.exists(), "{} is missing: run scripts/test.sh, which installs Selenium", python.display());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/playground.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args([mode, address])
        .env("PLAYGROUND_SCREENSHOTS", screenshot_dir())
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser tests failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("\n{cases} passed, 0 failed")), "{stdout}\n{stderr}");
}

fn ffmpeg(args: &[&str]) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs (scripts/test.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Two people side by side: `assets/face/astronaut.jpg` and its mirror image (1024x512, each face
/// about 95x100 px). `two_faces.jpg` has faces of 52 px, under the default `min_face_size` (60)
/// the page's jobs use, so it would show no box.
fn two_faces_image(dir: &Path) -> PathBuf {
    let faces = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/face");
    let out = dir.join("two_people.jpg");
    let (left, right) = (faces.join("astronaut.jpg"), faces.join("astronaut_flip.jpg"));
    let (left, right, path) = (left.to_str().unwrap(), right.to_str().unwrap(), out.to_str().unwrap());
    ffmpeg(&["-i", left, "-i", right, "-filter_complex", "hstack", "-q:v", "3", path]);
    out
}

/// Two seconds of `image` as a 25 fps video.
fn still_video(image: &Path) -> PathBuf {
    let clip = image.with_extension("mp4");
    let (input, path) = (image.to_str().unwrap(), clip.to_str().unwrap());
    let encode = ["-t", "2", "-r", "25", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"];
    ffmpeg(&[&["-loop", "1", "-i", input][..], &encode, &[path]].concat());
    clip
}

#[tokio::test]
async fn in_a_browser_jobs_started_from_the_page_show_charts_transcripts_faces_and_names_as_text() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("HUME_ACTION_WORKERS", "2")]);
    let image = two_faces_image(data.path());
    // The recording also at a public URL, on a loopback file host.
    let host = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/call.mp3"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(MEDIA.bytes("speech.mp3"), "audio/mpeg"))
        .mount(&host)
        .await;
    let env = [
        ("PLAYGROUND_AUDIO", MEDIA.path("speech.mp3").to_string_lossy().into_owned()),
        ("PLAYGROUND_AUDIO_URL", format!("{}/call.mp3", host.uri())),
        ("PLAYGROUND_VIDEO", still_video(&image).to_string_lossy().into_owned()),
        ("PLAYGROUND_IMAGE", image.to_string_lossy().into_owned()),
    ];
    run_browser("open", &server.address, &env, 6).await;
}

#[tokio::test]
async fn in_a_browser_a_server_with_a_token_shows_the_sign_in_prompt_first() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("HUME_ACTION_TOKEN", "browser-token-123")]);
    run_browser("token", &server.address, &[("PLAYGROUND_TOKEN", "browser-token-123".to_owned())], 1).await;
}
