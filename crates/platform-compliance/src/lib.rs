//! The contract every [`ChatPlatform`] module is held to, written once and run against each
//! module's simulated platform.
//!
//! A module's `tests/compliance.rs` implements [`Driver`] — what only it knows: how to start its
//! simulated platform, walk its consent pages, act there as a native user and forge its
//! webhooks — and instantiates every check with [`compliance_tests!`]. The checks read the
//! module's own declarations ([`ChatPlatform::rules`]) to decide what to hold it to, so that a
//! module is never asked for what it says it cannot do, and never let off what it says it does.

use std::collections::HashSet;
use std::ops::Deref;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::{
    Authoriser, Block, Connection, ConnectionId, Email, ExternalChatId, ExternalUserId,
    ImportScope, Inline, Mention, RepresentationKind, RichText, Timestamp,
};
use switchboard_platform::{
    Actor, ChatKind, ChatPlatform, ConnectionContext, Credentials, EventEnvelope,
    EventSubscription, FlowContext, FlowOutcome, FlowState, FlowStep, ImportRequest, InboundKind,
    MessageRef, OutboundMessage, PlatformError, PlatformUser, Prompt, ProvisionRequest,
    Provisioning, Removal, WebhookRequest, WebhookVerdict,
};
use switchboard_secrets::ExposeSecret;

/// How long a check waits for the simulated platform to deliver a webhook.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// What a user is on the platform, as its simulator lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A person of the organisation, admins included.
    Member,
    Guest,
    Bot,
    Deactivated,
}

/// A user of the simulated platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeUser {
    pub id: ExternalUserId,
    /// What the user signs in with, and their address.
    pub email: Option<String>,
    pub display_name: String,
    pub kind: UserKind,
}

impl NativeUser {
    fn login(&self) -> &str {
        self.email
            .as_deref()
            .expect("a member signs in with an address")
    }
}

/// A message as a person sees it in their own client on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMessage {
    pub id: String,
    pub author: ExternalUserId,
    /// Its text without markup.
    pub text: String,
    /// Its reactions, as Unicode emoji, one per reaction whoever added it.
    pub reactions: Vec<String>,
    /// The users it mentions.
    pub mentions: Vec<ExternalUserId>,
    /// The message whose thread it is a reply in.
    pub replies_to: Option<String>,
}

/// Variants of a genuine delivery that the module must refuse, each made the way an attacker
/// could make it. A platform that signs no time leaves `stale` empty. A delivery replayed as
/// it was is not the module's to refuse: the hub drops items it has read by their ids.
#[derive(Debug, Default)]
pub struct Tampered {
    /// Signed with the wrong secret, altered after signing, unsigned, or otherwise not from the
    /// platform for this connection.
    pub forged: Vec<WebhookRequest>,
    /// Signed correctly, at a time outside the window the platform allows.
    pub stale: Vec<WebhookRequest>,
}

/// What a module's test supplies: its simulated platform, and everything else that cannot be
/// said without naming the platform.
#[async_trait]
pub trait Driver: Send + Sync + Sized + 'static {
    type Platform: ChatPlatform;

    /// A fresh simulated platform with an organisation large enough that an import needs
    /// several pages, and the module built to talk to it; not yet connected.
    async fn start() -> Self;

    fn platform(&self) -> &Self::Platform;

    /// What the admin types into the connect form; fresh on each call, since connecting may
    /// spend them.
    async fn connect_inputs(&self) -> Credentials;

    /// The hub's callback URL, as registered with the platform.
    fn callback_url(&self) -> String;

    /// Who signs in on the consent pages when the hub is connected or a representation approved.
    fn admin_login(&self) -> String;

    /// Follows a consent or sign-in page as a browser would, signed in as `login`, accepting or
    /// declining; the query the browser is then sent to the callback URL with, or the page's
    /// text when it did not send the browser back.
    async fn consent(
        &self,
        url: &str,
        login: &str,
        accept: bool,
    ) -> Result<Vec<(String, String)>, String>;

    /// Every user of the platform, from the simulator.
    async fn directory(&self) -> Vec<NativeUser>;

    /// The users in `teams`, for platforms that import by team.
    async fn team_members(&self, _teams: &[String]) -> HashSet<ExternalUserId> {
        panic!("a platform that imports by team needs its driver to say who is in each team")
    }

    /// The account the hub itself acts as on the connection (its app's bot, its service user).
    fn hub_account(&self, connection: &ConnectionContext) -> ExternalUserId;

    /// The messages of `chat`, oldest first, as `reader` sees them in their own client.
    async fn read_chat(&self, reader: &NativeUser, chat: &ExternalChatId) -> Vec<SeenMessage>;

    /// Posts `text` in `chat` as `author` from their own client; the new message's id.
    async fn post_as(&self, author: &NativeUser, chat: &ExternalChatId, text: &str) -> String;

    /// Where the platform sends the connection's events.
    fn events_url(&self) -> String;

    /// Every webhook the platform has delivered to [`Driver::events_url`] so far, as the hub's
    /// endpoint would hand it over.
    fn deliveries(&self) -> Vec<WebhookRequest>;

    /// Forgeries and stale copies of `genuine`, which verifies with `connection`.
    fn tamper(&self, connection: &ConnectionContext, genuine: &WebhookRequest) -> Tampered;

    /// Adds a person to the platform as its admin would (and to `teams`, on a platform that
    /// imports by team); their new account.
    async fn add_member(&self, email: &str, name: &str, teams: &[String]) -> ExternalUserId;

    /// Takes a person off the platform as its admin does when they leave (deactivating or
    /// deleting them, as the platform does).
    async fn remove_member(&self, account: &ExternalUserId, email: &str);

    /// Has the simulator revoke everything the connection's credentials grant, as an admin
    /// withdrawing the hub's access would.
    async fn revoke(&self, connection: &ConnectionContext);

    /// The simulated platform's time.
    async fn now(&self) -> Timestamp;

    /// Whether connecting needs no browser: the admin's inputs are the whole grant (a key with
    /// domain-wide delegation), so [`ChatPlatform::begin_connect`] ends connected at once.
    fn connects_without_browser(&self) -> bool {
        false
    }

    /// Inputs that must not connect (a grant missing or refused), for platforms that connect
    /// without a browser: what stands for the admin declining there.
    async fn refused_connect_inputs(&self) -> Vec<Credentials> {
        Vec::new()
    }

    /// Whether the platform sends a handshake to answer when the hub's events are set up;
    /// those that do (Slack's `url_verification`, Graph's `validationToken`) must have it
    /// answered.
    fn sends_handshakes(&self) -> bool {
        true
    }

    /// Whether refreshing gives new credentials; where the connection's credentials do not
    /// expire (a service account's key), refreshing only proves they still work.
    fn refresh_changes_credentials(&self) -> bool {
        true
    }
}

