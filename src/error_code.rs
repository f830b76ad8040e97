//! Every stable error code, with its HTTP status and whether a retry may succeed, in one table.
//!
//! A leaf module (it depends on nothing of ours), so that the budgets, the upstream errors and
//! the input parsers below `crate::error` can all name their codes, and the manifest's error
//! list can be tested against [`ErrorCode::ALL`] instead of against a search of the source.

use axum::http::StatusCode;

/// Declares [`ErrorCode`] from one table: variant, code, HTTP status, retryable.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal, $retryable:literal;)*) => {
        /// Every stable error code the server answers with, and what each one means on the wire:
        /// the code (listed in `action-manifest.json`), its HTTP status, and whether the same
        /// request may succeed later. The manifest is tested against [`ErrorCode::ALL`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as answered (`missing_urls`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The HTTP status it answers with (an upstream rejection passes Hume's own status
            /// through instead, see `crate::upstream::UpstreamError::status_for_caller`).
            pub fn status(self) -> StatusCode {
                let status = match self {
                    $(Self::$variant => $status,)*
                };
                StatusCode::from_u16(status).expect("the table's statuses are valid")
            }

            /// Whether the same request may succeed later.
            pub fn retryable(self) -> bool {
                match self {
                    $(Self::$variant => $retryable,)*
                }
            }
        }
    };
}

error_codes! {
    MissingUrls = "missing_urls", 422, false;
    InvalidUrls = "invalid_urls", 422, false;
    InvalidUrl = "invalid_url", 422, false;
    TooManyUrls = "too_many_urls", 422, false;
    InvalidToggle = "invalid_toggle", 422, false;
    UnfilledTemplate = "unfilled_template", 422, false;
    NoModelSelected = "no_model_selected", 422, false;
    InvalidBody = "invalid_body", 422, false;
    InvalidJson = "invalid_json", 400, false;
    UnsupportedMediaType = "unsupported_media_type", 415, false;
    BodyTooLarge = "body_too_large", 413, false;
    UploadTooLarge = "upload_too_large", 413, false;
    TextTooLarge = "text_too_large", 413, false;
    JobTextTooLarge = "job_text_too_large", 413, false;
    TooManySegments = "too_many_segments", 422, false;
    TooManySources = "too_many_sources", 422, false;
    MediaTooLong = "media_too_long", 422, false;
    JobMediaTooLong = "job_media_too_long", 422, false;
    TooManyFrames = "too_many_frames", 422, false;
    CallbackUrlRefused = "callback_url_refused", 422, false;
    RequestTimeout = "request_timeout", 408, false;
    IdempotencyKeyReused = "idempotency_key_reused", 422, false;
    Unauthorized = "unauthorized", 401, false;
    MissingApiKey = "missing_api_key", 401, false;
    UpstreamUnauthorized = "upstream_unauthorized", 401, false;
    UpstreamRejected = "upstream_rejected", 400, false;
    NotFound = "not_found", 404, false;
    RateLimited = "rate_limited", 429, true;
    UpstreamUnavailable = "upstream_unavailable", 502, true;
    Unavailable = "unavailable", 503, true;
    RateLimiterUnavailable = "rate_limiter_unavailable", 503, true;
    Internal = "internal", 500, true;
    InvalidIdempotencyKey = "invalid_idempotency_key", 422, false;
    JobNotFinished = "job_not_finished", 400, false;
    InvalidQuery = "invalid_query", 422, false;
    InvalidRequest = "invalid_request", 422, false;
    InvalidModel = "invalid_model", 422, false;
    InvalidSetting = "invalid_setting", 422, false;
    MissingInput = "missing_input", 422, false;
    MissingFile = "missing_file", 422, false;
    InvalidMultipart = "invalid_multipart", 400, false;
    UploadsNotSupported = "uploads_not_supported", 422, false;
    MethodNotAllowed = "method_not_allowed", 405, false;
    InvalidJobId = "invalid_job_id", 400, false;
    InvalidWait = "invalid_wait", 422, false;
    InvalidCallbackBody = "invalid_callback_body", 422, false;
    InvalidField = "invalid_field", 422, false;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
