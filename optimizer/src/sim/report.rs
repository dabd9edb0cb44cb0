//! Markdown tables and SVG charts (plotters' SVG backend, no system fonts) of simulation results. Every
//! function returns a string; the caller decides where it goes.
use std::fmt::Write as _;

use plotters::prelude::*;

use super::experiment::{Outcome, Row};

const COLORS: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// A chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart: {0}")]
pub struct PlotError(String);

fn perr(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

fn uniq<T: PartialEq + Clone>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = Vec::new();
    for x in it {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v
}

fn find<'a>(rows: &'a [Row], dag: &str, sla: f64, policy: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.dag == dag && (r.sla_s - sla).abs() < 1e-9 && r.policy == policy)
}

/// One table per DAG: policies down, SLAs across, each cell `metric(row)`.
pub fn per_sla_table(rows: &[Row], title: &str, metric: &dyn Fn(&Row) -> String) -> String {
    let mut out = String::new();
    let slas = uniq(rows.iter().map(|r| r.sla_s));
    for dag in uniq(rows.iter().map(|r| r.dag.clone())) {
        let _ = writeln!(out, "\n**{dag}: {title}**\n");
        let head: Vec<String> = slas.iter().map(|s| format!("SLA {s} s")).collect();
        let _ = writeln!(out, "| policy | {} |", head.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(slas.len()));
        for p in uniq(
            rows.iter()
                .filter(|r| r.dag == dag)
                .map(|r| r.policy.clone()),
        ) {
            let cells: Vec<String> = slas
                .iter()
                .map(|&s| find(rows, &dag, s, &p).map_or("-".into(), metric))
                .collect();
            let _ = writeln!(out, "| {p} | {} |", cells.join(" | "));
        }
    }
    out
}

/// Every row in full, one line each.
pub fn full_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| DAG | SLA s | policy | requests | cost $ | × OPT | × bound | violations | ratio % | p50 s | p99 s | max s | cold on CP | re-init | HW switches | GPU cost % | core-h | GPU-h |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.4} | {} | {} | {} | {:.3} | {:.2} | {:.2} | {:.2} | {} | {:.3} | {} | {:.1} | {:.2} | {:.3} |",
            r.dag,
            r.sla_s,
            r.policy,
            r.requests,
            r.cost,
            r.cost_vs_opt.map_or("-".into(), |x| format!("{x:.2}")),
            r.cost_vs_bound.map_or("-".into(), |x| format!("{x:.2}")),
            r.sla_violations,
            r.violation_ratio * 100.0,
            r.p50_latency_s,
            r.p99_latency_s,
            r.max_latency_s,
            r.cold_on_critical_path,
            r.reinit_fraction,
            r.hw_switches,
            r.gpu_cost_share * 100.0,
            r.cpu_core_s / 3600.0,
            r.gpu_s / 3600.0
        );
    }
    out
}

/// Per policy over all rows: mean re-init fraction, GPU cost share, CPU core-hours and GPU-hours.
pub fn mix_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| policy | mean re-init fraction | GPU share of cost | CPU core-h | GPU-h (share-weighted) | HW switches |\n|---|---|---|---|---|---|\n",
    );
    for p in uniq(rows.iter().map(|r| r.policy.clone())) {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.policy == p).collect();
        let n = rs.len().max(1) as f64;
        let cost: f64 = rs.iter().map(|r| r.cost).sum();
        let gpu_cost: f64 = rs.iter().map(|r| r.cost * r.gpu_cost_share).sum();
        let _ = writeln!(
            out,
            "| {p} | {:.3} | {:.1} % | {:.1} | {:.2} | {} |",
            rs.iter().map(|r| r.reinit_fraction).sum::<f64>() / n,
            if cost > 0.0 {
                gpu_cost / cost * 100.0
            } else {
                0.0
            },
            rs.iter().map(|r| r.cpu_core_s).sum::<f64>() / 3600.0,
            rs.iter().map(|r| r.gpu_s).sum::<f64>() / 3600.0,
            rs.iter().map(|r| r.hw_switches).sum::<u64>()
        );
    }
    out
}

