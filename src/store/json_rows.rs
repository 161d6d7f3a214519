//! Many rows in one bound argument: a JSON array of arrays (or of ids) that the statement
//! unpacks itself.
//!
//! A multi-row statement written out as `values ($2, $3, …), (…)` has a different text for
//! every row count, so it is prepared again nearly every time (the statement cache holds a
//! few shapes, a batch has a hundred), and SQLite finds each `$N` by walking the statement's
//! list of names, once when preparing and once when binding: a statement of n binds costs n²
//! before it runs. With the rows in one argument the text is fixed, prepared once per
//! connection, and bound once.

use super::{Backend, Result, StoreError};

/// The SQL type a field of a row is read as (PostgreSQL reads JSON fields as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Int,
    Text,
}

/// How a statement reads the rows bound at one parameter.
pub(super) struct JsonRows {
    /// `fields[i]` reads field `i` of the current row.
    pub fields: Vec<String>,
    /// `from …`, with the rows in the array's order (so inserted ids follow it).
    pub from: String,
}

/// The rows of the JSON array of arrays bound at `$param`, each with `fields`.
pub(super) fn json_rows(backend: Backend, param: usize, fields: &[Field]) -> JsonRows {
    match backend {
        Backend::Sqlite => JsonRows {
            fields: (0..fields.len())
                .map(|i| format!("value ->> {i}"))
                .collect(),
            // `where true`: SQLite's parser needs it before an upsert clause.
            from: format!("from json_each(${param}) where true order by key"),
        },
        Backend::Postgres => JsonRows {
            fields: fields
                .iter()
                .enumerate()
                .map(|(i, f)| match f {
                    Field::Int => format!("(value ->> {i})::bigint"),
                    Field::Text => format!("value ->> {i}"),
                })
                .collect(),
            from: format!(
                "from jsonb_array_elements(${param}::jsonb) with ordinality as rows (value, n) \
                 where true order by n"
            ),
        },
    }
}

/// `select` of the ids in the JSON array bound at `$param`, for `… in (…)`.
pub(super) fn json_ids(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Sqlite => format!("select value from json_each(${param})"),
        Backend::Postgres => {
            format!(
                "select value::bigint from jsonb_array_elements_text(${param}::jsonb) as ids (value)"
            )
        }
    }
}

/// The JSON argument for [`json_rows`] or [`json_ids`].
pub(super) fn json_arg<T: serde::Serialize>(rows: &T) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(e.to_string()))
}
