use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchboard_hub::refresh::RefreshSettings;
use switchboard_hub::{AppState, SystemClock};
use switchboard_secrets::{Cipher, ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};
use switchboard_store::{InstanceLock, Store, TokenPurpose};
use tokio::net::TcpListener;

use crate::cli::{
    AdminCommand, AdminCreateArgs, Cli, Command, DemoArgs, LogFormat, SimArgs, Switch, TokenCommand,
};
use crate::config::{self, DEFAULT_LOG_FILTER, FileConfig, Settings};
use crate::http_server;
use crate::logging;
use crate::remote;
use switchboard::{demo, platforms};

const DATABASE_FILE: &str = "switchboard.db";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = match &cli.command {
        Command::Serve(args)
        | Command::Token(TokenCommand::Create(crate::cli::TokenCreateArgs { hub: args, .. }))
        | Command::Admin(AdminCommand::Create(AdminCreateArgs { hub: args, .. })) => {
            match &args.config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            }
        }
        Command::Demo(_)
        | Command::Sim(_)
        | Command::People(_)
        | Command::Connections(_)
        | Command::Import(_)
        | Command::Teams(_)
        | Command::Settings(_)
        | Command::Relay(_)
        | Command::Directory(_) => FileConfig::default(),
    };
    logging::init(
        cli.log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Human),
        cli.log_filter
            .as_deref()
            .or(file.log.as_deref())
            .unwrap_or(DEFAULT_LOG_FILTER),
    )?;
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&args, &file, std::env::var("DATABASE_URL").ok())?;
            serve(settings, &file.platforms).await
        }
        Command::Demo(args) => demo(args).await,
        Command::Sim(args) => sim(args).await,
        Command::Token(TokenCommand::Create(args)) => {
            let settings = Settings::resolve(&args.hub, &file, std::env::var("DATABASE_URL").ok())?;
            let store = open_store(
                &settings.data_dir,
                settings.database_url.as_deref(),
                secret_key_from_env().as_ref(),
            )
            .await?;
            let purpose = if args.scim {
                TokenPurpose::Scim
            } else {
                TokenPurpose::Api
            };
            let token = create_api_token(&store, &args.name, purpose, None).await?;
            println!("{token}");
            store.close().await;
            Ok(())
        }
        Command::Admin(AdminCommand::Create(args)) => {
            let settings = Settings::resolve(&args.hub, &file, std::env::var("DATABASE_URL").ok())?;
            let store = open_store(
                &settings.data_dir,
                settings.database_url.as_deref(),
                secret_key_from_env().as_ref(),
            )
            .await?;
            let created = create_admin(&store, &args).await;
            store.close().await;
            created
        }
        Command::People(args) => Ok(remote::people(args).await?),
        Command::Connections(args) => Ok(remote::connections(args).await?),
        Command::Import(args) => Ok(remote::import(args).await?),
        Command::Teams(args) => Ok(remote::teams(args).await?),
        Command::Settings(args) => Ok(remote::settings(args).await?),
        Command::Relay(args) => Ok(remote::relay(args).await?),
        Command::Directory(args) => Ok(remote::directory(args).await?),
    }
}

/// Creates a console admin from the command line; the password never appears in the process
/// list or the log.
async fn create_admin(store: &Store, args: &AdminCreateArgs) -> anyhow::Result<()> {
    let password = read_password(args.password_stdin)?;
    let email = switchboard_hub::console::auth::check_new_admin(&args.email, &password)
        .map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let role = switchboard_store::AdminRole::parse(&args.role)
        .context("the role is owner, admin or viewer")?;
    let hash = switchboard_hub::console::auth::hash_password(&password)
        .map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let admin = store
        .create_admin(&email, &hash, role)
        .await
        .context("cannot create the admin")?;
    store
        .audit(
            "cli",
            "admin.create",
            admin.email.as_str(),
            admin.role.as_str(),
            "cli",
        )
        .await
        .context("cannot record the admin in the audit log")?;
    println!(
        "Created {} ({}). Sign in to the console at /console/ with this e-mail address.",
        admin.email,
        admin.role.as_str()
    );
    Ok(())
}

