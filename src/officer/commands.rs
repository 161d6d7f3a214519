//! The officer commands of the shell: `seva officer add|revoke` and `seva report
//! show|set-status|transfer|purge`. Results go to stdout (for `officer add`: only the token, so a
//! script can capture it), everything else to stderr. `seva report …` acts as `cli` with the
//! whole state in scope, and is audited like the API.

use flows::reference::Reference;

use super::auth::{hash_token, new_token};
use super::model::{ReportDetailJson, rfc3339};
use crate::config::Config;
use crate::lifecycle::{self, Change};
use crate::store::{Actor, ChangeFailure, Changed, Notices, Scope, Store};
use crate::{Error, stations};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn reference(typed: &str) -> Result<Reference, Error> {
    use flows::reference::ReferenceError;
    Reference::parse(typed).map_err(|e| {
        Error::Usage(match e {
            ReferenceError::Typo => {
                format!("{typed:?} has a typo: one character is wrong or two are swapped")
            }
            ReferenceError::Malformed => {
                format!("{typed:?} is not a reference (like C-7K3Q-9XM4-R)")
            }
        })
    })
}

fn refused(f: ChangeFailure) -> Error {
    match f {
        ChangeFailure::Store(e) => Error::Store(e),
        other => Error::Usage(other.to_string()),
    }
}

/// `seva officer add --name NAME --scope SCOPE`: prints the new token, and only it, on stdout.
pub async fn officer_add(
    config: &Config,
    name: &str,
    scope: &str,
    expires_in_days: Option<u32>,
) -> Result<(), Error> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Usage(
            "--name needs a name (at most 100 characters)".to_owned(),
        ));
    }
    let scope = Scope::parse(scope).ok_or_else(|| {
        Error::Usage(format!(
            "--scope {scope:?} is not station:<id>, district:<id> or state"
        ))
    })?;
    let directory = stations::load(&config.stations_csv)?;
    match &scope {
        Scope::State => {}
        Scope::District(id) if directory.district(id).is_none() => {
            return Err(Error::Usage(format!(
                "district {id:?} is not in {}",
                config.stations_csv.display()
            )));
        }
        Scope::Station(id) if directory.station(id).is_none() => {
            return Err(Error::Usage(format!(
                "station {id:?} is not in {}",
                config.stations_csv.display()
            )));
        }
        _ => {}
    }
    let store = Store::open(&config.database_url).await?;
    let token = new_token();
    let created = now();
    let expires_at = expires_in_days.map(|days| created + i64::from(days) * 24 * 3600);
    let result = store
        .add_officer_until(name, &scope, &hash_token(&token), created, expires_at)
        .await;
    store.close().await;
    result?;
    println!("{token}");
    let lifetime = match expires_in_days {
        Some(days) => format!("it expires in {days} day(s)"),
        None => "it works until `seva officer revoke`".to_owned(),
    };
    eprintln!(
        "seva: officer {name} added with scope {scope}; the token above is shown only this once; {lifetime}"
    );
    Ok(())
}

/// `seva officer revoke NAME`: every live token of that officer stops working at once.
pub async fn officer_revoke(config: &Config, name: &str) -> Result<(), Error> {
    let store = Store::open(&config.database_url).await?;
    let result = store.revoke_officer(name.trim(), now()).await;
    store.close().await;
    match result? {
        0 => Err(Error::Usage(format!("officer {name} has no live token"))),
        n => {
            eprintln!("seva: revoked {n} token(s) of officer {name}");
            Ok(())
        }
    }
}

