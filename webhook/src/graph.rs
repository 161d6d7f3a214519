//! The Graph API client: send a message, mark one as read, download media.
//!
//! `POST {WHATSAPP_API_URL}/{phone_number_id}/messages` with `Authorization: Bearer <token>`.
//! Errors are classified by Meta's `error.code` (not by HTTP status or subcode, as Meta asks):
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flows::delivery::SendOutcome;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Meta's production Graph API base, version included.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com/v23.0";

/// A secret string (access token, app secret, verify token) that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_owned())
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

/// How long to wait after each throttling code before trying again (the dispatcher may back
/// off further). 130429: number throughput (80 mps by default); 131056: pair rate, about one
/// message per 6 s to one user; 131048: spam rate limit (throttle hard); 4 / 80007: app and
/// WABA call limits; 133016: too many registration attempts.
pub const THROTTLING: [(i64, u64); 6] = [
    (4, 60),
    (80007, 60),
    (130429, 2),
    (131048, 300),
    (131056, 6),
    (133016, 300),
];

/// Codes worth retrying with backoff: unknown/service errors, maintenance, media upload.
pub const TRANSIENT: [i64; 7] = [1, 2, 131000, 131016, 131053, 131057, 133004];

/// The 24-hour customer-service window has closed: send the approved template instead.
pub const REENGAGEMENT: i64 = 131047;

/// Access token expired or invalidated: only the operator can fix it.
pub const TOKEN_EXPIRED: i64 = 190;

/// Auth, permission and account problems that need the operator (besides 190).
fn is_operator_problem(code: i64) -> bool {
    matches!(code, 0 | 3 | 10 | 190 | 200..=299 | 368 | 131005 | 131031)
}

// { "error": { "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
//   "type": "OAuthException", "code": 131056, "error_subcode": 2494071, "fbtrace_id": "A4O5…",
//   "error_data": { "messaging_product": "whatsapp", "details": "Message failed to send …" } } }
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ApiErrorData>,
}

#[derive(Debug, Deserialize)]
struct ApiErrorData {
    #[serde(default)]
    details: Option<String>,
}

// What a send's answer is read for: the first message's id. Every other field is skipped
// without being built, which a `Value` of the whole answer did on every send.
#[derive(Deserialize)]
struct Accepted {
    messages: Vec<AcceptedMessage>,
}

#[derive(Deserialize)]
struct AcceptedMessage {
    id: Option<String>,
}

/// `messages[0].id` of a 2xx answer. An answer of another shape (which Meta does not send) is
/// read as a `Value`, so it yields exactly what the general reading would.
fn accepted_id(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Accepted>(body) {
        Ok(a) => a.messages.into_iter().next().and_then(|m| m.id),
        Err(_) => serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            v.get("messages")?
                .get(0)?
                .get("id")?
                .as_str()
                .map(str::to_owned)
        }),
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Classifies a Graph API answer to a send. Pure, for tests: `status` is the HTTP status,
/// `retry_after` a `Retry-After` header in seconds if there was one.
pub fn classify(status: u16, retry_after: Option<u64>, body: &[u8]) -> SendOutcome {
    if (200..300).contains(&status) {
        // { "messaging_product": "whatsapp", "contacts": [{ "input": "…", "wa_id": "…" }],
        //   "messages": [{ "id": "wamid.HBgL…", "message_status": "accepted" }] }
        let id = accepted_id(body);
        return match id {
            Some(provider_id) if !provider_id.is_empty() => SendOutcome::Sent { provider_id },
            _ => SendOutcome::Transient {
                reason: format!("HTTP {status} without a message id"),
            },
        };
    }
    let api = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let Some((code, api)) = api.and_then(|a| Some((a.code?, a))) else {
        return match status {
            429 => SendOutcome::RetryAfter {
                secs: retry_after.unwrap_or(5).max(1),
            },
            408 | 500..=599 => SendOutcome::Transient {
                reason: format!("HTTP {status}"),
            },
            _ => SendOutcome::Permanent {
                code: format!("http_{status}"),
                reason: format!("HTTP {status}"),
            },
        };
    };
    let reason = {
        let message = api.message.as_deref().unwrap_or("").trim();
        let message = if message.starts_with("(#") {
            message.to_owned()
        } else {
            format!("(#{code}) {message}")
        };
        match api
            .error_data
            .and_then(|d| d.details)
            .filter(|d| !d.trim().is_empty())
        {
            Some(details) => clip(&format!("{} — {}", message.trim(), details.trim()), 300),
            None => clip(message.trim(), 300),
        }
    };
    if let Some((_, secs)) = THROTTLING.iter().find(|(c, _)| *c == code) {
        return SendOutcome::RetryAfter {
            secs: retry_after.unwrap_or(0).max(*secs),
        };
    }
    if TRANSIENT.contains(&code) {
        return SendOutcome::Transient { reason };
    }
    if code == REENGAGEMENT || is_operator_problem(code) || status < 500 {
        return SendOutcome::Permanent {
            code: code.to_string(),
            reason,
        };
    }
    SendOutcome::Transient { reason }
}