/// The password, from standard input's first line or asked for on the terminal without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !from_stdin && !stdin.is_terminal() {
        anyhow::bail!("standard input is not a terminal: give the password with --password-stdin");
    }
    let interactive = !from_stdin;
    if interactive {
        eprint!(
            "Password (at least {} characters): ",
            switchboard_hub::console::auth::MIN_PASSWORD_CHARS
        );
        std::io::stderr().flush().ok();
        // `stty` is the portable way to stop the terminal echoing without another dependency.
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Creates a token for `purpose` (the given one, or a new random one) and returns its secret
/// text.
async fn create_api_token(
    store: &Store,
    name: &str,
    purpose: TokenPurpose,
    given: Option<&str>,
) -> anyhow::Result<String> {
    let token = match given {
        Some(token) => token.to_owned(),
        None => switchboard_hub::tokens::generate(),
    };
    let hash = switchboard_hub::tokens::hash(&token);
    if given.is_some()
        && store
            .use_api_token(&hash)
            .await
            .context("cannot read the API tokens")?
            .is_some()
    {
        // A demo resumed with the token it was given before.
        return Ok(token);
    }
    store
        .create_api_token(name, &hash, purpose)
        .await
        .context("cannot record the API token")?;
    store
        .audit("cli", "token.create", name, purpose.as_str(), "cli")
        .await
        .context("cannot record the API token in the audit log")?;
    Ok(token)
}

async fn serve(settings: Settings, platform_tables: &toml::Table) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let listener = bind(settings.listen).await?;
    let (state, mut lock) = open_hub(HubSetup {
        data_dir: &settings.data_dir,
        database_url: settings.database_url.as_deref(),
        secret_key: secret_key_from_env().as_ref(),
        public_url: &settings.public_url,
        platforms: platform_tables,
        listen: settings.listen,
    })
    .await?;
    tracing::info!(address = %settings.listen, data_dir = %settings.data_dir.display(), "hub listening");
    if let Some(link) = switchboard_hub::console::auth::announce_setup_link(&state).await? {
        // The link is meant to be read from the log: it is how the first owner is created
        // when nobody ran `switchboard admin create`. It works once, for a day.
        tracing::info!(
            link = %link,
            "the console has no admin yet: open this one-time link to create the owner, or run `switchboard admin create EMAIL`"
        );
    }
    let store = state.store.clone();
    switchboard_hub::refresh::spawn(state.clone(), refresh_settings()?);
    switchboard_hub::spawn_relay(state.clone());
    switchboard_hub::spawn_directory_sync(state.clone());
    let mut lost = None;
    http_server::serve(
        http_server::Limits::for_descriptors(http_server::raise_open_file_limit()),
        listener,
        switchboard_hub::router(state),
        stop_or_lose(stop, &mut lock, &mut lost),
    )
    .await;
    store.close().await;
    match lost {
        Some(reason) => anyhow::bail!("stopped: {reason}"),
        None => Ok(()),
    }
}

/// Resolves on Ctrl-C or SIGTERM, or once the hub no longer holds its database's lock, saying
/// so in `lost`: a hub that may not be the only one on its database stops relaying at once.
async fn stop_or_lose(
    stop: impl Future<Output = ()>,
    lock: &mut InstanceLock,
    lost: &mut Option<String>,
) {
    tokio::select! {
        () = stop => {}
        reason = lock.lost() => {
            tracing::error!(%reason, "the hub lost its lock on the database and stops");
            *lost = Some(reason);
        }
    }
}

