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
        ..MlConfig::default()
    })
    .expect("ONNX Runtime loads");
    assert!(
        rt.build_info().contains("ORT Build Info"),
        "{}",
        rt.build_info()
    );
    // Another test may have loaded it first through the search, which
    // finds this checkout's copy for a test binary under its target/.
    assert_eq!(
        rt.path().canonicalize().unwrap(),
        std::path::Path::new(lib).canonicalize().unwrap()
    );
}

/// The committed models (scripts/make_models.py) run on ONNX Runtime and
/// give numpy's answers: this pins the rc.15 session API the ML layer
/// will build on (builder from the environment, spinning off, `run`,
/// `try_extract_array`).
#[test]
fn committed_models_run_and_match_numpy() {
    use ndarray::{Array2, ArrayD};
    use ort::session::Session;
    use ort::value::Tensor;
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = format!("{root}/.cache/onnxruntime/libonnxruntime.so.1.31.1");
    let rt = Runtime::get(&MlConfig {
        ort_library: Some(lib),
        ..MlConfig::default()
    })
    .expect("ONNX Runtime loads");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/tests/fixtures/models/expected.json")).unwrap(),
    )
    .unwrap();
    let matrix = |v: &serde_json::Value| -> Array2<f32> {
        let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
        let (n, m) = (rows.len(), rows[0].len());
        Array2::from_shape_vec((n, m), rows.concat()).unwrap()
    };
    let open = |path: &str| -> Session {
        Session::builder(rt.environment())
            .unwrap()
            .with_intra_op_spinning(false)
            .map_err(|e| e.to_string())
            .unwrap()
            .with_intra_threads(1)
            .map_err(|e| e.to_string())
            .unwrap()
            .commit_from_file(format!("{root}/{path}"))
            .unwrap()
    };
    let close = |got: &ArrayD<f32>, want: &Array2<f32>| {
        assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want.iter()) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
    };
    for (name, path) in [
        ("demo", "models/demo/model.onnx"),
        ("mlp", "tests/fixtures/models/mlp/model.onnx"),
    ] {
        let mut s = open(path);
        let x = matrix(&expected[name]["input"]);
        let out = s
            .run(ort::inputs!["input" => Tensor::from_array(x).unwrap()])
            .unwrap();
        let got = out["output"].try_extract_array::<f32>().unwrap().to_owned();
        close(&got, &matrix(&expected[name]["output"]));
    }
    let mut s = open("tests/fixtures/models/two_io/model.onnx");
    let ids: Vec<Vec<i64>> = serde_json::from_value(expected["two_io"]["ids"].clone()).unwrap();
    let ids = Array2::from_shape_vec((2, 3), ids.concat()).unwrap();
    let scale = matrix(&expected["two_io"]["scale"]);
    let out = s
        .run(ort::inputs!["ids" => Tensor::from_array(ids).unwrap(), "scale" => Tensor::from_array(scale).unwrap()])
        .unwrap();
    let sum: Vec<i64> = out["sum"]
        .try_extract_array::<i64>()
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(sum, vec![6, 15]);
    close(
        &out["scaled"].try_extract_array::<f32>().unwrap().to_owned(),
        &matrix(&expected["two_io"]["scaled"]),
    );
}
