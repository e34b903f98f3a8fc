//! Log lines: one event per line, as text (`log.format = "text"`) or as one
//! JSON object (`"json"`), each carrying the id of the request it was
//! written for. The id follows the request onto the threads that do its
//! blocking work (`in_request_of` wraps their jobs).
use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::kv::{Key, Value, VisitSource};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

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
/// its own errors are logged.
pub fn init() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(write_line)
        .init();
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
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    let message = record.args().to_string();
    if JSON.load(Ordering::Relaxed) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            buf.timestamp_millis().to_string().into(),
        );
        line.insert("level".into(), record.level().as_str().into());
        line.insert("target".into(), record.target().into());
        line.insert("message".into(), message.into());
        if let Some(id) = request {
            line.insert("request_id".into(), Json::from(&*id));
        }
        line.extend(fields.0);
        // serde_json escapes every control character: one line per event.
        writeln!(buf, "{}", Json::Object(line))
    } else {
        write!(
            buf,
            "[{} {:<5} {}] ",
            buf.timestamp_millis(),
            record.level(),
            record.target()
        )?;
        if let Some(id) = request {
            write!(buf, "request_id={id} ")?;
        }
        write!(buf, "{}", one_line(&message))?;
        for (key, value) in fields.0 {
            match value {
                Json::String(s) => write!(buf, " {key}={}", one_line(&s))?,
                other => write!(buf, " {key}={other}")?,
            }
        }
        writeln!(buf)
    }
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

/// A record's key-values in their order, numbers and booleans kept as such.
#[derive(Default)]
struct Fields(Vec<(String, Json)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            Json::from(n)
        } else if let Some(n) = value.to_i64() {
            Json::from(n)
        } else if let Some(b) = value.to_bool() {
            Json::from(b)
        } else if let Some(f) = value.to_f64() {
            Json::from(f)
        } else {
            Json::from(value.to_string())
        };
        self.0.push((key.as_str().to_owned(), json));
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
