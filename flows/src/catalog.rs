//! The Fluent catalog: every user-facing text, from `locales/en/*.ftl` and `locales/hi/*.ftl`,
//! embedded at build time so the engine stays free of IO.

use foldhash::{HashMap, HashMapExt};
use std::borrow::Cow;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};

use crate::Lang;
use crate::reply::{Arg, Hint, Label, Reply, Text};
use crate::understand::words::fold;

/// The locale files, the same names in both languages.
pub const FILES: [&str; 5] = ["common", "menu", "report", "status", "notify"];

macro_rules! sources {
    ($lang:literal) => {
        [
            include_str!(concat!("../../locales/", $lang, "/common.ftl")),
            include_str!(concat!("../../locales/", $lang, "/menu.ftl")),
            include_str!(concat!("../../locales/", $lang, "/report.ftl")),
            include_str!(concat!("../../locales/", $lang, "/status.ftl")),
            include_str!(concat!("../../locales/", $lang, "/notify.ftl")),
        ]
    };
}

/// The embedded FTL sources of one language, in [`FILES`] order.
pub fn sources(lang: Lang) -> [&'static str; 5] {
    match lang {
        Lang::Hi => sources!("hi"),
        Lang::En => sources!("en"),
    }
}

/// Both languages' bundles. Build once ([`Catalog::global`]) and share: bundles are costly.
pub struct Catalog {
    hi: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
    /// Every message of each language (`[hi, en]`) formatted without arguments, as a choice
    /// label and folded, once: labels and most texts take no arguments, and every turn
    /// renders its texts and choices and matches what the citizen typed against the labels
    /// of both languages.
    labels: [HashMap<String, CachedLabel>; 2],
}

/// A message formatted as a choice label, and folded for matching typed text.
struct CachedLabel {
    short: String,
    full: String,
    short_folded: String,
    full_folded: String,
}

/// A reply rendered into one language, ready for a channel to shape natively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// The paragraphs of the reply, joined by blank lines.
    pub body: String,
    pub choices: Vec<RenderedChoice>,
    pub hint: Option<Hint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedChoice {
    /// Stable id a button sends back.
    pub id: String,
    /// Fits a button (the `.short` attribute).
    pub short: String,
    /// The full label, used in numbered lines.
    pub full: String,
}

impl Rendered {
    /// The body followed by the choices as numbered lines, so a typed number always works.
    pub fn with_numbered_choices(&self) -> String {
        use std::fmt::Write as _;
        let lines: usize = self.choices.iter().map(|c| c.full.len() + 6).sum();
        let mut out = String::with_capacity(self.body.len() + 1 + lines);
        out.push_str(&self.body);
        if !self.choices.is_empty() {
            out.push('\n');
            for (i, c) in self.choices.iter().enumerate() {
                // Writing into a String cannot fail.
                let _ = write!(out, "\n{}. {}", i + 1, c.full);
            }
        }
        out
    }
}

/// Where `lang`'s labels are in [`Catalog::labels`].
fn label_slot(lang: Lang) -> usize {
    match lang {
        Lang::Hi => 0,
        Lang::En => 1,
    }
}

/// `lang`'s bundle, and the ids of its messages (read off the parsed resources, so that
/// [`Catalog::load`] does not parse the sources a second time to list them).
fn bundle(lang: Lang) -> Result<(FluentBundle<FluentResource>, Vec<String>), String> {
    let langid = match lang {
        Lang::Hi => unic_langid::langid!("hi"),
        Lang::En => unic_langid::langid!("en"),
    };
    let mut bundle = FluentBundle::new_concurrent(vec![langid]);
    // Isolation marks would show up in tests and count against provider length limits.
    bundle.set_use_isolating(false);
    let mut ids = Vec::new();
    for (file, src) in FILES.iter().zip(sources(lang)) {
        let res = FluentResource::try_new(src.to_owned())
            .map_err(|(_, e)| format!("{}/{file}.ftl: {e:?}", lang.code()))?;
        ids.extend(res.entries().filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        }));
        bundle
            .add_resource(res)
            .map_err(|e| format!("{}/{file}.ftl: {e:?}", lang.code()))?;
    }
    Ok((bundle, ids))
}

