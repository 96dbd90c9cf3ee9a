//! The representations' tokens the module has been handed, by connection and account, kept
//! only to delete webhooks.
//!
//! The hub hands a representation's credentials with each event it reads and with each
//! account it watches, which is what reading and creating webhooks need. A webhook must also
//! be deleted, with its owner's token, once the hub stops watching that account (or drops the
//! connection's subscriptions), and then the hub no longer hands that token: so the module
//! remembers the token of each representation it was handed, whenever it was handed one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use switchboard_platform::{ConnectionContext, Credentials};
use switchboard_secrets::SecretString;

use crate::credential;

#[derive(Default)]
pub(crate) struct KnownTokens {
    by_account: Mutex<HashMap<(String, String), SecretString>>,
}

impl KnownTokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), SecretString>> {
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

    /// Remembers `account`'s current token; credentials without one are ignored.
    pub fn remember(
        &self,
        connection: &ConnectionContext,
        account: &str,
        credentials: &Credentials,
    ) {
        let Ok(token) = credentials.get(credential::ACCESS_TOKEN) else {
            return;
        };
        self.lock()
            .insert(Self::key(connection, account), token.clone());
    }

    pub fn get(&self, connection: &ConnectionContext, account: &str) -> Option<SecretString> {
        self.lock().get(&Self::key(connection, account)).cloned()
    }

    pub fn forget(&self, connection: &ConnectionContext, account: &str) {
        self.lock().remove(&Self::key(connection, account));
    }
}
