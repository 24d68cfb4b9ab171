#!/usr/bin/env python3
"""Deterministic data for the audience benchmark: profiles (one raw column per file) and an order log.

Every file is a raw little-endian array with no header; manifest.json names each file and its dtype
(u8, u16, u32, i64). The same parameters and the same numpy version give the same bytes.
Generation is skipped when DIR/manifest.json already holds the same parameters.

Usage: gen.py [--out DIR] [--profiles N] [--users U] [--orders M] [--seed S] [--force]
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

GEN_VERSION = 1
DAY = 86_400_000  # ms
NOW_MS = 1_735_660_800_000  # 2024-12-31T16:00:00Z (= 2025-01-01 00:00 in UTC+8)
NO_ORDER = np.iinfo(np.int64).min  # last_order of a profile with no order

# Province-level divisions in GB/T 2260 order; the index is the region code.
REGIONS = [
    "北京", "天津", "河北", "山西", "內蒙古", "遼寧", "吉林", "黑龍江", "上海", "江蘇",
    "浙江", "安徽", "福建", "江西", "山東", "河南", "湖北", "湖南", "廣東", "廣西",
    "海南", "重慶", "四川", "貴州", "雲南", "西藏", "陝西", "甘肅", "青海", "寧夏",
    "新疆", "台灣", "香港", "澳門",
]
# Popularity rank (most customers first); region weight = 1 / rank^0.7.
REGION_RANK = [
    "廣東", "上海", "北京", "浙江", "江蘇", "山東", "四川", "福建", "湖北", "河南",
    "湖南", "安徽", "河北", "重慶", "天津", "遼寧", "陝西", "江西", "廣西", "雲南",
    "山西", "黑龍江", "吉林", "貴州", "內蒙古", "新疆", "甘肅", "海南", "香港", "台灣",
    "寧夏", "青海", "澳門", "西藏",
]
GENDER = ["", "男", "女"]
AGE_BAND = ["", "<18", "18-24", "25-34", "35-44", "45-54", "55+"]
TIER = ["青銅", "白銀", "黃金", "鉑金"]
CHANNEL = ["自然流量", "搜索廣告", "社交媒體", "微信小程序", "抖音", "小紅書", "線下門店", "推薦有禮"]
TAGS = {  # column -> display name of the tag
    "tag_high_value": "高價值客戶",
    "tag_potential": "潛力客戶",
    "tag_churn_risk": "流失風險客戶",
    "tag_promo_sensitive": "促銷敏感客戶",
    "tag_vip": "VIP客戶",
}


def region_weights():
    assert len(REGIONS) == 34 and sorted(REGIONS) == sorted(REGION_RANK)
    w = np.zeros(len(REGIONS))
    for rank, name in enumerate(REGION_RANK, start=1):
        w[REGIONS.index(name)] = rank ** -0.7
    return w / w.sum()


def cities(rw):
    """~300 synthetic city codes, grouped by region (a city belongs to exactly one region)."""
    n = np.maximum(3, np.round(np.sqrt(rw) / np.sqrt(rw).sum() * 300)).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n)[:-1]])
    names = [f"{REGIONS[r]}{j + 1:02d}市" for r in range(len(REGIONS)) for j in range(n[r])]
    return n, offset, names


def write(base, rel, arr, dtype):
    path = os.path.join(base, rel)
    np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")).tofile(path)
    return path


DT = {"u8": "u1", "u16": "u2", "u32": "u4", "i64": "i8"}


def gen_profiles(rng, n, base):
    cols = []

    def put(name, arr, dtype):
        write(base, f"profiles/{name}.bin", arr, DT[dtype])
        cols.append({"name": name, "dtype": dtype, "file": f"profiles/{name}.bin"})

    rw = region_weights()
    n_city, city_off, city_names = cities(rw)

    gender = rng.choice(3, size=n, p=[0.10, 0.40, 0.50]).astype(np.uint8)
    put("gender", gender, "u8")
    region = rng.choice(len(REGIONS), size=n, p=rw).astype(np.uint16)
    put("region", region, "u16")
    # city within the region, skewed to the region's first cities
    u = rng.random(n)
    city = city_off[region] + np.minimum((u * u * n_city[region]).astype(np.int64), n_city[region] - 1)
    put("city", city.astype(np.uint16), "u16")
    del u, city
    put("age_band", rng.choice(7, size=n, p=[0.08, 0.05, 0.20, 0.32, 0.20, 0.10, 0.05]), "u8")
    channel = rng.choice(8, size=n, p=[0.30, 0.15, 0.10, 0.15, 0.12, 0.08, 0.06, 0.04]).astype(np.uint8)
    put("channel", channel, "u8")

    # --- orders and spend per time bucket: [0,30d), [30d,90d), [90d,365d), older ---
    buyer = rng.random(n) < 0.65
    b = [buyer & (rng.random(n) < p) for p in (0.50, 0.35, 0.50, 0.40)]
    none = buyer & ~(b[0] | b[1] | b[2] | b[3])
    b[2] |= none
    del none
    aov = rng.lognormal(np.log(20_000), 0.8, n)  # average order value per user, fen
    orders, spend = [], []
    for bk, lam in zip(b, (1.2, 0.8, 2.0, 3.0)):
        o = np.where(bk, 1 + rng.poisson(lam, n), 0).astype(np.int64)
        s = np.round(o * aov * rng.lognormal(0.0, 0.3, n)).astype(np.int64)
        s = np.where(o > 0, np.maximum(s, 100 * o), 0)
        orders.append(o)
        spend.append(s)
    del aov
    put("spend_30d", spend[0], "i64")
    put("spend_90d", spend[0] + spend[1], "i64")
    put("spend_365d", spend[0] + spend[1] + spend[2], "i64")
    spend_all = spend[0] + spend[1] + spend[2] + spend[3]
    put("spend_all", spend_all, "i64")
    spend_30d = spend[0]
    del spend
    put("orders_30d", orders[0].astype(np.uint32), "u32")
    orders_all = orders[0] + orders[1] + orders[2] + orders[3]
    put("orders_all", orders_all.astype(np.uint32), "u32")
    del orders

    # --- timestamps as ages (ms before NOW) ---
    bounds = [(0, 30), (30, 90), (90, 365), (365, 2000)]
    last_age = np.full(n, np.iinfo(np.int64).max)  # most recent order
    oldest_age = np.zeros(n, dtype=np.int64)  # oldest order
    for bk, (lo, hi) in zip(b, bounds):
        a = rng.integers(lo * DAY, hi * DAY, n)
        last_age = np.where(bk & (a < last_age), a, last_age)
    for bk, (lo, hi) in reversed(list(zip(b, bounds))):
        a = rng.integers(lo * DAY, hi * DAY, n)
        oldest_age = np.where(bk & (oldest_age == 0), np.maximum(a, np.where(buyer, last_age, 0)), oldest_age)
    del b
    first_age = (2190 * DAY * rng.random(n) ** 1.5).astype(np.int64)
    first_age = np.maximum(first_age, oldest_age + rng.integers(0, 30 * DAY, n))
    del oldest_age
    active_age = rng.exponential(60 * DAY, n).astype(np.int64)
    active_age = np.minimum(active_age, np.where(buyer, last_age, first_age))
    active_age = np.minimum(active_age, first_age)
    signin_age = active_age + np.minimum(rng.exponential(20 * DAY, n).astype(np.int64), first_age - active_age)
    put("last_active", NOW_MS - active_age, "i64")
    put("last_sign_in", NOW_MS - signin_age, "i64")
    put("first_seen", NOW_MS - first_age, "i64")
    put("last_order", np.where(buyer, NOW_MS - np.where(buyer, last_age, 0), NO_ORDER), "i64")
    del signin_age, first_age, last_age

    # --- tier from lifetime spend ---
    q = np.quantile(spend_all, [0.60, 0.85, 0.97])
    tier = np.searchsorted(q, spend_all, side="right").astype(np.uint8)
    put("tier", tier, "u8")
    del tier

    # --- tags ---
    put("tag_high_value", spend_30d > 100_000, "u8")
    active30 = active_age < 30 * DAY
    p = np.where(active30 & (orders_all <= 2), 0.35, 0.03)
    put("tag_potential", rng.random(n) < p, "u8")
    inactive60 = active_age > 60 * DAY
    p = np.where(inactive60, np.where(buyer, 0.60, 0.25), 0.04)
    put("tag_churn_risk", rng.random(n) < p, "u8")
    p = np.where(np.isin(channel, [4, 5, 7]), 0.40, 0.25)
    put("tag_promo_sensitive", rng.random(n) < p, "u8")
    top5 = spend_all >= np.quantile(spend_all, 0.95)
    p = np.where(top5, 0.20, 0.01)
    put("tag_vip", rng.random(n) < p, "u8")

    dictionaries = {
        "gender": GENDER,
        "region": REGIONS,
        "city": city_names,
        "age_band": AGE_BAND,
        "tier": TIER,
        "channel": CHANNEL,
    }
    return cols, dictionaries


def gen_orders(rng, users, m, base):
    # per-user purchase propensity (heavy tail) and how long ago the user stopped buying
    weight = rng.lognormal(0.0, 1.0, users)
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    user = np.minimum(np.searchsorted(cdf, rng.random(m), side="right"), users - 1).astype(np.uint32)
    del cdf, weight
    span = 730 * DAY
    stop = np.minimum(rng.exponential(120 * DAY, users).astype(np.int64), span - DAY)
    c = stop[user]
    ts = NOW_MS - c - (rng.random(m) * (span - c)).astype(np.int64)
    del c, stop
    mu = np.log(20_000) - 0.9**2 / 2  # mean 20,000 fen = 200 元
    amount = np.maximum(100, np.round(rng.lognormal(mu, 0.9, m))).astype(np.int64)
    order = np.argsort(ts, kind="stable")  # an event log: by time, users interleaved
    cols = []
    for name, arr, dtype in (("user", user[order], "u32"), ("ts", ts[order], "i64"), ("amount", amount[order], "i64")):
        write(base, f"orders/{name}.bin", arr, DT[dtype])
        cols.append({"name": name, "dtype": dtype, "file": f"orders/{name}.bin"})
    return cols


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../out/audience/data"))
    ap.add_argument("--profiles", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=20241231)
    ap.add_argument("--force", action="store_true", help="regenerate even if the manifest matches")
    a = ap.parse_args()
    out = os.path.normpath(a.out)
    params = {"gen_version": GEN_VERSION, "seed": a.seed, "profiles": a.profiles, "users": a.users,
              "orders": a.orders, "numpy": np.__version__}
    mpath = os.path.join(out, "manifest.json")
    if not a.force and os.path.exists(mpath):
        with open(mpath, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("params") == params:
            print(f"gen: {out} is up to date ({a.profiles:,} profiles, {a.orders:,} orders)", file=sys.stderr)
            return
    t0 = time.perf_counter()
    if os.path.exists(mpath):
        os.remove(mpath)
    for sub in ("profiles", "orders"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    pcols, dictionaries = gen_profiles(np.random.default_rng([a.seed, 1]), a.profiles, out)
    t1 = time.perf_counter()
    ocols = gen_orders(np.random.default_rng([a.seed, 2]), a.users, a.orders, out)
    t2 = time.perf_counter()
    manifest = {
        "params": params,
        "profiles": a.profiles,
        "now_ms": NOW_MS,
        "endianness": "little",
        "columns": pcols,
        "dictionaries": dictionaries,
        "tags": TAGS,
        "last_order_none": int(NO_ORDER),
        "orders": {"users": a.users, "orders": a.orders, "sorted_by": "ts", "columns": ocols},
    }
    tmp = mpath + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
    os.replace(tmp, mpath)
    print(f"gen: {a.profiles:,} profiles in {t1 - t0:.1f} s, {a.orders:,} orders in {t2 - t1:.1f} s -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
