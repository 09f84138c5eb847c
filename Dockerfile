# slimserve: built on Debian 12, run from debian:12-slim as a non-root user.
#
#   docker build -t slimserve .
#   docker run --rm -p 8001:8001 -p 8002:8002 slimserve                        # the bundled examples/
#   docker run --rm -p 8001:8001 -p 8002:8002 -v "$PWD/models:/models" slimserve   # your repository
#   docker stop -t 35 CONTAINER   # SIGTERM, then up to --shutdown-timeout-s (30) for accepted requests
#
# Kubernetes manifests, Prometheus and Grafana configuration: deploy/ (see deploy/README.md).

FROM debian:12 AS build
WORKDIR /src
# The dependency layer first, so that it is cached across source changes.
COPY tools/install_deps.sh tools/install_deps.sh
RUN bash tools/install_deps.sh --build && rm -rf /var/lib/apt/lists/*
# Only what the CMake build reads: no build/ directories or fetched tools from the host.
COPY CMakeLists.txt ./
COPY proto/ proto/
COPY runtime/ runtime/
COPY server/ server/
COPY cli/ cli/
COPY compression/ compression/
COPY tests/ tests/
COPY bench/ bench/
RUN cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && ninja -C build/release slimserve slimctl

FROM debian:12-slim
# The shared libraries of the binaries (the runtime packages behind tools/install_deps.sh's -dev
# packages): gRPC, protobuf, Abseil, ONNX, oneDNN (+ OpenCL loader, OpenMP), XNNPACK,
# prometheus-cpp (+ civetweb), OpenSSL (SHA-256).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libonnx1 \
      libdnnl2 ocl-icd-libopencl1 libgomp1 libxnnpack0 libpthreadpool0 libcpuinfo0 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 zlib1g libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 slimserve \
 && useradd --system --uid 10001 --gid slimserve --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin slimserve
COPY --from=build /src/build/release/server/slimserve /src/build/release/cli/slimctl /usr/local/bin/
# The example repository: a read-only copy (deploy/ seeds empty volumes from it) and the default
# contents of /models.
COPY examples/ /opt/slimserve/examples/
# Fail the build, not the first start, if a shared library is missing.
RUN if ldd /usr/local/bin/slimserve /usr/local/bin/slimctl | grep 'not found'; then exit 1; fi \
 && slimserve --help > /dev/null \
 && mkdir /models \
 && cp -R /opt/slimserve/examples/. /models/ \
 && chown -R 10001:10001 /models
VOLUME ["/models"]
USER 10001:10001
WORKDIR /models
EXPOSE 8001 8002
ENTRYPOINT ["slimserve", "--model-repository", "/models"]
CMD ["--grpc-port", "8001", "--metrics-port", "8002"]
