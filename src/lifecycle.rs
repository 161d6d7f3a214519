//! The report lifecycle (spec §3): which status may follow which, and what each needs.
//! Pure rules; the store applies them inside the transaction that records the change.

use flows::reference::ReportKind;

/// The status every report starts in.
pub fn initial_status(kind: ReportKind) -> &'static str {
    row(kind)[0]
}

/// The statuses of a kind, in order (`closed` is reachable from each of them).
pub fn row(kind: ReportKind) -> &'static [&'static str] {
    match kind {
        ReportKind::Complaint => &[
            "submitted",
            "acknowledged",
            "under_inquiry",
            "fir_registered",
        ],
        ReportKind::Lost => &["registered", "found", "returned"],
        ReportKind::Found => &["registered", "deposited", "returned"],
    }
}

pub const CLOSED: &str = "closed";

/// Every status a kind knows, `closed` included.
pub fn all_statuses(kind: ReportKind) -> Vec<&'static str> {
    let mut v = row(kind).to_vec();
    v.push(CLOSED);
    v
}

pub fn is_open(status: &str) -> bool {
    status != CLOSED
}

/// The statuses a report may move to next: the next one in its row, and `closed`.
pub fn allowed_next(kind: ReportKind, current: &str) -> Vec<&'static str> {
    if !is_open(current) {
        return Vec::new();
    }
    let row = row(kind);
    let mut next = Vec::new();
    if let Some(i) = row.iter().position(|s| *s == current)
        && let Some(n) = row.get(i + 1)
    {
        next.push(*n);
    }
    next.push(CLOSED);
    next
}

/// What an officer sends with a status change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub status: String,
    pub note: Option<String>,
    pub internal_note: Option<String>,
    pub fir_number: Option<String>,
    pub reason: Option<String>,
    pub found_ref: Option<String>,
}

/// Why a change was refused. Messages are shown to officers as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("cannot move from {from} to {to}; allowed next: {}", allowed.join(", "))]
    NotAllowed {
        from: String,
        to: String,
        allowed: Vec<String>,
    },
    #[error("{0} is not a status of this kind of report")]
    UnknownStatus(String),
    #[error("fir_registered needs an FIR number (fir_number)")]
    FirNumberRequired,
    #[error("closing a report needs a reason")]
    ReasonRequired,
}

/// Checks a change against the rules of spec §3.
pub fn check(kind: ReportKind, current: &str, change: &Change) -> Result<(), ChangeError> {
    let to = change.status.as_str();
    if !all_statuses(kind).contains(&to) {
        return Err(ChangeError::UnknownStatus(to.to_owned()));
    }
    let allowed = allowed_next(kind, current);
    if !allowed.contains(&to) {
        return Err(ChangeError::NotAllowed {
            from: current.to_owned(),
            to: to.to_owned(),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
        });
    }
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if to == "fir_registered" && blank(&change.fir_number) {
        return Err(ChangeError::FirNumberRequired);
    }
    if to == CLOSED && blank(&change.reason) {
        return Err(ChangeError::ReasonRequired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: &str) -> Change {
        Change {
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_complaint_walks_its_row_in_order() {
        let k = ReportKind::Complaint;
        assert_eq!(initial_status(k), "submitted");
        assert!(check(k, "submitted", &change("acknowledged")).is_ok());
        assert!(check(k, "acknowledged", &change("under_inquiry")).is_ok());
        let fir = Change {
            fir_number: Some("123/2026".into()),
            ..change("fir_registered")
        };
        assert!(check(k, "under_inquiry", &fir).is_ok());
    }

    #[test]
    fn skipping_a_status_is_refused_naming_the_allowed_ones() {
        let err = check(ReportKind::Complaint, "submitted", &change("under_inquiry")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot move from submitted to under_inquiry; allowed next: acknowledged, closed"
        );
    }

    #[test]
    fn fir_needs_a_number_and_closing_needs_a_reason() {
        let k = ReportKind::Complaint;
        assert_eq!(
            check(k, "under_inquiry", &change("fir_registered")),
            Err(ChangeError::FirNumberRequired)
        );
        assert_eq!(
            check(k, "acknowledged", &change("closed")),
            Err(ChangeError::ReasonRequired)
        );
        let blank = Change {
            reason: Some("  ".into()),
            ..change("closed")
        };
        assert_eq!(
            check(k, "acknowledged", &blank),
            Err(ChangeError::ReasonRequired)
        );
        let ok = Change {
            reason: Some("resolved".into()),
            ..change("closed")
        };
        assert!(check(k, "acknowledged", &ok).is_ok());
    }

    #[test]
    fn closed_is_final() {
        for kind in ReportKind::ALL {
            assert!(allowed_next(kind, CLOSED).is_empty());
            let ok = Change {
                reason: Some("x".into()),
                ..change("closed")
            };
            assert!(matches!(
                check(kind, CLOSED, &ok),
                Err(ChangeError::NotAllowed { .. })
            ));
        }
    }

    #[test]
    fn statuses_of_another_kind_are_unknown() {
        assert_eq!(
            check(ReportKind::Lost, "registered", &change("deposited")),
            Err(ChangeError::UnknownStatus("deposited".into()))
        );
        assert_eq!(
            allowed_next(ReportKind::Found, "registered"),
            vec!["deposited", "closed"]
        );
        assert_eq!(allowed_next(ReportKind::Lost, "returned"), vec!["closed"]);
    }
}