/// The simulator a demo talks to.
enum DemoSimulator {
    /// One already running (`switchboard sim`), at this URL.
    Running(String),
    /// One the demo starts, listening here.
    Start(SocketAddr),
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    // Every argument is checked before anything starts.
    let hub_address = config::parse_listen(&args.listen)?;
    let simulator = match &args.sim_url {
        Some(url) => DemoSimulator::Running(url.trim_end_matches('/').to_owned()),
        None => DemoSimulator::Start(config::parse_listen(&args.sim_listen)?),
    };
    let hub_listener = bind(hub_address).await?;
    let throwaway = match &args.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("switchboard-demo-")
                .tempdir()
                .context("cannot create a temporary data directory")?,
        ),
    };
    let data_dir: PathBuf = match (&args.data_dir, &throwaway) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_owned(),
        (None, None) => unreachable!("a throw-away directory exists whenever none was given"),
    };
    // The hub and the simulator share the process's descriptors.
    let limits = http_server::Limits::for_descriptors(http_server::raise_open_file_limit() / 2);
    let (stop, stopped) = tokio::sync::watch::channel(());
    let (lock_taken, lock_held) = tokio::sync::oneshot::channel::<InstanceLock>();
    let signalled = shutdown_signal();
    let lost = tokio::spawn(async move {
        let mut lost = None;
        match lock_held.await {
            Ok(mut lock) => stop_or_lose(signalled, &mut lock, &mut lost).await,
            Err(_) => signalled.await,
        }
        drop(stop);
        lost
    });
    let (sim_url, simulator_server) = match simulator {
        DemoSimulator::Running(url) => (url, None),
        DemoSimulator::Start(sim_address) => {
            let sim_listener = bind(sim_address).await?;
            let simulator = start_simulator(SimConfig {
                base_url: format!("http://{sim_address}"),
                people: args.people,
                rate_limits: args.sim_rate_limits == Switch::On,
                state_file: None,
                platforms: args.platforms.clone(),
            })
            .await?;
            let server = tokio::spawn(http_server::serve(
                limits,
                sim_listener,
                simulator.router(),
                closed(stopped.clone()),
            ));
            (format!("http://{sim_address}"), Some(server))
        }
    };
    let hub_url = format!("http://{hub_address}");
    let paced = demo::sim_rate_limits(&sim_url)
        .await
        .context("reading the simulator's settings")?;
    let simulated = demo::Demo::prepare(&sim_url, &hub_url, paced, Some(&data_dir)).await?;
    let (state, lock) = open_hub(HubSetup {
        data_dir: &data_dir,
        database_url: args.database_url.as_deref(),
        secret_key: None,
        public_url: &hub_url,
        platforms: &simulated.platform_config()?,
        listen: hub_address,
    })
    .await?;
    // Only dropped when the task watching the lock already ended, on a signal.
    let _ = lock_taken.send(lock);
    let store = state.store.clone();
    switchboard_hub::refresh::spawn(state.clone(), refresh_settings()?);
    switchboard_hub::spawn_relay(state.clone());
    switchboard_hub::spawn_directory_sync(state.clone());
    let hub_server = tokio::spawn(http_server::serve(
        limits,
        hub_listener,
        switchboard_hub::router(state.clone()),
        closed(stopped),
    ));
    if state.store.connections().await?.is_empty() {
        simulated
            .set_up(&state)
            .await
            .context("setting up the demo organisation")?;
    }
    simulated
        .sync_in_background(&state)
        .await
        .context("starting the demo's auto-sync")?;
    let api_token =
        create_api_token(&store, "demo", TokenPurpose::Api, args.api_token.as_deref()).await?;
    if let Some(scim_token) = args.scim_token.as_deref() {
        create_api_token(&store, "demo-scim", TokenPurpose::Scim, Some(scim_token)).await?;
    }
    let setup_link = switchboard_hub::console::auth::announce_setup_link(&state).await?;

    say("Switchboard demo is running.");
    say(&format!("  Hub:        http://{hub_address}/"));
    say(&format!("  Simulator:  {sim_url}/"));
    match &throwaway {
        Some(_) => say(&format!(
            "  Data:       {} (deleted on exit)",
            data_dir.display()
        )),
        None => say(&format!("  Data:       {}", data_dir.display())),
    }
    say(&format!("  API token:  {api_token}"));
    match &setup_link {
        Some(link) => say(&format!(
            "  Console:    {link}\n              (a one-time link that creates the console's owner: open it first)"
        )),
        None => say(&format!(
            "  Console:    http://{hub_address}/console/ (sign in as an admin created before)"
        )),
    }
    say(&format!(
        "  Auto-sync:  {}",
        auto_sync_words(&state.platforms)
    ));
    if let Some(lines) = simulated
        .try_it(&state.store, &state.platforms, &hub_url)
        .await?
    {
        say(&lines);
    }
    say("Press Ctrl-C to stop.");

    hub_server.await.context("the hub's HTTP server failed")?;
    if let Some(server) = simulator_server {
        server.await.context("the simulator's HTTP server failed")?;
    }
    store.close().await;
    drop(throwaway);
    match lost.await.context("watching the hub's lock failed")? {
        Some(reason) => anyhow::bail!("stopped: {reason}"),
        None => Ok(()),
    }
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let address = config::parse_listen(&args.listen)?;
    let listener = bind(address).await?;
    let simulator = start_simulator(SimConfig {
        base_url: args
            .public_url
            .unwrap_or_else(|| format!("http://{address}")),
        people: args.people,
        rate_limits: args.rate_limits == Switch::On,
        state_file: args.state,
        platforms: args.platforms,
    })
    .await?;
    println!("Switchboard platform simulator: http://{address}/");
    http_server::serve(
        http_server::Limits::for_descriptors(http_server::raise_open_file_limit()),
        listener,
        simulator.router(),
        stop,
    )
    .await;
    tokio::task::spawn_blocking(move || simulator.save())
        .await
        .context("saving the simulator's state failed")??;
    Ok(())
}

