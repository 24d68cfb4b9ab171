"""Parity of Flywheel's RFM summary with the Python `lifetimes` package, end to end.

A seeded random shop (300 buyers, 1–20 orders each over 2023–2024, some on the same
shop-local day, some near local midnight, some after the observation end) is summarised by
`lifetimes.utils.summary_data_from_transaction_data(df, 'customer_id', 'date',
monetary_value_col='amount', observation_period_end=END, freq='D')`, with `date` the
Asia/Shanghai calendar day of each order. The same orders are imported through
`flywheel import --kind orders` (CSV, one row per order line) and `flywheel rfm --as-of ...
--format csv` must give the same frequency, recency and T for every buyer, the same
monetary value within 1e-6 元, and the same set of buyers.

The generator also writes the fixture of the Rust parity test
(`crates/audience/tests/lifetimes_fixture.rs`), so that test needs no Python:

    python tests/audience/test_lifetimes.py --write-fixture crates/audience/tests/fixtures/lifetimes_summary.json

`test_fixture_is_current` fails when the checked-in fixture no longer matches the generator
and the installed lifetimes.

    pip install -r tests/requirements.txt
    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/audience

Environment: FLYWHEEL_BIN (the binary; default <CARGO_TARGET_DIR or repo/target>/debug/flywheel).
"""

import csv
import json
import math
import os
import random
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import lifetimes
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get(
    "FLYWHEEL_BIN",
    str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "flywheel"),
)
FIXTURE = REPO / "crates" / "audience" / "tests" / "fixtures" / "lifetimes_summary.json"

SEED = 20241231
BUYERS = 300
SHOP_TZ = ZoneInfo("Asia/Shanghai")
EPOCH = date(1970, 1, 1)
FIRST_DAY = date(2023, 1, 1)
LAST_DAY = date(2024, 12, 31)

# name -> (--as-of of `flywheel rfm`, lifetimes' observation_period_end: its shop-local day)
CASES = {
    "year_end": ("2024-12-31T23:59:59+08:00", "2024-12-31"),
    "mid_data": ("2024-01-15T23:59:59+08:00", "2024-01-15"),
}
RFM_HEADER = ["profile_id", "user_id", "frequency", "recency", "T", "monetary_value", "r", "f", "m", "segment"]
MONEY_TOLERANCE_YUAN = 1e-6


# ---------------------------------------------------------------- the shop


def yuan(fen):
    """Decimal text of an amount in fen, e.g. 12345 -> '123.45'."""
    return f"{fen // 100}.{fen % 100:02d}"


def local_datetime(day, seconds):
    return datetime.combine(day, time()).replace(tzinfo=SHOP_TZ) + timedelta(seconds=seconds)


def order_time(rng, day):
    """A time on shop-local `day`: one in five within ten minutes of a local midnight."""
    roll = rng.random()
    if roll < 0.1:
        seconds = rng.randrange(0, 600)
    elif roll < 0.2:
        seconds = 86_400 - 600 + rng.randrange(0, 600)
    else:
        seconds = rng.randrange(0, 86_400)
    return local_datetime(day, seconds)


def stamp(rng, at):
    """ISO-8601 text of `at`: +08:00 mostly, UTC `Z` for one in five (the local day differs near midnight)."""
    if rng.random() < 0.2:
        return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return at.isoformat()


def lines(rng):
    """1–3 order lines as (product_id, name, price_fen, quantity)."""
    out = []
    for _ in range(rng.randint(1, 3)):
        product = rng.randrange(1, 60)
        price = rng.choice([rng.randrange(1, 100_000), rng.randrange(100, 2_000) * 100 + 45, 12_345])
        out.append((f"p{product:03d}", f"商品 {product}, 款{product % 7}", price, rng.randint(1, 3)))
    return out


def make_order(rng, user_id, seq, at):
    order_lines = lines(rng)
    return {
        "order_id": f"{user_id}-o{seq:02d}",
        "user_id": user_id,
        "at": at,
        "timestamp": stamp(rng, at),
        "lines": order_lines,
        "total_fen": sum(price * qty for _, _, price, qty in order_lines),
    }


