//! The SCIM 2.0 service provider, spoken to over HTTP as identity providers do: the sequences
//! Microsoft documents for Entra ID's provisioning service and Okta documents for its SCIM
//! provisioning, replayed against the running demo.
//!
//! - Entra ID: <https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups>
//! - Okta: <https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20>

mod common;

use serde_json::{Value, json};

use common::RunningDemo;

const API_TOKEN: &str = "scim-test-api-token-0123456789";
const SCIM_TOKEN: &str = "scim-test-scim-token-0123456789";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

struct Provider {
    _demo: RunningDemo,
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
    content_type: String,
    location: Option<String>,
}

impl Provider {
    fn start() -> Self {
        let demo = RunningDemo::start(
            4,
            API_TOKEN,
            &[
                ("SWITCHBOARD_DEMO_SCIM_TOKEN", SCIM_TOKEN),
                ("SWITCHBOARD_DEMO_PLATFORMS", "slack,teams"),
            ],
        );
        Self {
            base: format!("{}/scim/v2", demo.hub_url()),
            _demo: demo,
            http: common::client(),
        }
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            content_type,
            location,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(Some(SCIM_TOKEN), method, path, body).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// A filter expression as a query value, percent-encoded.
fn filter(expression: &str) -> String {
    expression
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn is_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["schemas"], json!([ERROR]), "{}", answer.body);
    assert_eq!(answer.body["status"], status.to_string(), "{}", answer.body);
    if let Some(scim_type) = scim_type {
        assert_eq!(answer.body["scimType"], scim_type, "{}", answer.body);
    }
}

#[tokio::test]
async fn entra_ids_provisioning_sequence_is_served() {
    let provider = Provider::start();
    use reqwest::Method;

    // Entra ID asks for the user by userName before creating it.
    let user_name = "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081";
    let absent = provider
        .get(&format!(
            "/Users?filter={}",
            filter(&format!("userName eq \"{user_name}\""))
        ))
        .await;
    assert_eq!(absent.status, 200, "{}", absent.body);
    assert!(absent.content_type.starts_with("application/scim+json"));
    assert_eq!(absent.body["totalResults"], 0);
    assert_eq!(absent.body["Resources"], json!([]));

    let created = provider
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": user_name,
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb6cbb@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": []
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["userName"], user_name);
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(
        created.location.as_deref(),
        created.body["meta"]["location"].as_str()
    );
    assert!(
        created
            .location
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );

    // The same userName again, in another case, is taken.
    let again = provider
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": user_name.to_uppercase()})),
        )
        .await;
    is_error(&again, 409, Some("uniqueness"));

    let found = provider
        .get(&format!(
            "/Users?filter={}",
            filter(&format!("userName eq \"{user_name}\""))
        ))
        .await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    let by_external = provider
        .get(&format!(
            "/Users?filter={}",
            filter("externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"")
        ))
        .await;
    assert_eq!(by_external.body["totalResults"], 1);
    let by_address = provider
        .get(&format!(
            "/Users?filter={}",
            filter("emails[type eq \"work\"].value eq \"test_user_11bb6cbb@testuser.com\"")
        ))
        .await;
    assert_eq!(by_address.body["totalResults"], 1);

    // Entra's updates: attributes replaced by path, with its capitalised operations.
    let patched = provider
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                    {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
                ]
            })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body["emails"][0]["value"],
        "updatedEmail@microsoft.com"
    );
    assert_eq!(patched.body["name"]["familyName"], "updatedFamilyName");

    // Disabling is a soft delete: still there, inactive ("False" as Entra sends it).
    let disabled = provider
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
            })),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["active"], false);
    let still = provider.get(&format!("/Users/{id}")).await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body["active"], false);

    // Groups: created empty, members added and removed by PATCH.
    let group = provider
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName",
                "meta": {"resourceType": "Group"},
                "members": [],
                "schemas": [GROUP]
            })),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let added = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}]}]
            })),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let read = provider.get(&format!("/Groups/{group_id}")).await;
    assert_eq!(read.body["members"][0]["value"], id.as_str());
    let by_name = provider
        .get(&format!(
            "/Groups?filter={}",
            filter("displayName eq \"displayName\"")
        ))
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    let removed = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}]
            })),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body["members"], json!([]));
    let unknown_member = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": "nobody"}]}]
            })),
        )
        .await;
    is_error(&unknown_member, 400, Some("invalidValue"));

    // Deleted: gone, and said so as SCIM says it.
    let deleted = provider
        .call(Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    is_error(&provider.get(&format!("/Users/{id}")).await, 404, None);
    let group_deleted = provider
        .call(Method::DELETE, &format!("/Groups/{group_id}"), None)
        .await;
    assert_eq!(group_deleted.status, 204);
    is_error(
        &provider.get(&format!("/Groups/{group_id}")).await,
        404,
        None,
    );
}

