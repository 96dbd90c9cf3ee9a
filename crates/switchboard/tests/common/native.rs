//! How a simulated person uses each platform's own client, as the black-box scenarios need it:
//! open a chat, write, read, edit, delete, react. Each platform implements [`Native`] once, and
//! [`native`] is the one line per platform that lets every scenario run on it.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::world::World;

/// A message as a person reads it in their own client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    /// The account that wrote it.
    pub from: String,
    /// The text as the platform keeps it (mrkdwn, HTML…): scenarios look for words in it.
    pub text: String,
    /// Who reacted with what, the emoji in Unicode.
    pub reactions: Vec<(String, String)>,
    /// The accounts it mentions, as the platform tags them.
    pub mentions: Vec<String>,
}

/// A message with formatting, written the way each platform's people write it.
pub struct Formatted<'a> {
    pub bold: &'a str,
    pub code: &'a str,
    /// The address and the text of a link.
    pub link: (&'a str, &'a str),
    /// The account mentioned, as the writer sees them.
    pub mention: &'a str,
}

/// One platform's client, acting with a person's token (see [`World::token`]).
#[async_trait]
pub trait Native: Send + Sync {
    fn platform(&self) -> &'static str;

    /// The account the token acts as.
    async fn me(&self, world: &World, token: &str) -> String;

    /// Opens (or finds) the chat between the token's user and `accounts`: a direct message
    /// for one, a group chat for more.
    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String;

    /// The chat the token's user is in with exactly `accounts`, if there is one: where a copy
    /// the hub made for them arrives.
    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String>;

    /// Writes in a chat; answers the message's id.
    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String;

    /// Writes a formatted message, with the platform's own markup and mention.
    async fn post_formatted(&self, world: &World, token: &str, chat: &str, message: &Formatted<'_>);

    /// Whether the platform's people can write inline code.
    fn inline_code(&self) -> bool {
        true
    }

    /// The parts of `message` (its bold, code and link; its mention is in [`Seen::mentions`])
    /// that `text`, as this platform keeps it, does not show formatted.
    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String>;

    /// A chat's messages, oldest first.
    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen>;

    async fn edit(&self, world: &World, token: &str, chat: &str, message: &str, text: &str);

    async fn delete(&self, world: &World, token: &str, chat: &str, message: &str);

    /// The texts in the token's user's chats with the hub's own identity (its app, bot or
    /// service user), oldest first: where the hub's prompts arrive.
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String>;

    /// Writes `text` in the token's user's chat with the hub's own identity, where a platform
    /// with a fallback (`rules.fallback`) shows what the hub relays for people it cannot
    /// represent. Only such a platform's client writes there.
    async fn write_to_hub(&self, _world: &World, _token: &str, _text: &str) {
        panic!(
            "{} declares no fallback: nobody writes to the hub there",
            self.platform()
        );
    }

    /// The consent page's sign-in field and the decision that accepts, as a person authorising
    /// the hub fills them in.
    fn consent(&self) -> (&'static str, &'static str);

    /// Adds (or, `present` false, removes) a reaction, the emoji in Unicode.
    async fn react(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &str,
        emoji: &str,
        present: bool,
    );
}

/// The client of a platform, by the name the API gives it.
pub fn native(platform: &str) -> Box<dyn Native> {
    match platform {
        "slack" => Box::new(Slack),
        "teams" => Box::new(Teams),
        "google_chat" => Box::new(GoogleChat),
        "webex" => Box::new(Webex),
        "zoom" => Box::new(Zoom),
        other => panic!("no simulated client for {other}: add one in tests/common/native.rs"),
    }
}

/// The Unicode emoji the scenarios use, with Slack's names for them: the one a person types
/// first, then its aliases.
const SLACK_EMOJI: [(&str, &[&str]); 2] = [("👍", &["thumbsup", "+1"]), ("❤️", &["heart"])];

struct Slack;

#[async_trait]
impl Native for Slack {
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String> {
        let hub_bot = world
            .sim_users("slack")
            .await
            .into_iter()
            .find(|u| u["kind"] == "bot" && u["display_name"] == "Switchboard")
            .expect("the hub's app has a bot user");
        let bot = hub_bot["id"].as_str().unwrap();
        let opened = world
            .slack("conversations.open", token, &[("users", bot)])
            .await;
        let channel = opened["channel"]["id"].as_str().unwrap().to_owned();
        self.messages(world, token, &channel)
            .await
            .into_iter()
            .filter(|m| m.from == bot)
            .map(|m| m.text)
            .collect()
    }

    fn consent(&self) -> (&'static str, &'static str) {
        ("email", "allow")
    }

    fn platform(&self) -> &'static str {
        "slack"
    }

