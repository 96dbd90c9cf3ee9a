//! Zoom Team Chat's formatting ⇄ [`RichText`]. A Zoom message is plain text (`message`) with
//! formatted ranges over it (`rich_text`: `{start_position, end_position, format_type,
//! format_attr}`) and mentions (`at_items`: `{at_contact, at_type, start_position,
//! end_position}`), read from the Team Chat API's "Send a chat message" reference
//! (<https://developers.zoom.us/docs/api/team-chat/#tag/chat-messages/POST/chat/users/{userId}/messages>).
//!
//! | Zoom | rich text |
//! |---|---|
//! | `Bold`, `Italic`, `Strikethrough` ranges | [`Inline::Bold`], [`Inline::Italic`], [`Inline::Strike`] |
//! | `AddLink` with the URL in `format_attr` | [`Inline::Link`] |
//! | an `at_items` entry with `at_type` 1 over `@Name` | [`Inline::Mention`] |
//! | `at_type` 2 (everyone in a channel) | the text as written (never a broadcast elsewhere) |
//! | lines under `CodeBlock`, `Quote`, `BulletedList`, `NumberedList` | [`Block::CodeBlock`], [`Block::Quote`], [`Block::List`] |
//! | a line break; an empty line | [`Inline::LineBreak`]; a new paragraph |
//!
//! Zoom has no inline code: [`Inline::Code`] is written as its plain text. Other formats
//! (`Underline`, colours, sizes, indents) are read as plain text.
//!
//! **Positions** count Unicode characters (scalar values) of `message` from 0, both ends
//! included; Zoom's reference does not say whether it counts UTF-16 units, as JavaScript
//! would, which differs only for characters beyond the Basic Multilingual Plane (most emoji).
//! This reading is unverified against a real Zoom account (docs/platforms/zoom.md).

use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};

use crate::wire::{AtItem, Format};

/// A formatted range to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    /// Included.
    pub end: usize,
    pub format_type: &'static str,
    pub format_attr: Option<String>,
}

/// A mention to send, of a Zoom user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtMention {
    pub user: ExternalUserId,
    pub start: usize,
    /// Included.
    pub end: usize,
}

/// A message as Zoom takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub message: String,
    pub rich_text: Vec<Range>,
    pub at_items: Vec<AtMention>,
}

impl Rendered {
    /// The fields of a send or an edit: `message`, and `rich_text` and `at_items` when there
    /// are any.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("message".to_owned(), self.message.clone().into());
        if !self.rich_text.is_empty() {
            let ranges = self
                .rich_text
                .iter()
                .map(|range| {
                    let mut value = serde_json::json!({
                        "start_position": range.start,
                        "end_position": range.end,
                        "format_type": range.format_type,
                    });
                    if let Some(attr) = &range.format_attr {
                        value["format_attr"] = attr.clone().into();
                    }
                    value
                })
                .collect();
            fields.insert("rich_text".to_owned(), serde_json::Value::Array(ranges));
        }
        if !self.at_items.is_empty() {
            let mentions = self
                .at_items
                .iter()
                .map(|item| {
                    serde_json::json!({
                        "at_contact": item.user.as_str(),
                        "at_type": 1,
                        "start_position": item.start,
                        "end_position": item.end,
                    })
                })
                .collect();
            fields.insert("at_items".to_owned(), serde_json::Value::Array(mentions));
        }
        fields
    }
}

const BOLD: &str = "Bold";
const ITALIC: &str = "Italic";
const STRIKE: &str = "Strikethrough";
const LINK: &str = "AddLink";
const CODE_BLOCK: &str = "CodeBlock";
const QUOTE: &str = "Quote";
const BULLETED: &str = "BulletedList";
const NUMBERED: &str = "NumberedList";

/// Writes `text` as Zoom's plain text with ranges and mentions.
pub fn render(text: &RichText) -> Rendered {
    let mut writer = Writer::default();
    writer.blocks(&text.blocks);
    writer.out
}

#[derive(Default)]
struct Writer {
    out: Rendered,
    /// Characters written so far.
    length: usize,
}