def generate_orders(seed=SEED, buyers=BUYERS):
    """The shop's orders, the same for a given seed on every Python version."""
    rng = random.Random(seed)
    span = (LAST_DAY - FIRST_DAY).days
    orders = []
    for b in range(buyers):
        user_id = f"u{b:04d}"
        start = rng.randrange(0, span + 1)
        days = []
        for seq in range(rng.randint(1, 20)):
            if days and rng.random() < 0.25:
                day = rng.choice(days)  # another order on an earlier order's day
            elif rng.random() < 0.05:
                day = LAST_DAY + timedelta(days=rng.randint(1, 10))  # after the observation end
            else:
                day = FIRST_DAY + timedelta(days=rng.randint(start, span))
            days.append(day)
            orders.append(make_order(rng, user_id, seq, order_time(rng, day)))
    # Boundaries: the last second of an observation end day is in, the next second is out.
    edges = {
        "edge-boundaries": [
            local_datetime(date(2024, 1, 10), 3_600),
            local_datetime(date(2024, 1, 15), 86_399),
            local_datetime(date(2024, 1, 16), 0),
            local_datetime(date(2024, 12, 31), 86_399),
            local_datetime(date(2025, 1, 1), 0),
        ],
        "edge-one-day": [local_datetime(date(2024, 6, 1), s) for s in (5, 43_200, 86_395)],
        "edge-single": [local_datetime(date(2023, 1, 1), 0)],
        "edge-after-end": [local_datetime(date(2025, 1, 2), 600)],
    }
    for user_id, times in edges.items():
        for seq, at in enumerate(times):
            orders.append(make_order(rng, user_id, seq, at))
    return orders


def shop_day(order):
    return order["at"].astimezone(SHOP_TZ).date()


def lifetimes_summary(orders, observation_end):
    """{user_id: (frequency, recency, T, monetary_value in 元)} from lifetimes."""
    df = pd.DataFrame(
        {
            "customer_id": [o["user_id"] for o in orders],
            "date": [shop_day(o).isoformat() for o in orders],
            "amount": [o["total_fen"] / 100 for o in orders],
        }
    )
    summary = summary_data_from_transaction_data(
        df, "customer_id", "date", monetary_value_col="amount", observation_period_end=observation_end, freq="D"
    )
    out = {}
    for user_id, row in summary.iterrows():
        for col in ("frequency", "recency", "T"):
            assert float(row[col]).is_integer(), (user_id, col, row[col])
        out[user_id] = (int(row["frequency"]), int(row["recency"]), int(row["T"]), float(row["monetary_value"]))
    return out


