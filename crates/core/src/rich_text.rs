//! A chat message's formatting, independent of any platform: what the relay translates between
//! Slack's mrkdwn and Teams' HTML. Each platform module parses its markup into [`RichText`] and
//! renders [`RichText`] back, so n platforms need n translations, not n².
//!
//! The model holds only what chat platforms commonly share. Emoji are plain Unicode inside
//! [`Inline::Text`]; a platform's short codes are translated at its edge.

use crate::ExternalUserId;

/// A message: a sequence of blocks, shown one below the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RichText {
    pub blocks: Vec<Block>,
}

/// A block of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    Quote(Vec<Block>),
    /// Preformatted text, shown verbatim.
    CodeBlock(String),
    /// Each item is one line of inline content; platforms without nested lists flatten them.
    List {
        ordered: bool,
        items: Vec<Vec<Inline>>,
    },
}

/// Content within a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Bold(Vec<Inline>),
    Italic(Vec<Inline>),
    Strike(Vec<Inline>),
    Code(String),
    Link { url: String, label: Vec<Inline> },
    Mention(Mention),
    LineBreak,
}

/// A mention of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// The user's id on the platform the text came from or goes to.
    pub user: ExternalUserId,
    /// The name shown, without `@`; empty when the platform's markup does not carry it (Slack's
    /// `<@U123>`), for the relay to fill in.
    pub label: String,
}

impl RichText {
    /// Unformatted text; line breaks become [`Inline::LineBreak`], blank lines separate paragraphs.
    pub fn plain(text: &str) -> Self {
        let blocks = text
            .split("\n\n")
            .map(|paragraph| {
                let mut inlines = Vec::new();
                for (index, line) in paragraph.split('\n').enumerate() {
                    if index > 0 {
                        inlines.push(Inline::LineBreak);
                    }
                    inlines.push(Inline::Text(line.to_owned()));
                }
                Block::Paragraph(inlines)
            })
            .collect();
        Self { blocks }.normalize()
    }

    /// This text followed by a line naming what was sent with the message and is not relayed
    /// (files, cards), so that the reader on the other platform knows something is missing,
    /// and what, rather than never learning of it. Nothing is added when `names` is empty.
    pub fn noting_unrelayed(mut self, names: &[String]) -> Self {
        if !names.is_empty() {
            self.blocks
                .push(Block::Paragraph(vec![Inline::Italic(vec![Inline::Text(
                    format!(
                        "📎 Sent with this message, not relayed: {}",
                        names.join(", ")
                    ),
                )])]));
        }
        self
    }

    /// A readable rendering without markup, for platforms or notifications that show plain text
    /// only: mentions as `@Name`, links as `label (url)`, list items as `- ` or `1. `, quoted
    /// lines prefixed with `> `.
    pub fn to_plain_text(&self) -> String {
        blocks_plain(&self.blocks)
    }

    /// Every mention, in reading order.
    pub fn mentions(&self) -> impl Iterator<Item = &Mention> {
        let mut found = Vec::new();
        for block in &self.blocks {
            block_mentions(block, &mut found);
        }
        found.into_iter()
    }

    /// Replaces each mention with what `map` returns, typically the same person's id on the
    /// target platform. A mention `map` cannot translate becomes the text `@Label`, so the reader
    /// still sees who was meant.
    pub fn map_mentions(self, mut map: impl FnMut(&Mention) -> Option<Mention>) -> Self {
        let blocks = self
            .blocks
            .into_iter()
            .map(|block| map_block(block, &mut map))
            .collect();
        Self { blocks }.normalize()
    }

    /// The canonical form in which two texts meaning the same compare equal: adjacent text is
    /// merged and a style nested in itself is flattened, empty text, spans, paragraphs, quotes, lists and items are dropped, line breaks
    /// at a paragraph's start or end are dropped, two or more line breaks in a row split the
    /// paragraph, and a link without a label is labelled with its URL.
    pub fn normalize(self) -> Self {
        Self {
            blocks: normalize_blocks(self.blocks),
        }
    }
}

