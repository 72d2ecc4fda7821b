"""driftwarden.telemetry.metrics: the shared instruments and their Prometheus text, line by line."""

from __future__ import annotations

import re

import aiohttp
import pytest
from opentelemetry.metrics import NoOpHistogram, NoOpObservableCounter
from opentelemetry.sdk.metrics import MeterProvider

from devtools.jaeger import free_port
from driftwarden.telemetry.metrics import Instruments, ScrapeReader, metrics_server, prometheus_text


@pytest.fixture
def measured() -> tuple[Instruments, ScrapeReader]:
    reader = ScrapeReader()
    provider = MeterProvider(metric_readers=[reader])
    return Instruments.from_meter(provider.get_meter("test")), reader


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, for every sample line."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_nothing_recorded_renders_nothing(measured: tuple[Instruments, ScrapeReader]) -> None:
    assert prometheus_text(measured[1]) == ""


def test_counters_get_total_and_help_and_type(measured: tuple[Instruments, ScrapeReader]) -> None:
    instruments, reader = measured
    for _ in range(3):
        instruments.record_admission(
            decision="denied", operation="UPDATE", endpoint="validate", seconds=0.003
        )
    instruments.record_admission(decision="allowed", operation="CREATE", endpoint="mutate", seconds=0.0004)
    text = prometheus_text(reader)
    assert "# TYPE driftwarden_admission_requests_total counter" in text
    assert "# HELP driftwarden_admission_requests_total Admission reviews answered" in text
    samples = _samples(text)
    assert (
        samples[
            'driftwarden_admission_requests_total{decision="denied",endpoint="validate",operation="UPDATE"}'
        ]
        == 3
    )
    assert (
        samples[
            'driftwarden_admission_requests_total{decision="allowed",endpoint="mutate",operation="CREATE"}'
        ]
        == 1
    )


def test_histograms_have_cumulative_buckets_sum_and_count(
    measured: tuple[Instruments, ScrapeReader],
) -> None:
    instruments, reader = measured
    for seconds in (0.0004, 0.003, 0.003, 7.0):
        instruments.record_admission(
            decision="denied", operation="DELETE", endpoint="validate", seconds=seconds
        )
    text = prometheus_text(reader)
    assert "# TYPE driftwarden_admission_duration_seconds histogram" in text
    labels = 'decision="denied",endpoint="validate",operation="DELETE"'
    samples = _samples(text)

    def bucket(le: str) -> str:
        # prometheus_client writes every label in name order, ``le`` among them.
        with_le = labels.replace(",operation=", f',le="{le}",operation=')
        return "driftwarden_admission_duration_seconds_bucket{" + with_le + "}"

    assert samples[bucket("0.0005")] == 1
    assert samples[bucket("0.0025")] == 1
    assert samples[bucket("0.005")] == 3
    assert samples[bucket("2.5")] == 3
    assert samples[bucket("+Inf")] == 4
    assert samples["driftwarden_admission_duration_seconds_count{" + labels + "}"] == 4
    assert samples["driftwarden_admission_duration_seconds_sum{" + labels + "}"] == pytest.approx(7.0064)
    le = [float(v) for v in re.findall(r'le="([^"+]+)"', text)]
    assert le == sorted(le), "buckets are in increasing order"


def test_status_gauges_are_one_for_the_current_status_and_zero_for_the_rest(
    measured: tuple[Instruments, ScrapeReader],
) -> None:
    instruments, reader = measured
    instruments.record_reconcile("prod/web", seconds=0.8, sync="OutOfSync", health="Healthy")
    instruments.record_reconcile("prod/web", seconds=0.5, sync="Synced", health="Degraded")
    samples = _samples(prometheus_text(reader))
    sync = {k: v for k, v in samples.items() if k.startswith("driftwarden_app_sync_status{")}
    assert sync == {
        'driftwarden_app_sync_status{app="prod/web",status="Synced"}': 1,
        'driftwarden_app_sync_status{app="prod/web",status="OutOfSync"}': 0,
        'driftwarden_app_sync_status{app="prod/web",status="Unknown"}': 0,
    }
    health = {k: v for k, v in samples.items() if k.startswith("driftwarden_app_health_status{")}
    assert len(health) == 6 and sum(health.values()) == 1
    assert health['driftwarden_app_health_status{app="prod/web",status="Degraded"}'] == 1
    assert samples['driftwarden_reconcile_duration_seconds_count{app="prod/web"}'] == 2


