//! Google Chat's text markup ⇄ [`RichText`], read from Google's "Format text in messages"
//! guide (<https://developers.google.com/workspace/chat/format-messages>).
//!
//! | Chat markup | rich text |
//! |---|---|
//! | `*bold*`, `_italic_`, `~strike~` (at word boundaries) | [`Inline::Bold`], [`Inline::Italic`], [`Inline::Strike`] |
//! | `` `code` ``, ```` ```block``` ```` | [`Inline::Code`], [`Block::CodeBlock`] |
//! | lines starting `* `, `- ` or `• `; `1. ` | [`Block::List`] (unordered; ordered) |
//! | lines starting `>` | [`Block::Quote`] |
//! | `<https://x\|label>`, `<https://x>` | [`Inline::Link`] (a URL alone is its own label) |
//! | `<users/123>` | [`Inline::Mention`] of user `123` (no label: the relay fills it in) |
//! | `<users/all>` | the text `@all` (never a broadcast elsewhere) |
//! | a blank line, a line break | a new paragraph, [`Inline::LineBreak`] |
//!
//! Chat's text is not escaped: `&`, `<` and `>` stand for themselves, and only the forms above
//! are read as markup. Emoji are Unicode on both sides. Chat has no escape for `*`, `_`, `~` or
//! `` ` ``, so text holding them at word boundaries reads as formatting, as it would had a Chat
//! user typed it; a link's label loses its formatting, and its `|` and `>` become `¦` and `›`. Messages delivered with
//! `formattedText` are read from it; otherwise from `text` with its `USER_MENTION`
//! annotations (see [`with_mentions`]).

use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};

/// Deeper quotes or styles than this are read as text, so hostile input cannot exhaust the
/// stack; people nest a few levels at most.
const MAX_DEPTH: usize = 8;

/// Reads a message's markup.
pub fn parse(text: &str) -> RichText {
    RichText {
        blocks: parse_blocks(text, 0),
    }
    .normalize()
}

/// Writes `text` as Chat markup for a message's `text`.
pub fn render(text: &RichText) -> String {
    render_blocks(&text.blocks)
}

/// A link in Chat markup.
pub fn link(url: &str, label: &str) -> String {
    // `|` separates the URL from the label and `>` ends both; in a URL they are the same
    // percent-encoded, and in a label, which cannot hold them, they become look-alikes.
    let url = url.replace('|', "%7C").replace('>', "%3E");
    let label = shown_label(label);
    format!("<{url}|{label}>")
}

/// A link's label as Chat can carry it: `|` and `>` become `¦` and `›`.
pub fn shown_label(label: &str) -> String {
    label.replace('|', "¦").replace('>', "›")
}

/// A mention's position in a message's plain `text`, from its `USER_MENTION` annotation:
/// `start` and `length` in UTF-16 code units, as Google counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionSpan {
    pub start: usize,
    pub length: usize,
    pub user: ExternalUserId,
}