/// The WhatsApp Graph API for one business phone number.
#[derive(Clone)]
pub struct GraphClient {
    base_url: String,
    phone_number_id: String,
    token: Secret,
    http: reqwest::Client,
    /// Every send and read receipt goes here: parsed once, not per request (URL parsing was
    /// ~2 % of `serve`'s CPU under load).
    messages: Option<reqwest::Url>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.base_url)
            .field("phone_number_id", &self.phone_number_id)
            .field("token", &self.token)
            .finish()
    }
}

/// Builds the HTTP client: bounded timeouts and a User-Agent (media downloads fail without).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("seva-webhook/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client with static settings")
}

fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn network_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        // Without the URL: media URLs carry signed query strings.
        clip(&to_string_without_url(e), 200)
    }
}

fn to_string_without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<url>");
    }
    s
}

impl GraphClient {
    /// `base_url` is `WHATSAPP_API_URL` including the version (no trailing slash needed).
    pub fn new(
        base_url: impl Into<String>,
        phone_number_id: impl Into<String>,
        token: Secret,
    ) -> GraphClient {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let phone_number_id = phone_number_id.into();
        let messages = reqwest::Url::parse(&format!("{base_url}/{phone_number_id}/messages")).ok();
        GraphClient {
            base_url,
            phone_number_id,
            token,
            http: http_client(),
            messages,
        }
    }

    /// Uses another reqwest client (tests, shared connection pools).
    pub fn with_http(mut self, http: reqwest::Client) -> GraphClient {
        self.http = http;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }

    /// `{base}/{phone_number_id}/messages`.
    pub fn messages_url(&self) -> String {
        format!("{}/{}/messages", self.base_url, self.phone_number_id)
    }

    /// A POST to the messages endpoint. A base URL that does not parse fails here, as a
    /// network error, like any request to it would.
    fn post_messages(&self) -> reqwest::RequestBuilder {
        match &self.messages {
            Some(url) => self.http.post(url.clone()),
            None => self.http.post(self.messages_url()),
        }
    }

