//! Procedural actions: joint-angle trajectories and root motion as smooth
//! functions of time, with per-sequence variation and a per-domain style.

use std::f64::consts::TAU;

use dak_core::NUM_JOINTS;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::body::{JointAngles, PoseParams};

const R_HIP: usize = 1;
const R_KNEE: usize = 2;
const L_HIP: usize = 4;
const L_KNEE: usize = 5;
const SPINE: usize = 7;
const THORAX: usize = 8;
const NECK: usize = 9;
const L_SHOULDER: usize = 11;
const L_ELBOW: usize = 12;
const R_SHOULDER: usize = 14;
const R_ELBOW: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Walk,
    Run,
    Jump,
    Squat,
    Wave,
    Turn,
    Box,
    Bend,
}

impl Action {
    pub const ALL: [Action; 8] =
        [Action::Walk, Action::Run, Action::Jump, Action::Squat, Action::Wave, Action::Turn, Action::Box, Action::Bend];

    pub fn name(self) -> &'static str {
        match self {
            Action::Walk => "walk",
            Action::Run => "run",
            Action::Jump => "jump",
            Action::Squat => "squat",
            Action::Wave => "wave",
            Action::Turn => "turn",
            Action::Box => "box",
            Action::Bend => "bend",
        }
    }
}

/// How a domain moves: tempo, range of motion, sway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MotionStyle {
    /// Multiplies every frequency.
    pub tempo: f64,
    /// Multiplies every joint-angle amplitude.
    pub amplitude: f64,
    /// Amplitude of the slow random joint-angle drift (degrees).
    pub drift_deg: f64,
    /// Extra arm abduction (degrees): a wider, looser arm carriage.
    pub arm_abduction_deg: f64,
}

/// Sum of a few slow sinusoids with random phases: natural-looking drift.
#[derive(Debug, Clone)]
struct Drift {
    terms: Vec<(f64, f64, f64)>,
}

impl Drift {
    fn new(rng: &mut impl Rng, amplitude: f64) -> Drift {
        let terms = (0..3)
            .map(|_| {
                (amplitude / 3.0 * rng.random_range(0.5..1.5), rng.random_range(0.15..1.2), rng.random_range(0.0..TAU))
            })
            .collect();
        Drift { terms }
    }

    fn at(&self, t: f64) -> f64 {
        self.terms.iter().map(|(a, f, p)| a * (TAU * f * t + p).sin()).sum()
    }
}

/// One sequence's motion: the action, its style, and random per-sequence variation.
pub struct Motion {
    action: Action,
    style: MotionStyle,
    /// Per-sequence amplitude and tempo variation around the style.
    amp: f64,
    freq: f64,
    phase: f64,
    heading: f64,
    path_radius_mm: f64,
    drift: Vec<[Drift; 2]>,
}

fn deg(d: f64) -> f64 {
    d.to_radians()
}

/// 0 → 1 → 0 over one period, smooth at both ends.
fn bump(u: f64) -> f64 {
    0.5 - 0.5 * (TAU * u).cos()
}

/// Smooth bump over [a, b] inside a unit phase, zero elsewhere.
fn window(u: f64, a: f64, b: f64) -> f64 {
    if u <= a || u >= b {
        0.0
    } else {
        bump((u - a) / (b - a))
    }
}

impl Motion {
    pub fn new(action: Action, style: MotionStyle, rng: &mut impl Rng) -> Motion {
        let drift_rad = deg(style.drift_deg);
        Motion {
            action,
            style,
            amp: style.amplitude * rng.random_range(0.9..1.1),
            freq: style.tempo * rng.random_range(0.92..1.08),
            phase: rng.random_range(0.0..TAU),
            heading: rng.random_range(0.0..TAU),
            path_radius_mm: rng.random_range(1200.0..1700.0),
            drift: (0..NUM_JOINTS).map(|_| [Drift::new(rng, drift_rad), Drift::new(rng, drift_rad)]).collect(),
        }
    }