    async fn me(&self, world: &World, token: &str) -> String {
        world.slack("auth.test", token, &[]).await["user_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String {
        world.slack_dm(token, &accounts.join(",")).await
    }

    /// Slack keeps one conversation per set of people: opening it finds it.
    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String> {
        Some(self.open_chat(world, token, accounts).await)
    }

    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String {
        world.post_in_slack(token, chat, text).await["ts"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn post_formatted(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &Formatted<'_>,
    ) {
        let text = format!(
            "*{}* `{}` <{}|{}> <@{}>",
            message.bold, message.code, message.link.0, message.link.1, message.mention
        );
        world.post_in_slack(token, chat, &text).await;
    }

    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String> {
        [
            format!("*{}*", message.bold),
            format!("`{}`", message.code),
            format!("<{}|{}>", message.link.0, message.link.1),
        ]
        .into_iter()
        .filter(|part| !text.contains(part.as_str()))
        .collect()
    }

    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen> {
        let history = world
            .slack("conversations.history", token, &[("channel", chat)])
            .await;
        let mut seen: Vec<Seen> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Seen {
                id: m["ts"].as_str().unwrap_or_default().to_owned(),
                from: m["user"].as_str().unwrap_or_default().to_owned(),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                mentions: m["text"]
                    .as_str()
                    .unwrap_or_default()
                    .split("<@")
                    .skip(1)
                    .filter_map(|rest| rest.split_once('>').map(|(id, _)| id.to_owned()))
                    .collect(),
                reactions: m["reactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| {
                        let emoji = SLACK_EMOJI
                            .iter()
                            .find(|(_, names)| names.iter().any(|name| r["name"] == *name))
                            .map_or_else(
                                || r["name"].to_string(),
                                |(emoji, _)| (*emoji).to_owned(),
                            );
                        r["users"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|u| u.as_str())
                            .map(move |user| (user.to_owned(), emoji.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
            })
            .collect();
        seen.reverse();
        seen
    }

    async fn edit(&self, world: &World, token: &str, chat: &str, message: &str, text: &str) {
        world
            .slack(
                "chat.update",
                token,
                &[("channel", chat), ("ts", message), ("text", text)],
            )
            .await;
    }

    async fn delete(&self, world: &World, token: &str, chat: &str, message: &str) {
        world
            .slack("chat.delete", token, &[("channel", chat), ("ts", message)])
            .await;
    }

    async fn react(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &str,
        emoji: &str,
        present: bool,
    ) {
        let (_, names) = SLACK_EMOJI
            .iter()
            .find(|(unicode, _)| *unicode == emoji)
            .unwrap_or_else(|| panic!("no Slack name for {emoji}: add it to SLACK_EMOJI"));
        let name = names[0];
        let method = if present {
            "reactions.add"
        } else {
            "reactions.remove"
        };
        world
            .slack(
                method,
                token,
                &[("channel", chat), ("timestamp", message), ("name", name)],
            )
            .await;
    }
}

struct Teams;

impl Teams {
    /// A chat member: Graph wants a guest of the tenant in the guest role. A person's own
    /// token may not read whether someone is a guest (`userType` is not a basic property), so
    /// the simulator says.
    async fn member(world: &World, account: &str, me: &str) -> Value {
        let guest = account != me
            && world
                .sim_users("teams")
                .await
                .iter()
                .any(|user| user["id"] == account && user["kind"] == "guest");
        let role = if guest { "guest" } else { "owner" };
        json!({
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "roles": [role],
            "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{account}')"),
        })
    }
}

#[async_trait]
impl Native for Teams {
    /// The hub writes from its service user, in a one-on-one chat.
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String> {
        let me = self.me(world, token).await;
        let chats = world
            .graph(reqwest::Method::GET, "/me/chats", token, None)
            .await;
        let mut said = Vec::new();
        for chat in chats["value"].as_array().unwrap() {
            if chat["chatType"] != "oneOnOne" {
                continue;
            }
            let id = chat["id"].as_str().unwrap();
            said.extend(
                world
                    .teams_messages(token, id)
                    .await
                    .into_iter()
                    .filter(|(from, _)| *from != me)
                    .map(|(_, text)| text),
            );
        }
        said
    }

    fn consent(&self) -> (&'static str, &'static str) {
        ("login", "accept")
    }

    fn platform(&self) -> &'static str {
        "teams"
    }

    async fn me(&self, world: &World, token: &str) -> String {
        world.graph(reqwest::Method::GET, "/me", token, None).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String {
        let me = self.me(world, token).await;
        let mut members = vec![Self::member(world, &me, &me).await];
        for account in accounts {
            members.push(Self::member(world, account, &me).await);
        }
        let kind = if accounts.len() == 1 {
            "oneOnOne"
        } else {
            "group"
        };
        world
            .graph(
                reqwest::Method::POST,
                "/chats",
                token,
                Some(json!({ "chatType": kind, "members": members })),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String> {
        let me = self.me(world, token).await;
        let mut wanted: Vec<&str> = accounts.iter().copied().chain([me.as_str()]).collect();
        wanted.sort_unstable();
        let chats = world
            .graph(reqwest::Method::GET, "/me/chats", token, None)
            .await;
        for chat in chats["value"].as_array()? {
            let id = chat["id"].as_str()?;
            let listed = world
                .graph(
                    reqwest::Method::GET,
                    &format!("/chats/{id}/members"),
                    token,
                    None,
                )
                .await;
            let mut members: Vec<&str> = listed["value"]
                .as_array()?
                .iter()
                .filter_map(|m| m["userId"].as_str())
                .collect();
            members.sort_unstable();
            if members == wanted {
                return Some(id.to_owned());
            }
        }
        None
    }

    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String {
        world
            .graph(
                reqwest::Method::POST,
                &format!("/chats/{chat}/messages"),
                token,
                Some(json!({"body": {"content": text}})),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn post_formatted(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &Formatted<'_>,
    ) {
        let content = format!(
            "<p><b>{}</b> <code>{}</code> <a href=\"{}\">{}</a> <at id=\"0\">them</at></p>",
            message.bold, message.code, message.link.0, message.link.1
        );
        world
            .graph(
                reqwest::Method::POST,
                &format!("/chats/{chat}/messages"),
                token,
                Some(json!({
                    "body": {"contentType": "html", "content": content},
                    "mentions": [{
                        "id": 0,
                        "mentionText": "them",
                        "mentioned": {"user": {"id": message.mention, "userIdentityType": "aadUser"}},
                    }],
                })),
            )
            .await;
    }

    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String> {
        [
            format!("<b>{}</b>", message.bold),
            format!("<code>{}</code>", message.code),
            format!("<a href=\"{}\">{}</a>", message.link.0, message.link.1),
        ]
        .into_iter()
        .filter(|part| !text.contains(part.as_str()))
        .collect()
    }

    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen> {
        world
            .teams_message_list(token, chat)
            .await
            .iter()
            .filter(|m| m["messageType"] == "message" && m["deletedDateTime"].is_null())
            .map(|m| Seen {
                id: m["id"].as_str().unwrap_or_default().to_owned(),
                from: m["from"]["user"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                text: m["body"]["content"].as_str().unwrap_or_default().to_owned(),
                mentions: m["mentions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|mention| mention["mentioned"]["user"]["id"].as_str())
                    .map(str::to_owned)
                    .collect(),
                reactions: m["reactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        (
                            r["user"]["user"]["id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            r["reactionType"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    async fn edit(&self, world: &World, token: &str, chat: &str, message: &str, text: &str) {
        world
            .graph(
                reqwest::Method::PATCH,
                &format!("/chats/{chat}/messages/{message}"),
                token,
                Some(json!({"body": {"contentType": "html", "content": format!("<p>{text}</p>")}})),
            )
            .await;
    }

    async fn delete(&self, world: &World, token: &str, chat: &str, message: &str) {
        let me = self.me(world, token).await;
        world
            .graph(
                reqwest::Method::POST,
                &format!("/users/{me}/chats/{chat}/messages/{message}/softDelete"),
                token,
                None,
            )
            .await;
    }

    async fn react(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &str,
        emoji: &str,
        present: bool,
    ) {
        let action = if present {
            "setReaction"
        } else {
            "unsetReaction"
        };
        world
            .graph(
                reqwest::Method::POST,
                &format!("/chats/{chat}/messages/{message}/{action}"),
                token,
                Some(json!({ "reactionType": emoji })),
            )
            .await;
    }
}

/// Google Chat's own client: spaces set up and read through the Chat API as the person.
struct GoogleChat;

impl GoogleChat {
    /// Every page of a list, by its `nextPageToken`.
    async fn all(world: &World, token: &str, path: &str, field: &str) -> Vec<Value> {
        Self::all_if_found(world, token, path, field)
            .await
            .unwrap_or_else(|| panic!("{path}: 404"))
    }

    /// [`GoogleChat::all`], or `None` when what is listed is not found (a message deleted
    /// while its chat is read).
    async fn all_if_found(
        world: &World,
        token: &str,
        path: &str,
        field: &str,
    ) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        let mut page_token = String::new();
        loop {
            let separator = if path.contains('?') { '&' } else { '?' };
            let (status, page) = world
                .google_chat_answer(
                    reqwest::Method::GET,
                    &format!("{path}{separator}pageSize=100&pageToken={page_token}"),
                    token,
                    None,
                )
                .await;
            if status == reqwest::StatusCode::NOT_FOUND {
                return None;
            }
            assert!(status.is_success(), "{path}: {status} {page}");
            items.extend(page[field].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => page_token = next.to_owned(),
                _ => return Some(items),
            }
        }
    }

    /// A user's id without the `users/` of their resource name.
    fn user_id(name: &str) -> String {
        name.trim_start_matches("users/").to_owned()
    }
}

#[async_trait]
impl Native for GoogleChat {
    /// The hub writes as its Chat app, in the person's direct message with it.
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String> {
        let mut said = Vec::new();
        for space in Self::all(world, token, "/spaces", "spaces").await {
            if space["singleUserBotDm"] != true {
                continue;
            }
            let name = space["name"].as_str().unwrap();
            said.extend(
                self.messages(world, token, name)
                    .await
                    .into_iter()
                    .map(|m| m.text),
            );
        }
        said
    }

    fn consent(&self) -> (&'static str, &'static str) {
        ("login", "allow")
    }

    fn platform(&self) -> &'static str {
        "google_chat"
    }

    /// The Chat API has no "who am I"; Google's token information names the token's user by
    /// the id the Chat API uses.
    async fn me(&self, world: &World, token: &str) -> String {
        world.google_token_info(token).await["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String {
        let kind = if accounts.len() == 1 {
            "DIRECT_MESSAGE"
        } else {
            "GROUP_CHAT"
        };
        let memberships: Vec<Value> = accounts
            .iter()
            .map(|account| json!({"member": {"name": format!("users/{account}"), "type": "HUMAN"}}))
            .collect();
        world
            .google_chat(
                reqwest::Method::POST,
                "/spaces:setup",
                token,
                Some(json!({"space": {"spaceType": kind}, "memberships": memberships})),
            )
            .await["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String> {
        let me = self.me(world, token).await;
        let mut wanted: Vec<String> = accounts
            .iter()
            .map(|a| (*a).to_owned())
            .chain([me])
            .collect();
        wanted.sort_unstable();
        for space in Self::all(world, token, "/spaces", "spaces").await {
            let name = space["name"].as_str()?;
            let mut members: Vec<String> =
                Self::all(world, token, &format!("/{name}/members"), "memberships")
                    .await
                    .iter()
                    .filter_map(|m| m["member"]["name"].as_str())
                    .map(Self::user_id)
                    .collect();
            members.sort_unstable();
            if members == wanted {
                return Some(name.to_owned());
            }
        }
        None
    }

    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String {
        world
            .google_chat(
                reqwest::Method::POST,
                &format!("/{chat}/messages"),
                token,
                Some(json!({ "text": text })),
            )
            .await["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn post_formatted(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &Formatted<'_>,
    ) {
        let text = format!(
            "*{}* `{}` <{}|{}> <users/{}>",
            message.bold, message.code, message.link.0, message.link.1, message.mention
        );
        self.post(world, token, chat, &text).await;
    }

    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String> {
        [
            format!("*{}*", message.bold),
            format!("`{}`", message.code),
            format!("<{}|{}>", message.link.0, message.link.1),
        ]
        .into_iter()
        .filter(|part| !text.contains(part.as_str()))
        .collect()
    }

    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen> {
        let mut listed = Vec::new();
        for m in Self::all(
            world,
            token,
            &format!("/{chat}/messages?orderBy=createTime%20ASC"),
            "messages",
        )
        .await
        {
            let name = m["name"].as_str().unwrap_or_default().to_owned();
            let Some(reactions) =
                Self::all_if_found(world, token, &format!("/{name}/reactions"), "reactions").await
            else {
                continue;
            };
            let reactions = reactions
                .iter()
                .map(|r| {
                    (
                        Self::user_id(r["user"]["name"].as_str().unwrap_or_default()),
                        r["emoji"]["unicode"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect();
            listed.push(Seen {
                id: name,
                from: Self::user_id(m["sender"]["name"].as_str().unwrap_or_default()),
                text: m["text"].as_str().unwrap_or_default().to_owned(),
                mentions: m["annotations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["type"] == "USER_MENTION")
                    .filter_map(|a| a["userMention"]["user"]["name"].as_str())
                    .map(Self::user_id)
                    .collect(),
                reactions,
            });
        }
        listed
    }

    async fn edit(&self, world: &World, token: &str, _chat: &str, message: &str, text: &str) {
        world
            .google_chat(
                reqwest::Method::PATCH,
                &format!("/{message}?updateMask=text"),
                token,
                Some(json!({ "text": text })),
            )
            .await;
    }

    async fn delete(&self, world: &World, token: &str, _chat: &str, message: &str) {
        world
            .google_chat(reqwest::Method::DELETE, &format!("/{message}"), token, None)
            .await;
    }

    async fn react(
        &self,
        world: &World,
        token: &str,
        _chat: &str,
        message: &str,
        emoji: &str,
        present: bool,
    ) {
        if present {
            world
                .google_chat(
                    reqwest::Method::POST,
                    &format!("/{message}/reactions"),
                    token,
                    Some(json!({"emoji": {"unicode": emoji}})),
                )
                .await;
            return;
        }
        let me = self.me(world, token).await;
        for reaction in Self::all(world, token, &format!("/{message}/reactions"), "reactions").await
        {
            if reaction["emoji"]["unicode"] == emoji
                && Self::user_id(reaction["user"]["name"].as_str().unwrap_or_default()) == me
            {
                let name = reaction["name"].as_str().unwrap();
                world
                    .google_chat(reqwest::Method::DELETE, &format!("/{name}"), token, None)
                    .await;
            }
        }
    }
}

/// Webex's own client. A direct chat has no room until its first message and is reached by the
/// other person (`toPersonId`, `messages/direct`), so it is named here `direct:{their id}`; a
/// group chat is a room.
struct Webex;

impl Webex {
    const DIRECT: &'static str = "direct:";

    /// A list's first page of 1,000, which holds every chat and message a scenario makes (Webex
    /// pages on with an absolute `Link: rel="next"`, which the SDK tests follow).
    async fn items(world: &World, token: &str, path: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        world
            .webex(
                reqwest::Method::GET,
                &format!("{path}{separator}max=1000"),
                token,
                None,
            )
            .await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Where a chat's messages are listed.
    fn listing(chat: &str) -> String {
        match chat.strip_prefix(Self::DIRECT) {
            Some(person) => format!("/messages/direct?personId={person}"),
            None => format!("/messages?roomId={chat}"),
        }
    }

    /// Where a message is written in a chat.
    fn addressed(chat: &str) -> Value {
        match chat.strip_prefix(Self::DIRECT) {
            Some(person) => json!({ "toPersonId": person }),
            None => json!({ "roomId": chat }),
        }
    }

    async fn send(world: &World, token: &str, chat: &str, content: Value) -> String {
        let mut body = Self::addressed(chat);
        for (key, value) in content.as_object().unwrap() {
            body[key] = value.clone();
        }
        world
            .webex(reqwest::Method::POST, "/messages", token, Some(body))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[async_trait]
impl Native for Webex {
    /// The hub writes from its service user, in a direct room.
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String> {
        let me = self.me(world, token).await;
        let mut said = Vec::new();
        for room in Self::items(world, token, "/rooms?type=direct").await {
            let room = room["id"].as_str().unwrap();
            said.extend(
                self.messages(world, token, room)
                    .await
                    .into_iter()
                    .filter(|m| m.from != me)
                    .map(|m| m.text),
            );
        }
        said
    }

    fn consent(&self) -> (&'static str, &'static str) {
        ("email", "accept")
    }

    fn platform(&self) -> &'static str {
        "webex"
    }

    async fn me(&self, world: &World, token: &str) -> String {
        world
            .webex(reqwest::Method::GET, "/people/me", token, None)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String {
        if let [person] = accounts {
            return format!("{}{person}", Self::DIRECT);
        }
        let room = world
            .webex(
                reqwest::Method::POST,
                "/rooms",
                token,
                Some(json!({ "title": "Group chat" })),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for person in accounts {
            world
                .webex(
                    reqwest::Method::POST,
                    "/memberships",
                    token,
                    Some(json!({ "roomId": room, "personId": person })),
                )
                .await;
        }
        room
    }

    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String> {
        if let [person] = accounts {
            let written =
                Self::items(world, token, &format!("/messages/direct?personId={person}")).await;
            return (!written.is_empty()).then(|| format!("{}{person}", Self::DIRECT));
        }
        let me = self.me(world, token).await;
        let mut wanted: Vec<String> = accounts
            .iter()
            .map(|a| (*a).to_owned())
            .chain([me])
            .collect();
        wanted.sort_unstable();
        for room in Self::items(world, token, "/rooms?type=group").await {
            let id = room["id"].as_str()?;
            let mut members: Vec<String> =
                Self::items(world, token, &format!("/memberships?roomId={id}"))
                    .await
                    .iter()
                    .filter_map(|m| m["personId"].as_str())
                    .map(str::to_owned)
                    .collect();
            members.sort_unstable();
            if members == wanted {
                return Some(id.to_owned());
            }
        }
        None
    }

    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String {
        Self::send(world, token, chat, json!({ "markdown": text })).await
    }

    async fn post_formatted(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &Formatted<'_>,
    ) {
        let markdown = format!(
            "**{}** `{}` [{}]({}) <@personId:{}|them>",
            message.bold, message.code, message.link.1, message.link.0, message.mention
        );
        Self::send(world, token, chat, json!({ "markdown": markdown })).await;
    }

    /// Webex answers a message's `html` as its client shows it.
    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String> {
        [
            format!("<strong>{}</strong>", message.bold),
            format!("<code>{}</code>", message.code),
            format!("<a href=\"{}\">{}</a>", message.link.0, message.link.1),
        ]
        .into_iter()
        .filter(|part| !text.contains(part.as_str()))
        .collect()
    }

    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen> {
        let mut seen: Vec<Seen> = Self::items(world, token, &Self::listing(chat))
            .await
            .iter()
            .map(|m| Seen {
                id: m["id"].as_str().unwrap_or_default().to_owned(),
                from: m["personId"].as_str().unwrap_or_default().to_owned(),
                text: m["html"]
                    .as_str()
                    .or_else(|| m["text"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                mentions: m["mentionedPeople"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str())
                    .map(str::to_owned)
                    .collect(),
                reactions: Vec::new(),
            })
            .collect();
        seen.reverse();
        seen
    }

    async fn edit(&self, world: &World, token: &str, _chat: &str, message: &str, text: &str) {
        let room = world
            .webex(
                reqwest::Method::GET,
                &format!("/messages/{message}"),
                token,
                None,
            )
            .await["roomId"]
            .clone();
        world
            .webex(
                reqwest::Method::PUT,
                &format!("/messages/{message}"),
                token,
                Some(json!({ "roomId": room, "markdown": text })),
            )
            .await;
    }

    async fn delete(&self, world: &World, token: &str, _chat: &str, message: &str) {
        world
            .webex(
                reqwest::Method::DELETE,
                &format!("/messages/{message}"),
                token,
                None,
            )
            .await;
    }

    /// Webex's API has no reactions; the pair scenarios do not ask for them where a platform
    /// declares it cannot carry them.
    async fn react(
        &self,
        _world: &World,
        _token: &str,
        _chat: &str,
        _message: &str,
        _emoji: &str,
        _present: bool,
    ) {
        panic!("Webex's API has no reactions: a scenario asked a Webex person to react")
    }
}

struct Zoom;

impl Zoom {
    const CONTACT: &'static str = "contact:";
    const CHANNEL: &'static str = "channel:";

    /// The field and value that name a chat in Zoom's message calls: a 1:1 chat by the other
    /// person (`to_contact`), a group chat by its channel (`to_channel`).
    fn place(chat: &str) -> (&'static str, &str) {
        match chat.strip_prefix(Self::CONTACT) {
            Some(contact) => ("to_contact", contact),
            None => (
                "to_channel",
                chat.strip_prefix(Self::CHANNEL)
                    .expect("a Zoom chat is contact:ID or channel:ID"),
            ),
        }
    }

    /// The account's users, id by e-mail address: Zoom's messages name their senders and
    /// mentions by address, channels take their members by address.
    async fn ids_by_email(world: &World) -> HashMap<String, String> {
        world
            .sim_users("zoom")
            .await
            .iter()
            .filter_map(|u| {
                Some((
                    u["email"].as_str()?.to_owned(),
                    u["id"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// Every page of a list, following `next_page_token`.
    async fn all(
        world: &World,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
        items: &str,
    ) -> Vec<Value> {
        let mut all = Vec::new();
        let mut next = String::new();
        loop {
            let mut paged = query.to_vec();
            if !next.is_empty() {
                paged.push(("next_page_token", &next));
            }
            let page = world
                .zoom(reqwest::Method::GET, path, token, &paged, None)
                .await;
            all.extend(page[items].as_array().cloned().unwrap_or_default());
            next = page["next_page_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if next.is_empty() {
                return all;
            }
        }
    }

    /// A chat's messages as Zoom lists them, newest first: every day's, not only today's.
    async fn listed(world: &World, token: &str, chat: &str) -> Vec<Value> {
        let (field, target) = Self::place(chat);
        Self::all(
            world,
            token,
            "/chat/users/me/messages",
            &[
                (field, target),
                ("from", "2000-01-01T00:00:00Z"),
                ("page_size", "50"),
            ],
            "messages",
        )
        .await
    }

    async fn send(world: &World, token: &str, chat: &str, content: Value) -> String {
        let (field, target) = Self::place(chat);
        let mut body = json!({ field: target });
        for (key, value) in content.as_object().unwrap() {
            body[key] = value.clone();
        }
        world
            .zoom(
                reqwest::Method::POST,
                "/chat/users/me/messages",
                token,
                &[],
                Some(body),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The text with its `rich_text` ranges shown as HTML, as Zoom's client renders them:
    /// bold as `<b>`, links as `<a href>`.
    fn shown(message: &Value) -> String {
        let text: Vec<char> = message["message"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .collect();
        let mut opening: Vec<Vec<String>> = vec![Vec::new(); text.len() + 1];
        let mut closing: Vec<Vec<String>> = vec![Vec::new(); text.len() + 1];
        for range in message["rich_text"].as_array().into_iter().flatten() {
            let (Some(start), Some(end)) = (
                range["start_position"].as_u64(),
                range["end_position"].as_u64(),
            ) else {
                continue;
            };
            let (start, end) = (start as usize, (end as usize + 1).min(text.len()));
            let tags = match range["format_type"].as_str().unwrap_or_default() {
                "Bold" => ("<b>".to_owned(), "</b>".to_owned()),
                "AddLink" => (
                    format!(
                        "<a href=\"{}\">",
                        range["format_attr"].as_str().unwrap_or_default()
                    ),
                    "</a>".to_owned(),
                ),
                _ => continue,
            };
            opening[start.min(text.len())].push(tags.0);
            closing[end].insert(0, tags.1);
        }
        let mut shown = String::new();
        for (at, c) in text.iter().chain(std::iter::once(&'\0')).enumerate() {
            shown.extend(closing[at].drain(..));
            shown.extend(opening[at].drain(..));
            if *c != '\0' {
                shown.push(*c);
            }
        }
        shown
    }

    /// The emoji a reaction's `U+…` code points stand for.
    fn emoji(codes: &str) -> String {
        codes
            .split(' ')
            .filter_map(|code| u32::from_str_radix(code.trim_start_matches("U+"), 16).ok())
            .filter_map(char::from_u32)
            .collect()
    }
}

#[async_trait]
impl Native for Zoom {
    /// The hub writes as its chatbot, whose chat Zoom's API does not list: it is read from
    /// the web view, signed in as the person.
    async fn hub_said(&self, world: &World, token: &str) -> Vec<String> {
        let me = world
            .zoom(reqwest::Method::GET, "/users/me", token, &[], None)
            .await;
        let live: Value = world
            .http
            .get(format!("{}/zoom/chat/live?bot=1", world.sim))
            .header(
                "cookie",
                format!("sb_zoom_user={}", me["email"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        live["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["html"].as_str())
            .map(str::to_owned)
            .collect()
    }

    /// Written in the web view, signed in as the person: a person writes to a chatbot in
    /// Zoom's client, through no API.
    async fn write_to_hub(&self, world: &World, token: &str, text: &str) {
        let me = world
            .zoom(reqwest::Method::GET, "/users/me", token, &[], None)
            .await;
        let response = world
            .http
            .post(format!("{}/zoom/chat/send", world.sim))
            .header(
                "cookie",
                format!("sb_zoom_user={}", me["email"].as_str().unwrap()),
            )
            .form(&[("bot", "1"), ("message", text)])
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "writing to the chatbot: {}",
            response.status()
        );
    }

    fn consent(&self) -> (&'static str, &'static str) {
        ("email", "allow")
    }

    fn platform(&self) -> &'static str {
        "zoom"
    }

    async fn me(&self, world: &World, token: &str) -> String {
        world
            .zoom(reqwest::Method::GET, "/users/me", token, &[], None)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn open_chat(&self, world: &World, token: &str, accounts: &[&str]) -> String {
        if let [contact] = accounts {
            return format!("{}{contact}", Self::CONTACT);
        }
        let ids = Self::ids_by_email(world).await;
        let members: Vec<Value> = accounts
            .iter()
            .map(|account| {
                let email = ids
                    .iter()
                    .find(|(_, id)| id == account)
                    .map(|(email, _)| email)
                    .unwrap_or_else(|| panic!("no Zoom user {account}"));
                json!({ "email": email })
            })
            .collect();
        let channel = world
            .zoom(
                reqwest::Method::POST,
                "/chat/users/me/channels",
                token,
                &[],
                Some(json!({ "name": "Group chat", "type": 4, "members": members })),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        format!("{}{channel}", Self::CHANNEL)
    }

    async fn find_chat(&self, world: &World, token: &str, accounts: &[&str]) -> Option<String> {
        if let [contact] = accounts {
            let chat = format!("{}{contact}", Self::CONTACT);
            return (!Self::listed(world, token, &chat).await.is_empty()).then_some(chat);
        }
        let me = self.me(world, token).await;
        let mut wanted: Vec<String> = accounts
            .iter()
            .map(|a| (*a).to_owned())
            .chain([me])
            .collect();
        wanted.sort_unstable();
        let channels = Self::all(
            world,
            token,
            "/chat/users/me/channels",
            &[("page_size", "50")],
            "channels",
        )
        .await;
        for channel in channels {
            let id = channel["id"].as_str()?;
            let mut members: Vec<String> = Self::all(
                world,
                token,
                &format!("/chat/channels/{id}/members"),
                &[("page_size", "100")],
                "members",
            )
            .await
            .iter()
            .filter_map(|m| m["id"].as_str())
            .map(str::to_owned)
            .collect();
            members.sort_unstable();
            if members == wanted {
                return Some(format!("{}{id}", Self::CHANNEL));
            }
        }
        None
    }

    async fn post(&self, world: &World, token: &str, chat: &str, text: &str) -> String {
        Self::send(world, token, chat, json!({ "message": text })).await
    }

    /// Zoom has no inline code: the code is written as it is.
    async fn post_formatted(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &Formatted<'_>,
    ) {
        let length = |text: &str| text.chars().count();
        let (bold, code, link) = (message.bold, message.code, message.link.1);
        let text = format!("{bold} {code} {link} @them");
        let link_start = length(bold) + 1 + length(code) + 1;
        let mention_start = link_start + length(link) + 1;
        let content = json!({
            "message": text,
            "rich_text": [
                {"start_position": 0, "end_position": length(bold) - 1, "format_type": "Bold"},
                {
                    "start_position": link_start,
                    "end_position": link_start + length(link) - 1,
                    "format_type": "AddLink",
                    "format_attr": message.link.0,
                },
            ],
            "at_items": [{
                "at_contact": message.mention,
                "at_type": 1,
                "start_position": mention_start,
                "end_position": mention_start + length("@them") - 1,
            }],
        });
        Self::send(world, token, chat, content).await;
    }

    fn inline_code(&self) -> bool {
        false
    }

    /// The text as [`Zoom::shown`] renders it; Zoom keeps code as plain text.
    fn unformatted(&self, text: &str, message: &Formatted<'_>) -> Vec<String> {
        [
            format!("<b>{}</b>", message.bold),
            message.code.to_owned(),
            format!("<a href=\"{}\">{}</a>", message.link.0, message.link.1),
        ]
        .into_iter()
        .filter(|part| !text.contains(part.as_str()))
        .collect()
    }

    async fn messages(&self, world: &World, token: &str, chat: &str) -> Vec<Seen> {
        let ids = Self::ids_by_email(world).await;
        let id_of = |email: &Value| {
            let email = email.as_str().unwrap_or_default();
            ids.get(email).cloned().unwrap_or_else(|| email.to_owned())
        };
        let mut seen: Vec<Seen> = Self::listed(world, token, chat)
            .await
            .iter()
            .map(|m| Seen {
                id: m["id"].as_str().unwrap_or_default().to_owned(),
                from: id_of(&m["sender"]),
                text: Self::shown(m),
                mentions: m["at_items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|item| item["at_type"] == 1)
                    .map(|item| id_of(&item["at_contact"]))
                    .collect(),
                reactions: m["reactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|reaction| {
                        let emoji = Self::emoji(reaction["emoji"].as_str().unwrap_or_default());
                        reaction["senders"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(move |sender| {
                                Some((sender["user_id"].as_str()?.to_owned(), emoji.clone()))
                            })
                    })
                    .collect(),
            })
            .collect();
        seen.reverse();
        seen
    }

    async fn edit(&self, world: &World, token: &str, chat: &str, message: &str, text: &str) {
        let (field, target) = Self::place(chat);
        world
            .zoom(
                reqwest::Method::PUT,
                &format!("/chat/users/me/messages/{message}"),
                token,
                &[],
                Some(json!({ "message": text, field: target })),
            )
            .await;
    }

    async fn delete(&self, world: &World, token: &str, chat: &str, message: &str) {
        let (field, target) = Self::place(chat);
        world
            .zoom(
                reqwest::Method::DELETE,
                &format!("/chat/users/me/messages/{message}"),
                token,
                &[(field, target)],
                None,
            )
            .await;
    }

    async fn react(
        &self,
        world: &World,
        token: &str,
        chat: &str,
        message: &str,
        emoji: &str,
        present: bool,
    ) {
        let (field, target) = Self::place(chat);
        let action = if present { "add" } else { "remove" };
        world
            .zoom(
                reqwest::Method::PATCH,
                &format!("/chat/users/me/messages/{message}/emoji_reactions"),
                token,
                &[],
                Some(json!({ "action": action, "emoji": emoji, field: target })),
            )
            .await;
    }
}