    async fn post<B: Serialize + ?Sized>(&self, body: &B) -> SendOutcome {
        let resp = self
            .post_messages()
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return SendOutcome::Transient {
                    reason: network_reason(&e),
                };
            }
        };
        let status = resp.status().as_u16();
        let retry = retry_after(&resp);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return SendOutcome::Transient {
                    reason: network_reason(&e),
                };
            }
        };
        let outcome = classify(status, retry, &bytes);
        if let SendOutcome::Permanent { code, reason } = &outcome {
            if code == "190" {
                tracing::error!(
                    code = %code,
                    "WhatsApp access token expired or invalid: the operator must renew WHATSAPP_ACCESS_TOKEN; sends fail until then"
                );
            } else if code.parse().is_ok_and(is_operator_problem) {
                tracing::error!(code = %code, reason = %reason, "WhatsApp refused Seva's credentials or account: operator action needed");
            }
        }
        outcome
    }

    /// Sends one request body from [`crate::render`]. Never panics, never retries: the
    /// dispatcher decides what to do with the outcome.
    pub async fn send<B: Serialize + ?Sized>(&self, body: &B) -> SendOutcome {
        self.post(body).await
    }

    /// Marks an inbound message (and those before it) as read. Sent directly, not queued; the
    /// error is the classified failure (never `Sent`).
    pub async fn mark_read(&self, wamid: &str) -> Result<(), SendOutcome> {
        // A success answers `{"success": true}`, which has no message id.
        let resp = self
            .post_messages()
            .bearer_auth(self.token.expose())
            .json(&crate::render::render_mark_read(wamid))
            .send()
            .await
            .map_err(|e| SendOutcome::Transient {
                reason: network_reason(&e),
            })?;
        let status = resp.status().as_u16();
        let retry = retry_after(&resp);
        let bytes = resp.bytes().await.map_err(|e| SendOutcome::Transient {
            reason: network_reason(&e),
        })?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(classify(status, retry, &bytes))
    }

    /// Downloads a media object into `dir` as `<media_id>.<ext>` and returns the path.
    /// Two steps: `GET {base}/{media_id}` gives a short-lived URL (5 minutes), then `GET url`
    /// with the same Bearer token. The declared and actual size must stay within `max_bytes`;
    /// the MIME type (parameters ignored) must match one of `allowed` (`image/jpeg`, or
    /// `image/*`); an empty `allowed` accepts any type.
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/media/>
    pub async fn download_media(
        &self,
        media_id: &str,
        dir: &Path,
        max_bytes: u64,
        allowed: &[&str],
    ) -> Result<PathBuf, MediaError> {
        let valid_id = !media_id.is_empty()
            && media_id.len() <= 128
            && !media_id.starts_with('.')
            && media_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_id {
            return Err(MediaError::BadId);
        }
        // { "messaging_product": "whatsapp", "url": "https://lookaside.fbsbx.com/…",
        //   "mime_type": "image/jpeg", "sha256": "81d3…", "file_size": "303833", "id": "2621…" }
        let resp = self
            .http
            .get(format!("{}/{}", self.base_url, media_id))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| MediaError::Network(network_reason(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| MediaError::Network(network_reason(&e)))?;
        if !(200..300).contains(&status) {
            return Err(match classify(status, None, &bytes) {
                SendOutcome::Permanent { code, reason } => MediaError::Api {
                    code,
                    reason,
                    retryable: false,
                },
                SendOutcome::RetryAfter { secs } => MediaError::Api {
                    code: "throttled".into(),
                    reason: format!("retry after {secs}s"),
                    retryable: true,
                },
                SendOutcome::Transient { reason } => MediaError::Api {
                    code: "transient".into(),
                    reason,
                    retryable: true,
                },
                SendOutcome::Sent { .. } => MediaError::Http(status),
            });
        }
        let info: MediaInfo = serde_json::from_slice(&bytes).map_err(|_| MediaError::BadUrl)?;
        let mime = info.mime_type.as_deref().map(base_mime).unwrap_or_default();
        if !mime_allowed(&mime, allowed) {
            return Err(MediaError::MimeNotAllowed(clip(&mime, 60)));
        }
        if let Some(size) = info.file_size.as_ref().and_then(FileSize::bytes)
            && size > max_bytes
        {
            return Err(MediaError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        let url = info
            .url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or(MediaError::BadUrl)?;
        let mut resp = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| MediaError::Network(network_reason(&e)))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(MediaError::Http(status));
        }
        if let Some(len) = resp.content_length()
            && len > max_bytes
        {
            return Err(MediaError::TooLarge {
                size: len,
                max: max_bytes,
            });
        }
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| MediaError::Io(e.kind().to_string()))?;
        let part = dir.join(format!(".{media_id}.part"));
        let path = dir.join(format!("{media_id}.{}", extension(&mime)));
        let result = async {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::File::create(&part)
                .await
                .map_err(|e| MediaError::Io(e.kind().to_string()))?;
            let mut size: u64 = 0;
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| MediaError::Network(network_reason(&e)))?
            {
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(MediaError::TooLarge {
                        size,
                        max: max_bytes,
                    });
                }
                file.write_all(&chunk)
                    .await
                    .map_err(|e| MediaError::Io(e.kind().to_string()))?;
            }
            file.flush()
                .await
                .map_err(|e| MediaError::Io(e.kind().to_string()))?;
            file.sync_all()
                .await
                .map_err(|e| MediaError::Io(e.kind().to_string()))?;
            tokio::fs::rename(&part, &path)
                .await
                .map_err(|e| MediaError::Io(e.kind().to_string()))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        result.map(|()| path)
    }
}

