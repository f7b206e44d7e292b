//! Text models over the wire (issue #14): OpenAI `/v1/embeddings` and
//! `/v1/models`, TEI `/embed`, on the real all-MiniLM-L6-v2 (int8) with its
//! Hugging Face tokenizer, fetched by `scripts/fetch-text-models` into
//! `models/minilm`; TEI `/rerank` on `models/lexical-rerank` (the committed
//! word-overlap cross-encoder `tests/fixtures/text/lexical_rerank`, which the
//! same script copies there), TEI `/predict` on `models/lexical-classify` (the
//! committed word-counting classifier `tests/fixtures/text/lexical_classify`)
//! and TEI `/tokenize`. (tests/text/ checks the
//! vectors and scores against Python `tokenizers` + `onnxruntime` and the
//! official `openai` client.)

use crate::support::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One server for the module: loading MiniLM takes a while in debug builds.
fn server() -> SocketAddr {
    static SRV: OnceLock<TestServer> = OnceLock::new();
    SRV.get_or_init(|| {
        let mut cfg = test_config();
        cfg.ml.models = format!("{ROOT}/models");
        cfg.ml.ort_library = Some(format!(
            "{ROOT}/.cache/onnxruntime/libonnxruntime.so.1.31.1"
        ));
        cfg.workers.threads = 2;
        let srv = spawn_server(cfg);
        wait_for(
            std::time::Duration::from_secs(60),
            "minilm did not load (run scripts/fetch-text-models)",
            || {
                let r = get_json(srv.addr, "/v2/models/minilm/ready");
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(r.body_str())
                }
            },
        );
        srv
    })
    .addr
}