fn blocks_plain(blocks: &[Block]) -> String {
    let mut lines = Vec::new();
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => lines.push(inlines_plain(inlines)),
            Block::Quote(inner) => {
                let quoted = blocks_plain(inner);
                lines.extend(quoted.lines().map(|line| format!("> {line}")));
            }
            Block::CodeBlock(code) => lines.push(code.clone()),
            Block::List { ordered, items } => {
                for (index, item) in items.iter().enumerate() {
                    let marker = if *ordered {
                        format!("{}. ", index + 1)
                    } else {
                        "- ".to_owned()
                    };
                    lines.push(format!("{marker}{}", inlines_plain(item)));
                }
            }
        }
    }
    lines.join("\n")
}

fn inlines_plain(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(text) | Inline::Code(text) => out.push_str(text),
            Inline::Bold(inner) | Inline::Italic(inner) | Inline::Strike(inner) => {
                out.push_str(&inlines_plain(inner));
            }
            Inline::Link { url, label } => {
                let label = inlines_plain(label);
                if label.is_empty() || label == *url {
                    out.push_str(url);
                } else {
                    out.push_str(&format!("{label} ({url})"));
                }
            }
            Inline::Mention(mention) => out.push_str(&mention_fallback(mention)),
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

/// `@Label`, or `@` and the user id when no label is known, so a mention never reads as nothing.
fn mention_fallback(mention: &Mention) -> String {
    if mention.label.is_empty() {
        format!("@{}", mention.user)
    } else {
        format!("@{}", mention.label)
    }
}

fn block_mentions<'a>(block: &'a Block, found: &mut Vec<&'a Mention>) {
    match block {
        Block::Paragraph(inlines) => inline_mentions(inlines, found),
        Block::Quote(inner) => inner.iter().for_each(|b| block_mentions(b, found)),
        Block::CodeBlock(_) => {}
        Block::List { items, .. } => items.iter().for_each(|i| inline_mentions(i, found)),
    }
}

fn inline_mentions<'a>(inlines: &'a [Inline], found: &mut Vec<&'a Mention>) {
    for inline in inlines {
        match inline {
            Inline::Mention(mention) => found.push(mention),
            Inline::Bold(inner) | Inline::Italic(inner) | Inline::Strike(inner) => {
                inline_mentions(inner, found);
            }
            Inline::Link { label, .. } => inline_mentions(label, found),
            Inline::Text(_) | Inline::Code(_) | Inline::LineBreak => {}
        }
    }
}

fn map_block(block: Block, map: &mut impl FnMut(&Mention) -> Option<Mention>) -> Block {
    match block {
        Block::Paragraph(inlines) => Block::Paragraph(map_inlines(inlines, map)),
        Block::Quote(inner) => Block::Quote(inner.into_iter().map(|b| map_block(b, map)).collect()),
        Block::CodeBlock(code) => Block::CodeBlock(code),
        Block::List { ordered, items } => Block::List {
            ordered,
            items: items.into_iter().map(|i| map_inlines(i, map)).collect(),
        },
    }
}

fn map_inlines(
    inlines: Vec<Inline>,
    map: &mut impl FnMut(&Mention) -> Option<Mention>,
) -> Vec<Inline> {
    inlines
        .into_iter()
        .map(|inline| match inline {
            Inline::Mention(mention) => match map(&mention) {
                Some(mapped) => Inline::Mention(mapped),
                None => Inline::Text(mention_fallback(&mention)),
            },
            Inline::Bold(inner) => Inline::Bold(map_inlines(inner, map)),
            Inline::Italic(inner) => Inline::Italic(map_inlines(inner, map)),
            Inline::Strike(inner) => Inline::Strike(map_inlines(inner, map)),
            Inline::Link { url, label } => Inline::Link {
                url,
                label: map_inlines(label, map),
            },
            other => other,
        })
        .collect()
}