#[derive(Debug, Deserialize)]
struct MediaInfo {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    file_size: Option<FileSize>,
}

/// `file_size` is a string in some answers and a number in others.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileSize {
    Num(u64),
    Str(String),
}

impl FileSize {
    fn bytes(&self) -> Option<u64> {
        match self {
            FileSize::Num(n) => Some(*n),
            FileSize::Str(s) => s.trim().parse().ok(),
        }
    }
}

/// `audio/ogg; codecs=opus` → `audio/ogg`.
fn base_mime(m: &str) -> String {
    m.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn mime_allowed(mime: &str, allowed: &[&str]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    !mime.is_empty()
        && allowed.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            match a.strip_suffix("/*") {
                Some(prefix) => mime.split('/').next() == Some(prefix),
                None => a == mime,
            }
        })
}

/// A file extension for the stored copy.
fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mp4" => "m4a",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => "bin",
    }
}

/// Why a media download failed. [`MediaError::is_retryable`] says whether trying again later
/// (with a fresh URL) may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("media id is not usable")]
    BadId,
    #[error("Graph API error {code}: {reason}")]
    Api {
        code: String,
        reason: String,
        retryable: bool,
    },
    #[error("media download answered HTTP {0}")]
    Http(u16),
    #[error("network: {0}")]
    Network(String),
    #[error("media of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("media type {0:?} is not accepted")]
    MimeNotAllowed(String),
    #[error("media URL missing or invalid")]
    BadUrl,
    #[error("storing media failed: {0}")]
    Io(String),
}

impl MediaError {
    pub fn is_retryable(&self) -> bool {
        match self {
            MediaError::Api { retryable, .. } => *retryable,
            // An expired download URL answers 401/403/404: a fresh one may work.
            MediaError::Http(_)
            | MediaError::Network(_)
            | MediaError::Io(_)
            | MediaError::BadUrl => true,
            MediaError::BadId | MediaError::TooLarge { .. } | MediaError::MimeNotAllowed(_) => {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed reading of a send's answer finds the same id as reading the whole answer
    /// as a `Value`, for Meta's answer and for shapes it never sends.
    #[test]
    fn accepted_id_reads_what_a_value_would() {
        let by_value = |body: &str| -> Option<String> {
            let v: Value = serde_json::from_str(body).ok()?;
            v.get("messages")?
                .get(0)?
                .get("id")?
                .as_str()
                .map(str::to_owned)
        };
        let bodies = [
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"+919812345678","wa_id":"919812345678"}],"messages":[{"id":"wamid.HBgL","message_status":"accepted"}]}"#,
            r#"{"messages":[{"id":"a"},{"id":"b"}]}"#,
            r#"{"messages":[{"id":"a"}],"messages":[{"id":"b"}]}"#,
            r#"{"messages":[{"id":"a","id":"b"}]}"#,
            r#"{"messages":[{"id":null}]}"#,
            r#"{"messages":[{"id":7}]}"#,
            r#"{"messages":[{}]}"#,
            r#"{"messages":[]}"#,
            r#"{"messages":{"id":"a"}}"#,
            r#"{"messages":["a"]}"#,
            r#"{"messages":null}"#,
            r#"{}"#,
            r#"[]"#,
            "not json",
            "",
        ];
        for body in bodies {
            assert_eq!(accepted_id(body.as_bytes()), by_value(body), "{body}");
        }
        assert_eq!(
            accepted_id(bodies[0].as_bytes()).as_deref(),
            Some("wamid.HBgL")
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("EAAG-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let c = GraphClient::new("http://127.0.0.1:1/v23.0/", "123", s);
        assert!(!format!("{c:?}").contains("very-secret"));
        assert_eq!(c.messages_url(), "http://127.0.0.1:1/v23.0/123/messages");
    }

    #[test]
    fn mime_rules() {
        assert_eq!(base_mime("audio/ogg; codecs=opus"), "audio/ogg");
        assert!(mime_allowed("image/png", &["image/*"]));
        assert!(mime_allowed(
            "application/pdf",
            &["image/*", "application/pdf"]
        ));
        assert!(!mime_allowed(
            "application/zip",
            &["image/*", "application/pdf"]
        ));
        assert!(!mime_allowed("", &["image/*"]));
        assert!(mime_allowed("anything/else", &[]));
    }
}