#[tokio::test]
async fn oktas_provisioning_sequence_is_served_and_pages() {
    let provider = Provider::start();
    use reqwest::Method;

    let absent = provider
        .get(&format!(
            "/Users?filter={}&startIndex=1&count=100",
            filter("userName eq \"ann.lee@acme.example\"")
        ))
        .await;
    assert_eq!(absent.body["totalResults"], 0);
    let mut ids = Vec::new();
    for (given, family) in [("Ann", "Lee"), ("Bo", "Stone"), ("Cleo", "Park")] {
        let user_name = format!(
            "{}.{}@acme.example",
            given.to_lowercase(),
            family.to_lowercase()
        );
        let created = provider
            .call(
                Method::POST,
                "/Users",
                Some(json!({
                    "schemas": [USER],
                    "userName": user_name,
                    "name": {"givenName": given, "familyName": family},
                    "emails": [{"primary": true, "value": user_name, "type": "work"}],
                    "displayName": format!("{given} {family}"),
                    "locale": "en-US",
                    "externalId": format!("00u{given}"),
                    "groups": [],
                    "password": "1mP@ssw0rd",
                    "active": true
                })),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert!(created.body.get("password").is_none(), "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }

    // Pages, as RFC 7644 §3.4.2.4 counts them (startIndex from 1).
    let page = provider.get("/Users?startIndex=2&count=1").await;
    assert_eq!(page.body["totalResults"], 3);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 1);
    assert_eq!(page.body["Resources"][0]["id"], ids[1].as_str());
    let none = provider.get("/Users?startIndex=10&count=5").await;
    assert_eq!(none.body["Resources"], json!([]));
    assert_eq!(none.body["totalResults"], 3);
    let both = provider
        .get(&format!(
            "/Users?filter={}",
            filter("userName eq \"bo.stone@acme.example\" and externalId eq \"00uBo\"")
        ))
        .await;
    assert_eq!(both.body["totalResults"], 1);

    // Okta replaces a profile with PUT, and deactivates with PATCH (lowercase, no path).
    let replaced = provider
        .call(
            Method::PUT,
            &format!("/Users/{}", ids[0]),
            Some(json!({
                "schemas": [USER],
                "id": ids[0],
                "userName": "ann.lee@acme.example",
                "name": {"givenName": "Ann", "familyName": "Lee-Smith"},
                "emails": [{"primary": true, "value": "ann.lee@acme.example", "type": "work"}],
                "active": true
            })),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"]["familyName"], "Lee-Smith");
    let deactivated = provider
        .call(
            Method::PATCH,
            &format!("/Users/{}", ids[0]),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            })),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    assert_eq!(deactivated.body["active"], false);

    // Okta's group push: created with members, then members added and removed by filter.
    let group = provider
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": [GROUP],
                "displayName": "Test SCIMv2",
                "members": [{"value": ids[0], "display": "ann.lee@acme.example"}]
            })),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let grown = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[1], "display": "bo.stone@acme.example"}]}]
            })),
        )
        .await;
    assert_eq!(
        grown.body["members"].as_array().unwrap().len(),
        2,
        "{}",
        grown.body
    );
    let shrunk = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]
            })),
        )
        .await;
    assert_eq!(shrunk.status, 200, "{}", shrunk.body);
    let members = shrunk.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{}", shrunk.body);
    assert_eq!(members[0]["value"], ids[1].as_str());
    assert_eq!(
        members[0]["$ref"],
        format!("{}/Users/{}", provider.base, ids[1])
    );
    assert_eq!(members[0]["display"], "bo.stone@acme.example");
    let renamed = provider
        .call(
            Method::PATCH,
            &format!("/Groups/{group_id}"),
            Some(json!({
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "value": {"id": group_id, "displayName": "Renamed"}}]
            })),
        )
        .await;
    assert_eq!(renamed.body["displayName"], "Renamed", "{}", renamed.body);
    let groups = provider.get("/Groups?startIndex=1&count=100").await;
    assert_eq!(groups.body["totalResults"], 1);
}