fn normalize_blocks(blocks: Vec<Block>) -> Vec<Block> {
    let mut out = Vec::new();
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => {
                for paragraph in split_paragraph(normalize_inlines(inlines)) {
                    out.push(Block::Paragraph(paragraph));
                }
            }
            Block::Quote(inner) => {
                let inner = normalize_blocks(inner);
                if !inner.is_empty() {
                    out.push(Block::Quote(inner));
                }
            }
            Block::CodeBlock(code) => {
                if !code.is_empty() {
                    out.push(Block::CodeBlock(code));
                }
            }
            Block::List { ordered, items } => {
                let items: Vec<_> = items
                    .into_iter()
                    .map(|item| trim_breaks(normalize_inlines(item)))
                    .filter(|item| !item.is_empty())
                    .collect();
                if !items.is_empty() {
                    out.push(Block::List { ordered, items });
                }
            }
        }
    }
    out
}

/// Splits at runs of two or more line breaks (a blank line), trimming breaks at either end.
fn split_paragraph(inlines: Vec<Inline>) -> Vec<Vec<Inline>> {
    let mut paragraphs = vec![Vec::new()];
    let mut pending_breaks = 0;
    for inline in inlines {
        if inline == Inline::LineBreak {
            pending_breaks += 1;
            continue;
        }
        if let Some(current) = paragraphs.last_mut() {
            if pending_breaks >= 2 && !current.is_empty() {
                paragraphs.push(Vec::new());
            } else if pending_breaks == 1 && !current.is_empty() {
                current.push(Inline::LineBreak);
            }
        }
        pending_breaks = 0;
        if let Some(current) = paragraphs.last_mut() {
            current.push(inline);
        }
    }
    paragraphs.retain(|p| !p.is_empty());
    paragraphs
}

fn trim_breaks(mut inlines: Vec<Inline>) -> Vec<Inline> {
    while inlines.last() == Some(&Inline::LineBreak) {
        inlines.pop();
    }
    let leading = inlines
        .iter()
        .take_while(|i| **i == Inline::LineBreak)
        .count();
    inlines.drain(..leading);
    inlines
}

fn normalize_inlines(inlines: Vec<Inline>) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::new();
    for inline in inlines {
        let inline = match inline {
            Inline::Text(text) if text.is_empty() => continue,
            Inline::Code(code) if code.is_empty() => continue,
            Inline::Bold(inner) => Inline::Bold(flatten_style(normalize_inlines(inner), is_bold)),
            Inline::Italic(inner) => {
                Inline::Italic(flatten_style(normalize_inlines(inner), is_italic))
            }
            Inline::Strike(inner) => {
                Inline::Strike(flatten_style(normalize_inlines(inner), is_strike))
            }
            Inline::Link { url, label } => {
                let label = normalize_inlines(label);
                let label = if label.is_empty() {
                    vec![Inline::Text(url.clone())]
                } else {
                    label
                };
                Inline::Link { url, label }
            }
            other => other,
        };
        if matches!(&inline, Inline::Bold(i) | Inline::Italic(i) | Inline::Strike(i) if i.is_empty())
        {
            continue;
        }
        push_merged(&mut out, inline);
    }
    out
}

/// Adjacent spans of one style are kept apart: joined, the text of two spans can pair up markers
/// that were apart (Slack's `~_~~x_~` is two struck spans, `_` and `x_`, not an italic one).
fn push_merged(out: &mut Vec<Inline>, inline: Inline) {
    match (out.last_mut(), inline) {
        (Some(Inline::Text(previous)), Inline::Text(text)) => previous.push_str(&text),
        (_, inline) => out.push(inline),
    }
}

fn is_bold(inline: &Inline) -> Option<&[Inline]> {
    match inline {
        Inline::Bold(inner) => Some(inner),
        _ => None,
    }
}

fn is_italic(inline: &Inline) -> Option<&[Inline]> {
    match inline {
        Inline::Italic(inner) => Some(inner),
        _ => None,
    }
}

fn is_strike(inline: &Inline) -> Option<&[Inline]> {
    match inline {
        Inline::Strike(inner) => Some(inner),
        _ => None,
    }
}

