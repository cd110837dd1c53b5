//! Where domain ownership is checked against DNS: one TXT lookup sent to the
//! configured resolver (`TENANTRY_DNS_RESOLVER`, else the first nameserver of
//! `/etc/resolv.conf`) over UDP, and again over TCP when the answer is
//! truncated. Messages are built and parsed with `hickory-proto`; the
//! exchange itself is a few lines of tokio, so no resolver stack is pulled in.
//!
//! An answer counts only if it comes from the resolver's address, carries
//! our random query id and echoes our question; anything else on the socket
//! is ignored, so a spoofed datagram cannot answer for the resolver.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one attempt waits for an answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP attempts before giving up (datagrams get lost).
const ATTEMPTS: usize = 2;
/// CNAME links followed from the question to the TXT records.
const MAX_CNAME_CHAIN: usize = 8;

/// The resolver could not give an answer (unreachable, timed out, failed):
/// the claim is neither proven nor disproven.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup failed: {0}")]
pub struct DnsUnavailable(pub String);

#[derive(Debug, Clone)]
pub struct DnsResolver {
    /// `None`: read `/etc/resolv.conf` at each lookup.
    server: Option<SocketAddr>,
}

impl DnsResolver {
    pub fn new(server: Option<SocketAddr>) -> Self {
        DnsResolver { server }
    }

    fn server(&self) -> Result<SocketAddr, DnsUnavailable> {
        match self.server {
            Some(server) => Ok(server),
            None => system_resolver(Path::new("/etc/resolv.conf")).ok_or_else(|| {
                DnsUnavailable(
                    "no nameserver in /etc/resolv.conf; set TENANTRY_DNS_RESOLVER".into(),
                )
            }),
        }
    }

    /// The TXT records at `name`, each record's strings joined; empty when
    /// the name does not exist or holds no TXT record.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsUnavailable> {
        let server = self.server()?;
        let qname = Name::from_ascii(name)
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .map_err(|e| DnsUnavailable(format!("cannot query {name}: {e}")))?;
        let id: u16 = rand::random();
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(qname.clone(), RecordType::TXT));
        let bytes = query
            .to_vec()
            .map_err(|e| DnsUnavailable(format!("cannot encode the query: {e}")))?;

        let mut answer = udp_exchange(server, &bytes, id, &qname).await?;
        if answer.metadata.truncation {
            answer = tcp_exchange(server, &bytes, id, &qname).await?;
        }
        match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(txt_values(&answer, &qname)),
            other => Err(DnsUnavailable(format!(
                "the resolver answered {other} for {name}"
            ))),
        }
    }
}

/// The first usable `nameserver` of a resolv.conf file, on port 53.
fn system_resolver(path: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            return None;
        }
        // An IPv6 address may carry a zone (`fe80::1%eth0`), which
        // SocketAddr cannot hold: such a line is skipped.
        let ip: IpAddr = words.next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

/// Whether `reply` answers our query `id` for `qname`.
fn answers(reply: &Message, id: u16, qname: &Name) -> bool {
    reply.metadata.id == id
        && reply.metadata.message_type == MessageType::Response
        && reply.queries.len() == 1
        && reply
            .queries
            .iter()
            .all(|q| q.query_type() == RecordType::TXT && q.name().eq_ignore_root(qname))
}

async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &Name,
) -> Result<Message, DnsUnavailable> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let unavailable = |e: std::io::Error| DnsUnavailable(format!("resolver {server}: {e}"));
    let socket = UdpSocket::bind(local).await.map_err(unavailable)?;
    // Connected: the kernel drops datagrams from any other address.
    socket.connect(server).await.map_err(unavailable)?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..ATTEMPTS {
        socket.send(query).await.map_err(unavailable)?;
        let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break, // this attempt timed out
                Ok(Err(e)) => return Err(unavailable(e)),
                Ok(Ok(n)) => {
                    let Some(datagram) = buf.get(..n) else {
                        continue;
                    };
                    if let Ok(reply) = Message::from_vec(datagram)
                        && answers(&reply, id, qname)
                    {
                        return Ok(reply);
                    }
                }
            }
        }
    }
    Err(DnsUnavailable(format!("resolver {server} did not answer")))
}

async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &Name,
) -> Result<Message, DnsUnavailable> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let len =
            u16::try_from(query.len()).map_err(|_| std::io::Error::other("query too long"))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
        .await
        .map_err(|_| DnsUnavailable(format!("resolver {server} did not answer over TCP")))?
        .map_err(|e| DnsUnavailable(format!("resolver {server} over TCP: {e}")))?;
    let reply = Message::from_vec(&reply)
        .map_err(|e| DnsUnavailable(format!("resolver {server}: malformed answer: {e}")))?;
    if !answers(&reply, id, qname) {
        return Err(DnsUnavailable(format!(
            "resolver {server} answered another question over TCP"
        )));
    }
    Ok(reply)
}

/// TXT values owned by `qname` or by a name it leads to through CNAMEs (the
/// challenge may be delegated to another zone).
fn txt_values(reply: &Message, qname: &Name) -> Vec<String> {
    let mut chain = vec![qname.clone()];
    for _ in 0..MAX_CNAME_CHAIN {
        let Some(current) = chain.last() else { break };
        let next = reply.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name.eq_ignore_root(current) => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) if !chain.iter().any(|n| n.eq_ignore_root(&target)) => chain.push(target),
            _ => break,
        }
    }
    let mut seen = HashSet::new();
    reply
        .answers
        .iter()
        .filter(|r| chain.iter().any(|n| r.name.eq_ignore_root(n)))
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .filter(|value| seen.insert(value.clone()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_usable_nameserver() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "# comment\nsearch example.com\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n",
        )
        .unwrap();
        assert_eq!(system_resolver(&path), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(system_resolver(&dir.path().join("missing")), None);
    }
}
