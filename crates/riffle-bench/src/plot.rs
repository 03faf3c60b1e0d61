//! `--plot FILE.svg`: a latency-distribution chart (latency against
//! percentile, on the usual "nines" axis) above a throughput-over-time
//! chart, drawn with plotters' SVG backend (no system font libraries).

use std::path::Path;

use plotters::prelude::*;

use crate::args::Plan;
use crate::error::BenchError;
use crate::report::{Curve, Summary, output_error};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 900;
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Writes the charts of `summary` to `path`.
pub fn write(path: &Path, plan: &Plan, summary: &Summary) -> Result<(), BenchError> {
    let shown = path.display().to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, plan, summary).map_err(|e| output_error(&shown, e))?;
        root.present().map_err(|e| output_error(&shown, e))?;
    }
    std::fs::write(path, svg).map_err(|e| output_error(&shown, e))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(root: &Area<'_>, plan: &Plan, summary: &Summary) -> DrawResult {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(HEIGHT / 2);
    latency_chart(&top, plan, &summary.curves)?;
    throughput_chart(&bottom, summary)?;
    Ok(())
}

/// Latency (ms) against percentile; x is -log10(1 - q), so 1 is p90, 2 is
/// p99, 3 is p99.9: the tail gets as much room as the median.
fn latency_chart(area: &Area<'_>, plan: &Plan, curves: &[Curve]) -> DrawResult {
    let x_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(3.0_f64, f64::max);
    let y_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(0.1_f64, f64::max)
        * 1.1;
    let title = format!("riffle bench {:?}: latency distribution", plan.workload).to_lowercase();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|x| nines(*x))
        .draw()?;
    for (i, curve) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(curve.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// `p50`, `p90`, `p99`, `p99.9` for an x of the latency chart.
fn nines(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("p{q:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Reads one series' value out of a sample.
type SampleValue = fn(&crate::stats::Sample) -> f64;

/// Payload MB/s per second of the run, written and read.
fn throughput_chart(area: &Area<'_>, summary: &Summary) -> DrawResult {
    let samples = &summary.timeline;
    let t_max = samples.iter().map(|s| s.t_s).fold(1.0_f64, f64::max);
    let y_max = samples
        .iter()
        .map(|s| s.write_mb_per_s.max(s.read_mb_per_s))
        .fold(0.1_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput over time", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("payload MB/s")
        .draw()?;
    let series: [(&str, SampleValue); 2] = [
        ("written", |s| s.write_mb_per_s),
        ("read", |s| s.read_mb_per_s),
    ];
    for (i, (name, value)) in series.into_iter().enumerate() {
        if samples.iter().all(|s| value(s) == 0.0) {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.t_s, value(s))),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_is_labelled_in_nines() {
        assert_eq!(nines(0.0), "p0");
        assert_eq!(nines(1.0), "p90");
        assert_eq!(nines(2.0), "p99");
        assert_eq!(nines(3.0), "p99.9");
        assert_eq!(nines(std::f64::consts::LOG10_2), "p50");
    }
}
