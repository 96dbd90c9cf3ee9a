//! Teams chat-message HTML ⇄ [`RichText`], read from Graph's `chatMessage` and
//! `chatMessageMention` resources
//! (<https://learn.microsoft.com/en-us/graph/api/resources/chatmessage>,
//! <https://learn.microsoft.com/en-us/graph/api/resources/chatmessagemention>) and the guide to
//! sending a message with a mention
//! (<https://learn.microsoft.com/en-us/graph/api/chatmessage-post>).
//!
//! | HTML | rich text |
//! |---|---|
//! | `<p>`, `<div>`, loose text between blocks | [`Block::Paragraph`] |
//! | `<h1>`…`<h6>` | a paragraph in bold |
//! | `<br>` | [`Inline::LineBreak`] |
//! | `<b>`, `<strong>` / `<i>`, `<em>` / `<s>`, `<strike>`, `<del>` | bold / italic / strike |
//! | `<code>` | [`Inline::Code`] |
//! | `<pre>`, `<codeblock>` | [`Block::CodeBlock`] |
//! | `<blockquote>` | [`Block::Quote`] |
//! | `<ul>`, `<ol>`, `<li>` | [`Block::List`]; nested lists are flattened into their parent |
//! | `<a href>` | [`Inline::Link`] (without `href`, its text) |
//! | `<at id="n">Name</at>` + `mentions[n]` | [`Inline::Mention`]; an id missing from `mentions` reads `@Name` |
//! | `<emoji alt="😀">`, `<img itemtype="http://schema.skype.com/Emoji" alt="😀">` | the `alt` text |
//! | entities, `&nbsp;` | the characters; a no-break space becomes a space |
//! | any other element | its content |
//!
//! Whitespace reads as a browser shows it: runs of spaces and line breaks in the source are one
//! space, and none is kept at a paragraph's or line's ends. Rendering writes `&nbsp;` where a
//! space would otherwise be collapsed, so spaces survive a round trip.
//!
//! The HTML is tokenised by `html5gum` (a WHATWG tokenizer with no dependencies, which recovers
//! from any malformed input); the few elements above are assembled into a tree here, tolerating
//! unclosed and stray tags as browsers do.

use html5gum::{Token, Tokenizer};
use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};

use crate::chat::escape;

/// A mention as a `chatMessage` carries it beside its HTML: `mentions[]`' `id`, `mentionText`
/// and `mentioned.user.id` (an Entra object id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamsMention {
    pub id: u32,
    pub text: String,
    pub user: ExternalUserId,
}

/// A message body to send: `body.content` (with `contentType: "html"`) and its `mentions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedHtml {
    pub content: String,
    pub mentions: Vec<TeamsMention>,
}

/// Elements nested deeper than this are read as their content, so hostile input cannot
/// exhaust the stack; messages nest a few levels at most.
const MAX_DEPTH: usize = 48;

/// Reads a `chatMessage`'s HTML body with its `mentions`. A body whose `contentType` is `text`
/// is [`RichText::plain`] instead.
pub fn parse(html: &str, mentions: &[TeamsMention]) -> RichText {
    let tree = build_tree(html);
    let reader = Reader { mentions };
    let blocks = reader.blocks(&tree);
    RichText {
        blocks: blocks.into_iter().map(spaces_in_block).collect(),
    }
    .normalize()
}

/// Writes `text` as a `chatMessage` HTML body and the `mentions` its `<at>` tags refer to.
pub fn render(text: &RichText) -> RenderedHtml {
    let mut writer = Writer {
        content: String::new(),
        mentions: Vec::new(),
    };
    for block in &text.blocks {
        writer.block(block);
    }
    RenderedHtml {
        content: writer.content,
        mentions: writer.mentions,
    }
}

enum Node {
    Element {
        name: String,
        attributes: Vec<(String, String)>,
        children: Vec<Node>,
    },
    Text(String),
}

