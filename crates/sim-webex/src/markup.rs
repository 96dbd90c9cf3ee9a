//! Webex's message markdown: `**bold**`, `*italic*` / `_italic_`, `` `code` ``, ``` blocks,
//! `[text](url)` links, `# headings`, `- lists` and mentions (`<@personId:ID|Name>`,
//! `<@personEmail:ADDRESS|Name>`, `<@all>`), rendered to HTML (the API's `html`, the web
//! view) and to plain text (the API's `text` when only markdown was sent). As in CommonMark, a
//! backslash before ASCII punctuation writes that character as it is.

use std::fmt::Write as _;

use switchboard_sim_kit::html::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MentionKind {
    PersonId,
    PersonEmail,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub kind: MentionKind,
    /// The person's id or e-mail address; empty for `all`.
    pub key: String,
    pub label: Option<String>,
}

/// What is between `<@` and `>`.
fn parse_mention(inner: &str) -> Option<Mention> {
    if inner == "all" {
        return Some(Mention {
            kind: MentionKind::All,
            key: String::new(),
            label: None,
        });
    }
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label.to_owned())),
        None => (inner, None),
    };
    let (kind, key) = if let Some(id) = target.strip_prefix("personId:") {
        (MentionKind::PersonId, id)
    } else {
        (
            MentionKind::PersonEmail,
            target.strip_prefix("personEmail:")?,
        )
    };
    (!key.is_empty()).then(|| Mention {
        kind,
        key: key.to_owned(),
        label,
    })
}

/// Every mention in a message's markdown, in order.
pub fn mentions(markdown: &str) -> Vec<Mention> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else {
            break;
        };
        if let Some(mention) = parse_mention(&after[..end]) {
            found.push(mention);
        }
        rest = &after[end + 1..];
    }
    found
}

/// Renders markdown as HTML; `mention` writes each mention's HTML.
pub fn html(markdown: &str, mention: &dyn Fn(&Mention) -> String) -> String {
    let mut out = String::new();
    for (index, block) in markdown.split("```").enumerate() {
        if index % 2 == 1 {
            let _ = write!(
                out,
                "<pre><code>{}</code></pre>",
                escape(block.trim_matches('\n'))
            );
            continue;
        }
        let mut in_list = false;
        let mut first = true;
        for line in block.split('\n') {
            let item = line.strip_prefix("- ").or_else(|| line.strip_prefix("* "));
            if let Some(item) = item {
                if !in_list {
                    out.push_str("<ul>");
                    in_list = true;
                }
                let _ = write!(out, "<li>{}</li>", inline(item, true, mention));
                continue;
            }
            if in_list {
                out.push_str("</ul>");
                in_list = false;
                first = true;
            }
            let heading = (1..=3).rev().find_map(|level| {
                line.strip_prefix(&format!("{} ", "#".repeat(level)))
                    .map(|text| (level, text))
            });
            if let Some((level, text)) = heading {
                let _ = write!(out, "<h{level}>{}</h{level}>", inline(text, true, mention));
                first = true;
                continue;
            }
            if !first {
                out.push_str("<br>");
            }
            out.push_str(&inline(line, true, mention));
            first = false;
        }
        if in_list {
            out.push_str("</ul>");
        }
    }
    out
}

/// Renders markdown as plain text; `mention` writes each mention's text.
pub fn text(markdown: &str, mention: &dyn Fn(&Mention) -> String) -> String {
    markdown
        .split("```")
        .enumerate()
        .map(|(index, block)| {
            if index % 2 == 1 {
                block.trim_matches('\n').to_owned()
            } else {
                inline(block, false, mention)
            }
        })
        .collect()
}

fn find(chars: &[char], from: usize, pattern: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(pattern.len() - 1))
        .find(|&at| chars[at..].starts_with(pattern))
}

