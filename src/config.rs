//! Settings, from environment variables and an optional TOML file (`SEVA_CONFIG`).
//!
//! Every setting has one name, the environment variable of spec §5. The TOML file uses the same
//! names in lowercase (`seva_listen = "0.0.0.0:8080"`, `telegram_bot_token = "…"`); a variable
//! set in the environment wins over the file. An unknown key in the file is an error, so a typo
//! does not silently fall back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use crate::client_ip::TrustedProxies;

/// A value that must never reach a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (a signature, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything `seva` can be told. `Debug` hides the database password.
#[derive(Clone)]
pub struct Config {
    /// `SEVA_LISTEN`: the HTTP listen address (webhooks, officer API, health).
    pub listen: SocketAddr,
    /// `SEVA_DATABASE_URL`: `sqlite://…` (the file and its directory are created) or
    /// `postgres://…` (shared by any number of `seva serve` replicas).
    pub database_url: String,
    /// `SEVA_TIMEZONE`: the clock citizens live by, for "today" and "yesterday".
    pub timezone: Tz,
    /// `SEVA_STATIONS_CSV`: districts and police stations (spec §4).
    pub stations_csv: PathBuf,
    /// `SEVA_MEDIA_DIR`: where downloaded attachments are kept.
    pub media_dir: PathBuf,
    /// `SEVA_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `SEVA_SHUTDOWN_GRACE`: seconds to drain in-flight work after SIGTERM.
    pub shutdown_grace: Duration,
    /// `SEVA_DRAIN_DELAY`: seconds (fractions allowed) `/readyz` answers 503 after SIGTERM
    /// before the listener closes, so a load balancer probing it stops sending first. Part of
    /// the grace period (at most half of it); skipped when nothing has probed `/readyz`.
    pub drain_delay: Duration,
    /// The WhatsApp Cloud API channel; `None` when `WHATSAPP_APP_SECRET` is unset.
    pub whatsapp: Option<WhatsappConfig>,
    /// The Telegram channel; `None` when `TELEGRAM_BOT_TOKEN` is unset.
    pub telegram: Option<TelegramConfig>,
    /// The back-office event webhook; `None` when `SEVA_EVENTS_URL` is unset.
    pub events: Option<EventsConfig>,
    /// What Seva keeps, for how long, and anonymous tips.
    pub privacy: PrivacyConfig,
    /// Abuse limits per citizen and per client address.
    pub limits: LimitsConfig,
}

/// Retention of personal data and anonymous tips.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyConfig {
    /// `SEVA_PAYLOAD_RETENTION_DAYS`: raw inbox payloads and outbox contents are blanked this
    /// many days after they were handled (processed, sent or given up); the provider message
    /// ids stay, so a late redelivery is still recognised. Unattached WhatsApp media goes too.
    pub payload_retention_days: u32,
    /// `SEVA_REPORT_RETENTION_DAYS`: `seva report purge` without `--older-than` removes the
    /// personal data of reports closed or returned this many days ago.
    pub report_retention_days: u32,
    /// `SEVA_ANONYMOUS_CATEGORIES`: comma-separated complaint categories (e.g.
    /// `drugs_liquor_gambling`) a citizen may file as an anonymous tip; empty, none.
    pub anonymous_categories: Vec<String>,
    /// `SEVA_PSEUDONYM_KEY`: the HMAC key of the pseudonyms officers see for anonymous tips
    /// (required with `SEVA_ANONYMOUS_CATEGORIES`). Changing it changes every new pseudonym.
    pub pseudonym_key: Option<Secret>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            payload_retention_days: 30,
            report_retention_days: 365,
            anonymous_categories: Vec::new(),
            pseudonym_key: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url_password(&self.database_url))
            .field("timezone", &self.timezone)
            .field("stations_csv", &self.stations_csv)
            .field("media_dir", &self.media_dir)
            .field("log_format", &self.log_format)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("drain_delay", &self.drain_delay)
            .field("whatsapp", &self.whatsapp)
            .field("telegram", &self.telegram)
            .field("events", &self.events)
            .field("privacy", &self.privacy)
            .field("limits", &self.limits)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; other URLs unchanged.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct WhatsappConfig {
    /// `WHATSAPP_APP_SECRET`: verifies `X-Hub-Signature-256` on every notification.
    pub app_secret: Secret,
    /// `WHATSAPP_VERIFY_TOKEN`: echoed back in the webhook GET handshake.
    pub verify_token: Secret,
    /// `WHATSAPP_ACCESS_TOKEN`: the Graph API bearer token.
    pub access_token: Secret,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the id of the number Seva sends from.
    pub phone_number_id: String,
    /// `WHATSAPP_API_URL`: Graph API base including the version; Seva POSTs to
    /// `{api_url}/{phone_number_id}/messages`.
    pub api_url: String,
    /// `SEVA_WHATSAPP_MPS`: messages per second the number may send.
    pub mps: u32,
    /// `SEVA_WHATSAPP_TEMPLATE_HI`: approved status template (language `hi`) for pushes outside
    /// the 24-hour window; unset, such pushes wait until the citizen writes again.
    pub template_hi: Option<String>,
    /// `SEVA_WHATSAPP_TEMPLATE_EN`: the same, language `en`.
    pub template_en: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// `TELEGRAM_BOT_TOKEN`: the bot token from BotFather.
    pub bot_token: Secret,
    /// `TELEGRAM_API_URL`: Bot API base; Seva calls `{api_url}/bot{token}/{method}`.
    pub api_url: String,
    /// `TELEGRAM_WEBHOOK_URL`: set → webhook mode at this public URL; unset → long polling.
    pub webhook_url: Option<String>,
    /// `TELEGRAM_WEBHOOK_SECRET`: the `X-Telegram-Bot-Api-Secret-Token` required in webhook mode
    /// (Seva refuses to start in webhook mode without it).
    pub webhook_secret: Option<Secret>,
    /// `SEVA_TELEGRAM_MPS`: messages per second overall.
    pub mps: u32,
    /// `SEVA_TELEGRAM_CHAT_MPS`: messages per second to one chat (a short burst is allowed).
    pub chat_mps: u32,
}

