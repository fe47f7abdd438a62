"""Kullback-Leibler and Jensen-Shannon divergences, for discrete and for sampled distributions.

Kullback-Leibler divergence of `p` from `q` (not symmetric, possibly infinite):

    KL(p || q) = sum_x p(x) log(p(x) / q(x))        (an integral for densities)

with `0 log(0 / q) = 0`, and `+inf` where `p(x) > 0 = q(x)`.

Jensen-Shannon divergence: the mean KL of `p` and `q` to their mixture
`m = (p + q) / 2`. It is symmetric, finite and bounded, `0 <= JS <= log 2`
(in nats; 1 in bits), and 0 exactly when `p = q`:

    JS(p || q) = KL(p || m) / 2 + KL(q || m) / 2

The GAN connection (Goodfellow et al. 2014, "Generative Adversarial Nets"):
for a fixed generator the value `V(G, D) = E_pd[log D] + E_pg[log(1 - D)]` is
maximised by `D*(x) = p_d(x) / (p_d(x) + p_g(x))`, and then
`V(G, D*) = -log 4 + 2 JS(p_d || p_g)`. `gan_value` and
`optimal_discriminator` spell this out for discrete distributions.

From samples only (a generator gives samples, never its density):

* `kl_divergence_knn`: the k-nearest-neighbour estimator of Wang, Kulkarni
  and Verdú 2009, "Divergence Estimation for Multidimensional Densities via
  k-Nearest-Neighbor Distances". For `x_1..x_n ~ p` and `y_1..y_m ~ q` in
  `d` dimensions, with `rho_k(i)` the distance from `x_i` to its k-th nearest
  neighbour among the other `x`, and `nu_k(i)` the distance to its k-th
  nearest neighbour among the `y`:

      KL(p || q) ~= d / n * sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))

  It is consistent (exact as n, m -> inf) and needs no bins, but is noisy for
  few samples and assumes continuous densities (no repeated points).
* `js_divergence_histogram`: bin both sample sets on the same grid and take
  the discrete JS of the two histograms. JS stays finite on empty bins, which
  KL would not; the value depends on the bins (too coarse: too small; too
  fine for the sample size: too large), so it suits 1-D and 2-D toys.

Course: ch7 Appendix (KL and JS divergences), ch5.2.2-5.2.3 (the optimal
discriminator and the value of the GAN game).
"""

import numpy as np


def _as_distributions(p, q):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape. Received: {p.shape} and {q.shape}")
    for name, r in (("p", p), ("q", q)):
        if np.any(r < 0):
            raise ValueError(f"{name} must be non-negative. Received a negative entry: {r.min()}")
        if not np.allclose(r.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError(
                f"{name} must sum to 1 along the last axis. Received sums {r.sum(axis=-1)}"
            )
    return p, q


def kl_divergence(p, q):
    """`KL(p || q)` in nats for discrete distributions (probabilities on the last axis).

    Args:
      p, q: arrays of the same shape whose last axis sums to 1.

    Returns:
      The divergence (an array over the leading axes, a float for vectors);
      `inf` where `q` is 0 and `p` is not.

    Raises:
      ValueError: for shapes that differ, negative entries or sums other than 1.
    """
    p, q = _as_distributions(p, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)  # 0 log(0/q) = 0
    return terms.sum(axis=-1)[()]


def js_divergence(p, q):
    """`JS(p || q) = KL(p || m) / 2 + KL(q || m) / 2` with `m = (p + q) / 2`, in nats.

    Args:
      p, q: arrays of the same shape whose last axis sums to 1.

    Returns:
      The divergence, in `[0, log 2]`.
    """
    p, q = _as_distributions(p, q)
    m = (p + q) / 2.0
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def optimal_discriminator(p_d, p_g):
    """`D*(x) = p_d(x) / (p_d(x) + p_g(x))`, the maximiser of `V(G, D)` for a fixed `G`.

    Where both probabilities are 0 any value is optimal; 1/2 is returned.
    """
    p_d, p_g = _as_distributions(p_d, p_g)
    total = p_d + p_g
    return np.where(total > 0, p_d / np.where(total > 0, total, 1.0), 0.5)


def gan_value(p_d, p_g, d):
    """`V(G, D) = sum_x p_d(x) log D(x) + p_g(x) log(1 - D(x))` for discrete distributions.

    Args:
      p_d: the data distribution, a probability vector.
      p_g: the generator's distribution, same shape.
      d: the discriminator's probabilities `D(x)` that `x` is real, in [0, 1].

    Returns:
      The value as a float (terms with zero probability count 0).
    """
    p_d, p_g = _as_distributions(p_d, p_g)
    d = np.asarray(d, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        real = np.where(p_d > 0, p_d * np.log(d), 0.0)
        fake = np.where(p_g > 0, p_g * np.log1p(-d), 0.0)
    return float(np.sum(real + fake))


def _as_samples(x, name):
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = x[:, np.newaxis]
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(
            f"{name} must be samples of shape [n] or [n, d], n >= 2. Received: {x.shape}"
        )
    return x


def kl_divergence_knn(x, y, k=1):
    """k-nearest-neighbour estimate of `KL(p || q)` from `x ~ p` and `y ~ q` (module docstring).

    Args:
      x: samples of `p`, shape `[n]` or `[n, d]`.
      y: samples of `q`, shape `[m]` or `[m, d]`.
      k: which neighbour; larger `k` is smoother but more biased.

    Returns:
      The estimate in nats (a float; it can come out slightly negative).

    Raises:
      ValueError: for mismatched dimensions or too few samples for `k`.
    """
    from scipy.spatial import cKDTree

    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    n, d = x.shape
    m = len(y)
    if y.shape[1] != d:
        raise ValueError(f"x and y must have the same dimension. Received: {d} and {y.shape[1]}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k < min(n, m + 1):
        raise ValueError(f"k must be an integer in [1, min(n - 1, m)]. Received: k={k}")
    # Query k + 1 neighbours within x: the nearest one is x_i itself.
    rho = cKDTree(x).query(x, k=k + 1)[0][:, k]
    nu = cKDTree(y).query(x, k=k)[0]
    nu = nu if k == 1 else nu[:, k - 1]
    return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))


def js_divergence_histogram(x, y, bins=20, value_range=None):
    """Histogram estimate of `JS(p || q)` from `x ~ p` and `y ~ q` (module docstring).

    Args:
      x: samples of `p`, shape `[n]` or `[n, d]` (d of 1 or 2 is sensible).
      y: samples of `q`, shape `[m]` or `[m, d]`.
      bins: bins per dimension (or explicit edges, as for `numpy.histogramdd`).
      value_range: `[(low, high)] * d`; default the joint range of `x` and `y`.

    Returns:
      The estimate in nats, in `[0, log 2]`.
    """
    x, y = _as_samples(x, "x"), _as_samples(y, "y")
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"x and y must have the same dimension. Received: {x.shape[1]} and {y.shape[1]}"
        )
    if value_range is None:
        both = np.concatenate([x, y])
        value_range = list(zip(both.min(axis=0), both.max(axis=0)))
    counts_x = np.histogramdd(x, bins=bins, range=value_range)[0].ravel()
    counts_y = np.histogramdd(y, bins=bins, range=value_range)[0].ravel()
    for name, counts in (("x", counts_x), ("y", counts_y)):
        if counts.sum() == 0:
            raise ValueError(f"no sample of {name} falls in value_range={value_range}")
    return float(js_divergence(counts_x / counts_x.sum(), counts_y / counts_y.sum()))
