//! The console's files over HTTP: compiled in, strict headers, small. What it
//! does in a browser is scripts/console/run's (headless Chromium).
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_console_is_served_whole_with_a_strict_policy_and_under_100_kb() {
    let app = spawn_app().await;
    let redirect = app.get("/console").await;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.headers()["location"], "/console/");
    let mut total = 0;
    for (path, kind) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/style.css", "text/css; charset=utf-8"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], kind, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let body = resp.text().await.unwrap();
        // Only the documented API, and no token in a URL or in storage.
        assert!(
            !body.contains("localStorage") && !body.contains("sessionStorage"),
            "{path}"
        );
        assert!(!body.contains("innerHTML"), "{path}: values go in as text");
        total += body.len();
    }
    assert!(total < 100 * 1024, "{total} bytes");
}
