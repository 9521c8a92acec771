//! A destination that misbehaves at random, for the chaos test: it answers
//! 500, 429 with `Retry-After`, too slowly (past the destination's timeout,
//! then 500) or resets the connection, and otherwise stores the event (200).
//! A plain HTTP/1.1 loop on a TCP listener, so that a reset is a real RST.
//! It keeps every call with its fate, and how many are open at any instant.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What the sink did with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Stored on arrival, then answered 200.
    Stored,
    Failed,
    Throttled,
    /// Held past the timeout, then 500 (never stored).
    Slow,
    Reset,
}

/// How often each misbehaviour happens (the rest is stored).
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub fail: f64,
    pub throttle: f64,
    pub slow: f64,
    pub reset: f64,
    /// How long a slow answer takes.
    pub slow_for: Duration,
    /// How long every other answer takes (a vendor is never instant, and
    /// calls in flight are what a kill can duplicate).
    pub latency: Duration,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub subject: String,
    /// The subject's version, from the `webhook-id` (`msg_{job}_{version}`).
    pub version: i64,
    /// The mapped `external_id` and `first_name` fields.
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub fate: Fate,
    /// The answer was written (or the connection reset).
    pub answered: bool,
}

struct State {
    seen: Vec<Seen>,
    rng: rand::rngs::StdRng,
    mix: Mix,
}

pub struct ChaosSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl ChaosSink {
    pub async fn start(mix: Mix, seed: u64) -> ChaosSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            seen: Vec::new(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            mix,
        }));
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, s.clone()));
            }
        });
        ChaosSink { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Calls received and not yet answered.
    pub fn open(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| !s.answered)
            .count()
    }
}

impl Drop for ChaosSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request's head and body; None when the peer closed or sent garbage.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Option<String>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut length = 0usize;
    let mut webhook_id = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("webhook-id") {
            webhook_id = Some(value.to_string());
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((webhook_id, body))
}

async fn serve_connection(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    while let Some((webhook_id, body)) = read_request(&mut reader).await {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let version = webhook_id
            .as_deref()
            .and_then(|id| id.rsplit_once('_'))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(-1);
        let (index, fate, mix) = {
            let mut st = state.lock().unwrap();
            let roll: f64 = st.rng.random();
            let m = st.mix;
            let fate = if roll < m.fail {
                Fate::Failed
            } else if roll < m.fail + m.throttle {
                Fate::Throttled
            } else if roll < m.fail + m.throttle + m.slow {
                Fate::Slow
            } else if roll < m.fail + m.throttle + m.slow + m.reset {
                Fate::Reset
            } else {
                Fate::Stored
            };
            // A stored call is stored before it is answered, as a vendor
            // would: the answer may still be lost.
            st.seen.push(Seen {
                fate,
                answered: false,
                subject: body["subject"].as_str().unwrap_or_default().to_string(),
                version,
                external_id: body["data"]["external_id"].as_str().map(String::from),
                first_name: body["data"]["first_name"].as_str().map(String::from),
            });
            (st.seen.len() - 1, fate, m)
        };
        let answered = || state.lock().unwrap().seen[index].answered = true;
        tokio::time::sleep(mix.latency).await;
        let answer: &[u8] = match fate {
            Fate::Stored => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Fate::Failed => b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
            Fate::Throttled => {
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
            }
            Fate::Slow => {
                tokio::time::sleep(mix.slow_for).await;
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
            }
            Fate::Reset => {
                answered();
                let stream = reader.into_inner();
                // Closing with SO_LINGER 0 sends RST instead of FIN.
                let _ = stream.set_zero_linger();
                drop(stream);
                return;
            }
        };
        answered();
        if reader.get_mut().write_all(answer).await.is_err() {
            return;
        }
    }
}
