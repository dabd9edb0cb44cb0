//! From measurements to a profile: the fit of every measured device kind, the error on the held-out
//! cell, and the profile file (measured kinds from the measurements, the others from the base profile).
use super::*;

/// Fits every measured device kind, the held-out point, and builds the profile.
#[allow(clippy::too_many_arguments)]
pub(super) fn assemble(
    cfg: &Config,
    time_scale: f64,
    mut cells: Vec<Cell>,
    init: BTreeMap<String, InitReport>,
    skipped: Vec<String>,
    memory: memory::MemoryReport,
    base: Option<Profile>,
    original: &contract::types::FunctionStatus,
) -> Result<Report, ProfilerError> {
    let points_of = |cells: &[Cell], kind: DeviceKind| -> Vec<(usize, fit::Point)> {
        cells
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.hardware
                    .parse::<Hardware>()
                    .is_ok_and(|h| h.kind() == kind)
            })
            .map(|(i, c)| {
                (
                    i,
                    fit::Point {
                        batch: c.batch,
                        r: c.r,
                        t_s: c.median_s,
                    },
                )
            })
            .collect()
    };
    let mut fits: BTreeMap<String, FitReport> = BTreeMap::new();
    let mut models: BTreeMap<DeviceKind, LatencyModel> = BTreeMap::new();
    for kind in [DeviceKind::Cpu, DeviceKind::Gpu] {
        let pts = points_of(&cells, kind);
        if pts.is_empty() {
            continue;
        }
        let only: Vec<fit::Point> = pts.iter().map(|(_, p)| *p).collect();
        let f = fit::fit(&only)?;
        for (i, p) in &pts {
            cells[*i].fitted_s = f.model.time(p.batch, p.r);
        }
        models.insert(kind, f.model);
        fits.insert(
            kind_name(kind).to_owned(),
            FitReport {
                a: f.model.a,
                b: f.model.b,
                c: f.model.c,
                mape: f.mape,
                points: only.len(),
            },
        );
    }
    // The held-out cell: as asked, else the middle batch on the middle measured hardware of the first kind.
    let (held_hw, held_b) = match cfg.heldout {
        Some(h) => h,
        None => {
            let mut hws: Vec<Hardware> = cells
                .iter()
                .filter_map(|c| c.hardware.parse::<Hardware>().ok())
                .collect();
            hws.dedup();
            let first_kind = hws.first().map(|h| h.kind());
            hws.retain(|h| Some(h.kind()) == first_kind);
            let hw = hws.get(hws.len() / 2).copied().ok_or_else(|| {
                ProfilerError::Input("no measured hardware to hold a point out".into())
            })?;
            (hw, cfg.batches[cfg.batches.len() / 2])
        }
    };
    let pts = points_of(&cells, held_hw.kind());
    let idx = pts
        .iter()
        .position(|(i, _)| cells[*i].hardware == held_hw.to_string() && cells[*i].batch == held_b)
        .ok_or_else(|| {
            ProfilerError::Input(format!("held-out cell {held_hw}/{held_b} was not measured"))
        })?;
    let only: Vec<fit::Point> = pts.iter().map(|(_, p)| *p).collect();
    let heldout_error = fit::heldout_error(&only, idx)?;
    let rest: Vec<fit::Point> = only
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != idx)
        .map(|(_, p)| *p)
        .collect();
    let predicted_s = fit::fit(&rest)?.model.time(held_b, held_hw.speed());
    let heldout = HeldOut {
        hardware: held_hw.to_string(),
        batch: held_b,
        measured_s: only[idx].t_s,
        predicted_s,
    };
    let profile = build_profile(&init, &models, &memory, base.as_ref())?;
    Ok(Report {
        function: cfg.function.clone(),
        init,
        fit: fits,
        heldout_error,
        heldout,
        exceed_prob: cfg.exceed_prob,
        time_scale,
        cells,
        memory,
        skipped,
        profile_name: cfg.profile_name.clone().unwrap_or_else(|| {
            original
                .annotations
                .get(optimizer::dag::ANN_PROFILE)
                .cloned()
                .unwrap_or_else(|| cfg.function.clone())
        }),
        profile,
    })
}

/// The profile: measured kinds from the measurements, the others from `base` (or, without one, copied
/// from the measured kind so the file stays valid; a planner on a host without that kind never uses it).
fn build_profile(
    init: &BTreeMap<String, InitReport>,
    models: &BTreeMap<DeviceKind, LatencyModel>,
    memory: &memory::MemoryReport,
    base: Option<&Profile>,
) -> Result<Profile, ProfilerError> {
    let init_of = |kind: DeviceKind| {
        init.iter()
            .find(|(hw, _)| hw.parse::<Hardware>().is_ok_and(|h| h.kind() == kind))
            .map(|(_, r)| InitStats {
                mean_s: r.mean_s,
                std_s: r.std_s,
            })
    };
    let pick = |kind: DeviceKind| -> Option<(InitStats, LatencyModel)> {
        match (init_of(kind), models.get(&kind)) {
            (Some(i), Some(m)) => Some((i, *m)),
            _ => base.map(|b| (*b.init.get(kind), *b.infer.get(kind))),
        }
    };
    let (cpu, gpu) = match (pick(DeviceKind::Cpu), pick(DeviceKind::Gpu)) {
        (Some(c), Some(g)) => (c, g),
        (Some(c), None) => (c, c),
        (None, Some(g)) => (g, g),
        (None, None) => {
            return Err(ProfilerError::Output(
                "nothing was measured to build a profile from".into(),
            ));
        }
    };
    let memory_mb = memory
        .knee_mib
        .and_then(|m| u32::try_from(m).ok())
        .or(base.map(|b| b.memory_mb))
        .unwrap_or(0);
    let profile = Profile {
        init: PerDevice {
            cpu: cpu.0,
            gpu: gpu.0,
        },
        infer: PerDevice {
            cpu: cpu.1,
            gpu: gpu.1,
        },
        memory_mb,
        image_mb: base.and_then(|b| b.image_mb),
    };
    // The same validation the planner applies when it loads the file.
    let text = serde_json::json!({"profiles": {"p": &profile}}).to_string();
    ProfileSet::from_json(&text).map_err(|e| ProfilerError::Output(e.to_string()))?;
    Ok(profile)
}
