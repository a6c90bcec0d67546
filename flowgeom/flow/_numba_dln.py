r"""Compiled (numba) pieces of a DeepLinearNetwork for the kernels of :mod:`flowgeom.flow._numba`.

The vector field :math:`-\nabla L` (general depth and the H = 1, R = I fast path), the dense
Hessian :math:`\nabla^2 L` (any depth), the Lemma 1 invariants, and small vector helpers, as hand-written loops (for the tiny matrices of these
networks, per-call overhead of BLAS or numpy dominates). Internal module.
"""

from __future__ import annotations

import numpy as np

from flowgeom.flow._controller import MAX_FACTOR, MIN_FACTOR, SAFETY

try:  # pragma: no cover - exercised by both CI configurations
    import numba  # noqa: F401
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

# Floating-point flags: allow reassociation (vectorized dot products) but not "no NaN/inf"
# assumptions, which would break the divergence checks.
_FM = {"nsz", "arcp", "contract", "reassoc"}


def _network_arrays(net):
    """Flat description of a DeepLinearNetwork for the kernels."""
    L = net.n_layers
    shp = np.array(net.shapes, dtype=np.int64).reshape(L, 2)
    off = np.array(net._offsets, dtype=np.int64)
    T = np.ascontiguousarray(net.target, dtype=np.float64)
    if net.input_factor is None:
        R = np.zeros((1, 1))
        has_R = False
    else:
        R = np.ascontiguousarray(net.input_factor, dtype=np.float64)
        has_R = True
    dx = net.widths[0]
    pre_off = np.zeros(L + 1, dtype=np.int64)
    for j in range(L):
        pre_off[j + 1] = pre_off[j] + shp[j, 0] * dx
    # conserved quantities: packed upper triangles of C_j (d_j x d_j, j = 1..H), with weights
    wts = []
    for d in net.widths[1:-1]:
        for a in range(d):
            wts.extend([1.0] + [2.0] * (d - a - 1))
    wts = np.array(wts)
    is_h1 = bool(L == 2 and not has_R)
    Tf = T.ravel().copy()
    return (is_h1, shp, off, T, Tf, R, has_R, float(net.offset), pre_off, max(net.widths) * dx), wts



def _hessian_arrays(net):
    """Extra inputs of the compiled :func:`_hessian`: :math:`R R^T` (the identity for R = I) and the
    scratch ``(L, D, D)`` for the left and right partial products and ``(9, D, D)`` for the rest,
    D the largest width."""
    dx = net.widths[0]
    RRt = np.eye(dx) if net.input_factor is None else np.ascontiguousarray(net._RRt, dtype=np.float64)
    L, D = net.n_layers, max(net.widths)
    return RRt, np.empty((3, L, D, D)), np.empty((9, D, D))


