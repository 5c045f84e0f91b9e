//! `orch metrics [--out FILE]`: the queue's state for Prometheus. To stdout, or written
//! atomically to FILE for node_exporter's textfile collector (silently, for cron).

use anyhow::Result;
use serde_json::json;

use crate::cli::MetricsArgs;
use crate::exit;
use crate::metrics::{self, Snapshot};
use crate::output;
use crate::Ctx;

/// node_exporter usually runs as another user: the file is world-readable (metrics are counts,
/// never secrets).
const METRICS_MODE: u32 = 0o644;

pub fn run(ctx: &Ctx, args: &MetricsArgs) -> Result<u8> {
    let store = ctx.store()?;
    let snapshot = Snapshot::read(&*store, &ctx.config, store.now()?)?;
    let families = metrics::families(&snapshot);
    match &args.out {
        Some(path) => {
            output::write_public_atomic(path, metrics::render(&families).as_bytes(), METRICS_MODE)?;
            if ctx.json() {
                let samples: usize = families.iter().map(|f| f.samples.len()).sum();
                output::json(&json!({
                    "out": path,
                    "families": families.len(),
                    "samples": samples,
                }))?;
            }
        }
        None if ctx.json() => output::json(&json!({ "families": families }))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(metrics::render(&families).as_bytes())?;
            out.flush()?;
        }
    }
    Ok(exit::OK)
}
