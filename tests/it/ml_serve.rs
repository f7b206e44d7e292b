//! Inference over the wire (issue #4): the KServe v2 routes on real
//! models, batching seen in /metrics, the LRU under a memory budget, models
//! that fail to load, a server without ONNX Runtime, models as MCP tools.
//! (tests/triton/ checks the same routes with the tritonclient package.)

use crate::support::*;
use conduit::config::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn ort_lib() -> String {
    format!("{ROOT}/.cache/onnxruntime/libonnxruntime.so.1.31.1")
}

/// A fresh model repository under the temp dir.
fn temp_repo(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "conduit-models-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copies fixture model `src` (under tests/fixtures) into `repo/name`, with `config`.
fn add_model(repo: &Path, src: &str, name: &str, config: Option<&str>) {
    let dir = repo.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        format!("{ROOT}/tests/fixtures/{src}/model.onnx"),
        dir.join("model.onnx"),
    )
    .unwrap();
    if let Some(c) = config {
        std::fs::write(dir.join("config.toml"), c).unwrap();
    }
}

fn ml_config(repo: &Path, eager: bool) -> Config {
    let mut cfg = test_config();
    cfg.ml.models = repo.display().to_string();
    cfg.ml.ort_library = Some(ort_lib());
    cfg.ml.eager_load = eager;
    cfg
}

fn post_json(addr: SocketAddr, path: &str, body: &Value) -> RawResponse {
    let b = body.to_string();
    let raw = http_request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        b.as_bytes(),
    );
    exchange(addr, &raw).0
}

fn get_path(addr: SocketAddr, path: &str) -> RawResponse {
    exchange(addr, &http_request("GET", path, &[], b"")).0
}

fn mlp_row(i: usize) -> Vec<f32> {
    (0..16).map(|j| ((i * 16 + j) as f32).sin()).collect()
}

fn mlp_request(rows: &[Vec<f32>]) -> Value {
    json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [rows.len(), 16], "data": rows}]})
}

#[track_caller]
fn infer_ok(addr: SocketAddr, model: &str, body: &Value) -> Value {
    let r = post_json(addr, &format!("/v2/models/{model}/infer"), body);
    assert_eq!(r.status, 200, "{model}: {}", r.body_str());
    r.json()
}

/// The value of one Prometheus sample line (`name{labels} value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn index(addr: SocketAddr) -> Vec<Value> {
    let r = post_json(addr, "/v2/repository/index", &json!({}));
    assert_eq!(r.status, 200);
    r.json().as_array().cloned().unwrap()
}

fn state_of(addr: SocketAddr, name: &str) -> Value {
    index(addr)
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the index"))
}

/// Waits until the background loader has tried every model.
fn wait_all_tried(addr: SocketAddr) -> Vec<Value> {
    wait_for(Duration::from_secs(30), "models never loaded", || {
        let idx = index(addr);
        if idx.iter().all(|e| e["state"] != "UNLOADED") {
            Ok(idx)
        } else {
            Err(idx)
        }
    })
}

