"""gRPC: server and client interceptors and instrumented channels for grpcio, sync and ``grpc.aio``."""
