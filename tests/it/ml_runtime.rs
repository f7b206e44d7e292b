//! ONNX Runtime loading (issue #4, first slice): the library fetched from
//! PyPI by scripts/fetch-onnxruntime loads, and names its build.

use conduit::ml::{MlConfig, Runtime};

#[test]
fn the_fetched_onnx_runtime_library_loads() {
    let lib = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.cache/onnxruntime/libonnxruntime.so.1.31.1"
    );
    assert!(
        std::path::Path::new(lib).is_file(),
        "{lib} is missing: run scripts/fetch-onnxruntime (scripts/test does)"
    );
    let rt = Runtime::get(&MlConfig {
        ort_library: Some(lib.into()),
    })
    .expect("ONNX Runtime loads");
    assert!(
        rt.build_info().contains("ORT Build Info"),
        "{}",
        rt.build_info()
    );
    assert_eq!(rt.path(), std::path::Path::new(lib));
}
