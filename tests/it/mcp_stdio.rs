//! MCP over stdio (`conduit stdio`, SECURITY.md M15): one JSON-RPC message
//! per line, stdout carries only MCP messages, logs on stderr, exit 0 on
//! stdin EOF, overlong lines refused without ending the session. And
//! models over stdio from any working directory (#15): ONNX Runtime found
//! without the CWD, model tools in the first `tools/list`, `list_changed`
//! on every change of the tool set, stderr saying why inference is off.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const VERSION: &str = "2025-11-25";

/// A running `conduit stdio`, killed on drop if it is still running.
struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl StdioServer {
    fn spawn() -> StdioServer {
        StdioServer::spawn_with_env(&[])
    }

    fn spawn_with_env(env: &[(&str, &str)]) -> StdioServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_conduit"));
        cmd.arg("stdio")
            // Chatty logging, to check that none of it reaches stdout.
            .env("RUST_LOG", "trace")
            .envs(env.iter().copied());
        StdioServer::start(cmd)
    }

    /// Starts `cmd` (a `conduit stdio` command line) with piped stdio.
    fn start(mut cmd: Command) -> StdioServer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn conduit stdio");
        let lines = line_channel(child.stdout.take().unwrap());
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        StdioServer {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to stdin");
        stdin.flush().unwrap();
    }

    fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// The next stdout line, which must be one JSON-RPC message (M15).
    #[track_caller]
    fn recv(&self) -> Value {
        let line = match self.lines.recv_timeout(TIMEOUT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("no output within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("stdout closed; stderr: {}", self.stderr())
            }
        };
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
        v
    }

    /// Sends a request and returns its response, checking the id.
    #[track_caller]
    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let v = self.recv();
        assert_eq!(v["id"], id, "{v}");
        v
    }

    fn initialize(&mut self) {
        let v = self.request(
            0,
            "initialize",
            json!({ "protocolVersion": VERSION, "capabilities": {}, "clientInfo": { "name": "it", "version": "0" } }),
        );
        assert_eq!(v["result"]["protocolVersion"], VERSION, "{v}");
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit (after stdin was closed).
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "conduit stdio did not exit on stdin EOF"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every stdout line left once stdout has closed, each checked as JSON.
    fn remaining(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(l) => out.push(
                    serde_json::from_str(&l)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}")),
                ),
                Err(RecvTimeoutError::Disconnected) => return out,
                Err(RecvTimeoutError::Timeout) => panic!("stdout did not close"),
            }
        }
    }

    /// All of stderr, once the process has exited.
    fn stderr_after_exit(&mut self) -> String {
        if let Some(h) = self.stderr_reader.take() {
            h.join().unwrap();
        }
        self.stderr()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

/// The lines `r` yields, on a channel (a reader thread per stream).
fn line_channel(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    lines
}

impl Drop for StdioServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn stdio_serves_one_message_per_line_and_exits_0_on_eof() {
    let mut s = StdioServer::spawn();
    s.initialize();
    let v = s.request(1, "ping", json!({}));
    assert_eq!(v["result"], json!({}));
    let v = s.request(2, "tools/list", json!({}));
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"sleep"),
        "{names:?}"
    );
    // Newlines inside a message never split it across lines.
    let v = s.request(
        3,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "line one\nline two\r\n" } }),
    );
    assert_eq!(v["result"]["content"][0]["text"], "line one\nline two\r\n");
    // Two messages in one write: two answers, in order.
    s.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}\n",
    );
    assert_eq!(s.recv()["id"], 4);
    assert_eq!(s.recv()["id"], 5);
    // A notification gets no answer: the next line answers the next request.
    s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/roots/list_changed" }));
    assert_eq!(s.request(6, "ping", json!({}))["result"], json!({}));
    s.close_stdin();
    let st = s.wait();
    assert_eq!(st.code(), Some(0), "exit status; stderr: {}", s.stderr());
    assert!(s.remaining().is_empty(), "nothing unasked on stdout");
}

