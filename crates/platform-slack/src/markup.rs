//! Slack's mrkdwn ⇄ [`RichText`], read from Slack's "Formatting text for app surfaces" guide
//! (<https://api.slack.com/reference/surfaces/formatting>).
//!
//! | mrkdwn | rich text |
//! |---|---|
//! | `*bold*`, `_italic_`, `~strike~` (at word boundaries) | [`Inline::Bold`], [`Inline::Italic`], [`Inline::Strike`] |
//! | `` `code` ``, ```` ```block``` ```` | [`Inline::Code`], [`Block::CodeBlock`] |
//! | lines starting `>` (or all after `>>>`) | [`Block::Quote`] |
//! | lines starting `• `, `◦ `, `- ` or `1. ` | [`Block::List`] |
//! | `<https://x\|label>`, `<https://x>` | [`Inline::Link`] (a bare URL is its own label) |
//! | `<@U123>`, `<@U123\|name>` | [`Inline::Mention`] (empty label unless given) |
//! | `<!here>`, `<!channel>`, `<!everyone>` | the text `@here`, … (never a broadcast elsewhere) |
//! | `<#C123\|name>`, `<!subteam^S1\|@team>` | the text `#name`, `@team` |
//! | `:smile:`, `:wave::skin-tone-3:` | the Unicode emoji; unknown (custom) names stay `:name:` |
//! | `&amp;`, `&lt;`, `&gt;` | `&`, `<`, `>` |
//! | a blank line, a line break | a new paragraph, [`Inline::LineBreak`] |
//!
//! Rendering is the reverse, with Unicode emoji kept as they are (Slack shows them). mrkdwn has
//! no escape for `*`, `_`, `~` or `` ` ``, so text holding them at word boundaries reads as
//! formatting, as it would had a Slack user typed it; a link's label loses its formatting.

use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};

use crate::mapping::{emoji_by_name, with_skin_tone};

/// Deeper quotes or styles than this are read as text, so hostile input cannot exhaust the
/// stack; people nest a few levels at most.
const MAX_DEPTH: usize = 8;

/// Reads a message's `text` as Slack delivers it (escaped, as the Events API and `conversations.history` give it).
pub fn parse(text: &str) -> RichText {
    RichText {
        blocks: parse_blocks(text, 0),
    }
    .normalize()
}

/// Writes `text` as mrkdwn for `chat.postMessage`'s `text`, escaped as Slack expects.
pub fn render(text: &RichText) -> String {
    render_blocks(&text.blocks)
}

fn parse_blocks(text: &str, depth: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        if line.starts_with("```")
            && let Some(end) = rest[3..].find("```")
        {
            flush_paragraph(&mut paragraph, &mut blocks, depth);
            let content = &rest[3..3 + end];
            let content = content.strip_prefix('\n').unwrap_or(content);
            let content = content.strip_suffix('\n').unwrap_or(content);
            blocks.push(Block::CodeBlock(unescape(content)));
            rest = &rest[3 + end + 3..];
            rest = rest.strip_prefix('\n').unwrap_or(rest);
            continue;
        }
        if depth < MAX_DEPTH {
            if let Some(quoted) = strip_marker(line, ">>>") {
                flush_paragraph(&mut paragraph, &mut blocks, depth);
                let quoted = quoted.strip_prefix(' ').unwrap_or(quoted);
                let whole = if after.is_empty() {
                    quoted.to_owned()
                } else {
                    format!("{quoted}\n{after}")
                };
                blocks.push(Block::Quote(parse_blocks(&whole, depth + 1)));
                break;
            }
            if strip_marker(line, ">").is_some() {
                flush_paragraph(&mut paragraph, &mut blocks, depth);
                let mut quoted = Vec::new();
                while !rest.is_empty() {
                    let (next, after) = rest.split_once('\n').unwrap_or((rest, ""));
                    let Some(inner) = strip_marker(next, ">") else {
                        break;
                    };
                    quoted.push(inner.strip_prefix(' ').unwrap_or(inner));
                    rest = after;
                }
                blocks.push(Block::Quote(parse_blocks(&quoted.join("\n"), depth + 1)));
                continue;
            }
        }
        if let Some((ordered, _)) = list_item(line) {
            flush_paragraph(&mut paragraph, &mut blocks, depth);
            let mut items = Vec::new();
            while !rest.is_empty() {
                let (next, after) = rest.split_once('\n').unwrap_or((rest, ""));
                match list_item(next) {
                    Some((same, item)) if same == ordered => {
                        items.push(parse_inlines(item, depth));
                        rest = after;
                    }
                    _ => break,
                }
            }
            blocks.push(Block::List { ordered, items });
            continue;
        }
        if line.trim().is_empty() {
            flush_paragraph(&mut paragraph, &mut blocks, depth);
        } else {
            paragraph.push(line);
        }
        rest = after;
    }
    flush_paragraph(&mut paragraph, &mut blocks, depth);
    blocks
}