impl Writer {
    fn push(&mut self, text: &str) {
        self.out.message.push_str(text);
        self.length += text.chars().count();
    }

    /// Marks what was written from `start` on with `format_type`, unless nothing was.
    fn range(&mut self, start: usize, format_type: &'static str, format_attr: Option<String>) {
        if self.length > start {
            self.out.rich_text.push(Range {
                start,
                end: self.length - 1,
                format_type,
                format_attr,
            });
        }
    }

    /// Blocks one below the other.
    fn blocks(&mut self, blocks: &[Block]) {
        for (index, block) in blocks.iter().enumerate() {
            if index > 0 {
                // An empty line between blocks, as between paragraphs; inside a quote the
                // quote's range covers it, so that a quote of two paragraphs stays one.
                self.push("\n\n");
            }
            let start = self.length;
            match block {
                Block::Paragraph(inlines) => self.inlines(inlines),
                Block::Quote(inner) => {
                    self.blocks(inner);
                    self.range(start, QUOTE, None);
                }
                Block::CodeBlock(code) => {
                    self.push(code);
                    self.range(start, CODE_BLOCK, None);
                }
                Block::List { ordered, items } => {
                    let format = if *ordered { NUMBERED } else { BULLETED };
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            self.push("\n");
                        }
                        let item_start = self.length;
                        self.inlines(item);
                        self.range(item_start, format, None);
                    }
                }
            }
        }
    }

    fn inlines(&mut self, inlines: &[Inline]) {
        for inline in inlines {
            let start = self.length;
            match inline {
                Inline::Text(text) | Inline::Code(text) => self.push(text),
                Inline::LineBreak => self.push("\n"),
                Inline::Bold(inner) => {
                    self.inlines(inner);
                    self.range(start, BOLD, None);
                }
                Inline::Italic(inner) => {
                    self.inlines(inner);
                    self.range(start, ITALIC, None);
                }
                Inline::Strike(inner) => {
                    self.inlines(inner);
                    self.range(start, STRIKE, None);
                }
                Inline::Link { url, label } => {
                    self.inlines(label);
                    if self.length == start {
                        self.push(url);
                    }
                    self.range(start, LINK, Some(url.clone()));
                }
                Inline::Mention(mention) => {
                    let label = if mention.label.is_empty() {
                        mention.user.as_str()
                    } else {
                        mention.label.as_str()
                    };
                    self.push(&format!("@{label}"));
                    self.out.at_items.push(AtMention {
                        user: mention.user.clone(),
                        start,
                        end: self.length - 1,
                    });
                }
            }
        }
    }
}

/// What one character is, as the ranges over it say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    italic: bool,
    strike: bool,
    link: Option<String>,
    /// The mention it belongs to (its index among the mentions), with the user.
    mention: Option<(usize, ExternalUserId)>,
}

/// What a line is, as the ranges over it say (a quote is said apart: it may hold any of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Text,
    Code,
    Bullet,
    Number,
}

/// A line of the message: where it starts and ends (its `\n` excluded), what it is, and
/// whether it is quoted.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    kind: LineKind,
    quoted: bool,
}