#[test]
fn two_io_answers_json_and_binary_like_numpy() {
    let repo = temp_repo("twoio");
    add_model(&repo, "models/two_io", "two_io", None);
    let srv = spawn_server(ml_config(&repo, false));
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/tests/fixtures/models/expected.json")).unwrap(),
    )
    .unwrap();
    let e = &expected["two_io"];
    let body = json!({
        "id": "req-1",
        "inputs": [
            {"name": "scale", "datatype": "FP32", "shape": [2, 1], "data": e["scale"]},
            {"name": "ids", "datatype": "INT64", "shape": [2, 3], "data": e["ids"]},
        ]
    });
    let v = infer_ok(srv.addr, "two_io", &body);
    assert_eq!(v["id"], "req-1");
    assert_eq!(v["model_name"], "two_io");
    let out = |name: &str| {
        v["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(out("sum")["datatype"], "INT64");
    assert_eq!(out("sum")["shape"], json!([2, 1]));
    assert_eq!(out("sum")["data"], json!([6, 15]));
    assert_eq!(
        out("scaled")["data"],
        json!([0.5, 1.0, 1.5, 8.0, 10.0, 12.0])
    );

    // Binary in, one binary output out.
    let mut bin = Vec::new();
    for x in [1i64, 2, 3, 4, 5, 6] {
        bin.extend_from_slice(&x.to_le_bytes());
    }
    for x in [0.5f32, 2.0] {
        bin.extend_from_slice(&x.to_le_bytes());
    }
    let head = json!({
        "inputs": [
            {"name": "ids", "datatype": "INT64", "shape": [2, 3], "parameters": {"binary_data_size": 48}},
            {"name": "scale", "datatype": "FP32", "shape": [2, 1], "parameters": {"binary_data_size": 8}},
        ],
        "outputs": [{"name": "sum", "parameters": {"binary_data": true}}]
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend_from_slice(&bin);
    let hl = head.len().to_string();
    let raw = http_request(
        "POST",
        "/v2/models/two_io/infer",
        &[("Inference-Header-Content-Length", &hl)],
        &body,
    );
    let r = exchange(srv.addr, &raw).0;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let n: usize = r
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body[..n]).unwrap();
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 16);
    let sums: Vec<i64> = r.body[n..]
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(sums, vec![6, 15]);
}

#[test]
fn bad_requests_get_400_404_and_never_500() {
    let repo = temp_repo("bad");
    add_model(&repo, "models/mlp", "mlp", None);
    let srv = spawn_server(ml_config(&repo, false));
    let a = srv.addr;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 15], "data": vec![0.0; 15]}]}),
            400,
            "shape",
        ),
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 16], "data": vec![0.0; 16]}]}),
            400,
            "datatype",
        ),
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": vec![0.0; 15]}]}),
            400,
            "elements",
        ),
        (
            "mlp",
            json!({"inputs": [{"name": "nope", "datatype": "FP32", "shape": [1, 16], "data": vec![0.0; 16]}]}),
            400,
            "no input",
        ),
        ("mlp", json!({"inputs": []}), 400, "missing"),
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4294967296u64, 4294967296u64], "data": []}]}),
            400,
            "shape",
        ),
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [64, 16], "data": []}]}),
            400,
            "batch",
        ),
        (
            "mlp",
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": vec![0.0; 16]}], "outputs": [{"name": "x"}]}),
            400,
            "no output",
        ),
        ("mlp", json!([1, 2]), 400, "object"),
        ("nope", json!({}), 404, "unknown model"),
    ];
    for (model, body, status, needle) in cases {
        let r = post_json(a, &format!("/v2/models/{model}/infer"), &body);
        assert_eq!(r.status, status, "{body}: {}", r.body_str());
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(needle), "{body}: {err:?} lacks {needle:?}");
    }
    let r = post_json(a, "/v2/models/..%2f..%2fetc/infer", &json!({}));
    assert_eq!(r.status, 400, "{}", r.body_str());
    let r = get_path(a, "/v2/models/mlp/versions/7");
    assert_eq!(r.status, 404, "{}", r.body_str());
    // The repository API is off by default (SECURITY.md I4).
    let r = post_json(a, "/v2/repository/models/mlp/unload", &json!({}));
    assert_eq!(r.status, 403, "{}", r.body_str());
    // Still serving.
    infer_ok(a, "mlp", &mlp_request(&[mlp_row(0)]));
}

#[test]
fn concurrent_one_row_requests_are_batched_and_measured() {
    let repo = temp_repo("batch");
    add_model(
        &repo,
        "models/mlp",
        "mlp",
        Some("max_batch_size = 64\nmax_queue_delay_us = 20000\n"),
    );
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let alone = infer_ok(a, "mlp", &mlp_request(&[mlp_row(5)]));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            std::thread::spawn(move || {
                let v = infer_ok(a, "mlp", &mlp_request(&[mlp_row(i)]));
                (i, v["outputs"][0]["data"].clone())
            })
        })
        .collect();
    for t in threads {
        let (i, data) = t.join().unwrap();
        assert_eq!(data.as_array().unwrap().len(), 4);
        if i == 5 {
            // Batched with others, the row's answer is the one it got alone.
            let want = alone["outputs"][0]["data"].as_array().unwrap();
            for (x, y) in data.as_array().unwrap().iter().zip(want) {
                assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5);
            }
        }
    }
    let text = get_path(a, "/metrics").body_str();
    let count = metric(&text, "conduit_inference_batch_size_count{model=\"mlp\"}").unwrap();
    let sum = metric(&text, "conduit_inference_batch_size_sum{model=\"mlp\"}").unwrap();
    assert_eq!(sum, 65.0, "{text}");
    assert!(
        count < 65.0,
        "65 rows ran in {count} batches: never batched"
    );
    let requests = metric(
        &text,
        "conduit_inference_requests_total{model=\"mlp\",outcome=\"success\"}",
    );
    assert_eq!(requests, Some(65.0));
    for series in [
        "conduit_inference_queue_seconds_count{model=\"mlp\"}",
        "conduit_inference_compute_seconds_count{model=\"mlp\"}",
    ] {
        assert!(metric(&text, series).unwrap() > 0.0, "{series}");
    }
    let stats = get_path(a, "/v2/models/mlp/stats").json();
    assert_eq!(stats["model_stats"][0]["inference_count"], 65);
    assert_eq!(stats["model_stats"][0]["execution_count"], count as u64);
}

