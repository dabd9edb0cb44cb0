//! Plain-text tables of an [`EvalReport`], shared by the CLI and the examples.
use super::EvalReport;
use std::fmt::Write;

impl EvalReport {
    /// The per-forecaster table, then the LSTM read at each baseline's over-provisioning.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(
            s,
            "{:<18} {:>8} {:>10} {:>10} {:>11} {:>9}",
            "forecaster", "under", "over-prov", "iat MAE s", "predict us", "train s"
        );
        for row in &self.rows {
            let _ = writeln!(
                s,
                "{:<18} {:>8.4} {:>10.3} {:>10.2} {:>11.1} {:>9.2}",
                row.forecaster,
                row.under_prediction_rate,
                row.over_provisioning,
                row.iat_mae_s,
                row.predict_us,
                row.train_s
            );
        }
        if self.matched.is_empty() {
            return s;
        }
        let _ = writeln!(
            s,
            "\nLSTM at equal or lower over-provisioning than each baseline:"
        );
        let _ = writeln!(
            s,
            "{:<18} {:>8} {:>10} {:>7} {:>10} {:>10}  verdict",
            "baseline", "under", "over-prov", "lstm q", "lstm under", "lstm over"
        );
        for m in &self.matched {
            match &m.lstm {
                Some(p) => {
                    let verdict = if p.under_prediction_rate < m.baseline_under {
                        format!(
                            "LSTM better ({:.2}x fewer under-predictions)",
                            m.baseline_under / p.under_prediction_rate.max(1e-9)
                        )
                    } else if p.under_prediction_rate == m.baseline_under {
                        "tie".to_string()
                    } else {
                        "baseline better".to_string()
                    };
                    let _ = writeln!(
                        s,
                        "{:<18} {:>8.4} {:>10.3} {:>7} {:>10.4} {:>10.3}  {verdict}",
                        m.baseline,
                        m.baseline_under,
                        m.baseline_over,
                        p.quantile,
                        p.under_prediction_rate,
                        p.over_provisioning,
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "{:<18} {:>8.4} {:>10.3}  baseline better: no LSTM coverage target provisions this little",
                        m.baseline, m.baseline_under, m.baseline_over
                    );
                }
            }
        }
        let _ = writeln!(s, "\nLSTM trade-off curve (coverage target q):");
        for p in &self.sweep {
            let _ = writeln!(
                s,
                "  q={:<6} under {:.4}  over-prov {:.3}",
                p.quantile, p.under_prediction_rate, p.over_provisioning
            );
        }
        s
    }
}
