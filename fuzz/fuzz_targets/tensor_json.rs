#![no_main]
use conduit::ml::json::{decode_data, nested_shape, FlatData, Source};
use conduit::ml::tensor::{check_input, Data};
use conduit::ml::{DType, TensorSpec};
use libfuzzer_sys::fuzz_target;

const DTYPES: [DType; 11] = [
    DType::Bool,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::F32,
    DType::F64,
];

// Input: a byte choosing the dtype (and whether the first dimension is a
// batch), then JSON data whose nested shape is checked, then decoded.
fuzz_target!(|data: &[u8]| {
    let Some((&b, json)) = data.split_first() else {
        return;
    };
    let dtype = DTYPES[usize::from(b & 0x0f) % DTYPES.len()];
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let shape = nested_shape(&v);
    let mut dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let max_batch = if b & 0x10 != 0 { 4 } else { 0 };
    if let (Some(first), true) = (dims.first_mut(), max_batch > 0) {
        *first = -1;
    }
    let spec = TensorSpec::new("x", dtype, dims, usize::MAX);
    let Ok(n) = check_input(&spec, dtype, &shape, max_batch, 4096) else {
        return;
    };
    assert_eq!(n, shape.iter().product::<usize>());
    let parsed = decode_data("x", dtype, Source::Value(&v), n);
    // Straight from the text (a KServe body's path) decodes the same.
    let raw = std::str::from_utf8(json)
        .map(|t| decode_data("x", dtype, Source::Raw(t), n))
        .ok();
    if let Some(raw) = raw {
        assert_eq!(raw.is_ok(), parsed.is_ok(), "{raw:?} vs {parsed:?}");
        if let (Ok(a), Ok(b)) = (&raw, &parsed) {
            if !matches!(dtype, DType::F32 | DType::F64) {
                assert_eq!(a, b);
            }
        }
    }
    let Ok(d) = parsed else {
        return;
    };
    assert_eq!((d.len(), d.dtype()), (n, dtype));
    let mut le = Vec::new();
    d.write_le_bytes(&mut le);
    assert_eq!(le.len(), n * dtype.size());
    assert_eq!(Data::from_le_bytes(dtype, &le), d);
    // The flat JSON we send back decodes to the same data (floats aside).
    if !matches!(dtype, DType::F32 | DType::F64) {
        let flat = serde_json::to_value(FlatData(&d)).expect("serializable");
        assert_eq!(decode_data("x", dtype, Source::Value(&flat), n).ok(), Some(d));
    }
});