/// Prints a line of the demo's banner. A closed standard output (the terminal went away, a pipe
/// was closed) must not stop a running hub, so write errors are ignored here.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Builds the simulator off the async threads: seeding a large organisation takes a while.
async fn start_simulator(config: SimConfig) -> anyhow::Result<Simulator> {
    Ok(tokio::task::spawn_blocking(move || Simulator::new(config))
        .await
        .context("starting the simulator failed")??)
}

/// Where the hub keeps its data and how it reaches the world.
struct HubSetup<'a> {
    data_dir: &'a Path,
    database_url: Option<&'a str>,
    secret_key: Option<&'a SecretString>,
    public_url: &'a str,
    platforms: &'a toml::Table,
    /// Where the hub listens, which a second hub started on the same database is told.
    listen: SocketAddr,
}

/// How often a running hub checks that it still holds its database's lock.
const LOCK_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the hub needs from disk and database, opened in the order that gives the
/// clearest error first: the directory, the database's one-hub lock, the key, then the
/// database; then its platforms.
async fn open_hub(setup: HubSetup<'_>) -> anyhow::Result<(AppState, InstanceLock)> {
    let clock: Arc<dyn switchboard_core::Clock> = Arc::new(SystemClock);
    let platforms = platforms::registry(setup.platforms, clock.clone())?;
    create_data_dir(setup.data_dir)?;
    let database = match setup.database_url {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", setup.data_dir.join(DATABASE_FILE).display()),
    };
    let lock = InstanceLock::acquire(&database, &hub_description(setup.listen), LOCK_CHECK).await?;
    let store = open_store(setup.data_dir, setup.database_url, setup.secret_key).await?;
    // Holding the lock, no other hub imports into this database.
    let interrupted = store.fail_interrupted_imports().await?;
    if interrupted > 0 {
        tracing::warn!(
            imports = interrupted,
            "imports the hub stopped in the middle of are marked failed; import those connections again"
        );
    }
    let state = AppState {
        store,
        platforms,
        metrics: install_metrics()?,
        public_url: setup.public_url.to_owned(),
        clock,
        syncing: Default::default(),
        relay: Default::default(),
        console: Default::default(),
        directory: Default::default(),
        webhook_health: Default::default(),
        matching: Default::default(),
        scope: switchboard_hub::scope::Reconciling::every(directory_reconcile_interval()?),
    };
    Ok((state, lock))
}

/// This process as a second hub is told of it: `switchboard pid 4242 on HOST at ADDRESS`.
fn hub_description(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    match host.as_str() {
        "" => format!("switchboard pid {} at {listen}", std::process::id()),
        host => format!(
            "switchboard pid {} on {host} at {listen}",
            std::process::id()
        ),
    }
}

/// Creates the data directory, readable by its owner alone (it holds the database and the
/// key); one that exists is left as it is.
fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))
}

async fn open_store(
    data_dir: &Path,
    database_url: Option<&str>,
    secret_key: Option<&SecretString>,
) -> anyhow::Result<Store> {
    create_data_dir(data_dir)?;
    let cipher = Cipher::load(secret_key.map(|key| key.expose_secret()), data_dir)?;
    let clock = Arc::new(SystemClock);
    Ok(match database_url {
        Some(url) => Store::connect(url, cipher, clock).await?,
        None => {
            let database = data_dir.join(DATABASE_FILE);
            create_private_file(&database)?;
            Store::open_sqlite(&database, cipher, clock)
                .await
                .with_context(|| format!("cannot open the database in {}", data_dir.display()))?
        }
    })
}

