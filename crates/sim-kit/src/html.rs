//! What the simulator's server-rendered pages (consent pages, web views) share.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values, for the simulator's
/// server-rendered pages (consent pages, web views).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A hidden field of a consent form, carrying one of the authorize request's parameters through
/// the form. Every platform's consent pages write them alike, which is what lets the hub's demo
/// walk any of them as a browser would.
pub fn hidden_field(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// A simulated platform's page: its look (`style`, a stylesheet), what it says it is
/// (`footer`: whose simulation, not the vendor's product), and `body`. Every web view and
/// consent page is framed so, phones included.
pub fn page(title: &str, style: &str, footer: &str, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>{style}</style></head><body>{body}<p class=\"meta\">{}</p></body></html>",
        escape(title),
        escape(footer),
    ))
}

/// One person a [`people_picker`] offers: what the field is filled with, and what is shown.
pub struct Pick {
    pub value: String,
    pub label: String,
}

/// The field where a simulated person or admin says who they are, on a sign-in or consent
/// page: a labelled text field named `name`, offering `picks` (anyone else can be typed in),
/// with `value` already in it.
pub fn people_picker(name: &str, label: &str, value: &str, picks: &[Pick]) -> String {
    let list = format!("{}-choices", escape(name));
    let options: String = picks
        .iter()
        .map(|pick| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape(&pick.value),
                escape(&pick.label)
            )
        })
        .collect();
    format!(
        "<p><label>{label}<br><input name=\"{name}\" list=\"{list}\" size=\"48\" value=\"{value}\" \
         autocomplete=\"off\" autofocus></label></p><datalist id=\"{list}\">{options}</datalist>",
        label = escape(label),
        name = escape(name),
        value = escape(value),
    )
}

/// Undoes [`escape`], for reading back what a simulator's page shows.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The web views' policy: no inline script (the views' only script is [`LIVE_SCRIPT`], served
/// from the simulator), styles inline in the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// Adds [`CONTENT_SECURITY_POLICY`] to a web view's response.
pub fn with_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// The script that keeps a conversation page current: it polls the JSON named by the
/// `data-live` attribute of the element `#messages`, which answers
/// `{"messages": [{"id", "v", "html"}]}` — each message's element id, [`version`] and HTML.
pub const LIVE_SCRIPT: &str = include_str!("assets/live.js");

/// [`LIVE_SCRIPT`] as a response.
pub fn live_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LIVE_SCRIPT,
    )
        .into_response()
}

/// A short digest of a message's HTML, by which the live script sees that it changed.
pub fn version(html: &str) -> String {
    let mut hasher = DefaultHasher::new();
    html.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            super::escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn unescaping_undoes_escaping() {
        let text = r#"<a href="x">Tom &amp; 'Jerry'</a>"#;
        assert_eq!(super::unescape(&super::escape(text)), text);
    }
}
