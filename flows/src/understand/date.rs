//! When something happened: relative words (आज, कल, परसों, "2 din pehle", "3 days ago") and
//! written dates (dd-mm-yyyy, dd/mm/yy, 12 मार्च 2026, …), never in the future, at most five
//! years back.

use chrono::{Datelike, Days, Months, NaiveDate};

use super::digits::normalize_digits;
use super::words::{fold, has_any, tokens};

/// Why a date answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not a date we can read, or not a real calendar date (31-02-2026).
    Unreadable,
    /// After today.
    Future,
    /// More than five years before today.
    TooOld,
}

/// How far back a citizen may date an event.
const MAX_AGE_MONTHS: u32 = 5 * 12;

/// When something happened. today/aaj/आज → today; yesterday/kal/कल/"kal raat" → yesterday (कल
/// means yesterday when asking about the past); परसों/parson/parso → today-2; "2 din pehle" /
/// "2 दिन पहले" / "3 days ago" (also weeks, months, years, and number words: "do din pehle") →
/// today-n; dd-mm-yyyy, dd/mm/yyyy, dd.mm.yyyy, dd-mm-yy, dd/mm/yy (yy → 20yy), d-m-yyyy,
/// yyyy-mm-dd, dd/mm (the latest such day not after today), month names in English or Hindi
/// ("12 March 2026", "12 मार्च"), "12 tareekh" (the latest 12th), weekdays ("somvar", "last
/// Monday": the latest such day), with Devanagari digits.
///
/// A date after `today` → Err(Future) (also "tomorrow", "2 din baad"). More than 5 years before
/// today → Err(TooOld). Invalid calendar dates (31-02-2026) → Unreadable.
pub fn parse_past_date(s: &str, today: NaiveDate) -> Result<NaiveDate, DateError> {
    let text = normalize_digits(&fold(s));
    let date = read(&text, today)?;
    if date > today {
        return Err(DateError::Future);
    }
    match today.checked_sub_months(Months::new(MAX_AGE_MONTHS)) {
        Some(oldest) if date < oldest => Err(DateError::TooOld),
        _ => Ok(date),
    }
}

fn read(text: &str, today: NaiveDate) -> Result<NaiveDate, DateError> {
    if let Some(found) = numeric_date(text, today) {
        return found;
    }
    let toks = tokens(text);
    if let Some(found) = month_name_date(&toks, today) {
        return found;
    }
    if let Some(found) = day_of_this_month(&toks, today) {
        return found;
    }
    if let Some(found) = relative_amount(&toks, today) {
        return found;
    }
    if let Some(found) = relative_word(&toks, today) {
        return found;
    }
    weekday(&toks, today).unwrap_or(Err(DateError::Unreadable))
}

// ---------------------------------------------------------------------------------------------
// Written dates: digit groups joined by - / .

/// A run of digits in the text: how many digits and their value (saturating).
#[derive(Clone, Copy)]
struct Group {
    len: usize,
    value: u32,
}

/// The first digit-group date in `text`: `d-m-y`, `y-m-d` or `d/m`. `None` when there is no
/// such pattern; `Some(Err(Unreadable))` when there is one but it is not a real date.
fn numeric_date(text: &str, today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let (groups, seps) = groups_at(&chars, i);
        if let Some(result) = date_from_groups(&groups, &seps, today) {
            return Some(result);
        }
        i += 1;
    }
    None
}

/// Up to three digit groups starting at `start`, each joined to the next by one of `- / .`
/// (spaces around it allowed). Returns the groups and their separators.
fn groups_at(chars: &[char], start: usize) -> (Vec<Group>, Vec<char>) {
    let mut groups = Vec::new();
    let mut seps = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        let mut value: u32 = 0;
        while i < chars.len() && chars[i].is_ascii_digit() {
            let d = chars[i].to_digit(10).unwrap_or(0);
            value = value.saturating_mul(10).saturating_add(d);
            i += 1;
        }
        groups.push(Group {
            len: i - begin,
            value,
        });
        if groups.len() == 3 {
            return (groups, seps);
        }
        // A separator, optionally surrounded by spaces, then another digit.
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let Some(&sep) = chars.get(j).filter(|c| matches!(c, '-' | '/' | '.')) else {
            return (groups, seps);
        };
        j += 1;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if !chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
            return (groups, seps);
        }
        seps.push(sep);
        i = j;
    }
}