#[tokio::test]
async fn scim_takes_its_own_token_and_says_what_it_refuses() {
    let provider = Provider::start();
    use reqwest::Method;

    for token in [None, Some(API_TOKEN), Some("sbt_not-a-token-at-all-really")] {
        let refused = provider.call_as(token, Method::GET, "/Users", None).await;
        is_error(&refused, 401, None);
    }
    // And a SCIM token opens no part of the REST API.
    let api = reqwest::Client::new()
        .get(provider.base.replace("/scim/v2", "/api/v1/people"))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);

    let config = provider.get("/ServiceProviderConfig").await;
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["filter"]["supported"], true);
    let types = provider.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    let schemas = provider.get("/Schemas").await;
    assert_eq!(schemas.body["Resources"][0]["id"], USER);
    assert_eq!(provider.get(&format!("/Schemas/{GROUP}")).await.status, 200);

    is_error(
        &provider
            .get(&format!("/Users?filter={}", filter("userName co \"a\"")))
            .await,
        400,
        Some("invalidFilter"),
    );
    is_error(
        &provider.get("/Users?count=many").await,
        400,
        Some("invalidValue"),
    );
    is_error(
        &provider
            .call(Method::POST, "/Users", Some(json!({"schemas": [USER]})))
            .await,
        400,
        Some("invalidValue"),
    );
    let not_json = provider
        .http
        .post(format!("{}/Users", provider.base))
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    is_error(
        &provider
            .call(
                Method::PATCH,
                "/Users/none",
                Some(json!({"schemas": [PATCH], "Operations": []})),
            )
            .await,
        404,
        None,
    );
    is_error(&provider.get("/Nothing").await, 404, None);
}

