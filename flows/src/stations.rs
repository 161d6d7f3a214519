//! The district and police-station directory the dialogue offers. Loaded by the runtime (from
//! `SEVA_STATIONS_CSV`) and passed to the engine as plain data.

use serde::{Deserialize, Serialize};

use crate::Lang;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    Station,
    ControlRoom,
}

/// One row of the stations CSV (spec §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: String,
    pub district_id: String,
    pub district_en: String,
    pub district_hi: String,
    pub name_en: String,
    pub name_hi: String,
    pub kind: StationKind,
    pub alert_language: Lang,
    pub telegram_chat_id: Option<i64>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Station {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Hi => &self.name_hi,
            Lang::En => &self.name_en,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct District {
    pub id: String,
    pub name_en: String,
    pub name_hi: String,
}

impl District {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Hi => &self.name_hi,
            Lang::En => &self.name_en,
        }
    }
}

/// Districts in first-seen order and their stations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    districts: Vec<District>,
    stations: Vec<Station>,
}

impl Directory {
    pub fn new(stations: Vec<Station>) -> Directory {
        let mut districts: Vec<District> = Vec::new();
        for s in &stations {
            if !districts.iter().any(|d| d.id == s.district_id) {
                districts.push(District {
                    id: s.district_id.clone(),
                    name_en: s.district_en.clone(),
                    name_hi: s.district_hi.clone(),
                });
            }
        }
        Directory {
            districts,
            stations,
        }
    }

    pub fn districts(&self) -> &[District] {
        &self.districts
    }

    pub fn district(&self, id: &str) -> Option<&District> {
        self.districts.iter().find(|d| d.id == id)
    }

    pub fn all(&self) -> &[Station] {
        &self.stations
    }

    pub fn station(&self, id: &str) -> Option<&Station> {
        self.stations.iter().find(|s| s.id == id)
    }

    /// The police stations (not control rooms) of a district, in file order.
    pub fn stations_in(&self, district_id: &str) -> Vec<&Station> {
        self.stations
            .iter()
            .filter(|s| s.district_id == district_id && s.kind == StationKind::Station)
            .collect()
    }

    /// The district control room, where "not sure" reports go.
    pub fn control_room(&self, district_id: &str) -> Option<&Station> {
        self.stations
            .iter()
            .find(|s| s.district_id == district_id && s.kind == StationKind::ControlRoom)
    }

    /// Stations of a district whose name (either script) contains the typed text.
    pub fn search(&self, district_id: &str, typed: &str) -> Vec<&Station> {
        let needle = typed.trim().to_lowercase();
        if needle.chars().count() < 2 {
            return Vec::new();
        }
        self.stations_in(district_id)
            .into_iter()
            .filter(|s| {
                s.name_en.to_lowercase().contains(&needle) || s.name_hi.contains(needle.as_str())
            })
            .collect()
    }

    /// The nearest station with coordinates, by great-circle distance.
    pub fn nearest(&self, latitude: f64, longitude: f64) -> Option<&Station> {
        let dist = |s: &Station| match (s.latitude, s.longitude) {
            (Some(la), Some(lo)) => Some(haversine_km(latitude, longitude, la, lo)),
            _ => None,
        };
        self.stations
            .iter()
            .filter(|s| s.kind == StationKind::Station)
            .filter_map(|s| dist(s).map(|d| (d, s)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, s)| s)
    }
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * a.sqrt().atan2((1.0 - a).sqrt())
}
