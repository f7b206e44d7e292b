//! Server-sent events encoding (WHATWG HTML "Server-sent events", SECURITY.md R3).
//!
//! Every event is written as `field: value\n` lines ended by one empty line.
//!
//! Invariant: no input can add a field or end an event early: `data` is split
//! into one `data:` line per line, and `event`/`id` containing CR, LF or NUL are refused.
//! Invariant: on error nothing is written to the output buffer.
//! Invariant: nothing here does I/O or knows what the events mean.

use bytes::{BufMut, BytesMut};

/// Why an event could not be encoded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// `event` or `id` contains CR, LF or NUL. CR or LF would end the field
    /// line and let the value inject fields or events; WHATWG clients ignore
    /// an `id` containing NUL.
    #[error("SSE event or id contains CR, LF or NUL")]
    InvalidField,
}

/// One server-sent event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event<'a> {
    /// The `event:` type. `None` leaves it out, so clients dispatch `message`.
    /// Must not contain CR, LF or NUL.
    pub event: Option<&'a str>,
    /// The `id:` value clients remember as the last event ID. `Some("")`
    /// resets it. Must not contain CR, LF or NUL.
    pub id: Option<&'a str>,
    /// The payload. Any text is allowed: each line becomes a `data:` line,
    /// and clients see it back with CRLF and CR turned into LF.
    pub data: &'a str,
    /// A `retry:` reconnection delay in milliseconds sent with the event.
    pub retry_ms: Option<u32>,
}

/// Appends the encoded event to `out`.
///
/// Fields are written in the order `event`, `id`, `retry`, `data`, then an
/// empty line. `data` is split on CRLF, CR and LF into several `data:` lines
/// (so a payload can never inject a field or end the event early); empty data
/// gives one `data:` line, which clients dispatch as an event with empty data.
/// A value's leading space survives: the one space after the colon is the
/// only one clients strip.
///
/// Fails with [`SseError::InvalidField`] if `event` or `id` contains CR, LF or
/// NUL; `out` is then left as it was.
pub fn encode(ev: &Event<'_>, out: &mut BytesMut) -> Result<(), SseError> {
    let is_invalid = |v: &str| v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
    if ev.event.is_some_and(is_invalid) || ev.id.is_some_and(is_invalid) {
        return Err(SseError::InvalidField);
    }
    // PERF: one reservation; per data line at most `data: ` + LF is added.
    let lines = 1 + ev
        .data
        .bytes()
        .filter(|&b| b == b'\n' || b == b'\r')
        .count();
    out.reserve(
        ev.event.map_or(0, |e| e.len() + 8)
            + ev.id.map_or(0, |i| i.len() + 5)
            + ev.retry_ms.map_or(0, |_| 18)
            + ev.data.len()
            + lines * 7
            + 1,
    );
    if let Some(event) = ev.event {
        put_field(out, b"event", event.as_bytes());
    }
    if let Some(id) = ev.id {
        put_field(out, b"id", id.as_bytes());
    }
    if let Some(ms) = ev.retry_ms {
        put_retry_line(out, ms);
    }
    for line in split_lines(ev.data.as_bytes()) {
        put_field(out, b"data", line);
    }
    out.put_u8(b'\n');
    Ok(())
}

/// Appends a comment, `: text\n\n` (`:\n\n` for empty text). Clients ignore
/// comments; they keep idle streams and proxies alive (L13). Each CRLF, CR or
/// LF in `text` becomes one space, so the comment stays one line.
pub fn encode_comment(text: &str, out: &mut BytesMut) {
    out.reserve(text.len() + 4);
    out.put_u8(b':');
    if !text.is_empty() {
        out.put_u8(b' ');
        for (i, line) in split_lines(text.as_bytes()).enumerate() {
            if i > 0 {
                out.put_u8(b' ');
            }
            out.put_slice(line);
        }
    }
    out.put_slice(b"\n\n");
}

/// Appends a standalone reconnection delay, `retry: 3000\n\n` (L13). Clients
/// set their reconnection time and dispatch no event.
pub fn encode_retry(ms: u32, out: &mut BytesMut) {
    out.reserve(18);
    put_retry_line(out, ms);
    out.put_u8(b'\n');
}

/// Writes `name: value\n`, or `name:\n` for an empty value.
fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_u8(b':');
    if !value.is_empty() {
        out.put_u8(b' ');
        out.put_slice(value);
    }
    out.put_u8(b'\n');
}