impl Node {
    fn attribute(&self, wanted: &str) -> Option<&str> {
        match self {
            Node::Element { attributes, .. } => attributes
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.as_str()),
            Node::Text(_) => None,
        }
    }
}

/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

struct Open {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Node>,
}

fn build_tree(html: &str) -> Vec<Node> {
    let mut stack = vec![Open {
        name: String::new(),
        attributes: Vec::new(),
        children: Vec::new(),
    }];
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).into_owned();
                let attributes = tag
                    .attributes
                    .iter()
                    .map(|(key, value)| {
                        (
                            String::from_utf8_lossy(key).into_owned(),
                            String::from_utf8_lossy(&value.value).into_owned(),
                        )
                    })
                    .collect();
                if VOID.contains(&name.as_str()) || tag.self_closing {
                    push_child(
                        &mut stack,
                        Node::Element {
                            name,
                            attributes,
                            children: Vec::new(),
                        },
                    );
                } else if stack.len() <= MAX_DEPTH {
                    stack.push(Open {
                        name,
                        attributes,
                        children: Vec::new(),
                    });
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name);
                // The root (index 0) is never closed; a stray end tag closes nothing.
                if let Some(position) = stack.iter().skip(1).rposition(|open| open.name == name) {
                    while stack.len() > position + 1 {
                        close(&mut stack);
                    }
                }
            }
            Token::String(text) => {
                push_child(
                    &mut stack,
                    Node::Text(String::from_utf8_lossy(&text.value).into_owned()),
                );
            }
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    stack.pop().map(|root| root.children).unwrap_or_default()
}

fn push_child(stack: &mut [Open], node: Node) {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(node);
    }
}

fn close(stack: &mut Vec<Open>) {
    if let Some(open) = stack.pop() {
        push_child(
            stack,
            Node::Element {
                name: open.name,
                attributes: open.attributes,
                children: open.children,
            },
        );
    }
}

struct Reader<'a> {
    mentions: &'a [TeamsMention],
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Elements whose content is laid out as blocks of its own.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "blockquote"
            | "pre"
            | "codeblock"
            | "ul"
            | "ol"
            | "li"
            | "table"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "body"
            | "html"
            | "hr"
    ) || is_heading(name)
}

