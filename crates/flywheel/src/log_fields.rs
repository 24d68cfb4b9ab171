//! Log lines that user data cannot forge (issue 14), for both log formats, set up in
//! one place ([`subscriber`]):
//!
//! - text: every field value, every message and every span field passes through
//!   [`EscapedFields`], which writes control characters escaped — `\n`, `\r`, `\t` as
//!   such; other C0 and C1 controls, DEL, the Unicode line and paragraph separators and
//!   the bidirectional overrides as `\u{…}`;
//! - JSON: strings escape C0 controls already; [`JsonSafe`] escapes the rest of the same
//!   set (DEL, C1, separators, bidi overrides) as `\uXXXX`, which only ever occur inside
//!   JSON strings.
//!
//! A campaign name holding a newline and an ANSI colour therefore stays on its line and
//! colours nothing. CJK and other text is written as is.

use std::fmt::{self, Write};
use std::io;

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::EnvFilter;

/// The process's log subscriber: `filter`, text or JSON lines, ANSI colours (text only,
/// for a terminal), written through `writer`.
pub fn subscriber<W>(
    filter: EnvFilter,
    json: bool,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        Box::new(builder.json().with_writer(JsonSafe(writer)).finish())
    } else {
        Box::new(
            builder
                .with_ansi(ansi)
                .fmt_fields(EscapedFields::default())
                .with_writer(writer)
                .finish(),
        )
    }
}

/// The default `name=value` field formatting, with control characters escaped.
#[derive(Debug, Default)]
pub struct EscapedFields(DefaultFields);

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut escaping = Escaping(writer);
        // The inner writer has no ANSI colours: the fields come out as plain text, and
        // every character of it goes through the escaping writer.
        self.0.format_fields(Writer::new(&mut escaping), fields)
    }
}

/// A writer that escapes control characters on the way to the one it wraps.
struct Escaping<'w>(Writer<'w>);

impl Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(&escape_controls(s))
    }
}

/// `s` with control characters, line separators and bidi overrides written as escapes
/// (`\n`, `\r`, `\t`, `\u{1b}`): for user values in log lines and in what the CLI
/// prints to a terminal, so a value can neither start a line nor drive the terminal.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other if needs_escape(other) => {
                let _ = write!(out, "\\u{{{:x}}}", other as u32);
            }
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Control characters (C0, DEL, C1), line and paragraph separators, and the
/// bidirectional embedding, override and isolate characters.
fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_break(c)
}

fn is_invisible_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Makes [`JsonSafeWriter`]s around the writers `M` makes.
pub struct JsonSafe<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JsonSafe<M> {
    type Writer = JsonSafeWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonSafeWriter(self.0.make_writer())
    }
}

/// Writes JSON log lines with DEL, C1 controls, separators and bidi overrides as
/// `\uXXXX` (the JSON encoder leaves them raw; C0 controls it escapes itself). Each
/// write is one whole line, as the formatter hands it over.
pub struct JsonSafeWriter<W>(W);

impl<W: io::Write> io::Write for JsonSafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) if text.chars().any(|c| c != '\n' && needs_escape(c) && !is_c0(c)) => {
                let mut out = String::with_capacity(text.len() + 16);
                for c in text.chars() {
                    if needs_escape(c) && !is_c0(c) {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        out.push(c);
                    }
                }
                self.0.write_all(out.as_bytes())?;
            }
            _ => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// C0 controls: inside JSON strings the encoder escapes them; outside, the line's own
/// newline.
fn is_c0(c: char) -> bool {
    (c as u32) < 0x20
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    const EVIL: &str = "雙11\nWARN forged line\r\x1b[31mred\x1b[0m\u{2028}\u{202e}\x07\u{85}end";

    fn log_lines(json: bool) -> String {
        let buf = Buffer::default();
        let emit = || {
            let span = tracing::warn_span!("check", journey = %EVIL);
            let _in = span.enter();
            tracing::warn!(campaign = %EVIL, detail = ?EVIL, "guardrail tripped for {}", EVIL);
            tracing::warn!(name = EVIL, "second");
        };
        let filter = EnvFilter::new("warn");
        tracing::subscriber::with_default(subscriber(filter, json, false, buf.clone()), emit);
        let bytes = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap()
    }

    fn assert_clean(out: &str) {
        assert_eq!(out.lines().count(), 2, "one line per event: {out:?}");
        for c in ['\r', '\x1b', '\u{2028}', '\u{202e}', '\x07', '\u{85}'] {
            assert!(!out.contains(c), "raw {c:?} in {out:?}");
        }
        assert!(out.trim_end_matches('\n').matches('\n').count() == 1, "{out:?}");
        assert!(out.contains("雙11"), "CJK text is kept: {out}");
    }

    #[test]
    fn text_lines_escape_control_characters_in_fields_messages_and_spans() {
        let out = log_lines(false);
        assert_clean(&out);
        let first = out.lines().next().unwrap();
        assert!(
            first.contains(
                r"campaign=雙11\nWARN forged line\r\u{1b}[31mred\u{1b}[0m\u{2028}\u{202e}\u{7}\u{85}end"
            ),
            "{first}"
        );
        assert!(first.contains(r"guardrail tripped for 雙11\nWARN"), "{first}");
        assert!(first.contains(r"check{journey=雙11\nWARN"), "{first}");
    }

    #[test]
    fn json_lines_escape_control_characters_too() {
        let out = log_lines(true);
        assert_clean(&out);
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["fields"].is_object(), "{line}");
        }
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["fields"]["campaign"], EVIL);
    }

    #[test]
    fn plain_text_is_written_unchanged() {
        let mut out = String::new();
        let mut w = Escaping(Writer::new(&mut out));
        w.write_str("order 1001 by 張三 (ok) \\n stays").unwrap();
        assert_eq!(out, "order 1001 by 張三 (ok) \\n stays");
    }
}
