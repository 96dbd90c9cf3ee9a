//! Slack's `mrkdwn` as the Slack app shows it, for the web view
//! (<https://api.slack.com/reference/surfaces/formatting>): `*bold*`, `_italic_`, `~strike~`,
//! `` `code` ``, ```` ```preformatted``` ````, `>` quotes, links `<https://x|label>` and
//! `<https://x>`, mentions `<@U123>` (shown as @ and the person's name), `<#C123|name>`,
//! `<!here>`, and the three entities a sender must escape (`&amp;`, `&lt;`, `&gt;`).
//!
//! Everything else in a message is text: the output is escaped HTML, with links only to
//! `http`, `https` and `mailto` addresses, so a message cannot inject markup into the page.

use switchboard_sim_kit::html::escape;

/// One unit of a message after its controls (`<…>`) and entities are read: a character that
/// may still be a formatting marker, or a control already rendered.
#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Char(char),
    Html(String),
}

/// Renders `text` as HTML; `name_of` gives the display name of a user id, for mentions.
pub fn to_html(text: &str, name_of: &dyn Fn(&str) -> Option<String>) -> String {
    let atoms = atoms(text, name_of);
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = &atoms[..];
    // Code blocks come first: nothing inside them is formatting.
    while let Some(open) = find_fence(rest, 0) {
        let close = find_fence(rest, open + 3);
        let Some(close) = close else { break };
        let before = &rest[..open];
        lines(
            before.strip_suffix(&[Atom::Char('\n')]).unwrap_or(before),
            &mut out,
        );
        let mut code = &rest[open + 3..close];
        if code.first() == Some(&Atom::Char('\n')) {
            code = &code[1..];
        }
        out.push_str("<pre>");
        for atom in code {
            push_verbatim(atom, &mut out);
        }
        out.push_str("</pre>");
        rest = &rest[close + 3..];
        if rest.first() == Some(&Atom::Char('\n')) {
            rest = &rest[1..];
        }
    }
    lines(rest, &mut out);
    out
}

/// Reads controls and entities; every other character stays a character.
fn atoms(text: &str, name_of: &dyn Fn(&str) -> Option<String>) -> Vec<Atom> {
    let mut atoms = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && let Some(html) = control(&rest[1..end], name_of)
        {
            atoms.push(Atom::Html(html));
            rest = &rest[end + 1..];
            continue;
        }
        if c == '&'
            && let Some((decoded, length)) = entity(rest)
        {
            atoms.push(Atom::Char(decoded));
            rest = &rest[length..];
            continue;
        }
        atoms.push(Atom::Char(c));
        rest = &rest[c.len_utf8()..];
    }
    atoms
}

/// The entity at the start of `text`: Slack's three, as the character and the entity's length.
fn entity(text: &str) -> Option<(char, usize)> {
    [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')]
        .into_iter()
        .find(|(name, _)| text.starts_with(name))
        .map(|(name, c)| (c, name.len()))
}

/// Slack's entities decoded, for the parts of a control that are text.
fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A control's HTML (`inner` is what stands between `<` and `>`), or `None` when it is not one
/// and the `<` is text.
fn control(inner: &str, name_of: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if inner.is_empty() || inner.contains('<') || inner.contains('\n') {
        return None;
    }
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(decode(label))),
        None => (inner, None),
    };
    let mention = |text: String| format!("<span class=\"mention\">{}</span>", escape(&text));
    if let Some(user) = target.strip_prefix('@') {
        let name = label
            .filter(|l| !l.is_empty())
            .or_else(|| name_of(user))
            .unwrap_or_else(|| user.to_owned());
        return Some(mention(format!("@{}", name.trim_start_matches('@'))));
    }
    if let Some(channel) = target.strip_prefix('#') {
        return Some(mention(format!(
            "#{}",
            label.unwrap_or_else(|| channel.to_owned())
        )));
    }
    if let Some(special) = target.strip_prefix('!') {
        let (command, _) = special.split_once('^').unwrap_or((special, ""));
        return Some(match (command, label) {
            ("here" | "channel" | "everyone", _) => mention(format!("@{command}")),
            (_, Some(label)) => escape(&label),
            (_, None) => escape(&decode(inner)),
        });
    }
    // Anything else between angle brackets is a link only if it is a URL; otherwise the
    // sender did not escape a `<`, and it is text.
    let url = decode(target);
    let (scheme, _) = url.split_once(':')?;
    if scheme.is_empty() || url.contains(char::is_whitespace) {
        return None;
    }
    let text = label
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| url.clone());
    Some(match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" | "mailto" => format!(
            "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
            escape(&url),
            escape(&text)
        ),
        // Slack links only what a browser can open safely; anything else is shown as text.
        _ => escape(&text),
    })
}

