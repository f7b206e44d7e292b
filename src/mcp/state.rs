//! Stateless era: `requestState` tokens that carry a tool call's earlier
//! input responses through the client, signed so they cannot be forged.

use super::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The server's secret for signing `requestState`. Random per process: a
/// state issued by another replica or an earlier run does not verify (the
/// client then starts the call over).
pub struct StateKey([u8; 32]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    /// A fresh random key.
    pub fn random() -> StateKey {
        let mut k = [0u8; 32];
        if getrandom::fill(&mut k).is_err() {
            tracing::error!("the OS random number generator failed");
            std::process::abort();
        }
        StateKey(k)
    }

    /// A key from configuration (so replicas behind a load balancer agree).
    pub fn from_secret(secret: &[u8]) -> StateKey {
        let mut k = [0u8; 32];
        let digest = <Sha256 as sha2::Digest>::digest(secret);
        k.copy_from_slice(&digest);
        StateKey(k)
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut m = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        m.update(payload);
        m.finalize().into_bytes().to_vec()
    }

    /// Signs the responses gathered so far for `tool`.
    pub fn issue(&self, tool: &str, responses: &Map<String, Value>) -> String {
        let payload = json!({ "tool": tool, "responses": responses }).to_string();
        let sig = self.mac(payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(sig))
    }

    /// Verifies a state token and returns the responses it carries.
    pub fn verify(&self, tool: &str, state: &str) -> Result<Map<String, Value>, Error> {
        let bad = || Error::InvalidParams("requestState is invalid or was tampered with".into());
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
}