/// A driver with its platform connected through the consent pages.
pub struct Connected<D> {
    pub driver: D,
    pub connection: ConnectionContext,
}

impl<D> Deref for Connected<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.driver
    }
}

/// A representation the hub created or was authorised to act as, with what it can do.
pub struct Representation {
    pub account: ExternalUserId,
    pub credentials: Credentials,
    pub kind: RepresentationKind,
}

impl Representation {
    pub fn actor(&self) -> Actor {
        Actor::Representation {
            account: self.account.clone(),
            credentials: self.credentials.clone(),
        }
    }
}

impl<D: Driver> Connected<D> {
    pub async fn start() -> Self {
        Self::with(D::start().await).await
    }

    /// Connects a driver started in a way of its own.
    pub async fn with(driver: D) -> Self {
        let connection = connect(&driver).await;
        Self { driver, connection }
    }

    /// Members with an address, in the directory's order.
    pub async fn members(&self) -> Vec<NativeUser> {
        self.driver
            .directory()
            .await
            .into_iter()
            .filter(|user| user.kind == UserKind::Member && user.email.is_some())
            .collect()
    }

    /// What the hub uses to represent a person without an account on this platform: created
    /// (and approved, when the platform asks for consent), or, where the platform represents
    /// people only by their own accounts, a member's account authorised by them.
    pub async fn represent(&self, display_name: &str) -> Representation {
        let rules = self.driver.platform().rules();
        let kind = [rules.without_account.kind, rules.with_account.kind]
            .into_iter()
            .find(|kind| *kind != RepresentationKind::Unsupported)
            .expect("a platform represents people somehow");
        if kind == RepresentationKind::ExistingAccount {
            let members = self.members().await;
            let owner = members.last().expect("a member to authorise");
            let credentials = self
                .authorize(owner, owner.login())
                .await
                .expect("a person authorises their own account");
            return Representation {
                account: owner.id.clone(),
                credentials,
                kind,
            };
        }
        match self.provision(display_name).await {
            Provisioning::Ready {
                account,
                credentials,
            } => Representation {
                account,
                credentials,
                kind,
            },
            Provisioning::AwaitingConsent { url, state, .. } => {
                let (account, credentials) = self.approve(&url, &state).await;
                Representation {
                    account,
                    credentials,
                    kind,
                }
            }
        }
    }

    async fn provision(&self, display_name: &str) -> Provisioning {
        let address = display_name.to_lowercase().replace(' ', ".");
        let request = ProvisionRequest {
            display_name: display_name.to_owned(),
            email: Email::parse(&format!("{address}@elsewhere.example")).unwrap(),
            avatar_url: None,
            existing_account: None,
            primary_platform: None,
        };
        self.driver
            .platform()
            .provision_representation(&self.connection, &request)
            .await
            .expect("provisioning a representation")
    }

    /// The admin approves what provisioning created, on the page the platform named.
    async fn approve(&self, url: &str, state: &FlowState) -> (ExternalUserId, Credentials) {
        let callback = self
            .driver
            .consent(url, &self.driver.admin_login(), true)
            .await
            .expect("the admin's approval returns to the hub");
        let flow = FlowContext {
            callback_url: self.driver.callback_url(),
            state: query_value(&callback, "state").unwrap_or_default(),
        };
        match self
            .driver
            .platform()
            .continue_flow(Some(&self.connection), state, &flow, &callback)
            .await
            .expect("the approval completes")
        {
            FlowStep::Done(FlowOutcome::Authorized {
                account,
                credentials,
            }) => (account, credentials),
            other => panic!("an approval ends authorized, not {other:?}"),
        }
    }

    /// `account`'s owner is asked to authorise it, and `login` signs in on the page.
    async fn authorize(
        &self,
        account: &NativeUser,
        login: &str,
    ) -> Result<Credentials, PlatformError> {
        let platform = self.driver.platform();
        let flow = FlowContext {
            callback_url: self.driver.callback_url(),
            state: format!("authorize-{}", account.id),
        };
        let FlowStep::Redirect { url, state } = platform
            .begin_authorize(&self.connection, &account.id, &flow)
            .await?
        else {
            panic!("authorising an account starts with the owner's sign-in")
        };
        let callback = self
            .driver
            .consent(&url, login, true)
            .await
            .expect("the sign-in returns to the hub");
        match platform
            .continue_flow(Some(&self.connection), &state, &flow, &callback)
            .await?
        {
            FlowStep::Done(FlowOutcome::Authorized {
                account: authorised,
                credentials,
            }) => {
                assert_eq!(
                    authorised, account.id,
                    "the account asked for is authorised"
                );
                Ok(credentials)
            }
            other => panic!("an authorisation ends authorized, not {other:?}"),
        }
    }

    /// The connection with a representation's webhook secrets added, as the hub holds it.
    pub fn hub_view(&self, representation: &Credentials) -> ConnectionContext {
        let mut view = self.connection.clone();
        for (name, secret) in self.driver.platform().webhook_secrets_of(representation) {
            view.credentials.insert(name, secret);
        }
        view
    }

    /// The subscriptions through which the platform delivers the connection's events, made now,
    /// with `watched` as the hub's synced representations.
    pub async fn subscribe(&self, watched: &[&Representation]) -> Vec<EventSubscription> {
        let watched: Vec<Actor> = watched.iter().map(|r| r.actor()).collect();
        self.driver
            .platform()
            .maintain_subscriptions(
                &self.connection,
                &self.driver.events_url(),
                &watched,
                &[],
                &[],
                self.driver.now().await,
            )
            .await
            .expect("subscribing to the connection's events")
    }

    /// The direct chat between `actor` and `with`, opened (or found) by the module.
    pub async fn direct_chat(&self, actor: &Actor, with: &ExternalUserId) -> ExternalChatId {
        self.driver
            .platform()
            .open_chat(&self.connection, actor, std::slice::from_ref(with))
            .await
            .expect("opening a direct chat")
    }

    /// A member writes `text` to a representation named `name` in their direct chat, and the
    /// platform delivers it: what the checks of inbound deliveries start from.
    pub async fn a_persons_message(&self, name: &str, text: &str) -> Delivered {
        let representation = self.represent(name).await;
        let held = self.subscribe(&[&representation]).await;
        let person = self.members().await.remove(0);
        let chat = self.direct_chat(&representation.actor(), &person.id).await;
        let written = self.driver.post_as(&person, &chat, text).await;
        let (request, envelope) = self.delivery_announcing(&written, &held).await;
        Delivered {
            representation,
            person,
            chat,
            written,
            request,
            envelope,
        }
    }

