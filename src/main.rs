//! `hume-action` binary: parse configuration, start logging, serve.

use clap::Parser;
use hume_action::{config::Config, startup, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_json);
    let app = match startup::Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("hume-action: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(startup::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hume-action: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