#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// `SEVA_EVENTS_URL`: where report events are POSTed.
    pub url: String,
    /// `SEVA_EVENTS_SECRET`: the HMAC-SHA256 key of `X-Seva-Signature`.
    pub secret: Secret,
}

/// Abuse limits (`crate::limits`, `crate::officer::throttle`). A limit of 0 is off.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// `SEVA_CITIZEN_MESSAGES_PER_MINUTE`: messages one citizen may send in a minute; later
    /// ones in that minute are stored but not answered (one polite reply says so).
    pub citizen_messages_per_minute: u32,
    /// `SEVA_CITIZEN_REPORTS_PER_DAY`: new reports one citizen may file in 24 hours; the next
    /// report journey is refused at its start.
    pub citizen_reports_per_day: u32,
    /// `SEVA_OFFICER_AUTH_FAILURES`: wrong officer tokens one client address may present in
    /// `officer_auth_window` before its requests are answered 429 for a window.
    pub officer_auth_failures: u32,
    /// `SEVA_OFFICER_AUTH_WINDOW`: seconds (fractions allowed) failures are counted over, and
    /// how long the penalty lasts.
    pub officer_auth_window: Duration,
    /// `SEVA_TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            citizen_messages_per_minute: 20,
            citizen_reports_per_day: 5,
            officer_auth_failures: 10,
            officer_auth_window: Duration::from_secs(300),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// A setting that could not be used. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn error(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Every setting name, and whether its value is secret.
