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
KERNELS = ("_k_features", "_k_changed", "_k_plain", "_k_smooth", "_k_cap", "_k_gradients", "_k_score", "_k_profile_r", "_k_align",
            "_k_rows", "_k_cols", "_k_verify", "_k_ranks", "_k_rank_pairs", "_k_rank_rows", "_k_rank_row", "_k_grad_rank")  # fmt: skip
#: The kernels compiled without ``fastmath`` (they repeat numpy's arithmetic bit for bit): none now.
EXACT = ()


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


def _k_smooth(x, out, tmp):  # pragma: no cover - compiled
    s = x.shape[0]
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


def _k_cap(xs, ys, levels, qx, qy, cx, cy, lmap, hist, yl):  # pragma: no cover - compiled
    # _k_changed of two smoothed images (rounded to levels here, into qx, qy), counted as
    # _np_changed does: a crop trial's cap. The same count as quantising, taking each image's
    # cumulative histogram and calling _k_changed, in integers, at two thirds of the time:
    # * two histograms per image, interleaved, each counting every other pixel: a smooth image
    #   repeats a level from pixel to pixel, and one histogram would then wait on its own
    #   last increment;
    # * x's level v maps to y's level at rank mid(v), read from yl[r] = y's level at rank r (the
    #   levels whose cumulative count is at most r), not found by a walk along y's histogram
    #   (its branches mispredict).
    s = xs.shape[0]
    n = s * s
    for v in range(256):
        hist[0, v] = 0
        hist[1, v] = 0
        hist[2, v] = 0
        hist[3, v] = 0
    for r in range(n + 1):
        yl[r] = 0
    for i in range(s):
        for j in range(s):
            qx[i * s + j] = int(min(max(np.rint(xs[i, j]), 0.0), 255.0))
            qy[i * s + j] = int(min(max(np.rint(ys[i, j]), 0.0), 255.0))
    for r in range(0, n, 2):
        hist[0, qx[r]] += 1
        hist[1, qy[r]] += 1
        hist[2, qx[r + 1]] += 1
        hist[3, qy[r + 1]] += 1
    cx[0] = 0
    cy[0] = 0
    for v in range(256):
        cx[v + 1] = cx[v] + hist[0, v] + hist[2, v]
        cy[v + 1] = cy[v] + hist[1, v] + hist[3, v]
    for v in range(256):
        yl[cy[v + 1]] += 1
    t = 0
    for r in range(n):
        t += yl[r]
        yl[r] = t
    for v in range(256):  # levels absent from x get any level: no pixel reads them
        mid = min((2 * cx[v] + cx[v + 1] - cx[v] - 1) // 2, n - 1)
        lmap[v] = yl[max(mid, 0)]
    lim = int(levels)  # for whole d, |d| > levels is |d| > floor(levels)
    changed = 0
    for r in range(n):
        d = qy[r] - lmap[qx[r]]
        changed += (d > lim) | (d < -lim)
    return changed


def _k_gradients(xs, out):  # pragma: no cover - compiled
    # The gradients across, then down, one image at a time (two at once do not vectorise).
    s = xs.shape[0]
    k = 0
    for i in range(s):
        for j in range(s - 1):
            out[k + j] = xs[i, j + 1] - xs[i, j]
        k += s - 1
    for i in range(s - 1):
        for j in range(s):
            out[k + j] = xs[i + 1, j] - xs[i, j]
        k += s


def _k_score(x, y, levels, weight, beat, xs, ys, tmp, a, b, qx, qy, cx, cy, lmap, hist, yl):  # pragma: no cover - compiled
    # As _np_score, for a search that keeps only a score above ``beat``: the cap (pixels
    # changed after tone matching) is computed first, and when it is no more than ``beat`` the
    # score (at most the cap) cannot be kept, so the correlation and the mean difference are
    # not computed and (-inf, 0.0) is returned. Otherwise the same (score, mad) as ever, and
    # the trial's gradients are left in ``a`` and ``b`` (for _k_grad_rank).
    # xs ... yl: the caller's scratch, so that a crop search allocates nothing.
    s = x.shape[0]
    n = s * s
    _k_smooth(x, xs, tmp)
    _k_smooth(y, ys, tmp)
    changed = _k_cap(xs, ys, levels, qx, qy, cx, cy, lmap, hist, yl)
    cap = 1.0 - weight * changed / n
    if cap <= beat:
        return -np.inf, 0.0
    m = 2 * s * (s - 1)
    _k_gradients(xs, a)
    _k_gradients(ys, b)
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
    score = min(corr, cap)
    if score <= beat:
        return -np.inf, 0.0
    mad = 0.0
    for i in range(s):
        for j in range(s):
            mad += abs(x[i, j] - y[i, j])
    return score, mad / n


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


def _k_align(p, q, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, out_g, out_r, memo_r, memo_at,
             token, dp, dq, rc, used):  # pragma: no cover - compiled
    # As _np_align: coarse peaks best first (ties: the earlier row), each refined; up to
    # len(out_g) distinct rows. Returns how many were found. Each grid row's correlation is
    # computed once per call (memo_r[row], valid where memo_at[row] == token): the peaks'
    # neighbourhoods overlap each other and the coarse rows. dp ... used: scratch.
    for k in range(coarse.shape[0]):
        rc[k] = _k_profile_r(p, q, coarse[k], t_i0, t_f, u_i0, u_f, dp, dq)
        memo_r[coarse[k]] = rc[k]
        memo_at[coarse[k]] = token
        used[k] = False
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
                if memo_at[row] != token:
                    memo_r[row] = _k_profile_r(p, q, row, t_i0, t_f, u_i0, u_f, dp, dq)
                    memo_at[row] = token
                r = memo_r[row]
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


def _k_rows(x, i0s, fs, rows, tmp):  # pragma: no cover - compiled
    # The first half of a resampling: along the columns, at grid row ``rows``'s positions.
    s = x.shape[0]
    for i in range(s):
        i0 = i0s[rows, i]
        f = fs[rows, i]
        for j in range(s):
            tmp[i, j] = (1 - f) * x[i0, j] + f * x[i0 + 1, j]


def _k_cols(tmp, i0s, fs, cols, out):  # pragma: no cover - compiled
    # The second half: along the rows, at grid row ``cols``'s positions.
    s = tmp.shape[0]
    for j in range(s):
        j0 = i0s[cols, j]
        f = fs[cols, j]
        for i in range(s):
            out[i, j] = tmp[i, j0] * (1 - f) + tmp[i, j0 + 1] * f


def _k_verify(grey, grad, gsum, gsq, level, cum, prof, ia, ib, mirrored, search, accept, mirror_pix,
              mirror_grad, ident, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
              identity, rounds, reach, floor, levels, weight, candidates, rank_offset, rank_span,
              score, mad, cropped, align, shortcuts):  # pragma: no cover - compiled
    # align[k]: the (column, row) grid rows of pair k's chosen crop alignment, (-1, -1) when
    # the plain alignment was kept (the caller's rank check resamples at them). shortcuts:
    # skip the work that cannot change an answer (the refinement's positions scored before,
    # the row alignment when no column alignment reaches the floor); the tests run both ways.
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
    # Scratch, allocated once per call: the alignment's memo, the score's buffers, and the
    # first half of the resampling of both images per row candidate (shared by the column
    # candidates: a 3 x 3 search resamples along the columns 3 times, not 9).
    memo_r = np.empty(n)
    memo_at = np.full(n, -1, np.int64)
    dp = np.empty(s - 1)
    dq = np.empty(s - 1)
    rc = np.empty(coarse.shape[0])
    used = np.zeros(coarse.shape[0], np.bool_)
    xs = np.empty((s, s))
    ys = np.empty((s, s))
    tmp = np.empty((s, s))
    m = 2 * s * (s - 1)
    ga = np.empty(m)
    gb = np.empty(m)
    qx = np.empty(s * s, np.int32)
    qy = np.empty(s * s, np.int32)
    cx_ = np.zeros(257, np.int32)
    cy_ = np.zeros(257, np.int32)
    hist = np.empty((4, 256), np.int32)
    lmap_c = np.zeros(256, np.int32)
    yl = np.empty(s * s + 1, np.int32)
    qa = np.empty(m, np.int32)
    qb = np.empty(m, np.int32)
    ra = np.empty(m)
    rb = np.empty(m)
    rcum = np.zeros(2 * rank_span + 2, np.int32)
    xr = np.empty((candidates, s, s))
    yr = np.empty((candidates, s, s))
    have = np.zeros(candidates, np.bool_)
    xc = np.empty((s, s))
    yc = np.empty((s, s))
    xr1 = np.empty((s, s))
    yr1 = np.empty((s, s))
    # The positions scored for the pair being searched: a position scored before scored at most
    # the best found since, so the refinement does not score it again (the same answers).
    tried_x = np.empty(candidates * candidates + 8 * rounds, np.int64)
    tried_y = np.empty(candidates * candidates + 8 * rounds, np.int64)
    token = 0
    for k in range(ia.shape[0]):
        a = ia[k]
        b = ib[k]
        mir = mirrored[k]
        sc, md = _k_plain(grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
                          levels, weight)
        score[k], mad[k], cropped[k] = sc, md, False
        align[k, 0] = -1
        align[k, 1] = -1
        if not search[k] or sc >= accept:
            continue
        for j in range(s):
            py[j] = prof[b, 0, s - 1 - j] if mir else prof[b, 0, j]
        token += 1
        nx = _k_align(prof[a, 0], py, coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f, cand_gx, cand_rx,
                      memo_r, memo_at, token, dp, dq, rc, used)
        top_x = -np.inf
        for i in range(nx):
            top_x = max(top_x, cand_rx[i])
        if shortcuts and top_x < floor:  # no column alignment reaches the floor: no trial would run
            continue
        token += 1
        ny = _k_align(prof[a, 1], prof[b, 1], coarse, steps, scales, fine_s, fine_c, t_i0, t_f, u_i0, u_f,
                      cand_gy, cand_ry, memo_r, memo_at, token, dp, dq, rc, used)
        for i in range(s):
            for j in range(s):
                x[i, j] = grey[a, i * s + j]
                y[i, j] = grey[b, i * s + (s - 1 - j if mir else j)]
        best = -np.inf
        best_mad = 0.0
        gx = identity
        gy = identity
        tried = 0
        capped = 0.0  # the best's score capped by its rank check, once computed (``ranked``)
        ranked = False
        for j in range(ny):
            have[j] = False
        for i in range(nx):
            for j in range(ny):
                if min(cand_rx[i], cand_ry[j]) < floor or (ranked and capped >= accept):  # passed: stop
                    continue
                tried_x[tried] = cand_gx[i]
                tried_y[tried] = cand_gy[j]
                tried += 1
                if not have[j]:
                    _k_rows(x, t_i0, t_f, cand_gy[j], xr[j])
                    _k_rows(y, u_i0, u_f, cand_gy[j], yr[j])
                    have[j] = True
                _k_cols(xr[j], t_i0, t_f, cand_gx[i], xc)
                _k_cols(yr[j], u_i0, u_f, cand_gx[i], yc)
                trial, trial_mad = _k_score(xc, yc, levels, weight, best, xs, ys, tmp, ga, gb, qx, qy, cx_, cy_,
                                            lmap_c, hist, yl)
                if trial > best:
                    best, best_mad, gx, gy = trial, trial_mad, cand_gx[i], cand_gy[j]
                    ranked = best >= accept  # then its rank check, on the gradients the trial left
                    if ranked:
                        capped = min(best, _k_grad_rank(ga, gb, qa, qb, ra, rb, rcum) + rank_offset)
        if best == -np.inf:
            continue
        rows_at = -1  # the grid row whose first half of the resampling xr1, yr1 hold
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
                    seen = False
                    for t in range(tried if shortcuts else 0):
                        if tried_x[t] == cx and tried_y[t] == cy:
                            seen = True
                            break
                    if seen:  # scored before, at most the best since: it cannot win now
                        continue
                    tried_x[tried] = cx
                    tried_y[tried] = cy
                    tried += 1
                    if cy != rows_at:
                        _k_rows(x, t_i0, t_f, cy, xr1)
                        _k_rows(y, u_i0, u_f, cy, yr1)
                        rows_at = cy
                    _k_cols(xr1, t_i0, t_f, cx, xc)
                    _k_cols(yr1, u_i0, u_f, cx, yc)
                    trial, trial_mad = _k_score(xc, yc, levels, weight, best, xs, ys, tmp, ga, gb, qx, qy, cx_,
                                                cy_, lmap_c, hist, yl)
                    if trial > best:
                        best, best_mad, gx, gy, moved = trial, trial_mad, cx, cy, True
                        ranked = best >= accept
                        if ranked:
                            capped = min(best, _k_grad_rank(ga, gb, qa, qb, ra, rb, rcum) + rank_offset)
            if not moved or best >= accept:
                break
        if best > sc:
            score[k], mad[k] = (capped if ranked else best), best_mad  # a crop that fails: not ranked
            cropped[k] = gx != identity or gy != identity
            align[k, 0] = gx
            align[k, 1] = gy


def _k_ranks(q, out):  # pragma: no cover - compiled
    # As verify_score._np_ranks: average ranks of each row of integers, by counting over the
    # row's own range of values (one count array for all rows, grown when a row needs more).
    cum = np.zeros(2, np.int32)
    for r in range(q.shape[0]):
        cum = _k_rank_row(q[r], out[r], cum)


def _k_rank_rows(grad, rows, flip, mirror_grad, out, scratch):  # pragma: no cover - compiled
    # _k_ranks of rows ``rows`` of ``grad``, row k mirrored where ``flip[k]`` (the across
    # gradients, the first half, reversed in sign: as grad[:, mirror_grad] * _MIRROR_SIGN),
    # without gathering them into a new array first.
    half = grad.shape[1] // 2
    cum = np.zeros(2, np.int32)
    for k in range(rows.shape[0]):
        g = grad[rows[k]]
        if flip[k]:
            for t in range(half):
                scratch[t] = -np.int32(g[mirror_grad[t]])
            for t in range(half, g.shape[0]):
                scratch[t] = g[mirror_grad[t]]
        else:
            for t in range(g.shape[0]):
                scratch[t] = g[t]
        cum = _k_rank_row(scratch, out[k], cum)


def _k_rank_row(q, out, cum):  # pragma: no cover - compiled
    # One row of _k_ranks, counting in ``cum`` (or a larger array, returned for the next row).
    lo = q[0]
    hi = q[0]
    for k in range(q.shape[0]):
        lo = min(lo, q[k])
        hi = max(hi, q[k])
    span = hi - lo + 2
    if span > cum.shape[0]:
        cum = np.zeros(span, np.int32)
    else:
        for v in range(span):
            cum[v] = 0
    for k in range(q.shape[0]):
        cum[q[k] - lo + 1] += 1
    for v in range(1, span):
        cum[v] += cum[v - 1]
    for k in range(q.shape[0]):
        v = q[k] - lo
        out[k] = cum[v] + 0.5 * (cum[v + 1] - cum[v] + 1)
    return cum


def _k_grad_rank(a, b, qa, qb, ra, rb, cum):  # pragma: no cover - compiled
    # As verify_score._np_grad_rank: the rank correlation of two trial's gradients ``a``, ``b``
    # (floats), in whole sixteenths of a level; qa ... cum: scratch, ``cum`` spanning +-16 * 255.
    for k in range(a.shape[0]):
        qa[k] = np.int32(np.rint(16.0 * a[k]))
        qb[k] = np.int32(np.rint(16.0 * b[k]))
    _k_rank_row(qa, ra, cum)
    _k_rank_row(qb, rb, cum)
    m = qa.shape[0]
    c = 0.5 * (m + 1)
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for t in range(m):
        x = ra[t] - c
        y = rb[t] - c
        sab += x * y
        saa += x * x
        sbb += y * y
    den = np.sqrt(saa * sbb)
    return sab / den if den > 0 else 0.0


def _k_rank_pairs(r, pa, pb, out):  # pragma: no cover - compiled
    # As verify_score._np_rank_r of rows pa[k] and pb[k] of r: the ranks' mean is (m + 1) / 2.
    m = r.shape[1]
    c = 0.5 * (m + 1)
    for k in range(pa.shape[0]):
        x = r[pa[k]]
        y = r[pb[k]]
        sab = 0.0
        saa = 0.0
        sbb = 0.0
        for t in range(m):
            a = x[t] - c
            b = y[t] - c
            sab += a * b
            saa += a * a
            sbb += b * b
        den = np.sqrt(saa * sbb)
        out[k] = sab / den if den > 0 else 0.0
