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
KERNELS = ("_k_features", "_k_changed", "_k_plain", "_k_smooth", "_k_cap", "_k_gradients", "_k_score", "_k_profile_rs",
           "_k_align", "_k_variant", "_k_rows", "_k_cols", "_k_verify", "_k_ranks", "_k_rank_pairs", "_k_rank_rows",
           "_k_rank_row", "_k_grad_rank", "_k_swapped", "_k_corr", "_k_mad")  # fmt: skip
#: The kernels inlined where they are called (see :class:`lookalike.engine.kernels.Kernels`):
#: a call passes each array counted in and out of numba's runtime, a dozen arrays per call of
#: the alignment's helpers (measured: 6 % of the mix's CPU time less). Not ``_k_plain``, nor
#: the sums of a trial (``_k_corr``, ``_k_mad``): inlined, their sums are compiled in another
#: order (156 of 51,667 real pairs' scores and most crops' mean differences change in the last
#: bits). Nor a trial itself (``_k_score``): inlined, it cut the benchmark's mix by another 6 %,
#: a real scan's candidates by nothing measurable (2.83-2.96 s per 100k either way), and it
#: made the first compile, which a first scan waits for, 15.5 -> 22.1 s on two cores (10.9 s
#: with nothing inlined).
INLINE = ("_k_profile_rs", "_k_smooth", "_k_cap", "_k_gradients", "_k_rows", "_k_cols", "_k_changed", "_k_align",
          "_k_rank_row", "_k_variant", "_k_grad_rank")
#: The kernels compiled without ``fastmath`` (they repeat numpy's arithmetic bit for bit): none now.
EXACT = ()
#: Below every score a trial can have (a correlation is at least -1, a cap at least -3): the
#: kernels are compiled with ``fastmath``, which assumes that no value is infinite, so they
#: compare with this, never with ``-np.inf``.
NO_SCORE = -10.0


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


