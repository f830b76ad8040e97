//! Extractors whose rejections use our error shape, and the body caps: a JSON body is held to
//! `HUME_ACTION_MAX_BODY_BYTES` on every route, also on `POST /v0/batch/jobs`, whose multipart
//! uploads may be as large as `HUME_ACTION_MAX_UPLOAD_BYTES`.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::app::AppState;
use crate::budget::{Limit, LimitExceeded};
use crate::error::ErrorCode;
use crate::job::list::ListQuery;
use crate::job::JobId;

/// `axum::Json`, but capped at `HUME_ACTION_MAX_BODY_BYTES` whatever the route's own limit, and a
/// malformed, oversized or non-JSON body answers in our error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, ApiError> {
        let max = app.config.max_body_bytes as u64;
        let (parts, body) = request.into_parts();
        let bytes = read_capped(body, &parts.headers, max, Limit::BodyBytes, "body").await?;
        let axum::Json(value) =
            axum::Json::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), app).await?;
        Ok(Self(value))
    }
}

/// The body's declared length, when it has one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Refuses a body whose `Content-Length` is over `max` before reading any of it.
pub fn check_declared_length(headers: &HeaderMap, max: u64, limit: Limit, field: &str) -> Result<(), ApiError> {
    match declared_length(headers) {
        Some(length) if length > max => Err(LimitExceeded::new(limit, max, length, field).into()),
        _ => Ok(()),
    }
}

/// Reads a whole body of at most `max` bytes; one over it (declared, or found while reading) is
/// `limit` exceeded.
async fn read_capped(body: Body, headers: &HeaderMap, max: u64, limit: Limit, field: &str) -> Result<Bytes, ApiError> {
    check_declared_length(headers, max, limit, field)?;
    let mut stream = body.into_data_stream();
    let mut read = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: ErrorCode::InvalidJson,
            message: format!("The request body could not be read: {e}."),
        })?;
        let seen = (read.len() + chunk.len()) as u64;
        if seen > max {
            return Err(LimitExceeded::new(limit, max, seen, field).at_least().into());
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.freeze())
}

/// A job id from the path; a path axum cannot decode (not UTF-8) answers in our error shape.
#[derive(FromRequestParts, serde::Deserialize)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
#[serde(transparent)]
pub struct PathJobId(pub JobId);

/// The list query, read from the query string (repeated `status` included); a value v0 would
/// refuse answers 400 `invalid_query` naming the parameter.
impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
        Ok(ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?)
    }
}