/// What a person types in the web view, as Slack's client sends it: `&`, `<` and `>` escaped,
/// web addresses turned into links; a link or mention already written in Slack's form
/// (`<https://…|label>`, `<@U…>`) is kept as written, so that an edit keeps it.
pub fn compose(typed: &str) -> String {
    let mut out = String::with_capacity(typed.len() + 8);
    let mut rest = typed;
    let mut after_word = false;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && control(&rest[1..end], &|_| None).is_some()
        {
            out.push_str(&rest[..=end]);
            rest = &rest[end + 1..];
            after_word = false;
            continue;
        }
        if !after_word && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let url =
                rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '<', '>', '&']);
            out.push('<');
            out.push_str(&url.replace('&', "&amp;"));
            out.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
        after_word = c.is_alphanumeric();
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A message's text as it is typed again to edit it: the reverse of [`compose`].
pub fn as_typed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&decode(&rest[..start]));
        let inner = rest[start + 1..].split_once('>').map(|(inner, _)| inner);
        match inner {
            Some(url)
                if (url.starts_with("https://") || url.starts_with("http://"))
                    && !url.contains(['|', '<']) =>
            {
                out.push_str(&decode(url));
                rest = &rest[start + url.len() + 2..];
            }
            _ => {
                out.push('<');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(&decode(rest));
    out
}

/// The position of the next ```` ``` ```` at or after `from`.
fn find_fence(atoms: &[Atom], from: usize) -> Option<usize> {
    (from..atoms.len().saturating_sub(2)).find(|&at| {
        atoms[at..at + 3]
            .iter()
            .all(|atom| *atom == Atom::Char('`'))
    })
}

/// Text outside code blocks, line by line: a run of lines starting with `>` is a quote.
fn lines(atoms: &[Atom], out: &mut String) {
    let lines: Vec<&[Atom]> = atoms.split(|atom| *atom == Atom::Char('\n')).collect();
    let mut quote: Vec<&[Atom]> = Vec::new();
    let last = lines.len().saturating_sub(1);
    for (index, line) in lines.iter().enumerate() {
        if let Some(quoted) = line.strip_prefix(&[Atom::Char('>')]) {
            quote.push(quoted.strip_prefix(&[Atom::Char(' ')]).unwrap_or(quoted));
            continue;
        }
        flush_quote(&mut quote, out);
        inline(line, out);
        if index < last {
            out.push_str("<br>");
        }
    }
    flush_quote(&mut quote, out);
}

fn flush_quote(quote: &mut Vec<&[Atom]>, out: &mut String) {
    if quote.is_empty() {
        return;
    }
    out.push_str("<blockquote>");
    for (index, line) in quote.iter().enumerate() {
        if index > 0 {
            out.push_str("<br>");
        }
        inline(line, out);
    }
    out.push_str("</blockquote>");
    quote.clear();
}

/// One line's inline formatting. A marker opens at the line's start or after a space or
/// punctuation, before a non-space, and closes at the same marker after a non-space, before
/// the end, a space or punctuation — so `snake_case_names` and `2*3*4` stay as written.
fn inline(atoms: &[Atom], out: &mut String) {
    let mut at = 0;
    while at < atoms.len() {
        if let Atom::Char(marker) = atoms[at]
            && let Some(tag) = tag_of(marker)
            && opens(atoms, at)
            && let Some(close) = closing(atoms, at, marker)
        {
            out.push_str(&format!("<{tag}>"));
            if marker == '`' {
                for atom in &atoms[at + 1..close] {
                    push_verbatim(atom, out);
                }
            } else {
                inline(&atoms[at + 1..close], out);
            }
            out.push_str(&format!("</{tag}>"));
            at = close + 1;
            continue;
        }
        push_verbatim(&atoms[at], out);
        at += 1;
    }
}

fn tag_of(marker: char) -> Option<&'static str> {
    match marker {
        '*' => Some("b"),
        '_' => Some("i"),
        '~' => Some("s"),
        '`' => Some("code"),
        _ => None,
    }
}

fn is_boundary(atom: Option<&Atom>) -> bool {
    match atom {
        None | Some(Atom::Html(_)) => true,
        Some(Atom::Char(c)) => !c.is_alphanumeric(),
    }
}

fn is_space(atom: &Atom) -> bool {
    matches!(atom, Atom::Char(c) if c.is_whitespace())
}

fn opens(atoms: &[Atom], at: usize) -> bool {
    let before = at.checked_sub(1).and_then(|b| atoms.get(b));
    is_boundary(before) && atoms.get(at + 1).is_some_and(|next| !is_space(next))
}

