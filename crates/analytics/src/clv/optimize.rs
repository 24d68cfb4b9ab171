//! Minimisation for the maximum-likelihood fits, run on log-parameters so every parameter
//! stays positive: BFGS with central-difference gradients first — the method `lifetimes`
//! uses (scipy's BFGS, `tol` 1e-7 on the gradient), from the same start, so that on a flat
//! likelihood ridge (a shop whose customers barely drop out) both stop at the same
//! optimum — and derivative-free Nelder–Mead when BFGS does not converge.

/// A local minimum found by [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Minimum {
    /// The minimising point.
    pub x: Vec<f64>,
    /// The objective there.
    pub fun: f64,
    /// Objective evaluations spent.
    pub evaluations: usize,
}

/// Why [`minimize`] stopped without a minimum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MinimizeError {
    /// The starting point's objective is not finite.
    BadStart,
    /// The evaluation budget ran out before the simplex converged.
    Budget { evaluations: usize },
}

/// Tolerances of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Converged when every vertex is within `xtol` (max-norm) of the best one …
    pub xtol: f64,
    /// … and every objective within `ftol · (1 + |f_best|)` of the best one.
    pub ftol: f64,
    /// Edge of the starting simplex along each axis.
    pub step: f64,
    /// Objective evaluations allowed over all restarts.
    pub max_evaluations: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            xtol: 1e-9,
            ftol: 1e-12,
            step: 0.5,
            max_evaluations: 20_000,
        }
    }
}

/// Gradient tolerance of [`bfgs`] (max-norm), as `lifetimes` passes scipy (`tol=1e-7`).
const GTOL: f64 = 1e-7;

/// Minimises `f` from `x0`: [`bfgs`] when it converges, else [`nelder_mead_restarted`]
/// from `x0` (or the unconverged BFGS point, when it is lower than where Nelder–Mead
/// converged).
pub(crate) fn minimize<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    options: Options,
) -> Result<Minimum, MinimizeError> {
    let quasi_newton = bfgs(&mut f, x0, options.max_evaluations / 2);
    if let Ok((m, true)) = &quasi_newton {
        return Ok(m.clone());
    }
    let simplex = nelder_mead_restarted(&mut f, x0, options);
    match (quasi_newton, simplex) {
        (Ok((q, _)), Ok(s)) if q.fun < s.fun => Ok(q),
        (_, Ok(s)) => Ok(s),
        (_, Err(e)) => Err(e),
    }
}

/// The objective with non-finite values as `+∞`, counting evaluations.
fn finite<F: FnMut(&[f64]) -> f64>(f: &mut F, x: &[f64], evaluations: &mut usize) -> f64 {
    *evaluations += 1;
    let v = f(x);
    if v.is_finite() {
        v
    } else {
        f64::INFINITY
    }
}

/// The gradient of `f` at `x` by central differences (step `1e-5 · max(1, |xᵢ|)`).
fn gradient<F: FnMut(&[f64]) -> f64>(f: &mut F, x: &[f64], evaluations: &mut usize) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            let h = 1e-5 * x[i].abs().max(1.0);
            probe[i] = x[i] + h;
            let up = finite(f, &probe, evaluations);
            probe[i] = x[i] - h;
            let down = finite(f, &probe, evaluations);
            probe[i] = x[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// BFGS (Nocedal & Wright, algorithm 6.1): the inverse-Hessian estimate starts as the
/// identity, a backtracking line search from step 1 keeps the Armijo condition (c₁ 1e-4),
/// the update is skipped when the curvature `sᵀy` is not positive. Converged (the `bool`)
/// when the gradient's max-norm is at most [`GTOL`], or when no step decreases `f` any
/// more with the gradient already below 1e-5 (rounding of the numerical gradient); the
/// last point otherwise.
fn bfgs<F: FnMut(&[f64]) -> f64>(
    f: &mut F,
    x0: &[f64],
    budget: usize,
) -> Result<(Minimum, bool), MinimizeError> {
    let n = x0.len();
    let mut evaluations = 0usize;
    let mut x = x0.to_vec();
    let mut fx = finite(f, &x, &mut evaluations);
    if !fx.is_finite() {
        return Err(MinimizeError::BadStart);
    }
    let mut g = gradient(f, &x, &mut evaluations);
    let mut h: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let done = |x: Vec<f64>, fun: f64, evaluations: usize, converged: bool| {
        Ok((Minimum { x, fun, evaluations }, converged))
    };
    while evaluations < budget {
        let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if !gmax.is_finite() {
            return done(x, fx, evaluations, false);
        }
        if gmax <= GTOL {
            return done(x, fx, evaluations, true);
        }
        let mut p: Vec<f64> = h.iter().map(|row| -dot(row, &g)).collect();
        let mut slope = dot(&g, &p);
        if slope >= 0.0 {
            // Not a descent direction: start the estimate again.
            for (i, row) in h.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = f64::from(u8::from(i == j));
                }
            }
            p = g.iter().map(|v| -v).collect();
            slope = dot(&g, &p);
        }
        let mut alpha = 1.0;
        let mut next = None;
        for _ in 0..60 {
            let xn: Vec<f64> = x.iter().zip(&p).map(|(a, b)| a + alpha * b).collect();
            let fnew = finite(f, &xn, &mut evaluations);
            if fnew <= fx + 1e-4 * alpha * slope {
                next = Some((xn, fnew));
                break;
            }
            alpha *= 0.5;
        }
        let Some((xn, fnew)) = next else {
            return done(x, fx, evaluations, gmax <= 1e-5);
        };
        let gn = gradient(f, &xn, &mut evaluations);
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, with ρ = 1 / sᵀy.
            let rho = 1.0 / sy;
            let hy: Vec<f64> = h.iter().map(|row| dot(row, &y)).collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i][j] += (1.0 + rho * yhy) * rho * s[i] * s[j] - rho * (hy[i] * s[j] + s[i] * hy[j]);
                }
            }
        }
        x = xn;
        fx = fnew;
        g = gn;
    }
    done(x, fx, evaluations, false)
}

