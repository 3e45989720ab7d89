//! Who may use JSON-RPC and kv_watch over HTTP, and which requests are
//! refused before they are read: those addressed to a host name the node
//! was not told about (DNS rebinding), those sent by another web origin's
//! page, JSON-RPC bodies that are not declared JSON, and, with a users
//! file, callers who present no user (docs/server.md, "HTTP access").
//!
//! Credentials are parsed exactly (RFC 6750's token syntax, RFC 7617's
//! Basic) and compared in constant time.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::rpc::admin::Admin;
use crate::shared::Shared;

/// What one request may do, once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// What it showed of the administrative token.
    pub admin: Admin,
    /// Whether it may submit entries (`kv_submit`): not an anonymous
    /// caller admitted by `public_read`.
    pub write: bool,
}

impl Access {
    /// Everything but administrative calls: what RESP's internal callers
    /// and a server without a users file give.
    pub fn open(admin: Admin) -> Access {
        Access { admin, write: true }
    }
}

/// Why a request is refused before it is read, as an HTTP status and a
/// sentence for the JSON-RPC error's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 401, 403 or 415.
    pub status: StatusCode,
    /// What was wrong and what would be accepted.
    pub detail: String,
}

impl Refusal {
    fn new(status: StatusCode, detail: impl Into<String>) -> Refusal {
        Refusal { status, detail: detail.into() }
    }
}

/// The connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the connection is encrypted.
    pub tls: bool,
}

/// Whether `token` is an RFC 6750 bearer token: letters, digits and
/// `-._~+/`, then any `=` padding, at least one character before it.
pub fn is_token(token: &[u8]) -> bool {
    let body = token.iter().position(|&b| b == b'=').unwrap_or(token.len());
    body > 0
        && token[..body].iter().all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        && token[body..].iter().all(|&b| b == b'=')
}

/// The token of an `Authorization: Bearer <token>` value: the scheme in
/// any case, one space, a well-formed token and nothing else.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = split_scheme(value)?;
    (scheme.eq_ignore_ascii_case(b"bearer") && is_token(token)).then_some(token)
}

/// The user name and password of an `Authorization: Basic <base64>` value.
fn basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, encoded) = split_scheme(value)?;
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    Some((&value[..space], &value[space + 1..]))
}

/// Whether `presented` is `configured`, in time that does not depend on
/// where they differ.
pub fn same_secret(presented: &[u8], configured: &[u8]) -> bool {
    presented.len() == configured.len() && bool::from(presented.ct_eq(configured))
}

/// Admits or refuses a JSON-RPC or kv_watch request from its head.
/// `json_body`: a POST, whose body must be declared JSON.
pub fn admit(shared: &Shared, headers: &HeaderMap, peer: Peer, json_body: bool) -> Result<Access, Refusal> {
    check_host(shared, headers)?;
    check_origin(shared, headers)?;
    if json_body && !declares_json(headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "JSON-RPC requests need the header `Content-Type: application/json`",
        ));
    }
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let admin = Admin::check(shared.config.admin_token.as_deref(), authorization);
    let Some(users) = &shared.resp.users else {
        return Ok(Access::open(admin));
    };
    if admin == Admin::Granted {
        return Ok(Access::open(admin));
    }
    let unauthorized = |detail: &str| Err(Refusal::new(StatusCode::UNAUTHORIZED, detail));
    match authorization {
        None if shared.config.public_read => Ok(Access { admin, write: false }),
        None => unauthorized(
            "this server has users: send `Authorization: Bearer <token>` (a user's token), or HTTP Basic \
             over TLS or from loopback",
        ),
        Some(value) => {
            if let Some(token) = bearer(value) {
                return match users.by_token(token) {
                    Some(_) => Ok(Access::open(admin)),
                    None => unauthorized("the bearer token is no user's token"),
                };
            }
            if let Some((name, password)) = basic(value) {
                if !(peer.tls || peer.addr.ip().is_loopback()) {
                    return unauthorized("HTTP Basic is accepted only over TLS or from loopback");
                }
                return match users.authenticate(&name, &password) {
                    Some(_) => Ok(Access::open(admin)),
                    None => unauthorized("invalid username-password pair"),
                };
            }
            unauthorized("the Authorization header is neither `Bearer <token>` nor `Basic <base64>`")
        }
    }
}

/// The request must name this node by an IP address, `localhost`, or a
/// host of `http_allowed_hosts`: a page that rebinds its own name to this
/// node's address still sends that name, and is refused.
fn check_host(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "the request has no Host header"));
    };
    let name = host_name(host);
    let allowed = name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || shared.config.http_allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("host {name:?} is not this node's: add it to http_allowed_hosts"),
        ))
    }
}

/// The host of a `Host` value, without its port or an IPv6 literal's
/// brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// A browser names the page's origin on cross-site requests; only the
/// node's own (the same host and port) and `http_allowed_origins` pass.
fn check_origin(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let authority = origin.split_once("://").map(|(_, a)| a);
    if authority == Some(host) || shared.config.http_allowed_origins.iter().any(|o| o == origin) {
        return Ok(());
    }
    Err(Refusal::new(
        StatusCode::FORBIDDEN,
        format!("requests from origin {origin:?} are not allowed: add it to http_allowed_origins"),
    ))
}

/// Whether the body is declared `application/json` (parameters allowed).
fn declares_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_exactly() {
        assert_eq!(bearer(b"Bearer abc-._~+/9=="), Some(&b"abc-._~+/9=="[..]));
        assert_eq!(bearer(b"bearer abc"), Some(&b"abc"[..]));
        for bad in [
            &b"Bearer abc "[..],
            b"Bearer  abc",
            b"Bearer",
            b"Bearer ",
            b"Bearer a=b",
            b"Bearer =",
            b"Basic abc",
        ] {
            assert_eq!(bearer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(!is_token(b"s3cret "));
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd") && !same_secret(b"abc", b"abcd"));
    }

    #[test]
    fn basic_credentials_and_host_names() {
        assert_eq!(basic(b"Basic YWxpY2U6czNjOnJldA=="), Some((b"alice".to_vec(), b"s3c:ret".to_vec())));
        assert_eq!(basic(b"Basic !!!"), None);
        assert_eq!(basic(b"Basic YWxpY2U="), None, "no colon");
        assert_eq!(host_name("127.0.0.1:7380"), "127.0.0.1");
        assert_eq!(host_name("[::1]:7380"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("node.example:80"), "node.example");
    }
}
