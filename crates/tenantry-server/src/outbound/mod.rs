//! Every request Tenantry itself makes to another server (webhook
//! deliveries, identity providers' key sets, provider checks such as Meta's
//! Graph API or Genesys Cloud) goes through [`Outbound`]: one HTTP client
//! that refuses to reach internal addresses.
//!
//! The rule is checked on the addresses actually dialled, at connect time:
//! the client's resolver drops every forbidden address a name resolves to,
//! so a name that resolves to a public address when an endpoint is
//! registered and to 127.0.0.1 later (DNS rebinding) still cannot reach
//! 127.0.0.1. A URL whose host is an IP literal never reaches the resolver,
//! so [`Outbound::send`] checks it before the request leaves. Redirects are
//! not followed (a 3xx is an answer like any other) and no proxy is used.
//!
//! One allowlist (`outbound_allowlist`: CIDRs and host names) exempts
//! addresses and names from these rules and permits plain `http` to them;
//! everything else must be `https`.

mod addresses;

pub use addresses::forbidden_reason;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Addresses and names exempt from the outbound address rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    networks: Vec<ipnet::IpNet>,
    /// Lower-case host names, without a trailing dot.
    hosts: Vec<String>,
}

impl Allowlist {
    /// Parses a comma-separated list of CIDRs (`127.0.0.1/32`), bare IP
    /// addresses and host names.
    pub fn parse(text: &str) -> Result<Allowlist, String> {
        let mut list = Allowlist::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<ipnet::IpNet>() {
                list.networks.push(canonical_net(net));
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                list.networks.push(canonical_net(ipnet::IpNet::from(ip)));
            } else if is_host_name(item) {
                list.hosts
                    .push(item.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(format!(
                    "'{item}' is neither a CIDR (10.0.0.0/8), an IP address nor a host name"
                ));
            }
        }
        Ok(list)
    }

    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.networks.iter().any(|net| net.contains(&ip))
    }
}

fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, ipnet::IpNet::V4)
            }
            _ => net,
        },
        ipnet::IpNet::V4(_) => net,
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it
/// reaches.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn is_host_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Why an outbound request was not made or did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL or every address it resolves to is not allowed; also a URL
    /// that cannot be parsed. Permanent: the same URL fails the same way.
    #[error("refused: {0}")]
    Refused(String),
    /// No answer within the time allowed.
    #[error("timed out")]
    Timeout,
    /// The connection could not be made or broke (DNS failure, refused,
    /// reset, TLS failure).
    #[error("connection failed: {0}")]
    Connect(String),
}

/// The outbound HTTP client and its rules.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allowlist: Arc<Allowlist>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allowlist", &self.allowlist)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// `timeout`: the default limit of one request, connection included
    /// (a request may set a shorter one with `RequestBuilder::timeout`).
    pub fn new(allowlist: Allowlist, timeout: Duration) -> Result<Outbound, String> {
        let allowlist = Arc::new(allowlist);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                allowlist: allowlist.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Tenantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the outbound HTTP client cannot be built: {e}"))?;
        Ok(Outbound { client, allowlist })
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The client, to build requests with (`outbound.client().post(url)`);
    /// send them with [`Outbound::send`], never `.send()` directly.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Checks a URL as it is registered (a webhook endpoint, a JWKS URL):
    /// it parses, has no credentials, is `https` (or `http` to an
    /// allowlisted host or address), and its host is not a forbidden IP
    /// literal. Names are checked again, on what they resolve to, at every
    /// connection. The error says why, for a 422.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, OutboundError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| OutboundError::Refused(format!("not a valid URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(OutboundError::Refused(
                "a URL must not carry a user name or password".into(),
            ));
        }
        let allowed_host = match parsed.host() {
            Some(url::Host::Domain(name)) => self.allowlist.allows_host(name),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            None => return Err(OutboundError::Refused("the URL has no host".into())),
        };
        match parsed.scheme() {
            "https" => {}
            "http" if allowed_host => {}
            "http" => {
                return Err(OutboundError::Refused(
                    "only https URLs are allowed (plain http only to hosts in outbound_allowlist)"
                        .into(),
                ));
            }
            other => {
                return Err(OutboundError::Refused(format!(
                    "scheme '{other}' is not allowed: use https"
                )));
            }
        }
        Ok(parsed)
    }

    /// Whether an IP literal may be dialled: `Ok(true)` if allowlisted,
    /// `Ok(false)` if merely public.
    fn check_ip(&self, ip: IpAddr) -> Result<bool, OutboundError> {
        if self.allowlist.allows_ip(ip) {
            return Ok(true);
        }
        match forbidden_reason(ip) {
            Some(why) => Err(OutboundError::Refused(format!(
                "{} is {why}",
                canonical_ip(ip)
            ))),
            None => Ok(false),
        }
    }

    /// Sends a request built from [`Outbound::client`], after checking its
    /// URL (the resolver checks the addresses of names).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OutboundError> {
        let request = request
            .build()
            .map_err(|e| OutboundError::Refused(format!("the request cannot be built: {e}")))?;
        self.check_url(request.url().as_str())?;
        self.client
            .execute(request)
            .await
            .map_err(classify_transport_error)
    }
}

