//! may-peer: a comparison server for Conduit's load benchmarks, in the style
//! of may_minihttp's TechEmpower example.
//!
//! Usage: may-peer ADDR [THREADS]
//!
//! * `GET /plaintext` -> 200 `Hello, World!` (text/plain)
//! * `GET /json`      -> 200 `{"message":"Hello, World!"}` (application/json,
//!   serialized per request with serde_json)
//!
//! may_minihttp adds `Server: M` and `Date` to every response. Worker
//! threads = THREADS (default: number of cores). may pins its workers to
//! cores by default; we turn that off (so `taskset` and the OS decide, as
//! for the other servers) unless MAY_PIN=1.

use std::io;

use bytes::BufMut;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

struct Techempower;

impl HttpService for Techempower {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match req.path() {
            "/plaintext" => {
                rsp.header("Content-Type: text/plain").body("Hello, World!");
            }
            "/json" => {
                rsp.header("Content-Type: application/json");
                serde_json::to_writer(
                    rsp.body_mut().writer(),
                    &Message { message: "Hello, World!" },
                )?;
            }
            _ => {
                rsp.status_code(404, "Not Found");
            }
        }
        Ok(())
    }
}

struct HttpServer;

impl HttpServiceFactory for HttpServer {
    type Service = Techempower;

    fn new_service(&self, _: usize) -> Self::Service {
        Techempower
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18082".to_string());
    let threads: usize = match args.next() {
        Some(t) => t.parse().expect("THREADS must be a number"),
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let pin = std::env::var("MAY_PIN").map(|v| v == "1").unwrap_or(false);
    may::config()
        .set_workers(threads.max(1))
        .set_pool_capacity(500)
        .set_stack_size(0x1000);
    may::config().set_worker_pin(pin);
    let server = HttpServer.start(&addr).expect("bind");
    eprintln!("may-peer listening on {addr} ({threads} workers, pin={pin})");
    server.join().unwrap();
}