/// Minimises `f` from `x0` by Nelder–Mead (reflection 1, expansion 2, contraction ½,
/// shrink ½), restarted from the best vertex with a fresh simplex until a restart moves the
/// minimum by less than the tolerances (a restart guards against a collapsed simplex). A
/// non-finite objective value counts as `+∞`.
fn nelder_mead_restarted<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    options: Options,
) -> Result<Minimum, MinimizeError> {
    let mut evaluations = 0usize;
    let mut eval = |x: &[f64], evaluations: &mut usize| finite(&mut f, x, evaluations);
    let mut best_x = x0.to_vec();
    let mut best_f = eval(&best_x, &mut evaluations);
    if !best_f.is_finite() {
        return Err(MinimizeError::BadStart);
    }
    let mut step = options.step;
    loop {
        let (x, fx) = nelder_mead(&mut eval, &best_x, best_f, step, options, &mut evaluations)?;
        let moved = x
            .iter()
            .zip(&best_x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let gained = best_f - fx;
        best_x = x;
        best_f = fx;
        if moved <= 10.0 * options.xtol && gained <= options.ftol * (1.0 + best_f.abs()) {
            return Ok(Minimum {
                x: best_x,
                fun: best_f,
                evaluations,
            });
        }
        step = (step * 0.5).max(1e-3);
    }
}

type Vertex = (Vec<f64>, f64);

fn nelder_mead<E: FnMut(&[f64], &mut usize) -> f64>(
    eval: &mut E,
    x0: &[f64],
    f0: f64,
    step: f64,
    options: Options,
    evaluations: &mut usize,
) -> Result<Vertex, MinimizeError> {
    let n = x0.len();
    let mut simplex: Vec<Vertex> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), f0));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let fx = eval(&x, evaluations);
        simplex.push((x, fx));
    }
    loop {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let f_best = simplex[0].1;
        let spread_f = simplex[n].1 - f_best;
        let spread_x = simplex[1..]
            .iter()
            .flat_map(|(x, _)| x.iter().zip(&simplex[0].0).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if spread_x <= options.xtol && spread_f <= options.ftol * (1.0 + f_best.abs()) {
            return Ok(simplex.swap_remove(0));
        }
        if *evaluations >= options.max_evaluations {
            return Err(MinimizeError::Budget {
                evaluations: *evaluations,
            });
        }
        let mut centroid = vec![0.0; n];
        for (x, _) in &simplex[..n] {
            for (c, xi) in centroid.iter_mut().zip(x) {
                *c += xi / n as f64;
            }
        }
        let along = |coef: f64, worst: &[f64]| -> Vec<f64> {
            centroid
                .iter()
                .zip(worst)
                .map(|(c, w)| c + coef * (c - w))
                .collect()
        };
        let worst = simplex[n].0.clone();
        let f_worst = simplex[n].1;
        let xr = along(1.0, &worst);
        let fr = eval(&xr, evaluations);
        if fr < f_best {
            let xe = along(2.0, &worst);
            let fe = eval(&xe, evaluations);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
            continue;
        }
        if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
            continue;
        }
        let (xc, fc, accept) = if fr < f_worst {
            let xc = along(0.5, &worst);
            let fc = eval(&xc, evaluations);
            (xc, fc, fc <= fr)
        } else {
            let xc = along(-0.5, &worst);
            let fc = eval(&xc, evaluations);
            (xc, fc, fc < f_worst)
        };
        if accept {
            simplex[n] = (xc, fc);
            continue;
        }
        let best = simplex[0].0.clone();
        for vertex in simplex.iter_mut().skip(1) {
            let x: Vec<f64> = best
                .iter()
                .zip(&vertex.0)
                .map(|(b, v)| b + 0.5 * (v - b))
                .collect();
            let fx = eval(&x, evaluations);
            *vertex = (x, fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimize(rosen, &[-1.2, 1.0], Options::default()).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn finds_a_four_dimensional_quadratic_minimum() {
        let target = [0.3, -2.0, 1.5, 4.0];
        let f = |x: &[f64]| {
            x.iter()
                .zip(&target)
                .enumerate()
                .map(|(i, (a, b))| (i as f64 + 1.0) * (a - b).powi(2))
                .sum()
        };
        let m = minimize(f, &[0.0; 4], Options::default()).unwrap();
        for (a, b) in m.x.iter().zip(&target) {
            assert!((a - b).abs() < 1e-7, "{m:?}");
        }
    }

    #[test]
    fn reports_a_bad_start_and_an_exhausted_budget() {
        assert_eq!(
            minimize(|_| f64::NAN, &[0.0], Options::default()),
            Err(MinimizeError::BadStart)
        );
        let opts = Options {
            max_evaluations: 10,
            ..Options::default()
        };
        let r = minimize(|x: &[f64]| (x[0] - 3.0).powi(2) + x[1].powi(2), &[0.0, 0.0], opts);
        assert!(matches!(r, Err(MinimizeError::Budget { .. })));
    }
}
