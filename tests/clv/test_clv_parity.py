"""Parity of Flywheel's predictive CLV (crates/analytics/src/clv) with Python `lifetimes` 0.11.3.

The example binary `clv_fit` (crates/analytics/examples/clv_fit.rs) fits BG/NBD and
Gamma-Gamma on an RFM summary CSV and prints parameters and per-customer predictions as
JSON. Each case fits the same summary with `lifetimes.BetaGeoFitter` and
`lifetimes.GammaGammaFitter` (on the repeat buyers) and requires, within 1 % relative:

- the fitted parameters r, alpha, a, b and p, q, v;
- for every customer: `conditional_probability_alive`,
  `conditional_expected_number_of_purchases_up_to_time(horizon)`,
  `conditional_expected_average_profit` and
  `customer_lifetime_value(bgf, ..., time=months, discount_rate=rate, freq='D')`.

Relative difference is |ours − lifetimes| / max(|lifetimes|, 1e-6): values below 1e-6 are
compared with that absolute floor. The churn-risk band must be lifetimes' P(alive) banded by
the same thresholds, except where P(alive) is within the 1 % tolerance of a threshold.

Cases: (1) lifetimes' shipped CDNOW sample with monetary values (2357 customers; its time
unit is weeks, which both sides treat alike as "the data's unit" with freq='D'); (2) 2000
customers drawn by `lifetimes.generate_data.beta_geometric_nbd_model` under a fixed numpy
seed with ages of 30–730 days, plus a Gamma-Gamma spend in 元; (3) a small, hand-made edge
case (40 customers: one-day-old customers, last purchase on the last day, a heavy buyer,
mostly one-time buyers) with longer horizons, fitted with penalizer_coef 0.01 and with 0.
The penalised fit has a + b < 1, where lifetimes' expected purchases (and so its CLV) of the customers with x = 0
are NaN (it takes the log of a negative 2F1); there the reference is lifetimes' own eq. 10
with scipy's 2F1 used without the log (`eq10_without_log`), and the Rust side must be finite.
Bad input files must make the binary exit non-zero with a readable message.

    cargo build -p flywheel-analytics --example clv_fit
    FLYWHEEL_CLV_BIN=$CARGO_TARGET_DIR/debug/examples/clv_fit pytest -q tests/clv

Environment: FLYWHEEL_CLV_BIN (default <CARGO_TARGET_DIR or repo/target>/debug/examples/clv_fit).
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from lifetimes.generate_data import beta_geometric_nbd_model
from scipy.special import hyp2f1

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get(
    "FLYWHEEL_CLV_BIN",
    str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "examples" / "clv_fit"),
)
REL_TOL = 0.01
ABS_FLOOR = 1e-6
CHURN_HIGH, CHURN_MEDIUM = 0.3, 0.7  # the binary's [SUGGESTED DEFAULT] bands


def cdnow():
    d = load_cdnow_summary_data_with_monetary_value()
    d.index.name = "id"
    return d.reset_index()


def generated():
    """2000 BG/NBD customers (lifetimes' generator, seeded) with a Gamma-Gamma spend in 元."""
    np.random.seed(20240607)
    size = 2000
    ages = np.random.randint(30, 731, size=size).astype(float)
    d = beta_geometric_nbd_model(ages, 0.6, 25.0, 0.7, 2.8, size=size)
    x = d["frequency"].to_numpy().astype(int)
    # Gamma-Gamma: nu ~ Gamma(q=3.5, rate v=120); the mean of x values ~ Gamma(p=5, rate nu)
    nu = np.random.gamma(3.5, 1.0 / 120.0, size=size)
    mean_value = np.random.gamma(5.0 * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1)))
    out = pd.DataFrame(
        {
            "id": [f"g{i}" for i in range(size)],
            "frequency": x,
            "recency": d["recency"].to_numpy(),
            "T": d["T"].to_numpy(),
            "monetary_value": np.where(x > 0, np.round(mean_value, 2), 0.0),
        }
    )
    return out


def loyal():
    """800 customers of a shop whose customers barely drop out (a = 0.001, b = 50): the
    likelihood has a long flat ridge toward no dropout, where a derivative-free search
    stops elsewhere than lifetimes' BFGS (seeded; spend as in `generated`)."""
    np.random.seed(3)
    size = 800
    ages = np.random.uniform(30, 400, size)
    d = beta_geometric_nbd_model(ages, 0.5, 20.0, 0.001, 50.0, size=size)
    x = d["frequency"].to_numpy().astype(int)
    return pd.DataFrame(
        {
            "id": [f"l{i}" for i in range(size)],
            "frequency": x,
            "recency": d["recency"].to_numpy(),
            "T": d["T"].to_numpy(),
            "monetary_value": np.where(x > 0, np.round(np.random.gamma(3.0, 30.0, size), 2), 0.0),
        }
    )


