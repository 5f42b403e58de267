# The one image of every dsimport service (worker, beat, Flower, the jobs page, the migration, the emulator);
# docker-compose.yml picks the command. Build: docker build -t dsimport .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api_client ./api_client
COPY cli ./cli
COPY dashboard ./dashboard
COPY emulator ./emulator
COPY import_kinds ./import_kinds
COPY jobs ./jobs
COPY notifications ./notifications
COPY snapshots ./snapshots
COPY store ./store
COPY tasks ./tasks
COPY triggers ./triggers
COPY worker ./worker
# Wheels of the project and of every dependency, so the final stage installs offline and carries no build cache.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    DSIMPORT_HOME=/var/lib/dsimport
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/dsimport --create-home dsimport
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels dsimport && rm -rf /wheels
# Never root: nothing here needs it, and the data folder belongs to the service user.
USER dsimport
WORKDIR /var/lib/dsimport
EXPOSE 5555 8080 8765
CMD ["dsimport", "--help"]