#[test]
fn stdio_an_overlong_line_is_an_error_and_serving_continues() {
    let mut s = StdioServer::spawn();
    s.initialize();
    // A well-formed request whose line is just over 4 MiB.
    let mut line = br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":""#.to_vec();
    let tail = br#""}}"#;
    line.resize(4 * 1024 * 1024 + 1 - tail.len(), b'x');
    line.extend_from_slice(tail);
    assert_eq!(line.len(), 4 * 1024 * 1024 + 1);
    line.push(b'\n');
    s.send_raw(&line);
    let v = s.recv();
    assert!(v["id"].is_null(), "{v}");
    let code = v["error"]["code"].as_i64().unwrap_or_else(|| panic!("{v}"));
    assert!([-32600, -32700].contains(&code), "{v}");
    // The rest of the long line was discarded, not read as messages.
    assert_eq!(s.request(2, "ping", json!({}))["result"], json!({}));
    // A line just under the cap is served.
    let mut line = br#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"pad":""#.to_vec();
    line.resize(4 * 1024 * 1024 - 16, b'y');
    line.extend_from_slice(tail);
    line.push(b'\n');
    s.send_raw(&line);
    assert_eq!(s.recv()["id"], 3);
    s.close_stdin();
    assert_eq!(s.wait().code(), Some(0));
}

#[test]
fn stdio_bad_lines_get_json_rpc_errors_and_serving_continues() {
    let mut s = StdioServer::spawn();
    s.initialize();
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    for (line, code) in [
        (b"{".to_vec(), -32700),
        (b"not json".to_vec(), -32700),
        (vec![0xff, 0xfe, 0x80, 0x01], -32700),
        (deep.into_bytes(), -32700),
        (b"[]".to_vec(), -32600),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            -32600,
        ),
        (
            br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec(),
            -32600,
        ),
        (b"5".to_vec(), -32600),
    ] {
        let mut l = line.clone();
        l.push(b'\n');
        s.send_raw(&l);
        let v = s.recv();
        assert_eq!(
            v["error"]["code"],
            code,
            "{:?}: {v}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        );
    }
    // Blank lines are ignored.
    s.send_raw(b"\n   \n");
    let v = s.request(7, "no/such/method", json!({}));
    assert_eq!(v["error"]["code"], -32601);
    let v = s.request(8, "tools/call", json!({ "name": "nope" }));
    assert_eq!(v["error"]["code"], -32602);
    let v = s.request(
        9,
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": 1 } }),
    );
    assert_eq!(v["result"]["isError"], true, "{v}");
    s.close_stdin();
    assert_eq!(s.wait().code(), Some(0));
}

#[test]
fn stdio_progress_arrives_as_lines_and_cancellation_stops_a_call() {
    let mut s = StdioServer::spawn();
    s.initialize();
    s.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "sleep", "arguments": { "ms": 50 }, "_meta": { "progressToken": "p" } } }));
    let mut progress = Vec::new();
    let done = loop {
        let v = s.recv();
        if v["method"] == "notifications/progress" {
            assert_eq!(v["params"]["progressToken"], "p");
            progress.push(v["params"]["progress"].as_f64().unwrap());
        } else {
            break v;
        }
    };
    assert_eq!(done["id"], 1);
    assert_eq!(done["result"]["content"][0]["text"], "slept 50 ms");
    assert_eq!(progress.len(), 10);
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    // A long call, cancelled once its first progress shows it is running.
    let start = Instant::now();
    s.send(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "sleep", "arguments": { "ms": 5000 }, "_meta": { "progressToken": "q" } } }));
    assert_eq!(s.recv()["method"], "notifications/progress");
    s.send(&json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 2 } }));
    // Either a response for id 2 arrives soon, or (as the spec prefers) none;
    // a ping sent now is answered either way, and well before 5 s.
    s.send(&json!({ "jsonrpc": "2.0", "id": 3, "method": "ping" }));
    loop {
        let v = s.recv();
        if v["id"] == 3 {
            break;
        }
    }
    // Closing stdin now exits promptly: the cancelled call is not waited for.
    s.close_stdin();
    for v in s.remaining() {
        assert!(
            v["method"] == "notifications/progress" || v["id"] == 2,
            "{v}"
        );
    }
    assert_eq!(s.wait().code(), Some(0));
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "cancelled call took {took:?}"
    );
}

#[test]
fn stdio_eof_waits_for_running_calls_to_answer() {
    let mut s = StdioServer::spawn();
    s.initialize();
    s.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "sleep", "arguments": { "ms": 200 } } }));
    // A last line without a newline is still a message.
    s.send_raw(br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    s.close_stdin();
    let out = s.remaining();
    let last = out
        .last()
        .unwrap_or_else(|| panic!("no answer before exit"));
    assert_eq!(last["id"], 1, "{out:?}");
    assert_eq!(last["result"]["content"][0]["text"], "slept 200 ms");
    assert_eq!(s.wait().code(), Some(0));
}