/// The rest of `line` after a quote marker, which Slack delivers escaped (`&gt;`) and accepts raw.
fn strip_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let escaped = marker.replace('>', "&gt;");
    line.strip_prefix(marker)
        .or_else(|| line.strip_prefix(escaped.as_str()))
}

/// Whether `line` is a list item (ordered or not), and its content.
fn list_item(line: &str) -> Option<(bool, &str)> {
    for bullet in ["• ", "◦ ", "- "] {
        if let Some(item) = line.strip_prefix(bullet) {
            return Some((false, item));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        return line[digits..].strip_prefix(". ").map(|item| (true, item));
    }
    None
}

fn flush_paragraph(lines: &mut Vec<&str>, blocks: &mut Vec<Block>, depth: usize) {
    if lines.is_empty() {
        return;
    }
    let mut inlines = Vec::new();
    for (index, line) in lines.drain(..).enumerate() {
        if index > 0 {
            inlines.push(Inline::LineBreak);
        }
        inlines.extend(parse_inlines(line, depth));
    }
    blocks.push(Block::Paragraph(inlines));
}

/// One line's inline content.
fn parse_inlines(line: &str, depth: usize) -> Vec<Inline> {
    let mut parser = InlineParser {
        out: Vec::new(),
        text: String::new(),
        unclosed_after: [usize::MAX; 3],
    };
    parser.run(line, depth);
    parser.finish()
}

struct InlineParser {
    out: Vec<Inline>,
    text: String,
    /// Per style marker (`*`, `_`, `~`), a position after which no marker of that style closes:
    /// a later opener need not search again, which keeps a line full of markers linear.
    unclosed_after: [usize; 3],
}

fn marker_index(marker: char) -> usize {
    match marker {
        '*' => 0,
        '_' => 1,
        _ => 2,
    }
}

impl InlineParser {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.out.push(Inline::Text(std::mem::take(&mut self.text)));
        }
    }

    fn push(&mut self, inline: Inline) {
        self.flush();
        self.out.push(inline);
    }

    fn finish(mut self) -> Vec<Inline> {
        self.flush();
        self.out
    }

    /// Whether what was read so far ends in a word character, before which no style opens.
    /// Judged on the decoded text, since that is what rendering writes back.
    fn after_word(&self) -> bool {
        match self.text.chars().last() {
            Some(c) => c.is_alphanumeric(),
            None => false,
        }
    }

    fn run(&mut self, line: &str, depth: usize) {
        let mut at = 0;
        while let Some(c) = line[at..].chars().next() {
            if let Some((inline, next)) = self.markup_at(line, at, c, depth) {
                match inline {
                    Decoded::Node(node) => self.push(node),
                    Decoded::Text(text) => self.text.push_str(&text),
                }
                at = next;
            } else {
                self.text.push(c);
                at += c.len_utf8();
            }
        }
    }

    fn markup_at(
        &mut self,
        line: &str,
        at: usize,
        c: char,
        depth: usize,
    ) -> Option<(Decoded, usize)> {
        match c {
            '<' => {
                let (token, next) = angle_token(line, at)?;
                Some((decode_angle(token), next))
            }
            '`' => {
                code_span(line, at).map(|(code, next)| (Decoded::Node(Inline::Code(code)), next))
            }
            '*' | '_' | '~'
                if depth < MAX_DEPTH
                    && !self.after_word()
                    && at < self.unclosed_after[marker_index(c)] =>
            {
                let end = match style_end(line, at, c) {
                    StyleEnd::At(end) => end,
                    StyleEnd::CannotOpen => return None,
                    StyleEnd::NeverCloses => {
                        self.unclosed_after[marker_index(c)] = at;
                        return None;
                    }
                };
                let inner = parse_inlines(&line[at + 1..end], depth + 1);
                let node = match c {
                    '*' => Inline::Bold(inner),
                    '_' => Inline::Italic(inner),
                    _ => Inline::Strike(inner),
                };
                Some((Decoded::Node(node), end + 1))
            }
            ':' => emoji_at(line, at).map(|(emoji, next)| (Decoded::Text(emoji), next)),
            '&' => entity_at(line, at).map(|(ch, next)| (Decoded::Text(ch.to_string()), next)),
            _ => None,
        }
    }
}

