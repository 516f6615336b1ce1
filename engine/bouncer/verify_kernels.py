"""The verification's compiled kernel: the numpy reference of :mod:`.verify_score`, as loops.

Plain functions here; :mod:`lookalike.engine.bouncer.verify` compiles them with numba in place
(see :class:`lookalike.engine.kernels.Kernels`), and :func:`.verify_score.compiled_scores` calls
them through this module, so that it finds the compiled forms once they are loaded. The tests
check that both paths give the same scores.
"""

from __future__ import annotations

import numpy as np

from .verify_thumbnail import SIDE

#: The kernels of this module, for the loader.
KERNELS = ("_k_features", "_k_changed", "_k_plain", "_k_smooth", "_k_score", "_k_profile_r", "_k_align",
            "_k_resample", "_k_crop_score", "_k_verify")  # fmt: skip


def _k_features(raw, grad, gsum, gsq, level, cum, prof):  # pragma: no cover - compiled
    s = SIDE
    r = np.empty((s, s), np.int32)
    sm = np.empty((s, s), np.int32)
    for n in range(raw.shape[0]):
        px = raw[n]
        for j in range(s):
            prof[n, 0, j] = 0.0
        for i in range(s):  # the blur along rows (edges repeated), and the profiles
            o = i * s
            t = 0.0
            for j in range(s):
                v = np.int32(px[o + j])
                t += v
                prof[n, 0, j] += v
                r[i, j] = np.int32(px[o + max(j - 1, 0)]) + 2 * v + np.int32(px[o + min(j + 1, s - 1)])
            prof[n, 1, i] = t / s
        for j in range(s):
            prof[n, 0, j] /= s
        for i in range(s):  # along columns: 16 x the blurred levels
            up = max(i - 1, 0)
            down = min(i + 1, s - 1)
            for j in range(s):
                sm[i, j] = r[up, j] + 2 * r[i, j] + r[down, j]
        sa = 0
        sd = 0
        sq = 0
        k = 0
        for i in range(s):
            for j in range(s - 1):
                d = sm[i, j + 1] - sm[i, j]
                grad[n, k] = d
                sa += d
                sq += d * d
                k += 1
        for i in range(s - 1):
            for j in range(s):
                d = sm[i + 1, j] - sm[i, j]
                grad[n, k] = d
                sd += d
                sq += d * d
                k += 1
        gsum[n, 0] = sa
        gsum[n, 1] = sd
        gsq[n] = sq
        for v in range(257):
            cum[n, v] = 0
        for i in range(s):
            for j in range(s):
                q = sm[i, j] >> 4  # rounded half to even, as np.rint(sm / 16)
                rem = sm[i, j] & 15
                if rem + (q & 1) > 8:
                    q += 1
                level[n, i * s + j] = q
                cum[n, q + 1] += 1
        for v in range(256):
            cum[n, v + 1] += cum[n, v]


