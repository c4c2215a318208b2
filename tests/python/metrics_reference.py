"""Pose metrics written the way the reference code bases compute them, to
cross-check dak-core: VideoPose3D common/loss.py (mpjpe, p_mpjpe, n_mpjpe,
mean_velocity_error) and the MPI-INF-3DHP PCK/AUC (14 joints, 0:5:150 mm).

Usage: metrics_reference.py IN.json -> prints JSON metrics.
IN.json: {"pred": [[[x,y,z]*17]*F], "gt": same, "to_3dhp": [17 ints]}: our
joint i is 3DHP-17 joint to_3dhp[i]. PCK/AUC reorder the poses into the
3DHP-17 order and take the protocol's joint groups from there.
"""
import json
import sys

import numpy as np


def mpjpe(predicted, target):
    return np.mean(np.linalg.norm(predicted - target, axis=len(target.shape) - 1))


def p_mpjpe(predicted, target):
    muX = np.mean(target, axis=1, keepdims=True)
    muY = np.mean(predicted, axis=1, keepdims=True)
    X0 = target - muX
    Y0 = predicted - muY
    normX = np.sqrt(np.sum(X0 ** 2, axis=(1, 2), keepdims=True))
    normY = np.sqrt(np.sum(Y0 ** 2, axis=(1, 2), keepdims=True))
    X0 /= normX
    Y0 /= normY
    H = np.matmul(X0.transpose(0, 2, 1), Y0)
    U, s, Vt = np.linalg.svd(H)
    V = Vt.transpose(0, 2, 1)
    R = np.matmul(V, U.transpose(0, 2, 1))
    # Avoid improper rotations (reflections).
    sign_detR = np.sign(np.expand_dims(np.linalg.det(R), axis=1))
    V[:, :, -1] *= sign_detR
    s[:, -1] *= sign_detR.flatten()
    R = np.matmul(V, U.transpose(0, 2, 1))
    tr = np.expand_dims(np.sum(s, axis=1, keepdims=True), axis=2)
    a = tr * normX / normY
    t = muX - a * np.matmul(muY, R)
    predicted_aligned = a * np.matmul(predicted, R) + t
    return np.mean(np.linalg.norm(predicted_aligned - target, axis=len(target.shape) - 1))


def n_mpjpe(predicted, target):
    norm_predicted = np.mean(np.sum(predicted ** 2, axis=-1, keepdims=True), axis=-2, keepdims=True)
    norm_target = np.mean(np.sum(target * predicted, axis=-1, keepdims=True), axis=-2, keepdims=True)
    scale = norm_target / norm_predicted
    return mpjpe(scale * predicted, target)


def mean_velocity_error(predicted, target):
    velocity_predicted = np.diff(predicted, axis=0)
    velocity_target = np.diff(target, axis=0)
    return np.mean(np.linalg.norm(velocity_predicted - velocity_target, axis=len(target.shape) - 1))


# mpii_get_pck_auc_joint_groups.m, 1-based 3DHP-17 joints: Head [1] (head
# top), Neck [2], Shou [3,6], Elbow [4,7], Wrist [5,8], Hip [9,12], Knee
# [10,13], Ankle [11,14]; pelvis (15), spine (16) and head (17) are left out.
PCK_GROUPS_3DHP = [[1], [2], [3, 6], [4, 7], [5, 8], [9, 12], [10, 13], [11, 14]]


def pck_auc(predicted, target, to_3dhp):
    # mpii_compute_3d_pck.m: thresh = 0:5:150, pck_thresh = 150, error < t.
    joints = [j - 1 for group in PCK_GROUPS_3DHP for j in group]
    p3, t3 = np.empty_like(predicted), np.empty_like(target)
    p3[:, to_3dhp] = predicted
    t3[:, to_3dhp] = target
    dist = np.linalg.norm(p3[:, joints] - t3[:, joints], axis=-1)
    pck = np.mean(dist < 150.0)
    auc = np.mean([np.mean(dist < t) for t in np.arange(0, 151, 5)])
    return float(pck), float(auc)


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    pred = np.asarray(data["pred"], dtype=np.float64)
    gt = np.asarray(data["gt"], dtype=np.float64)
    pck, auc = pck_auc(pred, gt, data["to_3dhp"])
    print(json.dumps({
        "mpjpe": float(mpjpe(pred, gt)),
        "p_mpjpe": float(p_mpjpe(pred, gt)),
        "n_mpjpe": float(n_mpjpe(pred, gt)),
        "mpjve": float(mean_velocity_error(pred, gt)),
        "pck": pck,
        "auc": auc,
    }))


if __name__ == "__main__":
    main()
