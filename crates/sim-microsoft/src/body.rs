//! Chat-message bodies in the web view: a Graph `chatMessage` body shown as Teams shows it, and
//! what a person types turned into one.
//!
//! A body with `contentType: html` is shown through an allow-list: `b`/`strong`, `i`/`em`,
//! `u`, `s`/`strike`/`del`, `code`, `pre`, `p`, `div`, `span`, `br`, `blockquote`, lists, `a` with
//! an `http`/`https` `href`, `<at id>` mentions and Teams' emoji (`<emoji alt>`, emoji `<img>`),
//! with no attributes but `href`. `script`, `style` and the like are dropped with their content;
//! any other element is replaced by its content. The HTML is tokenised by `html5gum`, a
//! WHATWG tokenizer that recovers from any malformed input as a browser would, so what is
//! written back is well-formed and escaped.

use html5gum::{Token, Tokenizer};
use switchboard_sim_kit::html::escape;

/// Elements kept, by the name they are written as.
fn kept(name: &str) -> Option<&'static str> {
    Some(match name {
        "b" => "b",
        "strong" => "strong",
        "i" => "i",
        "em" => "em",
        "u" => "u",
        "s" | "strike" | "del" => "s",
        "code" => "code",
        "pre" => "pre",
        "p" => "p",
        "div" => "div",
        "span" => "span",
        "blockquote" => "blockquote",
        "ul" => "ul",
        "ol" => "ol",
        "li" => "li",
        _ => return None,
    })
}

/// Elements whose content is not text to show.
const DROPPED_WITH_CONTENT: [&str; 16] = [
    "script", "style", "template", "iframe", "object", "embed", "noscript", "noembed", "noframes",
    "textarea", "title", "head", "svg", "math", "select", "xmp",
];

/// Elements nested deeper than this are read as their content, so a hostile body cannot make
/// the page arbitrarily deep.
const MAX_DEPTH: usize = 32;

/// What an open element became: its name in the source, and the tag written for it, if any.
struct Open {
    source: String,
    written: Option<&'static str>,
}

/// An `href` as a browser reads it (tabs and line breaks removed, the ends trimmed), if it is
/// an `http` or `https` URL.
fn web_url(href: &str) -> Option<String> {
    let url: String = href
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let url = url.trim_matches(|c: char| c <= ' ');
    let (scheme, _) = url.split_once(':')?;
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https").then(|| url.to_owned())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An HTML body as safe HTML for the page.
pub fn sanitise(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut open: Vec<Open> = Vec::new();
    // While inside a dropped element: its name and how many of it are open.
    let mut dropping: Option<(String, usize)> = None;
    for token in Tokenizer::new(html).flatten() {
        if let Some((name, depth)) = &mut dropping {
            match &token {
                Token::StartTag(tag) if text(&tag.name) == *name && !tag.self_closing => {
                    *depth += 1;
                }
                Token::EndTag(tag) if text(&tag.name) == *name => {
                    *depth -= 1;
                    if *depth == 0 {
                        dropping = None;
                    }
                }
                _ => {}
            }
            continue;
        }
        match token {
            Token::StartTag(tag) => {
                let name = text(&tag.name);
                let attribute = |wanted: &str| {
                    tag.attributes
                        .iter()
                        .find(|(key, _)| text(key) == wanted)
                        .map(|(_, value)| text(&value.value))
                };
                if DROPPED_WITH_CONTENT.contains(&name.as_str()) {
                    if !tag.self_closing {
                        dropping = Some((name, 1));
                    }
                    continue;
                }
                match name.as_str() {
                    "br" => out.push_str("<br>"),
                    "emoji" => out.push_str(&escape(&attribute("alt").unwrap_or_default())),
                    "img" => {
                        let emoji = attribute("itemtype")
                            .is_some_and(|kind| kind.ends_with("schema.skype.com/Emoji"));
                        out.push_str(&escape(&match (emoji, attribute("alt")) {
                            (true, Some(alt)) => alt,
                            _ => "🖼".to_owned(),
                        }));
                    }
                    _ if tag.self_closing || open.len() >= MAX_DEPTH => {}
                    "a" => {
                        let written =
                            attribute("href")
                                .and_then(|href| web_url(&href))
                                .map(|url| {
                                    out.push_str(&format!(
                                        "<a href=\"{}\" rel=\"noopener noreferrer\">",
                                        escape(&url)
                                    ));
                                    "a"
                                });
                        open.push(Open {
                            source: name,
                            written,
                        });
                    }
                    "at" => {
                        out.push_str("<span class=\"mention\">");
                        open.push(Open {
                            source: name,
                            written: Some("span"),
                        });
                    }
                    _ => {
                        let written = kept(&name);
                        if let Some(tag) = written {
                            out.push_str(&format!("<{tag}>"));
                        }
                        open.push(Open {
                            source: name,
                            written,
                        });
                    }
                }
            }
            Token::EndTag(tag) => {
                let name = text(&tag.name);
                if let Some(position) = open.iter().rposition(|o| o.source == name) {
                    while open.len() > position {
                        close(&mut open, &mut out);
                    }
                }
            }
            Token::String(value) => out.push_str(&escape(&text(&value.value))),
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    while !open.is_empty() {
        close(&mut open, &mut out);
    }
    out
}

fn close(open: &mut Vec<Open>, out: &mut String) {
    if let Some(Open {
        written: Some(tag), ..
    }) = open.pop()
    {
        out.push_str(&format!("</{tag}>"));
    }
}

/// The text of an HTML body, as a preview or a field to edit shows it.
pub fn plain_text(html: &str) -> String {
    let mut out = String::new();
    let mut dropping = 0usize;
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = text(&tag.name);
                if DROPPED_WITH_CONTENT.contains(&name.as_str()) && !tag.self_closing {
                    dropping += 1;
                } else if dropping == 0 && matches!(name.as_str(), "br" | "p" | "div" | "li") {
                    out.push(' ');
                }
            }
            Token::EndTag(tag) if DROPPED_WITH_CONTENT.contains(&text(&tag.name).as_str()) => {
                dropping = dropping.saturating_sub(1);
            }
            Token::String(value) if dropping == 0 => out.push_str(&text(&value.value)),
            _ => {}
        }
    }
    out.replace('\u{a0}', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `text` body as HTML: escaped, its line breaks kept.
pub fn text_html(content: &str) -> String {
    escape(content).replace('\n', "<br>")
}

/// What a person types in the composer, as an HTML body: `**bold**`, `*italic*` or
/// `_italic_`, `~~strike~~`, `` `code` ``, `[label](https://…)`, bare `http(s)://` links and
/// line breaks; everything else is text.
pub fn compose(input: &str) -> String {
    let lines: Vec<String> = input
        .trim()
        .lines()
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            let mut out = String::new();
            inline(&chars, &mut out);
            out
        })
        .collect();
    format!("<p>{}</p>", lines.join("<br>"))
}

