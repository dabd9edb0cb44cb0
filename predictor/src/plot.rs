//! An SVG chart of forecast vs actual counts per window (plotters' SVG backend, no system fonts).
//! The chart is returned as a string; the caller decides where to write it.
use crate::error::{Error, Result};
use crate::eval::PlotTrace;
use plotters::prelude::*;

const COLORS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn perr(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("cannot draw the plot: {e}"))
}

/// Renders `trace` as an SVG document (actual counts in black, each forecaster's provisioned upper
/// edge as a coloured step line).
pub fn forecast_svg(trace: &PlotTrace, size: (u32, u32)) -> Result<String> {
    let n = trace.actual.len();
    if n == 0 {
        return Err(Error::TooLittleData("no windows to plot".into()));
    }
    let max_y = trace
        .forecasts
        .iter()
        .flat_map(|(_, v)| v.iter())
        .chain(trace.actual.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: invocations per {} s window, actual vs provisioned (upper edge)",
                    trace.series, trace.window_s
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0..n, 0..(max_y + max_y / 10 + 1))
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc("test window")
            .y_desc("invocations")
            .draw()
            .map_err(perr)?;
        for (k, (name, values)) in trace.forecasts.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let steps = values
                .iter()
                .enumerate()
                .flat_map(|(i, &v)| [(i, v), (i + 1, v)]);
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(1)))
                .map_err(perr)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        let actual = trace
            .actual
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| [(i, v), (i + 1, v)]);
        chart
            .draw_series(LineSeries::new(actual, BLACK.stroke_width(2)))
            .map_err(perr)?
            .label("actual")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    Ok(out)
}
