//! How the hub's demo connects to the simulated Google, as the domain's super admin following
//! the hub's documentation would: a key for the project's service account (IAM), domain-wide
//! delegation of the hub's scopes and the Chat app (the Admin console's forms), and the Pub/Sub
//! topic the hub's Workspace Events subscriptions publish to, pushed to the hub's webhook.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchboard_sim_kit::demo::{browser, prepared};
use switchboard_sim_kit::{Consent, DemoError, DemoHub, SimulatedConnect};

use crate::KEY;
use crate::state::{HUB_OAUTH_CLIENT_ID, HUB_OAUTH_CLIENT_SECRET, HUB_SERVICE_ACCOUNT, PROJECT_ID};

const TOPIC: &str = "switchboard-events";
/// The domain of the guests the hub makes for people whose address is in the organisation's
/// domain (Google makes guests only of outside addresses).
const GUEST_DOMAIN: &str = "guests.switchboard-demo.example";
const PUSH_SUBSCRIPTION: &str = "switchboard-push";

/// What the demo keeps: the service-account key file, the admin, the topic and the account
/// that signs the pushes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    key: String,
    admin: String,
    topic: String,
    push_service_account: String,
}

/// The simulated Google as the demo connects the hub to it.
pub struct GoogleDemo;

#[async_trait::async_trait]
impl SimulatedConnect for GoogleDemo {
    fn key(&self) -> &'static str {
        KEY
    }

    fn web_view(&self) -> &'static str {
        "/google/"
    }

    async fn prepare(&self, sim: &str, hub: &DemoHub) -> Result<Option<Value>, DemoError> {
        let (admin, token) = sign_in_as_admin(sim).await?;
        set_up_with_admin(sim, hub, &admin, &token).await.map(Some)
    }

    fn hub_table(
        &self,
        sim: &str,
        hub: &DemoHub,
        _prepared: Option<&Value>,
    ) -> Result<Value, DemoError> {
        Ok(json!({
            "chat_base_url": format!("{sim}/google/chat"),
            "directory_base_url": format!("{sim}/google/admin/directory/v1"),
            "reports_base_url": format!("{sim}/google"),
            "events_base_url": format!("{sim}/google/workspaceevents"),
            "authorize_url": format!("{sim}/google/oauth2/auth"),
            "token_url": format!("{sim}/google/oauth2/token"),
            "certs_url": format!("{sim}/google/oauth2/v3/certs"),
            "push_audience": hub.webhook_url,
            "oauth_client_id": HUB_OAUTH_CLIENT_ID,
            "oauth_client_secret": HUB_OAUTH_CLIENT_SECRET,
            "guest_domain": GUEST_DOMAIN,
        }))
    }

    fn consent(&self, prepared_state: Option<&Value>) -> Result<Consent, DemoError> {
        let prepared: Prepared = prepared(KEY, prepared_state)?;
        Ok(Consent {
            inputs: vec![
                ("service_account_key".to_owned(), prepared.key),
                ("admin_email".to_owned(), prepared.admin.clone()),
                ("customer".to_owned(), "my_customer".to_owned()),
                ("pubsub_topic".to_owned(), prepared.topic),
                (
                    "push_service_account".to_owned(),
                    prepared.push_service_account,
                ),
            ],
            identity: ("login".to_owned(), prepared.admin),
            accept: "allow".to_owned(),
        })
    }
}

fn refused(what: impl Into<String>) -> DemoError {
    DemoError::Refused(what.into())
}

