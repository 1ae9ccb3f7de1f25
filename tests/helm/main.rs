//! The Helm chart's tests, one binary: rendered with helm alone (`chart`), and installed on the
//! local API server (`cluster`). The chart on real nodes is `tests/helm_node.rs`, run by
//! `scripts/node-tier.sh`.

mod chart;
mod cluster;