impl Catalog {
    /// Parses both languages; an error names the file (a test keeps this from happening).
    pub fn load() -> Result<Catalog, String> {
        let (hi, hi_ids) = bundle(Lang::Hi)?;
        let (en, en_ids) = bundle(Lang::En)?;
        let mut catalog = Catalog {
            hi,
            en,
            labels: [HashMap::new(), HashMap::new()],
        };
        for (lang, ids) in [(Lang::Hi, hi_ids), (Lang::En, en_ids)] {
            let labels = ids
                .into_iter()
                .map(|id| {
                    let (short, full) = catalog.format_label(lang, &id);
                    let cached = CachedLabel {
                        short_folded: fold(&short),
                        full_folded: fold(&full),
                        short,
                        full,
                    };
                    (id, cached)
                })
                .collect();
            catalog.labels[label_slot(lang)] = labels;
        }
        Ok(catalog)
    }

    /// The process-wide catalog.
    pub fn global() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::load().expect("embedded locales parse (tested)"))
    }

    fn bundle(&self, lang: Lang) -> &FluentBundle<FluentResource> {
        match lang {
            Lang::Hi => &self.hi,
            Lang::En => &self.en,
        }
    }

    pub fn has(&self, lang: Lang, id: &str) -> bool {
        self.bundle(lang).has_message(id)
    }

    /// Formats `id` (or `id.attr`) and collects Fluent errors instead of hiding them.
    pub fn format_checked(
        &self,
        lang: Lang,
        id: &str,
        attr: Option<&str>,
        args: &[(String, Arg)],
    ) -> Result<String, String> {
        let bundle = self.bundle(lang);
        let msg = bundle
            .get_message(id)
            .ok_or_else(|| format!("missing message {id}"))?;
        let pattern = match attr {
            Some(a) => msg.get_attribute(a).map(|a| a.value()),
            None => msg.value(),
        }
        .ok_or_else(|| format!("{id} has no {}", attr.unwrap_or("value")))?;
        let mut fargs = FluentArgs::new();
        for (k, v) in args {
            match v {
                Arg::Num(n) => fargs.set(k.as_str(), FluentValue::from(*n)),
                Arg::Str(s) => fargs.set(k.as_str(), FluentValue::from(s.as_str())),
            }
        }
        let mut errors = Vec::new();
        let out: Cow<str> = bundle.format_pattern(pattern, Some(&fargs), &mut errors);
        if errors.is_empty() {
            Ok(out.into_owned())
        } else {
            Err(format!("{id}: {errors:?}"))
        }
    }

    /// Formats a text; a missing message shows its id rather than failing the reply.
    pub fn text(&self, lang: Lang, t: &Text) -> String {
        // Without arguments a message always formats the same: its label's full form is it
        // (or, like here, its id when it needs arguments).
        if t.args.is_empty()
            && let Some(l) = self.labels[label_slot(lang)].get(&t.id)
        {
            return l.full.clone();
        }
        match self.format_checked(lang, &t.id, None, &t.args) {
            Ok(s) => s,
            Err(_) => t.id.clone(),
        }
    }

    /// (short, full) for a choice label.
    pub fn label(&self, lang: Lang, label: &Label) -> (String, String) {
        match label {
            Label::Raw(s) => (s.clone(), s.clone()),
            Label::Msg(id) => match self.labels[label_slot(lang)].get(id) {
                Some(l) => (l.short.clone(), l.full.clone()),
                None => self.format_label(lang, id),
            },
        }
    }

    /// Whether `folded` (text the citizen typed, through [`fold`]) is the label's short or
    /// full form in `lang`, folded the same way.
    pub fn label_matches(&self, lang: Lang, label: &Label, folded: &str) -> bool {
        if let Label::Msg(id) = label
            && let Some(l) = self.labels[label_slot(lang)].get(id)
        {
            return l.short_folded == folded || l.full_folded == folded;
        }
        let (short, full) = self.label(lang, label);
        fold(&short) == folded || fold(&full) == folded
    }

    /// A message formatted as a label: its `.short` attribute (or its value) and its value;
    /// a missing message shows its id.
    fn format_label(&self, lang: Lang, id: &str) -> (String, String) {
        let full = self
            .format_checked(lang, id, None, &[])
            .unwrap_or_else(|_| id.to_owned());
        let short = self
            .format_checked(lang, id, Some("short"), &[])
            .unwrap_or_else(|_| full.clone());
        (short, full)
    }

    pub fn render(&self, lang: Lang, reply: &Reply) -> Rendered {
        let body = reply
            .texts
            .iter()
            .map(|t| self.text(lang, t))
            .collect::<Vec<_>>()
            .join("\n\n");
        let choices = reply
            .choices
            .iter()
            .map(|c| {
                let (short, full) = self.label(lang, &c.label);
                RenderedChoice {
                    id: c.id.clone(),
                    short,
                    full,
                }
            })
            .collect();
        Rendered {
            body,
            choices,
            hint: reply.hint,
        }
    }

    /// Every message id of a language, with its attribute names (for locale tests).
    pub fn message_ids(lang: Lang) -> Vec<(String, Vec<String>)> {
        use fluent_syntax::ast::Entry;
        let mut out = Vec::new();
        for src in sources(lang) {
            let Ok(res) = fluent_syntax::parser::parse(src) else {
                continue;
            };
            for entry in res.body {
                if let Entry::Message(m) = entry {
                    let attrs = m.attributes.iter().map(|a| a.id.name.to_owned()).collect();
                    out.push((m.id.name.to_owned(), attrs));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_labels_are_the_messages_formatted_and_folded() {
        let catalog = Catalog::load().unwrap();
        for lang in Lang::ALL {
            for (id, _) in Catalog::message_ids(lang) {
                let label = Label::Msg(id.clone());
                let (short, full) = catalog.format_label(lang, &id);
                assert_eq!(catalog.label(lang, &label), (short.clone(), full.clone()));
                let formatted = catalog
                    .format_checked(lang, &id, None, &[])
                    .unwrap_or_else(|_| id.clone());
                assert_eq!(catalog.text(lang, &Text::new(id.clone())), formatted);
                assert!(catalog.label_matches(lang, &label, &fold(&short)), "{id}");
                assert!(catalog.label_matches(lang, &label, &fold(&full)), "{id}");
            }
        }
    }

    #[test]
    fn typed_labels_match_in_either_form_and_nothing_else() {
        let catalog = Catalog::load().unwrap();
        let lost = Label::Msg("choice-menu-lost".into());
        assert!(catalog.label_matches(Lang::En, &lost, &fold("  Lost ITEM! ")));
        assert!(catalog.label_matches(Lang::En, &lost, &fold("report a lost item")));
        assert!(catalog.label_matches(Lang::Hi, &lost, &fold("खोई वस्तु।")));
        assert!(!catalog.label_matches(Lang::En, &lost, &fold("found item")));
        assert!(!catalog.label_matches(Lang::Hi, &lost, &fold("lost item")));
        // Station names and a message missing from the catalog are compared as they are.
        let station = Label::Raw("Kotwali Thana".into());
        assert!(catalog.label_matches(Lang::Hi, &station, &fold("kotwali thana")));
        let missing = Label::Msg("no-such-message".into());
        assert_eq!(
            catalog.label(Lang::En, &missing),
            ("no-such-message".into(), "no-such-message".into())
        );
        assert!(catalog.label_matches(Lang::En, &missing, "no-such-message"));
    }
}
