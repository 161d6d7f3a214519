//! WhatsApp notification parsing and signature checking, each beside a trivial baseline
//! measured in the same run: copying the payload, and parsing the same bytes into a
//! `serde_json::Value`.
//!
//! `cargo bench -p seva-webhook --bench notification`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const SECRET: &[u8] = b"bench-app-secret";

/// A notification as Meta sends it for one typed message.
fn notification() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": "Asha" }, "wa_id": "919876543210" }],
            "messages": [{ "from": "919876543210", "id": "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggINAAAAAAAA==",
                "timestamp": "1749416383", "type": "text",
                "text": { "body": "My bicycle was stolen from the market in the afternoon." } }],
        }}]}],
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let body = notification();
    let signature = webhook::signature::sign(SECRET, &body);
    let mut g = c.benchmark_group("whatsapp_notification");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("baseline_copy", |b| {
        b.iter(|| black_box(black_box(&body).to_vec()))
    });
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
    });
    g.bench_function("parse", |b| {
        b.iter(|| webhook::parse(black_box(&body)).unwrap())
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| {
            webhook::signature::verify(SECRET, black_box(&body), [black_box(signature.as_bytes())])
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
