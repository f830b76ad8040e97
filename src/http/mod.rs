//! The HTTP surface: every route in one table, with the layers around them.
//!
//! Business rules live in `action/`, `backend/` and `engine/`; this folder only wires requests to
//! them and shapes errors.

pub mod action;
pub mod batch;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod server;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware as axum_mw, Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::app::AppState;

use error::ApiError;

/// The full router.
pub fn router(app: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let upload_limit = app.config.max_upload_bytes;
    let protected = Router::new()
        .route("/v1/actions", get(action::manifest))
        .route("/v1/actions/hume-expression-measurement", post(action::start))
        .route("/v0/batch/jobs", get(batch::list).post(batch::start).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/v0/batch/jobs/{id}", get(batch::details))
        .route("/v0/batch/jobs/{id}/predictions", get(batch::predictions))
        .route("/v0/batch/jobs/{id}/artifacts", get(batch::artifacts))
        .route_layer(axum_mw::from_fn_with_state(app.clone(), middleware::require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("the request handler panicked".into()).into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(app)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ready = tokio::time::timeout(Duration::from_secs(5), app.backend.ready()).await;
    if let Some(outage) = app.shared_limits.as_ref().and_then(|s| s.outage()) {
        return Err(ApiError::Unavailable(format!("Not ready: {outage}")));
    }
    match ready {
        Ok(Ok(mut components)) => {
            if let Some(shared) = &app.shared_limits {
                components.insert("redis", format!("ok ({})", shared.address()));
            }
            Ok(Json(json!({ "status": "ready", "components": components })))
        }
        Ok(Err(reason)) => Err(ApiError::Unavailable(format!("Not ready: {reason}"))),
        Err(_) => Err(ApiError::Unavailable("Not ready: the backend did not answer within 5 s".into())),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such route. See GET /v1/actions for the routes this server offers.".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::BadRequest {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "This route does not take that HTTP method. See GET /v1/actions.".into(),
    }
}