def edge():
    rows = [
        # frequency, recency, T, monetary_value
        (0, 0.0, 1.0, 0.0),
        (0, 0.0, 1.0, 0.0),
        (1, 1.0, 1.0, 9.9),  # bought again on day 1 of a one-day life
        (1, 0.5, 2.0, 15.0),
        (0, 0.0, 3.0, 0.0),
        (2, 4.0, 4.0, 20.0),  # last purchase on the last observed day
        (0, 0.0, 10.0, 0.0),
        (1, 10.0, 30.0, 88.0),
        (0, 0.0, 30.0, 0.0),
        (3, 29.0, 30.0, 45.5),
        (0, 0.0, 60.0, 0.0),
        (1, 5.0, 60.0, 300.0),
        (0, 0.0, 90.0, 0.0),
        (6, 80.0, 90.0, 60.0),
        (0, 0.0, 120.0, 0.0),
        (2, 30.0, 120.0, 35.0),
        (0, 0.0, 150.0, 0.0),
        (40, 199.0, 200.0, 12.5),  # a heavy buyer
        (0, 0.0, 200.0, 0.0),
        (1, 199.0, 200.0, 500.0),
        (0, 0.0, 250.0, 0.0),
        (5, 100.0, 250.0, 70.0),
        (0, 0.0, 300.0, 0.0),
        (2, 280.0, 300.0, 40.0),
        (0, 0.0, 365.0, 0.0),
        (10, 360.0, 365.0, 25.0),
        (0, 0.0, 365.0, 0.0),
        (1, 20.0, 365.0, 150.0),
        (0, 0.0, 400.0, 0.0),
        (0, 0.0, 400.0, 0.0),
        (3, 50.0, 400.0, 99.0),
        (0, 0.0, 5.0, 0.0),
        (0, 0.0, 7.0, 0.0),
        (1, 6.0, 7.0, 33.0),
        (0, 0.0, 14.0, 0.0),
        (0, 0.0, 20.0, 0.0),
        (4, 19.0, 20.0, 18.0),
        (0, 0.0, 45.0, 0.0),
        (2, 44.0, 45.0, 61.0),
        (0, 0.0, 500.0, 0.0),
    ]
    d = pd.DataFrame(rows, columns=["frequency", "recency", "T", "monetary_value"])
    d.insert(0, "id", [f"e{i}" for i in range(len(d))])
    return d


CASES = {
    "cdnow": (cdnow, dict(horizon=90.0, months=12, rate=0.01, penalizer=0.0)),
    "generated": (generated, dict(horizon=90.0, months=12, rate=0.01, penalizer=0.0)),
    "loyal": (loyal, dict(horizon=90.0, months=12, rate=0.01, penalizer=0.0)),
    "edge": (edge, dict(horizon=365.0, months=24, rate=0.02, penalizer=0.01)),
    "edge_unpenalized": (edge, dict(horizon=365.0, months=24, rate=0.02, penalizer=0.0)),
}


