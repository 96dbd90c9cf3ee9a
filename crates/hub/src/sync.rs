//! User sync: representing a person on their secondary platforms, as the core's rules say —
//! a guest the hub creates, a bot a workspace admin approves, or the person's own account
//! which they authorise from a prompt on their primary platform — and breaking those syncs.
//!
//! Every change goes through the store's state machine, which refuses impossible transitions;
//! the same machine is consulted *before* calling a platform, so an action that would be refused
//! creates nothing on the platform first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::{
    Account, AccountKind, ChosenBy, ConnectionId, ExternalUserId, Person, PersonId, Platform,
    PlatformRules, Primary, PrimaryChoice, Representation, RepresentationKind, SyncEvent,
    SyncStatus, SyncStatusCode, Timestamp, primary_choice,
};
use switchboard_platform::{
    ChatPlatform, ConnectionContext, Credentials, FlowContext, FlowOutcome, FlowState, FlowStep,
    PlatformError, Prompt, ProvisionRequest, Provisioning, ProvisioningRate, Rate, TokenBucket,
};
use switchboard_secrets::{ExposeSecret, SecretString};
use switchboard_store::{FlowPurpose, PendingFlow, PeopleQuery, RepresentationSecrets, StoreError};

use crate::AppState;
use crate::connect::callback_url;
use crate::import::connection_context;
use crate::settings::SyncSettings;

/// How long a bot's approval link stays valid: admins approve in batches, not at once.
const CONSENT_LIFETIME_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;
/// How long a prompt's "Sync now" link works.
const PROMPT_LIFETIME_MILLIS: i64 = 14 * 24 * 60 * 60 * 1000;
/// How long a person has to finish their platform's sign-in once they followed the link.
const AUTHORIZE_LIFETIME_MILLIS: i64 = 30 * 60 * 1000;
/// Where a prompt's link leads on the hub.
pub const SYNC_LINK_PATH: &str = "/sync";
/// The wait before retrying a platform that said to slow down without saying for how long.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The longest turn an admin's sync waits for before answering; a longer one is queued, so
/// that nobody stares at a page or a command that hangs for the platform's pace.
const QUEUE_AFTER: Duration = Duration::from_secs(1);

/// The representations being synced or reset right now, so that two requests (an admin's and
/// an auto-sync run, or two runs) never create two guests or bots for one person at once; and
/// each connection's provisioning pace, so that a bulk sync waits for the platform's published
/// limit instead of running into it.
#[derive(Debug, Clone, Default)]
pub struct InFlight(
    Arc<Mutex<HashSet<(PersonId, Platform)>>>,
    Arc<Mutex<HashMap<ConnectionId, TokenBucket>>>,
);

/// A representation claimed for one sync; released when dropped.
pub(crate) struct Claim {
    set: InFlight,
    key: (PersonId, Platform),
}

impl InFlight {
    pub(crate) fn claim(&self, person: PersonId, platform: Platform) -> Result<Claim, SyncError> {
        let key = (person, platform);
        // A panic elsewhere cannot leave the set inconsistent (insert and remove are single
        // steps), so a poisoned lock is still usable.
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !set.insert(key) {
            return Err(SyncError::Busy(platform.display_name()));
        }
        Ok(Claim {
            set: self.clone(),
            key,
        })
    }
}

impl InFlight {
    /// Whether the person's representation on `platform` is being synced (a queued sync too)
    /// or reset right now.
    pub fn is_busy(&self, person: PersonId, platform: Platform) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&(person, platform))
    }

    /// Takes the connection's next turn to provision, at the pace the platform publishes, and
    /// says how long until it comes.
    fn turn(&self, connection: ConnectionId, rate: Option<Rate>) -> Duration {
        let Some(rate) = rate else {
            return Duration::ZERO;
        };
        let now = PACE_EPOCH.elapsed();
        self.1
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(connection)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .take(now)
    }
}

/// The fixed point paces are measured from.
static PACE_EPOCH: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

impl Drop for Claim {
    fn drop(&mut self) {
        let mut set = self
            .set
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.remove(&self.key);
    }
}

/// Where a sync got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The representation works (a guest was created).
    Synced,
    /// The representation worked already: nothing was done.
    AlreadySynced,
    /// A bot was created and waits for a workspace admin's approval at `url`.
    AwaitingConsent { url: String },
    /// The person was prompted on their primary platform to authorise their own account.
    Prompted,
    /// The platform refused; the representation is marked failed with this reason.
    Failed { reason: String },
    /// The platform's pace puts the sync's turn `wait` away: it runs then, in the background,
    /// and its outcome is audited when it comes. `pace` says why, in the platform's words:
    /// "Slack allows one new app a minute".
    Queued { wait: Duration, pace: String },
}

impl SyncOutcome {
    /// The representation's status once the sync answered; a queued one shows as pending
    /// (the clock) while it waits its turn, as it is being synced.
    pub fn status(&self) -> SyncStatusCode {
        match self {
            SyncOutcome::Synced | SyncOutcome::AlreadySynced => SyncStatusCode::Synced,
            SyncOutcome::AwaitingConsent { .. }
            | SyncOutcome::Prompted
            | SyncOutcome::Queued { .. } => SyncStatusCode::Pending,
            SyncOutcome::Failed { .. } => SyncStatusCode::Failed,
        }
    }
}

/// Whether a sync that must wait for the platform's pace answers before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pacing {
    /// It waits its turn, then answers: for the hub's own syncs, which nobody waits on.
    Wait,
    /// A turn more than a moment away is queued ([`SyncOutcome::Queued`]), and its outcome is
    /// audited as coming from `source` (an admin's request: the API or the console).
    Queue { source: String },
}

