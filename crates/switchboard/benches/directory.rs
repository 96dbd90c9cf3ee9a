//! The Directory Sync benchmark: the first reading of a large Entra ID group, and the lag from a
//! membership change in a directory to the person's representations being created or removed.
//!
//! The simulator runs as a separate `switchboard sim` process serving Microsoft and Google; this
//! process holds the hub (SQLite in a temporary directory, its HTTP server on loopback, the relay
//! and Directory Sync's loop running as in `switchboard serve`).
//!
//! 1. **First sync**: every simulated platform connected, imported and matched; then Directory
//!    Sync follows the dynamic group "All employees" (every enabled member of the tenant): one
//!    reading of it — every page of `transitiveMembers`, the members stored, any joiner stored
//!    and matched — and the reconciliation that follows, until the API counts everyone in scope.
//! 2. **Lag**: Directory Sync follows the empty security group "Switchboard users" instead, with
//!    auto-sync on. One at a time, a Teams-only member is added to "Switchboard pilots" (nested
//!    in it) through the simulator, as an admin would in the Entra admin centre, and the time is
//!    taken until their representation on Google Chat (a guest account) is synced; then they are
//!    removed, and the time is taken until the guest is gone and they left the hub.
//!
//! ```sh
//! cargo bench -p switchboard --bench directory
//! ```
//!
//! `DIRECTORY_BENCH_PEOPLE` (default 170,000, which puts about 100,000 people on Teams) sets the
//! organisation's size, `DIRECTORY_BENCH_CHANGES` (default 20) how many people join and leave in
//! the lag part. Figures go to BENCHMARKS.md.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{Value, json};
use support::{SimProcess, env_number, free_port, status_mib};
use switchboard_hub::{AppState, SystemClock};
use switchboard_secrets::Cipher;
use switchboard_store::{ScopeGroup, Store};

/// The simulated Entra ID's groups for Directory Sync (docs/simulator-microsoft.md).
const USERS: &str = "5b000005-0000-4000-8000-000000000000";
const PILOTS: &str = "5b000005-0000-4000-8000-000000000001";
const ALL_EMPLOYEES: &str = "5b000005-0000-4000-8000-000000000002";

fn millis(sorted: &[Duration], share: f64) -> f64 {
    let rank = ((sorted.len() as f64) * share).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn summary(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "  {what}: {} changes, p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        times.len(),
        millis(&times, 0.5),
        millis(&times, 0.9),
        millis(&times, 1.0)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

struct Bench {
    http: reqwest::Client,
    sim: String,
    hub: String,
    token: String,
}

impl Bench {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.hub))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the hub answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn sim_users(&self, platform: &str) -> Vec<Value> {
        self.http
            .get(format!("{}/_sim/users?platform={platform}", self.sim))
            .send()
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("users")
    }

    async fn change_membership(&self, email: &str, add: bool) {
        let answer = self
            .http
            .post(format!("{}/_sim/teams/group-members", self.sim))
            .json(&json!({
                "group": PILOTS, "email": email, "action": if add { "add" } else { "remove" }
            }))
            .send()
            .await
            .expect("the simulator answers");
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }

    /// The person at `email` and their Google Chat representation's status, if they are a
    /// person of the hub.
    async fn google_status(&self, email: &str) -> Option<(String, String)> {
        let (_, page) = self
            .api(
                reqwest::Method::GET,
                &format!("/people?q={}", email.replace('@', "%40")),
                None,
            )
            .await;
        let person = page["people"]
            .as_array()?
            .iter()
            .find(|p| {
                p["email"]
                    .as_str()
                    .is_some_and(|found| found.eq_ignore_ascii_case(email))
            })?
            .clone();
        let status = person["representations"]
            .as_array()?
            .iter()
            .find(|r| r["platform"] == "google_chat")
            .and_then(|r| r["status"].as_str())
            .unwrap_or("not_created")
            .to_owned();
        Some((person["id"].as_str()?.to_owned(), status))
    }
}