const KEYS: &[(&str, bool)] = &[
    ("SEVA_LISTEN", false),
    ("SEVA_DATABASE_URL", false),
    ("SEVA_TIMEZONE", false),
    ("SEVA_STATIONS_CSV", false),
    ("SEVA_MEDIA_DIR", false),
    ("SEVA_LOG_FORMAT", false),
    ("SEVA_SHUTDOWN_GRACE", false),
    ("SEVA_DRAIN_DELAY", false),
    ("WHATSAPP_APP_SECRET", true),
    ("WHATSAPP_VERIFY_TOKEN", true),
    ("WHATSAPP_ACCESS_TOKEN", true),
    ("WHATSAPP_PHONE_NUMBER_ID", false),
    ("WHATSAPP_API_URL", false),
    ("SEVA_WHATSAPP_MPS", false),
    ("SEVA_WHATSAPP_TEMPLATE_HI", false),
    ("SEVA_WHATSAPP_TEMPLATE_EN", false),
    ("TELEGRAM_BOT_TOKEN", true),
    ("TELEGRAM_API_URL", false),
    ("TELEGRAM_WEBHOOK_URL", false),
    ("TELEGRAM_WEBHOOK_SECRET", true),
    ("SEVA_TELEGRAM_MPS", false),
    ("SEVA_TELEGRAM_CHAT_MPS", false),
    ("SEVA_EVENTS_URL", false),
    ("SEVA_EVENTS_SECRET", true),
    ("SEVA_PAYLOAD_RETENTION_DAYS", false),
    ("SEVA_REPORT_RETENTION_DAYS", false),
    ("SEVA_ANONYMOUS_CATEGORIES", false),
    ("SEVA_PSEUDONYM_KEY", true),
    ("SEVA_CITIZEN_MESSAGES_PER_MINUTE", false),
    ("SEVA_CITIZEN_REPORTS_PER_DAY", false),
    ("SEVA_OFFICER_AUTH_FAILURES", false),
    ("SEVA_OFFICER_AUTH_WINDOW", false),
    ("SEVA_TRUSTED_PROXIES", false),
];

fn is_secret(key: &str) -> bool {
    KEYS.iter().any(|(k, secret)| *k == key && *secret)
}

/// Where settings come from: the environment first, then the TOML file.
struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: BTreeMap<String, String>,
}

impl Sources<'_> {
    /// The value of `key`; empty strings count as unset so `VAR=` turns a setting off.
    fn get(&self, key: &str) -> Option<String> {
        (self.env)(key)
            .or_else(|| self.file.get(&key.to_ascii_lowercase()).cloned())
            .filter(|v| !v.trim().is_empty())
    }

    fn or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_owned())
    }

    fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(Secret)
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                if is_secret(key) {
                    error(key, "invalid value")
                } else {
                    error(key, format!("invalid value {v:?}"))
                }
            }),
        }
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let key = "SEVA_CONFIG";
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| error(key, format!("{}: {e}", path.display())))?;
    let mut out = BTreeMap::new();
    for (name, value) in table {
        if !KEYS.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name))
            || name != name.to_ascii_lowercase()
        {
            return Err(error(
                key,
                format!("{}: unknown setting `{name}`", path.display()),
            ));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(error(
                    key,
                    format!("{}: `{name}` must be a plain value", path.display()),
                ));
            }
        };
        out.insert(name, value);
    }
    Ok(out)
}

impl Config {
    /// Reads the process environment (and `SEVA_CONFIG` when set).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::load(&|key| std::env::var(key).ok())
    }

    /// Reads settings through `env`, so tests need not touch the process environment.
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match env("SEVA_CONFIG").filter(|p| !p.trim().is_empty()) {
            Some(path) => read_file(Path::new(&path))?,
            None => BTreeMap::new(),
        };
        let src = Sources { env, file };

        let timezone = src.or("SEVA_TIMEZONE", "Asia/Kolkata");
        let timezone: Tz = timezone
            .parse()
            .map_err(|_| error("SEVA_TIMEZONE", format!("unknown time zone {timezone:?}")))?;
        let log_format = match src.or("SEVA_LOG_FORMAT", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(error(
                    "SEVA_LOG_FORMAT",
                    format!("{other:?} is not `text` or `json`"),
                ));
            }
        };

        Ok(Config {
            listen: src.parse("SEVA_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: src.or("SEVA_DATABASE_URL", "sqlite://./data/seva.db"),
            timezone,
            stations_csv: src
                .or("SEVA_STATIONS_CSV", "config/stations.example.csv")
                .into(),
            media_dir: src.or("SEVA_MEDIA_DIR", "./data/media").into(),
            log_format,
            shutdown_grace: Duration::from_secs(src.parse("SEVA_SHUTDOWN_GRACE", 20u64)?),
            drain_delay: seconds(&src, "SEVA_DRAIN_DELAY", 2.0)?,
            whatsapp: whatsapp(&src)?,
            telegram: telegram(&src)?,
            events: events(&src)?,
            privacy: privacy(&src)?,
            limits: limits(&src)?,
        })
    }
}

fn required(src: &Sources<'_>, key: &str, because: &str) -> Result<String, ConfigError> {
    src.get(key)
        .ok_or_else(|| error(key, format!("required when {because} is set")))
}