    /// The delivery, with the subscriptions the hub holds, whose item announces `message`.
    pub async fn delivery_announcing(
        &self,
        message: &str,
        held: &[EventSubscription],
    ) -> (WebhookRequest, EventEnvelope) {
        let platform = self.driver.platform();
        let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
        loop {
            for mut request in self.driver.deliveries() {
                request.held_subscriptions = held.to_vec();
                let Ok(envelopes) = platform.split_webhook(&request) else {
                    continue;
                };
                if let Some(envelope) = envelopes.into_iter().find(|envelope| {
                    platform
                        .announced_post(envelope)
                        .is_some_and(|announced| announced.message.id == message)
                }) {
                    return (request, envelope);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no delivery announced message {message} within {DELIVERY_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A person's message as the platform delivered it (see [`Connected::a_persons_message`]).
pub struct Delivered {
    /// The representation it was written to.
    pub representation: Representation,
    /// Who wrote it, where, and the message's id.
    pub person: NativeUser,
    pub chat: ExternalChatId,
    pub written: String,
    pub request: WebhookRequest,
    pub envelope: EventEnvelope,
}

/// Connects through the module's own flow: every page it sends the admin to is accepted.
pub async fn connect<D: Driver>(driver: &D) -> ConnectionContext {
    let platform = driver.platform();
    let flow = FlowContext {
        callback_url: driver.callback_url(),
        state: "compliance-connect".to_owned(),
    };
    let mut step = platform
        .begin_connect(&driver.connect_inputs().await, &flow)
        .await
        .expect("connecting starts");
    // A flow that keeps redirecting is a loop, not consent.
    for _ in 0..5 {
        match step {
            FlowStep::Redirect { url, state } => {
                assert!(
                    url.contains(&flow.state) && url.contains("redirect_uri="),
                    "each page of the flow returns to the hub with its state: {url}"
                );
                let callback = driver
                    .consent(&url, &driver.admin_login(), true)
                    .await
                    .expect("the admin's consent returns to the hub");
                step = platform
                    .continue_flow(None, &state, &flow, &callback)
                    .await
                    .expect("the flow goes on after consent");
            }
            FlowStep::Done(FlowOutcome::Connected {
                tenant,
                display_name,
                credentials,
            }) => {
                return ConnectionContext {
                    connection: Connection {
                        id: "00000000-0000-4000-8000-00000000c0de"
                            .parse::<ConnectionId>()
                            .unwrap(),
                        platform: platform.platform(),
                        tenant,
                        display_name,
                    },
                    credentials,
                };
            }
            FlowStep::Done(other) => panic!("connecting ends connected, not {other:?}"),
        }
    }
    panic!("connecting did not end after five pages")
}

fn query_value(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

fn plain(text: &str) -> OutboundMessage {
    OutboundMessage {
        body: RichText::plain(text),
        thread: None,
        idempotency_key: None,
    }
}

fn is_gone(directory: &[NativeUser], account: &ExternalUserId) -> bool {
    directory
        .iter()
        .find(|user| &user.id == account)
        .is_none_or(|user| user.kind == UserKind::Deactivated)
}

/// The hub connects through the platform's consent pages (or, where the admin's inputs are the
/// whole grant, with them alone, and refuses inputs that grant nothing); an admin who declines,
/// or a callback that is not the flow's, connects nothing.
pub async fn connects_through_consent_pages<D: Driver>() {
    let driver = D::start().await;
    let platform = driver.platform();
    let connection = connect(&driver).await;
    assert_eq!(connection.connection.platform, platform.platform());
    assert!(!connection.connection.tenant.as_str().is_empty());
    let health = platform
        .check_health(&connection)
        .await
        .expect("the new connection's credentials work");
    assert!(!health.identity.is_empty(), "{health:?}");

    if driver.connects_without_browser() {
        let flow = FlowContext {
            callback_url: driver.callback_url(),
            state: "compliance-again".to_owned(),
        };
        let again = platform
            .begin_connect(&driver.connect_inputs().await, &flow)
            .await;
        assert!(
            matches!(again, Ok(FlowStep::Done(FlowOutcome::Connected { .. }))),
            "the admin's inputs alone connect: {again:?}"
        );
        let refused = driver.refused_connect_inputs().await;
        assert!(
            !refused.is_empty(),
            "a platform connecting without a browser shows what it refuses"
        );
        for inputs in &refused {
            let outcome = platform.begin_connect(inputs, &flow).await;
            assert!(
                matches!(
                    outcome,
                    Err(PlatformError::Rejected(_) | PlatformError::Unauthorized(_))
                ),
                "{outcome:?}"
            );
        }
        return;
    }
    let flow = FlowContext {
        callback_url: driver.callback_url(),
        state: "compliance-declined".to_owned(),
    };
    let FlowStep::Redirect { url, state } = platform
        .begin_connect(&driver.connect_inputs().await, &flow)
        .await
        .unwrap()
    else {
        panic!("connecting starts with the admin's consent")
    };
    let declined = driver
        .consent(&url, &driver.admin_login(), false)
        .await
        .expect("declining returns to the hub");
    let refused = platform.continue_flow(None, &state, &flow, &declined).await;
    assert!(
        matches!(&refused, Err(PlatformError::Rejected(m)) if m.contains("declined")),
        "{refused:?}"
    );
    let foreign = vec![
        ("code".to_owned(), "forged-code".to_owned()),
        ("state".to_owned(), "another-flow".to_owned()),
    ];
    let refused = platform.continue_flow(None, &state, &flow, &foreign).await;
    assert!(
        matches!(refused, Err(PlatformError::Rejected(_))),
        "{refused:?}"
    );
}

/// An import reads every page once and flags what is not a person to relay for.
pub async fn import_reads_every_page_once<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let directory = h.driver.directory().await;
    let listed = platform.list_teams(&h.connection).await.unwrap();
    let (teams, expected): (Vec<String>, HashSet<ExternalUserId>) = match platform.rules().import {
        ImportScope::AllUsers => {
            assert!(
                listed.is_empty(),
                "a platform importing everyone lists no teams"
            );
            (
                Vec::new(),
                directory.iter().map(|user| user.id.clone()).collect(),
            )
        }
        ImportScope::SelectedTeams { .. } => {
            assert!(listed.len() >= 2, "{listed:?}");
            let teams: Vec<String> = listed.iter().take(2).map(|team| team.id.clone()).collect();
            let members = h.driver.team_members(&teams).await;
            (teams, members)
        }
    };
    let mut request = ImportRequest {
        teams,
        cursor: None,
    };
    let mut imported: Vec<PlatformUser> = Vec::new();
    let mut pages = 0;
    loop {
        let page = platform
            .import_users(&h.connection, &request)
            .await
            .unwrap();
        pages += 1;
        imported.extend(page.users);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
        assert!(pages < 10_000, "the cursor never runs out");
    }
    assert!(pages >= 2, "the organisation needs several pages: {pages}");
    let mut seen = HashSet::new();
    for user in &imported {
        assert!(seen.insert(user.id.clone()), "{} imported twice", user.id);
    }
    assert_eq!(seen, expected);
    for user in &imported {
        let native = directory
            .iter()
            .find(|native| native.id == user.id)
            .unwrap_or_else(|| panic!("{} is not in the directory", user.id));
        assert_eq!(user.is_bot, native.kind == UserKind::Bot, "{user:?}");
        assert_eq!(
            user.deactivated,
            native.kind == UserKind::Deactivated,
            "{user:?}"
        );
        assert_eq!(user.is_guest, native.kind == UserKind::Guest, "{user:?}");
        if let Some(email) = &native.email {
            assert!(
                user.emails
                    .iter()
                    .any(|e| e.as_str() == email.to_lowercase()),
                "{user:?}"
            );
        }
    }
}

/// A person is found by their address in any case; an unknown address finds no one.
pub async fn lookup_by_email_finds_and_reports_absence<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let members = h.members().await;
    let person = &members[3];
    let address = person.login();
    let found = platform
        .lookup_by_email(
            &h.connection,
            &Email::parse(&address.to_uppercase()).unwrap(),
        )
        .await
        .unwrap()
        .expect("a member is found by their address");
    assert_eq!(found.id, person.id);
    assert_eq!(
        found.emails.first().map(Email::as_str),
        Some(address.to_lowercase().as_str()),
        "the primary address comes first"
    );
    assert!(!found.is_bot && !found.deactivated && !found.is_guest);
    let domain = address.split_once('@').unwrap().1;
    let stranger = Email::parse(&format!("nobody.at.all@{domain}")).unwrap();
    assert_eq!(
        platform
            .lookup_by_email(&h.connection, &stranger)
            .await
            .unwrap(),
        None
    );
}

/// A prompt reaches the person from the hub's own identity, with its link intact.
pub async fn prompts_reach_the_person<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let person = h.members().await.remove(0);
    let prompt = Prompt {
        text: "Your colleagues elsewhere want to chat with you.".to_owned(),
        link: "https://hub.example/sync/abc?x=1&y=2".to_owned(),
    };
    platform
        .send_prompt(&h.connection, &person.id, &prompt)
        .await
        .unwrap();
    let chat = h.direct_chat(&Actor::Hub, &person.id).await;
    let seen = h.driver.read_chat(&person, &chat).await;
    let received = seen
        .iter()
        .find(|message| message.text.contains(&prompt.text))
        .unwrap_or_else(|| panic!("the prompt is in the hub's chat with the person: {seen:?}"));
    assert!(received.text.contains(&prompt.link), "{received:?}");
    assert_eq!(received.author, h.driver.hub_account(&h.connection));
}

/// Each representation the hub creates is created, acts, and is removed with its credentials;
/// what was created for a consent that never came is removed too.
/// A platform that declares a fallback (`PlatformRules::fallback`) provisions it for someone
/// without an account at once, with nothing to approve (the admin allowed it), and acting as
/// it writes to a member in a direct chat, edits and deletes as its abilities say, and is
/// removed.
pub async fn a_declared_fallback_writes_to_a_member<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let Some(fallback) = platform.rules().fallback else {
        return;
    };
    let request = ProvisionRequest {
        display_name: "Fay Elsewhere".to_owned(),
        email: Email::parse("fay.elsewhere@elsewhere.example").unwrap(),
        avatar_url: None,
        existing_account: None,
        primary_platform: Some("Elsewhere".to_owned()),
    };
    let Provisioning::Ready {
        account,
        credentials,
    } = platform
        .provision_representation(&h.connection, &request)
        .await
        .expect("provisioning the fallback")
    else {
        panic!("a fallback is the admin's choice: nothing is left to approve");
    };
    let acting = Actor::Representation {
        account: account.clone(),
        credentials: credentials.clone(),
    };
    let member = h.members().await.remove(0);
    let chat = h.direct_chat(&acting, &member.id).await;
    let posted = platform
        .post_message(
            &h.connection,
            &acting,
            &chat,
            &plain("Hello through the fallback"),
        )
        .await
        .expect("the fallback writes to a member");
    assert_eq!(posted.chat, chat);
    if fallback.abilities.edit {
        platform
            .edit_message(&h.connection, &acting, &posted, &plain("Hello, edited"))
            .await
            .expect("the fallback edits what it wrote");
    }
    if fallback.abilities.delete {
        platform
            .delete_message(&h.connection, &acting, &posted)
            .await
            .expect("the fallback deletes what it wrote");
    }
    platform
        .remove_representation(&h.connection, Some(&account), &credentials)
        .await
        .expect("removing the fallback");
}

pub async fn hub_created_representations_are_provisioned_and_removed<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    if platform.rules().created_by_hub().is_none() {
        return;
    }
    if let Some(pace) = platform.provisioning_rate() {
        assert!(
            pace.rate.per_second > 0.0 && pace.rate.burst >= 1.0 && !pace.allows.is_empty(),
            "a declared pace lets provisioning proceed: {pace:?}"
        );
    }
    let representation = h.represent("Dana Elsewhere").await;
    let directory = h.driver.directory().await;
    let created = directory
        .iter()
        .find(|user| user.id == representation.account)
        .expect("the representation is a user of the platform");
    assert_eq!(created.display_name, "Dana Elsewhere");
    let expected_kind = match representation.kind {
        RepresentationKind::Bot => UserKind::Bot,
        RepresentationKind::GuestAccount => UserKind::Guest,
        other => panic!("the hub does not create {other:?}"),
    };
    assert_eq!(created.kind, expected_kind);

    let person = h.members().await.remove(0);
    let refreshed = platform
        .refresh(&h.connection, &representation.credentials)
        .await
        .expect("a working representation's credentials refresh");
    let acting = Actor::Representation {
        account: representation.account.clone(),
        credentials: refreshed.clone(),
    };
    let chat = h.direct_chat(&acting, &person.id).await;
    platform
        .post_message(
            &h.connection,
            &acting,
            &chat,
            &plain("Hello from elsewhere"),
        )
        .await
        .expect("the refreshed credentials act");

    platform
        .remove_representation(&h.connection, Some(&representation.account), &refreshed)
        .await
        .unwrap();
    let directory = h.driver.directory().await;
    match platform.removal() {
        Removal::Deleted => {
            assert!(is_gone(&directory, &representation.account));
            let after = platform
                .post_message(&h.connection, &acting, &chat, &plain("still here?"))
                .await;
            assert!(
                matches!(after, Err(PlatformError::Unauthorized(_))),
                "{after:?}"
            );
        }
        // The declaration must be true: an account the platform did delete would make the
        // admin's warning that it stays a false one.
        Removal::Forgotten => assert!(
            !is_gone(&directory, &representation.account),
            "the module says the platform keeps a removed representation, but it is gone"
        ),
    }

    if let Provisioning::AwaitingConsent { created, .. } = h.provision("Eve Elsewhere").await {
        let pending = h
            .driver
            .directory()
            .await
            .into_iter()
            .find(|user| user.display_name == "Eve Elsewhere");
        platform
            .remove_representation(&h.connection, None, &created)
            .await
            .unwrap();
        if let Some(pending) = pending {
            assert!(is_gone(&h.driver.directory().await, &pending.id));
        }
    }
}

/// A person authorises their own account, signed in as themselves only; the hub creates no
/// representation for someone who has an account.
pub async fn existing_accounts_are_authorized_by_their_owner<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    if platform.rules().with_account.kind != RepresentationKind::ExistingAccount {
        return;
    }
    let members = h.members().await;
    let (owner, other, impostor) = (&members[0], &members[1], &members[2]);
    let credentials = h.authorize(owner, owner.login()).await.unwrap();
    let wrong = h.authorize(other, impostor.login()).await;
    assert!(
        matches!(&wrong, Err(PlatformError::Rejected(_))),
        "{wrong:?}"
    );
    let taken_over = platform
        .provision_representation(
            &h.connection,
            &ProvisionRequest {
                display_name: owner.display_name.clone(),
                email: Email::parse(owner.login()).unwrap(),
                avatar_url: None,
                existing_account: Some(owner.id.clone()),
                primary_platform: None,
            },
        )
        .await;
    // Without the owner's authorisation the hub may act as the account only where the admin's
    // grant covers every account of the connection.
    match platform.rules().with_account.authorised_by {
        Authoriser::Owner => assert!(
            matches!(taken_over, Err(PlatformError::Rejected(_))),
            "{taken_over:?}"
        ),
        Authoriser::Admin => match taken_over {
            Ok(Provisioning::Ready { account, .. }) => assert_eq!(account, owner.id),
            other => panic!("the admin's grant takes over the account at once, not {other:?}"),
        },
    }

    let acting = Actor::Representation {
        account: owner.id.clone(),
        credentials,
    };
    let chat = h.direct_chat(&acting, &other.id).await;
    let posted = platform
        .post_message(&h.connection, &acting, &chat, &plain("Written as myself"))
        .await
        .unwrap();
    let seen = h.driver.read_chat(other, &chat).await;
    let message = seen.iter().find(|m| m.id == posted.id).expect("posted");
    assert_eq!(message.author, owner.id);
}

/// Direct and group chats open once per set of members, with those members in them.
pub async fn direct_and_group_chats_open<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Finn Elsewhere").await;
    let actor = representation.actor();
    let members = h.members().await;
    let (first, second) = (&members[0], &members[1]);
    let direct = h.direct_chat(&actor, &first.id).await;
    let again = h.direct_chat(&actor, &first.id).await;
    assert_eq!(direct, again, "one direct chat per pair");
    let group = platform
        .open_chat(
            &h.connection,
            &actor,
            &[first.id.clone(), second.id.clone()],
        )
        .await
        .unwrap();
    assert_ne!(group, direct);
    for (chat, expected) in [
        (&direct, vec![&representation.account, &first.id]),
        (&group, vec![&representation.account, &first.id, &second.id]),
    ] {
        let members: HashSet<ExternalUserId> = platform
            .chat_members(&h.connection, &actor, chat)
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(members, expected.into_iter().cloned().collect());
    }
    let posted = platform
        .post_message(&h.connection, &actor, &group, &plain("Hello both"))
        .await
        .unwrap();
    let seen = h.driver.read_chat(second, &group).await;
    assert!(seen.iter().any(|m| m.id == posted.id), "{seen:?}");
}

