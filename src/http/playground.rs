//! The playground: a page at `/` (and `/playground`) where a person starts a job the way the
//! action does, watches their recent jobs, and sees a job's summary as charts, a transcript that
//! seeks the media, and face boxes (`assets/playground/`).
//!
//! Every file is compiled into the binary (`include_bytes!`), so the page works offline and needs
//! no build step or CDN at run time; the bytes live in the executable's read-only data and cost
//! memory only once they are served. The page itself is public: it holds nothing but code. Every
//! job it shows comes from the token-protected routes, called by the browser with the bearer
//! token and Hume key the person typed (kept in `sessionStorage`, never sent to this module).
//!
//! Each answer carries an `ETag` (the file's sha256) and `Cache-Control: no-cache`, so a browser
//! revalidates with `If-None-Match` and gets a `304` until the binary changes. The HTML page is
//! sent with a strict Content-Security-Policy: scripts and styles only from this server (no inline
//! code, no `eval`), fetches only to this server, no frames, forms or base changes. Images and
//! media may also come from `blob:` (a file the person dropped, played back from their own disk)
//! and from any `https:`/`http:` address, because a job's sources are public URLs the caller gave
//! and the page shows that image or plays that recording beside its scores; such elements cannot
//! run code or be read by the page's scripts. Nothing from a job is ever inserted as HTML.
//!
//! The routes are not in the OpenAPI document: they are a page, not part of the API.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;

/// The Content-Security-Policy of the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data: https: http:; media-src 'self' blob: https: http:; connect-src 'self'; \
     font-src 'none'; object-src 'none'; frame-src 'none'; worker-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// One compiled-in file: its name under `/playground/assets/`, type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("../../assets/playground/index.html"),
};

/// The files the page loads.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/playground/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/playground/style.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/playground/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/playground/vendor/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/playground/vendor/uPlot.LICENSE"),
    },
];

/// Each file's `ETag`, in the order of `INDEX` then `ASSETS`, hashed on first use.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS)
        .map(|a| {
            let digest = hex::encode(Sha256::digest(a.bytes));
            HeaderValue::try_from(format!("\"{}\"", &digest[..32])).expect("hex is a valid header value")
        })
        .collect()
});

/// The page's routes, outside the token check and the OpenAPI document.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/playground", get(page)).route("/playground/assets/{name}", get(asset))
}

/// The page; a client that asks for JSON only gets the API's JSON 404, as before the page existed.
async fn page(headers: HeaderMap) -> Response {
    if wants_json_only(&headers) {
        return ApiError::NotFound("No such route. See GET /v1/actions for the routes this server offers.".into())
            .into_response();
    }
    let mut response = serve(&INDEX, &ETAGS[0], &headers);
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// One of the page's files.
async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => serve(&ASSETS[i], &ETAGS[i + 1], &headers),
        None => ApiError::NotFound(format!("The playground has no file {name:?}.")).into_response(),
    }
}

/// `asset`, or `304 Not Modified` when the browser holds this version.
fn serve(asset: &Asset, etag: &HeaderValue, headers: &HeaderMap) -> Response {
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag));
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
}

/// Whether `Accept` names JSON and no HTML (a browser always accepts `text/html` or `*/*`).
fn wants_json_only(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    accept.contains("json") && !accept.contains("text/html") && !accept.contains("*/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_a_client_that_asks_for_json_alone_is_told_there_is_no_route() {
        assert!(wants_json_only(&with(header::ACCEPT, "application/json")));
        assert!(!wants_json_only(&with(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")));
        assert!(!wants_json_only(&with(header::ACCEPT, "application/json, */*")));
        assert!(!wants_json_only(&HeaderMap::new()));
    }

    #[test]
    fn a_matching_etag_is_a_304_and_another_one_the_file() {
        let etag = &ETAGS[1];
        let fresh = serve(&ASSETS[0], etag, &with(header::IF_NONE_MATCH, etag.to_str().unwrap()));
        assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
        let weak = serve(&ASSETS[0], etag, &with(header::IF_NONE_MATCH, &format!("W/{}", etag.to_str().unwrap())));
        assert_eq!(weak.status(), StatusCode::NOT_MODIFIED);
        let stale = serve(&ASSETS[0], etag, &with(header::IF_NONE_MATCH, "\"0\""));
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(stale.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    }
}
