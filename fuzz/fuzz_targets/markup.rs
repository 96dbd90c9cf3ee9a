//! Feeds arbitrary text to the Slack mrkdwn and Teams HTML parsers, renders what they read and
//! reads it again: fails on any panic, or if the second reading differs from the first (a
//! rendering that does not say what was read; Slack's mentions carry no name when written). Run (nightly):
//! `cargo fuzz run markup -- -dict=fuzz/markup.dict`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::{ExternalUserId, Mention};
use switchboard_platform_slack::markup as slack;
use switchboard_platform_teams::markup::{self as teams, TeamsMention};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // Slack writes a mention as `<@U123>`, without the name `<@U123|name>` may have read.
    let read = slack::parse(&text).map_mentions(|m| {
        Some(Mention {
            user: m.user.clone(),
            label: String::new(),
        })
    });
    let rendered = slack::render(&read);
    assert_eq!(slack::parse(&rendered), read, "mrkdwn rendered as {rendered:?}");

    let mentions = [
        TeamsMention {
            id: 0,
            text: "Megan Bowen".to_owned(),
            user: ExternalUserId::new("aad-megan"),
        },
        TeamsMention {
            id: 1,
            text: "Alex".to_owned(),
            user: ExternalUserId::new("aad-alex"),
        },
    ];
    let read = teams::parse(&text, &mentions);
    let rendered = teams::render(&read);
    assert_eq!(
        teams::parse(&rendered.content, &rendered.mentions),
        read,
        "HTML rendered as {rendered:?}"
    );
});