/// Lines of `(x, y)` per named series.
pub fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
) -> Result<String, PlotError> {
    let pts = || series.iter().flat_map(|(_, v)| v.iter());
    let (x0, x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (y0, y1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if !(x0.is_finite() && y0.is_finite()) {
        return Err(PlotError("no points to plot".into()));
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .draw()
                    .map_err(perr)?;
                for (k, (name, v)) in series.iter().enumerate() {
                    let c = COLORS[k % COLORS.len()];
                    chart
                        .draw_series(LineSeries::new(
                            v.iter()
                                .map(|&(x, y)| (x, if log_y { y.max(1e-6) } else { y })),
                            c.stroke_width(2),
                        ))
                        .map_err(perr)?
                        .label(name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(perr)?;
            }};
        }
        if log_y {
            let lo = y0.max(1e-3) / 1.5;
            let hi = (y1 * 1.5).max(lo * 10.0);
            draw!(
                b.build_cartesian_2d(x0..x1, (lo..hi).log_scale())
                    .map_err(perr)?
            );
        } else {
            let hi = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
            draw!(
                b.build_cartesian_2d(x0..x1, y0.min(0.0)..hi)
                    .map_err(perr)?
            );
        }
        root.present().map_err(perr)?;
    }
    Ok(out)
}

/// Grouped bars: one group per label, one bar per named series.
pub fn bar_chart(
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    log_y: bool,
) -> Result<String, PlotError> {
    let ymax = series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .fold(0.0_f64, |a, &b| a.max(b));
    let ymin = series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .filter(|&&v| v > 0.0)
        .fold(f64::INFINITY, |a, &b| a.min(b));
    if groups.is_empty() || series.is_empty() || ymax <= 0.0 {
        return Err(PlotError("no bars to plot".into()));
    }
    let ns = series.len() as f64;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64);
        let xr = 0.0..groups.len() as f64;
        let label = |x: &f64| {
            groups
                .get(x.floor() as usize)
                .filter(|_| (x.fract() - 0.5).abs() < 1e-6)
                .cloned()
                .unwrap_or_default()
        };
        macro_rules! draw {
            ($chart:expr, $base:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(groups.len() * 2 + 1)
                    .x_label_formatter(&label)
                    .y_desc(y_desc)
                    .draw()
                    .map_err(perr)?;
                for (k, (name, v)) in series.iter().enumerate() {
                    let c = COLORS[k % COLORS.len()];
                    let w = 0.8 / ns;
                    chart
                        .draw_series(v.iter().enumerate().map(|(g, &y)| {
                            let x = g as f64 + 0.1 + w * k as f64;
                            Rectangle::new([(x, $base), (x + w * 0.9, y.max($base))], c.filled())
                        }))
                        .map_err(perr)?
                        .label(name.clone())
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
                        });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(perr)?;
            }};
        }
        if log_y {
            let lo = (ymin / 2.0).max(1e-3);
            draw!(
                b.build_cartesian_2d(xr, (lo..ymax * 2.0).log_scale())
                    .map_err(perr)?,
                lo
            );
        } else {
            draw!(
                b.build_cartesian_2d(xr, 0.0..ymax * 1.15).map_err(perr)?,
                0.0
            );
        }
        root.present().map_err(perr)?;
    }
    Ok(out)
}

/// The empirical CDF of each outcome's end-to-end latencies (one line per policy).
pub fn latency_cdf(title: &str, outs: &[&Outcome]) -> Result<String, PlotError> {
    let series: Vec<(String, Vec<(f64, f64)>)> = outs
        .iter()
        .map(|o| {
            let mut l = o.latencies.clone();
            l.sort_by(f64::total_cmp);
            let n = l.len().max(1) as f64;
            // At most ~400 points per line keeps the SVG small.
            let step = (l.len() / 400).max(1);
            let pts = l
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i + 1 == l.len())
                .map(|(i, &x)| (x, (i + 1) as f64 / n))
                .collect();
            (o.row.policy.clone(), pts)
        })
        .collect();
    line_chart(
        title,
        "end-to-end latency (s)",
        "fraction of requests",
        &series,
        false,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(dag: &str, sla: f64, policy: &str, cost: f64) -> Row {
        Row {
            dag: dag.into(),
            sla_s: sla,
            policy: policy.into(),
            requests: 10,
            cost,
            cost_vs_opt: Some(cost),
            bound: None,
            cost_vs_bound: None,
            sla_violations: 0,
            violation_ratio: 0.0,
            p50_latency_s: 1.0,
            p99_latency_s: 2.0,
            max_latency_s: 2.0,
            reinit_fraction: 0.1,
            gpu_cost_share: 0.5,
            cold_on_critical_path: 0,
            hw_switches: 0,
            cpu_core_s: 3600.0,
            gpu_s: 360.0,
            cost_init: 0.0,
            cost_busy: 0.0,
            cost_idle: cost,
            plans_computed: 1,
            infeasible_plans: 0,
        }
    }

    #[test]
    fn tables_and_charts_render() {
        let rows = vec![
            row("a", 2.0, "opt", 1.0),
            row("a", 2.0, "smiless", 1.2),
            row("a", 3.0, "opt", 1.0),
        ];
        let t = per_sla_table(&rows, "cost × OPT", &|r| format!("{:.2}", r.cost));
        assert!(t.contains("| smiless | 1.20 | - |"), "{t}");
        assert!(
            mix_table(&rows).contains("| opt | 0.100 | 50.0 % | 2.0 | 0.20 | 0 |"),
            "{}",
            mix_table(&rows)
        );
        let svg = bar_chart(
            "t",
            "y",
            &["a".into()],
            &[("opt".into(), vec![1.0]), ("smiless".into(), vec![1.2])],
            true,
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("smiless"));
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[("s".into(), vec![(2.0, 1.0), (3.0, 2.0)])],
            false,
        )
        .unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(line_chart("t", "x", "y", &[], false).is_err());
    }
}
