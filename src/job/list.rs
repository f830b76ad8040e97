//! The query of `GET /v0/batch/jobs` in v0's vocabulary, typed once at the edge.
//!
//! The same type is the route's OpenAPI parameters (`IntoParams`), what the `Backend` seam takes,
//! and what the engine turns into its store filter, so the list's vocabulary is written once.
//! Absent parameters stay absent (`None`): the engine applies v0's defaults, and the pass-through
//! backend forwards only what the caller gave. `page_token` stays opaque here, because on
//! `hume-batch` it is the upstream's token; the engine reads its own format.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ErrorCode, FieldError};
use crate::job::status::JobStatus;

/// `when`: whether `timestamp_ms` is a lower or an upper bound of the creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum When {
    CreatedBefore,
    CreatedAfter,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedBefore => "created_before",
            Self::CreatedAfter => "created_after",
        }
    }
}

/// `sort_by`: which timestamp the list is ordered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    Created,
    Started,
    Ended,
}

impl SortBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Started => "started",
            Self::Ended => "ended",
        }
    }
}

/// `direction` of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// The query of `GET /v0/batch/jobs`, as v0 takes it; other parameters are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Jobs per page (at most 100 on the engine backends; more is lowered). Default 50.
    #[param(minimum = 1)]
    pub limit: Option<i64>,
    /// The next page, from the `Link` header of the previous one.
    pub page_token: Option<String>,
    /// Only jobs in this state (may be repeated).
    #[param(rename = "status", explode = true, inline)]
    pub statuses: Vec<JobStatus>,
    /// Whether `timestamp_ms` is a lower or an upper bound of the creation time.
    #[param(inline)]
    pub when: Option<When>,
    /// Unix epoch milliseconds; default now.
    pub timestamp_ms: Option<i64>,
    /// The order's key. Default `created`.
    #[param(inline)]
    pub sort_by: Option<SortBy>,
    /// Default `desc`.
    #[param(inline)]
    pub direction: Option<Direction>,
}

impl ListQuery {
    /// Reads a query string's pairs; a value v0 would refuse is an `invalid_query` error naming
    /// the parameter and what it takes. Unknown parameters are ignored, as v0 does.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, FieldError> {
        let mut query = Self::default();
        for (key, value) in pairs {
            match key {
                "limit" => {
                    let limit = value.parse::<i64>().ok().filter(|n| *n >= 1);
                    query.limit = Some(limit.ok_or_else(|| invalid("limit", "a whole number of at least 1"))?);
                }
                "page_token" => query.page_token = Some(value.to_owned()),
                "status" => query.statuses.push(word(value, "status", "QUEUED, IN_PROGRESS, COMPLETED or FAILED")?),
                "when" => query.when = Some(word(value, "when", "created_before or created_after")?),
                "timestamp_ms" => {
                    query.timestamp_ms =
                        Some(value.parse().map_err(|_| invalid("timestamp_ms", "Unix epoch milliseconds"))?)
                }
                "sort_by" => query.sort_by = Some(word(value, "sort_by", "created, started or ended")?),
                "direction" => query.direction = Some(word(value, "direction", "asc or desc")?),
                _ => {}
            }
        }
        Ok(query)
    }

    /// The query as pairs, in v0's names, with `page_token` left out: what a `Link` to the next
    /// page, or a request to the upstream, starts from.
    pub fn pairs_without_page_token(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        pairs.extend(self.statuses.iter().map(|s| ("status", s.as_str().to_owned())));
        if let Some(when) = self.when {
            pairs.push(("when", when.as_str().to_owned()));
        }
        if let Some(timestamp_ms) = self.timestamp_ms {
            pairs.push(("timestamp_ms", timestamp_ms.to_string()));
        }
        if let Some(sort_by) = self.sort_by {
            pairs.push(("sort_by", sort_by.as_str().to_owned()));
        }
        if let Some(direction) = self.direction {
            pairs.push(("direction", direction.as_str().to_owned()));
        }
        pairs
    }

    /// Every pair, `page_token` included: the query as the caller meant it.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = self.pairs_without_page_token();
        if let Some(token) = &self.page_token {
            pairs.push(("page_token", token.clone()));
        }
        pairs
    }
}

/// One of a parameter's words, read with the same names serde uses for the type.
fn word<T: serde::de::DeserializeOwned>(value: &str, field: &str, allowed: &str) -> Result<T, FieldError> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(value))
        .map_err(|_| invalid(field, allowed))
}

fn invalid(field: &str, allowed: &str) -> FieldError {
    FieldError::new(ErrorCode::InvalidQuery, field, format!("{field} must be {allowed}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_v0_words_and_writes_them_back() {
        let pairs = [
            ("limit", "5"),
            ("status", "COMPLETED"),
            ("status", "FAILED"),
            ("when", "created_after"),
            ("timestamp_ms", "17"),
            ("sort_by", "ended"),
            ("direction", "asc"),
            ("page_token", "opaque"),
            ("other", "ignored"),
        ];
        let query = ListQuery::from_pairs(pairs).unwrap();
        assert_eq!(query.statuses, [JobStatus::Completed, JobStatus::Failed]);
        assert_eq!(
            (query.when, query.sort_by, query.direction),
            (Some(When::CreatedAfter), Some(SortBy::Ended), Some(Direction::Asc))
        );
        let pairs_written = query.pairs();
        let written: Vec<(&str, &str)> = pairs_written.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(written, pairs[..8]);
    }

    #[test]
    fn a_wrong_value_names_its_parameter() {
        for (key, value) in [
            ("limit", "0"),
            ("status", "DONE"),
            ("when", "now"),
            ("sort_by", "name"),
            ("direction", "up"),
            ("timestamp_ms", "x"),
        ] {
            let e = ListQuery::from_pairs([(key, value)]).unwrap_err();
            assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_query", key));
        }
    }
}
