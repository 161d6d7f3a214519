//! Reading what citizens type. Every function is pure and total: any input, no panic.
//!
//! * [`digits`] — Devanagari digits (०-९) read as 0-9.
//! * [`words`] — folding, global commands (whole message only), yes/no, menu intents with negation.
//! * [`phone`] — Indian mobile numbers to E.164.
//! * [`date`] — "today", "yesterday", आज, कल, परसों, dd-mm-yyyy, dd/mm/yy; never in the future.
//! * [`imei`] — IMEI with the Luhn digit; identity document numbers masked to the last 4.
//! * [`text`] — bounded free text with a clear reason when it is refused.

pub mod date;
pub mod digits;
pub mod imei;
pub mod phone;
pub mod text;
pub mod words;
