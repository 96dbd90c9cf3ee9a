//! Chat messages as Graph takes and gives them: HTML bodies with `<at id="n">` mentions and the
//! matching `mentions[]`, the prompt a service user sends, and the `chatMessage` Graph answers
//! with, read into [`ChatMessage`].
//!
//! - chatMessage: <https://learn.microsoft.com/en-us/graph/api/resources/chatmessage>
//! - Mentions: <https://learn.microsoft.com/en-us/graph/api/resources/chatmessagemention>

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{Block, ExternalUserId, Inline, RichText};
use switchboard_platform::{OutboundMessage, Prompt};

use crate::markup::{self, TeamsMention};
use switchboard_platform::wire;

/// A `chatMessage`, as far as the hub reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatMessage {
    pub id: Option<String>,
    /// `message` for what people write; system events have their own types.
    pub message_type: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    /// Set by each edit (and only by an edit).
    pub last_edited_date_time: Option<String>,
    /// Set once the message is soft-deleted.
    pub deleted_date_time: Option<String>,
    /// Null for system events; without a `user` for apps.
    pub from: Option<IdentitySet>,
    pub body: Option<ItemBody>,
    #[serde(default, deserialize_with = "wire::items")]
    pub mentions: Vec<ChatMention>,
    #[serde(default, deserialize_with = "wire::items")]
    pub attachments: Vec<Attachment>,
    #[serde(default, deserialize_with = "wire::items")]
    pub reactions: Vec<Reaction>,
}

impl ChatMessage {
    /// The user who sent it: none for system events and app posts.
    pub fn sender(&self) -> Option<&str> {
        self.from.as_ref()?.user_id()
    }

    pub fn content(&self) -> Option<&str> {
        self.body.as_ref()?.content.as_deref()
    }
}

/// Who did something: a user, an application or a device.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IdentitySet {
    pub user: Option<Identity>,
}