fn whatsapp(src: &Sources<'_>) -> Result<Option<WhatsappConfig>, ConfigError> {
    let Some(app_secret) = src.secret("WHATSAPP_APP_SECRET") else {
        return Ok(None);
    };
    let on = "WHATSAPP_APP_SECRET";
    Ok(Some(WhatsappConfig {
        app_secret,
        verify_token: Secret(required(src, "WHATSAPP_VERIFY_TOKEN", on)?),
        access_token: Secret(required(src, "WHATSAPP_ACCESS_TOKEN", on)?),
        phone_number_id: required(src, "WHATSAPP_PHONE_NUMBER_ID", on)?,
        api_url: src.or("WHATSAPP_API_URL", "https://graph.facebook.com/v23.0"),
        mps: positive(src, "SEVA_WHATSAPP_MPS", 80)?,
        template_hi: src.get("SEVA_WHATSAPP_TEMPLATE_HI"),
        template_en: src.get("SEVA_WHATSAPP_TEMPLATE_EN"),
    }))
}

fn telegram(src: &Sources<'_>) -> Result<Option<TelegramConfig>, ConfigError> {
    let Some(bot_token) = src.secret("TELEGRAM_BOT_TOKEN") else {
        return Ok(None);
    };
    let webhook_url = src.get("TELEGRAM_WEBHOOK_URL");
    let webhook_secret = src.secret("TELEGRAM_WEBHOOK_SECRET");
    if webhook_url.is_some() && webhook_secret.is_none() {
        return Err(error(
            "TELEGRAM_WEBHOOK_SECRET",
            "required when TELEGRAM_WEBHOOK_URL is set",
        ));
    }
    // What setWebhook accepts as `secret_token` (shared/spec/protocol-facts.md §2.3).
    if let Some(secret) = &webhook_secret
        && !crate::channels::telegram::valid_secret(secret.expose())
    {
        return Err(error(
            "TELEGRAM_WEBHOOK_SECRET",
            "must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
        ));
    }
    Ok(Some(TelegramConfig {
        bot_token,
        api_url: src.or("TELEGRAM_API_URL", "https://api.telegram.org"),
        webhook_url,
        webhook_secret,
        mps: positive(src, "SEVA_TELEGRAM_MPS", 30)?,
        chat_mps: positive(src, "SEVA_TELEGRAM_CHAT_MPS", 1)?,
    }))
}

fn events(src: &Sources<'_>) -> Result<Option<EventsConfig>, ConfigError> {
    let Some(url) = src.get("SEVA_EVENTS_URL") else {
        return Ok(None);
    };
    let secret = src
        .secret("SEVA_EVENTS_SECRET")
        .ok_or_else(|| error("SEVA_EVENTS_SECRET", "required when SEVA_EVENTS_URL is set"))?;
    Ok(Some(EventsConfig { url, secret }))
}

