"""The demo site in one of the OpenTelemetry set-ups ``benchmarks.otel`` compares (``BENCH_OTEL``):

* ``absent``: ``opentelemetry`` cannot be imported (as without the ``[otel]`` extra);
* ``api``: the API is importable but no SDK is configured (the demo as shipped);
* ``sdk``: the SDK with a batch span processor whose exporter serialises every span as the
  console exporter does (into /dev/null: the encoding cost stands in for an OTLP exporter's),
  and a meter provider aggregating the duration histograms. Configured before the app is built,
  as ``opentelemetry-instrument`` does, so the MCP endpoints also get the ASGI middleware's HTTP
  spans (what a site gets from the standard set-up).
"""

from __future__ import annotations

import os
import sys

MODE = os.environ.get("BENCH_OTEL", "api")

if MODE == "absent":
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]
elif MODE == "sdk":
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=open(os.devnull, "w"))))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
elif MODE != "api":
    raise SystemExit(f"BENCH_OTEL must be absent, api or sdk, not {MODE!r}")

from demo_project.asgi import application  # noqa: E402

__all__ = ["application"]