def test_drift_helpers_count_and_time_heals(measured: tuple[Instruments, ScrapeReader]) -> None:
    instruments, reader = measured
    instruments.record_drift_detected("prod/web", "apps/Deployment")
    instruments.record_drift_detected("prod/web", "apps/Deployment")
    instruments.record_drift_healed("prod/web", "apps/Deployment", latency=0.3)
    instruments.record_drift_healed("prod/web", "/ConfigMap")  # edit time unknown: counted, not timed
    samples = _samples(prometheus_text(reader))
    assert samples['driftwarden_drift_detected_total{app="prod/web",kind="apps/Deployment"}'] == 2
    assert samples['driftwarden_drift_healed_total{app="prod/web",kind="apps/Deployment"}'] == 1
    assert samples['driftwarden_drift_healed_total{app="prod/web",kind="/ConfigMap"}'] == 1
    assert samples['driftwarden_heal_latency_seconds_count{app="prod/web",kind="apps/Deployment"}'] == 1
    assert 'driftwarden_heal_latency_seconds_count{app="prod/web",kind="/ConfigMap"}' not in samples


def test_label_values_are_escaped(measured: tuple[Instruments, ScrapeReader]) -> None:
    instruments, reader = measured
    instruments.record_drift_detected('odd"app\\name\nx', "v1/Secret")
    text = prometheus_text(reader)
    assert 'app="odd\\"app\\\\name\\nx"' in text
    assert all(line.count("\n") == 0 for line in text.splitlines())


def test_an_unknown_status_gets_its_own_series(measured: tuple[Instruments, ScrapeReader]) -> None:
    instruments, reader = measured
    instruments.record_app_status("a/b", sync="Synced", health="Weird")
    samples = _samples(prometheus_text(reader))
    assert samples['driftwarden_app_health_status{app="a/b",status="Weird"}'] == 1
    assert samples['driftwarden_app_health_status{app="a/b",status="Healthy"}'] == 0


def test_noop_instruments_accept_everything_and_keep_nothing() -> None:
    instruments = Instruments.noop()
    assert isinstance(instruments.admission_requests, NoOpObservableCounter)
    assert isinstance(instruments.heal_latency, NoOpHistogram)
    instruments.record_admission(decision="allowed", operation="UPDATE", endpoint="validate", seconds=0.1)
    instruments.record_reconcile("a/b", seconds=1.0, sync="Synced", health="Healthy")
    instruments.record_drift_healed("a/b", "v1/ConfigMap", latency=0.2)


async def test_metrics_server_port_zero_is_off_and_any_other_port_serves(
    measured: tuple[Instruments, ScrapeReader],
) -> None:
    instruments, reader = measured
    async with metrics_server(reader, host="127.0.0.1", port=0) as off:
        assert off is None
    instruments.record_drift_detected("prod/web", "apps/Deployment")
    port = free_port()
    async with (
        metrics_server(reader, host="127.0.0.1", port=port) as on,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        assert on is not None and on.port == port and on.url == f"http://127.0.0.1:{port}"
        assert resp.status == 200
        assert (
            'driftwarden_drift_detected_total{app="prod/web",kind="apps/Deployment"} 1' in await resp.text()
        )
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics"):
            pass


def test_admission_counts_are_plain_numbers_the_readers_observe_cumulatively(
    measured: tuple[Instruments, ScrapeReader],
) -> None:
    # Issue 17: the webhook's counter is kept as plain numbers and read when the reader collects.
    instruments, reader = measured
    series = 'driftwarden_admission_requests_total{decision="denied",endpoint="validate",operation="UPDATE"}'
    denied = {"decision": "denied", "operation": "UPDATE", "endpoint": "validate"}
    instruments.record_admission(**denied, seconds=0.001)
    assert _samples(prometheus_text(reader))[series] == 1
    for _ in range(2):
        instruments.record_admission(**denied, seconds=0.001)
    assert _samples(prometheus_text(reader))[series] == 3  # cumulative across scrapes, never reset
    assert instruments.admission_counts.counts == {("denied", "UPDATE", "validate"): 3}
