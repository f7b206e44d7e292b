//! JSON-RPC 2.0 messages: parsing (once, from bytes) and encoding.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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
    /// A numeric id, kept as the exact JSON text it arrived as: `1` and
    /// `1.0` stay distinct, and ids beyond f64 (`1e400`, 30-digit integers)
    /// round-trip byte for byte.
    Number(NumberId),
    /// A string id.
    String(String),
}

/// The text of a JSON number, written back verbatim.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct NumberId(Box<RawValue>);

impl NumberId {
    /// The number's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The number's value as text, so that ids written differently match:
    /// `1000`, `1e3` and `1000.0` alike, and a 30-digit id with the
    /// `requestId` a client's JSON library turned into a float (the text
    /// itself is still what is echoed). Beyond f64: the text as written.
    fn key(&self) -> std::borrow::Cow<'_, str> {
        let t = self.as_str();
        // The usual id, a short integer, is its own key.
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.len() <= 18 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return t.into();
        }
        if let Ok(i) = t.parse::<i64>() {
            return i.to_string().into();
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => f.to_string().into(),
            _ => t.into(),
        }
    }
}

impl PartialEq for NumberId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for NumberId {}

impl std::hash::Hash for NumberId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

impl RequestId {
    /// The id named by a JSON value (e.g. `requestId` of
    /// `notifications/cancelled`); `None` unless a string or a number.
    pub fn from_value(v: &Value) -> Option<RequestId> {
        match v {
            Value::Number(n) => RawValue::from_string(n.to_string())
                .ok()
                .map(|r| RequestId::Number(NumberId(r))),
            Value::String(s) => Some(RequestId::String(s.clone())),
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// The id named by raw JSON text: a number is kept as written, a string
    /// is decoded; anything else is not an id.
    fn from_raw(raw: &RawValue) -> Option<RequestId> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'-' | b'0'..=b'9') => Some(RequestId::Number(NumberId(raw.to_owned()))),
            Some(b'"') => serde_json::from_str(text).ok().map(RequestId::String),
            _ => None,
        }
    }

    /// The id as a JSON value. A number beyond what `Value` holds (`1e400`)
    /// becomes its text, as a string.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Number(n) => serde_json::from_str::<serde_json::Number>(n.as_str())
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(n.as_str().to_string())),
            RequestId::String(s) => Value::String(s.clone()),
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => f.write_str(n.as_str()),
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

/// A member that may be absent. Unlike `Option`, a JSON `null` is present.
#[derive(Debug, Default)]
enum Field<T> {
    #[default]
    Absent,
    Present(T),
}

impl<T> Field<T> {
    fn into_option(self) -> Option<T> {
        match self {
            Field::Absent => None,
            Field::Present(v) => Some(v),
        }
    }

    /// Fills the member; a repeated member makes the message invalid (which
    /// one counts would be ambiguous).
    fn set<E: serde::de::Error>(&mut self, v: T, name: &str) -> Result<(), E> {
        match self {
            Field::Absent => {
                *self = Field::Present(v);
                Ok(())
            }
            Field::Present(_) => Err(E::custom(format_args!("duplicate member `{name}`"))),
        }
    }
}

/// The members of a JSON-RPC message. The id (and the small members) stay
/// raw text, so a numeric id is never converted and echoes exactly.
#[derive(Debug, Default)]
struct Envelope<'a> {
    jsonrpc: Field<&'a RawValue>,
    id: Field<&'a RawValue>,
    method: Field<&'a RawValue>,
    params: Field<Value>,
    result: Field<Value>,
    error: Field<Value>,
}

/// A member name of [`Envelope`].
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "jsonrpc" => Key::Jsonrpc,
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Envelope<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Envelope<'a>, A::Error> {
                let mut env = Envelope::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Jsonrpc => env.jsonrpc.set(raw_member(&mut map)?, "jsonrpc")?,
                        Key::Id => env.id.set(raw_member(&mut map)?, "id")?,
                        Key::Method => env.method.set(raw_member(&mut map)?, "method")?,
                        Key::Params => env.params.set(map.next_value()?, "params")?,
                        Key::Result => env.result.set(map.next_value()?, "result")?,
                        Key::Error => env.error.set(map.next_value()?, "error")?,
                        // Read as a Value, not skipped: skipping has no
                        // depth limit, and L14 wants deep nesting anywhere
                        // to be a parse error.
                        Key::Other => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A member kept as raw text. One holding an array or object (never valid
/// for these members) is also read as a Value, for the depth limit (L14).
fn raw_member<'de, A: serde::de::MapAccess<'de>>(map: &mut A) -> Result<&'de RawValue, A::Error> {
    let raw: &'de RawValue = map.next_value()?;
    if matches!(raw.get().as_bytes().first(), Some(b'[' | b'{')) {
        serde_json::from_str::<Value>(raw.get()).map_err(serde::de::Error::custom)?;
    }
    Ok(raw)
}