/// A representation posts (mentioning someone, where it can), edits, reacts and deletes, each
/// as the person in the chat sees it; what it declares it cannot do is refused.
pub async fn messages_are_posted_edited_reacted_and_deleted<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Gil Elsewhere").await;
    let abilities = platform.rules().abilities(representation.kind);
    let actor = representation.actor();
    let person = h.members().await.remove(0);
    let chat = h.direct_chat(&actor, &person.id).await;
    let mut greeting = vec![Inline::Text("Hello ".to_owned())];
    if abilities.mention {
        greeting.push(Inline::Mention(Mention {
            user: person.id.clone(),
            label: person.display_name.clone(),
        }));
    }
    let posted = platform
        .post_message(
            &h.connection,
            &actor,
            &chat,
            &OutboundMessage {
                body: RichText {
                    blocks: vec![Block::Paragraph(greeting)],
                },
                thread: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
    let seen_now = || async {
        h.driver
            .read_chat(&person, &chat)
            .await
            .into_iter()
            .find(|m| m.id == posted.id)
    };
    let seen = seen_now().await.expect("the person sees the message");
    assert_eq!(seen.author, representation.account);
    assert!(seen.text.starts_with("Hello"), "{seen:?}");
    if abilities.mention {
        assert_eq!(seen.mentions, vec![person.id.clone()]);
    }

    let edited = platform
        .edit_message(&h.connection, &actor, &posted, &plain("Hello again"))
        .await;
    if abilities.edit {
        edited.unwrap();
        let seen = seen_now().await.unwrap();
        assert_eq!(seen.text, "Hello again");
    } else {
        assert!(edited.is_err(), "an edit it cannot make is refused");
    }

    if abilities.react {
        for _ in 0..2 {
            platform
                .set_reaction(&h.connection, &actor, &posted, "👍", true)
                .await
                .unwrap();
        }
        assert_eq!(seen_now().await.unwrap().reactions, vec!["👍".to_owned()]);
        for _ in 0..2 {
            platform
                .set_reaction(&h.connection, &actor, &posted, "👍", false)
                .await
                .unwrap();
        }
        assert!(seen_now().await.unwrap().reactions.is_empty());
    }

    let deleted = platform
        .delete_message(&h.connection, &actor, &posted)
        .await;
    if abilities.delete {
        deleted.unwrap();
        assert_eq!(seen_now().await, None, "a deleted message is gone");
    } else {
        assert!(deleted.is_err(), "a deletion it cannot make is refused");
    }
}

/// A reply goes in the thread where the representation can reply in threads, and is still
/// posted, as a message of the chat, where it cannot.
pub async fn replies_go_in_the_thread_or_fall_back<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Hal Elsewhere").await;
    let abilities = platform.rules().abilities(representation.kind);
    let actor = representation.actor();
    let person = h.members().await.remove(0);
    let chat = h.direct_chat(&actor, &person.id).await;
    let parent = platform
        .post_message(&h.connection, &actor, &chat, &plain("A question?"))
        .await
        .unwrap();
    let reply = platform
        .post_message(
            &h.connection,
            &actor,
            &chat,
            &OutboundMessage {
                thread: Some(parent.clone()),
                ..plain("An answer.")
            },
        )
        .await
        .unwrap();
    assert_ne!(reply, parent);
    let seen = h.driver.read_chat(&person, &chat).await;
    let answer = seen
        .iter()
        .find(|m| m.id == reply.id)
        .unwrap_or_else(|| panic!("the reply is posted: {seen:?}"));
    assert!(answer.text.contains("An answer."), "{answer:?}");
    if abilities.thread {
        assert_eq!(answer.replies_to.as_deref(), Some(parent.id.as_str()));
    } else {
        assert_eq!(answer.replies_to, None);
    }
}