fn date_from_groups(
    groups: &[Group],
    seps: &[char],
    today: NaiveDate,
) -> Option<Result<NaiveDate, DateError>> {
    match groups {
        [y, m, d] if y.len == 4 && m.len <= 2 && d.len <= 2 => {
            Some(ymd(y.value, m.value, d.value).ok_or(DateError::Unreadable))
        }
        [d, m, y] if d.len <= 2 && m.len <= 2 && (y.len == 2 || y.len == 4) => {
            let year = if y.len == 2 { 2000 + y.value } else { y.value };
            Some(day_month(d.value, m.value, year).ok_or(DateError::Unreadable))
        }
        // "12/03" without a year; not "10.30" (a time) — and a pair that is no date is no date.
        [d, m] if d.len <= 2 && m.len <= 2 && seps.first().is_some_and(|s| *s != '.') => {
            without_year(d.value, m.value, today).map(Ok)
        }
        _ => None,
    }
}

fn ymd(year: u32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// Day and month as written in India; when the "month" is over 12 and the "day" is not, the
/// writer meant month/day.
fn day_month(day: u32, month: u32, year: u32) -> Option<NaiveDate> {
    if month > 12 && day <= 12 {
        ymd(year, day, month)
    } else {
        ymd(year, month, day)
    }
}

/// The latest `day`-`month` not after today: this year's, else last year's.
fn without_year(day: u32, month: u32, today: NaiveDate) -> Option<NaiveDate> {
    let year = u32::try_from(today.year()).ok()?;
    match day_month(day, month, year) {
        Some(date) if date <= today => Some(date),
        _ => day_month(day, month, year.checked_sub(1)?),
    }
}

// ---------------------------------------------------------------------------------------------
// Month names.

const MONTHS: [&[&str]; 12] = [
    &["january", "jan", "जनवरी"],
    &["february", "feb", "febuary", "फरवरी"],
    &["march", "mar", "मार्च"],
    &["april", "apr", "अप्रैल", "अप्रेल"],
    &["may", "मई"],
    &["june", "jun", "जून"],
    &["july", "jul", "जुलाई"],
    &["august", "aug", "अगस्त"],
    &["september", "sep", "sept", "सितंबर", "सितम्बर"],
    &["october", "oct", "अक्टूबर", "अक्तूबर"],
    &["november", "nov", "नवंबर", "नवम्बर"],
    &["december", "dec", "दिसंबर", "दिसम्बर"],
];

fn month_of(token: &str) -> Option<u32> {
    let one = [token.to_string()];
    (1u32..)
        .zip(MONTHS)
        .find(|(_, names)| has_any(&one, names))
        .map(|(m, _)| m)
}

/// A day of the month as a word: "12", "3rd", "21st".
fn day_of(token: &str) -> Option<u32> {
    let digits = token
        .strip_suffix("st")
        .or_else(|| token.strip_suffix("nd"))
        .or_else(|| token.strip_suffix("rd"))
        .or_else(|| token.strip_suffix("th"))
        .unwrap_or(token);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn year_of(token: &str) -> Option<u32> {
    let ok = (token.len() == 2 || token.len() == 4) && token.bytes().all(|b| b.is_ascii_digit());
    let value: u32 = token.parse().ok().filter(|_| ok)?;
    Some(if token.len() == 2 {
        2000 + value
    } else {
        value
    })
}

/// "12 March 2026", "March 12, 2026", "12 मार्च", "3rd jan".
fn month_name_date(toks: &[String], today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    for (i, tok) in toks.iter().enumerate() {
        let Some(month) = month_of(tok) else { continue };
        let before = i
            .checked_sub(1)
            .and_then(|j| toks.get(j))
            .and_then(|t| day_of(t));
        let (day, year_at) = match before {
            Some(day) => (day, i + 1),
            None => match toks.get(i + 1).and_then(|t| day_of(t)) {
                Some(day) => (day, i + 2),
                None => continue,
            },
        };
        let date = match toks.get(year_at).and_then(|t| year_of(t)) {
            Some(year) => ymd(year, month, day),
            None => without_year(day, month, today),
        };
        return Some(date.ok_or(DateError::Unreadable));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// "2 din pehle", "3 days ago", "do hafte pehle", "2 din baad".

const NUMBER_WORDS: [&[&str]; 10] = [
    &["ek", "एक", "a", "an", "one"],
    &["do", "दो", "two"],
    &["teen", "तीन", "three"],
    &["char", "chaar", "चार", "four"],
    &["panch", "paanch", "पांच", "पाँच", "five"],
    &["chhe", "che", "chah", "छह", "छः", "छे", "six"],
    &["saat", "सात", "seven"],
    &["aath", "आठ", "eight"],
    &["nau", "नौ", "nine"],
    &["das", "दस", "ten"],
];
const DAYS: &[&str] = &["din", "दिन", "दिनों", "day", "days", "dino"];
const WEEKS: &[&str] = &[
    "hafta",
    "hafte",
    "haftey",
    "हफ्ता",
    "हफ्ते",
    "हफ्तों",
    "सप्ताह",
    "week",
    "weeks",
];
const MONTH_UNITS: &[&str] = &[
    "mahina",
    "mahine",
    "महीना",
    "महीने",
    "महीनों",
    "month",
    "months",
];
const YEARS: &[&str] = &["saal", "sal", "साल", "varsh", "वर्ष", "year", "years"];
const LATER: &[&str] = &["baad", "बाद", "later", "after", "hence", "from now"];

enum Unit {
    Days,
    Weeks,
    Months,
    Years,
}

fn unit_of(token: &str) -> Option<Unit> {
    let one = [token.to_string()];
    if has_any(&one, DAYS) {
        Some(Unit::Days)
    } else if has_any(&one, WEEKS) {
        Some(Unit::Weeks)
    } else if has_any(&one, MONTH_UNITS) {
        Some(Unit::Months)
    } else if has_any(&one, YEARS) {
        Some(Unit::Years)
    } else {
        None
    }
}

/// A count as digits or a number word; `Some(None)` for digits too big to count (they go
/// further back than any allowed date).
fn amount_of(token: &str) -> Option<Option<u64>> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        return Some(token.parse().ok());
    }
    let one = [token.to_string()];
    (1u64..)
        .zip(NUMBER_WORDS)
        .find(|(_, names)| has_any(&one, names))
        .map(|(n, _)| Some(n))
}

fn relative_amount(toks: &[String], today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    let later = has_any(toks, LATER);
    for pair in toks.windows(2) {
        let (Some(amount), Some(unit)) = (amount_of(&pair[0]), unit_of(&pair[1])) else {
            continue;
        };
        if later {
            return Some(Err(DateError::Future));
        }
        let back = amount.and_then(|n| match unit {
            Unit::Days => today.checked_sub_days(Days::new(n)),
            Unit::Weeks => today.checked_sub_days(Days::new(n.checked_mul(7)?)),
            Unit::Months => today.checked_sub_months(Months::new(u32::try_from(n).ok()?)),
            Unit::Years => {
                let months = u32::try_from(n.checked_mul(12)?).ok()?;
                today.checked_sub_months(Months::new(months))
            }
        });
        // Too far back to even compute is certainly too old.
        return Some(back.ok_or(DateError::TooOld));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// आज, कल, परसों, today, yesterday.

const TOMORROW: &[&str] = &["tomorrow", "tmrw", "आने वाला कल", "aane wala kal"];
const DAY_BEFORE_YESTERDAY: &[&str] = &["परसों", "परसो", "parson", "parso", "day before yesterday"];
const YESTERDAY: &[&str] = &[
    "कल",
    "kal",
    "kl",
    "yesterday",
    "yday",
    "last night",
    "beeti raat",
    "बीती रात",
];
const TODAY: &[&str] = &[
    "आज",
    "aaj",
    "aj",
    "today",
    "अभी",
    "abhi",
    "just now",
    "this morning",
    "tonight",
];

fn relative_word(toks: &[String], today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    if has_any(toks, TOMORROW) {
        return Some(Err(DateError::Future));
    }
    let back = if has_any(toks, DAY_BEFORE_YESTERDAY) {
        2
    } else if has_any(toks, YESTERDAY) {
        1
    } else if has_any(toks, TODAY) {
        0
    } else {
        return None;
    };
    Some(
        today
            .checked_sub_days(Days::new(back))
            .ok_or(DateError::TooOld),
    )
}

// ---------------------------------------------------------------------------------------------
// "12 tareekh" (the 12th), "somvar" / "last Monday".

const TAREEKH: &[&str] = &["tareekh", "tarikh", "tarik", "तारीख", "तारीख़"];

/// "12 tareekh" / "12 तारीख": the latest 12th of a month not after today.
fn day_of_this_month(toks: &[String], today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    let day = toks
        .windows(2)
        .find(|pair| has_any(&pair[1..], TAREEKH))
        .and_then(|pair| day_of(&pair[0]))?;
    let this_month = today.with_day(1)?;
    let candidates = [
        Some(this_month),
        this_month.checked_sub_months(Months::new(1)),
        this_month.checked_sub_months(Months::new(2)),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .filter_map(|first| first.with_day(day))
        .find(|date| *date <= today);
    Some(found.ok_or(DateError::Unreadable))
}

const WEEKDAYS: [&[&str]; 7] = [
    &["monday", "सोमवार", "somvar", "somwar"],
    &["tuesday", "मंगलवार", "mangalvar", "mangalwar"],
    &["wednesday", "बुधवार", "budhvar", "budhwar"],
    &[
        "thursday",
        "गुरुवार",
        "बृहस्पतिवार",
        "guruvar",
        "guruwar",
        "brihaspativar",
    ],
    &["friday", "शुक्रवार", "shukravar", "shukrawar"],
    &["saturday", "शनिवार", "shanivar", "shaniwar"],
    &[
        "sunday",
        "रविवार",
        "इतवार",
        "ravivar",
        "raviwar",
        "itwar",
        "itvar",
    ],
];
const LAST: &[&str] = &["last", "pichhle", "pichle", "पिछले", "पिछला", "previous"];

/// "somvar", "on Monday": the latest such day not after today; "last Monday" / "पिछले सोमवार"
/// on a Monday is a week ago.
fn weekday(toks: &[String], today: NaiveDate) -> Option<Result<NaiveDate, DateError>> {
    let wanted = (0u32..)
        .zip(WEEKDAYS)
        .find_map(|(n, names)| has_any(toks, names).then_some(n))?;
    let now = today.weekday().num_days_from_monday();
    let mut back = (now + 7 - wanted) % 7;
    if back == 0 && has_any(toks, LAST) {
        back = 7;
    }
    Some(
        today
            .checked_sub_days(Days::new(u64::from(back)))
            .ok_or(DateError::TooOld),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("test date")
    }

    fn today() -> NaiveDate {
        d(2026, 3, 15)
    }

    fn p(s: &str) -> Result<NaiveDate, DateError> {
        parse_past_date(s, today())
    }

    #[test]
    fn today_words_in_both_languages_are_today() {
        for s in [
            "today",
            "Today.",
            "aaj",
            "आज",
            "aaj subah",
            "आज सुबह 10 बजे",
            "abhi",
        ] {
            assert_eq!(p(s), Ok(today()), "{s}");
        }
    }

    #[test]
    fn kal_means_yesterday_when_asking_about_the_past() {
        for s in [
            "yesterday",
            "kal",
            "कल",
            "kal raat",
            "कल रात 11 बजे",
            "Kal shaam ko",
        ] {
            assert_eq!(p(s), Ok(d(2026, 3, 14)), "{s}");
        }
    }

    #[test]
    fn parson_is_the_day_before_yesterday() {
        for s in [
            "परसों",
            "parson",
            "parso",
            "day before yesterday",
            "परसों रात",
        ] {
            assert_eq!(p(s), Ok(d(2026, 3, 13)), "{s}");
        }
    }

    #[test]
    fn days_ago_in_hindi_hinglish_and_english() {
        assert_eq!(p("2 din pehle"), Ok(d(2026, 3, 13)));
        assert_eq!(p("2 दिन पहले"), Ok(d(2026, 3, 13)));
        assert_eq!(p("२ दिन पहले"), Ok(d(2026, 3, 13)));
        assert_eq!(p("3 days ago"), Ok(d(2026, 3, 12)));
        assert_eq!(p("do din pehle"), Ok(d(2026, 3, 13)));
        assert_eq!(p("तीन दिन पहले"), Ok(d(2026, 3, 12)));
        assert_eq!(p("0 din pehle"), Ok(today()));
    }

    #[test]
    fn weeks_months_and_years_ago_are_read() {
        assert_eq!(p("1 hafta pehle"), Ok(d(2026, 3, 8)));
        assert_eq!(p("a week ago"), Ok(d(2026, 3, 8)));
        assert_eq!(p("2 महीने पहले"), Ok(d(2026, 1, 15)));
        assert_eq!(p("1 saal pehle"), Ok(d(2025, 3, 15)));
    }

    #[test]
    fn an_amount_later_is_in_the_future() {
        assert_eq!(p("2 din baad"), Err(DateError::Future));
        assert_eq!(p("in 3 days from now"), Err(DateError::Future));
    }

    #[test]
    fn tomorrow_is_in_the_future() {
        assert_eq!(p("tomorrow"), Err(DateError::Future));
    }

    #[test]
    fn too_many_days_ago_is_too_old() {
        assert_eq!(p("4000 din pehle"), Err(DateError::TooOld));
        assert_eq!(p("6 saal pehle"), Err(DateError::TooOld));
        assert_eq!(
            p("99999999999999999999999999 days ago"),
            Err(DateError::TooOld)
        );
        assert_eq!(p("4294967295 years ago"), Err(DateError::TooOld));
    }

    #[test]
    fn every_written_date_form_is_read() {
        for s in [
            "10-03-2026",
            "10/03/2026",
            "10.03.2026",
            "10-03-26",
            "10/03/26",
            "10-3-2026",
            "10/3/26",
            "2026-03-10",
            "10 / 03 / 2026",
            "on 10-03-2026 at night",
            "10-03-2026.",
        ] {
            assert_eq!(p(s), Ok(d(2026, 3, 10)), "{s}");
        }
    }

    #[test]
    fn devanagari_digits_in_dates_are_read() {
        assert_eq!(p("१०-०३-२०२६"), Ok(d(2026, 3, 10)));
        assert_eq!(p("१०/३/२६"), Ok(d(2026, 3, 10)));
    }

    #[test]
    fn a_day_and_month_without_year_is_the_latest_past_one() {
        assert_eq!(p("10/03"), Ok(d(2026, 3, 10)));
        assert_eq!(p("20/12"), Ok(d(2025, 12, 20)));
        assert_eq!(p("15-03"), Ok(today()));
    }

    #[test]
    fn a_time_with_a_dot_is_not_a_date() {
        assert_eq!(p("kal raat 10.30 baje"), Ok(d(2026, 3, 14)));
    }

    #[test]
    fn month_names_in_english_and_hindi_are_read() {
        assert_eq!(p("10 March 2026"), Ok(d(2026, 3, 10)));
        assert_eq!(p("March 10, 2026"), Ok(d(2026, 3, 10)));
        assert_eq!(p("10th mar"), Ok(d(2026, 3, 10)));
        assert_eq!(p("10 मार्च 2026"), Ok(d(2026, 3, 10)));
        assert_eq!(p("२५ दिसंबर"), Ok(d(2025, 12, 25)));
        assert_eq!(p("30 फ़रवरी"), Err(DateError::Unreadable));
    }

    #[test]
    fn month_day_order_is_read_when_unambiguous() {
        assert_eq!(p("03/13/2026"), Ok(d(2026, 3, 13)));
    }

    #[test]
    fn invalid_calendar_dates_are_unreadable() {
        for s in [
            "31-02-2026",
            "32/01/2026",
            "00-01-2026",
            "13-13-2026",
            "29-02-2025",
        ] {
            assert_eq!(p(s), Err(DateError::Unreadable), "{s}");
        }
    }

    #[test]
    fn a_leap_day_is_read_in_a_leap_year() {
        assert_eq!(p("29-02-2024"), Ok(d(2024, 2, 29)));
    }

    #[test]
    fn a_date_after_today_is_future() {
        assert_eq!(p("16-03-2026"), Err(DateError::Future));
        assert_eq!(p("01/01/99"), Err(DateError::Future));
        assert_eq!(p("10-03-2030"), Err(DateError::Future));
    }

    #[test]
    fn a_date_more_than_five_years_back_is_too_old() {
        assert_eq!(p("14-03-2021"), Err(DateError::TooOld));
        assert_eq!(p("15-03-2021"), Ok(d(2021, 3, 15)));
        assert_eq!(p("01-01-1990"), Err(DateError::TooOld));
    }

    #[test]
    fn five_years_back_from_a_leap_day_is_computed() {
        let leap = d(2028, 2, 29);
        assert_eq!(parse_past_date("28-02-2023", leap), Ok(d(2023, 2, 28)));
        assert_eq!(parse_past_date("27-02-2023", leap), Err(DateError::TooOld));
    }

    #[test]
    fn a_day_number_with_tareekh_is_this_months_or_last() {
        assert_eq!(p("12 tareekh"), Ok(d(2026, 3, 12)));
        assert_eq!(p("१२ तारीख को"), Ok(d(2026, 3, 12)));
        assert_eq!(p("20 tarikh"), Ok(d(2026, 2, 20)));
        assert_eq!(p("31 tareekh"), Ok(d(2026, 1, 31)));
        assert_eq!(p("45 tareekh"), Err(DateError::Unreadable));
    }

    #[test]
    fn a_weekday_is_the_latest_one_not_after_today() {
        // 2026-03-15 is a Sunday.
        assert_eq!(today().weekday(), chrono::Weekday::Sun);
        assert_eq!(p("somvar"), Ok(d(2026, 3, 9)));
        assert_eq!(p("शनिवार रात"), Ok(d(2026, 3, 14)));
        assert_eq!(p("on Friday"), Ok(d(2026, 3, 13)));
        assert_eq!(p("sunday"), Ok(today()));
        assert_eq!(p("last sunday"), Ok(d(2026, 3, 8)));
        assert_eq!(p("पिछले रविवार"), Ok(d(2026, 3, 8)));
    }

    #[test]
    fn unrelated_text_is_unreadable() {
        for s in ["", "pata nahi", "🙂", "9876543210", "march", "kalyan nagar"] {
            assert_eq!(p(s), Err(DateError::Unreadable), "{s}");
        }
    }

    #[test]
    fn extreme_todays_do_not_panic() {
        for t in [NaiveDate::MIN, NaiveDate::MAX] {
            for s in [
                "kal",
                "parson",
                "aaj",
                "3 din pehle",
                "10-03-2026",
                "5 saal pehle",
                "10/03",
            ] {
                let _ = parse_past_date(s, t);
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>(), days in -400_000i64..400_000) {
            let t = today().checked_add_signed(chrono::TimeDelta::days(days)).unwrap_or(today());
            let _ = parse_past_date(&s, t);
        }

        #[test]
        fn never_panics_on_date_like_text(s in "[0-9०-९ ./\\-a-z]{0,40}") {
            let _ = parse_past_date(&s, today());
        }

        #[test]
        fn an_accepted_date_is_never_future_nor_too_old(s in "[0-9 ./\\-]{0,16}|[0-9]{1,4} (din|days|hafte|saal) (pehle|ago)") {
            if let Ok(date) = parse_past_date(&s, today()) {
                prop_assert!(date <= today());
                prop_assert!(date >= d(2021, 3, 15));
            }
        }

        #[test]
        fn every_recent_written_date_round_trips(back in 0u64..1800) {
            let date = today().checked_sub_days(Days::new(back)).unwrap_or(today());
            let written = date.format("%d-%m-%Y").to_string();
            prop_assert_eq!(parse_past_date(&written, today()), Ok(date));
            let slashed = date.format("%-d/%-m/%y").to_string();
            prop_assert_eq!(parse_past_date(&slashed, today()), Ok(date));
        }
    }
}
