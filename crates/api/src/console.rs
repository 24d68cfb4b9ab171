//! The web console: static HTML, CSS and ES-module JavaScript under `console/` at the
//! repository root, embedded into the binary at build time (no Node, no separate
//! server). `GET /` and `GET /console` redirect to `/console/`; `GET /console/` is the
//! page; `GET /console/{*path}` is one embedded file, 404 otherwise. Loading the files
//! needs no token: the page signs in with the admin token and sends it with every
//! `/api/v1` call it makes.
//!
//! Kept out of the route table of [`crate::routes`] (which must equal the OpenAPI
//! document): [`router`] is merged into the server's router.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: path under `console/`, bytes.
type File = (&'static str, &'static [u8]);

/// Embeds `console/<path>`.
macro_rules! file {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!("../../../console/", $path)) as &[u8],
        )
    };
}

/// Every file of the console.
const FILES: &[File] = &[
    file!("index.html"),
    file!("app.css"),
    file!("js/main.js"),
    file!("js/api.js"),
    file!("js/i18n.js"),
    file!("js/ui.js"),
    file!("js/charts.js"),
    file!("js/marketing.js"),
    file!("js/pages/dashboard.js"),
    file!("js/pages/cohort.js"),
    file!("js/pages/funnel.js"),
    file!("js/pages/ltv.js"),
    file!("js/pages/profiles.js"),
    file!("js/pages/profile.js"),
    file!("js/pages/segments.js"),
    file!("js/pages/tags.js"),
    file!("js/pages/journeys.js"),
    file!("js/pages/promotions.js"),
    file!("js/pages/campaigns.js"),
    file!("js/pages/reviews.js"),
    file!("vendor/uPlot.iife.min.js"),
    file!("vendor/uPlot.min.css"),
    file!("vendor/uPlot.LICENSE"),
];

/// The console's routes; merged into the server's router by [`crate::router`].
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route(
            "/console/",
            get(|h: HeaderMap| async move { respond("index.html", &h) }),
        )
        .route(
            "/console/{*path}",
            get(|Path(p): Path<String>, h: HeaderMap| async move { respond(&p, &h) }),
        )
}

async fn to_console() -> Redirect {
    Redirect::temporary("/console/")
}

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

/// A strong validator for a file's bytes (FNV-1a, 64 bits): the files change only with
/// the binary, so the browser revalidates and gets 304 until an upgrade.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// The answer for `console/<path>`: the file with its content type, cache validator
/// and `Cache-Control`; 304 when the browser's copy is current; 404 for anything else.
fn respond(path: &str, headers: &HeaderMap) -> Response {
    let Some((name, bytes)) = FILES.iter().find(|(p, _)| *p == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let tag = etag(bytes);
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)))],
        cache,
        *bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn files_have_their_content_types_and_a_cache_header() {
        for (path, ct) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("js/main.js", "text/javascript; charset=utf-8"),
            ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
            ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
        ] {
            let r = respond(path, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&r, header::CONTENT_TYPE), ct, "{path}");
            assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
            assert!(header_of(&r, header::ETAG).starts_with('"'));
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in ["", "nope.js", "../Cargo.toml", "js/", "js/pages/nope.js"] {
            assert_eq!(
                respond(path, &HeaderMap::new()).status(),
                StatusCode::NOT_FOUND,
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_current_copy_gets_304() {
        let tag = header_of(&respond("app.css", &HeaderMap::new()), header::ETAG).to_string();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&tag).unwrap());
        assert_eq!(respond("app.css", &h).status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(respond("app.css", &h).status(), StatusCode::OK);
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // Every `from "./x.js"` / `import("./pages/y.js")` in the JS resolves to a served file.
        for (path, bytes) in FILES.iter().filter(|(p, _)| p.starts_with("js/")) {
            let text = std::str::from_utf8(bytes).unwrap();
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for part in text
                .split(['"', '\''])
                .filter(|s| s.starts_with("./") || s.starts_with("../"))
            {
                if !part.ends_with(".js") {
                    continue;
                }
                let mut segs: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in part.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            segs.pop();
                        }
                        s => segs.push(s),
                    }
                }
                let target = segs.join("/");
                assert!(
                    FILES.iter().any(|(p, _)| *p == target),
                    "{path} imports {part} ({target}), which is not embedded"
                );
            }
        }
    }

    /// One request over a real connection to the console router; the raw response.
    async fn get_raw(path: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: Router = router();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn routes_redirect_serve_and_refuse() {
        for from in ["/", "/console"] {
            let r = get_raw(from).await;
            assert!(r.starts_with("HTTP/1.1 307"), "{from}: {r}");
            assert!(r.to_lowercase().contains("location: /console/\r\n"), "{r}");
        }
        let index = get_raw("/console/").await;
        assert!(index.starts_with("HTTP/1.1 200"), "{index}");
        assert!(index.contains("text/html"), "{index}");
        assert!(index.contains("<script type=\"module\""));
        let js = get_raw("/console/js/pages/dashboard.js").await;
        assert!(
            js.starts_with("HTTP/1.1 200") && js.contains("text/javascript"),
            "{js}"
        );
        assert!(get_raw("/console/missing.css").await.starts_with("HTTP/1.1 404"));
    }
}
