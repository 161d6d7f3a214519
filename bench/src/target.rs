//! The process under load (`seva serve` or the echo gateway): spawned as a child, optionally
//! pinned to a core with `taskset`, watched through `/proc/<pid>`, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials the fake providers accept and the targets are configured with.
pub const APP_SECRET: &str = "load-app-secret";
pub const VERIFY_TOKEN: &str = "load-verify-token";
pub const ACCESS_TOKEN: &str = "EAAG-load-access-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const BOT_TOKEN: &str = "4242:seva-load";
pub const WEBHOOK_SECRET: &str = "load_Webhook-secret";

/// Pacing far above any load this tool can make (the fakes have no limits).
const NO_PACING: &str = "1000000";

/// Environment a target must not inherit (it would change what is measured).
const SCRUB: [&str; 22] = [
    "SEVA_CONFIG",
    "SEVA_LISTEN",
    "SEVA_DATABASE_URL",
    "SEVA_TIMEZONE",
    "SEVA_STATIONS_CSV",
    "SEVA_MEDIA_DIR",
    "SEVA_LOG_FORMAT",
    "SEVA_SHUTDOWN_GRACE",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_API_URL",
    "SEVA_WHATSAPP_MPS",
    "SEVA_WHATSAPP_TEMPLATE_HI",
    "SEVA_WHATSAPP_TEMPLATE_EN",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_URL",
    "TELEGRAM_WEBHOOK_URL",
    "TELEGRAM_WEBHOOK_SECRET",
    "SEVA_EVENTS_URL",
    "SEVA_EVENTS_SECRET",
];

/// What to start.
pub struct Spawn {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `taskset -c <core>`.
    pub pin: Option<String>,
    /// stderr goes here.
    pub log: PathBuf,
    pub listen: SocketAddr,
}

/// `seva serve` with both channels on `fake`, listening on `listen`.
pub struct SevaOptions<'a> {
    pub binary: &'a Path,
    pub database_url: &'a str,
    pub stations_csv: &'a Path,
    pub media_dir: &'a Path,
    pub graph_url: String,
    pub telegram_url: String,
    /// Telegram by `getUpdates` long polling instead of the webhook.
    pub telegram_polling: bool,
    pub rust_log: Option<&'a str>,
}

impl SevaOptions<'_> {
    pub fn spawn(&self, listen: SocketAddr, pin: Option<String>, log: PathBuf) -> Spawn {
        let mut env: Vec<(String, String)> = [
            ("SEVA_LISTEN", listen.to_string()),
            ("SEVA_DATABASE_URL", self.database_url.to_owned()),
            ("SEVA_STATIONS_CSV", self.stations_csv.display().to_string()),
            ("SEVA_MEDIA_DIR", self.media_dir.display().to_string()),
            ("SEVA_SHUTDOWN_GRACE", "3".to_owned()),
            ("WHATSAPP_APP_SECRET", APP_SECRET.to_owned()),
            ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
            ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
            ("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID.to_owned()),
            ("WHATSAPP_API_URL", self.graph_url.clone()),
            ("SEVA_WHATSAPP_MPS", NO_PACING.to_owned()),
            ("TELEGRAM_BOT_TOKEN", BOT_TOKEN.to_owned()),
            ("TELEGRAM_API_URL", self.telegram_url.clone()),
            ("SEVA_TELEGRAM_MPS", NO_PACING.to_owned()),
            ("SEVA_TELEGRAM_CHAT_MPS", NO_PACING.to_owned()),
            // Virtual citizens type far faster than people: the abuse limits would hold them
            // back and measure the limiter instead of the gateway.
            ("SEVA_CITIZEN_MESSAGES_PER_MINUTE", "0".to_owned()),
            ("SEVA_CITIZEN_REPORTS_PER_DAY", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !self.telegram_polling {
            env.push((
                "TELEGRAM_WEBHOOK_URL".to_owned(),
                format!("http://{listen}/webhook/telegram"),
            ));
            env.push((
                "TELEGRAM_WEBHOOK_SECRET".to_owned(),
                WEBHOOK_SECRET.to_owned(),
            ));
        }
        if let Some(filter) = self.rust_log {
            env.push(("RUST_LOG".to_owned(), filter.to_owned()));
        }
        Spawn {
            program: self.binary.to_owned(),
            args: vec!["serve".to_owned()],
            env,
            pin,
            log,
            listen,
        }
    }
}

/// A running target.
pub struct Target {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// From spawn to the first `200` from `/readyz`.
    pub ready_in: Duration,
    log: PathBuf,
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr()
}

impl Target {
    pub async fn start(spawn: Spawn) -> Result<Target, String> {
        let log = std::fs::File::create(&spawn.log).map_err(|e| format!("log file: {e}"))?;
        let mut command = match &spawn.pin {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core).arg(&spawn.program);
                c
            }
            None => Command::new(&spawn.program),
        };
        command
            .args(&spawn.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for key in SCRUB {
            command.env_remove(key);
        }
        if !spawn.env.iter().any(|(k, _)| k == "RUST_LOG") {
            command.env_remove("RUST_LOG");
        }
        command.envs(spawn.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spawn.program.display()))?;
        let pid = child.id();
        let mut target = Target {
            child,
            pid,
            addr: spawn.listen,
            ready_in: Duration::ZERO,
            log: spawn.log,
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let url = format!("http://{}/readyz", target.addr);
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                target.ready_in = started.elapsed();
                return Ok(target);
            }
            if let Ok(Some(status)) = target.child.try_wait() {
                return Err(format!(
                    "{} exited before it was ready ({status}); its log:\n{}",
                    spawn.program.display(),
                    target.log_tail(30)
                ));
            }
            if Instant::now() > deadline {
                target.kill();
                return Err(format!("{} not ready after 60 s", spawn.program.display()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The last `n` lines of the target's stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Peak resident set size (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then up to 15 s for a clean exit, then SIGKILL.
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU seconds from a `/proc/…/stat` file (clock ticks of 1/100 s).
pub fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) may contain spaces; fields after its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Pins this process (every thread it has now, and so every thread it starts later) to
/// `cores` with `taskset`.
pub fn pin_self(cores: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset failed: {status}"))
    }
}

/// A fresh PostgreSQL database under `base` (`postgres://user@host:port`), created with
/// `psql`; returns its URL.
pub fn create_postgres_db(base: &str, name: &str) -> Result<String, String> {
    psql(base, &format!("create database {name}"))?;
    Ok(format!("{}/{name}", base.trim_end_matches('/')))
}

pub fn drop_postgres_db(base: &str, name: &str) {
    let _ = psql(
        base,
        &format!("drop database if exists {name} with (force)"),
    );
}

fn psql(base: &str, sql: &str) -> Result<(), String> {
    let url = format!("{}/postgres", base.trim_end_matches('/'));
    let out = Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak_rss_and_cpu_time() {
        let pid = std::process::id();
        assert!(proc_status_kib(pid, "VmHWM:").unwrap() > 0);
        assert!(cpu_seconds("/proc/self/stat").unwrap() >= 0.0);
    }
}