fn closing(atoms: &[Atom], open: usize, marker: char) -> Option<usize> {
    (open + 2..atoms.len()).find(|&at| {
        atoms[at] == Atom::Char(marker)
            && !is_space(&atoms[at - 1])
            && is_boundary(atoms.get(at + 1))
    })
}

fn push_verbatim(atom: &Atom, out: &mut String) {
    match atom {
        Atom::Char(c) => out.push_str(&escape(c.encode_utf8(&mut [0; 4]))),
        Atom::Html(html) => out.push_str(html),
    }
}

#[cfg(test)]
mod tests {
    fn check(text: &str, expected: &str) {
        let names = |id: &str| (id == "U00000001").then(|| "Ada Lovelace".to_owned());
        assert_eq!(super::to_html(text, &names), expected, "{text}");
    }

    #[test]
    fn styles() {
        check(
            "*bold* _italic_ ~gone~ `x < y`",
            "<b>bold</b> <i>italic</i> <s>gone</s> <code>x &lt; y</code>",
        );
        check("*bold _and italic_*", "<b>bold <i>and italic</i></b>");
        check("snake_case_name and 2*3*4", "snake_case_name and 2*3*4");
        check("* not bold *", "* not bold *");
        check("*unclosed", "*unclosed");
        check("`*not bold*`", "<code>*not bold*</code>");
    }

    #[test]
    fn code_blocks_quotes_and_lines() {
        check(
            "before\n```\nlet x = *1*;\n```\nafter",
            "before<pre>let x = *1*;\n</pre>after",
        );
        check(
            "> quoted\n&gt; too\nplain",
            "<blockquote>quoted<br>too</blockquote>plain",
        );
        check("one\ntwo", "one<br>two");
    }

    #[test]
    fn links_mentions_and_specials() {
        check(
            "<https://hub.example/link/abc?a=1&amp;b=2|Sync now> or <https://x.example>",
            "<a href=\"https://hub.example/link/abc?a=1&amp;b=2\" rel=\"noopener noreferrer\">Sync now</a> or \
             <a href=\"https://x.example\" rel=\"noopener noreferrer\">https://x.example</a>",
        );
        check(
            "*<https://x.example|bold link>*",
            "<b><a href=\"https://x.example\" rel=\"noopener noreferrer\">bold link</a></b>",
        );
        check(
            "hi <@U00000001>",
            "hi <span class=\"mention\">@Ada Lovelace</span>",
        );
        check(
            "hi <@U0000000Z>",
            "hi <span class=\"mention\">@U0000000Z</span>",
        );
        check(
            "<@U00000002|grace>",
            "<span class=\"mention\">@grace</span>",
        );
        check(
            "<!here> <#C1|general>",
            "<span class=\"mention\">@here</span> <span class=\"mention\">#general</span>",
        );
        check("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014");
        check(
            "<mailto:a@b.example|mail>",
            "<a href=\"mailto:a@b.example\" rel=\"noopener noreferrer\">mail</a>",
        );
    }

    #[test]
    fn entities_decode_once() {
        check(
            "a &amp; b &lt;c&gt; &amp;lt; &quot;",
            "a &amp; b &lt;c&gt; &amp;lt; &amp;quot;",
        );
        check("1 < 2 > 0", "1 &lt; 2 &gt; 0");
    }

    #[test]
    fn typing() {
        let cases = [
            ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
            (
                "see https://x.example/a?b=1&c=2.",
                "see <https://x.example/a?b=1&amp;c=2>.",
            ),
            (
                "<https://x.example|label> <@U00000001>",
                "<https://x.example|label> <@U00000001>",
            ),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("*bold* _it_", "*bold* _it_"),
            ("xhttps://x.example", "xhttps://x.example"),
        ];
        for (typed, sent) in cases {
            assert_eq!(super::compose(typed), sent, "{typed}");
            assert_eq!(super::compose(&super::as_typed(sent)), sent, "{sent}");
        }
        assert_eq!(
            super::as_typed("a &lt; b <https://x.example>"),
            "a < b https://x.example"
        );
    }

    #[test]
    fn nothing_injects_markup() {
        check(
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        );
        check(
            "<img src=x onerror=alert(1)>",
            "&lt;img src=x onerror=alert(1)&gt;",
        );
        check("<javascript:alert(1)|click>", "click");
        check("<JavaScript:alert(1)>", "JavaScript:alert(1)");
        check(
            "<https://x.example/\"onmouseover=\"alert(1)|a>",
            "<a href=\"https://x.example/&quot;onmouseover=&quot;alert(1)\" rel=\"noopener noreferrer\">a</a>",
        );
        check("<@U1|<b>x</b>>", "&lt;@U1|&lt;b&gt;x&lt;/b&gt;&gt;");
        check("&lt;script&gt;", "&lt;script&gt;");
    }
}
