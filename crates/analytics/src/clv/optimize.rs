//! Derivative-free minimisation (Nelder–Mead) for the maximum-likelihood fits, run on
//! log-parameters so every parameter stays positive.

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

/// Minimises `f` from `x0` by Nelder–Mead (reflection 1, expansion 2, contraction ½,
/// shrink ½), restarted from the best vertex with a fresh simplex until a restart moves the
/// minimum by less than the tolerances (a restart guards against a collapsed simplex). A
/// non-finite objective value counts as `+∞`.
pub(crate) fn minimize<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    options: Options,
) -> Result<Minimum, MinimizeError> {
    let mut evaluations = 0usize;
    let mut eval = |x: &[f64], evaluations: &mut usize| {
        *evaluations += 1;
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
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
