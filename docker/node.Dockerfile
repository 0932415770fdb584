# A party node (platform or a bank). Its SecretFlow workers run inside the
# same container, so data never leaves the party's volume.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /opt/safehouse
COPY pyproject.toml uv.lock README.md ./
COPY enclave enclave
COPY parties parties
COPY models models
COPY protocols protocols
RUN uv sync --frozen --no-dev && ln -s /opt/safehouse/.venv/bin/safehouse /usr/local/bin/safehouse
ENV SAFEHOUSE_HOME=/var/lib/safehouse
VOLUME /var/lib/safehouse
EXPOSE 7101
ENTRYPOINT ["safehouse"]
CMD ["node", "--help"]