#[test]
fn models_that_cannot_load_say_why_and_the_others_keep_serving() {
    let repo = temp_repo("broken");
    add_model(&repo, "models/mlp", "mlp", None);
    add_model(&repo, "unsupported/fp16_input", "fp16", None);
    std::fs::create_dir_all(repo.join("corrupt")).unwrap();
    std::fs::write(repo.join("corrupt/model.onnx"), b"this is not a protobuf").unwrap();
    std::fs::create_dir_all(repo.join("missing")).unwrap();
    std::fs::write(repo.join("missing/config.toml"), "max_batch_size = 0\n").unwrap();
    std::fs::create_dir_all(repo.join("badconfig")).unwrap();
    std::fs::write(repo.join("badconfig/config.toml"), "max_batch = 1\n").unwrap();
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let idx = wait_all_tried(a);
    let reason = |name: &str| -> String {
        let e = idx.iter().find(|e| e["name"] == name).unwrap();
        assert_eq!(e["state"], "UNAVAILABLE", "{e}");
        e["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("corrupt").contains("ONNX Runtime cannot load"));
    assert!(reason("missing").contains("no model file"));
    assert!(reason("fp16").contains("Float16"), "{}", reason("fp16"));
    assert!(reason("badconfig").contains("max_batch"));
    assert_eq!(state_of(a, "mlp")["state"], "READY");
    for bad in ["corrupt", "missing", "fp16"] {
        let r = post_json(
            a,
            &format!("/v2/models/{bad}/infer"),
            &mlp_request(&[mlp_row(0)]),
        );
        assert_eq!(r.status, 503, "{}", r.body_str());
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("failed to load"));
        assert_eq!(get_path(a, &format!("/v2/models/{bad}/ready")).status, 503);
    }
    infer_ok(a, "mlp", &mlp_request(&[mlp_row(1), mlp_row(2)]));
}

/// `conduit_model_memory_bytes` of each model.
fn memory(addr: SocketAddr, names: &[&str]) -> Vec<f64> {
    let text = get_path(addr, "/metrics").body_str();
    names
        .iter()
        .map(|n| {
            metric(
                &text,
                &format!("conduit_model_memory_bytes{{model=\"{n}\"}}"),
            )
            .unwrap_or(0.0)
        })
        .collect()
}

fn lru_repo() -> PathBuf {
    let repo = temp_repo("lru");
    for n in ["warm", "a", "b", "c"] {
        add_model(&repo, "models/mlp", n, None);
    }
    repo
}

/// Loads and unloads `warm`, so one-time ONNX Runtime costs are not charged to `a`.
fn warm_up(addr: SocketAddr) {
    assert_eq!(
        post_json(addr, "/v2/repository/models/warm/load", &json!({})).status,
        200
    );
    assert_eq!(
        post_json(addr, "/v2/repository/models/warm/unload", &json!({})).status,
        200
    );
}

#[test]
fn lru_evicts_the_least_recently_used_idle_model_and_reloads_it() {
    // Child processes: memory is measured process-wide, and other tests here allocate.
    let repo = lru_repo();
    let models = repo.display().to_string();
    let common = ["--models", models.as_str()];
    let env_base = [
        ("CONDUIT_ML_EAGER_LOAD", "false"),
        ("CONDUIT_ML_REPOSITORY_API", "true"),
        ("CONDUIT_ML_ORT_LIBRARY", ""),
    ];
    let lib = ort_lib();
    let mut env: Vec<(&str, &str)> = env_base.to_vec();
    env[2].1 = lib.as_str();

    // 1. No budget: how much does each copy take?
    let p = start_binary_with(&common, &env, None);
    warm_up(p.addr);
    for n in ["a", "b", "c"] {
        infer_ok(p.addr, n, &mlp_request(&[mlp_row(0)]));
    }
    let m = memory(p.addr, &["a", "b", "c"]);
    drop(p);
    assert!(m.iter().all(|&x| x > 0.0), "memory not measured: {m:?}");
    let biggest = m.iter().cloned().fold(0.0, f64::max);
    // Room for two, not three.
    let budget = ((biggest * 2.5) as u64).to_string();

    // 2. A budget for two models, three in use.
    env.push(("CONDUIT_ML_MEMORY_BUDGET_BYTES", budget.as_str()));
    let p = start_binary_with(&common, &env, None);
    warm_up(p.addr);
    let row = mlp_request(&[mlp_row(3)]);
    let first = infer_ok(p.addr, "a", &row);
    infer_ok(p.addr, "b", &row);
    infer_ok(p.addr, "c", &row);
    let states = |p: &Proc| -> Vec<String> {
        ["a", "b", "c"]
            .iter()
            .map(|n| state_of(p.addr, n)["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        states(&p),
        ["UNLOADED", "READY", "READY"],
        "budget {budget}, sizes {m:?}"
    );
    // `a` comes back transparently, and `b` (now the least recently used) goes.
    let again = infer_ok(p.addr, "a", &row);
    assert_eq!(again["outputs"], first["outputs"]);
    assert_eq!(states(&p), ["READY", "UNLOADED", "READY"]);
}

#[test]
fn without_onnx_runtime_the_server_runs_and_inference_says_how_to_fix_it() {
    // A library named on purpose (ORT_DYLIB_PATH) that is missing is the
    // only place looked: the server does not fall back to another copy.
    let dir = temp_repo("noort");
    add_model(&dir, "models/mlp", "mlp", None);
    let models = dir.display().to_string();
    let missing = dir.join("no-such-libonnxruntime.so").display().to_string();
    let p = start_binary_with(
        &["--models", models.as_str()],
        &[("ORT_DYLIB_PATH", missing.as_str())],
        Some(&dir),
    );
    let r = get_path(p.addr, "/plaintext");
    assert_eq!(r.status, 200);
    let r = post_json(p.addr, "/v2/models/mlp/infer", &mlp_request(&[mlp_row(0)]));
    assert_eq!(r.status, 503, "{}", r.body_str());
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("scripts/fetch-onnxruntime"), "{err}");
    // SECURITY.md I10: where the server looked stays in its log.
    assert!(!err.contains(&missing), "{err}");
    assert_eq!(get_path(p.addr, "/v2/health/ready").status, 503);
    assert_eq!(get_path(p.addr, "/v2/health/live").status, 200);
}

#[test]
fn without_a_model_repository_onnx_runtime_loads_on_first_use() {
    // The library is found (ORT_DYLIB_PATH) but no repository is configured.
    let lib = ort_lib();
    let p = start_binary_with(&[], &[("ORT_DYLIB_PATH", lib.as_str())], None);
    let mapped = || {
        std::fs::read_to_string(format!("/proc/{}/maps", p.child.id()))
            .unwrap()
            .contains("libonnxruntime")
    };
    assert_eq!(get_path(p.addr, "/plaintext").status, 200);
    assert!(!mapped(), "HTTP alone must not map ONNX Runtime (~20 MiB)");
    assert_eq!(get_path(p.addr, "/v2/health/ready").status, 200);
    assert!(mapped(), "a request that needs it loads it");
}

#[test]
fn models_are_mcp_tools_that_share_the_batcher() {
    let repo = temp_repo("tools");
    add_model(&repo, "models/two_io", "two_io", None);
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    wait_all_tried(a);
    let sid = crate::mcp_http::initialize(a);
    let tools = crate::mcp_http::result(a, &sid, "tools/list", json!({}));
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"list_models") && names.contains(&"model_two_io"),
        "{names:?}"
    );
    let listed = crate::mcp_http::result(
        a,
        &sid,
        "tools/call",
        json!({"name": "list_models", "arguments": {}}),
    );
    assert_eq!(listed["structuredContent"]["models"][0]["name"], "two_io");
    assert_eq!(
        listed["structuredContent"]["models"][0]["inputs"][0]["name"],
        "ids"
    );
    // Nested arrays, one row without its batch dimension, and {data, shape}.
    let r = crate::mcp_http::result(
        a,
        &sid,
        "tools/call",
        json!({"name": "model_two_io", "arguments": {
            "ids": [1, 2, 3],
            "scale": {"data": [2.0], "shape": [1, 1]},
        }}),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    let out = &r["structuredContent"]["outputs"];
    assert_eq!(out["sum"]["data"], json!([6]), "{r}");
    assert_eq!(out["scaled"]["data"], json!([2.0, 4.0, 6.0]), "{r}");
    // A bad input is a tool error the agent can read, not a protocol error.
    let r = crate::mcp_http::result(
        a,
        &sid,
        "tools/call",
        json!({"name": "model_two_io", "arguments": {"ids": [[1, 2]], "scale": [[1.0]]}}),
    );
    assert_eq!(r["isError"], json!(true), "{r}");
    // The MCP call went through the model's batcher: counted with HTTP requests.
    let text = get_path(a, "/metrics").body_str();
    assert_eq!(
        metric(
            &text,
            "conduit_inference_requests_total{model=\"two_io\",outcome=\"success\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn an_oversized_inference_body_gets_413_json_before_it_is_read() {
    let repo = temp_repo("big");
    add_model(&repo, "models/mlp", "mlp", None);
    let mut cfg = ml_config(&repo, false);
    cfg.ml.max_input_bytes = 1024;
    let srv = spawn_server(cfg);
    let raw =
        "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\r\n";
    let (r, _) = exchange(srv.addr, raw.as_bytes());
    assert_eq!(r.status, 413);
    assert!(r.closes());
    assert!(r.json()["error"].as_str().unwrap().contains("too large"));
}

/// One row for `tests/fixtures/slow`, whose run keeps its instance busy
/// for ~0.2 s (80 chained 512×512 products).
fn slow_request() -> Value {
    json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [0.001]}]})
}