/// After a crash between posting and recording, the post is found rather than repeated; a
/// message never posted is not.
pub async fn find_posted_recognises_an_interrupted_post<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Ida Elsewhere").await;
    let actor = representation.actor();
    let person = h.members().await.remove(0);
    let chat = h.direct_chat(&actor, &person.id).await;
    // A minute's margin: some platforms keep their times in whole seconds.
    let since = Timestamp::from_unix_millis(h.driver.now().await.unix_millis() - 60_000);
    let copy = |text: &str, key: &str| OutboundMessage {
        idempotency_key: Some(key.to_owned()),
        ..plain(text)
    };
    let interrupted = copy("Relayed copy 1", "compliance-copy-1");
    let posted = platform
        .post_message(&h.connection, &actor, &chat, &interrupted)
        .await
        .unwrap();
    platform
        .post_message(
            &h.connection,
            &actor,
            &chat,
            &copy("Relayed copy 2", "compliance-copy-2"),
        )
        .await
        .unwrap();
    assert_eq!(
        platform
            .find_posted(&h.connection, &actor, &chat, &interrupted, since)
            .await
            .unwrap(),
        vec![posted]
    );
    let never = copy("Relayed copy 3", "compliance-copy-3");
    assert_eq!(
        platform
            .find_posted(&h.connection, &actor, &chat, &never, since)
            .await
            .unwrap(),
        Vec::new()
    );
}

