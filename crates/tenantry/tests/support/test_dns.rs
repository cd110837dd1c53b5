//! A DNS server on a free UDP port answering TXT queries from records the
//! test sets, for the custom-domain tests (tests/domains.rs,
//! tests/client_operations.rs).
#![allow(dead_code)]

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A DNS server answering TXT queries from records the test sets; every
/// other name is NXDOMAIN.
pub struct TestDns {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
    task: Option<JoinHandle<()>>,
}

impl TestDns {
    pub async fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let zone = records.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.add_queries(query.queries.clone());
                let mut found = false;
                for q in &query.queries {
                    let name = q
                        .name()
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    let values = zone.lock().unwrap().get(&name).cloned();
                    if let Some(values) = values {
                        found = true;
                        if q.query_type() == RecordType::TXT {
                            for value in values {
                                reply.add_answer(Record::from_rdata(
                                    q.name().clone(),
                                    60,
                                    RData::TXT(TXT::new(vec![value])),
                                ));
                            }
                        }
                    }
                }
                if !found {
                    reply.metadata.response_code = ResponseCode::NXDomain;
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
            }
        });
        TestDns {
            addr,
            records,
            task: Some(task),
        }
    }

    pub fn set_txt(&self, name: &str, values: &[&str]) {
        self.records.lock().unwrap().insert(
            name.to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
    }

    /// Stops answering: the port is closed (queries are refused by the OS).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}
