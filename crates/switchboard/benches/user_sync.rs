//! The user-sync benchmarks: importing and matching a large organisation from the simulator,
//! listing people with filters over that data, and a bulk sync with the simulator's rate limits
//! on.
//!
//! The simulator runs as a separate `switchboard sim` process, so the memory figures are the
//! hub's alone: this process holds the hub (store on SQLite in a temporary directory, HTTP
//! server on loopback) and the clients that drive it.
//!
//! ```sh
//! cargo bench -p switchboard --bench user_sync
//! ```
//!
//! `USER_SYNC_PEOPLE` (default 100,000) sets the organisation's size; `USER_SYNC_BULK` (default
//! 1,000, at most the number of Slack-only people) how many Slack-only people get a Teams guest
//! in the bulk sync, and 0 skips it. Figures go to BENCHMARKS.md.

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
use switchboard_store::Store;

const REQUESTS: usize = 500;

fn percentile(sorted: &[Duration], share: f64) -> f64 {
    let rank = ((sorted.len() as f64) * share).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let people = env_number("USER_SYNC_PEOPLE", 100_000);
    let bulk = env_number("USER_SYNC_BULK", 1_000);

    let sim_address = free_port();
    let sim = format!("http://{sim_address}");
    let started = Instant::now();
    let _sim_process = SimProcess(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["sim", "--listen", &sim_address.to_string()])
            .args(["--people", &people.to_string(), "--rate-limits", "off"])
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
    println!(
        "simulator with {people} people up in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // The hub: SQLite in a temporary directory, its HTTP server on loopback.
    let data = tempfile::tempdir().expect("a temporary directory");
    let hub_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let hub = format!("http://{}", hub_listener.local_addr().expect("an address"));
    let paced = switchboard::demo::sim_rate_limits(&sim)
        .await
        .expect("the simulator's settings");
    let simulated = switchboard::demo::Demo::prepare(&sim, &hub, paced, None)
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

    // 1. Connect every simulated platform, import each, match.
    let rss_before = status_mib("VmRSS:");
    let started = Instant::now();
    simulated
        .set_up(&state)
        .await
        .expect("connect, import and match");
    let import = started.elapsed();
    println!(
        "connect + import + match of {people} people: {:.2} s; hub resident memory {:.0} MiB before, {:.0} MiB after, peak {:.0} MiB",
        import.as_secs_f64(),
        rss_before,
        status_mib("VmRSS:"),
        status_mib("VmHWM:"),
    );
    // The platforms are imported one after the other: each import's own time.
    for connection in store.connections().await.expect("the connections") {
        let runs = store
            .import_runs(connection.id, 1)
            .await
            .expect("the connection's imports");
        if let Some(run) = runs.first() {
            let took = run
                .finished_at
                .map(|finished| finished.unix_millis() - run.started_at.unix_millis());
            println!(
                "  import of {}: {} accounts listed in {}",
                connection.platform.display_name(),
                run.seen,
                took.map_or("(unfinished)".to_owned(), |ms| format!(
                    "{:.2} s",
                    ms as f64 / 1e3
                )),
            );
        }
    }

    // 2. GET /api/v1/people with a mix of filters and cursors deep into the list.
    let token = switchboard_hub::tokens::generate();
    store
        .create_api_token(
            "bench",
            &switchboard_hub::tokens::hash(&token),
            switchboard_store::TokenPurpose::Api,
        )
        .await
        .expect("an API token");
    let filters = [
        "",
        "primary=slack",
        "primary=teams",
        "primary=unchosen",
        "status=not_created",
        "status=synced",
        "type=guest_account",
        "type=bot",
        "q=smith",
        "q=acme.example",
        "primary=slack&status=not_created&q=an",
    ];
    // Cursors deep into the list: follow the unfiltered and the Slack lists 1,000 at a time.
    let mut cursors: Vec<(String, String)> = Vec::new();
    for filter in ["", "primary=slack"] {
        let mut cursor: Option<String> = None;
        for _ in 0..200 {
            let path = match &cursor {
                Some(c) => format!("/people?limit=1000&{filter}&cursor={c}"),
                None => format!("/people?limit=1000&{filter}"),
            };
            let page: Value = get(&http, &hub, &token, &path).await.1;
            match page["next_cursor"].as_str() {
                Some(next) => {
                    cursors.push((filter.to_owned(), next.to_owned()));
                    cursor = Some(next.to_owned());
                }
                None => break,
            }
        }
    }
    let mut times: Vec<Duration> = Vec::with_capacity(REQUESTS);
    let mut by_filter: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for i in 0..REQUESTS {
        let (label, path) = if i % 3 == 2 && !cursors.is_empty() {
            let (filter, cursor) = &cursors[(i * 7919) % cursors.len()];
            (
                format!("{filter} (deep cursor)"),
                format!("/people?{filter}&cursor={cursor}"),
            )
        } else {
            let filter = filters[i % filters.len()];
            (filter.to_owned(), format!("/people?{filter}"))
        };
        let (took, _) = get(&http, &hub, &token, &path).await;
        times.push(took);
        by_filter.entry(label).or_default().push(took);
    }
    times.sort();
    for (filter, mut times) in by_filter {
        times.sort();
        println!(
            "  {:<45} {:>3} requests: p50 {:>6.1} ms, max {:>6.1} ms",
            if filter.is_empty() { "(none)" } else { &filter },
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 1.0),
        );
    }
    println!(
        "GET /api/v1/people, {REQUESTS} requests (default limit 100): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.50),
        percentile(&times, 0.95),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
    );

    // 3. Bulk sync of Slack-only people to Teams guests, with the simulator's rate limits on.
    if bulk == 0 {
        return;
    }
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    while ids.len() < bulk {
        let path = match &cursor {
            Some(c) => format!("/people?primary=slack&limit=1000&cursor={c}"),
            None => "/people?primary=slack&limit=1000".to_owned(),
        };
        let page = get(&http, &hub, &token, &path).await.1;
        for person in page["people"].as_array().into_iter().flatten() {
            if ids.len() < bulk {
                ids.push(person["id"].as_str().expect("an id").to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    http.put(format!("{sim}/_sim/settings"))
        .json(&json!({"rate_limits": true}))
        .send()
        .await
        .expect("rate limits on");
    let log: Value = http
        .get(format!("{sim}/_sim/log?kind=request&limit=1"))
        .send()
        .await
        .expect("the log")
        .json()
        .await
        .expect("the log's JSON");
    let mut since = log
        .as_array()
        .and_then(|entries| entries.last())
        .and_then(|entry| entry["seq"].as_u64())
        .unwrap_or(0);
    let (mut requests, mut throttled, mut invitations, mut invitations_throttled) = (0, 0, 0, 0);
    let mut failed = 0;
    let started = Instant::now();
    for chunk in ids.chunks(1000) {
        let response = http
            .post(format!("{hub}/api/v1/people/bulk/sync"))
            .bearer_auth(&token)
            .json(&json!({"ids": chunk, "platform": "teams"}))
            .send()
            .await
            .expect("bulk sync");
        let results: Value = response.json().await.expect("bulk results");
        failed += results["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["ok"] != true)
            .count();
        // The simulator keeps its newest 20,000 entries: read them after each chunk.
        loop {
            let entries: Value = http
                .get(format!(
                    "{sim}/_sim/log?kind=request&since={since}&limit=20000"
                ))
                .send()
                .await
                .expect("the log")
                .json()
                .await
                .expect("the log's JSON");
            let entries = entries.as_array().cloned().unwrap_or_default();
            // Reading the log is logged too: those entries are not the hub's.
            let hub_entries: Vec<&Value> = entries
                .iter()
                .filter(|entry| {
                    since = since.max(entry["seq"].as_u64().unwrap_or(0));
                    !entry["target"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("/_sim/"))
                })
                .collect();
            if hub_entries.is_empty() {
                break;
            }
            for entry in hub_entries {
                requests += 1;
                let is_invitation = entry["target"]
                    .as_str()
                    .is_some_and(|t| t.contains("/invitations"));
                invitations += usize::from(is_invitation);
                if entry["status"] == 429 {
                    throttled += 1;
                    invitations_throttled += usize::from(is_invitation);
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Graph's invitations budget in the simulator: a bucket of 150 refilled at 30 a second.
    let floor = (bulk.saturating_sub(150)) as f64 / 30.0;
    println!(
        "bulk sync of {bulk} Slack-only people to Teams guests, rate limits on: {elapsed:.1} s (the limits allow {floor:.1} s; {:.2}x); {failed} failed; simulator requests {requests}, 429s {throttled} ({:.2} %); invitations {invitations}, 429s {invitations_throttled}",
        elapsed / floor.max(f64::MIN_POSITIVE),
        100.0 * throttled as f64 / requests.max(1) as f64,
    );
    println!("hub peak resident memory {:.0} MiB", status_mib("VmHWM:"));
}

async fn get(http: &reqwest::Client, hub: &str, token: &str, path: &str) -> (Duration, Value) {
    let started = Instant::now();
    let response = http
        .get(format!("{hub}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("a response");
    let status = response.status();
    let body = response.bytes().await.expect("a body");
    let took = started.elapsed();
    assert!(status.is_success(), "{path}: {status}");
    (took, serde_json::from_slice(&body).expect("JSON"))
}
