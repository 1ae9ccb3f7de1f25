//! Metrics of requests to Losant, fed by the Losant clients through [`RequestObserver`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::losant::RequestObserver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Metrics of requests to Losant; the [`RequestObserver`] given to Losant clients.
#[derive(Debug, Default)]
pub struct LosantRequestMetrics {
    requests: Family<RequestLabels, Counter>,
    rate_limited: Family<OperationLabels, Counter>,
    retries: Family<OperationLabels, Counter>,
}

impl LosantRequestMetrics {
    /// Registers the three families in `registry`.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "losant_requests",
            "HTTP requests to Losant (each attempt), by operation and status code (0: no answer)",
            self.requests.clone(),
        );
        registry.register(
            "losant_rate_limited",
            "Answers 429 (rate limited) from Losant, by operation",
            self.rate_limited.clone(),
        );
        registry.register(
            "losant_retries",
            "Retried requests to Losant, by operation",
            self.retries.clone(),
        );
    }
}

impl RequestObserver for LosantRequestMetrics {
    fn observe(&self, operation: &'static str, status: Option<u16>, retried: bool) {
        let operation = bounded_operation(operation);
        let labels = RequestLabels {
            operation,
            status: status_label(status),
        };
        self.requests.get_or_create(&labels).inc();
        let by_operation = OperationLabels { operation };
        if status == Some(429) {
            self.rate_limited.get_or_create(&by_operation).inc();
        }
        if retried {
            self.retries.get_or_create(&by_operation).inc();
        }
    }
}

/// The operation names the client promises; anything else is counted as `other`.
fn bounded_operation(operation: &'static str) -> &'static str {
    match operation {
        "list" | "create" | "get" | "patch" | "delete" => operation,
        _ => "other",
    }
}

/// A status code as a label: `0` when there was no answer, the code when it is a valid HTTP
/// status, `other` for anything a broken server might send.
fn status_label(status: Option<u16>) -> String {
    match status {
        None => "0".to_owned(),
        Some(code @ 100..=599) => code.to_string(),
        Some(_) => "other".to_owned(),
    }
}