fn get_json(addr: SocketAddr, path: &str) -> RawResponse {
    exchange(addr, &http_request("GET", path, &[], b"")).0
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> RawResponse {
    let raw = http_request("POST", path, &[("Content-Type", "application/json")], body);
    exchange(addr, &raw).0
}

fn embeddings(input: Value) -> RawResponse {
    let body = json!({"model": "minilm", "input": input}).to_string();
    post(server(), "/v1/embeddings", body.as_bytes())
}

/// The vectors of a 200 `/v1/embeddings` answer, in `index` order.
#[track_caller]
fn vectors(r: &RawResponse) -> Vec<Vec<f32>> {
    assert_eq!(r.status, 200, "{}", r.body_str());
    let v = r.json();
    let data = v["data"].as_array().expect("data");
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["index"], i, "{d}");
            d["embedding"]
                .as_array()
                .expect("float embedding")
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// The names in session `sid`'s `tools/list`.
fn tool_names(a: SocketAddr, sid: &str) -> Vec<String> {
    let tools = crate::mcp_http::result(a, sid, "tools/list", json!({}));
    tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn texts() -> Vec<String> {
    vec![
        "hello".into(),
        "The quick brown fox jumps over the lazy dog.".into(),
        "Conduit serves embeddings; it batches texts of like length together. ".repeat(6),
        "日本語のテキストと絵文字 🎉🚀 and café, naïve, Zoë".into(),
        "שלום עולם — مرحبا بالعالم".into(),
        "a b c d e f g h i j k l m n o p q r s t u v w x y z".into(),
    ]
}

#[test]
fn batched_and_single_requests_give_the_same_unit_vectors() {
    let all = texts();
    let batched = vectors(&embeddings(json!(all)));
    assert_eq!(batched.len(), all.len());
    for (t, b) in all.iter().zip(&batched) {
        assert_eq!(b.len(), 384);
        let norm: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
        let single = vectors(&embeddings(json!(t)));
        let c = cosine(b, &single[0]);
        assert!(c >= 0.9999, "{t:?}: cosine {c}");
    }
}

#[test]
fn concurrent_single_text_requests_are_answered_with_their_own_vectors() {
    let all: Vec<String> = (0..24)
        .map(|i| format!("request number {i} {}", "word ".repeat(i % 7)))
        .collect();
    let alone: Vec<Vec<f32>> = all
        .iter()
        .map(|t| vectors(&embeddings(json!(t))).remove(0))
        .collect();
    let together: Vec<Vec<f32>> = std::thread::scope(|s| {
        let hs: Vec<_> = all
            .iter()
            .map(|t| s.spawn(move || vectors(&embeddings(json!(t))).remove(0)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert!(cosine(a, b) >= 0.9999, "request {i}: {}", cosine(a, b));
    }
}

#[test]
fn usage_counts_tokens_and_long_texts_are_cut_to_max_length() {
    let r = embeddings(json!(["hello world", "hi"]));
    // [CLS] hello world [SEP] + [CLS] hi [SEP]
    assert_eq!(r.json()["usage"]["prompt_tokens"], 7, "{}", r.body_str());
    assert_eq!(r.json()["usage"]["total_tokens"], 7);
    assert_eq!(r.json()["model"], "minilm");
    // sentence_bert_config.json's max_seq_length is 256.
    let r = embeddings(json!("word ".repeat(2000)));
    assert_eq!(r.json()["usage"]["prompt_tokens"], 256, "{}", r.body_str());
    // TEI with truncation off: 413 naming the text and its token count.
    let body = json!({"inputs": ["short", "word ".repeat(300)], "truncate": false});
    let r = post(server(), "/embed", body.to_string().as_bytes());
    assert_eq!(r.status, 413, "{}", r.body_str());
    let err = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("inputs[1]") && err.contains("302 tokens"),
        "{err}"
    );
    assert_eq!(r.json()["error_type"], "Validation");
}

#[test]
fn base64_token_ids_and_tei_give_the_same_vectors() {
    let text = "The quick brown fox jumps over the lazy dog.";
    let floats = vectors(&embeddings(json!(text))).remove(0);
    let body = json!({"model": "minilm", "input": text, "encoding_format": "base64"});
    let r = post(server(), "/v1/embeddings", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    let b64 = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, floats, "base64 carries the same float32 values");
    // [CLS] the quick brown fox jumps over the lazy dog . [SEP]
    let ids = json!([[101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]]);
    let by_ids = vectors(&embeddings(ids)).remove(0);
    assert!(cosine(&floats, &by_ids) >= 0.9999);
    let tei = post(
        server(),
        "/embed",
        json!({"inputs": text}).to_string().as_bytes(),
    );
    assert_eq!(tei.status, 200, "{}", tei.body_str());
    let tei: Vec<Vec<f32>> = serde_json::from_slice(&tei.body).unwrap();
    assert!(cosine(&floats, &tei[0]) >= 0.9999);
}

#[test]
fn a_thousand_texts_come_back_in_order() {
    let all: Vec<String> = (0..1000).map(|i| format!("text {i}")).collect();
    let got = vectors(&embeddings(json!(all)));
    assert_eq!(got.len(), 1000);
    for i in [0, 1, 499, 998, 999] {
        let single = vectors(&embeddings(json!(all[i]))).remove(0);
        assert!(cosine(&got[i], &single) >= 0.9999, "text {i}");
    }
}

#[test]
fn bad_requests_get_openai_errors_and_nothing_else_is_disturbed() {
    let a = server();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            br#"{"model":"nope","input":"x"}"#.to_vec(),
            404,
            "model_not_found",
        ),
        (br#"{"model":"minilm"}"#.to_vec(), 400, "input"),
        (br#"{"input":"x"}"#.to_vec(), 400, "model"),
        (b"not json".to_vec(), 400, "body"),
        (br#"{"model":"minilm","input":[]}"#.to_vec(), 400, "input"),
        (
            br#"{"model":"minilm","input":[1,"a"]}"#.to_vec(),
            400,
            "input",
        ),
        (
            br#"{"model":"minilm","input":[[999999999]]}"#.to_vec(),
            400,
            "input",
        ),
        (
            br#"{"model":"minilm","input":"x","encoding_format":"int8"}"#.to_vec(),
            400,
            "encoding_format",
        ),
        (
            br#"{"model":"minilm","input":"x","dimensions":128}"#.to_vec(),
            400,
            "dimensions",
        ),
        (br#"{"model":"demo","input":"x"}"#.to_vec(), 400, "model"),
    ];
    for (body, status, param) in cases {
        let r = post(a, "/v1/embeddings", &body);
        let what = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(r.status, status, "{what}: {}", r.body_str());
        let e = &r.json()["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string(),
            "{what}: {e}"
        );
        assert!(
            e["param"] == param || e["code"] == param,
            "{what}: param/code {param:?} in {e}"
        );
    }
    let many: Vec<&str> = vec!["x"; 2049];
    let r = embeddings(json!(many));
    assert_eq!(r.status, 400, "{}", r.body_str());
    // The http layer's 413 for a body over ml.max_input_bytes (64 MiB) is
    // OpenAI's shape too.
    let head = format!(
        "POST /v1/embeddings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        (64 << 20) + 1
    );
    let r = exchange(a, head.as_bytes()).0;
    assert_eq!(r.status, 413, "{}", r.body_str());
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // The model still answers.
    assert_eq!(vectors(&embeddings(json!("still here"))).len(), 1);
    let listed = get_json(a, "/v1/models").json();
    assert_eq!(listed["object"], "list");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"minilm"), "{listed}");
}

#[test]
fn agents_embed_and_rank_text_through_mcp_tools() {
    use crate::mcp_http::{initialize, result};
    let a = server();
    let sid = initialize(a);
    let names = tool_names(a, &sid);
    assert!(
        has(&names, "embed_minilm") && has(&names, "rank_minilm"),
        "{names:?}"
    );
    assert!(
        !has(&names, "model_minilm"),
        "a text model is called with text"
    );
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": "embed_minilm", "arguments": {"texts": ["hello world", "hi"]}}),
    );
    let s = &r["structuredContent"];
    assert_eq!(s["dimensions"], 384, "{r}");
    assert_eq!(s["usage"]["tokens"], 7);
    let by_http = vectors(&embeddings(json!(["hello world"]))).remove(0);
    let by_tool: Vec<f32> = s["embeddings"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert!(cosine(&by_http, &by_tool) >= 0.9999);
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": "rank_minilm", "arguments": {
            "query": "How do I bake bread?",
            "documents": ["The stock market fell today.", "Knead the dough, let it rise, then bake it at 220 C.", "Cats sleep a lot."],
            "top_n": 2,
        }}),
    );
    let results = r["structuredContent"]["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 2, "{r}");
    assert_eq!(
        results[0]["index"], 1,
        "the baking passage ranks first: {r}"
    );
    assert!(results[0]["score"].as_f64() > results[1]["score"].as_f64());
    // Schema limits are the API's: an empty list is a tool error, not a crash.
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": "embed_minilm", "arguments": {"texts": []}}),
    );
    assert_eq!(r["isError"], true, "{r}");
}

