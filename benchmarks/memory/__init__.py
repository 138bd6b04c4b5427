"""The memory benchmark (issue 16 item 4): what hoptel holds per queued span, per metric series, per in-flight RPC.

``python -m benchmarks.memory`` measures, with the public API only (``hoptel.setup()``,
``hoptel.server_interceptor()``, ``hoptel.client_interceptor()``) on real gRPC servers on loopback:

- **bytes per queued span** (``heap.queued_spans``): finished spans waiting in the batch queue (the schedule delay
  and the batch size made so large that nothing is exported); tracemalloc's traced bytes after N RPCs and after 2N,
  the difference over the spans queued in between;
- **bytes per metric series** (``heap.metric_series``): one RPC on each of N, then 2N, new methods, each adding one
  label combination to hoptel's counter and histogram families; instrumented minus bare (no interceptors);
- **bytes per in-flight RPC** (``heap.in_flight``): K RPCs held open in the server's handler; traced bytes with the
  K calls in flight minus before, over K, instrumented minus bare;
- **RSS over many RPCs** (``rss.run``): a client process (this one) and a server process, both instrumented, with an
  OTLP receiver in a third process, sampled every ``--sample-every`` RPCs from ``/proc/<pid>/status``.

The table goes to stdout, progress to stderr; ``benchmarks/results/memory.md`` and ``memory.json`` are written.
"""