#[test]
fn stdio_logs_go_to_stderr_and_stdout_stays_json() {
    let mut s = StdioServer::spawn();
    // Even before initialize, and with stateless requests mixed in.
    let v = s.request(
        1,
        "server/discover",
        json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                           "io.modelcontextprotocol/clientCapabilities": {} } }),
    );
    assert!(
        v["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "2026-07-28"),
        "{v}"
    );
    s.initialize();
    s.request(2, "logging/setLevel", json!({ "level": "debug" }));
    s.request(3, "resources/read", json!({ "uri": "conduit://readme" }));
    // A response to nothing we asked is logged (at debug), not answered.
    s.send(&json!({ "jsonrpc": "2.0", "id": "conduit-999", "result": {} }));
    assert_eq!(s.request(4, "ping", json!({}))["result"], json!({}));
    s.close_stdin();
    // Every stdout line so far was parsed as JSON by `recv`; the rest too.
    s.remaining();
    assert_eq!(s.wait().code(), Some(0));
    let logs = s.stderr_after_exit();
    assert!(
        logs.contains("no pending request"),
        "the debug log went to stderr: {logs:?}"
    );
    // See: #15. One line says why there are no model tools.
    assert_eq!(
        logs.matches("inference is off: no model repository configured")
            .count(),
        1,
        "{logs}"
    );
}

#[test]
fn stdio_the_one_client_is_not_held_to_a_per_session_share() {
    // See: #13 (5). mcp.max_calls_per_session keeps one session from
    // crowding out others; stdio has no others, so its client may use the
    // whole tool pool.
    let mut s = StdioServer::spawn_with_env(&[("CONDUIT_MCP_MAX_CALLS_PER_SESSION", "1")]);
    s.initialize();
    for id in 1..=3 {
        s.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "sleep", "arguments": { "ms": 300 } } }));
    }
    let mut done = Vec::new();
    while done.len() < 3 {
        let v = s.recv();
        assert!(v.get("error").is_none(), "{v}");
        if v.get("result").is_some() {
            assert_eq!(v["result"]["content"][0]["text"], "slept 300 ms", "{v}");
            done.push(v["id"].as_i64().unwrap());
        }
    }
    done.sort();
    assert_eq!(done, [1, 2, 3]);
}

// ---------------------------------------------------------------------------
// Models over stdio, from any working directory (#15).

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The committed model repository (`mlp`, `two_io`), as an absolute path.
fn fixture_models() -> String {
    format!("{ROOT}/tests/fixtures/models")
}

/// The library `scripts/fetch-onnxruntime` put in this checkout.
fn checkout_ort() -> PathBuf {
    PathBuf::from(format!(
        "{ROOT}/.cache/onnxruntime/libonnxruntime.so.1.31.1"
    ))
}

/// A fresh directory under the temp dir, outside the repository.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "conduit-stdio-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `from` at `to`: a hard link (the debug binary is ~170 MB), else a copy.
fn link_or_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

