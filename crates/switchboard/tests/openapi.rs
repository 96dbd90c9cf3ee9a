//! The OpenAPI document against a real hub (`switchboard demo`): it is served without a token
//! and equals `docs/openapi.json`; every documented operation is routed (never the API's
//! fallback 404 or a 405) and answers only documented statuses, errors in the documented shape;
//! and the bodies of the read operations match their documented schemas.

mod common;

use common::RunningDemo;

use serde_json::{Value, json};

const TOKEN: &str = "openapi-test-token-0123456789";
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
/// A well-formed id that names nothing.
const NO_ID: &str = "00000000-0000-0000-0000-000000000000";

struct Demo {
    _process: RunningDemo,
    root: String,
    http: reqwest::Client,
}

fn start_demo() -> Demo {
    let process = RunningDemo::start(12, TOKEN, &[]);
    Demo {
        root: process.hub_url(),
        _process: process,
        http: reqwest::Client::new(),
    }
}

impl Demo {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: bool,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.root));
        if token {
            request = request.bearer_auth(TOKEN);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("get", path, None, true).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

fn committed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap()).unwrap()
}

/// Whether `value` matches `schema` (the parts of JSON Schema the document uses).
fn check(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let resolved = document.pointer(target.strip_prefix('#').unwrap()).unwrap();
        return check(document, resolved, value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for part in all {
            check(document, part, value, at)?;
        }
    }
    if let Some(any) = schema["oneOf"].as_array() {
        let matching = any
            .iter()
            .filter(|part| check(document, part, value, at).is_ok())
            .count();
        if matching == 0 {
            return Err(format!("{at}: {value} matches none of {schema}"));
        }
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(format!("{at}: {value} is not {constant}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {schema}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(several) => several.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_of = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() && !types.contains(&type_of) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    if let (Some(required), Value::Object(fields)) = (schema["required"].as_array(), value) {
        for name in required {
            let name = name.as_str().unwrap();
            if !fields.contains_key(name) {
                return Err(format!("{at}: missing {name} in {value}"));
            }
        }
    }
    if let (Some(properties), Value::Object(fields)) = (schema["properties"].as_object(), value) {
        for (name, field) in fields {
            if let Some(property) = properties.get(name) {
                check(document, property, field, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), value) {
        for (index, item) in values.iter().enumerate() {
            check(document, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one_and_every_operation_is_routed() {
    let demo = start_demo();
    let response = demo
        .http
        .get(format!("{}/api/openapi.json", demo.root))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "served without a token");
    let served: Value = response.json().await.unwrap();
    let document = committed();
    assert!(
        served == document,
        "the hub serves a document other than docs/openapi.json; \
         regenerate it with `UPDATE_OPENAPI=1 cargo test -p switchboard-hub openapi`"
    );

    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut concrete = path.replace("{id}", NO_ID).replace("{platform}", "teams");
            if let Some(action) = operation["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "action"))
            {
                concrete =
                    concrete.replace("{action}", action["schema"]["enum"][0].as_str().unwrap());
            }
            let body = operation.get("requestBody").map(|_| json!({}));
            let what = format!("{method} {path}");

            let (status, _) = demo.call(method, &concrete, body.clone(), false).await;
            assert_eq!(status, 401, "{what} without a token");

            let (status, answer) = demo.call(method, &concrete, body, true).await;
            assert_ne!(status, 405, "{what} is not routed: {answer}");
            assert!(
                !(status == 404 && answer["error"]["message"] == "no such API endpoint"),
                "{what} reached the API's fallback"
            );
            let documented = &operation["responses"][status.to_string()];
            assert!(
                !documented.is_null(),
                "{what} answered {status}, which the document does not list: {answer}"
            );
            if status >= 400 {
                check(
                    &document,
                    &json!({ "$ref": "#/components/schemas/Error" }),
                    &answer,
                    &what,
                )
                .unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_operations_answer_their_documented_schemas() {
    let demo = start_demo();
    let document = committed();
    let connections = demo.get("/connections").await;
    let person = demo.get("/people?limit=1").await["people"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut reads = vec![
        ("/platforms".to_owned(), "/platforms".to_owned()),
        ("/connections".to_owned(), "/connections".to_owned()),
        ("/people".to_owned(), "/people?limit=5".to_owned()),
        ("/people/{id}".to_owned(), format!("/people/{person}")),
        ("/consents".to_owned(), "/consents".to_owned()),
        ("/settings".to_owned(), "/settings".to_owned()),
        ("/audit".to_owned(), "/audit".to_owned()),
    ];
    for connection in connections["connections"].as_array().unwrap() {
        let id = connection["id"].as_str().unwrap();
        reads.push((
            "/connections/{id}/imports".to_owned(),
            format!("/connections/{id}/imports"),
        ));
        if let Some(run) = connection["last_import"]["id"].as_str() {
            reads.push(("/imports/{id}".to_owned(), format!("/imports/{run}")));
        }
        if connection["import_scope"] == "selected_teams" {
            reads.push((
                "/connections/{id}/teams".to_owned(),
                format!("/connections/{id}/teams"),
            ));
        }
    }
    assert!(reads.iter().any(|(path, _)| path == "/imports/{id}"));
    for (path, concrete) in reads {
        let body = demo.get(&concrete).await;
        let schema = &document["paths"][&path]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        check(&document, schema, &body, &concrete).unwrap();
    }
}