impl Reader<'_> {
    fn blocks(&self, nodes: &[Node]) -> Vec<Block> {
        let mut blocks = Vec::new();
        let mut paragraph = Vec::new();
        for node in nodes {
            let Node::Element { name, children, .. } = node else {
                self.inline(node, &mut paragraph);
                continue;
            };
            if !is_block(name) {
                self.inline(node, &mut paragraph);
                continue;
            }
            flush(&mut paragraph, &mut blocks);
            match name.as_str() {
                "blockquote" => blocks.push(Block::Quote(self.blocks(children))),
                "pre" | "codeblock" => {
                    let mut code = String::new();
                    text_content(children, &mut code);
                    // As in a browser, a line break right after `<pre>` is not content.
                    let code = code.strip_prefix('\n').unwrap_or(&code);
                    blocks.push(Block::CodeBlock(verbatim(code)));
                }
                "ul" | "ol" => {
                    let mut items = Vec::new();
                    self.list_items(children, &mut items);
                    blocks.push(Block::List {
                        ordered: name == "ol",
                        items,
                    });
                }
                heading if is_heading(heading) => {
                    let mut inlines = Vec::new();
                    self.inlines(children, &mut inlines);
                    blocks.push(Block::Paragraph(trim_lines(vec![Inline::Bold(inlines)])));
                }
                _ => blocks.extend(self.blocks(children)),
            }
        }
        flush(&mut paragraph, &mut blocks);
        blocks
    }

    /// A list's items; a nested list's items follow the item they are in.
    fn list_items(&self, nodes: &[Node], items: &mut Vec<Vec<Inline>>) {
        let mut loose = Vec::new();
        for node in nodes {
            match node {
                Node::Element { name, children, .. } if name == "li" => {
                    push_item(&mut loose, items);
                    let mut item = Vec::new();
                    let mut nested = Vec::new();
                    for child in children {
                        match child {
                            Node::Element { name, children, .. }
                                if name == "ul" || name == "ol" =>
                            {
                                self.list_items(children, &mut nested);
                            }
                            Node::Element { name, children, .. } if is_block(name) => {
                                item.push(Inline::LineBreak);
                                self.inlines(children, &mut item);
                                item.push(Inline::LineBreak);
                            }
                            other => self.inline(other, &mut item),
                        }
                    }
                    push_item(&mut item, items);
                    items.append(&mut nested);
                }
                Node::Element { name, children, .. } if name == "ul" || name == "ol" => {
                    push_item(&mut loose, items);
                    self.list_items(children, items);
                }
                other => self.inline(other, &mut loose),
            }
        }
        push_item(&mut loose, items);
    }

    fn inlines(&self, nodes: &[Node], out: &mut Vec<Inline>) {
        for node in nodes {
            self.inline(node, out);
        }
    }

    fn inline(&self, node: &Node, out: &mut Vec<Inline>) {
        let (name, children) = match node {
            Node::Text(text) => {
                out.push(Inline::Text(collapse_whitespace(text)));
                return;
            }
            Node::Element { name, children, .. } => (name.as_str(), children),
        };
        let styled = |wrap: fn(Vec<Inline>) -> Inline, out: &mut Vec<Inline>| {
            let mut inner = Vec::new();
            self.inlines(children, &mut inner);
            out.push(wrap(inner));
        };
        match name {
            "b" | "strong" => styled(Inline::Bold, out),
            "i" | "em" => styled(Inline::Italic, out),
            "s" | "strike" | "del" => styled(Inline::Strike, out),
            "code" => {
                let mut code = String::new();
                text_content(children, &mut code);
                out.push(Inline::Code(verbatim(&code)));
            }
            "br" => out.push(Inline::LineBreak),
            "a" => match node
                .attribute("href")
                .map(url_of)
                .filter(|url| !url.is_empty())
            {
                Some(url) => {
                    let mut label = Vec::new();
                    self.inlines(children, &mut label);
                    let unlabelled = RichText {
                        blocks: vec![Block::Paragraph(label.clone())],
                    }
                    .normalize()
                    .blocks
                    .is_empty();
                    if unlabelled {
                        label = vec![Inline::Text(collapse_whitespace(&url))];
                    }
                    out.push(Inline::Link { url, label });
                }
                None => self.inlines(children, out),
            },
            "at" => out.push(self.mention(node, children)),
            "emoji" => match node.attribute("alt").filter(|alt| !alt.is_empty()) {
                Some(alt) => out.push(Inline::Text(collapse_whitespace(alt))),
                None => self.inlines(children, out),
            },
            // An emoji drawn as an image is its `alt` text; any other image (pasted into the
            // message, kept as its hosted content) is not relayed, and the copy says so.
            "img" => match node.attribute("alt") {
                Some(alt) if is_emoji_image(node) => {
                    out.push(Inline::Text(collapse_whitespace(alt)));
                }
                _ => out.push(Inline::Text(UNRELAYED_IMAGE.to_owned())),
            },
            "td" | "th" => {
                self.inlines(children, out);
                out.push(Inline::Text(" ".to_owned()));
            }
            _ => self.inlines(children, out),
        }
    }

    fn mention(&self, node: &Node, children: &[Node]) -> Inline {
        let mut label = String::new();
        text_content(children, &mut label);
        let label = collapse_whitespace(&label)
            .replace('\u{a0}', " ")
            .trim()
            .to_owned();
        let known = node
            .attribute("id")
            .and_then(|id| id.trim().parse::<u32>().ok())
            .and_then(|id| self.mentions.iter().find(|m| m.id == id));
        match known {
            Some(mention) => Inline::Mention(Mention {
                user: mention.user.clone(),
                label: if label.is_empty() {
                    mention.text.clone()
                } else {
                    label
                },
            }),
            None => Inline::Text(format!("@{label}")),
        }
    }
}

