//! Locale checks: both languages have the same files and ids, every message formats without
//! Fluent errors given the arguments the code passes, choice labels fit a button, and every
//! message id the engine names exists.

use std::collections::{BTreeMap, BTreeSet};

use flows::Lang;
use flows::catalog::{Catalog, FILES};
use flows::reply::Arg;

/// The longest button title any channel accepts (WhatsApp reply buttons: 20 characters).
const MAX_SHORT: usize = 20;

fn ids(lang: Lang) -> BTreeMap<String, Vec<String>> {
    Catalog::message_ids(lang).into_iter().collect()
}

#[test]
fn both_languages_have_the_same_message_ids_and_attributes() {
    let (hi, en) = (ids(Lang::Hi), ids(Lang::En));
    let only_hi: Vec<_> = hi.keys().filter(|k| !en.contains_key(*k)).collect();
    let only_en: Vec<_> = en.keys().filter(|k| !hi.contains_key(*k)).collect();
    assert!(
        only_hi.is_empty() && only_en.is_empty(),
        "only in hi: {only_hi:?}; only in en: {only_en:?}"
    );
    for (id, attrs) in &hi {
        assert_eq!(attrs, &en[id], "{id} has different attributes in hi and en");
    }
}

#[test]
fn both_languages_have_the_same_files() {
    for lang in ["en", "hi"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../locales")
            .join(lang);
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".ftl")
                    .to_owned()
            })
            .collect();
        found.sort();
        let mut want: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
        want.sort();
        assert_eq!(
            found, want,
            "locales/{lang} must hold exactly the embedded files"
        );
    }
}

/// The variables each message uses, read from the FTL source.
fn variables(lang: Lang) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for src in flows::catalog::sources(lang) {
        let mut current = None;
        for line in src.lines() {
            if let Some((id, _)) = line
                .split_once(" =")
                .filter(|_| !line.starts_with([' ', '#']))
            {
                current = Some(id.trim().to_owned());
                out.entry(id.trim().to_owned())
                    .or_insert_with(BTreeSet::new);
            }
            if let Some(id) = &current {
                let mut rest = line;
                while let Some(i) = rest.find("{ $") {
                    let name: String = rest[i + 3..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.get_mut(id).unwrap().insert(name);
                    rest = &rest[i + 3..];
                }
            }
        }
    }
    out
}

#[test]
fn both_languages_use_the_same_variables() {
    assert_eq!(variables(Lang::Hi), variables(Lang::En));
}

#[test]
fn every_message_formats_without_errors_with_sample_arguments() {
    let catalog = Catalog::global();
    for lang in Lang::ALL {
        for (id, vars) in variables(lang) {
            let args: Vec<(String, Arg)> = vars
                .iter()
                .map(|v| {
                    let value = if matches!(v.as_str(), "count" | "max" | "got" | "page" | "pages")
                    {
                        Arg::Num(2)
                    } else {
                        Arg::Str(format!("<{v}>"))
                    };
                    (v.clone(), value)
                })
                .collect();
            let out = catalog.format_checked(lang, &id, None, &args);
            let text = out.unwrap_or_else(|e| panic!("{} {id}: {e}", lang.code()));
            assert!(!text.contains('\u{2068}'), "isolation marks must be off");
            // Numbers work for plural selection in both languages, including Hindi's 0 and 1.
            for n in [0, 1, 5] {
                let args: Vec<(String, Arg)> = args
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            if k == "count" { Arg::Num(n) } else { v.clone() },
                        )
                    })
                    .collect();
                catalog.format_checked(lang, &id, None, &args).unwrap();
            }
        }
    }
}

#[test]
fn a_message_missing_an_argument_is_reported() {
    let catalog = Catalog::global();
    assert!(
        catalog
            .format_checked(Lang::En, "status-fir", None, &[])
            .is_err()
    );
    assert!(
        catalog
            .format_checked(Lang::Hi, "no-such-message", None, &[])
            .is_err()
    );
}

#[test]
fn every_choice_has_a_short_label_that_fits_a_button() {
    let catalog = Catalog::global();
    for lang in Lang::ALL {
        for (id, attrs) in ids(lang) {
            if !id.starts_with("choice-") {
                continue;
            }
            assert!(
                attrs.contains(&"short".to_owned()),
                "{} {id} has no .short",
                lang.code()
            );
            let short = catalog
                .format_checked(lang, &id, Some("short"), &[])
                .unwrap();
            let n = short.chars().count();
            assert!(
                n > 0 && n <= MAX_SHORT,
                "{} {id}.short is {n} characters: {short}",
                lang.code()
            );
        }
    }
}

/// Message ids named in the engine's source as string literals must exist.
#[test]
fn every_message_id_the_engine_names_exists() {
    let catalog = Catalog::global();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/journeys");
    let mut missing = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, _) in src.match_indices("Text::new(\"") {
            let rest = &src[i + "Text::new(\"".len()..];
            let id = &rest[..rest.find('"').unwrap()];
            checked += 1;
            for lang in Lang::ALL {
                if !catalog.has(lang, id) {
                    missing.push(format!("{}:{id}", lang.code()));
                }
            }
        }
        // Ids chosen in a match arm: `=> "id"` and `"id",` inside Text::new(match …).
        for line in src.lines() {
            let t = line.trim();
            if let Some(id) = t
                .strip_prefix("ReportKind::Complaint => \"")
                .or_else(|| t.strip_prefix("ReportKind::Lost => \""))
                .or_else(|| t.strip_prefix("ReportKind::Found => \""))
            {
                let id = &id[..id.find('"').unwrap()];
                checked += 1;
                for lang in Lang::ALL {
                    if !catalog.has(lang, id) {
                        missing.push(format!("{}:{id}", lang.code()));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "the scan found only {checked} ids");
    assert!(missing.is_empty(), "missing messages: {missing:?}");
}
