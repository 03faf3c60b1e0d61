//! `--plot FILE.svg`: a latency-distribution chart and a
//! throughput-over-time chart, drawn with plotters' SVG backend.

use std::path::Path;

use crate::args::Plan;
use crate::error::BenchError;
use crate::report::Summary;

/// Writes the charts of `summary` to `path`.
pub fn write(path: &Path, _plan: &Plan, _summary: &Summary) -> Result<(), BenchError> {
    Err(BenchError::Output {
        path: path.display().to_string(),
        message: "plots are not drawn yet".into(),
    })
}
