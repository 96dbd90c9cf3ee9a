//! A message crossing platforms keeps its meaning: Slack mrkdwn → rich text → Teams HTML → rich
//! text → mrkdwn, and the other way, compared as normalised rich text.

use proptest::prelude::*;
use switchboard_core::ExternalUserId;
use switchboard_core::rich_text::strategy::portable_rich_text;
use switchboard_core::rich_text::{Block, Inline, Mention, RichText};
use switchboard_platform_slack::markup as slack;
use switchboard_platform_teams::markup::{self as teams, TeamsMention};

fn text(value: &str) -> Inline {
    Inline::Text(value.to_owned())
}

/// The relay's mention mapping, as a directory where Slack's `U…` is Entra's `aad-U…`, named
/// `Person U…`; `U404` is nobody the relay knows.
fn to_teams(rich: RichText) -> RichText {
    rich.map_mentions(|m| {
        (m.user.as_str() != "U404").then(|| Mention {
            user: ExternalUserId::new(format!("aad-{}", m.user)),
            label: if m.user.as_str() == "U1" {
                "Ada Lovelace".to_owned()
            } else {
                format!("Person {}", m.user)
            },
        })
    })
}

fn to_slack(rich: RichText) -> RichText {
    rich.map_mentions(|m| {
        m.user.as_str().strip_prefix("aad-").map(|slack| Mention {
            user: ExternalUserId::new(slack),
            label: String::new(),
        })
    })
}

/// Slack → Teams → Slack through the relay's steps.
fn slack_round_trip(mrkdwn: &str) -> (RichText, String, String) {
    let from_slack = slack::parse(mrkdwn);
    let html = teams::render(&to_teams(from_slack.clone()));
    let from_teams = teams::parse(&html.content, &html.mentions);
    let back = slack::render(&to_slack(from_teams));
    (from_slack, html.content, back)
}

#[test]
fn a_slack_message_reads_the_same_in_teams_and_back() {
    let mrkdwn = "*bold* _it_ ~s~ `code` <https://x.org|site> <@U1> :smile: &lt;tag&gt;";
    let (from_slack, html, back) = slack_round_trip(mrkdwn);
    assert_eq!(
        from_slack,
        RichText {
            blocks: vec![Block::Paragraph(vec![
                Inline::Bold(vec![text("bold")]),
                text(" "),
                Inline::Italic(vec![text("it")]),
                text(" "),
                Inline::Strike(vec![text("s")]),
                text(" "),
                Inline::Code("code".to_owned()),
                text(" "),
                Inline::Link {
                    url: "https://x.org".to_owned(),
                    label: vec![text("site")],
                },
                text(" "),
                Inline::Mention(Mention {
                    user: ExternalUserId::new("U1"),
                    label: String::new(),
                }),
                text(" 😄 <tag>"),
            ])],
        }
    );
    assert_eq!(
        html,
        r#"<p><b>bold</b> <i>it</i> <s>s</s> <code>code</code> <a href="https://x.org">site</a> <at id="0">Ada Lovelace</at> 😄 &lt;tag&gt;</p>"#
    );
    assert_eq!(back, mrkdwn.replace(":smile:", "😄"));
}

#[test]
fn a_teams_message_reads_the_same_in_slack_and_back() {
    let html = r#"<p><strong>bold</strong> <em>it</em> <s>s</s> <code>code</code> <a href="https://x.org">site</a> <at id="0">Ada Lovelace</at> <emoji alt="😄"></emoji> &lt;tag&gt;</p><blockquote>quoted</blockquote><ul><li>one</li><li>two</li></ul><pre>let x = 1;</pre>"#;
    let mentions = [TeamsMention {
        id: 0,
        text: "Ada Lovelace".to_owned(),
        user: ExternalUserId::new("aad-U1"),
    }];
    let from_teams = teams::parse(html, &mentions);
    let mrkdwn = slack::render(&to_slack(from_teams.clone()));
    assert_eq!(
        mrkdwn,
        "*bold* _it_ ~s~ `code` <https://x.org|site> <@U1> 😄 &lt;tag&gt;\n\n> quoted\n\n• one\n• two\n\n```let x = 1;```"
    );
    let back = to_teams(slack::parse(&mrkdwn));
    assert_eq!(back, from_teams);
}

#[test]
fn a_person_the_relay_cannot_map_is_named_in_text() {
    let (_, html, back) = slack_round_trip("hi <@U404|grace>");
    assert_eq!(html, "<p>hi @grace</p>");
    assert_eq!(back, "hi @grace");
}

proptest! {
    #[test]
    fn slack_to_teams_and_back_keeps_the_meaning(rich in portable_rich_text()) {
        // As Slack would deliver it: mentions by id alone, of people the relay knows.
        let rich = rich.map_mentions(|m| Some(Mention { user: m.user.clone(), label: String::new() }));
        let mrkdwn = slack::render(&rich);
        let (from_slack, html, back) = slack_round_trip(&mrkdwn);
        prop_assert_eq!(&from_slack, &rich);
        prop_assert_eq!(slack::parse(&back), from_slack, "via {:?}", html);
    }

    #[test]
    fn teams_to_slack_and_back_keeps_the_meaning(rich in portable_rich_text()) {
        let rich = rich.map_mentions(|m| Some(Mention { user: ExternalUserId::new(format!("aad-{}", m.user)), label: format!("Person {}", m.user) }));
        let html = teams::render(&rich);
        let from_teams = teams::parse(&html.content, &html.mentions);
        prop_assert_eq!(&from_teams, &rich);
        let mrkdwn = slack::render(&to_slack(from_teams.clone()));
        let back = to_teams(slack::parse(&mrkdwn));
        prop_assert_eq!(back, from_teams, "via {:?}", mrkdwn);
    }
}
