# Image for the dualwrite processes in docker-compose.yml (emulators, worker, sources, sinks).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY topics ./topics
COPY connectors ./connectors
COPY streams ./streams
COPY emulators ./emulators
COPY dualwrite ./dualwrite
COPY bench ./bench
RUN pip install --no-cache-dir .
ENV DUALWRITE_STATE_DIR=/var/lib/dualwrite
VOLUME /var/lib/dualwrite
ENTRYPOINT ["dualwrite"]
CMD ["--help"]