impl Provider {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method,
                format!("{}{path}", self.base.replace("/scim/v2", "/api/v1")),
            )
            .bearer_auth(API_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The hub's people, as the REST API lists them.
    async fn people(&self) -> Vec<Value> {
        let (status, body) = self
            .api(reqwest::Method::GET, "/people?limit=1000", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["people"].as_array().unwrap().clone()
    }

    async fn eventually<T>(&self, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(found) = check().await {
                return found;
            }
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

fn represented(person: &Value) -> bool {
    person["representations"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["status"] != "not_created"))
}

#[tokio::test]
async fn the_chosen_groups_members_are_the_hubs_people_and_leavers_are_reset_and_removed() {
    let provider = Provider::start();
    use reqwest::Method;

    // The demo's auto-sync represents its people on the other platform.
    let people = provider
        .eventually("two people represented", async || {
            let people = provider.people().await;
            (people.iter().filter(|p| represented(p)).count() >= 2).then_some(people)
        })
        .await;
    let chosen: Vec<&Value> = people.iter().filter(|p| represented(p)).take(2).collect();
    let (stays, leaves) = (chosen[0], chosen[1]);
    let mut scim_ids = Vec::new();
    for person in [stays, leaves] {
        let email = person["email"].as_str().unwrap();
        let created = provider
            .call(
                Method::POST,
                "/Users",
                Some(json!({
                    "schemas": [USER],
                    "userName": email,
                    "emails": [{"value": email, "type": "work", "primary": true}],
                    "active": true
                })),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        scim_ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let group = provider
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP], "displayName": "Chat users", "members": [{"value": scim_ids[0]}]})),
        )
        .await;
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let scope = json!({"groups": [{"source": "scim", "id": group_id}]});

    // The preview says who would leave, and changes nothing.
    let (status, preview) = provider
        .api(Method::PUT, "/directory?preview=true", Some(scope.clone()))
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["applied"], false);
    assert_eq!(preview["in_scope"], 1);
    let leaving: Vec<&str> = preview["leaving"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        leaving.contains(&leaves["id"].as_str().unwrap()),
        "{preview}"
    );
    assert!(
        !leaving.contains(&stays["id"].as_str().unwrap()),
        "{preview}"
    );
    let (_, now) = provider.api(Method::GET, "/directory", None).await;
    assert_eq!(now["groups"], json!([]));
    assert_eq!(now["in_scope"], Value::Null);

    // Chosen: whoever is outside the group and represented is reset and removed.
    let (status, applied) = provider.api(Method::PUT, "/directory", Some(scope)).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["groups"][0]["name"], "Chat users");
    let leaver = leaves["id"].as_str().unwrap();
    provider
        .eventually("the leaver removed", async || {
            let (status, _) = provider
                .api(Method::GET, &format!("/people/{leaver}"), None)
                .await;
            (status == 404).then_some(())
        })
        .await;
    let stayer = stays["id"].as_str().unwrap();
    let (status, kept) = provider
        .api(Method::GET, &format!("/people/{stayer}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(represented(&kept), "{kept}");
    let (_, audit) = provider.api(Method::GET, "/audit?limit=1000", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "directory.leave" && e["target"] == leaver),
        "{audit}"
    );

    // Imported again, the leaver is a person of the hub again, outside the scope: auto-sync
    // leaves them alone, and an admin's sync is refused.
    let leaver_email = leaves["email"].as_str().unwrap();
    let (_, connections) = provider.api(Method::GET, "/connections", None).await;
    for connection in connections["connections"].as_array().unwrap() {
        let id = connection["id"].as_str().unwrap();
        let (status, started) = provider
            .api(Method::POST, &format!("/connections/{id}/import"), None)
            .await;
        assert!(status == 202 || status == 409, "{status} {started}");
    }
    let returned = provider
        .eventually("the leaver imported again", async || {
            provider
                .people()
                .await
                .into_iter()
                .find(|p| p["email"] == leaver_email)
        })
        .await;
    let returned_id = returned["id"].as_str().unwrap();
    let secondary = ["slack", "teams"]
        .into_iter()
        .find(|platform| {
            returned["platforms"]
                .as_array()
                .is_some_and(|on| !on.iter().any(|p| p == platform))
        })
        .unwrap_or("teams");
    let (status, refused) = provider
        .api(
            Method::POST,
            &format!("/people/{returned_id}/sync/{secondary}"),
            None,
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("out_of_scope")),
        "{refused}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (_, still) = provider
        .api(Method::GET, &format!("/people/{returned_id}"), None)
        .await;
    assert!(
        !represented(&still),
        "auto-sync synced someone outside the scope: {still}"
    );

    // Deactivated by the identity provider: a leaver too.
    let deactivated = provider
        .call(
            Method::PATCH,
            &format!("/Users/{}", scim_ids[0]),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(deactivated.status, 200);
    provider
        .eventually("the deactivated member removed", async || {
            let (status, _) = provider
                .api(Method::GET, &format!("/people/{stayer}"), None)
                .await;
            (status == 404).then_some(())
        })
        .await;

    let (status, refused) = provider
        .api(
            Method::PUT,
            "/directory",
            Some(json!({"groups": [{"source": "scim", "id": "no-such-group"}]})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("unknown_group"))
    );
}
