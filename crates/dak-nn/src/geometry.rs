//! Clip geometry on tensors: the tch twins of `dak_core::bones`,
//! `dak_augment::structure` and `Intrinsics::project`. Clips are
//! `(..., 17, 3)` tensors in camera coordinates (mm); pass f64 tensors where
//! the numbers must equal the CPU code's.

use dak_core::skeleton::PARENTS;
use dak_core::{Intrinsics, Pose3, NUM_JOINTS};
use tch::{Device, Kind, Tensor};

/// Bones are named by their child joint 1..=16.
pub const NUM_BONES: usize = NUM_JOINTS - 1;

fn parents() -> [i64; NUM_BONES] {
    std::array::from_fn(|b| PARENTS[b + 1].expect("non-root joints have parents") as i64)
}

/// `joint − parent` for joints 1..=16: `(..., 17, 3)` → `(..., 16, 3)`.
pub fn bone_vectors(x: &Tensor) -> Tensor {
    x.narrow(-2, 1, NUM_BONES as i64) - gather_joints(x, &parents())
}

/// `x[..., indices[k], :]` for every k, along the joint axis (second to
/// last), from views and one concatenation: an index tensor would be a
/// host→device copy, and on a GPU each such copy waits for the device.
pub fn gather_joints(x: &Tensor, indices: &[i64]) -> Tensor {
    // Runs of consecutive indices become one view each.
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &i in indices {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == i => *len += 1,
            _ => runs.push((i, 1)),
        }
    }
    let views: Vec<Tensor> = runs.into_iter().map(|(start, len)| x.narrow(-2, start, len)).collect();
    Tensor::cat(&views, -2)
}

/// Rebuild joints from the root `(..., 3)` and bone vectors `(..., 16, 3)`.
pub fn forward_kinematics(root: &Tensor, bones: &Tensor) -> Tensor {
    let mut joints: Vec<Tensor> = Vec::with_capacity(NUM_JOINTS);
    joints.push(root.shallow_clone());
    let parents = parents();
    for b in 0..NUM_BONES {
        let next = &joints[parents[b] as usize] + bones.select(-2, b as i64);
        joints.push(next);
    }
    Tensor::stack(&joints, -2)
}

/// Euclidean norm over the last axis, kept as a size-1 axis.
pub fn norm_last(x: &Tensor) -> Tensor {
    (x * x).sum_dim_intlist(-1, true, None::<Kind>).sqrt()
}

/// Unit vectors along the last axis (with a floor so zero stays finite).
pub fn normalize(x: &Tensor) -> Tensor {
    x / norm_last(x).clamp_min(1e-9)
}

/// Structure augmentation: bone `b` scaled by `factors[..., b + 1]` (the
/// CPU code's per-joint factors, `(B, 17)`), same root and directions.
/// `x` is `(B, 17, 3)` or `(B, T, 17, 3)`.
pub fn structure_augment(x: &Tensor, factors: &Tensor) -> Tensor {
    let f = factors.narrow(-1, 1, NUM_BONES as i64);
    let shape: Vec<i64> = match x.dim() {
        3 => vec![-1, NUM_BONES as i64, 1],
        4 => vec![-1, 1, NUM_BONES as i64, 1],
        d => panic!("structure_augment takes (B,17,3) or (B,T,17,3), got {d} axes"),
    };
    let bones = bone_vectors(x) * f.view(shape.as_slice()).to_kind(x.kind());
    forward_kinematics(&x.select(-2, 0), &bones)
}

/// Intrinsics as the `(9,)` row `[fx, fy, cx, cy, k1, k2, k3, p1, p2]`.
pub fn intrinsics_row(k: &Intrinsics) -> [f64; 9] {
    [
        k.focal_length_px[0],
        k.focal_length_px[1],
        k.center_px[0],
        k.center_px[1],
        k.radial[0],
        k.radial[1],
        k.radial[2],
        k.tangential[0],
        k.tangential[1],
    ]
}

