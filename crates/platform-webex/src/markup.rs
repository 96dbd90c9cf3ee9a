//! Webex markdown ⇄ [`RichText`], read from Webex's "Formatting Messages" guide
//! (<https://developer.webex.com/docs/basics#formatting-messages>).
//!
//! | Webex markdown | rich text |
//! |---|---|
//! | `**bold**`, `*italic*` or `_italic_`, `~~strike~~` | [`Inline::Bold`], [`Inline::Italic`], [`Inline::Strike`] |
//! | `` `code` ``, a ```` ``` ```` fenced block | [`Inline::Code`], [`Block::CodeBlock`] |
//! | `[label](https://x)` | [`Inline::Link`] |
//! | `<@personId:ID\|Name>`, `<@personEmail:a@b\|Name>` | [`Inline::Mention`] of `ID`, or of the address (read as an id containing `@`) |
//! | `<@all>` | the text `@all` (never a broadcast elsewhere) |
//! | lines starting `- `, `* ` or `+ `; `1. ` | [`Block::List`] (unordered; ordered) |
//! | lines starting `>` | [`Block::Quote`] |
//! | a blank line, a line break | a new paragraph, [`Inline::LineBreak`] |
//!
//! Text is escaped with a backslash before each of `` \ ` * _ ~ [ ] < > ``, and before a `-`,
//! `+` or `1.` that would start a list, as Markdown escapes ASCII punctuation. An `_` beside a
//! letter or digit (`snake_case`) is text, not emphasis, so italics are written `_x_`, or `*x*`
//! beside a word. A mention's name escapes only `\` and `>`, which would end it.

use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};

/// Deeper quotes or styles than this are read as text, so hostile input cannot exhaust the
/// stack; people nest a few levels at most.
const MAX_DEPTH: usize = 8;

const PERSON_ID: &str = "<@personId:";
const PERSON_EMAIL: &str = "<@personEmail:";
const ALL: &str = "<@all>";

/// Reads a message's markdown.
pub fn parse(text: &str) -> RichText {
    RichText {
        blocks: parse_blocks(text, 0),
    }
    .normalize()
}

/// Writes `text` as Webex markdown for a message's `markdown`.
pub fn render(text: &RichText) -> String {
    render_blocks(&text.blocks)
}

fn parse_blocks(text: &str, depth: usize) -> Vec<Block> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let mut blocks = Vec::new();
    let mut paragraph: Vec<Inline> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut blocks);
            index += 1;
            continue;
        }
        if let Some(end) = fence_end(&lines, index) {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::CodeBlock(lines[index + 1..end].join("\n")));
            index = end + 1;
            continue;
        }
        if depth < MAX_DEPTH && line.starts_with('>') {
            flush(&mut paragraph, &mut blocks);
            let mut quoted = Vec::new();
            while let Some(line) = lines.get(index).filter(|line| line.starts_with('>')) {
                let inner = &line[1..];
                quoted.push(inner.strip_prefix(' ').unwrap_or(inner));
                index += 1;
            }
            blocks.push(Block::Quote(parse_blocks(&quoted.join("\n"), depth + 1)));
            continue;
        }
        if let Some((ordered, _)) = list_item(line) {
            flush(&mut paragraph, &mut blocks);
            let mut items = Vec::new();
            while let Some((_, item)) = lines
                .get(index)
                .and_then(|line| list_item(line))
                .filter(|(kind, _)| *kind == ordered)
            {
                items.push(parse_inlines(item, depth));
                index += 1;
            }
            blocks.push(Block::List { ordered, items });
            continue;
        }
        if !paragraph.is_empty() {
            paragraph.push(Inline::LineBreak);
        }
        paragraph.extend(parse_inlines(line, depth));
        index += 1;
    }
    flush(&mut paragraph, &mut blocks);
    blocks
}

/// Ends the paragraph being read, if any.
fn flush(paragraph: &mut Vec<Inline>, blocks: &mut Vec<Block>) {
    if !paragraph.is_empty() {
        blocks.push(Block::Paragraph(std::mem::take(paragraph)));
    }
}

/// The line closing a fenced code block that opens at `start`, if it opens one: a line of
/// ```` ``` ```` and an optional language, then a line of ```` ``` ```` alone.
fn fence_end(lines: &[&str], start: usize) -> Option<usize> {
    let info = lines[start].trim_end().strip_prefix("```")?;
    if info.contains('`') {
        return None;
    }
    (start + 1..lines.len()).find(|&index| lines[index].trim_end() == "```")
}