type Post = (MessageRef, ChatKind, ExternalUserId, Option<i64>, RichText);

async fn posts_since<D: Driver>(
    h: &Connected<D>,
    reader: &Actor,
    chat: &ExternalChatId,
    after_micros: i64,
) -> Vec<Post> {
    h.driver
        .platform()
        .messages_since(&h.connection, reader, chat, after_micros)
        .await
        .unwrap()
        .into_iter()
        .map(|event| match event.kind {
            InboundKind::MessagePosted {
                message,
                chat_kind,
                sender,
                sent_at_micros,
                body,
                ..
            } => (message, chat_kind, sender, sent_at_micros, body),
            other => panic!("messages_since reads posts only, not {other:?}"),
        })
        .collect()
}

/// What people wrote while the hub was stopped is read back in order, from a given time on,
/// with the kind of chat it was written in.
pub async fn messages_since_reads_what_was_missed<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Jo Elsewhere").await;
    let actor = representation.actor();
    let members = h.members().await;
    let (author, other) = (&members[0], &members[1]);
    let direct = h.direct_chat(&actor, &author.id).await;
    let group = platform
        .open_chat(
            &h.connection,
            &actor,
            &[author.id.clone(), other.id.clone()],
        )
        .await
        .unwrap();
    let first = h.driver.post_as(author, &direct, "first while away").await;
    // Distinct times, so that reading from the first one's time on is well defined.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = h.driver.post_as(author, &direct, "second while away").await;
    let in_group = h.driver.post_as(other, &group, "to everyone").await;

    let everything = posts_since(&h, &actor, &direct, 0).await;
    let ids: Vec<&str> = everything.iter().map(|(m, ..)| m.id.as_str()).collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str()]);
    for ((message, kind, sender, _, body), text) in everything
        .iter()
        .zip(["first while away", "second while away"])
    {
        assert_eq!(message.chat, direct);
        assert_eq!(*kind, ChatKind::Direct);
        assert_eq!(sender, &author.id);
        assert_eq!(body.to_plain_text(), text);
    }
    let first_at = everything[0].3.expect("a post says when it was sent");
    let later: Vec<String> = posts_since(&h, &actor, &direct, first_at)
        .await
        .into_iter()
        .map(|(m, ..)| m.id)
        .collect();
    assert_eq!(later, vec![second]);
    let in_group_read = posts_since(&h, &actor, &group, 0).await;
    assert!(
        matches!(in_group_read.as_slice(), [(m, ChatKind::Group, sender, ..)] if m.id == in_group && sender == &other.id),
        "{in_group_read:?}"
    );
}

