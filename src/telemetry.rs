//! Logging: `RUST_LOG` filters, `HUME_ACTION_LOG_JSON=true` switches to JSON lines; and the
//! Prometheus metrics `GET /metrics` serves ([`metrics`]).

pub mod metrics;

use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the global subscriber (call once, from `main`).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false)).init();
    } else {
        registry.with(fmt::layer()).init();
    }
}