/// An `href` as a browser reads it: tabs and line breaks removed, and spaces and control
/// characters trimmed from the ends (the WHATWG URL parser's first steps).
fn url_of(href: &str) -> String {
    let url: String = href
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    url.trim_matches(|c: char| c <= ' ').to_owned()
}

/// What stands in a copy for an image pasted into a Teams message.
const UNRELAYED_IMAGE: &str = "🖼 (an image, not relayed)";

/// Whether an `<img>` is an emoji drawn as an image (Teams marks those with an `itemtype`).
fn is_emoji_image(node: &Node) -> bool {
    node.attribute("itemtype")
        .is_some_and(|kind| kind.ends_with("schema.skype.com/Emoji"))
}

/// All text under `nodes`, line breaks included, as written (for code and mention names).
fn text_content(nodes: &[Node], out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Element { name, .. } if name == "br" => out.push('\n'),
            Node::Element { name, .. } if name == "emoji" || name == "img" => {
                out.push_str(node.attribute("alt").unwrap_or_default());
            }
            Node::Element { children, .. } => text_content(children, out),
        }
    }
}

/// Code as written, but for no-break spaces, which are spaces, and carriage returns (written as
/// `&#13;`), which are line breaks as the tokenizer reads a raw one.
fn verbatim(code: &str) -> String {
    code.replace('\u{a0}', " ")
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// Runs of whitespace in the source are one space, as a browser shows them; a no-break space is
/// kept apart until the paragraph's ends have been trimmed.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

fn push_item(item: &mut Vec<Inline>, items: &mut Vec<Vec<Inline>>) {
    let trimmed = trim_lines(std::mem::take(item));
    if !trimmed.is_empty() {
        items.push(trimmed);
    }
}

fn flush(paragraph: &mut Vec<Inline>, blocks: &mut Vec<Block>) {
    let trimmed = trim_lines(std::mem::take(paragraph));
    if !trimmed.is_empty() {
        blocks.push(Block::Paragraph(trimmed));
    }
}

/// Drops source whitespace (not no-break spaces) at the ends of each line, which a browser does
/// not show either, then drops what is left empty.
fn trim_lines(inlines: Vec<Inline>) -> Vec<Inline> {
    // A list item is normalised as a paragraph would be, but never split at a blank line.
    let normalized = RichText {
        blocks: vec![Block::List {
            ordered: false,
            items: vec![inlines],
        }],
    }
    .normalize();
    let Some(Block::List { items, .. }) = normalized.blocks.into_iter().next() else {
        return Vec::new();
    };
    let Some(mut inlines) = items.into_iter().next() else {
        return Vec::new();
    };
    let count = inlines.len();
    for index in 0..count {
        let line_start = index == 0 || inlines[index - 1] == Inline::LineBreak;
        let line_end = index + 1 == count || inlines[index + 1] == Inline::LineBreak;
        if let Inline::Text(text) = &mut inlines[index] {
            let mut trimmed = text.as_str();
            if line_start {
                trimmed = trimmed.trim_start_matches(|c: char| c.is_ascii_whitespace());
            }
            if line_end {
                trimmed = trimmed.trim_end_matches(|c: char| c.is_ascii_whitespace());
            }
            *text = trimmed.to_owned();
        }
    }
    inlines
        .into_iter()
        .filter(|inline| !matches!(inline, Inline::Text(t) if t.is_empty()))
        .collect()
}

fn spaces_in_block(block: Block) -> Block {
    match block {
        Block::Paragraph(inlines) => Block::Paragraph(spaces_in_inlines(inlines)),
        Block::Quote(inner) => Block::Quote(inner.into_iter().map(spaces_in_block).collect()),
        Block::List { ordered, items } => Block::List {
            ordered,
            items: items.into_iter().map(spaces_in_inlines).collect(),
        },
        code @ Block::CodeBlock(_) => code,
    }
}

/// No-break spaces, which Teams writes for any space it wants kept, read as spaces; and a
/// person's name that Teams split into one `<at>` per word (`<at id="0">Megan</at>
/// <at id="1">Bowen</at>`, both of the same user) is one mention.
fn spaces_in_inlines(inlines: Vec<Inline>) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::with_capacity(inlines.len());
    for inline in inlines.into_iter().map(spaces_in_inline) {
        if let Inline::Mention(next) = &inline {
            let split_name = match out.as_slice() {
                [.., Inline::Mention(previous), Inline::Text(space)] => {
                    space == " " && previous.user == next.user
                }
                [.., Inline::Mention(previous)] => previous.user == next.user,
                _ => false,
            };
            if split_name {
                if matches!(out.last(), Some(Inline::Text(_))) {
                    out.pop();
                }
                if let Some(Inline::Mention(previous)) = out.last_mut() {
                    previous.label = format!("{} {}", previous.label, next.label);
                    continue;
                }
            }
        }
        out.push(inline);
    }
    out
}

