#![no_main]
use conduit::mcp::jsonrpc::{
    self, Message, Parsed, RequestId, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

// Ids survive an encode/parse round trip exactly: a number's text is kept
// as written (JSON-RPC ids must round-trip).
fn same(a: &RequestId, b: &RequestId) -> bool {
    a == b && a.to_string() == b.to_string()
}

fn reparse(s: &str) -> Message {
    match jsonrpc::parse(s.as_bytes()) {
        Ok(Parsed::Single(Ok(m))) => m,
        other => panic!("our own encoding {s:?} did not parse: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let msgs = match jsonrpc::parse(data) {
        Ok(Parsed::Single(m)) => vec![m],
        Ok(Parsed::Batch(v)) => v,
        Err(e) => return assert!(e.code == PARSE_ERROR || e.code == INVALID_REQUEST),
    };
    for m in msgs {
        match m {
            Ok(Message::Request(r)) => {
                let params = Value::Object(r.params.clone());
                match reparse(&jsonrpc::encode_request(
                    Some(&r.id),
                    &r.method,
                    Some(&params),
                )) {
                    Message::Request(again) => {
                        assert_eq!(again.method, r.method);
                        assert!(same(&again.id, &r.id), "{:?} vs {:?}", again.id, r.id);
                    }
                    other => panic!("request came back as {other:?}"),
                }
                match reparse(&jsonrpc::encode_result(&r.id, &Value::Null)) {
                    Message::Response(resp) => assert!(same(&resp.id, &r.id)),
                    other => panic!("result came back as {other:?}"),
                }
            }
            Ok(Message::Notification(n)) => {
                match reparse(&jsonrpc::encode_request(None, &n.method, None)) {
                    Message::Notification(again) => assert_eq!(again.method, n.method),
                    other => panic!("notification came back as {other:?}"),
                }
            }
            Ok(Message::Response(_)) => {}
            Err(rej) => {
                assert!(rej.error.code == INVALID_REQUEST || rej.error.code == INVALID_PARAMS);
                if let Some(id) = &rej.id {
                    match reparse(&jsonrpc::encode_error(Some(id), &rej.error)) {
                        Message::Response(resp) => assert!(resp.outcome.is_err()),
                        other => panic!("error came back as {other:?}"),
                    }
                }
            }
        }
    }
});