/// Bold inside bold is just bold: lifts the inner span's content into the outer one.
fn flatten_style(inlines: Vec<Inline>, same: fn(&Inline) -> Option<&[Inline]>) -> Vec<Inline> {
    if !inlines.iter().any(|i| same(i).is_some()) {
        return inlines;
    }
    let mut out = Vec::new();
    for inline in inlines {
        match same(&inline) {
            Some(inner) => out.extend(inner.iter().cloned()),
            None => out.push(inline),
        }
    }
    normalize_inlines(out)
}

/// Generators of [`RichText`] for property tests of the platform modules.
#[cfg(any(test, feature = "proptest"))]
pub mod strategy {
    use proptest::prelude::*;

    use super::{Block, Inline, Mention, RichText};
    use crate::ExternalUserId;

    /// Normalised texts that Slack's mrkdwn and Teams' HTML can both express, so that
    /// `parse(render(text)) == text` must hold on either platform:
    /// - styles and links start and end at word boundaries (mrkdwn only recognises `*bold*`
    ///   between spaces or punctuation), a style is never nested in itself, and a link's label is
    ///   plain text;
    /// - text holds no markup characters of mrkdwn (`*_~` `` ` `` `:`), which mrkdwn cannot
    ///   escape, and no line starts with a list or quote marker; it does hold `&<>"'`, accents
    ///   and emoji;
    /// - line breaks stand only between words of a paragraph, never in a style, a list item or at
    ///   a paragraph's start or end, and code blocks neither start nor end with a line break.
    ///
    /// Mentions carry labels; Slack's `<@U123>` does not, so its tests clear them. User ids are
    /// long enough that two mentions side by side are of different people (Teams reads a
    /// person's name split over two `<at>` tags as one mention).
    pub fn portable_rich_text() -> impl Strategy<Value = RichText> {
        prop::collection::vec(block(), 1..4).prop_map(|blocks| RichText { blocks }.normalize())
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-zé😀][a-z0-9&<>\"'é😀]{0,6}"
    }

    fn words() -> impl Strategy<Value = String> {
        prop::collection::vec(word(), 1..4).prop_map(|w| w.join(" "))
    }

    fn url() -> impl Strategy<Value = String> {
        "https://[a-z]{1,6}\\.org(/[a-z0-9]{1,4})?(\\?a=[a-z0-9]{1,3}&b=1)?"
    }

    fn mention() -> impl Strategy<Value = Inline> {
        ("U[A-Z0-9]{8}", words()).prop_map(|(user, label)| {
            Inline::Mention(Mention {
                user: ExternalUserId::new(user),
                label,
            })
        })
    }

    fn link() -> impl Strategy<Value = Inline> {
        (url(), prop::option::of(words())).prop_map(|(url, label)| {
            let label = label.unwrap_or_else(|| url.clone());
            Inline::Link {
                url,
                label: vec![Inline::Text(label)],
            }
        })
    }

    fn code() -> impl Strategy<Value = Inline> {
        "[a-z0-9&<>*_~ ]{0,5}[a-z0-9&<>*_~]".prop_map(Inline::Code)
    }

