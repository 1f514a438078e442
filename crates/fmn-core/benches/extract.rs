//! Parse + extract over the whole corpus; throughput in messages per second (one core).
//!
//! `cargo bench -p fmn-core --bench extract`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fmn_core::message::Envelope;
use fmn_core::meta::Registry;
use serde_json::Value;

const CORPUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedmsg-examples.jsonl"
));

/// The bare envelopes of the corpus, one JSON text each, as they arrive off the bus.
fn envelopes() -> Vec<String> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("corpus line is JSON");
            record["message"].to_string()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let messages = envelopes();
    let registry = Registry::default();
    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("parse_and_extract", |b| {
        b.iter(|| {
            for json in &messages {
                let envelope = Envelope::from_json(black_box(json)).expect("valid envelope");
                black_box(registry.extract(&envelope));
            }
        })
    });
    let parsed: Vec<Envelope> = messages
        .iter()
        .map(|m| Envelope::from_json(m).expect("valid envelope"))
        .collect();
    group.bench_function("extract_only", |b| {
        b.iter(|| {
            for envelope in &parsed {
                black_box(registry.extract(black_box(envelope)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
