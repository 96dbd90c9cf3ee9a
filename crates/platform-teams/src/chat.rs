//! Chat message bodies as Graph takes them: HTML with `<at id="n">` mentions and the matching
//! `mentions[]`, and the prompt a service user sends.

use serde_json::{Value, json};
use switchboard_core::{Block, ExternalUserId, Inline, RichText};
use switchboard_platform::{OutboundMessage, Prompt};

use crate::markup::{self, TeamsMention};

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
pub(crate) fn read_body(message: &Value) -> RichText {
    let content = message
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let unrelayed = unrelayed_attachments(message);
    if message.pointer("/body/contentType").and_then(Value::as_str) == Some("text") {
        return RichText::plain(content).noting_unrelayed(&unrelayed);
    }
    let mentions: Vec<TeamsMention> = message
        .get("mentions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|mention| {
            Some(TeamsMention {
                id: u32::try_from(mention.get("id")?.as_u64()?).ok()?,
                text: mention
                    .get("mentionText")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                user: ExternalUserId::new(mention.pointer("/mentioned/user/id")?.as_str()?),
            })
        })
        .collect();
    markup::parse(content, &mentions).noting_unrelayed(&unrelayed)
}

/// What a message carries besides its body, which the relay does not carry across: files by
/// name, cards as such. A reply's quote of the message it answers (`messageReference`) is
/// part of the reply, not something missing.
fn unrelayed_attachments(message: &Value) -> Vec<String> {
    message
        .get("attachments")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|attachment| {
            let kind = attachment.get("contentType").and_then(Value::as_str)?;
            let name = attachment
                .get("name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty());
            match kind {
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
        assert_eq!(read_body(&body), message.body);
        let plain = json!({"body": {"contentType": "text", "content": "a <b>"}});
        assert_eq!(read_body(&plain), RichText::plain("a <b>"));
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
            read_body(&message).to_plain_text(),
            "See 🖼 (an image, not relayed) and 👍\n\
             📎 Sent with this message, not relayed: plan.docx, a card"
        );
        let plain = json!({"body": {"contentType": "text", "content": "hi"},
            "attachments": [{"contentType": "reference", "name": ""}]});
        assert_eq!(
            read_body(&plain).to_plain_text(),
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
}
