//! Telegram update parsing (teloxide's `Update`, then Seva's translation into events), beside
//! a trivial baseline measured in the same run: parsing the same bytes into a
//! `serde_json::Value`, and copying them.
//!
//! `cargo bench -p seva-bot --bench update`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn text_update() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "update_id": 10_000_001,
        "message": {
            "message_id": 5001,
            "date": 1_749_416_383,
            "from": { "id": 111_222_333, "is_bot": false, "first_name": "Asha", "language_code": "hi" },
            "chat": { "id": 111_222_333, "type": "private", "first_name": "Asha" },
            "text": "My bicycle was stolen from the market in the afternoon.",
        }
    }))
    .unwrap()
}

fn callback_update() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "update_id": 10_000_002,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": { "id": 111_222_333, "is_bot": false, "first_name": "Asha", "language_code": "hi" },
            "chat_instance": "-8123456789",
            "data": "menu:complaint",
            "message": {
                "message_id": 77,
                "date": 1_749_416_380,
                "from": { "id": 4242, "is_bot": true, "first_name": "Seva", "username": "seva_bot" },
                "chat": { "id": 111_222_333, "type": "private", "first_name": "Asha" },
                "text": "What would you like to do?",
            }
        }
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    for (name, body) in [("text", text_update()), ("callback", callback_update())] {
        let mut g = c.benchmark_group(format!("telegram_update_{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("baseline_copy", |b| {
            b.iter(|| black_box(black_box(&body).to_vec()))
        });
        g.bench_function("baseline_serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
        });
        g.bench_function("parse_update", |b| {
            b.iter(|| bot::inbound::parse_update(black_box(&body)).unwrap())
        });
        g.bench_function("parse_and_translate", |b| {
            b.iter(|| {
                let update = bot::inbound::parse_update(black_box(&body)).unwrap();
                bot::inbound::translate(&update)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