/// The platform's handshake (made when the hub's events were set up) is answered; a platform
/// that sends none is never answered one.
pub async fn handshakes_are_answered<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let held = h.subscribe(&[]).await;
    if !h.driver.sends_handshakes() {
        let challenged = h.driver.deliveries().into_iter().any(|mut request| {
            request.held_subscriptions = held.to_vec();
            matches!(
                platform.verify_webhook(&h.connection, &request),
                Ok(WebhookVerdict::Challenge(_))
            )
        });
        assert!(
            !challenged,
            "a platform without handshakes is never answered one"
        );
        return;
    }
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    loop {
        let challenge = h.driver.deliveries().into_iter().find_map(|mut request| {
            request.held_subscriptions = held.to_vec();
            match platform.verify_webhook(&h.connection, &request) {
                Ok(WebhookVerdict::Challenge(token)) => Some(token),
                _ => None,
            }
        });
        if let Some(token) = challenge {
            assert!(!token.is_empty());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no handshake arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everyone an import brings in, page after page.
async fn import_all<D: Driver>(h: &Connected<D>, teams: &[String]) -> Vec<PlatformUser> {
    let mut request = ImportRequest {
        teams: teams.to_vec(),
        cursor: None,
    };
    let mut imported = Vec::new();
    loop {
        let page = h
            .driver
            .platform()
            .import_users(&h.connection, &request)
            .await
            .unwrap();
        imported.extend(page.users);
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return imported,
        }
    }
}

/// Someone who joins the platform after it was connected is found by address and imported;
/// once they leave, they are neither found as a member nor imported as one.
pub async fn joiners_are_found_and_leavers_are_not<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let teams: Vec<String> = match platform.rules().import {
        ImportScope::AllUsers => Vec::new(),
        ImportScope::SelectedTeams { .. } => {
            let listed = platform.list_teams(&h.connection).await.unwrap();
            vec![
                listed
                    .first()
                    .expect("the organisation has teams")
                    .id
                    .clone(),
            ]
        }
    };
    let address = "newcomer.compliance@acme.example";
    let joiner = h.driver.add_member(address, "Nia Newcomer", &teams).await;
    let email = Email::parse(address).unwrap();
    let found = platform
        .lookup_by_email(&h.connection, &email)
        .await
        .unwrap()
        .expect("a joiner is found by their address");
    assert_eq!(found.id, joiner);
    assert!(!found.deactivated && !found.is_bot, "{found:?}");
    let imported = import_all(&h, &teams).await;
    let listed = imported.iter().find(|user| user.id == joiner);
    assert!(
        listed.is_some_and(|user| !user.deactivated && user.emails.contains(&email)),
        "the joiner is imported as a member: {listed:?}"
    );

    h.driver.remove_member(&joiner, address).await;
    let after = platform
        .lookup_by_email(&h.connection, &email)
        .await
        .unwrap();
    assert!(
        after.as_ref().is_none_or(|user| user.deactivated),
        "a leaver is not found as a member: {after:?}"
    );
    let imported = import_all(&h, &teams).await;
    let listed = imported.iter().find(|user| user.id == joiner);
    assert!(
        listed.is_none_or(|user| user.deactivated),
        "a leaver is not imported as a member: {listed:?}"
    );
}

/// Directory Sync's groups: a platform with a directory lists its groups, each group's active
/// members with an address each, and says a group it does not have is not found; a platform
/// without says so for both.
pub async fn directory_groups_list_their_members<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let groups = match platform.directory_groups(&h.connection).await {
        Err(PlatformError::Unsupported(_)) => {
            let members = platform.group_members(&h.connection, "any-group").await;
            assert!(
                matches!(members, Err(PlatformError::Unsupported(_))),
                "a platform without directory groups lists no group's members: {members:?}"
            );
            return;
        }
        listed => listed.expect("the directory's groups are listed"),
    };
    assert!(!groups.is_empty(), "a directory with groups lists some");
    let mut members_seen = 0;
    for group in &groups {
        assert!(!group.id.is_empty() && !group.name.is_empty(), "{group:?}");
        let members = platform
            .group_members(&h.connection, &group.id)
            .await
            .unwrap_or_else(|error| panic!("{group:?}'s members: {error}"));
        for member in &members {
            assert!(!member.emails.is_empty(), "{member:?} has no address");
        }
        members_seen += members.len();
    }
    assert!(members_seen > 0, "no group of {groups:?} has a member");
    let missing = platform.group_members(&h.connection, "no-such-group").await;
    assert!(
        matches!(missing, Err(PlatformError::NotFound(_))),
        "a group the directory does not have: {missing:?}"
    );
}

/// A person's message, as the platform delivers it: verified with the secrets the hub holds,
/// split into items, and read.
pub async fn deliveries_are_verified_split_and_read<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let Delivered {
        representation,
        person,
        chat,
        written,
        request,
        envelope,
    } = h
        .a_persons_message("Kai Elsewhere", "Ping from a person")
        .await;

    let hub_view = h.hub_view(&representation.credentials);
    if let Some(name) = platform.webhook_secret_name(&request) {
        assert!(
            hub_view.credentials.iter().any(|(held, _)| held == name),
            "the representation's secrets include {name}"
        );
        assert!(
            platform.verify_webhook(&h.connection, &request).is_err(),
            "without the representation's secret the delivery cannot be accepted"
        );
    }
    assert_eq!(
        platform.verify_webhook(&hub_view, &request),
        Ok(WebhookVerdict::Events)
    );
    if let Some(author) = platform.announced_post(&envelope).and_then(|a| a.author) {
        assert_eq!(author, person.id);
    }
    // The hub hands the representation an event is addressed to, when the module names one;
    // without it such an event cannot be read, and retrying would not change that.
    let addressee = platform.event_addressee(&envelope).map(|account| {
        assert_eq!(
            account, representation.account,
            "a message to a representation is read as that representation"
        );
        representation.actor()
    });
    if addressee.is_some() {
        let error = platform
            .read_event(&h.connection, &envelope, None)
            .await
            .expect_err("an addressed event is not read without its addressee");
        assert!(!error.is_retryable(), "{error}");
    }
    let event = platform
        .read_event(&h.connection, &envelope, addressee.as_ref())
        .await
        .unwrap()
        .expect("a new message is an event to relay");
    assert_eq!(event.platform, platform.platform());
    let InboundKind::MessagePosted {
        message,
        chat_kind,
        sender,
        body,
        thread,
        ..
    } = event.kind
    else {
        panic!("{event:?}")
    };
    assert_eq!(
        message,
        MessageRef {
            chat: chat.clone(),
            id: written
        }
    );
    assert_eq!(chat_kind, ChatKind::Direct);
    assert_eq!(sender, person.id);
    assert_eq!(body.to_plain_text(), "Ping from a person");
    assert_eq!(thread, None);
}

/// Deliveries altered, forged or signed outside the allowed time are refused.
pub async fn tampered_webhooks_are_refused<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let Delivered {
        representation,
        request: genuine,
        ..
    } = h.a_persons_message("Lee Elsewhere", "Genuine").await;
    let hub_view = h.hub_view(&representation.credentials);
    assert_eq!(
        platform.verify_webhook(&hub_view, &genuine),
        Ok(WebhookVerdict::Events)
    );
    let tampered = h.driver.tamper(&hub_view, &genuine);
    assert!(
        !tampered.forged.is_empty(),
        "every platform authenticates its deliveries somehow"
    );
    for (what, requests) in [("forged", &tampered.forged), ("stale", &tampered.stale)] {
        for request in requests {
            let verdict = platform.verify_webhook(&hub_view, request);
            assert!(
                matches!(verdict, Err(PlatformError::BadWebhook(_))),
                "a {what} delivery is refused: {verdict:?}"
            );
        }
    }
}