/// `conduit stdio --models <fixtures>` as `exe`, from `cwd`, with no
/// ONNX Runtime setting in its environment.
fn stdio_with_models(exe: &Path, cwd: &Path, env: &[(&str, &Path)]) -> StdioServer {
    let mut cmd = Command::new(exe);
    cmd.args(["stdio", "--models", &fixture_models()])
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("CONDUIT_ML_ORT_LIBRARY")
        .env_remove("XDG_CACHE_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    StdioServer::start(cmd)
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn issue_15_stdio_from_another_directory_lists_model_tools_first_and_runs_them() {
    // A desktop agent starts `conduit stdio` from a directory of its own,
    // with no ORT_DYLIB_PATH: ONNX Runtime is found relative to the
    // executable (this checkout's .cache for target/debug/conduit) or in
    // the user cache, both filled by scripts/fetch-onnxruntime.
    let cwd = temp_dir("cwd");
    let mut s = stdio_with_models(Path::new(env!("CARGO_BIN_EXE_conduit")), &cwd, &[]);
    s.initialize();
    // The first tools/list after initialize already has the models' tools.
    let names = tool_names(&s.request(1, "tools/list", json!({})));
    for want in ["list_models", "model_mlp", "model_two_io"] {
        assert!(names.iter().any(|n| n == want), "{want}: {names:?}");
    }
    // And a call runs the model: numpy's answer (scripts/make_models.py).
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/tests/fixtures/models/expected.json")).unwrap(),
    )
    .unwrap();
    let v = s.request(
        2,
        "tools/call",
        json!({ "name": "model_mlp", "arguments": { "input": expected["mlp"]["input"] } }),
    );
    assert_ne!(v["result"]["isError"], true, "{v}");
    let out = &v["result"]["structuredContent"]["outputs"]["output"];
    let want: Vec<f64> = expected["mlp"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
    let got: Vec<f64> = out["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "{v}");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
    }
    s.close_stdin();
    assert_eq!(s.wait().code(), Some(0));
    let logs = s.stderr_after_exit();
    assert!(logs.contains("ONNX Runtime loaded"), "{logs}");
    assert!(!logs.contains("inference is off"), "{logs}");
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn issue_15_stdio_looks_beside_its_executable_and_in_the_user_cache_never_in_the_cwd() {
    // The binary somewhere else (so no checkout is found relative to it),
    // an empty home, and the working directory is this repository, whose
    // .cache/onnxruntime/ holds the library: it must not be used.
    let base = temp_dir("places");
    let exe = base.join("bin/conduit");
    link_or_copy(Path::new(env!("CARGO_BIN_EXE_conduit")), &exe);
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let lib = "libonnxruntime.so.1.31.1";
    let beside = base.join("bin").join(lib);
    let home_cache = home.join(".cache/conduit/onnxruntime").join(lib);
    let xdg = base.join("xdg");
    let xdg_cache = xdg.join("conduit/onnxruntime").join(lib);
    let run = |env: &[(&str, &Path)]| -> (Vec<String>, String) {
        let mut s = stdio_with_models(&exe, Path::new(ROOT), env);
        s.initialize();
        let names = tool_names(&s.request(1, "tools/list", json!({})));
        s.close_stdin();
        assert_eq!(s.wait().code(), Some(0));
        (names, s.stderr_after_exit())
    };
    let has_model = |names: &[String]| names.iter().any(|n| n == "model_mlp");

    // Nowhere: one line says inference is off, and every place looked.
    let (names, logs) = run(&[("HOME", &home)]);
    assert!(!has_model(&names), "{names:?}");
    let off: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("inference is off"))
        .collect();
    assert_eq!(off.len(), 1, "{logs}");
    for place in [
        format!("{} (next to the executable)", beside.display()),
        format!("{} (the user cache)", home_cache.display()),
    ] {
        assert!(off[0].contains(&place), "{place}: {}", off[0]);
    }
    assert!(
        !off[0].contains(ROOT),
        "never the working directory: {}",
        off[0]
    );

    // ~/.cache/conduit/onnxruntime/ (where scripts/fetch-onnxruntime copies it).
    link_or_copy(&checkout_ort(), &home_cache);
    let (names, logs) = run(&[("HOME", &home)]);
    assert!(has_model(&names), "{names:?}\n{logs}");
    assert!(logs.contains(&home_cache.display().to_string()), "{logs}");

    // $XDG_CACHE_HOME/conduit/onnxruntime/ comes instead of ~/.cache.
    link_or_copy(&checkout_ort(), &xdg_cache);
    let (names, logs) = run(&[("HOME", &home), ("XDG_CACHE_HOME", &xdg)]);
    assert!(has_model(&names), "{names:?}\n{logs}");
    assert!(logs.contains(&xdg_cache.display().to_string()), "{logs}");

    // Next to the executable comes before the user cache.
    link_or_copy(&checkout_ort(), &beside);
    let (names, logs) = run(&[("HOME", &home)]);
    assert!(has_model(&names), "{names:?}\n{logs}");
    assert!(logs.contains(&beside.display().to_string()), "{logs}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn issue_15_stdio_a_library_named_on_purpose_and_missing_turns_inference_off() {
    let cwd = temp_dir("missing");
    let missing = cwd.join("libonnxruntime.so.1.31.1");
    let exe = Path::new(env!("CARGO_BIN_EXE_conduit"));
    let mut s = stdio_with_models(exe, &cwd, &[("ORT_DYLIB_PATH", &missing)]);
    s.initialize();
    let names = tool_names(&s.request(1, "tools/list", json!({})));
    assert!(!names.iter().any(|n| n.starts_with("model_")), "{names:?}");
    s.close_stdin();
    assert_eq!(s.wait().code(), Some(0));
    let logs = s.stderr_after_exit();
    let off: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("inference is off"))
        .collect();
    assert_eq!(off.len(), 1, "{logs}");
    // The one place looked: no fallback to another copy.
    assert!(
        off[0].contains(&format!("{} (ORT_DYLIB_PATH)", missing.display())),
        "{}",
        off[0]
    );
    assert!(!off[0].contains("next to the executable"), "{}", off[0]);
    let _ = std::fs::remove_dir_all(&cwd);
}

#[cfg(feature = "fixtures")]
#[test]
fn issue_15_stdio_each_tool_set_change_sends_one_list_changed() {
    // The conformance fixture that adds or removes a tool: the registry
    // change itself notifies (nothing calls list_changed by hand), once.
    let mut s = StdioServer::spawn_with_env(&[("CONDUIT_MCP_FIXTURES", "conformance")]);
    s.initialize();
    for (id, present) in [(1, true), (3, false)] {
        s.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "test_trigger_tool_change", "arguments": {} } }));
        // The tool changes the list before it answers: the notification first.
        let n = s.recv();
        assert_eq!(n["method"], "notifications/tools/list_changed", "{n}");
        assert_eq!(s.recv()["id"], id);
        // Nothing else before the next answer: one notification per change.
        let names = tool_names(&s.request(id + 1, "tools/list", json!({})));
        assert_eq!(
            names.iter().any(|n| n == "test_dynamic_tool"),
            present,
            "{names:?}"
        );
    }
}

