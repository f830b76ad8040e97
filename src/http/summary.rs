//! `GET /v1/jobs/{id}/summary`: a job's answer in fields a workflow maps (`headline`,
//! `escalation.detected`, `scores.Anger`), held with `?wait=N` until the job ends.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::backend::SummaryQuery;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::http::extract::PathJobId;
use crate::http::openapi::{ApiKeyHeader, JobIdPath, ReadErrors, UpstreamErrors};
use crate::summary::Summary;

/// The summary's query.
#[allow(dead_code)] // the parameters are all that is used: the query is read by [`summary_query`]
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Seconds to hold the answer until the job ends (at most `HUME_ACTION_SUMMARY_MAX_WAIT_SECS`,
    /// 25 by default; more is lowered). 0 or absent: answer at once.
    #[param(minimum = 0)]
    wait: Option<f64>,
    /// The timeline's window in seconds (at least 0.1; a file is cut into at most 2,000 windows).
    /// Absent: chosen from each file's length, about 40 windows.
    #[param(minimum = 0.1)]
    window_secs: Option<f64>,
}

/// `GET /v1/jobs/{id}/summary`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/summary",
    operation_id = "get_job_summary",
    tag = "action",
    summary = "A job's answer: headline, top expressions, escalation, per-file timelines",
    params(JobIdPath, SummaryParams, ApiKeyHeader),
    responses(
        (status = 200, description = "The job's summary, as far as it has run.", body = Summary),
        ReadErrors,
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn summary(
    State(app): State<AppState>,
    headers: HeaderMap,
    PathJobId(id): PathJobId,
    RawQuery(query): RawQuery,
) -> Result<Json<Summary>, ApiError> {
    let query = summary_query(query.as_deref().unwrap_or_default(), app.config.summary_max_wait_secs)?;
    Ok(Json(app.backend.summary(&app.caller(&headers), &id, query).await?))
}

/// `wait` (lowered to `max_wait` seconds) and `window_secs`, checked.
fn summary_query(query: &str, max_wait: u64) -> Result<SummaryQuery, FieldError> {
    let mut out = SummaryQuery::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "wait" => out.wait = wait_secs("wait", &value, max_wait)?,
            "window_secs" => {
                let secs = value.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.1).ok_or_else(|| {
                    FieldError::new(
                        ErrorCode::InvalidQuery,
                        "window_secs",
                        format!("window_secs must be a number of seconds of at least 0.1; got {value:?}."),
                    )
                })?;
                out.window_secs = Some(secs);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A wait in seconds from `field`: a number of at least 0, lowered to `max_wait`.
pub fn wait_secs(field: &str, value: &str, max_wait: u64) -> Result<std::time::Duration, FieldError> {
    let secs = value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
        FieldError::new(
            ErrorCode::InvalidWait,
            field,
            format!("{field} must be a number of seconds from 0 to {max_wait}; got {value:?}."),
        )
    })?;
    Ok(std::time::Duration::from_secs_f64(secs.min(max_wait as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_checked_and_the_wait_lowered_to_its_cap() {
        let q = summary_query("wait=60&window_secs=5", 25).unwrap();
        assert_eq!((q.wait.as_secs(), q.window_secs), (25, Some(5.0)));
        assert_eq!(summary_query("", 25).unwrap(), SummaryQuery::default());
        let e = summary_query("wait=-1", 25).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_wait", "wait"));
        assert_eq!(summary_query("window_secs=0", 25).unwrap_err().field, "window_secs");
    }
}