/// Creates an empty file readable by its owner alone, unless it exists: SQLite creates its
/// write-ahead log and shared-memory files with the database file's permissions, which would
/// otherwise follow the umask (readable by every local user).
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .context("cannot set up the metrics recorder")?
        // Fine around the relay's targets (p50 5 ms, p99 25 ms), so that the quantiles can be
        // read off the buckets.
        .set_buckets_for_metric(
            Matcher::Full(switchboard_hub::relay::ADDED_LATENCY.to_owned()),
            &[
                0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1,
                0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
        )
        .context("cannot set up the metrics recorder")?
        .install_recorder()
        .context("cannot set up the metrics recorder")?;
    metrics::gauge!("switchboard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The token refresher's pace: every 30 s, renewing what expires within 10 minutes. For tests
/// and demonstrations, `SWITCHBOARD_REFRESH_INTERVAL_SECS` and `SWITCHBOARD_REFRESH_MARGIN_SECS`
/// set them (and the health check runs at ten times the interval).
fn refresh_settings() -> anyhow::Result<RefreshSettings> {
    let mut settings = RefreshSettings::default();
    let seconds = |name: &str| -> anyhow::Result<Option<std::time::Duration>> {
        std::env::var(name)
            .ok()
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0 || name.ends_with("MARGIN_SECS"))
                    .map(std::time::Duration::from_secs)
                    .with_context(|| {
                        format!("{name} must be a whole number of seconds, not {text:?}")
                    })
            })
            .transpose()
    };
    if let Some(interval) = seconds("SWITCHBOARD_REFRESH_INTERVAL_SECS")? {
        settings.interval = interval;
        settings.health_every = interval * 10;
    }
    if let Some(margin) = seconds("SWITCHBOARD_REFRESH_MARGIN_SECS")? {
        settings.margin = margin;
    }
    Ok(settings)
}

/// How often Directory Sync reads the groups it follows besides the changes the directories
/// announce: `SWITCHBOARD_DIRECTORY_RECONCILE_SECS`, by default five minutes.
fn directory_reconcile_interval() -> anyhow::Result<std::time::Duration> {
    const NAME: &str = "SWITCHBOARD_DIRECTORY_RECONCILE_SECS";
    match std::env::var(NAME) {
        Err(_) => Ok(switchboard_hub::scope::DEFAULT_RECONCILE_INTERVAL),
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&seconds| seconds > 0)
            .map(std::time::Duration::from_secs)
            .with_context(|| {
                format!("{NAME} must be a whole number of seconds above 0, not {text:?}")
            }),
    }
}

fn secret_key_from_env() -> Option<SecretString> {
    std::env::var("SWITCHBOARD_SECRET_KEY")
        .ok()
        .map(SecretString::from)
}

async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} (is another program using it? choose another address with --listen)")
    })
}

/// Resolves when the sender of `receiver` is dropped: one signal stopping several servers.
async fn closed(mut receiver: tokio::sync::watch::Receiver<()>) {
    while receiver.changed().await.is_ok() {}
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that came between the two would otherwise kill the
/// process without a graceful stop.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen for signals; the process stops without a graceful shutdown");
                std::future::pending::<()>().await;
                unreachable!("a pending future never resolves")
            }
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    }
}

/// What the demo's auto-sync creates on each platform and how fast, from what each module
/// declares: "guest accounts at once", or at the platform's pace where it allows less than one
/// a second ("bots at its pace: one new app a minute").
fn auto_sync_words(platforms: &switchboard_platform::PlatformRegistry) -> String {
    let parts: Vec<String> = platforms
        .platforms()
        .filter_map(|platform| {
            let module = platforms.get(platform)?;
            let created = module.rules().created_by_hub()?;
            let name = platform.display_name();
            Some(match module.provisioning_rate() {
                Some(pace) if pace.rate.per_second < 1.0 => {
                    format!("{name} {} at its pace ({})", created.many, pace.allows)
                }
                _ => format!("{name} {} at once", created.many),
            })
        })
        .collect();
    if parts.is_empty() {
        "nothing to create: every platform represents people by their own accounts".to_owned()
    } else {
        parts.join("; ")
    }
}
