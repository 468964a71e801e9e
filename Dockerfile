# The controller image that deploy/ runs (ghcr.io/sloscale/sloscale). Not built in CI here:
# these machines have no container engine. Build: docker build -t sloscale:dev .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sloscale sloscale
COPY controller controller
COPY forecasting forecasting
COPY actuators actuators
COPY dashboards dashboards
COPY loadtests loadtests
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# the restricted pod security profile: a fixed non-root user, no writes to the image
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["sloscale"]
CMD ["run", "--help"]
