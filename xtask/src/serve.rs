//! A static server for `web/` on 127.0.0.1, with the cross-origin-isolation headers that wasm
//! threads need (COOP/COEP), or without them (`--no-isolation`) to see what an ordinary host
//! gives: the single-threaded engine, until the service worker supplies the headers.
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, anyhow};

/// Serve until interrupted.
pub fn serve(web: &Path, port: u16, isolate: bool) -> Result<()> {
    if !web.join("pkg/files.json").is_file() {
        return Err(anyhow!("web/pkg is not built; run `cargo xtask serve` without --no-build"));
    }
    let server =
        tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| anyhow!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let csp = content_security_policy(&std::fs::read_to_string(web.join("index.html"))?)
        .ok_or_else(|| anyhow!("web/index.html has no Content-Security-Policy meta"))?;
    let isolation = if isolate { "cross-origin isolated (threads)" } else { "no isolation headers" };
    eprintln!("atomlens: serving {} on http://127.0.0.1:{port}/ ({isolation}); Ctrl-C stops", web.display());
    for req in server.incoming_requests() {
        let (status, body, ctype) = match resolve(web, req.url()) {
            Some(path) => match std::fs::read(&path) {
                Ok(b) => (200, b, content_type(&path)),
                Err(_) => (404, b"not found".to_vec(), "text/plain"),
            },
            None => (404, b"not found".to_vec(), "text/plain"),
        };
        let mut resp = tiny_http::Response::from_data(body).with_status_code(status);
        let mut all = headers(ctype, isolate);
        if ctype.starts_with("text/html") {
            all.push(("Content-Security-Policy", csp.clone()));
        }
        for (k, v) in all {
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp.add_header(h);
            }
        }
        let _ = req.respond(resp);
    }
    Ok(())
}

/// The policy of the page's `<meta http-equiv="Content-Security-Policy">`: written once, in
/// `index.html` (static hosts and the embed get it there), sent as a header too.
pub fn content_security_policy(html: &str) -> Option<String> {
    let at = html.find("http-equiv=\"Content-Security-Policy\"")?;
    let rest = &html[at..];
    let start = rest.find("content=\"")? + "content=\"".len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].to_string())
}

/// The response headers.
pub fn headers(ctype: &str, isolate: bool) -> Vec<(&'static str, String)> {
    let mut h = vec![("Content-Type", ctype.to_string()), ("Cache-Control", "no-cache".to_string())];
    if isolate {
        h.push(("Cross-Origin-Opener-Policy", "same-origin".into()));
        h.push(("Cross-Origin-Embedder-Policy", "require-corp".into()));
        h.push(("Cross-Origin-Resource-Policy", "same-origin".into()));
    }
    h
}

/// The file for a URL path, never outside `web`.
fn resolve(web: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let mut p = web.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => p.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if p.is_dir() {
        p.push("index.html");
    }
    p.is_file().then_some(p)
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "webmanifest" => "application/json",
        "md" | "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_web() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        assert!(resolve(&web, "/../Cargo.toml").is_none());
        assert!(resolve(&web, "/%2e%2e/Cargo.toml").is_none());
        assert_eq!(resolve(&web, "/?x=1"), Some(web.join("index.html")));
    }

    #[test]
    fn the_page_carries_a_strict_policy() {
        let html = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/index.html")).unwrap();
        let csp = content_security_policy(&html).unwrap();
        for want in ["default-src 'self'", "connect-src 'self'", "object-src 'none'"] {
            assert!(csp.contains(want), "{csp}");
        }
        let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
        assert!(!script.contains("'unsafe-eval'") && !script.contains("'unsafe-inline'"), "{script}");
    }

    #[test]
    fn isolation_headers_only_when_asked() {
        let names = |iso| headers("text/html", iso).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(names(true).contains(&"Cross-Origin-Embedder-Policy"));
        assert!(!names(false).contains(&"Cross-Origin-Opener-Policy"));
    }
}