def eq10_without_log(bgf, t, x, t_x, age):
    """BG/NBD eq. 10 as lifetimes writes it, but with scipy's 2F1 used as is instead of through
    its logarithm: lifetimes' `np.log(hyp2f1(...))` is NaN when the 2F1 is negative (x = 0 and
    a + b < 1), and so is its prediction; elsewhere the two agree."""
    r, alpha, a, b = (bgf.params_[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, age = (np.asarray(v, dtype=float) for v in (x, t_x, age))
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
    first = (a + b + x - 1) / (a - 1)
    second = 1 - hyp * ((alpha + age) / (alpha + t + age)) ** (r + x)
    return first * second / (1 + (x > 0) * (a / (b + x - 1)) * ((alpha + age) / (alpha + t_x)) ** (r + x))


def lifetimes_reference(d, horizon, months, rate, penalizer):
    f, r, t, m = d["frequency"], d["recency"], d["T"], d["monetary_value"]
    bgf = BetaGeoFitter(penalizer_coef=penalizer).fit(f, r, t)
    lifetimes_predict = bgf.predict

    def predict(horizon_, x, t_x, age):
        got = np.asarray(lifetimes_predict(horizon_, x, t_x, age), dtype=float)
        nan = np.isnan(got)
        if nan.any():
            with np.errstate(all="ignore"):
                got = np.where(nan, eq10_without_log(bgf, horizon_, x, t_x, age), got)
        return pd.Series(got, index=x.index) if isinstance(x, pd.Series) else got

    # lifetimes' customer_lifetime_value calls bgf.predict: it gets the NaN-free values too
    bgf.predict = predict
    bgf.conditional_expected_number_of_purchases_up_to_time = predict
    repeat = d[d["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=penalizer).fit(repeat["frequency"], repeat["monetary_value"])
    return {
        "bgnbd": {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {k: float(ggf.params_[k]) for k in ("p", "q", "v")},
        "p_alive": np.asarray(bgf.conditional_probability_alive(f, r, t), dtype=float),
        "expected_purchases": np.asarray(
            bgf.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t), dtype=float
        ),
        "expected_average_profit": np.asarray(ggf.conditional_expected_average_profit(f, m), dtype=float),
        "clv": np.asarray(
            ggf.customer_lifetime_value(bgf, f, r, t, m, time=months, discount_rate=rate, freq="D"), dtype=float
        ),
    }


def run_binary(path, horizon, months, rate, penalizer):
    args = [BIN, str(path), "--horizon-days", str(horizon), "--clv-months", str(months)]
    args += ["--discount-rate", str(rate), "--penalizer-coef", str(penalizer)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def rel_diff(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return np.abs(ours - theirs) / np.maximum(np.abs(theirs), ABS_FLOOR)


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not Path(BIN).is_file():
        pytest.fail(f"clv_fit binary not found at {BIN}: cargo build -p flywheel-analytics --example clv_fit")


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
@pytest.mark.parametrize("case", sorted(CASES))
def test_parity_with_lifetimes(case, tmp_path):
    make, opts = CASES[case]
    d = make()
    path = tmp_path / f"{case}.csv"
    d.to_csv(path, index=False)
    ref = lifetimes_reference(d, **opts)
    done = run_binary(path, **opts)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    report = {}
    for model in ("bgnbd", "gamma_gamma"):
        for k, want in ref[model].items():
            diff = float(rel_diff(out[model][k], want))
            report[f"{model}.{k}"] = diff
            assert diff <= REL_TOL, f"{case}: {model}.{k} ours {out[model][k]} lifetimes {want}"

    customers = out["customers"]
    assert [c["id"] for c in customers] == [str(i) for i in d["id"]]
    for key in ("p_alive", "expected_purchases", "expected_average_profit", "clv"):
        ours = np.array([c[key] for c in customers], dtype=float)
        assert np.isfinite(ours).all() and np.isfinite(ref[key]).all(), key
        diff = rel_diff(ours, ref[key])
        worst = int(np.argmax(diff))
        report[key] = float(diff[worst])
        assert diff[worst] <= REL_TOL, (
            f"{case}: {key} of customer {customers[worst]['id']}: ours {ours[worst]} "
            f"lifetimes {ref[key][worst]} (rel diff {diff[worst]:.3g})"
        )

    for c, p in zip(customers, ref["p_alive"]):
        near = min(abs(p - CHURN_HIGH), abs(p - CHURN_MEDIUM)) <= REL_TOL * max(p, ABS_FLOOR)
        want = "high" if p < CHURN_HIGH else "medium" if p < CHURN_MEDIUM else "low"
        assert near or c["churn_risk"] == want, (c, p)
    print(f"\n{case}: max relative differences vs lifetimes: " + json.dumps(report, sort_keys=True))


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,frequency,recency,T,monetary_value\n1,2,30,20,10\n", "larger than T"),
        ("id,frequency,recency,T,monetary_value\n1,1.5,3,20,10\n", "whole number"),
        ("id,frequency,recency,T,monetary_value\n1,2,-3,20,10\n", "negative recency"),
        ("id,frequency,recency,T,monetary_value\n1,0,5,20,0\n", "non-zero recency"),
        ("id,frequency,recency,T,monetary_value\n1,2,abc,20,10\n", "not a finite number"),
        ("id,frequency,recency,T\n1,2,3,20\n", "lacks column"),
        ("id,frequency,recency,T,monetary_value\n", "no customer rows"),
        ("id,frequency,recency,T,monetary_value\n1,0,0,20,0\n2,0,0,30,0\n", "no customer has a repeat purchase"),
        ("id,frequency,recency,T,monetary_value\n1,2,3,20,-1\n2,1,5,30,10\n3,0,0,9,0\n", "monetary value ≥ 0"),
    ],
)
def test_bad_input_fails_readably(content, message, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    done = run_binary(path, 90, 12, 0.01, 0.0)
    assert done.returncode != 0
    assert done.stdout == ""
    assert message in done.stderr, done.stderr
    assert "panicked" not in done.stderr


def test_missing_file_and_bad_flag_fail_readably(tmp_path):
    done = subprocess.run([BIN, str(tmp_path / "nope.csv")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "cannot read" in done.stderr
    path = tmp_path / "ok.csv"
    path.write_text("id,frequency,recency,T,monetary_value\n1,2,3,20,10\n")
    done = subprocess.run([BIN, str(path), "--discount-rate", "x"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a number" in done.stderr
    done = subprocess.run([BIN, str(path), "--churn-high", "0.9"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "churn thresholds" in done.stderr
