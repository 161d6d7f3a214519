//! Loads the district and police-station directory (spec §4) from `SEVA_STATIONS_CSV`.
//!
//! Lines starting with `#` are comments (the shipped example file says so in its first line).
//! The three last columns (`telegram_chat_id`, `latitude`, `longitude`) may be empty or absent.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use flows::Lang;
use flows::stations::{Directory, Station, StationKind};

const REQUIRED: [&str; 8] = [
    "id",
    "district_id",
    "district_en",
    "district_hi",
    "name_en",
    "name_hi",
    "kind",
    "alert_language",
];
const OPTIONAL: [&str; 3] = ["telegram_chat_id", "latitude", "longitude"];

/// Why the stations file could not be used; names the file and, where it can, the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct StationsError {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

/// Reads the stations file at `path`.
pub fn load(path: &Path) -> Result<Directory, StationsError> {
    let file = std::fs::File::open(path).map_err(|e| StationsError {
        file: path.display().to_string(),
        line: None,
        message: e.to_string(),
    })?;
    parse(file, &path.display().to_string())
}

/// Reads stations CSV from `input`; `name` is used in error messages.
pub fn parse(input: impl Read, name: &str) -> Result<Directory, StationsError> {
    let err = |line: Option<u64>, message: String| StationsError {
        file: name.to_owned(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);

    let headers = reader
        .headers()
        .map_err(|e| err(csv_line(&e), e.to_string()))?
        .clone();
    let header_line = headers.position().map(|p| p.line());
    let mut columns: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let Some(known) = REQUIRED.iter().chain(&OPTIONAL).find(|k| **k == h) else {
            return Err(err(header_line, format!("unknown column `{h}`")));
        };
        if columns.insert(known, i).is_some() {
            return Err(err(header_line, format!("column `{h}` appears twice")));
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !columns.contains_key(*c)) {
        return Err(err(header_line, format!("missing column `{missing}`")));
    }

    let mut stations = Vec::new();
    let mut ids = HashSet::new();
    let mut control_rooms = HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| err(csv_line(&e), e.to_string()))?;
        let line = record.position().map(|p| p.line());
        let field = |name: &str| -> Option<&str> {
            columns
                .get(name)
                .and_then(|&i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        let need = |name: &str| field(name).ok_or_else(|| err(line, format!("`{name}` is empty")));
        let number = |name: &str| -> Result<Option<f64>, StationsError> {
            field(name)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| err(line, format!("`{name}` is not a number: {v:?}")))
                })
                .transpose()
        };

        let id = need("id")?.to_owned();
        if !ids.insert(id.clone()) {
            return Err(err(line, format!("station id `{id}` appears twice")));
        }
        let kind = match need("kind")? {
            "station" => StationKind::Station,
            "control_room" => StationKind::ControlRoom,
            other => {
                return Err(err(
                    line,
                    format!("`kind` must be `station` or `control_room`, not {other:?}"),
                ));
            }
        };
        let alert_language = match need("alert_language")? {
            "hi" => Lang::Hi,
            "en" => Lang::En,
            other => {
                return Err(err(
                    line,
                    format!("`alert_language` must be `hi` or `en`, not {other:?}"),
                ));
            }
        };
        let telegram_chat_id = field("telegram_chat_id")
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| err(line, format!("`telegram_chat_id` is not an integer: {v:?}")))
            })
            .transpose()?;
        let latitude = number("latitude")?;
        let longitude = number("longitude")?;
        if latitude.is_some() != longitude.is_some() {
            return Err(err(
                line,
                "give both `latitude` and `longitude`, or neither".to_owned(),
            ));
        }
        let district_id = need("district_id")?.to_owned();
        if kind == StationKind::ControlRoom && !control_rooms.insert(district_id.clone()) {
            return Err(err(
                line,
                format!("district `{district_id}` has a second control room"),
            ));
        }
        stations.push(Station {
            id,
            district_id,
            district_en: need("district_en")?.to_owned(),
            district_hi: need("district_hi")?.to_owned(),
            name_en: need("name_en")?.to_owned(),
            name_hi: need("name_hi")?.to_owned(),
            kind,
            alert_language,
            telegram_chat_id,
            latitude,
            longitude,
        });
    }

    let directory = Directory::new(stations);
    for d in directory.districts() {
        if directory.control_room(&d.id).is_none() {
            // "Not sure" has nowhere to go in this district; the rest still works.
            tracing::warn!(district = %d.id, "stations file has no control room for this district");
        }
    }
    Ok(directory)
}

fn csv_line(e: &csv::Error) -> Option<u64> {
    e.position().map(|p| p.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "id,district_id,district_en,district_hi,name_en,name_hi,kind,alert_language";

    #[test]
    fn the_shipped_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/stations.example.csv");
        let dir = load(&path).unwrap();
        assert_eq!(dir.districts().len(), 1);
        assert_eq!(dir.districts()[0].name_hi, "पटना");
        assert_eq!(dir.stations_in("patna").len(), 12);
        assert_eq!(
            dir.control_room("patna").unwrap().name_en,
            "Patna District Control Room"
        );
        assert!(dir.all().iter().all(|s| s.latitude.is_some()));
    }

    #[test]
    fn optional_columns_may_be_absent() {
        let csv = format!("{HEADER}\ns1,d,D,डी,One,एक,station,en\n");
        let dir = parse(csv.as_bytes(), "t.csv").unwrap();
        let s = dir.station("s1").unwrap();
        assert_eq!((s.telegram_chat_id, s.latitude), (None, None));
        assert_eq!(s.alert_language, Lang::En);
    }

    #[test]
    fn errors_name_the_line() {
        let csv = format!(
            "# comment\n{HEADER}\ns1,d,D,डी,One,एक,station,hi\ns2,d,D,डी,Two,दो,thana,hi\n"
        );
        let e = parse(csv.as_bytes(), "t.csv").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("t.csv line 4: `kind`"), "{e}");

        let csv = format!("{HEADER},latitude\ns1,d,D,डी,One,एक,station,hi,north\n");
        let e = parse(csv.as_bytes(), "t.csv").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        let e = parse("id,district_id\n".as_bytes(), "t.csv").unwrap_err();
        assert!(e.message.contains("missing column `district_en`"), "{e}");
    }
}
