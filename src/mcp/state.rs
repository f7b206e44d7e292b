//! Stateless era: `requestState` tokens that carry a tool call's earlier
//! input responses through the client, signed so they cannot be forged,
//! with a signed expiry so they cannot be replayed forever.

use super::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// The server's secret for signing `requestState`, and how long a state
/// stays valid. Random per process unless configured: a state issued by
/// another replica or an earlier run does not verify (the client then
/// starts the call over).
pub struct StateKey {
    key: [u8; 32],
    ttl: Duration,
}

/// How long a `requestState` is valid by default: 10 minutes, room for a
/// person to answer an elicitation.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// Milliseconds since the Unix epoch (wall clock: a state may be verified
/// by another replica).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    /// A fresh random key; states valid for [`DEFAULT_STATE_TTL`].
    pub fn random() -> StateKey {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            tracing::error!("the OS random number generator failed");
            std::process::abort();
        }
        StateKey {
            key,
            ttl: DEFAULT_STATE_TTL,
        }
    }

    /// A key from configuration (so replicas behind a load balancer agree).
    pub fn from_secret(secret: &[u8]) -> StateKey {
        let mut key = [0u8; 32];
        let digest = <Sha256 as sha2::Digest>::digest(secret);
        key.copy_from_slice(&digest);
        StateKey {
            key,
            ttl: DEFAULT_STATE_TTL,
        }
    }

    /// States issued from now on are valid for `ttl` (`mcp.request_state_ttl_ms`).
    pub fn with_ttl(mut self, ttl: Duration) -> StateKey {
        self.ttl = ttl;
        self
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut m = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        m.update(payload);
        m.finalize().into_bytes().to_vec()
    }

    /// Signs the responses gathered so far for `tool`, with an expiry.
    pub fn issue(&self, tool: &str, responses: &Map<String, Value>) -> String {
        self.issue_at(tool, responses, unix_ms())
    }

    fn issue_at(&self, tool: &str, responses: &Map<String, Value>, now_ms: u64) -> String {
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let exp = now_ms.saturating_add(ttl);
        let payload = json!({ "tool": tool, "exp": exp, "responses": responses }).to_string();
        let sig = self.mac(payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(sig))
    }

    /// Verifies a state token and returns the responses it carries. A
    /// forged, altered, foreign or expired state gets the same -32602.
    pub fn verify(&self, tool: &str, state: &str) -> Result<Map<String, Value>, Error> {
        self.verify_at(tool, state, unix_ms())
    }

    fn verify_at(&self, tool: &str, state: &str, now_ms: u64) -> Result<Map<String, Value>, Error> {
        // One answer for every failure: a client learns nothing from it.
        let bad = || {
            Error::InvalidParams(
                "requestState is invalid, expired or was tampered with; start the call over".into(),
            )
        };
        let (p, s) = state.split_once('.').ok_or_else(bad)?;
        let payload = B64.decode(p).map_err(|_| bad())?;
        let sig = B64.decode(s).map_err(|_| bad())?;
        // I5: constant-time comparison of the signature.
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(self.mac(&payload).as_slice(), sig.as_slice()).into();
        if !ok {
            return Err(bad());
        }
        let v: Value = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if v.get("tool").and_then(Value::as_str) != Some(tool) {
            return Err(bad());
        }
        // A state without an expiry was not issued by this code.
        match v.get("exp").and_then(Value::as_u64) {
            Some(exp) if now_ms < exp => {}
            Some(_) | None => return Err(bad()),
        }
        Ok(v.get("responses")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default())
    }

    /// For a retried request: the earlier responses from `requestState`
    /// merged with this retry's `inputResponses`, and whether a valid
    /// `requestState` came with it.
    pub fn check_retry(
        &self,
        params: &Map<String, Value>,
        name: &str,
    ) -> Result<(Map<String, Value>, bool), Error> {
        let (mut responses, verified) = match params.get("requestState") {
            Some(Value::String(s)) => (self.verify(name, s)?, true),
            Some(_) => return Err(Error::InvalidParams("requestState must be a string".into())),
            None => (Map::new(), false),
        };
        match params.get("inputResponses") {
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    responses.insert(k.clone(), v.clone());
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(Error::InvalidParams(
                    "inputResponses must be an object".into(),
                ))
            }
        }
        Ok((responses, verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_tampering_is_caught() {
        let k = StateKey::random();
        let mut r = Map::new();
        r.insert(
            "sampling-createMessage-1".into(),
            json!({"content": {"type": "text", "text": "hi"}}),
        );
        let s = k.issue("t", &r);
        assert_eq!(k.verify("t", &s).unwrap(), r);
        assert!(k.verify("other", &s).is_err());
        let (p, sig) = s.split_once('.').unwrap();
        let forged = format!(
            "{}.{sig}",
            B64.encode(
                B64.decode(p)
                    .unwrap()
                    .iter()
                    .map(|b| b ^ 1)
                    .collect::<Vec<_>>()
            )
        );
        assert!(k.verify("t", &forged).is_err());
        assert!(StateKey::random().verify("t", &s).is_err());
        assert!(k.verify("t", "garbage").is_err());
    }

    #[test]
    fn a_state_expires_after_its_ttl_with_the_tampering_error() {
        let k = StateKey::random().with_ttl(Duration::from_secs(60));
        let r = Map::new();
        let s = k.issue_at("t", &r, 1_000_000);
        assert_eq!(k.verify_at("t", &s, 1_000_000 + 59_999).unwrap(), r);
        let expired = k.verify_at("t", &s, 1_000_000 + 60_000).unwrap_err();
        let tampered = k.verify_at("t", "x.y", 1_000_000).unwrap_err();
        assert_eq!(expired, tampered);
        assert_eq!(
            expired.json_rpc_code(true),
            crate::mcp::jsonrpc::INVALID_PARAMS
        );
        // Pushing the expiry back breaks the signature.
        let (p, sig) = s.split_once('.').unwrap();
        let payload = String::from_utf8(B64.decode(p).unwrap()).unwrap();
        let later = payload.replace("\"exp\":1060000", "\"exp\":9060000");
        assert_ne!(later, payload);
        let forged = format!("{}.{sig}", B64.encode(later));
        assert_eq!(k.verify_at("t", &forged, 1_100_000).unwrap_err(), tampered);
    }
}