/// What the audit log says a sync on a platform came to, after the platform's name.
pub fn describe(result: &Result<SyncOutcome, SyncError>) -> String {
    match result {
        Ok(SyncOutcome::Synced) => "synced".to_owned(),
        Ok(SyncOutcome::AlreadySynced) => "already synced".to_owned(),
        Ok(SyncOutcome::Prompted) => "prompted".to_owned(),
        Ok(SyncOutcome::AwaitingConsent { .. }) => "waiting for an admin's approval".to_owned(),
        Ok(SyncOutcome::Failed { reason }) => format!("failed: {reason}"),
        Ok(SyncOutcome::Queued { wait, pace }) => {
            format!(
                "queued: {pace}; its turn comes in about {} s",
                seconds(*wait)
            )
        }
        Err(error) => format!("refused: {error}"),
    }
}

/// A wait in whole seconds, rounded up: "in about 0 s" would be a promise broken.
pub fn seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Where the audit log says an automatic action (auto-sync, auto-prompt) came from.
const AUTOMATIC_SOURCE: &str = "hub";

/// Audits what the hub did by itself, as `actor`, so that the audit log has every outcome and
/// not only the admins'. A failure to write it is logged, not returned: the action happened.
async fn audit_automatic(state: &AppState, actor: &str, action: &str, id: PersonId, detail: &str) {
    audit_later(state, actor, AUTOMATIC_SOURCE, action, id, detail).await;
}

/// Audits an outcome that came after the request was answered (the hub's own actions, a
/// queued sync), so nobody is left to hear of a failure to write it: it is logged.
async fn audit_later(
    state: &AppState,
    actor: &str,
    source: &str,
    action: &str,
    id: PersonId,
    detail: &str,
) {
    if let Err(error) = state
        .store
        .audit(actor, action, &id.to_string(), detail, source)
        .await
    {
        tracing::warn!(person = %id, %error, "an outcome could not be audited");
    }
}