enum Decoded {
    Node(Inline),
    Text(String),
}

/// `<…>` at `at`: its content and where it ends.
fn angle_token(line: &str, at: usize) -> Option<(&str, usize)> {
    let end = line[at + 1..].find('>')? + at + 1;
    let token = &line[at + 1..end];
    let target = token.split('|').next().unwrap_or(token);
    (!target.is_empty() && !token.contains('<')).then_some((token, end + 1))
}

fn decode_angle(token: &str) -> Decoded {
    let (target, label) = match token.split_once('|') {
        Some((target, label)) => (target, Some(unescape(label.trim()))),
        None => (token, None),
    };
    let label = label.filter(|l| !l.is_empty());
    if let Some(user) = target.strip_prefix('@') {
        return Decoded::Node(Inline::Mention(Mention {
            user: ExternalUserId::new(unescape(user)),
            label: label.unwrap_or_default(),
        }));
    }
    if let Some(special) = target.strip_prefix('!') {
        let name = special.split('^').next().unwrap_or(special);
        // A label that does not start with `@` (a date's fallback text) is prefixed, so the text
        // never runs into a neighbouring word and changes how styles around it read.
        let text = match label {
            Some(label) if label.starts_with('@') => label,
            Some(label) => format!("@{label}"),
            None => format!("@{}", unescape(name)),
        };
        return Decoded::Text(inert(&text));
    }
    if let Some(channel) = target.strip_prefix('#') {
        let name = label.unwrap_or_else(|| unescape(channel));
        return Decoded::Text(inert(&format!("#{name}")));
    }
    let url = unescape(target);
    let label = label.map_or_else(|| url.clone(), |l| decode_text(&l));
    Decoded::Node(Inline::Link {
        url,
        label: vec![Inline::Text(label)],
    })
}

/// A name that reads as text: it stood inside `<…>`, where nothing formats, but is written back
/// as plain text, where mrkdwn would. Markers go, but for `_` inside a word (`#dev_ops`), which
/// neither opens nor closes a style. It always starts with `@` or `#`, never a space.
fn inert(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    for (index, c) in chars.iter().enumerate() {
        let inside_word = index > 0
            && chars[index - 1].is_alphanumeric()
            && chars
                .get(index + 1)
                .is_some_and(|next| next.is_alphanumeric());
        match c {
            '*' | '~' | '`' | ':' => {}
            '_' if !inside_word => {}
            other => out.push(*other),
        }
    }
    // Nor may it end in a space, which would keep a style around it from closing.
    out.trim_end().to_owned()
}

/// `` `code` `` or ```` ```code``` ```` at `at`: the code and where it ends.
fn code_span(line: &str, at: usize) -> Option<(String, usize)> {
    if let Some(after) = line[at..].strip_prefix("```")
        && let Some(end) = after.find("```")
        && end > 0
    {
        return Some((unescape(&after[..end]), at + 3 + end + 3));
    }
    let after = &line[at + 1..];
    let end = after.find('`')?;
    (end > 0).then(|| (unescape(&after[..end]), at + 1 + end + 1))
}