impl IdentitySet {
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref()?.id.as_deref()
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Identity {
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemBody {
    /// `html` or `text`.
    pub content_type: Option<String>,
    pub content: Option<String>,
}

/// A mention in `mentions[]`, tied to its `<at id="n">` tag by `id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatMention {
    pub id: u32,
    pub mention_text: Option<String>,
    pub mentioned: Option<IdentitySet>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attachment {
    pub content_type: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reaction {
    pub reaction_type: String,
    pub user: Option<IdentitySet>,
}

/// The `chatMessage` body of a post or edit: the message rendered as HTML, each mention an
/// `<at id="n">Name</at>` with its `mentions[]` entry (Graph requires one per tag, with the
/// person's `displayName`).
pub(crate) fn message_body(message: &OutboundMessage) -> Value {
    let rendered = markup::render(&message.body);
    let mentions: Vec<Value> = rendered
        .mentions
        .iter()
        .map(|mention| {
            json!({
                "id": mention.id,
                "mentionText": mention.text,
                "mentioned": {"user": {
                    "id": mention.user.as_str(),
                    "displayName": mention.text,
                    "userIdentityType": "aadUser",
                }},
            })
        })
        .collect();
    json!({
        "body": {"contentType": "html", "content": rendered.content},
        "mentions": mentions,
    })
}

/// How many characters of the answered message a reply quotes.
const QUOTED_CHARS: usize = 80;

/// A reply as Teams chats can show one: a quote `↪ start of the answered message…`, then the
/// reply itself.
pub(crate) fn as_reply(answered: &str, reply: &RichText) -> RichText {
    let first_line = answered.lines().next().unwrap_or_default().trim();
    let mut quoted: String = first_line.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < first_line.len() || answered.lines().nth(1).is_some() {
        quoted.push('…');
    }
    let mut blocks = vec![Block::Quote(vec![Block::Paragraph(vec![Inline::Text(
        format!("↪ {quoted}"),
    )])])];
    blocks.extend(reply.blocks.iter().cloned());
    RichText { blocks }
}

/// What a `chatMessage` says: its HTML (or plain text) body read with its `mentions[]`.
pub(crate) fn read_body(message: &ChatMessage) -> RichText {
    let content = message.content().unwrap_or_default();
    let unrelayed = unrelayed_attachments(message);
    let content_type = message
        .body
        .as_ref()
        .and_then(|body| body.content_type.as_deref());
    if content_type == Some("text") {
        return RichText::plain(content).noting_unrelayed(&unrelayed);
    }
    let mentions: Vec<TeamsMention> = message
        .mentions
        .iter()
        .filter_map(|mention| {
            Some(TeamsMention {
                id: mention.id,
                text: mention.mention_text.clone().unwrap_or_default(),
                user: ExternalUserId::new(mention.mentioned.as_ref()?.user_id()?),
            })
        })
        .collect();
    markup::parse(content, &mentions).noting_unrelayed(&unrelayed)
}

/// What a message carries besides its body, which the relay does not carry across: files by
/// name, cards as such. A reply's quote of the message it answers (`messageReference`) is
/// part of the reply, not something missing.
fn unrelayed_attachments(message: &ChatMessage) -> Vec<String> {
    message
        .attachments
        .iter()
        .filter_map(|attachment| {
            let name = attachment.name.as_deref().filter(|name| !name.is_empty());
            match attachment.content_type.as_str() {
                "messageReference" => None,
                card if card.starts_with("application/vnd.microsoft.card.") => {
                    Some(name.unwrap_or("a card").to_owned())
                }
                _ => Some(name.unwrap_or("an attachment").to_owned()),
            }
        })
        .collect()
}

/// A prompt as Teams HTML: the text, then the personal link.
pub(crate) fn prompt_body(prompt: &Prompt) -> Value {
    let link = escape(&prompt.link);
    json!({
        "body": {
            "contentType": "html",
            "content": format!("<p>{}</p><p><a href=\"{link}\">{link}</a></p>", escape(&prompt.text)),
        },
    })
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(message: Value) -> RichText {
        read_body(&serde_json::from_value(message).unwrap())
    }

    #[test]
    fn mentions_are_tagged_and_listed_and_read_back() {
        let message = OutboundMessage {
            body: RichText {
                blocks: vec![Block::Paragraph(vec![
                    Inline::Text("Hi ".to_owned()),
                    Inline::Mention(switchboard_core::Mention {
                        user: ExternalUserId::new("u0"),
                        label: "Ada & co".to_owned(),
                    }),
                ])],
            },
            thread: None,
            idempotency_key: None,
        };
        let body = message_body(&message);
        assert_eq!(
            body["body"]["content"],
            "<p>Hi <at id=\"0\">Ada &amp; co</at></p>"
        );
        assert_eq!(body["mentions"][0]["mentionText"], "Ada & co");
        assert_eq!(body["mentions"][0]["mentioned"]["user"]["id"], "u0");
        assert_eq!(read(body.clone()), message.body);
        let plain = json!({"body": {"contentType": "text", "content": "a <b>"}});
        assert_eq!(read(plain), RichText::plain("a <b>"));
    }

    #[test]
    fn a_reply_quotes_the_start_of_what_it_answers() {
        let reply = as_reply(
            "First line of a long message\nsecond",
            &RichText::plain("Yes"),
        );
        assert_eq!(
            reply.to_plain_text(),
            "> ↪ First line of a long message…\nYes"
        );
    }

    #[test]
    fn files_cards_and_pasted_images_are_named_but_a_replys_quote_is_not() {
        let message = json!({
            "body": {"contentType": "html", "content":
                "<p>See <img src=\"https://graph.microsoft.com/v1.0/chats/c/messages/1/hostedContents/h/$value\" alt=\"image\"> and <img itemtype=\"http://schema.skype.com/Emoji\" alt=\"👍\"></p>"},
            "attachments": [
                {"id": "1", "contentType": "messageReference", "content": "{}"},
                {"id": "2", "contentType": "reference", "name": "plan.docx",
                 "contentUrl": "https://contoso.sharepoint.com/plan.docx"},
                {"id": "3", "contentType": "application/vnd.microsoft.card.adaptive",
                 "content": "{}"},
            ],
        });
        assert_eq!(
            read(message).to_plain_text(),
            "See 🖼 (an image, not relayed) and 👍\n\
             📎 Sent with this message, not relayed: plan.docx, a card"
        );
        let plain = json!({"body": {"contentType": "text", "content": "hi"},
            "attachments": [{"contentType": "reference", "name": ""}]});
        assert_eq!(
            read(plain).to_plain_text(),
            "hi\n📎 Sent with this message, not relayed: an attachment"
        );
    }

    #[test]
    fn prompts_are_escaped() {
        let body = prompt_body(&Prompt {
            text: "Sync <now>".to_owned(),
            link: "https://hub.example/sync?a=1&b=2".to_owned(),
        });
        assert_eq!(
            body["body"]["content"],
            "<p>Sync &lt;now&gt;</p><p><a href=\"https://hub.example/sync?a=1&amp;b=2\">https://hub.example/sync?a=1&amp;b=2</a></p>"
        );
    }

    #[test]
    fn system_messages_and_odd_parts_are_read_without_failing() {
        let message: ChatMessage = serde_json::from_value(json!({
            "id": "1", "messageType": "systemEventMessage", "from": null, "body": null,
            "mentions": [{"id": "x"}, {"id": 0, "mentionText": "Ada", "mentioned": {"user": null}}],
            "attachments": null, "reactions": [{"reactionType": "like", "user": {"user": null}}],
            "eventDetail": {"@odata.type": "#microsoft.graph.membersAddedEventMessageDetail"},
        }))
        .unwrap();
        assert_eq!(message.sender(), None);
        assert_eq!(message.reactions.len(), 1);
        assert_eq!(
            message.reactions[0]
                .user
                .as_ref()
                .and_then(IdentitySet::user_id),
            None
        );
        assert_eq!(read_body(&message), RichText::default());
    }
}