fn starts_with(chars: &[char], at: usize, pattern: &str) -> bool {
    pattern
        .chars()
        .enumerate()
        .all(|(i, c)| chars.get(at + i) == Some(&c))
}

fn find(chars: &[char], from: usize, pattern: &str) -> Option<usize> {
    (from..chars.len()).find(|&at| starts_with(chars, at, pattern))
}

fn boundary_before(chars: &[char], at: usize) -> bool {
    at == 0 || !chars[at - 1].is_alphanumeric()
}

fn push_text(chars: &[char], out: &mut String) {
    out.push_str(&escape(&chars.iter().collect::<String>()));
}

fn inline(chars: &[char], out: &mut String) {
    let mut at = 0;
    while at < chars.len() {
        if let Some((consumed, html)) = markup_at(chars, at) {
            out.push_str(&html);
            at += consumed;
        } else {
            push_text(&chars[at..=at], out);
            at += 1;
        }
    }
}

/// The markup starting at `at`, as how many characters it takes and its HTML.
fn markup_at(chars: &[char], at: usize) -> Option<(usize, String)> {
    let wrapped = |marker: &str, tag: &str| -> Option<(usize, String)> {
        let width = marker.chars().count();
        if !starts_with(chars, at, marker) || !boundary_before(chars, at) {
            return None;
        }
        let start = at + width;
        if chars.get(start).is_none_or(|c| c.is_whitespace()) {
            return None;
        }
        let end = (start + 1..chars.len()).find(|&end| {
            starts_with(chars, end, marker)
                && !chars[end - 1].is_whitespace()
                && chars.get(end + width).is_none_or(|c| !c.is_alphanumeric())
        })?;
        let mut html = format!("<{tag}>");
        if tag == "code" {
            push_text(&chars[start..end], &mut html);
        } else {
            inline(&chars[start..end], &mut html);
        }
        html.push_str(&format!("</{tag}>"));
        Some((end + width - at, html))
    };
    match chars[at] {
        '`' => wrapped("`", "code"),
        '*' => wrapped("**", "b").or_else(|| wrapped("*", "i")),
        '_' => wrapped("_", "i"),
        '~' => wrapped("~~", "s"),
        '[' => {
            let middle = find(chars, at + 1, "](")?;
            let end = find(chars, middle + 2, ")")?;
            let url: String = chars[middle + 2..end].iter().collect();
            let url = web_url(&url).filter(|url| !url.contains(char::is_whitespace))?;
            let mut html = format!("<a href=\"{}\">", escape(&url));
            inline(&chars[at + 1..middle], &mut html);
            html.push_str("</a>");
            Some((end + 1 - at, html))
        }
        'h' if boundary_before(chars, at)
            && (starts_with(chars, at, "https://") || starts_with(chars, at, "http://")) =>
        {
            let mut end = (at..chars.len())
                .find(|&end| chars[end].is_whitespace())
                .unwrap_or(chars.len());
            // Punctuation that ends a sentence is not part of the link.
            while end > at && matches!(chars[end - 1], '.' | ',' | ';' | ':' | '!' | '?' | ')') {
                end -= 1;
            }
            let url: String = chars[at..end].iter().collect();
            Some((end - at, format!("<a href=\"{0}\">{0}</a>", escape(&url))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{compose, plain_text, sanitise};

    #[test]
    fn allowed_markup_is_kept() {
        let cases = [
            (
                "<p>Hi <at id=\"0\">Ada Lovelace</at>, <b>bold</b> <strong>strong</strong> <i>i</i> <em>em</em> <s>s</s> <strike>x</strike> <code>a&lt;b</code></p>",
                "<p>Hi <span class=\"mention\">Ada Lovelace</span>, <b>bold</b> <strong>strong</strong> <i>i</i> <em>em</em> <s>s</s> <s>x</s> <code>a&lt;b</code></p>",
            ),
            (
                "<div>one<br>two</div><pre>let x = 1;</pre><ul><li>a</li></ul>",
                "<div>one<br>two</div><pre>let x = 1;</pre><ul><li>a</li></ul>",
            ),
            (
                "<a href=\"https://hub.example/link?a=1&amp;b=2\" target=\"_blank\">Sync now</a>",
                "<a href=\"https://hub.example/link?a=1&amp;b=2\" rel=\"noopener noreferrer\">Sync now</a>",
            ),
            ("<emoji alt=\"😀\"></emoji> &nbsp;&amp;", "😀 \u{a0}&amp;"),
            ("<b>unclosed <i>nested", "<b>unclosed <i>nested</i></b>"),
            ("stray</b> end", "stray end"),
        ];
        for (html, expected) in cases {
            assert_eq!(sanitise(html), expected, "{html}");
        }
    }

    #[test]
    fn injection_attempts_come_out_inert() {
        let cases = [
            ("<script>alert(1)</script>after", "after"),
            ("<img src=x onerror=alert(1)>", "🖼"),
            ("<a href=\"javascript:alert(1)\">x</a>", "x"),
            ("<a href=\" JaVaScRiPt:alert(1)\">x</a>", "x"),
            ("<a href=\"java&#x09;script:alert(1)\">x</a>", "x"),
            ("<a href=\"data:text/html,<script>\">x</a>", "x"),
            ("<b onclick=\"alert(1)\" style=\"x\">b</b>", "<b>b</b>"),
            ("<style>*{display:none}</style><p>shown</p>", "<p>shown</p>"),
            ("<iframe src=\"https://x\"></iframe>ok", "ok"),
            ("<svg><script>alert(1)</script></svg>ok", "ok"),
            ("<textarea></textarea><script>alert(1)</script>", ""),
            (
                "<a href=\"https://x.example/\" onmouseover=\"alert(1)\">x</a>",
                "<a href=\"https://x.example/\" rel=\"noopener noreferrer\">x</a>",
            ),
            (
                "<<script>script>alert(1)<</script>/script>",
                "&lt;/script&gt;",
            ),
            ("<!-- <script>alert(1)</script> -->", ""),
            ("&lt;script&gt;", "&lt;script&gt;"),
            ("<p title=\"\"><img src=x onerror=alert(1)//\">", "<p>🖼</p>"),
        ];
        for (html, expected) in cases {
            assert_eq!(sanitise(html), expected, "{html}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let html = "<b>".repeat(1000) + "deep";
        let out = sanitise(&html);
        assert_eq!(out.matches("<b>").count(), super::MAX_DEPTH);
        assert!(out.ends_with(&"</b>".repeat(super::MAX_DEPTH)));
    }

    #[test]
    fn plain_text_of_a_body() {
        assert_eq!(
            plain_text(
                "<p>Hi <at id=\"0\">Ada</at> &amp; co</p><script>x</script><p>next&nbsp;line</p>"
            ),
            "Hi Ada & co next line"
        );
    }

    #[test]
    fn composing() {
        let cases = [
            (
                "**bold** *it* _it_ ~~gone~~ `a<b`",
                "<p><b>bold</b> <i>it</i> <i>it</i> <s>gone</s> <code>a&lt;b</code></p>",
            ),
            ("**bold _both_**", "<p><b>bold <i>both</i></b></p>"),
            (
                "[the docs](https://x.example/a?b=1&c=2)",
                "<p><a href=\"https://x.example/a?b=1&amp;c=2\">the docs</a></p>",
            ),
            (
                "see https://x.example/a.",
                "<p>see <a href=\"https://x.example/a\">https://x.example/a</a>.</p>",
            ),
            (
                "[x](javascript:alert(1))",
                "<p>[x](javascript:alert(1))</p>",
            ),
            (
                "<script>alert(1)</script>",
                "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
            ),
            (
                "snake_case_name 2*3*4 ** x",
                "<p>snake_case_name 2*3*4 ** x</p>",
            ),
            ("one\ntwo", "<p>one<br>two</p>"),
        ];
        for (input, expected) in cases {
            assert_eq!(compose(input), expected, "{input}");
            assert_eq!(
                sanitise(&compose(input)).replace(" rel=\"noopener noreferrer\"", ""),
                expected
            );
        }
    }
}
