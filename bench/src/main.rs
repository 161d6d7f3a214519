//! `seva-load`: closed-loop load against `seva serve`, with the echo gateway as the baseline
//! measured in the same run. See BENCHMARKS.md for how to run it and what it reported.
//!
//! * [`burst`] — a fan-out of status pushes draining beside live citizens (`seva-load burst`).
//! * [`compare`] — several `seva` binaries alternated round by round (`run --seva A,B`).
//! * [`fake`] — a lean fake WhatsApp Graph API and Telegram Bot API on loopback.
//! * [`echo`] — the echo gateway (`seva-load echo`), the baseline.
//! * [`journeys`] — what the virtual citizens type.
//! * [`limit`] — which side of a run was saturated (is echo's figure its ceiling?).
//! * [`load`] — the closed loop and its measurements.
//! * [`summary`] — the median ratio to echo per channel, database and number of citizens.
//! * [`target`] — spawning, pinning and watching the process under load.

mod burst;
mod compare;
mod echo;
mod fake;
mod journeys;
mod limit;
mod load;
mod summary;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::limit::Limit;
use crate::load::{Channel, Driver, LoadSpec, Measured, percentile};
use crate::target::{SevaOptions, Spawn, Target};

#[derive(Parser)]
#[command(
    name = "seva-load",
    about = "Closed-loop load on `seva serve` over signed WhatsApp webhooks and Telegram webhook updates, with an echo-gateway baseline in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive the echo gateway and Seva with the same load; report Seva as a ratio to echo.
    Run(RunArgs),
    /// Serve the echo gateway only (what `run` starts as its baseline).
    Echo(EchoArgs),
    /// A burst of Telegram status pushes drains at `--mps` while citizens keep talking:
    /// pacing accuracy and reply latency during the drain.
    Burst(BurstArgs),
}

#[derive(Args)]
struct BurstArgs {
    /// The `seva` binary (default: `seva` next to this one).
    #[arg(long)]
    seva: Option<PathBuf>,
    /// `sqlite` (a fresh temp file) or a PostgreSQL server URL (a fresh database, dropped after).
    #[arg(long = "db", default_value = "sqlite")]
    database: String,
    /// Status pushes written at once.
    #[arg(long, default_value_t = 10_000)]
    pushes: usize,
    /// `SEVA_TELEGRAM_MPS` for the run.
    #[arg(long, default_value_t = 1_000)]
    mps: u32,
    /// Virtual citizens talking during the drain.
    #[arg(long, default_value_t = 8)]
    citizens: usize,
    /// Seconds a step may wait for its replies.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Pin the load tool to CPU 0 and Seva to CPU 1 (`taskset`).
    #[arg(long)]
    pin: bool,
    #[arg(long, default_value = "0")]
    load_cpus: String,
    #[arg(long, default_value = "1")]
    target_cpus: String,
    /// The stations CSV Seva loads (default: the repository's example).
    #[arg(long)]
    stations: Option<PathBuf>,
    /// Also write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The `seva` binary (default: `seva` next to this one). Several (`--seva A,B`) each run
    /// once per round, in an order that turns around every round, and every one after the
    /// first is compared with the first, round by round.
    #[arg(long, value_delimiter = ',')]
    seva: Vec<PathBuf>,
    /// Channels to load, one after the other (`telegram-polling`: Telegram by `getUpdates`
    /// long polling instead of the webhook; not in the default set).
    #[arg(long, value_delimiter = ',', default_values = ["whatsapp", "telegram"])]
    channels: Vec<Channel>,
    /// Databases for Seva: `sqlite` (a fresh temp file per run) or a PostgreSQL server URL
    /// such as `postgres://postgres@127.0.0.1:5432` (a fresh database per run, dropped after).
    #[arg(long = "db", value_delimiter = ',', default_values = ["sqlite"])]
    databases: Vec<String>,
    /// Virtual citizens (concurrent closed loops); several (`16,64,256`) run every channel's
    /// rounds at each number in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [64])]
    citizens: Vec<usize>,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds a step may wait for its replies before it counts as a timeout.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Milliseconds each citizen pauses after a step's replies (a lower, steadier rate).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Each citizen sends only the first message of the first journey and is then replaced
    /// by a new one: every step leaves one more citizen holding conversation state (for
    /// Seva's RSS with many citizens; journeys are not counted).
    #[arg(long)]
    first_contact_only: bool,
    /// Alternate echo and Seva this many times per channel.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Pin the load tool to CPU 0 and the target to CPU 1 (`taskset`).
    #[arg(long)]
    pin: bool,
    /// CPUs for the load tool and for the target with --pin.
    #[arg(long, default_value = "0")]
    load_cpus: String,
    #[arg(long, default_value = "1")]
    target_cpus: String,
    /// Skip the echo gateway (no ratios).
    #[arg(long)]
    no_echo: bool,
    /// Skip Seva (echo only).
    #[arg(long)]
    no_seva: bool,
    /// The stations CSV Seva loads (default: the repository's example).
    #[arg(long)]
    stations: Option<PathBuf>,
    /// `RUST_LOG` for Seva (default: Seva's own default).
    #[arg(long)]
    rust_log: Option<String>,
    /// Print the calibration transcripts.
    #[arg(long)]
    verbose: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the temp directory (databases, logs) and print its path.
    #[arg(long)]
    keep: bool,
}