/// The hub's own post comes back announced, so it is recognised without being read.
pub async fn the_hubs_own_post_is_announced<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let representation = h.represent("Mo Elsewhere").await;
    let held = h.subscribe(&[&representation]).await;
    let person = h.members().await.remove(0);
    let chat = h.direct_chat(&representation.actor(), &person.id).await;
    let posted = platform
        .post_message(
            &h.connection,
            &representation.actor(),
            &chat,
            &plain("A relayed copy"),
        )
        .await
        .unwrap();
    let (_, envelope) = h.delivery_announcing(&posted.id, &held).await;
    let announced = platform.announced_post(&envelope).unwrap();
    assert_eq!(announced.message, posted);
    if let Some(author) = announced.author {
        assert_eq!(author, representation.account);
    }
}

/// Subscriptions made by API are made, kept while young, renewed when old, remade when gone
/// and removed; a platform without them gives back what the hub holds.
pub async fn subscriptions_are_maintained_and_removed<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let events_url = h.driver.events_url();
    let now = h.driver.now().await;
    let watcher = h.represent("Wes Watcher").await;
    let watched = [watcher.actor()];
    let made = h.subscribe(&[&watcher]).await;
    if made.is_empty() {
        let held = vec![EventSubscription {
            id: "held-elsewhere".to_owned(),
            resource: "events".to_owned(),
            expires_at: now,
        }];
        assert_eq!(
            platform
                .maintain_subscriptions(&h.connection, &events_url, &watched, &[], &held, now)
                .await
                .unwrap(),
            held
        );
        platform
            .remove_subscriptions(&h.connection, &held)
            .await
            .unwrap();
        return;
    }
    assert!(made.iter().all(|s| s.expires_at > now), "{made:?}");
    let kept = platform
        .maintain_subscriptions(&h.connection, &events_url, &watched, &[], &made, now)
        .await
        .unwrap();
    assert_eq!(kept, made, "young subscriptions are kept as they are");
    let nearly_expired: Vec<EventSubscription> = made
        .iter()
        .map(|s| EventSubscription {
            expires_at: Timestamp::from_unix_millis(now.unix_millis() + 60_000),
            ..s.clone()
        })
        .collect();
    let renewed = platform
        .maintain_subscriptions(
            &h.connection,
            &events_url,
            &watched,
            &[],
            &nearly_expired,
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        renewed.iter().map(|s| &s.id).collect::<Vec<_>>(),
        made.iter().map(|s| &s.id).collect::<Vec<_>>(),
        "renewing keeps the subscriptions"
    );
    assert!(
        renewed
            .iter()
            .all(|s| s.expires_at.unix_millis() > now.unix_millis() + 60_000),
        "{renewed:?}"
    );
    platform
        .remove_subscriptions(&h.connection, &renewed)
        .await
        .unwrap();
    platform
        .remove_subscriptions(&h.connection, &renewed)
        .await
        .expect("a subscription already gone counts as removed");
    let remade = platform
        .maintain_subscriptions(
            &h.connection,
            &events_url,
            &watched,
            &[],
            &nearly_expired,
            now,
        )
        .await
        .unwrap();
    assert!(!remade.is_empty());
    assert!(
        remade.iter().all(|s| !made.iter().any(|m| m.id == s.id)),
        "subscriptions the platform no longer has are made anew: {remade:?}"
    );
}

/// Refreshing gives new credentials that work; once the platform revokes the connection's
/// access, its calls and its refresh are unauthorised.
pub async fn refresh_renews_and_revocation_is_unauthorized<D: Driver>() {
    let h = Connected::<D>::start().await;
    let platform = h.driver.platform();
    let old = &h.connection.credentials;
    let renewed = platform.refresh(&h.connection, old).await.unwrap();
    let changed = renewed.iter().any(|(name, secret)| {
        old.iter()
            .find(|(held, _)| *held == name)
            .is_none_or(|(_, before)| before.expose_secret() != secret.expose_secret())
    });
    assert_eq!(
        changed,
        h.driver.refresh_changes_credentials(),
        "refreshing gives new credentials where they expire, and the same where they do not"
    );
    let current = ConnectionContext {
        connection: h.connection.connection.clone(),
        credentials: renewed.clone(),
    };
    platform
        .check_health(&current)
        .await
        .expect("the new credentials work");

    h.driver.revoke(&current).await;
    let health = platform.check_health(&current).await;
    assert!(
        matches!(health, Err(PlatformError::Unauthorized(_))),
        "{health:?}"
    );
    let refreshed = platform.refresh(&current, &renewed).await;
    assert!(
        matches!(refreshed, Err(PlatformError::Unauthorized(_))),
        "{refreshed:?}"
    );
}

/// Instantiates every check of the suite as a test of its own for `$driver`, in a module
/// `compliance` of the calling test file (so each shows as `compliance::<check>`). The driver
/// must be in scope at the file's root, and the file's crate needs `tokio` (with its test
/// macro) among its dev-dependencies. The list is the same for every module: a check that does
/// not apply to a platform's declarations passes by saying so in its own body, never by being
/// left out here.
#[macro_export]
macro_rules! compliance_tests {
    ($driver:ty) => {
        $crate::compliance_tests!(
            $driver;
            connects_through_consent_pages,
            import_reads_every_page_once,
            lookup_by_email_finds_and_reports_absence,
            joiners_are_found_and_leavers_are_not,
            directory_groups_list_their_members,
            prompts_reach_the_person,
            hub_created_representations_are_provisioned_and_removed,
            a_declared_fallback_writes_to_a_member,
            existing_accounts_are_authorized_by_their_owner,
            direct_and_group_chats_open,
            messages_are_posted_edited_reacted_and_deleted,
            replies_go_in_the_thread_or_fall_back,
            find_posted_recognises_an_interrupted_post,
            messages_since_reads_what_was_missed,
            handshakes_are_answered,
            deliveries_are_verified_split_and_read,
            tampered_webhooks_are_refused,
            the_hubs_own_post_is_announced,
            subscriptions_are_maintained_and_removed,
            refresh_renews_and_revocation_is_unauthorized,
        );
    };
    ($driver:ty; $($check:ident),+ $(,)?) => {
        mod compliance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    $crate::$check::<$driver>().await;
                }
            )+
        }
    };
}
