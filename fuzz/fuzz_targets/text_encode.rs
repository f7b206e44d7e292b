#![no_main]
//! Text as a client sends it, through a text model's tokenizer policy
//! (`ml::text::TextModel` with all-MiniLM-L6-v2's `tokenizer.json`, the
//! one the committed rerank fixture carries): single texts both ways of
//! `truncate`, (query, text) pairs, TEI `/tokenize` pieces with their char
//! spans, client token ids, and the padded run inputs and run plan built
//! from the results. No ONNX Runtime: the graph's metadata is built by hand.
use conduit::ml::model::{Metadata, ModelConfig, Task};
use conduit::ml::text::{plan, TextError, TextModel, Tokens};
use conduit::ml::{DType, TensorSpec};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

const MAX_LENGTH: usize = 32;

fn meta(outputs: Vec<TensorSpec>) -> Metadata {
    let ids = |n: &str| TensorSpec::new(n, DType::I64, vec![-1, -1], 512);
    Metadata {
        inputs: vec![ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        outputs,
        max_batch_size: 8,
        text: None,
    }
}

static EMBED_META: LazyLock<Metadata> = LazyLock::new(|| {
    meta(vec![TensorSpec::new(
        "last_hidden_state",
        DType::F32,
        vec![-1, -1, 8],
        512,
    )])
});
static RERANK_META: LazyLock<Metadata> =
    LazyLock::new(|| meta(vec![TensorSpec::new("logits", DType::F32, vec![-1, 1], 512)]));

fn model(task: Task, meta: &Metadata) -> TextModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/text/lexical_rerank");
    let cfg = ModelConfig {
        task: Some(task),
        max_length: Some(MAX_LENGTH),
        max_batch_tokens: 64,
        ..ModelConfig::default()
    };
    TextModel::load(&dir.join("model.onnx"), &dir, &cfg, meta)
        .expect("the fixture loads")
        .expect("a text model")
}

static EMBED: LazyLock<TextModel> = LazyLock::new(|| model(Task::Embed, &EMBED_META));
static RERANK: LazyLock<TextModel> = LazyLock::new(|| model(Task::Rerank, &RERANK_META));

/// Ok within the limit; TooLong only when not cutting, and then over it.
fn check(r: &Result<Tokens, TextError>, truncate: bool) {
    match r {
        Ok(t) => {
            assert!(t.len() <= MAX_LENGTH, "{} tokens", t.len());
            assert_eq!(t.ids.len(), t.type_ids.len());
        }
        Err(TextError::TooLong { tokens, max }) => {
            assert!(!truncate, "cut texts are never too long");
            assert!(tokens > max);
        }
        Err(_) => {}
    }
}

// Input: a flag byte, then text; bit 0 splits the text at its middle char
// boundary into a (query, text) pair.
fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut runs: Vec<Tokens> = Vec::new();
    for truncate in [true, false] {
        let r = EMBED.encode(&text, truncate);
        check(&r, truncate);
        runs.extend(r.ok());
    }
    if flags & 1 == 1 {
        let mut mid = text.len() / 2;
        while !text.is_char_boundary(mid) {
            mid -= 1;
        }
        let (q, t) = text.split_at(mid);
        for truncate in [true, false] {
            let r = RERANK.encode_pair(q, t, truncate);
            check(&r, truncate);
            runs.extend(r.ok());
        }
    }
    let chars = text.chars().count();
    if let Ok(pieces) = EMBED.pieces(&text, flags & 2 == 2) {
        for p in pieces {
            if let Some((start, stop)) = p.span {
                assert!(start <= stop && stop <= chars, "{start}..{stop} of {chars}");
                assert!(!p.special);
            }
        }
    }
    // The bytes as client token ids.
    let ids: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) % 40_000)
        .collect();
    let r = EMBED.check_ids(ids, flags & 4 == 4);
    check(&r, flags & 4 == 4);
    runs.extend(r.ok());
    // Runs padded to their longest text: every input [rows, width].
    let lens: Vec<usize> = runs.iter().map(Tokens::len).collect();
    let planned = plan(&lens, 64, 8);
    let mut seen: Vec<usize> = planned.iter().flatten().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..runs.len()).collect::<Vec<_>>(), "each text in one run");
    for run in planned {
        let texts: Vec<&Tokens> = run.iter().map(|&i| &runs[i]).collect();
        let width = texts.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        for t in EMBED.inputs(&EMBED_META, &texts) {
            assert_eq!(t.shape, vec![texts.len(), width]);
        }
    }
});