/// `text` with each annotated mention written as `<users/ID>`, for [`parse`]: Chat's plain
/// `text` shows a mention as `@Name`, and only its annotations say whom it names. Spans that
/// overlap, or that do not fall on characters, are left as they are.
pub fn with_mentions(text: &str, mentions: &[MentionSpan]) -> String {
    let mut spans: Vec<&MentionSpan> = mentions.iter().collect();
    spans.sort_by_key(|span| span.start);
    // UTF-16 offset → byte offset of each character boundary.
    let mut boundaries = std::collections::HashMap::new();
    let mut utf16 = 0;
    for (byte, c) in text.char_indices() {
        boundaries.insert(utf16, byte);
        utf16 += c.len_utf16();
    }
    boundaries.insert(utf16, text.len());
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in spans {
        let (Some(&start), Some(&end)) = (
            boundaries.get(&span.start),
            boundaries.get(&(span.start + span.length)),
        ) else {
            continue;
        };
        if start < copied || end <= start {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(&format!("<users/{}>", span.user.as_str()));
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
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
            blocks.push(Block::CodeBlock(content.to_owned()));
            rest = &rest[3 + end + 3..];
            rest = rest.strip_prefix('\n').unwrap_or(rest);
            continue;
        }
        if depth < MAX_DEPTH && line.starts_with('>') {
            flush_paragraph(&mut paragraph, &mut blocks, depth);
            let mut quoted = Vec::new();
            while !rest.is_empty() {
                let (next, after) = rest.split_once('\n').unwrap_or((rest, ""));
                let Some(inner) = next.strip_prefix('>') else {
                    break;
                };
                quoted.push(inner.strip_prefix(' ').unwrap_or(inner));
                rest = after;
            }
            blocks.push(Block::Quote(parse_blocks(&quoted.join("\n"), depth + 1)));
            continue;
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

/// Whether `line` is a list item (ordered or not), and its content.
fn list_item(line: &str) -> Option<(bool, &str)> {
    for bullet in ["* ", "- ", "• "] {
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
    fn after_word(&self) -> bool {
        self.text.chars().last().is_some_and(char::is_alphanumeric)
    }

    fn run(&mut self, line: &str, depth: usize) {
        let mut at = 0;
        while let Some(c) = line[at..].chars().next() {
            if let Some((inline, next)) = self.markup_at(line, at, c, depth) {
                match inline {
                    Angle::Node(node) => self.push(node),
                    Angle::Text(text) => self.text.push_str(&text),
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
    ) -> Option<(Angle, usize)> {
        match c {
            '<' => angle_at(line, at),
            '`' => code_span(line, at).map(|(code, next)| (Angle::Node(Inline::Code(code)), next)),
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
                Some((Angle::Node(node), end + 1))
            }
            _ => None,
        }
    }
}

/// What a `<…>` form reads as.
enum Angle {
    Node(Inline),
    Text(String),
}

/// A mention or link `<…>` at `at`, and where it ends; `None` when the angle brackets hold
/// anything else, which is then text.
fn angle_at(line: &str, at: usize) -> Option<(Angle, usize)> {
    let end = line[at + 1..].find('>')? + at + 1;
    let token = &line[at + 1..end];
    let next = end + 1;
    if let Some(user) = token.strip_prefix("users/") {
        let valid = !user.is_empty()
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
        if !valid {
            return None;
        }
        if user == "all" {
            return Some((Angle::Text("@all".to_owned()), next));
        }
        return Some((
            Angle::Node(Inline::Mention(Mention {
                user: ExternalUserId::new(user),
                label: String::new(),
            })),
            next,
        ));
    }
    let (url, label) = token.split_once('|').unwrap_or((token, ""));
    let is_url = ["https://", "http://", "mailto:"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
        && !url.contains(|c: char| c.is_whitespace() || c == '<');
    if !is_url {
        return None;
    }
    let label = label.trim();
    let label = if label.is_empty() { url } else { label };
    Some((
        Angle::Node(Inline::Link {
            url: url.to_owned(),
            label: vec![Inline::Text(label.to_owned())],
        }),
        next,
    ))
}

/// `` `code` `` or ```` ```code``` ```` at `at`: the code and where it ends.
fn code_span(line: &str, at: usize) -> Option<(String, usize)> {
    if let Some(after) = line[at..].strip_prefix("```")
        && let Some(end) = after.find("```")
        && end > 0
    {
        return Some((after[..end].to_owned(), at + 3 + end + 3));
    }
    let after = &line[at + 1..];
    let end = after.find('`')?;
    (end > 0).then(|| (after[..end].to_owned(), at + 1 + end + 1))
}

/// Where the style `marker` opened at `at` closes: the next marker that follows a non-space and
/// precedes no word character, skipping `<…>` forms and code, whose markers are not formatting.
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
            && let Some((_, next)) = angle_at(line, index)
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

/// Whether the text from `at` on starts with something other than a word character, as read.
fn ends_word(line: &str, at: usize) -> bool {
    let Some(c) = line[at..].chars().next() else {
        return true;
    };
    let read = match c {
        '<' => match angle_at(line, at) {
            Some((Angle::Text(text), _)) => text.chars().next().unwrap_or(c),
            _ => c,
        },
        other => other,
    };
    !read.is_alphanumeric()
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
            format!("{open}{code}{close}")
        }
        Block::List { ordered, items } => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let marker = if *ordered {
                    format!("{}. ", index + 1)
                } else {
                    "* ".to_owned()
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
            Inline::Text(text) => out.push_str(text),
            Inline::Bold(inner) => out.push_str(&styled('*', inner)),
            Inline::Italic(inner) => out.push_str(&styled('_', inner)),
            Inline::Strike(inner) => out.push_str(&styled('~', inner)),
            Inline::Code(code) => {
                // A line break would end the span; a backtick would close it early.
                let code = code.replace('\n', " ");
                let fence = if code.contains('`') { "```" } else { "`" };
                out.push_str(&format!("{fence}{code}{fence}"));
            }
            Inline::Link { url, label } => out.push_str(&link(url, &plain_label(label))),
            Inline::Mention(mention) => {
                out.push_str(&format!("<users/{}>", mention.user.as_str()));
            }
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

/// A span with its markers inside any spaces at its ends, where Chat recognises them, and
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

    fn text(t: &str) -> Inline {
        Inline::Text(t.to_owned())
    }

    fn paragraph(inlines: Vec<Inline>) -> RichText {
        RichText {
            blocks: vec![Block::Paragraph(inlines)],
        }
        .normalize()
    }

    fn mention(user: &str) -> Inline {
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: String::new(),
        })
    }

    #[test]
    fn styles_code_links_and_mentions_are_read() {
        assert_eq!(
            parse("Hi *bold* _it_ ~gone~ `x*y` <https://a.org/x|the site> <users/123>!"),
            paragraph(vec![
                text("Hi "),
                Inline::Bold(vec![text("bold")]),
                text(" "),
                Inline::Italic(vec![text("it")]),
                text(" "),
                Inline::Strike(vec![text("gone")]),
                text(" "),
                Inline::Code("x*y".to_owned()),
                text(" "),
                Inline::Link {
                    url: "https://a.org/x".to_owned(),
                    label: vec![text("the site")]
                },
                text(" "),
                mention("123"),
                text("!"),
            ])
        );
        assert_eq!(
            parse("<https://a.org>"),
            paragraph(vec![Inline::Link {
                url: "https://a.org".to_owned(),
                label: vec![text("https://a.org")]
            }])
        );
    }

    #[test]
    fn what_is_not_markup_stays_text() {
        for plain in [
            "a < b > c",
            "x<y>z",
            "<not a link|x>",
            "snake_case_name",
            "2*3*4",
            "a & b",
        ] {
            assert_eq!(parse(plain), paragraph(vec![text(plain)]), "{plain}");
        }
        assert_eq!(
            parse("ping <users/all>"),
            paragraph(vec![text("ping @all")])
        );
    }

    #[test]
    fn blocks_are_read() {
        let parsed =
            parse("intro\n* one\n* two\n\n1. first\n\n> quoted *bold*\n```\nlet x = 1;\n```");
        assert_eq!(
            parsed.blocks,
            vec![
                Block::Paragraph(vec![text("intro")]),
                Block::List {
                    ordered: false,
                    items: vec![vec![text("one")], vec![text("two")]]
                },
                Block::List {
                    ordered: true,
                    items: vec![vec![text("first")]]
                },
                Block::Quote(vec![Block::Paragraph(vec![
                    text("quoted "),
                    Inline::Bold(vec![text("bold")])
                ])]),
                Block::CodeBlock("let x = 1;".to_owned()),
            ]
        );
    }

    #[test]
    fn rendering_writes_chat_markup() {
        let rich = RichText {
            blocks: vec![
                Block::Paragraph(vec![
                    Inline::Bold(vec![text("hi "), Inline::Italic(vec![text("you")])]),
                    text(" "),
                    mention("42"),
                    text(" see "),
                    Inline::Link {
                        url: "https://a.org/?q=a|b".to_owned(),
                        label: vec![Inline::Bold(vec![text("this")])],
                    },
                ]),
                Block::List {
                    ordered: false,
                    items: vec![vec![text("a")], vec![Inline::Code("b".to_owned())]],
                },
            ],
        };
        assert_eq!(
            render(&rich),
            "*hi _you_* <users/42> see <https://a.org/?q=a%7Cb|this>\n\n* a\n* `b`"
        );
    }

    #[test]
    fn annotated_mentions_replace_the_names_in_plain_text() {
        let spans = [
            MentionSpan {
                start: 3,
                length: 4,
                user: ExternalUserId::new("7"),
            },
            MentionSpan {
                start: 12,
                length: 3,
                user: ExternalUserId::new("8"),
            },
        ];
        // "😀" is two UTF-16 code units: offsets count them.
        assert_eq!(
            with_mentions("😀 @Ana and @Bo!", &spans),
            "😀 <users/7> and <users/8>!"
        );
        let overlapping = [spans[0].clone(), spans[0].clone()];
        assert_eq!(with_mentions("😀 @Ana", &overlapping), "😀 <users/7>");
        let outside = [MentionSpan {
            start: 40,
            length: 2,
            user: ExternalUserId::new("9"),
        }];
        assert_eq!(with_mentions("short", &outside), "short");
    }

    #[test]
    fn hostile_input_is_read_without_exhausting_the_stack() {
        let deep = ">".repeat(10_000) + "x";
        let parsed = parse(&deep);
        assert_eq!(parse(&render(&parsed)), parsed);
        let markers = "*_~".repeat(5_000);
        let parsed = parse(&markers);
        assert_eq!(parse(&render(&parsed)), parsed);
    }

    /// `rich` as Chat carries it: links' labels with look-alikes for `|` and `>`.
    fn as_chat_carries_it(rich: RichText) -> RichText {
        fn inlines(line: Vec<Inline>) -> Vec<Inline> {
            line.into_iter()
                .map(|inline| match inline {
                    Inline::Link { url, label } => Inline::Link {
                        url,
                        label: label
                            .into_iter()
                            .map(|part| match part {
                                Inline::Text(text) => Inline::Text(shown_label(&text)),
                                other => other,
                            })
                            .collect(),
                    },
                    Inline::Bold(inner) => Inline::Bold(inlines(inner)),
                    Inline::Italic(inner) => Inline::Italic(inlines(inner)),
                    Inline::Strike(inner) => Inline::Strike(inlines(inner)),
                    other => other,
                })
                .collect()
        }
        fn blocks(parts: Vec<Block>) -> Vec<Block> {
            parts
                .into_iter()
                .map(|block| match block {
                    Block::Paragraph(inner) => Block::Paragraph(inlines(inner)),
                    Block::Quote(inner) => Block::Quote(blocks(inner)),
                    Block::List { ordered, items } => Block::List {
                        ordered,
                        items: items.into_iter().map(inlines).collect(),
                    },
                    other => other,
                })
                .collect()
        }
        RichText {
            blocks: blocks(rich.blocks),
        }
        .normalize()
    }

    proptest! {
        #[test]
        fn rendering_then_parsing_gives_back_the_text(rich in portable_rich_text()) {
            // `<users/123>` carries no name.
            let rich = rich.map_mentions(|m| Some(Mention { user: m.user.clone(), label: String::new() }));
            let rich = as_chat_carries_it(rich);
            let rendered = render(&rich);
            prop_assert_eq!(parse(&rendered), rich, "rendered as {:?}", rendered);
        }

        #[test]
        fn any_text_parses_and_reads_back_the_same(input in any::<String>()) {
            let parsed = parse(&input);
            prop_assert_eq!(parse(&render(&parsed)), parsed);
        }

        #[test]
        fn markup_like_text_parses_and_reads_back_the_same(input in "([*_~`<>|@ a-z]|\n|```|<users/1>|<users/all>|<https://x\\.org\\|a>|<https://y\\.org>|\\* |- |> |1\\. ){0,30}") {
            let parsed = parse(&input);
            prop_assert_eq!(parse(&render(&parsed)), parsed);
        }
    }
}
