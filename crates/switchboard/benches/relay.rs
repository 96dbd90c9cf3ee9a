//! The relay benchmark: a thousand conversations between people at home on different
//! platforms, typed through the simulated platforms' own APIs, relayed by the real `switchboard`
//! binary.
//!
//! The simulator (`switchboard sim --rate-limits off`) and the hub (`switchboard demo
//! --sim-url`) run as processes of their own, the hub's memory read from `/proc`. This process
//! only writes the messages and reads the hub's `/metrics`. It
//!
//! 1. waits for the demo's auto-sync to represent people at home on one platform on the others
//!    (on a platform that represents only account holders, people on two platforms link their
//!    own account through the prompt), and opens about 1,000 conversations spread over every pair of connected platforms, half
//!    written on each side (the crash test's traffic, `tests/common/traffic.rs`), and relays
//!    one message in each, so every portal exists;
//! 2. **latency**: writes `RELAY_BENCH_LATENCY_RATE` (200) messages a second for
//!    `RELAY_BENCH_LATENCY_SECS` (60), each conversation every 5 s at 200, and reads the latency the hub adds — from a webhook reaching the
//!    hub to the destination platform accepting the copy — off the hub's histogram
//!    `switchboard_relay_added_latency_seconds` (its buckets are fine around 5 and 25 ms), in
//!    all and by the platform the copies went to;
//! 3. **throughput**: offers `RELAY_BENCH_RATE` (1,000) messages a second for
//!    `RELAY_BENCH_THROUGHPUT_SECS` (30) and prints the rate the hub delivered copies at while
//!    the load lasted, and how long the backlog took to clear;
//! 4. **memory**: with `RELAY_BENCH_SOAK_SECS` set (600 for the figures in BENCHMARKS.md),
//!    writes at the latency phase's rate that long, printing the hub's resident memory every 30 s.
//!
//! After the latency and throughput phases it prints the CPU time per copy (user and system time
//! of all threads, from `/proc`) of the hub, the simulator, itself and, on PostgreSQL, every
//! `postgres` process, which varies less between runs than latency; all share the two cores.
//!
//! ```sh
//! cargo bench -p switchboard --bench relay
//! RELAY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/relay_bench \
//!     cargo bench -p switchboard --bench relay
//! ```
//!
//! With `RELAY_BENCH_DATABASE_URL` the hub keeps its data in that (empty) PostgreSQL database
//! instead of SQLite. Figures go to BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::traffic::PairConversation;
use common::world::{TOKEN, World};
use common::{RunningDemo, RunningSim, free_port};

