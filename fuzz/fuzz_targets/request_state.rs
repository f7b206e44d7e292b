#![no_main]
use conduit::mcp::StateKey;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

static KEY: LazyLock<StateKey> = LazyLock::new(|| StateKey::from_secret(b"fuzz"));

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

// Input: a tool name, a newline, then a token or a JSON object.
fuzz_target!(|text: &str| {
    let (tool, rest) = text.split_once('\n').unwrap_or(("t", text));
    let _ = KEY.verify(tool, rest);
    let Ok(Value::Object(params)) = serde_json::from_str::<Value>(rest) else {
        return;
    };
    let _ = KEY.check_retry(&params, tool);
    // What we issue verifies, for its tool only, and any flipped bit breaks it.
    let token = KEY.issue(tool, &params);
    let back = KEY.verify(tool, &token).expect("our own token verifies");
    assert!(has_float(&Value::Object(params.clone())) || back == params);
    assert!(KEY.verify(&format!("{tool}x"), &token).is_err());
    let mut bytes = token.into_bytes();
    let at = text.len() % bytes.len();
    bytes[at] ^= 1 << (text.len() % 7);
    if let Ok(t) = String::from_utf8(bytes) {
        assert!(
            KEY.verify(tool, &t).is_err(),
            "tampered token {t:?} verified"
        );
    }
});
