//! What every job passes before it is accepted, on every backend, so that a refusal is an answer
//! and not a failure later:
//!
//! - the budgets known at intake (`crate::budget`): sources (URLs, text items, uploaded
//!   files), bytes per text item and per job, and the language segments those texts cut into at
//!   the requested granularity (by the same segmentation the model uses);
//! - `callback_url`, under the same address rules as downloads (`crate::fetch`): scheme, local
//!   names, and every address the host resolves to, unless private URLs are allowed.
//!
//! Budgets only found later (downloaded texts, archive members, media durations, frames) are
//! enforced by the engine as per-source errors.

use url::Url;

use crate::budget::{Budgets, Limit, LimitExceeded};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::fetch::Fetcher;
use crate::job::spec::JobSpec;
use crate::job::{JobRequest, UploadedFile};
use crate::media::{sniff, MediaKind};
use crate::models::segment::segment_count;

/// The intake checks, built once from the configuration.
pub struct Intake {
    budgets: Budgets,
    /// Vets `callback_url` (it never fetches anything here).
    fetcher: Fetcher,
}

impl Intake {
    /// Checks under `budgets`, with callbacks vetted by `fetcher`'s address rules.
    pub fn new(budgets: Budgets, fetcher: Fetcher) -> Self {
        Self { budgets, fetcher }
    }

    /// Refuses a job over a budget known now (413 or 422 naming the limit, the value seen and
    /// the setting) or with a callback that could never be delivered (422 on `callback_url`).
    pub async fn check(&self, job: &JobRequest) -> Result<(), ApiError> {
        check_budgets(&self.budgets, &job.spec, &job.files)?;
        if let Some(callback) = job.spec.callback_url() {
            self.check_callback(callback).await?;
        }
        Ok(())
    }

    async fn check_callback(&self, callback: &str) -> Result<(), FieldError> {
        let refused = |reason: String| {
            FieldError::new(
                ErrorCode::CallbackUrlRefused,
                "callback_url",
                format!("callback_url is refused: {reason}."),
            )
        };
        let url = Url::parse(callback).map_err(|e| refused(e.to_string()))?;
        self.fetcher.vet(&url).await.map_err(|e| refused(e.to_string()))
    }
}

/// The budgets a request's own contents can be held to before anything is fetched.
pub fn check_budgets(budgets: &Budgets, spec: &JobSpec, files: &[UploadedFile]) -> Result<(), LimitExceeded> {
    let sources = spec.urls().len() + spec.text().len() + files.len();
    if sources as u64 > budgets.job_sources {
        let field = [("urls", spec.urls().len()), ("text", spec.text().len()), ("file", files.len())]
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or("urls", |(field, _)| field);
        return Err(LimitExceeded::new(Limit::JobSources, budgets.job_sources, sources as u64, field));
    }
    let texts: Vec<(String, &[u8])> = spec
        .text()
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("text[{i}]"), t.as_bytes()))
        .chain(files.iter().enumerate().filter(|(_, f)| is_text(f)).map(|(i, f)| (format!("file[{i}]"), &f.bytes[..])))
        .collect();
    if let Some((field, text)) = texts.iter().find(|(_, t)| t.len() as u64 > budgets.text_item_bytes) {
        return Err(LimitExceeded::new(Limit::TextItemBytes, budgets.text_item_bytes, text.len() as u64, field));
    }
    let total: u64 = texts.iter().map(|(_, t)| t.len() as u64).sum();
    if total > budgets.job_text_bytes {
        return Err(LimitExceeded::new(Limit::JobTextBytes, budgets.job_text_bytes, total, "text"));
    }
    if let Some(granularity) = spec.models.language.as_ref().map(|l| l.granularity) {
        let segments: u64 =
            texts.iter().map(|(_, t)| segment_count(&String::from_utf8_lossy(t), granularity.as_str()) as u64).sum();
        if segments > budgets.job_segments {
            return Err(LimitExceeded::new(Limit::JobSegments, budgets.job_segments, segments, "text"));
        }
    }
    Ok(())
}

/// An uploaded file that is measured as text.
fn is_text(file: &UploadedFile) -> bool {
    sniff(&file.bytes, file.content_type.as_deref(), file.filename.as_deref()) == MediaKind::Text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn request(value: Value) -> JobSpec {
        JobSpec::from_v0(value, false).unwrap()
    }

    #[test]
    fn budgets_known_at_intake_name_the_limit_the_value_and_the_field() {
        let budgets =
            Budgets { text_item_bytes: 10, job_text_bytes: 15, job_segments: 3, job_sources: 2, ..Budgets::default() };
        let over = |value: Value| check_budgets(&budgets, &request(value), &[]).unwrap_err();
        let e = over(json!({"text": ["a", "b"], "urls": ["https://a.test/x"]}));
        assert_eq!((e.limit, e.seen, e.max), (Limit::JobSources, 3, 2));
        let e = over(json!({"text": ["short", "this is too long"]}));
        assert_eq!((e.limit, e.seen, e.field.as_str()), (Limit::TextItemBytes, 16, "text[1]"));
        let e = over(json!({"text": ["123456789", "123456789"]}));
        assert_eq!((e.limit, e.seen), (Limit::JobTextBytes, 18));
        let e = over(json!({"text": ["one two", "six ten"], "models": {"language": {}}}));
        assert_eq!((e.limit, e.seen), (Limit::JobSegments, 4));
        // The same words as two sentences fit; without the language model nothing is cut.
        let fits = json!({"text": ["one two.", "three."], "models": {"language": {"granularity": "sentence"}}});
        assert!(check_budgets(&budgets, &request(fits), &[]).is_ok());
        let fits = json!({"text": ["one two", "six ten"], "models": {"face": {}}});
        assert!(check_budgets(&budgets, &request(fits), &[]).is_ok());
    }

    #[test]
    fn uploaded_text_files_count_as_text_and_every_file_as_a_source() {
        let budgets = Budgets { text_item_bytes: 10, job_sources: 2, ..Budgets::default() };
        let file = |name: &str, bytes: &'static [u8]| UploadedFile {
            filename: Some(name.into()),
            content_type: None,
            bytes: bytes.into(),
        };
        let uploads = || JobSpec::from_v0(json!({}), true).unwrap();
        let e = check_budgets(&budgets, &uploads(), &[file("a.txt", b"far too long for it")]).unwrap_err();
        assert_eq!((e.limit, e.field.as_str()), (Limit::TextItemBytes, "file[0]"));
        let three = [file("a.txt", b"a"), file("b.txt", b"b"), file("c.txt", b"c")];
        assert_eq!(check_budgets(&budgets, &uploads(), &three).unwrap_err().limit, Limit::JobSources);
    }
}
