//! The text embedding benchmark's Rust in-process ceiling (benches/text):
//! the `tokenizers` and `ort` crates Conduit uses, with no server around
//! them. Batches of BATCH consecutive texts of TEXTS_JSON (cycling) are
//! tokenized (`encode_batch_fast`, truncated at max_seq_length from
//! sentence_bert_config.json, padded to the batch's longest text), run by
//! one session (intra-op threads as given, spinning off, like Conduit's),
//! mean-pooled over the mask and L2-normalized. Prints one JSON line per
//! batch size: texts/s, p50/p99 per batch, tokens per text, CPU per 1,000
//! texts (the process's threads, from /proc/self/task/*/schedstat).
//!
//! usage: cargo run --release --example text_ort -- MODEL_DIR TEXTS_JSON THREADS DURATION_S WARMUP_S BATCH...

use ndarray::Array2;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use std::path::Path;
use std::time::{Duration, Instant};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// CPU time of this process's live threads, in ns.
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 7 {
        anyhow::bail!("usage: text_ort MODEL_DIR TEXTS_JSON THREADS DURATION_S WARMUP_S BATCH...");
    }
    let dir = Path::new(&a[1]);
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(&a[2])?)?;
    let threads: usize = a[3].parse()?;
    let duration = Duration::from_secs_f64(a[4].parse()?);
    let warmup = Duration::from_secs_f64(a[5].parse()?);
    let max_len = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("max_seq_length")?.as_u64())
        .unwrap_or(256) as usize;

    let mut tok =
        Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pad = tok.get_padding().cloned().unwrap_or_default();
    tok.with_padding(Some(PaddingParams {
        pad_id: pad.pad_id,
        pad_token: pad.pad_token,
        ..PaddingParams::default() // BatchLongest
    }));
    tok.with_truncation(Some(TruncationParams {
        max_length: max_len,
        ..TruncationParams::default()
    }))
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    let lib = std::env::var("ORT_DYLIB_PATH")
        .unwrap_or_else(|_| ".cache/onnxruntime/libonnxruntime.so.1.31.1".into());
    let rt = conduit::ml::Runtime::get(&conduit::ml::MlConfig {
        ort_library: Some(lib),
        ..Default::default()
    })?;
    let mut session = Session::builder(rt.environment())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_op_spinning(false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_inter_op_spinning(false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_threads(threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .commit_from_file(dir.join("model.onnx"))?;
    let inputs: Vec<String> = session
        .inputs()
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    let outs: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    let out_name = outs
        .iter()
        .find(|n| *n == "last_hidden_state")
        .or(outs.first())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no outputs"))?;

    // One batch, end to end; returns (real tokens, padded tokens).
    let mut embed = |chunk: Vec<&str>| -> anyhow::Result<(usize, usize)> {
        let encs = tok
            .encode_batch_fast(chunk, true)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (rows, width) = (encs.len(), encs.first().map_or(0, |e| e.len()));
        let grid = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> anyhow::Result<Array2<i64>> {
            let flat: Vec<i64> = encs
                .iter()
                .flat_map(|e| f(e).iter().map(|&x| i64::from(x)))
                .collect();
            Ok(Array2::from_shape_vec((rows, width), flat)?)
        };
        let ids = grid(&|e| e.get_ids())?;
        let mask = grid(&|e| e.get_attention_mask())?;
        let types = grid(&|e| e.get_type_ids())?;
        let feed: Vec<(&str, SessionInputValue<'_>)> = inputs
            .iter()
            .map(|n| {
                let x = match n.as_str() {
                    "input_ids" => &ids,
                    "attention_mask" => &mask,
                    _ => &types,
                };
                Ok((n.as_str(), TensorRef::from_array_view(x.view())?.into()))
            })
            .collect::<anyhow::Result<_>>()?;
        let out = session.run(feed)?;
        let v = out
            .get(out_name.as_str())
            .ok_or_else(|| anyhow::anyhow!("no output {out_name}"))?;
        let (shape, data) = v.try_extract_tensor::<f32>()?;
        let dim = *shape.last().unwrap_or(&0) as usize;
        let mut real = 0;
        for (r, e) in encs.iter().enumerate() {
            let m = e.get_attention_mask();
            let mut sum = vec![0f32; dim];
            let mut n = 0f32;
            for (k, &mk) in m.iter().enumerate() {
                if mk == 1 {
                    let base = (r * width + k) * dim;
                    sum.iter_mut()
                        .zip(&data[base..base + dim])
                        .for_each(|(s, x)| *s += x);
                    n += 1.0;
                }
            }
            real += n as usize;
            let norm = sum
                .iter()
                .map(|x| (x / n.max(1e-9)).powi(2))
                .sum::<f32>()
                .sqrt()
                .max(1e-12);
            std::hint::black_box(
                sum.iter()
                    .map(|x| x / n.max(1e-9) / norm)
                    .collect::<Vec<f32>>(),
            );
        }
        Ok((real, rows * width))
    };

    for b in &a[6..] {
        let batch: usize = b.parse()?;
        let mut at = 0usize;
        let next = |at: &mut usize| -> Vec<&str> {
            let c = (0..batch)
                .map(|j| texts[(*at + j) % texts.len()].as_str())
                .collect();
            *at += batch;
            c
        };
        let w = Instant::now();
        while w.elapsed() < warmup {
            embed(next(&mut at))?;
        }
        let (mut lat, mut n, mut real, mut padded) = (Vec::new(), 0usize, 0usize, 0usize);
        let c0 = cpu_ns();
        let start = Instant::now();
        while start.elapsed() < duration {
            let chunk = next(&mut at);
            let t = Instant::now();
            let (r, p) = embed(chunk)?;
            lat.push(t.elapsed().as_micros() as u64);
            n += batch;
            real += r;
            padded += p;
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = (cpu_ns() - c0) as f64;
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "{{\"batch\":{batch},\"threads\":{threads},\"texts_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"tokens_per_text\":{:.1},\"padded_per_text\":{:.1},\"cpu_ms_per_1k\":{:.1}}}",
            n as f64 / secs,
            pct(0.5),
            pct(0.99),
            real as f64 / n as f64,
            padded as f64 / n as f64,
            cpu / n as f64 / 1e3
        );
    }
    Ok(())
}