/// Where the style `marker` opened at `at` closes: the next marker that follows a non-space and
/// precedes no word character, skipping `<…>` and code, whose markers are not formatting.
/// Whether a marker closes depends only on its surroundings, so when none does after `at`, none
/// does after any later opener either.
fn style_end(line: &str, at: usize, marker: char) -> StyleEnd {
    let Some(first) = line[at + 1..].chars().next() else {
        return StyleEnd::CannotOpen;
    };
    if first.is_whitespace() || first == marker {
        return StyleEnd::CannotOpen;
    }
    let mut index = at + 1;
    let mut previous = first;
    while let Some(c) = line[index..].chars().next() {
        if c == '<'
            && let Some((_, next)) = angle_token(line, index)
        {
            index = next;
            previous = '>';
            continue;
        }
        if c == '`'
            && let Some((_, next)) = code_span(line, index)
        {
            index = next;
            previous = '`';
            continue;
        }
        if c == marker && index > at + 1 && !previous.is_whitespace() && ends_word(line, index + 1)
        {
            return StyleEnd::At(index);
        }
        previous = c;
        index += c.len_utf8();
    }
    StyleEnd::NeverCloses
}

enum StyleEnd {
    At(usize),
    /// Nothing may open here (a space or the marker again follows it).
    CannotOpen,
    /// No marker after this one closes it, nor any later one of the same style.
    NeverCloses,
}

/// Whether the text from `at` on starts with something other than a word character, as decoded.
fn ends_word(line: &str, at: usize) -> bool {
    let Some(c) = line[at..].chars().next() else {
        return true;
    };
    let decoded = match c {
        '&' => entity_at(line, at).map_or('&', |(ch, _)| ch),
        // Some emoji are letters to Unicode (Ⓜ️ is a circled M).
        ':' => emoji_at(line, at)
            .and_then(|(emoji, _)| emoji.chars().next())
            .unwrap_or(':'),
        '<' => match angle_token(line, at) {
            Some((token, _)) => match decode_angle(token) {
                Decoded::Text(text) => text.chars().next().unwrap_or('<'),
                Decoded::Node(_) => '<',
            },
            None => '<',
        },
        other => other,
    };
    !decoded.is_alphanumeric()
}

/// `:name:` or `:name::skin-tone-N:` at `at`, if `name` is an emoji Slack knows.
fn emoji_at(line: &str, at: usize) -> Option<(String, usize)> {
    let (name, next) = shortcode_at(line, at)?;
    let emoji = emoji_by_name(name)?;
    if let Some((modifier, after)) = shortcode_at(line, next)
        && let Some(toned) = with_skin_tone(emoji, modifier)
    {
        return Some((toned.as_str().to_owned(), after));
    }
    Some((emoji.as_str().to_owned(), next))
}

fn shortcode_at(line: &str, at: usize) -> Option<(&str, usize)> {
    let after = line[at..].strip_prefix(':')?;
    let end = after.find(':')?;
    let name = &after[..end];
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c));
    valid.then_some((name, at + 1 + end + 1))
}

