//! Black-box tests: the real `switchboard` binary, started as a process, spoken to over HTTP.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, switchboard};

/// A running process, killed if a test ends without stopping it.
struct Running(Option<Child>);

impl Running {
    fn start(command: &mut Command) -> Self {
        Self(Some(
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    }

    fn stdout(&mut self) -> std::process::ChildStdout {
        self.0.as_mut().unwrap().stdout.take().unwrap()
    }

    /// Sends SIGTERM and waits for the process to exit.
    fn terminate(mut self) -> Output {
        let child = self.0.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn wait_healthy(port: u16, within: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["status"], "ok");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "port {port} not healthy within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_demo_is_healthy_within_five_seconds_and_prints_its_urls() {
    let (hub, sim) = (free_port(), free_port());
    let started = Instant::now();
    let mut demo = Running::start(switchboard().args([
        "demo",
        "--listen",
        &format!("127.0.0.1:{hub}"),
        "--sim-listen",
        &format!("127.0.0.1:{sim}"),
    ]));
    wait_healthy(hub, Duration::from_secs(5)).await;
    wait_healthy(sim, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut stdout = BufReader::new(demo.stdout());
    let mut printed = String::new();
    for _ in 0..4 {
        stdout.read_line(&mut printed).unwrap();
    }
    assert!(
        printed.contains(&format!("http://127.0.0.1:{hub}/")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("http://127.0.0.1:{sim}/")),
        "{printed}"
    );
    let data_dir = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("Data:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(Path::new(&data_dir).join("switchboard.db").exists());

    let output = demo.terminate();
    assert!(output.status.success(), "{output:?}");
    assert!(
        !Path::new(&data_dir).exists(),
        "the throw-away data is deleted on exit"
    );
}

#[tokio::test]
async fn serve_reads_its_config_file_and_lets_the_environment_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port) = (free_port(), free_port());
    let data_dir = dir.path().join("data");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{file_port}\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let hub = Running::start(
        switchboard()
            .args(["serve", "--config"])
            .arg(&config)
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{env_port}")),
    );
    wait_healthy(env_port, Duration::from_secs(10)).await;

    let metrics = reqwest::get(format!("http://127.0.0.1:{env_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"switchboard_http_requests_total{method="GET",route="/healthz",status="200"}"#
        ),
        "{metrics}"
    );
    let key_mode = std::fs::metadata(data_dir.join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(data_dir.join("switchboard.db").exists());

    let output = hub.terminate();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    for line in stderr.lines() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(stderr.contains("hub listening"), "{stderr}");
}

/// `serve` on `port` with its data in `data`, once it answers.
async fn serve_healthy(port: u16, data: &Path) -> Running {
    let hub = Running::start(
        switchboard()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data),
    );
    wait_healthy(port, Duration::from_secs(10)).await;
    hub
}

#[tokio::test]
async fn serve_restarts_on_its_own_data() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let hub = serve_healthy(free_port(), dir.path()).await;
        let output = hub.terminate();
        assert!(output.status.success(), "{output:?}");
    }
}

#[tokio::test]
async fn a_second_hub_on_the_same_data_is_refused_naming_the_first_and_the_data_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = serve_healthy(free_port(), &data).await;
    let first_pid = first.0.as_ref().unwrap().id();

    assert_fails_with_one_line(
        switchboard()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
                "--data-dir",
            ])
            .arg(&data),
        &format!("another hub is running on this database (switchboard pid {first_pid} on "),
    );

    // What the hub created is its owner's alone: the directory, the database with its log,
    // the key and the lock.
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for file in [
        "switchboard.db",
        "switchboard.db-wal",
        "switchboard.db-shm",
        "switchboard.db.lock",
        "secret.key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }

    let output = first.terminate();
    assert!(output.status.success(), "{output:?}");
    // Stopped, it no longer holds the data: a new hub starts on it.
    let second = serve_healthy(free_port(), &data).await;
    assert!(second.terminate().status.success());
}

/// The open-file limits of a running process, soft and hard, as the kernel reports them.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let mut numbers = line
        .split_whitespace()
        .filter_map(|word| word.parse::<u64>().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// `serve` started by a shell with these open-file limits, as a service manager would.
fn serve_limited(soft: u64, hard: u64, port: u16, data: &Path) -> Running {
    Running::start(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" serve --listen 127.0.0.1:{port} --data-dir \"$1\""
            ))
            .arg(common::BINARY)
            .arg(data),
    )
}

#[tokio::test]
async fn the_hub_raises_its_open_file_limit_and_idle_connections_past_it_never_take_it_offline() {
    // This test holds more connections than a default limit of 1,024 allows.
    let ours = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if ours.current < Some(4096) && ours.maximum.is_none_or(|hard| hard >= 4096) {
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(4096),
                maximum: ours.maximum,
            },
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();

    // A soft limit below the hard one is raised to it.
    let port = free_port();
    let raised = serve_limited(1024, 4096, port, &dir.path().join("raised"));
    wait_healthy(port, Duration::from_secs(10)).await;
    assert_eq!(
        open_file_limits(raised.0.as_ref().unwrap().id()),
        (4096, 4096)
    );
    drop(raised);

    // At 1,024 with no room to raise it, 1,100 idle connections (a burst's keep-alive pool, or
    // someone holding connections open) leave the hub answering within seconds.
    let port = free_port();
    let _hub = serve_limited(1024, 1024, port, &dir.path().join("limited"));
    wait_healthy(port, Duration::from_secs(10)).await;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    let answered_within = wait_healthy(port, Duration::from_secs(20)).await;
    println!("healthy again {answered_within:?} after 1,100 idle connections");
}