/// Sends `n` requests to `model` at once, each on its own connection.
fn concurrently(addr: SocketAddr, model: &str, n: usize) -> Vec<RawResponse> {
    let path = format!("/v2/models/{model}/infer");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| post_json(addr, &path, &slow_request())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_a_queue_timeout_504() {
    let repo = temp_repo("slow");
    // One instance, one queue slot: while a run takes ~0.2 s, a third request has nowhere to wait.
    add_model(
        &repo,
        "slow",
        "full",
        Some("max_batch_size = 0\nmax_queue_size = 1\n"),
    );
    // A request queued behind a ~0.2 s run outwaits a 5 ms queue timeout.
    add_model(
        &repo,
        "slow",
        "late",
        Some("max_batch_size = 0\nqueue_timeout_ms = 5\n"),
    );
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    for e in wait_all_tried(a) {
        assert_eq!(e["state"], "READY", "{e}");
    }

    // Each answer is a success or the expected refusal, never anything else.
    let check = |answers: &[RawResponse], refusal: u16, why: &str| -> usize {
        let mut refused = 0;
        for r in answers {
            if r.status == 200 {
                assert_eq!(r.json()["outputs"][0]["shape"], json!([1, 1]));
                continue;
            }
            assert_eq!(r.status, refusal, "{}", r.body_str());
            let msg = r.json()["error"].as_str().unwrap().to_string();
            assert!(msg.contains(why), "{msg}");
            refused += 1;
        }
        refused
    };

    let answers = concurrently(a, "full", 4);
    let refused = check(&answers, 503, "queue is full");
    assert!(
        refused >= 1,
        "one run and one queue slot cannot take four requests"
    );
    // See: #13 (9). Queue-full refusals are failures in the statistics.
    let stats = get_path(a, "/v2/models/full/stats").json();
    let failed = stats["model_stats"][0]["inference_stats"]["fail"]["count"].as_u64();
    assert_eq!(failed, Some(refused as u64), "{stats}");
    for r in answers.iter().filter(|r| r.status == 503) {
        let secs: u64 = r
            .header("Retry-After")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(secs >= 1);
    }

    let answers = concurrently(a, "late", 2);
    assert!(
        check(&answers, 504, "longer than 5 ms") >= 1,
        "one of two waits ~0.2 s behind the other"
    );

    // Both models still serve. A lone request on `late` can itself outwait
    // 5 ms on a stalled machine, so it gets a few tries.
    infer_ok(a, "full", &slow_request());
    let served = (0..20).any(|_| {
        let r = post_json(a, "/v2/models/late/infer", &slow_request());
        assert!(r.status == 200 || r.status == 504, "{}", r.body_str());
        r.status == 200
    });
    assert!(served, "late never served a lone request");
}

/// Starts the real binary serving `repo` (memory is measured per process).
fn start_model_server(repo: &Path) -> Proc {
    let lib = ort_lib();
    start_binary_with(
        &["--models", &repo.display().to_string()],
        &[("CONDUIT_ML_ORT_LIBRARY", &lib)],
        None,
    )
}

#[test]
fn a_huge_json_body_costs_at_most_a_small_multiple_of_its_size() {
    // See: #13 (3). The whole body used to become a serde_json::Value
    // (about 20 x its size) before the shape was checked.
    let repo = temp_repo("amplify");
    add_model(&repo, "models/mlp", "mlp", None);
    let p = start_model_server(&repo);
    infer_ok(p.addr, "mlp", &mlp_request(&[mlp_row(0)]));
    let n = 4 * 1024 * 1024;
    let mut body = String::with_capacity(4 * n + 200);
    body.push_str(r#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,15],"data":["#);
    body.push_str(&"0.5,".repeat(n));
    body.push_str(r#"0]}]}"#);
    let body_kib = body.len() as u64 / 1024;
    for (shape, needle) in [("[1,15]", "shape"), ("[1,16]", "elements")] {
        let before = p.status_kib("VmHWM");
        let b = body.replacen("[1,15]", shape, 1);
        let raw = http_request(
            "POST",
            "/v2/models/mlp/infer",
            &[("Content-Type", "application/json")],
            b.as_bytes(),
        );
        let r = exchange(p.addr, &raw).0;
        assert_eq!(r.status, 400, "{}", r.body_str());
        assert!(r.body_str().contains(needle), "{}", r.body_str());
        let grown = p.status_kib("VmHWM").saturating_sub(before);
        assert!(
            grown <= 3 * body_kib,
            "{shape}: peak memory grew {grown} KiB for a {body_kib} KiB body"
        );
    }
}

/// A `bert_like` request with these token ids, mask and type ids (one row).
fn bert_request(ids: &[i64], mask: &[i64], types: &[i64]) -> Value {
    let input = |name: &str, v: &[i64]| json!({"name": name, "datatype": "INT64", "shape": [1, v.len()], "data": v});
    json!({"inputs": [input("input_ids", ids), input("attention_mask", mask), input("token_type_ids", types)]})
}

#[test]
fn text_model_inputs_outside_what_the_model_declares_are_400_naming_it() {
    // See: #13 (4, 9). These reached ONNX Runtime and came back as 500s
    // carrying its source paths.
    let repo = temp_repo("bert");
    add_model(&repo, "text/bert_like", "bert", None);
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let ok = bert_request(&[1, 2, 3], &[1, 1, 1], &[0, 0, 1]);
    let v = infer_ok(a, "bert", &ok);
    assert_eq!(v["outputs"][0]["shape"], json!([1, 3, 8]), "{v}");
    let long: Vec<i64> = (0..65).collect();
    let cases = [
        (
            bert_request(&[1, 2, 1_000_000_000], &[1, 1, 1], &[0, 0, 0]),
            "value 1000000000 is outside the model's range [-100, 99]",
        ),
        (
            bert_request(&[1, 2, 3], &[1, 1, 1], &[0, 7, 0]),
            "value 7 is outside the model's range [-2, 1]",
        ),
        (
            bert_request(&long, &[1; 65], &[0; 65]),
            "dimension 1 (\"sequence\") is 65, over its limit 64",
        ),
        (
            bert_request(&[1, 2, 3], &[1, 1, 1, 1], &[0, 0, 0]),
            "the model needs them equal",
        ),
    ];
    for (body, needle) in cases {
        let r = post_json(a, "/v2/models/bert/infer", &body);
        assert_eq!(r.status, 400, "{}", r.body_str());
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
}

#[test]
fn config_limits_override_the_model_and_runtime_errors_stay_in_the_log() {
    // See: #13 (4, 9). A limit raised past what the graph can run makes
    // ONNX Runtime fail; the client hears that inference failed, not how.
    let repo = temp_repo("bert-cfg");
    let limits = "[inputs.input_ids]\nmax_dims = [0, 100]\n[inputs.attention_mask]\nmax_dims = [0, 100]\n[inputs.token_type_ids]\nmax_dims = [0, 100]\nrange = [0, 0]\n";
    add_model(&repo, "text/bert_like", "bert", Some(limits));
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let r = post_json(a, "/v2/models/bert/infer", &bert_request(&[1], &[1], &[1]));
    assert_eq!(r.status, 400, "config range [0, 0]: {}", r.body_str());
    let n = 80;
    let ids: Vec<i64> = (0..n).collect();
    let r = post_json(
        a,
        "/v2/models/bert/infer",
        &bert_request(&ids, &vec![1; 80], &vec![0; 80]),
    );
    assert_eq!(r.status, 500, "{}", r.body_str());
    let err = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(err.contains("inference failed"), "{err}");
    for internal in ["onnxruntime", ".cc", "/", "Add"] {
        assert!(!err.contains(internal), "{internal:?} leaked: {err}");
    }
    // A bad [inputs] table refuses the load with a clear reason.
    let repo = temp_repo("bert-badcfg");
    add_model(
        &repo,
        "text/bert_like",
        "bert",
        Some("[inputs.nope]\nmax_dims = [1]\n"),
    );
    let srv = spawn_server(ml_config(&repo, true));
    let r = get_path(srv.addr, "/v2/models/bert/ready");
    assert_eq!(r.status, 503, "{}", r.body_str());
    let idx = post_json(srv.addr, "/v2/repository/index", &json!({})).json();
    assert!(
        idx[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no input \"nope\""),
        "{idx}"
    );
}

#[test]
fn an_outsized_run_does_not_leave_its_memory_with_the_runtime() {
    // See: #13 (4). ONNX Runtime's arena kept what one large run grew.
    let repo = temp_repo("attention");
    add_model(&repo, "attention", "att", None);
    let p = start_model_server(&repo);
    let req = |batch: usize, seq: usize| json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [batch, seq, 8], "data": vec![0.01f32; batch * seq * 8]}]});
    for _ in 0..3 {
        infer_ok(p.addr, "att", &req(1, 64));
    }
    let (rss0, peak0) = (p.status_kib("VmRSS"), p.status_kib("VmHWM"));
    // 8 rows of 4096 x 4096 scores: hundreds of MiB inside the run.
    infer_ok(p.addr, "att", &req(8, 4096));
    let (rss1, peak1) = (p.status_kib("VmRSS"), p.status_kib("VmHWM"));
    assert!(
        peak1 > peak0 + 256 * 1024,
        "the run did not grow memory: {peak0} -> {peak1} KiB"
    );
    assert!(
        rss1 < rss0 + 64 * 1024,
        "RSS after the run: {rss0} -> {rss1} KiB (peak {peak1} KiB)"
    );
    // Over the default max_dynamic_dim (4096) is refused up front.
    let r = post_json(p.addr, "/v2/models/att/infer", &req(1, 4097));
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(
        r.body_str().contains("over its limit 4096"),
        "{}",
        r.body_str()
    );
}