#[test]
fn request_limits_answer_413_naming_the_text_and_dimensions_need_the_model_trained_for_them() {
    // Over max_text_bytes (256 KiB): 413 naming the text.
    let big = "a ".repeat(140_000);
    let r = embeddings(json!(["fine", big]));
    assert_eq!(r.status, 413, "{}", r.body_str());
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("input[1]") && msg.contains("280000 bytes"),
        "{msg}"
    );
    // Over max_tokens_per_request (300,000): 1,200 token-id inputs of 256
    // (token ids: no tokenizing to wait for).
    let ids: Vec<u32> = std::iter::once(101)
        .chain(std::iter::repeat_n(2773, 254))
        .chain(std::iter::once(102))
        .collect();
    let many = vec![ids; 1200];
    let r = embeddings(json!(many));
    assert_eq!(r.status, 413, "{}", r.body_str());
    assert!(r.body_str().contains("307200 tokens"), "{}", r.body_str());
    // MiniLM was not trained for shorter vectors: `dimensions` is refused
    // unless it is the model's own.
    let body = json!({"model": "minilm", "input": "x", "dimensions": 384}).to_string();
    assert_eq!(
        post(server(), "/v1/embeddings", body.as_bytes()).status,
        200
    );
    let body = json!({"model": "minilm", "input": "x", "dimensions": 999}).to_string();
    assert_eq!(
        post(server(), "/v1/embeddings", body.as_bytes()).status,
        400
    );
}

const RERANKER: &str = "lexical-rerank";
const QUERY: &str = "What is the capital of France?";

fn rerank(body: Value) -> RawResponse {
    post(server(), "/rerank", body.to_string().as_bytes())
}

/// The `(index, score)` pairs of a 200 `/rerank` answer, in answer order.
#[track_caller]
fn ranked(r: &RawResponse) -> Vec<(usize, f64)> {
    assert_eq!(r.status, 200, "{}", r.body_str());
    r.json()
        .as_array()
        .expect("an array of ranks")
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().expect("index") as usize,
                x["score"].as_f64().expect("score"),
            )
        })
        .collect()
}

/// A TEI error: this status, `error_type`, and `want` in the message.
#[track_caller]
fn tei_error(r: &RawResponse, status: u16, kind: &str, want: &str) {
    assert_eq!(r.status, status, "{}", r.body_str());
    let v = r.json();
    assert_eq!(v["error_type"], kind, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(want), "{want:?} not in {msg:?}");
}

fn passages() -> Vec<&'static str> {
    vec![
        "The quick brown fox jumps over the lazy dog.",
        "Paris is the capital and largest city of France.",
        "France is a country in western Europe.",
        "Lyon is a city in France, but it is not the capital.",
    ]
}