const CONVERSATIONS: usize = 1_000;
/// Enough people for each pair's two sides: with five platforms a pair carries 98
/// conversations, 14 × 7, and the organisation's mix repeats every 36 people with two on each
/// platform alone and one on each pair of platforms, so eight rounds give 16 at home on each
/// platform alone and 8 on each pair (the side linked where a platform represents only account
/// holders needs 7).
const ORGANISATION: usize = 288;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let latency_secs = env_number("RELAY_BENCH_LATENCY_SECS", 60);
    let latency_rate = env_number("RELAY_BENCH_LATENCY_RATE", 200) as f64;
    let throughput_secs = env_number("RELAY_BENCH_THROUGHPUT_SECS", 30);
    let high_rate = env_number("RELAY_BENCH_RATE", 1_000) as f64;
    let soak_secs = env_number("RELAY_BENCH_SOAK_SECS", 0);
    let database_url = std::env::var("RELAY_BENCH_DATABASE_URL").ok();

    let started = Instant::now();
    let sim = RunningSim::start(ORGANISATION, false);
    let data = tempfile::tempdir().expect("a temporary directory");
    let flags: Vec<&str> = match &database_url {
        Some(url) => vec!["--database-url", url],
        None => Vec::new(),
    };
    let hub = RunningDemo::resume_with(&sim.url(), data.path(), free_port(), TOKEN, &flags);
    let world = Arc::new(World::of(&hub));
    let metrics = Metrics {
        http: reqwest::Client::new(),
        url: format!("{}/metrics", hub.hub_url()),
    };
    let conversations: Vec<Arc<PairConversation>> = world
        .conversations_over_pairs(CONVERSATIONS)
        .await
        .into_iter()
        .map(Arc::new)
        .collect();
    let conversations = Arc::new(conversations);
    println!(
        "store: {}; {} conversations set up in {:.1} s; hub RSS {:.0} MiB",
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        conversations.len(),
        started.elapsed().as_secs_f64(),
        rss_mib(hub.pid())
    );

    // Every conversation's portals are made by its first message, which is not measured. A
    // platform may limit how fast chats are set up (Google: 60 a minute per project), so this
    // can take minutes.
    let written = Arc::new(AtomicUsize::new(0));
    let warm_up = conversations.len();
    let warming = Instant::now();
    write_at(&world, &conversations, &written, latency_rate, warm_up).await;
    metrics
        .wait_for_posts(warm_up, Duration::from_secs(1200))
        .await;
    println!(
        "warm-up: one message in every conversation relayed in {:.1} s",
        warming.elapsed().as_secs_f64()
    );

    // Latency at a human pace: 200 messages a second by default.
    let by_destination_before = metrics.latency_by_destination().await;
    let before = Buckets::sum(by_destination_before.values());
    let cpu_before = CpuTimes::of(&hub, &sim, database_url.is_some());
    let count = (latency_rate as usize) * latency_secs;
    let sending = Instant::now();
    write_at(&world, &conversations, &written, latency_rate, count).await;
    let sent_in = sending.elapsed();
    metrics
        .wait_for_posts(written.load(Ordering::SeqCst), Duration::from_secs(300))
        .await;
    let by_destination = metrics.latency_by_destination().await;
    let window = Buckets::sum(by_destination.values()).since(&before);
    println!(
        "latency: {count} messages written in {:.1} s ({:.0}/s); added latency over {} copies: \
         p50 {:.1} ms, p99 {:.1} ms; {:.1} % within 5 ms, {:.2} % within 25 ms",
        sent_in.as_secs_f64(),
        count as f64 / sent_in.as_secs_f64(),
        window.total(),
        window.quantile(0.5) * 1e3,
        window.quantile(0.99) * 1e3,
        window.share_within(0.005) * 100.0,
        window.share_within(0.025) * 100.0,
    );
    print_by_destination("latency", &by_destination_before, &by_destination);
    println!(
        "{}; hub RSS {:.0} MiB",
        CpuTimes::of(&hub, &sim, database_url.is_some())
            .per_copy_since(&cpu_before, window.total()),
        rss_mib(hub.pid())
    );

    // Throughput: as many as offered, for as long as the load lasts.
    let delivered_before = metrics.posts().await;
    let by_destination_before = metrics.latency_by_destination().await;
    let latency_before = Buckets::sum(by_destination_before.values());
    let cpu_before = CpuTimes::of(&hub, &sim, database_url.is_some());
    let count = (high_rate as usize) * throughput_secs;
    let sending = Instant::now();
    write_at(&world, &conversations, &written, high_rate, count).await;
    let sent_in = sending.elapsed();
    let delivered_while_sending = metrics.posts().await - delivered_before;
    metrics
        .wait_for_posts(written.load(Ordering::SeqCst), Duration::from_secs(900))
        .await;
    let cleared_in = sending.elapsed();
    let by_destination = metrics.latency_by_destination().await;
    let window = Buckets::sum(by_destination.values()).since(&latency_before);
    println!(
        "throughput: {count} messages written in {:.1} s ({:.0}/s offered); {} copies delivered \
         while writing ({:.0}/s); all delivered after {:.1} s ({:.0}/s overall)",
        sent_in.as_secs_f64(),
        count as f64 / sent_in.as_secs_f64(),
        delivered_while_sending,
        delivered_while_sending as f64 / sent_in.as_secs_f64(),
        cleared_in.as_secs_f64(),
        count as f64 / cleared_in.as_secs_f64(),
    );
    println!(
        "throughput: added latency p50 {:.1} ms, p99 {:.1} ms",
        window.quantile(0.5) * 1e3,
        window.quantile(0.99) * 1e3,
    );
    print_by_destination("throughput", &by_destination_before, &by_destination);
    println!(
        "{}; hub RSS {:.0} MiB",
        CpuTimes::of(&hub, &sim, database_url.is_some())
            .per_copy_since(&cpu_before, window.total()),
        rss_mib(hub.pid())
    );

    if soak_secs > 0 {
        let soak = {
            let (world, conversations, written) =
                (world.clone(), conversations.clone(), written.clone());
            tokio::spawn(async move {
                let count = (latency_rate as usize) * soak_secs;
                write_at(&world, &conversations, &written, latency_rate, count).await;
            })
        };
        let soak_started = Instant::now();
        let before = metrics.latency_buckets().await;
        let (mut window_start, mut steal_start) = (before.clone(), steal_seconds());
        while !soak.is_finished() {
            tokio::time::sleep(Duration::from_secs(30)).await;
            // Each window's own figures: a drift over the run shows, and so does a spell when
            // the hypervisor took the cores away (steal).
            let (now, steal) = (metrics.latency_buckets().await, steal_seconds());
            let window = now.since(&window_start);
            println!(
                "soak: {:>4.0} s, {} messages written, hub RSS {:.0} MiB; last 30 s: p50 {:.1} \
                 ms, p99 {:.1} ms, CPU steal {:.2} s",
                soak_started.elapsed().as_secs_f64(),
                written.load(Ordering::SeqCst),
                rss_mib(hub.pid()),
                window.quantile(0.5) * 1e3,
                window.quantile(0.99) * 1e3,
                steal - steal_start,
            );
            (window_start, steal_start) = (now, steal);
        }
        metrics
            .wait_for_posts(written.load(Ordering::SeqCst), Duration::from_secs(300))
            .await;
        let window = metrics.latency_buckets().await.since(&before);
        println!(
            "soak: {} copies, added latency p50 {:.1} ms, p99 {:.1} ms; hub RSS {:.0} MiB, peak \
             {:.0} MiB",
            window.total(),
            window.quantile(0.5) * 1e3,
            window.quantile(0.99) * 1e3,
            rss_mib(hub.pid()),
            peak_rss_mib(hub.pid()),
        );
    }
    drop(hub);
    drop(sim);
}

