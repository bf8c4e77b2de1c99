//! Micro-benchmark of the snapshot write path on one core: chunk → hash → compress → seal,
//! each stage alone and all together, on compressible text and on random bytes. Compare the
//! figures with the per-core budget in the project's notes (~280 MiB/s for new compressible
//! data, ~800 MiB/s for incompressible data).
//!
//! Run: `cargo run --release -p zenith-snapshot --example pipeline_throughput [MiB]`

use std::hint::black_box;
use std::time::Instant;

use zenith_snapshot::chunker::{Chunker, ChunkerParams};
use zenith_snapshot::crypto::MasterKey;
use zenith_snapshot::pack::{BlobKind, BlobSealer, PackWriter};

fn text(len: usize) -> Vec<u8> {
    let words = [
        "state",
        "snapshot",
        "deploy",
        "replica",
        "canary",
        "revision",
        "health",
        "router",
        "the",
        "of",
        "and",
        "request",
        "latency",
        "error",
        "2026-11-23T02:00:00Z",
        "INFO",
        "WARN",
        "user_id=",
        "status=200",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
        if x.is_multiple_of(5) {
            out.extend_from_slice((x % 100_000).to_string().as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

fn random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn rate(bytes: usize, secs: f64) -> String {
    format!("{:>8.0} MiB/s", bytes as f64 / (1 << 20) as f64 / secs)
}

fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let key = MasterKey::generate();
    let cipher = key.cipher();
    let chunker = Chunker::new(ChunkerParams::default(), key.chunker_seed());
    println!("one thread, {mib} MiB per input; zstd level 1 (the default)");
    println!(
        "{:<12} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "input", "chunk", "hash", "compress", "seal", "all stages"
    );
    for (name, data) in [("text", text(mib << 20)), ("random", random(mib << 20))] {
        let mut chunks = Vec::new();
        let t = Instant::now();
        let mut buf = Vec::new();
        chunker
            .for_each_chunk(&mut data.as_slice(), &mut buf, |c| {
                chunks.push(c.to_vec());
                Ok(())
            })
            .unwrap();
        let chunk_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        for c in &chunks {
            black_box(key.blob_id(c));
        }
        let hash_s = t.elapsed().as_secs_f64();

        let mut comp = zstd::bulk::Compressor::new(1).unwrap();
        let t = Instant::now();
        for c in &chunks {
            black_box(comp.compress(c).unwrap());
        }
        let compress_s = t.elapsed().as_secs_f64();

        let t = Instant::now();
        for c in &chunks {
            black_box(cipher.seal(c, b"aad"));
        }
        let seal_s = t.elapsed().as_secs_f64();

        // Everything the archiver and one saver worker do per chunk, as they do it.
        let t = Instant::now();
        let mut pack = PackWriter::default();
        let mut sealer = BlobSealer::new(1).unwrap();
        chunker
            .for_each_chunk(&mut data.as_slice(), &mut buf, |c| {
                let id = key.blob_id(c);
                pack.add(BlobKind::Data, id, c, &mut sealer, &cipher)?;
                if pack.len() > 16 << 20 {
                    black_box(std::mem::take(&mut pack).finish(&cipher)?);
                }
                Ok(())
            })
            .unwrap();
        black_box(pack.finish(&cipher).unwrap());
        let all_s = t.elapsed().as_secs_f64();
        let n = data.len();
        println!(
            "{name:<12} {} {} {} {} {}",
            rate(n, chunk_s),
            rate(n, hash_s),
            rate(n, compress_s),
            rate(n, seal_s),
            rate(n, all_s)
        );
    }
}
