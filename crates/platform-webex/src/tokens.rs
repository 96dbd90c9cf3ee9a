//! The representations' tokens the module has been handed, by connection and account.
//!
//! A webhook delivery names only the account whose webhook sent it, and the message it
//! announces must be fetched with that account's token; the hub hands `read_event` the
//! connection's credentials only. So the module remembers each representation's token (and
//! its webhook's secret) whenever the hub hands it one: when it is created or authorised, when
//! it is refreshed, and whenever the relay acts as it. After a restart, an account is known
//! again from its first use or refresh.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use switchboard_platform::{ConnectionContext, Credentials};
use switchboard_secrets::SecretString;

use crate::credential;

/// What the module knows of one representation.
#[derive(Clone)]
pub(crate) struct Known {
    pub token: SecretString,
    pub webhook_secret: Option<SecretString>,
}

#[derive(Default)]
pub(crate) struct KnownTokens {
    by_account: Mutex<HashMap<(String, String), Known>>,
}

impl KnownTokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Known>> {
        self.by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn key(connection: &ConnectionContext, account: &str) -> (String, String) {
        (
            connection.connection.tenant.as_str().to_owned(),
            account.to_owned(),
        )
    }

    /// Remembers `account`'s current credentials; credentials without a token are ignored.
    pub fn remember(
        &self,
        connection: &ConnectionContext,
        account: &str,
        credentials: &Credentials,
    ) {
        let Ok(token) = credentials.get(credential::ACCESS_TOKEN) else {
            return;
        };
        let known = Known {
            token: token.clone(),
            webhook_secret: credentials.get(credential::WEBHOOK_SECRET).ok().cloned(),
        };
        self.lock().insert(Self::key(connection, account), known);
    }

    pub fn get(&self, connection: &ConnectionContext, account: &str) -> Option<Known> {
        self.lock().get(&Self::key(connection, account)).cloned()
    }

    pub fn forget(&self, connection: &ConnectionContext, account: &str) {
        self.lock().remove(&Self::key(connection, account));
    }
}
