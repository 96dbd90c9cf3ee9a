use crate::{ConnectionId, ExternalTenantId, Platform};

/// One connected platform instance: a Slack workspace, a Microsoft tenant, a Google Workspace
/// domain, a Webex or Zoom organisation. Its credentials are kept apart, encrypted, by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub platform: Platform,
    /// The platform's own id of the instance, unique per platform.
    pub tenant: ExternalTenantId,
    pub display_name: String,
}
