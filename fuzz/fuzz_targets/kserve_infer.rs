#![no_main]
use conduit::fuzzing::parse_infer;
use conduit::http::{Method, Request};
use conduit::ml::model::Metadata;
use conduit::ml::{DType, TensorSpec};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const MAX_BYTES: usize = 1 << 16;

fn spec(name: &str, dtype: DType, shape: &[i64]) -> TensorSpec {
    TensorSpec::new(name, dtype, shape.to_vec(), 64)
}

// A model's metadata, built by hand: no ONNX Runtime is loaded.
static META: LazyLock<Metadata> = LazyLock::new(|| Metadata {
    inputs: vec![
        spec("x", DType::F32, &[-1, 4]),
        spec("mask", DType::Bool, &[-1, 2, -1]),
        spec("ids", DType::I64, &[-1]),
    ],
    outputs: vec![spec("y", DType::F32, &[-1, 3]), spec("z", DType::U8, &[-1])],
    max_batch_size: 8,
    text: None,
});

// Input: a flag byte; with bit 0, two bytes of Inference-Header-Content-Length
// (little-endian) follow; then the body (JSON, then binary tensors).
fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (len, body) = match rest {
        [a, b, body @ ..] if flags & 1 == 1 => {
            (Some(u16::from_le_bytes([*a, *b]).to_string()), body)
        }
        _ => (None, rest),
    };
    let headers: Vec<(&str, &str)> = len
        .iter()
        .map(|n| ("inference-header-content-length", n.as_str()))
        .collect();
    let req = Request::synthetic(Method::Post, "/v2/models/m/infer", &headers, body);
    let Ok(p) = parse_infer("m", &META, &req, MAX_BYTES) else {
        return;
    };
    assert_eq!(p.inputs.len(), META.inputs.len());
    for t in &p.inputs {
        let spec = META
            .inputs
            .iter()
            .find(|s| s.name == t.name)
            .expect("a model input");
        assert_eq!(t.dtype(), spec.dtype);
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
        assert!(t.data.len() * spec.dtype.size() <= MAX_BYTES);
    }
});
