//! What an outbox item carries: the copy's content in the relay's own encoding, kept only
//! until the copy is delivered.

use serde::{Deserialize, Serialize};
use switchboard_core::{Block, ExternalUserId, Inline, Mention, RichText};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Payload {
    /// The message's text (for posts and edits), its mentions naming the origin platform's
    /// accounts until delivery maps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// The origin message's thread parent, on the origin platform, for replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The reaction added or removed, as a Unicode emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// The message a reaction goes on, when it is not the copy of the item's origin (a reaction
    /// to a copy goes on the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Target {
    pub chat: String,
    pub message: String,
}

impl Payload {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("strings always serialise"))
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("an unreadable outbox payload: {e}"))
    }
}

/// A message's text as the outbox keeps it: the core's [`RichText`], written out (the core
/// itself stays free of serialisation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Body(Vec<BlockDto>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "block", rename_all = "snake_case")]
enum BlockDto {
    Paragraph {
        inlines: Vec<InlineDto>,
    },
    Quote {
        blocks: Vec<BlockDto>,
    },
    Code {
        text: String,
    },
    List {
        ordered: bool,
        items: Vec<Vec<InlineDto>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "inline", rename_all = "snake_case")]
enum InlineDto {
    Text { text: String },
    Bold { inlines: Vec<InlineDto> },
    Italic { inlines: Vec<InlineDto> },
    Strike { inlines: Vec<InlineDto> },
    Code { text: String },
    Link { url: String, label: Vec<InlineDto> },
    Mention { user: String, label: String },
    Break,
}

impl From<&RichText> for Body {
    fn from(text: &RichText) -> Self {
        Self(text.blocks.iter().map(block_dto).collect())
    }
}

impl Body {
    pub fn to_rich_text(&self) -> RichText {
        RichText {
            blocks: self.0.iter().map(block).collect(),
        }
    }
}

fn block_dto(block: &Block) -> BlockDto {
    match block {
        Block::Paragraph(inlines) => BlockDto::Paragraph {
            inlines: inlines.iter().map(inline_dto).collect(),
        },
        Block::Quote(blocks) => BlockDto::Quote {
            blocks: blocks.iter().map(block_dto).collect(),
        },
        Block::CodeBlock(text) => BlockDto::Code { text: text.clone() },
        Block::List { ordered, items } => BlockDto::List {
            ordered: *ordered,
            items: items
                .iter()
                .map(|item| item.iter().map(inline_dto).collect())
                .collect(),
        },
    }
}

fn inline_dto(inline: &Inline) -> InlineDto {
    let all = |inlines: &[Inline]| inlines.iter().map(inline_dto).collect();
    match inline {
        Inline::Text(text) => InlineDto::Text { text: text.clone() },
        Inline::Bold(inlines) => InlineDto::Bold {
            inlines: all(inlines),
        },
        Inline::Italic(inlines) => InlineDto::Italic {
            inlines: all(inlines),
        },
        Inline::Strike(inlines) => InlineDto::Strike {
            inlines: all(inlines),
        },
        Inline::Code(text) => InlineDto::Code { text: text.clone() },
        Inline::Link { url, label } => InlineDto::Link {
            url: url.clone(),
            label: all(label),
        },
        Inline::Mention(mention) => InlineDto::Mention {
            user: mention.user.as_str().to_owned(),
            label: mention.label.clone(),
        },
        Inline::LineBreak => InlineDto::Break,
    }
}

fn block(dto: &BlockDto) -> Block {
    match dto {
        BlockDto::Paragraph { inlines } => Block::Paragraph(inlines.iter().map(inline).collect()),
        BlockDto::Quote { blocks } => Block::Quote(blocks.iter().map(block).collect()),
        BlockDto::Code { text } => Block::CodeBlock(text.clone()),
        BlockDto::List { ordered, items } => Block::List {
            ordered: *ordered,
            items: items
                .iter()
                .map(|item| item.iter().map(inline).collect())
                .collect(),
        },
    }
}

fn inline(dto: &InlineDto) -> Inline {
    let all = |inlines: &[InlineDto]| inlines.iter().map(inline).collect();
    match dto {
        InlineDto::Text { text } => Inline::Text(text.clone()),
        InlineDto::Bold { inlines } => Inline::Bold(all(inlines)),
        InlineDto::Italic { inlines } => Inline::Italic(all(inlines)),
        InlineDto::Strike { inlines } => Inline::Strike(all(inlines)),
        InlineDto::Code { text } => Inline::Code(text.clone()),
        InlineDto::Link { url, label } => Inline::Link {
            url: url.clone(),
            label: all(label),
        },
        InlineDto::Mention { user, label } => Inline::Mention(Mention {
            user: ExternalUserId::new(user),
            label: label.clone(),
        }),
        InlineDto::Break => Inline::LineBreak,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchboard_core::rich_text::strategy::portable_rich_text;

    use super::*;

    proptest! {
        #[test]
        fn a_body_survives_the_outbox(text in portable_rich_text()) {
            let body = Body::from(&text);
            let kept: Body = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
            prop_assert_eq!(kept.to_rich_text(), text);
        }
    }
}
