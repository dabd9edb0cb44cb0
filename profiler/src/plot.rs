//! An SVG plot of measured vs fitted inference time: one colour per hardware, measured medians as dots,
//! the fitted `t(B, r)` as a line over the batch axis (plotters' SVG backend, no system fonts needed).
use plotters::prelude::*;

use super::{Cell, ProfilerError, Report};

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn perr(e: impl std::fmt::Display) -> ProfilerError {
    ProfilerError::Output(format!("cannot draw the plot: {e}"))
}

/// The plot as an SVG document.
pub fn svg(report: &Report, size: (u32, u32)) -> Result<String, ProfilerError> {
    let cells: &[Cell] = &report.cells;
    if cells.is_empty() {
        return Err(ProfilerError::Output("no measured cells to plot".into()));
    }
    let max_b = cells.iter().map(|c| c.batch).max().unwrap_or(1);
    let max_t = cells
        .iter()
        .flat_map(|c| [c.median_s, c.fitted_s])
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    let mut hardware: Vec<&str> = cells.iter().map(|c| c.hardware.as_str()).collect();
    hardware.dedup();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: measured (dots) vs fitted t(B,r) = a·B/r + b·B + c (lines); held-out error {:.1} %",
                    report.function,
                    report.heldout_error * 100.0
                ),
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..f64::from(max_b) * 1.05, 0.0..max_t * 1.1)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("batch B (requests per call)")
            .y_desc(format!(
                "profile seconds (measured / time scale {})",
                report.time_scale
            ))
            .draw()
            .map_err(perr)?;
        for (k, hw) in hardware.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let mine: Vec<&Cell> = cells.iter().filter(|c| c.hardware == *hw).collect();
            let Some(model) = report.model_for(hw) else {
                continue;
            };
            let r = mine.first().map_or(1.0, |c| c.r);
            let line = (1..=max_b).map(|b| (f64::from(b), model.time(b, r)));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(perr)?
                .label(format!("{hw} fitted"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart
                .draw_series(
                    mine.iter()
                        .map(|c| Circle::new((f64::from(c.batch), c.median_s), 4, color.filled())),
                )
                .map_err(perr)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}