    /// Words, code, links and mentions: what can stand anywhere in a line.
    fn atom() -> impl Strategy<Value = Inline> {
        prop_oneof![
            4 => word().prop_map(Inline::Text),
            1 => code(),
            1 => link(),
            1 => mention(),
        ]
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Style {
        Bold,
        Italic,
        Strike,
    }

    fn styled(style: Style, inner: Vec<Inline>) -> Inline {
        match style {
            Style::Bold => Inline::Bold(inner),
            Style::Italic => Inline::Italic(inner),
            Style::Strike => Inline::Strike(inner),
        }
    }

    fn style() -> impl Strategy<Value = Style> {
        prop_oneof![Just(Style::Bold), Just(Style::Italic), Just(Style::Strike)]
    }

    /// A styled span holding atoms and at most one more level of another style.
    fn span() -> impl Strategy<Value = Inline> {
        (
            style(),
            style(),
            prop::collection::vec((atom(), any::<bool>()), 1..4),
        )
            .prop_map(|(outer, inner, parts)| {
                let parts = parts
                    .into_iter()
                    .map(|(atom, nest)| {
                        if nest && inner != outer {
                            styled(inner, vec![atom])
                        } else {
                            atom
                        }
                    })
                    .collect();
                styled(outer, spaced(parts))
            })
    }

    fn spaced(parts: Vec<Inline>) -> Vec<Inline> {
        let mut out = Vec::new();
        for (index, part) in parts.into_iter().enumerate() {
            if index > 0 {
                out.push(Inline::Text(" ".to_owned()));
            }
            out.push(part);
        }
        out
    }

    /// One line's content, starting with a plain word so it never reads as a block marker.
    fn line() -> impl Strategy<Value = Vec<Inline>> {
        let part = prop_oneof![3 => atom(), 1 => span()];
        (word(), prop::collection::vec(part, 0..4)).prop_map(|(first, rest)| {
            spaced(
                std::iter::once(Inline::Text(first))
                    .chain(rest)
                    .collect::<Vec<_>>(),
            )
        })
    }

    fn paragraph() -> impl Strategy<Value = Block> {
        prop::collection::vec(line(), 1..3).prop_map(|lines| {
            let mut inlines = Vec::new();
            for (index, line) in lines.into_iter().enumerate() {
                if index > 0 {
                    inlines.push(Inline::LineBreak);
                }
                inlines.extend(line);
            }
            Block::Paragraph(inlines)
        })
    }

    fn list() -> impl Strategy<Value = Block> {
        (any::<bool>(), prop::collection::vec(line(), 1..4))
            .prop_map(|(ordered, items)| Block::List { ordered, items })
    }

    fn code_block() -> impl Strategy<Value = Block> {
        "[a-z0-9&<>*_ ]{1,8}(\n[a-z0-9&<>*_ ]{1,8}){0,2}".prop_map(Block::CodeBlock)
    }

    fn block() -> impl Strategy<Value = Block> {
        let quoted = prop_oneof![3 => paragraph(), 1 => list()];
        prop_oneof![
            4 => paragraph(),
            1 => prop::collection::vec(quoted, 1..3).prop_map(Block::Quote),
            1 => code_block(),
            1 => list(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text(value: &str) -> Inline {
        Inline::Text(value.to_owned())
    }

    fn mention(user: &str, label: &str) -> Inline {
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: label.to_owned(),
        })
    }

    #[test]
    fn what_is_not_relayed_is_named_below_the_text() {
        let text = RichText::plain("See attached");
        assert_eq!(text.clone().noting_unrelayed(&[]), text);
        let noted = text.noting_unrelayed(&["plan.pdf".to_owned(), "a card".to_owned()]);
        assert_eq!(
            noted.to_plain_text(),
            "See attached\n📎 Sent with this message, not relayed: plan.pdf, a card"
        );
        assert!(
            matches!(&noted.blocks[1], Block::Paragraph(line) if matches!(line[0], Inline::Italic(_)))
        );
    }

    #[test]
    fn plain_text_keeps_lines_and_paragraphs() {
        assert_eq!(
            RichText::plain("one\ntwo\n\nthree"),
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("one"), Inline::LineBreak, text("two")]),
                    Block::Paragraph(vec![text("three")]),
                ]
            }
        );
        assert_eq!(RichText::plain(""), RichText::default());
        assert_eq!(RichText::plain("\n\n\n"), RichText::default());
    }

    #[test]
    fn the_plain_fallback_reads_well() {
        let rich = RichText {
            blocks: vec![
                Block::Paragraph(vec![
                    Inline::Bold(vec![text("Hi")]),
                    text(" "),
                    mention("U1", "Ada"),
                    text(", see "),
                    Inline::Link {
                        url: "https://x.org".to_owned(),
                        label: vec![text("the site")],
                    },
                    text(" or "),
                    Inline::Link {
                        url: "https://y.org".to_owned(),
                        label: vec![text("https://y.org")],
                    },
                    text(" "),
                    mention("U2", ""),
                ]),
                Block::Quote(vec![Block::Paragraph(vec![
                    text("a"),
                    Inline::LineBreak,
                    text("b"),
                ])]),
                Block::List {
                    ordered: true,
                    items: vec![vec![text("first")], vec![Inline::Code("second".to_owned())]],
                },
                Block::List {
                    ordered: false,
                    items: vec![vec![text("dot")]],
                },
                Block::CodeBlock("let x = 1;".to_owned()),
            ],
        };
        assert_eq!(
            rich.to_plain_text(),
            "Hi @Ada, see the site (https://x.org) or https://y.org @U2\n> a\n> b\n1. first\n2. second\n- dot\nlet x = 1;"
        );
    }

    #[test]
    fn mentions_are_found_everywhere_and_mapped_or_spelled_out() {
        let rich = RichText {
            blocks: vec![
                Block::Paragraph(vec![Inline::Bold(vec![mention("U1", "Ada")])]),
                Block::Quote(vec![Block::Paragraph(vec![mention("U2", "Grace")])]),
                Block::List {
                    ordered: false,
                    items: vec![vec![text("x "), mention("U3", "Alan")]],
                },
            ],
        };
        let users: Vec<_> = rich.mentions().map(|m| m.user.as_str()).collect();
        assert_eq!(users, ["U1", "U2", "U3"]);

        let mapped = rich.map_mentions(|m| {
            (m.user.as_str() != "U3").then(|| Mention {
                user: ExternalUserId::new(format!("teams-{}", m.user)),
                label: m.label.clone(),
            })
        });
        assert_eq!(
            mapped,
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![Inline::Bold(vec![mention("teams-U1", "Ada")])]),
                    Block::Quote(vec![Block::Paragraph(vec![mention("teams-U2", "Grace")])]),
                    Block::List {
                        ordered: false,
                        items: vec![vec![text("x @Alan")]],
                    },
                ],
            }
        );
    }

    #[test]
    fn normalising_merges_flattens_and_drops_what_is_empty() {
        let messy = RichText {
            blocks: vec![
                Block::Paragraph(vec![
                    Inline::LineBreak,
                    text("a"),
                    text(""),
                    text("b"),
                    Inline::Bold(vec![text("c"), Inline::Bold(vec![text("d")])]),
                    Inline::Bold(vec![text("e")]),
                    Inline::Italic(vec![]),
                    Inline::Code(String::new()),
                    Inline::LineBreak,
                    Inline::LineBreak,
                    text("f"),
                    Inline::LineBreak,
                ]),
                Block::Paragraph(vec![]),
                Block::Quote(vec![Block::Paragraph(vec![text("")])]),
                Block::List {
                    ordered: false,
                    items: vec![vec![], vec![Inline::LineBreak]],
                },
                Block::CodeBlock(String::new()),
                Block::Paragraph(vec![Inline::Link {
                    url: "https://x.org".to_owned(),
                    label: vec![],
                }]),
            ],
        };
        assert_eq!(
            messy.normalize(),
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![
                        text("ab"),
                        Inline::Bold(vec![text("cd")]),
                        Inline::Bold(vec![text("e")]),
                    ]),
                    Block::Paragraph(vec![text("f")]),
                    Block::Paragraph(vec![Inline::Link {
                        url: "https://x.org".to_owned(),
                        label: vec![text("https://x.org")],
                    }]),
                ]
            }
        );
    }

    proptest! {
        #[test]
        fn generated_texts_are_normalised(rich in strategy::portable_rich_text()) {
            prop_assert_eq!(rich.clone().normalize(), rich);
        }

        #[test]
        fn mapping_every_mention_to_itself_changes_nothing(rich in strategy::portable_rich_text()) {
            prop_assert_eq!(rich.clone().map_mentions(|m| Some(m.clone())), rich);
        }
    }
}