fn is_too_deep(e: &serde_json::Error) -> bool {
    e.to_string().contains("recursion limit")
}

fn parse_error(e: &serde_json::Error) -> ErrorObject {
    let why = if is_too_deep(e) {
        "JSON nested too deeply".to_string()
    } else {
        format!("invalid JSON: {e}")
    };
    ErrorObject::new(PARSE_ERROR, why)
}

fn not_an_object() -> Rejected {
    Rejected {
        id: None,
        error: ErrorObject::new(INVALID_REQUEST, "a message must be a JSON object"),
    }
}

/// The first byte that is not JSON whitespace.
fn first_token(body: &[u8]) -> Option<u8> {
    body.iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Parses a body. JSON is parsed once (with the exceptions L14 needs, for
/// arrays or objects where no message member may hold one); invalid JSON (including nesting
/// deeper than 128 levels, L14) is a parse error, never a panic or overflow.
pub fn parse(body: &[u8]) -> Result<Parsed, ErrorObject> {
    match first_token(body) {
        Some(b'{') => match serde_json::from_slice::<Envelope<'_>>(body) {
            Ok(env) => Ok(Parsed::Single(classify_envelope(env))),
            Err(e) => single_failure(&e),
        },
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_slice(body).map_err(|e| parse_error(&e))?;
            if items.is_empty() {
                return Err(ErrorObject::new(INVALID_REQUEST, "empty batch"));
            }
            for raw in &items {
                if first_token(raw.get().as_bytes()) != Some(b'{') {
                    // Skipping a raw value has no depth limit; L14 wants
                    // deep nesting to be a parse error, so an element that
                    // is no message is read as a (depth-limited) Value.
                    serde_json::from_str::<Value>(raw.get()).map_err(|e| parse_error(&e))?;
                }
            }
            Ok(Parsed::Batch(items.into_iter().map(classify_raw).collect()))
        }
        _ => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            // Valid JSON, but not a message (a number, a string, …).
            Ok(_) => Ok(Parsed::Single(Err(not_an_object()))),
            Err(e) => Err(parse_error(&e)),
        },
    }
}

/// A body that did not read as a message: invalid JSON is a parse error;
/// valid JSON of the wrong shape (a repeated member) is an invalid request.
fn single_failure(e: &serde_json::Error) -> Result<Parsed, ErrorObject> {
    if is_too_deep(e) {
        return Err(parse_error(e));
    }
    match e.classify() {
        serde_json::error::Category::Data => Ok(Parsed::Single(Err(Rejected {
            id: None,
            error: ErrorObject::new(INVALID_REQUEST, format!("not a JSON-RPC message: {e}")),
        }))),
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => Err(parse_error(e)),
    }
}

/// One element of a batch.
fn classify_raw(raw: &RawValue) -> Result<Message, Rejected> {
    if first_token(raw.get().as_bytes()) != Some(b'{') {
        return Err(not_an_object());
    }
    match serde_json::from_str::<Envelope<'_>>(raw.get()) {
        Ok(env) => classify_envelope(env),
        Err(e) if is_too_deep(&e) => Err(Rejected {
            id: None,
            error: parse_error(&e),
        }),
        Err(e) => Err(Rejected {
            id: None,
            error: ErrorObject::new(INVALID_REQUEST, format!("not a JSON-RPC message: {e}")),
        }),
    }
}