fn spaces_in_inline(inline: Inline) -> Inline {
    match inline {
        Inline::Text(text) => Inline::Text(text.replace('\u{a0}', " ")),
        Inline::Bold(inner) => Inline::Bold(spaces_in_inlines(inner)),
        Inline::Italic(inner) => Inline::Italic(spaces_in_inlines(inner)),
        Inline::Strike(inner) => Inline::Strike(spaces_in_inlines(inner)),
        Inline::Link { url, label } => Inline::Link {
            url,
            label: spaces_in_inlines(label),
        },
        other => other,
    }
}

struct Writer {
    content: String,
    mentions: Vec<TeamsMention>,
}

impl Writer {
    fn block(&mut self, block: &Block) {
        match block {
            Block::Paragraph(inlines) => {
                self.content.push_str("<p>");
                self.lines(inlines);
                self.content.push_str("</p>");
            }
            Block::Quote(inner) => {
                self.content.push_str("<blockquote>");
                for block in inner {
                    self.block(block);
                }
                self.content.push_str("</blockquote>");
            }
            Block::CodeBlock(code) => {
                // A browser drops a line break right after `<pre>`; one more keeps the code's own.
                let lead = if code.starts_with('\n') { "\n" } else { "" };
                self.content
                    .push_str(&format!("<pre>{lead}{}</pre>", escape(code)));
            }
            Block::List { ordered, items } => {
                let tag = if *ordered { "ol" } else { "ul" };
                self.content.push_str(&format!("<{tag}>"));
                for item in items {
                    self.content.push_str("<li>");
                    self.lines(item);
                    self.content.push_str("</li>");
                }
                self.content.push_str(&format!("</{tag}>"));
            }
        }
    }

    /// A paragraph's or list item's content, where spaces at a line's ends need keeping.
    fn lines(&mut self, inlines: &[Inline]) {
        for (index, inline) in inlines.iter().enumerate() {
            match inline {
                Inline::Text(text) => {
                    let line_start = index == 0 || inlines[index - 1] == Inline::LineBreak;
                    let line_end = inlines
                        .get(index + 1)
                        .is_none_or(|next| *next == Inline::LineBreak);
                    self.content
                        .push_str(&text_html(text, line_start, line_end));
                }
                other => self.inline(other),
            }
        }
    }

    fn inlines(&mut self, inlines: &[Inline]) {
        for inline in inlines {
            self.inline(inline);
        }
    }

    fn wrap(&mut self, tag: &str, inner: &[Inline]) {
        self.content.push_str(&format!("<{tag}>"));
        self.inlines(inner);
        self.content.push_str(&format!("</{tag}>"));
    }

