//! Prometheus metrics: one registry per running service (so that two in one
//! process, as in the tests, count apart), recorded where things happen and
//! served in the text format on `server.metrics_port`. Gauges of state
//! (pool, hashing, outbox) are set when scraped.
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    logins: IntCounterVec,
    hash_admissions: IntCounterVec,
    pub hash_in_flight: IntGauge,
    pub pool_connections: IntGaugeVec,
    pub db_queue_wait: Histogram,
    pub outbox_pending: IntGauge,
}

/// Seconds: 1 ms to about 16 s.
fn latency_buckets() -> Vec<f64> {
    exponential_buckets(0.001, 2.0, 15).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Names and labels are constants: registering them cannot fail but
        // by a bug that the tests catch at once.
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let http_requests = counter(
            "http_requests_total",
            "Requests answered, by method, route template and status.",
            &["method", "route", "status"],
        );
        let logins = counter(
            "taskgate_logins_total",
            "Password logins by outcome: success, bad_credentials, mfa_required, locked, refused (429/503 before any check), disabled, error.",
            &["outcome"],
        );
        let hash_admissions = counter(
            "taskgate_hash_admissions_total",
            "Places asked of the hashing gate: admitted, client_busy (429: this client's line is full), overloaded (503: every line is).",
            &["result"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from the request's arrival to its answer, by route template.",
            )
            .buckets(latency_buckets()),
            &["route"],
        )
        .expect("a valid histogram");
        let db_queue_wait = Histogram::with_opts(
            HistogramOpts::new(
                "taskgate_db_queue_wait_seconds",
                "Time a database job waited for a thread and a connection.",
            )
            .buckets(latency_buckets()),
        )
        .expect("a valid histogram");
        let hash_in_flight = IntGauge::new(
            "taskgate_hash_in_flight",
            "Password hashes running or waiting for a hashing thread.",
        )
        .expect("a valid gauge");
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "taskgate_db_pool_connections",
                "Database connections of this instance's pool: idle, in_use.",
            ),
            &["state"],
        )
        .expect("a valid gauge");
        let outbox_pending = IntGauge::new(
            "taskgate_outbox_pending",
            "Mails waiting to be sent (all instances: one outbox).",
        )
        .expect("a valid gauge");
        for metric in [
            Box::new(http_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(db_queue_wait.clone()),
            Box::new(hash_in_flight.clone()),
            Box::new(pool_connections.clone()),
            Box::new(outbox_pending.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            logins,
            hash_admissions,
            hash_in_flight,
            pool_connections,
            db_queue_wait,
            outbox_pending,
        }
    }

    pub fn request(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, status])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }

    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    pub fn hash_admission(&self, result: &str) {
        self.hash_admissions.with_label_values(&[result]).inc();
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        String::from_utf8(text).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_recorded_is_rendered_with_its_labels() {
        let metrics = Metrics::new();
        metrics.request("GET", "/tasks/{id}", "200", 0.003);
        metrics.login("success");
        metrics.hash_admission("admitted");
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/tasks/{id}",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"taskgate_logins_total{outcome="success"} 1"#));
        assert!(
            text.contains(
                r#"http_request_duration_seconds_bucket{route="/tasks/{id}",le="0.004"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE taskgate_db_queue_wait_seconds histogram"));
    }
}
