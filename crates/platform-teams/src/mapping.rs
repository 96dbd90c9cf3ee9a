//! Graph directory objects as the hub's [`PlatformUser`]s.
//!
//! - user: <https://learn.microsoft.com/en-us/graph/api/resources/user>
//! - servicePrincipal: <https://learn.microsoft.com/en-us/graph/api/resources/serviceprincipal>

use serde::Deserialize;
use switchboard_core::{Email, ExternalUserId};
use switchboard_platform::PlatformUser;

/// The user properties the hub asks Graph for (`$select`): Graph returns `userType`,
/// `accountEnabled`, `proxyAddresses` and `otherMails` only when selected.
pub(crate) const USER_SELECT: &str =
    "id,displayName,mail,userPrincipalName,proxyAddresses,otherMails,userType,accountEnabled";

/// A directory object as Graph lists it (a user, or any other member of a group).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct DirectoryObject {
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    id: String,
    display_name: Option<String>,
    mail: Option<String>,
    user_principal_name: Option<String>,
    proxy_addresses: Vec<String>,
    other_mails: Vec<String>,
    user_type: Option<String>,
    account_enabled: Option<bool>,
    /// Service principals' name for their app.
    app_display_name: Option<String>,
}

/// A directory object (a user, or a service principal among a group's members) as a
/// [`PlatformUser`]; `None` for what is neither (devices, nested groups, contacts).
///
/// E-mail addresses: `mail` first, then every SMTP address in `proxyAddresses` (primary
/// `SMTP:` and aliases `smtp:`), `otherMails`, and the `userPrincipalName` when it reads as an
/// address (a guest's `…#EXT#@tenant` one does not). Unreadable addresses are skipped;
/// duplicates (after the core's normalisation) are listed once. `service_user` marks the hub's
/// own service user, which is listed as a bot so that it is never matched to a person.
pub(crate) fn platform_user(
    object: DirectoryObject,
    service_user: Option<&str>,
) -> Option<PlatformUser> {
    if object.id.is_empty() {
        return None;
    }
    let kind = object
        .odata_type
        .as_deref()
        .unwrap_or("#microsoft.graph.user")
        .to_ascii_lowercase();
    let is_service_principal = kind.ends_with(".serviceprincipal");
    if !is_service_principal && !kind.ends_with(".user") {
        return None;
    }
    let mut emails: Vec<Email> = Vec::new();
    let mut add = |raw: &str| {
        if let Ok(email) = Email::parse(raw)
            && !emails.contains(&email)
        {
            emails.push(email);
        }
    };
    if let Some(mail) = &object.mail {
        add(mail);
    }
    for proxy in &object.proxy_addresses {
        if let Some((scheme, address)) = proxy.split_once(':')
            && scheme.eq_ignore_ascii_case("smtp")
        {
            add(address);
        }
    }
    for other in &object.other_mails {
        add(other);
    }
    if let Some(upn) = &object.user_principal_name
        && looks_like_mail(upn)
    {
        add(upn);
    }
    let display_name = object
        .display_name
        .or(object.app_display_name)
        .or(object.user_principal_name)
        .unwrap_or_else(|| object.id.clone());
    let is_service_user = service_user.is_some_and(|id| id.eq_ignore_ascii_case(&object.id));
    Some(PlatformUser {
        id: ExternalUserId::new(object.id),
        display_name,
        emails: if is_service_principal {
            Vec::new()
        } else {
            emails
        },
        is_bot: is_service_principal || is_service_user,
        is_guest: object
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest")),
        deactivated: object.account_enabled == Some(false),
    })
}

/// A user principal name that is also an address: guests' `name_domain#EXT#@tenant` and
/// anything without a dotted domain are not.
fn looks_like_mail(upn: &str) -> bool {
    !upn.contains('#')
        && upn
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn user(object: Value, service_user: Option<&str>) -> Option<PlatformUser> {
        platform_user(serde_json::from_value(object).unwrap(), service_user)
    }

    fn emails(user: &PlatformUser) -> Vec<&str> {
        user.emails.iter().map(Email::as_str).collect()
    }

    #[test]
    fn a_member_lists_mail_aliases_and_other_mails_once() {
        let member = user(
            json!({
                "id": "u1", "displayName": "Ada Berg", "mail": "Ada.Berg@acme.example",
                "userPrincipalName": "ada.berg@acme.example",
                "proxyAddresses": ["SMTP:Ada.Berg@acme.example", "smtp:ada@legacy.acme.example", "X500:/o=x"],
                "otherMails": ["ada@personal.example"], "userType": "Member", "accountEnabled": true
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            emails(&member),
            [
                "ada.berg@acme.example",
                "ada@legacy.acme.example",
                "ada@personal.example"
            ]
        );
        assert!(!member.is_guest && !member.is_bot && !member.deactivated);
    }

    #[test]
    fn guests_disabled_accounts_service_principals_and_the_service_user_are_flagged() {
        let guest = user(
            json!({"id": "g", "displayName": "G", "mail": "g@partner.example",
                    "userPrincipalName": "g_partner.example#EXT#@acme.example", "userType": "Guest"}),
            None,
        )
        .unwrap();
        assert!(guest.is_guest);
        assert_eq!(emails(&guest), ["g@partner.example"]);
        let disabled = user(json!({"id": "d", "accountEnabled": false}), None).unwrap();
        assert!(disabled.deactivated);
        assert_eq!(disabled.display_name, "d");
        let app = user(
            json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp", "appDisplayName": "Bot"}),
            None,
        )
        .unwrap();
        assert!(app.is_bot && app.emails.is_empty());
        assert_eq!(app.display_name, "Bot");
        let service = user(json!({"id": "S1", "mail": "svc@acme.example"}), Some("s1"));
        assert!(service.unwrap().is_bot);
        assert!(
            user(
                json!({"@odata.type": "#microsoft.graph.device", "id": "x"}),
                None
            )
            .is_none()
        );
    }
}
