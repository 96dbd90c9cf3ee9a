//! Chat message bodies as Graph takes them: HTML with `<at id="n">` mentions and the matching
//! `mentions[]`, and the prompt a service user sends.

use serde_json::{Value, json};
use switchboard_core::ExternalUserId;
use switchboard_platform::{OutboundMessage, Prompt};

/// The `chatMessage` body of a post or edit.
///
/// The hub's translator writes mention number *i* of `message.mentions` as
/// `<at id="i">Name</at>` in the body; Graph requires every `<at id>` to have a `mentions[]`
/// entry with the same id and the person's `displayName`, which is taken from the tag's text.
/// A mention without a tag in the body is appended at the end as `<at id="i">{user id}</at>`:
/// the id stands in for a display name the hub did not give (Teams then shows the name it
/// knows for that user once the message is rendered, but the text sent is the id).
pub(crate) fn message_body(message: &OutboundMessage) -> Value {
    let mut content = message.body.clone();
    let mut mentions = Vec::with_capacity(message.mentions.len());
    for (index, user) in message.mentions.iter().enumerate() {
        let text = match mention_text(&content, index) {
            Some(text) => text,
            None => {
                let text = escape(user.as_str());
                content.push_str(&format!(" <at id=\"{index}\">{text}</at>"));
                text
            }
        };
        mentions.push(mention(index, &text, user));
    }
    json!({
        "body": {"contentType": "html", "content": content},
        "mentions": mentions,
    })
}

fn mention(index: usize, text: &str, user: &ExternalUserId) -> Value {
    json!({
        "id": index,
        "mentionText": unescape(text),
        "mentioned": {"user": {
            "id": user.as_str(),
            "displayName": unescape(text),
            "userIdentityType": "aadUser",
        }},
    })
}

/// The text of `<at id="index">…</at>` in `html`.
fn mention_text(html: &str, index: usize) -> Option<String> {
    let open = format!("<at id=\"{index}\">");
    let start = html.find(&open)? + open.len();
    let end = html[start..].find("</at>")? + start;
    Some(html[start..end].to_owned())
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

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_mentions_take_their_text_and_untagged_ones_are_appended() {
        let message = OutboundMessage {
            body: "<p>Hi <at id=\"0\">Ada &amp; co</at></p>".to_owned(),
            mentions: vec![ExternalUserId::new("u0"), ExternalUserId::new("u1")],
            thread: None,
            idempotency_key: None,
        };
        let body = message_body(&message);
        assert_eq!(
            body["body"]["content"],
            "<p>Hi <at id=\"0\">Ada &amp; co</at></p> <at id=\"1\">u1</at>"
        );
        assert_eq!(body["mentions"][0]["mentionText"], "Ada & co");
        assert_eq!(body["mentions"][1]["mentioned"]["user"]["id"], "u1");
        assert_eq!(body["mentions"][1]["id"], 1);
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
