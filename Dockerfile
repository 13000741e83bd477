# Image for the dualwrite processes in docker-compose.yml (emulators, worker, sources, sinks).
# A first stage compiles the worker's hot path with mypyc (`dualwrite compile`, streams/native.py),
# where a C compiler and Python's headers are; the image takes the build and stays slim. The build
# is found by a digest of the installed sources, the same in both stages.
FROM python:3.11 AS native
WORKDIR /app
COPY pyproject.toml README.md ./
COPY topics ./topics
COPY connectors ./connectors
COPY streams ./streams
COPY emulators ./emulators
COPY dualwrite ./dualwrite
COPY bench ./bench
RUN pip install --no-cache-dir . "mypy>=1.13" && dualwrite compile

FROM python:3.11-slim
WORKDIR /app
COPY --from=native /app /app
RUN pip install --no-cache-dir .
COPY --from=native /usr/local/share/dualwrite-native /usr/local/share/dualwrite-native
ENV DUALWRITE_STATE_DIR=/var/lib/dualwrite
VOLUME /var/lib/dualwrite
ENTRYPOINT ["dualwrite"]
CMD ["--help"]