    fn inline(&mut self, inline: &Inline) {
        match inline {
            Inline::Text(text) => self.content.push_str(&text_html(text, false, false)),
            Inline::Bold(inner) => self.wrap("b", inner),
            Inline::Italic(inner) => self.wrap("i", inner),
            Inline::Strike(inner) => self.wrap("s", inner),
            Inline::Code(code) => self
                .content
                .push_str(&format!("<code>{}</code>", escape(code))),
            Inline::Link { url, label } => {
                self.content
                    .push_str(&format!("<a href=\"{}\">", escape(url)));
                self.inlines(label);
                self.content.push_str("</a>");
            }
            Inline::Mention(mention) => {
                let id = u32::try_from(self.mentions.len()).unwrap_or(u32::MAX);
                // Graph wants a name in the tag and in `mentionText`; the id stands in for one
                // the relay did not fill in, as in `chat::message_body`.
                let text = if mention.label.is_empty() {
                    mention.user.as_str().to_owned()
                } else {
                    mention.label.clone()
                };
                self.content.push_str(&format!(
                    "<at id=\"{id}\">{}</at>",
                    text_html(&text, true, true)
                ));
                self.mentions.push(TeamsMention {
                    id,
                    text,
                    user: mention.user.clone(),
                });
            }
            Inline::LineBreak => self.content.push_str("<br>"),
        }
    }
}