if HAVE_NUMBA:
    @njit(cache=True, fastmath=_FM)
    def _field(theta, out, shp, off, T, R, has_R, c, pre, pre_off, bufA, bufB, M):
        """out = -grad L(theta); returns L(theta). Work arrays pre, bufA, bufB, M."""
        L = shp.shape[0]
        dy, dx = T.shape
        # prefixes pre_j = W_j ... W_0, shape (r_j, dx)
        for j in range(L):
            r, cc = shp[j, 0], shp[j, 1]
            W = theta[off[j]:off[j + 1]]
            P = pre[pre_off[j]:pre_off[j + 1]]
            if j == 0:
                for q in range(r * cc):
                    P[q] = W[q]
            else:
                Pp = pre[pre_off[j - 1]:pre_off[j]]
                for q in range(r * dx):
                    P[q] = 0.0
                for i in range(r):
                    for a in range(cc):
                        w = W[i * cc + a]
                        for p in range(dx):
                            P[i * dx + p] += w * Pp[a * dx + p]
        P = pre[pre_off[L - 1]:pre_off[L]]
        # residual M = T - P R and the negative gradient wrt P: Gm = M R^T
        loss = 0.0
        if has_R:
            for i in range(dy):
                for p in range(dx):
                    s = 0.0
                    for q in range(dx):
                        s += P[i * dx + q] * R[q, p]
                    v = T[i, p] - s
                    M[i * dx + p] = v
                    loss += v * v
            for i in range(dy):
                for p in range(dx):
                    s = 0.0
                    for q in range(dx):
                        s += M[i * dx + q] * R[p, q]
                    bufA[i * dx + p] = s
        else:
            for i in range(dy):
                for p in range(dx):
                    v = T[i, p] - P[i * dx + p]
                    M[i * dx + p] = v
                    loss += v * v
                    bufA[i * dx + p] = v
        # backprop: A (r_j x dx), f_j = A pre_{j-1}^T, A <- W_j^T A
        A = bufA
        Bb = bufB
        for j in range(L - 1, -1, -1):
            r, cc = shp[j, 0], shp[j, 1]
            F = out[off[j]:off[j + 1]]
            if j == 0:
                for q in range(r * cc):
                    F[q] = A[q]
            else:
                Pp = pre[pre_off[j - 1]:pre_off[j]]
                for i in range(r):
                    for a in range(cc):
                        s = 0.0
                        for p in range(dx):
                            s += A[i * dx + p] * Pp[a * dx + p]
                        F[i * cc + a] = s
                W = theta[off[j]:off[j + 1]]
                for q in range(cc * dx):
                    Bb[q] = 0.0
                for i in range(r):
                    for a in range(cc):
                        w = W[i * cc + a]
                        for p in range(dx):
                            Bb[a * dx + p] += w * A[i * dx + p]
                A, Bb = Bb, A
        return 0.5 * loss + c

    @njit(cache=True, fastmath=_FM, inline="always")
    def _field_h1(th, out, dx, d1, dy, Tf, M):
        """H = 1, R = I: out = -grad L = (W2^T M, M W1^T), M = T - W2 W1; returns sum(M^2)/2.

        A specialisation of :func:`_field` (about 4x faster for tiny widths).
        """
        o2 = d1 * dx
        loss = 0.0
        for i in range(dy):
            for p in range(dx):
                M[i * dx + p] = Tf[i * dx + p]
            for a in range(d1):
                w = th[o2 + i * d1 + a]
                for p in range(dx):
                    M[i * dx + p] -= w * th[a * dx + p]
            for p in range(dx):
                loss += M[i * dx + p] * M[i * dx + p]
        for q in range(d1 * dx):
            out[q] = 0.0
        for i in range(dy):
            for a in range(d1):
                w = th[o2 + i * d1 + a]
                for p in range(dx):
                    out[a * dx + p] += w * M[i * dx + p]
        for i in range(dy):
            for a in range(d1):
                s = 0.0
                for p in range(dx):
                    s += M[i * dx + p] * th[a * dx + p]
                out[o2 + i * d1 + a] = s
        return 0.5 * loss

    @njit(cache=True, fastmath=_FM, inline="always")
    def _rhs(theta, out, is_h1, shp, off, T, Tf, R, has_R, c, pre, pre_off, bufA, bufB, M):
        """Dispatch: the H = 1 whitened specialisation or the general product chain."""
        if is_h1:
            return _field_h1(theta, out, shp[0, 1], shp[0, 0], shp[1, 0], Tf, M) + c
        return _field(theta, out, shp, off, T, R, has_R, c, pre, pre_off, bufA, bufB, M)

    @njit(cache=True, fastmath=_FM)
    def _conserved(theta, out, shp, off):
        """Upper triangles (a <= b) of C_j = W_{j+1}^T W_{j+1} - W_j W_j^T, j = 1..H, into out.

        The C_j are symmetric; with weights 1 (diagonal) and 2 (off-diagonal), see
        :func:`_tri_weights`, the weighted 2-norm of out is the Frobenius norm of all C_j.
        """
        L = shp.shape[0]
        k = 0
        for j in range(L - 1):
            d = shp[j, 0]  # = shp[j + 1, 1]
            Wa = theta[off[j]:off[j + 1]]  # (d, ca)
            ca = shp[j, 1]
            Wb = theta[off[j + 1]:off[j + 2]]  # (rb, d)
            rb = shp[j + 1, 0]
            for a in range(d):
                row = k + a * d - (a * (a - 1)) // 2 - a  # start of row a in the packed triangle
                for b in range(a, d):
                    s = 0.0
                    for q in range(ca):
                        s += Wa[a * ca + q] * Wa[b * ca + q]
                    out[row + b] = -s
            for i in range(rb):
                for a in range(d):
                    w = Wb[i * d + a]
                    row = k + a * d - (a * (a - 1)) // 2 - a
                    for b in range(a, d):
                        out[row + b] += w * Wb[i * d + b]
            k += d * (d + 1) // 2

    @njit(cache=True, fastmath=_FM)
    def _norm(x):
        s = 0.0
        for q in range(x.shape[0]):
            s += x[q] * x[q]
        return np.sqrt(s)

    @njit(cache=True)
    def _step_factor(en, accept, rejected):
        """The controller of flowgeom.flow._controller.step_factor for one trajectory (exponent -1/5):
        the factor on h after a step with error norm ``en``; no growth right after a rejection."""
        return _step_factor_exp(en, accept, rejected, -0.2)

    @njit(cache=True)
    def _step_factor_exp(en, accept, rejected, exponent):
        """:func:`_step_factor` for an error estimate of order :math:`O(h^q)`, ``exponent`` = -1/q."""
        if en == 0.0:
            fac = MAX_FACTOR
        elif not np.isfinite(en):
            fac = MIN_FACTOR
        else:
            fac = SAFETY * en ** exponent
        if accept:
            grow = min(MAX_FACTOR, fac)
            if rejected:
                grow = min(1.0, grow)
            return grow
        return max(MIN_FACTOR, min(fac, 1.0))

    @njit(cache=True)
    def _allfinite(x):
        for q in range(x.shape[0]):
            if not np.isfinite(x[q]):
                return False
        return True

    @njit(cache=True, fastmath=_FM)
    def _hessian(theta, Hm, shp, off, T, R, has_R, RRt, LR, S):
        r"""Dense Hessian :math:`\nabla^2 L(\theta)` of :math:`L = \tfrac12\|T - W_{L-1}\cdots W_0 R\|_F^2 + c` into Hm.

        With :math:`\mathcal L_j = W_{L-1}\cdots W_{j+1}` (d_y x r_j), :math:`\mathcal R_j = W_{j-1}\cdots W_0`
        (c_j x d_x), :math:`G = (T - PR) R^T` and, for j < k, :math:`\mathcal M_{kj} = W_{k-1}\cdots W_{j+1}`
        (c_k x r_j), the entry of :math:`(W_j)_{ab}` and :math:`(W_k)_{cd}` is

        .. math:: (\mathcal L_j^T \mathcal L_k)_{ac}\,(\mathcal R_j R R^T \mathcal R_k^T)_{bd}
                  \;-\; [j < k]\,(\mathcal M_{kj})_{da}\,(\mathcal L_k^T G \mathcal R_j^T)_{cb}

        (Gauss--Newton part :math:`J^T J` plus the residual curvature :math:`-\langle G, \partial^2 P\rangle`;
        symmetric). Scratch: ``LR`` (3, L, D, D) holds :math:`\mathcal L_j`, :math:`\mathcal R_j`,
        :math:`\mathcal R_j R R^T`; ``S`` (9, D, D). From :func:`_hessian_arrays`.
        """
        L = shp.shape[0]
        dy, dx = T.shape
        Lf = LR[0]
        Rt = LR[1]
        RtR = LR[2]
        A = S[0]
        B = S[1]
        Mid = S[2]
        Tmp = S[3]
        Gn = S[4]
        Q = S[5]
        P = S[6]
        GR = S[7]
        # right products Rt[j] = W_{j-1} ... W_0 (c_j x dx), Rt[0] = I; P = W_{L-1} Rt[L-1]
        for a in range(dx):
            for b in range(dx):
                Rt[0, a, b] = 1.0 if a == b else 0.0
        for j in range(1, L + 1):
            r, cc = shp[j - 1, 0], shp[j - 1, 1]
            W = theta[off[j - 1]:off[j]]
            dst = P if j == L else Rt[j]
            for a in range(r):
                for p in range(dx):
                    s = 0.0
                    for q in range(cc):
                        s += W[a * cc + q] * Rt[j - 1, q, p]
                    dst[a, p] = s
        # G = (T - P R) R^T, or T - P for R = I
        if has_R:
            for a in range(dy):
                for p in range(dx):
                    s = 0.0
                    for q in range(dx):
                        s += P[a, q] * R[q, p]
                    Tmp[a, p] = T[a, p] - s
            for a in range(dy):
                for p in range(dx):
                    s = 0.0
                    for q in range(dx):
                        s += Tmp[a, q] * R[p, q]
                    Gn[a, p] = s
        else:
            for a in range(dy):
                for p in range(dx):
                    Gn[a, p] = T[a, p] - P[a, p]
        # left products Lf[j] = W_{L-1} ... W_{j+1} (dy x r_j), Lf[L-1] = I
        for a in range(dy):
            for b in range(dy):
                Lf[L - 1, a, b] = 1.0 if a == b else 0.0
        for j in range(L - 2, -1, -1):
            r, cc = shp[j + 1, 0], shp[j + 1, 1]
            W = theta[off[j + 1]:off[j + 2]]
            for p in range(dy):
                for b in range(cc):
                    s = 0.0
                    for a in range(r):
                        s += Lf[j + 1, p, a] * W[a * cc + b]
                    Lf[j, p, b] = s
        # RtR[j] = Rt[j] R R^T (c_j x dx)
        for j in range(L):
            cj = shp[j, 1]
            for b in range(cj):
                for p in range(dx):
                    if has_R:
                        s = 0.0
                        for q in range(dx):
                            s += Rt[j, b, q] * RRt[q, p]
                        RtR[j, b, p] = s
                    else:
                        RtR[j, b, p] = Rt[j, b, p]
        for j in range(L):
            rj, cj = shp[j, 0], shp[j, 1]
            # GR = G Rt[j]^T (dy x c_j), for the residual blocks of this j
            for p in range(dy):
                for b in range(cj):
                    s = 0.0
                    for q in range(dx):
                        s += Gn[p, q] * Rt[j, b, q]
                    GR[p, b] = s
            for k in range(j, L):
                rk, ck = shp[k, 0], shp[k, 1]
                for a in range(rj):
                    for c in range(rk):
                        s = 0.0
                        for p in range(dy):
                            s += Lf[j, p, a] * Lf[k, p, c]
                        A[a, c] = s
                for b in range(cj):
                    for d in range(ck):
                        s = 0.0
                        for q in range(dx):
                            s += RtR[j, b, q] * Rt[k, d, q]
                        B[b, d] = s
                if k > j:
                    # Mid = W_{k-1} ... W_{j+1} (c_k x r_j): I for k = j + 1, then W_{k-1} times the previous
                    if k == j + 1:
                        for a in range(rj):
                            for b in range(rj):
                                Mid[a, b] = 1.0 if a == b else 0.0
                    else:
                        r2, c2 = shp[k - 1, 0], shp[k - 1, 1]
                        W = theta[off[k - 1]:off[k]]
                        for a in range(r2):
                            for b in range(rj):
                                s = 0.0
                                for q in range(c2):
                                    s += W[a * c2 + q] * Mid[q, b]
                                Tmp[a, b] = s
                        for a in range(r2):
                            for b in range(rj):
                                Mid[a, b] = Tmp[a, b]
                    # Q = Lf[k]^T G Rt[j]^T (r_k x c_j)
                    for c in range(rk):
                        for b in range(cj):
                            s = 0.0
                            for p in range(dy):
                                s += Lf[k, p, c] * GR[p, b]
                            Q[c, b] = s
                for a in range(rj):
                    for b in range(cj):
                        row = off[j] + a * cj + b
                        for c in range(rk):
                            for d in range(ck):
                                col = off[k] + c * ck + d
                                v = A[a, c] * B[b, d]
                                if k > j:
                                    v -= Mid[d, a] * Q[c, b]
                                Hm[row, col] = v
                                Hm[col, row] = v
