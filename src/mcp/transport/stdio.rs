//! stdio: newline-delimited JSON-RPC on stdin/stdout (M15). stdout carries
//! only MCP messages; logs go to stderr. Exits on stdin EOF.

use super::super::context::Outbox;
use super::super::jsonrpc::{self, ErrorObject, Message, Parsed, INVALID_REQUEST};
use super::super::server::{self, Deferred, Era, Outcome, Server};
use super::super::session::Session;
use crate::util::lock;
use crossbeam_channel::Sender;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Writes each message as one line on the output.
struct Lines(Sender<String>);

impl Outbox for Lines {
    fn send(&self, json: String) -> bool {
        self.0.send(json).is_ok()
    }
}

/// Reads one line of at most `max` bytes. `Ok(None)` at EOF; an overlong
/// line is consumed and reported as `Err(len)`.
fn read_line(
    input: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut over = 0usize;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && over == 0 {
                None
            } else if over > 0 {
                Some(Err(over))
            } else {
                Some(Ok(()))
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        if over > 0 || buf.len() + part.len() > max {
            over += buf.len() + part.len();
            buf.clear();
        } else {
            buf.extend_from_slice(part);
        }
        let found_newline = done <= chunk.len() && chunk.get(done - 1) == Some(&b'\n');
        input.consume(done);
        if found_newline {
            return Ok(Some(if over > 0 { Err(over) } else { Ok(()) }));
        }
    }
}

/// Serves MCP over `input`/`output` until EOF on `input`; waits (up to
/// `drain`) for calls still running, then returns.
pub fn run(
    server: Arc<Server>,
    mut input: impl BufRead,
    output: impl Write + Send + 'static,
    max_line_bytes: usize,
    drain: Duration,
) -> std::io::Result<()> {
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let writer = std::thread::Builder::new()
        .name("conduit-stdout".into())
        .spawn(move || {
            let mut out = std::io::BufWriter::new(output);
            while let Ok(line) = rx.recv() {
                // M15: one message per line; serde_json never emits raw newlines.
                if out
                    .write_all(line.as_bytes())
                    .and_then(|_| out.write_all(b"\n"))
                    .is_err()
                {
                    return;
                }
                if rx.is_empty() && out.flush().is_err() {
                    return;
                }
            }
            let _ = out.flush();
        })?;
    let lines: Arc<dyn Outbox> = Arc::new(Lines(tx.clone()));
    let session: Arc<Mutex<Option<Arc<Session>>>> = Arc::new(Mutex::new(None));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut buf = Vec::new();
    loop {
        let line = match read_line(&mut input, max_line_bytes, &mut buf)? {
            None => break,
            Some(Err(len)) => {
                let e = ErrorObject::new(
                    INVALID_REQUEST,
                    format!("message of {len} bytes is over the {max_line_bytes}-byte limit"),
                );
                lines.send(jsonrpc::encode_error(None, &e));
                continue;
            }
            Some(Ok(())) => &buf,
        };
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let msg = match jsonrpc::parse(line) {
            Err(e) => {
                lines.send(jsonrpc::encode_error(None, &e));
                continue;
            }
            Ok(Parsed::Batch(_)) => {
                lines.send(jsonrpc::encode_error(
                    None,
                    &ErrorObject::new(INVALID_REQUEST, "batches are not supported"),
                ));
                continue;
            }
            Ok(Parsed::Single(Err(rej))) => {
                lines.send(jsonrpc::encode_error(rej.id.as_ref(), &rej.error));
                continue;
            }
            Ok(Parsed::Single(Ok(m))) => m,
        };
        let params = match &msg {
            Message::Request(r) => Some(&r.params),
            Message::Notification(n) => Some(&n.params),
            Message::Response(_) => None,
        };
        let era = if params.is_some_and(server::has_stateless_meta) {
            match params.map(server::stateless_meta) {
                Some(Ok(st)) => Era::Stateless(st),
                Some(Err(e)) => {
                    if let Message::Request(r) = &msg {
                        lines.send(jsonrpc::encode_error(Some(&r.id), &e.to_object(true)));
                    }
                    continue;
                }
                None => continue,
            }
        } else {
            Era::Session(lock(&session).clone())
        };
        let out = lines.clone();
        let flight = in_flight.clone();
        let outcome = server.handle(msg, &era, || {
            flight.fetch_add(1, Ordering::AcqRel);
            let done_out = out.clone();
            let f2 = flight.clone();
            Deferred {
                interim: out,
                done: Box::new(move |j, _| {
                    if !j.is_empty() {
                        done_out.send(j);
                    }
                    f2.fetch_sub(1, Ordering::AcqRel);
                }),
            }
        });
        match outcome {
            Outcome::Initialized(s, j) => {
                // The pipe's one client has the whole tool pool to itself.
                s.set_sole_client();
                s.set_standalone(Some(lines.clone()));
                *lock(&session) = Some(s);
                lines.send(j);
            }
            Outcome::Reply(j) | Outcome::Failed(_, j) => {
                lines.send(j);
            }
            Outcome::Pending | Outcome::Accepted => {}
        }
    }
    // M15: exit on EOF, after the calls already running have answered.
    let deadline = Instant::now() + drain;
    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(s) = lock(&session).as_ref() {
        server.sessions.remove(&s.id.0);
    }
    drop(lines);
    drop(tx);
    let _ = writer.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_overlong_ones_reported() {
        let data = b"abc\n0123456789\nxy";
        let mut r = std::io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, 5, &mut buf).unwrap(), Some(Ok(())));
        assert_eq!(buf, b"abc");
        assert_eq!(read_line(&mut r, 5, &mut buf).unwrap(), Some(Err(10)));
        assert_eq!(read_line(&mut r, 5, &mut buf).unwrap(), Some(Ok(())));
        assert_eq!(buf, b"xy");
        assert_eq!(read_line(&mut r, 5, &mut buf).unwrap(), None);
    }
}