#[test]
fn rerank_sorts_by_score_and_each_rank_keeps_its_index() {
    let texts = passages();
    let r = rerank(json!({"query": QUERY, "texts": texts}));
    let got = ranked(&r);
    let order: Vec<usize> = got.iter().map(|&(i, _)| i).collect();
    // All of capital + france beats france alone, which beats nothing; of
    // two with all words, the shorter text first.
    assert_eq!(order, vec![1, 3, 2, 0], "{}", r.body_str());
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(
        got.iter().all(|&(_, s)| s > 0.0 && s < 1.0),
        "sigmoid scores"
    );
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("text").is_none()),
        "no text unless asked: {}",
        r.body_str()
    );
    // raw_scores: the model's logits, whose sigmoid the default gives.
    let raw = ranked(&rerank(
        json!({"query": QUERY, "texts": texts, "raw_scores": true}),
    ));
    assert_eq!(raw.iter().map(|&(i, _)| i).collect::<Vec<_>>(), order);
    for (&(i, s), &(j, logit)) in got.iter().zip(&raw) {
        assert_eq!(i, j);
        let sig = 1.0 / (1.0 + (-logit).exp());
        assert!(
            (s - sig).abs() < 1e-6,
            "texts[{i}]: {s} vs sigmoid({logit})"
        );
    }
    // The fixture's logit: 10 x (share of the query's words found) - 5
    // - 0.005 x (text tokens): "paris is the capital ... france . [SEP]" is 11.
    assert!((raw[0].1 - 4.945).abs() < 1e-5, "{raw:?}");
    // return_text echoes each rank's own text.
    let r = rerank(json!({"query": QUERY, "texts": texts, "return_text": true}));
    for x in r.json().as_array().unwrap() {
        let i = x["index"].as_u64().unwrap() as usize;
        assert_eq!(x["text"], texts[i], "{x}");
    }
}

#[test]
fn agents_rerank_through_the_rerankers_mcp_tool_with_the_http_scores() {
    use crate::mcp_http::{initialize, result};
    let a = server();
    let sid = initialize(a);
    let names = tool_names(a, &sid);
    let tool = format!("rerank_{RERANKER}");
    assert!(has(&names, &tool), "{names:?}");
    // A reranker makes no vectors: no embed_ or cosine rank_ tool for it.
    assert!(
        !has(&names, &format!("embed_{RERANKER}")) && !has(&names, &format!("rank_{RERANKER}")),
        "{names:?}"
    );
    let texts = passages();
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": tool, "arguments": {"query": QUERY, "documents": texts, "top_n": 3}}),
    );
    let results = r["structuredContent"]["results"].as_array().unwrap();
    let by_tool: Vec<(usize, f64)> = results
        .iter()
        .map(|x| {
            let i = x["index"].as_u64().unwrap() as usize;
            assert_eq!(x["document"], texts[i], "{x}");
            (i, x["score"].as_f64().unwrap())
        })
        .collect();
    let by_http = ranked(&rerank(json!({"query": QUERY, "texts": texts})));
    assert_eq!(by_tool.len(), 3, "{r}");
    for (&(i, s), &(j, t)) in by_tool.iter().zip(&by_http) {
        assert_eq!(i, j, "{r}");
        assert!((s - t).abs() < 1e-6, "texts[{i}]: {s} vs {t}");
    }
    assert!(r["structuredContent"]["usage"]["tokens"].as_u64().unwrap() > 0);
    // A query too long to pair with every document is a tool error.
    let long = "capital ".repeat(50_000);
    let docs = vec!["x"; 200];
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": tool, "arguments": {"query": long, "documents": docs}}),
    );
    assert_eq!(r["isError"], true, "{r}");
}

