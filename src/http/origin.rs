//! DNS-rebinding and cross-origin protection for routes that change state:
//! `Host` (or the absolute-form authority) and `Origin` must be on an
//! allow-list (SECURITY.md M1, M2, I9).

use super::request::Request;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// `Host` is not on the list (a DNS-rebinding page, or a wrong name).
    Host,
    /// `Origin` is present and not on the list (a cross-site page), or `null`.
    Origin,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Forbidden::Host => f.write_str("Forbidden: Host not allowed"),
            Forbidden::Origin => f.write_str("Forbidden: Origin not allowed"),
        }
    }
}

/// The host part of an authority or origin (`[::1]` keeps its brackets), lowercased.
pub fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let host = if a.starts_with('[') {
        a.find(']').map_or(a, |i| &a[..=i])
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    host.to_ascii_lowercase()
}

/// Checks `Host` against `hosts` and, when present, `Origin` against
/// `origins` (host names, any port). An absent `Origin` is allowed: it is
/// a non-browser client (browsers send it on every cross-origin write).
pub fn check(req: &Request, hosts: &[String], origins: &[String]) -> Result<(), Forbidden> {
    let allowed = |list: &[String], host: &str| list.iter().any(|h| h.eq_ignore_ascii_case(host));
    if let Some(host) = req.host() {
        if !allowed(hosts, &host_of(host)) {
            return Err(Forbidden::Host);
        }
    }
    if let Some(origin) = req.header_str("origin") {
        let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        if origin == "null" || !allowed(origins, &host_of(authority)) {
            return Err(Forbidden::Origin);
        }
    } else if req.header("origin").is_some() {
        return Err(Forbidden::Origin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn hosts_are_extracted_without_ports() {
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("LOCALHOST"), "localhost");
        assert_eq!(host_of("[::1]:9"), "[::1]");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_of("evil.example.com:80"), "evil.example.com");
    }

    #[test]
    fn host_and_origin_allow_lists() {
        let local = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let req = |h: &[(&str, &str)]| Request::synthetic(Method::Post, "/x", h, b"");
        let check = |h: &[(&str, &str)]| check(&req(h), &local, &local);
        assert_eq!(check(&[("Host", "localhost:3000")]), Ok(()));
        assert_eq!(
            check(&[
                ("Host", "127.0.0.1:3000"),
                ("Origin", "http://localhost:5173")
            ]),
            Ok(())
        );
        assert_eq!(check(&[("Host", "evil.example.com")]), Err(Forbidden::Host));
        assert_eq!(
            check(&[("Host", "localhost"), ("Origin", "http://evil.example.com")]),
            Err(Forbidden::Origin)
        );
        assert_eq!(
            check(&[("Host", "localhost"), ("Origin", "null")]),
            Err(Forbidden::Origin)
        );
    }
}
