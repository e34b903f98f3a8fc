//! Log lines: one event per line, as text (`log.format = "text"`) or as one
//! JSON object (`"json"`), each carrying the id of the request it was
//! written for. The id follows the request onto the threads that do its
//! blocking work (`in_request_of` wraps their jobs).
use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use log::kv::{Key, Value, VisitSource};
use serde::Deserialize;

/// A request's id as it travels with its work.
pub type RequestId = Arc<str>;

tokio::task_local! {
    static TASK_REQUEST: RequestId;
}

thread_local! {
    static THREAD_REQUEST: RefCell<Option<RequestId>> = const { RefCell::new(None) };
}

static JSON: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Starts logging (`RUST_LOG`, default `info`) in text until `use_format`
/// says otherwise: configuration is read after the logger starts, so that
/// its own errors are logged. Lines go to stderr through `Batches`.
pub fn init() {
    let batches = Batches::start();
    let _ = FLUSH.set(batches.clone());
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(write_line)
        .target(env_logger::Target::Pipe(Box::new(batches)))
        .init();
}

/// Writes what is waiting now (before the process exits).
pub fn flush() {
    if let Some(batches) = FLUSH.get() {
        batches.write_out();
    }
}

static FLUSH: OnceLock<Batches> = OnceLock::new();

/// Log lines gathered and written to stderr by one thread every
/// `BATCH_EVERY`: one write(2) for many lines, where a line each cost a
/// request's worth of CPU in system calls at full load. A line waits at most
/// that long; past `BATCH_MAX` bytes waiting (stderr blocked), the writing
/// thread writes them itself: slower, never lost.
#[derive(Clone)]
struct Batches(Arc<Mutex<Vec<u8>>>);

const BATCH_EVERY: Duration = Duration::from_millis(20);
const BATCH_MAX: usize = 1 << 20;

impl Batches {
    fn start() -> Batches {
        let batches = Batches(Arc::new(Mutex::new(Vec::with_capacity(64 * 1024))));
        let writer = batches.clone();
        let _ = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || loop {
                std::thread::sleep(BATCH_EVERY);
                writer.write_out();
            });
        batches
    }

    fn write_out(&self) {
        let waiting = {
            let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if buffer.is_empty() {
                return;
            }
            std::mem::take(&mut *buffer)
        };
        let _ = std::io::stderr().lock().write_all(&waiting);
    }
}

impl Write for Batches {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
            buffer.extend_from_slice(bytes);
            buffer.len() > BATCH_MAX
        };
        if full {
            self.write_out();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn use_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// Runs `future` as the work of request `id`.
pub async fn in_request<F: Future>(id: RequestId, future: F) -> F::Output {
    TASK_REQUEST.scope(id, future).await
}

/// The id of the request being served here, if any.
pub fn current_request() -> Option<RequestId> {
    TASK_REQUEST
        .try_with(Arc::clone)
        .ok()
        .or_else(|| THREAD_REQUEST.with(|r| r.borrow().clone()))
}

/// `job`, made to run (on another thread) as the work of the request being
/// served where it was made.
pub fn in_request_of_caller<T>(job: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let id = current_request();
    move || {
        let before = THREAD_REQUEST.with(|r| r.replace(id));
        let out = job();
        THREAD_REQUEST.with(|r| *r.borrow_mut() = before);
        out
    }
}

fn write_line(buf: &mut env_logger::fmt::Formatter, record: &log::Record) -> std::io::Result<()> {
    let request = current_request();
    let timestamp = buf.timestamp_millis();
    if JSON.load(Ordering::Relaxed) {
        // Written as it goes (no map built per line); serde_json escapes
        // every control character, so an event is one line.
        write!(
            buf,
            "{{\"timestamp\":\"{timestamp}\",\"level\":\"{}\",\"target\":",
            record.level()
        )?;
        json_text(buf, record.target())?;
        buf.write_all(b",\"message\":")?;
        json_text(buf, record.args())?;
        if let Some(id) = request {
            buf.write_all(b",\"request_id\":")?;
            json_text(buf, &id)?;
        }
        let mut fields = JsonFields {
            buf,
            result: Ok(()),
        };
        let _ = record.key_values().visit(&mut fields);
        fields.result?;
        buf.write_all(b"}\n")
    } else {
        write!(
            buf,
            "[{timestamp} {:<5} {}] ",
            record.level(),
            record.target()
        )?;
        if let Some(id) = request {
            write!(buf, "request_id={id} ")?;
        }
        match record.args().as_str() {
            Some(message) => write!(buf, "{}", one_line(message))?,
            None => write!(buf, "{}", one_line(&record.args().to_string()))?,
        }
        let mut fields = TextFields {
            buf,
            result: Ok(()),
        };
        let _ = record.key_values().visit(&mut fields);
        fields.result?;
        writeln!(buf)
    }
}

/// `text` as a JSON string, escaped as it is written.
fn json_text(
    buf: &mut impl Write,
    text: &(impl std::fmt::Display + ?Sized),
) -> std::io::Result<()> {
    use serde::Serializer;
    serde_json::Serializer::new(buf)
        .collect_str(text)
        .map_err(std::io::Error::other)
}

/// A message as one line: line breaks (libpq's errors hold several) and
/// other control characters written as escapes.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// A record's key-values as JSON members: numbers and booleans as such.
struct JsonFields<'a, W: Write> {
    buf: &'a mut W,
    result: std::io::Result<()>,
}

impl<'kvs, W: Write> VisitSource<'kvs> for JsonFields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let buf = &mut *self.buf;
        let written = (|| {
            buf.write_all(b",")?;
            json_text(buf, key.as_str())?;
            buf.write_all(b":")?;
            if let Some(n) = value.to_u64() {
                write!(buf, "{n}")
            } else if let Some(n) = value.to_i64() {
                write!(buf, "{n}")
            } else if let Some(b) = value.to_bool() {
                write!(buf, "{b}")
            } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
                write!(buf, "{f}")
            } else {
                json_text(buf, &value)
            }
        })();
        if written.is_err() {
            self.result = written;
        }
        Ok(())
    }
}

/// A record's key-values as ` key=value`, each on the same line.
struct TextFields<'a, W: Write> {
    buf: &'a mut W,
    result: std::io::Result<()>,
}

impl<'kvs, W: Write> VisitSource<'kvs> for TextFields<'_, W> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let written = match value.to_borrowed_str() {
            Some(text) => write!(self.buf, " {key}={}", one_line(text)),
            None => write!(self.buf, " {key}={}", one_line(&value.to_string())),
        };
        if written.is_err() {
            self.result = written;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_become_escapes() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("error: FATAL\nDETAIL: x\r\t\u{1b}"),
            "error: FATAL\\nDETAIL: x\\r\\t\\u{1b}"
        );
    }

    #[tokio::test]
    async fn the_request_id_follows_the_work_onto_another_thread() {
        let id: RequestId = Arc::from("req-1");
        let seen = in_request(id, async {
            let job = in_request_of_caller(current_request);
            std::thread::spawn(job).join().unwrap()
        })
        .await;
        assert_eq!(seen.as_deref(), Some("req-1"));
        assert_eq!(current_request(), None);
        assert_eq!(std::thread::spawn(current_request).join().unwrap(), None);
    }
}