/// Turns one message's members into a message, or says why it is not one.
fn classify_envelope(env: Envelope<'_>) -> Result<Message, Rejected> {
    let id = match env.id {
        Field::Absent => None,
        Field::Present(raw) => match RequestId::from_raw(raw) {
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
    let version_ok = match env.jsonrpc {
        Field::Present(v) => {
            v.get() == "\"2.0\""
                || serde_json::from_str::<String>(v.get()).is_ok_and(|s| s == "2.0")
        }
        Field::Absent => false,
    };
    if !version_ok {
        return reject(id, "jsonrpc must be \"2.0\"");
    }
    match env.method {
        Field::Present(raw) => {
            let Ok(method) = serde_json::from_str::<String>(raw.get()) else {
                return reject(id, "method must be a string");
            };
            let params = match env.params {
                Field::Absent | Field::Present(Value::Null) => Map::new(),
                Field::Present(Value::Object(p)) => p,
                Field::Present(_) => {
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
        Field::Absent => {
            let Some(id) = id else {
                return reject(None, "a response needs an id");
            };
            match (env.result.into_option(), env.error.into_option()) {
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
            r#"{"jsonrpc":"2.0","id":1.5e3,"result":null}"#
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
    fn ids_written_differently_name_the_same_call() {
        let raw = |t: &str| RequestId::from_raw(&RawValue::from_string(t.into()).unwrap());
        assert_eq!(raw("1000"), raw("1e3"));
        assert_eq!(raw("1000"), raw("1000.0"));
        assert_ne!(raw("1000"), raw("1001"));
        assert_ne!(raw("1"), Some(RequestId::String("1".into())));
        // A client's JSON library may turn a long id into a float for the cancel.
        let long = raw("123456789012345678901234567890");
        let as_float = RequestId::from_value(&serde_json::json!(1.2345678901234568e29));
        assert_eq!(Some(long.unwrap()), as_float);
    }

    #[test]
    fn ids_beyond_f64_round_trip_byte_for_byte() {
        for id in [
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "0.1000000000000000000000000001",
            "-0",
            "1E+2",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"x"}}"#);
            let Ok(Message::Request(r)) = single(&body) else {
                panic!("{body}")
            };
            assert_eq!(r.id.to_string(), id);
            assert_eq!(
                encode_result(&r.id, &Value::Null),
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":null}}"#)
            );
            assert_eq!(
                encode_error(Some(&r.id), &ErrorObject::new(-1, "e")),
                format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-1,"message":"e"}}}}"#)
            );
        }
        // Responses to our requests and batch elements keep theirs too.
        let Ok(Message::Response(r)) = single(r#"{"jsonrpc":"2.0","id":1e999,"result":{}}"#) else {
            panic!()
        };
        assert_eq!(r.id.to_string(), "1e999");
        let Parsed::Batch(v) =
            parse(br#"[{"jsonrpc":"2.0","id":99999999999999999999999,"method":"a"}]"#).unwrap()
        else {
            panic!()
        };
        let Some(Ok(Message::Request(r))) = v.first() else {
            panic!("{v:?}")
        };
        assert_eq!(r.id.to_string(), "99999999999999999999999");
        // A string id is decoded, and compares by value.
        let Ok(Message::Request(r)) = single(r#"{"jsonrpc":"2.0","id":"a\u0062","method":"x"}"#)
        else {
            panic!()
        };
        assert_eq!(r.id, RequestId::String("ab".into()));
        // An id named in params (notifications/cancelled) matches the request's.
        let Ok(Message::Request(r)) = single(r#"{"jsonrpc":"2.0","id":42,"method":"x"}"#) else {
            panic!()
        };
        assert_eq!(RequestId::from_value(&serde_json::json!(42)), Some(r.id));
    }

    #[test]
    fn absent_null_and_repeated_members_are_told_apart() {
        // `"result": null` is a result.
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"result":null}"#),
            Ok(Message::Response(Response {
                outcome: Ok(Value::Null),
                ..
            }))
        ));
        // `"params": null` is no params.
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"method":"x","params":null}"#),
            Ok(Message::Request(_))
        ));
        // A repeated member is ambiguous: invalid, not last-one-wins.
        assert_eq!(
            single(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#)
                .unwrap_err()
                .error
                .code,
            INVALID_REQUEST
        );
        // Unknown members are ignored (but read like params: a number
        // beyond f64 there is a parse error, as is nesting past 128).
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":1,"method":"x","extra":[1,{"a":[]}]}"#),
            Ok(Message::Request(_))
        ));
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","extra":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(parse(deep.as_bytes()).unwrap_err().code, PARSE_ERROR);
        let deep_id = format!(
            r#"{{"jsonrpc":"2.0","id":{}{},"method":"x"}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(parse(deep_id.as_bytes()).unwrap_err().code, PARSE_ERROR);
        // Invalid members keep the id for the error reply.
        let rej = single(r#"{"jsonrpc":"2.0","id":"k","method":5}"#).unwrap_err();
        assert_eq!(rej.id, Some(RequestId::String("k".into())));
        let rej = single(r#"{"jsonrpc":2,"id":3e400,"method":"x"}"#).unwrap_err();
        assert_eq!(rej.id.map(|i| i.to_string()).as_deref(), Some("3e400"));
        assert_eq!(parse(b"  ").unwrap_err().code, PARSE_ERROR);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"x""#)
                .unwrap_err()
                .code,
            PARSE_ERROR
        );
        assert_eq!(
            single(r#""a string""#).unwrap_err().error.code,
            INVALID_REQUEST
        );
        let Parsed::Batch(v) = parse(br#"[5, {"jsonrpc":"2.0","method":"n"}]"#).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert!(v[0].is_err() && v[1].is_ok());
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