/// A list item's kind (ordered or not) and text.
fn list_item(line: &str) -> Option<(bool, &str)> {
    for marker in ["- ", "* ", "+ "] {
        if let Some(item) = line.strip_prefix(marker) {
            return Some((false, item));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        return line[digits..].strip_prefix(". ").map(|item| (true, item));
    }
    None
}

/// Where `delimiter` next stands in `chars` from `from`, passing over escaped characters,
/// code spans, mentions and link targets, which hold no formatting.
fn find_delimiter(chars: &[char], from: usize, delimiter: &[char]) -> Option<usize> {
    let mut index = from;
    while index < chars.len() {
        if chars[index..].starts_with(delimiter) {
            return Some(index);
        }
        match chars[index] {
            '\\' => index += 2,
            '`' => match chars[index + 1..].iter().position(|&c| c == '`') {
                Some(offset) => index += offset + 2,
                None => index += 1,
            },
            '<' if chars.get(index + 1) == Some(&'@') => match closing_angle(chars, index + 2) {
                Some(end) => index = end + 1,
                None => index += 1,
            },
            ']' if chars.get(index + 1) == Some(&'(') => {
                match chars[index + 2..].iter().position(|&c| c == ')') {
                    Some(offset) => index += offset + 3,
                    None => index += 1,
                }
            }
            _ => index += 1,
        }
    }
    None
}

/// The next `>` not escaped with a backslash.
fn closing_angle(chars: &[char], from: usize) -> Option<usize> {
    let mut index = from;
    while index < chars.len() {
        match chars[index] {
            '\\' => index += 2,
            '>' => return Some(index),
            _ => index += 1,
        }
    }
    None
}

/// Where a single-character emphasis opened at `open` closes: the next lone `*` (not part of
/// `**`), or the next `_` not followed by a letter or digit.
fn closing_single(chars: &[char], open: usize) -> Option<usize> {
    let marker = chars[open];
    let mut from = open + 1;
    loop {
        let at = find_delimiter(chars, from, &[marker])?;
        let next = chars.get(at + 1).copied();
        if marker == '*' && next == Some('*') {
            from = at + 2;
        } else if marker == '_' && next.is_some_and(char::is_alphanumeric) {
            from = at + 1;
        } else {
            return (at > open + 1).then_some(at);
        }
    }
}

fn parse_inlines(line: &str, depth: usize) -> Vec<Inline> {
    let chars: Vec<char> = line.chars().collect();
    let text_of = |range: std::ops::Range<usize>| chars[range].iter().collect::<String>();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut index = 0;
    let styles_allowed = depth < MAX_DEPTH;
    while index < chars.len() {
        let c = chars[index];
        let next = chars.get(index + 1).copied();
        let mut span: Option<(Inline, usize)> = None;
        match c {
            '\\' if next.is_some_and(|n| n.is_ascii_punctuation()) => {
                text.push(next.unwrap_or_default());
                index += 2;
                continue;
            }
            '`' => {
                if let Some(offset) = chars[index + 1..].iter().position(|&c| c == '`') {
                    let end = index + 1 + offset;
                    span = Some((Inline::Code(text_of(index + 1..end)), end + 1));
                }
            }
            '*' | '~' if styles_allowed && next == Some(c) => {
                let delimiter = [c, c];
                if let Some(end) =
                    find_delimiter(&chars, index + 2, &delimiter).filter(|&end| end > index + 2)
                {
                    let inner = parse_inlines(&text_of(index + 2..end), depth + 1);
                    let styled = if c == '*' {
                        Inline::Bold(inner)
                    } else {
                        Inline::Strike(inner)
                    };
                    span = Some((styled, end + 2));
                } else {
                    text.push(c);
                    text.push(c);
                    index += 2;
                    continue;
                }
            }
            '*' | '_' if styles_allowed => {
                let opens = c == '*' || index == 0 || !chars[index - 1].is_alphanumeric();
                if let Some(end) = closing_single(&chars, index).filter(|_| opens) {
                    let inner = parse_inlines(&text_of(index + 1..end), depth + 1);
                    span = Some((Inline::Italic(inner), end + 1));
                }
            }
            '[' if styles_allowed => span = link(&chars, index, depth),
            '<' => span = mention(&chars, index),
            _ => {}
        }
        match span {
            Some((inline, end)) => {
                if !text.is_empty() {
                    out.push(Inline::Text(std::mem::take(&mut text)));
                }
                out.push(inline);
                index = end;
            }
            None => {
                text.push(c);
                index += 1;
            }
        }
    }
    if !text.is_empty() {
        out.push(Inline::Text(text));
    }
    out
}

/// `[label](url)` at `open`, with the index after it.
fn link(chars: &[char], open: usize, depth: usize) -> Option<(Inline, usize)> {
    let close = find_delimiter(chars, open + 1, &[']'])?;
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let end = close + 2 + chars[close + 2..].iter().position(|&c| c == ')')?;
    let url: String = chars[close + 2..end].iter().collect();
    if url.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    let label: String = chars[open + 1..close].iter().collect();
    let label = parse_inlines(&label, depth + 1);
    Some((Inline::Link { url, label }, end + 1))
}

/// `<@personId:ID|Name>`, `<@personEmail:address|Name>` or `<@all>` at `open`, with the index
/// after it.
fn mention(chars: &[char], open: usize) -> Option<(Inline, usize)> {
    let rest: String = chars[open..].iter().take(PERSON_EMAIL.len()).collect();
    if rest.starts_with(ALL) {
        return Some((Inline::Text("@all".to_owned()), open + ALL.chars().count()));
    }
    let prefix = [PERSON_ID, PERSON_EMAIL]
        .into_iter()
        .find(|prefix| rest.starts_with(prefix))?;
    let start = open + prefix.chars().count();
    let end = closing_angle(chars, start)?;
    let inside = &chars[start..end];
    let (user, label) = match inside.iter().position(|&c| c == '|') {
        Some(bar) => (&inside[..bar], &inside[bar + 1..]),
        None => (inside, &[][..]),
    };
    let user: String = user.iter().collect();
    if user.is_empty() || user.contains(char::is_whitespace) {
        return None;
    }
    let mut name = String::new();
    let mut index = 0;
    while index < label.len() {
        if label[index] == '\\' && index + 1 < label.len() {
            index += 1;
        }
        name.push(label[index]);
        index += 1;
    }
    Some((
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: name,
        }),
        end + 1,
    ))
}