/// A reader over byte chunks sent on a channel (EOF when the sender is
/// dropped), and a writer that sends them: an in-process stdin/stdout.
struct ChanReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => (self.buf, self.pos) = (b, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct ChanWriter(mpsc::Sender<Vec<u8>>);

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(b.to_vec())
            .map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn chan_pipe() -> (ChanWriter, ChanReader) {
    let (tx, rx) = mpsc::channel();
    (
        ChanWriter(tx),
        ChanReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        },
    )
}

#[test]
fn issue_15_stdio_a_model_loaded_or_unloaded_at_runtime_sends_list_changed() {
    // In process: the repository API (HTTP) is not served over stdio, so
    // the test loads and unloads through the repository it fronts.
    let mut cfg = conduit::config::Config::default();
    cfg.ml.models = fixture_models();
    cfg.ml.ort_library = Some(checkout_ort().display().to_string());
    cfg.ml.eager_load = false;
    let (server, models) = conduit::app::stdio_server(&cfg).expect("the MCP server starts");
    let (mut stdin, input) = chan_pipe();
    let (output, out_r) = chan_pipe();
    let lines = line_channel(out_r);
    let serving = std::thread::spawn(move || {
        conduit::mcp::transport::stdio::run(
            server,
            BufReader::new(input),
            output,
            1 << 20,
            Duration::from_secs(5),
        )
    });
    let mut send = |v: Value| {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        stdin.write_all(&line).unwrap();
    };
    let recv = || -> Value {
        serde_json::from_str(&lines.recv_timeout(TIMEOUT).expect("a line")).unwrap()
    };
    send(
        json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {}, "clientInfo": { "name": "it", "version": "0" } } }),
    );
    let init = recv();
    assert_eq!(
        init["result"]["capabilities"]["tools"]["listChanged"], true,
        "{init}"
    );
    send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    let mut list = |id: i64| -> Vec<String> {
        send(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" }));
        let v = recv();
        assert_eq!(v["id"], id, "{v}");
        tool_names(&v)
    };
    assert!(
        !list(1).iter().any(|n| n == "model_mlp"),
        "eager load is off"
    );

    models.load("mlp").unwrap();
    assert_eq!(recv()["method"], "notifications/tools/list_changed");
    assert!(list(2).iter().any(|n| n == "model_mlp"));

    models.unload("mlp").unwrap();
    assert_eq!(recv()["method"], "notifications/tools/list_changed");
    assert!(!list(3).iter().any(|n| n == "model_mlp"));

    // Loaded again after an unload: its tool comes back.
    models.load("mlp").unwrap();
    assert_eq!(recv()["method"], "notifications/tools/list_changed");
    assert!(list(4).iter().any(|n| n == "model_mlp"));

    // EOF: the transport returns.
    drop(stdin);
    serving.join().unwrap().unwrap();
}