/// Maps a transport error to what a caller decides on: a refused address
/// (from the resolver) is permanent; a timeout and a broken connection are
/// worth a retry. The message never carries the URL's query string.
fn classify_transport_error(err: reqwest::Error) -> OutboundError {
    if err.is_timeout() {
        return OutboundError::Timeout;
    }
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return OutboundError::Refused(refused.0.clone());
        }
        source = e.source();
    }
    let err = err.without_url();
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        detail.push_str(": ");
        detail.push_str(&e.to_string());
        source = e.source();
    }
    // The whole chain (library wording, addresses) goes to the log; what
    // is stored and shown to tenants is one stable phrase.
    tracing::debug!(error = %detail, "an outbound connection failed");
    OutboundError::Connect(connect_reason(&err, &detail).to_owned())
}

/// What went wrong with a connection, in a few plain words.
fn connect_reason(err: &reqwest::Error, detail: &str) -> &'static str {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            return match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused",
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => "connection reset",
                ErrorKind::TimedOut => "connection timed out",
                ErrorKind::UnexpectedEof => "connection closed before an answer",
                _ => "connection failed",
            };
        }
        source = e.source();
    }
    let detail = detail.to_ascii_lowercase();
    if detail.contains("dns") || detail.contains("resolve") {
        "the host name could not be resolved"
    } else if detail.contains("certificate")
        || detail.contains("tls")
        || detail.contains("handshake")
    {
        "the TLS handshake failed"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else {
        "connection failed"
    }
}

#[derive(Debug)]
struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

/// The system resolver, keeping only the addresses that may be dialled.
struct CheckedResolver {
    allowlist: Arc<Allowlist>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowlist = self.allowlist.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let host_allowed = allowlist.allows_host(&host);
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter_map(|addr| {
                    let ip = canonical_ip(addr.ip());
                    if host_allowed || allowlist.allows_ip(ip) {
                        return Some(SocketAddr::new(ip, addr.port()));
                    }
                    match forbidden_reason(ip) {
                        Some(why) => {
                            refused.push(format!("{ip} ({why})"));
                            None
                        }
                        None => Some(SocketAddr::new(ip, addr.port())),
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = if refused.is_empty() {
                    format!("{host} resolves to no address")
                } else {
                    format!(
                        "{host} resolves only to addresses that are not allowed: {}",
                        refused.join(", ")
                    )
                };
                return Err(
                    Box::new(AddressRefused(why)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Reads at most `limit` bytes of a response body (a receiver's answer is
/// logged truncated; a larger body is not read to its end).
pub async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&chunk));
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(allow: &str) -> Outbound {
        Outbound::new(
            Allowlist::parse(allow).unwrap_or_default(),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn urls_are_checked_as_they_are_registered() {
        let out = outbound("");
        for bad in [
            "http://example.com/hook",
            "ftp://example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.1.2.3/",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            assert!(out.check_url(bad).is_err(), "{bad} was accepted");
        }
        assert!(out.check_url("https://example.com/hook").is_ok());
        assert!(out.check_url("https://93.184.215.14/").is_ok());
    }

    #[test]
    fn the_allowlist_permits_addresses_names_and_plain_http_to_them() {
        let out = outbound("127.0.0.1/32, receiver.test");
        assert!(out.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(out.check_url("http://[::ffff:127.0.0.1]:9000/").is_ok());
        assert!(out.check_url("http://receiver.test/").is_ok());
        assert!(out.check_url("http://127.0.0.2/").is_err());
        assert!(out.check_url("http://other.test/").is_err());
        assert!(Allowlist::parse("10.0.0.0/8,::1,localhost").is_ok());
        assert!(Allowlist::parse("not/a/thing").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
        let out = outbound("");
        let request = out.client().get("https://localhost:9/");
        match out.send(request).await {
            Err(OutboundError::Refused(why)) => assert!(why.contains("127.0.0.1"), "{why}"),
            other => unreachable!("localhost was dialled: {other:?}"),
        }
        let allowed = outbound("localhost");
        let request = allowed.client().get("http://localhost:9/");
        // Port 9 (discard) is closed here: a plain phrase, no library text,
        // no address.
        match allowed.send(request).await {
            Err(OutboundError::Connect(why)) => assert_eq!(why, "connection refused"),
            other => unreachable!("{other:?}"),
        }
    }
}
