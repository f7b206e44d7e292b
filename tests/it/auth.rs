//! Bearer-token auth (SECURITY.md M6, M10–M12): OAuth 2.1 resource server.

use crate::support::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const RESOURCE: &str = "http://localhost:8080/mcp";
const ISSUER: &str = "https://issuer.test";
const SECRET: &str = "test-secret-for-hs256";

fn auth_config() -> conduit::config::Config {
    let mut cfg = test_config();
    cfg.auth.enabled = true;
    cfg.auth.resource = RESOURCE.into();
    cfg.auth.issuer = ISSUER.into();
    cfg.auth.authorization_servers = vec![ISSUER.into()];
    cfg.auth.hs256_secret = Some(SECRET.into());
    cfg.auth.jwks_file =
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/jwks.json").into());
    cfg.auth.required_scopes = vec!["mcp".into()];
    cfg.mcp.max_sessions_per_principal = 2;
    cfg
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": RESOURCE, "exp": now() + 600, "iat": now(), "scope": "mcp other" })
}

fn hs256(c: &Value) -> String {
    encode(
        &Header::default(),
        c,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn rs256(c: &Value) -> String {
    let pem = include_bytes!("../fixtures/auth/test-rsa-private.pem");
    let mut h = Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("test-key-1".into());
    encode(&h, c, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn initialize_body() -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
        .to_string()
        .into_bytes()
}

fn mcp_post(target: &str, token: Option<&str>, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    h.extend_from_slice(extra);
    http_request("POST", target, &h, body)
}

#[track_caller]
fn assert_challenge(r: &RawResponse, status: u16, error: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.head);
    let www = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {}", r.head));
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(
        www.contains(
            r#"resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp""#
        ),
        "{www}"
    );
    assert!(www.contains(r#"scope="mcp""#), "{www}");
    if let Some(e) = error {
        assert!(www.contains(&format!(r#"error="{e}""#)), "{www}");
    }
}

#[test]
fn m10_missing_token_is_401_with_resource_metadata_and_health_stays_public() {
    let srv = spawn_server(auth_config());
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", None, &[], &initialize_body()));
    assert_challenge(&r, 401, None);
    // Every route but health and metadata is covered.
    let (r, _) = exchange(srv.addr, &get("/plaintext"));
    assert_eq!(r.status, 401);
    let (r, _) = exchange(srv.addr, &get("/health/ready"));
    assert_eq!(r.status, 200);
    // RFC 9728 metadata names the authorization servers.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (r, _) = exchange(srv.addr, &get(path));
        assert_eq!(r.status, 200, "{path}");
        let v = r.json();
        assert_eq!(v["resource"], RESOURCE);
        assert_eq!(v["authorization_servers"], json!([ISSUER]));
        assert_eq!(v["bearer_methods_supported"], json!(["header"]));
    }
}

#[test]
fn m10_valid_tokens_are_served_hs256_and_rs256_from_jwks() {
    let srv = spawn_server(auth_config());
    for token in [hs256(&claims("alice")), rs256(&claims("alice"))] {
        let (r, _) = exchange(
            srv.addr,
            &mcp_post("/mcp", Some(&token), &[], &initialize_body()),
        );
        assert_eq!(r.status, 200, "{}", r.body_str());
        assert!(r.header("mcp-session-id").is_some());
    }
}

#[test]
fn m11_expired_foreign_audience_wrong_issuer_or_bad_signature_is_401_invalid_token() {
    let srv = spawn_server(auth_config());
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let mut audience = claims("alice");
    audience["aud"] = json!("https://other.example/mcp");
    let mut issuer = claims("alice");
    issuer["iss"] = json!("https://evil.example");
    let forged = encode(
        &Header::default(),
        &claims("alice"),
        &EncodingKey::from_secret(b"wrong"),
    )
    .unwrap();
    for (what, token) in [
        ("expired", hs256(&expired)),
        ("audience", hs256(&audience)),
        ("issuer", hs256(&issuer)),
        ("signature", forged),
        ("garbage", "not.a.jwt".into()),
    ] {
        let (r, _) = exchange(
            srv.addr,
            &mcp_post("/mcp", Some(&token), &[], &initialize_body()),
        );
        assert_challenge(&r, 401, Some("invalid_token"));
        assert!(
            !r.body_str().contains(&token),
            "{what}: the token is not echoed"
        );
    }
}

#[test]
fn m11_tokens_in_the_query_are_not_honoured() {
    let srv = spawn_server(auth_config());
    let token = hs256(&claims("alice"));
    let (r, _) = exchange(
        srv.addr,
        &mcp_post(
            &format!("/mcp?access_token={token}"),
            None,
            &[],
            &initialize_body(),
        ),
    );
    assert_challenge(&r, 401, None);
}

#[test]
fn m10_insufficient_scope_is_403() {
    let srv = spawn_server(auth_config());
    let mut c = claims("alice");
    c["scope"] = json!("read");
    let (r, _) = exchange(
        srv.addr,
        &mcp_post("/mcp", Some(&hs256(&c)), &[], &initialize_body()),
    );
    assert_challenge(&r, 403, Some("insufficient_scope"));
}

#[test]
fn m10_malformed_authorization_is_400() {
    let srv = spawn_server(auth_config());
    let raw = http_request(
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer"),
        ],
        &initialize_body(),
    );
    let (r, _) = exchange(srv.addr, &raw);
    assert_challenge(&r, 400, Some("invalid_request"));
    let t = hs256(&claims("alice"));
    let a = format!("Bearer {t}");
    let raw = http_request(
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &a),
            ("Authorization", &a),
        ],
        &initialize_body(),
    );
    let (r, _) = exchange(srv.addr, &raw);
    assert_eq!(r.status, 400);
}

#[test]
fn m6_a_session_belongs_to_its_principal_and_principals_are_capped() {
    let srv = spawn_server(auth_config());
    let alice = hs256(&claims("alice"));
    let bob = hs256(&claims("bob"));
    let (r, _) = exchange(
        srv.addr,
        &mcp_post("/mcp", Some(&alice), &[], &initialize_body()),
    );
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let ping = json!({"jsonrpc":"2.0","id":2,"method":"ping"})
        .to_string()
        .into_bytes();
    let h = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", Some(&alice), &h, &ping));
    assert_eq!(r.status, 200, "{}", r.body_str());
    // Knowing the session id is not enough: bob cannot use alice's session.
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", Some(&bob), &h, &ping));
    assert_eq!(r.status, 404);
    // Alice may hold two sessions (cap): a third replaces one of her idle
    // ones, a never-used one first (See: #13 (6)); bob's are untouched.
    let init = |who: &str| {
        let (r, _) = exchange(
            srv.addr,
            &mcp_post("/mcp", Some(who), &[], &initialize_body()),
        );
        assert_eq!(r.status, 200, "{}", r.body_str());
        r.header("mcp-session-id").unwrap().to_string()
    };
    let bobs = init(&bob);
    let second = init(&alice);
    let third = init(&alice);
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", Some(&alice), &h, &ping));
    assert_eq!(r.status, 200, "her used session stays: {}", r.body_str());
    let h2 = [
        ("Mcp-Session-Id", second.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", Some(&alice), &h2, &ping));
    assert_eq!(r.status, 404, "her never-used session made room");
    // Both of hers busy (GET streams open): a fourth is refused, 503 + Retry-After.
    let mut streams = Vec::new();
    for sid in [&sid, &third] {
        let auth = format!("Bearer {alice}");
        let mut s = Reader::new(connect(srv.addr));
        s.send(&http_request(
            "GET",
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Accept", "text/event-stream"),
                ("Mcp-Session-Id", sid),
            ],
            b"",
        ));
        assert_eq!(s.response_to("HEAD").status, 200);
        streams.push(s);
    }
    let (r, _) = exchange(
        srv.addr,
        &mcp_post("/mcp", Some(&alice), &[], &initialize_body()),
    );
    assert_eq!(r.status, 503, "{}", r.body_str());
    assert!(r.header("retry-after").is_some(), "{}", r.head);
    let bob_h = [
        ("Mcp-Session-Id", bobs.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (r, _) = exchange(srv.addr, &mcp_post("/mcp", Some(&bob), &bob_h, &ping));
    assert_eq!(r.status, 200, "{}", r.body_str());
    init(&bob);
}
