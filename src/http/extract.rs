//! Extractors whose rejections use our error shape.

use axum::extract::{FromRequest, FromRequestParts};

use super::error::ApiError;

/// `axum::Json`, but a malformed, oversized or non-JSON body answers in our error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// A job id from the path; a path axum cannot decode (not UTF-8) answers in our error shape.
#[derive(FromRequestParts, serde::Deserialize)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
#[serde(transparent)]
pub struct JobId(pub String);