def write_orders_csv(orders, path):
    """Flywheel's import format (docs/import.md, orders): one row per order line."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "user_id", "timestamp", "total", "product_id", "name", "price", "quantity"])
        for o in orders:
            for product_id, name, price, qty in o["lines"]:
                w.writerow(
                    [o["order_id"], o["user_id"], o["timestamp"], yuan(o["total_fen"]), product_id, name, yuan(price), qty]
                )


def fixture_data(orders):
    """What crates/audience/tests/lifetimes_fixture.rs checks `summarize` against."""
    by_user = {}
    for o in orders:
        ts_ms = int(o["at"].timestamp()) * 1000
        by_user.setdefault(o["user_id"], []).append([ts_ms, o["total_fen"]])
    cases = []
    for name, (_, end) in CASES.items():
        expected = lifetimes_summary(orders, end)
        cases.append(
            {
                "name": name,
                "observation_end": end,
                "observation_end_day": (date.fromisoformat(end) - EPOCH).days,
                "expected": [
                    {"user_id": u, "frequency": f, "recency": r, "T": t, "monetary_value": m}
                    for u, (f, r, t, m) in sorted(expected.items())
                ],
            }
        )
    return {
        "about": "Made by tests/audience/test_lifetimes.py --write-fixture; expected values from "
        "lifetimes.utils.summary_data_from_transaction_data(freq='D', monetary_value_col='amount') "
        "over shop-local (timezone) days. purchases: [UTC ms, amount in fen]; monetary_value in yuan.",
        "seed": SEED,
        "timezone": "Asia/Shanghai",
        "lifetimes": lifetimes.__version__,
        "pandas": pd.__version__,
        "customers": [{"user_id": u, "purchases": p} for u, p in sorted(by_user.items())],
        "cases": cases,
    }


def dump_fixture(data):
    """JSON text with one customer and one expected summary per line (readable diffs)."""

    def rows(items, indent):
        return "[\n" + ",\n".join(indent + json.dumps(i) for i in items) + "\n" + indent[:-2] + "]"

    cases = []
    for case in data["cases"]:
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in case.items() if k != "expected")
        cases.append('    {' + head + ', "expected": ' + rows(case["expected"], "      ") + "}")
    top = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items() if k not in ("customers", "cases")]
    top.append('  "customers": ' + rows(data["customers"], "    "))
    top.append('  "cases": [\n' + ",\n".join(cases) + "\n  ]")
    return "{\n" + ",\n".join(top) + "\n}\n"


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def orders():
    return generate_orders()


@pytest.fixture(scope="module")
def data_dir(orders, tmp_path_factory):
    """A fresh data dir holding every order, imported through `flywheel import`."""
    root = tmp_path_factory.mktemp("lifetimes")
    path = root / "orders.csv"
    write_orders_csv(orders, path)
    data = root / "data"
    out = subprocess.run(
        [BIN, "import", "--data-dir", str(data), "--kind", "orders", "--output", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"import failed:\n{out.stderr}"
    summary = json.loads(out.stdout)
    assert summary["rejected"] == [], summary["rejected"][:5]
    assert summary["records"] == len(orders) and summary["accepted"] == len(orders), summary
    return data


def test_generated_shop_covers_the_cases(orders):
    """The random shop really has what the parity test is about."""
    per_user_day = {}
    for o in orders:
        key = (o["user_id"], shop_day(o))
        per_user_day[key] = per_user_day.get(key, 0) + 1
    assert sum(1 for n in per_user_day.values() if n > 1) >= 50, "orders sharing a shop-local day"
    utc_day_differs = [o for o in orders if o["at"].astimezone(timezone.utc).date() != shop_day(o)]
    assert len(utc_day_differs) >= 100, "orders whose UTC day is not their shop-local day"
    assert any(o["timestamp"].endswith("Z") for o in orders) and any("+08:00" in o["timestamp"] for o in orders)
    assert any(shop_day(o) > LAST_DAY for o in orders), "orders after the observation end"
    assert any(o["total_fen"] % 100 for o in orders), "amounts with fen"


@pytest.mark.parametrize("case", list(CASES))
def test_rfm_matches_lifetimes(case, orders, data_dir):
    as_of, end = CASES[case]
    expected = lifetimes_summary(orders, end)
    out = subprocess.run(
        [BIN, "rfm", "--data-dir", str(data_dir), "--as-of", as_of, "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"flywheel rfm failed ({out.returncode}):\n{out.stderr}"
    reader = csv.reader(out.stdout.splitlines())
    header = next(reader)
    assert header == RFM_HEADER
    rows = [dict(zip(header, r)) for r in reader]
    got = {r["user_id"]: r for r in rows}
    assert len(got) == len(rows), "one row per buyer"

    assert sorted(got) == sorted(expected), (
        f"buyers only in flywheel: {sorted(set(got) - set(expected))[:10]}, "
        f"only in lifetimes: {sorted(set(expected) - set(got))[:10]}"
    )
    mismatches = []
    for user_id, (frequency, recency, t, monetary) in sorted(expected.items()):
        r = got[user_id]
        actual = (int(r["frequency"]), int(r["recency"]), int(r["T"]), float(r["monetary_value"]))
        same = actual[:3] == (frequency, recency, t) and math.isclose(
            actual[3], monetary, rel_tol=0, abs_tol=MONEY_TOLERANCE_YUAN
        )
        if not same:
            mismatches.append(f"{user_id}: flywheel {actual} lifetimes {(frequency, recency, t, monetary)}")
        assert r["profile_id"] == f"user:{user_id}"
        assert all(1 <= int(r[k]) <= 5 for k in ("r", "f", "m")), r
        assert r["segment"], r
    assert not mismatches, f"{len(mismatches)} of {len(expected)} buyers differ:\n" + "\n".join(mismatches[:20])


def test_fixture_is_current(orders):
    """The Rust parity fixture is what this generator and the installed lifetimes give."""
    checked_in = json.loads(FIXTURE.read_text(encoding="utf-8"))
    now = fixture_data(orders)
    assert checked_in["customers"] == now["customers"], "regenerate with --write-fixture"
    for old, new in zip(checked_in["cases"], now["cases"], strict=True):
        assert {k: v for k, v in old.items() if k != "expected"} == {k: v for k, v in new.items() if k != "expected"}
        assert len(old["expected"]) == len(new["expected"])
        for a, b in zip(old["expected"], new["expected"]):
            assert {k: v for k, v in a.items() if k != "monetary_value"} == {
                k: v for k, v in b.items() if k != "monetary_value"
            }
            assert math.isclose(a["monetary_value"], b["monetary_value"], rel_tol=0, abs_tol=1e-9), (a, b)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write-fixture":
        sys.exit(f"usage: {sys.argv[0]} --write-fixture PATH")
    target = Path(sys.argv[2])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_fixture(fixture_data(generate_orders())), encoding="utf-8")
    print(f"wrote {target}")
