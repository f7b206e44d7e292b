#![no_main]
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use conduit::auth::{AuthConfig, BearerAuth};
use conduit::http::{Guard, Method, Request};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const SECRET: &str = "fuzz-secret";

static AUTH: LazyLock<BearerAuth> = LazyLock::new(|| {
    BearerAuth::new(&AuthConfig {
        enabled: true,
        resource: "http://localhost:8080/mcp".into(),
        issuer: "https://issuer.example".into(),
        hs256_secret: Some(SECRET.into()),
        required_scopes: vec!["mcp".into()],
        ..AuthConfig::default()
    })
    .expect("valid auth config")
});

// An HS256 token over a JOSE header and claims given as text.
fn sign(header: &str, claims: &str) -> String {
    let signed = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
}

// Input: a flag byte, then either Authorization values (one a line), or a
// JOSE header and claims (one line each) that get signed with our secret.
fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let values: Vec<String> = if flags & 1 == 0 {
        text.lines().map(str::to_string).collect()
    } else {
        let (header, claims) = text.split_once('\n').unwrap_or((&text, "{}"));
        vec![format!("Bearer {}", sign(header, claims))]
    };
    let headers: Vec<(&str, &str)> = values
        .iter()
        .map(|v| ("Authorization", v.as_str()))
        .collect();
    let req = Request::synthetic(Method::Post, "/mcp", &headers, b"");
    match AUTH.check(&req) {
        Ok(_) => assert_eq!(headers.len(), 1),
        Err(resp) => assert!(
            [400, 401, 403].contains(&resp.status()),
            "{}",
            resp.status()
        ),
    }
});
