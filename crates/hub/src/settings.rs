//! The admin's sync settings, kept in the store's settings table by name, and the people
//! restricted from writing through the hub (a table of their own, which the relay reads).

use switchboard_core::{Email, PersonId};
use switchboard_store::{Store, StoreError};

const AUTO_SYNC: &str = "auto_sync";
const AUTO_PROMPT: &str = "auto_prompt";
const PROMPT_THROTTLE_HOURS: &str = "prompt_throttle_hours";
const PROMPT_TEXT: &str = "prompt_text";
const PROMPT_OWN_ACCOUNTS: &str = "prompt_own_accounts";
const FALLBACK_REPRESENTATIONS: &str = "fallback_representations";

/// What the hub says when it prompts someone, unless the admin wrote their own.
pub const DEFAULT_PROMPT_TEXT: &str = "Colleagues on other chat platforms want to reach you \
     here. Link your account once so their messages arrive in this app.";

/// The longest throttle an admin may set: a month.
pub const MAX_PROMPT_THROTTLE_HOURS: i64 = 24 * 31;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// After each import and match, sync every person with a primary platform on every other
    /// connected platform.
    pub auto_sync: bool,
    /// Prompt unsynced people when they message synced ones. Kept now; it acts once the relay
    /// sees messages.
    pub auto_prompt: bool,
    /// The least time between two automatic prompts to one person.
    pub prompt_throttle_hours: i64,
    pub prompt_text: String,
    /// Prompt people to link their own account even where the admin's grant for the whole
    /// connection would let the hub act as it at once (see `Authoriser::Admin`): each person
    /// then agrees for themselves.
    pub prompt_own_accounts: bool,
    /// Where a platform cannot represent a person (no account of theirs there) but offers a
    /// fallback (`PlatformRules::fallback`: Zoom's chatbot), represent them by it: not
    /// natively, their messages arriving in the hub's chat with each colleague, labelled
    /// with their name. Off by default.
    pub fallback_representations: bool,
    /// The e-mail addresses of the people who may not write through the hub, in order: what
    /// they write is not relayed (they are told so), nor are they synced or prompted
    /// automatically. What others write to them is still delivered.
    pub restricted_users: Vec<String>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            auto_sync: false,
            auto_prompt: false,
            prompt_throttle_hours: 24,
            prompt_text: DEFAULT_PROMPT_TEXT.to_owned(),
            prompt_own_accounts: false,
            fallback_representations: false,
            restricted_users: Vec::new(),
        }
    }
}

impl SyncSettings {
    /// The settings as the API shows them and the audit log records them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "auto_sync": self.auto_sync,
            "auto_prompt": self.auto_prompt,
            "prompt_throttle_hours": self.prompt_throttle_hours,
            "prompt_text": self.prompt_text,
            "prompt_own_accounts": self.prompt_own_accounts,
            "fallback_representations": self.fallback_representations,
            "restricted_users": self.restricted_users,
        })
    }

    /// The stored settings, with defaults for what was never set (or no longer reads).
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let defaults = Self::default();
        let flag = |value: Option<String>, default: bool| value.map_or(default, |v| v == "true");
        Ok(Self {
            auto_sync: flag(store.setting(AUTO_SYNC).await?, defaults.auto_sync),
            auto_prompt: flag(store.setting(AUTO_PROMPT).await?, defaults.auto_prompt),
            prompt_throttle_hours: store
                .setting(PROMPT_THROTTLE_HOURS)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.prompt_throttle_hours),
            prompt_text: store
                .setting(PROMPT_TEXT)
                .await?
                .unwrap_or(defaults.prompt_text),
            prompt_own_accounts: prompt_own_accounts(store).await?,
            fallback_representations: fallback_representations(store).await?,
            restricted_users: restricted_emails(store).await?,
        })
    }

    pub async fn save(&self, store: &Store) -> Result<(), StoreError> {
        store
            .set_setting(AUTO_SYNC, &self.auto_sync.to_string())
            .await?;
        store
            .set_setting(AUTO_PROMPT, &self.auto_prompt.to_string())
            .await?;
        store
            .set_setting(
                PROMPT_THROTTLE_HOURS,
                &self.prompt_throttle_hours.to_string(),
            )
            .await?;
        store
            .set_setting(PROMPT_OWN_ACCOUNTS, &self.prompt_own_accounts.to_string())
            .await?;
        store
            .set_setting(
                FALLBACK_REPRESENTATIONS,
                &self.fallback_representations.to_string(),
            )
            .await?;
        store.set_setting(PROMPT_TEXT, &self.prompt_text).await
    }
}

/// Whether people are prompted for their own accounts even where the admin's grant covers
/// them (see [`SyncSettings::prompt_own_accounts`]); read alone, as every sync asks it.
pub async fn prompt_own_accounts(store: &Store) -> Result<bool, StoreError> {
    Ok(store
        .setting(PROMPT_OWN_ACCOUNTS)
        .await?
        .is_some_and(|value| value == "true"))
}

/// Whether people a platform cannot represent are represented by its fallback (see
/// [`SyncSettings::fallback_representations`]); read alone, as every sync asks it.
pub async fn fallback_representations(store: &Store) -> Result<bool, StoreError> {
    Ok(store
        .setting(FALLBACK_REPRESENTATIONS)
        .await?
        .is_some_and(|value| value == "true"))
}

async fn restricted_emails(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut emails = Vec::new();
    for id in store.restricted_people().await? {
        if let Some(person) = store.person(id).await? {
            emails.push(person.email.as_str().to_owned());
        }
    }
    emails.sort();
    Ok(emails)
}

/// Why a list of people to restrict was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestrictionError {
    #[error("'{0}' is not an e-mail address")]
    NotAnEmail(String),
    #[error("nobody in the hub has the e-mail address {0}: import their platform first")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The people these e-mail addresses name, or why one names nobody: an address the hub does
/// not know is refused, never silently left out.
pub async fn people_by_email(
    store: &Store,
    emails: &[String],
) -> Result<Vec<(PersonId, String)>, RestrictionError> {
    let mut people = Vec::with_capacity(emails.len());
    for raw in emails {
        let email = Email::parse(raw).map_err(|_| RestrictionError::NotAnEmail(raw.clone()))?;
        let person = store
            .person_by_email(&email)
            .await?
            .ok_or_else(|| RestrictionError::Unknown(email.as_str().to_owned()))?;
        if !people.iter().any(|(id, _)| *id == person.id) {
            people.push((person.id, email.as_str().to_owned()));
        }
    }
    people.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(people)
}
