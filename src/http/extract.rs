//! Extractors whose rejections use our error shape.

use axum::extract::FromRequest;

use super::error::ApiError;

/// `axum::Json`, but a malformed, oversized or non-JSON body answers in our error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);