/// Why a sync action could not be taken; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no person with id {0}")]
    NoPerson(PersonId),
    #[error("no primary platform chosen: choose one first")]
    NoPrimary,
    #[error("{0} is the person's primary platform; representations are for the others")]
    IsPrimary(&'static str),
    #[error("this hub has no {0} module configured")]
    NotConfigured(&'static str),
    #[error("{0} is not connected")]
    NotConnected(&'static str),
    #[error("{0} cannot represent this person")]
    Unsupported(&'static str),
    #[error("the person has no active account on {0} to be prompted on")]
    NoPrimaryAccount(&'static str),
    #[error("the person has no pending prompt to send again")]
    NothingToReprompt,
    #[error("the person's {0} representation is being synced or reset right now; try again")]
    Busy(&'static str),
    #[error(
        "the person is outside Directory Sync's scope (in none of the chosen groups): nobody outside it is synced"
    )]
    OutOfScope,
    #[error("{0}")]
    Platform(PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn module(state: &AppState, platform: Platform) -> Result<Arc<dyn ChatPlatform>, SyncError> {
    state
        .platforms
        .get(platform)
        .cloned()
        .ok_or(SyncError::NotConfigured(platform.display_name()))
}

/// The person's own active account on `platform`, if they have one.
fn own_account(accounts: &[Account], platform: Platform) -> Option<&Account> {
    accounts
        .iter()
        .find(|a| a.platform == platform && a.active && a.kind == AccountKind::Human)
}

/// The connection to act on for `platform`: the one holding the person's account, else the
/// platform's first connection.
async fn connection_for(
    state: &AppState,
    platform: Platform,
    account: Option<&Account>,
) -> Result<ConnectionContext, SyncError> {
    let id = match account {
        Some(account) => Some(account.connection_id),
        None => state
            .store
            .connections()
            .await?
            .into_iter()
            .find(|c| c.platform == platform)
            .map(|c| c.id),
    };
    let Some(id) = id else {
        return Err(SyncError::NotConnected(platform.display_name()));
    };
    connection_context(&state.store, id)
        .await?
        .ok_or(SyncError::NotConnected(platform.display_name()))
}

fn in_millis(state: &AppState, millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(state.clock.now().unix_millis() + millis)
}

async fn person(state: &AppState, id: PersonId) -> Result<Person, SyncError> {
    state.store.person(id).await?.ok_or(SyncError::NoPerson(id))
}

/// Whether a representation of `kind` under `rules` waits for its owner to authorise it through
/// a prompt: as the platform declares, or, for an own account the admin's grant would cover,
/// as the admin's setting says (see [`crate::settings::SyncSettings::prompt_own_accounts`]).
async fn prompted(
    state: &AppState,
    rules: &PlatformRules,
    kind: RepresentationKind,
) -> Result<bool, StoreError> {
    if rules.prompted(kind) {
        return Ok(true);
    }
    Ok(kind == RepresentationKind::ExistingAccount
        && rules.rule_of(kind).is_some()
        && crate::settings::prompt_own_accounts(&state.store).await?)
}

/// What a sync would do, for the admin to confirm before it does it.
pub struct Plan {
    pub person: Person,
    /// The representation the sync would create or prompt for, as the platform's rules say.
    pub kind: RepresentationKind,
    /// Synced already: the sync would do nothing.
    pub synced: bool,
    /// The sync prompts the person to authorise their own account, rather than creating or
    /// taking over the representation at once.
    pub prompts: bool,
}

/// What a sync of the person on `platform` would do, without doing it or asking the platform:
/// the representation the rules call for now (one tried before keeps its kind, as [`sync`]
/// keeps it), or why it would be refused.
pub async fn plan(state: &AppState, id: PersonId, platform: Platform) -> Result<Plan, SyncError> {
    let person = person(state, id).await?;
    if !crate::scope::includes(&state.store, &person.email).await? {
        return Err(SyncError::OutOfScope);
    }
    let primary = person.primary.ok_or(SyncError::NoPrimary)?;
    if primary.platform == platform {
        return Err(SyncError::IsPrimary(platform.display_name()));
    }
    let module = module(state, platform)?;
    let accounts = state.store.accounts_of_person(id).await?;
    let rules = module.rules();
    let fallback = crate::settings::fallback_representations(&state.store).await?;
    let ruled = rules.representation_allowing(own_account(&accounts, platform).is_some(), fallback);
    let (kind, synced) = match state.store.representation(id, platform).await? {
        Some(recorded) if recorded.status != SyncStatus::NotCreated => {
            (recorded.kind, recorded.status == SyncStatus::Synced)
        }
        _ => (ruled, false),
    };
    if kind == RepresentationKind::Unsupported {
        return Err(SyncError::Unsupported(platform.display_name()));
    }
    let prompts = prompted(state, &rules, kind).await?;
    Ok(Plan {
        person,
        kind,
        synced,
        prompts,
    })
}

/// Syncs `person` on `platform`: creates the representation the core's rules call for if it is
/// missing, then creates a guest, starts a bot's approval, or prompts the person. A guest or a
/// bot waits for the platform's pace, or is queued, as `pacing` says.
pub async fn sync(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    actor: &str,
    pacing: Pacing,
) -> Result<SyncOutcome, SyncError> {
    let outcome = sync_in_scope(state, id, platform, actor, pacing).await;
    // A sync takes its time (a platform's pace, a guest's invitation): the person may have
    // left the scope meanwhile, and the reconciliation then may not have seen what it made.
    if outcome.is_ok()
        && let Some(person) = state.store.person(id).await?
        && !crate::scope::includes(&state.store, &person.email).await?
    {
        crate::scope::reconcile_in_background(state, "a sync ended after its person left");
    }
    outcome
}

async fn sync_in_scope(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    actor: &str,
    pacing: Pacing,
) -> Result<SyncOutcome, SyncError> {
    let person = person(state, id).await?;
    if !crate::scope::includes(&state.store, &person.email).await? {
        return Err(SyncError::OutOfScope);
    }
    let primary = person.primary.ok_or(SyncError::NoPrimary)?;
    if primary.platform == platform {
        return Err(SyncError::IsPrimary(platform.display_name()));
    }
    let module = module(state, platform)?;
    let claim = state.syncing.claim(id, platform)?;
    let accounts = state.store.accounts_of_person(id).await?;
    let existing = own_account(&accounts, platform);
    let connection = connection_for(state, platform, existing).await?;
    // The kind follows the rules as they apply now: a person reset since may have gained or
    // lost an account on the platform.
    let fallback = crate::settings::fallback_representations(&state.store).await?;
    let kind = module
        .rules()
        .representation_allowing(existing.is_some(), fallback);
    if kind == RepresentationKind::Unsupported {
        return Err(SyncError::Unsupported(platform.display_name()));
    }
    let representation = match state.store.representation(id, platform).await? {
        Some(recorded) if recorded.kind != kind && recorded.status == SyncStatus::NotCreated => {
            state
                .store
                .set_representation_kind(id, platform, kind)
                .await?
        }
        Some(recorded) => recorded,
        None => {
            state
                .store
                .create_representation(id, platform, kind)
                .await?
        }
    };
    // What a sync is for is done: asking again (a bulk sync over a selection, say) changes
    // nothing, where going on would ask the state machine to complete it a second time.
    if representation.status == SyncStatus::Synced {
        return Ok(SyncOutcome::AlreadySynced);
    }
    let prompts = prompted(state, &module.rules(), representation.kind).await?;
    match representation.kind {
        RepresentationKind::Unsupported => Err(SyncError::Unsupported(platform.display_name())),
        _ if prompts => {
            refuse_early(&representation, SyncEvent::ConsentRequested)?;
            prompt(state, &person, &accounts, platform, actor).await
        }
        // A guest or a bot the hub creates, or an own account the admin's grant lets it act
        // as.
        RepresentationKind::GuestAccount
        | RepresentationKind::Bot
        | RepresentationKind::ExistingAccount => {
            // A bot may need consent, a guest never does, and an own account is the admin's
            // grant's: check the event the kind leads to.
            let event = match representation.kind {
                RepresentationKind::Bot => SyncEvent::ConsentRequested,
                RepresentationKind::ExistingAccount => SyncEvent::Granted,
                _ => SyncEvent::Completed,
            };
            refuse_early(&representation, event)?;
            // A bot already waiting for approval keeps its link: creating another app would
            // leave the first one behind on the platform.
            if representation.status == SyncStatus::Pending
                && let Some(waiting) = state
                    .store
                    .pending_consents()
                    .await?
                    .into_iter()
                    .find(|c| c.person_id == id && c.platform == platform)
            {
                return Ok(SyncOutcome::AwaitingConsent { url: waiting.url });
            }
            // A failed guest or bot, or a bot whose approval link expired, may have left
            // something on the platform (an app never approved, a guest whose token broke):
            // remove it before creating another. A person's own account is never removed.
            if representation.kind.created_by_hub()
                && matches!(
                    representation.status,
                    SyncStatus::Failed { .. } | SyncStatus::Pending
                )
            {
                remove_from_platform(
                    state,
                    id,
                    platform,
                    representation.external_account.as_ref(),
                )
                .await?;
            }
            let provision = Provision {
                state: state.clone(),
                module: module.clone(),
                connection,
                id,
                platform,
                kind: representation.kind,
                request: ProvisionRequest {
                    display_name: person.display_name.clone(),
                    email: person.email.clone(),
                    avatar_url: None,
                    existing_account: existing.map(|a| a.external_id.clone()),
                    primary_platform: Some(primary.platform.display_name().to_owned()),
                },
                actor: actor.to_owned(),
            };
            let wait = provision.turn();
            let source = match pacing {
                Pacing::Queue { source } if wait > QUEUE_AFTER => {
                    return Ok(provision.queue(claim, wait, source));
                }
                Pacing::Queue { source } => Some(source),
                Pacing::Wait => None,
            };
            tokio::time::sleep(wait).await;
            match (provision.run().await, source) {
                // The platform is slower than the pace it publishes: an admin's sync is queued
                // for its next turn rather than refused.
                (
                    Err(SyncError::Platform(error @ PlatformError::RateLimited { .. })),
                    Some(source),
                ) => {
                    let wait = provision
                        .turn()
                        .max(error.retry_after().unwrap_or(DEFAULT_RATE_LIMIT_WAIT));
                    Ok(provision.queue(claim, wait, source))
                }
                (outcome, _) => outcome,
            }
        }
    }
}

/// A guest or a bot to create, with everything its creation needs, so that it can wait for
/// its turn in the background.
struct Provision {
    state: AppState,
    module: Arc<dyn ChatPlatform>,
    connection: ConnectionContext,
    id: PersonId,
    platform: Platform,
    kind: RepresentationKind,
    request: ProvisionRequest,
    actor: String,
}

impl Provision {
    fn rate(&self) -> Option<ProvisioningRate> {
        self.module.provisioning_rate()
    }

    /// Takes the connection's next turn: how long until it comes.
    fn turn(&self) -> Duration {
        self.state
            .syncing
            .turn(self.connection.connection.id, self.rate().map(|r| r.rate))
    }

    /// Runs the creation `wait` from now in the background, holding the representation's
    /// claim (so the console shows the clock and nobody else syncs or resets it meanwhile);
    /// a rate limit the platform still answers is waited out at the pace, never a failure.
    /// The outcome is audited as the admin's, from `source`.
    fn queue(self, claim: Claim, wait: Duration, source: String) -> SyncOutcome {
        let pace = match self.rate() {
            Some(rate) => format!("{} allows {}", self.platform.display_name(), rate.allows),
            None => format!(
                "{} asked the hub to slow down",
                self.platform.display_name()
            ),
        };
        tracing::info!(person = %self.id, platform = self.platform.as_str(), wait_s = seconds(wait), "a sync is queued for the platform's pace");
        tokio::spawn(async move {
            let _claim = claim;
            let mut wait = wait;
            let outcome = loop {
                tokio::time::sleep(wait).await;
                match self.run().await {
                    Err(SyncError::Platform(error @ PlatformError::RateLimited { .. })) => {
                        wait = self
                            .turn()
                            .max(error.retry_after().unwrap_or(DEFAULT_RATE_LIMIT_WAIT));
                        tracing::info!(person = %self.id, platform = self.platform.as_str(), wait_s = seconds(wait), "a queued sync waits for the platform's rate limit");
                    }
                    outcome => break outcome,
                }
            };
            if let Err(error) = &outcome {
                tracing::warn!(person = %self.id, platform = self.platform.as_str(), %error, "a queued sync was refused");
            }
            audit_later(
                &self.state,
                &self.actor,
                &source,
                "person.sync",
                self.id,
                &format!("{}: {}", self.platform, describe(&outcome)),
            )
            .await;
        });
        SyncOutcome::Queued { wait, pace }
    }

    /// Creates the guest or the bot now.
    async fn run(&self) -> Result<SyncOutcome, SyncError> {
        let (state, id, platform, actor) =
            (&self.state, self.id, self.platform, self.actor.as_str());
        match self
            .module
            .provision_representation(&self.connection, &self.request)
            .await
        {
            Ok(Provisioning::Ready {
                account,
                credentials,
            }) => {
                let secrets = secrets_of(&credentials);
                keep_webhook_secrets(state, platform, &credentials).await?;
                let cause = |done: &str| format!("{actor}: {done}");
                match self.kind {
                    RepresentationKind::ExistingAccount => {
                        state
                            .store
                            .grant_sync(
                                id,
                                platform,
                                &account,
                                &secrets,
                                &cause("own account acted as through the admin's grant"),
                            )
                            .await?
                    }
                    kind => {
                        let created = if kind == RepresentationKind::GuestAccount {
                            "guest account created"
                        } else {
                            "bot created"
                        };
                        state
                            .store
                            .complete_sync(id, platform, &account, &secrets, &cause(created))
                            .await?
                    }
                };
                state.relay.representation_synced(&state.store, id).await;
                Ok(SyncOutcome::Synced)
            }
            Ok(Provisioning::AwaitingConsent {
                state: module_state,
                created,
                ..
            }) => {
                // Kept first, so a reset can remove the bot's app even if approval never
                // comes.
                state
                    .store
                    .set_representation_secrets(id, platform, &secrets_of(&created))
                    .await?;
                await_consent(
                    state,
                    &self.module,
                    &self.connection,
                    id,
                    platform,
                    module_state,
                    actor,
                )
                .await
            }
            Err(error) => fail(state, id, platform, error, actor).await,
        }
    }
}

fn secrets_of(credentials: &Credentials) -> RepresentationSecrets {
    RepresentationSecrets {
        secrets: credentials
            .iter()
            .map(|(name, secret)| (name.to_owned(), secret.clone()))
            .collect(),
        expires_at: credentials.expires_at(),
    }
}

/// Refuses, before any platform call, what the state machine would refuse afterwards.
fn refuse_early(representation: &Representation, event: SyncEvent) -> Result<(), SyncError> {
    representation
        .clone()
        .apply(event)
        .map(drop)
        .map_err(|illegal| SyncError::Store(StoreError::IllegalTransition(illegal)))
}

/// A platform failure: rate limits leave everything as it was (to be retried at the platform's
/// pace); anything else marks the representation failed, with the platform's reason.
async fn fail(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    error: PlatformError,
    actor: &str,
) -> Result<SyncOutcome, SyncError> {
    if matches!(error, PlatformError::RateLimited { .. }) {
        return Err(SyncError::Platform(error));
    }
    let reason = error.to_string();
    tracing::warn!(person = %id, platform = platform.as_str(), %reason, "sync failed");
    state
        .store
        .apply_sync_event(
            id,
            platform,
            SyncEvent::Failed {
                reason: reason.clone(),
            },
            &format!("{actor}: sync failed"),
        )
        .await?;
    Ok(SyncOutcome::Failed { reason })
}

/// A bot exists and waits for a workspace admin: the platform's approval link is bound to a
/// flow of the hub's own (so it returns to the hub's callback with the hub's state) and saved
/// for the admin to walk.
async fn await_consent(
    state: &AppState,
    module: &Arc<dyn ChatPlatform>,
    connection: &ConnectionContext,
    id: PersonId,
    platform: Platform,
    module_state: FlowState,
    actor: &str,
) -> Result<SyncOutcome, SyncError> {
    let flow = FlowContext {
        callback_url: callback_url(state),
        state: crate::tokens::generate(),
    };
    // With no callback parameters, the module re-issues its approval link for this flow.
    let step = module
        .continue_flow(Some(connection), &module_state, &flow, &[])
        .await;
    let (url, module_state) = match step {
        Ok(FlowStep::Redirect { url, state }) => (url, state),
        Ok(FlowStep::Done(_)) => {
            return fail(
                state,
                id,
                platform,
                PlatformError::Rejected(
                    "the bot's approval finished before anyone approved".into(),
                ),
                actor,
            )
            .await;
        }
        Err(error) => return fail(state, id, platform, error, actor).await,
    };
    state
        .store
        .save_flow(&PendingFlow {
            state: flow.state,
            purpose: FlowPurpose::Consent,
            platform,
            connection_id: Some(connection.connection.id),
            person_id: Some(id),
            platform_state: SecretString::from(module_state.0),
            url: Some(url.clone()),
            expires_at: in_millis(state, CONSENT_LIFETIME_MILLIS),
        })
        .await?;
    state
        .store
        .apply_sync_event(
            id,
            platform,
            SyncEvent::ConsentRequested,
            &format!("{actor}: created, waiting for an admin's approval"),
        )
        .await?;
    Ok(SyncOutcome::AwaitingConsent { url })
}

/// Prompts the person on their primary platform, from the hub's app or service user, with a
/// personal "Sync now" link, which works until the account is linked or it expires; the
/// representation becomes pending.
async fn prompt(
    state: &AppState,
    person: &Person,
    accounts: &[Account],
    platform: Platform,
    actor: &str,
) -> Result<SyncOutcome, SyncError> {
    let primary = person.primary.ok_or(SyncError::NoPrimary)?.platform;
    let primary_module = module(state, primary)?;
    let to = own_account(accounts, primary)
        .ok_or(SyncError::NoPrimaryAccount(primary.display_name()))?;
    let connection = connection_for(state, primary, Some(to)).await?;
    let token = crate::tokens::generate_prompt_link();
    state
        .store
        .create_prompt(
            person.id,
            platform,
            &crate::tokens::hash(&token),
            in_millis(state, PROMPT_LIFETIME_MILLIS),
        )
        .await?;
    let settings = SyncSettings::load(&state.store).await?;
    let message = Prompt {
        text: settings.prompt_text,
        link: format!(
            "{}{SYNC_LINK_PATH}/{token}",
            state.public_url.trim_end_matches('/')
        ),
    };
    if let Err(error) = primary_module
        .send_prompt(&connection, &to.external_id, &message)
        .await
    {
        return fail(state, person.id, platform, error, actor).await;
    }
    state
        .store
        .apply_sync_event(
            person.id,
            platform,
            SyncEvent::ConsentRequested,
            &format!(
                "{actor}: prompted on {} to authorise their account",
                primary.display_name()
            ),
        )
        .await?;
    Ok(SyncOutcome::Prompted)
}

/// User sync as the relay sees it: it prompts senders whose copies wait for their sync.
pub struct SenderPrompts(pub AppState);

#[async_trait::async_trait]
impl crate::relay::UnsyncedSenders for SenderPrompts {
    async fn prompt(&self, person: PersonId, platform: Platform) -> Result<bool, String> {
        auto_prompt(&self.0, person, platform)
            .await
            .map_err(|error| error.to_string())
    }
}

/// Auto-prompt: a person who wrote to someone on `platform` but cannot be represented there
/// until they authorise their own account is prompted — if the setting is on, and at most once
/// per throttle period (the prompt settings). Returns whether a prompt went out.
pub async fn auto_prompt(
    state: &AppState,
    id: PersonId,
    platform: Platform,
) -> Result<bool, SyncError> {
    let settings = SyncSettings::load(&state.store).await?;
    // A restricted person's messages go nowhere, so nothing waits for them to authorise.
    if !settings.auto_prompt || state.directory.is_restricted(&state.store, id).await? {
        return Ok(false);
    }
    let throttle = settings.prompt_throttle_hours.saturating_mul(3_600_000);
    let now = state.clock.now().unix_millis();
    if let Some(last) = state.store.last_prompt_at(id, platform).await?
        && now - last.unix_millis() < throttle
    {
        return Ok(false);
    }
    let representation = state.store.representation(id, platform).await?;
    let rules = module(state, platform)?.rules();
    let waits_for_person = match &representation {
        Some(r) => r.status != SyncStatus::Synced && prompted(state, &rules, r.kind).await?,
        None => {
            let accounts = state.store.accounts_of_person(id).await?;
            let existing = own_account(&accounts, platform).is_some();
            let kind = rules.representation_allowing(existing, settings.fallback_representations);
            prompted(state, &rules, kind).await?
        }
    };
    if !waits_for_person {
        return Ok(false);
    }
    let actor = "auto-prompt";
    let outcome = match representation.map(|r| r.status) {
        Some(SyncStatus::Pending) => {
            let person = person(state, id).await?;
            let accounts = state.store.accounts_of_person(id).await?;
            prompt(state, &person, &accounts, platform, actor).await
        }
        _ => sync(state, id, platform, actor, Pacing::Wait).await,
    };
    // What it did is audited; a refusal changed nothing and comes again with each retry of
    // every held copy, so the relay logs it instead.
    if outcome.is_ok() {
        audit_automatic(
            state,
            actor,
            "person.sync",
            id,
            &format!("{platform}: {}", describe(&outcome)),
        )
        .await;
    }
    Ok(outcome? == SyncOutcome::Prompted)
}

/// Sends the prompt again for every representation that waits for the person's own consent.
pub async fn reprompt(
    state: &AppState,
    id: PersonId,
    actor: &str,
) -> Result<Vec<Platform>, SyncError> {
    let person = person(state, id).await?;
    let accounts = state.store.accounts_of_person(id).await?;
    let mut waiting: Vec<Platform> = Vec::new();
    for representation in state.store.representations_of(id).await? {
        let Some(module) = state.platforms.get(representation.platform) else {
            continue;
        };
        if matches!(
            representation.status,
            SyncStatus::Pending | SyncStatus::Failed { .. }
        ) && prompted(state, &module.rules(), representation.kind).await?
        {
            waiting.push(representation.platform);
        }
    }
    if waiting.is_empty() {
        return Err(SyncError::NothingToReprompt);
    }
    for platform in &waiting {
        if let SyncOutcome::Failed { reason } =
            prompt(state, &person, &accounts, *platform, actor).await?
        {
            return Err(SyncError::Platform(PlatformError::Rejected(reason)));
        }
    }
    Ok(waiting)
}

/// Breaks every sync of the person: removes the guests and bots the hub created (never an
/// account of the person's own), returns each representation to not created, and decides the
/// primary platform again as an import does: someone on one platform has it again,
/// automatically (nobody could choose another, and without it they could not be synced);
/// someone on several is left to choose.
pub async fn reset(
    state: &AppState,
    id: PersonId,
    actor: &str,
) -> Result<Vec<Platform>, SyncError> {
    person(state, id).await?;
    let mut reset = Vec::new();
    for representation in state.store.representations_of(id).await? {
        if reset_on(state, id, representation.platform, actor).await? {
            reset.push(representation.platform);
        }
    }
    let accounts = state.store.accounts_of_person(id).await?;
    let on = accounts
        .iter()
        .filter(|a| a.active && a.kind == AccountKind::Human)
        .map(|a| a.platform);
    let primary = match primary_choice(on) {
        PrimaryChoice::Automatic(platform) => Some(Primary {
            platform,
            chosen_by: ChosenBy::Automatic,
        }),
        PrimaryChoice::ChooseAmong(_) | PrimaryChoice::NoAccounts => None,
    };
    state.store.set_primary(id, primary).await?;
    Ok(reset)
}

/// Makes `primary` the person's primary platform. A representation the hub holds for them on
/// that platform (a guest, a bot, even pending, or their own account authorised) would act
/// there for someone who now chats there themselves, so it is reset first: what the hub created
/// is removed, and a reset the platform refuses leaves the primary as it was. Answers the person
/// and whether a representation was reset.
pub async fn move_primary(
    state: &AppState,
    id: PersonId,
    primary: Primary,
    actor: &str,
) -> Result<(Person, bool), SyncError> {
    person(state, id).await?;
    let reset = reset_on(state, id, primary.platform, actor).await?;
    let person = state.store.set_primary(id, Some(primary)).await?;
    Ok((person, reset))
}

/// Resets the person's representation on one platform: removes the guest or bot the hub
/// created there (never an account of the person's own) and returns it to not created. False
/// when there was nothing to reset.
pub async fn reset_on(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    actor: &str,
) -> Result<bool, SyncError> {
    let Some(representation) = state.store.representation(id, platform).await? else {
        return Ok(false);
    };
    if representation.status == SyncStatus::NotCreated {
        return Ok(false);
    }
    let _claim = state.syncing.claim(id, platform)?;
    if representation.kind.created_by_hub() {
        remove_from_platform(
            state,
            id,
            platform,
            representation.external_account.as_ref(),
        )
        .await?;
    }
    state
        .store
        .reset_representation(id, platform, &format!("{actor}: reset"))
        .await?;
    Ok(true)
}

/// Removes what the hub created for the representation: the account, or before approval what
/// the platform named for removal (a bot's app). Nothing stored means nothing was created.
async fn remove_from_platform(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    account: Option<&ExternalUserId>,
) -> Result<(), SyncError> {
    let stored = state.store.representation_secrets(id, platform).await?;
    if account.is_none() && stored.secrets.is_empty() {
        return Ok(());
    }
    let module = module(state, platform)?;
    let connection = connection_for(state, platform, None).await?;
    let mut credentials = Credentials::default();
    for (name, secret) in stored.secrets {
        credentials.insert(name, secret);
    }
    credentials.set_expires_at(stored.expires_at);
    match module
        .remove_representation(&connection, account, &credentials)
        .await
    {
        // Already gone from the platform: nothing left to remove.
        Ok(()) | Err(PlatformError::NotFound(_)) => {}
        Err(error) => return Err(SyncError::Platform(error)),
    }
    for (name, _) in module.webhook_secrets_of(&credentials) {
        state
            .store
            .delete_webhook_secret(connection.connection.id, &name)
            .await?;
    }
    Ok(())
}

/// Keeps the secrets that verify webhooks sent on behalf of a representation with these
/// credentials (see [`ChatPlatform::webhook_secrets_of`]).
async fn keep_webhook_secrets(
    state: &AppState,
    platform: Platform,
    representation: &Credentials,
) -> Result<(), SyncError> {
    let module = module(state, platform)?;
    let secrets = module.webhook_secrets_of(representation);
    if secrets.is_empty() {
        return Ok(());
    }
    let connection = connection_for(state, platform, None).await?;
    for (name, secret) in secrets {
        state
            .store
            .put_webhook_secret(connection.connection.id, &name, &secret)
            .await?;
    }
    Ok(())
}

/// Resets the person and deletes them from the hub; their accounts stay, unlinked.
pub async fn remove(state: &AppState, id: PersonId, actor: &str) -> Result<(), SyncError> {
    reset(state, id, actor).await?;
    state.store.delete_person(id).await?;
    Ok(())
}

/// Finishes a consent or authorisation flow that came back to the callback with the platform's
/// `callback` parameters: the platform's answer completes the sync, or marks it failed with the
/// platform's reason.
pub async fn finish_flow(
    state: &AppState,
    pending: &PendingFlow,
    flow: &FlowContext,
    module: &dyn ChatPlatform,
    connection: Option<&ConnectionContext>,
    callback: &[(String, String)],
) -> Result<FlowEnd, SyncError> {
    let (Some(id), platform) = (pending.person_id, pending.platform) else {
        return Err(SyncError::Platform(PlatformError::Rejected(
            "the flow names no person".into(),
        )));
    };
    let who = match pending.purpose {
        FlowPurpose::Authorize => "person:browser",
        _ => "admin:browser",
    };
    // A prompt's link may start several sign-ins (the person followed it again after leaving
    // one, or in two tabs): the first to finish links the account, and the others are refused
    // before the platform is asked, so that none can turn the linked account failed. Holding
    // the representation while finishing makes "first" mean one at a time.
    let _claim = match pending.purpose {
        FlowPurpose::Authorize => {
            let Ok(claim) = state.syncing.claim(id, platform) else {
                return Ok(FlowEnd::Busy(platform));
            };
            let representation = state.store.representation(id, platform).await?;
            if representation.is_some_and(|r| r.status == SyncStatus::Synced) {
                return Ok(FlowEnd::AlreadyLinked(platform));
            }
            Some(claim)
        }
        FlowPurpose::Connect | FlowPurpose::Consent => None,
    };
    let step = module
        .continue_flow(
            connection,
            &FlowState(pending.platform_state.expose_secret().to_owned()),
            flow,
            callback,
        )
        .await;
    match step {
        Ok(FlowStep::Redirect {
            url,
            state: module_state,
        }) => {
            state
                .store
                .save_flow(&PendingFlow {
                    state: flow.state.clone(),
                    platform_state: SecretString::from(module_state.0),
                    url: Some(url.clone()),
                    // A further step never outlives the flow: a person's ends when their link
                    // expires at the latest (see [`begin_authorize`]).
                    expires_at: pending
                        .expires_at
                        .min(in_millis(state, AUTHORIZE_LIFETIME_MILLIS)),
                    ..pending.clone()
                })
                .await?;
            Ok(FlowEnd::Redirect(url))
        }
        Ok(FlowStep::Done(FlowOutcome::Authorized {
            account,
            credentials,
        })) => {
            let secrets = secrets_of(&credentials);
            keep_webhook_secrets(state, platform, &credentials).await?;
            let cause = match pending.purpose {
                FlowPurpose::Consent => "an admin approved it",
                _ => "the person authorised their account",
            };
            state
                .store
                .complete_sync(id, platform, &account, &secrets, &format!("{who}: {cause}"))
                .await?;
            state.relay.representation_synced(&state.store, id).await;
            Ok(FlowEnd::Synced(platform))
        }
        Ok(FlowStep::Done(FlowOutcome::Connected { .. })) => {
            let reason = "the platform connected an instance instead of authorising an account";
            fail(
                state,
                id,
                platform,
                PlatformError::Rejected(reason.into()),
                who,
            )
            .await?;
            Ok(FlowEnd::Failed(reason.to_owned()))
        }
        Err(error) => {
            let reason = error.to_string();
            fail(state, id, platform, error, who).await?;
            Ok(FlowEnd::Failed(reason))
        }
    }
}

/// How a consent or authorisation flow ended at the callback.
pub enum FlowEnd {
    Redirect(String),
    Synced(Platform),
    /// A person's sign-in, refused: another one linked their account on the platform first.
    AlreadyLinked(Platform),
    /// A person's sign-in, refused: their representation is being synced, reset or linked
    /// right now.
    Busy(Platform),
    Failed(String),
}

/// Starts the authorisation a prompt's link leads to: the person's own account on the
/// representation's platform, as an `authorize` flow that ends by `until` (the link's expiry)
/// at the latest, so that no sign-in started from a link outlives it. Answers where to send the
/// browser.
pub async fn begin_authorize(
    state: &AppState,
    id: PersonId,
    platform: Platform,
    until: Timestamp,
) -> Result<String, SyncError> {
    let module = module(state, platform)?;
    let accounts = state.store.accounts_of_person(id).await?;
    let account =
        own_account(&accounts, platform).ok_or(SyncError::Unsupported(platform.display_name()))?;
    let connection = connection_for(state, platform, Some(account)).await?;
    let flow = FlowContext {
        callback_url: callback_url(state),
        state: crate::tokens::generate(),
    };
    let step = module
        .begin_authorize(&connection, &account.external_id, &flow)
        .await
        .map_err(SyncError::Platform)?;
    let FlowStep::Redirect {
        url,
        state: module_state,
    } = step
    else {
        return Err(SyncError::Platform(PlatformError::Rejected(
            "the platform finished an authorisation without the person".into(),
        )));
    };
    state
        .store
        .save_flow(&PendingFlow {
            state: flow.state,
            purpose: FlowPurpose::Authorize,
            platform,
            connection_id: Some(connection.connection.id),
            person_id: Some(id),
            platform_state: SecretString::from(module_state.0),
            url: None,
            expires_at: until.min(in_millis(state, AUTHORIZE_LIFETIME_MILLIS)),
        })
        .await?;
    Ok(url)
}

/// Auto-sync: every person with a primary platform, on every other connected platform where
/// they are not represented yet. Each platform's queue runs on its own, so one platform's rate
/// limit (Slack creates one app a minute) never holds up another's; a rate-limited call is
/// retried after the wait the platform asked for. Answers how many syncs were started.
pub async fn auto_sync(state: AppState, actor: String) -> Result<usize, StoreError> {
    let connected: Vec<(Platform, PlatformRules)> = state
        .store
        .connections()
        .await?
        .into_iter()
        .filter_map(|c| Some((c.platform, state.platforms.get(c.platform)?.rules())))
        .collect();
    let mut queues: BTreeMap<Platform, Vec<PersonId>> = BTreeMap::new();
    // Restricted people are synced only when an admin asks for it.
    let restricted: HashSet<PersonId> =
        state.store.restricted_people().await?.into_iter().collect();
    let fallback = crate::settings::fallback_representations(&state.store).await?;
    // Directory Sync's scope: nobody outside the chosen groups is synced.
    let scope = crate::scope::current(&state.store).await?;
    let mut query = PeopleQuery {
        limit: 1_000,
        ..Default::default()
    };
    loop {
        let page = state.store.list_people(&query).await?;
        for summary in &page.people {
            let Some(primary) = summary.person.primary else {
                continue;
            };
            if restricted.contains(&summary.person.id) || !scope.includes(&summary.person.email) {
                continue;
            }
            for (platform, rules) in &connected {
                let represented = summary
                    .representations
                    .iter()
                    .any(|r| r.platform == *platform && r.status != SyncStatus::NotCreated);
                // Where the platform cannot represent the person at all, there is nothing to
                // try; the console shows them as not represented, with the reason.
                let has_account = summary.platforms.contains(platform);
                let representable = rules.representation_allowing(has_account, fallback)
                    != RepresentationKind::Unsupported;
                if *platform != primary.platform && !represented && representable {
                    queues.entry(*platform).or_default().push(summary.person.id);
                }
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let started: usize = queues.values().map(Vec::len).sum();
    let mut workers = tokio::task::JoinSet::new();
    for (platform, people) in queues {
        let (state, actor) = (state.clone(), actor.clone());
        workers.spawn(async move {
            for id in people {
                loop {
                    let outcome = sync(&state, id, platform, &actor, Pacing::Wait).await;
                    if let Err(SyncError::Platform(error @ PlatformError::RateLimited { .. })) =
                        &outcome
                    {
                        let wait = error.retry_after().unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
                        tracing::info!(platform = platform.as_str(), wait_s = wait.as_secs(), "auto-sync waits for the platform's rate limit");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    // People already being synced by someone else, or whom the platform refused,
                    // are left for the admin to see, in the audit log with the rest.
                    if let Err(error) = &outcome {
                        tracing::info!(person = %id, platform = platform.as_str(), %error, "auto-sync skipped a person");
                    }
                    audit_automatic(
                        &state,
                        &actor,
                        "person.sync",
                        id,
                        &format!("{platform}: {}", describe(&outcome)),
                    )
                    .await;
                    break;
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    Ok(started)
}

/// Resets everyone who left every platform the hub imports (deactivated, deleted, or gone
/// from the selected teams) yet is still represented: the guests and bots the hub created for
/// them are removed. This is what keeping the directory in step means when auto-sync is on; with
/// it off, the admin sees them (no platform left, inactive accounts) and resets them. Answers how
/// many people were reset; a person who cannot be reset now (a sync under way, the platform
/// unavailable) is logged and tried again after the next import.
pub async fn reset_leavers(state: &AppState, actor: &str) -> Result<usize, StoreError> {
    let mut reset_count = 0;
    for id in state.store.people_who_left().await? {
        let detail = match reset(state, id, &format!("{actor}: left every platform")).await {
            Ok(platforms) => {
                reset_count += 1;
                let names: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
                format!("left every platform; reset: {}", names.join(", "))
            }
            Err(error) => {
                tracing::warn!(person = %id, %error, "a person who left could not be reset");
                format!("left every platform; refused: {error}")
            }
        };
        audit_automatic(state, actor, "person.reset", id, &detail).await;
    }
    if reset_count > 0 {
        tracing::info!(people = reset_count, "people who left were reset");
    }
    Ok(reset_count)
}

/// Resets every representation that is its platform's fallback (see
/// [`SyncSettings::fallback_representations`]), as turning that setting off asks: nobody is
/// reached through a fallback the admin no longer allows. Answers how many were reset; one
/// that cannot be reset now (being synced at this moment) is logged and left.
pub async fn reset_fallbacks(state: &AppState, actor: &str) -> Result<usize, StoreError> {
    let mut count = 0;
    for platform in state.platforms.platforms() {
        let Some(rules) = state.platforms.get(platform).map(|module| module.rules()) else {
            continue;
        };
        if rules.fallback.is_none() {
            continue;
        }
        for status in [
            SyncStatusCode::Synced,
            SyncStatusCode::Pending,
            SyncStatusCode::Failed,
        ] {
            for representation in state
                .store
                .representations_with_status(Some(platform), status)
                .await?
            {
                if !rules.is_fallback(representation.kind) {
                    continue;
                }
                match reset_on(state, representation.person_id, platform, actor).await {
                    Ok(true) => count += 1,
                    Ok(false) => {}
                    Err(SyncError::Store(error)) => return Err(error),
                    Err(error) => {
                        tracing::warn!(person = %representation.person_id, platform = platform.as_str(), %error, "a fallback representation could not be reset");
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Runs auto-sync in the background when the admin turned it on (after imports), after
/// resetting the people who left (see [`reset_leavers`]).
pub fn auto_sync_if_enabled(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        match SyncSettings::load(&state.store).await {
            Ok(settings) if settings.auto_sync => {
                if let Err(error) = reset_leavers(&state, "auto-sync").await {
                    tracing::error!(%error, "auto-sync could not reset the people who left");
                }
                if let Err(error) = auto_sync(state, "auto-sync".to_owned()).await {
                    tracing::error!(%error, "auto-sync failed");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "cannot read the sync settings"),
        }
    });
}

/// What a prompt's link stands for now; following it spends nothing (see
/// [`switchboard_store::Store::prompt_link`]).
pub async fn prompt_link(
    state: &AppState,
    token: &str,
) -> Result<switchboard_store::PromptLink, StoreError> {
    state.store.prompt_link(&crate::tokens::hash(token)).await
}
