use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use switchboard_hub::{AppState, SystemClock};
use switchboard_platform::PlatformRegistry;
use switchboard_secrets::{Cipher, ExposeSecret, SecretString};
use switchboard_sim::{SimConfig, Simulator};
use switchboard_store::Store;
use tokio::net::TcpListener;

use crate::cli::{Cli, Command, DemoArgs, LogFormat, SimArgs, Switch};
use crate::config::{self, DEFAULT_LOG_FILTER, FileConfig, Settings};
use crate::logging;

const DATABASE_FILE: &str = "switchboard.db";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = match &cli.command {
        Command::Serve(args) => match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        },
        Command::Demo(_) | Command::Sim(_) => FileConfig::default(),
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
            serve(settings).await
        }
        Command::Demo(args) => demo(args).await,
        Command::Sim(args) => sim(args).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = bind(settings.listen).await?;
    let state = open_hub(
        &settings.data_dir,
        settings.database_url.as_deref(),
        secret_key_from_env().as_ref(),
    )
    .await?;
    tracing::info!(address = %settings.listen, data_dir = %settings.data_dir.display(), "hub listening");
    let store = state.store.clone();
    axum::serve(listener, switchboard_hub::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the hub's HTTP server stopped")?;
    store.close().await;
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let hub_address = config::parse_listen(&args.listen)?;
    let sim_address = config::parse_listen(&args.sim_listen)?;
    let hub_listener = bind(hub_address).await?;
    let sim_listener = bind(sim_address).await?;
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
    let state = open_hub(&data_dir, None, None).await?;
    let store = state.store.clone();
    let simulator = start_simulator(SimConfig {
        base_url: format!("http://{sim_address}"),
        people: args.people,
        rate_limits: true,
        state_file: None,
    })
    .await?;

    println!("Switchboard demo is running.");
    println!("  Hub:        http://{hub_address}/");
    println!("  Simulator:  http://{sim_address}/");
    match &throwaway {
        Some(_) => println!("  Data:       {} (deleted on exit)", data_dir.display()),
        None => println!("  Data:       {}", data_dir.display()),
    }
    println!("Press Ctrl-C to stop.");

    let (stop, stopped) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown_signal().await;
        drop(stop);
    });
    let hub = axum::serve(hub_listener, switchboard_hub::router(state))
        .with_graceful_shutdown(closed(stopped.clone()));
    let simulator =
        axum::serve(sim_listener, simulator.router()).with_graceful_shutdown(closed(stopped));
    let (hub, simulator) = tokio::join!(hub, simulator);
    hub.context("the hub's HTTP server stopped")?;
    simulator.context("the simulator's HTTP server stopped")?;
    store.close().await;
    drop(throwaway);
    Ok(())
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let address = config::parse_listen(&args.listen)?;
    let listener = bind(address).await?;
    let simulator = start_simulator(SimConfig {
        base_url: args
            .public_url
            .unwrap_or_else(|| format!("http://{address}")),
        people: args.people,
        rate_limits: args.rate_limits == Switch::On,
        state_file: args.state,
    })
    .await?;
    println!("Switchboard platform simulator: http://{address}/");
    axum::serve(listener, simulator.router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the simulator's HTTP server stopped")?;
    tokio::task::spawn_blocking(move || simulator.save())
        .await
        .context("saving the simulator's state failed")??;
    Ok(())
}

/// Builds the simulator off the async threads: seeding a large organisation takes a while.
async fn start_simulator(config: SimConfig) -> anyhow::Result<Simulator> {
    Ok(tokio::task::spawn_blocking(move || Simulator::new(config))
        .await
        .context("starting the simulator failed")??)
}

/// Everything the hub needs from disk and database, opened in the order that gives the
/// clearest error first: the directory, the key, then the database.
async fn open_hub(
    data_dir: &Path,
    database_url: Option<&str>,
    secret_key: Option<&SecretString>,
) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let cipher = Cipher::load(secret_key.map(|key| key.expose_secret()), data_dir)?;
    let clock = Arc::new(SystemClock);
    let store = match database_url {
        Some(url) => Store::connect(url, cipher, clock).await?,
        None => Store::open_sqlite(&data_dir.join(DATABASE_FILE), cipher, clock)
            .await
            .with_context(|| format!("cannot open the database in {}", data_dir.display()))?,
    };
    Ok(AppState {
        store,
        platforms: platform_registry(),
        metrics: install_metrics()?,
    })
}

/// The platforms this build can connect to: one line per platform module.
fn platform_registry() -> PlatformRegistry {
    PlatformRegistry::default()
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .context("cannot set up the metrics recorder")?
        .install_recorder()
        .context("cannot set up the metrics recorder")?;
    metrics::gauge!("switchboard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
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

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