/// Writes `retry: <ms>\n` in ASCII decimal (WHATWG: the value must be all digits).
fn put_retry_line(out: &mut BytesMut, ms: u32) {
    out.put_slice(b"retry: ");
    let mut divisor = 1_000_000_000u32;
    let mut started = false;
    while divisor > 0 {
        let digit = (ms / divisor) % 10;
        if digit != 0 || started || divisor == 1 {
            started = true;
            // `digit` is below 10, so the cast keeps it exactly.
            out.put_u8(b'0' + digit as u8);
        }
        divisor /= 10;
    }
    out.put_u8(b'\n');
}

/// Splits on CRLF, CR and LF, the three line endings WHATWG clients accept.
/// Always yields at least one (possibly empty) line; a trailing line ending
/// yields a trailing empty line.
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.iter().position(|&b| b == b'\r' || b == b'\n') {
            None => {
                rest = None;
                Some(current)
            }
            Some(at) => {
                let (line, tail) = current.split_at(at);
                let tail = tail
                    .strip_prefix(b"\r\n")
                    .or_else(|| tail.get(1..))
                    .unwrap_or_default();
                rest = Some(tail);
                Some(line)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as a WHATWG client dispatches it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Dispatched {
        kind: String,
        data: String,
        last_event_id: String,
    }

    /// What a WHATWG client saw on a stream.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Client {
        events: Vec<Dispatched>,
        retry_ms: Option<u64>,
        comments: usize,
    }

    /// A WHATWG "interpret an event stream" parser (HTML §9.2.6), enough to
    /// check what a browser would see.
    fn parse(stream: &[u8]) -> Client {
        let text = String::from_utf8(stream.to_vec()).expect("encoder writes UTF-8");
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut client = Client::default();
        let (mut data, mut kind, mut last_id) = (String::new(), String::new(), String::new());
        // Lines end in CRLF, LF or CR; a final unterminated line is ignored.
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<&str> = normalised.split('\n').collect();
        lines.pop();
        for line in lines {
            if line.is_empty() {
                if data.is_empty() {
                    kind.clear();
                    continue;
                }
                if data.ends_with('\n') {
                    data.pop();
                }
                client.events.push(Dispatched {
                    kind: if kind.is_empty() {
                        "message".into()
                    } else {
                        kind.clone()
                    },
                    data: std::mem::take(&mut data),
                    last_event_id: last_id.clone(),
                });
                kind.clear();
                continue;
            }
            if line.starts_with(':') {
                client.comments += 1;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => kind = value.to_string(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => last_id = value.to_string(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    client.retry_ms = value.parse().ok();
                }
                _ => {}
            }
        }
        client
    }

    fn encoded(ev: &Event<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(ev, &mut out).expect("valid event");
        out.to_vec()
    }

    fn data(d: &str) -> Event<'_> {
        Event {
            data: d,
            ..Event::default()
        }
    }

    /// What a client gets back for `data`: line endings become LF.
    fn normalised(d: &str) -> String {
        d.replace("\r\n", "\n").replace('\r', "\n")
    }

    #[test]
    fn events_encode_to_exact_bytes() {
        let cases: &[(Event<'_>, &str)] = &[
            (data("hello"), "data: hello\n\n"),
            (data(""), "data:\n\n"),
            (data("a\nb"), "data: a\ndata: b\n\n"),
            (data("a\r\nb\rc"), "data: a\ndata: b\ndata: c\n\n"),
            (data("a\n"), "data: a\ndata:\n\n"),
            (data("\n\n"), "data:\ndata:\ndata:\n\n"),
            (data(" lead"), "data:  lead\n\n"),
            (
                Event {
                    event: Some("update"),
                    id: Some("7"),
                    data: "x",
                    retry_ms: Some(3000),
                },
                "event: update\nid: 7\nretry: 3000\ndata: x\n\n",
            ),
            (
                Event {
                    id: Some(""),
                    ..data("x")
                },
                "id:\ndata: x\n\n",
            ),
            (
                Event {
                    retry_ms: Some(0),
                    ..data("x")
                },
                "retry: 0\ndata: x\n\n",
            ),
            (
                Event {
                    retry_ms: Some(u32::MAX),
                    ..data("x")
                },
                "retry: 4294967295\ndata: x\n\n",
            ),
        ];
        for (ev, want) in cases {
            assert_eq!(
                String::from_utf8(encoded(ev)).unwrap(),
                *want,
                "event: {ev:?}"
            );
        }
    }

    #[test]
    fn cr_lf_or_nul_in_event_or_id_is_refused_and_writes_nothing() {
        let bad = ["a\nb", "a\rb", "a\r\nb", "a\0b", "\n", "\r", "\0"];
        for v in bad {
            let mut out = BytesMut::from(&b"keep"[..]);
            assert_eq!(
                encode(
                    &Event {
                        event: Some(v),
                        ..data("x")
                    },
                    &mut out
                ),
                Err(SseError::InvalidField)
            );
            assert_eq!(
                encode(
                    &Event {
                        id: Some(v),
                        ..data("x")
                    },
                    &mut out
                ),
                Err(SseError::InvalidField)
            );
            assert_eq!(&out[..], b"keep", "value {v:?}");
        }
    }

    #[test]
    fn payload_cannot_inject_fields_or_events() {
        let attacks = [
            "x\n\nevent: evil\ndata: owned",
            "x\r\rid: 666\r\r",
            "x\r\n\r\nretry: 1\r\n\r\n",
            "data: nested",
            "\nevent: evil",
            ":comment\n\n",
        ];
        for attack in attacks {
            let client = parse(&encoded(&Event {
                id: Some("1"),
                ..data(attack)
            }));
            assert_eq!(
                client,
                Client {
                    events: vec![Dispatched {
                        kind: "message".into(),
                        data: normalised(attack),
                        last_event_id: "1".into(),
                    }],
                    retry_ms: None,
                    comments: 0,
                },
                "attack {attack:?}"
            );
        }
    }

    #[test]
    fn data_round_trips_with_line_endings_normalised() {
        let cases = [
            "",
            "plain",
            "a\r\nb",
            "a\rb",
            "a\nb",
            "\r",
            "\n",
            "\r\n",
            "\n\r",
            "\r\r\n\n",
            "a\n",
            "\nb",
            "\n\n",
            "data: x",
            "data:x\n\ndata:y",
            " spaced ",
            "  two",
            "\0nul\0",
            "é ☃ \u{feff}bom",
            ":not a comment",
        ];
        for d in cases {
            let client = parse(&encoded(&Event {
                event: Some("e"),
                ..data(d)
            }));
            assert_eq!(client.events.len(), 1, "data {d:?}");
            assert_eq!(client.events[0].data, normalised(d), "data {d:?}");
            assert_eq!(client.events[0].kind, "e");
        }
    }

    #[test]
    fn random_data_round_trips_in_a_stream_of_events() {
        const ALPHABET: &[&str] = &[
            "a", "Z", " ", ":", "\r", "\n", "\r\n", "data", "id", "\0", "é", "\t",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut out = BytesMut::new();
        let mut want = Vec::new();
        for i in 0..500 {
            let payload: String = (0..next(12))
                .map(|_| ALPHABET[next(ALPHABET.len())])
                .collect();
            let id = i.to_string();
            let ev = Event {
                event: Some("tick"),
                id: Some(&id),
                data: &payload,
                retry_ms: None,
            };
            encode(&ev, &mut out).unwrap();
            if i % 7 == 0 {
                encode_comment(&payload, &mut out);
            }
            want.push(Dispatched {
                kind: "tick".into(),
                data: normalised(&payload),
                last_event_id: id,
            });
        }
        let client = parse(&out);
        assert_eq!(client.events, want);
        assert_eq!(client.comments, 500_usize.div_ceil(7));
    }

    #[test]
    fn comments_stay_on_one_line() {
        let cases = [
            ("", ":\n\n"),
            ("ping", ": ping\n\n"),
            ("a\nb", ": a b\n\n"),
            ("a\r\nb\rc", ": a b c\n\n"),
            ("\n\ndata: x\n\n", ":   data: x  \n\n"),
        ];
        for (text, want) in cases {
            let mut out = BytesMut::new();
            encode_comment(text, &mut out);
            assert_eq!(
                String::from_utf8(out.to_vec()).unwrap(),
                want,
                "text {text:?}"
            );
            let client = parse(&out);
            assert_eq!(client.events, vec![], "text {text:?}");
            assert_eq!(client.comments, 1, "text {text:?}");
        }
    }

    #[test]
    fn retry_encodes_as_digits_and_dispatches_nothing() {
        let cases: &[(u32, &str)] = &[
            (0, "retry: 0\n\n"),
            (7, "retry: 7\n\n"),
            (3000, "retry: 3000\n\n"),
            (1_000_000_000, "retry: 1000000000\n\n"),
            (u32::MAX, "retry: 4294967295\n\n"),
        ];
        for &(ms, want) in cases {
            let mut out = BytesMut::new();
            encode_retry(ms, &mut out);
            assert_eq!(String::from_utf8(out.to_vec()).unwrap(), want);
            let client = parse(&out);
            assert_eq!(client.retry_ms, Some(u64::from(ms)));
            assert!(client.events.is_empty());
        }
    }

    #[test]
    fn encode_appends_to_existing_output() {
        let mut out = BytesMut::new();
        encode_retry(3000, &mut out);
        encode(&data("one"), &mut out).unwrap();
        encode(
            &Event {
                event: Some("two"),
                ..data("2")
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..],
            b"retry: 3000\n\ndata: one\n\nevent: two\ndata: 2\n\n"
        );
    }
}