/// `seva report show REF [--json]`.
pub async fn report_show(config: &Config, typed: &str, json: bool) -> Result<(), Error> {
    let reference = reference(typed)?;
    let directory = stations::load(&config.stations_csv)?;
    let store = Store::open(&config.database_url).await?;
    let result = async {
        let detail = store.report_detail(&Scope::State, &reference).await?;
        store
            .audit(
                &Actor::cli(),
                "report.read",
                Some(&reference.to_string()),
                &serde_json::json!({ "found": detail.is_some() }),
                now(),
            )
            .await?;
        Ok::<_, Error>(detail)
    }
    .await;
    store.close().await;
    let detail =
        result?.ok_or_else(|| Error::Usage(format!("no report with reference {reference}")))?;
    let view = ReportDetailJson::from_detail(&detail, &directory);
    if json {
        let text = serde_json::to_string_pretty(&view).map_err(std::io::Error::other)?;
        println!("{text}");
        return Ok(());
    }
    let r = &view.report;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let next = if r.allowed_next.is_empty() {
        "final".to_owned()
    } else {
        format!("next: {}", r.allowed_next.join(", "))
    };
    println!("reference    {}", r.reference);
    println!("kind         {} ({})", r.kind, r.category);
    println!("status       {} ({next})", r.status);
    println!(
        "station      {} {}",
        dash(&r.station_id),
        r.station_name
            .as_deref()
            .map(|n| format!("({n})"))
            .unwrap_or_default()
    );
    println!("district     {}", dash(&r.district_id));
    println!("filed        {}", r.created_at);
    println!("updated      {}", r.updated_at);
    if let Some(fir) = &r.fir_number {
        println!("fir number   {fir}");
    }
    if let Some(reason) = &r.close_reason {
        println!("closed for   {reason}");
    }
    if let Some(found) = &r.found_ref {
        println!("found as     {found}");
    }
    println!("occurred on  {}", dash(&r.occurred_on));
    println!(
        "place        {}",
        r.place
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".to_owned())
    );
    println!("description  {}", dash(&r.description));
    println!("identifier   {}", dash(&r.identifier));
    if r.anonymous {
        println!(
            "citizen      anonymous tip {}",
            r.citizen_pseudonym
                .as_deref()
                .unwrap_or("(pseudonym purged)")
        );
    } else {
        println!("name         {}", dash(&r.name));
        println!("phone        {}", dash(&r.phone));
    }
    if let Some(c) = &r.custody {
        println!("custody      {c}");
    }
    println!("language     {}", r.lang);
    if r.citizen_data_deleted {
        println!("(the citizen has deleted their data)");
    }
    if let Some(at) = &r.personal_data_purged_at {
        println!("(personal data purged at {at})");
    }
    println!("history:");
    for h in &view.history {
        let what = if h.action == "transfer" {
            format!(
                "transfer {} -> {}",
                dash(&h.from_station),
                dash(&h.to_station)
            )
        } else {
            h.status.clone()
        };
        println!("  {}  {what}  by {}", h.at, h.actor);
        for (label, v) in [
            ("fir", &h.fir_number),
            ("reason", &h.reason),
            ("found", &h.found_ref),
            ("note", &h.note),
            ("internal", &h.internal_note),
        ] {
            if let Some(v) = v {
                println!("      {label}: {v}");
            }
        }
    }
    if !view.matches.is_empty() {
        println!("may match    {}", view.matches.join(", "));
    }
    if !view.attachments.is_empty() {
        println!("attachments:");
        for a in &view.attachments {
            println!(
                "  {}  {}  {}  {}",
                a.n,
                a.kind,
                dash(&a.mime),
                dash(&a.caption)
            );
        }
    }
    Ok(())
}

/// `seva report purge [--older-than AGE]`: prints the number of reports purged on stdout.
pub async fn report_purge(config: &Config, older_than: Option<&str>) -> Result<(), Error> {
    let age = match older_than {
        Some(text) => crate::privacy::parse_age(text).ok_or_else(|| {
            Error::Usage(format!(
                "--older-than {text:?} is not an age like 90d, 12w or 36h"
            ))
        })?,
        None => std::time::Duration::from_secs(
            u64::from(config.privacy.report_retention_days) * 24 * 60 * 60,
        ),
    };
    let store = Store::open(&config.database_url).await?;
    let at = now();
    let result = async {
        let purged = crate::privacy::purge_reports(&store, &config.media_dir, age, at).await?;
        store
            .audit(
                &Actor::cli(),
                "report.purge",
                None,
                &serde_json::json!({ "older_than_secs": age.as_secs(), "reports": purged }),
                at,
            )
            .await?;
        Ok::<_, Error>(purged)
    }
    .await;
    store.close().await;
    let purged = result?;
    println!("{purged}");
    eprintln!(
        "seva: personal data removed from {purged} report(s) closed or returned more than {} day(s) ago",
        age.as_secs() / (24 * 60 * 60)
    );
    Ok(())
}