#[test]
fn the_repository_api_refuses_cross_origin_and_non_json_writes() {
    // See: #13 (8). A page in any browser could unload models with a
    // "simple" cross-origin POST (text/plain, no Origin check).
    let repo = temp_repo("csrf");
    add_model(&repo, "models/mlp", "mlp", None);
    let mut cfg = ml_config(&repo, true);
    cfg.ml.repository_api = true;
    let srv = spawn_server(cfg);
    let a = srv.addr;
    let unload = |headers: &[(&str, &str)], body: &[u8]| {
        let raw = http_request("POST", "/v2/repository/models/mlp/unload", headers, body);
        exchange(a, &raw).0
    };
    let refused = [
        (
            vec![
                ("Content-Type", "text/plain"),
                ("Origin", "http://evil.example.com"),
            ],
            &b"{}"[..],
            403,
        ),
        (
            vec![
                ("Content-Type", "application/json"),
                ("Origin", "http://evil.example.com"),
            ],
            b"{}",
            403,
        ),
        (
            vec![("Content-Type", "application/json"), ("Origin", "null")],
            b"{}",
            403,
        ),
        (
            vec![
                ("Content-Type", "application/json"),
                ("Host", "evil.example.com"),
            ],
            b"{}",
            403,
        ),
        (vec![("Content-Type", "text/plain")], b"{}", 415),
        (
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            b"a=b",
            415,
        ),
        (vec![], b"{}", 415),
    ];
    for (headers, body, status) in refused {
        let r = unload(&headers, body);
        assert_eq!(r.status, status, "{headers:?}: {}", r.body_str());
        assert!(r.json()["error"].is_string(), "{}", r.body_str());
        infer_ok(a, "mlp", &mlp_request(&[mlp_row(0)]));
    }
    // JSON from a local page, and tritonclient's empty untyped body, work.
    let local = [
        ("Content-Type", "application/json"),
        ("Origin", "http://localhost:3000"),
    ];
    assert_eq!(unload(&local, b"{}").status, 200);
    let raw = http_request("POST", "/v2/repository/models/mlp/load", &[], b"");
    assert_eq!(exchange(a, &raw).0.status, 200);
    infer_ok(a, "mlp", &mlp_request(&[mlp_row(0)]));
}

