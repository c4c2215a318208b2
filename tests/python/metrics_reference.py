"""Pose metrics written the way the reference code bases compute them, to
cross-check dak-core: VideoPose3D common/loss.py (mpjpe, p_mpjpe, n_mpjpe,
mean_velocity_error) and the MPI-INF-3DHP PCK/AUC (14 joints, 0:5:150 mm).

Usage: metrics_reference.py IN.json -> prints JSON metrics.
IN.json: {"pred": [[[x,y,z]*17]*F], "gt": same, "pck_joints": [...]}.
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


def pck_auc(predicted, target, joints):
    dist = np.linalg.norm(predicted[:, joints] - target[:, joints], axis=-1)
    pck = np.mean(dist <= 150.0)
    auc = np.mean([np.mean(dist <= t) for t in np.arange(0, 151, 5)])
    return float(pck), float(auc)


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    pred = np.asarray(data["pred"], dtype=np.float64)
    gt = np.asarray(data["gt"], dtype=np.float64)
    pck, auc = pck_auc(pred, gt, data["pck_joints"])
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