/// Fails with what the simulator answered unless the status is one of `accepted`.
async fn expect(
    response: reqwest::Response,
    what: &str,
    accepted: &[u16],
) -> Result<Value, DemoError> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    if !accepted.contains(&status) {
        return Err(refused(format!("{what}: HTTP {status}: {text}")));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The domain's super admin and a token of theirs (the simulator's `/_sim/token`, standing in
/// for the admin signing in to the Cloud console).
async fn sign_in_as_admin(sim: &str) -> Result<(String, String), DemoError> {
    let http = browser()?;
    let users: Value = http
        .get(format!("{sim}/_sim/users?platform={KEY}"))
        .send()
        .await?
        .json()
        .await?;
    let admin = users
        .as_array()
        .and_then(|users| users.iter().find(|u| u["kind"] == "admin"))
        .and_then(|u| u["email"].as_str())
        .ok_or_else(|| refused("the Google domain has no super admin"))?
        .to_owned();
    let minted = http
        .post(format!("{sim}/_sim/token"))
        .json(&json!({"platform": KEY, "email": admin}))
        .send()
        .await?;
    let token = expect(minted, "signing in as the admin", &[200]).await?["token"]
        .as_str()
        .ok_or_else(|| refused("no admin token"))?
        .to_owned();
    Ok((admin, token))
}

/// What the admin does in the Cloud and Admin consoles, as the demo's prepared state.
pub(crate) async fn set_up_with_admin(
    sim: &str,
    hub: &DemoHub,
    admin: &str,
    token: &str,
) -> Result<Value, DemoError> {
    let http = browser()?;

    let created = http
        .post(format!("{sim}/google/iam/v1/projects/{PROJECT_ID}/serviceAccounts/{HUB_SERVICE_ACCOUNT}/keys"))
        .bearer_auth(token)
        .json(&json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"}))
        .send()
        .await?;
    let created = expect(created, "creating the service account's key", &[200]).await?;
    let key_data = STANDARD
        .decode(created["privateKeyData"].as_str().unwrap_or_default())
        .map_err(|_| refused("the key is not base64"))?;
    let key = String::from_utf8(key_data).map_err(|_| refused("the key file is not text"))?;
    let key_file: Value =
        serde_json::from_str(&key).map_err(|_| refused("the key file is not JSON"))?;
    let client_id = key_file["client_id"]
        .as_str()
        .ok_or_else(|| refused("the key file has no client_id"))?;

    let console = |path: &str, fields: Vec<(&str, String)>| {
        let mut form = vec![("login", admin.to_owned())];
        form.extend(fields);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        http.post(format!("{sim}/google/admin/{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    for (path, fields, what) in [
        (
            "delegation",
            vec![
                ("client_id", client_id.to_owned()),
                ("scopes", hub.app_scopes.join(",")),
            ],
            "authorising domain-wide delegation",
        ),
        (
            "chat-app",
            vec![("name", "Switchboard".to_owned())],
            "configuring the Chat app",
        ),
        (
            "invitations",
            vec![("auto_accept", "on".to_owned())],
            "accepting invitations automatically",
        ),
    ] {
        expect(console(path, fields).await?, what, &[303]).await?;
    }

    let topic = format!("projects/{PROJECT_ID}/topics/{TOPIC}");
    let made = http
        .put(format!("{sim}/google/pubsub/v1/{topic}"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    expect(made, "creating the Pub/Sub topic", &[200, 409]).await?;
    let push_config = json!({
        "pushEndpoint": hub.webhook_url,
        "oidcToken": {"serviceAccountEmail": HUB_SERVICE_ACCOUNT, "audience": hub.webhook_url},
    });
    let subscription =
        format!("{sim}/google/pubsub/v1/projects/{PROJECT_ID}/subscriptions/{PUSH_SUBSCRIPTION}");
    let made = http
        .put(&subscription)
        .bearer_auth(token)
        .json(&json!({"topic": topic, "pushConfig": push_config, "ackDeadlineSeconds": 10}))
        .send()
        .await?;
    if made.status().as_u16() == 409 {
        let modified = http
            .post(format!("{subscription}:modifyPushConfig"))
            .bearer_auth(token)
            .json(&json!({"pushConfig": push_config}))
            .send()
            .await?;
        expect(
            modified,
            "pointing the push subscription at the hub",
            &[200],
        )
        .await?;
    } else {
        expect(made, "creating the push subscription", &[200]).await?;
    }
    serde_json::to_value(Prepared {
        key,
        admin: admin.to_owned(),
        topic,
        push_service_account: HUB_SERVICE_ACCOUNT.to_owned(),
    })
    .map_err(|error| refused(error.to_string()))
}