/// VideoPose3D's `project_to_2d` on tensors: `x` `(B, ..., 3)` in mm,
/// `intrinsics` `(B, 9)` rows of [`intrinsics_row`]; returns pixels `(B, ..., 2)`.
pub fn project(x: &Tensor, intrinsics: &Tensor) -> Tensor {
    let extra = x.dim() - 2;
    let mut shape = vec![intrinsics.size()[0]];
    shape.extend(std::iter::repeat_n(1, extra));
    shape.push(-1);
    let k = intrinsics.to_kind(x.kind()).view(shape.as_slice());
    let col = |i: i64, n: i64| k.narrow(-1, i, n);
    let xy = (x.narrow(-1, 0, 2) / x.narrow(-1, 2, 1)).clamp(-1.0, 1.0);
    let r2 = (&xy * &xy).sum_dim_intlist(-1, true, None::<Kind>);
    let radial = 1.0 + col(4, 1) * &r2 + col(5, 1) * r2.pow_tensor_scalar(2) + col(6, 1) * r2.pow_tensor_scalar(3);
    let p = col(7, 2);
    let tan = (&p * &xy).sum_dim_intlist(-1, true, None::<Kind>);
    let d = &xy * (radial + tan) + p * r2;
    col(0, 2) * d + col(2, 2)
}

/// Clips of equal length to a `(B, T, 17, 3)` f64 tensor.
pub fn clips_to_tensor(clips: &[&[Pose3]], device: Device) -> Tensor {
    let t = clips.first().map_or(0, |c| c.len());
    let mut flat = Vec::with_capacity(clips.len() * t * NUM_JOINTS * 3);
    for clip in clips {
        assert_eq!(clip.len(), t, "clips of one batch share their length");
        for pose in clip.iter() {
            for j in pose {
                flat.extend_from_slice(&[j.x, j.y, j.z]);
            }
        }
    }
    Tensor::from_slice(&flat).view([clips.len() as i64, t as i64, NUM_JOINTS as i64, 3]).to(device)
}

/// A `(B, T, 17, 3)` tensor back to clips (f64 on the CPU).
pub fn tensor_to_clips(x: &Tensor) -> Vec<Vec<Pose3>> {
    let size = x.size();
    let (b, t) = (size[0] as usize, size[1] as usize);
    let flat: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double).to(Device::Cpu).contiguous().view(-1))
        .expect("a double tensor converts to Vec<f64>");
    (0..b)
        .map(|i| {
            (0..t)
                .map(|f| {
                    let base = (i * t + f) * NUM_JOINTS * 3;
                    std::array::from_fn(|j| {
                        let o = base + 3 * j;
                        nalgebra::Vector3::new(flat[o], flat[o + 1], flat[o + 2])
                    })
                })
                .collect()
        })
        .collect()
}

/// Rotate vectors `v` `(..., 3)` by axis-angle vectors `w` (broadcastable):
/// Rodrigues' formula, finite at w = 0.
pub fn rotate(w: &Tensor, v: &Tensor) -> Tensor {
    let theta = ((w * w).sum_dim_intlist(-1, true, None::<Kind>) + 1e-12).sqrt();
    let k = w / &theta;
    let k_b = k.expand_as(v);
    let cross = k_b.cross(v, -1);
    let dot = (&k_b * v).sum_dim_intlist(-1, true, None::<Kind>);
    v * theta.cos() + cross * theta.sin() + k_b * dot * (1.0 - theta.cos())
}