fn privacy(src: &Sources<'_>) -> Result<PrivacyConfig, ConfigError> {
    let defaults = PrivacyConfig::default();
    let mut anonymous_categories = Vec::new();
    for category in src
        .or("SEVA_ANONYMOUS_CATEGORIES", "")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if !flows::engine::COMPLAINT_CATEGORIES.contains(&category) {
            return Err(error(
                "SEVA_ANONYMOUS_CATEGORIES",
                format!(
                    "{category:?} is not a complaint category (one of {})",
                    flows::engine::COMPLAINT_CATEGORIES.join(", ")
                ),
            ));
        }
        if !anonymous_categories.iter().any(|c| c == category) {
            anonymous_categories.push(category.to_owned());
        }
    }
    let pseudonym_key = src.secret("SEVA_PSEUDONYM_KEY");
    if !anonymous_categories.is_empty() {
        match &pseudonym_key {
            None => {
                return Err(error(
                    "SEVA_PSEUDONYM_KEY",
                    "required when SEVA_ANONYMOUS_CATEGORIES is set",
                ));
            }
            // Short keys make pseudonyms guessable by trying every citizen id.
            Some(key) if key.expose().len() < 16 => {
                return Err(error(
                    "SEVA_PSEUDONYM_KEY",
                    "must be at least 16 characters",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(PrivacyConfig {
        payload_retention_days: positive(
            src,
            "SEVA_PAYLOAD_RETENTION_DAYS",
            defaults.payload_retention_days,
        )?,
        report_retention_days: positive(
            src,
            "SEVA_REPORT_RETENTION_DAYS",
            defaults.report_retention_days,
        )?,
        anonymous_categories,
        pseudonym_key,
    })
}

fn limits(src: &Sources<'_>) -> Result<LimitsConfig, ConfigError> {
    let d = LimitsConfig::default();
    let window = seconds(
        src,
        "SEVA_OFFICER_AUTH_WINDOW",
        d.officer_auth_window.as_secs_f64(),
    )?;
    if window.is_zero() {
        return Err(error(
            "SEVA_OFFICER_AUTH_WINDOW",
            "must be more than 0 seconds",
        ));
    }
    let key = "SEVA_TRUSTED_PROXIES";
    Ok(LimitsConfig {
        citizen_messages_per_minute: src.parse(
            "SEVA_CITIZEN_MESSAGES_PER_MINUTE",
            d.citizen_messages_per_minute,
        )?,
        citizen_reports_per_day: src
            .parse("SEVA_CITIZEN_REPORTS_PER_DAY", d.citizen_reports_per_day)?,
        officer_auth_failures: src.parse("SEVA_OFFICER_AUTH_FAILURES", d.officer_auth_failures)?,
        officer_auth_window: window,
        trusted_proxies: src
            .or(key, "")
            .parse()
            .map_err(|e: crate::client_ip::BadProxy| error(key, e.to_string()))?,
    })
}

/// A duration in seconds, fractions allowed (`0.5`).
fn seconds(src: &Sources<'_>, key: &str, default: f64) -> Result<Duration, ConfigError> {
    let secs: f64 = src.parse(key, default)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| error(key, "must be a number of seconds, 0 or more"))
}

fn positive(src: &Sources<'_>, key: &str, default: u32) -> Result<u32, ConfigError> {
    match src.parse(key, default)? {
        0 => Err(error(key, "must be at least 1")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_hides_the_database_password() {
        assert_eq!(
            super::redact_url_password("postgres://seva:hunter2@db:5432/seva"),
            "postgres://seva:***@db:5432/seva"
        );
        assert_eq!(
            super::redact_url_password("sqlite://./data/seva.db"),
            "sqlite://./data/seva.db"
        );
        assert_eq!(
            super::redact_url_password("postgres://seva@db/x"),
            "postgres://seva@db/x"
        );
    }

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(&move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./data/seva.db");
        assert_eq!(c.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(c.stations_csv, PathBuf::from("config/stations.example.csv"));
        assert_eq!(c.shutdown_grace, Duration::from_secs(20));
        assert_eq!(c.drain_delay, Duration::from_secs(2));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.whatsapp.is_none() && c.telegram.is_none() && c.events.is_none());
    }

    #[test]
    fn secrets_never_print() {
        let c = load(&[
            ("TELEGRAM_BOT_TOKEN", "123:very-secret"),
            ("SEVA_EVENTS_URL", "http://127.0.0.1:9/events"),
            ("SEVA_EVENTS_SECRET", "hmac-key"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("hmac-key"),
            "{shown}"
        );
        assert_eq!(c.telegram.unwrap().bot_token.expose(), "123:very-secret");
    }

    #[test]
    fn whatsapp_needs_its_companions_and_errors_hide_secrets() {
        let err = load(&[("WHATSAPP_APP_SECRET", "s3cr3t")]).unwrap_err();
        assert_eq!(err.key, "WHATSAPP_VERIFY_TOKEN");
        assert!(!err.to_string().contains("s3cr3t"));
        let err = load(&[("TELEGRAM_BOT_TOKEN", "t"), ("SEVA_TELEGRAM_MPS", "lots")]).unwrap_err();
        assert_eq!(err.key, "SEVA_TELEGRAM_MPS");
    }

    #[test]
    fn the_drain_delay_takes_fractions_of_a_second() {
        let c = load(&[("SEVA_DRAIN_DELAY", "0.25")]).unwrap();
        assert_eq!(c.drain_delay, Duration::from_millis(250));
        assert_eq!(
            load(&[("SEVA_DRAIN_DELAY", "0")]).unwrap().drain_delay,
            Duration::ZERO
        );
        let err = load(&[("SEVA_DRAIN_DELAY", "-1")]).unwrap_err();
        assert_eq!(err.key, "SEVA_DRAIN_DELAY");
    }

    #[test]
    fn anonymous_tips_need_known_categories_and_a_pseudonym_key() {
        let c = load(&[]).unwrap();
        assert_eq!(c.privacy, PrivacyConfig::default());
        assert_eq!(c.privacy.payload_retention_days, 30);
        let err = load(&[("SEVA_ANONYMOUS_CATEGORIES", "drugs_liquor_gambling")]).unwrap_err();
        assert_eq!(err.key, "SEVA_PSEUDONYM_KEY");
        let err = load(&[
            ("SEVA_ANONYMOUS_CATEGORIES", "drugs_liquor_gambling, casino"),
            ("SEVA_PSEUDONYM_KEY", "a-long-enough-pseudonym-key"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("\"casino\""), "{err}");
        let err = load(&[
            ("SEVA_ANONYMOUS_CATEGORIES", "other"),
            ("SEVA_PSEUDONYM_KEY", "short"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("short"), "{err}");
        let c = load(&[
            (
                "SEVA_ANONYMOUS_CATEGORIES",
                " drugs_liquor_gambling ,other,other",
            ),
            ("SEVA_PSEUDONYM_KEY", "a-long-enough-pseudonym-key"),
            ("SEVA_PAYLOAD_RETENTION_DAYS", "7"),
        ])
        .unwrap();
        assert_eq!(
            c.privacy.anonymous_categories,
            ["drugs_liquor_gambling", "other"]
        );
        assert_eq!(c.privacy.payload_retention_days, 7);
        assert!(!format!("{c:?}").contains("a-long-enough"));
        let err = load(&[("SEVA_REPORT_RETENTION_DAYS", "0")]).unwrap_err();
        assert_eq!(err.key, "SEVA_REPORT_RETENTION_DAYS");
    }

    #[test]
    fn limits_default_on_and_zero_turns_one_off() {
        let c = load(&[]).unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.limits.citizen_messages_per_minute, 20);
        assert_eq!(c.limits.citizen_reports_per_day, 5);
        assert!(c.limits.trusted_proxies.is_empty());
        let c = load(&[
            ("SEVA_CITIZEN_MESSAGES_PER_MINUTE", "0"),
            ("SEVA_CITIZEN_REPORTS_PER_DAY", "2"),
            ("SEVA_OFFICER_AUTH_WINDOW", "1.5"),
            ("SEVA_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ])
        .unwrap();
        assert_eq!(c.limits.citizen_messages_per_minute, 0);
        assert_eq!(c.limits.citizen_reports_per_day, 2);
        assert_eq!(c.limits.officer_auth_window, Duration::from_millis(1500));
        assert!(
            c.limits
                .trusted_proxies
                .contains("10.1.2.3".parse().unwrap())
        );
        let err = load(&[("SEVA_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")]).unwrap_err();
        assert_eq!(err.key, "SEVA_TRUSTED_PROXIES");
        assert!(err.message.contains("proxy.local"), "{err}");
        let err = load(&[("SEVA_OFFICER_AUTH_WINDOW", "0")]).unwrap_err();
        assert_eq!(err.key, "SEVA_OFFICER_AUTH_WINDOW");
        let err = load(&[("SEVA_CITIZEN_REPORTS_PER_DAY", "-1")]).unwrap_err();
        assert_eq!(err.key, "SEVA_CITIZEN_REPORTS_PER_DAY");
    }

    #[test]
    fn telegram_webhook_mode_requires_a_secret() {
        let err = load(&[
            ("TELEGRAM_BOT_TOKEN", "t"),
            ("TELEGRAM_WEBHOOK_URL", "https://x.example/tg"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "TELEGRAM_WEBHOOK_SECRET");
    }

    #[test]
    fn toml_file_uses_lowercase_names_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seva.toml");
        std::fs::write(
            &path,
            "seva_listen = \"0.0.0.0:9000\"\nseva_shutdown_grace = 5\nseva_timezone = \"UTC\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = load(&[("SEVA_CONFIG", p), ("SEVA_TIMEZONE", "Asia/Kolkata")]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.timezone, chrono_tz::Asia::Kolkata);

        std::fs::write(&path, "seva_lisen = \"0.0.0.0:9000\"\n").unwrap();
        let err = load(&[("SEVA_CONFIG", p)]).unwrap_err();
        assert!(err.to_string().contains("seva_lisen"), "{err}");
    }
}