/// Escaped text whose spaces survive the reading of whitespace: a space after another, or at
/// the start or end of a line, is written `&nbsp;`.
fn text_html(text: &str, line_start: bool, line_end: bool) -> String {
    let escaped = escape(text);
    let chars: Vec<char> = escaped.chars().collect();
    let mut out = String::with_capacity(escaped.len());
    for (index, c) in chars.iter().enumerate() {
        let kept = *c == ' '
            && ((index == 0 && line_start)
                || (index + 1 == chars.len() && line_end)
                || (index > 0 && chars[index - 1] == ' '));
        if kept {
            out.push_str("&nbsp;");
        } else {
            out.push(*c);
        }
    }
    out
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

    fn megan() -> TeamsMention {
        TeamsMention {
            id: 0,
            text: "Megan Bowen".to_owned(),
            user: ExternalUserId::new("aad-megan"),
        }
    }

    fn mention(user: &str, label: &str) -> Inline {
        Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: label.to_owned(),
        })
    }

    /// Parses `html`, compares with `expected`, and checks that rendering it reads back the same.
    fn check(html: &str, mentions: &[TeamsMention], expected: RichText) {
        let parsed = parse(html, mentions);
        assert_eq!(parsed, expected.normalize(), "parsing {html:?}");
        let rendered = render(&parsed);
        assert_eq!(
            parse(&rendered.content, &rendered.mentions),
            parsed,
            "rendering {parsed:?} as {rendered:?}"
        );
    }

    #[test]
    fn styles() {
        check(
            "<p><b>bold</b> <strong>strong</strong> <i>it</i> <em>em</em> <s>s</s> <strike>st</strike> <del>d</del> <code>a &lt; b</code> <u>under</u></p>",
            &[],
            paragraph(vec![
                Inline::Bold(vec![text("bold")]),
                text(" "),
                Inline::Bold(vec![text("strong")]),
                text(" "),
                Inline::Italic(vec![text("it")]),
                text(" "),
                Inline::Italic(vec![text("em")]),
                text(" "),
                Inline::Strike(vec![text("s")]),
                text(" "),
                Inline::Strike(vec![text("st")]),
                text(" "),
                Inline::Strike(vec![text("d")]),
                text(" "),
                Inline::Code("a < b".to_owned()),
                text(" under"),
            ]),
        );
        check(
            "<p><b>bold <i>both</i></b></p>",
            &[],
            paragraph(vec![Inline::Bold(vec![
                text("bold "),
                Inline::Italic(vec![text("both")]),
            ])]),
        );
    }

    #[test]
    fn mentions_links_and_emoji() {
        check(
            r#"<p>Hi <at id="0">Megan Bowen</at>, see <a href="https://x.org/?a=1&amp;b=2">the <b>site</b></a> <emoji id="1f600_grinningface" alt="😀" title="Grinning face"></emoji><img itemtype="http://schema.skype.com/Emoji" alt="👍" src="https://x/y.png"> <at id="7">Nobody</at></p>"#,
            &[megan()],
            paragraph(vec![
                text("Hi "),
                mention("aad-megan", "Megan Bowen"),
                text(", see "),
                Inline::Link {
                    url: "https://x.org/?a=1&b=2".to_owned(),
                    label: vec![text("the "), Inline::Bold(vec![text("site")])],
                },
                text(" 😀👍 @Nobody"),
            ]),
        );
        check(
            r#"<a>no href</a> <a href="">empty</a>"#,
            &[],
            paragraph(vec![text("no href empty")]),
        );
        let bowen = TeamsMention {
            id: 1,
            text: "Bowen".to_owned(),
            user: ExternalUserId::new("aad-megan"),
        };
        check(
            r#"<p><at id="0">Megan</at>&nbsp;<at id="1">Bowen</at> <at id="1">Bowen</at></p>"#,
            &[megan(), bowen],
            paragraph(vec![mention("aad-megan", "Megan Bowen Bowen")]),
        );
        check(
            r#"<at id="0"></at>"#,
            &[megan()],
            paragraph(vec![mention("aad-megan", "Megan Bowen")]),
        );
    }

    #[test]
    fn rendering_numbers_mentions_and_escapes() {
        let rich = paragraph(vec![
            mention("aad-1", "Ada"),
            text(" & "),
            mention("aad-2", ""),
            text(" <\"q\"> "),
            Inline::Link {
                url: "https://x.org/?a=\"1\"&b".to_owned(),
                label: vec![text("x")],
            },
        ]);
        let rendered = render(&rich);
        assert_eq!(
            rendered.content,
            r#"<p><at id="0">Ada</at> &amp; <at id="1">aad-2</at> &lt;&quot;q&quot;&gt; <a href="https://x.org/?a=&quot;1&quot;&amp;b">x</a></p>"#
        );
        assert_eq!(
            rendered.mentions,
            [
                TeamsMention {
                    id: 0,
                    text: "Ada".to_owned(),
                    user: ExternalUserId::new("aad-1"),
                },
                TeamsMention {
                    id: 1,
                    text: "aad-2".to_owned(),
                    user: ExternalUserId::new("aad-2"),
                },
            ]
        );
    }

    #[test]
    fn blocks() {
        check(
            "<div><p>one<br>two</p>\n<blockquote><p>quoted</p>loose</blockquote><pre>\nlet x = 1;\nlet y = &lt;2&gt;;</pre><codeblock class=\"Rust\"><code>fn f() {}<br>f();</code></codeblock><ul><li>a</li><li><p>b</p><ol><li>nested</li></ol></li></ul><ol><li>first</li></ol><h2>Title</h2>after</div>",
            &[],
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("one"), Inline::LineBreak, text("two")]),
                    Block::Quote(vec![
                        Block::Paragraph(vec![text("quoted")]),
                        Block::Paragraph(vec![text("loose")]),
                    ]),
                    Block::CodeBlock("let x = 1;\nlet y = <2>;".to_owned()),
                    Block::CodeBlock("fn f() {}\nf();".to_owned()),
                    Block::List {
                        ordered: false,
                        items: vec![vec![text("a")], vec![text("b")], vec![text("nested")]],
                    },
                    Block::List {
                        ordered: true,
                        items: vec![vec![text("first")]],
                    },
                    Block::Paragraph(vec![Inline::Bold(vec![text("Title")])]),
                    Block::Paragraph(vec![text("after")]),
                ],
            },
        );
    }

    #[test]
    fn graph_documents_mentions_like_this() {
        let alex = TeamsMention {
            id: 1,
            text: "Alex".to_owned(),
            user: ExternalUserId::new("aad-alex"),
        };
        check(
            "<div><div>Ah, <at id=\"0\">Megan</at>, <at id=\"1\">Alex</at>, I saw them in a separate folder. Thanks!</div>\n</div>",
            &[megan(), alex],
            paragraph(vec![
                text("Ah, "),
                mention("aad-megan", "Megan"),
                text(", "),
                mention("aad-alex", "Alex"),
                text(", I saw them in a separate folder. Thanks!"),
            ]),
        );
    }

    #[test]
    fn whitespace_reads_as_a_browser_shows_it() {
        check(
            "<p>\n  a \n b&nbsp;&nbsp;c&nbsp;</p>\n<p> </p><p>x<br> y <br></p>",
            &[],
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("a b  c ")]),
                    Block::Paragraph(vec![text("x"), Inline::LineBreak, text("y")]),
                ],
            },
        );
        assert_eq!(
            render(&paragraph(vec![text(" a  b ")])).content,
            "<p>&nbsp;a &nbsp;b&nbsp;</p>"
        );
        assert_eq!(
            render(&RichText {
                blocks: vec![Block::CodeBlock("\nx".to_owned())]
            })
            .content,
            "<pre>\n\nx</pre>"
        );
    }

    #[test]
    fn unknown_and_malformed_markup_keeps_its_text() {
        check(
            "<table><tr><td>a</td><td>b</td></tr></table><span style=\"x\">c</span><custom>d</custom><!-- gone -->",
            &[],
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![text("a b")]),
                    Block::Paragraph(vec![text("cd")]),
                ],
            },
        );
        check(
            "<p><b>unclosed <i>tags</p> stray</b></i> 1 < 2 &amp &copy; &#x1F600; &#128512;",
            &[],
            RichText {
                blocks: vec![
                    Block::Paragraph(vec![Inline::Bold(vec![
                        text("unclosed "),
                        Inline::Italic(vec![text("tags")]),
                    ])]),
                    Block::Paragraph(vec![text("stray 1 < 2 & © 😀 😀")]),
                ],
            },
        );
        for input in [
            "<",
            "<<>>",
            "</p>",
            "<at id=x>",
            "<a href",
            "<br/><br/>",
            "&",
            "<pre>",
            // Found by fuzzing:
            "<a href=\"http\n://x.org\">",
            "<a href=\" a\u{a0} b\u{c}c \"><br></a>",
            "<emoji alt=\"\t😀\t\"></emoji>x",
            "<code>&#13;a</code><pre>&#13;&#10;b&#13;</pre>",
        ] {
            let parsed = parse(input, &[]);
            let rendered = render(&parsed);
            assert_eq!(
                parse(&rendered.content, &rendered.mentions),
                parsed,
                "{input:?}"
            );
        }
        let deep = "<blockquote><b>".repeat(5_000) + "x";
        let parsed = parse(&deep, &[]);
        let rendered = render(&parsed);
        assert_eq!(parse(&rendered.content, &rendered.mentions), parsed);
    }

    proptest! {
        #[test]
        fn rendering_then_parsing_gives_back_the_text(rich in portable_rich_text()) {
            let rendered = render(&rich);
            prop_assert_eq!(parse(&rendered.content, &rendered.mentions), rich, "rendered as {:?}", rendered);
        }

        #[test]
        fn any_text_parses_and_reads_back_the_same(input in any::<String>()) {
            let parsed = parse(&input, &[megan()]);
            let rendered = render(&parsed);
            prop_assert_eq!(parse(&rendered.content, &rendered.mentions), parsed);
        }

        #[test]
        fn html_like_text_parses_and_reads_back_the_same(input in "(<p>|</p>|<b>|</b>|<i>|</i>|<br>|<pre>|</pre>|<code>|</code>|<ul>|<li>|</li>|<blockquote>|</blockquote>|<at id=\"0\">|</at>|<a href=\"x\">|</a>|&nbsp;|&amp;| |\n|[a-z<>&;]){0,40}") {
            let parsed = parse(&input, &[megan()]);
            let rendered = render(&parsed);
            prop_assert_eq!(parse(&rendered.content, &rendered.mentions), parsed, "rendered as {:?}", rendered);
        }
    }
}