    /// Pose parameters at time `t` seconds.
    pub fn at(&self, t: f64) -> PoseParams {
        let mut p = PoseParams { yaw: self.heading, ..Default::default() };
        let a = self.amp;
        let j = &mut p.joints;
        match self.action {
            Action::Walk | Action::Run => {
                let running = self.action == Action::Run;
                let (hz, speed, hip, knee, arm, elbow) = if running {
                    (1.45, 2600.0, 40.0, 75.0, 35.0, 85.0)
                } else {
                    (0.95, 1200.0, 24.0, 40.0, 18.0, 15.0)
                };
                let phi = TAU * hz * self.freq * t + self.phase;
                j[R_HIP].flex = deg(hip * a) * phi.sin();
                j[L_HIP].flex = -deg(hip * a) * phi.sin();
                j[R_KNEE].flex = -deg(5.0 + knee * a * phi.cos().max(0.0));
                j[L_KNEE].flex = -deg(5.0 + knee * a * (-phi.cos()).max(0.0));
                j[R_SHOULDER].flex = -deg(arm * a) * phi.sin();
                j[L_SHOULDER].flex = deg(arm * a) * phi.sin();
                j[R_ELBOW].flex = deg(elbow + 10.0 * a * phi.sin().max(0.0));
                j[L_ELBOW].flex = deg(elbow + 10.0 * a * (-phi.sin()).max(0.0));
                j[THORAX].twist = deg(6.0 * a) * phi.sin();
                j[SPINE].flex = deg(if running { 10.0 } else { 3.0 });
                // Circle around the capture centre, facing along the path.
                let theta = speed * self.freq * t / self.path_radius_mm + self.heading;
                p.root_xy = [self.path_radius_mm * theta.cos(), self.path_radius_mm * theta.sin()];
                p.yaw = theta;
                if running {
                    p.lift_mm = 45.0 * (2.0 * phi).sin().max(0.0);
                    p.lean = deg(6.0);
                }
            }
            Action::Jump => {
                let u = (t * 0.7 * self.freq + self.phase / TAU).fract();
                let crouch = window(u, 0.0, 0.42) + 0.4 * window(u, 0.72, 1.0);
                let flight = if (0.42..0.72).contains(&u) {
                    let s = (u - 0.42) / 0.3;
                    4.0 * s * (1.0 - s)
                } else {
                    0.0
                };
                for (hip, knee) in [(R_HIP, R_KNEE), (L_HIP, L_KNEE)] {
                    j[hip].flex = deg(70.0 * a * crouch);
                    j[knee].flex = -deg(100.0 * a * crouch + 5.0);
                }
                j[SPINE].flex = deg(30.0 * a * crouch);
                let swing = deg(150.0 * a) * window(u, 0.3, 0.78) - deg(30.0 * a * crouch);
                j[R_SHOULDER].flex = swing;
                j[L_SHOULDER].flex = swing;
                j[R_ELBOW].flex = deg(20.0);
                j[L_ELBOW].flex = deg(20.0);
                p.lift_mm = 320.0 * a * flight;
                p.root_xy = [300.0 * self.heading.cos(), 300.0 * self.heading.sin()];
            }
            Action::Squat => {
                let d = bump(t / 3.0 * self.freq + self.phase / TAU);
                for (hip, knee) in [(R_HIP, R_KNEE), (L_HIP, L_KNEE)] {
                    j[hip].flex = deg(95.0 * a * d);
                    j[knee].flex = -deg(115.0 * a * d + 3.0);
                }
                j[SPINE].flex = deg(25.0 * a * d);
                j[R_SHOULDER].flex = deg(80.0 * a * d);
                j[L_SHOULDER].flex = deg(80.0 * a * d);
                j[R_ELBOW].flex = deg(10.0);
                j[L_ELBOW].flex = deg(10.0);
            }
            Action::Wave => {
                let w = TAU * 1.6 * self.freq * t + self.phase;
                j[R_SHOULDER].abd = deg(140.0 * a) + deg(8.0) * (0.3 * w).sin();
                j[R_ELBOW].flex = deg(30.0 + 35.0 * a * w.sin().abs());
                j[R_ELBOW].twist = deg(20.0) * w.sin();
                j[L_ELBOW].flex = deg(10.0);
                j[THORAX].abd = deg(4.0) * (0.5 * w).sin();
                j[NECK].abd = deg(6.0) * (0.25 * w).sin();
                j[R_HIP].flex = deg(4.0) * (0.2 * w).sin();
            }
            Action::Turn => {
                let step = TAU * 1.2 * self.freq * t + self.phase;
                p.yaw = self.heading + deg(70.0) * self.freq * t;
                j[R_HIP].flex = deg(18.0 * a) * step.sin().max(0.0);
                j[L_HIP].flex = deg(18.0 * a) * (-step.sin()).max(0.0);
                j[R_KNEE].flex = -deg(30.0 * a) * step.sin().max(0.0) - deg(4.0);
                j[L_KNEE].flex = -deg(30.0 * a) * (-step.sin()).max(0.0) - deg(4.0);
                j[R_SHOULDER].abd = deg(12.0);
                j[L_SHOULDER].abd = -deg(12.0);
                j[NECK].twist = deg(15.0) * (0.5 * step).sin();
            }
            Action::Box => {
                let u = TAU * 1.25 * self.freq * t + self.phase;
                let left = u.sin().max(0.0);
                let right = (-u.sin()).max(0.0);
                j[L_SHOULDER].flex = deg(45.0 + 45.0 * a * left);
                j[R_SHOULDER].flex = deg(45.0 + 45.0 * a * right);
                j[L_ELBOW].flex = deg(120.0 - 105.0 * a * left);
                j[R_ELBOW].flex = deg(120.0 - 105.0 * a * right);
                j[THORAX].twist = deg(20.0 * a) * u.sin();
                for (hip, knee) in [(R_HIP, R_KNEE), (L_HIP, L_KNEE)] {
                    j[hip].flex = deg(12.0);
                    j[knee].flex = -deg(20.0);
                }
                j[R_HIP].abd = deg(8.0);
                j[L_HIP].abd = -deg(8.0);
            }
            Action::Bend => {
                let d = bump(t / 3.5 * self.freq + self.phase / TAU);
                j[SPINE].flex = deg(70.0 * a * d);
                j[THORAX].flex = deg(20.0 * a * d);
                j[NECK].flex = deg(15.0 * a * d);
                for (hip, knee) in [(R_HIP, R_KNEE), (L_HIP, L_KNEE)] {
                    j[hip].flex = deg(25.0 * a * d);
                    j[knee].flex = -deg(30.0 * a * d + 3.0);
                }
                j[R_SHOULDER].flex = deg(60.0 * a * d);
                j[L_SHOULDER].flex = deg(60.0 * a * d);
            }
        }
        // Arm carriage of the domain, then slow drift on every joint.
        j[L_SHOULDER].abd -= deg(self.style.arm_abduction_deg);
        j[R_SHOULDER].abd += deg(self.style.arm_abduction_deg);
        for (k, [flex, abd]) in self.drift.iter().enumerate() {
            j[k] = JointAngles { flex: j[k].flex + flex.at(t), abd: j[k].abd + abd.at(t), twist: j[k].twist };
        }
        p
    }
}
