//! Optional bearer-token authentication (OAuth 2.1 resource server, MCP
//! authorization; SECURITY.md M10–M12): JWTs checked on every request but
//! health and metadata, RFC 9728 protected-resource metadata.
//!
//! Invariant: a token is read only from `Authorization: Bearer`, never from the query (M11).
//! Invariant: tokens are never passed on: handlers see only the principal (M12).

use crate::http::{Guard, Request, Response};
use crate::util::duration_ms;
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Authentication settings (`[auth]`). Off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a bearer token on every route but health and metadata. Default false.
    pub enabled: bool,
    /// This server's canonical resource URI (e.g. `https://mcp.example.com/mcp`):
    /// tokens must carry it in `aud` (RFC 8707, M11).
    pub resource: String,
    /// Required `iss` of tokens.
    pub issuer: String,
    /// Authorization servers named in the protected-resource metadata.
    pub authorization_servers: Vec<String>,
    /// A JWKS file with the issuer's public keys (RS256/ES256), read at start.
    pub jwks_file: Option<String>,
    /// Or a shared HS256 secret (for development).
    pub hs256_secret: Option<String>,
    /// Scopes every request needs; a token without them gets 403.
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp`/`nbf`. Default 60 s.
    #[serde(with = "duration_ms", rename = "leeway_ms")]
    pub leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            resource: "http://localhost:8080/mcp".into(),
            issuer: String::new(),
            authorization_servers: Vec::new(),
            jwks_file: None,
            hs256_secret: None,
            required_scopes: Vec::new(),
            leeway: Duration::from_secs(60),
        }
    }
}

/// Why authentication could not be set up.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JWKS file could not be read or parsed.
    #[error("auth.jwks_file {path}: {why}")]
    Jwks {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// Settings that cannot work.
    #[error("invalid [auth] settings: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

/// The `Guard` that checks bearer JWTs.
pub struct BearerAuth {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    cfg: AuthConfig,
    metadata_url: String,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The RFC 9728 metadata URL for a resource URI: the well-known path goes
/// between the authority and the resource's path.
pub fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("http", resource));
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    format!("{scheme}://{authority}/.well-known/oauth-protected-resource{path}")
}

impl BearerAuth {
    /// Loads keys per `cfg`.
    pub fn new(cfg: &AuthConfig) -> Result<BearerAuth, Error> {
        let mut keys = Vec::new();
        if let Some(path) = &cfg.jwks_file {
            let bad = |why: String| Error::Jwks {
                path: path.clone(),
                why,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            for jwk in &set.keys {
                let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
                let alg = match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    _ => return Err(bad("only RSA and EC keys are supported".into())),
                };
                keys.push((jwk.common.key_id.clone(), alg, key));
            }
        }
        if let Some(secret) = &cfg.hs256_secret {
            keys.push((
                None,
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if keys.is_empty() {
            return Err(Error::Invalid(
                "auth.enabled needs auth.jwks_file or auth.hs256_secret".into(),
            ));
        }
        if cfg.resource.is_empty() {
            return Err(Error::Invalid(
                "auth.resource (this server's canonical URI) is required".into(),
            ));
        }
        Ok(BearerAuth {
            keys,
            cfg: cfg.clone(),
            metadata_url: metadata_url(&cfg.resource),
        })
    }

    /// The RFC 9728 protected-resource metadata document.
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.cfg.resource,
            "authorization_servers": self.cfg.authorization_servers,
            "scopes_supported": self.cfg.required_scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "Conduit",
        })
    }

    fn challenge(&self, status: u16, error: Option<&str>, why: &str) -> Response {
        let mut h = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        if !self.cfg.required_scopes.is_empty() {
            h.push_str(&format!(
                ", scope=\"{}\"",
                self.cfg.required_scopes.join(" ")
            ));
        }
        if let Some(e) = error {
            h.push_str(&format!(", error=\"{e}\""));
        }
        let body = serde_json::json!({ "error": error.unwrap_or("unauthorized"), "error_description": why });
        Response::json(status, body.to_string()).header("WWW-Authenticate", h)
    }

    fn verify(&self, token: &str) -> Result<Claims, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let mut last = String::from("no key matches the token");
        for (kid, alg, key) in &self.keys {
            if *alg != header.alg || (header.kid.is_some() && kid.is_some() && header.kid != *kid) {
                continue;
            }
            let mut v = Validation::new(*alg);
            // M11: audience = our canonical URI; issuer; expiry (with leeway).
            v.set_audience(&[&self.cfg.resource]);
            if !self.cfg.issuer.is_empty() {
                v.set_issuer(&[&self.cfg.issuer]);
            }
            v.leeway = self.cfg.leeway.as_secs();
            v.validate_nbf = true;
            match jsonwebtoken::decode::<Claims>(token, key, &v) {
                Ok(d) => return Ok(d.claims),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl Guard for BearerAuth {
    fn check(&self, req: &Request) -> Result<Option<String>, Response> {
        let mut values = req
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        let Some((_, value)) = values.next() else {
            return Err(self.challenge(401, None, "a bearer token is required"));
        };
        if values.next().is_some() {
            return Err(self.challenge(
                400,
                Some("invalid_request"),
                "more than one Authorization header",
            ));
        }
        let value = std::str::from_utf8(value).unwrap_or("");
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.challenge(401, None, "only Bearer tokens are accepted"));
        }
        let token = token.trim();
        if token.is_empty() || token.contains(' ') {
            return Err(self.challenge(
                400,
                Some("invalid_request"),
                "malformed Bearer credentials",
            ));
        }
        let claims = self.verify(token).map_err(|why| {
            tracing::debug!(%why, "rejected bearer token");
            self.challenge(
                401,
                Some("invalid_token"),
                "the token is invalid, expired or not for this resource",
            )
        })?;
        let scopes: Vec<&str> = match (&claims.scope, &claims.scp) {
            (Some(s), _) => s.split(' ').collect(),
            (None, Some(v)) => v.iter().map(String::as_str).collect(),
            (None, None) => Vec::new(),
        };
        if let Some(missing) = self
            .cfg
            .required_scopes
            .iter()
            .find(|s| !scopes.contains(&s.as_str()))
        {
            return Err(self.challenge(
                403,
                Some("insufficient_scope"),
                &format!("the token lacks scope {missing}"),
            ));
        }
        Ok(Some(claims.sub.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_url_puts_the_well_known_path_after_the_authority() {
        assert_eq!(
            super::metadata_url("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            super::metadata_url("http://localhost:8080"),
            "http://localhost:8080/.well-known/oauth-protected-resource"
        );
    }
}
