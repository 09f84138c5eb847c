# slimserve: build in one stage, run from a slim Debian 12 image as a non-root user.
FROM debian:12 AS build
WORKDIR /src
COPY tools/install_deps.sh tools/install_deps.sh
RUN tools/install_deps.sh
COPY . .
RUN cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && ninja -C build/release slimctl

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libdnnl2 libprotobuf32 libonnx1 libgomp1 \
    libabsl20220623 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home slimserve
COPY --from=build /src/build/release/cli/slimctl /usr/local/bin/slimctl
COPY --from=build /src/examples /opt/slimserve/examples
USER slimserve
WORKDIR /opt/slimserve
ENTRYPOINT ["slimctl"]
CMD ["--help"]