/// Writes `count` messages at `rate` a second, going round the conversations, each write on
/// its own so that a slow answer does not hold back the pace.
async fn write_at(
    world: &Arc<World>,
    conversations: &Arc<Vec<Arc<PairConversation>>>,
    written: &Arc<AtomicUsize>,
    rate: f64,
    count: usize,
) {
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        pace.tick().await;
        let n = written.fetch_add(1, Ordering::SeqCst);
        let conversation = conversations[n % conversations.len()].clone();
        let world = world.clone();
        writes.push(tokio::spawn(async move {
            write(&world, &conversation, &format!("message {n}")).await;
        }));
    }
    for write in writes {
        write.await.expect("a write");
    }
}

async fn write(world: &World, conversation: &PairConversation, text: &str) {
    conversation
        .writer
        .post(
            world,
            &conversation.writer_token,
            &conversation.writer_chat,
            text,
        )
        .await;
}

/// The hub's `/metrics`.
#[derive(Clone)]
struct Metrics {
    http: reqwest::Client,
    url: String,
}

impl Metrics {
    async fn text(&self) -> String {
        self.http
            .get(&self.url)
            .send()
            .await
            .expect("the hub's metrics")
            .text()
            .await
            .expect("the hub's metrics")
    }

    /// Copies posted so far, on every platform.
    async fn posts(&self) -> usize {
        self.text()
            .await
            .lines()
            .filter(|line| {
                line.starts_with("switchboard_relay_delivered_total{")
                    && line.contains("action=\"post\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    }

    async fn wait_for_posts(&self, count: usize, patience: Duration) {
        let started = Instant::now();
        loop {
            let posted = self.posts().await;
            if posted >= count {
                return;
            }
            assert!(
                started.elapsed() < patience,
                "only {posted} of {count} copies were posted within {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn latency_buckets(&self) -> Buckets {
        Buckets::sum(self.latency_by_destination().await.values())
    }

    /// The added latency's histogram for each platform the copies went to.
    async fn latency_by_destination(&self) -> BTreeMap<String, Buckets> {
        let mut by_platform: BTreeMap<String, Buckets> = BTreeMap::new();
        for line in self.text().await.lines() {
            let Some(rest) = line.strip_prefix("switchboard_relay_added_latency_seconds_bucket{")
            else {
                continue;
            };
            let label = |name: &str| {
                rest.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|tail| tail.split('"').next())
            };
            let (Some(platform), Some(bound), Some(count)) = (
                label("platform"),
                label("le"),
                rest.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok()),
            ) else {
                continue;
            };
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().expect("a bucket bound")
            };
            by_platform
                .entry(platform.to_owned())
                .or_default()
                .add(bound, count);
        }
        by_platform
    }
}

/// Prints each destination's share of a phase's copies and its added latency.
fn print_by_destination(
    phase: &str,
    before: &BTreeMap<String, Buckets>,
    after: &BTreeMap<String, Buckets>,
) {
    for (platform, now) in after {
        let window = match before.get(platform) {
            Some(earlier) => now.since(earlier),
            None => now.clone(),
        };
        println!(
            "{phase}: to {platform}: {} copies, added latency p50 {:.1} ms, p99 {:.1} ms",
            window.total(),
            window.quantile(0.5) * 1e3,
            window.quantile(0.99) * 1e3,
        );
    }
}

/// A histogram's cumulative buckets: (upper bound in seconds, observations at or below it),
/// summed over its labels.
#[derive(Clone, Default)]
struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    fn add(&mut self, bound: f64, count: f64) {
        match self.0.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, total)) => *total += count,
            None => {
                self.0.push((bound, count));
                self.0.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    fn sum<'a>(all: impl IntoIterator<Item = &'a Buckets>) -> Buckets {
        let mut sum = Buckets::default();
        for buckets in all {
            for &(bound, count) in &buckets.0 {
                sum.add(bound, count);
            }
        }
        sum
    }

    fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|(bound, count)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(b, _)| b == bound)
                        .map_or(0.0, |(_, c)| *c);
                    (*bound, count - before)
                })
                .collect(),
        )
    }

    fn total(&self) -> usize {
        self.0.last().map_or(0.0, |(_, count)| *count) as usize
    }

    fn share_within(&self, bound: f64) -> f64 {
        let total = self.total().max(1) as f64;
        self.0
            .iter()
            .find(|(b, _)| (*b - bound).abs() < 1e-9)
            .map_or(f64::NAN, |(_, count)| count / total)
    }

    /// The quantile, interpolated linearly within its bucket (as Prometheus does).
    fn quantile(&self, share: f64) -> f64 {
        let rank = share * self.total() as f64;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &self.0 {
            if count >= rank {
                if bound.is_infinite() {
                    return lower.0;
                }
                let within = (count - lower.1).max(1.0);
                return lower.0 + (bound - lower.0) * ((rank - lower.1) / within);
            }
            lower = (bound, count);
        }
        f64::NAN
    }
}