/// Reads a message: its text, its formatted ranges and its mentions, each mention's user as
/// `user_of` resolves it (an event names users by id, a list by e-mail address); a mention of
/// no one the resolver knows, or of everyone, stays text.
pub(crate) fn parse(
    message: &str,
    formats: &[Format],
    at_items: &[AtItem],
    user_of: impl Fn(&AtItem) -> Option<ExternalUserId>,
) -> RichText {
    let chars: Vec<char> = message.chars().collect();
    let mut styles = vec![Style::default(); chars.len()];
    let mut line_kinds: Vec<Option<LineKind>> = vec![None; chars.len()];
    let mut quoted = vec![false; chars.len()];
    let within =
        |start: Option<usize>, end: Option<usize>| -> Option<std::ops::RangeInclusive<usize>> {
            let (start, end) = (start?, end?.min(chars.len().checked_sub(1)?));
            (start <= end).then_some(start..=end)
        };
    for format in formats {
        let Some(span) = within(format.start_position, format.end_position) else {
            continue;
        };
        let kind = format.format_type.as_deref().unwrap_or_default();
        for position in span {
            let style = &mut styles[position];
            match kind {
                BOLD => style.bold = true,
                ITALIC => style.italic = true,
                STRIKE => style.strike = true,
                LINK => style.link = format.format_attr.clone().filter(|url| !url.is_empty()),
                CODE_BLOCK => line_kinds[position] = Some(LineKind::Code),
                QUOTE => quoted[position] = true,
                BULLETED => line_kinds[position] = Some(LineKind::Bullet),
                NUMBERED => line_kinds[position] = Some(LineKind::Number),
                _ => {}
            }
        }
    }
    for (index, item) in at_items.iter().enumerate() {
        if item.at_type != Some(1) {
            continue;
        }
        let (Some(span), Some(user)) = (
            within(item.start_position, item.end_position),
            user_of(item),
        ) else {
            continue;
        };
        for position in span {
            styles[position].mention = Some((index, user.clone()));
        }
    }

    // Lines, each with what the ranges over its characters say; an empty line has none of
    // its own and takes what its `\n` is under (an empty line inside a quote or a code block
    // belongs to it).
    let mut lines = Vec::new();
    let mut start = 0;
    for end in (0..=chars.len()).filter(|&i| i == chars.len() || chars[i] == '\n') {
        let covered = if start == end {
            end..(end + 1).min(chars.len())
        } else {
            start..end
        };
        lines.push(Line {
            start,
            end,
            kind: covered
                .clone()
                .find_map(|i| line_kinds[i])
                .unwrap_or(LineKind::Text),
            quoted: covered.clone().any(|i| quoted[i]),
        });
        start = end + 1;
    }
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        if lines[index].quoted {
            let run = run_end(&lines, index, |line| line.quoted);
            blocks.push(Block::Quote(line_blocks(
                &chars,
                &styles,
                &lines[index..run],
            )));
            index = run;
        } else {
            let run = run_end(&lines, index, |line| !line.quoted);
            blocks.extend(line_blocks(&chars, &styles, &lines[index..run]));
            index = run;
        }
    }
    RichText { blocks }.normalize()
}

/// Where the run of lines from `from` on that `within` holds for ends.
fn run_end(lines: &[Line], from: usize, within: impl Fn(&Line) -> bool) -> usize {
    lines[from..]
        .iter()
        .position(|line| !within(line))
        .map_or(lines.len(), |offset| from + offset)
}

/// Lines as blocks: runs of lines of one kind.
fn line_blocks(chars: &[char], styles: &[Style], lines: &[Line]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let kind = lines[index].kind;
        let run = run_end(lines, index, |line| line.kind == kind);
        let group = &lines[index..run];
        blocks.push(match kind {
            LineKind::Text => Block::Paragraph(joined(chars, styles, group)),
            LineKind::Code => Block::CodeBlock(
                chars[group[0].start..group[group.len() - 1].end]
                    .iter()
                    .collect(),
            ),
            LineKind::Bullet | LineKind::Number => Block::List {
                ordered: kind == LineKind::Number,
                items: group
                    .iter()
                    .map(|line| styled(chars, styles, line.start, line.end))
                    .collect(),
            },
        });
        index = run;
    }
    blocks
}

/// The lines' inlines, with a line break between each.
fn joined(chars: &[char], styles: &[Style], lines: &[Line]) -> Vec<Inline> {
    let mut inlines = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            inlines.push(Inline::LineBreak);
        }
        inlines.extend(styled(chars, styles, line.start, line.end));
    }
    inlines
}

/// The characters `start..end` (one line) as inlines, nested bold › italic › strike › link ›
/// mention, each span as long as its style runs.
fn styled(chars: &[char], styles: &[Style], start: usize, end: usize) -> Vec<Inline> {
    let runs: Vec<(&Style, String)> = (start..end).fold(Vec::new(), |mut runs, i| {
        match runs.last_mut() {
            Some((style, text)) if *style == &styles[i] => text.push(chars[i]),
            _ => runs.push((&styles[i], chars[i].to_string())),
        }
        runs
    });
    nest(&runs, 0)
}

