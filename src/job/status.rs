//! A job's status and its callback's state as the stores keep them: one enum each, bound into
//! SQL and read back through sqlx (a `TEXT` column in SQLite and PostgreSQL alike), and the
//! only place their stored spellings are written. Statements that filter on a fixed status take
//! it from [`JobStatus::sql`] (as they take the database clock), so no statement spells one.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// Where a job is in its life, as v0 names it (in a job's `state` and the list's `status` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
    Failed,
}

impl JobStatus {
    /// Every status, in the order a job goes through them.
    pub const ALL: [Self; 4] = [Self::Queued, Self::InProgress, Self::Completed, Self::Failed];

    /// v0's name, which is also the stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// The stored value as an SQL literal, for a statement that filters on a fixed status.
    pub const fn sql(self) -> &'static str {
        match self {
            Self::Queued => "'QUEUED'",
            Self::InProgress => "'IN_PROGRESS'",
            Self::Completed => "'COMPLETED'",
            Self::Failed => "'FAILED'",
        }
    }

    /// The status of a stored value.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == stored)
    }
}

/// Where a job's callback is: waiting to be sent (or being sent by the replica that claimed
/// it), delivered, or given up after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackState {
    Pending,
    Delivered,
    Failed,
}

impl CallbackState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    /// The stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    /// The stored value as an SQL literal, for a statement that filters on a fixed state.
    pub const fn sql(self) -> &'static str {
        match self {
            Self::Pending => "'PENDING'",
            Self::Delivered => "'DELIVERED'",
            Self::Failed => "'FAILED'",
        }
    }

    /// The state of a stored value.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == stored)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Both enums are stored as their names in a text column, in any database sqlx stores text in.
macro_rules! stored_as_text {
    ($ty:ty, $what:literal) => {
        impl<DB: Database> Type<DB> for $ty
        where
            for<'a> &'a str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <&str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <&str as Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            &'q str: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
                <&'q str as Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let stored = <&'r str as Decode<'r, DB>>::decode(value)?;
                Self::parse(stored).ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), stored).into())
            }
        }
    };
}

stored_as_text!(JobStatus, "job status");
stored_as_text!(CallbackState, "callback state");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_reads_back_from_its_stored_name_and_its_literal_quotes_it() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.sql(), format!("'{}'", status.as_str()));
        }
        for state in CallbackState::ALL {
            assert_eq!(CallbackState::parse(state.as_str()), Some(state));
            assert_eq!(state.sql(), format!("'{}'", state.as_str()));
        }
        assert_eq!(JobStatus::parse("DONE"), None);
    }

    #[test]
    fn serde_spells_each_status_as_it_is_stored() {
        for status in JobStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<JobStatus>(json).unwrap(), status);
        }
    }

    #[tokio::test]
    async fn a_status_is_bound_and_read_back_through_sqlite() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let back: (JobStatus, CallbackState) = sqlx::query_as("SELECT ?, ?")
            .bind(JobStatus::InProgress)
            .bind(CallbackState::Pending)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, (JobStatus::InProgress, CallbackState::Pending));
        let unknown = sqlx::query_scalar::<_, JobStatus>("SELECT 'DONE'").fetch_one(&pool).await.unwrap_err();
        assert!(unknown.to_string().contains("unknown job status \"DONE\""), "{unknown}");
    }
}