/// The CPU time the process has used, all its threads, in seconds: user and system time from
/// /proc, counted in clock ticks (100 a second on Linux for x86 and ARM).
/// The CPU time used so far by each process of the bench: all share the two cores, so what
/// the simulator, this writer and a PostgreSQL server spend is what the hub cannot have.
struct CpuTimes {
    hub: f64,
    simulator: f64,
    writer: f64,
    /// Every `postgres` process of the machine, when the hub's store is PostgreSQL.
    database: Option<f64>,
}

impl CpuTimes {
    fn of(hub: &RunningDemo, sim: &RunningSim, postgres: bool) -> Self {
        Self {
            hub: cpu_seconds(hub.pid()),
            simulator: cpu_seconds(sim.pid()),
            writer: cpu_seconds(std::process::id()),
            database: postgres.then(postgres_cpu_seconds),
        }
    }

    fn per_copy_since(&self, earlier: &Self, copies: usize) -> String {
        let per_copy = |now: f64, then: f64| (now - then) * 1e3 / copies as f64;
        let database = match (self.database, earlier.database) {
            (Some(now), Some(then)) => format!(", PostgreSQL {:.2} ms", per_copy(now, then)),
            _ => String::new(),
        };
        format!(
            "CPU per copy: hub {:.2} ms, simulator {:.2} ms, bench writer {:.2} ms{database}",
            per_copy(self.hub, earlier.hub),
            per_copy(self.simulator, earlier.simulator),
            per_copy(self.writer, earlier.writer),
        )
    }
}

/// The time the hypervisor ran something else while this machine's CPUs wanted to run (the
/// `steal` column of /proc/stat's first line), summed over the CPUs.
fn steal_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .next()
        .and_then(|cpu| cpu.split_whitespace().nth(8))
        .and_then(|ticks| ticks.parse::<f64>().ok())
        .map_or(f64::NAN, |ticks| ticks / 100.0)
}

/// The CPU time of every process named `postgres` (the server and its backends).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim() == "postgres")
        })
        .map(cpu_seconds)
        .filter(|seconds| seconds.is_finite())
        .sum()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, which may hold spaces, closed by the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    // utime and stime: the 14th and 15th fields, the 12th and 13th after the name.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// A figure from the process's /proc status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}
