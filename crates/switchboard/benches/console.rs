//! The console's Sync users page over a large organisation: its first render and each filter
//! change, signed in, timed from a client on loopback.
//!
//! The organisation is written straight into the store (import pages and the match, as an
//! import of the platforms would leave it), so that the figures are the page's alone:
//!
//! ```sh
//! cargo bench -p switchboard --bench console
//! ```
//!
//! `CONSOLE_PEOPLE` (default 200,000) sets the number of people. Figures go to BENCHMARKS.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use switchboard_core::{
    AccountKind, Email, ExternalTenantId, ExternalUserId, Platform, RepresentationKind, SyncEvent,
};
use switchboard_hub::{AppState, SystemClock};
use switchboard_secrets::Cipher;
use switchboard_store::{AdminRole, ImportedAccount, PeopleQuery, Store};

/// The page's budget, first render or filter change.
const BUDGET_MS: f64 = 300.0;
const ROUNDS: usize = 10;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], share: f64) -> f64 {
    let rank = ((sorted.len() as f64) * share).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

const FIRST: [&str; 12] = [
    "Ada", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hana", "Ivan", "Julia", "Kofi",
    "Lena",
];
const LAST: [&str; 12] = [
    "Smith", "Garcia", "Nguyen", "Khan", "Rossi", "Muller", "Ito", "Okafor", "Silva", "Novak",
    "Diaz", "Kim",
];

fn account(i: usize) -> ImportedAccount {
    let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
    ImportedAccount {
        external_id: ExternalUserId::new(format!("U{i:07}")),
        display_name: format!("{first} {last} {i}"),
        emails: vec![
            Email::parse(&format!(
                "{}.{}.{i}@acme.example",
                first.to_lowercase(),
                last.to_lowercase()
            ))
            .expect("an address"),
        ],
        kind: AccountKind::Human,
        active: true,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let people = env_number("CONSOLE_PEOPLE", 200_000);
    let data = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        Cipher::load(None, data.path()).expect("a key"),
        Arc::new(SystemClock),
    )
    .await
    .expect("the store");

    // Two thirds of the people on Slack, two thirds on Teams: a third on both.
    let started = Instant::now();
    let slack = store
        .create_connection(Platform::Slack, &ExternalTenantId::new("T1"), "Acme")
        .await
        .expect("a Slack connection");
    let teams = store
        .create_connection(
            Platform::Teams,
            &ExternalTenantId::new("tenant"),
            "acme.example",
        )
        .await
        .expect("a Teams connection");
    let third = people / 3;
    for (connection, range) in [(&slack, 0..people - third), (&teams, third..people)] {
        let run = store.start_import(connection.id).await.expect("an import");
        let ids: Vec<usize> = range.collect();
        for page in ids.chunks(1_000) {
            let accounts: Vec<ImportedAccount> = page.iter().map(|&i| account(i)).collect();
            store
                .record_import_page(&run, connection.platform, None, &accounts)
                .await
                .expect("an import page");
        }
        store
            .finish_import(&run, Ok(()))
            .await
            .expect("the import ends");
    }
    switchboard_hub::import::Matching::default()
        .match_now(&store)
        .await
        .expect("the match");
    // Representations in every status, so that status and type filters find some people.
    let mut cursor = None;
    let mut represented = 0;
    while represented < people / 10 {
        let page = store
            .list_people(&PeopleQuery {
                primary: Some(switchboard_store::PrimaryFilter::Is(Platform::Slack)),
                after: cursor.clone(),
                limit: 1_000,
                ..PeopleQuery::default()
            })
            .await
            .expect("a page of people");
        for (n, summary) in page.people.iter().enumerate() {
            let id = summary.person.id;
            store
                .create_representation(id, Platform::Teams, RepresentationKind::GuestAccount)
                .await
                .expect("a representation");
            let event = match n % 10 {
                0 => Some(SyncEvent::Failed {
                    reason: "the platform refused".to_owned(),
                }),
                1..=6 => Some(SyncEvent::Completed),
                _ => None,
            };
            if let Some(event) = event {
                store
                    .apply_sync_event(id, Platform::Teams, event, "bench")
                    .await
                    .expect("a status");
            }
            represented += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    println!(
        "{people} people ({} on both platforms, {represented} represented on Teams) written in {:.1} s",
        people - 2 * third,
        started.elapsed().as_secs_f64()
    );

    let clock: Arc<dyn switchboard_core::Clock> = Arc::new(SystemClock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let hub = format!("http://{}", listener.local_addr().expect("an address"));
    let state = AppState {
        store: store.clone(),
        platforms: switchboard::platforms::registry(&toml::Table::new(), clock.clone())
            .expect("no platform modules"),
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
    let router = switchboard_hub::router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("the hub serves")
    });

    let (email, password) = ("bench@example.com", "a bench password");
    let hash = switchboard_hub::console::auth::hash_password(password).expect("a hash");
    store
        .create_admin(
            &Email::parse(email).expect("an address"),
            &hash,
            AdminRole::Owner,
        )
        .await
        .expect("an admin");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let cookie = sign_in(&http, &hub, email, password).await;

    // Pages deep into the list: the "Next page" links of the unfiltered list, 40 pages apart.
    let mut deep = Vec::new();
    let mut next = Some("/console/people?".to_owned());
    let mut page_number = 0;
    while let Some(path) = next.take() {
        let body = get(&http, &hub, &cookie, &path).await.1;
        page_number += 1;
        if page_number % 40 == 0 {
            deep.push(path.clone());
        }
        next = body
            .split("rel=\"next\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|href| href.replace("&amp;", "&"));
        if deep.len() >= 20 {
            break;
        }
    }

    let filters = [
        "",
        "primary=slack",
        "primary=teams",
        "primary=unchosen",
        "status=not_created",
        "status=pending",
        "status=synced",
        "status=failed",
        "type=guest_account",
        "type=bot",
        "type=existing_account",
        "q=smith",
        "q=acme.example",
        "q=nobody-has-this",
        "primary=slack&status=failed&q=an",
    ];
    let mut all: Vec<Duration> = Vec::new();
    let mut by_filter: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for round in 0..ROUNDS {
        for filter in filters {
            let took = get(&http, &hub, &cookie, &format!("/console/people?{filter}"))
                .await
                .0;
            all.push(took);
            by_filter.entry(filter.to_owned()).or_default().push(took);
        }
        for path in deep.iter().skip(round % 2).step_by(2) {
            let took = get(&http, &hub, &cookie, path).await.0;
            all.push(took);
            by_filter
                .entry("(deep page)".to_owned())
                .or_default()
                .push(took);
        }
    }
    for (filter, mut times) in by_filter {
        times.sort();
        println!(
            "  {:<40} {:>3} pages: p50 {:>6.1} ms, max {:>6.1} ms",
            if filter.is_empty() {
                "(first page)"
            } else {
                &filter
            },
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 1.0),
        );
    }
    all.sort();
    let max = percentile(&all, 1.0);
    println!(
        "GET /console/people (Sync users, 50 people a page) over {people} people, {} pages: p50 {:.1} ms, p95 {:.1} ms, max {max:.1} ms: {} the {BUDGET_MS:.0} ms budget",
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        if max <= BUDGET_MS { "within" } else { "OVER" },
    );
}

/// Signs in as the sign-in form does; answers the session cookie.
async fn sign_in(http: &reqwest::Client, hub: &str, email: &str, password: &str) -> String {
    let page = http
        .get(format!("{hub}/console/sign-in"))
        .send()
        .await
        .expect("the sign-in page");
    let form_cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("the form's cookie")
        .to_owned();
    let token = form_cookie.split_once('=').expect("a cookie").1.to_owned();
    let signed_in = http
        .post(format!("{hub}/console/sign-in"))
        .header("cookie", &form_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={token}&email={}&password={}",
            email.replace('@', "%40"),
            password.replace(' ', "+")
        ))
        .send()
        .await
        .expect("signing in");
    signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("sb_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

async fn get(http: &reqwest::Client, hub: &str, cookie: &str, path: &str) -> (Duration, String) {
    let started = Instant::now();
    let response = http
        .get(format!("{hub}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("a response");
    let status = response.status();
    let body = response.text().await.expect("a body");
    let took = started.elapsed();
    assert!(status.is_success(), "{path}: {status}");
    (took, body)
}