/// The three entities Slack escapes, at `at`.
fn entity_at(line: &str, at: usize) -> Option<(char, usize)> {
    let rest = &line[at..];
    [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')]
        .into_iter()
        .find(|(entity, _)| rest.starts_with(entity))
        .map(|(entity, ch)| (ch, at + entity.len()))
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if let Some((ch, next)) = entity_at(text, at) {
            out.push(ch);
            at = next;
        } else {
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// Text with entities and emoji short codes decoded, for link labels (which hold no formatting).
fn decode_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if c == ':'
            && let Some((emoji, next)) = emoji_at(text, at)
        {
            out.push_str(&emoji);
            at = next;
        } else if let Some((ch, next)) = entity_at(text, at) {
            out.push(ch);
            at = next;
        } else {
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

fn render_blocks(blocks: &[Block]) -> String {
    let rendered: Vec<String> = blocks.iter().map(render_block).collect();
    rendered.join("\n\n")
}

fn render_block(block: &Block) -> String {
    match block {
        Block::Paragraph(inlines) => render_inlines(inlines),
        Block::Quote(inner) => render_blocks(inner)
            .split('\n')
            .map(|line| {
                if line.is_empty() {
                    ">".to_owned()
                } else {
                    format!("> {line}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Block::CodeBlock(code) => {
            // Parsing drops one line break after the opening fence and before the closing one;
            // one written there keeps the code's own, and keeps a backtick at either end from
            // running into the fence.
            let open = if code.starts_with(['\n', '`']) {
                "```\n"
            } else {
                "```"
            };
            let close = if code.ends_with(['\n', '`']) {
                "\n```"
            } else {
                "```"
            };
            format!("{open}{}{close}", escape(code))
        }
        Block::List { ordered, items } => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let marker = if *ordered {
                    format!("{}. ", index + 1)
                } else {
                    "• ".to_owned()
                };
                format!("{marker}{}", render_inlines(item))
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn render_inlines(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(text) => out.push_str(&escape(text)),
            Inline::Bold(inner) => out.push_str(&styled('*', inner)),
            Inline::Italic(inner) => out.push_str(&styled('_', inner)),
            Inline::Strike(inner) => out.push_str(&styled('~', inner)),
            Inline::Code(code) => {
                // A line break would end the span; a backtick would close it early.
                let code = escape(&code.replace('\n', " "));
                let fence = if code.contains('`') { "```" } else { "`" };
                out.push_str(&format!("{fence}{code}{fence}"));
            }
            Inline::Link { url, label } => {
                let label = plain_label(label);
                // `|` separates the URL from the label; in a URL it is the same percent-encoded.
                let wire_url = escape(&url.replace('|', "%7C"));
                if label == *url {
                    out.push_str(&format!("<{wire_url}>"));
                } else {
                    out.push_str(&format!("<{wire_url}|{}>", escape(&label)));
                }
            }
            Inline::Mention(mention) => {
                out.push_str(&format!("<@{}>", escape(mention.user.as_str())))
            }
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

/// A span with its markers inside any spaces at its ends, where mrkdwn recognises them, and
/// repeated on each line, since a style ends at a line's end.
fn styled(marker: char, inner: &[Inline]) -> String {
    render_inlines(inner)
        .split('\n')
        .map(|line| styled_line(marker, line))
        .collect::<Vec<_>>()
        .join("\n")
}

fn styled_line(marker: char, rendered: &str) -> String {
    let content = rendered.trim();
    if content.is_empty() {
        return rendered.to_owned();
    }
    let leading = &rendered[..rendered.len() - rendered.trim_start().len()];
    let trailing = &rendered[rendered.trim_end().len()..];
    format!("{leading}{marker}{content}{marker}{trailing}")
}

fn plain_label(label: &[Inline]) -> String {
    RichText {
        blocks: vec![Block::Paragraph(label.to_vec())],
    }
    .to_plain_text()
    .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchboard_core::rich_text::strategy::portable_rich_text;

    use super::*;

    fn text(value: &str) -> Inline {
        Inline::Text(value.to_owned())
    }

    fn paragraph(inlines: Vec<Inline>) -> RichText {
        RichText {
            blocks: vec![Block::Paragraph(inlines)],
        }
    }

    fn mention(user: &str, label: &str) -> Inline {
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: label.to_owned(),
        })
    }

    fn link(url: &str, label: &str) -> Inline {
        Inline::Link {
            url: url.to_owned(),
            label: vec![text(label)],
        }
    }

    /// Slack writes a mention as `<@U123>`, without the name `<@U123|name>` may have read.
    fn without_names(rich: RichText) -> RichText {
        rich.map_mentions(|m| {
            Some(Mention {
                user: m.user.clone(),
                label: String::new(),
            })
        })
    }

    /// Parses `mrkdwn`, compares with `expected`, and checks that rendering it reads back the same.
    fn check(mrkdwn: &str, expected: RichText) {
        let parsed = parse(mrkdwn);
        assert_eq!(parsed, expected.clone().normalize(), "parsing {mrkdwn:?}");
        assert_eq!(parse(&render(&parsed)), parsed, "rendering {parsed:?}");
    }

    #[test]
    fn styles_at_word_boundaries() {
        check(
            "*bold* _it_ ~gone~ `co*de*`",
            paragraph(vec![
                Inline::Bold(vec![text("bold")]),
                text(" "),
                Inline::Italic(vec![text("it")]),
                text(" "),
                Inline::Strike(vec![text("gone")]),
                text(" "),
                Inline::Code("co*de*".to_owned()),
            ]),
        );
        check(
            "*bold _both_*",
            paragraph(vec![Inline::Bold(vec![
                text("bold "),
                Inline::Italic(vec![text("both")]),
            ])]),
        );
        check(
            "snake_case_name 2*3*4",
            paragraph(vec![text("snake_case_name 2*3*4")]),
        );
        check("* not bold *", paragraph(vec![text("* not bold *")]));
        check("*unclosed", paragraph(vec![text("*unclosed")]));
        check(
            "* a *b* _c _d_",
            paragraph(vec![
                text("* a "),
                Inline::Bold(vec![text("b")]),
                text(" "),
                Inline::Italic(vec![text("c _d")]),
            ]),
        );
        check(
            "(*in brackets*)",
            paragraph(vec![
                text("("),
                Inline::Bold(vec![text("in brackets")]),
                text(")"),
            ]),
        );
    }

    #[test]
    fn links_mentions_and_specials() {
        check(
            "<https://x.org/?a=1&amp;b=2|the site> <https://y.org> <mailto:a@b.org|mail>",
            paragraph(vec![
                link("https://x.org/?a=1&b=2", "the site"),
                text(" "),
                link("https://y.org", "https://y.org"),
                text(" "),
                link("mailto:a@b.org", "mail"),
            ]),
        );
        assert_eq!(
            parse("hi <@U123> and <@U456|grace>"),
            paragraph(vec![
                text("hi "),
                mention("U123", ""),
                text(" and "),
                mention("U456", "grace"),
            ]),
        );
        check(
            "<!here> <!channel> <!everyone> <#C1|general> <#C2> <!subteam^S1|@devs> <!date^1392734382^{date}|Feb 18>",
            paragraph(vec![text(
                "@here @channel @everyone #general #C2 @devs @Feb 18",
            )]),
        );
        check(
            "<#C3|dev_ops> <#C4|_odd*> <!subteam^S2|@a:b>",
            paragraph(vec![text("#dev_ops #odd @ab")]),
        );
        assert_eq!(render(&paragraph(vec![mention("U1", "Ada")])), "<@U1>");
        assert_eq!(
            render(&paragraph(vec![link("https://x.org/a|b", "site")])),
            "<https://x.org/a%7Cb|site>"
        );
    }

    #[test]
    fn escaping() {
        check(
            "a &lt;tag&gt; &amp; &amp;lt; &quot;",
            paragraph(vec![text("a <tag> & &lt; &quot;")]),
        );
        assert_eq!(
            render(&paragraph(vec![text("1 < 2 & 3 > 2")])),
            "1 &lt; 2 &amp; 3 &gt; 2"
        );
        check(
            "`a &lt; b`",
            paragraph(vec![Inline::Code("a < b".to_owned())]),
        );
    }

    #[test]
    fn emoji_short_codes_become_unicode() {
        check(
            ":smile: :+1: :thumbsup: :wave::skin-tone-3: :thinking_face: :partyparrot: 12:30:45",
            paragraph(vec![text("😄 👍 👍 👋🏼 🤔 :partyparrot: 12:30:45")]),
        );
        check(
            "<https://x.org|:tada: party>",
            paragraph(vec![link("https://x.org", "🎉 party")]),
        );
        assert_eq!(render(&paragraph(vec![text("👍🏽")])), "👍🏽");
    }

    #[test]
    fn blocks() {
        check(
            "intro\nsecond line\n\n&gt; quoted\n&gt; more\n\n```let x = 1;\nlet y = &lt;2&gt;;```\n• one\n• *two*\n1. first\n2. second",
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("intro"), Inline::LineBreak, text("second line")]),
                    Block::Quote(vec![Block::Paragraph(vec![
                        text("quoted"),
                        Inline::LineBreak,
                        text("more"),
                    ])]),
                    Block::CodeBlock("let x = 1;\nlet y = <2>;".to_owned()),
                    Block::List {
                        ordered: false,
                        items: vec![vec![text("one")], vec![Inline::Bold(vec![text("two")])]],
                    },
                    Block::List {
                        ordered: true,
                        items: vec![vec![text("first")], vec![text("second")]],
                    },
                ],
            },
        );
        check(
            "before\n&gt;&gt;&gt; all\nof this",
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("before")]),
                    Block::Quote(vec![Block::Paragraph(vec![
                        text("all"),
                        Inline::LineBreak,
                        text("of this"),
                    ])]),
                ],
            },
        );
        check(
            "```\nfenced\n```",
            RichText {
                blocks: vec![Block::CodeBlock("fenced".to_owned())],
            },
        );
        check(
            "> > nested",
            RichText {
                blocks: vec![Block::Quote(vec![Block::Quote(vec![Block::Paragraph(
                    vec![text("nested")],
                )])])],
            },
        );
    }

    #[test]
    fn rendering_keeps_styles_recognisable() {
        assert_eq!(
            render(&paragraph(vec![Inline::Bold(vec![
                text(" a "),
                Inline::LineBreak,
                text("b")
            ])])),
            " *a* \n*b*"
        );
        assert_eq!(
            render(&paragraph(vec![Inline::Code("a`b\nc".to_owned())])),
            "```a`b c```"
        );
        assert_eq!(
            render(&RichText {
                blocks: vec![
                    Block::Quote(vec![
                        Block::Paragraph(vec![text("a")]),
                        Block::Paragraph(vec![text("b")]),
                    ]),
                    Block::List {
                        ordered: true,
                        items: vec![vec![text("x")], vec![text("y")]],
                    },
                ]
            }),
            "> a\n>\n> b\n\n1. x\n2. y"
        );
    }

    #[test]
    fn malformed_input_reads_as_text() {
        for input in [
            "<@U1|ada>",
            "<",
            ">",
            "<>",
            "<<@U1>",
            "<@>",
            "```",
            "``",
            "`",
            "*",
            "_~*",
            ":",
            "::",
            "&",
            "&amp",
            "\n\n\n",
            "> ",
            "&gt;&gt;&gt;",
            "1.",
            "• ",
            "<https://x|>",
            "*<@U1>*",
            // Found by fuzzing:
            "<|>>",
            "<|x>",
            "*<!*>",
            "<#C|_x*> a_ <!here|:smile>:",
            "~_~~x_~",
            ",_x_:m:",
            "```a`\n```",
            "```\n`a```",
            "```g\n``\n```",
            "*<&><##*0. >*",
        ] {
            let parsed = without_names(parse(input));
            assert_eq!(parse(&render(&parsed)), parsed, "{input:?}");
        }
        // Openers that never close are searched past once, not once each.
        let markers = "*a _b ~c ".repeat(20_000);
        assert!(parse(&markers) == paragraph(vec![text(&markers)]));
        let deep = "&gt;".repeat(10_000) + "x";
        let parsed = parse(&deep);
        assert_eq!(parse(&render(&parsed)), parsed);
    }

    proptest! {
        #[test]
        fn rendering_then_parsing_gives_back_the_text(rich in portable_rich_text()) {
            // `<@U123>` carries no name.
            let rich = rich.map_mentions(|m| Some(Mention { user: m.user.clone(), label: String::new() }));
            let rendered = render(&rich);
            prop_assert_eq!(parse(&rendered), rich, "rendered as {:?}", rendered);
        }

        #[test]
        fn any_text_parses_and_reads_back_the_same(input in any::<String>()) {
            let parsed = without_names(parse(&input));
            prop_assert_eq!(parse(&render(&parsed)), parsed);
        }

        #[test]
        fn mrkdwn_like_text_parses_and_reads_back_the_same(input in "([*_~`<>|@!#:&;a-z ]|\n|&gt;|&amp;|&lt;|```|:smile:|<@U1>|<@U2\\|ada>|<!here>|<#C1\\|x_y>|<https://x\\.org\\|a>|• |1\\. ){0,30}") {
            let parsed = without_names(parse(&input));
            prop_assert_eq!(parse(&render(&parsed)), parsed);
        }
    }
}
