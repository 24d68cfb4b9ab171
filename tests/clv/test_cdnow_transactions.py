"""RFM and predictive CLV from raw transactions, end to end, against `lifetimes` 0.11.3.

`test_clv_parity.py` checks the models on RFM summaries. This test starts one step earlier,
where a shop starts: its order history. Every transaction of lifetimes' full CDNOW data set
(`CDNOW_master.txt`: 23,570 customers, 69,659 transactions from 1997-01-01 to 1998-06-30,
80 of them of $0) is imported as an order with `flywheel import --kind orders` (dated at
noon shop time on its day, amount in 元). Then, for an observation end in the past
(`1997-09-30`, when later orders must not count) and at the data's last day:

- `flywheel rfm --as-of D` must give, for every customer, lifetimes'
  `summary_data_from_transaction_data(..., observation_period_end=D, freq='D')`: the same
  frequency, recency and T, and the same monetary value within 1e-6 元 — zero-value orders
  are transactions on both sides;
- `flywheel report ltv --clv --to D` must give lifetimes' BG/NBD and Gamma-Gamma fits on
  that summary (Gamma-Gamma on the repeat buyers with a positive mean spend, as lifetimes
  requires) within 1 % relative, and for every customer P(alive), expected purchases in
  the horizon and CLV within 1 % (CLV, printed in fen, also within one fen).

A bare date D means the end of that shop-local day in both commands.

    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/clv/test_cdnow_transactions.py
"""

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_dataset
from lifetimes.utils import summary_data_from_transaction_data

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get(
    "FLYWHEEL_BIN",
    str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "flywheel"),
)
REL_TOL = 0.01
MONEY_TOLERANCE_YUAN = 1e-6
ENDS = ["1997-09-30", "1998-06-30"]
HORIZON_DAYS, MONTHS, RATE = 90, 12, 0.01


@pytest.fixture(scope="module")
def transactions():
    d = load_dataset(
        "CDNOW_master.txt",
        header=0,
        sep=r"\s+",
        names=["customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str},
    )
    d["date"] = pd.to_datetime(d["date"], format="%Y%m%d")
    d["customer_id"] = "c" + d["customer_id"]
    return d


@pytest.fixture(scope="module")
def data_dir(transactions, tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow")
    path = root / "orders.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "user_id", "timestamp", "total", "product_id", "price", "quantity"])
        for i, t in enumerate(transactions.itertuples(index=False)):
            amount = f"{t.amount:.2f}"
            w.writerow([f"o{i}", t.customer_id, f"{t.date:%Y-%m-%d}T12:00:00+08:00", amount, "cd", amount, 1])
    config = root / "flywheel.toml"
    config.write_text(
        "[analytics.clv]\n"
        f"horizon_days = {HORIZON_DAYS}\nmonths = {MONTHS}\ndiscount_rate = {RATE}\n"
        "penalizer = 0.0\nrefresh_hours = 0\n",
        encoding="utf-8",
    )
    data = root / "data"
    out = subprocess.run(
        [BIN, "--config", str(config), "import", "--data-dir", str(data), "--kind", "orders", "--output", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, f"import failed:\n{out.stderr}"
    summary = json.loads(out.stdout)
    assert summary["rejected"] == [], summary["rejected"][:5]
    assert summary["accepted"] == len(transactions), summary
    return data, config


def test_the_data_has_what_the_test_is_about(transactions):
    assert len(transactions) == 69_659 and transactions["customer_id"].nunique() == 23_570
    assert (transactions["amount"] == 0).sum() == 80, "zero-value transactions"
    assert transactions["date"].min() < pd.Timestamp("2000-01-01"), "history before 2000"


def flywheel(data, config, *args):
    out = subprocess.run(
        [BIN, "--config", str(config), *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, f"flywheel {' '.join(args)} failed ({out.returncode}):\n{out.stderr}"
    return out.stdout


def reference_summary(transactions, end):
    seen = transactions[transactions["date"] <= pd.Timestamp(end)]
    return summary_data_from_transaction_data(
        seen, "customer_id", "date", monetary_value_col="amount", observation_period_end=end, freq="D"
    )


@pytest.mark.parametrize("end", ENDS)
def test_rfm_from_transactions_matches_lifetimes(end, transactions, data_dir):
    data, config = data_dir
    expected = reference_summary(transactions, end)
    rows = list(csv.DictReader(flywheel(data, config, "rfm", "--as-of", end, "--format", "csv").splitlines()))
    got = {r["user_id"]: r for r in rows}
    assert len(got) == len(rows) == len(expected), (len(got), len(rows), len(expected))
    mismatches = []
    for cid, e in expected.iterrows():
        r = got.get(cid)
        want = (int(e["frequency"]), int(e["recency"]), int(e["T"]), float(e["monetary_value"]))
        actual = None if r is None else (int(r["frequency"]), int(r["recency"]), int(r["T"]), float(r["monetary_value"]))
        if actual is None or actual[:3] != want[:3] or not math.isclose(actual[3], want[3], abs_tol=MONEY_TOLERANCE_YUAN):
            mismatches.append(f"{cid}: flywheel {actual} lifetimes {want}")
    assert not mismatches, f"{len(mismatches)} of {len(expected)} customers differ:\n" + "\n".join(mismatches[:20])


def rel_diff(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-6)


@pytest.mark.parametrize("end", ENDS)
def test_clv_from_transactions_matches_lifetimes(end, transactions, data_dir):
    data, config = data_dir
    s = reference_summary(transactions, end)
    f, r, t, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(f, r, t)
    spenders = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    if end == ENDS[-1]:
        assert len(spenders) < (s["frequency"] > 0).sum(), "a repeat buyer whose repeat purchases were all $0"
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(spenders["frequency"], spenders["monetary_value"])

    out = json.loads(
        flywheel(data, config, "report", "ltv", "--clv", "--to", end, "--top", "1000000", "--format", "json")
    )
    assert out["penalizer"] == 0.0 and out["horizon_days"] == HORIZON_DAYS
    for model, fitted in (("bgnbd", bgf), ("gamma_gamma", ggf)):
        for k, want in fitted.params_.items():
            assert rel_diff(out[model][k], want) <= REL_TOL, f"{model}.{k}: ours {out[model][k]} lifetimes {want}"

    predictions = {p["user_id"]: p for p in out["predictions"]}
    assert sorted(predictions) == sorted(s.index), "one prediction per customer with an order by the end"
    ids = list(s.index)
    p_alive = np.asarray(bgf.conditional_probability_alive(f, r, t), dtype=float)
    expected = np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, t), dtype=float)
    clv = np.asarray(
        ggf.customer_lifetime_value(bgf, f, r, t, m, time=MONTHS, discount_rate=RATE, freq="D"), dtype=float
    )
    for key, want, ours in (
        ("p_alive", p_alive, [predictions[i]["p_alive"] for i in ids]),
        ("expected_purchases", expected, [predictions[i]["expected_purchases"] for i in ids]),
    ):
        diff = rel_diff(ours, want)
        worst = int(np.argmax(diff))
        assert diff[worst] <= REL_TOL, f"{key} of {ids[worst]}: ours {ours[worst]} lifetimes {want[worst]}"
    ours_fen = np.array([predictions[i]["clv"] for i in ids], dtype=float)
    want_fen = clv * 100.0
    off = (np.abs(ours_fen - want_fen) > 1.0) & (rel_diff(ours_fen, want_fen) > REL_TOL)
    assert not off.any(), [(ids[i], ours_fen[i], want_fen[i]) for i in np.flatnonzero(off)[:10]]
