"""The driver's merge of per-batch partials: any split of a window's ticks into batches, in
any order, gives the aggregate of all of them; and the record it writes is the contract's."""

from __future__ import annotations

import random

import orjson
import pytest

from cryptopulse.schema import WindowAggregate
from cryptopulse.stream.merge import STATE_FIELDS, WindowState, bound_iso, window_record
from tests.factories import T0, T, one_tick_state

START_MS = int(T0.timestamp() * 1000)  # a window start: 2026-11-24T22:00:00Z


def single(t: T) -> WindowState:
    return one_tick_state(t, START_MS + 30_000)


def expected(ticks: list[T]) -> dict[str, object]:
    """The window's figures straight from their definitions in the contract."""
    trades = [t for t in ticks if t.size is not None]
    priced = trades or ticks
    by_time = sorted(priced, key=lambda t: t.at_us)
    changes = [t.change for t in ticks if t.change is not None]
    volumes = [t.volume for t in ticks if t.volume is not None]
    caps = sorted((t for t in ticks if t.cap is not None), key=lambda t: t.at_us)
    quotes = sorted((t for t in ticks if t.quote is not None), key=lambda t: t.at_us)
    return {
        "symbol": max(ticks, key=lambda t: t.at_us).symbol,
        "open": by_time[0].price,
        "close": by_time[-1].price,
        "high": max(t.price for t in priced),
        "low": min(t.price for t in priced),
        "avg_price": pytest.approx(sum(t.price for t in priced) / len(priced)),
        "tick_count": len(ticks),
        "avg_change_24h": pytest.approx(sum(changes) / len(changes)) if changes else None,
        "max_volume_24h": max(volumes) if volumes else None,
        "market_cap": caps[-1].cap if caps else None,
        "quote": quotes[-1].quote if quotes else None,
        "traded_volume": pytest.approx(sum(t.size for t in trades if t.size)) if trades else None,
        "trade_count": len(trades) or None,
        "vwap": (
            pytest.approx(
                sum(t.price * (t.size or 0) for t in trades) / sum(t.size or 0 for t in trades)
            )
            if trades
            else None
        ),
    }


def merged(batches: list[list[T]]) -> dict[str, object]:
    """Each batch aggregated on its own, then folded in the given order."""
    states = []
    for batch in batches:
        state = single(batch[0])
        for t in batch[1:]:
            state.add(single(t))
        states.append(state)
    total = states[0]
    for state in states[1:]:
        total.add(state)
    record: dict[str, object] = orjson.loads(
        window_record("ex", "bitcoin", START_MS, total, final=False)
    )
    return record


def random_ticks(rng: random.Random, n: int) -> list[T]:
    base = START_MS * 1000
    times = rng.sample(range(base, base + 30_000_000), n)  # distinct event times
    return [
        T(
            price=round(rng.uniform(90, 110), 2),
            at_us=at,
            size=round(rng.uniform(0.01, 2), 3) if rng.random() < 0.5 else None,
            quote=rng.choice(["USD", "USDT", None]),
            change=rng.choice([None, round(rng.uniform(-8, 8), 2)]),
            volume=rng.choice([None, rng.uniform(1e6, 1e9)]),
            cap=rng.choice([None, rng.uniform(1e9, 1e12)]),
            symbol=rng.choice(["btc", "xbt"]),
        )
        for at in times
    ]


@pytest.mark.parametrize("seed", range(40))
def test_any_split_into_batches_in_any_order_gives_the_aggregate_of_all_ticks(seed: int) -> None:
    rng = random.Random(seed)
    ticks = random_ticks(rng, rng.randint(1, 25))
    shuffled = ticks[:]
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(shuffled)), min(len(shuffled) - 1, rng.randint(0, 4))))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    record = merged(batches)
    want = expected(ticks)
    assert {k: record[k] for k in want} == want
    WindowAggregate.model_validate(record)


def test_a_ticker_only_window_has_no_trade_figures() -> None:
    record = merged([[T(50.0, 1)], [T(40.0, 2)]])
    assert (record["vwap"], record["traded_volume"], record["trade_count"]) == (None, None, None)
    assert (record["open"], record["close"], record["avg_price"]) == (50.0, 40.0, 45.0)


def test_the_vwap_of_equal_prices_stays_within_the_range() -> None:
    record = merged([[T(0.1, i, size=s)] for i, s in enumerate((0.3, 0.7, 1.1, 3.3))])
    assert record["vwap"] == record["low"] == record["high"] == 0.1


def test_ties_keep_the_earlier_batch() -> None:
    record = merged([[T(1.0, 7, symbol="btc")], [T(2.0, 7, symbol="xbt")]])
    assert (record["open"], record["close"], record["symbol"]) == (1.0, 1.0, "btc")


def test_the_record_has_the_contracts_fields_in_order_and_labels() -> None:
    record = merged([[T(10.0, 1, change=12.0)]])
    assert list(record) == list(WindowAggregate.model_fields)
    assert (record["volatility"], record["trend"], record["kind"]) == (
        "High Volatility",
        "🚀 Surging",
        "live",
    )
    assert record["window_start"] == "2026-11-24T22:00:00.000Z"
    assert record["window_end"] == "2026-11-24T22:00:30.000Z"
    final = orjson.loads(window_record("ex", "b", START_MS, single(T(1.0, 1)), final=True))
    assert final["final"] is True


def test_the_state_round_trips_as_a_list() -> None:
    state = single(T(3.0, 9, size=1.0, quote="USD", cap=5.0))
    assert WindowState.of(orjson.loads(orjson.dumps(state.values()))) == state
    assert len(state.values()) == len(STATE_FIELDS)


def test_window_bounds_keep_their_milliseconds() -> None:
    assert bound_iso(START_MS + 123) == "2026-11-24T22:00:00.123Z"
    assert bound_iso(0) == "1970-01-01T00:00:00.000Z"
