"""The mean-field maps (report.meanfield) and the spectrum and finite-width predictions (report.theory)
against Monte Carlo and random networks (numpy only, seeded): each comparison must be able to fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initbench.report import meanfield as mf
from initbench.report import theory

PHI = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v,
       "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "softsign": lambda v: v / (1 + np.abs(v))}
DPHI = {"tanh": lambda v: 1 / np.cosh(v) ** 2, "relu": lambda v: (v > 0) * 1.0,
        "linear": np.ones_like, "sigmoid": lambda v: PHI["sigmoid"](v) * PHI["sigmoid"](-v),
        "softsign": lambda v: 1 / (1 + np.abs(v)) ** 2}


@pytest.fixture(scope="module")
def normals():
    return np.random.default_rng(0).standard_normal((2, 2_000_000))


@pytest.mark.parametrize("activation", ["sigmoid", "softsign"])
def test_sigmoid_and_softsign_moments_match_monte_carlo(activation, normals):
    z = normals[0]
    for q in (0.05, 1.0, 9.0, 250.0):
        v = PHI[activation](math.sqrt(q) * z)
        mean, second = theory.moments(activation, q)
        assert mean == pytest.approx(v.mean(), abs=2e-3) and second == pytest.approx(np.mean(v**2), rel=3e-3)
        slope = np.mean(DPHI[activation](math.sqrt(q) * z) ** 2)
        assert theory.chi_1(activation, q, 2.0) == pytest.approx(2 * slope, rel=3e-3)
    assert theory.moments("sigmoid", 3.0)[0] == 0.5  # E[sigmoid] != 0: the length map uses E[phi^2]


@pytest.mark.parametrize("activation, qa, qb, c", [
    ("tanh", 1.0, 0.5, 0.3), ("tanh", 250.0, 200.0, 0.9), ("sigmoid", 2.0, 1.0, -0.4),
    ("softsign", 0.7, 3.0, 0.95), ("relu", 1.0, 2.0, 0.2), ("relu", 1.0, 1.0, -0.999)])
def test_pair_map_matches_a_bivariate_monte_carlo(activation, qa, qb, c, normals):
    x, y = normals
    ua, ub = math.sqrt(qa) * x, math.sqrt(qb) * (c * x + math.sqrt(1 - c * c) * y)
    ab = 1.3 * np.mean(PHI[activation](ua) * PHI[activation](ub)) + 0.05
    qa2, qb2, c2 = mf.pair_map(activation, qa, qb, c, 1.3, 0.05)
    assert (qa2, qb2) == pytest.approx([1.3 * theory.moments(activation, q)[1] + 0.05 for q in (qa, qb)])
    assert c2 * math.sqrt(qa2 * qb2) == pytest.approx(ab, rel=5e-3, abs=1e-3)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softsign", "relu", "linear"])
@pytest.mark.parametrize("sigma_b2", [0.0, 0.05])
def test_fixed_points_solve_their_maps(activation, sigma_b2):
    for s2 in (0.5, 1.0, 1.76, 2.5, 6.0):
        q = mf.fixed_point(activation, s2, sigma_b2)
        if 0 < q < math.inf:
            assert s2 * theory.moments(activation, q)[1] + sigma_b2 == pytest.approx(q, rel=1e-9)
            c = mf.correlation_fixed_point(activation, s2, sigma_b2)
            assert mf.pair_map(activation, q, q, c, s2, sigma_b2)[2] == pytest.approx(c, abs=1e-7)
            # c* = 1 exactly where c = 1 is stable, i.e. chi_1(q*) <= 1 (Schoenholz et al. 2017, eq. 6)
            assert (c == 1.0) == (theory.chi_1(activation, q, s2) <= 1)
    if activation == "relu":  # q* = sigma_b^2 / (1 - sigma_w^2 / 2), none at and above He's 2
        assert mf.fixed_point("relu", 1.5, sigma_b2) == pytest.approx(sigma_b2 / 0.25)
        assert mf.fixed_point("relu", 2.5, sigma_b2) == (math.inf if sigma_b2 else 0.0)
    if activation == "tanh":  # with biases q* > 0 on both sides of the edge
        assert (mf.fixed_point("tanh", 0.5, sigma_b2) > 0) == (sigma_b2 > 0)


def test_chi_c_is_the_slope_of_the_correlation_map_and_chi_1_on_the_ordered_side():
    for s in (0.5, 0.8, 0.95):  # tanh, zero biases, ordered: q* = 0, c* = 1, chi_c = chi_1 = sigma_w^2
        assert mf.chi_c("tanh", s * s) == s * s == pytest.approx(theory.chi_1("tanh", 0.0, s * s))
    for act, s2, b in (("tanh", 2.5, 0.05), ("softsign", 6.0, 0.05), ("tanh", 1.2, 0.05)):
        q, c = mf.fixed_point(act, s2, b), mf.correlation_fixed_point(act, s2, b)
        step = 1e-4 if c < 1 else -1e-4  # a secant of the c-map at c*: its slope is chi_c (eq. 8)
        slope = (mf.pair_map(act, q, q, c + step, s2, b)[2] - c) / step
        assert mf.chi_c(act, s2, b) == pytest.approx(slope, rel=2e-3)
        assert mf.chi_c(act, s2, b) < 1  # c* is stable: xi_c is finite
    assert 0 < mf.correlation_fixed_point("tanh", 2.5, 0.05) < 1  # chaotic, past the edge at 1.76
    assert mf.correlation_fixed_point("tanh", 1.2, 0.05) == 1.0  # ordered


def test_the_edge_of_chaos_is_where_chi_1_is_one():
    assert mf.critical_sigma_w("tanh") == 1.0 and mf.critical_sigma_w("relu") == pytest.approx(math.sqrt(2))
    s = mf.critical_sigma_w("tanh", 0.05)
    assert s * s == pytest.approx(1.76, abs=0.01)  # Schoenholz et al. 2017, fig. 1: sigma_w^2 ~ 1.76
    for act, b in (("tanh", 0.05), ("sigmoid", 0.0), ("softsign", 0.05)):
        s2 = mf.critical_sigma_w(act, b) ** 2
        assert theory.chi_1(act, mf.fixed_point(act, s2, b), s2) == pytest.approx(1.0, abs=1e-8)
        # xi_c diverges at the edge and is finite on both sides
        xi = [mf.depth_scale(act, math.sqrt(s2 * f), b) for f in (0.5, 1 / 1.01, 1.01, 2.0)]
        assert xi[1] > 50 < xi[2] and xi[0] < 20 > xi[3], xi
    # Biases move tanh's edge: sigma_w = 1 is critical without them, ordered (finite xi) with them.
    assert mf.depth_scale("tanh", 1.0) == math.inf > mf.depth_scale("tanh", 1.0, 0.05)
    q = mf.fixed_point("tanh", 1.0, 0.05)
    assert mf.depth_scale("tanh", 1.0, 0.05) == pytest.approx(-1 / math.log(theory.chi_1("tanh", q, 1.0)))


# -- the c-map against random networks ---------------------------------------------------------------
WIDTH, DEPTH, DRAWS, PAIRS = 512, 12, 24, 8
CMAP_CASES = [("tanh", 1.0, 0.0), ("tanh", 1.0, 0.05), ("tanh", 1.76, 0.05), ("tanh", 2.5, 0.0),
              ("tanh", 2.5, 0.05), ("relu", 2.0, 0.0), ("relu", 1.0, 0.05)]


@pytest.fixture(scope="module")
def random_networks():
    """Mean over PAIRS input pairs (correlation 0.5) of each layer's measured c_l, per network draw;
    the same standard normal weights serve every case, scaled by sqrt(sigma_w^2 / n)."""
    rng = np.random.default_rng(3)
    xa, e = rng.standard_normal((2, WIDTH, PAIRS))
    xa /= np.sqrt(np.mean(xa**2, 0))
    e -= xa * np.mean(e * xa, 0)
    e /= np.sqrt(np.mean(e**2, 0))
    x = np.concatenate([xa, 0.5 * xa + math.sqrt(0.75) * e], 1)
    c = {k: np.zeros((DRAWS, DEPTH)) for k in CMAP_CASES}
    first = {k: np.zeros((DRAWS, 3)) for k in CMAP_CASES}
    for d in range(DRAWS):
        g = [rng.standard_normal((WIDTH, WIDTH), dtype=np.float32).astype(np.float64) for _ in range(DEPTH)]
        beta = rng.standard_normal((DEPTH, WIDTH, 1))
        for act, s2, b in CMAP_CASES:
            h = x
            for layer in range(DEPTH):
                z = math.sqrt(s2 / WIDTH) * (g[layer] @ h) + math.sqrt(b) * beta[layer]
                qa, qb = np.mean(z[:, :PAIRS] ** 2, 0), np.mean(z[:, PAIRS:] ** 2, 0)
                cl = np.mean(z[:, :PAIRS] * z[:, PAIRS:], 0) / np.sqrt(qa * qb)
                c[act, s2, b][d, layer] = cl.mean()
                if layer == 0:
                    first[act, s2, b][d] = qa.mean(), qb.mean(), cl.mean()
                h = PHI[act](z)
    return c, first


@pytest.mark.parametrize("case", CMAP_CASES)
def test_correlation_map_matches_random_networks(case, random_networks):
    """Tolerance: 4 standard errors of the mean over draws, plus 2 / width for finite width's bias
    (c_l is a ratio of sums over n units: O(1/n)). Predicted from the mean of layer 1's measured
    (qa, qb, c): the map is smooth, so per-draw layer-1 noise moves the mean by O(1/n) only."""
    act, s2, b = case
    c, first = random_networks
    qa1, qb1, c1 = first[case].mean(0)
    pred = np.array(mf.propagate_pair(act, qa1, qb1, c1, [s2] * (DEPTH - 1), b))
    mean, se = c[case].mean(0), c[case].std(0, ddof=1) / math.sqrt(DRAWS)
    tol = 4 * se + 2 / WIDTH
    assert np.all(np.abs(mean - pred) <= tol), (mean - pred, tol)
    if b:  # the biases matter: ignoring them misses by far more than the tolerance
        blind = np.array(mf.propagate_pair(act, qa1, qb1, c1, [s2] * (DEPTH - 1)))
        assert np.max(np.abs(mean - blind) - tol) > 0.02


# -- the Jacobian's spectrum ------------------------------------------------------------------------------
def _spread(act, s2, q1, depth, orthogonal, rng, n=300, draws=3):
    """m_2 / m_1^2 - 1 and m_1 of J J^T, J = dh_L / dh_1 of real forward passes, per draw."""
    out = []
    for _ in range(draws):
        z, jac = rng.standard_normal(n) * math.sqrt(q1), np.eye(n)
        for _ in range(depth - 1):
            g = rng.standard_normal((n, n))
            if orthogonal:
                u, r = np.linalg.qr(g)
                w = u * np.sign(np.diag(r)) * math.sqrt(s2)
            else:
                w = g * math.sqrt(s2 / n)
            z = w @ PHI[act](z)
            jac = (DPHI[act](z)[:, None] * w) @ jac
        m = jac @ jac.T
        m1 = np.trace(m) / n
        out.append((np.sum(m * m) / n / m1**2 - 1, m1))
    return np.array(out)


@pytest.mark.parametrize("act, s2, q1", [("linear", 1.0, 1.0), ("relu", 2.0, 1.0), ("tanh", 1.0, 4.0),
                                         ("tanh", 4.0, 1.0)])
@pytest.mark.parametrize("orthogonal", [False, True])
def test_jacobian_spread_matches_monte_carlo_spectra(act, s2, q1, orthogonal):
    """Width 300, 3 draws: the rule held within 5% in simulation (finite width pushes Gaussian
    products a few % above it); asserted within 10% + 3 standard errors."""
    rng = np.random.default_rng(11)
    for depth in (3, 8):
        pred = theory.propagate(act, q1, [s2] * (depth - 1))
        spread = theory.jacobian_spread(act, pred.q[1:], pred.sigma_w2, orthogonal)
        mc = _spread(act, s2, q1, depth, orthogonal, rng)
        if act == "linear":  # mu_2 / mu_1^2 - 1 = 0: L - 1 for Gaussian, exactly 0 orthogonal
            assert spread == (0.0 if orthogonal else depth - 1)
        se = mc[:, 0].std(ddof=1) / math.sqrt(len(mc))
        assert abs(mc[:, 0].mean() - spread) <= 0.10 * spread + 3 * se + 1e-9, (depth, mc[:, 0], spread)
        # E[lambda] = prod chi_1 (theory.jacobian_mean_sq, as Prediction's)
        assert pred.jacobian_mean_sq(act) == theory.jacobian_mean_sq(act, pred.q[1:], pred.sigma_w2)
        assert mc[:, 1].mean() == pytest.approx(pred.jacobian_mean_sq(act), rel=0.15)
        if (act, s2) == ("tanh", 1.0):  # q decays from q_1 = 4: the D_l are those of layers 2..L
            wrong = theory.jacobian_spread(act, pred.q[:-1], pred.sigma_w2, orthogonal)
            assert abs(mc[:, 0].mean() - wrong) > 0.10 * wrong + 3 * se


# -- Hanin & Rolnick: Var log ||h_L||^2 ---------------------------------------------------------------------
def _log_lengths(widths, draws, rng):
    """log ||h_L||^2 and log ||z_L||^2 (each up to a constant) over weight draws for a fixed input,
    He weights. Given h_{j-1}, a Gaussian W_j gives z_j = W_j h_{j-1} ~ N(0, 2 ||h_{j-1}||^2 / n_{j-1} I)
    exactly (rotation invariance), so n_j normals per layer draw the same law as an n_j x n_{j-1}
    matrix (test_hanin_rolnick_in_real_networks checks it with matrices)."""
    logh = np.zeros(draws)
    for w in widths:
        g = rng.standard_normal((draws, w), dtype=np.float32)
        logz = logh + np.log(np.sum(g * g, 1, dtype=np.float64))
        logh = logh + np.log(np.sum(np.maximum(g, 0) ** 2, 1, dtype=np.float64))
    return logh, logz


def _var(x):
    """Sample variance and its standard error sqrt((m_4 - s^4) / N)."""
    d = x - x.mean()
    v = float(np.mean(d * d))
    return v, math.sqrt((np.mean(d**4) - v * v) / len(x))


def _lead_ok(formula, v, se, widths):
    """The leading-order formula's allowance: the O(1/n) relative correction (exactly ~4 / n) plus
    3 standard errors, with 5 / n_min as the stated bound."""
    return abs(formula - v) <= 5 / min(widths) * v + 3 * se


def test_hanin_rolnick_in_real_networks():
    rng, widths, draws = np.random.default_rng(7), [128, 128], 3000
    x, out = np.ones(128), np.zeros((draws, 2))
    for i in range(draws):
        h = x
        for w in widths:
            z = rng.standard_normal((w, h.size)) @ h * math.sqrt(2 / h.size)
            h = np.maximum(z, 0)
        out[i] = math.log(h @ h), math.log(z @ z)
    (vh, sh), (vz, sz) = _var(out[:, 0]), _var(out[:, 1])
    f = theory.log_length_variance
    assert abs(vh - f(widths, exact=True)) < 4 * sh and abs(vz - f(widths, True, exact=True)) < 4 * sz
    assert _lead_ok(f(widths), vh, sh, widths) and _lead_ok(f(widths, True), vz, sz, widths)
    # The activations' formula is not the pre-activations', nor does it leave a layer out.
    assert not _lead_ok(f(widths, True), vh, sh, widths) and not _lead_ok(f(widths), vz, sz, widths)
    assert not _lead_ok(f(widths[:1]), vh, sh, widths)


@pytest.mark.parametrize("widths", [[128] * 2, [128] * 10, [128] * 20, [256, 64, 128, 32]])
def test_hanin_rolnick_counts_every_hidden_layer(widths):
    vh, sh = _var((logs := _log_lengths(widths, 20_000, np.random.default_rng(len(widths))))[0])
    vz, sz = _var(logs[1])
    f = theory.log_length_variance
    assert abs(vh - f(widths, exact=True)) < 4 * sh and abs(vz - f(widths, True, exact=True)) < 4 * sz
    assert _lead_ok(f(widths), vh, sh, widths) and _lead_ok(f(widths, True), vz, sz, widths)
    if len(widths) < 10:  # the last layer's width counts (here 32: the largest term)
        assert not _lead_ok(f(widths[:-1]), vh, sh, widths) and not _lead_ok(f(widths), vz, sz, widths)


def test_hanin_rolnick_rejects_wrong_formulas_at_depth_20():
    """Width 64, 100k draws: the variance's standard error is ~0.45% of it; the correct 5 sum_{1..20}
    misses by 6% (its O(1/n) bias, allowed), 5 sum_{1..19} by 11%, 1 sum by 80%."""
    widths = [64] * 20
    v, se = _var(_log_lengths(widths, 100_000, np.random.default_rng(20))[0])
    f = theory.log_length_variance
    assert abs(v - f(widths, exact=True)) < 4 * se
    assert _lead_ok(f(widths), v, se, widths)
    assert not _lead_ok(f(widths[:-1]), v, se, widths) and not _lead_ok(f(widths) / 5, v, se, widths)
    assert abs(v - f(widths[:-1], exact=True)) > 8 * se  # one layer fewer, even to all orders