/// Unit vectors `a` `(..., 3)` turned toward unit vectors `b` by the
/// fraction `t` (broadcastable, trailing axis 1) of the angle between them,
/// about their common normal: spherical interpolation, at constant angular
/// speed. Opposite vectors have no common normal; they turn about an axis
/// perpendicular to `a`. Finite, and with finite gradients, everywhere.
pub fn slerp(a: &Tensor, b: &Tensor, t: &Tensor) -> Tensor {
    let normal = a.cross(b, -1);
    let sin = ((&normal * &normal).sum_dim_intlist(-1, true, None::<Kind>) + 1e-12).sqrt();
    let cos = (a * b).sum_dim_intlist(-1, true, None::<Kind>);
    // a × (the coordinate axis a leans on least) is far from zero.
    let least = Tensor::zeros_like(a).scatter_value(-1, &a.abs().argmin(-1, true), 1.0);
    let opposite = sin.lt(1e-3).logical_and(&cos.lt(0.0));
    let axis = normalize(&a.cross(&least, -1)).where_self(&opposite, &(normal / &sin));
    let turn = axis * sin.atan2(&cos) * t;
    rotate(&turn, &a.expand_as(&turn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dak_augment::projection::project_clip;
    use dak_augment::StructureConfig;
    use nalgebra::Vector3;
    use rand::{Rng, SeedableRng};

    fn clips(n: usize, t: usize, seed: u64) -> Vec<Vec<Pose3>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                (0..t)
                    .map(|_| {
                        std::array::from_fn(|_| {
                            Vector3::new(
                                rng.random_range(-900.0..900.0),
                                rng.random_range(-900.0..900.0),
                                rng.random_range(3000.0..6000.0),
                            )
                        })
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn gathered_joints_equal_an_index_select() {
        let x = Tensor::randn([2, 3, NUM_JOINTS as i64, 3], (Kind::Double, Device::Cpu));
        for indices in [parents().to_vec(), vec![0, 4, 5, 6, 1, 2, 3], vec![16, 16, 0], vec![3]] {
            let want = x.index_select(-2, &Tensor::from_slice(&indices));
            assert!(gather_joints(&x, &indices).equal(&want), "{indices:?}");
        }
        let children = Tensor::arange_start(1, NUM_JOINTS as i64, (Kind::Int64, Device::Cpu));
        let want = x.index_select(-2, &children) - x.index_select(-2, &Tensor::from_slice(&parents()));
        assert!(bone_vectors(&x).equal(&want));
    }

    #[test]
    fn structure_augmentation_matches_the_cpu_version() {
        let data = clips(6, 5, 1);
        let config = StructureConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let samples: Vec<_> = (0..data.len()).map(|_| config.sample(&mut rng)).collect();
        let factors: Vec<f64> = samples.iter().flat_map(|s| s.bone_factors()).collect();
        let f = Tensor::from_slice(&factors).view([data.len() as i64, NUM_JOINTS as i64]);
        let refs: Vec<&[Pose3]> = data.iter().map(|c| &c[..]).collect();
        let out = tensor_to_clips(&structure_augment(&clips_to_tensor(&refs, Device::Cpu), &f));
        for ((clip, sample), got) in data.iter().zip(&samples).zip(&out) {
            let want = sample.apply_clip(clip);
            for (w, g) in want.iter().zip(got) {
                for j in 0..NUM_JOINTS {
                    assert!((w[j] - g[j]).norm() < 1e-9, "joint {j}: {:?} vs {:?}", w[j], g[j]);
                }
            }
        }
        // A single frame batch `(B, 17, 3)` works the same.
        let frames = clips_to_tensor(&refs, Device::Cpu).select(1, 0);
        let single = structure_augment(&frames, &f);
        let want = samples[3].apply(&data[3][0]);
        let got: Vec<f64> = Vec::try_from(single.get(3).view(-1)).unwrap();
        for j in 0..NUM_JOINTS {
            assert!((want[j].x - got[3 * j]).abs() < 1e-9);
        }
    }

    #[test]
    fn projection_matches_the_geometry_core() {
        let data = clips(4, 3, 7);
        let ks: Vec<Intrinsics> = (0..4)
            .map(|i| Intrinsics {
                focal_length_px: [1145.0 + i as f64, 1144.0],
                center_px: [512.5, 515.4 - i as f64],
                radial: [-0.207, 0.247, -0.003],
                tangential: [-0.0009 * i as f64, -0.0014],
                width_px: 1000,
                height_px: 1002,
            })
            .collect();
        let rows: Vec<f64> = ks.iter().flat_map(intrinsics_row).collect();
        let refs: Vec<&[Pose3]> = data.iter().map(|c| &c[..]).collect();
        let px = project(&clips_to_tensor(&refs, Device::Cpu), &Tensor::from_slice(&rows).view([4, 9]));
        assert_eq!(px.size(), vec![4, 3, 17, 2]);
        let got: Vec<f64> = Vec::try_from(px.contiguous().view(-1)).unwrap();
        let mut worst = 0.0f64;
        for (i, (clip, k)) in data.iter().zip(&ks).enumerate() {
            for (f, pose) in clip.iter().enumerate() {
                for (j, p) in pose.iter().enumerate() {
                    let want = k.project(p);
                    let o = ((i * 3 + f) * NUM_JOINTS + j) * 2;
                    worst = worst.max((got[o] - want.x).abs()).max((got[o + 1] - want.y).abs());
                }
            }
            // And the f32 shard path of dak-augment rounds the same numbers.
            let cpu = project_clip(k, clip);
            let o = i * 3 * NUM_JOINTS * 2;
            assert!((f64::from(cpu[0]) - got[o]).abs() < 1e-3);
        }
        assert!(worst < 1e-9, "largest difference {worst} px");
    }

    #[test]
    fn rotation_is_rodrigues() {
        let v = Tensor::from_slice(&[1.0f64, 0.0, 0.0]).view([1, 3]);
        let w = Tensor::from_slice(&[0.0f64, 0.0, std::f64::consts::FRAC_PI_2]).view([1, 3]);
        let r: Vec<f64> = Vec::try_from(rotate(&w, &v).view(-1)).unwrap();
        assert!((r[0]).abs() < 1e-9 && (r[1] - 1.0).abs() < 1e-9 && r[2].abs() < 1e-9);
        let zero = Tensor::zeros([1, 3], (Kind::Double, Device::Cpu));
        let same: Vec<f64> = Vec::try_from(rotate(&zero, &v).view(-1)).unwrap();
        assert!((same[0] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn fk_inverts_bone_vectors() {
        let data = clips(2, 2, 3);
        let refs: Vec<&[Pose3]> = data.iter().map(|c| &c[..]).collect();
        let x = clips_to_tensor(&refs, Device::Cpu);
        let back = forward_kinematics(&x.select(-2, 0), &bone_vectors(&x));
        assert!(f64::try_from((back - &x).abs().max()).unwrap() < 1e-9);
    }

    /// Slerp turns at constant speed, ends on b, and stays finite (values
    /// and gradients) for equal and for opposite directions.
    #[test]
    fn slerp_turns_at_constant_speed_even_between_opposite_directions() {
        let opts = (Kind::Double, tch::Device::Cpu);
        let a = Tensor::from_slice(&[1.0, 0.0, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0, 1.0]).view([3, 3]);
        let b = Tensor::from_slice(&[0.0, 1.0, 0.0, 0.0, -0.6, -0.8, 0.0, 0.0, 1.0]).view([3, 3]);
        let (a, b) = (a.unsqueeze(0).set_requires_grad(true), b.unsqueeze(0).set_requires_grad(true));
        let t = Tensor::linspace(0.0, 1.0, 5, opts).view([5, 1, 1]);
        let s = slerp(&a, &b, &t);
        let a_t = a.expand_as(&s);
        let cos = (&s * &a_t).sum_dim_intlist(-1, false, None::<Kind>);
        let angle = norm_last(&s.cross(&a_t, -1)).squeeze_dim(-1).atan2(&cos);
        let angle_from_a = Vec::<f64>::try_from(angle.flatten(0, -1)).unwrap();
        let right = [0.0, 0.25, 0.5, 0.75, 1.0].map(|t| t * std::f64::consts::FRAC_PI_2);
        let half_turn = [0.0, 0.25, 0.5, 0.75, 1.0].map(|t| t * std::f64::consts::PI);
        for k in 0..5 {
            assert!((angle_from_a[3 * k] - right[k]).abs() < 1e-6, "{angle_from_a:?}");
            assert!((angle_from_a[3 * k + 1] - half_turn[k]).abs() < 1e-5, "{angle_from_a:?}");
            assert!(angle_from_a[3 * k + 2].abs() < 1e-9, "equal vectors stay put: {angle_from_a:?}");
        }
        let norms = norm_last(&s);
        assert!(f64::try_from((norms - 1.0).abs().max()).unwrap() < 1e-9, "unit length throughout");
        assert!(f64::try_from((s.get(4) - b.get(0)).abs().max()).unwrap() < 1e-5, "ends on b");
        s.sum(Kind::Double).backward();
        for g in [a.grad(), b.grad()] {
            assert!(bool::try_from(g.isfinite().all()).unwrap(), "{g}");
        }
    }
}
