"""An OTLP/gRPC collector for tests/telemetry.rs: the generated services of the
official `opentelemetry-proto` package on `grpcio`, listening on 127.0.0.1:0.

It prints its port on the first line of stdout, then one JSON line per Export
call, before answering it:

    {"path": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
     "metadata": [["x-api-key", "..."], ...],
     "body": "<the request, re-encoded by protobuf, in hex>",
     "code": 0}

`code` is the gRPC status it answers with: 0 (OK), or CODE for the first N
calls whose request holds NEEDLE when started with `--refuse CODE:N:NEEDLE`.
It stops when stdin closes.
"""

import json
import sys
import threading
from concurrent import futures

try:
    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
except ImportError as e:
    sys.exit(f"otlp_grpc.py: {e}: run tests/interop/setup.sh")

lock = threading.Lock()
refusal = None  # [code, calls left, needle]


def export(path, request, context, response):
    global refusal
    body = request.SerializeToString()
    code = 0
    with lock:
        if refusal and refusal[1] > 0 and refusal[2] in body:
            refusal[1] -= 1
            code = refusal[0]
        metadata = [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
        line = json.dumps({"path": path, "metadata": metadata, "body": body.hex(), "code": code})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if code:
        status = next(s for s in grpc.StatusCode if s.value[0] == code)
        context.abort(status, "refused by the test")
    return response


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        return export(path, request, context, trace_service_pb2.ExportTraceServiceResponse())


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        return export(path, request, context, metrics_service_pb2.ExportMetricsServiceResponse())


def main():
    global refusal
    args = sys.argv[1:]
    if args[:1] == ["--refuse"]:
        code, n, needle = args[1].split(":", 2)
        refusal = [int(code), int(n), needle.encode()]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