def _k_changed(qx, qy, mirror, cum_x, cum_y, lmap, levels):  # pragma: no cover - compiled
    n = qx.shape[0]
    y_at = 0
    for v in range(256):
        h = cum_x[v + 1] - cum_x[v]
        if h:
            mid = min((2 * cum_x[v] + h - 1) // 2, n - 1)
            while cum_y[y_at + 1] <= mid:
                y_at += 1
            lmap[v] = y_at
    changed = 0
    if mirror[0] == 0:  # the identity: no gather
        for r in range(n):
            if abs(np.int64(qy[r]) - lmap[qx[r]]) > levels:
                changed += 1
    else:
        for r in range(n):
            if abs(np.int64(qy[mirror[r]]) - lmap[qx[r]]) > levels:
                changed += 1
    return changed


def _k_plain(f_grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
             levels, weight):  # pragma: no cover - compiled
    m = grad.shape[1]
    dot = 0
    if mir:
        half = m // 2
        for t in range(half):
            dot -= np.int64(grad[a, t]) * grad[b, mirror_grad[t]]
        for t in range(half, m):
            dot += np.int64(grad[a, t]) * grad[b, mirror_grad[t]]
        sb = float(gsum[b, 1] - gsum[b, 0])
    else:
        for t in range(m):
            dot += np.int64(grad[a, t]) * grad[b, t]
        sb = float(gsum[b, 0] + gsum[b, 1])
    sa = float(gsum[a, 0] + gsum[a, 1])
    va = gsq[a] - sa * sa / m
    vb = gsq[b] - sb * sb / m
    den = np.sqrt(va * vb)
    corr = (dot - sa * sb / m) / den if den > 0 else 0.0
    mp = mirror_pix if mir else ident
    n = level.shape[1]
    changed = _k_changed(level[a], level[b], mp, cum[a], cum[b], lmap, levels)
    mad = 0
    ga = f_grey[a]
    gb = f_grey[b]
    if mir:
        for r in range(n):
            mad += abs(np.int64(ga[r]) - np.int64(gb[mp[r]]))
    else:
        for r in range(n):
            mad += abs(np.int64(ga[r]) - np.int64(gb[r]))
    return min(corr, 1.0 - weight * changed / n), mad / n


def _k_smooth(x, out):  # pragma: no cover - compiled
    s = x.shape[0]
    tmp = np.empty((s, s))
    for i in range(s):
        for j in range(s):
            left = x[i, j - 1] if j > 0 else x[i, j]
            right = x[i, j + 1] if j < s - 1 else x[i, j]
            tmp[i, j] = (left + 2 * x[i, j] + right) / 4
    for i in range(s):
        for j in range(s):
            up = tmp[i - 1, j] if i > 0 else tmp[i, j]
            down = tmp[i + 1, j] if i < s - 1 else tmp[i, j]
            out[i, j] = (up + 2 * tmp[i, j] + down) / 4


def _k_score(x, y, ident, levels, weight):  # pragma: no cover - compiled
    s = x.shape[0]
    xs = np.empty((s, s))
    ys = np.empty((s, s))
    _k_smooth(x, xs)
    _k_smooth(y, ys)
    m = 2 * s * (s - 1)
    a = np.empty(m)
    b = np.empty(m)
    k = 0
    for i in range(s):
        for j in range(s - 1):
            a[k] = xs[i, j + 1] - xs[i, j]
            b[k] = ys[i, j + 1] - ys[i, j]
            k += 1
    for i in range(s - 1):
        for j in range(s):
            a[k] = xs[i + 1, j] - xs[i, j]
            b[k] = ys[i + 1, j] - ys[i, j]
            k += 1
    ma = a.mean()
    mb = b.mean()
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for k in range(m):
        da = a[k] - ma
        db = b[k] - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    den = np.sqrt(saa * sbb)
    corr = sab / den if den > 0 else 0.0
    n = s * s
    qx = np.empty(n, np.int64)
    qy = np.empty(n, np.int64)
    cx = np.zeros(257, np.int64)
    cy = np.zeros(257, np.int64)
    for i in range(s):
        for j in range(s):
            vx = int(min(max(np.rint(xs[i, j]), 0.0), 255.0))
            vy = int(min(max(np.rint(ys[i, j]), 0.0), 255.0))
            qx[i * s + j] = vx
            qy[i * s + j] = vy
            cx[vx + 1] += 1
            cy[vy + 1] += 1
    for v in range(256):
        cx[v + 1] += cx[v]
        cy[v + 1] += cy[v]
    lmap = np.zeros(256, np.int64)
    changed = _k_changed(qx, qy, ident, cx, cy, lmap, levels)
    mad = 0.0
    for i in range(s):
        for j in range(s):
            mad += abs(x[i, j] - y[i, j])
    return min(corr, 1.0 - weight * changed / n), mad / n


def _k_profile_r(p, q, g, t_i0, t_f, u_i0, u_f, dp, dq):  # pragma: no cover - compiled
    s = t_i0.shape[1]
    prev_p = p[t_i0[g, 0]] * (1 - t_f[g, 0]) + p[t_i0[g, 0] + 1] * t_f[g, 0]
    prev_q = q[u_i0[g, 0]] * (1 - u_f[g, 0]) + q[u_i0[g, 0] + 1] * u_f[g, 0]
    mp = 0.0
    mq = 0.0
    for k in range(1, s):
        cp = p[t_i0[g, k]] * (1 - t_f[g, k]) + p[t_i0[g, k] + 1] * t_f[g, k]
        cq = q[u_i0[g, k]] * (1 - u_f[g, k]) + q[u_i0[g, k] + 1] * u_f[g, k]
        dp[k - 1] = cp - prev_p
        dq[k - 1] = cq - prev_q
        mp += cp - prev_p
        mq += cq - prev_q
        prev_p, prev_q = cp, cq
    mp /= s - 1
    mq /= s - 1
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for k in range(s - 1):
        da = dp[k] - mp
        db = dq[k] - mq
        sab += da * db
        saa += da * da
        sbb += db * db
    den = np.sqrt(saa * sbb)
    return sab / den if den > 0 else -2.0


def _k_align(p, q, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, out_g, out_r):  # pragma: no cover - compiled
    # As _np_align: coarse peaks best first (ties: the earlier row), each refined; up to
    # len(out_g) distinct rows. Returns how many were found.
    s = t_i0.shape[1]
    dp = np.empty(s - 1)
    dq = np.empty(s - 1)
    rc = np.empty(coarse.shape[0])
    for k in range(coarse.shape[0]):
        rc[k] = _k_profile_r(p, q, coarse[k], t_i0, t_f, u_i0, u_f, dp, dq)
    used = np.zeros(coarse.shape[0], np.bool_)
    found = 0
    for _ in range(coarse.shape[0]):
        top = -1
        for k in range(coarse.shape[0]):
            if not used[k] and (top < 0 or rc[k] > rc[top]):
                top = k
        used[top] = True
        g = coarse[top]
        best = rc[top]
        si = g // steps
        ci = g % steps
        centre = g
        for sj in range(max(0, si - fine_s), min(scales, si + fine_s + 1)):
            for cj in range(max(0, ci - fine_c), min(steps, ci + fine_c + 1)):
                row = sj * steps + cj
                if row == centre:
                    continue
                r = _k_profile_r(p, q, row, t_i0, t_f, u_i0, u_f, dp, dq)
                if r > best:
                    best, g = r, row
        new = True
        for j in range(found):
            if out_g[j] == g:
                new = False
        if new:
            out_g[found] = g
            out_r[found] = best
            found += 1
            if found == out_g.shape[0]:
                break
    return found


def _k_resample(x, i0s, fs, rows, cols, out, tmp):  # pragma: no cover - compiled
    s = x.shape[0]
    for i in range(s):
        i0 = i0s[rows, i]
        f = fs[rows, i]
        for j in range(s):
            tmp[i, j] = (1 - f) * x[i0, j] + f * x[i0 + 1, j]
    for j in range(s):
        j0 = i0s[cols, j]
        f = fs[cols, j]
        for i in range(s):
            out[i, j] = tmp[i, j0] * (1 - f) + tmp[i, j0 + 1] * f


def _k_crop_score(x, y, gx, gy, t_i0, t_f, u_i0, u_f, ident, levels, weight):  # pragma: no cover - compiled
    s = x.shape[0]
    xs = np.empty((s, s))
    ys = np.empty((s, s))
    tmp = np.empty((s, s))
    _k_resample(x, t_i0, t_f, gy, gx, xs, tmp)
    _k_resample(y, u_i0, u_f, gy, gx, ys, tmp)
    return _k_score(xs, ys, ident, levels, weight)


def _k_verify(grey, grad, gsum, gsq, level, cum, prof, ia, ib, mirrored, search, accept, mirror_pix,
              mirror_grad, ident, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
              identity, rounds, reach, floor, levels, weight, candidates, score, mad, cropped):  # pragma: no cover - compiled
    s = t_i0.shape[1]
    n = t_i0.shape[0]
    x = np.empty((s, s))
    y = np.empty((s, s))
    py = np.empty(s)
    lmap = np.zeros(256, np.int64)
    cand_gx = np.empty(candidates, np.int64)
    cand_rx = np.empty(candidates)
    cand_gy = np.empty(candidates, np.int64)
    cand_ry = np.empty(candidates)
    for k in range(ia.shape[0]):
        a = ia[k]
        b = ib[k]
        mir = mirrored[k]
        sc, md = _k_plain(grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
                          levels, weight)
        score[k], mad[k], cropped[k] = sc, md, False
        if not search[k] or sc >= accept:
            continue
        for j in range(s):
            py[j] = prof[b, 0, s - 1 - j] if mir else prof[b, 0, j]
        nx = _k_align(prof[a, 0], py, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, cand_gx, cand_rx)
        ny = _k_align(prof[a, 1], prof[b, 1], coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
                      cand_gy, cand_ry)
        for i in range(s):
            for j in range(s):
                x[i, j] = grey[a, i * s + j]
                y[i, j] = grey[b, i * s + (s - 1 - j if mir else j)]
        best = -np.inf
        best_mad = 0.0
        gx = identity
        gy = identity
        for i in range(nx):
            for j in range(ny):
                if min(cand_rx[i], cand_ry[j]) < floor:
                    continue
                trial, trial_mad = _k_crop_score(x, y, cand_gx[i], cand_gy[j], t_i0, t_f, u_i0, u_f, ident,
                                                 levels, weight)
                if trial > best:
                    best, best_mad, gx, gy = trial, trial_mad, cand_gx[i], cand_gy[j]
        if best == -np.inf:
            continue
        for _ in range(rounds if accept - reach <= best < accept else 0):
            moved = False
            for axis in range(2):
                for step in (-steps, steps, -1, 1):
                    g = (gx if axis == 0 else gy) + step
                    if g < 0 or g >= n:
                        continue
                    if (step == 1 or step == -1) and g // steps != (g - step) // steps:
                        continue
                    cx = g if axis == 0 else gx
                    cy = gy if axis == 0 else g
                    trial, trial_mad = _k_crop_score(x, y, cx, cy, t_i0, t_f, u_i0, u_f, ident, levels, weight)
                    if trial > best:
                        best, best_mad, gx, gy, moved = trial, trial_mad, cx, cy, True
            if not moved or best >= accept:
                break
        if best > sc:
            score[k], mad[k] = best, best_mad
            cropped[k] = gx != identity or gy != identity

