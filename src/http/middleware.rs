//! Request-level layers: the optional bearer token, the per-request tracing span, and the HTTP
//! request metrics.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::Span;

use super::error::ApiError;
use crate::app::AppState;

/// Requires `Authorization: Bearer <HUME_ACTION_TOKEN>` when the server has a token.
pub async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.config.token {
        let given = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default();
        // Compare digests, so the time taken says nothing about the token.
        if Sha256::digest(given.as_bytes()) != Sha256::digest(token.expose().as_bytes()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// The span every log line of a request is recorded in: method, path and request id only
/// (no headers, no query string: they may carry keys or signed URLs).
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
}

/// Counts and times every request by its route template (`MatchedPath`, never the raw path or
/// query) and status, for `/metrics`.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let since = std::time::Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    crate::telemetry::metrics::http_request(&method, route.as_deref(), response.status().as_u16(), since.elapsed());
    response
}