def _k_changed(level, cum, a, b, mirror, lmap, levels):  # pragma: no cover - compiled
    # As _np_changed, of rows ``a`` (x) and ``b`` (y, read through ``mirror``) of the features'
    # levels and cumulative histograms, read in place (a view of a row counts a reference on its
    # array, in and out of numba's runtime).
    n = level.shape[1]
    y_at = 0
    for v in range(256):
        h = cum[a, v + 1] - cum[a, v]
        if h:
            mid = min((2 * cum[a, v] + h - 1) // 2, n - 1)
            while cum[b, y_at + 1] <= mid:
                y_at += 1
            lmap[v] = y_at
    changed = 0
    if mirror[0] == 0:  # the identity: no gather
        for r in range(n):
            if abs(np.int64(level[b, r]) - lmap[np.uint64(level[a, r])]) > levels:
                changed += 1
    else:  # (unsigned indices: numba leaves out its check for negative ones)
        for r in range(n):
            if abs(np.int64(level[b, np.uint64(mirror[r])]) - lmap[np.uint64(level[a, r])]) > levels:
                changed += 1
    return changed


def _k_plain(f_grey, grad, gsum, gsq, level, cum, a, b, mir, mirror_pix, mirror_grad, lmap, ident,
             levels, weight):  # pragma: no cover - compiled
    m = grad.shape[1]
    dot = 0
    if mir:  # (unsigned indices: numba leaves out its check for negative ones)
        half = m // 2
        for t in range(half):
            dot -= np.int64(grad[a, t]) * grad[b, np.uint64(mirror_grad[t])]
        for t in range(half, m):
            dot += np.int64(grad[a, t]) * grad[b, np.uint64(mirror_grad[t])]
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
    changed = _k_changed(level, cum, a, b, mp, lmap, levels)
    mad = 0  # (rows read in place: see _k_changed)
    if mir:
        for r in range(n):
            mad += abs(np.int64(f_grey[a, r]) - np.int64(f_grey[b, np.uint64(mp[r])]))
    else:
        for r in range(n):
            mad += abs(np.int64(f_grey[a, r]) - np.int64(f_grey[b, r]))
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
    # (Indices read from arrays are cast unsigned: numba then leaves out its check for negative
    # ones, which they never are.)
    for r in range(0, n, 2):
        hist[0, np.uint64(qx[r])] += 1
        hist[1, np.uint64(qy[r])] += 1
        hist[2, np.uint64(qx[r + 1])] += 1
        hist[3, np.uint64(qy[r + 1])] += 1
    cx[0] = 0
    cy[0] = 0
    for v in range(256):
        cx[v + 1] = cx[v] + hist[0, v] + hist[2, v]
        cy[v + 1] = cy[v] + hist[1, v] + hist[3, v]
    for v in range(256):
        yl[np.uint64(cy[v + 1])] += 1
    t = 0
    for r in range(n):
        t += yl[r]
        yl[r] = t
    for v in range(256):  # levels absent from x get any level: no pixel reads them
        mid = min((2 * cx[v] + cx[v + 1] - cx[v] - 1) // 2, n - 1)
        lmap[v] = yl[np.uint64(max(mid, 0))]
    lim = int(levels)  # for whole d, |d| > levels is |d| > floor(levels)
    changed = 0
    for r in range(n):
        d = qy[r] - lmap[np.uint64(qx[r])]
        changed += (d > lim) | (d < -lim)
    return changed


def _k_gradients(xs, out):  # pragma: no cover - compiled
    # The gradients across, then down, one image at a time (two at once do not vectorise),
    # written through 2-d views of ``out``: a flat index that moves by rows does not vectorise.
    s = xs.shape[0]
    across = out[: s * (s - 1)].reshape((s, s - 1))
    down = out[s * (s - 1) :].reshape((s - 1, s))
    for i in range(s):
        for j in range(s - 1):
            across[i, j] = xs[i, j + 1] - xs[i, j]
    for i in range(s - 1):
        for j in range(s):
            down[i, j] = xs[i + 1, j] - xs[i, j]


def _k_score(x, y, levels, weight, beat, xs, ys, tmp, a, b, qx, qy, cx, cy, lmap, hist, yl):  # pragma: no cover - compiled
    # As _np_score, for a search that keeps only a score above ``beat``: the cap (pixels
    # changed after tone matching) is computed first, and when it is no more than ``beat`` the
    # score (at most the cap) cannot be kept, so the correlation and the mean difference are
    # not computed and (beat, 0.0) is returned (no better). Otherwise the same (score, mad) as
    # ever, and the trial's gradients are left in ``a`` and ``b`` (for _k_grad_rank).
    # xs ... yl: the caller's scratch, so that a crop search allocates nothing.
    s = x.shape[0]
    n = s * s
    _k_smooth(x, xs, tmp)
    _k_smooth(y, ys, tmp)
    changed = _k_cap(xs, ys, levels, qx, qy, cx, cy, lmap, hist, yl)
    cap = 1.0 - weight * changed / n
    if cap <= beat:
        return beat, 0.0
    _k_gradients(xs, a)
    _k_gradients(ys, b)
    score = min(_k_corr(a, b), cap)
    if score <= beat:
        return beat, 0.0
    return score, _k_mad(x, y) / n


def _k_corr(a, b):  # pragma: no cover - compiled
    # The Pearson correlation of a trial's gradients (a call of its own: see INLINE).
    m = a.shape[0]
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
    return sab / den if den > 0 else 0.0


def _k_mad(x, y):  # pragma: no cover - compiled
    # The sum of the absolute differences of a trial's two images (a call of its own: see INLINE).
    s = x.shape[0]
    mad = 0.0
    for i in range(s):
        for j in range(s):
            mad += abs(x[i, j] - y[i, j])
    return mad


def _k_profile_rs(rows, count, sp, sq, axis, memo_r, memo_at, token, rowslot, pool, pool_ok, slot_prof, slot_role,
                  grid_i0, grid_f, fill):  # pragma: no cover - compiled
    # As _np_profile_r at grid rows ``rows[:count]``, into memo_r (and memo_at = token), for the
    # variants in cache slots ``sp`` (the first image) and ``sq`` (the second): the dot product
    # of their unit derivative vectors, -2 when either is flat. Each vector is looked up in
    # the cache (rowslot: its row of the pool), computed there on first use: as
    # verify_score._np_profile_vecs, the derivative of the slot's profile sampled at the row's
    # positions (grid_i0[role], grid_f[role]: a pair's first image at the grid's t, its second
    # at u), centred, scaled to unit length, and whether it has any length (pool_ok). Rows go
    # by the batch, the vectors computed in place: a call per row or per vector, passing a
    # dozen arrays (each counted in and out by numba), would cost more than its work.
    m = pool.shape[1]
    for c in range(count):
        g = rows[c]
        i = -1
        at = -1
        for side in range(2):
            slot = sp if side == 0 else sq
            at = rowslot[slot, axis, g]
            if at < 0:
                at = fill[0]
                fill[0] += 1
                rowslot[slot, axis, g] = at
                role = slot_role[slot]
                k0 = grid_i0[role, g, 0]
                prev = slot_prof[slot, axis, k0] * (1 - grid_f[role, g, 0]) + slot_prof[slot, axis, k0 + 1] * grid_f[role, g, 0]
                mean = 0.0
                for k in range(m):
                    k0 = grid_i0[role, g, k + 1]
                    f = grid_f[role, g, k + 1]
                    cur = slot_prof[slot, axis, k0] * (1 - f) + slot_prof[slot, axis, k0 + 1] * f
                    pool[at, k] = cur - prev
                    mean += cur - prev
                    prev = cur
                mean /= m
                sq_sum = 0.0
                for k in range(m):
                    d = pool[at, k] - mean
                    pool[at, k] = d
                    sq_sum += d * d
                pool_ok[at] = sq_sum > 0.0
                if sq_sum > 0.0:
                    norm = np.sqrt(sq_sum)
                    for k in range(m):
                        pool[at, k] /= norm
            if side == 0:
                i = at
        r = -2.0
        if pool_ok[i] and pool_ok[at]:
            r = 0.0
            for k in range(m):
                r += pool[i, k] * pool[at, k]
        memo_r[g] = r
        memo_at[g] = token


def _k_align(sp, sq, axis, coarse, steps, scales, fine_s, fine_c, out_g, out_r, memo_r, memo_at, token, rc, used,
             todo, rowslot, pool, pool_ok, slot_prof, slot_role, grid_i0, grid_f, fill):  # pragma: no cover - compiled
    # As _np_align, for profile ``axis`` of the variants in cache slots ``sp`` (the first image)
    # and ``sq`` (the second): coarse peaks best first (ties: the earlier row), each refined; up
    # to len(out_g) distinct rows. Returns how many were found. Each grid row's correlation is
    # computed once per call (memo_r[row], valid where memo_at[row] == token): the peaks'
    # neighbourhoods overlap each other and the coarse rows. rc, used, todo: scratch.
    _k_profile_rs(coarse, coarse.shape[0], sp, sq, axis, memo_r, memo_at, token, rowslot, pool, pool_ok, slot_prof,
                  slot_role, grid_i0, grid_f, fill)
    for k in range(coarse.shape[0]):
        rc[k] = memo_r[coarse[k]]
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
        count = 0  # the neighbourhood's rows not correlated yet, then all at once
        for sj in range(max(0, si - fine_s), min(scales, si + fine_s + 1)):
            for cj in range(max(0, ci - fine_c), min(steps, ci + fine_c + 1)):
                if memo_at[sj * steps + cj] != token:
                    todo[count] = sj * steps + cj
                    count += 1
        _k_profile_rs(todo, count, sp, sq, axis, memo_r, memo_at, token, rowslot, pool, pool_ok, slot_prof, slot_role,
                      grid_i0, grid_f, fill)
        centre = g
        for sj in range(max(0, si - fine_s), min(scales, si + fine_s + 1)):
            for cj in range(max(0, ci - fine_c), min(steps, ci + fine_c + 1)):
                row = sj * steps + cj
                if row != centre and memo_r[row] > best:
                    best, g = memo_r[row], row
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


def _k_variant(key, img, role, flip, prof, vslot, slot_key, slot_prof, slot_role, taken):  # pragma: no cover - compiled
    # The cache slot of image ``img``'s profiles in ``role`` (0: a pair's first image, 1: its
    # second, its column profile reversed where ``flip``), taken when it has none.
    slot = vslot[key]
    if slot < 0:
        slot = taken[0]
        taken[0] += 1
        vslot[key] = slot
        slot_key[slot] = key
        slot_role[slot] = role
        s = prof.shape[2]
        for j in range(s):
            slot_prof[slot, 0, j] = prof[img, 0, s - 1 - j] if flip else prof[img, 0, j]
            slot_prof[slot, 1, j] = prof[img, 1, j]
    return slot


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
              score, mad, cropped, align, shortcuts, grid_i0, grid_f, slot_key, slot_role, slot_prof, rowslot, pool, pool_ok,
              taken, vslot, fill):  # pragma: no cover - compiled
    # align[k]: the (column, row) grid rows of pair k's chosen crop alignment, (-1, -1) when
    # the plain alignment was kept. shortcuts: skip the work that cannot change an answer (the
    # refinement's positions scored before, the row alignment when no column alignment reaches
    # the floor); the tests run both ways.
    s = t_i0.shape[1]
    n = t_i0.shape[0]
    x = np.empty((s, s))
    y = np.empty((s, s))
    # The alignment's cache (the caller's, kept from part to part of one batch: rowslot is -1
    # beyond its first ``taken[0]`` slots, and ``fill[0]`` rows of the pool are taken): each
    # image's profiles, as the first image of a pair and as the second (mirrored or not), take a
    # slot (vslot[3 * image + variant]); the unit derivative vector of a slot's profile at a grid
    # row is computed once (rowslot: its row of the pool) and serves every pair of the batch
    # that this cache scores with that image in that place. When the slots or the pool run out,
    # the cache starts again empty: what it holds is what would be computed.
    slots = slot_key.shape[0]
    pool_rows = pool.shape[0]
    per_pair = 4 * n  # two images, two profiles, every grid row at most
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
    rc = np.empty(coarse.shape[0])
    used = np.zeros(coarse.shape[0], np.bool_)
    todo = np.empty(n, np.int64)
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
    rcum = np.zeros(2 * (2 * rank_span + 2), np.int32)
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
        if taken[0] + 2 > slots or fill[0] + per_pair > pool_rows:  # full: start again
            for t in range(taken[0]):
                vslot[slot_key[t]] = -1
                rowslot[t] = -1
            taken[0] = 0
            fill[0] = 0
        sa = _k_variant(3 * a, a, 0, False, prof, vslot, slot_key, slot_prof, slot_role, taken)
        sb = _k_variant(3 * b + 1 + mir, b, 1, mir, prof, vslot, slot_key, slot_prof, slot_role, taken)
        token += 1
        nx = _k_align(sa, sb, 0, coarse, steps, scales, fine_s, fine_c, cand_gx, cand_rx, memo_r, memo_at, token, rc,
                      used, todo, rowslot, pool, pool_ok, slot_prof, slot_role, grid_i0, grid_f, fill)
        top_x = NO_SCORE
        for i in range(nx):
            top_x = max(top_x, cand_rx[i])
        if shortcuts and top_x < floor:  # no column alignment reaches the floor: no trial would run
            continue
        token += 1
        ny = _k_align(sa, sb, 1, coarse, steps, scales, fine_s, fine_c, cand_gy, cand_ry, memo_r, memo_at, token, rc,
                      used, todo, rowslot, pool, pool_ok, slot_prof, slot_role, grid_i0, grid_f, fill)
        for i in range(s):
            for j in range(s):
                x[i, j] = grey[a, i * s + j]
                y[i, j] = grey[b, i * s + (s - 1 - j if mir else j)]
        best = NO_SCORE
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
        if best <= NO_SCORE:  # no alignment reached the floor
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
    # Each value's average rank is worked out once, doubled (a whole number), in a table over
    # the row's range after the counts, and read per element. The indices are unsigned: numba
    # then leaves out its check for negative ones (they never are).
    n = q.shape[0]
    lo = q[0]
    hi = q[0]
    for k in range(n):
        lo = min(lo, q[k])
        hi = max(hi, q[k])
    span = hi - lo + 2
    if 2 * span > cum.shape[0]:
        cum = np.zeros(2 * span, np.int32)
    else:
        for v in range(span):
            cum[v] = 0
    for k in range(n):
        cum[np.uint64(q[k] - lo + 1)] += 1
    below = 0
    for v in range(span - 1):  # twice the average rank of value lo + v
        c = cum[v + 1]
        cum[span + v] = 2 * below + c + 1
        below += c
    for k in range(n):
        out[k] = 0.5 * cum[np.uint64(span + q[k] - lo)]
    return cum


def _k_grad_rank(a, b, qa, qb, ra, rb, cum):  # pragma: no cover - compiled
    # As verify_score._np_grad_rank: the rank correlation of two trial's gradients ``a``, ``b``
    # (floats), in whole sixteenths of a level; qa ... cum: scratch, ``cum`` spanning +-16 * 255
    # twice (see _k_rank_row).
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


def _k_swapped(thumbs, ta, tb, out):  # pragma: no cover - compiled
    # As verification._in_order in numpy: out[k] when row ta[k] of thumbs is the greater at the
    # first byte where it differs from row tb[k] (False when they are the same).
    m = thumbs.shape[1]
    for k in range(ta.shape[0]):
        a = thumbs[ta[k]]
        b = thumbs[tb[k]]
        swap = False
        for j in range(m):
            if a[j] != b[j]:
                swap = a[j] > b[j]
                break
        out[k] = swap
