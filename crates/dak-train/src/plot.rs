//! `curves.png`: losses and held-out errors per epoch.

use std::path::Path;

use dak_render::plot::side_by_side;
use dak_render::{LinePlot, Series};

use crate::trainer::EpochRecord;

pub fn write_curves(path: &Path, records: &[EpochRecord]) -> Result<(), dak_render::Error> {
    let epoch = |r: &EpochRecord| (r.epoch + 1) as f64;
    let series = |label: &str, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        label: label.into(),
        points: records.iter().filter_map(|r| f(r).map(|v| (epoch(r), v))).collect(),
    };
    let nonzero = |v: f64| (v > 0.0).then_some(v);
    let mut losses = vec![series("total", &|r| Some(r.losses.total)), series("pe", &|r| Some(r.losses.pe))];
    for (label, f) in [
        ("fd", (|r: &EpochRecord| r.losses.fd) as fn(&EpochRecord) -> f64),
        ("adv_str", |r| r.losses.adv_str),
        ("adv_dyn", |r| r.losses.adv_dyn),
    ] {
        if records.iter().any(|r| f(r) > 0.0) {
            losses.push(series(label, &|r| nonzero(f(r))));
        }
    }
    let loss = LinePlot { title: "training loss".into(), x_label: "epoch".into(), series: losses, log_y: true };
    let errors = LinePlot {
        title: "held-out error (mm)".into(),
        x_label: "epoch".into(),
        series: vec![
            series("mpjpe", &|r| r.eval.map(|e| e.mpjpe_mm)),
            series("p-mpjpe", &|r| r.eval.map(|e| e.p_mpjpe_mm)),
        ],
        log_y: false,
    };
    side_by_side(&[loss.render(480, 320), errors.render(480, 320)]).save_png(path)
}
