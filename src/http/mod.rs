//! The HTTP surface: every route in one table, with the layers around them.
//!
//! Business rules live in `action/`, `backend/` and `engine/`; this folder only wires requests to
//! them and shapes errors. Routes are registered with their OpenAPI description
//! (`utoipa_axum::routes!`, see [`openapi`]), served at `GET /openapi.json`.
//!
//! `/healthz`, `/readyz`, `/metrics` and `/openapi.json` are open even when the server has a
//! token: probes and scrapers carry no secret, and none of them shows one (no job, key, URL or
//! caller appears in them; `/metrics` labels are closed sets, see `crate::telemetry::metrics`).
//! Keep the port off the public internet, or filter these paths at the proxy, when the job
//! counts themselves are sensitive. The playground page (`/`, `/playground`, see [`playground`])
//! is open too: it is code only, and reads jobs through the protected routes with the token the
//! person types into it.

pub mod action;
pub mod batch;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod playground;
pub mod server;
pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName};
use axum::response::IntoResponse;
use axum::{middleware as axum_mw, Extension, Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::ErrorCode;

use error::{ApiError, ErrorBody};
use openapi::{Health, Ready};

/// The OpenAPI document, as served.
#[derive(Clone)]
struct Document(Arc<String>);

/// Every route with its OpenAPI description, and the document they make.
pub fn routes(app: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let upload_limit = app.config.max_upload_bytes;
    let protected = OpenApiRouter::new()
        .routes(routes!(action::manifest))
        .routes(routes!(action::start))
        .routes(routes!(batch::list, batch::start).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(batch::details))
        .routes(routes!(batch::predictions))
        .routes(routes!(batch::artifacts))
        .routes(routes!(summary::summary))
        .route_layer(axum_mw::from_fn_with_state(app.clone(), middleware::require_token));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .merge(protected)
        .split_for_parts()
}

/// The full router.
pub fn router(app: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let (routes, document) = routes(&app);
    let document = Document(Arc::new(document.to_json().expect("the OpenAPI document serialises")));
    routes
        .merge(playground::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("the request handler panicked", "see the panic message above").into_response()
        }))
        .layer(axum_mw::from_fn(middleware::record_metrics))
        .layer(Extension(document))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(app)
}

/// Liveness: the process answers. Checks nothing else, so a slow dependency never gets a
/// healthy process restarted; `/readyz` tells whether it can take work.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive.", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the backend and each part it runs on.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the store, models and tools the backend needs",
    responses(
        (status = 200, description = "Ready, with each part's state.", body = Ready),
        (status = 503, description = "Not ready: the message says which part and why.", body = ErrorBody),
    ),
)]
async fn readyz(axum::extract::State(app): axum::extract::State<AppState>) -> Result<Json<Ready>, ApiError> {
    if let Some(outage) = app.shared_limits.as_ref().and_then(|s| s.outage()) {
        return Err(ApiError::Unavailable(format!("Not ready: {outage}")));
    }
    match tokio::time::timeout(Duration::from_secs(5), app.backend.ready()).await {
        Ok(Ok(mut components)) => {
            if let Some(shared) = &app.shared_limits {
                components.insert("redis", format!("ok ({})", shared.address()));
            }
            Ok(Json(Ready { status: "ready", components }))
        }
        Ok(Err(reason)) => Err(ApiError::Unavailable(format!("Not ready: {reason}"))),
        Err(_) => Err(ApiError::Unavailable("Not ready: the backend did not answer within 5 s".into())),
    }
}

/// The Prometheus metrics, the jobs per state counted in the store now.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "operations",
    summary = "Prometheus metrics (text format)",
    responses((status = 200, description = "Every `hume_action_*` series, in Prometheus text format 0.0.4.", content_type = "text/plain", body = String)),
)]
async fn metrics(axum::extract::State(app): axum::extract::State<AppState>) -> impl IntoResponse {
    let counted = tokio::time::timeout(Duration::from_secs(5), app.backend.jobs_by_status()).await;
    match counted {
        Ok(None) => {}
        Ok(Some(Ok(counts))) => crate::telemetry::metrics::jobs_by_status(Some(&counts)),
        Ok(Some(Err(e))) => {
            tracing::warn!(error = %e, "metrics: the store could not count the jobs");
            crate::telemetry::metrics::jobs_by_status(None);
        }
        Err(_) => {
            tracing::warn!("metrics: the store did not count the jobs within 5 s");
            crate::telemetry::metrics::jobs_by_status(None);
        }
    }
    let text = crate::telemetry::metrics::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "operations",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document.", content_type = "application/json", body = Object)),
)]
async fn openapi_json(Extension(Document(document)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.as_str().to_owned())
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such route. See GET /v1/actions for the routes this server offers.".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::BadRequest {
        code: ErrorCode::MethodNotAllowed,
        message: "This route does not take that HTTP method. See GET /v1/actions.".into(),
    }
}