#[derive(Args)]
struct EchoArgs {
    #[arg(long)]
    listen: SocketAddr,
    /// Fake or real Graph API base incl. version.
    #[arg(long)]
    graph_url: String,
    /// Bot API base.
    #[arg(long)]
    telegram_url: String,
    #[arg(long, default_value = target::PHONE_NUMBER_ID)]
    phone_number_id: String,
    #[arg(long, default_value = target::ACCESS_TOKEN)]
    access_token: String,
    #[arg(long, default_value = target::BOT_TOKEN)]
    bot_token: String,
    /// Fetch Telegram updates with `getUpdates` long polling (as well as serving the webhook).
    #[arg(long)]
    telegram_polling: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Echo(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("seva-load echo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let cfg = echo::EchoConfig {
                listen: args.listen,
                graph_url: args.graph_url,
                phone_number_id: args.phone_number_id,
                access_token: args.access_token,
                telegram_url: args.telegram_url,
                bot_token: args.bot_token,
                telegram_polling: args.telegram_polling,
            };
            match runtime.block_on(echo::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("seva-load echo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            let pin = args.pin.then(|| args.load_cpus.clone());
            block_on_pinned(pin.as_deref(), run(args))
        }
        Command::Burst(args) => {
            let pin = args.pin.then(|| args.load_cpus.clone());
            block_on_pinned(pin.as_deref(), burst_run(args))
        }
    }
}

/// Pins this process to `cpus` (if given), then runs `work` on a runtime built after pinning,
/// so its worker count follows the pinned CPUs.
fn block_on_pinned(
    cpus: Option<&str>,
    work: impl std::future::Future<Output = Result<(), String>>,
) -> ExitCode {
    if let Some(cpus) = cpus
        && let Err(e) = target::pin_self(cpus)
    {
        eprintln!("seva-load: --pin: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("seva-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seva-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn burst_run(args: BurstArgs) -> Result<(), String> {
    let seva = seva_path(args.seva.clone())?;
    require_seva(&seva)?;
    let tmp = tempfile::Builder::new()
        .prefix("seva-burst-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let spec = burst::BurstSpec {
        seva,
        stations: args.stations.clone().unwrap_or_else(default_stations),
        database: args.database.clone(),
        pushes: args.pushes,
        mps: args.mps,
        citizens: args.citizens,
        pin: args.pin.then(|| args.target_cpus.clone()),
        timeout: Duration::from_secs(args.timeout),
    };
    eprintln!(
        "seva-load burst: {} pushes at {}/s on {} with {} citizens talking, pinned: {}, load average: {}",
        args.pushes,
        args.mps,
        args.database,
        args.citizens,
        args.pin,
        load_average()
    );
    let report = burst::run(spec, tmp.path()).await?;
    eprintln!(
        "  delivered {}/{} in {:.2} s: {:.0} sends/s = {:.3} of the configured {}/s, busiest second {}\n  replies during the drain: {} (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms), timeouts {}, errors {}",
        report.delivered,
        report.pushes,
        report.drain_secs,
        report.sends_per_sec,
        report.ratio_to_configured,
        report.configured_mps,
        report.busiest_second,
        report.replies,
        report.reply_p50_ms,
        report.reply_p99_ms,
        report.reply_max_ms,
        report.timeouts,
        report.errors
    );
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `--seva`, or `seva` next to this binary.
fn seva_path(given: Option<PathBuf>) -> Result<PathBuf, String> {
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(given.unwrap_or_else(|| {
        self_exe
            .parent()
            .map(|d| d.join("seva"))
            .unwrap_or_else(|| PathBuf::from("seva"))
    }))
}

/// Refuses a `seva` binary that is not there, saying how to build it.
fn require_seva(seva: &std::path::Path) -> Result<(), String> {
    if seva.exists() {
        return Ok(());
    }
    Err(format!(
        "no seva binary at {} (build it with `cargo build --release --bin seva`, or pass --seva)",
        seva.display()
    ))
}

/// One measured run of one target on one channel.
#[derive(Debug, Clone, Serialize)]
struct Row {
    channel: Channel,
    round: usize,
    /// `echo`, `seva/sqlite` or `seva/postgres` (`seva#2/sqlite`: the second of several
    /// `--seva` binaries).
    target: String,
    /// Which `--seva` binary (0-based) ran, and on which database; `None` for echo.
    #[serde(skip)]
    seva: Option<(usize, &'static str)>,
    citizens: usize,
    replies_per_sec: f64,
    /// Replies/s as a fraction of echo's in the same round and channel.
    ratio_to_echo: Option<f64>,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    errors: u64,
    timeouts: u64,
    unexpected_replies: u64,
    failed_journeys: u64,
    /// Completed in the window: complaint, lost item, status check.
    journeys: [u64; 3],
    peak_rss_mib: f64,
    /// CPU used in the window, in cores (1.0 = one core busy).
    target_cpu: f64,
    load_cpu: f64,
    /// Which side's core was full: an echo run limited by the load tool is not echo's ceiling.
    limited_by: Limit,
    ready_ms: f64,
    first_error: Option<String>,
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

struct Shared {
    fake: fake::Fake,
    tmp: tempfile::TempDir,
    /// `--seva`, in order.
    seva: Vec<PathBuf>,
    stations: PathBuf,
    self_exe: PathBuf,
    identity: u64,
    runs: usize,
}

fn default_stations() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/stations.example.csv");
    if repo.exists() {
        repo
    } else {
        PathBuf::from("config/stations.example.csv")
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    if args.citizens.contains(&0) {
        return Err("--citizens: every number of citizens must be at least 1".to_owned());
    }
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let seva = if args.seva.is_empty() {
        vec![seva_path(None)?]
    } else {
        args.seva.clone()
    };
    if !args.no_seva {
        for binary in &seva {
            require_seva(binary)?;
        }
    }
    let fake = fake::Fake::start().await.map_err(|e| e.to_string())?;
    let tmp = tempfile::Builder::new()
        .prefix("seva-load-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut shared = Shared {
        fake,
        tmp,
        seva,
        stations: args.stations.clone().unwrap_or_else(default_stations),
        self_exe,
        identity: 1,
        runs: 0,
    };
    eprintln!(
        "seva-load: {} citizens, {} s warm-up + {} s measured per run, pinned: {}, load average: {}",
        args.citizens
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.warmup,
        args.duration,
        args.pin,
        load_average()
    );
    let mut rows = Vec::new();
    for &citizens in &args.citizens {
        for &channel in &args.channels {
            for round in 1..=args.rounds {
                let at = Slot {
                    channel,
                    citizens,
                    round,
                };
                let mut echo_rate = None;
                if !args.no_echo {
                    let row = run_one(&args, &mut shared, at, None).await?;
                    echo_rate = Some(row.replies_per_sec);
                    print_row(&row);
                    rows.push(row);
                }
                if !args.no_seva {
                    for db in &args.databases {
                        for binary in compare::order(round, shared.seva.len()) {
                            let mut row =
                                run_one(&args, &mut shared, at, Some((db, binary))).await?;
                            row.ratio_to_echo =
                                echo_rate.map(|e| row.replies_per_sec / e.max(1e-9));
                            print_row(&row);
                            rows.push(row);
                        }
                    }
                }
            }
        }
    }
    eprintln!("load average after: {}", load_average());
    print_table(&rows);
    print_ratio_summary(&rows);
    print_comparisons(&shared.seva, &rows);
    for r in rows
        .iter()
        .filter(|r| r.target == "echo" && !r.limited_by.reached_ceiling())
    {
        eprintln!(
            "note: {} round {} ({} citizens): echo used {:.2} of its core and the load tool {:.2}: \
             echo's figure is below its ceiling, so that round's ratios are upper bounds",
            r.channel.as_str(),
            r.round,
            r.citizens,
            r.target_cpu,
            r.load_cpu,
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.keep {
        let kept = shared.tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Where a run sits in `run`'s loops: its channel, number of citizens and round.
#[derive(Debug, Clone, Copy)]
struct Slot {
    channel: Channel,
    citizens: usize,
    round: usize,
}

/// One target under the load, from start to stop: echo when `seva` is `None`, else the
/// database and the position of the binary in `--seva` (0-based).
async fn run_one(
    args: &RunArgs,
    shared: &mut Shared,
    at: Slot,
    seva: Option<(&String, usize)>,
) -> Result<Row, String> {
    let channel = at.channel;
    shared.runs += 1;
    let n = shared.runs;
    let listen = target::free_port().map_err(|e| e.to_string())?;
    let pin = args.pin.then(|| args.target_cpus.clone());
    let log = shared.tmp.path().join(format!("run{n}.log"));
    let mut pg_db = None;
    let (name, which, spawn) = match seva {
        None => (
            "echo".to_owned(),
            None,
            Spawn {
                program: shared.self_exe.clone(),
                args: vec![
                    "echo".to_owned(),
                    "--listen".to_owned(),
                    listen.to_string(),
                    "--graph-url".to_owned(),
                    shared.fake.graph_url(),
                    "--telegram-url".to_owned(),
                    shared.fake.telegram_url(),
                ]
                .into_iter()
                .chain((!channel.is_webhook()).then(|| "--telegram-polling".to_owned()))
                .collect(),
                env: Vec::new(),
                pin,
                log,
                listen,
            },
        ),
        Some((db, binary)) => {
            let (label, url) = if db == "sqlite" {
                let path = shared.tmp.path().join(format!("run{n}/seva.db"));
                ("sqlite", format!("sqlite://{}", path.display()))
            } else if db.starts_with("postgres") {
                let name = format!("seva_load_{}_{n}", std::process::id());
                let url = target::create_postgres_db(db, &name)?;
                pg_db = Some((db.clone(), name));
                ("postgres", url)
            } else {
                return Err(format!("--db {db}: expected sqlite or a postgres:// URL"));
            };
            let media = shared.tmp.path().join(format!("run{n}/media"));
            let opts = SevaOptions {
                binary: &shared.seva[binary],
                database_url: &url,
                stations_csv: &shared.stations,
                media_dir: &media,
                graph_url: shared.fake.graph_url(),
                telegram_url: shared.fake.telegram_url(),
                telegram_polling: !channel.is_webhook(),
                rust_log: args.rust_log.as_deref(),
            };
            let name = if shared.seva.len() > 1 {
                format!("seva#{}/{label}", binary + 1)
            } else {
                format!("seva/{label}")
            };
            (name, Some((binary, label)), opts.spawn(listen, pin, log))
        }
    };
    let result = measure(args, shared, at, &name, which, spawn).await;
    if let Some((base, name)) = pg_db {
        target::drop_postgres_db(&base, &name);
    }
    result
}

async fn measure(
    args: &RunArgs,
    shared: &mut Shared,
    at: Slot,
    name: &str,
    seva: Option<(usize, &'static str)>,
    spawn: Spawn,
) -> Result<Row, String> {
    let Slot {
        channel,
        citizens,
        round,
    } = at;
    let is_echo = seva.is_none();
    let target = Target::start(spawn).await?;
    let timeout = Duration::from_secs(args.timeout);
    let driver = Arc::new(Driver::new(
        channel,
        &format!("http://{}", target.addr),
        shared.fake.routes.clone(),
        timeout,
    )?);
    let plan = if is_echo {
        journeys::cycle()
    } else {
        shared.identity += 1;
        match load::calibrate(
            &driver,
            shared.identity,
            Duration::from_millis(250),
            args.verbose,
        )
        .await
        {
            Ok(plan) => plan,
            Err(e) => {
                let tail = target.log_tail(20);
                target.stop().await;
                return Err(format!("{name} on {}: {e}\n{tail}", channel.as_str()));
            }
        }
    };
    let first_identity = shared.identity + 1;
    let spec = LoadSpec {
        citizens,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
        timeout,
        think: Duration::from_millis(args.think_ms),
        check_outcomes: !is_echo && !args.first_contact_only,
        first_identity,
        first_contact_only: args.first_contact_only,
    };
    // CPU in the window: sampled at its edges.
    let warmup = spec.warmup;
    let duration = spec.duration;
    let sampler = {
        let pid = target.pid;
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let t0 = target::cpu_seconds(&format!("/proc/{pid}/stat"));
            let s0 = target::cpu_seconds("/proc/self/stat");
            tokio::time::sleep(duration).await;
            let t1 = target::cpu_seconds(&format!("/proc/{pid}/stat"));
            let s1 = target::cpu_seconds("/proc/self/stat");
            let secs = duration.as_secs_f64();
            let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (b - a) / secs,
                _ => f64::NAN,
            };
            (cores(t0, t1), cores(s0, s1))
        })
    };
    let measured: Measured = load::run(driver, plan, spec).await;
    let (target_cpu, load_cpu) = sampler.await.unwrap_or((f64::NAN, f64::NAN));
    // Identities are never reused against the same target.
    shared.identity = first_identity + 10_000_000;
    let peak_rss_mib = target.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    let ready_ms = target.ready_in.as_secs_f64() * 1000.0;
    target.stop().await;
    let mut lat = measured.latencies_us.clone();
    lat.sort_unstable();
    let mut ack = measured.ack_us.clone();
    ack.sort_unstable();
    Ok(Row {
        channel,
        round,
        target: name.to_owned(),
        seva,
        citizens,
        replies_per_sec: measured.replies_per_sec(),
        ratio_to_echo: None,
        p50_ms: ms(percentile(&lat, 50.0)),
        p90_ms: ms(percentile(&lat, 90.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        max_ms: ms(lat.last().copied().unwrap_or(0)),
        ack_p50_ms: ms(percentile(&ack, 50.0)),
        ack_p99_ms: ms(percentile(&ack, 99.0)),
        errors: measured.errors,
        timeouts: measured.timeouts,
        unexpected_replies: measured.unexpected,
        failed_journeys: measured.failed_journeys,
        journeys: measured.journeys,
        peak_rss_mib,
        target_cpu,
        load_cpu,
        limited_by: Limit::of(target_cpu, load_cpu),
        ready_ms,
        first_error: measured.first_error,
    })
}

fn print_row(row: &Row) {
    eprintln!(
        "  {} round {} ({} citizens) {}: {:.0} replies/s{}, p50 {:.2} ms, p99 {:.2} ms, errors {}, timeouts {}, journeys {:?}, peak RSS {:.1} MiB, cpu target {:.2} load {:.2} (limited by {}){}",
        row.channel.as_str(),
        row.round,
        row.citizens,
        row.target,
        row.replies_per_sec,
        row.ratio_to_echo
            .map(|r| format!(" ({:.1} % of echo)", r * 100.0))
            .unwrap_or_default(),
        row.p50_ms,
        row.p99_ms,
        row.errors,
        row.timeouts,
        row.journeys,
        row.peak_rss_mib,
        row.target_cpu,
        row.load_cpu,
        row.limited_by.as_str(),
        row.first_error
            .as_ref()
            .map(|e| format!(", first error: {e}"))
            .unwrap_or_default(),
    );
}

/// The Seva runs of a table, each with its binary's 1-based position in `--seva`.
fn seva_runs(rows: &[Row]) -> Vec<compare::Run<'_>> {
    rows.iter()
        .filter_map(|r| {
            let (binary, database) = r.seva?;
            Some(compare::Run {
                channel: r.channel.as_str(),
                database,
                citizens: r.citizens,
                round: r.round,
                binary: binary + 1,
                replies_per_sec: r.replies_per_sec,
            })
        })
        .collect()
}

/// With several `--seva` binaries: which is which, and each one after the first against it.
fn print_comparisons(binaries: &[PathBuf], rows: &[Row]) {
    if binaries.len() < 2 {
        return;
    }
    let runs = seva_runs(rows);
    println!();
    for (n, b) in binaries.iter().enumerate() {
        println!("seva#{}: {}", n + 1, b.display());
    }
    println!();
    println!(
        "| channel | db | citizens | candidate | rounds | × seva#1 median | geometric mean | min | max | faster in |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for c in compare::compare(&runs) {
        println!(
            "| {} | {} | {} | seva#{} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {}/{} |",
            c.channel,
            c.database,
            c.citizens,
            c.candidate,
            c.ratios.len(),
            c.median,
            c.geometric_mean,
            c.min,
            c.max,
            c.faster_rounds,
            c.ratios.len(),
        );
    }
}

/// The `× echo` cell: echo is 1 against itself; a Seva run without echo in its round has no
/// ratio.
fn ratio_cell(row: &Row) -> String {
    match (row.seva, row.ratio_to_echo) {
        (None, _) => "1".to_owned(),
        (Some(_), Some(x)) => format!("{x:.3}"),
        (Some(_), None) => "–".to_owned(),
    }
}

/// Seva's runs with echo in their round, as the summary needs them.
fn ratio_runs(rows: &[Row]) -> Vec<summary::RatioRun<'_>> {
    rows.iter()
        .filter_map(|r| {
            let (binary, database) = r.seva?;
            Some(summary::RatioRun {
                channel: r.channel.as_str(),
                database,
                binary: binary + 1,
                citizens: r.citizens,
                ratio: r.ratio_to_echo?,
            })
        })
        .collect()
}

/// The median ratio to echo over the rounds of each channel, database, binary and number of
/// citizens (nothing without echo).
fn print_ratio_summary(rows: &[Row]) {
    let summaries = summary::summarize(&ratio_runs(rows));
    if summaries.is_empty() {
        return;
    }
    println!();
    println!("| channel | db | seva | citizens | rounds | × echo median | min | max |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in summaries {
        println!(
            "| {} | {} | #{} | {} | {} | {:.3} | {:.3} | {:.3} |",
            s.channel, s.database, s.binary, s.citizens, s.rounds, s.median, s.min, s.max,
        );
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "| channel | round | citizens | target | replies/s | × echo | p50 ms | p90 ms | p99 ms | max ms | ack p99 ms | errors | timeouts | journeys (C/L/S) | peak RSS MiB | target CPU | load CPU | limited by | ready ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {}/{}/{} | {:.1} | {:.2} | {:.2} | {} | {:.0} |",
            r.channel.as_str(),
            r.round,
            r.citizens,
            r.target,
            r.replies_per_sec,
            ratio_cell(r),
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.ack_p99_ms,
            r.errors,
            r.timeouts,
            r.journeys[0],
            r.journeys[1],
            r.journeys[2],
            r.peak_rss_mib,
            r.target_cpu,
            r.load_cpu,
            r.limited_by.as_str(),
            r.ready_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seva: Option<(usize, &'static str)>, ratio_to_echo: Option<f64>) -> Row {
        Row {
            channel: Channel::Telegram,
            round: 1,
            target: "a label that is not parsed".to_owned(),
            seva,
            citizens: 64,
            replies_per_sec: 1000.0,
            ratio_to_echo,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
            ack_p50_ms: 1.0,
            ack_p99_ms: 1.0,
            errors: 0,
            timeouts: 0,
            unexpected_replies: 0,
            failed_journeys: 0,
            journeys: [0; 3],
            peak_rss_mib: 1.0,
            target_cpu: 1.0,
            load_cpu: 1.0,
            limited_by: Limit::of(1.0, 1.0),
            ready_ms: 1.0,
            first_error: None,
        }
    }

    #[test]
    fn seva_without_echo_in_its_round_has_no_ratio() {
        assert_eq!(ratio_cell(&row(Some((0, "sqlite")), None)), "–");
        assert_eq!(ratio_cell(&row(Some((1, "sqlite")), Some(0.4012))), "0.401");
        assert_eq!(ratio_cell(&row(None, None)), "1");
    }

    #[test]
    fn comparisons_take_the_binary_from_the_run_not_its_label() {
        let rows = [
            row(None, None),
            row(Some((0, "sqlite")), Some(0.3)),
            row(Some((1, "postgres")), Some(0.2)),
        ];
        let runs = seva_runs(&rows);
        let seen: Vec<(usize, &str)> = runs.iter().map(|r| (r.binary, r.database)).collect();
        assert_eq!(seen, [(1, "sqlite"), (2, "postgres")]);
    }
}