fn render_blocks(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(render_block)
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn render_block(block: &Block) -> String {
    match block {
        Block::Paragraph(inlines) => render_inlines(inlines)
            .split('\n')
            .map(guard_line_start)
            .collect::<Vec<_>>()
            .join("\n"),
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
        Block::CodeBlock(code) => format!("```\n{code}\n```"),
        Block::List { ordered, items } => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let marker = if *ordered {
                    format!("{}. ", index + 1)
                } else {
                    "- ".to_owned()
                };
                format!("{marker}{}", render_inlines(item))
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A paragraph's line that would read as a list item is escaped.
fn guard_line_start(line: &str) -> String {
    if line.starts_with("- ") || line.starts_with("+ ") {
        return format!("\\{line}");
    }
    if list_item(line).is_some_and(|(ordered, _)| ordered) {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        return format!("{}\\{}", &line[..digits], &line[digits..]);
    }
    line.to_owned()
}

fn render_inlines(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for (index, inline) in inlines.iter().enumerate() {
        match inline {
            Inline::Text(text) => out.push_str(&escape(text)),
            Inline::Bold(inner) => out.push_str(&format!("**{}**", render_inlines(inner))),
            Inline::Italic(inner) => {
                // `_` is emphasis only away from letters and digits (`snake_case` is text);
                // beside them `*` is, though `*` beside `**` would be ambiguous.
                let after_word = out.chars().last().is_some_and(char::is_alphanumeric);
                let before_word = matches!(inlines.get(index + 1), Some(Inline::Text(next)) if next.starts_with(char::is_alphanumeric));
                let marker = if after_word || before_word { '*' } else { '_' };
                out.push_str(&format!("{marker}{}{marker}", render_inlines(inner)));
            }
            Inline::Strike(inner) => out.push_str(&format!("~~{}~~", render_inlines(inner))),
            Inline::Code(code) => out.push_str(&format!("`{code}`")),
            Inline::Link { url, label } => {
                let url = url.replace(')', "%29").replace(' ', "%20");
                let label = if label.is_empty() {
                    escape(&url)
                } else {
                    render_inlines(label)
                };
                out.push_str(&format!("[{label}]({url})"));
            }
            Inline::Mention(mention) => {
                let kind = if mention.user.as_str().contains('@') {
                    PERSON_EMAIL
                } else {
                    PERSON_ID
                };
                let label = mention.label.replace('\\', "\\\\").replace('>', "\\>");
                out.push_str(&format!("{kind}{}|{label}>", mention.user.as_str()));
            }
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use switchboard_core::rich_text::strategy::portable_rich_text;

    fn text(value: &str) -> Inline {
        Inline::Text(value.to_owned())
    }

    fn mention(user: &str, label: &str) -> Inline {
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: label.to_owned(),
        })
    }

    fn paragraph(inlines: Vec<Inline>) -> RichText {
        RichText {
            blocks: vec![Block::Paragraph(inlines)],
        }
    }

    #[test]
    fn styles_code_links_and_mentions_are_read() {
        assert_eq!(
            parse(
                "**b** *i* _j_ ~~s~~ `c*d` [site](https://x.org/a_b) <@personId:P1|Ann> <@personEmail:bo@x.org|Bo>"
            ),
            paragraph(vec![
                Inline::Bold(vec![text("b")]),
                text(" "),
                Inline::Italic(vec![text("i")]),
                text(" "),
                Inline::Italic(vec![text("j")]),
                text(" "),
                Inline::Strike(vec![text("s")]),
                text(" "),
                Inline::Code("c*d".to_owned()),
                text(" "),
                Inline::Link {
                    url: "https://x.org/a_b".to_owned(),
                    label: vec![text("site")]
                },
                text(" "),
                mention("P1", "Ann"),
                text(" "),
                mention("bo@x.org", "Bo"),
            ])
        );
    }

    #[test]
    fn snake_case_escapes_and_unclosed_markers_stay_text() {
        assert_eq!(parse("my_var_name"), paragraph(vec![text("my_var_name")]));
        assert_eq!(parse("a \\*b\\* \\<@x"), paragraph(vec![text("a *b* <@x")]));
        assert_eq!(
            parse("**open and `tick"),
            paragraph(vec![text("**open and `tick")])
        );
        assert_eq!(parse("<@all> hi"), paragraph(vec![text("@all hi")]));
        assert_eq!(
            parse("[no](target with space)"),
            paragraph(vec![text("[no](target with space)")])
        );
    }

    #[test]
    fn blocks_are_read() {
        let parsed = parse(
            "one\ntwo\n\n> quoted\n>\n> - item\n\n```\nlet x = *1*;\n```\n1. first\n2. second",
        );
        assert_eq!(
            parsed.blocks,
            vec![
                Block::Paragraph(vec![text("one"), Inline::LineBreak, text("two")]),
                Block::Quote(vec![
                    Block::Paragraph(vec![text("quoted")]),
                    Block::List {
                        ordered: false,
                        items: vec![vec![text("item")]]
                    }
                ]),
                Block::CodeBlock("let x = *1*;".to_owned()),
                Block::List {
                    ordered: true,
                    items: vec![vec![text("first")], vec![text("second")]]
                },
            ]
        );
    }

    #[test]
    fn rendering_writes_webex_markdown() {
        let rich = RichText {
            blocks: vec![
                Block::Paragraph(vec![
                    text("- a*b "),
                    Inline::Bold(vec![Inline::Italic(vec![text("x")])]),
                    text(" "),
                    mention("P1", "A>n"),
                    text(" "),
                    mention("bo@x.org", "Bo"),
                    text(" "),
                    Inline::Link {
                        url: "https://x.org/(1)".to_owned(),
                        label: vec![text("l")],
                    },
                ]),
                Block::Quote(vec![Block::Paragraph(vec![text("q")])]),
                Block::List {
                    ordered: true,
                    items: vec![vec![text("a")], vec![text("b")]],
                },
            ],
        };
        assert_eq!(
            render(&rich),
            "\\- a\\*b **_x_** <@personId:P1|A\\>n> <@personEmail:bo@x.org|Bo> [l](https://x.org/(1%29)\n\n> q\n\n1. a\n2. b"
        );
    }

    #[test]
    fn hostile_nesting_is_read_without_exhausting_the_stack() {
        let deep = format!("{}x{}", "**_".repeat(5000), "_**".repeat(5000));
        let quotes = format!("{}x", "> ".repeat(5000));
        parse(&deep);
        parse(&quotes);
    }

    proptest! {
        #[test]
        fn rendering_then_parsing_gives_back_the_text(rich in portable_rich_text()) {
            let rendered = render(&rich);
            prop_assert_eq!(parse(&rendered), rich, "rendered as {:?}", rendered);
        }

        #[test]
        fn markup_like_text_reads_back_the_same(input in "([*_~`<>|@\\\\\\[\\]() a-z1]|\n|```|<@personId:P1\\|A>|<@all>|\\[a\\]\\(https://x\\.org\\)|- |> |1\\. ){0,30}") {
            let parsed = parse(&input);
            prop_assert_eq!(parse(&render(&parsed)), parsed);
        }
    }
}