#[test]
fn a_rerank_model_without_one_logit_per_pair_refuses_to_load() {
    // The fixture reranker loads; bert_like with task = "rerank" has only
    // token vectors, [batch, sequence, 8], and says so.
    let repo = temp_repo("rerank");
    let lexical = format!("{ROOT}/tests/fixtures/text/lexical_rerank");
    for (name, model) in [("good", "text/lexical_rerank"), ("bad", "text/bert_like")] {
        add_model(
            &repo,
            model,
            name,
            Some("task = \"rerank\"\nmax_length = 64\n"),
        );
        std::fs::copy(
            format!("{lexical}/tokenizer.json"),
            repo.join(name).join("tokenizer.json"),
        )
        .unwrap();
    }
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let idx = wait_all_tried(a);
    let bad = idx.iter().find(|e| e["name"] == "bad").unwrap();
    assert_eq!(bad["state"], "UNAVAILABLE", "{bad}");
    let why = bad["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("one logit per pair") && why.contains("last_hidden_state"),
        "{why}"
    );
    let body = json!({"query": "q", "texts": ["q"], "model": "bad"});
    let r = post_json(a, "/rerank", &body);
    // TEI's status for a backend that cannot run: 424, with the reason.
    assert_eq!(r.status, 424, "{}", r.body_str());
    assert_eq!(r.json()["error_type"], "Backend");
    assert!(r.json()["error"]
        .as_str()
        .unwrap_or_default()
        .contains("one logit per pair"));
    // Without "model": two rerank models, so a request must name one.
    let r = post_json(a, "/rerank", &json!({"query": "q", "texts": ["q"]}));
    assert_eq!(r.status, 422, "{}", r.body_str());
    let r = post_json(
        a,
        "/rerank",
        &json!({"query": "q", "texts": ["q"], "model": "good"}),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
}

#[test]
fn a_classify_model_needs_one_label_per_logit_or_refuses_to_load() {
    // The fixture classifier gives 3 logits: with 3 labels (config.toml,
    // or a Hugging Face config.json's id2label) it loads; with 2, or none,
    // it says why not.
    let repo = temp_repo("classify");
    let fixture = format!("{ROOT}/tests/fixtures/text/lexical_classify");
    let cases = [
        ("good", "labels = [\"neg\", \"mid\", \"pos\"]\n"),
        ("two", "labels = [\"no\", \"yes\"]\n"),
        ("hf", ""),
        ("none", ""),
    ];
    for (name, labels) in cases {
        let config = format!("task = \"classify\"\nmax_length = 64\n{labels}");
        add_model(&repo, "text/lexical_classify", name, Some(&config));
        std::fs::copy(
            format!("{fixture}/tokenizer.json"),
            repo.join(name).join("tokenizer.json"),
        )
        .unwrap();
    }
    std::fs::write(
        repo.join("hf/config.json"),
        r#"{"architectures": ["BertForSequenceClassification"], "id2label": {"0": "NEGATIVE", "1": "NEUTRAL", "2": "POSITIVE"}}"#,
    )
    .unwrap();
    let srv = spawn_server(ml_config(&repo, true));
    let a = srv.addr;
    let idx = wait_all_tried(a);
    let why = |name: &str| {
        let e = idx.iter().find(|e| e["name"] == name).unwrap();
        assert_eq!(e["state"], "UNAVAILABLE", "{e}");
        e["reason"].as_str().unwrap_or_default().to_string()
    };
    let two = why("two");
    assert!(
        two.contains("3 logits per text") && two.contains("2 labels"),
        "{two}"
    );
    let none = why("none");
    assert!(
        none.contains("no labels") && none.contains("id2label"),
        "{none}"
    );
    // TEI's status for a backend that cannot run: 424, with the reason.
    let r = post_json(a, "/predict", &json!({"inputs": "good", "model": "two"}));
    assert_eq!(r.status, 424, "{}", r.body_str());
    assert_eq!(r.json()["error_type"], "Backend");
    assert!(r.body_str().contains("2 labels"), "{}", r.body_str());
    // Several classify models: a request must name one.
    let r = post_json(a, "/predict", &json!({"inputs": "good"}));
    assert_eq!(r.status, 422, "{}", r.body_str());
    assert!(
        r.body_str().contains("several classify models"),
        "{}",
        r.body_str()
    );
    for (name, best) in [("good", "pos"), ("hf", "POSITIVE")] {
        let r = post_json(a, "/predict", &json!({"inputs": "good", "model": name}));
        assert_eq!(r.status, 200, "{}", r.body_str());
        assert_eq!(r.json()[0]["label"], best, "{}", r.body_str());
    }
}

#[test]
fn issue_15_a_model_loaded_or_unloaded_at_runtime_sends_tools_list_changed_on_every_stream() {
    use crate::mcp_http::{
        get_mcp, init_msg, legacy_message, legacy_post, notification, open_legacy, open_stream,
        send, stateless_msg, stateless_post, STATELESS, VERSION,
    };
    let repo = temp_repo("listchanged");
    add_model(&repo, "models/mlp", "mlp", None);
    let mut cfg = ml_config(&repo, false);
    cfg.ml.repository_api = true;
    let srv = spawn_server(cfg);
    let a = srv.addr;

    // A session-era client with its GET stream open.
    let sid = crate::mcp_http::initialize(a);
    let hdrs = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", VERSION),
    ];
    let (head, mut get) = open_stream(a, &get_mcp(&hdrs));
    assert_eq!(head.status, 200, "{:?}", head.head);
    get.next_event().expect("priming event");
    // A legacy HTTP+SSE client.
    let (mut legacy, path) = open_legacy(a);
    assert_eq!(
        send(a, &legacy_post(&path, &init_msg("2024-11-05"))).status,
        202
    );
    legacy_message(&mut legacy);
    send(
        a,
        &legacy_post(&path, &notification("notifications/initialized", json!({}))),
    );
    // A stateless client listening for tool list changes.
    let listen = stateless_msg(
        9,
        "subscriptions/listen",
        json!({ "notifications": { "toolsListChanged": true } }),
    );
    let (head, mut sub) = open_stream(
        a,
        &stateless_post(Some(STATELESS), Some("subscriptions/listen"), None, &listen),
    );
    assert_eq!(head.status, 200, "{:?}", head.head);
    let ack = sub.next_event().expect("acknowledged").json();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );

    let has_tool = || {
        crate::mcp_http::result(a, &sid, "tools/list", json!({}))["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "model_mlp")
    };
    let mut each_stream_hears_it = |what: &str| {
        let ev = get
            .next_event()
            .unwrap_or_else(|| panic!("{what}: GET stream"));
        assert_eq!(
            ev.json()["method"],
            "notifications/tools/list_changed",
            "{what}"
        );
        let v = legacy_message(&mut legacy);
        assert_eq!(v["method"], "notifications/tools/list_changed", "{what}");
        let v = sub
            .next_event()
            .unwrap_or_else(|| panic!("{what}: listen"))
            .json();
        assert_eq!(v["method"], "notifications/tools/list_changed", "{what}");
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            9
        );
    };
    assert!(!has_tool(), "eager loading is off");

    let load = || post_json(a, "/v2/repository/models/mlp/load", &json!({})).status;
    let unload = || post_json(a, "/v2/repository/models/mlp/unload", &json!({})).status;
    assert_eq!(load(), 200);
    each_stream_hears_it("load");
    assert!(has_tool());
    assert_eq!(unload(), 200);
    each_stream_hears_it("unload");
    assert!(!has_tool(), "an unloaded model's tool is withdrawn");
    assert_eq!(unload(), 200, "unloading twice changes nothing more");
    assert_eq!(load(), 200);
    each_stream_hears_it("load after unload");
    assert!(has_tool());
    // A reload with the same metadata changes no tool: the next
    // notification on each stream is the unload's.
    assert_eq!(load(), 200);
    assert_eq!(unload(), 200);
    each_stream_hears_it("reload, then unload");
}
