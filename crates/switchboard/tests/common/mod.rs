//! What the black-box tests share: the real binary started with none of the caller's settings,
//! and `switchboard demo` started and waited for until it is ready.

// Each test file is its own crate and uses part of this module.
#![allow(dead_code)]

pub mod browser;
pub mod native;
pub mod traffic;
pub mod world;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

/// The binary with none of the caller's Switchboard settings leaking in.
pub fn switchboard() -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars() {
        if name.starts_with("SWITCHBOARD_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command
}

/// A client that drops idle connections before the hub's and the simulator's servers do (after
/// 30 s), so that it never sends a request on a connection the server is closing (reset).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `switchboard demo`, killed when dropped.
pub struct RunningDemo {
    child: Child,
    pub hub: u16,
    sim_url: String,
    /// What the banner says about the console: the one-time setup link on a first start.
    pub console: String,
    /// What the demo printed after its console line (the rest of its banner, then nothing).
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

impl RunningDemo {
    /// Starts the demo with `people` and the API token `token`, with these environment variables
    /// set, and returns once it has set itself up and printed its token.
    ///
    /// A port chosen free can be taken before the demo binds it (by another test's demo, or as
    /// the source port of a connection): the demo then starts again on other ports.
    pub fn start(people: usize, token: &str, environment: &[(&str, &str)]) -> Self {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (hub, sim) = (free_port(), free_port());
            let mut command = switchboard();
            for (name, value) in environment {
                command.env(name, value);
            }
            command.args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{hub}"),
                "--sim-listen",
                &format!("127.0.0.1:{sim}"),
                "--people",
                &people.to_string(),
                "--api-token",
                token,
            ]);
            match Self::try_run(command, hub, format!("http://127.0.0.1:{sim}"), token) {
                Ok(demo) => return demo,
                Err(said) if said.contains("cannot listen on") && attempts < 3 => continue,
                Err(said) => panic!("the demo exited before it was ready:\n{said}"),
            }
        }
    }

    /// Starts the demo against a simulator that runs already, keeping its data in `data_dir`:
    /// started again with the same directory (and port), it resumes where it stopped.
    pub fn start_on(sim: &RunningSim, data_dir: &std::path::Path, hub: u16, token: &str) -> Self {
        Self::resume(&sim.url(), data_dir, hub, token)
    }

    /// Like [`RunningDemo::start_on`], for the simulator at `sim_url`.
    pub fn resume(sim_url: &str, data_dir: &std::path::Path, hub: u16, token: &str) -> Self {
        Self::resume_with(sim_url, data_dir, hub, token, &[])
    }

    /// Like [`RunningDemo::resume`], with more of the demo's flags (`--database-url URL`).
    pub fn resume_with(
        sim_url: &str,
        data_dir: &std::path::Path,
        hub: u16,
        token: &str,
        flags: &[&str],
    ) -> Self {
        let mut command = switchboard();
        command.args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{hub}"),
            "--sim-url",
            sim_url,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--api-token",
            token,
        ]);
        command.args(flags);
        Self::try_run(command, hub, sim_url.to_owned(), token)
            .unwrap_or_else(|said| panic!("the demo exited before it was ready:\n{said}"))
    }

    /// Runs the demo until it is ready; if it exits first, what it wrote to standard error.
    fn try_run(
        mut command: Command,
        hub: u16,
        sim_url: String,
        token: &str,
    ) -> Result<Self, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let errors = keep_errors(child.stderr.take().unwrap(), &format!("hub-{hub}"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let started = Instant::now();
        let mut line = String::new();
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            if read == 0 {
                let _ = child.wait();
                // The thread that keeps standard error ends with the process.
                let said = errors.join().unwrap_or_default();
                return Err(said);
            }
            if line.contains("API token:") {
                assert!(line.contains(token), "{line}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the demo took too long"
            );
        }
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let console = line
            .trim()
            .strip_prefix("Console:")
            .unwrap_or_else(|| panic!("no console line after the token: {line}"))
            .trim()
            .to_owned();
        // Keep reading what the demo prints, so its standard output never becomes a closed pipe.
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = printed.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stdout.read_line(&mut line).is_ok_and(|read| read > 0) {
                reader.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Ok(Self {
            child,
            hub,
            sim_url,
            console,
            printed,
        })
    }

    /// What the demo printed after its console line so far.
    pub fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    pub fn hub_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.hub)
    }

    pub fn sim_url(&self) -> String {
        self.sim_url.clone()
    }

    /// The hub's process id, to read its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the hub as an operator would (SIGTERM) and waits until it has exited, its
    /// database closed.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the hub did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the hub at once, as a crash would (SIGKILL): nothing is flushed or closed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a started process's log goes: nowhere, or with `SWITCHBOARD_TEST_LOGS=DIR` appended to
/// `DIR/NAME.log` (a restarted hub continues its file), to read after a failure.
/// Reads a process's standard error to its end in a thread, copying it to the test logs (see
/// [`log_sink`]); the thread answers its last lines, for a process that exited too soon.
fn keep_errors(stderr: std::process::ChildStderr, name: &str) -> std::thread::JoinHandle<String> {
    const KEPT: usize = 40;
    let mut log = std::env::var_os("SWITCHBOARD_TEST_LOGS").map(|dir| {
        let path = std::path::Path::new(&dir).join(format!("{name}.log"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()))
    });
    std::thread::spawn(move || {
        let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
            if last.len() == KEPT {
                last.pop_front();
            }
            last.push_back(line);
        }
        Vec::from(last).join("\n")
    })
}

fn log_sink(name: &str) -> Stdio {
    let Some(dir) = std::env::var_os("SWITCHBOARD_TEST_LOGS") else {
        return Stdio::null();
    };
    let path = std::path::Path::new(&dir).join(format!("{name}.log"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()))
        .into()
}

/// A running `switchboard sim`, killed when dropped.
pub struct RunningSim {
    child: Child,
    port: u16,
}

impl RunningSim {
    /// Starts `switchboard sim` with `people`, enforcing the platforms' rate limits or not.
    pub fn start(people: usize, rate_limits: bool) -> Self {
        Self::launch(people, rate_limits, None, None)
    }

    /// Like [`RunningSim::start`], serving only `platforms` (their keys, comma-separated).
    pub fn start_serving(people: usize, rate_limits: bool, platforms: &str) -> Self {
        Self::launch(people, rate_limits, None, Some(platforms))
    }

    /// Like [`RunningSim::start`], saving the simulated platforms' state (their apps' secrets
    /// among it) to `state` when asked (`POST /_sim/save`).
    pub fn start_saving_to(people: usize, rate_limits: bool, state: &std::path::Path) -> Self {
        Self::launch(people, rate_limits, Some(state), None)
    }

    fn launch(
        people: usize,
        rate_limits: bool,
        state: Option<&std::path::Path>,
        platforms: Option<&str>,
    ) -> Self {
        let port = free_port();
        let mut command = switchboard();
        command.args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--people",
            &people.to_string(),
            "--rate-limits",
            if rate_limits { "on" } else { "off" },
        ]);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        if let Some(platforms) = platforms {
            command.args(["--platforms", platforms]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log_sink(&format!("sim-{port}")))
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(
            read > 0 && line.contains("simulator"),
            "the simulator did not start: {line}"
        );
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningDemo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