async fn run() {
    let people = env_number("DIRECTORY_BENCH_PEOPLE", 170_000);
    let changes = env_number("DIRECTORY_BENCH_CHANGES", 20);

    let sim_address = free_port();
    let sim = format!("http://{sim_address}");
    let _sim_process = SimProcess(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["sim", "--listen", &sim_address.to_string()])
            .args(["--people", &people.to_string(), "--rate-limits", "off"])
            .args(["--platforms", "teams,google_chat"])
            .stdout(Stdio::null())
            .spawn()
            .expect("the simulator starts"),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .expect("an HTTP client");
    while http
        .get(format!("{sim}/_sim/settings"))
        .send()
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let data = tempfile::tempdir().expect("a temporary directory");
    let hub_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let hub = format!("http://{}", hub_listener.local_addr().expect("an address"));
    let simulated = switchboard::demo::Demo::prepare(&sim, &hub, false, None)
        .await
        .expect("the hub's apps on the simulated platforms");
    let clock: Arc<dyn switchboard_core::Clock> = Arc::new(SystemClock);
    let platforms = switchboard::platforms::registry(
        &simulated
            .platform_config()
            .expect("the simulated platforms' settings"),
        clock.clone(),
    )
    .expect("the platform modules");
    let cipher = Cipher::load(None, data.path()).expect("a key");
    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        cipher,
        Arc::new(SystemClock),
    )
    .await
    .expect("the store");
    let state = AppState {
        store: store.clone(),
        platforms,
        metrics: PrometheusBuilder::new().build_recorder().handle(),
        public_url: hub.clone(),
        clock,
        syncing: Default::default(),
        relay: Default::default(),
        console: Default::default(),
        directory: Default::default(),
        webhook_health: Default::default(),
        matching: Default::default(),
        scope: Default::default(),
    };
    let router = switchboard_hub::router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            hub_listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("the hub serves")
    });
    let started = Instant::now();
    simulated
        .set_up(&state)
        .await
        .expect("connect, import and match");
    println!(
        "{people} people: connect + import + match {:.1} s",
        started.elapsed().as_secs_f64()
    );
    switchboard_hub::spawn_relay(state.clone());
    switchboard_hub::spawn_directory_sync(state.clone());
    let token = switchboard_hub::tokens::generate();
    store
        .create_api_token(
            "bench",
            &switchboard_hub::tokens::hash(&token),
            switchboard_store::TokenPurpose::Api,
        )
        .await
        .expect("an API token");
    let bench = Bench {
        http,
        sim,
        hub,
        token,
    };
    let teams = store
        .connections()
        .await
        .expect("the connections")
        .into_iter()
        .find(|c| c.platform == switchboard_core::Platform::Teams)
        .expect("a Teams connection")
        .id
        .to_string();

    // 1. The first reading of the dynamic group of every enabled member.
    let rss_before = status_mib("VmRSS:");
    store
        .set_directory_scope(&[ScopeGroup {
            source: teams.clone(),
            group_id: ALL_EMPLOYEES.to_owned(),
        }])
        .await
        .expect("the scope");
    let started = Instant::now();
    switchboard_hub::groups::read_followed_groups(&state, "the benchmark")
        .await
        .expect("the reading");
    let read = started.elapsed();
    let (_, directory) = bench.api(reqwest::Method::GET, "/directory", None).await;
    let members = directory["groups"][0]["last_read"]["members"].clone();
    let in_scope_took = started.elapsed();
    println!(
        "first sync of \"All employees\" ({members} addresses): read, stored and matched in {:.2} s; \
         everyone counted in scope after {:.2} s (in scope: {}); hub resident memory {:.0} MiB before, peak {:.0} MiB",
        read.as_secs_f64(),
        in_scope_took.as_secs_f64(),
        directory["in_scope"],
        rss_before,
        status_mib("VmHWM:"),
    );
    let started = Instant::now();
    switchboard_hub::groups::read_followed_groups(&state, "the benchmark")
        .await
        .expect("the reading");
    println!(
        "a reconciliation of the same group, unchanged: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 2. The lag: joiners and leavers of a nested group, one at a time, with auto-sync on.
    let mut settings = switchboard_hub::settings::SyncSettings::load(&store)
        .await
        .expect("the settings");
    settings.auto_sync = true;
    settings.save(&store).await.expect("auto-sync on");
    let (status, chosen) = bench
        .api(
            reqwest::Method::PUT,
            "/directory",
            Some(json!({"groups": [{"source": teams, "id": USERS}]})),
        )
        .await;
    assert_eq!(status, 200, "{chosen}");
    let google_addresses: std::collections::HashSet<String> = bench
        .sim_users("google_chat")
        .await
        .iter()
        .filter_map(|u| Some(u["email"].as_str()?.to_lowercase()))
        .collect();
    let candidates: Vec<String> = bench
        .sim_users("teams")
        .await
        .iter()
        .filter(|u| u["kind"] == "member")
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .filter(|email| {
            !email.starts_with("switchboard.service@")
                && !google_addresses.contains(&email.to_lowercase())
        })
        .take(changes)
        .collect();
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    for email in &candidates {
        let started = Instant::now();
        bench.change_membership(email, true).await;
        let person = loop {
            if let Some((id, status)) = bench.google_status(email).await
                && status == "synced"
            {
                break id;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{email} never synced"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        joins.push(started.elapsed());
        let started = Instant::now();
        bench.change_membership(email, false).await;
        loop {
            let (status, _) = bench
                .api(reqwest::Method::GET, &format!("/people/{person}"), None)
                .await;
            if status == 404 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{email} never left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        leaves.push(started.elapsed());
    }
    println!("lag from a membership change in Entra ID to the representations:");
    summary("joined → Google Chat guest synced", joins);
    summary("left → guest removed, person out of the hub", leaves);
}