/// What `seva report set-status` was told.
#[derive(Debug, Clone, Default)]
pub struct SetStatus {
    pub status: String,
    pub note: Option<String>,
    pub internal_note: Option<String>,
    pub fir_number: Option<String>,
    pub reason: Option<String>,
    pub found_ref: Option<String>,
}

/// `seva report set-status REF STATUS [--note …] [--fir …] [--reason …]`.
pub async fn report_set_status(config: &Config, typed: &str, set: SetStatus) -> Result<(), Error> {
    let reference = reference(typed)?;
    let directory = stations::load(&config.stations_csv)?;
    let notices = Notices {
        stations: &directory,
        events: config.events.is_some(),
    };
    let change = Change {
        status: set.status,
        note: set.note,
        internal_note: set.internal_note,
        fir_number: set.fir_number,
        reason: set.reason,
        found_ref: set.found_ref,
    };
    let store = Store::open(&config.database_url).await?;
    let actor = Actor::cli();
    let result = store
        .change_status(&actor, &reference, &change, notices, now())
        .await;
    let result = audit_refusal(&store, "report.status", &reference, result).await;
    store.close().await;
    let changed = result?;
    println!(
        "{} {} -> {}",
        changed.report.reference, changed.from_status, changed.report.status
    );
    describe(&changed);
    Ok(())
}

/// `seva report transfer REF STATION [--note …]`.
pub async fn report_transfer(
    config: &Config,
    typed: &str,
    station: &str,
    note: Option<&str>,
) -> Result<(), Error> {
    let reference = reference(typed)?;
    let directory = stations::load(&config.stations_csv)?;
    let notices = Notices {
        stations: &directory,
        events: config.events.is_some(),
    };
    let store = Store::open(&config.database_url).await?;
    let actor = Actor::cli();
    let result = store
        .transfer_report(&actor, &reference, station, note, notices, now())
        .await;
    let result = audit_refusal(&store, "report.transfer", &reference, result).await;
    store.close().await;
    let changed = result?;
    println!(
        "{} {} -> {}",
        changed.report.reference,
        changed.history.from_station.as_deref().unwrap_or("-"),
        changed.report.station_id.as_deref().unwrap_or("-")
    );
    describe(&changed);
    Ok(())
}

async fn audit_refusal(
    store: &Store,
    action: &str,
    reference: &Reference,
    result: Result<Changed, ChangeFailure>,
) -> Result<Changed, Error> {
    match result {
        Ok(c) => Ok(c),
        Err(ChangeFailure::Store(e)) => Err(Error::Store(e)),
        Err(f) => {
            let code = super::error::refusal(&f).map_or("not_found", |(_, code)| code);
            store
                .audit(
                    &Actor::cli(),
                    action,
                    Some(&reference.to_string()),
                    &serde_json::json!({ "refused": code }),
                    now(),
                )
                .await?;
            Err(refused(f))
        }
    }
}

fn describe(changed: &Changed) {
    let told = if changed.pushed {
        "the citizen will be notified"
    } else {
        "the citizen is not notified (updates stopped or data deleted)"
    };
    eprintln!(
        "seva: {told}{}; at {}",
        if changed.alerted {
            "; the station's chat is alerted"
        } else {
            ""
        },
        rfc3339(changed.history.at)
    );
    if !lifecycle::is_open(&changed.report.status) {
        eprintln!("seva: the report is closed");
    }
}
