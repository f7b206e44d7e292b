//! The inference benchmark's in-process baseline: ONNX Runtime through `ort`
//! with no server around it. One session (intra-op threads as given,
//! spinning off, like Conduit's), inputs built once per batch size, `run`
//! in a loop for DURATION seconds; prints one JSON line per batch size with
//! rows (inferences) per second.
//!
//! usage: cargo run --release --example raw_ort -- MODEL.onnx THREADS DURATION_S BATCH...
//! Dynamic non-batch dims are 128 (sequence length); int64 inputs are all 1
//! (valid token ids, masks and segment ids), floats are 0.5.

use ndarray::{ArrayD, IxDyn};
use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};
use std::time::{Duration, Instant};

enum Buf {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        anyhow::bail!("usage: raw_ort MODEL.onnx THREADS DURATION_S BATCH...");
    }
    let lib = std::env::var("ORT_DYLIB_PATH")
        .unwrap_or_else(|_| ".cache/onnxruntime/libonnxruntime.so.1.31.1".into());
    let rt = conduit::ml::Runtime::get(&conduit::ml::MlConfig {
        ort_library: Some(lib),
        ..Default::default()
    })?;
    let threads: usize = a[2].parse()?;
    let duration = Duration::from_secs_f64(a[3].parse()?);
    let mut session = Session::builder(rt.environment())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_op_spinning(false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_threads(threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .commit_from_file(&a[1])?;
    let specs: Vec<(String, TensorElementType, Vec<i64>)> = session
        .inputs()
        .iter()
        .map(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => Ok((o.name().to_string(), *ty, shape.to_vec())),
            other => anyhow::bail!("input {} is {other:?}", o.name()),
        })
        .collect::<anyhow::Result<_>>()?;
    for b in &a[4..] {
        let batch: usize = b.parse()?;
        let bufs: Vec<(String, Buf)> = specs
            .iter()
            .map(|(name, ty, shape)| {
                let dims: Vec<usize> = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| match (i, d) {
                        (0, -1) => batch,
                        (_, -1) => 128,
                        (_, d) => d as usize,
                    })
                    .collect();
                let buf = match ty {
                    TensorElementType::Int64 => Buf::I64(ArrayD::from_elem(IxDyn(&dims), 1)),
                    _ => Buf::F32(ArrayD::from_elem(IxDyn(&dims), 0.5)),
                };
                (name.clone(), buf)
            })
            .collect();
        let run = |session: &mut Session| -> anyhow::Result<()> {
            let inputs: Vec<(&str, SessionInputValue<'_>)> = bufs
                .iter()
                .map(|(n, b)| {
                    let v: SessionInputValue<'_> = match b {
                        Buf::F32(x) => TensorRef::from_array_view(x.view())?.into(),
                        Buf::I64(x) => TensorRef::from_array_view(x.view())?.into(),
                    };
                    Ok((n.as_str(), v))
                })
                .collect::<anyhow::Result<_>>()?;
            let out = session.run(inputs)?;
            drop(out);
            Ok(())
        };
        run(&mut session)?; // warm-up
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < duration {
            run(&mut session)?;
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"batch\":{batch},\"threads\":{threads},\"runs\":{runs},\"inferences_per_s\":{:.1},\"ms_per_run\":{:.3}}}",
            (runs * batch as u64) as f64 / secs,
            secs * 1000.0 / runs as f64
        );
    }
    Ok(())
}
