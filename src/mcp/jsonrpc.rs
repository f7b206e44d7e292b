//! JSON-RPC 2.0 messages: parsing (once, from bytes) and encoding.

use serde::Serialize;
use serde_json::{Map, Value};

/// Invalid JSON (L14: also nesting deeper than serde_json's 128-level limit).
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid JSON-RPC message (or a batch where batches are not allowed).
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;

/// A request id: a string or a number, echoed back exactly as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id, kept in its JSON form (so `1` and `1.0` stay distinct).
    Number(serde_json::Number),
    /// A string id.
    String(String),
}

impl RequestId {
    fn from_value(v: Value) -> Option<RequestId> {
        match v {
            Value::Number(n) => Some(RequestId::Number(n)),
            Value::String(s) => Some(RequestId::String(s)),
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Number(n) => Value::Number(n.clone()),
            RequestId::String(s) => Value::String(s.clone()),
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    /// The error code.
    pub code: i64,
    /// A short, readable description.
    pub message: String,
    /// Extra data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with no data.
    pub fn new(code: i64, message: impl Into<String>) -> ErrorObject {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// A request: has an id and expects a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id to answer with.
    pub id: RequestId,
    /// The method.
    pub method: String,
    /// The params, an object (or absent).
    pub params: Map<String, Value>,
}

/// A notification: no id, no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method.
    pub method: String,
    /// The params.
    pub params: Map<String, Value>,
}

/// A response to a request we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of our request.
    pub id: RequestId,
    /// The result, or the error.
    pub outcome: Result<Value, ErrorObject>,
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A response (to a server-to-client request).
    Response(Response),
}

/// A message that could not be accepted, with the id to answer it under (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The id, when the message had a usable one.
    pub id: Option<RequestId>,
    /// The error to send back.
    pub error: ErrorObject,
}

/// What a body held.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// One message.
    Single(Result<Message, Rejected>),
    /// A JSON array of messages (a batch; allowed only by 2025-03-26).
    Batch(Vec<Result<Message, Rejected>>),
}

/// Parses a body. JSON is parsed once; invalid JSON (including nesting
/// deeper than 128 levels, L14) is a parse error, never a panic or overflow.
pub fn parse(body: &[u8]) -> Result<Parsed, ErrorObject> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let why = if e.to_string().contains("recursion limit") {
            "JSON nested too deeply".to_string()
        } else {
            format!("invalid JSON: {e}")
        };
        ErrorObject::new(PARSE_ERROR, why)
    })?;
    Ok(match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ErrorObject::new(INVALID_REQUEST, "empty batch"));
            }
            Parsed::Batch(items.into_iter().map(classify).collect())
        }
        other => Parsed::Single(classify(other)),
    })
}

/// Turns one JSON value into a message, or says why it is not one.
pub fn classify(v: Value) -> Result<Message, Rejected> {
    let Value::Object(mut o) = v else {
        return Err(Rejected {
            id: None,
            error: ErrorObject::new(INVALID_REQUEST, "a message must be a JSON object"),
        });
    };
    let raw_id = o.remove("id");
    let id = match raw_id {
        None => None,
        Some(v) => match RequestId::from_value(v) {
            Some(id) => Some(id),
            None => {
                return Err(Rejected {
                    id: None,
                    error: ErrorObject::new(INVALID_REQUEST, "id must be a string or a number"),
                })
            }
        },
    };
    let reject = |id: Option<RequestId>, msg: &str| {
        Err(Rejected {
            id,
            error: ErrorObject::new(INVALID_REQUEST, msg),
        })
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return reject(id, "jsonrpc must be \"2.0\"");
    }
    match o.remove("method") {
        Some(Value::String(method)) => {
            let params = match o.remove("params") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(p)) => p,
                Some(_) => {
                    return Err(Rejected {
                        id,
                        error: ErrorObject::new(INVALID_PARAMS, "params must be an object"),
                    })
                }
            };
            Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            })
        }
        Some(_) => reject(id, "method must be a string"),
        None => {
            let Some(id) = id else {
                return reject(None, "a response needs an id");
            };
            match (o.remove("result"), o.remove("error")) {
                (Some(r), None) => Ok(Message::Response(Response { id, outcome: Ok(r) })),
                (None, Some(e)) => {
                    let code = e
                        .get("code")
                        .and_then(Value::as_i64)
                        .unwrap_or(INTERNAL_ERROR);
                    let message = e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let data = e.get("data").cloned();
                    Ok(Message::Response(Response {
                        id,
                        outcome: Err(ErrorObject {
                            code,
                            message,
                            data,
                        }),
                    }))
                }
                _ => reject(Some(id), "a response has exactly one of result and error"),
            }
        }
    }
}

#[derive(Serialize)]
struct ResultOut<'a> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    result: &'a Value,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RequestId>,
    error: &'a ErrorObject,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RequestId>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
}

fn to_string<T: Serialize>(v: &T) -> String {
    // Serializing our own plain structs of Values and strings cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| String::from("{}"))
}

/// Encodes a successful response.
pub fn encode_result(id: &RequestId, result: &Value) -> String {
    to_string(&ResultOut {
        jsonrpc: "2.0",
        id,
        result,
    })
}

/// Encodes an error response; `id` is `null` when the request's id was unreadable.
pub fn encode_error(id: Option<&RequestId>, error: &ErrorObject) -> String {
    to_string(&ErrorOut {
        jsonrpc: "2.0",
        id,
        error,
    })
}

/// Encodes a request we send (`id` set) or a notification (`id` none).
pub fn encode_request(id: Option<&RequestId>, method: &str, params: Option<&Value>) -> String {
    to_string(&RequestOut {
        jsonrpc: "2.0",
        id,
        method,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(s: &str) -> Result<Message, Rejected> {
        match parse(s.as_bytes()).unwrap() {
            Parsed::Single(m) => m,
            Parsed::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":"a","method":"ping","params":{}}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#),
            Ok(Message::Response(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"no"}}"#),
            Ok(Message::Response(Response {
                outcome: Err(_),
                ..
            }))
        ));
    }

    #[test]
    fn ids_are_echoed_exactly() {
        let Ok(Message::Request(r)) = single(r#"{"jsonrpc":"2.0","id":1.5e3,"method":"x"}"#) else {
            panic!()
        };
        assert_eq!(
            encode_result(&r.id, &Value::Null),
            r#"{"jsonrpc":"2.0","id":1500.0,"result":null}"#
        );
        let Ok(Message::Request(r)) = single(r#"{"jsonrpc":"2.0","id":"abc","method":"x"}"#) else {
            panic!()
        };
        assert_eq!(
            encode_result(&r.id, &serde_json::json!({})),
            r#"{"jsonrpc":"2.0","id":"abc","result":{}}"#
        );
    }

    #[test]
    fn invalid_messages_get_the_right_codes() {
        assert_eq!(parse(b"{").unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse(b"\xff\xfe").unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().code, INVALID_REQUEST);
        for bad in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"5"#,
        ] {
            assert_eq!(
                single(bad).unwrap_err().error.code,
                INVALID_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#)
                .unwrap_err()
                .error
                .code,
            INVALID_PARAMS
        );
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err().code, PARSE_ERROR);
        let deep_obj = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(parse(deep_obj.as_bytes()).unwrap_err().code, PARSE_ERROR);
    }

    #[test]
    fn batches_are_recognised() {
        let Parsed::Batch(v) =
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(v.len(), 2);
    }
}