#[test]
fn rerank_batched_alone_and_concurrent_give_the_same_scores() {
    let texts = passages();
    let all: Vec<(usize, f64)> = ranked(&rerank(
        json!({"query": QUERY, "texts": texts, "raw_scores": true, "model": RERANKER}),
    ));
    let alone: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = texts
            .iter()
            .map(|t| {
                s.spawn(move || {
                    ranked(&rerank(
                        json!({"query": QUERY, "texts": [t], "raw_scores": true}),
                    ))[0]
                        .1
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, score) in all {
        assert!(
            (score - alone[i]).abs() < 1e-6,
            "texts[{i}]: {score} vs {}",
            alone[i]
        );
    }
}

#[test]
fn rerank_truncates_long_pairs_unless_told_not_to() {
    // [CLS] capital of france [SEP] + 600 words + [SEP] = 606 > 512.
    let long = "word ".repeat(600);
    let texts = json!(["capital of france", long]);
    let r = rerank(json!({"query": "capital of france", "texts": texts, "raw_scores": true}));
    let got = ranked(&r);
    assert_eq!(got.len(), 2);
    let r = rerank(json!({"query": "capital of france", "texts": texts, "truncate": false}));
    tei_error(&r, 413, "Validation", "texts[1] has 606 tokens");
    assert!(r.body_str().contains("512"), "{}", r.body_str());
}

#[test]
fn rerank_errors_have_tei_shape() {
    let many: Vec<&str> = vec!["x"; 2049];
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"texts": ["a"]}), 422, "query"),
        (json!({"query": "q"}), 422, "texts"),
        (json!({"query": "q", "texts": []}), 422, "texts"),
        (
            json!({"query": "q", "texts": [1]}),
            422,
            "not a valid request",
        ),
        (json!({"query": "q", "texts": many}), 422, "at most 2048"),
        (
            json!({"query": "q", "texts": ["a"], "model": "minilm"}),
            422,
            "not a reranker",
        ),
        (
            json!({"query": "q", "texts": ["a"], "model": "nope"}),
            404,
            "nope",
        ),
        (
            json!({"query": "q", "texts": ["a"], "truncation_direction": "left"}),
            422,
            "truncation_direction",
        ),
    ];
    for (body, status, want) in cases {
        let r = rerank(body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body_str());
        tei_error(&r, status, "Validation", want);
    }
    let r = post(server(), "/rerank", b"not json");
    tei_error(&r, 422, "Validation", "not a valid request");
    // The query is tokenized once per text: 40 KB x 2048 texts is 80 MB of
    // tokenizing from a 48 KB body, over ml.max_input_bytes (64 MiB).
    let body = json!({"query": "q".repeat(40_000), "texts": vec!["x"; 2048]});
    let r = rerank(body);
    tei_error(&r, 413, "Validation", "bytes to tokenize");
    // An embedding request for the reranker is refused as clearly.
    let r = post(
        server(),
        "/embed",
        json!({"inputs": "x", "model": RERANKER})
            .to_string()
            .as_bytes(),
    );
    tei_error(&r, 422, "Validation", "is a reranker");
    let body = json!({"model": RERANKER, "input": "x"}).to_string();
    let r = post(server(), "/v1/embeddings", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(r.json()["error"]["param"], "model");
    // /embed without a model still means the only embedding model.
    let r = post(server(), "/embed", br#"{"inputs": "x"}"#);
    assert_eq!(r.status, 200, "{}", r.body_str());
}

#[test]
fn tokenize_lists_each_token_with_its_characters() {
    let body = json!({"inputs": "Héllo, wörld!", "model": "minilm"});
    let r = post(server(), "/tokenize", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.json(),
        json!([[
            {"id": 101, "text": "[CLS]", "special": true, "start": null, "stop": null},
            {"id": 7592, "text": "Héllo", "special": false, "start": 0, "stop": 5},
            {"id": 1010, "text": ",", "special": false, "start": 5, "stop": 6},
            {"id": 2088, "text": "wörld", "special": false, "start": 7, "stop": 12},
            {"id": 999, "text": "!", "special": false, "start": 12, "stop": 13},
            {"id": 102, "text": "[SEP]", "special": true, "start": null, "stop": null},
        ]])
    );
    let body = json!({"inputs": ["a b", "c"], "add_special_tokens": false, "model": RERANKER});
    let r = post(server(), "/tokenize", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    let v = r.json();
    let lens: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_array().unwrap().len())
        .collect();
    assert_eq!(lens, vec![2, 1], "{v}");
    assert_eq!(
        v[0][1],
        json!({"id": 1038, "text": "b", "special": false, "start": 2, "stop": 3})
    );
    // Never truncated (a limit is the route's body size).
    let body = json!({"inputs": "word ".repeat(600), "model": "minilm"});
    let r = post(server(), "/tokenize", body.to_string().as_bytes());
    assert_eq!(r.json()[0].as_array().map(Vec::len), Some(602));
    // Two text models here: one must be named.
    let r = post(server(), "/tokenize", br#"{"inputs": "x"}"#);
    tei_error(&r, 422, "Validation", "several text models");
    let r = post(
        server(),
        "/tokenize",
        br#"{"inputs": [], "model": "minilm"}"#,
    );
    tei_error(&r, 422, "Validation", "inputs");
    let r = post(
        server(),
        "/tokenize",
        br#"{"inputs": "x", "model": "demo"}"#,
    );
    tei_error(&r, 422, "Validation", "no tokenizer.json");
    // Its body is held to ml.max_tokenize_bytes (2,000,000), JSON
    // whitespace included.
    let padded = |n: usize| format!(r#"{{"inputs": "x", "model": "minilm"}}{}"#, " ".repeat(n));
    assert_eq!(padded(1_999_966).len(), 2_000_000);
    let r = post(server(), "/tokenize", padded(1_999_966).as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    // Refused from its Content-Length, with the body still being sent: the
    // write may meet the closed connection, the answer is still read.
    let raw = http_request(
        "POST",
        "/tokenize",
        &[("Content-Type", "application/json")],
        padded(1_999_967).as_bytes(),
    );
    let r = assert_rejected(server(), &raw, 413);
    tei_error(&r, 413, "Validation", "");
}

const CLASSIFIER: &str = "lexical-classify";

fn predict(body: Value) -> RawResponse {
    post(server(), "/predict", body.to_string().as_bytes())
}

/// The `(label, score)` pairs of one input's 200 `/predict` answer.
#[track_caller]
fn labelled(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .expect("an array of predictions")
        .iter()
        .map(|p| {
            (
                p["label"].as_str().expect("label").to_string(),
                p["score"].as_f64().expect("score"),
            )
        })
        .collect()
}

/// The fixture's logits for [negative, neutral, positive]: s = positive
/// words - negative words, logits = [-2 s, 1, 2 s].
fn fixture_logits(s: f64) -> [f64; 3] {
    [-2.0 * s, 1.0, 2.0 * s]
}

fn softmax(l: &[f64]) -> Vec<f64> {
    let e: Vec<f64> = l.iter().map(|x| x.exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

const LABELS: [&str; 3] = ["negative", "neutral", "positive"];

/// `got` (one input's answer) holds every label once, sorted by score,
/// with the scores `want` (in label order) gives.
#[track_caller]
fn check_scores(got: &[(String, f64)], want: &[f64]) {
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "sorted: {got:?}");
    for (label, score) in got {
        let k = LABELS
            .iter()
            .position(|l| l == label)
            .expect("a known label");
        assert!(
            (score - want[k]).abs() < 1e-5,
            "{label}: {score} vs {}",
            want[k]
        );
    }
}

#[test]
fn predict_gives_every_label_of_one_text_sorted_with_softmax_scores() {
    // "I love this great movie": love, great: s = 2, logits [-4, 1, 4].
    let text = "I love this great movie!";
    let r = predict(json!({"inputs": text}));
    assert_eq!(r.status, 200, "{}", r.body_str());
    let got = labelled(&r.json());
    assert_eq!(got[0].0, "positive", "{}", r.body_str());
    let sum: f64 = got.iter().map(|p| p.1).sum();
    assert!((sum - 1.0).abs() < 1e-5, "softmax sums to 1: {sum}");
    check_scores(&got, &softmax(&fixture_logits(2.0)));
    // TEI's answer: score, then label.
    assert!(
        r.body_str().starts_with(r#"[{"score":"#),
        "{}",
        r.body_str()
    );
    // raw_scores: the logits themselves.
    let raw = labelled(&predict(json!({"inputs": text, "raw_scores": true})).json());
    check_scores(&raw, &fixture_logits(2.0));
    assert_eq!(raw[0], ("positive".to_string(), 4.0));
    // Negative words; none (neutral first, then ties in label order);
    // "Great" counts (the tokenizer is uncased), each occurrence counts.
    for (text, s, first) in [
        ("A terrible, boring film.", -2.0, "negative"),
        ("The film is two hours long.", 0.0, "neutral"),
        ("Great, great, great. But the end was bad.", 2.0, "positive"),
    ] {
        let r = predict(json!({"inputs": text, "raw_scores": true, "model": CLASSIFIER}));
        let got = labelled(&r.json());
        assert_eq!(got[0].0, first, "{text}: {got:?}");
        check_scores(&got, &fixture_logits(s));
    }
    let neutral = labelled(&predict(json!({"inputs": "nothing here"})).json());
    let order: Vec<&str> = neutral.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(order, ["neutral", "negative", "positive"]);
    // TEI: an array of one or two strings is one input, a text or a
    // (text, text_pair) pair (here both texts' words count), answered alone.
    let one = predict(json!({"inputs": ["good movie"], "raw_scores": true}));
    check_scores(&labelled(&one.json()), &fixture_logits(1.0));
    let pair = predict(json!({"inputs": ["a good start", "a bad end"], "raw_scores": true}));
    assert_eq!(pair.status, 200, "{}", pair.body_str());
    check_scores(&labelled(&pair.json()), &fixture_logits(0.0));
}

#[test]
fn predict_answers_a_batch_with_a_list_per_input_in_order() {
    let inputs = json!([
        ["good"],
        ["awful, just awful"],
        ["a chair"],
        ["great", "and happy"],
        ["I hated it", "the worst"],
    ]);
    let s = [1.0, -2.0, 0.0, 2.0, -2.0];
    let r = predict(json!({"inputs": inputs}));
    assert_eq!(r.status, 200, "{}", r.body_str());
    let all = r.json();
    let all = all.as_array().expect("a list per input");
    assert_eq!(all.len(), 5, "{}", r.body_str());
    for (i, v) in all.iter().enumerate() {
        check_scores(&labelled(v), &softmax(&fixture_logits(s[i])));
    }
    // A batch of one is still a list of lists.
    let r = predict(json!({"inputs": [["good"]]}));
    assert_eq!(
        r.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body_str()
    );
    assert!(r.json()[0].is_array(), "{}", r.body_str());
}

#[test]
fn predict_batched_and_concurrent_single_requests_give_the_same_scores() {
    let words = ["good", "bad", "great", "poor", "table", "love", "sad"];
    let texts: Vec<String> = (0..24)
        .map(|i| {
            let n = i % 5;
            let w: Vec<&str> = (0..=n).map(|k| words[(i + k * 3) % words.len()]).collect();
            format!("text {i}: {}", w.join(" and "))
        })
        .collect();
    let batch: Vec<Vec<&str>> = texts.iter().map(|t| vec![t.as_str()]).collect();
    let r = predict(json!({"inputs": batch, "raw_scores": true}));
    assert_eq!(r.status, 200, "{}", r.body_str());
    let together: Vec<Vec<(String, f64)>> =
        r.json().as_array().unwrap().iter().map(labelled).collect();
    let alone: Vec<Vec<(String, f64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = texts
            .iter()
            .map(|t| {
                s.spawn(move || {
                    let r = predict(json!({"inputs": t, "raw_scores": true}));
                    assert_eq!(r.status, 200, "{}", r.body_str());
                    labelled(&r.json())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (a, b)) in together.iter().zip(&alone).enumerate() {
        assert_eq!(a, b, "inputs[{i}] {:?}", texts[i]);
    }
}

#[test]
fn predict_errors_have_tei_shape_and_other_routes_refuse_the_classifier() {
    let batch: Vec<[&str; 1]> = vec![["x"]; 2049];
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 422, "inputs is required"),
        (json!({"inputs": []}), 422, "must not be empty"),
        (json!({"inputs": ["a", "b", "c"]}), 422, "array of arrays"),
        (json!({"inputs": [["a"], "b"]}), 422, "inputs[1]"),
        (json!({"inputs": 7}), 422, "must be a string"),
        (json!({"inputs": batch}), 422, "at most 2048"),
        (
            json!({"inputs": "x", "model": "minilm"}),
            422,
            "not a classifier",
        ),
        (
            json!({"inputs": "x", "model": RERANKER}),
            422,
            "is a reranker",
        ),
        (json!({"inputs": "x", "model": "nope"}), 404, "nope"),
        (
            json!({"inputs": "x", "truncation_direction": "left"}),
            422,
            "truncation_direction",
        ),
    ];
    for (body, status, want) in cases {
        let r = predict(body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body_str());
        tei_error(&r, status, "Validation", want);
    }
    let r = post(server(), "/predict", b"not json");
    tei_error(&r, 422, "Validation", "not a valid request");
    // Over max_length (512) with truncation off: 413 naming the input and
    // its tokens; cut to 512 by default.
    let long = "good ".repeat(600);
    let r = predict(json!({"inputs": [["short"], [long]], "truncate": false}));
    tei_error(&r, 413, "Validation", "inputs[1] has 602 tokens");
    let r = predict(json!({"inputs": long, "raw_scores": true}));
    // [CLS] + 510 words + [SEP]: s = 510.
    check_scores(&labelled(&r.json()), &fixture_logits(510.0));
    // Over max_text_bytes (256 KiB): 413 naming the input.
    let r = predict(json!({"inputs": [["fine"], ["a ".repeat(140_000)]]}));
    tei_error(&r, 413, "Validation", "inputs[1] is 280000 bytes");
    // The other routes refuse the classifier, naming what it is.
    let body = json!({"inputs": "x", "model": CLASSIFIER});
    let r = post(server(), "/embed", body.to_string().as_bytes());
    tei_error(&r, 422, "Validation", "is a classifier");
    let r = rerank(json!({"query": "q", "texts": ["a"], "model": CLASSIFIER}));
    tei_error(&r, 422, "Validation", "not a reranker");
    let body = json!({"model": CLASSIFIER, "input": "x"}).to_string();
    let r = post(server(), "/v1/embeddings", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(r.json()["error"]["param"], "model");
    // Still one model of each other task: no "model" needed there.
    let r = post(server(), "/embed", br#"{"inputs": "x"}"#);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = rerank(json!({"query": "q", "texts": ["q"]}));
    assert_eq!(r.status, 200, "{}", r.body_str());
    // /v1/models lists it.
    let listed = get_json(server(), "/v1/models").json();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&CLASSIFIER), "{listed}");
}

#[test]
fn agents_classify_through_the_classifiers_mcp_tool_with_the_http_scores() {
    use crate::mcp_http::{initialize, result};
    let a = server();
    let sid = initialize(a);
    let tools = result(a, &sid, "tools/list", json!({}));
    let tool = format!("classify_{CLASSIFIER}");
    let listed = tools["tools"].as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&tool.as_str()), "{names:?}");
    for other in ["embed_", "rank_", "rerank_", "model_"] {
        let n = format!("{other}{CLASSIFIER}");
        assert!(!names.contains(&n.as_str()), "{names:?}");
    }
    let desc = listed.iter().find(|t| t["name"] == tool.as_str()).unwrap()["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        desc.contains("negative, neutral, positive") && desc.contains("softmax"),
        "{desc}"
    );
    let texts = ["I love it, it is great", "awful", "a chair", "good"];
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": tool, "arguments": {"texts": texts}}),
    );
    let s = &r["structuredContent"];
    let results = s["results"].as_array().expect("results");
    assert_eq!(results.len(), texts.len(), "{r}");
    let batch: Vec<[&str; 1]> = texts.iter().map(|t| [*t]).collect();
    let http = predict(json!({"inputs": batch})).json();
    for (i, x) in results.iter().enumerate() {
        assert_eq!(x["index"], i, "{x}");
        let by_tool = labelled(&x["labels"]);
        let by_http = labelled(&http[i]);
        assert_eq!(by_tool.len(), 3);
        for ((l, s), (m, t)) in by_tool.iter().zip(&by_http) {
            assert_eq!(l, m, "text {i}");
            assert!((s - t).abs() < 1e-6, "text {i} {l}: {s} vs {t}");
        }
    }
    assert!(s["usage"]["tokens"].as_u64().unwrap() > 0, "{r}");
    // top_n: the best labels only.
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": tool, "arguments": {"texts": ["good"], "top_n": 1}}),
    );
    let top = labelled(&r["structuredContent"]["results"][0]["labels"]);
    assert_eq!(top.len(), 1, "{r}");
    assert_eq!(top[0].0, "positive");
    // list_models names the tool and the labels.
    let r = result(
        a,
        &sid,
        "tools/call",
        json!({"name": "list_models", "arguments": {}}),
    );
    let models = r["structuredContent"]["models"].as_array().unwrap();
    let m = models
        .iter()
        .find(|m| m["name"] == CLASSIFIER)
        .expect("listed");
    assert_eq!(m["tools"], json!([tool]), "{m}");
    assert_eq!(m["text"]["labels"], json!(LABELS), "{m}");
    assert_eq!(m["text"]["task"], "classify", "{m}");
}

#[test]
fn a_classifier_answers_a_kserve_bytes_request_with_label_scores() {
    let body = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["good", "so bad and sad"]}]});
    let path = format!("/v2/models/{CLASSIFIER}/infer");
    let r = post(server(), &path, body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    let out = &r.json()["outputs"][0];
    assert_eq!(out["name"], "scores", "{out}");
    assert_eq!(out["datatype"], "FP32");
    assert_eq!(out["shape"], json!([2, 3]));
    let data: Vec<f64> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // In label order, not sorted.
    let want: Vec<f64> = softmax(&fixture_logits(1.0))
        .into_iter()
        .chain(softmax(&fixture_logits(-2.0)))
        .collect();
    for (g, w) in data.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{data:?} vs {want:?}");
    }
    // Asking for the embedding output of a classifier is refused.
    let body = json!({
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}],
        "outputs": [{"name": "embedding"}],
    });
    let r = post(server(), &path, body.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("scores"), "{}", r.body_str());
}

#[test]
fn a_reranker_refuses_a_kserve_bytes_request_of_single_texts() {
    let body =
        json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["Paris"]}]});
    let r = post(
        server(),
        &format!("/v2/models/{RERANKER}/infer"),
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(
        r.body_str().contains("reranker") && r.body_str().contains("/rerank"),
        "{}",
        r.body_str()
    );
}
