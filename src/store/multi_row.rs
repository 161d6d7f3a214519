//! Multi-row statements: one statement writes (or reads) the rows of many citizens, and its
//! text is written for one of a few row counts so that it stays prepared.

use std::sync::{Arc, LazyLock};

use dashmap::DashMap;

use super::{Backend, ROWS_PER_STATEMENT};

/// The row count a multi-row statement for `n` rows (or ids) is written for: `n` rounded up
/// to a power of two, at most [`ROWS_PER_STATEMENT`]. sqlx keeps a connection's last 100
/// prepared statements by their text, and a batch's statements written for exactly its own
/// size made new texts faster than the cache could keep them: the database parsed and planned
/// them again for nearly every batch (6.5 % of replies/s on SQLite under load). Rounded, each
/// statement has a handful of texts, and they stay prepared. Padding costs little: an
/// `in (…)` list repeats its last value; a `values` list gets rows of nulls, left out by
/// [`values_source`] or matching nothing.
pub(super) fn padded(n: usize) -> usize {
    n.next_power_of_two().min(ROWS_PER_STATEMENT).max(n)
}

/// The rows of `values` (a [`padded`] list) whose `column{key}` is not null, as the source of
/// an `insert`. (The `where` also keeps SQLite from reading an `on conflict` that follows as
/// part of the `select`.)
pub(super) fn values_source(values: &str, key: usize) -> String {
    format!("select * from (values {values}) as v where v.column{key} is not null")
}

/// `list` and, up to its [`padded`] length, copies of its last item: the same `in (…)` list.
pub(super) fn padded_list<T: Copy>(list: &[T]) -> Vec<T> {
    let mut out = list.to_vec();
    if let Some(&last) = list.last() {
        out.resize(padded(list.len()), last);
    }
    out
}

/// `count` rows of `width` numbered placeholders each, numbered from `$1` in order (so that
/// SQLite can take them as plain `?`, see [`super::positional`]).
pub(super) fn value_rows(count: usize, width: usize, row: impl Fn(&[usize]) -> String) -> String {
    let mut out = String::with_capacity(count * (width * 5 + 8));
    let mut n: Vec<usize> = vec![0; width];
    for r in 0..count {
        for (k, slot) in n.iter_mut().enumerate() {
            *slot = 1 + r * width + k;
        }
        if r > 0 {
            out.push_str(", ");
        }
        out.push_str(&row(&n));
    }
    out
}

/// The text of statement `name` for `rows` rows on `backend`, built once: a batch's statements
/// come in a few [`padded`] sizes, and building their texts (thousands of placeholders) for
/// every batch cost 2 % of Seva's CPU under load. `name` must say everything `build` varies
/// on besides the backend and the row count.
pub(super) fn statement_text(
    name: &'static str,
    backend: Backend,
    rows: usize,
    build: impl FnOnce() -> String,
) -> Arc<str> {
    type Key = (&'static str, Backend, usize);
    static TEXTS: LazyLock<DashMap<Key, Arc<str>, foldhash::fast::RandomState>> =
        LazyLock::new(DashMap::default);
    let key = (name, backend, rows);
    if let Some(text) = TEXTS.get(&key) {
        return text.clone();
    }
    TEXTS.entry(key).or_insert_with(|| build().into()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row count from 1 to a statement's maximum is written as one of a few sizes, so
    /// the prepared statements of a batch's writes fit sqlx's cache of 100, and each size
    /// holds the rows it is asked for.
    #[test]
    fn multi_row_statements_come_in_a_few_sizes() {
        let sizes: std::collections::BTreeSet<usize> =
            (1..=ROWS_PER_STATEMENT).map(padded).collect();
        assert!(sizes.len() <= 10, "{sizes:?}");
        for n in 1..=ROWS_PER_STATEMENT {
            assert!(
                padded(n) >= n && padded(n) <= ROWS_PER_STATEMENT.max(2 * n),
                "{n}"
            );
        }
        assert_eq!(padded_list(&[3, 4, 5]), [3, 4, 5, 5]);
        assert!(padded_list::<i64>(&[]).is_empty());
    }
}