/// The style levels, outermost first.
const LEVELS: usize = 5;

/// A key of `style` at `level` that runs sharing it are grouped by; `None` when the level's
/// style is absent.
fn key(style: &Style, level: usize) -> Option<String> {
    match level {
        0 => style.bold.then(String::new),
        1 => style.italic.then(String::new),
        2 => style.strike.then(String::new),
        3 => style.link.clone(),
        _ => style.mention.as_ref().map(|(index, _)| index.to_string()),
    }
}

fn nest(runs: &[(&Style, String)], level: usize) -> Vec<Inline> {
    if level == LEVELS {
        return runs
            .iter()
            .map(|(_, text)| Inline::Text(text.clone()))
            .collect();
    }
    let mut out = Vec::new();
    let mut index = 0;
    while index < runs.len() {
        let group_key = key(runs[index].0, level);
        let end = runs[index..]
            .iter()
            .position(|(style, _)| key(style, level) != group_key)
            .map_or(runs.len(), |offset| index + offset);
        let group = &runs[index..end];
        let inner = || nest(group, level + 1);
        match (level, group_key) {
            (_, None) => out.extend(inner()),
            (0, Some(_)) => out.push(Inline::Bold(inner())),
            (1, Some(_)) => out.push(Inline::Italic(inner())),
            (2, Some(_)) => out.push(Inline::Strike(inner())),
            (3, Some(url)) => out.push(Inline::Link {
                url,
                label: inner(),
            }),
            (_, Some(_)) => {
                let text: String = group.iter().map(|(_, text)| text.as_str()).collect();
                out.push(match &group[0].0.mention {
                    Some((_, user)) => Inline::Mention(Mention {
                        user: user.clone(),
                        label: text.strip_prefix('@').unwrap_or(&text).to_owned(),
                    }),
                    None => Inline::Text(text),
                });
            }
        }
        index = end;
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

    fn format(start: usize, end: usize, kind: &str, attr: Option<&str>) -> Format {
        Format {
            start_position: Some(start),
            end_position: Some(end),
            format_type: Some(kind.to_owned()),
            format_attr: attr.map(str::to_owned),
        }
    }

    fn at(user: &str, start: usize, end: usize) -> AtItem {
        AtItem {
            at_contact: Some(format!("{user}@acme.example")),
            at_contact_user_id: Some(user.to_owned()),
            at_type: Some(1),
            start_position: Some(start),
            end_position: Some(end),
        }
    }

    fn by_id(item: &AtItem) -> Option<ExternalUserId> {
        item.at_contact_user_id.clone().map(ExternalUserId::new)
    }

    /// A round trip through Zoom's own form: what is rendered, read back as Zoom would list it.
    fn reread(rendered: &Rendered) -> RichText {
        let formats: Vec<Format> = rendered
            .rich_text
            .iter()
            .map(|r| format(r.start, r.end, r.format_type, r.format_attr.as_deref()))
            .collect();
        let mentions: Vec<AtItem> = rendered
            .at_items
            .iter()
            .map(|m| at(m.user.as_str(), m.start, m.end))
            .collect();
        parse(&rendered.message, &formats, &mentions, by_id)
    }

    #[test]
    fn styles_links_and_mentions_are_written_as_ranges() {
        let rich = RichText {
            blocks: vec![Block::Paragraph(vec![
                text("Hi "),
                mention("U1", "Ada"),
                text(", "),
                Inline::Bold(vec![text("very "), Inline::Italic(vec![text("much")])]),
                text(" see "),
                Inline::Link {
                    url: "https://x.org".to_owned(),
                    label: vec![text("this")],
                },
            ])],
        };
        let rendered = render(&rich);
        assert_eq!(rendered.message, "Hi @Ada, very much see this");
        assert_eq!(
            rendered.at_items,
            vec![AtMention {
                user: ExternalUserId::new("U1"),
                start: 3,
                end: 6
            }]
        );
        let kinds: Vec<(usize, usize, &str)> = rendered
            .rich_text
            .iter()
            .map(|r| (r.start, r.end, r.format_type))
            .collect();
        assert_eq!(
            kinds,
            vec![(14, 17, "Italic"), (9, 17, "Bold"), (23, 26, "AddLink")]
        );
        assert_eq!(
            rendered.rich_text[2].format_attr.as_deref(),
            Some("https://x.org")
        );
        assert_eq!(reread(&rendered), rich);
        let fields = rendered.fields();
        assert_eq!(fields["at_items"][0]["at_contact"], "U1");
        assert_eq!(fields["at_items"][0]["at_type"], 1);
        assert_eq!(fields["rich_text"][2]["format_attr"], "https://x.org");
    }

    #[test]
    fn positions_count_characters_not_bytes_or_utf16_units() {
        // "é" is two bytes, "😀" four bytes and two UTF-16 units; each is one position.
        let rich = RichText {
            blocks: vec![Block::Paragraph(vec![
                text("é😀 "),
                Inline::Bold(vec![text("x")]),
                text(" "),
                mention("U2", "Zoë"),
            ])],
        };
        let rendered = render(&rich);
        assert_eq!(rendered.message, "é😀 x @Zoë");
        assert_eq!(
            (rendered.rich_text[0].start, rendered.rich_text[0].end),
            (3, 3)
        );
        assert_eq!(
            (rendered.at_items[0].start, rendered.at_items[0].end),
            (5, 8)
        );
        assert_eq!(reread(&rendered), rich);
    }

    #[test]
    fn blocks_are_written_line_by_line_and_read_back() {
        let rich = RichText {
            blocks: vec![
                Block::Paragraph(vec![text("one"), Inline::LineBreak, text("two")]),
                Block::Quote(vec![Block::Paragraph(vec![text("quoted")])]),
                Block::CodeBlock("let x = 1;\nlet y = 2;".to_owned()),
                Block::List {
                    ordered: true,
                    items: vec![
                        vec![text("first")],
                        vec![Inline::Bold(vec![text("second")])],
                    ],
                },
                Block::List {
                    ordered: false,
                    items: vec![vec![text("dot")]],
                },
                Block::Paragraph(vec![text("end")]),
            ],
        };
        let rendered = render(&rich);
        assert_eq!(
            rendered.message,
            "one\ntwo\n\nquoted\n\nlet x = 1;\nlet y = 2;\n\nfirst\nsecond\n\ndot\n\nend"
        );
        assert_eq!(reread(&rendered), rich);
    }

    #[test]
    fn unknown_mentions_everyone_and_odd_ranges_stay_text() {
        let everyone = AtItem {
            at_type: Some(2),
            ..at("", 0, 3)
        };
        let stranger = AtItem {
            at_contact_user_id: None,
            ..at("", 5, 8)
        };
        let read = parse(
            "@all @Bob hi",
            &[
                format(10, 40, "Bold", None),
                format(3, 1, "Italic", None),
                format(0, 1, "FontColor", Some("#fff")),
                Format {
                    start_position: None,
                    ..format(0, 0, "Bold", None)
                },
            ],
            &[everyone, stranger],
            by_id,
        );
        assert_eq!(
            read,
            RichText {
                blocks: vec![Block::Paragraph(vec![
                    text("@all @Bob "),
                    Inline::Bold(vec![text("hi")])
                ])]
            }
        );
        assert_eq!(
            parse("", &[format(0, 5, "Bold", None)], &[], by_id),
            RichText::default()
        );
    }

    #[test]
    fn inline_code_is_written_as_its_text() {
        let rendered = render(&RichText {
            blocks: vec![Block::Paragraph(vec![
                text("run "),
                Inline::Code("ls -l".to_owned()),
            ])],
        });
        assert_eq!(rendered.message, "run ls -l");
        assert!(rendered.rich_text.is_empty());
    }

    proptest! {
        #[test]
        fn what_is_rendered_reads_back_the_same_as_plain_text(rich in portable_rich_text()) {
            let rendered = render(&rich);
            prop_assert_eq!(reread(&rendered).to_plain_text(), rich.to_plain_text());
        }
    }
}
