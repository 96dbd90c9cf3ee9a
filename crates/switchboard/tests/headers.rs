//! The security headers of a real hub (`switchboard demo`): every response says
//! `X-Content-Type-Options: nosniff`; the console and the pages people open from a prompt may
//! not be framed, leak no address in `Referer`, and run no inline script or style; the pages
//! people open load the hub's stylesheet and nothing else.

mod common;

use common::RunningDemo;
use reqwest::header::HeaderMap;

const TOKEN: &str = "headers-test-token-0123456789";

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .map_or("", |value| value.to_str().unwrap())
}

#[tokio::test]
async fn every_response_says_nosniff_and_pages_forbid_framing_and_inline_script() {
    let demo = RunningDemo::start(12, TOKEN, &[]);
    let hub = demo.hub_url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let responses = [
        (
            "API",
            http.get(format!("{hub}/api/v1/people")).bearer_auth(TOKEN),
        ),
        ("API error", http.get(format!("{hub}/api/v1/people"))),
        ("OpenAPI", http.get(format!("{hub}/api/openapi.json"))),
        ("health", http.get(format!("{hub}/healthz"))),
        (
            "webhook",
            http.post(format!("{hub}/webhooks/slack")).body("{}"),
        ),
        ("unknown webhook", http.post(format!("{hub}/webhooks/zoom"))),
        ("404", http.get(format!("{hub}/no/such/page"))),
        (
            "console 404",
            http.get(format!("{hub}/console/no/such/page")),
        ),
        (
            "asset",
            http.get(format!("{hub}/console/assets/console.js")),
        ),
        ("console", http.get(format!("{hub}/console/sign-in"))),
        (
            "console redirect",
            http.get(format!("{hub}/console/people")),
        ),
        ("prompt link", http.get(format!("{hub}/sync/no-such-link"))),
        ("callback", http.get(format!("{hub}/connect/callback"))),
    ];
    for (name, request) in responses {
        let response = request.send().await.unwrap();
        let headers = response.headers().clone();
        let status = response.status();
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{name} ({status})"
        );
        let page = response.text().await.unwrap();
        let console = name.starts_with("console");
        let person = name == "prompt link" || name == "callback";
        if console || person {
            assert_eq!(header(&headers, "x-frame-options"), "DENY", "{name}");
            let policy = header(&headers, "content-security-policy");
            assert!(
                policy.contains("frame-ancestors 'none'")
                    && policy.contains("default-src 'none'")
                    && !policy.contains("unsafe-inline"),
                "{name}: {policy}"
            );
            if console {
                assert!(policy.contains("script-src 'self'"), "{name}: {policy}");
                assert!(policy.contains("style-src 'self'"), "{name}: {policy}");
            }
            if person {
                // The hub's stylesheet, and nothing else: no script, image or connection.
                assert_eq!(
                    policy,
                    "default-src 'none'; style-src 'self'; base-uri 'none'; \
                     frame-ancestors 'none'",
                    "{name}"
                );
                assert!(
                    page.contains("<link rel=\"stylesheet\" href=\"/console/assets/console.css\">"),
                    "{name}: {page}"
                );
            }
            let referrer = header(&headers, "referrer-policy");
            assert_eq!(
                referrer,
                if person { "no-referrer" } else { "same-origin" },
                "{name}"
            );
        }
        if name == "console" {
            assert_eq!(status, 200);
            assert!(
                page.contains("<script src=\"/console/assets/console.js\""),
                "{page}"
            );
        }
        if console || person {
            assert!(
                !page.contains("<script>") && !page.contains("<style") && !page.contains(" style="),
                "{name}: {page}"
            );
        }
    }
}