#[tokio::test]
async fn the_simulator_runs_alone() {
    let port = free_port();
    let _sim =
        Running::start(switchboard().args(["sim", "--listen", &format!("127.0.0.1:{port}")]));
    wait_healthy(port, Duration::from_secs(5)).await;
}

/// Runs the binary to completion and checks that it failed with one clear line.
fn assert_fails_with_one_line(command: &mut Command, expected: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success(), "{command:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{command:?} printed:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(expected),
        "{command:?}: expected {expected:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let malformed = dir.path().join("malformed.toml");
    std::fs::write(&malformed, "listen = \"127.0.0.1:1\"\n[unclosed\n").unwrap();
    let misspelt = dir.path().join("misspelt.toml");
    std::fs::write(&misspelt, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();

    assert_fails_with_one_line(
        switchboard().args(["serve", "--no-such-flag"]),
        "'--no-such-flag'",
    );
    // Refused before the demo starts anything (it connected and imported first, once).
    assert_fails_with_one_line(
        switchboard().args(["demo", "--api-token", "too-short"]),
        "an API token must be at least 16 characters long",
    );
    assert_fails_with_one_line(switchboard().args(["frobnicate"]), "'frobnicate'");
    assert_fails_with_one_line(
        switchboard().args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--platforms",
            "slack,myspace",
        ]),
        "the simulator has no platform 'myspace'",
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--config"]).arg(&malformed),
        "line 2",
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--config"]).arg(&misspelt),
        "unknown field `lisen`",
    );
    assert_fails_with_one_line(
        switchboard()
            .args(["serve", "--config"])
            .arg(dir.path().join("absent.toml")),
        "cannot read config file",
    );
    assert_fails_with_one_line(
        switchboard()
            .args(["serve", "--data-dir", data])
            .env("DATABASE_URL", "mysql://root:hunter2@db/switchboard"),
        "unsupported database URL 'mysql://root:***@db/switchboard'",
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--data-dir", data]).env(
            "DATABASE_URL",
            "postgres://hub:hunter2@127.0.0.1:1/switchboard",
        ),
        "cannot connect to the database at postgres://hub:***@127.0.0.1:1/switchboard",
    );
    assert_fails_with_one_line(
        switchboard()
            .args(["serve", "--data-dir"])
            .arg(a_file.join("data")),
        "cannot create the data directory",
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--data-dir", data, "--listen", &busy]),
        &format!("cannot listen on {busy}"),
    );
    assert_fails_with_one_line(
        switchboard().args(["demo", "--sim-listen", &busy, "--listen", "127.0.0.1:0"]),
        &format!("cannot listen on {busy}"),
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--data-dir", data, "--listen", "localhost"]),
        "invalid listen address 'localhost'",
    );
    assert_fails_with_one_line(
        switchboard()
            .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
            .env("SWITCHBOARD_SECRET_KEY", "too-short"),
        "the secret key must be 32 bytes",
    );
    assert_fails_with_one_line(
        switchboard().args(["--log", "info,[", "sim"]),
        "invalid log filter",
    );
    assert_fails_with_one_line(
        switchboard().args(["serve", "--log-format", "xml"]),
        "'xml'",
    );
}

/// `--platforms` narrows the demo to some platforms: its simulator serves those only, the
/// organisation is generated over them, the hub connects them alone, and the banner's "Try it"
/// sends people to those platforms' web views.
#[tokio::test]
async fn the_demo_runs_with_the_platforms_asked_for_only() {
    let token = "platforms-test-token-0123456789";
    let demo = common::RunningDemo::start(
        20,
        token,
        &[("SWITCHBOARD_DEMO_PLATFORMS", "google_chat,webex")],
    );
    let http = reqwest::Client::new();
    let get = async |url: String| {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.json::<serde_json::Value>().await.unwrap()
    };
    let served = get(format!("{}/_sim/platforms", demo.sim_url())).await;
    assert_eq!(served, serde_json::json!(["google_chat", "webex"]));
    let connections = get(format!("{}/api/v1/connections", demo.hub_url())).await;
    let mut connected: Vec<&str> = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["platform"].as_str().unwrap())
        .collect();
    connected.sort_unstable();
    assert_eq!(connected, ["google_chat", "webex"]);
    let people = get(format!("{}/api/v1/people?limit=1000", demo.hub_url())).await;
    let people = people["people"].as_array().unwrap();
    assert_eq!(people.len(), 20);
    assert!(people.iter().all(|p| {
        p["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|platform| platform == "google_chat" || platform == "webex")
    }));

    let started = Instant::now();
    let banner = loop {
        let printed = demo.printed();
        if printed.contains("and the reply comes back") {
            break printed;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{printed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for view in ["/google/", "/webex/"] {
        let url = format!("{}{view}", demo.sim_url());
        assert!(banner.contains(&url), "{view} in {banner}");
        let response = http.get(&url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
    }
}
