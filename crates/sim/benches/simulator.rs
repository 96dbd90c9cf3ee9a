//! The simulator's benchmarks: how fast it seeds a large organisation and how much memory that
//! takes, and how many `users.list` pages it serves per second over loopback HTTP.
//!
//! Run with `cargo bench -p switchboard-sim --bench simulator`; figures go to BENCHMARKS.md.

use std::time::{Duration, Instant};

use switchboard_sim::{SimConfig, Simulator};
use switchboard_sim_kit::OrgSpec;

const PEOPLE: usize = 100_000;
const PAGE_SIZE: usize = 200;
const CLIENTS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(10);

/// A figure from /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The next cursor of a `users.list` page, found without parsing the members: the figure should
/// measure the simulator, not this process's JSON parsing on the same two cores.
fn next_cursor(page: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"next_cursor\":\"";
    let start = page.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let length = page[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(page[start..start + length].to_vec()).ok()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let simulator = Simulator::new(SimConfig {
        base_url: base.clone(),
        people: 0,
        rate_limits: false,
        state_file: None,
        platforms: None,
    })
    .expect("a simulator");

    let rss_before = status_mib("VmRSS:");
    let started = Instant::now();
    simulator.seed(&OrgSpec {
        people: PEOPLE,
        ..simulator.org_spec()
    });
    let seeding = started.elapsed();
    println!(
        "seed {PEOPLE} people: {:.2} s; resident memory {:.0} MiB before, {:.0} MiB after, peak {:.0} MiB",
        seeding.as_secs_f64(),
        rss_before,
        status_mib("VmRSS:"),
        status_mib("VmHWM:"),
    );

    let router = simulator.router();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the server runs")
    });
    let client = reqwest::Client::new();
    let users: serde_json::Value = client
        .get(format!("{base}/_sim/users?platform=slack"))
        .send()
        .await
        .expect("users")
        .json()
        .await
        .expect("users JSON");
    let email = users
        .as_array()
        .and_then(|users| users.iter().find(|u| u["kind"] == "member"))
        .and_then(|u| u["email"].as_str())
        .expect("a Slack member")
        .to_owned();
    let token: serde_json::Value = client
        .post(format!("{base}/_sim/token"))
        .json(&serde_json::json!({"platform": "slack", "email": email}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON");
    let token = token["token"].as_str().expect("a token").to_owned();

    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut pages = 0u64;
            let mut cursor = String::new();
            while started.elapsed() < RUN_FOR {
                let page = client
                    .get(format!(
                        "{base}/slack/api/users.list?limit={PAGE_SIZE}&cursor={}",
                        cursor
                            .replace('+', "%2B")
                            .replace('/', "%2F")
                            .replace('=', "%3D")
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("a page")
                    .bytes()
                    .await
                    .expect("a body");
                assert!(page.starts_with(b"{\"ok\":true"), "an error page");
                cursor = next_cursor(&page).expect("a cursor");
                pages += 1;
            }
            pages
        }));
    }
    let mut pages = 0;
    for worker in workers {
        pages += worker.await.expect("a worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "users.list, {PAGE_SIZE} users a page, {CLIENTS} concurrent clients in this process: {pages} pages in {elapsed:.1} s = {:.0} pages/s",
        pages as f64 / elapsed
    );
}