fn inline(text: &str, as_html: bool, mention: &dyn Fn(&Mention) -> String) -> String {
    let chars: Vec<char> = text.chars().collect();
    let plain = |text: &str| {
        if as_html {
            escape(text)
        } else {
            text.to_owned()
        }
    };
    let wrap = |tag: &str, inner: String| {
        if as_html {
            format!("<{tag}>{inner}</{tag}>")
        } else {
            inner
        }
    };
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\'
            && let Some(escaped) = next.filter(char::is_ascii_punctuation)
        {
            out.push_str(&plain(&escaped.to_string()));
            i += 2;
            continue;
        }
        if c == '*'
            && next == Some('*')
            && let Some(end) = find(&chars, i + 2, &['*', '*']).filter(|&end| end > i + 2)
        {
            let inner: String = chars[i + 2..end].iter().collect();
            out.push_str(&wrap("strong", inline(&inner, as_html, mention)));
            i = end + 2;
            continue;
        }
        if (c == '*' || c == '_')
            && let Some(end) = find(&chars, i + 1, &[c]).filter(|&end| end > i + 1)
        {
            let inner: String = chars[i + 1..end].iter().collect();
            out.push_str(&wrap("em", inline(&inner, as_html, mention)));
            i = end + 1;
            continue;
        }
        if c == '`'
            && let Some(end) = find(&chars, i + 1, &['`']).filter(|&end| end > i + 1)
        {
            let inner: String = chars[i + 1..end].iter().collect();
            out.push_str(&wrap("code", plain(&inner)));
            i = end + 1;
            continue;
        }
        if c == '['
            && let Some(middle) = find(&chars, i + 1, &[']', '('])
            && let Some(end) = find(&chars, middle + 2, &[')'])
        {
            let label: String = chars[i + 1..middle].iter().collect();
            let url: String = chars[middle + 2..end].iter().collect();
            let linkable = ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| url.starts_with(scheme));
            if linkable {
                if as_html {
                    let _ = write!(out, "<a href=\"{}\">{}</a>", escape(&url), escape(&label));
                } else {
                    out.push_str(&label);
                }
                i = end + 1;
                continue;
            }
        }
        if c == '<'
            && next == Some('@')
            && let Some(end) = find(&chars, i + 2, &['>'])
        {
            let inner: String = chars[i + 2..end].iter().collect();
            if let Some(found) = parse_mention(&inner) {
                out.push_str(&mention(&found));
                i = end + 1;
                continue;
            }
        }
        out.push_str(&plain(&c.to_string()));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(mention: &Mention) -> String {
        mention.label.clone().unwrap_or_else(|| "All".to_owned())
    }

    #[test]
    fn markdown_renders_to_html_with_nothing_injected() {
        let rendered = html(
            "**Hi** *there* `x<y` [site](https://example.com) [bad](javascript:alert(1)) <b>",
            &label,
        );
        assert_eq!(
            rendered,
            "<strong>Hi</strong> <em>there</em> <code>x&lt;y</code> \
             <a href=\"https://example.com\">site</a> [bad](javascript:alert(1)) &lt;b&gt;"
        );
        assert_eq!(
            html("# Title\n- one\n- two\nend", &label),
            "<h1>Title</h1><ul><li>one</li><li>two</li></ul>end"
        );
    }

    #[test]
    fn a_backslash_writes_punctuation_as_it_is() {
        assert_eq!(
            html(
                r"\*not bold\* \`x\` \[a\](https://e.example) 1\\2 \q",
                &label
            ),
            r"*not bold* `x` [a](https://e.example) 1\2 \q"
        );
        assert_eq!(text(r"\*\*x\*\*", &label), "**x**");
    }

    #[test]
    fn mentions_are_found_and_rendered() {
        let markdown = "Hi <@personEmail:ada@acme.example|Ada> and <@personId:Y2lz|Bob>, <@all>";
        let found = mentions(markdown);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].kind, MentionKind::PersonEmail);
        assert_eq!(found[0].key, "ada@acme.example");
        assert_eq!(found[1].kind, MentionKind::PersonId);
        assert_eq!(found[2].kind, MentionKind::All);
        assert_eq!(text(markdown, &label), "Hi Ada and Bob, All");
    }
}
